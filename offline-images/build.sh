#!/usr/bin/env bash
# Build local stand-ins for the official python, nginx and redis images from Debian packages, for
# machines with no container registry (air-gapped labs, and CI here). Needs root and debootstrap.
#   offline-images/build.sh            build what is missing
#   FORCE=1 offline-images/build.sh    rebuild everything
# Writes image tags to offline-images/offline.env, which `make` reads to select these images.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base=${OFFLINE_BASE_IMAGE:-session-lab/bookworm:offline}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
ca_bundle=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

have() { [ -z "${FORCE:-}" ] && docker image inspect "$1" >/dev/null 2>&1; }
step() { printf '\n==> %s\n' "$*"; }

command -v docker >/dev/null || { echo "docker is not installed" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "the Docker engine is not running (docker info failed)" >&2; exit 1; }
[ -f "$ca_bundle" ] || { echo "CA bundle $ca_bundle not found (set CA_BUNDLE)" >&2; exit 1; }

if have "$base"; then
    step "base image $base exists"
else
    command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install -y debootstrap" >&2; exit 1; }
    [ "$(id -u)" = 0 ] || { echo "debootstrap needs root" >&2; exit 1; }
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs"' EXIT
    step "debootstrap bookworm minbase into $rootfs (about 40 s)"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" > "$rootfs.log" 2>&1 \
        || { tail -20 "$rootfs.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    step "import as $base"
    tar -C "$rootfs" -c . | docker import - "$base" >/dev/null
    rm -f "$rootfs.log"
fi

# The machine's CA bundle goes into every stand-in, so apt and pip inside `docker build` trust whatever
# the machine trusts (a TLS-inspecting proxy, say).
ctx=$(mktemp -d)
trap 'rm -rf "$ctx" ${rootfs:+"$rootfs"}' EXIT
cp "$ca_bundle" "$ctx/ca-certificates.crt"
for kind in python nginx redis; do
    tag="session-lab/$kind:offline"
    if have "$tag"; then step "$tag exists"; continue; fi
    step "build $tag"
    cp "$here/$kind.Dockerfile" "$ctx/Dockerfile"
    docker build --quiet --build-arg "BASE=$base" -t "$tag" "$ctx" >/dev/null
done

cat > "$here/offline.env" <<ENV
# Written by offline-images/build.sh: select the local stand-ins instead of the official images.
PYTHON_IMAGE=session-lab/python:offline
NGINX_IMAGE=session-lab/nginx:offline
REDIS_IMAGE=session-lab/redis:offline
ENV
step "done: images selected in offline-images/offline.env"
