#!/usr/bin/env bash
# The package tier: the .deb scripts/release.sh made installs with dpkg -i
# into a fresh Debian chroot (debootstrap minbase, no libpcap, no libelf, no
# clang), where `netcap version`, `netcap features` and `netcap list` run;
# its man pages render with man -l and its bash completion loads.
#   tests/package/run.sh [DIST]   (default target/dist)
# The chroot is made once per Debian release and kept, as a tarball, in
# /var/cache/netcap-package; the mirror is the one this machine's apt
# sources name, read at run time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dist=$(cd "${1:-$here/../../target/dist}" && pwd)
cache=${NETCAP_PACKAGE_CACHE:-/var/cache/netcap-package}
deb=$(ls "$dist"/netcap_*_amd64.deb)
suite=$(. /etc/os-release && echo "$VERSION_CODENAME")

work=$(mktemp -d)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "package: FAIL $1" >&2; exit 1; }

mkdir -p "$cache"
tarball=$cache/$suite-minbase.tar.gz
if [ ! -s "$tarball" ]; then
  # shellcheck source=../../scripts/debian_mirror.sh
  source "$here/../../scripts/debian_mirror.sh"
  mirror=$(debian_mirror) || fail "no mirror"
  echo "package: debootstrap $suite (once; cached in $cache)" >&2
  debootstrap --variant=minbase "$suite" "$work/make" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
  tar -C "$work/make" -czf "$tarball.part" . && mv "$tarball.part" "$tarball"
  rm -rf "$work/make"
fi
root=$work/root
mkdir -p "$root"
tar -C "$root" -xzf "$tarball"

# A fresh system without any of netcap's build dependencies.
for library in libpcap.so.0.8 libelf.so.1; do
  ! ls "$root"/usr/lib/x86_64-linux-gnu/$library >/dev/null 2>&1 || fail "the chroot already has $library"
done
cp "$deb" "$root/tmp/"
chroot "$root" dpkg -i "/tmp/$(basename "$deb")" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i"; }
chroot "$root" dpkg -s netcap | grep -q "^Status: install ok installed" || fail "dpkg -s"

# Inside, in a mount namespace of its own so nothing stays mounted: the
# kernel's /sys and /proc for BTF and the BPF probes.
inside() {
  unshare -m sh -c 'mount --bind /sys "$0/sys" && mount -t proc proc "$0/proc" && exec chroot "$0" "$@"' "$root" "$@"
}
inside netcap version >"$work/version" 2>&1 || { cat "$work/version" >&2; fail "netcap version"; }
grep -q "^netcap .* (commit " "$work/version" && grep -q "a static binary" "$work/version" || fail "version: $(cat "$work/version")"
inside netcap features --json >"$work/features" 2>&1 || fail "netcap features: $(cat "$work/features")"
grep -q '"ring_buffer":{[^}]*"present":true' "$work/features" || fail "features: $(cat "$work/features")"
inside netcap list --tracepoints >"$work/list" 2>&1 || fail "netcap list"
grep -q "^tp:\(net:\)\?netif_receive_skb@1 " "$work/list" || fail "list: $(head -n 3 "$work/list")"

# The man pages render, and say what --help says.
MANWIDTH=100 man -P cat -l "$root/usr/share/man/man1/netcap-skb.1.gz" >"$work/man" 2>"$work/man.err" || fail "man -l: $(cat "$work/man.err")"
for option in --gather --write-file --stack-dump; do
  grep -q -- "$option" "$work/man" || fail "man netcap-skb lacks $option"
  chroot "$root" netcap skb --help | grep -q -- "$option" || fail "--help lacks $option"
done
# The bash completion loads and completes the subcommands.
bash -c "source '$root/usr/share/bash-completion/completions/netcap'; complete -p netcap" >/dev/null || fail "bash completion"
[ -s "$root/usr/share/zsh/vendor-completions/_netcap" ] && [ -s "$root/usr/share/fish/vendor_completions.d/netcap.fish" ] ||
  fail "zsh or fish completion missing"
echo "package: $(basename "$deb") installs into a fresh $suite chroot; version, features, list, man and completions pass"
