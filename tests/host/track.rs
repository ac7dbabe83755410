//! Issue 17: --track follows a matched packet through NAT.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::*;

/// A (198.18.1.1) — router R — B (198.18.2.2); R DNATs 198.18.1.100:80 to
/// 198.18.2.2:8080 (iptables). Removed on drop.
pub struct Routed {
    pub a: String,
    pub r: String,
    pub b: String,
    pub dev_b: String,
    pub dev_r_to_b: String,
}

impl Routed {
    pub fn new() -> Routed {
        let id = std::process::id() % 100_000;
        let net = Routed {
            a: format!("tk{id}a"),
            r: format!("tk{id}r"),
            b: format!("tk{id}b"),
            dev_b: format!("tk{id}b0"),
            dev_r_to_b: format!("tk{id}r1"),
        };
        let (dev_a, dev_r_to_a) = (format!("tk{id}a0"), format!("tk{id}r0"));
        for ns in [&net.a, &net.r, &net.b] {
            must("ip", &["netns", "add", ns]);
            must("ip", &["-n", ns, "link", "set", "lo", "up"]);
            must("ip", &["netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        }
        must(
            "ip",
            &["link", "add", &dev_a, "netns", &net.a, "type", "veth", "peer", "name", &dev_r_to_a, "netns", &net.r],
        );
        let (dev_r_to_b, dev_b) = (&net.dev_r_to_b, &net.dev_b);
        must(
            "ip",
            &["link", "add", dev_r_to_b, "netns", &net.r, "type", "veth", "peer", "name", dev_b, "netns", &net.b],
        );
        for (ns, dev, addr) in [
            (&net.a, &dev_a, "198.18.1.1/24"),
            (&net.r, &dev_r_to_a, "198.18.1.254/24"),
            (&net.r, dev_r_to_b, "198.18.2.254/24"),
            (&net.b, dev_b, "198.18.2.2/24"),
        ] {
            must("ip", &["-n", ns, "addr", "add", addr, "dev", dev]);
            must("ip", &["-n", ns, "link", "set", dev, "up"]);
        }
        must("ip", &["-n", &net.a, "route", "add", "198.18.1.100/32", "via", "198.18.1.254"]);
        must("ip", &["-n", &net.b, "route", "add", "default", "via", "198.18.2.254"]);
        must("ip", &["netns", "exec", &net.r, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        let dnat = "-d 198.18.1.100 -p tcp --dport 80 -j DNAT --to-destination 198.18.2.2:8080";
        let mut args = vec!["netns", "exec", &net.r, "iptables", "-t", "nat", "-A", "PREROUTING"];
        args.extend(dnat.split(' '));
        must("ip", &args);
        net
    }

    /// One TCP connection attempt from A to 198.18.1.100:80 (B listens on 8080).
    pub fn connect(&self) {
        let mut listener = Command::new("ip")
            .args(["netns", "exec", &self.b, "timeout", "5", "nc", "-l", "-p", "8080"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        run("ip", &["netns", "exec", &self.a, "timeout", "3", "nc", "-w", "1", "198.18.1.100", "80"]);
        let _ = listener.kill();
        let _ = listener.wait();
    }
}

impl Drop for Routed {
    fn drop(&mut self) {
        for ns in [&self.a, &self.r, &self.b] {
            let _ = run("ip", &["netns", "delete", ns]);
        }
    }
}

fn tcpdump_in(ns: &str, dev: &str, file: &str) -> Child {
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "tcpdump",
            "-Z",
            "root",
            "-i",
            dev,
            "-U",
            "-c",
            "1",
            "-w",
            file,
            "tcp[tcpflags] == tcp-syn",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    child
}

#[test]
fn track_follows_a_syn_through_dnat_with_one_id_that_tshark_reads() {
    let Some(_guard) = root_test("track_follows_a_syn_through_dnat_with_one_id_that_tshark_reads") else { return };
    let net = Routed::new();
    let dir = scratch_dir("track");
    let points = "tp:net:net_dev_queue,tp:net:netif_receive_skb";
    let syn_to_vip = "host 198.18.1.100 and tcp[tcpflags] == tcp-syn";

    // Without --track the filter loses the SYN once R rewrites it.
    let netcap = Netcap::start(None, &["skb", "-f", points, "-e", syn_to_vip], &dir);
    net.connect();
    let plain = netcap.interrupt();
    let plain_lines = lines_with(&plain.stdout, " Flags [S]");
    assert_eq!(plain_lines.len(), 2, "A's transmit and R's receive only: {}", plain.stdout);
    assert!(!plain.stdout.contains("198.18.2.2"), "{}", plain.stdout);

    // With it: four sightings of the one SYN, the last two rewritten, one id.
    let out = dir.join("track.pcapng");
    let b_saw = dir.join("b.pcap");
    let mut dump = tcpdump_in(&net.b, &net.dev_b, b_saw.to_str().unwrap());
    let netcap = Netcap::start(
        None,
        &["skb", "-f", points, "-e", syn_to_vip, "--track", "-w", out.to_str().unwrap(), "-c", "4"],
        &dir,
    );
    net.connect();
    let done = netcap.wait(Duration::from_secs(10));
    let _ = dump.wait();
    assert!(done.status.success(), "{}", done.stderr);
    assert!(done.stderr.contains("skb:kfree_skb, skb:consume_skb attached for that, not shown"), "{}", done.stderr);
    let packets = tcpdump_packets(out.to_str().unwrap(), None);
    assert_eq!(packets.len(), 4, "{packets:?}");
    let summary = |p: &String| p.lines().next().unwrap_or("").to_string();
    assert!(summary(&packets[0]).contains("> 198.18.1.100.80: Flags [S]"), "{packets:?}");
    assert!(summary(&packets[3]).contains("> 198.18.2.2.8080: Flags [S]"), "{packets:?}");
    // The rewritten bytes are the ones B received (tcpdump in B, the oracle).
    let in_b = tcpdump_packets(b_saw.to_str().unwrap(), None);
    assert_eq!(in_b.len(), 1, "{in_b:?}");
    assert_eq!(packets[3], in_b[0], "netcap's last sighting is B's packet, byte for byte");
    // One id, in the comment and in epb_packetid, which tshark reads and filters on.
    let fields =
        must("tshark", &["-r", out.to_str().unwrap(), "-T", "fields", "-e", "frame.packet_id", "-e", "frame.comment"]);
    let ids: Vec<&str> = fields.lines().map(|l| l.split('\t').next().unwrap_or("")).collect();
    assert_eq!(ids, ["1", "1", "1", "1"], "{fields}");
    assert!(fields.lines().all(|l| l.contains(" track=1")), "{fields}");
    let one = must("tshark", &["-r", out.to_str().unwrap(), "-Y", "frame.packet_id == 1"]);
    assert_eq!(one.lines().count(), 4, "{one}");
    assert!(must("tshark", &["-r", out.to_str().unwrap(), "-Y", "frame.packet_id == 2"]).trim().is_empty());
    assert!(netcap_programs_loaded().is_empty());
}

/// VXLAN between two namespaces: the inner echo request, followed, is the
/// same skb after encapsulation, whose outer UDP/4789 header the filter
/// never matched.
#[test]
fn track_follows_a_ping_into_its_vxlan_encapsulation() {
    let Some(_guard) = root_test("track_follows_a_ping_into_its_vxlan_encapsulation") else { return };
    let pair = Pair::new();
    for (ns, dev, local, remote, overlay) in [
        (&pair.a, &pair.dev_a, ADDR_A, ADDR_B, "198.18.10.1/24"),
        (&pair.b, &pair.dev_b, ADDR_B, ADDR_A, "198.18.10.2/24"),
    ] {
        must(
            "ip",
            &[
                "-n", ns, "link", "add", "vx0", "type", "vxlan", "id", "42", "dstport", "4789", "local", local,
                "remote", remote, "dev", dev,
            ],
        );
        must("ip", &["-n", ns, "addr", "add", overlay, "dev", "vx0"]);
        must("ip", &["-n", ns, "link", "set", "vx0", "up"]);
    }
    let dir = scratch_dir("track-vxlan");
    let args =
        ["skb", "-f", "tp:net:net_dev_queue", "-e", "icmp[icmptype] == icmp-echo and dst host 198.18.10.2", "--json"];
    let run_with = |extra: &[&str]| {
        let netcap = Netcap::start(Some(&pair.a), &[&args[..], extra].concat(), &dir);
        pair.exec(&pair.a, &["ping", "-c", "3", "-i", "0.2", "-W", "1", "198.18.10.2"]);
        json_events(&netcap.interrupt().stdout)
    };
    let untracked = run_with(&[]);
    assert_eq!(untracked.len(), 3, "the inner request on vx0 only: {untracked:?}");
    assert!(untracked.iter().all(|e| e["device"] == "vx0"), "{untracked:?}");

    let tracked = run_with(&["--track"]);
    assert_eq!(tracked.len(), 6, "each request on vx0, then encapsulated on the veth: {tracked:?}");
    for request in tracked.chunks(2) {
        let (inner, outer) = (&request[0], &request[1]);
        assert_eq!((inner["device"].as_str(), outer["device"].as_str()), (Some("vx0"), Some(pair.dev_a.as_str())));
        assert!(inner["track"].as_u64().is_some_and(|t| t > 0) && inner["track"] == outer["track"], "{request:?}");
        assert!(outer["summary"].as_str().unwrap_or("").contains("198.18.0.2.4789"), "the outer UDP header: {outer}");
    }
    let ids: std::collections::HashSet<u64> = tracked.iter().filter_map(|e| e["track"].as_u64()).collect();
    assert_eq!(ids.len(), 3, "one id per request: {tracked:?}");
}

/// A flood: every echo request gets a track of its own at both ends of the
/// veth, and a track never spans two requests — which it would if an id
/// outlived its skb, whose address the next packets reuse.
#[test]
fn under_a_flood_each_packet_has_its_own_track_and_tracks_end_at_free() {
    let Some(_guard) = root_test("under_a_flood_each_packet_has_its_own_track_and_tracks_end_at_free") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("track-flood");
    let filter = "icmp[icmptype] == icmp-echo and dst host 198.18.0.2";
    let netcap = Netcap::start(
        None,
        &["skb", "-f", "tp:net:net_dev_queue,tp:net:netif_receive_skb", "-e", filter, "--track", "--json"],
        &dir,
    );
    let flood = pair.flood(2000);
    let _ = flood.join();
    let done = netcap.interrupt();
    let events = json_events(&done.stdout);
    let seq_of = |e: &serde_json::Value| {
        let summary = e["summary"].as_str().unwrap_or("");
        summary.split("seq ").nth(1).and_then(|rest| rest.split(',').next()).map(str::to_string)
    };
    let mut by_track: std::collections::HashMap<u64, Vec<String>> = Default::default();
    for event in &events {
        let track = event["track"].as_u64().unwrap_or_else(|| panic!("every event is followed: {event}"));
        by_track.entry(track).or_default().push(seq_of(event).unwrap_or_else(|| panic!("{event}")));
    }
    assert!(by_track.len() >= 1500, "most of 2000 requests seen: {} tracks; {}", by_track.len(), done.stderr);
    let mut seqs = std::collections::HashSet::new();
    for (track, seen) in &by_track {
        assert!(seen.len() <= 2 && seen.iter().all(|s| *s == seen[0]), "track {track} spans {seen:?}");
        assert!(seqs.insert(seen[0].clone()), "seq {} has two tracks", seen[0]);
    }
    let both_ends = by_track.values().filter(|seen| seen.len() == 2).count();
    assert!(both_ends * 10 >= by_track.len() * 9, "{both_ends} of {} seen at both ends", by_track.len());
}

/// More packets followed at once than --track-max-packets allows: a token
/// bucket on a's veth holds hundreds of echo requests, each followed, and the
/// table (an LRU) drops the least recently seen. The summary counts them, at
/// least as many as the queue held beyond the table, as `tc -s` reports it.
#[test]
fn a_full_track_table_drops_the_least_recently_seen_and_counts_them() {
    let Some(_guard) = root_test("a_full_track_table_drops_the_least_recently_seen_and_counts_them") else { return };
    let pair = Pair::new();
    let tbf =
        ["tc", "qdisc", "add", "dev", &pair.dev_a, "root", "tbf", "rate", "8kbit", "burst", "1600", "limit", "1000000"];
    assert!(pair.exec(&pair.a, &tbf).status.success());
    let dir = scratch_dir("track-full");
    let table = 64;
    let netcap = Netcap::start(
        None,
        &[
            "skb",
            "-f",
            "tp:net:net_dev_queue",
            "-e",
            "icmp[icmptype] == icmp-echo and dst host 198.18.0.2",
            "--track",
            "--track-max-packets",
            &table.to_string(),
            "--json",
        ],
        &dir,
    );
    // ping's socket buffer bounds what it has queued: room for hundreds.
    pair.exec(&pair.a, &["ping", "-c", "400", "-i", "0.005", "-w", "4", "-q", "-S", "400000", ADDR_B]);
    let stats = pair.exec(&pair.a, &["tc", "-s", "qdisc", "show", "dev", &pair.dev_a]);
    let stats = String::from_utf8_lossy(&stats.stdout).to_string();
    let queued: u64 = stats
        .split_whitespace()
        .skip_while(|w| *w != "backlog")
        .nth(2)
        .and_then(|p| p.trim_end_matches('p').parse().ok())
        .unwrap_or_else(|| panic!("no backlog in {stats}"));
    assert!(queued > 2 * table, "the queue holds more than the table: {stats}");
    let done = netcap.interrupt();
    let summary: serde_json::Value = done
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v.get("summary").filter(|s| s.is_object()).cloned())
        .unwrap_or_else(|| panic!("a summary: {}", done.stderr));
    let evicted = summary["no_longer_followed_track_map_full"].as_u64().unwrap_or(0);
    assert!(evicted >= queued - table, "{evicted} dropped, {queued} queued beyond a table of {table}: {}", done.stderr);
    assert!(done.stderr.contains(&format!("{evicted} no longer followed (--track map full)")), "{}", done.stderr);
    let followed = summary["followed"].as_u64().unwrap_or(0);
    assert!(followed >= queued, "every queued request was followed once: {followed} of {queued}");
}

/// A SYN DNAT'd in a router namespace onto a bridge, through a veth into a
/// container namespace whose firewall drops it: followed from A's transmit
/// across the bridge to the drop, one track per SYN, and the drop summary
/// counts each dropped SYN once.
#[test]
fn track_follows_a_syn_across_a_bridge_to_its_drop_after_nat() {
    let Some(_guard) = root_test("track_follows_a_syn_across_a_bridge_to_its_drop_after_nat") else { return };
    let id = std::process::id() % 100_000;
    let (a, r, c) = (format!("tb{id}a"), format!("tb{id}r"), format!("tb{id}c"));
    struct Namespaces(Vec<String>);
    impl Drop for Namespaces {
        fn drop(&mut self) {
            for ns in &self.0 {
                let _ = run("ip", &["netns", "delete", ns]);
            }
        }
    }
    let _cleanup = Namespaces(vec![a.clone(), r.clone(), c.clone()]);
    for ns in [&a, &r, &c] {
        must("ip", &["netns", "add", ns]);
        must("ip", &["-n", ns, "link", "set", "lo", "up"]);
        must("ip", &["netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    }
    let (dev_a, dev_ra, dev_rc, dev_c) = ("a0", "ra", "rc", "c0");
    must("ip", &["link", "add", dev_a, "netns", &a, "type", "veth", "peer", "name", dev_ra, "netns", &r]);
    must("ip", &["link", "add", dev_rc, "netns", &r, "type", "veth", "peer", "name", dev_c, "netns", &c]);
    must("ip", &["-n", &r, "link", "add", "br0", "type", "bridge"]);
    must("ip", &["-n", &r, "link", "set", dev_rc, "master", "br0"]);
    for (ns, dev, addr) in [
        (&a, dev_a, Some("198.18.1.1/24")),
        (&r, dev_ra, Some("198.18.1.254/24")),
        (&r, "br0", Some("198.18.3.254/24")),
        (&r, dev_rc, None),
        (&c, dev_c, Some("198.18.3.2/24")),
    ] {
        if let Some(addr) = addr {
            must("ip", &["-n", ns, "addr", "add", addr, "dev", dev]);
        }
        must("ip", &["-n", ns, "link", "set", dev, "up"]);
    }
    must("ip", &["-n", &a, "route", "add", "198.18.1.100/32", "via", "198.18.1.254"]);
    must("ip", &["-n", &c, "route", "add", "default", "via", "198.18.3.254"]);
    must("ip", &["netns", "exec", &r, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    let dnat = "-d 198.18.1.100 -p tcp --dport 80 -j DNAT --to-destination 198.18.3.2:8080";
    let mut rule = vec!["netns", "exec", &r, "iptables", "-t", "nat", "-A", "PREROUTING"];
    rule.extend(dnat.split(' '));
    must("ip", &rule);
    must("ip", &["netns", "exec", &c, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "DROP"]);

    let dir = scratch_dir("track-bridge");
    let netcap = Netcap::start(
        None,
        &[
            "skb",
            "-f",
            "tp:net:net_dev_queue,tp:net:netif_receive_skb,tp:skb:kfree_skb",
            "-e",
            "dst host 198.18.1.100 and tcp[tcpflags] == tcp-syn",
            "--track",
            "--json",
        ],
        &dir,
    );
    // Two SYNs (the first and its retransmission a second later), both dropped in c.
    run("ip", &["netns", "exec", &a, "timeout", "3", "nc", "-w", "2", "198.18.1.100", "80"]);
    let done = netcap.interrupt();
    let events = json_events(&done.stdout);
    let mut journeys: std::collections::BTreeMap<u64, Vec<&serde_json::Value>> = Default::default();
    for event in &events {
        let track = event["track"].as_u64().unwrap_or_else(|| panic!("every event is followed: {event}"));
        journeys.entry(track).or_default().push(event);
    }
    assert!(journeys.len() >= 2, "the SYN and its retransmission: {}", done.stdout);
    for (track, seen) in &journeys {
        let at: Vec<String> = seen
            .iter()
            .map(|e| format!("{}@{}", e["point"].as_str().unwrap_or("?"), e["device"].as_str().unwrap_or("?")))
            .collect();
        let expected = [
            format!("net_dev_queue@{dev_a}"),
            format!("netif_receive_skb@{dev_ra}"),
            "net_dev_queue@br0".to_string(),
            format!("net_dev_queue@{dev_rc}"),
            format!("netif_receive_skb@{dev_c}"),
            format!("kfree_skb@{dev_c}"),
        ];
        assert_eq!(at, expected, "track {track}: {seen:?}");
        let last = seen.last().unwrap();
        assert!(last["summary"].as_str().unwrap_or("").contains("> 198.18.3.2.8080"), "rewritten: {last}");
        assert_eq!(last["drop"]["reason"], "NETFILTER_DROP", "{last}");
    }
    let row = done.stderr.lines().find(|l| l.contains("NETFILTER_DROP")).unwrap_or_else(|| panic!("{}", done.stderr));
    assert_eq!(row.split_whitespace().next(), Some(journeys.len().to_string().as_str()), "{row}\n{}", done.stderr);
}

/// --track with an ext filter, tcpdump's text and a count: the ext filter
/// keeps the first point only, so without --track each request is seen at
/// a's transmit alone; with it, also at b's receive (the followed packet
/// passes every filter), under tcpdump's lines, and -c counts both sightings.
#[test]
fn track_goes_past_the_ext_filter_prints_through_tcpdump_and_counts_with_c() {
    let Some(_guard) = root_test("track_goes_past_the_ext_filter_prints_through_tcpdump_and_counts_with_c") else {
        return;
    };
    let pair = Pair::new();
    let dir = scratch_dir("track-ext");
    let filter = dir.join("first_point.c");
    std::fs::write(
        &filter,
        "static inline int xcap_ext_filter(void *ext, void *pkt, u16 trace_index)\n{\n\treturn trace_index == 0;\n}\n",
    )
    .unwrap();
    let base = [
        "skb",
        "-f",
        "tp:net:net_dev_queue,tp:net:netif_receive_skb",
        "-e",
        "icmp[icmptype] == icmp-echo",
        "--ext-filter",
        filter.to_str().unwrap(),
        "-t",
        "-nn",
    ];
    let netcap = Netcap::start(None, &base, &dir);
    assert!(pair.ping(3, 56).status.success());
    let plain = netcap.interrupt();
    // With -t, netcap's line for each packet is the point and device, tcpdump's follow.
    let heads = |out: &str| {
        out.lines()
            .filter(|l| l.starts_with("net_dev_queue ") || l.starts_with("netif_receive_skb "))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let plain_heads = heads(&plain.stdout);
    assert_eq!(plain_heads.len(), 3, "a's transmit only:\n{}", plain.stdout);
    assert!(plain_heads.iter().all(|l| l.starts_with("net_dev_queue ") && !l.contains('#')), "{}", plain.stdout);

    let netcap = Netcap::start(None, &[&base[..], &["--track", "-c", "4"]].concat(), &dir);
    pair.ping(3, 56);
    let done = netcap.wait(Duration::from_secs(10));
    assert!(done.status.success(), "{}", done.stderr);
    let tracked = heads(&done.stdout);
    assert_eq!(tracked.len(), 4, "-c 4 counts followed sightings too:\n{}", done.stdout);
    for (i, line) in tracked.iter().enumerate() {
        let point = if i % 2 == 0 { ("net_dev_queue ", &pair.dev_a) } else { ("netif_receive_skb ", &pair.dev_b) };
        assert!(line.starts_with(point.0) && line.contains(point.1.as_str()), "{line}");
        assert!(line.ends_with(&format!(" #{}", i / 2 + 1)), "{line}");
    }
    // tcpdump's own line for each packet follows netcap's.
    let tcpdump_lines =
        done.stdout.lines().filter(|l| l.contains("IP 198.18.0.1 > 198.18.0.2: ICMP echo request")).count();
    assert!(tcpdump_lines >= 4, "{}", done.stdout);
}
