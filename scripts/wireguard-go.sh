#!/usr/bin/env bash
# Builds the current userspace WireGuard, wireguard-go, from its Go module (Debian 12 ships the
# 2022 release, about 3x slower here), once per pinned version, and prints the binary's path:
#   .weft/wireguard-go/<version>/wireguard-go    and the link .weft/bin/wireguard-go to it
# The lab puts .weft/bin first on the agents' PATH; the package ships the same binary. Debian's
# /usr/bin/wireguard-go stays as the fallback when this cannot be built (no Go toolchain).
#   scripts/wireguard-go.sh [--print-version]
set -euo pipefail
cd "$(dirname "$0")/.."

# golang.zx2c4.com/wireguard has no tags; this pseudo-version is 0.0.20250522 plus fixes
# (`wireguard-go --version` prints 0.0.20250522). Change it here to move every build.
module=golang.zx2c4.com/wireguard
version=v0.0.0-20260522210424-ecfc5a8d5446
if [ "${1:-}" = --print-version ]; then
  echo "$version"
  exit 0
fi

dir=".weft/wireguard-go/$version"
bin="$dir/wireguard-go"
if [ ! -x "$bin" ]; then
  command -v go >/dev/null || {
    echo "wireguard-go: no Go toolchain (apt-get install golang-go, or from go.dev); the lab falls back to Debian's wireguard-go" >&2
    exit 1
  }
  mkdir -p "$dir"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "wireguard-go: building $module@$version" >&2
  # Static (no cgo), reproducible paths, no symbol tables: what the package ships.
  CGO_ENABLED=0 GOBIN="$tmp" GOFLAGS="-mod=mod -trimpath" go install -ldflags="-s -w -buildid=" "$module@$version"
  # The module's binary is called `wireguard`; everything else knows it as wireguard-go.
  mv "$tmp/wireguard" "$bin.tmp"
  mv "$bin.tmp" "$bin"
  cp "$(go env GOMODCACHE)/$module@$version/LICENSE" "$dir/LICENSE"
fi
mkdir -p .weft/bin
ln -sfn "../wireguard-go/$version/wireguard-go" .weft/bin/wireguard-go
echo "$PWD/$bin"
