#!/bin/sh
# Runs inside the VM (busybox sh, as init): namespace a is the initial one
# (va, 198.18.0.1), b a child (vb, 198.18.0.2), joined by veth. Each check
# prints "NETCAP-VM: PASS name" or "NETCAP-VM: FAIL name: why".

pass() { echo "NETCAP-VM: PASS $1"; }
fail() { echo "NETCAP-VM: FAIL $1: $2"; }

insmod /lib/modules/veth.ko || fail setup "insmod veth"
for module in llc stp garp mrp 8021q sch_ingress cls_bpf libcrc32c nfnetlink nf_tables; do insmod /lib/modules/$module.ko; done
IP=/sbin/ip  # iproute2: busybox ip cannot make veth pairs across namespaces
$IP link set lo up
unshare -n sleep 100000 &
B=$!
sleep 0.5
$IP link add va type veth peer name vb netns "$B" || fail setup "veth"
$IP addr add 198.18.0.1/24 dev va
$IP link set va up
nsenter -t "$B" -n $IP addr add 198.18.0.2/24 dev vb
nsenter -t "$B" -n $IP link set vb up
nsenter -t "$B" -n $IP link set lo up
$IP -6 addr add fd00:198:18::1/64 dev va nodad
nsenter -t "$B" -n $IP -6 addr add fd00:198:18::2/64 dev vb nodad
echo "NETCAP-VM: kernel $(uname -r)"

# What each kernel of the tier can do, as netcap's features table must say,
# and so which mechanism each check expects there.
case $(uname -r) in
  5.10.*) SERIES=5.10 ;;
  6.1.*) SERIES=6.1 ;;
  6.12.*) SERIES=6.12 ;;
  *) SERIES=unknown ;;
esac
case $SERIES in
  5.10) PRESENT="btf ring_buffer tp_btf fentry kprobes"
    ABSENT="kprobe_multi attach_cookie bpf_loop dynptr_from_skb uprobe_multi drop_reasons get_current_task_btf" ;;
  6.1) PRESENT="btf ring_buffer tp_btf fentry kprobes attach_cookie bpf_loop drop_reasons get_current_task_btf"
    ABSENT="kprobe_multi dynptr_from_skb uprobe_multi rdonly_cast_to_void" ;;
  6.12) PRESENT="btf ring_buffer tp_btf fentry kprobes kprobe_multi attach_cookie bpf_loop drop_reasons uprobe_multi"
    ABSENT="rdonly_cast_to_void" ;;
esac
export SERIES

# Starts netcap in namespace b (a with IN_A=1) with "$@"; waits until it traces.
start() {
  rm -f /tmp/out /tmp/err
  if [ -n "$IN_A" ]; then
    /bin/netcap "$@" >/tmp/out 2>/tmp/err &
  else
    nsenter -t "$B" -n /bin/netcap "$@" >/tmp/out 2>/tmp/err &
  fi
  NETCAP=$!
  for _ in $(seq 600); do
    grep -q "Ctrl-C to stop" /tmp/err 2>/dev/null && return 0
    kill -0 "$NETCAP" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}

# Waits for netcap to end by itself (-c), else stops it like Ctrl-C.
finish() {
  for _ in $(seq 150); do
    kill -0 "$NETCAP" 2>/dev/null || break
    sleep 0.2
  done
  kill -INT "$NETCAP" 2>/dev/null
  wait "$NETCAP"
}

# Stops netcap like Ctrl-C once the traffic is over, for runs whose event
# count varies (a SYN may be retransmitted): finish would wait 30 s for -c.
stop() {
  sleep 1
  kill -INT "$NETCAP" 2>/dev/null
  wait "$NETCAP"
}

check() { # name, then a command that must succeed on /tmp/out and /tmp/err
  name=$1
  shift
  # A fallback at load means the features table promised what the kernel refused.
  if grep -q " failed: " /tmp/err 2>/dev/null; then
    fail "$name" "a fallback was taken: $(grep " failed: " /tmp/err | head -n 2 | tr '\n' '|' | cut -c1-400)"
  elif "$@"; then pass "$name"; else
    # The start of stderr says what was attached, its end the summary.
    fail "$name" "$(head -c 300 /tmp/err | tr '\n' '|') … $(tail -c 300 /tmp/err | tr '\n' '|') || $(wc -l </tmp/out) lines: $(head -c 600 /tmp/out | tr '\n' '|')"
  fi
}

# 0. The binary is the release, static, here without any library of its own.
/bin/netcap version >/tmp/out 2>/tmp/err
check static_binary_alone grep -q "^a static binary" /tmp/out

# The features table: each row this tier's kernel is known to have or lack.
/bin/netcap features --json >/tmp/out 2>/tmp/err
row_is() { grep -o "\"$1\":{[^}]*}" /tmp/out | grep -q "\"present\":$2"; }
features_as_known() {
  [ "$SERIES" != unknown ] || return 1
  for key in $PRESENT; do row_is "$key" true || { echo "$key should be present" >>/tmp/err; return 1; }; done
  for key in $ABSENT; do row_is "$key" false || { echo "$key should be absent" >>/tmp/err; return 1; }; done
}
echo "NETCAP-VM: info features: $(/bin/netcap features | grep '  no ' | cut -c1-22 | tr -s ' ' | tr '\n' ',')"
check features_table features_as_known

count() { grep -c "$1" "$2" 2>/dev/null || echo 0; }

# 1. A plain function name attaches by fentry.
if start skb -f icmp_rcv@1 -i vb -c 3; then
  ping -c 3 -i 0.3 198.18.0.2 >/dev/null
  finish
fi
check fentry_by_default sh -c 'grep -qx "netcap: icmp_rcv@1 attached by fentry" /tmp/err &&
  [ "$(grep -c "icmp_rcv vb len 98 IP 198.18.0.1 > 198.18.0.2: ICMP echo request" /tmp/out)" = 3 ]'

