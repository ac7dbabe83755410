//! IPv4 and IPv6 (with its extension headers), and the demultiplexer that
//! hands their payload to the next protocol, IP in IP included.

use std::net::IpAddr;

use super::{
    Printer, Short, Step, bytes_at, icmp, ipv4_at, ipv6_at, link, put, rest, routing, tcp, tunnel, u8_at, u16_at, udp,
};

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_DCCP: u8 = 33;
const IPPROTO_SCTP: u8 = 132;

/// The addresses of the IP header a transport header sits in, and that
/// header's own protocol field: TCP and UDP print their addresses with the
/// ports only when it names them, else the ports alone (tcpdump's way, after
/// an AH or an IPv6 extension header).
pub(super) struct Ends {
    pub source: IpAddr,
    pub destination: IpAddr,
    /// The IP header's protocol (IPv4) or first next-header (IPv6) field.
    pub first: u8,
    pub v6: bool,
    /// TTL or hop limit (VRRP names one other than 255).
    pub ttl: u8,
}

impl Ends {
    /// "SRC.sport > DST.dport: ", or "sport > dport: " behind other headers.
    pub fn ports(&self, p: &mut Printer, protocol: u8, sport: u16, dport: u16) {
        if self.first == protocol {
            put!(p, "{}.{sport} > {}.{dport}: ", self.source, self.destination);
        } else {
            put!(p, "{sport} > {dport}: ");
        }
    }

    /// "SRC > DST: " where the ports could not be read; nothing behind
    /// other headers (the addresses were printed already).
    pub fn addresses(&self, p: &mut Printer, protocol: u8) {
        if self.first == protocol {
            put!(p, "{} > {}: ", self.source, self.destination);
        }
    }
}

pub(super) fn ipv4(p: &mut Printer, data: &[u8], length: usize) -> Step {
    p.protocol = "ip";
    let version = u8_at(data, 0)? >> 4;
    if version != 4 {
        if version == 6 {
            put!(p, "IP6, wrong link-layer encapsulation");
        } else {
            put!(p, "IP{version}");
        }
        p.invalid();
        return Ok(());
    }
    put!(p, "IP ");
    bytes_at(data, 0, 20)?;
    if length < 20 {
        put!(p, "truncated-ip {length}");
        return Ok(());
    }
    let header_len = usize::from(data[0] & 0x0f) * 4;
    if header_len < 20 {
        put!(p, "bad-hlen {header_len}");
        return Ok(());
    }
    let total = usize::from(u16_at(data, 2)?);
    if length < total {
        put!(p, "truncated-ip - {} bytes missing! ", total - length);
    }
    if total < header_len {
        put!(p, "bad-len {total}");
        return Ok(());
    }
    // The packet ends where the header says, whatever follows it.
    let data = &data[..data.len().min(total)];
    let offset = u16_at(data, 6)?;
    let protocol = data[9];
    let ends = Ends {
        source: ipv4_at(data, 12)?.into(),
        destination: ipv4_at(data, 16)?.into(),
        first: protocol,
        v6: false,
        ttl: data[8],
    };
    if offset & 0x1fff != 0 {
        // A later fragment: the addresses and the protocol only.
        put!(p, "{} > {}: ip-proto-{protocol}", ends.source, ends.destination);
        return Ok(());
    }
    if !matches!(protocol, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP | IPPROTO_DCCP) {
        put!(p, "{} > {}: ", ends.source, ends.destination);
    }
    if data.len() < header_len {
        put!(p, " [remaining caplen({}) < header length({header_len})]", data.len());
        return Err(Short);
    }
    demux(p, &data[header_len..], total - header_len, &ends, offset & 0x2000 != 0, protocol)
}

pub(super) fn ipv6(p: &mut Printer, data: &[u8], length: usize) -> Step {
    p.protocol = "ip6";
    bytes_at(data, 0, 40)?;
    if length < 40 {
        put!(p, "truncated-ip6 {length}");
        return Ok(());
    }
    put!(p, "IP6 ");
    let version = data[0] >> 4;
    if version != 6 {
        put!(p, "version error: {version} != 6");
        return Ok(());
    }
    let payload_len = usize::from(u16_at(data, 4)?);
    let mut len = if payload_len != 0 {
        let claimed = payload_len + 40;
        if length < claimed {
            put!(p, "truncated-ip6 - {} bytes missing!", claimed - length);
        }
        claimed
    } else {
        length + 40
    };
    let data = &data[..data.len().min(len)];
    let first = data[6];
    let ends = Ends {
        source: ipv6_at(data, 8)?.into(),
        destination: ipv6_at(data, 24)?.into(),
        first,
        v6: true,
        ttl: data[7],
    };
    let mut next = first;
    let mut at = 0;
    let mut advance = 40;
    let mut fragmented = false;
    let mut seen_hbh = false;
    while at < data.len() {
        if len < advance {
            return Err(Short);
        }
        at += advance;
        len -= advance;
        if at == 40 && !matches!(next, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_DCCP | IPPROTO_SCTP) {
            put!(p, "{} > {}: ", ends.source, ends.destination);
        }
        let header = rest(data, at);
        match next {
            0 => {
                if seen_hbh || at != 40 {
                    put!(
                        p,
                        "{}",
                        if seen_hbh {
                            "[The Hop-by-Hop Options header was already found]"
                        } else {
                            "[The Hop-by-Hop Options header don't follow the IPv6 header]"
                        }
                    );
                    p.invalid();
                    return Ok(());
                }
                advance = options_header(p, header, "hbhopt", "HBH ")?;
                if payload_len == 0 {
                    put!(p, "[No valid Jumbo Payload Hop-by-Hop option found]");
                    p.invalid();
                    return Ok(());
                }
                seen_hbh = true;
            }
            60 => advance = options_header(p, header, "dstopt", "DSTOPT ")?,
            44 => {
                p.protocol = "frag6";
                let offset = u16_at(header, 2)? & 0xfff8;
                put!(p, "frag ({offset}|{})", (payload_len + 40).saturating_sub(at + 8));
                // A later fragment cannot be decoded further.
                if offset != 0 {
                    return Ok(());
                }
                put!(p, " ");
                advance = 8;
                fragmented = true;
                if data.len() <= at + advance {
                    return Ok(());
                }
            }
            43 => {
                // tcpdump checks the first byte as IPv6's before the routing header's own.
                u8_at(header, 0)?;
                match routing_header(p, header)? {
                    Some(length) => advance = length,
                    None => return Ok(()),
                }
            }
            _ => {
                // A zero payload length without a jumbo option: only the header.
                if payload_len == 0 {
                    if at != 40 {
                        return Err(Short);
                    }
                    len = 0;
                }
                return demux(p, header, len, &ends, fragmented, next);
            }
        }
        next = u8_at(header, 0)?;
        p.protocol = "ip6";
    }
    Ok(())
}

