#!/usr/bin/env bash
# netcap at run time, side by side in one run: start-up to the first and to
# the tenth attached trace point, detach time, peak RSS, traffic kept across
# a veth (iperf3 TCP, 5 s) with nothing attached, with netcap on 4
# tracepoints and a filter that matches nothing, with netcap writing every
# packet to pcapng, and with tcpdump -w; and the events per second netcap
# writes to pcapng, with the loss it reports. Traffic stays between two
# network namespaces (198.18.0.0/15); every loop is bounded.
# Usage (root): benches/runtime.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../scripts/lab.sh
source scripts/lab.sh
rounds=${1:-3}
pick_netcap
command -v iperf3 >/dev/null || { apt-get install -y -qq iperf3 >/dev/null; }

a=ncrt-a b=ncrt-b
open_lab
ip netns exec "$b" iperf3 -s -D -1 >/dev/null 2>&1 || true

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Starts netcap in b with "$@"; prints the milliseconds until it traced.
timed_start() {
  local begin
  begin=$(now_ms)
  start_netcap "$@" >/dev/null
  echo $(( $(now_ms) - begin ))
}

# Stops netcap; prints the milliseconds it took to detach and exit.
timed_stop() {
  local begin
  begin=$(now_ms)
  stop_netcap
  echo $(( $(now_ms) - begin ))
}

iperf() { # prints Gbit/s of a 5 s TCP run a -> b
  ip netns exec "$b" iperf3 -s -D -1 >/dev/null 2>&1
  sleep 0.3
  ip netns exec "$a" timeout 20 iperf3 -c 198.18.0.2 -t 5 -J 2>/dev/null |
    awk -F'[:,]' '/"bits_per_second"/ { v = $2 } END { printf "%.2f\n", v / 1e9 }'
}

ten="tp:net:netif_receive_skb,tp:net:net_dev_queue,tp:net:net_dev_start_xmit,tp:net:net_dev_xmit,tp:skb:kfree_skb"
ten="$ten,tp:skb:consume_skb,tp:net:netif_rx,tp:net:napi_gro_receive_entry,tp:net:netif_receive_skb_entry,tp:skb:skb_copy_datagram_iovec"
four="tp:net:net_dev_queue,tp:net:net_dev_start_xmit,tp:net:netif_receive_skb,tp:skb:consume_skb"

for round in $(seq "$rounds"); do
  timed_start skb -f tp:net:netif_receive_skb >>"$work/start1"
  timed_stop >>"$work/stop1"
  timed_start skb -f "$ten" >>"$work/start10"
  timed_stop >>"$work/stop10"

  iperf >>"$work/bare"
  start_netcap skb -f "$four" -e 'udp port 1' >/dev/null
  iperf >>"$work/nomatch"
  grep VmHWM /proc/"$netcap_pid"/status | awk '{ print $2 }' >>"$work/rss_nomatch"
  stop_netcap
  start_netcap skb -f "$four" -w "$work/all.pcapng" >/dev/null
  iperf >>"$work/pcapng"
  grep VmHWM /proc/"$netcap_pid"/status | awk '{ print $2 }' >>"$work/rss_pcapng"
  stop_netcap
  grep -o "[0-9]* packets captured, [0-9]* lost" "$work/err" >>"$work/pcapng_counts"
  # Like tcpdump: one point, the receiving device, 256 bytes.
  start_netcap skb -f tp:net:netif_receive_skb -i veth-b -w "$work/one.pcapng" >/dev/null
  iperf >>"$work/pcapng1"
  stop_netcap
  ip netns exec "$b" tcpdump -i veth-b -w "$work/tcpdump.pcap" -s 256 2>/dev/null &
  tcpdump_pid=$!
  pids+=("$tcpdump_pid")
  sleep 1
  iperf >>"$work/tcpdump"
  kill -INT "$tcpdump_pid"; wait "$tcpdump_pid" || true
  rm -f "$work"/*.pcapng "$work"/*.pcap
  echo "round $round of $rounds done" >&2
done

bare=$(median <"$work/bare")
ratio() { awk -v x="$1" -v b="$bare" 'BEGIN { printf "%.0f%%", (b ? 100 * x / b : 0) }'; }
echo "| measure (median of $rounds) | value |"
echo "|---|---:|"
echo "| start-up to tracing, 1 tracepoint | $(median <"$work/start1") ms |"
echo "| start-up to tracing, 10 tracepoints | $(median <"$work/start10") ms |"
echo "| detach and exit, 1 tracepoint | $(median <"$work/stop1") ms |"
echo "| detach and exit, 10 tracepoints | $(median <"$work/stop10") ms |"
echo "| peak RSS, 4 tracepoints, non-matching filter | $(( $(median <"$work/rss_nomatch") / 1024 )) MiB |"
echo "| peak RSS, 4 tracepoints, everything to pcapng | $(( $(median <"$work/rss_pcapng") / 1024 )) MiB |"
echo "| iperf3 TCP across the veth, nothing attached | $bare Gbit/s (100%) |"
n=$(median <"$work/nomatch"); echo "| … netcap on 4 tracepoints, filter matching nothing | $n Gbit/s ($(ratio "$n")) |"
p=$(median <"$work/pcapng"); echo "| … netcap on 4 tracepoints, every packet to pcapng | $p Gbit/s ($(ratio "$p")) |"
p=$(median <"$work/pcapng1"); echo "| … netcap on netif_receive_skb -i veth-b, every packet to pcapng (256 B) | $p Gbit/s ($(ratio "$p")) |"
t=$(median <"$work/tcpdump"); echo "| … tcpdump -w on the receiving veth (-s 256) | $t Gbit/s ($(ratio "$t")) |"
echo
echo "netcap's own counts while writing everything to pcapng (captured, lost), per round:"
sed 's/^/    /' "$work/pcapng_counts"
