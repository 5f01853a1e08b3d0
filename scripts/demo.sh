#!/usr/bin/env bash
# A Cloudify media library mounted at ./mnt in one command.
#
# Installs what is missing (fuse3, a C compiler, python3, curl; Debian/Ubuntu packages), builds
# cloudify-fs and cloudify-server in release mode, starts cloudify-server on 127.0.0.1 with a
# small library of real media files, and mounts it at ./mnt. Ctrl-C unmounts and stops the
# server. Everything the demo keeps lives in .demo/ (data folder, key, logs); the library
# survives between runs, so changes made through the mount are still there next time, and
# the previous run's logs are kept as mount.log.1 and server.log.1.
#
#   scripts/demo.sh            mount and wait for Ctrl-C
#   scripts/demo.sh --check    on a fresh library of its own (.demo/check): mount, list, read
#                              and compare every file, cp in, rm, mkdir, rmdir, unmount; exit 0/1
#   scripts/demo.sh --reset    forget the library (.demo/data) first, then run as usual
set -euo pipefail

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

check_mode=0
reset=0
for arg in "$@"; do
    case "$arg" in
        --check) check_mode=1 ;;
        --reset) reset=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "demo: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO=$ROOT/.demo
MEDIA=$DEMO/media
KEY_FILE=$DEMO/key
if [ $check_mode -eq 1 ]; then
    # --check works on a fresh library of its own, beside (never instead of) a running demo.
    RUN=$DEMO/check
    MNT=$RUN/mnt
else
    RUN=$DEMO
    MNT=$ROOT/mnt
fi
DATA=$RUN/data
CACHE=$RUN/cache
# A CARGO_TARGET_DIR from the environment is honoured (relative to the project).
TARGET=${CARGO_TARGET_DIR:-target}
case "$TARGET" in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
SERVER_BIN=$TARGET/release/cloudify-server
FS_BIN=$TARGET/release/cloudify-fs

if [ -t 1 ]; then
    say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
else
    say() { printf '==> %s\n' "$*"; }
fi
fail() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

started=$(now)

# --- 1. What the build and the mount need -----------------------------------------------

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        fail "need root to run: $* (run as root, or install sudo)"
    fi
}

missing=()
command -v fusermount3 >/dev/null 2>&1 || missing+=(fuse3)
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 ||
        fail "please install: ${missing[*]} (no apt-get on this system)"
    say "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    # `sudo` resets PATH; the invoking user's rustup install is the usual place.
    for candidate in "$HOME/.cargo/bin" "${SUDO_USER:+$(getent passwd "$SUDO_USER" | cut -d: -f6)/.cargo/bin}"; do
        if [ -n "$candidate" ] && [ -x "$candidate/cargo" ]; then
            PATH="$candidate:$PATH"
            break
        fi
    done