# 2. kprobe: forces a kprobe.
if start skb -f kprobe:icmp_rcv -i vb -c 3; then
  ping -c 3 -i 0.3 198.18.0.2 >/dev/null
  finish
fi
check kprobe_when_asked sh -c 'grep -qx "netcap: kprobe:icmp_rcv attached by kprobe" /tmp/err &&
  [ "$(grep -c "ICMP echo request" /tmp/out)" = 3 ]'

# 2b. A kprobe reads the sixth register argument: icmp_glue_bits(from, to,
# offset, len, odd, skb) builds each echo reply in b.
if start skb -f kprobe:icmp_glue_bits -c 3; then
  ping -c 3 -i 0.3 198.18.0.2 >/dev/null
  finish
fi
check kprobe_sixth_argument sh -c 'grep -q "kprobe:icmp_glue_bits attached by kprobe" /tmp/err &&
  grep -q "3 packets captured" /tmp/err && [ "$(grep -c "^[0-9:.]* icmp_glue_bits " /tmp/out)" = 3 ]'

# 3. fentry unavailable: kprobe instead, and why.
export NETCAP_WITHOUT=fentry
if start skb -f icmp_rcv -i vb -c 2; then
  ping -c 2 -i 0.3 198.18.0.2 >/dev/null
  finish
fi
unset NETCAP_WITHOUT
check fallback_to_kprobe sh -c 'grep -qx "netcap: icmp_rcv attached by kprobe (no fentry here: disabled by NETCAP_WITHOUT)" /tmp/err &&
  [ "$(grep -c "ICMP echo request" /tmp/out)" = 2 ]'

# 4. The seed's first example, through tcpdump -nnv.
if start skb -f icmp_rcv@1 -i vb -e "host 198.18.0.1" -t "-nnv" -c 2; then
  ping -c 2 -i 0.3 198.18.0.2 >/dev/null
  finish
fi
check seed_icmp_rcv_with_tcpdump sh -c '[ "$(grep -c "^icmp_rcv vb$" /tmp/out)" = 2 ] &&
  [ "$(grep -c "IP (tos 0x0, ttl 64" /tmp/out)" = 2 ] &&
  [ "$(grep -c "198.18.0.1 > 198.18.0.2: ICMP echo request" /tmp/out)" = 2 ]'

# 5. The seed's second example: a TCP SYN to a closed port dies in the kernel.
if start skb -f tracepoint:skb:kfree_skb -e "tcp port 9000" -S -c 1; then
  nc -w 2 198.18.0.2 9000 </dev/null >/dev/null 2>&1
  finish
fi
# Drop reasons exist from 5.17 on; before, netcap names the place alone.
# Before, netcap says so once at start.
case $(uname -r) in
  5.1[0-6].* | 5.[0-9].*) drop_says='\[drop NOT_SPECIFIED at tcp_v4_rcv+0x'
    start_says='reports drop locations only (reasons came in 5.17)' ;;
  *) drop_says='\[drop NO_SOCKET'
    start_says='' ;;
esac
export drop_says start_says
check seed_kfree_skb_with_stack sh -c 'grep -q "kfree_skb vb len 74 IP 198.18.0.1.* > 198.18.0.2.9000: Flags \[S\]" /tmp/out &&
  grep -q "$drop_says" /tmp/out && grep -q "^    tcp_v4_rcv+0x" /tmp/out &&
  if [ -n "$start_says" ]; then [ "$(grep -c "$start_says" /tmp/err)" = 1 ]; else ! grep -q "drop locations only" /tmp/err; fi'

# 6. The seed's third example: a journey across a tracepoint and three functions.
if start skb -f tracepoint:net:netif_receive_skb,ip_local_deliver@1,ip_local_deliver_finish@3,icmp_rcv@1 \
  -e "host 198.18.0.1 and icmp" -i vb --gather --gather-output-color cyan -c 2; then
  ping -c 2 -i 0.3 198.18.0.2 >/dev/null
  finish
fi
# tp_btf reads paged bytes where the kernel lets tracing programs make an skb dynptr.
case $SERIES in
  6.12) tracepoint_by='tp_btf (paged data)' ;;
  *) tracepoint_by='tp_btf (no dynptr_from_skb here: .*)' ;;
esac
export tracepoint_by
check seed_gather sh -c 'grep -qx "netcap: tracepoint:net:netif_receive_skb attached by $tracepoint_by" /tmp/err &&
  [ "$(grep -c "^[0-9:.]* netif_receive_skb vb len 98" /tmp/out)" = 2 ] &&
  [ "$(grep -c "  seen .* later at ip_local_deliver$" /tmp/out)" = 2 ] &&
  [ "$(grep -c "  seen .* later at ip_local_deliver_finish$" /tmp/out)" = 2 ] &&
  [ "$(grep -c "  seen .* later at icmp_rcv$" /tmp/out)" = 2 ]'

# 6b. --track at a tracepoint and a function (fentry here): each echo request
# matched at netif_receive_skb on vb keeps its id at icmp_rcv.
if start skb -f tracepoint:net:netif_receive_skb,icmp_rcv -i vb -e "icmp[icmptype] = icmp-echo" --track -c 4; then
  ping -c 2 -i 0.3 198.18.0.2 >/dev/null
  finish
