#!/usr/bin/env bash
# Installs everything Weft needs, idempotently: Debian packages, npm packages, the build.
# Safe to run again; does nothing that is already done. Needs root for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------------------
packages=(nats-server wireguard-tools wireguard-go iproute2 iptables iputils-ping iperf3 tcpdump procps clang llvm libbpf-dev bpftool)
# The package and its installed-agent test (packaging/): dpkg-shlibdeps, strip, lintian, a Debian
# root, the units' and cloud-init examples' checkers.
packages+=(dpkg-dev binutils lintian debootstrap systemd cloud-init man-db)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "weft setup: missing Debian packages: ${missing[*]}; run as root (sudo) so they can be installed" >&2
    exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Node.js ---------------------------------------------------------------------------
if ! command -v node >/dev/null; then
  echo "weft setup: Node.js 20.19 or newer is required (Debian 12's nodejs is too old); install it from nodejs.org or NodeSource, then run this again" >&2
  exit 1
fi
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'; then
  echo "weft setup: Node.js $(node --version) is too old; Weft needs 20.19 or newer" >&2
  exit 1
fi

# --- npm packages ----------------------------------------------------------------------
stamp=node_modules/.weft-installed
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  say "installing npm packages"
  # npm 11 can write a lock file that its own `npm ci` then rejects (platform-specific optional
  # packages such as @rollup/rollup-linux-x64-gnu left out); `npm install --no-save` still
  # honours the locked versions and changes no file.
  npm ci --no-audit --no-fund --loglevel=error 2>/dev/null || npm install --no-save --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi

# --- build -----------------------------------------------------------------------------
say "building"
npx tsc -b
bash bpf/build.sh
chmod +x cli/dist/main.js

# --- current wireguard-go (cached in .weft/; the lab prefers it, Debian's is the fallback) ----
bash scripts/wireguard-go.sh >/dev/null || echo "weft setup: the lab uses Debian's wireguard-go (see above); \`npm run package\` needs Go 1.23+" >&2
