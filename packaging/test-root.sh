#!/usr/bin/env bash
# A clean Debian 12 root filesystem for testing the package as installed: debootstrap from Debian's
# packages, with what a Debian cloud image has that the installer needs (systemd, curl,
# ca-certificates) and nothing else — no Node.js. Cached: built once into
# <cache>/<key>/root and reused while the recipe (this file's settings) is unchanged and the
# root is younger than WEFT_TEST_ROOT_MAX_AGE_DAYS (default 30, so security updates arrive).
# Idempotent and safe against concurrent runs (flock); a half-built root is never used (built in
# a temporary directory, renamed when complete). Prints the root's path on stdout.
#
#   packaging/test-root.sh [cache dir]     default /var/cache/weft-test
#
# Needs root and network access to the Debian mirror (the machine's apt source).
set -euo pipefail

cache=${1:-${WEFT_TEST_CACHE:-/var/cache/weft-test}}
suite=bookworm
mirror=${WEFT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
include=systemd,systemd-sysv,dbus,curl,ca-certificates,gnupg,procps,iputils-ping,less
max_age_days=${WEFT_TEST_ROOT_MAX_AGE_DAYS:-30}
# The recipe: change any of these and the cache key changes, so the root is rebuilt.
recipe="v1 $suite minbase $include $mirror"
key="debian-$suite-$(printf '%s' "$recipe" | sha256sum | cut -c1-12)"

if [ "$(id -u)" -ne 0 ]; then
  echo "test-root: needs root (debootstrap)" >&2
  exit 1
fi
command -v debootstrap >/dev/null || {
  echo "test-root: debootstrap is missing: apt-get install debootstrap" >&2
  exit 1
}

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

dir="$cache/$key"
root="$dir/root"
if [ -f "$dir/complete" ] && [ -z "$(find "$dir/complete" -mtime +"$max_age_days" -print -quit)" ]; then
  echo "$root"
  exit 0
fi

# Stale or unfinished: build afresh beside it, then swap.
tmp="$cache/.build-$key-$$"
rm -rf "$tmp"
mkdir -p "$tmp"
cleanup() {
  # debootstrap mounts proc/sys inside the target; never leave them behind.
  for m in $(awk -v p="$tmp/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r); do umount -l "$m" || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
started=$(date +%s)
echo "test-root: debootstrap $suite (minbase + $include) from $mirror into $tmp/root" >&2
debootstrap --variant=minbase --include="$include" "$suite" "$tmp/root" "$mirror" >"$tmp/debootstrap.log" 2>&1 || {
  tail -n 30 "$tmp/debootstrap.log" >&2
  echo "test-root: debootstrap failed; full log above (last 30 lines)" >&2
  exit 1
}
# The same apt sources as a Debian 12 cloud image (main, updates, security), and their indexes.
cat >"$tmp/root/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
EOF
cp /etc/resolv.conf "$tmp/root/etc/resolv.conf"
chroot "$tmp/root" apt-get update -qq
chroot "$tmp/root" apt-get -y -qq upgrade >/dev/null
chroot "$tmp/root" apt-get clean
if chroot "$tmp/root" sh -c 'command -v node || command -v nodejs' >/dev/null; then
  echo "test-root: the root has a Node.js; it must not" >&2
  exit 1
fi
echo "$recipe" >"$tmp/recipe"
touch "$tmp/complete"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
# Older keys (an earlier recipe) are not used any more.
find "$cache" -mindepth 1 -maxdepth 1 -name 'debian-*' ! -name "$key" -exec rm -rf {} +
echo "test-root: built $root in $(($(date +%s) - started)) s ($(du -sh "$root" | cut -f1))" >&2
echo "$root"
