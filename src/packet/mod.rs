//! netcap's own packet decoder: captured bytes → one line in the style of
//! `tcpdump -nn` (Ethernet, 802.1Q, ARP, IPv4 with fragments, IPv6 with
//! extension headers, TCP, UDP, ICMP, ICMPv6). Truncated packets end in
//! `[|proto]` as tcpdump prints them.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::event::Link;

mod headers;
pub use headers::headers;

const ETH_P_IP: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const ETH_P_IPV6: u16 = 0x86dd;

/// Decodes a captured packet into tcpdump-like text.
pub fn describe(link: Link, data: &[u8]) -> String {
    describe_with(link, data, &mut TcpSeqs::absolute())
}

/// The same, TCP sequence numbers as `seqs` says: absolute, or relative to
/// each conversation's first as tcpdump prints them.
pub fn describe_with(link: Link, data: &[u8], seqs: &mut TcpSeqs) -> String {
    let mut out = String::new();
    match link {
        Link::Ethernet => ethernet(&mut out, data, seqs),
        Link::Raw => match data.first().map(|b| b >> 4) {
            Some(4) => ipv4(&mut out, data, seqs),
            Some(6) => ipv6(&mut out, data, seqs),
            _ => out.push_str("[|ip]"),
        },
    }
    out
}

/// Conversations kept for relative numbers; past it the table starts over
/// (tcpdump's grows without bound).
const CONVERSATIONS_MAX: usize = 1 << 16;

/// tcpdump's relative TCP sequence numbers: each conversation's sequence and
/// acknowledgment bases, taken from its first packet with ACK set (printed
/// absolute, as tcpdump does; so is any later SYN, which starts over).
#[derive(Debug, Default)]
pub struct TcpSeqs {
    relative: bool,
    /// (lower end, higher end) → (sequence base of the lower end's packets, acknowledgment base).
    conversations: std::collections::HashMap<(String, u16, String, u16), (u32, u32)>,
}

impl TcpSeqs {
    pub fn absolute() -> TcpSeqs {
        TcpSeqs::default()
    }

    pub fn relative() -> TcpSeqs {
        TcpSeqs { relative: true, ..TcpSeqs::default() }
    }

