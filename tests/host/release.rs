//! Issue 22: the static binary scripts/release.sh builds runs on a host with
//! nothing beside it: no shared library, no environment, an empty directory.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// The released binary: $NETCAP_RELEASE, else target/dist/netcap.
fn released() -> Option<PathBuf> {
    let path = std::env::var_os("NETCAP_RELEASE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/dist/netcap"));
    if path.exists() {
        return Some(path);
    }
    assert!(std::env::var_os("CI").is_none(), "CI builds the release first (scripts/release.sh): {path:?} is missing");
    eprintln!("skipped: no {} (run scripts/release.sh)", path.display());
    None
}

#[test]
fn the_static_binary_captures_with_no_library_no_environment_and_no_files() {
    let Some(_guard) = root_test("the_static_binary_captures_with_no_library_no_environment_and_no_files") else {
        return;
    };
    let Some(binary) = released() else { return };
    let binary = binary.to_str().unwrap().to_string();
    let ldd = run("ldd", &[&binary]);
    let said = String::from_utf8_lossy(&ldd.stdout).into_owned() + &String::from_utf8_lossy(&ldd.stderr);
    assert!(said.contains("statically linked") || said.contains("not a dynamic executable"), "{said}");
    assert!(!must("readelf", &["-l", &binary]).contains("program interpreter"), "no dynamic loader");

    let empty = scratch_dir("release-empty");
    let bare = |args: &[&str]| {
        Command::new(&binary).args(args).env_clear().env("LD_LIBRARY_PATH", "").current_dir(&empty.0).output().unwrap()
    };
    for args in [&["--help"][..], &["version"], &["features"], &["list", "--tracepoints"]] {
        let output = bare(args);
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
    assert!(String::from_utf8_lossy(&bare(&["version"]).stdout).contains("a static binary"));

    // A capture with a filter (libpcap inside) into pcapng, read back by tcpdump.
    let pair = Pair::new();
    let out = empty.0.join("static.pcapng");
    let err = empty.0.join("static.err");
    let mut child = Command::new("ip")
        .args(["netns", "exec", &pair.b, "env", "-i", "LD_LIBRARY_PATH=", &binary])
        .args(["skb", "-f", "tp:net:netif_receive_skb", "-i", &pair.dev_b, "-e", "icmp", "-c", "3", "-w"])
        .arg(&out)
        .current_dir(&empty.0)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&err).unwrap_or_default().contains("Ctrl-C to stop") {
        assert!(
            Instant::now() < deadline && child.try_wait().unwrap().is_none(),
            "{}",
            std::fs::read_to_string(&err).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    pair.ping(3, 56);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline + Duration::from_secs(10) {
            let _ = child.kill();
            panic!("the static netcap did not end after -c 3");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{}", std::fs::read_to_string(&err).unwrap());
    let packets = tcpdump_packets(out.to_str().unwrap(), None);
    assert_eq!(packets.len(), 3, "{packets:?}");
    assert!(packets.iter().all(|p| p.contains("198.18.0.1 > 198.18.0.2: ICMP echo request")), "{packets:?}");
    // Read back by the static binary itself: libpcap's interpreter for -e, linked in.
    let read = bare(&["read", "--json", "-e", "icmp[icmptype] == icmp-echo", out.to_str().unwrap()]);
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    let events = json_events(&String::from_utf8_lossy(&read.stdout));
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(
        events.iter().all(|e| e["point"] == "netif_receive_skb" && e["device"] == pair.dev_b.as_str()),
        "{events:?}"
    );
}
