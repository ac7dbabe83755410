#!/usr/bin/env bash
# --gather under a flood for a long time: netcap's RSS sampled as it runs.
# Journeys cross four tracepoints of a veth; the largest buffer and timeout
# (--gather-buffer-size 2048 --gather-timeout 60) keep the most state. Memory
# must stay flat: per-hop delays live in a fixed-size histogram, pending
# journeys in a buffer of the size given. Traffic stays between two network
# namespaces (198.18.0.0/15); the flood is bounded by the duration.
# Usage (root): benches/gather_soak.sh [SECONDS [SAMPLE_EVERY_SECONDS]]
#   (NETCAP=/path/to/netcap to measure another build)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../scripts/lab.sh
source scripts/lab.sh
duration=${1:-3600}
every=${2:-60}
pick_netcap

a=ncsoak-a b=ncsoak-b
open_lab
points="tp:net:net_dev_queue,tp:net:net_dev_start_xmit,tp:net:netif_receive_skb,tp:skb:consume_skb"
start_netcap skb -f "$points" -e icmp --gather --gather-buffer-size 2048 --gather-timeout 60 >/dev/null
ip netns exec "$a" ping -f -q -w "$duration" 198.18.0.2 >"$work/ping" 2>&1 &
ping_pid=$!
pids+=("$ping_pid")

rss_mib() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$netcap_pid/status"; }
echo "seconds  rss_MiB"
start=$(date +%s)
while kill -0 "$ping_pid" 2>/dev/null; do
  printf '%7d  %7s\n' $(( $(date +%s) - start )) "$(rss_mib)"
  for _ in $(seq "$every"); do kill -0 "$ping_pid" 2>/dev/null || break; sleep 1; done
done
printf '%7d  %7s  (flood over)\n' $(( $(date +%s) - start )) "$(rss_mib)"
stop_netcap
grep -E "packets transmitted" "$work/ping" || true
grep -E "packets captured|→" "$work/err" || true
