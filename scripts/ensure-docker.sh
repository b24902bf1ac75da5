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

DOCKERD_LOG=/var/log/tidb-ha-dockerd.log

# A daemon killed moments ago can linger as a zombie until its parent reaps
# it: it still has its name and answers kill -0, but it is gone.
is_zombie() { [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }

dockerd_runs() {
  local pid
  for pid in $(pgrep -x dockerd 2>/dev/null); do
    is_zombie "$pid" || return 0
  done
  return 1
}

# A killed engine (machine stop, OOM, kill -9) leaves its pid files behind.
# dockerd trusts them by pid alone: when that pid now belongs to another
# process, it refuses to start ("pid file found") or waits 15 s on a
# containerd that is not there and exits ("timeout waiting for containerd to
# start"). A pid file whose process is not the daemon it names is removed; a
# containerd left over without its socket is stopped, so dockerd starts a new one.
clear_stale_pidfile() {  # <pidfile> <process name> <socket it must serve>
  local file=$1 name=$2 sock=$3 pid comm
  [ -f "$file" ] || return 0
  pid=$(tr -dc '0-9' < "$file")
  comm=$(cat "/proc/${pid:-0}/comm" 2>/dev/null || true)
  if [ -z "$pid" ] || [ "$comm" != "$name" ] || is_zombie "$pid"; then
    log "removing stale $file (pid ${pid:-none} is ${comm:-gone}, not $name)"
    rm -f "$file"
  elif [ ! -S "$sock" ]; then
    log "stopping a leftover $name (pid $pid) that serves no $sock"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$file"
  fi
}

DOCKERD_PID=""
start_dockerd() {
  clear_stale_pidfile /var/run/docker.pid dockerd /var/run/docker.sock
  clear_stale_pidfile /var/run/docker/containerd/containerd.pid containerd \
    /var/run/docker/containerd/containerd.sock
  log "starting dockerd in the background (log: $DOCKERD_LOG)"
  # setsid: the daemon must outlive this script and the CI step that ran it. It must not
  # keep what the caller had open either: a CI step's pipes, or a lock taken around a test
  # run (`flock`), which dockerd and its containerd would then hold for as long as they run.
  (
    close_inherited_fds
    exec setsid dockerd >>"$DOCKERD_LOG" 2>&1 < /dev/null
  ) &
  DOCKERD_PID=$!
}

close_inherited_fds() {  # every descriptor above 2 of this (sub)shell
  local fd n
  for fd in /proc/"$BASHPID"/fd/*; do
    n=${fd##*/}
    if [ "$n" -gt 2 ] 2>/dev/null; then
      eval "exec $n>&-" 2>/dev/null || true
    fi
  done
}

started_dockerd_exited() {
  [ -n "$DOCKERD_PID" ] && { ! kill -0 "$DOCKERD_PID" 2>/dev/null || is_zombie "$DOCKERD_PID"; }
}

# dockerd answers within seconds once containerd is up. One we started that
# exited is not waited for: it is started once more (after the pid files are
# checked again) before we give up.
wait_for_engine() {  # <seconds>
  for _ in $(seq 1 "$1"); do
    if engine_answers; then
      log "engine ready ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
      return 0
    fi
    if started_dockerd_exited; then
      return 1
    fi
    sleep 1
  done
  return 1
}

main() {
  if command -v docker >/dev/null 2>&1 && engine_answers; then
    return 0
  fi

  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    log "no Docker engine answers 'docker info'. Start one (e.g. 'sudo systemctl start docker'),"
    log "or run this script as root on Debian/Ubuntu to install and start docker.io."
    return 1
  fi

  if ! command -v dockerd >/dev/null 2>&1; then
    log "installing Debian's docker.io (and iptables, debootstrap for the stand-in images)"
    export DEBIAN_FRONTEND=noninteractive
    # A stale package list makes apt-get install miss packages: refresh it once.
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends docker.io iptables debootstrap ca-certificates >/dev/null
  fi

  for attempt in 1 2; do
    DOCKERD_PID=""
    if ! dockerd_runs; then
      [ "$attempt" = 1 ] && : >"$DOCKERD_LOG"
      start_dockerd
    fi
    if wait_for_engine 90; then
      return 0
    fi
    log "dockerd did not answer (attempt $attempt); last lines of its log:"
    tail -n 20 "$DOCKERD_LOG" >&2 || true
    # Only a daemon we started and that exited is retried: one that runs but never
    # answers may be the user's engine, which this script must not kill.
    if ! started_dockerd_exited; then
      return 1
    fi
  done
  return 1
}

# Sourced (by tests/unit/test_ensure_docker.py), it only defines the functions.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main
fi
