#!/usr/bin/env python3
"""Writes a small media library for the demo: real files of the kinds Cloudify accepts.

Every file is a genuine instance of its format (a content sniffer such as PHP's finfo, or
cloudify-server's, recognises it): PNG images compressed with zlib, a GIF, a minimal but
valid PDF, a WAV of a tone, a UTF-8 text file and a CSV. About 200 KiB in all, spread over
a few folders whose names Cloudify accepts (letters, digits, spaces, "_" and "-").

The output is deterministic: the same bytes on every run and every machine.

Usage: make-sample-media.py DIR   (DIR is created; existing files in it are replaced)
Python 3 standard library only.
"""

import math
import os
import struct
import sys
import zlib


def png(width, height, pixel):
    """An 8-bit RGB PNG; pixel(x, y) returns (r, g, b)."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type: none
        for x in range(width):
            rows.extend(pixel(x, y))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def noise(x, y, seed):
    """A cheap deterministic hash in 0..255, to give images some texture."""
    h = (x * 374761393 + y * 668265263 + seed * 2147483647) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * 1274126177) & 0xFFFFFFFF
    return (h ^ (h >> 16)) & 0xFF


def sunset(x, y):
    """A sky gradient with a sun, a sea, and a little grain (so it does not compress to nothing)."""
    width, height = 320, 200
    grain = noise(x, y, 1) % 12
    dx, dy = x - width * 0.5, y - height * 0.55
    if dx * dx + dy * dy < 34 * 34 and y < height * 0.6:
        return (255, 214 - grain, 90 + grain)
    if y > height * 0.6:
        shade = 60 + (y - height * 0.6) * 0.8
        return (20 + grain, int(shade) // 2 + grain, int(shade) + 40)
    t = y / (height * 0.6)
    return (int(250 - 60 * t) - grain, int(120 + 60 * t) - grain, int(80 + 120 * t) + grain)


def tiles(x, y):
    """A checkerboard of colours."""
    palette = [(230, 57, 70), (241, 250, 238), (168, 218, 220), (69, 123, 157), (29, 53, 87)]
    r, g, b = palette[((x // 16) + (y // 16) * 3) % len(palette)]
    grain = noise(x, y, 2) % 8
    return (max(r - grain, 0), max(g - grain, 0), max(b - grain, 0))


def gif_one_colour(width, height, rgb):
    """A GIF89a of one colour, LZW-encoded with the clear/end codes a decoder expects."""
    header = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0)
    palette = bytes(rgb) + b"\x00\x00\x00"
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
    # LZW with minimum code size 2: clear is 4, end is 5. A clear before every two pixels
    # keeps the decoder's table below 8 entries, so every code stays 3 bits wide.
    codes = []
    count = width * height
    while count > 0:
        codes.append(4)
        for _ in range(min(count, 2)):
            codes.append(0)
        count -= min(count, 2)
    codes.append(5)
    bits, nbits, out = 0, 0, bytearray()
    for code in codes:
        bits |= code << nbits
        nbits += 3
        while nbits >= 8:
            out.append(bits & 0xFF)
            bits >>= 8
            nbits -= 8
    if nbits:
        out.append(bits & 0xFF)
    blocks = bytearray([2])
    for i in range(0, len(out), 255):
        part = out[i : i + 255]
        blocks.append(len(part))
        blocks.extend(part)
    blocks.append(0)
    return header + palette + image + bytes(blocks) + b"\x3b"


def pdf(lines):
    """A one-page PDF 1.4 with Helvetica text and a correct cross-reference table."""
    text = "BT /F1 14 Tf 72 740 Td 18 TL\n"
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        text += f"({escaped}) Tj T*\n"
    text += "ET\n"
    stream = text.encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"endstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def wav(seconds, rate, notes):
    """16-bit mono PCM: the given frequencies one after another, with a short fade each."""
    samples = bytearray()
    per_note = int(seconds * rate / len(notes))
    fade = rate // 50
    for freq in notes:
        for i in range(per_note):
            envelope = min(1.0, i / fade, (per_note - i) / fade)
            value = int(0.3 * 32767 * envelope * math.sin(2 * math.pi * freq * i / rate))
            samples += struct.pack("<h", value)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(samples)) + bytes(samples)
    return b"RIFF" + struct.pack("<I", len(body)) + body


README_TEXT = """\
Welcome to the cloudify-fs demo library.

Everything you see under this mount lives in a Cloudify media library served by
cloudify-server on 127.0.0.1. Folders are Cloudify folders, files are Cloudify files;
the bytes you read come over HTTP from the server's storage URLs.

Try:  ls -l, cat, cp a file out, file Photos/*, md5sum -c ...
"""

MENU_TEXT = """\
Café du Coin, menu of the day

Soupe à l'oignon ........ 6,50 €
Crêpe complète .......... 9,00 €
Crème brûlée ............ 5,50 €
"""


def csv_rows():
    lines = ["date,city,temperature_c,rain_mm"]
    cities = ["Lyon", "Porto", "Kraków", "Tromsø"]
    for day in range(1, 61):
        for n, city in enumerate(cities):
            temp = 12 + 8 * math.sin((day + n * 7) / 9.0) + (noise(day, n, 3) % 30) / 10
            rain = (noise(day, n, 4) % 90) / 10 if noise(day, n, 5) % 3 == 0 else 0.0
            lines.append(f"2026-{3 + (day - 1) // 30:02d}-{(day - 1) % 30 + 1:02d},{city},"
                         f"{temp:.1f},{rain:.1f}")
    return "\n".join(lines) + "\n"


def library():
    """Relative path -> bytes."""
    return {
        "README.txt": README_TEXT.encode(),
        "Photos/sunset.png": png(320, 200, sunset),
        "Photos/tiles.png": png(160, 160, tiles),
        "Photos/Icons/dot.gif": gif_one_colour(16, 16, (69, 123, 157)),
        "Documents/welcome.pdf": pdf(
            [
                "cloudify-fs demo",
                "",
                "This PDF is stored in a Cloudify media library and read",
                "through a FUSE mount, one ranged HTTP request at a time.",
            ]
        ),
        "Documents/weather.csv": csv_rows().encode(),
        "Documents/Café/menu.txt": MENU_TEXT.encode(),
        "Audio/tone.wav": wav(3.0, 22050, [440.0, 554.37, 659.25, 880.0]),
    }


def main():
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__.split("\n\n")[-2] + "\n")
        return 2
    root = sys.argv[1]
    total = 0
    for relative, data in library().items():
        path = os.path.join(root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as out:
            out.write(data)
        total += len(data)
    print(f"wrote {len(library())} files, {total // 1024} KiB, under {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
