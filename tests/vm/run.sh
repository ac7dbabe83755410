#!/usr/bin/env bash
# The VM tier: boots the newest Debian cloud kernel of a series (5.10, 6.1
# or 6.12: kernels with kprobes and fentry, unlike this machine's) in
# qemu-system-x86_64 -accel tcg, from an initramfs holding busybox, the veth
# module, the released static netcap (scripts/release.sh) with no library
# beside it, tcpdump and ip with theirs, runs tests/vm/guest.sh there, and
# passes only on the guest's marker lines.
# Usage (root): tests/vm/run.sh 5.10|6.1|6.12
set -euo pipefail
series=${1:?usage: $0 5.10|6.1|6.12}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
netcap=${NETCAP:-$root/target/dist/netcap}
[ -x "$netcap" ] || { echo "vm: no $netcap: run scripts/release.sh first (or set NETCAP)" >&2; exit 2; }
cache=${NETCAP_VM_CACHE:-/var/cache/netcap-vm}
boot_limit=${NETCAP_VM_TIMEOUT:-900}

apt_options=()
case $series in
  5.10) pattern='^linux-image-5\.10\.0-[0-9]+-cloud-amd64-unsigned$' suite=bullseye ;;
  6.1) pattern='^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$' ;;
  6.12) pattern='^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64-unsigned$' ;;
  *) echo "vm: unknown series '$series' (5.10, 6.1 or 6.12)" >&2; exit 2 ;;
esac
[ -x "$netcap" ] || { echo "vm: build netcap first (cargo build --release)" >&2; exit 2; }
mkdir -p "$cache"

# Another Debian release's kernels (5.10 is Debian 11's) come through an apt
# state of their own under $cache: the machine's apt configuration is never
# touched, and the mirror is the one the machine's own sources already name.
if [ -n "${suite:-}" ]; then
  # shellcheck source=../../scripts/debian_mirror.sh
  source "$root/scripts/debian_mirror.sh"
  mirror=$(debian_mirror) || exit 1
  state=$cache/apt-$suite
  mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/parts"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" >"$state/sources.list"
  apt_options=(-o "Dir::Etc::SourceList=$state/sources.list" -o "Dir::Etc::SourceParts=$state/parts"
    -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache")
  [ -n "$(ls "$state/lists" 2>/dev/null | grep -v partial)" ] || apt-get "${apt_options[@]}" update -qq
fi

# The newest package of the series, downloaded and unpacked once.
newest() { apt-cache "${apt_options[@]}" search --names-only "$pattern" | awk '{print $1}' | sort -V | tail -n 1; }
package=$(newest)
[ -n "$package" ] || { apt-get "${apt_options[@]}" update -qq && package=$(newest); }
[ -n "$package" ] || { echo "vm: no package matches $pattern" >&2; exit 1; }
if [ ! -d "$cache/$package" ]; then
  # Package lists can be older than the mirror: refresh once if the download fails.
  if ! (cd "$cache" && apt-get "${apt_options[@]}" download "$package" >/dev/null 2>&1); then
    apt-get "${apt_options[@]}" update -qq
    package=$(newest)
    (cd "$cache" && apt-get "${apt_options[@]}" download "$package" >/dev/null)
  fi
fi
tree=$cache/$package
if [ ! -d "$tree" ]; then
  rm -rf "$tree.partial"
  dpkg-deb -x "$cache/${package}"_*.deb "$tree.partial"
  mv "$tree.partial" "$tree"
fi
kernel=$(ls "$tree"/boot/vmlinuz-*)
version=${kernel##*/vmlinuz-}

work=$(mktemp -d)
qemu_pid=
cleanup() {
  [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The initramfs: busybox for the shell and tools, real binaries with their libraries.
image=$work/root
mkdir -p "$image"/{bin,sbin,dev,proc,sys,tmp,run,lib/modules}
cp /bin/busybox "$image/bin/busybox"
with_libraries() {
  local binary=$1 target=$2
  mkdir -p "$image$(dirname "$target")"
  cp "$binary" "$image$target"
  ldd "$binary" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }' | while read -r library; do
    mkdir -p "$image$(dirname "$library")"
    cp -L "$library" "$image$library"
  done
}
# The release is static: it goes in alone, as it would onto a bare host.
if readelf -l "$netcap" | grep -q "program interpreter"; then
  with_libraries "$netcap" /bin/netcap
  echo "vm: $netcap is dynamic: copied with its libraries" >&2
else
  mkdir -p "$image/bin" && cp "$netcap" "$image/bin/netcap"
fi
with_libraries "$(command -v tcpdump)" /bin/tcpdump
with_libraries "$(command -v ip)" /sbin/ip
# GSO in software (TSO off) and GRO on a veth, for --track's segment and merge hooks.
with_libraries "$(command -v ethtool)" /sbin/ethtool
# A user-space program for netcap raw: a function and a USDT probe that take frames.
cc -O2 -g -o "$work/raw_feeder" "$here/../user/raw_feeder.c"
with_libraries "$work/raw_feeder" /bin/raw_feeder
cc -O2 -o "$work/tcp_sender" "$here/../user/tcp_sender.c"
with_libraries "$work/tcp_sender" /bin/tcp_sender
# --bpf-progs: tc and XDP programs to trace, attached with iproute2's tc and
# ip, their ids read with bpftool.
with_libraries "$(command -v tc)" /sbin/tc
with_libraries "$(command -v bpftool)" /sbin/bpftool
# --nft: a ruleset loaded with nft, whose chain handles are the oracle.
with_libraries "$(command -v nft)" /sbin/nft
# --nft on legacy iptables: iptables-legacy and ip6tables-legacy (one binary
# that goes by its name) with the extensions the rules load at run time.
with_libraries /usr/sbin/xtables-legacy-multi /sbin/iptables-legacy
ln -s iptables-legacy "$image/sbin/ip6tables-legacy"
for extension in libxt_standard libxt_tcp libip6t_icmp6; do
  with_libraries "/usr/lib/x86_64-linux-gnu/xtables/$extension.so" "/usr/lib/x86_64-linux-gnu/xtables/$extension.so"
done
mkdir -p "$image/bpf"
for program in tc_drop_port xdp_drop_echo; do
  clang -O2 -g -target bpf -Wall -Werror -I/usr/include/x86_64-linux-gnu \
    -c "$here/../bpf/$program.c" -o "$image/bpf/$program.o"
done
# glibc also looks for its loader at /lib64.
mkdir -p "$image/lib64" && cp -L /lib64/ld-linux-x86-64.so.2 "$image/lib64/"
# veth, and 802.1Q with what it needs, in load order; clsact and bpf filters;
# nf_tables with what it needs, and the legacy x_tables ones, for --nft.
for name in veth llc stp garp mrp 8021q sch_ingress cls_bpf libcrc32c nfnetlink nf_tables \
  x_tables ip_tables iptable_filter xt_tcpudp ip6_tables ip6table_filter; do
  module=$(find "$tree/lib/modules/$version" -name "$name.ko*" | head -n 1)
  case $module in
    *.xz) xz -dc "$module" >"$image/lib/modules/$name.ko" ;;
    *.zst) zstd -dqc "$module" >"$image/lib/modules/$name.ko" ;;
    ?*) cp "$module" "$image/lib/modules/$name.ko" ;;
  esac
