//! Holding under load and a hostile host (issue 23): signals end a capture
//! promptly whatever the load, outputs are opened safely and before
//! anything is attached, kernel-supplied names cannot reach the terminal
//! raw.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// A flood ping from a to b that runs until dropped (bounded to 30 s).
struct Flood(Child);

impl Flood {
    fn start(pair: &Pair) -> Flood {
        let child = Command::new("ip")
            .args(["netns", "exec", &pair.a, "ping", "-f", "-q", "-w", "30", ADDR_B])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting ping");
        Flood(child)
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by its PID (ip exec's into ping).
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let _ = self.0.wait();
    }
}

/// Sends `signal` to netcap and returns how long it took to exit, and what it printed.
fn signal_and_time(netcap: Netcap, signal: i32) -> (Duration, Finished) {
    let start = Instant::now();
    // SAFETY: signalling our own child by its PID.
    unsafe { libc::kill(netcap.pid() as i32, signal) };
    let finished = netcap.wait(Duration::from_secs(30));
    (start.elapsed(), finished)
}

/// Floods netcap's namespace for 2 s, then sends `signal` while the flood goes on.
fn signal_during_a_flood(pair: &Pair, netcap: Netcap, signal: i32) -> (Duration, Finished) {
    let flood = Flood::start(pair);
    std::thread::sleep(Duration::from_secs(2));
    let stopped = signal_and_time(netcap, signal);
    drop(flood);
    stopped
}

/// The bound the issue sets is 1 s; half a second more absorbs a loaded CI
/// machine, and before the fix netcap took 1.5 to more than 20 s.
const PROMPT: Duration = Duration::from_millis(1500);

#[test]
fn ctrl_c_ends_a_flood_capture_to_json_promptly_with_a_complete_file() {
    let Some(_guard) = root_test("ctrl_c_ends_a_flood_capture_to_json_promptly_with_a_complete_file") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("sigint-json");
    let netcap = pair.watch_receive(&["--json"], &dir);
    let (took, out) = signal_during_a_flood(&pair, netcap, libc::SIGINT);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(took < PROMPT, "took {took:?} to stop");
    let last = out.stdout.lines().last().expect("output");
    let summary: serde_json::Value = serde_json::from_str(last).expect("the last line is whole JSON");
    let events = json_events(&out.stdout);
    assert!(events.len() > 1000, "a flood was captured: {}", events.len());
    assert!(summary["summary"]["captured"].as_u64().unwrap() >= events.len() as u64, "{last}");
    assert!(out.stderr.contains("packets captured"), "{}", out.stderr);
    assert!(netcap_programs_loaded().is_empty());
}

#[test]
fn ctrl_c_ends_a_flood_capture_through_tcpdump_promptly() {
    let Some(_guard) = root_test("ctrl_c_ends_a_flood_capture_through_tcpdump_promptly") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("sigint-tcpdump");
    let netcap = pair.watch_receive(&["-t", "-nn", "--ring-buffer-mb", "64"], &dir);
    let (took, out) = signal_during_a_flood(&pair, netcap, libc::SIGTERM);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(took < PROMPT, "took {took:?} to stop");
    assert!(lines_with(&out.stdout, "ICMP echo request").len() > 100, "tcpdump's text came through");
    assert!(out.stderr.contains("packets captured"), "{}", out.stderr);
}

/// Ctrl-C on a terminal reaches the whole foreground process group,
/// tcpdump (started by -t) included: netcap must still end cleanly.
#[test]
fn ctrl_c_to_the_process_group_with_tcpdump_exits_zero_with_the_summary() {
    let Some(_guard) = root_test("ctrl_c_to_the_process_group_with_tcpdump_exits_zero_with_the_summary") else {
        return;
    };
    let pair = Pair::new();
    let dir = scratch_dir("sigint-group");
    let (stdout, stderr) = (dir.join("out"), dir.join("err"));
    let mut child = Command::new("ip")
        .args(["netns", "exec", &pair.b, NETCAP, "skb", "-f", "tp:net:netif_receive_skb", "-i", &pair.dev_b])
        .args(["-e", "icmp", "-t", "-nn"])
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&stderr).unwrap().contains("Ctrl-C to stop") {
        assert!(Instant::now() < deadline && child.try_wait().unwrap().is_none(), "netcap did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Packets keep coming while the signal lands: netcap still feeds tcpdump after it.
    let flood = Flood::start(&pair);
    std::thread::sleep(Duration::from_secs(1));
    // SAFETY: signalling the process group of our own child, as a terminal does.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
    let status = child.wait().unwrap();
    drop(flood);
    let err = std::fs::read_to_string(&stderr).unwrap();
    assert!(status.success(), "{status}: {err}");
    assert!(err.contains("packets captured"), "{err}");
    assert!(lines_with(&std::fs::read_to_string(&stdout).unwrap(), "ICMP echo request").len() > 10);
}

#[test]
fn sighup_ends_the_capture_like_sigterm() {
    let Some(_guard) = root_test("sighup_ends_the_capture_like_sigterm") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("sighup");
    let file = dir.join("last.pcapng");
    let netcap = pair.watch_receive(&["-e", "icmp", "-w", file.to_str().unwrap(), "--write-file-rotate", "2"], &dir);
    assert!(pair.ping(4, 56).status.success());
    std::thread::sleep(Duration::from_millis(300));
    let (_, out) = signal_and_time(netcap, libc::SIGHUP);
    assert!(out.status.success(), "{:?}: {}", out.status, out.stderr);
    assert!(out.stderr.contains("4 packets captured, 0 lost (ring buffer full), 2 written"), "{}", out.stderr);
    assert_eq!(tcpdump_packets(file.to_str().unwrap(), None).len(), 2);
}

/// An output that never drains blocks netcap in write(); the first SIGINT
/// cannot finish the run, the second ends it at once, and the kernel keeps
/// nothing of it.
#[test]
fn a_second_ctrl_c_exits_at_once_even_when_the_output_is_stuck() {
    let Some(_guard) = root_test("a_second_ctrl_c_exits_at_once_even_when_the_output_is_stuck") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("sigint-twice");
    let fifo = dir.join("stuck.fifo");
    must("mkfifo", &[fifo.to_str().unwrap()]);
    // Opens the FIFO so that netcap can, and never reads it.
    let holder = std::fs::File::options().read(true).write(true).open(&fifo).unwrap();
    let netcap = pair.watch_receive(&["-w", fifo.to_str().unwrap()], &dir);
    let flood = Flood::start(&pair);
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: signalling our own child by its PID.
    unsafe { libc::kill(netcap.pid() as i32, libc::SIGINT) };
    std::thread::sleep(Duration::from_millis(1500));
    let (took, out) = signal_and_time(netcap, libc::SIGINT);
    drop(flood);
    drop(holder);
    assert!(took < Duration::from_millis(500), "took {took:?}");
    assert_eq!(out.status.code(), Some(128 + libc::SIGINT), "{}", out.stderr);
    assert!(netcap_programs_loaded().is_empty());
}

#[test]
fn a_huge_rotation_count_grows_on_demand() {
    let Some(_guard) = root_test("a_huge_rotation_count_grows_on_demand") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("rotate-huge");
    let file = dir.join("out.pcapng");
    let file = file.to_str().unwrap();
    let netcap = pair.watch_receive(&["-e", "icmp", "-c", "3", "-w", file, "--write-file-rotate", "4294967295"], &dir);
    assert!(pair.ping(5, 56).status.success());
    let out = netcap.wait(Duration::from_secs(10));
    assert!(out.status.success(), "{:?}: {}", out.status, out.stderr);
    assert_eq!(tcpdump_packets(file, None).len(), 3);
}

/// Runs `setpriv` as the unprivileged user `nobody`.
fn as_nobody(args: &[&str]) {
    let mut full = vec!["--reuid=65534", "--regid=65534", "--clear-groups", "--"];
    full.extend_from_slice(args);
    must("setpriv", &full);
}

/// The attacks of issue 23 on `-w`, by a local user in a sticky world-writable
/// directory: a planted symlink, a planted hard link and a pre-created file
/// it can read. Root's netcap refuses each, and the victim stays unchanged.
#[test]
fn writing_a_file_never_follows_links_or_reuses_another_user_s_file() {
    let Some(_guard) = root_test("writing_a_file_never_follows_links_or_reuses_another_user_s_file") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("w-attack");
    let shared = dir.join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::set_permissions(&*dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let victim = dir.join("victim");
    std::fs::write(&victim, "root's secret\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();

    let link = shared.join("via-symlink.pcapng");
    as_nobody(&["ln", "-s", victim.to_str().unwrap(), link.to_str().unwrap()]);
    let planted = shared.join("planted.pcapng");
    as_nobody(&["sh", "-c", &format!("umask 0; : > {}", planted.display())]);
    let cases = [(link.clone(), "symbolic link"), (planted.clone(), "belongs to uid 65534")];
    for (path, complaint) in &cases {
        let args =
            ["skb", "-f", "tp:net:netif_receive_skb", "-i", &pair.dev_b, "-c", "1", "-w", path.to_str().unwrap()];
        // Bounded: a netcap that took the file would wait for a packet.
        let out = pair.exec(&pair.b, &[&["timeout", "10", NETCAP][..], &args[..]].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(complaint), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(!err.contains("attached by"), "refused before attaching: {err}");
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root's secret\n");
    assert_eq!(std::fs::metadata(&planted).unwrap().len(), 0);

    // A new file is root's alone.
    let fresh = shared.join("fresh.pcapng");
    let netcap = pair.watch_receive(&["-e", "icmp", "-c", "1", "-w", fresh.to_str().unwrap()], &dir);
    assert!(pair.ping(2, 56).status.success());
    assert!(netcap.wait(Duration::from_secs(10)).status.success());
    let meta = std::fs::metadata(&fresh).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.uid()), (0o600, 0));
    assert_eq!(tcpdump_packets(fresh.to_str().unwrap(), None).len(), 1);
}

/// Mistakes in the output that used to be found only after every point was
/// attached, or after the first packet, or never.
#[test]
fn output_mistakes_fail_at_start_before_anything_is_attached() {
    let Some(_guard) = root_test("output_mistakes_fail_at_start_before_anything_is_attached") else { return };
    let dir = scratch_dir("output-mistakes");
    let missing = dir.join("no-such-dir/x.pcapng");
    let cases: [(&[&str], &str); 4] = [
        (&["-w", missing.to_str().unwrap()], "its directory does not exist"),
        (&["-w", dir.to_str().unwrap()], "is a directory"),
        (&["-t", "-s abc"], "tcpdump stopped"),
        (&["-t", "-T nosuchtype"], "tcpdump stopped"),
    ];
    for (extra, complaint) in cases {
        let mut args = vec!["skb", "-f", "tp:net:netif_receive_skb"];
        args.extend_from_slice(extra);
        let out = netcap(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(complaint), "{extra:?}: {err}");
        assert!(!err.contains("attached by"), "{extra:?} refused before attaching: {err}");
    }
    // tcpdump may exit before netcap has written it the pcap header: the
    // failed write is tcpdump's refusal too, not a reader that closed
    // netcap's output (exit 0 in silence, a quarter of the runs before the
    // fix). Sharing one CPU with a spinner makes that order common.
    let mut spinner = Command::new("taskset").args(["-c", "0", "sh", "-c", "while :; do :; done"]).spawn().unwrap();
    let refusals: Vec<Option<i32>> = (0..30)
        .map(|_| {
            let args = ["-c", "0", NETCAP, "skb", "-f", "tp:net:netif_receive_skb", "-t", "-T nosuchtype"];
            run("taskset", &args).status.code()
        })
        .collect();
    let _ = spinner.kill();
    let _ = spinner.wait();
    assert!(refusals.iter().all(|code| *code == Some(2)), "{refusals:?}");
    assert!(netcap_programs_loaded().is_empty());
}

/// A device named with a terminal escape sequence (any user can name one in
/// a namespace of their own) is printed escaped.
#[test]
fn device_names_with_escape_sequences_are_printed_escaped() {
    let Some(_guard) = root_test("device_names_with_escape_sequences_are_printed_escaped") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("escape-names");
    let hostile = "x\x1b]0;pwn\x07";
    must("ip", &["-n", &pair.b, "link", "add", hostile, "type", "veth", "peer", "name", "ncpeer"]);
    for device in [hostile, "ncpeer"] {
        must("ip", &["-n", &pair.b, "link", "set", device, "up"]);
    }
    must("ip", &["-n", &pair.b, "addr", "add", "198.18.5.1/24", "dev", hostile]);
    // No ARP first: the pings themselves leave through the hostile device.
    must("ip", &["-n", &pair.b, "neigh", "add", "198.18.5.2", "lladdr", "02:00:00:00:00:01", "dev", hostile]);
    let args = ["skb", "-f", "tp:net:net_dev_queue", "-i", hostile, "-e", "icmp", "-c", "2"];
    let netcap = Netcap::start(Some(&pair.b), &args, &dir);
    let _ = pair.exec(&pair.b, &["ping", "-c", "2", "-i", "0.1", "-W", "1", "-w", "3", "198.18.5.2"]);
    let out = netcap.wait(Duration::from_secs(10));
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(lines_with(&out.stdout, "x\\x1b]0;pwn\\x07").len(), 2, "{:?}", out.stdout);
    assert!(!out.stdout.contains('\x1b') && !out.stdout.contains('\x07'), "{:?}", out.stdout);
}

/// `netcap skb --ext-filter F` with a filter that keeps everything, with
/// TMPDIR set to a new directory `name` of mode `mode` inside `dir`.
fn extension_run(dir: &std::path::Path, name: &str, mode: u32) -> (Command, std::path::PathBuf) {
    let tmp = dir.join(name);
    std::fs::create_dir(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).unwrap();
    let filter = dir.join("keep.c");
    std::fs::write(&filter, "static inline int xcap_ext_filter(void *e, void *p, u16 i) { return 1; }\n").unwrap();
    let mut command = Command::new(NETCAP);
    command
        .args(["skb", "-f", "tp:net:netif_receive_skb", "--ext-filter", filter.to_str().unwrap()])
        .env("TMPDIR", &tmp);
    (command, tmp)
}

/// Issue 23 #5: the extension's build directory lives in $TMPDIR. One that
/// other users can change (world-writable, not sticky) is refused, before
/// anything is written there.
#[test]
fn an_unsafe_tmpdir_is_refused_for_extensions() {
    let Some(_guard) = root_test("an_unsafe_tmpdir_is_refused_for_extensions") else { return };
    let dir = scratch_dir("unsafe-tmpdir");
    let (mut command, open_dir) = extension_run(&dir, "anyone-writes", 0o777);
    let out = command.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("can be changed by other users") && err.contains("TMPDIR"), "{err}");
    assert_eq!(std::fs::read_dir(&open_dir).unwrap().count(), 0, "nothing written there");
}

/// Issue 23 #13: SIGTERM while clang compiles an extension ends clang and
/// removes the build directory.
#[test]
fn sigterm_during_an_extension_compile_leaves_nothing_behind() {
    let Some(_guard) = root_test("sigterm_during_an_extension_compile_leaves_nothing_behind") else { return };
    let dir = scratch_dir("sigterm-compile");
    let (mut command, tmp) = extension_run(&dir, "tmp", 0o700);
    let child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    // The compile has begun once the build directory holds the sources.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_dir(&tmp).unwrap().flatten().any(|e| e.path().join("netcap.bpf.c").exists()) {
        assert!(Instant::now() < deadline, "no build directory appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: signalling our own child by its PID.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("interrupted while clang compiled"), "{err}");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "the build directory is gone");
    // pgrep exits 1 when nothing matches.
    let clangs = run("pgrep", &["-f", "-a", "netcap.bpf.c"]);
    let clangs = String::from_utf8_lossy(&clangs.stdout);
    assert!(!clangs.contains("clang"), "clang still runs: {clangs}");
    assert!(netcap_programs_loaded().is_empty());
}

/// Hostile or mistaken input of issue 23 (#7, #11, #18, #19, #21): each a
/// one-line error with exit code 2 that says what is wrong, and nothing
/// left attached.
#[test]
fn input_mistakes_are_one_line_errors_naming_the_problem() {
    let Some(_guard) = root_test("input_mistakes_are_one_line_errors_naming_the_problem") else { return };
    let dir = scratch_dir("input-mistakes");
    let no_function = dir.join("empty.c");
    std::fs::write(&no_function, "int nothing;\n").unwrap();
    let point = "tp:net:netif_receive_skb";
    let libc_memcpy = format!("{}:memcpy@1@3", libc_path());
    let huge = "a".repeat(100_000);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["skb", "-f", point, "-e", "inbound"], "inbound/outbound"),
        (vec!["skb", "-f", point, "-e", "not outbound"], "inbound/outbound"),
        (vec!["skb", "-f", point, "-e", "ifindex 2"], "use -i DEVICE"),
        (vec!["skb", "-f", point, "-e", "ip protochain 17"], "protochain"),
        (vec!["skb", "-f", point, "--ext-filter", "/dev/zero"], "not a regular file"),
        (vec!["skb", "-f", point, "--ext-filter", no_function.to_str().unwrap()], "defines neither xcap_ext_filter"),
        (vec!["skb", "-f", point, "--skb-data-offset", "100000"], "--skb-data-offset"),
        (vec!["skb", "-f", point, "-c", "many"], "invalid value 'many'"),
        (vec!["skb"], "--function"),
        (vec!["raw", "-f", "/dev/zero:main", "-e", "icmp"], "not a readable ELF file"),
        (vec!["raw", "-f", &libc_memcpy], "indirect function (GNU IFUNC)"),
        (vec!["skb", "-f", &huge], "100000 bytes"),
        (vec!["skb", "-f", "ip_rcv\n\x1b[31m"], "control character"),
    ];
    for (args, complaint) in cases {
        let out = netcap(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.contains(complaint), "{args:?}: {err}");
    }
    // netcap raw -p with netcap's own PID: a shell that execs into netcap.
    let own = run("sh", &["-c", &format!("exec {NETCAP} raw -p $$ -f main")]);
    let err = String::from_utf8_lossy(&own.stderr);
    assert_eq!(own.status.code(), Some(2), "{err}");
    assert!(err.contains("is netcap itself"), "{err}");
    assert!(netcap_programs_loaded().is_empty());
}

/// The C library this machine's programs load (from ldd of /bin/sh).
fn libc_path() -> String {
    let listing = must("ldd", &["/bin/sh"]);
    listing
        .lines()
        .find_map(|line| line.split("=>").nth(1).map(str::trim).filter(|l| l.contains("libc.so")))
        .and_then(|l| l.split_whitespace().next())
        .expect("ldd names libc")
        .to_string()
}

/// #18: an --skb-data-offset past the end of every packet is counted, not silent.
#[test]
fn packets_whose_start_lies_outside_them_are_counted() {
    let Some(_guard) = root_test("packets_whose_start_lies_outside_them_are_counted") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("outside");
    let netcap = pair.watch_receive(&["--skb-data", "--skb-data-offset", "60000"], &dir);
    assert!(pair.ping(3, 56).status.success());
    let out = netcap.interrupt();
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stderr.contains("0 packets captured"), "{}", out.stderr);
    let counted: u64 = out
        .stderr
        .split(" skipped (start outside the packet)")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(counted >= 3, "the 3 requests at least: {}", out.stderr);
}

/// #19: a full $TMPDIR is named in the error, not left as a bare errno.
#[test]
fn a_full_tmpdir_is_named_in_the_error() {
    let Some(_guard) = root_test("a_full_tmpdir_is_named_in_the_error") else { return };
    let dir = scratch_dir("full-tmpdir");
    let (mut command, tmp) = extension_run(&dir, "small", 0o700);
    /// Unmounts the small tmpfs even when the test fails.
    struct Mounted<'a>(&'a str);
    impl Drop for Mounted<'_> {
        fn drop(&mut self) {
            let _ = run("umount", &[self.0]);
        }
    }
    must("mount", &["-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", tmp.to_str().unwrap()]);
    let mounted = Mounted(tmp.to_str().unwrap());
    let out = command.output().unwrap();
    drop(mounted);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("writing netcap's sources into") && err.contains("No space left on device"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
