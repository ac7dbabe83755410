//! Outputs: pcapng read back by tcpdump and tshark, `-w -`, `-t` blocks
//! under load on both CPUs, rotation, JSON, and files left valid by Ctrl-C.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::*;

/// tshark's fields for each packet of a file, tab-separated.
fn tshark_fields(file: &str, fields: &[&str]) -> Vec<String> {
    let mut args = vec!["-r", file, "-T", "fields"];
    for field in fields {
        args.extend(["-e", field]);
    }
    must("tshark", &args).lines().map(str::to_string).collect()
}

#[test]
fn pcapng_reads_back_in_tcpdump_and_tshark_with_its_metadata() {
    let Some(_guard) = root_test("pcapng_reads_back_in_tcpdump_and_tshark_with_its_metadata") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("pcapng");
    let file = dir.join("out.pcapng");
    let file = file.to_str().unwrap();
    let netcap = pair.watch_receive(&["-e", "icmp", "-w", file], &dir);
    assert!(pair.ping(4, 56).status.success());
    let out = netcap.interrupt();
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stderr.contains("4 packets captured, 0 lost (ring buffer full), 4 written"), "{}", out.stderr);

    let packets = tcpdump_packets(file, None);
    assert_eq!(packets.len(), 4);
    for (seq, packet) in packets.iter().enumerate() {
        assert!(packet.starts_with(&format!("IP {ADDR_A} > {ADDR_B}: ICMP echo request, id ")), "{packet}");
        assert!(packet.contains(&format!("seq {}, length 64", seq + 1)), "{packet}");
    }
    let rows = tshark_fields(file, &["frame.interface_name", "frame.comment", "ip.src", "icmp.seq"]);
    assert_eq!(rows.len(), 4, "{rows:?}");
    for (seq, row) in rows.iter().enumerate() {
        let fields: Vec<&str> = row.split('\t').collect();
        assert_eq!(fields[0], "netif_receive_skb", "{row}");
        assert!(fields[1].starts_with(&format!("point=netif_receive_skb dev={} ifindex=", pair.dev_b)), "{row}");
        assert!(fields[1].contains(" skb=0xffff") && fields[1].contains(" len=98"), "{row}");
        assert_eq!(fields[2], ADDR_A);
        assert_eq!(fields[3], (seq + 1).to_string());
    }
}

