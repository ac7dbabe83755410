//! Where and why packets drop: `-S` stacks, drop reasons, the drop summary.

use std::collections::HashSet;

use crate::util::*;

/// Function names of /proc/kallsyms (text symbols).
fn kernel_functions() -> HashSet<String> {
    std::fs::read_to_string("/proc/kallsyms")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (fields.len() >= 3 && matches!(fields[1], "t" | "T")).then(|| fields[2].to_string())
        })
        .collect()
}

/// Event blocks of text output: the event line, then its stack frames.
fn blocks(stdout: &str) -> Vec<(String, Vec<String>)> {
    let mut blocks: Vec<(String, Vec<String>)> = Vec::new();
    for line in stdout.lines() {
        match line.strip_prefix("    ") {
            Some(frame) => blocks.last_mut().expect("a frame follows an event").1.push(frame.to_string()),
            None => blocks.push((line.to_string(), Vec::new())),
        }
    }
    blocks
}

#[test]
fn the_seed_s_iptables_drop_shows_reason_stack_and_nothing_else() {
    let Some(_guard) = root_test("the_seed_s_iptables_drop_shows_reason_stack_and_nothing_else") else { return };
    let pair = Pair::new();
    must("ip", &["netns", "exec", &pair.b, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "9000", "-j", "DROP"]);
    let dir = scratch_dir("drop-seed");
    // The seed's command line, as written (netcap runs in b's namespace).
    let netcap =
        Netcap::start(Some(&pair.b), &["skb", "-f", "tracepoint:skb:kfree_skb", "-e", "tcp port 9000", "-S"], &dir);
    let _ = pair.exec(&pair.a, &["nc", "-z", "-w", "2", ADDR_B, "9000"]);
    // Other drops that the expression must keep out.
    let _ = pair.exec(&pair.a, &["sh", "-c", &format!("echo x | nc -u -w 1 {ADDR_B} 7777")]);
    let out = netcap.interrupt();
    assert!(out.status.success(), "{}", out.stderr);

    let functions = kernel_functions();
    let blocks = blocks(&out.stdout);
    assert!(!blocks.is_empty(), "no drop seen:\n{}", out.stderr);
    for (line, stack) in &blocks {
        assert!(
            line.contains(&format!("IP {ADDR_A}.")) && line.contains(&format!("> {ADDR_B}.9000: Flags [S]")),
            "{line}"
        );
        assert!(line.contains("[drop NETFILTER_DROP at "), "{line}");
        assert!(stack.iter().any(|f| f.starts_with("nf_hook_slow+0x")), "{stack:?}");
        for frame in stack {
            let name = frame.split('+').next().unwrap();
            assert!(functions.contains(name), "{name} is not a kernel function");
        }
    }
    assert!(out.stderr.contains("NETFILTER_DROP"), "the summary names the reason:\n{}", out.stderr);
}

#[test]
fn udp_to_a_closed_port_is_no_socket_and_the_summary_counts_every_packet() {
    let Some(_guard) = root_test("udp_to_a_closed_port_is_no_socket_and_the_summary_counts_every_packet") else {
        return;
    };
    let pair = Pair::new();
    must("ip", &["netns", "exec", &pair.b, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "9000", "-j", "DROP"]);
    let dir = scratch_dir("drop-udp");
    let netcap = Netcap::start(
        Some(&pair.b),
        &["skb", "-f", "tracepoint:skb:kfree_skb", "-i", &pair.dev_b, "-e", "udp port 7777 or tcp port 9000", "-S"],
        &dir,
    );
    let sent = 5;
    for i in 0..sent {
        // From a file: through a pipe, nc -u -w 0 may give up before echo
        // writes (12 of 100 sent nothing on a busy machine).
        let datagram = dir.join(format!("datagram-{i}"));
        std::fs::write(&datagram, format!("datagram {i}\n")).unwrap();
        let send = format!("nc -u -w 0 {ADDR_B} 7777 < {}", datagram.display());
        assert!(pair.exec(&pair.a, &["sh", "-c", &send]).status.success());
    }
    let _ = pair.exec(&pair.a, &["nc", "-z", "-w", "1", ADDR_B, "9000"]);
    let out = netcap.interrupt();
    assert!(out.status.success(), "{}", out.stderr);

    let blocks = blocks(&out.stdout);
    let udp: Vec<_> = blocks.iter().filter(|(l, _)| l.contains(".7777: UDP")).collect();
    assert_eq!(udp.len(), sent, "{}", out.stdout);
    for (line, _) in &udp {
        assert!(line.contains("[drop NO_SOCKET at "), "{line}");
    }
    let summary_row = out.stderr.lines().find(|l| l.contains("NO_SOCKET")).expect("a summary row");
    assert_eq!(summary_row.split_whitespace().next(), Some(sent.to_string().as_str()), "{summary_row}");
    assert!(summary_row.trim_end().ends_with(&pair.dev_b), "{summary_row}");

    // Two drop paths, two different stacks.
    let tcp = blocks.iter().find(|(l, _)| l.contains(".9000: Flags [S]")).expect("the TCP drop");
    assert_ne!(udp[0].1, tcp.1);
    assert!(udp[0].1.iter().any(|f| f.starts_with("__udp4_lib_rcv+")), "{:?}", udp[0].1);
    assert!(!udp[0].1.iter().any(|f| f.starts_with("nf_hook_slow+")), "{:?}", udp[0].1);
}
