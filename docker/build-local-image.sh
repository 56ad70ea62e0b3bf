#!/usr/bin/env bash
# Build the activesci simulator image with podman, pulling nothing from any image registry.
#
# Equivalent to docker/simulator.Dockerfile for `activesci simulate`, on Debian's own packages:
#   1. base: debootstrap a minimal bookworm root with python3, numpy and scipy, remove the
#      compiler toolchain that scipy's packaging pulls in, strip apt caches, docs and test
#      suites, and cache it as a tarball under ${XDG_CACHE_HOME:-~/.cache}/activesci (minutes,
#      once); it is imported as localhost/activesci-base:<recipe hash> (seconds).
#   2. image: one small layer on top with the activesci/ sources in /opt/activesci (found through
#      a .pth file), a dist-info for its version and a /usr/local/bin/activesci launcher (seconds).
# The tag is localhost/activesci-sim:<12 hex of sha256 over activesci/**/*.py and this script>;
# if it exists already nothing is built. The tag is the last line on stdout; logs go to stderr.
#
# Usage: docker/build-local-image.sh [--print-tag] [--force]
#   --print-tag  print the tag the current sources get, build nothing
#   --force      rebuild the image even if the tag exists (the cached base is reused; delete
#                the cache folder to debootstrap again)
# Environment: ACTIVESCI_DEBIAN_MIRROR overrides the mirror (default: the one apt uses here).
# Exit status: 0 built or present, 2 bad usage, 3 a missing requirement (root, podman,
# debootstrap), anything else a failed build.
set -euo pipefail

SUITE=bookworm
PACKAGES=python3,python3-numpy,python3-scipy
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPT="$REPO/docker/$(basename "${BASH_SOURCE[0]}")"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/activesci"

log() { echo "build-local-image: $*" >&2; }
die() { log "error: $1"; exit "${2:-1}"; }

force=0
print_tag=0
for arg in "$@"; do
    case $arg in
        --force) force=1 ;;
        --print-tag) print_tag=1 ;;
        -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SCRIPT"; exit 0 ;;
        *) die "unknown option '$arg' (expected --print-tag, --force or --help)" 2 ;;
    esac
done

source_hash() {
    (
        cd "$REPO"
        find activesci -type f -name '*.py' -not -path '*/__pycache__/*' -print0 |
            LC_ALL=C sort -z | xargs -0 sha256sum
        sha256sum docker/build-local-image.sh
    ) | sha256sum | cut -c1-12
}

TAG="localhost/activesci-sim:$(source_hash)"
if ((print_tag)); then
    echo "$TAG"
    exit 0
fi

INSTALL="apt-get install -y podman runc debootstrap"
[[ $(id -u) == 0 ]] || die "must run as root (debootstrap and the podman store): sudo $SCRIPT" 3
command -v podman >/dev/null || die "podman is not installed: $INSTALL" 3
if ((!force)) && podman image exists "$TAG"; then
    log "$TAG exists already (--force rebuilds it)"
    echo "$TAG"
    exit 0
fi

mirror=${ACTIVESCI_DEBIAN_MIRROR:-}
if [[ -z $mirror ]]; then
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v '^[[:space:]]*#' |
        grep -oE '(https?|file)://[^[:space:]]+' | grep -E '/debian/?$' | head -n1 || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}
# the base depends on its recipe only, not on the mirror it came from
base_key=$(echo "$SUITE minbase $PACKAGES strip-v2" | sha256sum | cut -c1-12)
base_tar="$CACHE/rootfs-$SUITE-$base_key.tar"
base_image="localhost/activesci-base:$base_key"

mkdir -p "$CACHE"
exec 9>"$CACHE/build.lock"
flock 9  # one build at a time: parallel test workers wait for the first one