#[test]
fn pcapng_on_stdout_feeds_tcpdump_directly() {
    let Some(_guard) = root_test("pcapng_on_stdout_feeds_tcpdump_directly") else { return };
    let pair = Pair::new();
    let mut netcap = Command::new("ip")
        .args(["netns", "exec", &pair.b, NETCAP, "skb", "-f", "tp:net:netif_receive_skb", "-i", &pair.dev_b])
        .args(["-e", "icmp", "-c", "3", "-w", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let tcpdump = Command::new("tcpdump")
        .args(["-nn", "-r", "-"])
        .stdin(netcap.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(pair.ping(5, 56).status.success());
    let status = netcap.wait().unwrap();
    let output = tcpdump.wait_with_output().unwrap();
    assert!(status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(lines_with(&text, "ICMP echo request").len(), 3, "{text}");
}

#[test]
fn tcpdump_text_stays_with_netcap_s_line_for_every_packet_under_load() {
    let Some(_guard) = root_test("tcpdump_text_stays_with_netcap_s_line_for_every_packet_under_load") else { return };
    let (first, second) = (Pair::new(), Pair::new());
    let dir = scratch_dir("tcpdump-blocks");
    // In the root namespace without -i: sees all four devices.
    let netcap = Netcap::start(None, &["skb", "-f", "tp:net:netif_receive_skb", "-e", "icmp", "-t", "-nnv"], &dir);
    let (one, two) = (first.flood(400), second.flood(400));
    assert!(one.join().unwrap().status.success());
    assert!(two.join().unwrap().status.success());
    let out = netcap.interrupt();
    assert!(out.status.success(), "{}", out.stderr);

    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len() % 3, 0, "blocks of three lines");
    let devices = [&first.dev_a, &first.dev_b, &second.dev_a, &second.dev_b];
    // Each device carries one direction of one ping process: one ICMP type and id.
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut packets = 0;
    for block in lines.chunks(3) {
        let (point, device) = block[0].split_once(' ').expect("netcap's line");
        assert_eq!(point, "netif_receive_skb", "{block:?}");
        assert!(devices.iter().any(|d| d.as_str() == device), "{block:?}");
        assert!(block[1].contains(" IP (tos 0x0, ttl 64, id "), "{block:?}");
        let detail = block[2].trim_start();
        assert!(detail.contains(": ICMP echo "), "{block:?}");
        let kind = detail.split(", seq").next().unwrap().to_string();
        let previous = seen.entry(device.to_string()).or_insert_with(|| kind.clone());
        assert_eq!(*previous, kind, "a block mixed another packet's text: {block:?}");
        packets += 1;
    }
    assert_eq!(seen.len(), 4, "all four devices: {:?}", seen.keys());
    assert!(packets >= 1500, "only {packets} packets");
}

#[test]
fn rotation_keeps_exactly_the_last_n_after_ctrl_c() {
    let Some(_guard) = root_test("rotation_keeps_exactly_the_last_n_after_ctrl_c") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("rotate");
    let file = dir.join("last.pcapng");
    let file = file.to_str().unwrap();
    let netcap = pair.watch_receive(&["-e", "icmp", "-w", file, "--write-file-rotate", "5"], &dir);
    assert!(pair.ping(12, 56).status.success());
    let out = netcap.interrupt();
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stderr.contains("12 packets captured, 0 lost (ring buffer full), 5 written"), "{}", out.stderr);
    let packets = tcpdump_packets(file, None);
    let sequences: Vec<bool> =
        (8..=12).zip(&packets).map(|(seq, p)| p.contains(&format!("seq {seq}, length 64"))).collect();
    assert_eq!(packets.len(), 5, "{packets:?}");
    assert!(sequences.iter().all(|&ok| ok), "{packets:?}");
}

#[test]
fn json_lines_parse_and_hold_the_fields() {
    let Some(_guard) = root_test("json_lines_parse_and_hold_the_fields") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("json");
    let netcap = pair.watch_receive(&["-e", "icmp", "--json"], &dir);
    assert!(pair.ping(3, 56).status.success());
    let out = netcap.interrupt();
    assert!(out.status.success(), "{}", out.stderr);
    let objects: Vec<serde_json::Value> =
        out.stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert_eq!(objects.len(), 4, "three events and the summary");
    for (seq, event) in objects[..3].iter().enumerate() {
        assert_eq!(event["point"], "netif_receive_skb");
        assert_eq!(event["device"], pair.dev_b.as_str());
        assert_eq!(event["len"], 98);
        assert_eq!(event["headers"]["ip_src"], ADDR_A);
        assert_eq!(event["headers"]["ip_dst"], ADDR_B);
        assert_eq!(event["headers"]["icmp_type"], 8);
        assert!(event["summary"].as_str().unwrap().ends_with(&format!("seq {}, length 64", seq + 1)));
        assert_eq!(event["data"].as_str().unwrap().len(), 98 * 2);
        assert!(event["skb"].as_str().unwrap().starts_with("0xffff"));
    }
    assert_eq!(objects[3]["summary"]["captured"], 3);
    assert_eq!(objects[3]["summary"]["lost_ring_buffer_full"], 0);
}

#[test]
fn ctrl_c_in_the_middle_of_a_capture_leaves_a_valid_file() {
    let Some(_guard) = root_test("ctrl_c_in_the_middle_of_a_capture_leaves_a_valid_file") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("ctrl-c");
    let file = dir.join("cut.pcapng");
    let file = file.to_str().unwrap();
    let netcap = pair.watch_receive(&["-w", file], &dir);
    let flood = pair.flood(3000);
    std::thread::sleep(Duration::from_millis(300));
    // SIGINT while packets are still arriving.
    let out = netcap.interrupt();
    let _ = flood.join();
    assert!(out.status.success(), "{}", out.stderr);
    let captured: usize =
        out.stderr.split(" packets captured").next().unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(captured > 0, "{}", out.stderr);
    let read = run("tcpdump", &["-nn", "-r", file]);
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    let stderr = String::from_utf8_lossy(&read.stderr);
    assert!(!stderr.contains("truncated"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&read.stdout).lines().count(), captured);
    assert_eq!(tshark_fields(file, &["frame.number"]).len(), captured);
}

/// Restores kernel.bpf_stats_enabled when dropped.
struct BpfStats(String);

impl BpfStats {
    fn enable() -> BpfStats {
        let previous = must("sysctl", &["-n", "kernel.bpf_stats_enabled"]).trim().to_string();
        must("sysctl", &["-qw", "kernel.bpf_stats_enabled=1"]);
        BpfStats(previous)
    }

    /// Times netcap's programs have run, from the kernel's own statistics.
    fn netcap_runs() -> u64 {
        let listing = must("bpftool", &["prog", "show"]);
        listing
            .lines()
            .filter(|line| line.contains(" name netcap_"))
            .filter_map(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                let at = words.iter().position(|w| *w == "run_cnt")?;
                words.get(at + 1)?.parse::<u64>().ok()
            })
            .sum()
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = run("sysctl", &["-qw", &format!("kernel.bpf_stats_enabled={}", self.0)]);
    }
}

/// When the output stalls and a 1 MiB ring buffer overflows, every event
/// is either written or counted lost: captured + lost equals the number of
/// times the kernel ran netcap's program (bpf_stats), give or take the few
/// events of other traffic in the moment between reading the count and
/// detaching.
#[test]
fn every_event_is_captured_or_counted_lost() {
    let Some(_guard) = root_test("every_event_is_captured_or_counted_lost") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("loss");
    let fifo = dir.join("out.fifo");
    must("mkfifo", &[fifo.to_str().unwrap()]);
    let stats = BpfStats::enable();
    // Opens the FIFO (netcap's output) at once, then reads nothing for 4 s.
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut file = std::fs::File::open(&fifo).unwrap();
            std::thread::sleep(Duration::from_secs(4));
            std::io::copy(&mut file, &mut std::io::sink()).unwrap()
        })
    };
    let args = ["skb", "-f", "tp:net:netif_receive_skb", "--ring-buffer-mb", "1", "-w", fifo.to_str().unwrap()];
    let netcap = Netcap::start(Some(&pair.b), &args, &dir);
    let flood = pair.flood(20000).join().unwrap();
    assert!(flood.status.success());
    // Past the stall, and time for netcap to write what it holds.
    std::thread::sleep(Duration::from_secs(5));
    let runs = BpfStats::netcap_runs();
    let done = netcap.interrupt();
    let bytes = reader.join().unwrap();
    drop(stats);
    assert!(done.status.success(), "{}", done.stderr);
    let summary = done.stderr.lines().find(|l| l.contains("packets captured")).unwrap_or_default();
    let numbers: Vec<u64> = summary.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect();
    let (captured, lost) = (numbers[0], numbers[1]);
    eprintln!("program runs {runs}; {summary}");
    assert!(lost > 1000, "the ring overflowed while the output stalled: {summary}");
    assert!(captured > 1000 && bytes > 100_000, "{summary}, {bytes} bytes written");
    // 20000 pings: 40000 events at netif_receive_skb (requests in b, replies in a).
    assert!(runs >= 40_000, "{runs}");
    assert!((captured + lost).abs_diff(runs) <= 50, "runs {runs} vs captured {captured} + lost {lost}: {summary}");
}