fi
check track_across_a_function sh -c '[ "$(grep -c "^[0-9:.]* netif_receive_skb vb len 98 .*ICMP echo request.* #1$" /tmp/out)" = 1 ] &&
  [ "$(grep -c "^[0-9:.]* icmp_rcv vb len 98 .*ICMP echo request.* #1$" /tmp/out)" = 1 ] &&
  [ "$(grep -c " #2$" /tmp/out)" = 2 ]'

# 6c. --track into clones: a packet socket (tcpdump) makes the kernel clone
# every packet vb sends (dev_queue_xmit_nit); each clone reaches tpacket_rcv
# with its parent's id, said to be a clone (it would match -e on its own and
# start a track of its own if the skb_clone hook did not hand the id down).
# Each reply is cloned once more in a, where ping's socket takes a clone: 4.
nsenter -t "$B" -n tcpdump -i vb -w /dev/null 2>/dev/null &
SNIFFER=$!
sleep 1
if start skb -f tracepoint:net:net_dev_queue,tpacket_rcv -i vb -e "icmp[icmptype] = icmp-echoreply" --track -c 4; then
  ping -c 2 -i 0.3 198.18.0.2 >/dev/null
  finish
fi
kill "$SNIFFER"
wait "$SNIFFER" 2>/dev/null
check track_into_clones sh -c 'grep -q "and into the clones, copies, GSO segments, GRO merges made from them" /tmp/err &&
  [ "$(grep -c "^[0-9:.]* net_dev_queue vb len 98 .*ICMP echo reply.* #1$" /tmp/out)" = 1 ] &&
  [ "$(grep -c "^[0-9:.]* tpacket_rcv vb len 98 .*ICMP echo reply.* #1 clone$" /tmp/out)" = 1 ] &&
  [ "$(grep -c "^[0-9:.]* tpacket_rcv vb len 98 .*ICMP echo reply.* #2 clone$" /tmp/out)" = 1 ] &&
  grep -q " 2 followed (--track), 4 clones, copies or segments followed" /tmp/err'

# 6d. --track into GSO segments and GRO merges: with TSO off on va the stack
# segments TCP in software (skb_segment); the big skbs matched at
# net_dev_queue ("greater 2000") are seen again segment by segment at
# net_dev_start_xmit, each segment with its parent's id. With GRO on vb the
# segments are merged again there (skb_gro_receive): the merged ones' tracks
# end, the packet they went into carries the id on to netif_receive_skb.
ethtool -K va tso off
nsenter -t "$B" -n ethtool -K vb gro on
nsenter -t "$B" -n timeout 20 nc -l -p 9100 >/dev/null &
LISTENER=$!
sleep 0.5
if IN_A=1 start skb -f tracepoint:net:net_dev_queue,tracepoint:net:net_dev_start_xmit,tracepoint:net:netif_receive_skb \
  -e "tcp dst port 9100 and greater 2000" --track; then
  tcp_sender 198.18.0.2 9100 1048576
  sleep 0.5
  finish
fi
kill "$LISTENER" 2>/dev/null
wait "$LISTENER" 2>/dev/null
ethtool -K va tso on
nsenter -t "$B" -n ethtool -K vb gro off
# The first big skb's id, its length, and how many segments carry that id on.
segments_of_the_first() {
  first=$(grep -m1 "net_dev_queue va len [0-9]\{4,5\} .* #[0-9]*$" /tmp/out) || return 1
  id=$(echo "$first" | grep -o "#[0-9]*$")
  len=$(echo "$first" | sed "s/.* len \([0-9]*\) .*/\1/")
  segments=$(grep -c "net_dev_start_xmit va len [0-9]* .* $id segment$" /tmp/out)
  [ "$segments" -ge 2 ] && [ $((segments * 1514)) -ge "$len" ] &&
    ! grep -q "net_dev_start_xmit va len [0-9]* .* $id$" /tmp/out
}
# A veth does GRO without an XDP program from 5.13 on; on 5.10 the segments
# reach b one by one, still followed.
merged_again() {
  case $SERIES in
    5.10) ! grep -q " followed merged by GRO" /tmp/err &&
      grep -q "netif_receive_skb vb len 1514 .* #[0-9]* segment$" /tmp/out ;;
    *) grep -q " followed merged by GRO" /tmp/err &&
      grep -q "netif_receive_skb vb len [0-9]\{4,5\} .* #[0-9]* segment$" /tmp/out ;;
  esac
}
check track_into_gso_segments segments_of_the_first
check track_through_gro_merges merged_again

# 6e. --skb-filter and --skb-fields at kernel functions, by fentry and by
# kprobe (the host tests tracepoints): of pings of 100 and 600 bytes only the
# large ones pass 'len > 500 && dev->mtu == 1500', each with its fields.
if start skb -f icmp_rcv,kprobe:ip_rcv -i vb -e "icmp[icmptype] = icmp-echo" --skb-filter 'len > 500 && dev->mtu == 1500' \
  --skb-fields 'len,dev->mtu,protocol' -c 4; then
  ping -c 2 -i 0.3 -s 100 198.18.0.2 >/dev/null
  ping -c 2 -i 0.3 -s 600 198.18.0.2 >/dev/null
  finish
fi
check skb_filter_at_functions sh -c 'grep -q "icmp_rcv attached by fentry" /tmp/err && grep -q "kprobe:ip_rcv attached by kprobe" /tmp/err &&
  [ "$(grep -c "^[0-9:.]* ip_rcv vb len 642 .*ICMP echo request.* {len=628 dev->mtu=1500 protocol=2048}$" /tmp/out)" = 2 ] &&
  [ "$(grep -c "^[0-9:.]* icmp_rcv vb len 642 .*ICMP echo request.* {len=608 dev->mtu=1500 protocol=2048}$" /tmp/out)" = 2 ] &&
  ! grep -q " len 142 " /tmp/out'

# 7. A filter and pcapng at a function, read back by tcpdump.
if start skb -f ip_rcv -i vb -e "icmp[icmptype] = icmp-echo" -w /tmp/ip_rcv.pcapng -c 3; then
  ping -c 3 -i 0.3 198.18.0.2 >/dev/null
  finish
fi
tcpdump -nn -r /tmp/ip_rcv.pcapng >/tmp/out 2>>/tmp/err
check function_filter_and_pcapng sh -c '[ "$(grep -c "IP 198.18.0.1 > 198.18.0.2: ICMP echo request" /tmp/out)" = 3 ] &&
  [ "$(wc -l </tmp/out)" = 3 ]'

# 8. A drop reason read at a kernel function (its name changed in 6.12). Before
# 5.17 no function takes a reason: netcap must say so in one line, exit 2, and
# name the function that does exist.
point=
for candidate in sk_skb_reason_drop kfree_skb_reason; do
  [ -z "$point" ] && /bin/netcap list "$candidate" --functions 2>/dev/null | grep -q "^$candidate@" && point=$candidate
done
if [ -n "$point" ]; then
  if start skb -f "$point" -e "tcp port 9000" -c 1; then
    nc -w 2 198.18.0.2 9000 </dev/null >/dev/null 2>&1
    finish
  fi
  drop_check='grep -q "\[drop NO_SOCKET\]" /tmp/out'
else
  /bin/netcap skb -f kfree_skb_reason >/tmp/out 2>/tmp/err
  echo "exit $?" >>/tmp/out
  drop_check='grep -q "^exit 2$" /tmp/out && [ "$(wc -l </tmp/err)" = 1 ] &&
    grep -q "unknown kernel function .kfree_skb_reason.; nearest: kfree_skb" /tmp/err'
fi
check drop_reason_at_a_function sh -c "$drop_check"

# 9. A pattern: every tcp_v4_* function taking an skb, in one attachment.
if start skb -f 'tcp_v4_*' -e "tcp port 9000" -c 4; then
  nc -w 2 198.18.0.2 9000 </dev/null >/dev/null 2>&1
  finish
fi
# One kprobe-multi link (6.12); else one kprobe each with its cookie (6.1), or
# told apart by address where there are no cookies (5.10).
case $SERIES in
  5.10) pattern_by='kprobe \(one per function, by address\) \(no kprobe_multi here: .*; no attach_cookie here: .*\)' ;;
  6.1) pattern_by='kprobe \(one per function\) \(no kprobe_multi here: .*\)' ;;
  *) pattern_by='kprobe-multi' ;;
