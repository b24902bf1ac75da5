#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info`; idempotent.
#
# Fresh Debian machines (ours, CI) have at most the docker CLI and no engine.
# As root with apt available we install Debian's `docker.io` and start `dockerd`
# in the background; otherwise we say what to do and fail. The plugin itself
# never installs anything: this script is for the README commands and CI only.
set -euo pipefail

log() { echo "ensure-docker: $*" >&2; }

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_answers; then
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  log "no Docker engine answers 'docker info'. Start one (e.g. 'sudo systemctl start docker'),"
  log "or run this script as root on Debian/Ubuntu to install and start docker.io."
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing Debian's docker.io (and iptables, debootstrap for the stand-in images)"
  export DEBIAN_FRONTEND=noninteractive
  # A stale package list makes apt-get install miss packages: refresh it once.
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends docker.io iptables debootstrap ca-certificates >/dev/null
fi

# The distro client may sit behind another `docker` on PATH: both speak to the same socket.
if ! pgrep -x dockerd >/dev/null 2>&1; then
  log "starting dockerd in the background (log: /var/log/tidb-ha-dockerd.log)"
  # setsid: the daemon must outlive this script and the CI step that ran it.
  setsid dockerd >/var/log/tidb-ha-dockerd.log 2>&1 < /dev/null &
fi

for _ in $(seq 1 60); do
  if engine_answers; then
    log "engine ready ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
    exit 0
  fi
  sleep 1
done
log "dockerd did not answer within 60 s; last lines of its log:"
tail -n 20 /var/log/tidb-ha-dockerd.log >&2 || true
exit 1
