#!/bin/sh
# Make sure ngspice >= 42 and its shared library (libngspice.so.0) are installed.
#
# A no-op (no apt-get, no output) when a good ngspice is already there. Otherwise, on Debian 12
# (bookworm, whose own ngspice is 39) it adds the bookworm-backports source and installs
# ngspice + libngspice0 from it; elsewhere it installs the system's packages when ngspice is
# missing. An old but working ngspice is kept with a one-line note (rerinv works, but the fast
# KLU path needs >= 42). Fails only when no ngspice (binary and library) is left in the end.
#
# Usage: sh .ci/ngspice-setup.sh          (root, or a user with sudo)
set -u

MIN=42
ROOT=${NGSPICE_SETUP_ROOT:-}  # tests only: prefix for /etc and /usr/lib
BACKPORTS_FILE=$ROOT/etc/apt/sources.list.d/bookworm-backports.sources

# Major version from `ngspice --version` ("** ngspice-46 : Circuit level ..."), empty if none.
ngspice_major() {
    command -v ngspice >/dev/null 2>&1 || return 0
    ngspice --version 2>/dev/null | sed -n 's/.*ngspice-\([0-9][0-9]*\).*/\1/p' | head -n 1
}

# The library rerinv loads (see rerinv.engines.ngspice.find_ngspice_library).
have_library() {
    [ -n "${NGSPICE_LIBRARY_PATH:-}" ] && [ -e "$NGSPICE_LIBRARY_PATH" ] && return 0
    for lib in "$ROOT"/usr/local/lib/libngspice.so* "$ROOT"/usr/local/lib/*/libngspice.so* \
        "$ROOT"/usr/lib/libngspice.so* "$ROOT"/usr/lib/*/libngspice.so*; do
        [ -e "$lib" ] && return 0
    done
    [ -z "$ROOT" ] && ldconfig -p 2>/dev/null | grep -q 'libngspice\.so'
}

# Debian's libngspice0 must not lag behind the binary (dpkg-installed case only).
library_major_ok() {
    command -v dpkg-query >/dev/null 2>&1 || return 0
    v=$(dpkg-query -W -f '${db:Status-Abbrev}${Version}' libngspice0 2>/dev/null) || return 0
    case $v in ii*) v=${v#ii }; v=${v# } ;; *) return 0 ;; esac
    v=${v#*:}
    v=${v%%[!0-9]*}
    [ -z "$v" ] || [ "$v" -ge "$MIN" ]
}

good() {
    major=$(ngspice_major)
    [ -n "$major" ] && [ "$major" -ge "$MIN" ] && have_library && library_major_ok
}

usable() {
    [ -n "$(ngspice_major)" ] && have_library
}

good && exit 0

SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else SUDO=none; fi
fi
apt_get() {
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get "$@"
}

# The machine's own Debian mirror: the URI of the configured source that serves bookworm itself
# (deb822 .sources stanzas first, then one-line .list entries). Backports come from the same one.
debian_mirror() {
    for f in "$ROOT"/etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] && awk '
            /^[[:space:]]*$/ { if (ours && uri) exit; ours = 0; uri = ""; next }
            /^URIs:/ { uri = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") ours = 1 }
            END { if (ours && uri) print uri }' "$f"
    done
    for f in "$ROOT/etc/apt/sources.list" "$ROOT"/etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] && sed -n 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\([^[:space:]]\{1,\}\)[[:space:]]\{1,\}bookworm[[:space:]].*/\2/p' "$f"
    done
}

codename=""
[ -r "$ROOT/etc/os-release" ] && codename=$(. "$ROOT/etc/os-release" && echo "${VERSION_CODENAME:-}")

if [ "$SUDO" = none ]; then
    echo "ngspice-setup: not root and no sudo: cannot install ngspice with apt-get" >&2
elif ! command -v apt-get >/dev/null 2>&1; then
    echo "ngspice-setup: no apt-get on this system: install ngspice >= $MIN by hand" >&2
elif [ "$codename" = bookworm ]; then
    echo "ngspice-setup: installing ngspice >= $MIN and libngspice0 from bookworm-backports"
    added=""
    mirror=$(debian_mirror | head -n 1)
    if grep -rqs 'bookworm-backports' "$ROOT/etc/apt/sources.list" "$ROOT/etc/apt/sources.list.d/"; then
        :
    elif [ -z "$mirror" ]; then
        echo "ngspice-setup: no configured apt source serves bookworm: add bookworm-backports by hand" >&2
    else
        printf '%s\n' \
            'Types: deb' \
            "URIs: $mirror" \
            'Suites: bookworm-backports' \
            'Components: main' \
            'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' |
            $SUDO tee "$BACKPORTS_FILE" >/dev/null && added=yes
    fi
    if ! { apt_get update && apt_get install -y -t bookworm-backports ngspice libngspice0; }; then
        echo "ngspice-setup: bookworm-backports install failed" >&2
        if [ -n "$added" ]; then  # do not leave an unreachable source behind
            $SUDO rm -f "$BACKPORTS_FILE"
            apt_get update || true
        fi
        usable || apt_get install -y ngspice libngspice0
    fi
else
    # Other Debian releases / Ubuntu: their own packages (trixie and later ship >= 42).
    usable || { apt_get update && apt_get install -y ngspice libngspice0; }
fi

good && exit 0
if usable; then
    echo "ngspice-setup: using ngspice $(ngspice_major); rerinv's fast KLU path needs ngspice >= $MIN" \
        "(Debian 12: apt-get install -t bookworm-backports ngspice libngspice0)"
    exit 0
fi
echo "ngspice-setup: ngspice and libngspice.so are required; install ngspice >= $MIN" \
    "(Debian: apt-get install ngspice libngspice0, on Debian 12 from bookworm-backports)" >&2
exit 1