esac
export pattern_by
check pattern_attaches_together sh -c 'grep -qE "^netcap: [0-9]+ functions attached by $pattern_by(; the kernel refused .*)?$" /tmp/err &&
  [ "$(grep -o "^[0-9:.]* tcp_v4_[a-z_]*" /tmp/out | cut -d" " -f2 | sort -u | wc -l)" -ge 2 ]'

# 10. Every function that takes an skb (pwru's default), attached and detached in bounded time.
begin=$(date +%s)
if start skb -f '*' -e "icmp" -c 6; then
  attached=$(date +%s)
  ping -c 2 -i 0.3 198.18.0.2 >/dev/null
  finish
fi
ended=$(date +%s)
# Per-function kprobes are stopped at once and removed by a process of their own.
remover=$(sed -n 's/.* kprobes stopped; process \([0-9]*\) removes them in the background.*/\1/p' /tmp/err)
removed=$ended
# Removing them takes the kernel minutes: if netcap had paid for it, its
# remover would have nothing left to do and be gone already.
remover_outlived=no
if [ -n "$remover" ] && kill -0 "$remover" 2>/dev/null; then remover_outlived=yes; fi
if [ -n "$remover" ]; then
  for _ in $(seq 1500); do kill -0 "$remover" 2>/dev/null || break; sleep 0.2; done
  removed=$(date +%s)
fi
echo "NETCAP-VM: info every skb function: $(grep -o "[0-9]* functions attached by [a-z -]*" /tmp/err), attach $((attached - begin)) s, run and stop $((ended - attached)) s, kprobes gone $((removed - ended)) s later"
export remover_outlived
# Ending must not wait for the kernel to remove 1,400 kprobes (it took minutes).
case $SERIES in
  6.12) removal_check='[ -z "$remover" ]' ;;
  *) removal_check='[ "$remover_outlived" = yes ] && grep -q "^netcap: attaching [0-9]*/[0-9]* functions$" /tmp/err' ;;
esac
export removal_check
# (Early on the send path the IP header is not filled in yet: not every line decodes.)
check every_skb_function sh -c '[ "$(grep -o "[0-9]* functions attached" /tmp/err | cut -d" " -f1)" -ge 500 ] &&
  [ "$(wc -l </tmp/out)" = 6 ] && [ "$(grep -c "ICMP echo request" /tmp/out)" -ge 4 ] && eval "$removal_check"'

# 11. Return values: fexit, and its fallback to a kretprobe. (At return the skb must
# still exist: functions that free it, like ip_rcv, show nothing there.)
if start skb -f fexit:ip_route_input_noref -i vb -e icmp -c 2; then
  ping -c 2 -i 0.3 198.18.0.2 >/dev/null
  finish
fi
check fexit_return_value sh -c 'grep -qx "netcap: fexit:ip_route_input_noref attached by fexit" /tmp/err &&
  [ "$(grep -c "ip_route_input_noref vb len 98 IP 198.18.0.1 > 198.18.0.2: ICMP echo request.* \[ret 0\]" /tmp/out)" = 2 ]'
export NETCAP_WITHOUT=fentry
if start skb -f fexit:ip_route_input_noref -i vb -e icmp -c 2; then
  ping -c 2 -i 0.3 198.18.0.2 >/dev/null
  finish
fi
unset NETCAP_WITHOUT
check kretprobe_return_value sh -c 'grep -qx "netcap: fexit:ip_route_input_noref attached by kretprobe (no fentry here: disabled by NETCAP_WITHOUT)" /tmp/err &&
  [ "$(grep -c "ICMP echo request.* \[ret 0\]" /tmp/out)" = 2 ]'

