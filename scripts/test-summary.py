#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Print one closing line for a meson test run: 'tests: N passed, N failed'.

Exit 1 when a test failed (or timed out), when nothing passed, or -- when
S2S_ALLOWED_SKIPS is set (the CI sets it, .ci/run) -- when a test was
skipped (exit 77) that is not named in it (names separated by spaces or
commas; empty: no skip allowed).  Unset, skips are fine: a developer's
machine may lack PostgreSQL or podman.
"""
import json
import os
import re
import sys

passed = failed = 0
skipped = []
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        t = json.loads(line)
        result = t.get("result")
        if result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif result == "SKIP":
            skipped.append(t.get("name", "?"))
        else:
            failed += 1
line = f"tests: {passed} passed, {failed} failed"
if skipped:
    line += f", {len(skipped)} skipped ({' '.join(sorted(skipped))})"
print(line)
bad_skips = []
allowed = os.environ.get("S2S_ALLOWED_SKIPS")
if allowed is not None:
    ok = set(w for w in re.split(r"[\s,]+", allowed) if w)
    # meson names a test "suite / name" in some versions: match the name
    bad_skips = [s for s in skipped if s.split(" / ")[-1] not in ok]
    if bad_skips:
        print("tests: skipped but required here (S2S_ALLOWED_SKIPS="
              f"'{allowed}'): {' '.join(sorted(bad_skips))}")
sys.exit(1 if failed or passed == 0 or bad_skips else 0)
