//! `-e`: filter expressions decided in the kernel, compared with tcpdump.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::util::*;

#[test]
fn the_filter_keeps_only_matching_live_packets() {
    let Some(_guard) = root_test("the_filter_keeps_only_matching_live_packets") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("filter-live");
    let netcap = pair.watch_receive(&["-e", "tcp port 9000 or icmp[icmptype] = icmp-echo"], &dir);
    assert!(pair.ping(3, 56).status.success());
    let _ = pair.exec(&pair.a, &["nc", "-z", "-w", "1", ADDR_B, "9000"]);
    let _ = pair.exec(&pair.a, &["nc", "-z", "-w", "1", ADDR_B, "8080"]);
    let _ = pair.exec(&pair.a, &["sh", "-c", &format!("echo hi | nc -u -w 1 {ADDR_B} 9000")]);
    let out = netcap.interrupt();
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(lines_with(&out.stdout, "ICMP echo request").len(), 3, "{}", out.stdout);
    assert_eq!(lines_with(&out.stdout, ".9000: Flags [S]").len(), 1, "{}", out.stdout);
    assert_eq!(out.stdout.lines().count(), 4, "only those four:\n{}", out.stdout);
}

/// An IPv4 UDP packet with a correct header checksum.
fn udp_packet(source: [u8; 4], destination: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&source);
    ip.extend_from_slice(&destination);
    let sum: u32 = ip.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
    let folded = !(((sum & 0xffff) + (sum >> 16)) as u16);
    ip[10..12].copy_from_slice(&folded.to_be_bytes());
    ip.extend_from_slice(&sport.to_be_bytes());
    ip.extend_from_slice(&dport.to_be_bytes());
    ip.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 0]);
    ip.extend_from_slice(payload);
    ip
}