# 12. The send path before the IP header exists: --fake-hdr makes it up from
# the socket; without it such skbs are skipped and counted.
IN_A=1
if start skb -f __ip_queue_xmit -e "tcp dst port 9000" --fake-hdr -c 1; then
  nc -w 2 198.18.0.2 9000 </dev/null >/dev/null 2>&1
  finish
fi
check fake_headers_from_the_socket sh -c 'grep -q "__ip_queue_xmit - len [0-9]* IP 198.18.0.1.[0-9]* > 198.18.0.2.9000: Flags \[S\], seq [0-9]*, win [0-9]*, options \[mss 1460" /tmp/out &&
  grep -q "\[headers synthesized\]" /tmp/out'
if start skb -f __ip_queue_xmit -e "tcp dst port 9000"; then
  nc -w 1 198.18.0.2 9000 </dev/null >/dev/null 2>&1
  finish
fi
check without_fake_headers_skipped_and_counted sh -c '[ ! -s /tmp/out ] && grep -q "skipped without headers" /tmp/err'

# IPv6: the header is made from the socket's IPv6 addresses; the filter sees it.
if start skb -f inet6_csk_xmit -e "ip6 and tcp dst port 9000" --fake-hdr -c 1; then
  nc -w 2 fd00:198:18::2 9000 </dev/null >/dev/null 2>&1
  finish
fi
IN_A=
check fake_ipv6_headers_from_the_socket sh -c 'grep -q "inet6_csk_xmit - len [0-9]* IP6 fd00:198:18::1.[0-9]* > fd00:198:18::2.9000: Flags \[S\]" /tmp/out &&
  grep -q "\[headers synthesized\]" /tmp/out'

# VLAN: the veth moves the 802.1Q tag out of the data (skb->vlan_tci);
# netcap puts it back, so "vlan 100" matches and the frame is 4 bytes longer
# (the text, like tcpdump's without -e, does not show the tag).
$IP link add link va name va.100 type vlan id 100
$IP addr add 198.18.100.1/24 dev va.100
$IP link set va.100 up
nsenter -t "$B" -n $IP link add link vb name vb.100 type vlan id 100
nsenter -t "$B" -n $IP addr add 198.18.100.2/24 dev vb.100
nsenter -t "$B" -n $IP link set vb.100 up
if start skb -f tracepoint:net:netif_receive_skb -i vb -e "vlan 100 and icmp" -c 2; then
  ping -c 2 -i 0.3 198.18.100.2 >/dev/null
  finish
fi
check vlan_tag_put_back sh -c '[ "$(grep -c "netif_receive_skb vb len 102 IP 198.18.100.1 > 198.18.100.2: ICMP echo request" /tmp/out)" = 2 ]'

# User space: a process hands captured frames to f(pkt, len) and fires the
# USDT probe netcap_test:frame(pkt, len); netcap raw sees each frame at both
# (on 6.1 libbpf attaches USDT by plain uprobes, on 6.12 by uprobe-multi).
tcpdump -Z root -i va --immediate-mode -w /tmp/frames.pcap -c 4 icmp 2>/dev/null &
DUMP=$!
sleep 1
ping -c 2 -i 0.3 198.18.0.2 >/dev/null
wait "$DUMP"
mkfifo /tmp/feed
raw_feeder /tmp/frames.pcap </tmp/feed >/tmp/feeder.out &
FEEDER=$!
exec 3>/tmp/feed
IN_A=1
feed_raw() { # -f SPEC: netcap raw on the feeder, one round of frames, four ICMP ones
  if start raw -p "$FEEDER" -f "$1" -c 4; then
    echo go >&3
    finish
  fi
}
feed_raw f
check raw_frames_by_uprobe sh -c '[ "$(grep -c "ICMP echo re" /tmp/out)" = 4 ] && grep -q "f attached by uprobe" /tmp/err'
feed_raw usdt:netcap_test:frame
check raw_frames_by_usdt sh -c '[ "$(grep -c "ICMP echo re" /tmp/out)" = 4 ] &&
  grep -q "usdt:netcap_test:frame attached by usdt" /tmp/err'
# The same frames as one burst of mbufs, at a function and at a USDT probe:
# by bpf_loop, or before 5.17 by a bounded loop, which netcap says.
feed_mbuf() {
  if start mbuf -p "$FEEDER" -f "$1" -e icmp -c 4; then
    echo go >&3
    finish
  fi
}
case $SERIES in
  5.10) loop_check='grep -q "no bpf_loop here: .*: bursts are walked by a bounded loop of at most 1024 mbufs" /tmp/err' ;;
  *) loop_check='! grep -q "bounded loop" /tmp/err' ;;
esac
export loop_check
feed_mbuf rx_burst@2@3
check mbuf_burst_by_uprobe sh -c '[ "$(grep -c "rx_burst - len 98 IP .* ICMP echo re" /tmp/out)" = 4 ] &&
  grep -q "rx_burst attached by uprobe" /tmp/err && eval "$loop_check"'
feed_mbuf usdt:netcap_test:rx@1@2
check mbuf_burst_by_usdt sh -c '[ "$(grep -c "usdt:netcap_test:rx - len 98 IP .* ICMP echo re" /tmp/out)" = 4 ] &&
  grep -q "usdt:netcap_test:rx attached by usdt" /tmp/err && eval "$loop_check"'
IN_A=
exec 3>&-
wait "$FEEDER"

