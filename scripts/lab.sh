# Sourced by the demo and the benchmarks: two network namespaces, $a
# (veth-a, 198.18.0.1/24) and $b (veth-b, 198.18.0.2/24), joined by veth.
# remove_veth_pair deletes both (and so the veth pair with them).
make_veth_pair() {
  ip netns add "$a"
  ip netns add "$b"
  ip link add veth-a netns "$a" type veth peer name veth-b netns "$b"
  ip -n "$a" addr add 198.18.0.1/24 dev veth-a
  ip -n "$b" addr add 198.18.0.2/24 dev veth-b
  for ns in "$a" "$b"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip -n "$ns" link set lo up
  done
  ip -n "$a" link set veth-a up
  ip -n "$b" link set veth-b up
}

remove_veth_pair() {
  ip netns delete "$a" 2>/dev/null || true
  ip netns delete "$b" 2>/dev/null || true
}
