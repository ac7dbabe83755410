//! `netcap skb` without filters: where packets are seen, devices, counts,
//! captured bytes, errors, clean exits.

use std::time::Duration;

use crate::util::*;

#[test]
fn icmp_and_tcp_are_seen_at_netif_receive_skb() {
    let Some(_guard) = root_test("icmp_and_tcp_are_seen_at_netif_receive_skb") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("receive");
    let netcap =
        Netcap::start(Some(&pair.b), &["skb", "-f", "tracepoint:net:netif_receive_skb", "-i", &pair.dev_b], &dir);
    assert!(pair.ping(5, 56).status.success());
    // One TCP connection attempt to a closed port: SYN in, RST out.
    let _ = pair.exec(&pair.a, &["nc", "-z", "-w", "1", ADDR_B, "9000"]);
    let out = netcap.interrupt();
    assert!(out.status.success(), "{}", out.stderr);

    let echo = lines_with(&out.stdout, "ICMP echo request");
    assert_eq!(echo.len(), 5, "{}", out.stdout);
    for (seq, line) in echo.iter().enumerate() {
        assert!(
            line.contains(&format!(
                "netif_receive_skb {} len 98 IP {ADDR_A} > {ADDR_B}: ICMP echo request, id ",
                pair.dev_b
            )),
            "{line}"
        );
        assert!(line.ends_with(&format!(", seq {}, length 64", seq + 1)), "{line}");
    }
    // Only what arrives on dev_b: replies leave through it and are not received.
    assert!(lines_with(&out.stdout, "echo reply").is_empty(), "{}", out.stdout);
    let syn = lines_with(&out.stdout, ".9000: Flags [S]");
    assert_eq!(syn.len(), 1, "{}", out.stdout);
    assert!(syn[0].contains(&format!("IP {ADDR_A}.")), "{}", syn[0]);
    assert!(out.stderr.contains("packets captured, 0 lost"), "{}", out.stderr);
}

#[test]
fn transmit_tracepoints_see_the_sending_device() {
    let Some(_guard) = root_test("transmit_tracepoints_see_the_sending_device") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("transmit");
    let netcap = Netcap::start(
        Some(&pair.a),
        &["skb", "-f", "tracepoint:net:net_dev_queue,tracepoint:net:net_dev_start_xmit", "-i", &pair.dev_a],
        &dir,
    );
    assert!(pair.ping(4, 100).status.success());
    let out = netcap.interrupt();
    assert!(out.status.success(), "{}", out.stderr);
    // Not net_dev_xmit: it fires after the driver took the skb, which veth
    // has already handed on (and may have freed), so its bytes are stale.
    for point in ["net_dev_queue", "net_dev_start_xmit"] {
        let seen = lines_with(
            &out.stdout,
            &format!("{point} {} len 142 IP {ADDR_A} > {ADDR_B}: ICMP echo request", pair.dev_a),
        );
        assert_eq!(seen.len(), 4, "{point}:\n{}", out.stdout);
    }
}

#[test]
fn the_device_filter_excludes_other_devices() {
    let Some(_guard) = root_test("the_device_filter_excludes_other_devices") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("device");
    // Same tracepoint, but only loopback in b: the veth traffic must not show.
    let netcap = Netcap::start(Some(&pair.b), &["skb", "-f", "tp:net:netif_receive_skb", "-i", "lo"], &dir);
    assert!(pair.ping(3, 56).status.success());
    assert!(pair.exec(&pair.b, &["ping", "-c", "2", "-i", "0.05", "-w", "5", "127.0.0.1"]).status.success());
    let out = netcap.interrupt();
    assert!(lines_with(&out.stdout, ADDR_A).is_empty(), "{}", out.stdout);
    assert_eq!(lines_with(&out.stdout, "IP 127.0.0.1 > 127.0.0.1: ICMP echo request").len(), 2, "{}", out.stdout);
    assert!(out.stdout.lines().all(|l| l.contains(" lo len ")), "{}", out.stdout);
}

#[test]
fn count_stops_after_n_packets() {
    let Some(_guard) = root_test("count_stops_after_n_packets") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("count");
    let netcap = Netcap::start(
        Some(&pair.b),
        &["skb", "-f", "tracepoint:net:netif_receive_skb", "-i", &pair.dev_b, "-c", "3"],
        &dir,
    );
    let pinger = std::thread::spawn({
        let (a, b) = (pair.a.clone(), ADDR_B);
        move || run("ip", &["netns", "exec", &a, "ping", "-c", "10", "-i", "0.1", "-w", "10", b])
    });
    let out = netcap.wait(Duration::from_secs(15));
    pinger.join().unwrap();
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 3, "{}", out.stdout);
    assert!(out.stderr.contains("netcap: 3 packets captured"), "{}", out.stderr);
    assert!(netcap_programs_loaded().is_empty(), "left loaded: {:?}", netcap_programs_loaded());
}