fi
command -v cargo >/dev/null 2>&1 || fail "cargo (Rust) is not installed. Install it with
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh
then open a new shell (or run: . \"\$HOME/.cargo/env\") and run scripts/demo.sh again.
If Rust is installed for your user, run this script as that user: it uses sudo only to install packages."

[ -e /dev/fuse ] || fail "/dev/fuse is missing: load the module (modprobe fuse) or, in a
container, start it with --device /dev/fuse --cap-add SYS_ADMIN"
if [ "$(id -u)" -ne 0 ] && { ! [ -r /dev/fuse ] || ! [ -w /dev/fuse ]; }; then
    fail "/dev/fuse is not readable and writable by $(id -un) (ls -l /dev/fuse; it is normally mode 0666)"
fi

# --- 2. Build ------------------------------------------------------------------------------

say "building (cargo build --release; the first build takes about 5-10 minutes on 2 cores)"
build_started=$(now)
build=(cargo build --release --bins)
invoker=""
if [ "$(id -u)" -eq 0 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    invoker=$SUDO_USER
fi
if [ -n "$invoker" ] && sudo -u "$invoker" -H env "PATH=$PATH" cargo --version >/dev/null 2>&1; then
    # Run with sudo: build as the user who ran it, so that target/ stays theirs.
    build=(sudo -u "$invoker" -H env "PATH=$PATH" "CARGO_TARGET_DIR=$TARGET" "${build[@]}")
fi
CARGO_TARGET_DIR=$TARGET "${build[@]}"
echo "    built in $(since "$build_started")"

# --- 3. Leftovers of an earlier run --------------------------------------------------------

# Whether something (possibly a dead FUSE mount) is mounted at $1, per mountinfo.
is_mounted() {
    awk -v dir="$1" '{ gsub(/\\040/, " ", $5); if ($5 == dir) found = 1 } END { exit !found }' \
        /proc/self/mountinfo
}

# unmount DIR [lazy]: fusermount3 works for every user; root can do without it.
unmount() {
    if command -v fusermount3 >/dev/null 2>&1; then
        fusermount3 "-u${2:+z}" "$1"
    elif [ -n "${2:-}" ]; then
        umount -l "$1"
    else
        umount "$1"
    fi
}

# Whether process $1 is still running (a zombie child that was not yet reaped is not).
alive() {
    kill -0 "$1" 2>/dev/null || return 1
    [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]
}

stop_pid_file() {
    local file=$1 name=$2 pid
    [ -f "$file" ] || return 0
    pid=$(cat "$file")
    rm -f "$file"
    # Only a process that still runs our binary (the number may have been reused); a
    # rebuilt binary shows as "PATH (deleted)".
    case "$(readlink "/proc/$pid/exe" 2>/dev/null)" in
        "$3" | "$3 (deleted)") ;;
        *) return 0 ;;
    esac
    if [ -n "$pid" ]; then
        echo "    stopping the $name of an earlier run (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        wait_gone "$pid" 20 || kill -KILL "$pid" 2>/dev/null || true
    fi
}