tmp=$(mktemp -d "${TMPDIR:-/tmp}/activesci-image.XXXXXX")
cleanup() {
    # debootstrap mounts /proc, /sys, ... inside the root: unmount before deleting anything
    awk -v t="$tmp" 'index($2, t) == 1 {print $2}' /proc/mounts | sort -r |
        while read -r m; do umount -l "$m" || true; done
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT

if [[ ! -s $base_tar ]]; then
    command -v debootstrap >/dev/null ||
        die "debootstrap is not installed (needed once, for the base): $INSTALL" 3
    log "debootstrap $SUITE with $PACKAGES from $mirror (a few minutes, once)"
    root="$tmp/rootfs"
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$mirror" >&2
    # python3-scipy Depends on python3-pythran, a compiler that pulls g++, boost and python3-dev
    # (500 MB) and is never used at run time: swap it for an empty package, then let apt remove
    # all that only it (or a Recommends) keeps, leaving required packages + python3 + numpy/scipy
    log "removing the compiler toolchain that python3-pythran pulled in"
    mount --bind /dev "$root/dev"
    mount -t proc proc "$root/proc"
    mkdir -p "$root/tmp/pythran/DEBIAN"
    printf '%s\n' 'Package: python3-pythran' 'Version: 99:0+activesci' 'Architecture: all' \
        'Maintainer: activesci <activesci@localhost>' \
        'Description: empty stand-in for pythran, a compiler scipy does not need to run' \
        >"$root/tmp/pythran/DEBIAN/control"
    chroot "$root" sh -ec '
        dpkg-deb --build /tmp/pythran /tmp/pythran.deb >/dev/null
        dpkg -i /tmp/pythran.deb >/dev/null
        dpkg-query -W -f "\${Package} \${Priority}\n" | awk "\$2 != \"required\" {print \$1}" |
            xargs apt-mark auto >/dev/null
        apt-mark manual python3 python3-numpy python3-scipy python3-pythran >/dev/null
        apt-get -y -q --purge -o APT::AutoRemove::RecommendsImportant=false \
            -o APT::AutoRemove::SuggestsImportant=false autoremove' >&2
    umount "$root/proc" "$root/dev"
    rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/log/* \
        "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
        "$root"/usr/share/locale/* "$root"/tmp/*
    find "$root"/usr/lib/python3/dist-packages/numpy "$root"/usr/lib/python3/dist-packages/scipy \
        -depth -type d -name tests -exec rm -rf {} +
    tar -C "$root" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
        -cf "$base_tar.part" .
    mv "$base_tar.part" "$base_tar"
    log "cached the base root in $base_tar ($(du -h "$base_tar" | cut -f1))"
fi
if ! podman image exists "$base_image"; then
    podman import --message "debootstrap $SUITE minbase + $PACKAGES" "$base_tar" "$base_image" >&2
fi

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO/pyproject.toml" | head -n1)
ctx="$tmp/context"
overlay="$ctx/overlay"
mkdir -p "$overlay/opt/activesci/activesci-${version:-0.0.0}.dist-info" \
    "$overlay/usr/lib/python3/dist-packages" "$overlay/usr/local/bin" "$overlay/work"
(cd "$REPO" && find activesci -name '*.py' -not -path '*/__pycache__/*' -print0 |
    tar --null -T - -cf -) | tar -C "$overlay/opt/activesci" -xf -
cp "$REPO/activesci/py.typed" "$overlay/opt/activesci/activesci/"
printf 'Metadata-Version: 2.1\nName: activesci\nVersion: %s\n' "${version:-0.0.0}" \
    >"$overlay/opt/activesci/activesci-${version:-0.0.0}.dist-info/METADATA"
echo /opt/activesci >"$overlay/usr/lib/python3/dist-packages/activesci.pth"
printf '#!/bin/sh\nexec python3 -m activesci.cli "$@"\n' >"$overlay/usr/local/bin/activesci"
chmod -R a+rX,go-w "$overlay"
chmod 755 "$overlay/usr/local/bin/activesci"
cat >"$ctx/Containerfile" <<EOF
FROM $base_image
COPY overlay/ /
ENV PYTHONDONTWRITEBYTECODE=1
WORKDIR /work
ENTRYPOINT ["activesci", "simulate"]
LABEL org.opencontainers.image.title="activesci simulator" activesci.sources="${TAG##*:}"
EOF
log "building $TAG on $base_image"
podman build --pull=never --layers=false --network=none -f "$ctx/Containerfile" -t "$TAG" "$ctx" >&2
echo "$TAG"
