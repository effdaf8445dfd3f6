#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Independent pure-Python Fx (signal-processing.md section 3) cross-check.

Usage: fx_ref.py S2S_TOOL WORKDIR
Generates signature pairs with `s2s bio siggen` (as PGM), computes Rv here
from the spec text alone, runs `s2s bio features`, and compares the 6120
bytes.  Also checks the A6 LBP vector.  Exit 0 when everything matches.

Written from the spec, not from core/bio.c: Otsu uses Python integers (exact
fractions by cross-multiplication), resampling builds the full weight
matrices, and the LBP clamps with min/max.
"""
import os
import subprocess
import sys

HC, WC = 180, 440


def read_pgm(path):
    data = open(path, "rb").read()
    fields, pos = [], 2
    assert data[:2] == b"P5"
    while len(fields) < 3:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            while data[pos:pos + 1] != b"\n":
                pos += 1
            continue
        start = pos
        while data[pos:pos + 1].isdigit():
            pos += 1
        fields.append(int(data[start:pos]))
    w, h, maxval = fields
    assert maxval == 255
    pos += 1
    px = data[pos:pos + w * h]
    return w, h, [list(px[y * w:(y + 1) * w]) for y in range(h)]


def otsu(rows):
    hist = [0] * 256
    for r in rows:
        for v in r:
            hist[v] += 1
    n = sum(hist)
    st = sum(v * c for v, c in enumerate(hist))
    best, t, nk, sk = None, None, 0, 0
    for k in range(256):
        nk += hist[k]
        sk += k * hist[k]
        if nk == 0 or nk == n:
            continue
        num, den = (n * sk - nk * st) ** 2, nk * (n - nk)
        if best is None or num * best[1] > best[0] * den:
            best, t = (num, den), k
    return t


def weights(n_in, n_out):
    """W[o][i] = overlap of [o n_in, (o+1) n_in) and [i n_out, (i+1) n_out)."""
    w = []
    for o in range(n_out):
        row = []
        for i in range(n_in):
            lo = max(o * n_in, i * n_out)
            hi = min((o + 1) * n_in, (i + 1) * n_out)
            row.append(max(0, hi - lo))
        assert sum(row) == n_in
        w.append(row)
    return w


def normalize(w, h, rows):
    t = otsu(rows)
    ys = [y for y in range(h) if any(v <= t for v in rows[y])]
    xs = [x for x in range(w) if any(rows[y][x] <= t for y in range(h))]
    y0, y1, x0, x1 = ys[0], ys[-1], xs[0], xs[-1]
    crop = [[v if v <= t else 255 for v in rows[y][x0:x1 + 1]]
            for y in range(y0, y1 + 1)]
    ch, cw = len(crop), len(crop[0])
    if ch * WC <= cw * HC:
        ow, oh = WC, max(1, (ch * WC + cw // 2) // cw)
    else:
        oh, ow = HC, max(1, (cw * HC + ch // 2) // ch)
    wx, wy = weights(cw, ow), weights(ch, oh)
    nzx = [[(i, c) for i, c in enumerate(r) if c] for r in wx]
    nzy = [[(j, c) for j, c in enumerate(r) if c] for r in wy]
    tmp = [[sum(c * crop[y][i] for i, c in nzx[o]) for o in range(ow)]
           for y in range(ch)]
    d = ch * cw
    canvas = [[255] * WC for _ in range(HC)]
    py, px = (HC - oh) // 2, (WC - ow) // 2
    for oy in range(oh):
        for ox in range(ow):
            s = sum(c * tmp[j][ox] for j, c in nzy[oy])
            canvas[py + oy][px + ox] = (s + d // 2) // d
    return canvas


OFFS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def lbp(img):
    h, w = len(img), len(img[0])
    out = [[0] * w for _ in range(h)]
    for y in range(h):
        for x in range(w):
            c, code = img[y][x], 0
            for k, (dy, dx) in enumerate(OFFS):
                ny, nx = min(max(y + dy, 0), h - 1), min(max(x + dx, 0), w - 1)
                if img[ny][nx] >= c:
                    code |= 1 << k
            out[y][x] = code
    return out


def fx(a, b):
    ca, cb = normalize(*a), normalize(*b)
    shs = [[min(p, q) for p, q in zip(ra, rb)] for ra, rb in zip(ca, cb)]
    codes = lbp(shs)
    rv = []
    for r in range(3):
        for c in range(4):
            hist = [0] * 256
            for y in range(40 * r, 40 * r + 100):
                for x in range(80 * c, 80 * c + 200):
                    hist[codes[y][x]] += 1
            rv.extend(hist[:255])
    return b"".join(v.to_bytes(2, "big") for v in rv)


def main():
    tool, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    assert lbp([[10, 20, 30], [40, 50, 60], [70, 80, 90]]) == \
        [[255, 246, 246], [248, 240, 240], [248, 208, 208]]
    pairs = [((1, 0), (2, 0)), ((3, 1), (4, 2)), ((5, 0), (5, 1))]
    for (ua, sa), (ub, sb) in pairs:
        pa = os.path.join(work, "fxref_%d_%d.pgm" % (ua, sa))
        pb = os.path.join(work, "fxref_%d_%d.pgm" % (ub, sb))
        out = os.path.join(work, "fxref_rv.bin")
        for u, s, p in ((ua, sa, pa), (ub, sb, pb)):
            subprocess.run([tool, "bio", "siggen", "--user", str(u),
                            "--sample", str(s), "--out", p], check=True,
                           stdout=subprocess.DEVNULL)
        subprocess.run([tool, "bio", "features", pa, pb, "--out", out],
                       check=True, stdout=subprocess.DEVNULL)
        got = open(out, "rb").read()
        want = fx(read_pgm(pa), read_pgm(pb))
        if got != want:
            diff = sum(1 for i in range(0, len(want), 2)
                       if got[i:i + 2] != want[i:i + 2])
            print("MISMATCH users %d/%d: %d of 3060 values differ"
                  % (ua, ub, diff))
            return 1
        print("ok users %d.%d / %d.%d: %d bytes identical"
              % (ua, sa, ub, sb, len(got)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
