//! `netcap raw` and `netcap mbuf`: packets inside user-space processes,
//! through uprobes and USDT probes. The processes are small C programs
//! built here (tests/user/); the DPDK one uses real mbufs from a real
//! mempool. Their frames come from a tcpdump capture of real traffic, and
//! what netcap writes is compared with that capture byte for byte.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use crate::util::*;

const SOURCES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/user");

/// Compiles tests/user/NAME.c into `dir` with extra compiler arguments.
fn build(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut args = vec!["-O2", "-g", "-Wall", "-o", out.to_str().unwrap()];
    let source = format!("{SOURCES}/{name}.c");
    args.push(&source);
    args.extend_from_slice(extra);
    must("cc", &args);
    out
}

fn dpdk_flags(which: &str) -> Vec<String> {
    must("pkg-config", &[which, "libdpdk"]).split_whitespace().map(str::to_string).collect()
}

/// A pcap file of real traffic between the pair: ARP, pings, UDP to a
/// closed port (and the ICMP errors it draws), IPv6 neighbour discovery.
fn capture_frames(dir: &Path) -> String {
    let pair = Pair::new();
    let file = dir.join("frames.pcap").to_str().unwrap().to_string();
    let mut tcpdump = Command::new("ip")
        .args(["netns", "exec", &pair.b, "tcpdump", "--immediate-mode", "-i", &pair.dev_b, "-U", "-w", &file])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // tcpdump says "listening on" once it captures.
    let mut err = BufReader::new(tcpdump.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(pair.ping(3, 56).status.success());
    assert!(pair.ping(2, 1000).status.success());
    for _ in 0..3 {
        pair.exec(&pair.a, &["bash", "-c", "echo netcap > /dev/udp/198.18.0.2/9"]);
    }
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(tcpdump.id() as i32, libc::SIGINT) };
    tcpdump.wait().unwrap();
    let icmp = tcpdump_packets(&file, Some("icmp")).len();
    assert!(icmp >= 13, "the capture holds the traffic: {icmp} ICMP packets");
    file
}

/// A feeder process: prints "PID COUNT", then feeds its frames once per
/// line written to it, answering "fed COUNT".
struct Feeder {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pid: i32,
    frames: usize,
}

impl Feeder {
    fn start(program: &Path, frames: &str) -> Feeder {
        let mut child = Command::new(program)
            .arg(frames)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let mut fields = line.split_whitespace();
        let pid = fields.next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("feeder said '{line}'"));
        let frames = fields.next().and_then(|c| c.parse().ok()).unwrap();
        Feeder { child, stdin, stdout, pid, frames }
    }

    fn feed(&mut self, mode: &str) {
        writeln!(self.stdin.as_mut().unwrap(), "{mode}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), format!("fed {}", self.frames));
    }

    /// Closes its input: it exits.
    fn finish(&mut self) {
        self.stdin = None;
        self.child.wait().unwrap();
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // The DPDK feeder's EAL runtime directory (named after its PID).
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/netcap-test-{}", self.pid));
        let _ = std::fs::remove_dir("/var/run/dpdk");
    }
}

