//! Differential tests: the translated eBPF, run in a user-space eBPF VM
//! (rbpf), must decide exactly as libpcap's own interpreter
//! (`pcap_offline_filter`) on every packet, for every expression.

use std::net::Ipv6Addr;

use super::*;
use crate::packet::tests::{MAC_A, MAC_B, ether, icmp_echo, ipv4, ipv6, tcp, udp};

/// libpcap's verdict on `captured` bytes of a `wire_len`-byte packet.
fn libpcap_matches(classic: &[CbpfInsn], captured: &[u8], wire_len: u32) -> bool {
    OfflineFilter::new(classic.to_vec()).matches(captured, wire_len)
}

/// The translated subprogram's result in rbpf, with r1 = packet,
/// r2 = captured length, r3 = wire length.
fn translated_result(translated: &[EbpfInsn], captured: &[u8], wire_len: u32) -> i64 {
    let mut program = vec![
        EbpfInsn::alu64_imm(ebpf::MOV, 2, captured.len() as i32),
        EbpfInsn::alu64_imm(ebpf::MOV, 3, wire_len as i32),
    ];
    program.extend_from_slice(translated);
    let bytes = ebpf::to_bytes(&program);
    let vm = rbpf::EbpfVmRaw::new(Some(&bytes)).expect("rbpf accepts the program");
    let mut memory = captured.to_vec();
    vm.execute_program(&mut memory).unwrap_or_else(|e| panic!("rbpf: {e}")) as i64
}

/// Our verdict, as netcap's BPF side reads the result: positive keeps;
/// 0 and SHORT do not.
fn translated_matches(translated: &[EbpfInsn], captured: &[u8], wire_len: u32) -> bool {
    translated_result(translated, captured, wire_len) > 0
}

const A: [u8; 4] = [198, 18, 0, 1];
const B: [u8; 4] = [198, 18, 0, 2];
const OTHER: [u8; 4] = [198, 19, 7, 9];

fn v6(text: &str) -> Ipv6Addr {
    text.parse().unwrap()
}

/// IP packets (no L2) of many kinds.
fn ip_packets() -> Vec<Vec<u8>> {
    let syn_options = [2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7];
    let mut packets = vec![
        ipv4(1, A, B, &icmp_echo(true, 3, 1, 56), 1, 0x4000),
        ipv4(1, B, A, &icmp_echo(false, 3, 1, 56), 2, 0),
        ipv4(1, OTHER, B, &[3, 3, 0, 0, 0, 0, 0, 0], 3, 0),
        ipv4(6, A, B, &tcp(40000, 9000, 1000, 0, 0x02, &syn_options, &[]), 4, 0x4000),
        ipv4(6, B, A, &tcp(9000, 40000, 7000, 1001, 0x12, &syn_options, &[]), 5, 0x4000),
        ipv4(6, A, B, &tcp(40000, 9000, 1001, 7001, 0x18, &[], b"GET / HTTP/1.1\r\n"), 6, 0x4000),
        ipv4(6, B, A, &tcp(9000, 40000, 7001, 1017, 0x14, &[], &[]), 7, 0),
        ipv4(6, A, OTHER, &tcp(8080, 443, 1, 1, 0x11, &[], &[]), 8, 0),
        ipv4(17, A, B, &udp(5000, 9000, &[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]), 9, 0),
        ipv4(17, B, OTHER, &udp(53, 33333, &[0; 40]), 10, 0),
        ipv4(17, A, B, &udp(5000, 9000, &[0; 24]), 0x1234, 0x2000),
        ipv4(17, A, B, &[0; 16], 0x1234, 0x0003),
        ipv4(47, A, B, &[0, 0, 0x08, 0x00, 0x45, 0, 0, 20], 11, 0),
        ipv4(2, A, [224, 0, 0, 22], &[0x22, 0, 0, 0, 0, 0, 0, 0], 12, 0),
        ipv6(58, v6("fd00:198:18::1"), v6("fd00:198:18::2"), &[&[128u8, 0, 0, 0, 0, 7, 0, 2][..], &[0; 8]].concat()),
        ipv6(6, v6("fd00:198:18::2"), v6("fd00:198:18::1"), &tcp(9000, 40000, 1, 2, 0x12, &[], &[])),
        ipv6(17, v6("fd00:198:18::1"), v6("ff02::1"), &udp(5000, 9000, &[1, 2, 3])),
        ipv6(
            0,
            v6("fd00:198:18::1"),
            v6("ff02::16"),
            &[&[58u8, 0, 5, 2, 0, 0, 1, 0][..], &[143, 0, 0, 0, 0, 0, 0, 1]].concat(),
        ),
    ];
    // TTL 1 and 255, and a header with options (IHL 6).
    let mut ttl = ipv4(17, A, B, &udp(5000, 9000, &[7; 4]), 13, 0);
    ttl[8] = 1;
    packets.push(ttl.clone());
    ttl[8] = 255;
    packets.push(ttl);
    let payload = tcp(40000, 9000, 5, 0, 0x02, &[], &[]);
    let mut options = ipv4(6, A, B, &[&[1u8, 1, 1, 0][..], &payload].concat(), 14, 0);
    options[0] = 0x46;
    packets.push(options);
    packets
}