    /// (seq, ack) as they are to be printed.
    fn adjust(&mut self, ends: &Endpoints, sport: u16, dport: u16, flags: u8, seq: u32, ack: u32) -> (u32, u32) {
        const SYN: u8 = 0x02;
        const ACK: u8 = 0x10;
        if !self.relative || flags & ACK == 0 {
            return (seq, ack);
        }
        let (from, to) = ((ends.source, sport), (ends.destination, dport));
        let reversed = from > to;
        let (low, high) = if reversed { (to, from) } else { (from, to) };
        let key = (low.0.to_string(), low.1, high.0.to_string(), high.1);
        if flags & SYN != 0 || !self.conversations.contains_key(&key) {
            if self.conversations.len() >= CONVERSATIONS_MAX {
                self.conversations.clear();
            }
            let bases = if reversed { (ack.wrapping_sub(1), seq) } else { (seq, ack.wrapping_sub(1)) };
            self.conversations.insert(key, bases);
            return (seq, ack);
        }
        let (low_seq, low_ack) = self.conversations[&key];
        if reversed {
            (seq.wrapping_sub(low_ack), ack.wrapping_sub(low_seq))
        } else {
            (seq.wrapping_sub(low_seq), ack.wrapping_sub(low_ack))
        }
    }
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn mac(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

fn ethernet(out: &mut String, data: &[u8], seqs: &mut TcpSeqs) {
    let Some(mut ethertype) = be16(data, 12) else { return out.push_str("[|ether]") };
    let mut at = 14;
    while ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        let (Some(tci), Some(inner)) = (be16(data, at), be16(data, at + 2)) else {
            return out.push_str("[|vlan]");
        };
        let _ = write!(out, "vlan {}, p {}, ", tci & 0x0fff, tci >> 13);
        ethertype = inner;
        at += 4;
    }
    let payload = &data[at.min(data.len())..];
    match ethertype {
        ETH_P_IP => ipv4(out, payload, seqs),
        ETH_P_IPV6 => ipv6(out, payload, seqs),
        ETH_P_ARP => arp(out, payload),
        other if other < 0x0600 => {
            let _ = write!(out, "802.3, length {other}");
        }
        other => {
            let _ = write!(out, "ethertype 0x{other:04x}, length {}", data.len());
        }
    }
}

fn arp(out: &mut String, data: &[u8]) {
    // Cut short, only the mark, as tcpdump has it.
    if data.len() < 28 {
        return out.push_str(" [|arp]");
    }
    out.push_str("ARP, ");
    // Ethernet/IPv4 ARP only: hardware type 1, protocol 0x0800, sizes 6 and 4.
    let (Some(1), Some(ETH_P_IP), Some(&6), Some(&4), Some(op)) =
        (be16(data, 0), be16(data, 2), data.get(4), data.get(5), be16(data, 6))
    else {
        return out.push_str("[|arp]");
    };
    let ip = |at: usize| Ipv4Addr::new(data[at], data[at + 1], data[at + 2], data[at + 3]);
    let (sender_mac, sender_ip, target_ip) = (mac(&data[8..14]), ip(14), ip(24));
    match op {
        1 => {
            let _ = write!(out, "Request who-has {target_ip} tell {sender_ip}, length {}", data.len());
        }
        2 => {
            let _ = write!(out, "Reply {sender_ip} is-at {sender_mac}, length {}", data.len());
        }
        other => {
            let _ = write!(out, "op {other}, length {}", data.len());
        }
    }
}

fn ipv4(out: &mut String, data: &[u8], seqs: &mut TcpSeqs) {
    out.push_str("IP ");
    if data.len() < 20 || data[0] >> 4 != 4 {
        return out.push_str("[|ip]");
    }
    let header_len = usize::from(data[0] & 0x0f) * 4;
    let total = usize::from(be16(data, 2).unwrap_or(0));
    let frag = be16(data, 6).unwrap_or(0);
    let protocol = data[9];
    let source = Ipv4Addr::new(data[12], data[13], data[14], data[15]);
    let destination = Ipv4Addr::new(data[16], data[17], data[18], data[19]);
    if header_len < 20 || total < header_len {
        let _ = write!(out, "{source} > {destination}: bad header length {header_len}, total {total}");
        return;
    }
    let offset = usize::from(frag & 0x1fff) * 8;
    // What this packet carries of L4, bounded by what was captured.
    let end = total.min(data.len());
    let payload = &data[header_len.min(end)..end];
    let l4_len = total - header_len;
    // Fragments as tcpdump prints them without -v: a later one by its
    // protocol only, the first as what it carries (the ids and offsets are -v's).
    if offset > 0 {
        let _ = write!(out, "{source} > {destination}: ip-proto-{protocol}");
        return;
    }
    let (source, destination) = (source.to_string(), destination.to_string());
    transport(
        out,
        protocol,
        &Endpoints { source: &source, destination: &destination, extensions: "" },
        payload,
        l4_len,
        false,
        seqs,
    );
}

fn ipv6(out: &mut String, data: &[u8], seqs: &mut TcpSeqs) {
    // A header cut short is only the mark, after a space, as tcpdump has it.
    if data.len() < 40 {
        return out.push_str(" [|ip6]");
    }
    out.push_str("IP6 ");
    if data[0] >> 4 != 6 {
        return out.push_str("[|ip6]");
    }
    let payload_len = usize::from(be16(data, 4).unwrap_or(0));
    let address = |at: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&data[at..at + 16]).unwrap_or([0; 16]));
    let (source, destination) = (address(8).to_string(), address(24).to_string());
    let mut next = data[6];
    let mut at = 40;
    let mut remaining = payload_len;
    let mut extensions = String::new();
    loop {
        let name = match next {
            0 => "HBH",
            43 => "srcrt",
            44 => "frag",
            60 => "DSTOPT",
            51 => "AH",
            _ => break,
        };
        let (Some(&following), Some(&len_byte)) = (data.get(at), data.get(at + 1)) else {
            // tcpdump's names for the headers' truncation marks.
            let mark = match name {
                "HBH" => "hbhopt",
                "DSTOPT" => "dstopt",
                "AH" => "ah",
                "frag" => "frag6",
                other => other,
            };
            let _ = write!(out, "{source} > {destination}: {extensions} [|{mark}]");
            return;
        };
        let length = match next {
            44 => 8,
            51 => (usize::from(len_byte) + 2) * 4,
            _ => (usize::from(len_byte) + 1) * 8,
        };
        if next == 44 {
            // As tcpdump prints it without -v: offset and length (the id and
            // the more-fragments bit are -v's).
            let offset = usize::from(be16(data, at + 2).unwrap_or(0) & 0xfff8);
            let _ = write!(extensions, "frag ({offset}|{}) ", remaining.saturating_sub(8));
            if offset > 0 {
                let _ = write!(out, "{source} > {destination}: {}", extensions.trim_end());
                return;
            }
        } else {
            let _ = write!(extensions, "{name} ");
        }
        next = following;
        at += length;
        remaining = remaining.saturating_sub(length);
    }
    let end = (40 + payload_len).min(data.len());
    let payload = &data[at.min(end)..end];
    transport(
        out,
        next,
        &Endpoints { source: &source, destination: &destination, extensions: &extensions },
        payload,
        remaining,
        true,
        seqs,
    );
}

