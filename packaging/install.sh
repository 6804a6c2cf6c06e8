#!/bin/sh
# Weft installer: installs the weft package from a Weft controller and joins this host to the
# overlay. Served by the controller at GET /install.sh. Run as root; everything it fetches comes
# from the controller over HTTPS checked against the CA hash, nothing else is trusted:
#
#   u=https://CONTROLLER:8080 h=HEX; curl -fsSko /tmp/weft-ca.pem $u/ca.pem &&
#   [ "$(openssl x509 -in /tmp/weft-ca.pem -noout -pubkey | openssl pkey -pubin -outform der |
#   sha256sum | cut -c1-64)" = $h ] && curl -fsS --cacert /tmp/weft-ca.pem $u/install.sh |
#   sh -s -- --controller $u --ca-hash sha256:$h --join-key-file /root/weft-join-key
#
# (`weft keys create` prints the controller URL and the hash.) Options:
#   --controller URL       the controller (required)
#   --ca-hash sha256:HEX   pin of its CA (required)
#   --version V            install this package version (default: the newest the controller has)
#   --no-up                install only; do not run `weft up`
#   anything else          passed to `weft up` (--join-key-file FILE, --cloud aws|azure|gcp,
#                          --name, --site, --public-endpoint, … see `weft up --help`)
# Supported: Debian 12 or newer, Ubuntu 24.04 or newer (amd64). Anything else is refused.
set -eu

say() { printf 'weft install: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 1
}

