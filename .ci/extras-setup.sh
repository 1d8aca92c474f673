#!/bin/sh
# What CI adds to `make setup` so that no test of an optional part is skipped there:
#   - PyTorch for rerinv.torch: the CPU build of torch 2.13.0, pinned (a plain `torch` on Linux
#     is a multi-GB CUDA build; machines of the CI's kind carry the 2.13.0 CPU file, which pip
#     takes for this exact pin); then the `torch` extra.
#   - Debian's chromium for the headless-browser layout test of the timing report.
# Each step is a no-op when already there. Usage: sh .ci/extras-setup.sh   (root, or sudo)
set -u
BIN=${BIN:-.venv/bin}
status=0

if ! "$BIN/python" -c 'import torch' >/dev/null 2>&1; then
    echo "extras-setup: installing torch==2.13.0 and the torch extra"
    "$BIN/pip" install -q 'torch==2.13.0' && "$BIN/pip" install -q -e '.[dev,torch]' || status=1
fi

if ! command -v chromium >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "extras-setup: installing Debian's chromium (headless layout test)"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null ||
        { $SUDO apt-get update -q >/dev/null &&
          $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } ||
        status=1
fi
[ "$status" = 0 ] || echo "extras-setup: failed (see above)" >&2
exit "$status"