# --bpf-progs: a tc program on vb's ingress drops TCP to port 9000
# (TC_ACT_SHOT), an XDP program on vb drops echo requests (XDP_DROP); both
# built from tests/bpf/ by run.sh. bpftool is the oracle of their ids, and
# of nothing of netcap's being left after it ends.
TC=/sbin/tc  # iproute2: busybox tc has no clsact nor bpf filters
BPFTOOL=/sbin/bpftool
# (exported: the checks run in sh -c, where it must be bpftool, not empty)
export BPFTOOL
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
nsenter -t "$B" -n $TC qdisc add dev vb clsact
nsenter -t "$B" -n $TC filter add dev vb ingress bpf da obj /bpf/tc_drop_port.o sec tc
nsenter -t "$B" -n $IP link set vb xdp obj /bpf/xdp_drop_echo.o sec xdp
TC_ID=$($BPFTOOL prog show | awk -F: '/ sched_cls / && / name drop_tcp_9000 / { print $1; exit }')
XDP_ID=$($BPFTOOL prog show | awk -F: '/ xdp / && / name drop_echo_reque/ { print $1; exit }')
export TC_ID XDP_ID
progs_traffic() {
  ping -c 3 -i 0.3 -W 1 198.18.0.2 >/dev/null 2>&1
  nc -w 1 198.18.0.2 9000 </dev/null >/dev/null 2>&1
  nc -w 1 198.18.0.2 9001 </dev/null >/dev/null 2>&1
}
if start skb --bpf-progs -i vb -e 'icmp or tcp port 9000 or tcp port 9001'; then
  progs_traffic
  stop
fi
check bpf_progs_attached sh -c '[ -n "$TC_ID" ] && [ -n "$XDP_ID" ] &&
  grep -q "tracing .*drop_tcp_9000\[$TC_ID\] (tc)" /tmp/err && grep -q "drop_echo_requests\[$XDP_ID\] (xdp)" /tmp/err &&
  grep -q "tc:drop_tcp_9000\[$TC_ID\] attached by fentry" /tmp/err &&
  grep -q "tc:drop_tcp_9000\[$TC_ID\]:exit attached by fexit" /tmp/err &&
  grep -q "xdp:drop_echo_requests\[$XDP_ID\]:exit attached by fexit" /tmp/err'
check xdp_drop sh -c '[ "$(grep -c "xdp:drop_echo_requests\[$XDP_ID\] vb len 98 IP 198.18.0.1 > 198.18.0.2: ICMP echo request" /tmp/out)" = 3 ] &&
  [ "$(grep -c "xdp:drop_echo_requests\[$XDP_ID\]:exit vb len 98 IP 198.18.0.1 > 198.18.0.2: ICMP echo request.* \[drop XDP_DROP at xdp:drop_echo_requests\[$XDP_ID\]:exit\]" /tmp/out)" = 3 ] &&
  ! grep -q "tc:.*ICMP echo request" /tmp/out'
check tc_shot sh -c 'grep -q "tc:drop_tcp_9000\[$TC_ID\]:exit vb .* > 198.18.0.2.9000: Flags \[S\].* \[drop TC_ACT_SHOT at tc:drop_tcp_9000\[$TC_ID\]:exit\]" /tmp/out &&
  grep -q "tc:drop_tcp_9000\[$TC_ID\]:exit vb .* > 198.18.0.2.9001: Flags \[S\].* \[verdict TC_ACT_OK\]" /tmp/out &&
  grep -q "xdp:drop_echo_requests\[$XDP_ID\]:exit vb .* > 198.18.0.2.9000: Flags \[S\].* \[verdict XDP_PASS\]" /tmp/out &&
  ! grep -q "9001: .*TC_ACT_SHOT" /tmp/out'
check bpf_progs_summary sh -c 'grep -q "XDP_DROP *xdp:drop_echo_requests\[$XDP_ID\]:exit *vb" /tmp/err &&
  grep -q "TC_ACT_SHOT *tc:drop_tcp_9000\[$TC_ID\]:exit *vb" /tmp/err &&
  [ -z "$($BPFTOOL prog show | grep " tracing ")" ]'
# The same into pcapng, carried to the host (base64 on the console) for
# tshark to read the epb_verdict options.
if start skb --bpf-progs=xdp,drop_tcp_9000 -i vb -e 'icmp or tcp port 9000' -w /tmp/progs.pcapng; then
  progs_traffic
  stop
fi
check bpf_progs_written sh -c 'grep -q "written" /tmp/err && [ -s /tmp/progs.pcapng ]'
echo "NETCAP-VM: PCAPNG-BEGIN"
base64 /tmp/progs.pcapng
echo "NETCAP-VM: PCAPNG-END"
nsenter -t "$B" -n $IP link set vb xdp off
nsenter -t "$B" -n $TC qdisc del dev vb clsact

# --nft: two base chains at input in namespace b, the first dropping TCP
# to port 9100, the second jumping to a chain that drops echo requests over
# 300 bytes (busybox nc has no UDP); nft's own listing (-a) is the oracle of
# the chains' and rules' handles. 5.10 has no BTF for modules, which fexit
# on nft_do_chain needs: one line, exit 2.
NFT=/sbin/nft
nsenter -t "$B" -n $NFT -f - <<'RULES'
table inet netcap_test {
	chain big_echo { icmp type echo-request ip length > 300 drop; }
	chain first { type filter hook input priority 0; policy accept; tcp dport 9100 drop; }
	chain second { type filter hook input priority 10; policy accept; ip protocol icmp jump big_echo; }
}
RULES
LISTED=$(nsenter -t "$B" -n $NFT -a list table inet netcap_test)
FIRST=$(echo "$LISTED" | sed -n 's/.*chain first { # handle \([0-9]*\).*/\1/p')
TCP_RULE=$(echo "$LISTED" | sed -n 's/.*tcp dport 9100 drop # handle \([0-9]*\).*/\1/p')
BIG_RULE=$(echo "$LISTED" | sed -n 's/.* drop # handle \([0-9]*\)$/\1/p' | grep -vx "$TCP_RULE")
export FIRST TCP_RULE BIG_RULE
nft_traffic() {
  # netcap's own table is there while it runs, in its namespace.
  nsenter -t "$B" -n $NFT list tables >/tmp/tables_during
  ping -c 2 -i 0.3 -W 1 198.18.0.2 >/dev/null 2>&1
  nc -w 1 198.18.0.2 9100 </dev/null >/dev/null 2>&1
  ping -c 1 -s 400 -W 1 198.18.0.2 >/dev/null 2>&1
}
# 5.10: the same two runs are refused, each in one line, nothing left loaded.
nft_refused='grep -q "^exit 2$" /tmp/out && [ "$(wc -l </tmp/err)" = 1 ] &&
  grep -q "nf_tables module has no BTF here" /tmp/err && [ -z "$($BPFTOOL prog show | grep " tracing ")" ]'
