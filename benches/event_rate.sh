#!/usr/bin/env bash
# Events per second netcap writes to pcapng, and the loss it reports when
# events come faster than it can write them:
#   1. the user-space half alone (decode + pcapng) on one core, fed records
#      as the kernel writes them (`netcap bench-sink`);
#   2. end to end from the kernel: flood pings between two namespaces
#      (198.18.0.0/15, bounded by count), four tracepoints, everything to
#      pcapng; and from user space: a uprobe on a function called in a loop;
#   3. loss: a 1 MiB ring buffer and an output that stalls for 5 s: netcap
#      must report the loss, and captured + lost must equal the number of
#      times its program ran (kernel.bpf_stats_enabled).
# Usage (root): benches/event_rate.sh [ROUNDS] [FLOOD_PINGS_AT_ONCE]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../scripts/lab.sh
source scripts/lab.sh
rounds=${1:-3}
floods=${2:-2}
pick_netcap

a=ncrate-a b=ncrate-b
open_lab
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
four="tp:net:net_dev_queue,tp:net:net_dev_start_xmit,tp:net:netif_receive_skb,tp:skb:consume_skb"
cc -O2 -o "$work/event_source" benches/event_source.c

for round in $(seq "$rounds"); do
  # 1. One core, 2 million records.
  taskset -c 1 "$netcap" bench-sink 2000000 "$work/sink.pcapng" | awk '{ print $(NF - 1) }' >>"$work/sink"
  rm -f "$work/sink.pcapng"

  # 2a. Kernel events: $floods flood pings at once, 4 points, everything to pcapng.
  start_netcap skb -f "$four" -w "$work/all.pcapng" >/dev/null
  began=$(date +%s.%N)
  flooders=()
  for _ in $(seq "$floods"); do
    ip netns exec "$a" ping -f -q -c 100000 -w 30 198.18.0.2 >/dev/null &
    flooders+=("$!")
  done
  wait "${flooders[@]}" || true
  ended=$(date +%s.%N)
  stop_netcap
  read -r captured lost < <(sed -n 's/.* \([0-9]*\) packets captured, \([0-9]*\) lost.*/\1 \2/p' "$work/err")
  awk -v n="$captured" -v b="$began" -v e="$ended" 'BEGIN { printf "%.0f\n", n / (e - b) }' >>"$work/kernel"
  echo "$lost" >>"$work/kernel_lost"
  rm -f "$work/all.pcapng"

  # 2b. User-space events: a uprobe on f(), called a million times in a loop.
  start_netcap raw -f "$work/event_source:f" -w "$work/raw.pcapng" >/dev/null
  taskset -c 0 "$work/event_source" 1000000 | awk '{ print $2 }' >>"$work/uprobe"
  stop_netcap
  sed -n 's/.* \([0-9]*\) lost (ring.*/\1/p' "$work/err" >>"$work/uprobe_lost"
  rm -f "$work/raw.pcapng"

  # 3. Loss, counted: the output stalls for 5 s while a flood fills a 1 MiB
  # ring. No -i: the count of program runs covers every device too.
  set_bpf_stats 1
  rm -f "$work/out.fifo" && mkfifo "$work/out.fifo"
  { exec 3<"$work/out.fifo"; sleep 5; cat <&3 >/dev/null; } &
  reader=$!
  ip netns exec "$b" "$netcap" skb -f tp:net:netif_receive_skb --ring-buffer-mb 1 -w "$work/out.fifo" \
    2>"$work/err" &
  stalled=$!
  pids+=("$reader" "$stalled")
  for _ in $(seq 2000); do grep -q "Ctrl-C to stop" "$work/err" 2>/dev/null && break; sleep 0.01; done
  stall_began=$(date +%s)
  ip netns exec "$a" ping -f -q -c 50000 -w 30 198.18.0.2 >/dev/null
  # Past the stall, and time for netcap to write what it still holds.
  while [ $(($(date +%s) - stall_began)) -lt 7 ]; do sleep 0.2; done
  read -r _ runs < <(program_stats)
  kill -INT "$stalled" 2>/dev/null || true
  wait "$stalled" || true
  wait "$reader" || true
  set_bpf_stats 0
  read -r captured lost < <(sed -n 's/.* \([0-9]*\) packets captured, \([0-9]*\) lost.*/\1 \2/p' "$work/err")
  echo "$runs $captured $lost" >>"$work/loss"
  echo "round $round of $rounds done" >&2
done

echo "| measure (median of $rounds) | value |"
echo "|---|---:|"
echo "| user-space half alone, one core: records decoded and written to pcapng | $(median <"$work/sink") events/s |"
echo "| kernel → pcapng, $floods flood pings × 4 tracepoints, everything written | $(median <"$work/kernel") events/s, lost $(median <"$work/kernel_lost") |"
echo "| user space → pcapng, uprobe on a function called in a loop (netcap raw) | $(median <"$work/uprobe") events/s, lost $(median <"$work/uprobe_lost") |"
echo
echo "Loss accounting, 1 MiB ring, output stalled for 5 s, 50000 flood pings (per round):"
while read -r runs captured lost; do
  echo "    program runs $runs = captured $captured + lost $lost + $((runs - captured - lost)) unaccounted"
done <"$work/loss"
