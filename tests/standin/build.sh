#!/usr/bin/env bash
# Build the stand-in cluster image (a TEST DOUBLE for pingcap/pd, tikv, tidb).
#
#   base : debootstrap bookworm (Debian packages only) -> `docker import`
#          as tidb-standin-base:<hash of the package list>
#   final: base + the stand-in programs (tests/standin/image/) with entry points
#          at the real images' paths /pd-server, /tikv-server, /tidb-server,
#          tagged tidb-standin:<content hash> and tidb-standin:latest.
#
# The base also serves as the fault helper image (iptables, iproute2/tc, nsenter).
# Idempotent: each stage is skipped when an image with its hash exists.
# Prints the final image reference on stdout; progress goes to stderr.
#
#   build.sh --version v7.5.0   also tags tidb-standin:<hash>-v7.5.0: the same image with
#                               STANDIN_VERSION set, so the release a container plays
#                               travels in its image tag (one tag per --tidb-version).
set -euo pipefail
release=""
if [ "${1:-}" = "--version" ]; then
  release=${2:?"--version needs a value such as v8.5.7"}
  case "$release" in
    *[!A-Za-z0-9._-]*) echo "standin-build: bad --version '$release'" >&2; exit 2 ;;
  esac
fi
here=$(cd "$(dirname "$0")" && pwd)
log() { echo "standin-build: $*" >&2; }

# One build at a time on this machine (parallel sessions / xdist workers call this too).
if command -v flock >/dev/null 2>&1; then
  exec 9>"${TMPDIR:-/tmp}/tidb-standin-build.lock"
  flock -w 900 9 || { log "another build holds the lock for 15 minutes; giving up"; exit 1; }
fi

PACKAGES="etcd-server,python3,iptables,iproute2,util-linux,procps"
SUITE=bookworm

# The mirror this machine's apt already uses (never hard-coded here).
mirror=${STANDIN_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | grep -v -- '-security' | grep -oE '(https?|file)://[^ ]+/debian/?' | head -n1 || true)
fi
[ -n "$mirror" ] || { log "cannot find a Debian mirror in /etc/apt; set STANDIN_DEBIAN_MIRROR"; exit 1; }

base_hash=$(printf '%s|%s|v1' "$PACKAGES" "$SUITE" | sha256sum | cut -c1-12)
base="tidb-standin-base:$base_hash"
if ! docker image inspect "$base" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null 2>&1 || {
    log "installing debootstrap"; apt-get install -y -q debootstrap >/dev/null; }
  root=$(mktemp -d /var/tmp/tidb-standin-rootfs.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  log "debootstrap $SUITE ($PACKAGES) from the local apt mirror"
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$mirror" >&2
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  log "docker import -> $base"
  tar -C "$root" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'LABEL org.pytest-tidb-ha.standin=base' - "$base" >/dev/null
  rm -rf "$root"; trap - EXIT
fi
docker tag "$base" tidb-standin-base:latest

# Final image: content hash of the stand-in programs + the base.
content_hash=$( (echo "$base_hash"; cd "$here/image" && find . -type f ! -name '*.pyc' ! -path '*__pycache__*' -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-12)
final="tidb-standin:$content_hash"
if ! docker image inspect "$final" >/dev/null 2>&1; then
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  cp -r "$here/image" "$ctx/standin"
  find "$ctx/standin" -name '__pycache__' -prune -exec rm -rf {} +
  mkdir "$ctx/bin"
  for c in pd tikv tidb; do  # entry points at the real images' paths
    printf '#!/bin/sh\nexec python3 -u /opt/standin/main.py %s "$@"\n' "$c" > "$ctx/bin/$c-server"
    chmod 755 "$ctx/bin/$c-server"
  done
  # No RUN step: the build starts no container, so it needs no Docker network.
  cat > "$ctx/Dockerfile" <<DOCKERFILE
FROM $base
COPY standin /opt/standin
COPY bin/ /
LABEL org.pytest-tidb-ha.standin=test-double
DOCKERFILE
  log "docker build -> $final"
  DOCKER_BUILDKIT=0 docker build -q -t "$final" "$ctx" >/dev/null
  rm -rf "$ctx"; trap - EXIT
fi
docker tag "$final" tidb-standin:latest
if [ -n "$release" ]; then
  versioned="$final-$release"
  if ! docker image inspect "$versioned" >/dev/null 2>&1; then
    log "docker build -> $versioned"
    printf 'FROM %s\nENV STANDIN_VERSION=%s\n' "$final" "$release" \
      | DOCKER_BUILDKIT=0 docker build -q -t "$versioned" - >/dev/null
  fi
  final=$versioned
fi
echo "$final"
