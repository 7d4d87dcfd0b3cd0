#!/usr/bin/env bash
# Build yiyun-vcsim (govmomi's vSphere simulator, tools/vcsim/main.go) with Debian's golang-go
# against Debian's govmomi source (golang-github-vmware-govmomi-dev), offline, no Go modules.
# Usage: tools/vcsim/build.sh [OUTPUT]   (default: .venv/bin/yiyun-vcsim)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/.venv/bin/yiyun-vcsim}"
gopath=/usr/share/gocode

command -v go >/dev/null || {
  echo "yiyun-vcsim: \`go\` not found; install Debian's golang-go" >&2
  exit 1
}
[ -d "$gopath/src/github.com/vmware/govmomi/simulator" ] || {
  echo "yiyun-vcsim: govmomi source missing under $gopath; install golang-github-vmware-govmomi-dev" >&2
  exit 1
}

mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
export GOCACHE="${GOCACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/yiyun-go-build}"
mkdir -p "$GOCACHE"
cd "$here"
GOPATH="$gopath" GO111MODULE=off GOFLAGS= go build -o "$out" . >&2 || {
  echo "yiyun-vcsim: go build failed" >&2
  exit 1
}
echo "$out"
