//! Issue 20: --ct, the conntrack entry of each skb, read at tracepoints.

use crate::track::Routed;
use crate::util::*;

/// (src, dst, sport, dport) of each direction, as `conntrack -L` prints an entry.
fn conntrack_tuples(line: &str) -> Vec<(String, String, u64, u64)> {
    let values = |key: &str| -> Vec<String> {
        line.split_whitespace().filter_map(|w| w.strip_prefix(key)).map(str::to_string).collect()
    };
    let (src, dst, sport, dport) = (values("src="), values("dst="), values("sport="), values("dport="));
    (0..src.len().min(2))
        .map(|i| (src[i].clone(), dst[i].clone(), sport[i].parse().unwrap_or(0), dport[i].parse().unwrap_or(0)))
        .collect()
}

fn json_tuple(tuple: &serde_json::Value) -> (String, String, u64, u64) {
    (
        tuple["src"].as_str().unwrap_or("").to_string(),
        tuple["dst"].as_str().unwrap_or("").to_string(),
        tuple["sport"].as_u64().unwrap_or(0),
        tuple["dport"].as_u64().unwrap_or(0),
    )
}

/// A TCP connection DNAT'd by a router namespace: leaving the router, the
/// SYN's entry is NEW with a reply tuple that shows the translation, the
/// SYN-ACK's is ESTABLISHED the reply way, the ACK's ESTABLISHED; and
/// `conntrack -L` in the router lists the same two tuples.
#[test]
fn ct_shows_the_dnat_entry_as_conntrack_lists_it() {
    let Some(_guard) = root_test("ct_shows_the_dnat_entry_as_conntrack_lists_it") else { return };
    let net = Routed::new();
    let dir = scratch_dir("ct");
    let netcap = Netcap::start(None, &["skb", "-f", "tp:net:net_dev_queue", "-e", "tcp", "--ct", "--json"], &dir);
    net.connect();
    let listed = must("ip", &["netns", "exec", &net.r, "conntrack", "-L", "-p", "tcp"]);
    let done = netcap.interrupt();
    let events = json_events(&done.stdout);
    let with_ct: Vec<&serde_json::Value> = events.iter().filter(|e| !e["ct"].is_null()).collect();
    assert!(!with_ct.is_empty(), "{}", done.stdout);
    // Only the router has rules, so only its packets carry an entry.
    assert!(
        with_ct.iter().all(|e| e["netns"]
            == events
                .iter()
                .find(|x| x["device"] == net.dev_r_to_b.as_str())
                .map_or(serde_json::Value::Null, |x| x["netns"].clone())),
        "{with_ct:?}"
    );

    let syn = with_ct.iter().find(|e| e["summary"].as_str().unwrap_or("").contains("Flags [S],")).expect("the SYN");
    assert_eq!(
        (syn["device"].as_str(), syn["ct"]["state"].as_str(), syn["ct"]["reply_direction"].as_bool()),
        (Some(net.dev_r_to_b.as_str()), Some("NEW"), Some(false)),
        "{syn}"
    );
    let status: Vec<&str> = syn["ct"]["status"].as_array().unwrap().iter().filter_map(|s| s.as_str()).collect();
    assert!(status.contains(&"DST_NAT"), "{status:?}");
    let (original, reply) = (json_tuple(&syn["ct"]["original"]), json_tuple(&syn["ct"]["reply"]));
    assert_eq!((original.1.as_str(), original.3), ("198.18.1.100", 80), "{syn}");
    assert_eq!((reply.0.as_str(), reply.2), ("198.18.2.2", 8080), "the reply tuple shows the DNAT: {syn}");

    let syn_ack =
        with_ct.iter().find(|e| e["summary"].as_str().unwrap_or("").contains("Flags [S.],")).expect("the SYN-ACK");
    assert_eq!(
        (syn_ack["ct"]["state"].as_str(), syn_ack["ct"]["reply_direction"].as_bool()),
        (Some("ESTABLISHED"), Some(true)),
        "{syn_ack}"
    );
    assert!(
        with_ct.iter().any(|e| e["summary"].as_str().unwrap_or("").contains("Flags [.],")
            && e["ct"]["state"] == "ESTABLISHED"
            && e["ct"]["reply_direction"] == false),
        "the ACK: {with_ct:?}"
    );

    // The oracle: the router's conntrack table has this entry, tuple for tuple.
    let entry =
        listed.lines().find(|l| l.contains(&format!("sport={}", original.2))).unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(conntrack_tuples(entry), vec![original, reply], "{entry}");

    // Text: the suffix says the same.
    let netcap = Netcap::start(
        None,
        &["skb", "-f", "tp:net:net_dev_queue", "-i", "any", "-e", "tcp[tcpflags] == tcp-syn", "--ct"],
        &dir,
    );
    net.connect();
    let out = netcap.interrupt();
    assert!(
        out.stdout.lines().any(|l| l.contains(" ct NEW orig 198.18.1.1:")
            && l.contains(">198.18.1.100:80 reply 198.18.2.2:8080>198.18.1.1:")),
        "{}",
        out.stdout
    );
}
