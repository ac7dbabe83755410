//! Issue 21: where a packet is (--netns, -i inside it) and how it is
//! marked (--mark), decided in the kernel.

use std::os::unix::fs::MetadataExt;

use crate::util::*;

/// b's veth renamed eth0, so that two pairs have the same device name in
/// two namespaces.
fn pair_with_eth0() -> Pair {
    let pair = Pair::new();
    must("ip", &["-n", &pair.b, "link", "set", &pair.dev_b, "down"]);
    must("ip", &["-n", &pair.b, "link", "set", &pair.dev_b, "name", "eth0"]);
    must("ip", &["-n", &pair.b, "link", "set", "eth0", "up"]);
    pair
}

/// Two namespaces, each with an eth0: --netns X -i eth0 sees X's packets
/// only, whichever way X is named (name, path, inode); --netns X alone sees
/// every device of X and names X on each event.
#[test]
fn netns_picks_one_of_two_eth0s_by_name_path_or_inode() {
    let Some(_guard) = root_test("netns_picks_one_of_two_eth0s_by_name_path_or_inode") else { return };
    let (first, second) = (pair_with_eth0(), pair_with_eth0());
    let dir = scratch_dir("netns");
    let path = format!("/var/run/netns/{}", first.b);
    let inode = std::fs::metadata(&path).unwrap().ino().to_string();
    for given in [first.b.as_str(), path.as_str(), inode.as_str()] {
        let netcap = Netcap::start(
            None,
            &["skb", "-f", "tp:net:netif_receive_skb", "--netns", given, "-i", "eth0", "-e", "icmp", "--json"],
            &dir,
        );
        assert!(first.ping(2, 56).status.success());
        assert!(second.ping(3, 56).status.success());
        let events = json_events(&netcap.interrupt().stdout);
        assert_eq!(events.len(), 2, "--netns {given}: first's two requests only: {events:?}");
        assert!(
            events
                .iter()
                .all(|e| e["device"] == "eth0" && e["netns"].as_u64().map(|n| n.to_string()) == Some(inode.clone())),
            "{events:?}"
        );
        assert!(events.iter().all(|e| e["netns_name"] == first.b.as_str()), "{events:?}");
    }

    // Without -i: every device of the second namespace, each line naming it.
    let netcap =
        Netcap::start(None, &["skb", "-f", "tp:net:netif_receive_skb", "--netns", &second.b, "-e", "icmp"], &dir);
    assert!(first.ping(2, 56).status.success());
    assert!(second.ping(3, 56).status.success());
    let out = netcap.interrupt();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(lines.iter().all(|l| l.ends_with(&format!(" netns {}", second.b))), "{}", out.stdout);

    // Mistakes: a device that is not there, a namespace that is not one.
    let wrong = netcap_in_none(&["skb", "-f", "tp:net:netif_receive_skb", "--netns", &first.b, "-i", "eth7"]);
    assert_eq!(wrong.status.code(), Some(2));
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(
        said.trim(),
        format!("netcap: no device 'eth7' in network namespace {} (devices there: eth0, lo)", first.b)
    );
    let not_a_namespace = netcap_in_none(&["skb", "-f", "tp:net:netif_receive_skb", "--netns", "/etc/hostname"]);
    assert_eq!(not_a_namespace.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&not_a_namespace.stderr)
            .starts_with("netcap: --netns /etc/hostname: not a namespace file (give any")
    );
}

fn netcap_in_none(args: &[&str]) -> std::process::Output {
    let output = netcap(args);
    assert!(netcap_programs_now().is_empty(), "nothing left attached");
    output
}

