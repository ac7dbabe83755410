#!/usr/bin/env bash
# netcap read against tcpdump -nn -r on the same pcapng files of a million
# packets, output to /dev/null, side by side in one run: the decoder's
# family mix, bulk TCP, and netcap's own pcapng (read back as its events:
# trace point, device, drop). Prints the median of ROUNDS wall-clock seconds
# for each and the median of the pairwise ratios (below 1: netcap is faster).
# Usage: benches/read_speed.sh [ROUNDS] [COUNT]   (after cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
count=${2:-1000000}
netcap=target/release/netcap
[ -x "$netcap" ] || { echo "read_speed: cargo build --release first" >&2; exit 2; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
/usr/bin/python3 benches/read_corpus.py "$dir" "$count"

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
elapsed_ms() { local begin; begin=$(now_ms); "$@" >/dev/null 2>&1; echo $(( $(now_ms) - begin )); }
median() { sort -n | sed -n "$(( (rounds + 1) / 2 ))p"; }
printf '%-32s %12s %12s %14s\n' "$count packets, to /dev/null" "netcap read" "tcpdump -nn" "ratio (pairs)"
for corpus in mix tcp netcap; do
  file="$dir/$corpus.pcapng"
  ours=() theirs=() ratios=()
  # Interleaved, A B A B: a drift of the machine's speed hits both alike.
  for _ in $(seq "$rounds"); do
    a=$(elapsed_ms "$netcap" read "$file")
    b=$(elapsed_ms tcpdump -nn -r "$file")
    ours+=("$a") theirs+=("$b") ratios+=("$(echo "$a / $b" | bc -l)")
  done
  a=$(printf '%s\n' "${ours[@]}" | median)
  b=$(printf '%s\n' "${theirs[@]}" | median)
  r=$(printf '%s\n' "${ratios[@]}" | median)
  printf '%-32s %10.2f s %10.2f s %14.2f\n' "$corpus.pcapng" "$(echo "$a / 1000" | bc -l)" "$(echo "$b / 1000" | bc -l)" "$r"
done
