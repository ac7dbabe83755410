//! Issue 19: `netcap read` of netcap's own pcapng — capture once, ask the
//! questions later. A real capture (pings dropped by iptables in b, at three
//! points) is read back; tshark reads the same file's interface names,
//! comments and nanosecond timestamps, tcpdump applies -e to it, and the
//! iptables rule's own counter says how many packets were dropped.

use std::collections::HashMap;

use crate::util::*;

/// tshark's view of each packet: (interface name, epoch ns, comment).
fn tshark_frames(file: &str) -> Vec<(String, u64, String)> {
    let text = must(
        "tshark",
        &[
            "-r",
            file,
            "-T",
            "fields",
            "-E",
            "separator=/t",
            "-e",
            "frame.interface_name",
            "-e",
            "frame.time_epoch",
            "-e",
            "frame.comment",
        ],
    );
    text.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let (seconds, fraction) = fields[1].split_once('.').unwrap();
            let ns = seconds.parse::<u64>().unwrap() * 1_000_000_000
                + format!("{fraction:0<9}")[..9].parse::<u64>().unwrap();
            (fields[0].to_string(), ns, fields.get(2).unwrap_or(&"").to_string())
        })
        .collect()
}

fn drop_counter(pair: &Pair) -> u64 {
    let text = must("ip", &["netns", "exec", &pair.b, "iptables", "-nvxL", "INPUT"]);
    text.lines()
        .find(|l| l.contains("DROP") && l.contains("icmp"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[test]
fn netcap_read_restores_points_drops_and_journeys_from_its_own_pcapng() {
    let Some(_guard) = root_test("netcap_read_restores_points_drops_and_journeys_from_its_own_pcapng") else { return };
    let pair = Pair::new();
    must(
        "ip",
        &[
            "netns",
            "exec",
            &pair.b,
            "iptables",
            "-A",
            "INPUT",
            "-p",
            "icmp",
            "--icmp-type",
            "echo-request",
            "-j",
            "DROP",
        ],
    );
    let dir = scratch_dir("read");
    let file = dir.join("capture.pcapng");
    let file = file.to_str().unwrap();
    let points = "tp:net:netif_receive_skb,tp:skb:kfree_skb";
    let before = drop_counter(&pair);
    let netcap =
        Netcap::start(Some(&pair.b), &["skb", "-f", points, "-i", &pair.dev_b, "-e", "icmp", "-w", file], &dir);
    // No -w: with every request dropped, ping would send until its deadline.
    pair.exec(&pair.a, &["ping", "-c", "5", "-i", "0.1", "-W", "1", ADDR_B]);
    let finished = netcap.interrupt();
    assert!(finished.status.success(), "{}", finished.stderr);
    let dropped = drop_counter(&pair) - before;
    assert_eq!(dropped, 5, "iptables dropped each echo request");

    let frames = tshark_frames(file);
    let events = json_events(&must(NETCAP, &["read", "--json", file]));
    assert_eq!(events.len(), frames.len(), "one event a packet");
    for (event, (interface, ns, comment)) in events.iter().zip(&frames) {
        assert_eq!(event["point"].as_str(), Some(interface.as_str()), "the trace point is the interface tshark names");
        assert_eq!(event["time_ns"].as_u64(), Some(*ns), "to the nanosecond: {event}");
        for (key, field) in [("dev", "device"), ("skb", "skb"), ("pid", "pid"), ("comm", "comm")] {
            let written = comment.split(' ').find_map(|part| part.strip_prefix(&format!("{key}="))).unwrap();
            let read = event[field].as_str().map(str::to_string).unwrap_or_else(|| event[field].to_string());
            assert_eq!(read, written, "{key} in {comment}");
        }
    }
    // Drops: as many as iptables counted, with the reason tshark sees in the comments.
    let drops = json_events(&must(NETCAP, &["read", "--json", "--drop-reason", "NETFILTER_DROP", file]));
    assert_eq!(drops.len() as u64, dropped);
    assert_eq!(drops.len(), frames.iter().filter(|(_, _, c)| c.contains("drop=NETFILTER_DROP")).count());
    assert!(
        drops
            .iter()
            .all(|e| e["point"] == "kfree_skb" && e["drop"]["location"].as_str().is_some_and(|l| l.contains('+')))
    );
    let at_receive = must(NETCAP, &["read", "--point", "netif_receive_skb", file]);
    assert_eq!(at_receive.lines().count(), frames.iter().filter(|(i, _, _)| i == "netif_receive_skb").count());
    // -e again, by libpcap: tcpdump on the same file is the oracle.
    let requests = must(NETCAP, &["read", "--json", "-e", "icmp[icmptype] == icmp-echo", file]);
    assert_eq!(json_events(&requests).len(), tcpdump_packets(file, Some("icmp[icmptype] == icmp-echo")).len());

    // --gather offline: one journey per request, each delay the difference
    // of tshark's timestamps of its two sightings.
    let journeys = json_events(&must(NETCAP, &["read", "--json", "--gather", file]));
    assert_eq!(journeys.len(), 5, "{journeys:?}");
    let times: HashMap<(String, String), Vec<u64>> =
        frames.iter().fold(HashMap::new(), |mut map, (interface, ns, comment)| {
            let skb = comment.split(' ').find_map(|p| p.strip_prefix("skb=")).unwrap().to_string();
            map.entry((interface.clone(), skb)).or_default().push(*ns);
            map
        });
    for journey in &journeys {
        let skb = journey["skb"].as_str().unwrap().to_string();
        let hop = &journey["journey"][0];
        assert_eq!(hop["point"], "kfree_skb");
        let start = journey["time_ns"].as_u64().unwrap();
        let end = times[&("kfree_skb".to_string(), skb)].iter().copied().find(|t| *t >= start).unwrap();
        assert_eq!(hop["delay_ns"].as_u64(), Some(end - start), "{journey}");
    }

    // -w: the drops alone, each block as it was: tshark reads the same comments back.
    let subset = dir.join("drops.pcapng");
    let subset = subset.to_str().unwrap();
    let written = run(NETCAP, &["read", "--drop-reason", "any", "-w", subset, file]);
    assert!(written.status.success(), "{}", String::from_utf8_lossy(&written.stderr));
    let kept = tshark_frames(subset);
    let originals: Vec<_> = frames.iter().filter(|(_, _, c)| c.contains(" drop=")).cloned().collect();
    assert_eq!(kept, originals);

    // The packets as tcpdump prints them, whatever netcap knew.
    let plain = must(NETCAP, &["read", "--packets-only", "-t", file]);
    let theirs = must("tcpdump", &["-nn", "-t", "-r", file]);
    assert_eq!(plain, theirs);

    // Mistakes: one line each, exit 2.
    let pcap = dir.join("plain.pcap");
    must("tcpdump", &["-r", file, "-w", pcap.to_str().unwrap()]);
    for args in [
        vec!["read", "--point", "kfree_skb", pcap.to_str().unwrap()],
        vec!["read", "--packets-only", "--json", file],
        vec!["read", "/etc/hostname"],
    ] {
        let output = run(NETCAP, &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    }
}