/// Addresses of an IP packet, and the IPv6 extension headers already
/// walked, which are named right after the addresses.
struct Endpoints<'a> {
    source: &'a str,
    destination: &'a str,
    extensions: &'a str,
}

impl Endpoints<'_> {
    fn plain(&self, out: &mut String) {
        let _ = write!(out, "{} > {}: {}", self.source, self.destination, self.extensions);
    }

    fn ports(&self, out: &mut String, sport: u16, dport: u16) {
        let _ = write!(out, "{}.{sport} > {}.{dport}: {}", self.source, self.destination, self.extensions);
    }
}

/// Writes "SRC[.port] > DST[.port]: description" for one L4 protocol.
fn transport(
    out: &mut String,
    protocol: u8,
    ends: &Endpoints,
    data: &[u8],
    length: usize,
    v6: bool,
    seqs: &mut TcpSeqs,
) {
    match protocol {
        6 => tcp(out, ends, data, length, seqs),
        17 => match (be16(data, 0), be16(data, 2), be16(data, 4)) {
            (Some(sport), Some(dport), Some(udp_len)) => {
                ends.ports(out, sport, dport);
                let _ = write!(out, "UDP, length {}", usize::from(udp_len).saturating_sub(8));
            }
            _ => {
                ends.plain(out);
                // tcpdump's spacing differs from TCP's here (checked against it).
                out.push_str(" [|udp]");
            }
        },
        1 if !v6 => {
            ends.plain(out);
            icmp(out, data, length);
        }
        58 if v6 => {
            ends.plain(out);
            icmp6(out, data, length);
        }
        2 if !v6 => {
            ends.plain(out);
            let _ = write!(out, "igmp, length {length}");
        }
        47 => {
            ends.plain(out);
            let _ = write!(out, "GREv{}, length {length}", data.get(1).map_or(0, |b| b & 7));
        }
        59 if v6 => {
            ends.plain(out);
            out.push_str("no next header");
        }
        other => {
            ends.plain(out);
            let _ = write!(out, "ip-proto-{other} {length}");
        }
    }
}

fn tcp(out: &mut String, ends: &Endpoints, data: &[u8], length: usize, seqs: &mut TcpSeqs) {
    let (Some(sport), Some(dport)) = (be16(data, 0), be16(data, 2)) else {
        ends.plain(out);
        return out.push_str("[|tcp]");
    };
    ends.ports(out, sport, dport);
    if data.len() < 20 {
        return out.push_str(" [|tcp]");
    }
    let header_len = usize::from(data[12] >> 4) * 4;
    let flags = data[13];
    let (seq, ack) = seqs.adjust(ends, sport, dport, flags, be32(data, 4).unwrap_or(0), be32(data, 8).unwrap_or(0));
    let window = be16(data, 14).unwrap_or(0);
    let urgent = be16(data, 18).unwrap_or(0);
    let payload = length.saturating_sub(header_len);
    let mut names = String::new();
    // tcpdump's order: FIN SYN RST PSH ACK URG ECE CWR.
    for (bit, letter) in
        [(0x01, 'F'), (0x02, 'S'), (0x04, 'R'), (0x08, 'P'), (0x10, '.'), (0x20, 'U'), (0x40, 'E'), (0x80, 'W')]
    {
        if flags & bit != 0 {
            names.push(letter);
        }
    }
    if names.is_empty() {
        names.push_str("none");
    }
    let _ = write!(out, "Flags [{names}]");
    if payload > 0 {
        let _ = write!(out, ", seq {seq}:{}", seq.wrapping_add(payload as u32));
    } else if flags & 0x07 != 0 {
        let _ = write!(out, ", seq {seq}");
    }
    if flags & 0x10 != 0 {
        let _ = write!(out, ", ack {ack}");
    }
    let _ = write!(out, ", win {window}");
    if flags & 0x20 != 0 {
        let _ = write!(out, ", urg {urgent}");
    }
    if header_len > 20 {
        match data.get(20..header_len) {
            Some(options) => {
                let _ = write!(out, ", options [{}]", tcp_options(options));
            }
            None => return out.push_str(", [|tcp]"),
        }
    }
    let _ = write!(out, ", length {payload}");
}