/// netcap raw -p PID -f f -e icmp -w FILE: exactly the ICMP frames of the
/// capture, byte for byte; without -e every frame; and netcap ends by
/// itself when the process does.
#[test]
fn raw_captures_exactly_the_frames_the_process_handles() {
    let Some(_guard) = root_test("raw_captures_exactly_the_frames_the_process_handles") else { return };
    let dir = scratch_dir("raw");
    let frames = capture_frames(&dir);
    let program = build(&dir, "raw_feeder", &[]);
    let mut feeder = Feeder::start(&program, &frames);
    let pid = feeder.pid.to_string();

    let out = dir.join("icmp.pcapng");
    let out = out.to_str().unwrap();
    let netcap = Netcap::start(
        None,
        &["raw", "-p", &pid, "-f", "f", "-e", "icmp", "--capture-max-size", "1514", "-w", out],
        &dir,
    );
    feeder.feed("go");
    let done = netcap.interrupt();
    assert!(done.status.success(), "{}", done.stderr);
    assert!(done.stderr.contains("f attached by uprobe"), "{}", done.stderr);
    let expected = tcpdump_packets(&frames, Some("icmp"));
    assert_eq!(tcpdump_packets(out, None), expected);

    let all = dir.join("all.pcapng");
    let all = all.to_str().unwrap();
    let netcap =
        Netcap::start(None, &["raw", "-p", &pid, "-f", "f@1@2", "--capture-max-size", "1514", "-w", all], &dir);
    feeder.feed("go");
    feeder.finish();
    let done = netcap.wait(Duration::from_secs(10));
    assert!(done.status.success(), "{}", done.stderr);
    assert!(done.stderr.contains(&format!("process {pid} exited; stopping")), "{}", done.stderr);
    assert_eq!(tcpdump_packets(all, None), tcpdump_packets(&frames, None));
}

/// Without -p, /path/to/binary:f traces every process running it,
/// including one started after netcap.
#[test]
fn raw_by_binary_path_follows_processes_started_later() {
    let Some(_guard) = root_test("raw_by_binary_path_follows_processes_started_later") else { return };
    let dir = scratch_dir("raw-path");
    let frames = capture_frames(&dir);
    let program = build(&dir, "raw_feeder", &[]);
    let spec = format!("{}:f", program.display());
    let netcap = Netcap::start(None, &["raw", "-f", &spec, "-e", "udp", "--json"], &dir);
    let mut first = Feeder::start(&program, &frames);
    let mut second = Feeder::start(&program, &frames);
    first.feed("go");
    second.feed("go");
    let done = netcap.interrupt();
    assert!(done.status.success(), "{}", done.stderr);
    let pids: Vec<i64> = json_events(&done.stdout).iter().filter_map(|v| v["pid"].as_i64()).collect();
    let udp = tcpdump_packets(&frames, Some("udp")).len();
    assert!(udp >= 3);
    assert_eq!(pids.len(), 2 * udp, "{}", done.stdout);
    assert_eq!(pids.iter().filter(|&&p| p == i64::from(first.pid)).count(), udp);
    assert_eq!(pids.iter().filter(|&&p| p == i64::from(second.pid)).count(), udp);
}

