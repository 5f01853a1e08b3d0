#!/usr/bin/env bash
# The one test command: installs what the tests need, then runs formatting, lint and every
# unit and integration test. `.ci/run` calls this; so does a developer.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v fusermount3 >/dev/null 2>&1 || need_pkgs+=(fuse3)
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)
command -v python3 >/dev/null 2>&1 || need_pkgs+=(python3)
# The end-to-end tool tests (tests/tools_*.rs) run these against a mount.
command -v rsync >/dev/null 2>&1 || need_pkgs+=(rsync)
command -v restic >/dev/null 2>&1 || need_pkgs+=(restic)
command -v gio >/dev/null 2>&1 || need_pkgs+=(libglib2.0-bin)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    echo "installing: ${need_pkgs[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_pkgs[@]}"
fi
if [ ! -e /dev/fuse ]; then
    echo "error: /dev/fuse is missing; the mount tests need the fuse kernel module" >&2
    exit 1
fi

command -v cargo >/dev/null 2>&1 || { echo "error: cargo is not installed (https://rustup.rs)" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy || true

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
# Mount tests are I/O bound; a few at a time keeps a 2-core machine responsive.
cargo test --all-targets -- --test-threads="${TEST_THREADS:-4}"
