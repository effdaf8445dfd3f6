#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Rebuild the default 128x128 stego covers in core/covers/ (stdlib only).

The sources are sample images shipped by Debian's python3-skimage package
(licences in core/covers/PROVENANCE.md).  Fetch them without installing
the package and its dependency chain:

    apt-get download python3-skimage
    dpkg-deb -x python3-skimage_*_all.deb /tmp/skimage
    scripts/make-covers.py /tmp/skimage/usr/lib/python3/dist-packages/skimage/data

Reduction is exact integer arithmetic, so the output is reproducible bit
for bit: RGB is first converted with Y = (299 R + 587 G + 114 B + 500) // 1000
(signal-processing.md A1), a centred square crop of side 128*f is taken,
and each output pixel is the rounded mean of its f x f box,
(sum + f*f // 2) // (f*f).  For camera (512x512, f = 4) this is the
reference cover camera128 of signal-processing.md section 2.1, whose raw
16384 bytes hash to 973c1f05...35da6d (checked below).

The covers are written as 8-bit gray PNG, filter none, zlib level 9, with
no ancillary chunks.
"""
import hashlib
import os
import struct
import sys
import zlib

# name -> (source file, box factor)
COVERS = {
    "camera": ("camera.png", 4),        # 512x512 gray, CC0
    "astronaut": ("astronaut.png", 4),  # 512x512 RGB, public domain (NASA)
    "brick": ("brick.png", 4),          # 512x512 gray, CC0
    "grass": ("grass.png", 4),          # 512x512 gray, CC0
    "gravel": ("gravel.png", 4),        # 512x512 gray, CC0
    "coffee": ("coffee.png", 3),        # 600x400 RGB, CC0: centre 384x384
}
CAMERA128_SHA256 = \
    "973c1f05a356373b9a38190c15b77c036d06571d6cfb70648c9168e6f435da6d"
SIDE = 128


def png_decode(data):
    """Decode a non-interlaced 8-bit gray, gray+alpha, RGB or RGBA PNG.

    Returns (width, height, channels, rows) with rows a list of bytes.
    """
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc, = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(ctype + body) != crc:
            raise ValueError("bad CRC in %r" % ctype)
        if ctype == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif ctype == b"IDAT":
            idat.append(body)
        elif ctype == b"IEND":
            break
        pos += 12 + length
    w, h, depth, ctype, _, _, interlace = ihdr
    chans = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    if depth != 8 or chans is None or interlace:
        raise ValueError("unsupported PNG layout")
    raw = zlib.decompress(b"".join(idat))
    stride, bpp = w * chans, chans
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pr) & 255
            elif f != 0:
                raise ValueError("bad filter %d" % f)
        rows.append(bytes(line))
        prev = line
    return w, h, chans, rows


def to_gray(w, chans, rows):
    if chans <= 2:
        return [bytes(r[x * chans] for x in range(w)) for r in rows]
    return [bytes((299 * r[x * chans] + 587 * r[x * chans + 1] +
                   114 * r[x * chans + 2] + 500) // 1000 for x in range(w))
            for r in rows]


def box_reduce(w, h, gray, f):
    side = SIDE * f
    y0, x0 = (h - side) // 2, (w - side) // 2
    out = bytearray()
    for oy in range(SIDE):
        for ox in range(SIDE):
            s = 0
            for dy in range(f):
                row = gray[y0 + oy * f + dy]
                s += sum(row[x0 + ox * f:x0 + ox * f + f])
            out.append((s + f * f // 2) // (f * f))
    return bytes(out)


def png_encode(w, h, pixels):
    raw = b"".join(b"\0" + pixels[y * w:(y + 1) * w] for y in range(h))

    def chunk(t, body):
        return (struct.pack(">I", len(body)) + t + body +
                struct.pack(">I", zlib.crc32(t + body)))
    return (b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make-covers.py SKIMAGE_DATA_DIR")
    src = sys.argv[1]
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "..", "core", "covers")
    os.makedirs(out_dir, exist_ok=True)
    for name, (fname, f) in COVERS.items():
        with open(os.path.join(src, fname), "rb") as fp:
            w, h, chans, rows = png_decode(fp.read())
        pix = box_reduce(w, h, to_gray(w, chans, rows), f)
        digest = hashlib.sha256(pix).hexdigest()
        if name == "camera" and digest != CAMERA128_SHA256:
            sys.exit("camera128 hash mismatch: " + digest)
        with open(os.path.join(out_dir, name + "128.png"), "wb") as fp:
            fp.write(png_encode(SIDE, SIDE, pix))
        print("%-10s %s raw-sha256=%s" % (name + "128", fname, digest))


if __name__ == "__main__":
    main()