/// A real DPDK process: mbufs one by one, chained over three segments, in
/// a burst (array and count at arguments 2 and 3), and through a USDT
/// probe; every packet's bytes as captured, and the filter selects.
#[test]
fn mbuf_captures_single_chained_burst_and_usdt_packets() {
    let Some(_guard) = root_test("mbuf_captures_single_chained_burst_and_usdt_packets") else { return };
    let dir = scratch_dir("mbuf");
    let frames = capture_frames(&dir);
    let cflags = dpdk_flags("--cflags");
    let libs = dpdk_flags("--libs");
    let extra: Vec<&str> = cflags.iter().chain(libs.iter()).map(String::as_str).collect();
    let program = build(&dir, "dpdk_feeder", &extra);
    let mut feeder = Feeder::start(&program, &frames);
    let pid = feeder.pid.to_string();
    let all = tcpdump_packets(&frames, None);
    let icmp = tcpdump_packets(&frames, Some("icmp"));

    // Bursts again as on kernels before 5.17, which have no bpf_loop: the
    // same packets through the bounded loop.
    let without_loop = [("NETCAP_WITHOUT", "bpf_loop")];
    for (spec, modes, env) in [
        ("rx_one", &["one", "chain"][..], &[][..]),
        ("rx_burst@2@3", &["burst"][..], &[][..]),
        ("usdt:netcap_test:rx@1@2", &["usdt"][..], &[][..]),
        ("rx_burst@2@3", &["burst"][..], &without_loop[..]),
        ("usdt:netcap_test:rx@1@2", &["usdt"][..], &without_loop[..]),
    ] {
        let out = dir.join("mbuf.pcapng");
        let out = out.to_str().unwrap();
        let args = ["mbuf", "-p", &pid, "-f", spec, "--capture-max-size", "1514", "-w", out];
        let netcap = Netcap::start_with_env(None, &args, &dir, env);
        for mode in modes {
            feeder.feed(mode);
        }
        let done = netcap.interrupt();
        assert!(done.status.success(), "{spec}: {}", done.stderr);
        let bounded = "bursts are walked by a bounded loop of at most 1024 mbufs";
        assert_eq!(done.stderr.contains(bounded), !env.is_empty(), "{spec} {env:?}: {}", done.stderr);
        assert!(done.stderr.contains("rte_mbuf layout buf_addr=0,data_off=16,"), "{}", done.stderr);
        assert!(done.stderr.contains("from the debug information of"), "read from DWARF: {}", done.stderr);
        let expected: Vec<String> = modes.iter().flat_map(|_| all.iter().cloned()).collect();
        assert_eq!(tcpdump_packets(out, None), expected, "{spec}");
        if spec == "rx_one" {
            // The second round was chained: its comments say so.
            let comments = must("tshark", &["-r", out, "-T", "fields", "-e", "frame.comment"]);
            let chained = comments.lines().filter(|c| c.contains("segments=chained")).count();
            assert_eq!(chained, all.len(), "{comments}");
            assert!(comments.lines().all(|c| c.contains(" mbuf=0x")), "{comments}");
        }

        let netcap = Netcap::start(
            None,
            &["mbuf", "-p", &pid, "-f", spec, "-e", "icmp", "--capture-max-size", "1514", "-w", out],
            &dir,
        );
        feeder.feed(modes[0]);
        let done = netcap.interrupt();
        assert!(done.status.success(), "{spec}: {}", done.stderr);
        assert_eq!(tcpdump_packets(out, None), icmp, "{spec} with -e icmp");
    }

    // --mbuf-layout wins over DWARF: a wrong data_off shifts every frame.
    let out = dir.join("shifted.pcapng");
    let out = out.to_str().unwrap();
    let args = ["mbuf", "-p", &pid, "-f", "rx_one", "--mbuf-layout", "data_off=18", "--capture-max-size", "1514"];
    let netcap = Netcap::start(None, &[&args[..], &["-w", out]].concat(), &dir);
    feeder.feed("one");
    let done = netcap.interrupt();
    assert!(done.stderr.contains("data_off=18") && done.stderr.contains("from --mbuf-layout"), "{}", done.stderr);
    let shifted = tcpdump_packets(out, None);
    assert_eq!(shifted.len(), all.len());
    assert!(shifted.iter().zip(&all).all(|(s, a)| s != a), "every frame read 2 bytes late");

    // One burst seen at two points: journeys joined by mbuf address.
    let points = "rx_burst@2@3,usdt:netcap_test:rx@1@2";
    let netcap =
        Netcap::start(None, &["mbuf", "-p", &pid, "-f", points, "--gather", "--gather-distinguish-by-pointer"], &dir);
    feeder.feed("both");
    let done = netcap.interrupt();
    assert!(done.status.success(), "{}", done.stderr);
    // Mempool mbufs carry no port (RTE_MBUF_PORT_INVALID): shown as "-".
    let journeys = lines_with(&done.stdout, " rx_burst - len ");
    let seen_later = lines_with(&done.stdout, "later at usdt:netcap_test:rx");
    assert_eq!((journeys.len(), seen_later.len()), (all.len(), all.len()), "{}", done.stdout);
}

