#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Run the libFuzzer targets of tests/fuzz for a bounded time each, under
# ASan + UBSan, and print executions, coverage and findings per target.
#   scripts/fuzz.sh BUILD_DIR SECONDS TARGET...      (make fuzz calls it)
# New inputs go to BUILD_DIR/fuzz/corpus/<target> (the committed seeds in
# tests/fuzz/corpus/<target> are read, never written); crashes, leaks and
# timeouts to BUILD_DIR/fuzz/artifacts/<target>/; logs to
# BUILD_DIR/fuzz/<target>.log.  Exit status 1 if anything was found.
set -u
build=$1 seconds=$2
shift 2
src=$(cd "$(dirname "$0")/.." && pwd)
out="$build/fuzz"
mkdir -p "$out"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
found=0
summary=""
for t in "$@"; do
	bin="$build/tests/fuzz/fuzz_$t"
	corpus="$out/corpus/$t"
	arts="$out/artifacts/$t"
	log="$out/$t.log"
	mkdir -p "$corpus" "$arts"
	echo "== fuzz_$t: ${seconds}s"
	"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$arts/" \
		"$corpus" "$src/tests/fuzz/corpus/$t" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
	cov=$(printf '%s\n' "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	ft=$(printf '%s\n' "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	corp=$(printf '%s\n' "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
	n=$(find "$arts" -type f | wc -l)
	if [ "$rc" -ne 0 ] || [ "$n" -ne 0 ]; then
		found=1
		printf '   FINDING (exit %s): %s\n' "$rc" "$(grep -m1 -E \
			'ERROR: |runtime error|invariant failed' "$log")"
		find "$arts" -type f | sed 's/^/   artifact: /'
	fi
	summary="$summary$(printf '%-15s %12s %9s %7s %7s %6s %8s' "$t" \
		"${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" \
		"${corp:-?}" "$n")
"
done
printf '%-15s %12s %9s %7s %7s %6s %8s\n' target execs exec/s cov ft corpus findings
printf '%s' "$summary"
echo "logs: $out/<target>.log; new inputs: $out/corpus/; findings: $out/artifacts/"
exit $found
