//! The header fields of a captured packet as data (for JSON), next to the
//! text of `describe`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{be16, be32, mac};
use crate::event::Link;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Headers {
    pub eth_src: Option<String>,
    pub eth_dst: Option<String>,
    pub ethertype: Option<u16>,
    pub vlans: Vec<u16>,
    pub ip_src: Option<IpAddr>,
    pub ip_dst: Option<IpAddr>,
    /// IPv4 protocol or the IPv6 upper-layer header.
    pub ip_protocol: Option<u8>,
    pub ttl: Option<u8>,
    pub ip_id: Option<u32>,
    pub fragment_offset: Option<u16>,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    pub tcp_flags: Option<u8>,
    pub tcp_seq: Option<u32>,
    pub tcp_ack: Option<u32>,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    /// The ICMP header's second word (identifier and sequence of echoes).
    pub icmp_rest: Option<u32>,
}

pub fn headers(link: Link, data: &[u8]) -> Headers {
    let mut h = Headers::default();
    let mut at = 0;
    let mut ethertype = None;
    if link == Link::Ethernet {
        if data.len() < 14 {
            return h;
        }
        h.eth_dst = Some(mac(&data[0..6]));
        h.eth_src = Some(mac(&data[6..12]));
        let mut kind = be16(data, 12);
        at = 14;
        while let Some(0x8100 | 0x88a8) = kind {
            h.vlans.extend(be16(data, at).map(|tci| tci & 0x0fff));
            kind = be16(data, at + 2);
            at += 4;
        }
        h.ethertype = kind;
        ethertype = kind;
    }
    let ip = &data[at.min(data.len())..];
    let version = ip.first().map(|b| b >> 4);
    let (protocol, l4) = match (ethertype, version) {
        (None | Some(0x0800), Some(4)) if ip.len() >= 20 => {
            h.ip_src = Some(IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15])));
            h.ip_dst = Some(IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19])));
            h.ttl = Some(ip[8]);
            h.ip_id = be16(ip, 4).map(u32::from);
            let offset = be16(ip, 6).unwrap_or(0) & 0x1fff;
            h.fragment_offset = Some(offset * 8);
            let header_len = usize::from(ip[0] & 0x0f) * 4;
            // Later fragments carry no L4 header.
            (Some(ip[9]), if offset == 0 { ip.get(header_len..) } else { None })
        }
        (None | Some(0x86dd), Some(6)) if ip.len() >= 40 => {
            let address = |at: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&ip[at..at + 16]).unwrap_or([0; 16]));
            h.ip_src = Some(IpAddr::V6(address(8)));
            h.ip_dst = Some(IpAddr::V6(address(24)));
            h.ttl = Some(ip[7]);
            let (mut next, mut offset) = (ip[6], 40);
            // Walk hop-by-hop, routing, destination options and fragment headers.
            while matches!(next, 0 | 43 | 44 | 60) {
                let (Some(&following), Some(&len)) = (ip.get(offset), ip.get(offset + 1)) else { break };
                if next == 44 {
                    h.ip_id = be32(ip, offset + 4);
                    h.fragment_offset = be16(ip, offset + 2).map(|f| f & 0xfff8);
                }
                offset += if next == 44 { 8 } else { (usize::from(len) + 1) * 8 };
                next = following;
            }
            (Some(next), ip.get(offset..))
        }
        _ => (None, None),
    };
    h.ip_protocol = protocol;
    if let (Some(protocol), Some(l4)) = (protocol, l4) {
        match protocol {
            6 | 17 => {
                h.sport = be16(l4, 0);
                h.dport = be16(l4, 2);
                if protocol == 6 {
                    h.tcp_seq = be32(l4, 4);
                    h.tcp_ack = be32(l4, 8);
                    h.tcp_flags = l4.get(13).copied();
                }
            }
            1 | 58 => {
                h.icmp_type = l4.first().copied();
                h.icmp_code = l4.get(1).copied();
                h.icmp_rest = be32(l4, 4);
            }
            _ => {}
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::tests::{ether, ipv4, ipv6, tcp};

    #[test]
    fn reads_the_fields_of_tcp_over_ipv4_and_ipv6() {
        let packet =
            ether(0x0800, &ipv4(6, [198, 18, 0, 1], [198, 18, 0, 2], &tcp(40000, 9000, 7, 9, 0x12, &[], &[]), 5, 0));
        let h = headers(Link::Ethernet, &packet);
        assert_eq!(h.eth_src.as_deref(), Some("02:00:00:00:00:0a"));
        assert_eq!(h.ethertype, Some(0x0800));
        assert_eq!(h.ip_src, Some("198.18.0.1".parse().unwrap()));
        assert_eq!((h.ip_protocol, h.ttl, h.ip_id), (Some(6), Some(64), Some(5)));
        assert_eq!(
            (h.sport, h.dport, h.tcp_flags, h.tcp_seq, h.tcp_ack),
            (Some(40000), Some(9000), Some(0x12), Some(7), Some(9))
        );

        let hbh = [&[6u8, 0, 0, 0, 0, 0, 0, 0][..], &tcp(1, 2, 3, 4, 0x02, &[], &[])].concat();
        let packet = ipv6(0, "fd00::1".parse().unwrap(), "fd00::2".parse().unwrap(), &hbh);
        let h = headers(Link::Raw, &packet);
        assert_eq!(h.ip_dst, Some("fd00::2".parse().unwrap()));
        assert_eq!((h.ip_protocol, h.sport, h.dport), (Some(6), Some(1), Some(2)));
        assert_eq!(h.eth_src, None);
    }

    #[test]
    fn later_fragments_have_no_ports() {
        let packet = ipv4(17, [198, 18, 0, 1], [198, 18, 0, 2], &[0; 16], 9, 0x0004);
        let h = headers(Link::Raw, &packet);
        assert_eq!((h.fragment_offset, h.sport), (Some(32), None));
    }
}