fn ethernet_packets() -> Vec<Vec<u8>> {
    let mut packets: Vec<Vec<u8>> =
        ip_packets().into_iter().map(|ip| ether(if ip[0] >> 4 == 6 { 0x86dd } else { 0x0800 }, &ip)).collect();
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    arp.extend_from_slice(&MAC_A);
    arp.extend_from_slice(&A);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&B);
    let mut broadcast = [&[0xff; 6][..], &MAC_A[..], &[0x08, 0x06], &arp].concat();
    packets.push(broadcast.clone());
    broadcast[0..6].copy_from_slice(&[0x01, 0x00, 0x5e, 0, 0, 0x16]);
    packets.push(broadcast);
    let inner = ipv4(6, A, B, &tcp(40000, 9000, 1, 0, 0x02, &[], &[]), 15, 0);
    packets.push([&MAC_B[..], &MAC_A[..], &[0x81, 0x00, 0x00, 0x64, 0x08, 0x00], &inner].concat());
    packets.push([&MAC_B[..], &MAC_A[..], &[0x81, 0x00, 0x00, 0xc8, 0x08, 0x00], &inner].concat());
    packets.push(ether(0x88cc, &[0; 30]));
    packets
}

pub fn expressions() -> Vec<String> {
    let base = [
        // hosts and nets
        "host 198.18.0.1",
        "src host 198.18.0.2",
        "dst host 198.18.0.2",
        "host 198.19.7.9",
        "net 198.18.0.0/24",
        "src net 198.18.0.0/16",
        "dst net 198.19.0.0/16",
        "net 198.18.0.0 mask 255.255.255.0",
        "host fd00:198:18::1",
        "ip6 dst host fd00:198:18::2",
        "src net fd00:198:18::/48",
        "dst host ff02::1",
        // protocols
        "ip",
        "ip6",
        "arp",
        "rarp",
        "tcp",
        "udp",
        "icmp",
        "icmp6",
        "igmp",
        "ip proto 47",
        "ip proto \\gre",
        "ip6 proto 58",
        "ip6 proto 6",
        "ether proto 0x88cc",
        "ip or ip6",
        "not ip",
        // ports
        "port 9000",
        "tcp port 9000",
        "udp port 9000",
        "port 53",
        "src port 40000",
        "dst port 9000",
        "tcp dst port 443",
        "udp src port 5000",
        "portrange 8000-9000",
        "tcp portrange 1-1024",
        "udp dst portrange 9000-9001",
        "tcp port 9000 and host 198.18.0.2",
        "port 9000 and ip6",
        // L2
        "ether host 02:00:00:00:00:0a",
        "ether src 02:00:00:00:00:0a",
        "ether dst 02:00:00:00:00:0b",
        "ether broadcast",
        "broadcast",
        "multicast",
        "ether multicast",
        "ip multicast",
        "ip6 multicast",
        "vlan",
        "vlan 100",
        "vlan 200",
        "vlan and tcp",
        "vlan 100 and tcp port 9000",
        "vlan and host 198.18.0.2",
        // TCP flags and ICMP types
        "tcp[tcpflags] & tcp-syn != 0",
        "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
        "tcp[tcpflags] & tcp-rst != 0",
        "tcp[tcpflags] == tcp-fin|tcp-ack",
        "tcp[13] = 18",
        "tcp[tcpflags] & tcp-push != 0",
        "icmp[icmptype] == icmp-echo",
        "icmp[icmptype] = icmp-echoreply",
        "icmp[0] = 3",
        "icmp[icmpcode] = 3",
        "icmp6[icmp6type] == icmp6-echo",
        "icmp6 and ip6[40] == 128",
        // byte offsets
        "ip[8] < 64",
        "ip[8] > 10",
        "ip[8] = 1",
        "ip[0] & 0xf > 5",
        "ip[6:2] & 0x1fff != 0",
        "ip[6:2] & 0x2000 != 0",
        "ip[2:2] > 100",
        "udp[8:4] = 0xdeadbeef",
        "udp[8:4] == 0xdeadbeef or udp[8] = 0",
        "tcp[20:2] = 0x4745",
        "tcp[20:4] = 0x47455420",
        "udp[0:2] = 5000",
        "ether[12:2] = 0x0800",
        "ether[0] & 1 != 0",
        "ip[1] & 0xfc = 0",
        "ip[9] = 6",
        "ip6[6] = 17",
        "tcp[0:2] > 1023",
        "udp[4:2] > 20",
        "ip[40] = 0",
        "ip[100:4] = 0",
        "tcp[100] = 0",
        "udp[1000:2] = 0",
        "ether[70000] = 1 or icmp",
        "ether[0xffffffff] = 1 or len > 60",
        // lengths
        "len > 100",
        "len <= 64",
        "greater 100",
        "less 60",
        "len == 98",
        "len >= 1500",
        // arithmetic, division by zero, shifts
        "ip[2:2] - ((ip[0]&0xf)<<2) - ((tcp[12]&0xf0)>>2) > 0",
        "ip[2:2] / 2 > 50",
        "ip[2:2] % 7 = 0",
        "ip[8] * 2 > 100",
        "ip[2:2] ^ 0xff = 0",
        "(ip[0] & 0xf) << 2 > 20",
        "ip[2:2] | 1 = 99",
        "ip[2:2] / (ip[8] - 64) > 0",
        "ip[2:2] % (ip[8] - 64) = 0",
        "1 << (ip[8] & 63) > 0",
        "0xffffffff >> (ip[8] & 63) = 0",
        "ip[2:2] & 0x8000 = 0",
        "ip[2:2] + 0x80000000 > 0x80000050",
        "ip[4:4] > 0x7fffffff",
        "udp[8:4] >= 0xdeadbeef",
        "udp[8:4] & 0x80000000 != 0",
        "-ip[8] < 0xffffff00",
        "len - 14 = ip[2:2]",
    ];
    let mut expressions: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    // Combinations, as people type them.
    let parts = ["tcp", "udp port 9000", "host 198.18.0.1", "icmp", "ip6", "arp", "len > 80", "vlan"];
    for (i, left) in parts.iter().enumerate() {
        for right in &parts[i + 1..] {
            expressions.push(format!("{left} and {right}"));
            expressions.push(format!("{left} or not {right}"));
            expressions.push(format!("not ({left} and {right})"));
            expressions.push(format!("({left}) or ({right} and len < 200)"));
        }
    }
    expressions
}

