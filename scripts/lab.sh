# Sourced by the demo and the benchmarks: two network namespaces, $a
# (veth-a, 198.18.0.1/24) and $b (veth-b, 198.18.0.2/24), joined by veth;
# a scratch directory $work; netcap started in $b and stopped as by Ctrl-C.
# open_lab sets all of it up and arranges that everything is removed on
# exit (processes in $pids, the namespaces, $work, and whatever an
# optional close_lab_extra function undoes).

open_lab() {
  work=$(mktemp -d)
  pids=()
  trap close_lab EXIT
  # A signal ends the script through its EXIT trap, so cleanup runs then too.
  trap 'exit 130' INT TERM
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

# Sets $netcap for a benchmark: $NETCAP (to compare another build), else
# this tree's release build, built first if missing.
pick_netcap() {
  netcap=${NETCAP:-$PWD/target/release/netcap}
  [ -x "$netcap" ] || cargo build --release --locked --quiet
}

close_lab() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "${bpf_stats_before:-}" ]; then sysctl -qw kernel.bpf_stats_enabled="$bpf_stats_before"; fi
  # Deleting a namespace deletes its end of the veth pair, and so the pair.
  ip netns delete "$a" 2>/dev/null || true
  ip netns delete "$b" 2>/dev/null || true
  if declare -F close_lab_extra >/dev/null; then close_lab_extra; fi
  rm -rf "$work"
}

# Starts $netcap "$@" in $b in the background (stderr in $work/err) and
# returns once it traces; fails if it exits or is not tracing within 20 s.
start_netcap() {
  ip netns exec "$b" "$netcap" "$@" 2>"$work/err" &
  netcap_pid=$!
  pids+=("$netcap_pid")
  for _ in $(seq 4000); do
    grep -q "Ctrl-C to stop" "$work/err" 2>/dev/null && return 0
    kill -0 "$netcap_pid" 2>/dev/null || return 1
    sleep 0.005
  done
  return 1
}

# Stops netcap as Ctrl-C does and waits until it has detached and exited.
stop_netcap() {
  kill -INT "$netcap_pid" 2>/dev/null || true
  wait "$netcap_pid" || true
}

# Turns kernel.bpf_stats_enabled on (1) or off (0); close_lab puts back the
# value it had before the first call.
set_bpf_stats() {
  [ -n "${bpf_stats_before:-}" ] || bpf_stats_before=$(sysctl -n kernel.bpf_stats_enabled)
  sysctl -qw kernel.bpf_stats_enabled="$1"
}

# Prints "run_time_ns run_cnt" summed over the loaded BPF programs whose
# `bpftool prog show` line matches the awk pattern $1 (default: netcap's).
program_stats() {
  bpftool prog show | awk "/${1:-name netcap_}/"' { for (i = 1; i <= NF; i++) {
      if ($i == "run_time_ns") t += $(i + 1); if ($i == "run_cnt") c += $(i + 1) } }
    END { print t + 0, c + 0 }'
}
