#!/usr/bin/env bash
# Side-by-side benchmark: a cloudify-fs mount against curl talking to the same cloudify-server.
#
# Builds cloudify-fs and cloudify-server in release mode, starts cloudify-server on 127.0.0.1
# with a generated library (kept under target/bench-data and reused between runs), and times
# each case through the mount and with curl, on plain loopback and with the server standing in
# for a distant one (--latency 20ms --bandwidth 50Mi, per connection). Prints a table and
# writes target/bench.json. Ctrl-C unmounts and stops the server.
#
#   scripts/bench.sh                      every case, full sizes (1 GiB file, 10,000 files)
#   scripts/bench.sh --quick              smaller sizes (256 MiB, 2,000 files): a quick try
#   scripts/bench.sh --cases 1,2 --env distant
#   scripts/bench.sh --help               all options
#
# Cases: 1 sequential read, 2 random 4 KiB reads, 3 listing 10,000 files, 4 writing a large
# file, 5 writing 1,000 small files, 6 find and stat over 100 folders of 100 files, 7 the
# mount's memory after listing 100,000 entries (peak memory is also taken in 1 and 3).
# A CARGO_TARGET_DIR from the environment is honoured (relative to the project).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
TARGET=${CARGO_TARGET_DIR:-target}
case "$TARGET" in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac

for arg in "$@"; do
    case "$arg" in
        -h | --help)
            sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
            echo
            exec python3 "$ROOT/scripts/bench/run.py" --help
            ;;
    esac
done

for tool in python3 curl fusermount3 cargo; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench: $tool is needed" >&2; exit 1; }
done

echo "==> building (cargo build --release --bins)"
cargo build --release --bins --quiet

# One run at a time: runs share the data set, its mount point and the machine's cores.
mkdir -p "$ROOT/target/bench-data"
exec 9>"$ROOT/target/bench-data/.lock"
if ! flock -n 9; then
    echo "==> another bench run holds target/bench-data; waiting for it"
    flock 9
fi

# exec: Ctrl-C then reaches the driver, which unmounts and stops the server on its way out.
exec python3 "$ROOT/scripts/bench/run.py" --bin-dir "$TARGET/release" \
    --data-dir "$ROOT/target/bench-data" --json "$ROOT/target/bench.json" "$@"
