//! Shared pieces of the root-only integration tests: network namespaces
//! joined by a veth pair, a running netcap, bounded traffic.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const NETCAP: &str = env!("CARGO_BIN_EXE_netcap");
pub const ADDR_A: &str = "198.18.0.1";
pub const ADDR_B: &str = "198.18.0.2";

/// Kernel-touching tests run one at a time: they count programs loaded
/// and events seen, which other tests' tracing would disturb.
static KERNEL: Mutex<()> = Mutex::new(());

/// Serializes the test and says whether it can run. Outside CI a non-root
/// run skips with a message; in CI (always root) a skip is a failure.
pub fn root_test(name: &str) -> Option<MutexGuard<'static, ()>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(std::env::var_os("CI").is_none(), "{name}: CI runs as root, but this test is not root");
        eprintln!("skipped {name}: needs root (network namespaces, BPF)");
        return None;
    }
    Some(KERNEL.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
}

pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).output().unwrap_or_else(|e| panic!("running {program}: {e}"))
}

pub fn must(program: &str, args: &[&str]) -> String {
    let output = run(program, args);
    assert!(output.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Two namespaces, `a` (198.18.0.1, device `dev_a`) and `b` (198.18.0.2,
/// `dev_b`), joined by a veth pair. Removed on drop, even when a test fails.
pub struct Pair {
    pub a: String,
    pub b: String,
    pub dev_a: String,
    pub dev_b: String,
}

impl Pair {
    pub fn new() -> Pair {
        Pair::with_mtu(1500)
    }

    pub fn with_mtu(mtu: u32) -> Pair {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}{n}", std::process::id() % 100_000);
        let pair = Pair {
            a: format!("nc{id}a"),
            b: format!("nc{id}b"),
            dev_a: format!("nc{id}va"),
            dev_b: format!("nc{id}vb"),
        };
        must("ip", &["netns", "add", &pair.a]);
        must("ip", &["netns", "add", &pair.b]);
        must(
            "ip",
            &[
                "link",
                "add",
                &pair.dev_a,
                "netns",
                &pair.a,
                "type",
                "veth",
                "peer",
                "name",
                &pair.dev_b,
                "netns",
                &pair.b,
            ],
        );
        for (ns, dev, addr) in [(&pair.a, &pair.dev_a, ADDR_A), (&pair.b, &pair.dev_b, ADDR_B)] {
            must("ip", &["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev]);
            must("ip", &["-n", ns, "link", "set", dev, "mtu", &mtu.to_string(), "up"]);
            must("ip", &["-n", ns, "link", "set", "lo", "up"]);
            // No IPv6 chatter (router solicitations, MLD): counts stay exact.
            must("ip", &["netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        }
        pair
    }

    /// Runs a command inside namespace `ns`.
    pub fn exec(&self, ns: &str, args: &[&str]) -> Output {
        let mut full = vec!["netns", "exec", ns];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Starts `netcap skb -f tp:net:netif_receive_skb -i DEV_B EXTRA…` in b:
    /// the point and device most tests watch.
    pub fn watch_receive(&self, extra: &[&str], dir: &Path) -> Netcap {
        let mut args = vec!["skb", "-f", "tp:net:netif_receive_skb", "-i", &self.dev_b];
        args.extend_from_slice(extra);
        Netcap::start(Some(&self.b), &args, dir)
    }

    /// Starts a flood ping of `count` packets from a to b (bounded to 20 s).
    pub fn flood(&self, count: u32) -> std::thread::JoinHandle<Output> {
        let a = self.a.clone();
        let count = count.to_string();
        std::thread::spawn(move || run("ip", &["netns", "exec", &a, "ping", "-f", "-c", &count, "-w", "20", ADDR_B]))
    }

    /// `count` pings from a to b, 0.05 s apart, bounded by `timeout`.
    pub fn ping(&self, count: u32, size: u32) -> Output {
        self.exec(
            &self.a,
            &["ping", "-c", &count.to_string(), "-i", "0.05", "-s", &size.to_string(), "-W", "1", "-w", "10", ADDR_B],
        )
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and its peer.
        let _ = run("ip", &["netns", "delete", &self.a]);
        let _ = run("ip", &["netns", "delete", &self.b]);
    }
}

/// A netcap running in a namespace, its output going to files.
pub struct Netcap {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// A directory for one test's files, removed when the test ends.
pub struct Scratch(pub PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn scratch_dir(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("netcap-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

impl Netcap {
    /// Starts `netcap ARGS` in `ns` (None: this namespace) and waits until it traces.
    pub fn start(ns: Option<&str>, args: &[&str], dir: &Path) -> Netcap {
        Netcap::start_with_env(ns, args, dir, &[])
    }

    /// `start`, with these environment variables set for netcap.
    pub fn start_with_env(ns: Option<&str>, args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Netcap {
        let stdout = dir.join("netcap.out");
        let stderr = dir.join("netcap.err");
        let mut command = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, NETCAP]);
                c
            }
            None => Command::new(NETCAP),
        };
        let child = command
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("starting netcap");
        let mut netcap = Netcap { child, stdout, stderr };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let err = std::fs::read_to_string(&netcap.stderr).unwrap_or_default();
            if err.contains("Ctrl-C to stop") {
                return netcap;
            }
            if let Ok(Some(status)) = netcap.child.try_wait() {
                panic!("netcap {args:?} exited early ({status}): {err}");
            }
            assert!(Instant::now() < deadline, "netcap {args:?} did not start: {err}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGINT (as Ctrl-C does) and collects the result.
    pub fn interrupt(self) -> Finished {
        // Let the last events reach user space first.
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: signalling our own child by its PID.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        self.wait(Duration::from_secs(10))
    }

    /// Waits for netcap to end by itself (e.g. after -c N).
    pub fn wait(mut self, limit: Duration) -> Finished {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("netcap did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Finished {
            status,
            stdout: std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.stderr).unwrap_or_default(),
        }
    }
}

impl Drop for Netcap {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Names of BPF programs loaded in the kernel that are netcap's, once the
/// kernel has had up to two seconds to free those of exited processes
/// (programs are released after an RCU grace period, not at exit).
pub fn netcap_programs_loaded() -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let loaded = netcap_programs_now();
        if loaded.is_empty() || Instant::now() > deadline {
            return loaded;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Names of netcap's BPF programs loaded right now.
pub fn netcap_programs_now() -> Vec<String> {
    let listing = must("bpftool", &["prog", "show"]);
    listing
        .lines()
        .filter_map(|line| line.split_whitespace().skip_while(|w| *w != "name").nth(1))
        .filter(|name| name.starts_with("netcap_"))
        .map(str::to_string)
        .collect()
}

/// Runs netcap to completion with the given arguments.
pub fn netcap(args: &[&str]) -> Output {
    run(NETCAP, args)
}

/// The JSON events of a `--json` run, without the closing summary object
/// (an event's own "summary" is a string; the run's is an object).
pub fn json_events(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v| v.get("summary").is_none_or(|s| s.is_string()))
        .collect()
}

pub fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

/// Packets as `tcpdump -nn -S -xx -r FILE [EXPRESSION]` prints them, one
/// string each (summary and hex), timestamps removed. -S: absolute
/// sequence numbers, which need no connection state.
pub fn tcpdump_packets(file: &str, expression: Option<&str>) -> Vec<String> {
    let mut args = vec!["-nn", "-S", "-xx", "-r", file];
    args.extend(expression);
    let text = must("tcpdump", &args);
    let mut packets: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with('\t') {
            if let Some(last) = packets.last_mut() {
                last.push_str(line.trim());
                last.push('\n');
            }
        } else {
            let summary = line.split_once(' ').map_or(line, |(_, rest)| rest);
            packets.push(format!("{summary}\n"));
        }
    }
    packets
}
