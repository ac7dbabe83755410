//! Known packets built byte by byte → the line tcpdump -nn prints for them.

use super::*;

pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

pub fn ether(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    [&MAC_B[..], &MAC_A[..], &ethertype.to_be_bytes(), payload].concat()
}

pub fn ipv4(protocol: u8, source: [u8; 4], destination: [u8; 4], payload: &[u8], id: u16, frag: u16) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut header = vec![0x45, 0];
    header.extend_from_slice(&total.to_be_bytes());
    header.extend_from_slice(&id.to_be_bytes());
    header.extend_from_slice(&frag.to_be_bytes());
    header.extend_from_slice(&[64, protocol, 0, 0]);
    header.extend_from_slice(&source);
    header.extend_from_slice(&destination);
    [header, payload.to_vec()].concat()
}

pub fn ipv6(next: u8, source: Ipv6Addr, destination: Ipv6Addr, payload: &[u8]) -> Vec<u8> {
    let mut header = vec![0x60, 0, 0, 0];
    header.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    header.extend_from_slice(&[next, 64]);
    header.extend_from_slice(&source.octets());
    header.extend_from_slice(&destination.octets());
    [header, payload.to_vec()].concat()
}

pub fn icmp_echo(request: bool, id: u16, seq: u16, data_len: usize) -> Vec<u8> {
    let mut icmp = vec![if request { 8 } else { 0 }, 0, 0, 0];
    icmp.extend_from_slice(&id.to_be_bytes());
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend(std::iter::repeat_n(0xab, data_len));
    icmp
}

pub fn tcp(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, options: &[u8], payload: &[u8]) -> Vec<u8> {
    let header_len = 20 + options.len();
    let mut tcp = Vec::new();
    tcp.extend_from_slice(&sport.to_be_bytes());
    tcp.extend_from_slice(&dport.to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&ack.to_be_bytes());
    tcp.extend_from_slice(&[((header_len / 4) as u8) << 4, flags]);
    tcp.extend_from_slice(&64240u16.to_be_bytes());
    tcp.extend_from_slice(&[0, 0, 0, 0]);
    tcp.extend_from_slice(options);
    tcp.extend_from_slice(payload);
    tcp
}

pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut udp = Vec::new();
    udp.extend_from_slice(&sport.to_be_bytes());
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    udp
}

const A: [u8; 4] = [198, 18, 0, 1];
const B: [u8; 4] = [198, 18, 0, 2];

#[test]
fn icmp_echo_request_over_ethernet() {
    let packet = ether(0x0800, &ipv4(1, A, B, &icmp_echo(true, 3, 1, 56), 7, 0x4000));
    assert_eq!(
        describe(Link::Ethernet, &packet),
        "IP 198.18.0.1 > 198.18.0.2: ICMP echo request, id 3, seq 1, length 64"
    );
}

#[test]
fn icmp_echo_reply_without_l2() {
    let packet = ipv4(1, B, A, &icmp_echo(false, 3, 9, 56), 7, 0);
    assert_eq!(describe(Link::Raw, &packet), "IP 198.18.0.2 > 198.18.0.1: ICMP echo reply, id 3, seq 9, length 64");
}

#[test]
fn tcp_syn_with_options() {
    let options = [2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7];
    let packet = ether(0x0800, &ipv4(6, A, B, &tcp(40000, 9000, 1000, 0, 0x02, &options, &[]), 1, 0x4000));
    assert_eq!(
        describe(Link::Ethernet, &packet),
        "IP 198.18.0.1.40000 > 198.18.0.2.9000: Flags [S], seq 1000, win 64240, \
         options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0"
    );
}

#[test]
fn tcp_data_and_acks() {
    let push = ether(0x0800, &ipv4(6, A, B, &tcp(40000, 9000, 1001, 5001, 0x18, &[], b"hello"), 2, 0x4000));
    assert_eq!(
        describe(Link::Ethernet, &push),
        "IP 198.18.0.1.40000 > 198.18.0.2.9000: Flags [P.], seq 1001:1006, ack 5001, win 64240, length 5"
    );
    let ack = ether(0x0800, &ipv4(6, B, A, &tcp(9000, 40000, 5001, 1006, 0x10, &[], &[]), 3, 0x4000));
    assert_eq!(
        describe(Link::Ethernet, &ack),
        "IP 198.18.0.2.9000 > 198.18.0.1.40000: Flags [.], ack 1006, win 64240, length 0"
    );
    let fin = ether(0x0800, &ipv4(6, B, A, &tcp(9000, 40000, 5001, 1006, 0x11, &[], &[]), 3, 0x4000));
    assert!(describe(Link::Ethernet, &fin).contains("Flags [F.], seq 5001, ack 1006"));
    let rst = ether(0x0800, &ipv4(6, B, A, &tcp(9000, 40000, 0, 1001, 0x14, &[], &[]), 3, 0x4000));
    assert!(describe(Link::Ethernet, &rst).contains("Flags [R.], seq 0, ack 1001"));
}

#[test]
fn udp_and_its_truncation() {
    let packet = ether(0x0800, &ipv4(17, A, B, &udp(5000, 9000, &[0; 10]), 4, 0));
    assert_eq!(describe(Link::Ethernet, &packet), "IP 198.18.0.1.5000 > 198.18.0.2.9000: UDP, length 10");
    assert_eq!(cut_short(&packet, 14 + 20 + 3), "IP 198.18.0.1 > 198.18.0.2:  [|udp]");
}