/// Writes IP packets into tun device `device` of namespace `ns`: the
/// kernel receives them with no MAC header at all.
fn inject_into_tun(ns: &str, device: &str, packets: Vec<Vec<u8>>) {
    let (ns, device) = (ns.to_string(), device.to_string());
    // setns affects only the calling thread: do it on a thread of its own.
    std::thread::spawn(move || {
        let netns = File::open(format!("/var/run/netns/{ns}")).unwrap();
        // SAFETY: a valid namespace fd; only this thread moves.
        assert_eq!(unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns");
        let mut tun = std::fs::OpenOptions::new().read(true).write(true).open("/dev/net/tun").unwrap();
        #[repr(C)]
        struct IfReq {
            name: [u8; 16],
            flags: libc::c_short,
            _pad: [u8; 22],
        }
        const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
        let mut request =
            IfReq { name: [0; 16], flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short, _pad: [0; 22] };
        request.name[..device.len()].copy_from_slice(device.as_bytes());
        // SAFETY: TUNSETIFF reads an ifreq-sized struct.
        assert_eq!(unsafe { libc::ioctl(tun.as_raw_fd(), TUNSETIFF, &mut request) }, 0, "TUNSETIFF");
        for packet in packets {
            tun.write_all(&packet).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .join()
    .unwrap();
}

#[test]
fn packets_without_a_mac_header_are_filtered_as_ip() {
    let Some(_guard) = root_test("packets_without_a_mac_header_are_filtered_as_ip") else { return };
    let pair = Pair::new();
    let tun = format!("{}t", pair.dev_b);
    must("ip", &["-n", &pair.b, "tuntap", "add", "dev", &tun, "mode", "tun"]);
    must("ip", &["-n", &pair.b, "addr", "add", "198.18.2.1/24", "dev", &tun]);
    must("ip", &["-n", &pair.b, "link", "set", &tun, "up"]);
    let (peer, local) = ([198, 18, 2, 2], [198, 18, 2, 1]);
    let packets = || {
        let mut packets = Vec::new();
        for i in 0..3 {
            packets.push(udp_packet(peer, local, 5000 + i, 9000, b"netcap"));
            packets.push(udp_packet(peer, local, 5000 + i, 53, b"dns?"));
        }
        packets
    };

    let dir = scratch_dir("filter-tun");
    let pcapng = dir.join("raw.pcapng");
    let netcap = Netcap::start(
        Some(&pair.b),
        &["skb", "-f", "tp:net:netif_receive_skb", "-i", &tun, "-e", "udp port 9000", "-w", pcapng.to_str().unwrap()],
        &dir,
    );
    inject_into_tun(&pair.b, &tun, packets());
    let out = netcap.interrupt();
    assert!(out.status.success(), "{}", out.stderr);
    // Written with a synthesized Ethernet header, so tcpdump reads every packet.
    let seen = tcpdump_packets(pcapng.to_str().unwrap(), None);
    assert_eq!(seen.len(), 3, "{seen:?}");
    for packet in &seen {
        assert!(packet.starts_with("IP 198.18.2.2.500"), "{packet}");
        assert!(packet.contains(" > 198.18.2.1.9000: UDP, length 6"), "{packet}");
    }
    let comments = String::from_utf8_lossy(&std::fs::read(&pcapng).unwrap()).into_owned();
    assert_eq!(comments.matches("l2=synthesized").count(), 3);

    // An expression that needs an Ethernet header cannot match them, and says so.
    let netcap = Netcap::start(
        Some(&pair.b),
        &["skb", "-f", "tp:net:netif_receive_skb", "-i", &tun, "-e", "ether src 02:00:00:00:00:01 or udp"],
        &dir,
    );
    inject_into_tun(&pair.b, &tun, packets());
    let out = netcap.interrupt();
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("the filter cannot apply to packets without an Ethernet header"), "{}", out.stderr);
}

#[test]
fn a_replayed_capture_is_filtered_exactly_as_tcpdump_filters_it() {
    let Some(_guard) = root_test("a_replayed_capture_is_filtered_exactly_as_tcpdump_filters_it") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("filter-replay");
    let base = dir.join("base.pcap");
    let base = base.to_str().unwrap();

    // Record real traffic of several kinds, both directions, on dev_b.
    let tcpdump = std::process::Command::new("ip")
        .args(["netns", "exec", &pair.b, "tcpdump", "-i", &pair.dev_b, "-U", "-w", base])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    assert!(pair.ping(3, 56).status.success());
    let _ = pair.exec(&pair.a, &["nc", "-z", "-w", "1", ADDR_B, "9000"]);
    let _ = pair.exec(&pair.a, &["sh", "-c", &format!("echo hi | nc -u -w 1 {ADDR_B} 9000")]);
    let _ = pair.exec(&pair.a, &["sh", "-c", &format!("echo query | nc -u -w 1 {ADDR_B} 53")]);
    let listener = std::process::Command::new("ip")
        .args(["netns", "exec", &pair.b, "timeout", "5", "nc", "-l", "-p", "8080"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let _ = pair.exec(&pair.a, &["sh", "-c", &format!("echo some data | timeout 5 nc -q 1 {ADDR_B} 8080")]);
    let _ = listener.wait_with_output();
    std::thread::sleep(Duration::from_millis(300));
    let _ = crate::util::run("kill", &["-INT", &tcpdump.id().to_string()]);
    let _ = tcpdump.wait_with_output();
    let recorded = tcpdump_packets(base, None);
    assert!(recorded.len() >= 15, "only {} packets recorded", recorded.len());

    // Namespace a loses its address: it can no longer answer b, so only the
    // replayed frames arrive at dev_b.
    must("ip", &["-n", &pair.a, "addr", "flush", "dev", &pair.dev_a]);
    for expression in [
        "icmp",
        "tcp port 9000",
        "udp",
        "arp",
        "src host 198.18.0.2",
        "tcp[tcpflags] & tcp-syn != 0",
        "len > 70",
        "not icmp and not arp",
        "udp port 53 or tcp port 8080",
    ] {
        let ours = dir.join("ours.pcapng");
        let ours = ours.to_str().unwrap();
        let netcap = pair.watch_receive(&["-e", expression, "-w", ours], &dir);
        let replay = pair.exec(&pair.a, &["tcpreplay", "-q", "-i", &pair.dev_a, "--pps", "200", base]);
        assert!(replay.status.success(), "tcpreplay: {}", String::from_utf8_lossy(&replay.stderr));
        let out = netcap.interrupt();
        assert!(out.status.success(), "{}", out.stderr);
        let expected = tcpdump_packets(base, Some(expression));
        assert!(!expected.is_empty(), "'{expression}' matches nothing recorded");
        assert_eq!(tcpdump_packets(ours, None), expected, "'{expression}'");
    }
}
