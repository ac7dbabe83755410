#!/usr/bin/env bash
# Builds what goes onto a production host: netcap as one static file (no
# libpcap, libelf, zlib or glibc needed there: glibc's crt-static, libpcap
# and libbpf linked in), its man pages and bash/zsh/fish completions
# generated from the clap definitions, and a Debian package holding them.
#   scripts/release.sh [OUTDIR]     (default target/dist)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/dist}
target=x86_64-unknown-linux-gnu

# --target keeps RUSTFLAGS off the build scripts; LIBPCAP_LIBDIR keeps the pcap
# crate from asking pkg-config, whose static answer names libdbus and libsystemd
# (native/pcap_without_dbus.c stands in for libpcap's D-Bus capture source).
RUSTFLAGS="-C target-feature=+crt-static" LIBPCAP_LIBDIR=/usr/lib/x86_64-linux-gnu \
  cargo build --release --locked --target "$target"
binary=target/$target/release/netcap
if readelf -l "$binary" | grep -q "Requesting program interpreter"; then
  echo "release: $binary is not static" >&2
  exit 1
fi

rm -rf "$out"
mkdir -p "$out"
strip -o "$out/netcap" "$binary"
"$out/netcap" generate-docs "$out/docs"

# The package: dpkg-deb over a tree laid out as Debian lays out files.
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
install -D -m 0755 "$out/netcap" "$tree/usr/bin/netcap"
for page in "$out"/docs/*.1; do
  install -D -m 0644 "$page" "$tree/usr/share/man/man1/$(basename "$page")"
  gzip -9n "$tree/usr/share/man/man1/$(basename "$page")"
done
install -D -m 0644 "$out/docs/netcap.bash" "$tree/usr/share/bash-completion/completions/netcap"
install -D -m 0644 "$out/docs/_netcap" "$tree/usr/share/zsh/vendor-completions/_netcap"
install -D -m 0644 "$out/docs/netcap.fish" "$tree/usr/share/fish/vendor_completions.d/netcap.fish"
install -D -m 0644 packaging/copyright "$tree/usr/share/doc/netcap/copyright"
mkdir -p "$tree/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$tree" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size/" packaging/control >"$tree/DEBIAN/control"
dpkg-deb --root-owner-group --build "$tree" "$out/netcap_${version}_amd64.deb" >/dev/null
echo "release: $out/netcap ($(stat -c %s "$out/netcap") bytes, static), $out/netcap_${version}_amd64.deb, $out/docs"