/// Truncations that matter: inside L2, L3 and L4 headers, and whole.
fn truncations(packet: &[u8]) -> Vec<usize> {
    let mut lengths = vec![packet.len()];
    for cut in [0, 1, 10, 13, 14, 18, 20, 24, 30, 34, 38, 40, 44, 50, 54, 60] {
        if cut < packet.len() {
            lengths.push(cut);
        }
    }
    lengths
}

#[test]
fn at_least_200_expressions_decide_exactly_as_libpcap() {
    // libpcap refuses contradictions such as "tcp and udp port 9000"
    // ("expression rejects all packets"), as tcpdump does; those are left out.
    let filters: Vec<(String, Filter)> = expressions()
        .into_iter()
        .filter_map(|expression| match Filter::compile(&expression) {
            Ok(filter) => Some((expression, filter)),
            Err(e) if e.to_string().contains("expression rejects all packets") => None,
            Err(e) => panic!("{expression}: {e}"),
        })
        .collect();
    assert!(filters.len() >= 200, "only {} expressions", filters.len());
    let ethernet = ethernet_packets();
    let raw = ip_packets();
    let mut compared = 0;
    for (expression, filter) in &filters {
        let mut variants = vec![(&filter.ethernet, &ethernet)];
        if let Some(raw_variant) = &filter.raw {
            variants.push((raw_variant, &raw));
        }
        for (variant, packets) in variants {
            for packet in packets.iter() {
                for captured in truncations(packet) {
                    let bytes = &packet[..captured];
                    let wire = packet.len() as u32;
                    let expected = libpcap_matches(&variant.classic, bytes, wire);
                    let actual = translated_matches(&variant.translated, bytes, wire);
                    assert_eq!(
                        actual,
                        expected,
                        "'{expression}' on {captured} of {wire} bytes {packet:02x?}\n{}",
                        filter.describe()
                    );
                    compared += 1;
                }
            }
        }
    }
    eprintln!("{compared} verdicts compared");
}