/// iptables marks a's UDP to port 7001 with 0x10 and to 7002 with 0x120:
/// --mark 0x10 sees exactly the datagrams the first rule marked, by the
/// rule's own counter; 0x20/0xff those of the second (its low byte).
#[test]
fn mark_keeps_exactly_what_the_marking_rule_counted() {
    let Some(_guard) = root_test("mark_keeps_exactly_what_the_marking_rule_counted") else { return };
    let pair = Pair::new();
    for (port, mark) in [("7001", "0x10"), ("7002", "0x120")] {
        let rule = [
            "iptables",
            "-t",
            "mangle",
            "-A",
            "OUTPUT",
            "-p",
            "udp",
            "--dport",
            port,
            "-j",
            "MARK",
            "--set-mark",
            mark,
        ];
        assert!(pair.exec(&pair.a, &rule).status.success());
    }
    // The oracle: what each marking rule says it marked (its packet counter).
    let marked = || -> Vec<u64> {
        let counters = pair.exec(&pair.a, &["iptables", "-t", "mangle", "-L", "OUTPUT", "-v", "-x", "-n"]);
        let counters = String::from_utf8_lossy(&counters.stdout).to_string();
        counters
            .lines()
            .filter(|l| l.contains("MARK"))
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect()
    };
    let dir = scratch_dir("mark");
    for (given, port, rule) in [("0x10", "7001", 0), ("0x20/0xff", "7002", 1)] {
        let before = marked();
        let netcap = Netcap::start(None, &["skb", "-f", "tp:net:net_dev_queue", "--mark", given, "--json"], &dir);
        for _ in 0..3 {
            pair.exec(&pair.a, &["sh", "-c", &format!("echo x | nc -u -w 0 {ADDR_B} 7001")]);
        }
        for _ in 0..4 {
            pair.exec(&pair.a, &["sh", "-c", &format!("echo x | nc -u -w 0 {ADDR_B} 7002")]);
        }
        let events = json_events(&netcap.interrupt().stdout);
        let after = marked();
        let by_rule = after[rule] - before[rule];
        // (nc -u -w 0 now and then quits before it sends: the rule's count, not ours, is the truth.)
        assert!(by_rule >= 1, "the rule marked some: {before:?} -> {after:?}");
        assert_eq!(events.len() as u64, by_rule, "--mark {given}: exactly what the rule marked: {events:?}");
        assert!(
            events.iter().all(|e| e["summary"].as_str().unwrap_or("").contains(&format!(".{port}: UDP"))),
            "{events:?}"
        );
    }

    let wrong = netcap(&["skb", "-f", "tp:net:net_dev_queue", "--mark", "0x100/0xff"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("the value has bits outside the mask"), "{:?}", wrong);
}

/// --skb-filter on len and mark against an --ext-filter (clang) reading the
/// same fields in C, both running on the same traffic: pings of four sizes,
/// half of them marked by iptables. They keep exactly the same packets.
#[test]
fn skb_filter_keeps_what_a_c_filter_on_the_same_fields_keeps() {
    let Some(_guard) = root_test("skb_filter_keeps_what_a_c_filter_on_the_same_fields_keeps") else { return };
    let pair = Pair::new();
    // a marks its ICMP by length: 1100-1300 bytes 0x310, 400-700 bytes 0x10.
    for (lengths, mark) in [("1100:1300", "0x310"), ("400:700", "0x10")] {
        let rule =
            format!("iptables -t mangle -A OUTPUT -p icmp -m length --length {lengths} -j MARK --set-mark {mark}");
        let rule: Vec<&str> = rule.split(' ').collect();
        assert!(pair.exec(&pair.a, &rule).status.success());
    }
    let dir = scratch_dir("skb-filter");
    let source = dir.join("len_and_mark.c");
    std::fs::write(
        &source,
        "static inline int xcap_ext_filter(void *ext, void *pkt, u16 trace_index)\n{\n\
         \tstruct sk_buff *skb = ext;\n\
         \treturn BPF_CORE_READ(skb, len) > 1000 && (BPF_CORE_READ(skb, mark) & 0xff) == 0x10;\n}\n",
    )
    .unwrap();
    let point = "tp:net:net_dev_queue@1@1";
    let ours = Netcap::start(
        None,
        &["skb", "-f", point, "--skb-filter", "len > 1000 && mark & 0xff == 0x10", "-e", "icmp", "--json"],
        &dir,
    );
    let theirs = Netcap::start(
        None,
        &["skb", "-f", point, "--ext-filter", source.to_str().unwrap(), "-e", "icmp", "--json"],
        &dir,
    );
    for size in [200, 600, 1200, 1400] {
        assert!(pair.ping(3, size).status.success());
    }
    let kept = |done: Finished| {
        let mut kept: Vec<(String, u64)> = json_events(&done.stdout)
            .iter()
            .map(|e| (e["summary"].as_str().unwrap_or("").to_string(), e["len"].as_u64().unwrap_or(0)))
            .collect();
        kept.sort();
        kept
    };
    let (ours, theirs) = (kept(ours.interrupt()), kept(theirs.interrupt()));
    assert_eq!(ours, theirs);
    // Only the 1200-byte requests are both long and marked 0x..10 (not their replies: b marks nothing).
    assert_eq!(ours.len(), 3, "{ours:?}");
    assert!(ours.iter().all(|(summary, len)| summary.contains("echo request") && *len == 1242), "{ours:?}");
}

/// --skb-fields against an --ext-action (clang) reading the same fields
/// with BPF_CORE_READ, in the same run: for every packet the two agree.
#[test]
fn skb_fields_show_what_a_c_action_reads_from_the_same_skb() {
    let Some(_guard) = root_test("skb_fields_show_what_a_c_action_reads_from_the_same_skb") else { return };
    let pair = Pair::new();
    let mark = ["iptables", "-t", "mangle", "-A", "OUTPUT", "-p", "icmp", "-j", "MARK", "--set-mark", "0x2a"];
    assert!(pair.exec(&pair.a, &mark).status.success());
    let dir = scratch_dir("skb-fields");
    let action = dir.join("same_fields.c");
    std::fs::write(
        &action,
        "struct xcap_user_extend { u32 mark; u32 len; u32 mtu; u16 protocol; u8 pkt_type; u64 hash_and_sk; };\n\
         static inline int xcap_ext_action(void *ext, void *pkt, u32 pkt_len, struct xcap_user_extend *user, u16 trace_index)\n{\n\
         \tstruct sk_buff *skb = ext;\n\
         \tuser->mark = BPF_CORE_READ(skb, mark);\n\
         \tuser->len = BPF_CORE_READ(skb, len);\n\
         \tuser->mtu = BPF_CORE_READ(skb, dev, mtu);\n\
         \tuser->protocol = bpf_ntohs(BPF_CORE_READ(skb, protocol));\n\
         \tuser->pkt_type = BPF_CORE_READ_BITFIELD_PROBED(skb, pkt_type);\n\
         \tuser->hash_and_sk = BPF_CORE_READ(skb, hash) + (u64)BPF_CORE_READ(skb, sk);\n\
         \treturn 1;\n}\n",
    )
    .unwrap();
    let netcap = Netcap::start(
        Some(&pair.a),
        &[
            "skb",
            "-f",
            "tp:net:net_dev_queue@1@1",
            "-e",
            "icmp",
            "--skb-fields",
            "mark,len,dev->mtu,protocol,pkt_type,hash,sk",
            "--ext-action",
            action.to_str().unwrap(),
            "--json",
        ],
        &dir,
    );
    assert!(pair.ping(3, 300).status.success());
    let done = netcap.interrupt();
    let events = json_events(&done.stdout);
    // a's requests and b's replies (tracepoints see every namespace).
    assert_eq!(events.len(), 6, "{}", done.stderr);
    for event in &events {
        let (fields, user) = (&event["fields"], &event["user"]);
        for (field, member) in
            [("mark", "mark"), ("len", "len"), ("dev->mtu", "mtu"), ("protocol", "protocol"), ("pkt_type", "pkt_type")]
        {
            assert_eq!(fields[field], user[member], "{field}: {event}");
        }
        let sk = u64::from_str_radix(fields["sk"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
        assert_eq!(fields["hash"].as_u64().unwrap() + sk, user["hash_and_sk"].as_u64().unwrap(), "{event}");
        let request = event["summary"].as_str().unwrap_or("").contains("echo request");
        let mark = if request { 0x2a } else { 0 };
        assert_eq!(
            (fields["mark"].as_u64(), fields["protocol"].as_u64(), fields["dev->mtu"].as_u64()),
            (Some(mark), Some(0x0800), Some(1500)),
            "{event}"
        );
    }
}

/// A cgroup v2 directory for the test, removed on drop (once empty).
struct Cgroup(std::path::PathBuf);

impl Cgroup {
    fn new(name: &str) -> Cgroup {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        let root = mounts
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.get(2) == Some(&"cgroup2")).then(|| f[1].to_string())
            })
            .expect("a cgroup2 mount (CI hosts have one)");
        let dir = std::path::Path::new(&root).join(format!("netcap-test-{}-{name}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        Cgroup(dir)
    }
}

impl Cgroup {
    fn pids(&self) -> Vec<u32> {
        let procs = std::fs::read_to_string(self.0.join("cgroup.procs")).unwrap_or_default();
        procs.lines().filter_map(|l| l.parse().ok()).collect()
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Only the test's own senders are in here.
        for pid in self.pids() {
            // SAFETY: kill has no memory effects.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// A UDP sender in namespace a, inside cgroup `cgroup`: `nc -u` sending each
/// line written to it as a datagram to b's `port`.
fn sender(pair: &Pair, cgroup: &Cgroup, port: &str) -> std::process::Child {
    let script =
        format!("echo $$ > {}/cgroup.procs && exec ip netns exec {} nc -u {ADDR_B} {port}", cgroup.0.display(), pair.a);
    std::process::Command::new("sh")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Two senders in two cgroups, to two ports of the same host: --cgroup and
/// --pid each see one sender's datagrams only, and each event names the
/// task and the socket's cgroup.
#[test]
fn cgroup_and_pid_pick_one_of_two_senders() {
    let Some(_guard) = root_test("cgroup_and_pid_pick_one_of_two_senders") else { return };
    use std::io::Write as _;
    let pair = Pair::new();
    // No port unreachable back: nc -u would end at the next send.
    assert!(pair.exec(&pair.b, &["iptables", "-A", "INPUT", "-p", "udp", "-j", "DROP"]).status.success());
    // b's address resolved first: a datagram waiting for ARP is sent later
    // from softirq, in whichever task runs then (see README on --pid).
    assert!(pair.exec(&pair.a, &["ping", "-c", "1", "-W", "1", ADDR_B]).status.success());
    let (first_group, second_group) = (Cgroup::new("a"), Cgroup::new("b"));
    let dir = scratch_dir("owner");
    let mut first = sender(&pair, &first_group, "7101");
    let mut second = sender(&pair, &second_group, "7102");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let first_path = format!("/{}", first_group.0.file_name().unwrap().to_string_lossy());
    let send_both = |first: &mut std::process::Child, second: &mut std::process::Child| {
        // One write(2) a line: nc sends what one read(2) returns as one datagram.
        for i in 0..3 {
            first.stdin.as_mut().unwrap().write_all(format!("first {i}\n").as_bytes()).unwrap();
            second.stdin.as_mut().unwrap().write_all(format!("second {i}\n").as_bytes()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    // By cgroup: the first sender's datagrams, whichever of its processes sent them.
    let args =
        ["skb", "-f", "tp:net:net_dev_queue", "-e", "udp", "--json", "--cgroup", first_group.0.to_str().unwrap()];
    let netcap = Netcap::start(None, &args, &dir);
    send_both(&mut first, &mut second);
    let events = json_events(&netcap.interrupt().stdout);
    assert_eq!(events.len(), 3, "{events:?}");
    let sender_pid = events[0]["pid"].as_u64().unwrap() as u32;
    for event in &events {
        assert!(event["summary"].as_str().unwrap_or("").contains(".7101: UDP"), "{event}");
        assert_eq!(
            (event["cgroup_path"].as_str(), event["comm"].as_str()),
            (Some(first_path.as_str()), Some("nc")),
            "{event}"
        );
    }
    // The test put the first sender in the first cgroup itself (before it made its socket): that
    // is the oracle for the path; the second's datagrams never show.

    // By the sending task: the same datagrams and none of the other's.
    let pid = sender_pid.to_string();
    let netcap =
        Netcap::start(None, &["skb", "-f", "tp:net:net_dev_queue", "-e", "udp", "--json", "--pid", &pid], &dir);
    send_both(&mut first, &mut second);
    let events = json_events(&netcap.interrupt().stdout);
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(
        events.iter().all(|e| e["pid"] == sender_pid && e["summary"].as_str().unwrap_or("").contains(".7101: UDP")),
        "{events:?}"
    );

    // Text names the task and the socket's cgroup.
    let netcap =
        Netcap::start(None, &["skb", "-f", "tp:net:net_dev_queue", "-e", "udp port 7101", "--pid", &pid], &dir);
    send_both(&mut first, &mut second);
    let out = netcap.interrupt();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(lines.iter().all(|l| l.ends_with(&format!(" pid {sender_pid} nc cgroup {first_path}"))), "{}", out.stdout);
    drop((first, second));
    let wrong = crate::util::netcap(&["skb", "-f", "tp:net:net_dev_queue", "--cgroup", "/no-such-cgroup-here"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).starts_with("netcap: --cgroup /no-such-cgroup-here: No such file"),
        "{wrong:?}"
    );
}