# Waits up to $2 seconds for process $1 to end; fails if it is still there.
wait_gone() {
    local pid=$1 deadline=$(($(date +%s) + $2))
    while alive "$pid"; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

# Another demo of the same kind still running owns the mount and the server: leave it be.
if [ -f "$RUN/demo.pid" ]; then
    other=$(cat "$RUN/demo.pid")
    if [ "$other" != $$ ] && alive "$other" &&
        tr '\0' ' ' <"/proc/$other/cmdline" 2>/dev/null | grep -q 'demo\.sh'; then
        fail "a demo is already running (pid $other); stop it with Ctrl-C in its terminal"
    fi
fi

# A mount whose process died answers "Transport endpoint is not connected" to everything,
# mkdir included: clear it first.
if is_mounted "$MNT"; then
    echo "    clearing a mount left at $MNT by an earlier run"
    unmount "$MNT" 2>/dev/null || unmount "$MNT" lazy 2>/dev/null ||
        fail "cannot unmount $MNT; close what uses it and run: fusermount3 -uz $MNT"
fi
mkdir -p "$DEMO" "$RUN" "$MNT"
echo $$ >"$RUN/demo.pid"
stop_pid_file "$RUN/mount.pid" "mount" "$FS_BIN"
stop_pid_file "$RUN/server.pid" "server" "$SERVER_BIN"
if [ $reset -eq 1 ] || [ $check_mode -eq 1 ]; then
    [ $check_mode -eq 1 ] || echo "    --reset: removing the demo library $DATA"
    rm -rf "$DATA" "$CACHE"
fi
# The mount keeps its size cache and staged uploads here: private.
mkdir -p "$CACHE"
chmod 700 "$CACHE"

# --- 4. Library, key -----------------------------------------------------------------------

if [ ! -d "$MEDIA" ]; then
    python3 "$ROOT/scripts/make-sample-media.py" "$MEDIA" | sed 's/^/    /'
fi
if [ ! -s "$KEY_FILE" ]; then
    # 40 upper-case hex digits, the shape of a key Cloudify generates.
    (umask 077 && od -An -N20 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F >"$KEY_FILE" &&
        echo >>"$KEY_FILE")
fi
chmod 600 "$KEY_FILE"

# --- 5. Server, mount, and their clean end ---------------------------------------------------

# Keeps the previous run's log as LOG.1, so a problem seen last time can still be read.
rotate_log() {
    [ ! -s "$1" ] || mv -f "$1" "$1.1"
}
rotate_log "$RUN/server.log"
rotate_log "$RUN/mount.log"

server_pid=""
mount_pid=""

cleanup() {
    local status=$?
    trap - INT TERM EXIT
    echo
    if is_mounted "$MNT"; then
        say "unmounting $MNT"
        if ! unmount "$MNT" 2>/dev/null; then
            echo "    $MNT is busy (a shell or program is using it); detaching it lazily"
            unmount "$MNT" lazy 2>/dev/null || true
        fi
    fi
    if [ -n "$mount_pid" ]; then
        wait_gone "$mount_pid" 30 || kill -KILL "$mount_pid" 2>/dev/null || true
        wait "$mount_pid" 2>/dev/null || true
    fi
    if [ -n "$server_pid" ] && alive "$server_pid"; then
        say "stopping cloudify-server"
        kill -TERM "$server_pid" 2>/dev/null || true
        wait_gone "$server_pid" 30 || kill -KILL "$server_pid" 2>/dev/null || true
    fi
    [ -z "$server_pid" ] || wait "$server_pid" 2>/dev/null || true
    rm -f "$RUN/mount.pid" "$RUN/server.pid" "$RUN/demo.pid"
    [ $check_mode -eq 0 ] || rm -rf "$DATA" "$CACHE"
    [ $check_mode -eq 1 ] || echo "    done; the library is kept in $DATA (scripts/demo.sh --reset forgets it)"
    exit "$status"
}
trap cleanup EXIT
# Ctrl-C is the normal way to end the demo: exit 0 after cleaning up (130 in --check).
trap 'exit $((check_mode ? 130 : 0))' INT
trap 'exit 143' TERM

say "starting cloudify-server"
: >"$RUN/server.out"
# setsid: Ctrl-C reaches this script only, which then stops things in the right order.
setsid "$SERVER_BIN" --listen 127.0.0.1:0 --data "$DATA" --keys-file "$KEY_FILE" \
    --import "$MEDIA" >"$RUN/server.out" 2>"$RUN/server.log" </dev/null &
server_pid=$!
echo "$server_pid" >"$RUN/server.pid"

url=""
deadline=$(($(date +%s) + 60))
while [ -z "$url" ]; do
    url=$(sed -n 's/^listening on \(http[^ ]*\).*/\1/p' "$RUN/server.out" | head -n1)
    [ -n "$url" ] && break
    alive "$server_pid" || {
        tail -n 20 "$RUN/server.log" >&2
        fail "cloudify-server ended before it was ready (log: $RUN/server.log)"
    }
    [ "$(date +%s)" -lt "$deadline" ] || fail "cloudify-server did not start within 60s"
    sleep 0.1
done
echo "    $url (log: ${RUN#"$ROOT"/}/server.log)"
grep -E 'imported|skipped' "$RUN/server.log" | sed 's/^.*\] */    /' || true

say "mounting $url at ${MNT#"$ROOT"/}"
mount_started=$(now)
mount_options=()
if [ -n "$invoker" ]; then
    # Run with sudo: let the user who ran it into the mount, as the owner of its files.
    mount_options=(--allow-other --uid "$(id -u "$invoker")" --gid "$(id -g "$invoker")")
fi
# Deleting for good keeps the demo free of a surprise of Cloudify's trash: a trashed file
# keeps its name taken, so copying it in again would store it as NAME-1.
setsid "$FS_BIN" mount "$url" "$MNT" --api-key-file "$KEY_FILE" --cache-dir "$CACHE" \
    --delete-mode permanent "${mount_options[@]}" </dev/null >"$RUN/mount.log" 2>&1 &
mount_pid=$!
echo "$mount_pid" >"$RUN/mount.pid"

deadline=$(($(date +%s) + 60))
until is_mounted "$MNT"; do
    alive "$mount_pid" || {
        mount_pid=""
        tail -n 20 "$RUN/mount.log" >&2
        fail "cloudify-fs ended before the mount was ready (log: $RUN/mount.log)"
    }
    [ "$(date +%s)" -lt "$deadline" ] || fail "the mount did not appear within 60s"
    sleep 0.1
done
echo "    mounted in $(since "$mount_started") (log: ${RUN#"$ROOT"/}/mount.log)"

# --- 6a. --check: list, read, compare, write, leave --------------------------------------------

# The changes a user tries first: cp in (read back identical), rm, mkdir, rmdir. Prints
# what fails; returns non-zero if anything did.
check_writes() {
    local copy="$MNT/Documents/weather copy.csv" folder="$MNT/Check 1" ok=0
    cp "$MEDIA/Documents/weather.csv" "$copy" || ok=1
    if [ $ok -eq 0 ] && ! cmp -s "$MEDIA/Documents/weather.csv" "$copy"; then
        echo "    FAIL: a file copied in reads back different" >&2
        ok=1
    fi
    rm "$copy" || ok=1
    if [ -e "$copy" ]; then
        echo "    FAIL: a removed file is still listed" >&2
        ok=1
    fi
    mkdir "$folder" || ok=1
    rmdir "$folder" || ok=1
    if [ -e "$folder" ]; then
        echo "    FAIL: a removed folder is still listed" >&2
        ok=1
    fi
    return $ok
}

if [ $check_mode -eq 1 ]; then
    say "checking the mount"
    check_started=$(now)
    ls -l "$MNT"
    listed=$(cd "$MNT" && find . -type f | sort)
    count=$(printf '%s\n' "$listed" | grep -c . || true)
    [ "$count" -gt 0 ] || fail "the mount shows no files"
    bad=0
    compared=0
    while IFS= read -r file; do
        if ! cat "$MNT/$file" >/dev/null; then
            echo "    FAIL: cannot read $file" >&2
            bad=1
        elif [ -f "$MEDIA/$file" ]; then
            if cmp -s "$MEDIA/$file" "$MNT/$file"; then
                compared=$((compared + 1))
            else
                echo "    FAIL: $file differs from $MEDIA/$file" >&2
                bad=1
            fi
        fi
    done <<<"$listed"
    [ "$compared" -gt 0 ] || { echo "    FAIL: none of the sample files is in the library" >&2; bad=1; }
    echo "    $count files listed and read, $compared identical to the sample media" \
        "($(since "$check_started"))"
    write_started=$(now)
    if check_writes; then
        echo "    cp in, read back, rm, mkdir, rmdir: fine ($(since "$write_started"))"
    else
        bad=1
    fi
    if [ $bad -ne 0 ]; then
        echo "    mount log: $RUN/mount.log" >&2
        exit 1
    fi
    say "check passed in $(since "$started") in all"
    exit 0
fi

# --- 6b. Interactive: say what to try, wait for Ctrl-C -----------------------------------------

cat <<EOF

  A Cloudify media library is mounted at ./mnt (served by cloudify-server at $url).
  Try, in another terminal, from $ROOT:

    ls -l mnt                          folders and files, with exact sizes and dates
    find mnt -type f                   the whole tree
    cat mnt/README.txt                 read a file (bytes come over HTTP, Range requests)
    cp mnt/Photos/sunset.png /tmp/     copy a file out
    cp /etc/os-release mnt/Documents/os-release.txt   copy a file in (uploaded at close)
    rm mnt/Documents/os-release.txt    delete it (for good: this demo mounts with
                                       --delete-mode permanent; the default is Cloudify's trash)
    mkdir -p mnt/Videos                make a folder (names: letters, digits, space, - and _)
    rmdir mnt/Videos                   and remove it again

  Cloudify stores only known types (images, PDF, office files, audio, video, .txt, .csv,
  ...) and no empty files: cp of anything else fails with "Operation not permitted".
  The mount's log is .demo/mount.log; the server's request log is .demo/server.log (the
  previous run's: mount.log.1, server.log.1).
  Key: .demo/key (for curl: -H "X-API-KEY: \$(cat .demo/key)" -H "Accept: application/json"
  $url/api/v1/media/folders).

  Press Ctrl-C here to unmount and stop the server.

EOF

# wait returns when the mount ends on its own (e.g. fusermount3 -u mnt) or when a trapped
# signal arrives; either way the EXIT trap cleans up.
wait "$mount_pid" || true
mount_pid=""
echo "    the mount ended (see .demo/mount.log)"
