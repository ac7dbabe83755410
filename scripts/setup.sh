#!/usr/bin/env bash
# Installs what building and testing netcap needs on Debian, as root.
# Quiet and quick when everything is already there.
set -euo pipefail

packages=(
  # build: clang compiles the BPF programs; libbpf is vendored by libbpf-sys
  clang libelf-dev zlib1g-dev libpcap-dev pkg-config make
  # demo and tests: namespaces, traffic, comparison tools
  iproute2 iputils-ping netcat-openbsd iptables tcpdump tshark tcpreplay bpftool util-linux procps ethtool bc conntrack nftables
  # the decoder's differential test makes packets of every family with scapy
  python3-scapy
  # user-space tests: a C feeder and a DPDK feeder with a USDT probe (netcap raw, netcap mbuf)
  gcc libc6-dev libdpdk-dev systemtap-sdt-dev
  # the VM tier: Debian kernels booted under qemu from a busybox initramfs
  qemu-system-x86 busybox-static cpio xz-utils gzip
  # the release: a static build (glibc's libc.a is in libc6-dev), its package in a fresh chroot
  debootstrap man-db binutils dpkg-dev
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  for dir in "$HOME/.cargo/bin" /root/.cargo/bin /usr/local/cargo/bin; do
    [ -x "$dir/cargo" ] && export PATH="$dir:$PATH" && break
  done
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: no Rust toolchain found: netcap needs Rust 1.85 or newer (rustup.rs)" >&2
  exit 1
fi
