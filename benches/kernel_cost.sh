#!/usr/bin/env bash
# In-kernel cost per event of netcap's program on tracepoint
# net:netif_receive_skb, beside an empty program on the same tracepoint (the
# floor), measured with kernel.bpf_stats_enabled (run_time_ns / run_cnt).
# bpftrace doing a comparable match (TCP port 1, read from the packet) on
# the same tracepoint is measured beside it.
# Traffic: flood pings between two network namespaces (198.18.0.0/15),
# bounded by count. Each variant runs $ROUNDS times; the median is reported.
# BASELINE=/path/to/other/netcap adds each netcap variant measured with that
# build too (named VARIANT@base), in the same rounds: before/after a change.
# Usage (root): [VARIANTS="nomatch capture …"] [BASELINE=…] benches/kernel_cost.sh [ROUNDS] [PINGS]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../scripts/lab.sh
source scripts/lab.sh
rounds=${1:-5}
pings=${2:-20000}
pick_netcap

a=ncbench-a b=ncbench-b
# bpftrace finds tracepoints through tracefs; mounted here if it is not, and unmounted after.
command -v bpftrace >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bpftrace >/dev/null; }
mounted_tracefs=no
if [ ! -e /sys/kernel/tracing/events ]; then mount -t tracefs nodev /sys/kernel/tracing && mounted_tracefs=yes; fi
close_lab_extra() {
  if [ "$mounted_tracefs" = yes ]; then umount /sys/kernel/tracing || true; fi
}
open_lab
set_bpf_stats 1

# One measurement: ns per event for netcap started with "$@".
measure() {
  start_netcap "$@" >/dev/null
  ip netns exec "$a" ping -f -q -c "$pings" -w 60 198.18.0.2 >/dev/null
  read -r time count < <(program_stats)
  stop_netcap
  awk -v t="$time" -v c="$count" 'BEGIN { printf "%.1f\n", (c ? t / c : 0) }'
}

# The same measurement for bpftrace: a tracepoint program that reads the IP
# protocol and the TCP ports from the packet and counts TCP port 1.
cat >"$work/match.bt" <<'BT'
tracepoint:net:netif_receive_skb
{
  $skb = (struct sk_buff *)args->skbaddr;
  $iph = (struct iphdr *)($skb->head + $skb->network_header);
  if ($iph->protocol == 6) {
    $tcp = (struct tcphdr *)($skb->head + $skb->transport_header);
    if ($tcp->dest == 0x0100 || $tcp->source == 0x0100) { @matched = count(); }
  }
}
BT
measure_bpftrace() {
  bpftrace "$work/match.bt" >"$work/bt.out" 2>&1 &
  local bt=$!
  pids+=("$bt")
  for _ in $(seq 2000); do grep -q "Attaching" "$work/bt.out" 2>/dev/null && break; sleep 0.01; done
  sleep 0.5
  ip netns exec "$a" ping -f -q -c "$pings" -w 60 198.18.0.2 >/dev/null
  read -r time count < <(program_stats "tracepoint  name netif_receive_s")
  kill -INT "$bt" 2>/dev/null || true
  wait "$bt" 2>/dev/null || true
  awk -v t="$time" -v c="$count" 'BEGIN { printf "%.1f\n", (c ? t / c : 0) }'
}

# --track adds netcap's own programs at skb:kfree_skb and skb:consume_skb.
# The measured point's program is loaded first, so listed first: "first"
# reports it alone (ns per event at the same tracepoint), "rest" the others
# (ns per run: per skb freed anywhere on the machine while netcap runs).
measure_track() {
  local which=$1
  shift
  start_netcap "$@" >/dev/null
  ip netns exec "$a" ping -f -q -c "$pings" -w 60 198.18.0.2 >/dev/null
  read -r time count < <(bpftool prog show | awk -v which="$which" '/name netcap_/ {
      n++; for (i = 1; i <= NF; i++) {
        if ($i == "run_time_ns" && ((which == "first") == (n == 1))) t += $(i + 1)
        if ($i == "run_cnt" && ((which == "first") == (n == 1))) c += $(i + 1) } }
    END { print t + 0, c + 0 }')
  stop_netcap
  awk -v t="$time" -v c="$count" 'BEGIN { printf "%.1f\n", (c ? t / c : 0) }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

point=tp:net:netif_receive_skb
declare -A cost
# VARIANTS picks some (e.g. VARIANTS="floor nomatch"); the floor always runs.
read -r -a variants <<<"${VARIANTS:-nomatch bpftrace match capture capture1500}"
variants=(floor "${variants[@]/floor/}")
if [ -n "${BASELINE:-}" ]; then
  for v in "${variants[@]}"; do
    case $v in floor | bpftrace | "") ;; *) variants+=("$v@base") ;; esac
  done
