#!/usr/bin/env bash
# How long netcap takes to exit after SIGINT while a flood keeps its ring
# buffer busy: --json to a file, and -t -nn with a 64 MiB ring (the cases of
# issue 23). Each round starts netcap in $b, floods it from $a for 2 s, sends
# SIGINT and times the exit; the flood is bounded (ping -w). Traffic stays
# between two network namespaces (198.18.0.0/15).
# Usage (root): benches/stop_latency.sh [ROUNDS]   (NETCAP=… for another build)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../scripts/lab.sh
source scripts/lab.sh
rounds=${1:-5}
pick_netcap

a=ncstop-a b=ncstop-b
open_lab
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Prints the milliseconds from SIGINT to exit for netcap "$@" under a flood (30 s cap).
stop_ms() {
  start_netcap "$@" >"$work/out"
  ip netns exec "$a" ping -f -q -w 40 198.18.0.2 >/dev/null 2>&1 &
  local flood=$!
  pids+=("$flood")
  sleep 2
  local begin
  begin=$(now_ms)
  kill -INT "$netcap_pid"
  for _ in $(seq 3000); do kill -0 "$netcap_pid" 2>/dev/null || break; sleep 0.01; done
  local took=$(( $(now_ms) - begin ))
  kill -KILL "$netcap_pid" 2>/dev/null || true
  wait "$netcap_pid" 2>/dev/null || true
  kill -INT "$flood" 2>/dev/null || true
  wait "$flood" 2>/dev/null || true
  echo "$took"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for _ in $(seq "$rounds"); do
  stop_ms skb -f tp:net:netif_receive_skb -i veth-b --json >>"$work/json"
  stop_ms skb -f tp:net:netif_receive_skb -i veth-b -t -nn --ring-buffer-mb 64 >>"$work/tcpdump"
done
echo "| SIGINT under a flood ($rounds rounds; 30000 ms means it had not exited) | median ms | max ms |"
echo "|---|---:|---:|"
for v in json tcpdump; do
  printf '| %s | %s | %s |\n' "$v" "$(median <"$work/$v")" "$(sort -n "$work/$v" | tail -1)"
done