done
cp "$here/guest.sh" "$image/guest.sh"
# tcpdump drops root for its own user once it has opened its input.
mkdir -p "$image/etc"
printf 'root:x:0:0::/:/bin/sh\ntcpdump:x:104:108::/:/bin/false\n' >"$image/etc/passwd"
printf 'root:x:0:\ntcpdump:x:108:\n' >"$image/etc/group"
cat >"$image/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
sh /guest.sh
echo "NETCAP-VM: DONE"
poweroff -f
INIT
chmod +x "$image/init" "$image/guest.sh"
(cd "$image" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initramfs.gz"

started=$(date +%s)
timeout "$boot_limit" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 1536 \
  -kernel "$kernel" -initrd "$work/initramfs.gz" \
  -append "console=ttyS0 panic=-1 quiet" \
  -nographic -no-reboot -monitor none >"$work/console.log" 2>&1 &
qemu_pid=$!
wait "$qemu_pid" || true
qemu_pid=
elapsed=$(( $(date +%s) - started ))

grep -a "NETCAP-VM" "$work/console.log" | sed "s/^/[$series] /"
# The guest's --bpf-progs capture, read by tshark: one verdict option per
# exit event, XDP_DROP (1) on the echo requests and TC_ACT_SHOT (2) on the
# SYNs to port 9000.
expected=$(( $(grep -c '^check ' "$here/guest.sh") + 1 ))
sed -n '/NETCAP-VM: PCAPNG-BEGIN/,/NETCAP-VM: PCAPNG-END/p' "$work/console.log" | tr -d '\r' |
  grep -v NETCAP-VM | base64 -d >"$work/progs.pcapng" 2>/dev/null || true
verdicts=$(tshark -r "$work/progs.pcapng" -T fields -e frame.verdict.ebpf_xdp -e frame.verdict.ebpf_tc 2>/dev/null | sort | uniq -c | tr -s ' ' | tr '\n' ';')
if tshark -r "$work/progs.pcapng" -Y 'icmp.type == 8 && frame.verdict.ebpf_xdp == 1' 2>/dev/null | grep -q . &&
   tshark -r "$work/progs.pcapng" -Y 'tcp.dstport == 9000 && frame.verdict.ebpf_tc == 2' 2>/dev/null | grep -q . &&
   [ "$(tshark -r "$work/progs.pcapng" -Y 'frame.verdict.ebpf_tc == 2' 2>/dev/null | grep -c .)" = \
     "$(tshark -r "$work/progs.pcapng" -Y 'tcp.dstport == 9000 && frame.verdict.ebpf_tc' 2>/dev/null | grep -c .)" ]; then
  echo "NETCAP-VM: PASS tshark_reads_verdicts" >>"$work/console.log"
else
  echo "NETCAP-VM: FAIL tshark_reads_verdicts: $verdicts" >>"$work/console.log"
fi
grep -a "NETCAP-VM: .* tshark_reads_verdicts" "$work/console.log" | sed "s/^/[$series] /"
passed=$(grep -ac "NETCAP-VM: PASS" "$work/console.log" || true)
failed=$(grep -ac "NETCAP-VM: FAIL" "$work/console.log" || true)
if ! grep -aq "NETCAP-VM: DONE" "$work/console.log" || [ "$failed" -ne 0 ] || [ "$passed" -ne "$expected" ]; then
  echo "vm $series ($version): guest console follows" >&2
  tail -n 200 "$work/console.log" >&2
  echo "vm $series: $passed passed, $failed failed, $expected expected ($elapsed s)" >&2
  exit 1
fi
echo "vm $series ($version): $passed passed, $failed failed, $elapsed s including boot"
