#!/usr/bin/env python3
"""Random 4 KiB reads: `randread.py FILE OFFSETS [SOURCE]` preads 4 KiB at each offset listed
(one a line) in FILE, one after the other; with SOURCE, compares every read with it."""

import os
import sys


def main():
    path, offsets_file = sys.argv[1], sys.argv[2]
    source = sys.argv[3] if len(sys.argv) > 3 else None
    with open(offsets_file) as f:
        offsets = [int(line) for line in f if line.strip()]
    fd = os.open(path, os.O_RDONLY)
    src = os.open(source, os.O_RDONLY) if source else None
    try:
        for off in offsets:
            got = os.pread(fd, 4096, off)
            if src is not None and got != os.pread(src, 4096, off):
                sys.exit(f"randread: wrong bytes at offset {off}")
    finally:
        os.close(fd)
        if src is not None:
            os.close(src)


if __name__ == "__main__":
    main()