# Everything is in main(), called on the last line: with `curl … | sh` the shell has then read the
# whole script before anything runs (nothing it starts can swallow the rest of it from stdin).
main() {
	controller=
	ca_hash=
	version=
	up=1
	n=$#
	while [ "$n" -gt 0 ]; do
		arg=$1
		shift
		n=$((n - 1))
		case "$arg" in
		--controller | --ca-hash | --version)
			[ "$n" -gt 0 ] || die "$arg needs a value"
			case "$arg" in
			--controller) controller=$1 ;;
			--ca-hash) ca_hash=$1 ;;
			--version) version=$1 ;;
			esac
			shift
			n=$((n - 1))
			;;
		--no-up) up=0 ;;
		*) set -- "$@" "$arg" ;; # kept, in order, for weft up
		esac
	done

	[ -n "$controller" ] || die "--controller https://HOST:PORT is required (printed by \`weft keys create\`)"
	[ -n "$ca_hash" ] || die "--ca-hash sha256:HEX is required (printed by \`weft keys create\`)"
	case "$controller" in
	https://*) ;;
	*) die "--controller must be an https:// URL, got $controller" ;;
	esac
	controller=${controller%/}
	hex=${ca_hash#sha256:}
	printf '%s' "$hex" | grep -Eqx '[0-9a-fA-F]{64}' || die "--ca-hash must be sha256: followed by 64 hex digits, got $ca_hash"
	hex=$(printf '%s' "$hex" | tr 'A-F' 'a-f')
	if [ -n "$version" ]; then
		printf '%s' "$version" | grep -Eqx '[0-9][A-Za-z0-9.+~]{0,63}' || die "--version $version is not a package version"
	fi

	[ "$(id -u)" -eq 0 ] || die "run as root (sudo sh -s -- …): it installs a package and a system service"

	# --- the distribution ---------------------------------------------------------------------------
	[ -r /etc/os-release ] || die "cannot read /etc/os-release: unknown distribution; Weft supports Debian 12+ and Ubuntu 24.04+"
	# shellcheck disable=SC1091
	os_id=$(. /etc/os-release && printf '%s' "${ID:-}")
	os_version=$(. /etc/os-release && printf '%s' "${VERSION_ID:-}")
	os_name=$(. /etc/os-release && printf '%s' "${PRETTY_NAME:-$os_id $os_version}")
	major=${os_version%%.*}
	case "$os_id" in
	debian)
		case "$major" in '' | *[!0-9]*) die "$os_name: unknown Debian release (VERSION_ID '$os_version'); Weft supports Debian 12 (bookworm) or newer" ;; esac
		[ "$major" -ge 12 ] || die "$os_name is too old: Weft needs Debian 12 (bookworm) or newer (libbpf1, a 5.15+ kernel)"
		;;
	ubuntu)
		case "$major" in '' | *[!0-9]*) die "$os_name: unknown Ubuntu release (VERSION_ID '$os_version'); Weft supports Ubuntu 24.04 or newer" ;; esac
		[ "$major" -ge 24 ] || die "$os_name is too old: Weft needs Ubuntu 24.04 or newer (libbpf1)"
		;;
	*) die "$os_name is not supported: the installer knows Debian 12+ and Ubuntu 24.04+ only (on others, install weft_*.deb's contents by hand, see the README)" ;;
	esac
	arch=$(dpkg --print-architecture)
	[ "$arch" = amd64 ] || die "architecture $arch: packages are built for amd64 only so far"
	for tool in curl openssl sha256sum apt-get; do
		command -v "$tool" >/dev/null 2>&1 || die "$tool is missing: apt-get install -y curl openssl coreutils"
	done

	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT INT TERM

	# --- the controller's CA, checked against the pin -------------------------------------------------
	curl -fsSk --max-time 30 -o "$tmp/ca.pem" "$controller/ca.pem" || die "cannot fetch $controller/ca.pem (is the controller up, and its downloads on?)"
	got=$(openssl x509 -in "$tmp/ca.pem" -noout -pubkey 2>/dev/null | openssl pkey -pubin -outform der 2>/dev/null | sha256sum | cut -c1-64)
	[ "$got" = "$hex" ] || die "the controller at $controller presented a CA with hash sha256:$got, not $ca_hash: not installing (wrong controller, a stale hash, or someone in between)"
	fetch() { curl -fsS --cacert "$tmp/ca.pem" --max-time 300 "$@"; }

	# --- the package ------------------------------------------------------------------------------------
	fetch -o "$tmp/list" "$controller/download" || die "cannot list packages at $controller/download"
	if [ -n "$version" ]; then
		line=$(awk -v f="weft_${version}_${arch}.deb" '$1 == f' "$tmp/list" | tail -n 1)
		[ -n "$line" ] || die "the controller has no weft $version for $arch; it has: $(awk '{print $1}' "$tmp/list" | tr '\n' ' ')"
	else
		line=$(awk -v a="_${arch}.deb" 'substr($1, length($1) - length(a) + 1) == a' "$tmp/list" | tail -n 1)
		[ -n "$line" ] || die "the controller offers no package for $arch"
	fi
	file=$(printf '%s' "$line" | awk '{print $1}')
	size=$(printf '%s' "$line" | awk '{print $2}')
	sum=$(printf '%s' "$line" | awk '{print $3}')
	printf '%s' "$file" | grep -Eqx "weft_[0-9][A-Za-z0-9.+~]{0,63}_${arch}\.deb" || die "the controller listed an unexpected file name"
	pkg_version=${file#weft_}
	pkg_version=${pkg_version%_"$arch".deb}

	installed=$(dpkg-query -W -f='${Status} ${Version}' weft 2>/dev/null || true)
	if [ "$installed" = "install ok installed $pkg_version" ]; then
		say "weft $pkg_version is already installed"
	else
		say "downloading $file ($size bytes) from $controller"
		fetch -o "$tmp/$file" "$controller/download/$file" || die "cannot download $controller/download/$file"
		[ "$(wc -c <"$tmp/$file" | tr -d ' ')" = "$size" ] || die "$file: the download is not $size bytes long"
		[ "$(sha256sum "$tmp/$file" | cut -c1-64)" = "$sum" ] || die "$file: sha256 differs from the controller's listing"
		chmod 0644 "$tmp/$file"
		chmod 0755 "$tmp"
		say "installing $file"
		export DEBIAN_FRONTEND=noninteractive
		if ! apt-get install -y -q --no-install-recommends "$tmp/$file" </dev/null >"$tmp/apt.log" 2>&1; then
			# A fresh image may have no package lists yet: fetch them once and try again.
			say "apt-get could not install it as is; running apt-get update and trying again"
			apt-get update -q </dev/null >>"$tmp/apt.log" 2>&1 || true
			apt-get install -y -q --no-install-recommends "$tmp/$file" </dev/null >>"$tmp/apt.log" 2>&1 || {
				tail -n 20 "$tmp/apt.log" >&2
				die "apt-get install $file failed (last lines above)"
			}
		fi
		say "installed weft $pkg_version"
	fi

	[ "$up" = 1 ] || return 0
	weft up --controller "$controller" --ca-hash "sha256:$hex" "$@" </dev/null
}

main "$@"
