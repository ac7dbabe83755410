#!/usr/bin/env bash
# The built-in demonstration: two network namespaces joined by a veth pair,
# real ping and TCP traffic, then an iptables DROP rule, and netcap showing
# where each packet went and where the dropped ones died. Cleans up on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lab.sh
source scripts/lab.sh
# shellcheck source=setup.sh
source scripts/setup.sh
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: netcap loads BPF programs and creates namespaces: run as root" >&2
  exit 1
fi
cargo build --release --locked --quiet
netcap=$PWD/target/release/netcap

a=netcap-demo-a b=netcap-demo-b
open_lab
trap 'exit 130' INT TERM

# netcap in namespace b, in the background, once it is tracing.
show_netcap() {
  start_netcap "$@" || { cat "$work/err" >&2; exit 1; }
}

# Lets the last events arrive, stops netcap and shows its closing lines.
end_netcap() {
  sleep 0.5
  stop_netcap
  grep -v "Ctrl-C to stop" "$work/err" >&2 || true
}

echo "== 1. Packets arriving at 198.18.0.2 (tracepoint:net:netif_receive_skb on veth-b)"
echo "   \$ netcap skb -f tracepoint:net:netif_receive_skb -i veth-b"
show_netcap skb -f tracepoint:net:netif_receive_skb -i veth-b
ip netns exec "$a" ping -c 3 -i 0.2 -W 1 198.18.0.2 >/dev/null
ip netns exec "$b" timeout 5 nc -l -p 8080 >/dev/null &
pids+=($!)
sleep 0.3
echo "hello from netcap's demo" | ip netns exec "$a" timeout 5 nc -q 1 198.18.0.2 8080
end_netcap

echo
echo "== 2. iptables drops TCP to port 9000 in 198.18.0.2's namespace; where do the SYNs die?"
echo "   \$ iptables -A INPUT -p tcp --dport 9000 -j DROP"
echo "   \$ netcap skb -f tracepoint:skb:kfree_skb -e 'tcp port 9000' -S"
ip netns exec "$b" iptables -A INPUT -p tcp --dport 9000 -j DROP
show_netcap skb -f tracepoint:skb:kfree_skb -e "tcp port 9000" -S
ip netns exec "$a" timeout 4 nc -z -w 2 198.18.0.2 9000 || true
# Not port 9000: dropped too (no socket), but the filter keeps it out.
echo "not shown" | ip netns exec "$a" nc -u -w 1 198.18.0.2 7777 || true
end_netcap
echo
echo "demo: done; namespaces and rules removed"