fn tcp_options(mut data: &[u8]) -> String {
    let mut shown: Vec<String> = Vec::new();
    while let Some(&kind) = data.first() {
        match kind {
            0 => {
                shown.push("eol".into());
                break;
            }
            1 => {
                shown.push("nop".into());
                data = &data[1..];
                continue;
            }
            _ => {}
        }
        let Some(&len) = data.get(1) else { break };
        let len = usize::from(len);
        let Some(body) = data.get(2..len.max(2)) else {
            shown.push("[|tcp]".into());
            break;
        };
        shown.push(match (kind, body.len()) {
            (2, 2) => format!("mss {}", be16(body, 0).unwrap_or(0)),
            (3, 1) => format!("wscale {}", body[0]),
            (4, 0) => "sackOK".into(),
            (5, n) if n % 8 == 0 => {
                let blocks: Vec<String> = body
                    .chunks(8)
                    .map(|b| format!("{}:{}", be32(b, 0).unwrap_or(0), be32(b, 4).unwrap_or(0)))
                    .collect();
                format!("sack {} {{{}}}", blocks.len(), blocks.join("}{"))
            }
            (8, 8) => format!("TS val {} ecr {}", be32(body, 0).unwrap_or(0), be32(body, 4).unwrap_or(0)),
            (30, _) => "mptcp".into(),
            (34, _) => "tfo".into(),
            (kind, _) => format!("unknown-{kind}"),
        });
        if len < 2 {
            break;
        }
        data = &data[len.min(data.len())..];
    }
    shown.join(",")
}

fn icmp(out: &mut String, data: &[u8], length: usize) {
    let (Some(&kind), Some(&code)) = (data.first(), data.get(1)) else { return out.push_str(" [|icmp]") };
    let echo = |out: &mut String, what: &str| {
        let _ = write!(
            out,
            "ICMP echo {what}, id {}, seq {}, length {length}",
            be16(data, 4).unwrap_or(0),
            be16(data, 6).unwrap_or(0)
        );
    };
    match kind {
        0 => echo(out, "reply"),
        8 => echo(out, "request"),
        3 => {
            // The quoted header says what could not be reached.
            let quoted = &data[8.min(data.len())..];
            let target = if quoted.len() >= 20 {
                let ihl = usize::from(quoted[0] & 0x0f) * 4;
                let destination = Ipv4Addr::new(quoted[16], quoted[17], quoted[18], quoted[19]);
                let protocol = quoted[9];
                match (code, be16(quoted, ihl + 2)) {
                    (3, Some(port)) if protocol == 17 => format!("{destination} udp port {port} unreachable"),
                    (3, Some(port)) if protocol == 6 => format!("{destination} tcp port {port} unreachable"),
                    (2, _) => format!("{destination} protocol {protocol} unreachable"),
                    (1, _) => format!("host {destination} unreachable"),
                    (0, _) => format!("net {destination} unreachable"),
                    (4, _) => format!("{destination} unreachable - need to frag"),
                    _ => format!("{destination} unreachable, code {code}"),
                }
            } else {
                format!("unreachable, code {code}")
            };
            let _ = write!(out, "ICMP {target}, length {length}");
        }
        11 => {
            let what = if code == 0 { "in-transit" } else { "reassembly" };
            let _ = write!(out, "ICMP time exceeded {what}, length {length}");
        }
        5 => {
            let _ = write!(out, "ICMP redirect, length {length}");
        }
        other => {
            let _ = write!(out, "ICMP type-#{other}, length {length}");
        }
    }
}

fn icmp6(out: &mut String, data: &[u8], length: usize) {
    let Some(&kind) = data.first() else { return out.push_str(" [|icmp6]") };
    let target = || data.get(8..24).map(|b| Ipv6Addr::from(<[u8; 16]>::try_from(b).unwrap_or([0; 16])).to_string());
    let text = match kind {
        128 | 129 => format!(
            "echo {}, id {}, seq {}",
            if kind == 128 { "request" } else { "reply" },
            be16(data, 4).unwrap_or(0),
            be16(data, 6).unwrap_or(0)
        ),
        1 => "destination unreachable".into(),
        2 => "packet too big".into(),
        3 => "time exceeded in-transit".into(),
        133 => "router solicitation".into(),
        134 => "router advertisement".into(),
        // Without the target, tcpdump stops at the name.
        135 | 136 if target().is_none() => {
            let name = if kind == 135 { "solicitation" } else { "advertisement" };
            let _ = write!(out, "ICMP6, neighbor {name} [|icmp6]");
            return;
        }
        135 => format!("neighbor solicitation, who has {}", target().unwrap_or_default()),
        136 => format!("neighbor advertisement, tgt is {}", target().unwrap_or_default()),
        143 => format!("multicast listener report v2, {} group record(s)", be16(data, 6).unwrap_or(0)),
        other => format!("type {other}"),
    };
    let _ = write!(out, "ICMP6, {text}, length {length}");
}

#[cfg(test)]
pub mod tests;