export nft_refused
nft_run() {
  rm -f /tmp/tables_during
  if [ "$SERIES" = 5.10 ]; then
    nsenter -t "$B" -n /bin/netcap skb "$@" >/tmp/out 2>/tmp/err
    echo "exit $?" >>/tmp/out
  elif start skb "$@"; then
    nft_traffic
    stop
  fi
  nsenter -t "$B" -n $NFT list tables >/tmp/tables_after
}
nft_run --nft -e 'tcp port 9100 or icmp'
# Small echo requests: no rule of either chain decides, the policies accept.
check nft_verdicts sh -c 'if [ "$SERIES" = 5.10 ]; then eval "$nft_refused"; else
  grep -q "nft_do_chain attached by fexit" /tmp/err && [ -n "$TCP_RULE" ] && [ -n "$BIG_RULE" ] &&
  [ "$(grep -c "nft_do_chain vb len 98 IP 198.18.0.1 > 198.18.0.2: ICMP echo request.* \[nft inet netcap_test first policy accept\]" /tmp/out)" = 2 ] &&
  [ "$(grep -c "nft_do_chain vb len 98 IP 198.18.0.1 > 198.18.0.2: ICMP echo request.* \[nft inet netcap_test second policy accept\]" /tmp/out)" = 2 ] &&
  grep -q "198.18.0.2.9100: Flags \[S\].* \[drop NF_DROP at nft inet netcap_test first rule $TCP_RULE\]" /tmp/out &&
  ! grep -q "9100: .*second" /tmp/out &&
  grep -q "nft_do_chain vb len 442 IP 198.18.0.1 > 198.18.0.2: ICMP echo request.* \[nft inet netcap_test first policy accept\]" /tmp/out &&
  grep -q "nft_do_chain vb len 442 IP 198.18.0.1 > 198.18.0.2: ICMP echo request.* \[drop NF_DROP at nft inet netcap_test second>big_echo rule $BIG_RULE\]" /tmp/out &&
  grep -q "NF_DROP *nft inet netcap_test first rule $TCP_RULE *vb" /tmp/err &&
  grep -q "NF_DROP *nft inet netcap_test second>big_echo rule $BIG_RULE *vb" /tmp/err &&
  ! grep -q "netcap_trace_" /tmp/out; fi'
# netcap_trace_PID was there during the run and went with netcap.
check nft_own_table_goes sh -c 'if [ "$SERIES" = 5.10 ]; then ! grep -q netcap_trace_ /tmp/tables_after; else
  grep -q "^table inet netcap_trace_[0-9]*$" /tmp/tables_during && grep -q "netcap_test" /tmp/tables_after &&
  ! grep -q netcap_trace_ /tmp/tables_after; fi'
nft_run --nft -e 'tcp port 9100' --json -c 1
check nft_chain_handle sh -c 'if [ "$SERIES" = 5.10 ]; then eval "$nft_refused"; else [ -n "$FIRST" ] &&
  grep -q "\"chain\":\"first\",\"chain_handle\":$FIRST,\"code\":[0-9]*,\"engine\":\"nftables\",\"family\":\"inet\",\"hook\":\"input\",\"rule\":{\"chain\":\"first\",\"handle\":$TCP_RULE},\"table\":\"netcap_test\",\"verdict\":\"drop\"" /tmp/out &&
  grep -q "\"drop\":{\"location\":\"nft inet netcap_test first rule $TCP_RULE\",\"reason\":\"NF_DROP\"}" /tmp/out; fi'
nsenter -t "$B" -n $NFT delete table inet netcap_test

# --nft on legacy iptables: iptables-legacy (x_tables, not nf_tables) in
# namespace b drops TCP to port 9200 at filter INPUT, ip6tables-legacy drops
# IPv6 echo requests there; echo replies leave by filter OUTPUT. The
# modules come only now, so that the tables are not there for the checks
# above. The rules' own packet counters (iptables -v -x) are the oracle of
# how many drops netcap must show. 5.10: no module BTF, refused in one line.
for module in x_tables ip_tables iptable_filter xt_tcpudp ip6_tables ip6table_filter; do insmod /lib/modules/$module.ko; done
IPT=/sbin/iptables-legacy
IP6T=/sbin/ip6tables-legacy
nsenter -t "$B" -n $IPT -A INPUT -p tcp --dport 9200 -j DROP
nsenter -t "$B" -n $IP6T -A INPUT -p ipv6-icmp --icmpv6-type echo-request -j DROP
if [ "$SERIES" = 5.10 ]; then
  nsenter -t "$B" -n /bin/netcap skb --nft -e 'tcp port 9200' >/tmp/out 2>/tmp/err
  echo "exit $?" >>/tmp/out
elif start skb --nft -e 'tcp port 9200 or icmp or icmp6'; then
  ping -c 2 -i 0.3 -W 1 198.18.0.2 >/dev/null 2>&1
  nc -w 1 198.18.0.2 9200 </dev/null >/dev/null 2>&1
  ping -6 -c 2 -i 0.3 -W 1 fd00:198:18::2 >/dev/null 2>&1
  stop