/// Hop-by-hop and destination options: named, their options shown only
/// with tcpdump's -v.
fn options_header(p: &mut Printer, header: &[u8], protocol: &'static str, name: &str) -> Result<usize, Short> {
    p.protocol = protocol;
    let length = (usize::from(u8_at(header, 1)?) + 1) * 8;
    bytes_at(header, 0, length)?;
    put!(p, "{name}");
    Ok(length)
}

/// The routing header: type 0's and segment routing's addresses; None where
/// tcpdump stops (an unknown type or an odd length).
fn routing_header(p: &mut Printer, header: &[u8]) -> Result<Option<usize>, Short> {
    p.protocol = "rt6";
    put!(p, "RT6");
    let len = usize::from(u8_at(header, 1)?);
    put!(p, " (len={len}");
    let kind = u8_at(header, 2)?;
    put!(p, ", type={kind}");
    if kind == 0 {
        put!(p, " [Deprecated]");
    }
    put!(p, ", segleft={}", u8_at(header, 3)?);
    match kind {
        0 | 2 => {
            let reserved = super::u32_at(header, 4)?;
            if reserved != 0 {
                put!(p, ", rsv=0x{reserved:x}");
            }
        }
        4 => {
            put!(p, ", last-entry={}", u8_at(header, 4)?);
            let flags = u8_at(header, 5)?;
            if flags != 0 {
                put!(p, ", flags=0x{flags:x}");
            }
            put!(p, ", tag={:x}", u16_at(header, 6)?);
        }
        _ => {
            put!(p, " (unknown type)");
            p.invalid();
            return Ok(None);
        }
    }
    if len % 2 == 1 {
        put!(p, " (invalid length {len})");
        p.invalid();
        return Ok(None);
    }
    for i in 0..len / 2 {
        put!(p, ", [{i}]{}", ipv6_at(header, 8 + 16 * i)?);
    }
    put!(p, ") ");
    Ok(Some((len + 1) * 8))
}

/// The next protocol after an IP header (or an AH).
pub(super) fn demux(p: &mut Printer, data: &[u8], length: usize, ends: &Ends, fragmented: bool, protocol: u8) -> Step {
    let v6 = ends.v6;
    match protocol {
        51 => {
            if data.is_empty() {
                p.protocol = "ah";
                return Err(Short);
            }
            let next = data[0];
            let advance = routing::ah(p, data)?;
            demux(p, rest(data, advance), length.saturating_sub(advance), ends, fragmented, next)
        }
        50 => routing::esp(p, data, length),
        IPPROTO_SCTP => routing::sctp(p, data, length, ends),
        IPPROTO_TCP => tcp::tcp(p, data, length, ends),
        IPPROTO_UDP => udp::udp(p, data, length, ends, fragmented),
        1 if !v6 => icmp::icmp(p, data, length),
        58 if v6 => icmp::icmp6(p, data, length),
        2 if !v6 => routing::igmp(p, data, length),
        1 | 2 => {
            put!(p, "[{} requires IPv4]", if protocol == 1 { "ICMP" } else { "IGMP" });
            p.invalid();
            Ok(())
        }
        58 => {
            put!(p, "[ICMPv6 requires IPv6]");
            p.invalid();
            Ok(())
        }
        89 if !v6 => routing::ospf(p, data, length),
        4 => ipv4(p, data, length),
        41 => ipv6(p, data, length),
        47 => tunnel::gre(p, data, length),
        103 => routing::pim(p, data, length),
        112 => routing::vrrp(p, data, length, ends),
        97 if v6 => link::ether(p, data, length),
        59 => {
            put!(p, "no next header");
            Ok(())
        }
        other => {
            put!(p, " ip-proto-{other} {length}");
            Ok(())
        }
    }
}