/// The user's C runs on user-space packets too: `pkt` is the buffer in
/// the traced process.
#[test]
fn extensions_read_user_space_packets() {
    let Some(_guard) = root_test("extensions_read_user_space_packets") else { return };
    let dir = scratch_dir("raw-ext");
    let frames = capture_frames(&dir);
    let program = build(&dir, "raw_feeder", &[]);
    let mut feeder = Feeder::start(&program, &frames);
    let action = dir.join("action.c");
    std::fs::write(
        &action,
        "struct xcap_user_extend { unsigned char dst[6]; u16 len; };\n\
         static inline int xcap_ext_action(void *ext, void *pkt, u32 pkt_len, struct xcap_user_extend *user, u16 index)\n\
         {\n\tbpf_probe_read_user(user->dst, 6, pkt);\n\tuser->len = pkt_len;\n\treturn 1;\n}\n",
    )
    .unwrap();
    let filter = dir.join("filter.c");
    // ARP only (ethertype 0x0806 at offset 12).
    std::fs::write(
        &filter,
        "static inline int xcap_ext_filter(void *ext, void *pkt, u16 index)\n\
         {\n\tunsigned char type[2] = {};\n\tbpf_probe_read_user(type, 2, pkt + 12);\n\
         \treturn type[0] == 0x08 && type[1] == 0x06;\n}\n",
    )
    .unwrap();
    let pid = feeder.pid.to_string();
    let args = ["raw", "-p", &pid, "-f", "f", "--json", "--ext-action", action.to_str().unwrap()];
    let netcap = Netcap::start(None, &[&args[..], &["--ext-filter", filter.to_str().unwrap()]].concat(), &dir);
    feeder.feed("go");
    let done = netcap.interrupt();
    assert!(done.status.success(), "{}", done.stderr);
    let events = json_events(&done.stdout);
    assert_eq!(events.len(), tcpdump_packets(&frames, Some("arp")).len(), "{}", done.stdout);
    for event in &events {
        let data = event["data"].as_str().unwrap();
        let dst: Vec<u64> = (0..6).map(|i| u64::from_str_radix(&data[2 * i..2 * i + 2], 16).unwrap()).collect();
        assert_eq!(event["user"]["dst"], serde_json::json!(dst), "{event}");
        assert_eq!(event["user"]["len"], event["len"]);
        assert!(event["summary"].as_str().unwrap().starts_with("ARP"), "{event}");
    }
}

/// Mistakes name what is wrong and what would be right, exit 2, attach nothing.
#[test]
fn user_space_mistakes_are_explained() {
    let Some(_guard) = root_test("user_space_mistakes_are_explained") else { return };
    let dir = scratch_dir("user-mistakes");
    let program = build(&dir, "raw_feeder", &[]);
    let frames = dir.join("empty.pcap");
    // A pcap header and no packets.
    let mut header = Vec::new();
    for word in [0xa1b2c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        header.extend_from_slice(&word.to_le_bytes());
    }
    std::fs::write(&frames, header).unwrap();
    let feeder = Feeder::start(&program, frames.to_str().unwrap());
    let pid = feeder.pid.to_string();
    for (args, wanted) in [
        (vec!["raw", "-p", &pid, "-f", "g"], "function g is not in process"),
        (vec!["raw", "-p", &pid, "-f", "f@1"], "needs the buffer and its length"),
        (vec!["raw", "-f", "f"], "give the process with -p PID"),
        (vec!["raw", "-p", "2147483646", "-f", "f"], "no process 2147483646"),
        (vec!["mbuf", "-p", &pid, "-f", "usdt:netcap_test:tx"], "USDT probe netcap_test:tx is not in process"),
        (vec!["mbuf", "-p", &pid, "-f", "f", "--mbuf-layout", "nxt=8"], "unknown field 'nxt'"),
        (vec!["raw", "-p", &pid, "-f", "f@9@2"], "write @1 to @6"),
    ] {
        let out = netcap(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(wanted), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    }
    assert!(netcap_programs_loaded().is_empty());
}
