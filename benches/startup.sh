#!/usr/bin/env bash
# Start-up costs, side by side in one run: the static release against the
# dynamically linked build on the same work (planning a filtered capture:
# BTF, the features probes, libpcap's compile, the translation), and
# `netcap features` against bpftool's own kernel probe. Prints the median
# of ROUNDS wall-clock milliseconds for each and their ratio.
# Usage (root): benches/startup.sh [ROUNDS]   (after scripts/release.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-21}
static=target/dist/netcap
dynamic=target/release/netcap
[ -x "$static" ] && [ -x "$dynamic" ] || { echo "startup: build both (cargo build --release; scripts/release.sh)" >&2; exit 2; }

now_us() { echo $(( $(date +%s%N) / 1000 )); }
# Median microseconds of "$@" over the rounds.
median_us() {
  local times=()
  for _ in $(seq "$rounds"); do
    local begin
    begin=$(now_us)
    "$@" >/dev/null 2>&1
    times+=($(( $(now_us) - begin )))
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (rounds + 1) / 2 ))p"
}
compare() { # label, command A (words), command B (words)
  local label=$1 a b
  a=$(median_us $2)
  b=$(median_us $3)
  printf '%-44s %8.1f ms %8.1f ms   ratio %.2f\n' "$label" "$(echo "$a / 1000" | bc -l)" "$(echo "$b / 1000" | bc -l)" "$(echo "$a / $b" | bc -l)"
}
plan="skb -f tp:net:netif_receive_skb,tp:skb:kfree_skb -e tcp[tcpflags]&tcp-syn!=0 --dry-run"
printf '%-44s %11s %11s\n' "" "A" "B"
compare "plan a filtered capture: static / dynamic" "$static $plan" "$dynamic $plan"
compare "netcap features / bpftool feature probe" "$dynamic features" "bpftool feature probe kernel"
compare "netcap version: static / dynamic" "$static version" "$dynamic version"
