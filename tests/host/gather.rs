//! `--gather`: one packet's journey across trace points, on this kernel's tracepoints.

use std::collections::HashMap;

use serde_json::Value;

use crate::util::*;

fn hops(journey: &Value) -> &Vec<Value> {
    journey["journey"].as_array().expect("a journey")
}

#[test]
fn every_ping_shows_every_point_across_a_veth_with_increasing_delays() {
    let Some(_guard) = root_test("every_ping_shows_every_point_across_a_veth_with_increasing_delays") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("gather-veth");
    let points = "tp:net:net_dev_queue,tp:net:net_dev_start_xmit,tp:net:net_dev_xmit,tp:net:netif_receive_skb";
    let netcap =
        Netcap::start(None, &["skb", "-f", points, "-e", "icmp and net 198.18.0.0/24", "--gather", "--json"], &dir);
    assert!(pair.ping(5, 56).status.success());
    let out = netcap.interrupt();
    assert!(out.status.success(), "{}", out.stderr);
    let journeys = json_events(&out.stdout);
    // Five requests (a → b) and five replies (b → a).
    assert_eq!(journeys.len(), 10, "{}", out.stdout);
    for journey in &journeys {
        assert_eq!(journey["point"], "net_dev_queue", "{journey}");
        let delays: Vec<u64> = hops(journey).iter().map(|h| h["delay_ns"].as_u64().expect("seen")).collect();
        assert_eq!(delays.len(), 3, "{journey}");
        assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
        // Sent on one end of the veth, received on the other.
        let sender = journey["device"].as_str().unwrap();
        let receiver = hops(journey)[2]["device"].as_str().unwrap();
        let expected = if sender == pair.dev_a { &pair.dev_b } else { &pair.dev_a };
        assert_eq!(receiver, expected.as_str(), "{journey}");
    }
    assert!(out.stderr.contains("net_dev_xmit → netif_receive_skb: 10 packets, min "), "{}", out.stderr);
}

#[test]
fn a_packet_dropped_midway_is_not_seen_at_the_later_point() {
    let Some(_guard) = root_test("a_packet_dropped_midway_is_not_seen_at_the_later_point") else { return };
    let pair = Pair::new();
    must("ip", &["netns", "exec", &pair.b, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "9000", "-j", "DROP"]);
    let dir = scratch_dir("gather-drop");
    let netcap = Netcap::start(
        Some(&pair.b),
        &[
            "skb",
            "-f",
            "tp:net:netif_receive_skb,tp:skb:kfree_skb,tp:skb:consume_skb",
            "-i",
            &pair.dev_b,
            "-e",
            "tcp dst port 9000",
            "--gather",
            "--gather-timeout",
            "1",
            "--json",
        ],
        &dir,
    );
    let _ = pair.exec(&pair.a, &["nc", "-z", "-w", "1", ADDR_B, "9000"]);
    let out = netcap.interrupt();
    assert!(out.status.success(), "{}", out.stderr);
    let journeys = json_events(&out.stdout);
    assert!(!journeys.is_empty(), "{}", out.stderr);
    for journey in &journeys {
        assert_eq!(journey["point"], "netif_receive_skb", "{journey}");
        let hops = hops(journey);
        assert_eq!(hops[0]["point"], "kfree_skb");
        assert!(hops[0]["delay_ns"].is_u64(), "dropped: {journey}");
        assert_eq!(hops[1]["point"], "consume_skb");
        assert!(hops[1]["delay_ns"].is_null(), "never consumed: {journey}");
        assert_eq!(journey["headers"]["dport"], 9000);
    }
}

#[test]
fn flood_pings_from_two_namespaces_are_never_joined_with_each_other() {
    let Some(_guard) = root_test("flood_pings_from_two_namespaces_are_never_joined_with_each_other") else { return };
    let (first, second) = (Pair::new(), Pair::new());
    let dir = scratch_dir("gather-flood");
    let netcap = Netcap::start(
        None,
        &[
            "skb",
            "-f",
            "tp:net:net_dev_queue,tp:net:netif_receive_skb",
            "-e",
            "icmp",
            "--gather",
            "--json",
            "--gather-buffer-size",
            "2048",
        ],
        &dir,
    );
    let (one, two) = (first.flood(500), second.flood(500));
    assert!(one.join().unwrap().status.success());
    assert!(two.join().unwrap().status.success());
    let out = netcap.interrupt();
    assert!(out.status.success(), "{}", out.stderr);

    let peer: HashMap<&str, &str> = [
        (first.dev_a.as_str(), first.dev_b.as_str()),
        (first.dev_b.as_str(), first.dev_a.as_str()),
        (second.dev_a.as_str(), second.dev_b.as_str()),
        (second.dev_b.as_str(), second.dev_a.as_str()),
    ]
    .into();
    let journeys = json_events(&out.stdout);
    let ours: Vec<&Value> = journeys.iter().filter(|j| peer.contains_key(j["device"].as_str().unwrap_or(""))).collect();
    assert!(ours.len() >= 2000, "{} journeys", ours.len());
    let mut cpus = std::collections::HashSet::new();
    for journey in ours {
        let sender = journey["device"].as_str().unwrap();
        let hop = &hops(journey)[0];
        assert!(hop["delay_ns"].is_u64(), "{journey}");
        assert_eq!(hop["device"].as_str(), Some(peer[sender]), "joined across namespaces: {journey}");
        cpus.insert(journey["cpu"].as_u64().unwrap());
    }
    eprintln!("journeys began on CPUs {cpus:?}");
}