fi
run_variant() {
  if [[ $1 == *@base ]]; then
    local ours=$netcap
    netcap=$BASELINE
    run_variant "${1%@base}"
    netcap=$ours
    return
  fi
  case $1 in
    floor) measure skb -f $point --bench-floor;;
    nomatch) measure skb -f $point -i veth-b -e 'tcp port 1';;
    bpftrace) measure_bpftrace;;
    match) measure skb -f $point -i veth-b -e 'icmp';;
    capture) measure skb -f $point -i veth-b;;
    capture1500) measure skb -f $point -i veth-b --capture-max-size 1500;;
    nomatch_track) measure_track first skb -f $point -i veth-b -e 'tcp port 1' --track;;
    match_track) measure_track first skb -f $point -i veth-b -e 'icmp' --track;;
    track_ends) measure_track rest skb -f $point -i veth-b -e 'icmp' --track;;
    track_ends_idle) measure_track rest skb -f $point -i veth-b -e 'tcp port 1' --track;;
    # Every packet matched at net_dev_queue before: each event at the measured point is a later sighting.
    followed_track) measure_track first skb -f $point,tp:net:net_dev_queue -e 'icmp' --track;;
    # Without -i: both directions' packets are wanted, as followed_track's are, so per event they compare.
    match_both) measure skb -f $point -e 'icmp';;
    match_track_both) measure_track first skb -f $point -e 'icmp' --track;;
    skb_filter) measure skb -f $point -i veth-b --skb-filter 'mark == 0x10';;
    skb_filter_deref) measure skb -f $point -i veth-b --skb-filter 'dev->mtu == 9000';;
    *) echo "kernel_cost.sh: unknown variant '$1' (floor nomatch bpftrace match capture capture1500 nomatch_track match_track track_ends track_ends_idle followed_track match_both match_track_both skb_filter skb_filter_deref)" >&2; exit 2;;
  esac
}
for round in $(seq "$rounds"); do
  # Interleaved, so that machine noise hits every variant alike.
  for v in "${variants[@]}"; do
    [ -n "$v" ] && run_variant "$v" >>"$work/$v"
  done
  echo "round $round of $rounds done" >&2
done
for v in "${variants[@]}"; do [ -n "$v" ] && cost[$v]=$(median <"$work/$v"); done

echo "| netcap on $point ($pings flood pings, median of $rounds) | ns per event | × floor |"
echo "|---|---:|---:|"
describe() {
  if [[ $1 == *@base ]]; then echo "$(describe "${1%@base}") — baseline build"; return; fi
  case $1 in
    floor) echo "empty tp_btf program (the floor)";;
    nomatch) echo "-i veth-b -e 'tcp port 1' (matches nothing)";;
    bpftrace) echo "bpftrace: tracepoint reading IP protocol and TCP ports, counting port 1 (matches nothing)";;
    match) echo "-i veth-b -e 'icmp' (matches all), 256 bytes to the ring buffer";;
    capture) echo "-i veth-b, no filter, 256 bytes to the ring buffer";;
    capture1500) echo "-i veth-b, no filter, --capture-max-size 1500";;
    nomatch_track) echo "nomatch with --track: one map lookup more";;
    match_track) echo "match with --track: every packet starts a track";;
    track_ends) echo "--track's programs at kfree_skb/consume_skb, per skb freed";;
    track_ends_idle) echo "the same while nothing is followed (-e 'tcp port 1')";;
    followed_track) echo "--track, a packet followed since net_dev_queue: a later sighting, 256 bytes to the ring buffer";;
    match_both) echo "-e 'icmp' without -i: every event wanted, 256 bytes to the ring buffer";;
    match_track_both) echo "the same with --track: every event starts a track";;
    skb_filter) echo "-i veth-b --skb-filter 'mark == 0x10' (matches nothing: one field read)";;
    skb_filter_deref) echo "-i veth-b --skb-filter 'dev->mtu == 9000' (matches nothing: a pointer and a field)";;
  esac
}
for v in "${variants[@]}"; do
  [ -n "$v" ] || continue
  awk -v d="$(describe "$v")" -v c="${cost[$v]}" -v f="${cost[floor]}" \
    'BEGIN { printf "| %s | %.0f | %.2f |\n", d, c, (f ? c / f : 0) }'
done