/// What filtering a packet where it lies relies on: run on only the first
/// bytes of a packet, the filter either says SHORT or decides as it does on
/// the whole packet.
#[test]
fn a_verdict_on_fewer_bytes_is_short_or_the_verdict_on_all() {
    let (mut decided, mut short) = (0, 0);
    for expression in expressions() {
        let Ok(filter) = Filter::compile(&expression) else { continue };
        for packet in ethernet_packets() {
            let wire = packet.len() as u32;
            let whole = libpcap_matches(&filter.ethernet.classic, &packet, wire);
            for captured in truncations(&packet) {
                match translated_result(&filter.ethernet.translated, &packet[..captured], wire) {
                    translate::SHORT => short += 1,
                    result => {
                        assert_eq!(result > 0, whole, "'{expression}' on {captured} of {wire} bytes {packet:02x?}");
                        decided += 1;
                    }
                }
            }
        }
    }
    // Both outcomes occur, or the check above proved little.
    assert!(decided > 1000 && short > 1000, "{decided} decided early, {short} short");
}

#[test]
fn expressions_without_an_ip_meaning_refuse_raw_packets() {
    let filter = Filter::compile("arp").unwrap();
    assert!(filter.raw.is_none());
    assert!(filter.raw_refusal.is_some());
    assert!(Filter::compile("ether host 02:00:00:00:00:0a").unwrap().raw.is_none());
    assert!(Filter::compile("tcp port 9000").unwrap().raw.is_some());
}

#[test]
fn a_bad_expression_reports_libpcap_s_message() {
    let err = Filter::compile("tcp prot 80").unwrap_err().to_string();
    assert!(err.starts_with("bad filter expression 'tcp prot 80': "), "{err}");
    assert!(err.contains("syntax error"), "{err}");
    let err = Filter::compile("host nosuchhost.invalid").unwrap_err().to_string();
    assert!(err.contains("nosuchhost.invalid"), "{err}");
}

#[test]
fn dry_run_listing_looks_like_tcpdump_d() {
    let filter = Filter::compile("tcp port 9000").unwrap();
    let text = filter.describe();
    assert!(text.contains("(000) ldh      [12]"), "{text}");
    assert!(text.contains("jeq      #0x86dd"), "{text}");
    assert!(text.contains("ret      #262144") || text.contains("ret      #65535"), "{text}");
    assert!(text.contains("eBPF ("), "{text}");
}

#[test]
fn malformed_classic_programs_are_refused() {
    use translate::{TranslateError, translate};
    let ret = CbpfInsn::new(cbpf::RET | cbpf::K, 0, 0, 1);
    assert_eq!(translate(&[]), Err(TranslateError::NoReturn));
    let jump_out = CbpfInsn::new(cbpf::JMP | cbpf::JEQ | cbpf::K, 5, 0, 1);
    assert_eq!(translate(&[jump_out, ret]), Err(TranslateError::BadJump { index: 0 }));
    let bad_memory = CbpfInsn::new(cbpf::ST, 0, 0, 16);
    assert_eq!(translate(&[bad_memory, ret]), Err(TranslateError::BadMemory { index: 0, word: 16 }));
    let bad_code = CbpfInsn::new(cbpf::LD | cbpf::MSH, 0, 0, 0);
    assert!(matches!(translate(&[bad_code, ret]), Err(TranslateError::BadInstruction { .. })));
    let return_x = CbpfInsn::new(cbpf::RET | cbpf::X, 0, 0, 0);
    assert!(matches!(translate(&[return_x]), Err(TranslateError::BadInstruction { .. })));
}

#[test]
fn scratch_memory_and_register_moves_work() {
    // A = 7; M[3] = A; X = M[3]; A = X; A *= 3; X = A; A = 1; A = X; return A.
    let program = [
        CbpfInsn::new(cbpf::LD | cbpf::IMM, 0, 0, 7),
        CbpfInsn::new(cbpf::ST, 0, 0, 3),
        CbpfInsn::new(cbpf::LDX | cbpf::MEM, 0, 0, 3),
        CbpfInsn::new(cbpf::MISC | cbpf::TXA, 0, 0, 0),
        CbpfInsn::new(cbpf::ALU | cbpf::MUL | cbpf::K, 0, 0, 3),
        CbpfInsn::new(cbpf::MISC | cbpf::TAX, 0, 0, 0),
        CbpfInsn::new(cbpf::LD | cbpf::IMM, 0, 0, 1),
        CbpfInsn::new(cbpf::MISC | cbpf::TXA, 0, 0, 0),
        CbpfInsn::new(cbpf::RET | cbpf::A, 0, 0, 0),
    ];
    let translated = translate::translate(&program).unwrap();
    let mut program_bytes = vec![EbpfInsn::alu64_imm(ebpf::MOV, 2, 0), EbpfInsn::alu64_imm(ebpf::MOV, 3, 0)];
    program_bytes.extend(translated);
    let bytes = ebpf::to_bytes(&program_bytes);
    let vm = rbpf::EbpfVmRaw::new(Some(&bytes)).unwrap();
    assert_eq!(vm.execute_program(&mut [0u8; 4]).unwrap(), 21);
    assert!(libpcap_matches(&program, &[0; 4], 4));
}