fi
# The DROP rules' packet counts, as iptables lists them.
IPT_DROPS=$(nsenter -t "$B" -n $IPT -L INPUT -v -x -n | awk '$3 == "DROP" { print $1 }')
IP6T_DROPS=$(nsenter -t "$B" -n $IP6T -L INPUT -v -x -n | awk '$3 == "DROP" { print $1 }')
export IPT_DROPS IP6T_DROPS
check iptables_tables_and_chains sh -c 'if [ "$SERIES" = 5.10 ]; then grep -q "^exit 2$" /tmp/out &&
  [ "$(wc -l </tmp/err)" = 1 ] && grep -q "nf_tables, ip_tables and ip6_tables modules have no BTF here" /tmp/err &&
  [ -z "$($BPFTOOL prog show | grep " tracing ")" ]; else
  grep -q "ipt_do_table attached by fexit" /tmp/err && grep -q "ip6t_do_table attached by fexit" /tmp/err &&
  [ "$IPT_DROPS" -ge 1 ] && [ "$IP6T_DROPS" = 2 ] &&
  [ "$(grep -c "ipt_do_table vb len 98 IP 198.18.0.1 > 198.18.0.2: ICMP echo request.* \[iptables filter INPUT accept\]$" /tmp/out)" = 2 ] &&
  [ "$(grep -c "ipt_do_table .*IP 198.18.0.2 > 198.18.0.1: ICMP echo reply.* \[iptables filter OUTPUT accept\]$" /tmp/out)" = 2 ] &&
  [ "$(grep -c "ipt_do_table vb .*198.18.0.2.9200: Flags \[S\].* \[drop NF_DROP at iptables filter INPUT\]$" /tmp/out)" = "$IPT_DROPS" ] &&
  [ "$(grep -c "ip6t_do_table vb .*fd00:198:18::2: ICMP6, echo request.* \[drop NF_DROP at ip6tables filter INPUT\]$" /tmp/out)" = 2 ] &&
  grep -q "NF_DROP *iptables filter INPUT *vb" /tmp/err && grep -q "NF_DROP *ip6tables filter INPUT *vb" /tmp/err; fi'
nsenter -t "$B" -n $IPT -F INPUT
nsenter -t "$B" -n $IP6T -F INPUT

# Cost of --nft, for the record (info, 6.12 only, like the line below): ns
# per run of each of its programs, and of the plain fentry at icmp_rcv
# beside them, over 300 pings into namespace b, where an nftables chain
# accepts them and the (now empty) legacy filter table is still evaluated:
# per ping, ipt_do_table at INPUT and OUTPUT, nft_do_chain at input and in
# netcap's own chains (which return at once), nft_trace_notify at the rule.
netfilter_cost() {
  nsenter -t "$B" -n $NFT -f - <<'RULES'
table inet netcap_cost {
	chain input { type filter hook input priority 0; policy accept; ip protocol icmp accept; }
}
RULES
  echo 1 >/proc/sys/kernel/bpf_stats_enabled
  if start skb --nft -f icmp_rcv -e icmp; then
    ping -c 300 -i 0.01 -q 198.18.0.2 >/dev/null 2>&1
    $BPFTOOL prog show >/tmp/progstats
    stop
  fi
  echo 0 >/proc/sys/kernel/bpf_stats_enabled
  nsenter -t "$B" -n $NFT delete table inet netcap_cost
  awk '/ name netcap_/ { for (i = 1; i < NF; i++) { if ($i == "name") n = $(i + 1); if ($i == "run_time_ns") t[n] += $(i + 1); if ($i == "run_cnt") c[n] += $(i + 1) } }
    END { for (n in c) if (c[n]) printf "%s %.0f (%d runs); ", n, t[n] / c[n], c[n] }' /tmp/progstats
}
if [ "$SERIES" = 6.12 ]; then
  echo "NETCAP-VM: info cost of --nft, ns per run: $(netfilter_cost)"
fi

# Cost, for the record (info, not a check; TCG emulates the CPU, so only the
# ratios mean something): ns per event of the program at icmp_rcv (fentry,
# the first netcap loads, so the lowest prog_id among its descriptors), from
# its run_time_ns/run_cnt with kernel.bpf_stats_enabled (netcap run directly,
# not under nsenter, so that $NETCAP is its PID).
cost_at_icmp_rcv() {
  echo 1 >/proc/sys/kernel/bpf_stats_enabled
  IN_A=1 start skb -f icmp_rcv "$@" || return
  ping -c 300 -i 0.01 -q 198.18.0.2 >/dev/null 2>&1
  stats=$(for fd in /proc/"$NETCAP"/fdinfo/*; do
    # (a link's fdinfo names its program too, without the counts)
    awk '/^prog_id:/ { id = $2 } /^run_time_ns:/ { t = $2 } /^run_cnt:/ { c = $2 } END { if (id && c != "") print id, t, c }' "$fd"
  done | sort -n | head -n 1)
  finish
  echo 0 >/proc/sys/kernel/bpf_stats_enabled
  echo "$stats" | awk '{ printf "%.0f", ($3 ? $2 / $3 : 0) }'
}
# Measured on one kernel only: five more runs under TCG on each would add
# minutes to CI for an info line.
if [ "$SERIES" = 6.12 ]; then
  echo "NETCAP-VM: info cost at icmp_rcv by fentry, ns per event: never matching $(cost_at_icmp_rcv -e 'tcp port 1'), the same with --track $(cost_at_icmp_rcv -e 'tcp port 1' --track), matching $(cost_at_icmp_rcv -e icmp), matching with --track (each a first sight) $(cost_at_icmp_rcv -e icmp --track), followed since netif_receive_skb (a later sighting) $(cost_at_icmp_rcv -f tracepoint:net:netif_receive_skb -e icmp --track)"
fi
