#!/usr/bin/env bash
# Build the real-binary cluster image: REAL tidb-server and pd-server built from
# their Go modules at exact versions, plus this project's TiKV-protocol store
# (TiDB's own unistore engine behind TiKV's gRPC API) in the TiKV position.
#
#   base : the stand-in's Debian base image (debootstrap -> docker import; built by
#          tests/standin/build.sh, shared so there is one debootstrap per machine)
#   go   : tidb/ (wrapper module: tidb-server, cmd/tikv-server) and pd/ (wrapper
#          module: pd-server, -tags without_dashboard), Go caches left where Go keeps
#          them ($(go env GOMODCACHE), $(go env GOCACHE)) so a later build reuses them
#   final: base + /pd-server /tikv-server /tidb-server, tagged
#          tidb-realbin:<content hash> and tidb-realbin:latest
#
# Idempotent: nothing is built when an image with the content hash exists.
# One build at a time per machine (flock). Prints the image reference on stdout;
# progress and the build time go to stderr. Versions and why: README.md here.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
log() { echo "realbin-build: $*" >&2; }
started=$(date +%s)

# TiDB v7.5.0 (tag commit) and PD: tikv/pd master 7179657d129b, 4 commits after
# v8.1.0-alpha (`git describe`): the proxy refuses PD v7.5.0's module version.
TIDB_COMMIT=069631e2ecfedc000ffb92c67207bea81380f020
TIDB_RELEASE=v7.5.0
PD_COMMIT=7179657d129b703b614c15d7026053f6b940cfe0
PD_RELEASE=v8.1.0-alpha-4-g7179657d12
STORE_VERSION=7.5.0

if command -v flock >/dev/null 2>&1; then
  exec 9>"${TMPDIR:-/tmp}/tidb-realbin-build.lock"
  flock -w 3600 9 || { log "another build held the lock for an hour; giving up"; exit 1; }
fi

command -v go >/dev/null 2>&1 || { log "no Go toolchain on PATH (Go >= 1.23 needed)"; exit 1; }
export GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=readonly"
go_version=$(go env GOVERSION)

# Base: the stand-in build makes (or finds) it; its image id goes into our hash.
bash "$repo/tests/standin/build.sh" >/dev/null
base=tidb-standin-base:latest
base_id=$(docker image inspect -f '{{.Id}}' "$base")

content_hash=$( {
  echo "$base_id $go_version $TIDB_COMMIT $TIDB_RELEASE $PD_COMMIT $PD_RELEASE $STORE_VERSION"
  sha256sum "$here/build.sh"
  cd "$here" && find tidb pd -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) -print0 \
    | sort -z | xargs -0 sha256sum
} | sha256sum | cut -c1-12)
final="tidb-realbin:$content_hash"
# REALBIN_FORCE=1 builds even when the image exists (bench/realbin.py's build timings).
if [ "${REALBIN_FORCE:-}" != 1 ] && docker image inspect "$final" >/dev/null 2>&1; then
  docker tag "$final" tidb-realbin:latest
  log "image $final is current ($(( $(date +%s) - started ))s)"
  echo "$final"
  exit 0
fi

out=$(mktemp -d "${TMPDIR:-/tmp}/tidb-realbin.XXXXXX")
trap 'rm -rf "$out"' EXIT
build_ts=$(date -u '+%Y-%m-%d %H:%M:%S')
nice_cmd=(nice -n "${REALBIN_NICE:-10}")

t0=$(date +%s)
log "go build tidb-server ($TIDB_RELEASE) with $go_version (cold: 10-25 min on 2 cores)"
(cd "$here/tidb" && "${nice_cmd[@]}" go build -o "$out/tidb-server" -ldflags "-checklinkname=0 \
  -X 'github.com/pingcap/tidb/pkg/parser/mysql.TiDBReleaseVersion=$TIDB_RELEASE' \
  -X 'github.com/pingcap/tidb/pkg/util/versioninfo.TiDBBuildTS=$build_ts' \
  -X 'github.com/pingcap/tidb/pkg/util/versioninfo.TiDBGitHash=$TIDB_COMMIT' \
  -X 'github.com/pingcap/tidb/pkg/util/versioninfo.TiDBGitBranch=tags/$TIDB_RELEASE (Go module)'" \
  github.com/pingcap/tidb/cmd/tidb-server)
t1=$(date +%s)
log "go build tikv-server (unistore over TiKV gRPC, TiDB $TIDB_RELEASE engine)"
(cd "$here/tidb" && "${nice_cmd[@]}" go build -o "$out/tikv-server" -ldflags "-checklinkname=0 \
  -X 'main.StoreVersion=$STORE_VERSION' -X 'main.GitHash=$TIDB_COMMIT'" ./cmd/tikv-server)
t2=$(date +%s)
log "go build pd-server ($PD_RELEASE, -tags without_dashboard)"
(cd "$here/pd" && "${nice_cmd[@]}" go build -tags without_dashboard -o "$out/pd-server" -ldflags " \
  -X 'github.com/tikv/pd/pkg/versioninfo.PDReleaseVersion=$PD_RELEASE' \
  -X 'github.com/tikv/pd/pkg/versioninfo.PDBuildTS=$build_ts' \
  -X 'github.com/tikv/pd/pkg/versioninfo.PDGitHash=$PD_COMMIT' \
  -X 'github.com/tikv/pd/pkg/versioninfo.PDGitBranch=master (Go module)'" \
  github.com/tikv/pd/cmd/pd-server)
t3=$(date +%s)

cat > "$out/Dockerfile" <<DOCKERFILE
FROM $base
COPY pd-server tikv-server tidb-server /
LABEL org.pytest-tidb-ha.realbin="tidb $TIDB_RELEASE ($TIDB_COMMIT); pd $PD_RELEASE ($PD_COMMIT); tikv: unistore store (not TiKV)"
DOCKERFILE
log "docker build -> $final"
DOCKER_BUILDKIT=0 docker build -q -t "$final" "$out" >/dev/null
docker tag "$final" tidb-realbin:latest
rm -rf "$out"; trap - EXIT
done_at=$(date +%s)
log "built $final in $(( done_at - started ))s (go build: tidb-server $(( t1 - t0 ))s, tikv-server $(( t2 - t1 ))s, pd-server $(( t3 - t2 ))s)"
echo "$final"