#[test]
fn paged_data_is_captured_with_the_bytes_tcpdump_sees() {
    let Some(_guard) = root_test("paged_data_is_captured_with_the_bytes_tcpdump_sees") else { return };
    let pair = Pair::with_mtu(9000);
    let dir = scratch_dir("paged");
    let ours = dir.join("netcap.pcapng");
    let theirs = dir.join("tcpdump.pcap");
    let (ours, theirs) = (ours.to_str().unwrap(), theirs.to_str().unwrap());
    let netcap = pair.watch_receive(&["--capture-max-size", "9000", "-w", ours], &dir);
    // Beside it, a filter: linear packets are filtered where they lie, paged
    // ones only after the copy; both must agree with tcpdump's verdict.
    let filtered_dir = dir.join("filtered");
    std::fs::create_dir_all(&filtered_dir).unwrap();
    let filtered = filtered_dir.join("netcap.pcapng");
    let filtered = filtered.to_str().unwrap();
    let expression = format!("tcp and src host {ADDR_A} and tcp[13] & 8 != 0");
    let netcap_filtered =
        pair.watch_receive(&["--capture-max-size", "9000", "-e", &expression, "-w", filtered], &filtered_dir);
    let tcpdump = std::process::Command::new("ip")
        .args(["netns", "exec", &pair.b, "tcpdump", "-i", &pair.dev_b, "-s", "9000", "-U", "-w", theirs])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));

    assert!(pair.ping(3, 4000).status.success());
    // TCP with random bytes: large writes on a 9000-byte MTU veth travel in
    // page fragments (skb->data_len > 0).
    let payload = dir.join("payload");
    must("dd", &["if=/dev/urandom", &format!("of={}", payload.display()), "bs=1k", "count=256", "status=none"]);
    let listener = std::process::Command::new("ip")
        .args(["netns", "exec", &pair.b, "timeout", "10", "nc", "-l", "-p", "9000"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let send = format!("timeout 10 nc -q 1 {ADDR_B} 9000 < {}", payload.display());
    assert!(pair.exec(&pair.a, &["sh", "-c", &send]).status.success());
    let _ = crate::util::run("kill", &["-INT", &tcpdump.id().to_string()]);
    let _ = tcpdump.wait_with_output();
    let _ = listener.wait_with_output();
    let out = netcap.interrupt();
    assert!(out.status.success(), "{}", out.stderr);
    let out = netcap_filtered.interrupt();
    assert!(out.status.success(), "{}", out.stderr);

    // Pushed segments from a: the paged ones among them too.
    let pushed = tcpdump_packets(theirs, Some(&expression));
    assert!(pushed.len() >= 5, "tcpdump matched {} packets", pushed.len());
    assert_eq!(tcpdump_packets(filtered, None), pushed, "'{expression}'");
    let filtered_bytes = std::fs::read(filtered).unwrap();
    assert!(String::from_utf8_lossy(&filtered_bytes).contains(" paged="), "no filtered packet was paged");

    let from_a = |p: &String| p.starts_with(&format!("IP {ADDR_A}"));
    let theirs_packets: Vec<String> = tcpdump_packets(theirs, None).into_iter().filter(from_a).collect();
    let ours_packets: Vec<String> = tcpdump_packets(ours, None).into_iter().filter(from_a).collect();
    assert!(theirs_packets.len() >= 10, "tcpdump saw {} packets", theirs_packets.len());
    assert_eq!(ours_packets.len(), theirs_packets.len(), "packet counts differ");
    for (ours, theirs) in ours_packets.iter().zip(&theirs_packets) {
        assert_eq!(ours, theirs);
    }
    // Jumbo pings and TCP segments longer than one page were all captured whole.
    let big = ours_packets.iter().filter(|p| p.contains("length 4008") || p.contains("length 8948")).count();
    assert!(big >= 3, "no large packets in:\n{}", ours_packets.join(""));
    // And some of them really were paged: the pcapng comments say how much.
    let pcapng = std::fs::read(ours).unwrap();
    let comments = String::from_utf8_lossy(&pcapng);
    assert!(comments.contains(" paged="), "no packet had paged data");
    assert!(!comments.contains("paged_data=not_captured"));
}

#[test]
fn nothing_stays_loaded_after_ctrl_c() {
    let Some(_guard) = root_test("nothing_stays_loaded_after_ctrl_c") else { return };
    let dir = scratch_dir("cleanup");
    let netcap =
        Netcap::start(None, &["skb", "-f", "tp:net:netif_receive_skb,tp:net:net_dev_queue,tp:skb:kfree_skb"], &dir);
    let during = netcap_programs_now();
    assert_eq!(during.len(), 3, "{during:?}");
    let out = netcap.interrupt();
    assert!(out.status.success());
    assert!(netcap_programs_loaded().is_empty(), "left loaded: {:?}", netcap_programs_loaded());
}

/// Runs netcap expecting a usage error: exit 2, one line naming the problem.
fn usage_error(args: &[&str]) -> String {
    let output = netcap(args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(output.stdout.is_empty(), "{args:?} printed to stdout");
    assert!(netcap_programs_loaded().is_empty(), "{args:?} left programs loaded");
    stderr
}

#[test]
fn errors_are_one_line_with_exit_2_and_leave_nothing_loaded() {
    let Some(_guard) = root_test("errors_are_one_line_with_exit_2_and_leave_nothing_loaded") else { return };
    let cases: [(&[&str], &str); 8] = [
        (
            &["skb", "-f", "tracepoint:net:netif_recieve_skb"],
            "unknown tracepoint 'netif_recieve_skb'; nearest: netif_receive_skb",
        ),
        (&["skb", "-f", "icmp_rvc"], "unknown kernel function 'icmp_rvc'; nearest: "),
        (&["skb", "-f", "ip_local_deliver_finish@1"], "the skb is argument 3 (write ip_local_deliver_finish@3)"),
        (&["skb", "-f", "tp:sched:sched_switch"], "takes no struct sk_buff * argument"),
        (&["skb", "-f", "ip_rcv@1@2@3"], "at most two argument numbers"),
        (&["skb", "-f", "bogus:ip_rcv"], "unknown prefix 'bogus:'"),
        (
            &["skb", "-f", "tp:net:netif_receive_skb", "-i", "nosuchdev0"],
            "no device 'nosuchdev0' in this network namespace",
        ),
        (&["skb", "-f", "tp:net:netif_receive_skb", "--capture-max-size", "70000"], "70000"),
    ];
    for (args, expected) in cases {
        let stderr = usage_error(args);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        // clap's own errors add a "For more information" hint line.
        if !stderr.starts_with("error:") {
            assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        }
    }
}

#[test]
fn kernel_functions_without_kprobes_or_fentry_name_tracepoints_instead() {
    let Some(_guard) = root_test("kernel_functions_without_kprobes_or_fentry_name_tracepoints_instead") else { return };
    if std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists() {
        eprintln!("skipped: this kernel has kprobes (the VM tier covers them)");
        return;
    }
    let stderr = usage_error(&["skb", "-f", "tp:net:netif_receive_skb,icmp_rcv@1"]);
    assert!(stderr.contains("cannot trace kernel function icmp_rcv on this kernel"), "{stderr}");
    assert!(stderr.contains("no kprobes here: no kprobe PMU"), "{stderr}");
    assert!(stderr.contains("no fentry here: "), "{stderr}");
    assert!(stderr.contains("tracepoints that see the same packets: tracepoint:net:netif_receive_skb"), "{stderr}");
    assert_eq!(stderr.lines().filter(|l| l.starts_with("netcap: cannot")).count(), 1, "{stderr}");
}

#[test]
fn not_root_and_no_btf_are_reported() {
    let Some(_guard) = root_test("not_root_and_no_btf_are_reported") else { return };
    let output = run(
        "setpriv",
        &["--reuid=65534", "--regid=65534", "--clear-groups", NETCAP, "skb", "-f", "tp:net:netif_receive_skb"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("netcap needs root, or CAP_BPF with CAP_PERFMON"), "{stderr}");

    // A private mount namespace where /sys/kernel/btf is empty.
    let script = format!("mount -t tmpfs none /sys/kernel/btf && exec {NETCAP} skb -f tp:net:netif_receive_skb");
    let output = run("unshare", &["-m", "sh", "-c", &script]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("this kernel has no BTF (/sys/kernel/btf/vmlinux is missing)"), "{stderr}");
}

#[test]
fn list_shows_trace_points_with_the_skb_position() {
    let output = netcap(&["list", "kfree_skb", "--tracepoints"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(
        stdout.lines().any(|l| l.contains("kfree_skb@1 (struct sk_buff *, void *, enum skb_drop_reason")),
        "{stdout}"
    );
    let output = netcap(&["list", "ip_local_deliver_finish", "--functions"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("ip_local_deliver_finish@3 (struct net *net, struct sock *sk, struct sk_buff *skb)"),
        "{stdout}"
    );
}

#[test]
fn skb_data_reads_from_skb_data_and_its_offset() {
    let Some(_guard) = root_test("skb_data_reads_from_skb_data_and_its_offset") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("skb-data");
    // At netif_receive_skb the MAC header is already pulled: skb->data is the IP header.
    for (offset, length) in [("0", 84), ("-14", 98)] {
        let netcap = pair.watch_receive(&["-e", "icmp", "--skb-data", "--skb-data-offset", offset], &dir);
        assert!(pair.ping(2, 56).status.success());
        let out = netcap.interrupt();
        assert!(out.status.success(), "{}", out.stderr);
        let seen = lines_with(&out.stdout, &format!("len {length} IP {ADDR_A} > {ADDR_B}: ICMP echo request"));
        assert_eq!(seen.len(), 2, "offset {offset}:\n{}", out.stdout);
    }
}

/// `netcap features` on this host (6.18 without kprobes and fentry), each
/// row checked against what the kernel shows elsewhere; the planner follows
/// the table: a feature NETCAP_WITHOUT removes is passed over, and no
/// fallback is taken where the table says the better mechanism works.
#[test]
fn features_table_matches_the_kernel_and_drives_the_plan() {
    let Some(_guard) = root_test("features_table_matches_the_kernel_and_drives_the_plan") else { return };
    let output = netcap(&["features", "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let table: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let present = |key: &str| table["features"][key]["present"].as_bool().unwrap_or_else(|| panic!("{key}: {table}"));
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(table["kernel"], release.trim());
    // Oracles outside netcap: the kprobe PMU, the BTF file, the tracepoint's format in tracefs.
    assert_eq!(present("kprobes"), std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists());
    assert!(!present("kprobes") && !present("kprobe_multi"), "this host has no kprobes: {table}");
    assert!(!present("fentry"), "this host refuses fentry: {table}");
    assert_eq!(table["features"]["fentry"]["how"], "probe");
    for key in ["btf", "ring_buffer", "tp_btf", "bpf_loop", "attach_cookie", "dynptr_from_skb", "drop_reasons"] {
        assert!(present(key), "{key}: {table}");
    }
    let format = std::fs::read_to_string("/sys/kernel/tracing/events/skb/kfree_skb/format").unwrap_or_default();
    if !format.is_empty() {
        assert!(format.contains("reason"), "kfree_skb has a reason here, as the table says");
    }
    let text = String::from_utf8_lossy(&netcap(&["features"]).stdout).into_owned();
    let fentry: Vec<&str> = text.lines().skip_while(|l| !l.starts_with("fentry ")).take(3).collect();
    assert!(
        fentry[0].contains(" no ")
            && fentry[1].contains("why: ")
            && fentry[2].contains("so: kernel functions attach by kprobe"),
        "{text}"
    );

    let disabled = run_with_env(&["features", "--json"], &[("NETCAP_WITHOUT", "bpf_loop,dynptr_from_skb")]);
    let table: serde_json::Value = serde_json::from_slice(&disabled.stdout).unwrap();
    assert_eq!(table["features"]["bpf_loop"]["why"], "disabled by NETCAP_WITHOUT");
    assert_eq!(table["features"]["dynptr_from_skb"]["present"], false);
    let wrong = run_with_env(&["features"], &[("NETCAP_WITHOUT", "fentry,warp_drive")]);
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!((wrong.status.code(), stderr.lines().count()), (Some(2), 1), "{stderr}");
    assert!(stderr.contains("unknown feature 'warp_drive' (known: btf, ring_buffer,"), "{stderr}");

    // The plan: paged tp_btf where the table has it, with no fallback note;
    // plain tp_btf, saying why, where NETCAP_WITHOUT takes the dynptr away.
    let dir = scratch_dir("features");
    for (env, expected) in [
        (&[][..], "tracepoint:net:netif_receive_skb attached by tp_btf (paged data)\n"),
        (
            &[("NETCAP_WITHOUT", "dynptr_from_skb")][..],
            "tracepoint:net:netif_receive_skb attached by tp_btf (no dynptr_from_skb here: disabled by NETCAP_WITHOUT)\n",
        ),
    ] {
        let netcap = Netcap::start_with_env(None, &["skb", "-f", "tp:net:netif_receive_skb", "-i", "lo"], &dir, env);
        let done = netcap.interrupt();
        assert!(done.stderr.contains(expected), "{env:?}: {}", done.stderr);
    }
}

fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(NETCAP).args(args).envs(env.iter().copied()).output().unwrap()
}