/// The text of `packet` captured only up to `at` (its wire length whole).
fn cut_short(packet: &[u8], at: usize) -> String {
    describe_packet(Link::Ethernet, &packet[..at], packet.len(), &mut TcpSeqs::absolute(), true)
}

#[test]
fn icmp_port_unreachable_quotes_the_udp_port() {
    let quoted = ipv4(17, A, B, &udp(5000, 9000, &[0; 4]), 4, 0);
    let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&quoted);
    let packet = ipv4(1, B, A, &icmp, 5, 0);
    assert_eq!(
        describe(Link::Raw, &packet),
        format!("IP 198.18.0.2 > 198.18.0.1: ICMP 198.18.0.2 udp port 9000 unreachable, length {}", icmp.len())
    );
}

/// As tcpdump prints them without -v (tests/host/decoder.rs checks it
/// against tcpdump): the first as what it carries, later ones by protocol.
#[test]
fn ipv4_fragments() {
    let first = ipv4(17, A, B, &udp(5000, 9000, &[0; 24]), 0x1234, 0x2000);
    assert_eq!(describe(Link::Raw, &first), "IP 198.18.0.1.5000 > 198.18.0.2.9000: UDP, length 24");
    let later = ipv4(17, A, B, &[0; 16], 0x1234, 4);
    assert_eq!(describe(Link::Raw, &later), "IP 198.18.0.1 > 198.18.0.2: ip-proto-17");
}

#[test]
fn arp_request_and_reply() {
    let mut request = vec![0, 1, 8, 0, 6, 4, 0, 1];
    request.extend_from_slice(&MAC_A);
    request.extend_from_slice(&A);
    request.extend_from_slice(&[0; 6]);
    request.extend_from_slice(&B);
    assert_eq!(
        describe(Link::Ethernet, &ether(0x0806, &request)),
        "ARP, Request who-has 198.18.0.2 tell 198.18.0.1, length 28"
    );
    let mut reply = vec![0, 1, 8, 0, 6, 4, 0, 2];
    reply.extend_from_slice(&MAC_B);
    reply.extend_from_slice(&B);
    reply.extend_from_slice(&MAC_A);
    reply.extend_from_slice(&A);
    assert_eq!(
        describe(Link::Ethernet, &ether(0x0806, &reply)),
        "ARP, Reply 198.18.0.2 is-at 02:00:00:00:00:0b, length 28"
    );
}

#[test]
fn vlan_tags_are_walked_past_and_not_shown() {
    // tcpdump shows a tag only with -e.
    let inner = ipv4(1, A, B, &icmp_echo(true, 1, 1, 8), 1, 0);
    let tagged =
        [&MAC_B[..], &MAC_A[..], &[0x88, 0xa8, 0x20, 0x64, 0x81, 0x00, 0x00, 0x05, 0x08, 0x00], &inner[..]].concat();
    assert_eq!(
        describe(Link::Ethernet, &tagged),
        "IP 198.18.0.1 > 198.18.0.2: ICMP echo request, id 1, seq 1, length 16"
    );
    assert_eq!(cut_short(&tagged, 16), " [|vlan]");
}

#[test]
fn ipv6_with_extension_headers() {
    let a: Ipv6Addr = "fd00:198:18::1".parse().unwrap();
    let b: Ipv6Addr = "fd00:198:18::2".parse().unwrap();
    let echo = [&[128u8, 0, 0, 0, 0, 7, 0, 2][..], &[0; 8]].concat();
    assert_eq!(
        describe(Link::Raw, &ipv6(58, a, b, &echo)),
        "IP6 fd00:198:18::1 > fd00:198:18::2: ICMP6, echo request, id 7, seq 2, length 16"
    );
    // Hop-by-hop header (8 bytes) in front of TCP.
    let hbh = [&[6u8, 0, 1, 4, 0, 0, 0, 0][..], &tcp(40000, 9000, 1, 0, 0x02, &[], &[])].concat();
    assert_eq!(
        describe(Link::Raw, &ipv6(0, a, b, &hbh)),
        "IP6 fd00:198:18::1 > fd00:198:18::2: HBH 40000 > 9000: Flags [S], seq 1, win 64240, length 0"
    );
    let ns = [&[135u8, 0, 0, 0, 0, 0, 0, 0][..], &b.octets()].concat();
    assert_eq!(
        describe(Link::Ethernet, &ether(0x86dd, &ipv6(58, a, b, &ns))),
        "IP6 fd00:198:18::1 > fd00:198:18::2: ICMP6, neighbor solicitation, who has fd00:198:18::2, length 24"
    );
}

#[test]
fn other_ethertypes_and_garbage_do_not_panic() {
    assert_eq!(
        describe(Link::Ethernet, &ether(0x88b5, &[0; 10])),
        "02:00:00:00:00:0a > 02:00:00:00:00:0b, ethertype Unknown (0x88b5), length 24: "
    );
    let unknown = describe_packet(Link::Ethernet, &ether(0x88b5, b"netcap"), 20, &mut TcpSeqs::absolute(), false);
    assert!(unknown.ends_with(": \n\t0x0000:  6e65 7463 6170                           netcap"), "{unknown:?}");
    assert_eq!(describe(Link::Ethernet, &[0; 5]), " [|ether]");
    assert_eq!(describe(Link::Raw, &[0x45, 0, 0]), "IP  [|ip]");
    for len in 0..80 {
        let packet = ether(0x0800, &ipv4(6, A, B, &tcp(1, 2, 3, 4, 0x12, &[2, 4, 5, 0xb4, 1, 1, 8], &[]), 1, 0));
        let _ = describe(Link::Ethernet, &packet[..len.min(packet.len())]);
    }
}
