//! The link layer: Ethernet and its VLAN tags (shown only with tcpdump's
//! -e, so not here), 802.3 frames and their LLC/SNAP headers, ARP, STP, LLDP
//! and PTP; and the EtherType demultiplexer the tunnels share.

use super::{Printer, Short, Step, bytes_at, ip, ipv4_at, mac, put, rest, u8_at, u16_at, u32_at};

pub(super) const ETH_P_IP: u16 = 0x0800;
pub(super) const ETH_P_ARP: u16 = 0x0806;
pub(super) const ETH_P_RARP: u16 = 0x8035;
pub(super) const ETH_P_IPV6: u16 = 0x86dd;
pub(super) const ETH_P_TEB: u16 = 0x6558;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const ETH_P_QINQ_9100: u16 = 0x9100;
const ETH_P_QINQ_9200: u16 = 0x9200;
const ETH_P_JUMBO: u16 = 0x8870;
const ETH_P_LLDP: u16 = 0x88cc;
const ETH_P_PTP: u16 = 0x88f7;
/// Values up to this are 802.3 lengths, not EtherTypes.
const ETHERNET_LENGTH_MAX: u16 = 1500;

/// An Ethernet frame: `data` as captured, `length` its length on the wire.
pub(super) fn ether(p: &mut Printer, data: &[u8], length: usize) -> Step {
    p.protocol = "ether";
    if data.len() < 14 {
        return Err(Short);
    }
    let (destination, source) = (&data[0..6], &data[6..12]);
    let mut kind = u16_at(data, 12)?;
    let mut at = 14;
    let mut length = length - 14;
    while matches!(kind, ETH_P_8021Q | ETH_P_8021AD | ETH_P_QINQ_9100 | ETH_P_QINQ_9200) {
        if data.len() < at + 4 || length < 4 {
            p.protocol = "vlan";
            return Err(Short);
        }
        kind = u16_at(data, at + 2)?;
        at += 4;
        length -= 4;
    }
    let payload = rest(data, at);
    if kind <= ETHERNET_LENGTH_MAX {
        // A length: the payload ends there, if that is shorter.
        let length = length.min(usize::from(kind));
        return llc(p, &payload[..payload.len().min(length)], length);
    }
    if kind == ETH_P_JUMBO {
        return llc(p, payload, length);
    }
    if !ethertype(p, kind, payload, length)? {
        put!(
            p,
            "{} > {}, ethertype {} (0x{kind:04x}), length {}: ",
            mac(source),
            mac(destination),
            ethertype_name(kind),
            length + at
        );
        p.hex_and_ascii(payload);
    }
    Ok(())
}

/// What an EtherType carries, where netcap knows how to print it; false
/// where it does not (the caller decides what to show instead).
pub(super) fn ethertype(p: &mut Printer, kind: u16, data: &[u8], length: usize) -> Result<bool, Short> {
    match kind {
        ETH_P_IP => ip::ipv4(p, data, length)?,
        ETH_P_IPV6 => ip::ipv6(p, data, length)?,
        ETH_P_ARP | ETH_P_RARP => arp(p, data, length)?,
        ETH_P_LLDP => lldp(p, data, length),
        ETH_P_PTP => ptp(p, data, length)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// LLDP: its length; the TLVs are walked (a TLV cut short is marked) but
/// shown only with tcpdump's -v.
fn lldp(p: &mut Printer, data: &[u8], length: usize) {
    p.protocol = "lldp";
    put!(p, "LLDP, length {length}");
    let (mut at, mut left) = (0, length);
    while left >= 2 {
        let Ok(tlv) = u16_at(data, at) else { return put!(p, " [|lldp]") };
        let (kind, len) = (tlv >> 9, usize::from(tlv & 0x1ff));
        at += 2;
        left -= 2;
        if kind == 0 || len == 0 {
            return;
        }
        if bytes_at(data, at, len).is_err() || left < len {
            return put!(p, " [|lldp]");
        }
        at += len;
        left -= len;
    }
}

/// tcpdump's names for EtherTypes it shows without decoding.
fn ethertype_name(kind: u16) -> &'static str {
    match kind {
        0x8847 => "MPLS unicast",
        0x8848 => "MPLS multicast",
        0x888e => "EAPOL",
        0x8863 => "PPPoE D",
        0x8864 => "PPPoE S",
        0x88e5 => "802.1AE MACsec",
        0x9000 => "Loopback",
        0x8809 => "Slow Protocols",
        0x8137 => "IPX",
        0x809b => "Appletalk",
        0x22f0 => "AVB Transport Protocol",
        _ => "Unknown",
    }
}

/// An 802.2 LLC header, and SNAP after it.
fn llc(p: &mut Printer, data: &[u8], length: usize) -> Step {
    p.protocol = "llc";
    if data.len() < 3 || length < 3 {
        put!(p, " [|llc]");
        p.hex_and_ascii(data);
        return Ok(());
    }
    let (dsap, ssap, control) = (data[0] & !1, data[1] & !1, data[2]);
    let header = if control & 3 == 3 { 3 } else { 4 };
    let (body, length) = (rest(data, header), length.saturating_sub(header));
    match (dsap, ssap, control) {
        (0xaa, 0xaa, 3) => {
            // SNAP: an OUI, then an EtherType when the OUI is zero.
            let (Ok(oui), Ok(kind)) = (u32_at(data, header).map(|w| w >> 8), u16_at(data, header + 3)) else {
                p.protocol = "snap";
                return Err(Short);
            };
            if oui != 0 || !ethertype(p, kind, rest(body, 5), length.saturating_sub(5))? {
                put!(p, "SNAP, oui Unknown (0x{oui:06x}), pid Unknown (0x{kind:04x}), length {length}: ");
                p.hex_and_ascii(rest(body, 5));
            }
            Ok(())
        }
        (0x42, 0x42, 3) => stp(p, body, length),
        (0x06, 0x06, 3) => ip::ipv4(p, body, length),
        _ => {
            put!(p, "LLC, dsap 0x{dsap:02x}, ssap 0x{ssap:02x}, length {length}: ");
            p.hex_and_ascii(body);
            Ok(())
        }
    }
}

fn arp(p: &mut Printer, data: &[u8], length: usize) -> Step {
    p.protocol = "arp";
    // Cut short before the addresses: only the mark (tcpdump checks first).
    if data.len() < 8 {
        put!(p, " [|arp]");
        return Ok(());
    }
    let (hardware, protocol, op) = (u16_at(data, 0)?, u16_at(data, 2)?, u16_at(data, 6)?);
    let (hardware_len, protocol_len) = (usize::from(data[4]), usize::from(data[5]));
    let sender_hw = 8;
    let sender_ip = sender_hw + hardware_len;
    let target_hw = sender_ip + protocol_len;
    let target_ip = target_hw + hardware_len;
    if data.len() < target_ip + protocol_len {
        put!(p, " [|arp]");
        return Ok(());
    }
    put!(p, "ARP, ");
    let ip_like = protocol == ETH_P_IP || protocol == 0x1000;
    if !ip_like || protocol_len != 4 || hardware_len == 0 {
        let hardware_name = match hardware {
            1 => "Ethernet".to_string(),
            6 => "TokenRing".into(),
            7 => "ArcNet".into(),
            15 => "FrameRelay".into(),
            23 => "Strip".into(),
            24 => "IEEE 1394".into(),
            19 => "ATM".into(),
            32 => "InfiniBand".into(),
            other => format!("Unknown Hardware ({other})"),
        };
        let protocol_name = match protocol {
            ETH_P_IP => "IPv4".to_string(),
            ETH_P_IPV6 => "IPv6".into(),
            other => format!("Unknown Protocol (0x{other:04x})"),
        };
        put!(p, "{hardware_name} (len {hardware_len}), {protocol_name} (len {protocol_len}), length {length}");
        return Ok(());
    }
    // A link address: Ethernet's form for six bytes, else its bytes.
    let link = |at: usize| -> Result<String, Short> {
        let bytes = bytes_at(data, at, hardware_len)?;
        Ok(if hardware_len == 0 { "<empty>".into() } else { mac(bytes) })
    };
    let ip = |at: usize| ipv4_at(data, at);
    match op {
        1 => {
            put!(p, "Request who-has {}", ip(target_ip)?);
            if bytes_at(data, target_hw, hardware_len)?.iter().any(|&b| b != 0) {
                put!(p, " ({})", link(target_hw)?);
            }
            put!(p, " tell {}", ip(sender_ip)?);
        }
        2 => put!(p, "Reply {} is-at {}", ip(sender_ip)?, link(sender_hw)?),
        3 => put!(p, "Reverse Request who-is {} tell {}", link(target_hw)?, link(sender_hw)?),
        4 => put!(p, "Reverse Reply {} at {}", link(target_hw)?, ip(target_ip)?),
        8 => put!(p, "Inverse Request who-is {} tell {}", link(target_hw)?, link(sender_hw)?),
        9 => put!(p, "Inverse Reply {} at {}", link(sender_hw)?, ip(sender_ip)?),
        other => {
            put!(p, "{} ", if other == 10 { "NACK Reply".to_string() } else { format!("Unknown ({other})") });
            p.hex_and_ascii(data);
            return Ok(());
        }
    }
    put!(p, ", length {length}");
    Ok(())
}

/// Spanning tree BPDUs, at tcpdump's default verbosity.
fn stp(p: &mut Printer, data: &[u8], length: usize) -> Step {
    p.protocol = "stp";
    if length < 4 {
        p.invalid();
        return Ok(());
    }
    if u16_at(data, 0)? != 0 {
        put!(p, "unknown STP version, length {length}");
        return Ok(());
    }
    let version = u8_at(data, 2)?;
    match version {
        0 => put!(p, "STP 802.1d"),
        2 => put!(p, "STP 802.1w"),
        3 => put!(p, "STP 802.1s"),
        4 => put!(p, "STP 802.1aq"),
        other => {
            put!(p, "STP Unknown STP protocol (0x{other:02x})");
            return Ok(());
        }
    }
    let kind = u8_at(data, 3)?;
    match kind {
        0x00 => put!(p, ", Config"),
        0x02 => put!(p, ", Rapid STP"),
        0x80 => {
            put!(p, ", Topology Change");
            return Ok(());
        }
        other => {
            put!(p, ", Unknown BPDU Type (0x{other:02x})");
            return Ok(());
        }
    }
    // The config BPDU (35 bytes; a rapid one has one byte more).
    if length < if kind == 0 { 35 } else { 36 } {
        p.invalid();
        return Ok(());
    }
    let flags = u8_at(data, 4)?;
    let mut names = Vec::new();
    for (bit, name) in [
        (0x01, "Topology change"),
        (0x02, "Proposal"),
        (0x10, "Learn"),
        (0x20, "Forward"),
        (0x40, "Agreement"),
        (0x80, "Topology change ACK"),
    ] {
        if flags & bit != 0 {
            names.push(name);
        }
    }
    put!(p, ", Flags [{}]", if names.is_empty() { "none".to_string() } else { names.join(", ") });
    let bridge = bytes_at(data, 17, 8)?;
    let port = u16_at(data, 25)?;
    put!(p, ", bridge-id {:02x}{:02x}.{}.{port:04x}, length {length}", bridge[0], bridge[1], mac(&bridge[2..8]));
    Ok(())
}

/// The Precision Time Protocol's common header, as tcpdump prints it
/// without -v.
pub(super) fn ptp(p: &mut Printer, data: &[u8], length: usize) -> Step {
    p.protocol = "ptp";
    let version = u8_at(data, 1)? & 0x0f;
    if version != 2 {
        put!(p, "PTPv{version}, length {length}");
        return Ok(());
    }
    let first = u8_at(data, 0)?;
    let kind = first & 0x0f;
    let names = [
        "sync msg",
        "delay req msg",
        "peer delay req msg",
        "peer delay resp msg",
        "",
        "",
        "",
        "",
        "follow up msg",
        "delay resp msg",
        "peer delay resp follow up msg",
        "announce msg",
        "signaling msg",
        "management msg",
    ];
    let name = names.get(usize::from(kind)).copied().filter(|n| !n.is_empty()).unwrap_or("Reserved");
    put!(p, "PTPv2, v1 compat : {}, msg type : {name}", if first & 0x10 != 0 { "yes" } else { "no" });
    put!(p, ", length : {}, domain : {}, reserved1 : {}", u16_at(data, 2)?, u8_at(data, 4)?, u8_at(data, 5)?);
    let flags = u16_at(data, 6)?;
    put!(p, ", Flags [{}]", ptp_flags(flags));
    let correction = u32_at(data, 8)? as u64 * 65536 + u64::from(u16_at(data, 12)?);
    put!(p, ", NS correction : {correction}, sub NS correction : {}", u16_at(data, 14)?);
    put!(p, ", reserved2 : {}", u32_at(data, 16)?);
    let clock = u32_at(data, 20)? as u64 * (1 << 32) + u64::from(u32_at(data, 24)?);
    put!(p, ", clock identity : 0x{clock:x}");
    put!(p, ", port id : {}", u16_at(data, 28)?);
    put!(p, ", seq id : {}", u16_at(data, 30)?);
    let control = u8_at(data, 32)?;
    let control_name = match control {
        0 => "Sync",
        1 => "Delay_Req",
        2 => "Follow_Up",
        3 => "Delay_Resp",
        4 => "Management",
        _ => "Other",
    };
    put!(p, ", control : {control} ({control_name})");
    put!(p, ", log message interval : {}", u8_at(data, 33)? as i8);
    match kind {
        0 | 1 | 8 => {
            let seconds = u64::from(u16_at(data, 34)?) << 32 | u64::from(u32_at(data, 36)?);
            let what = match kind {
                0 => "originTimeStamp",
                1 => "originTimeStamp",
                _ => "preciseOriginTimeStamp",
            };
            put!(p, ", {what} : {seconds} seconds,");
            put!(p, " {} nanoseconds", u32_at(data, 40)?);
        }
        _ => {}
    }
    Ok(())
}

fn ptp_flags(flags: u16) -> String {
    let table = [
        (0x0001, "LI61"),
        (0x0002, "LI59"),
        (0x0004, "UTC offset valid"),
        (0x0008, "PTP timescale"),
        (0x0010, "time traceable"),
        (0x0020, "frequency traceable"),
        (0x0100, "alternate master"),
        (0x0200, "two step"),
        (0x0400, "unicast"),
        (0x2000, "profile specific 1"),
        (0x4000, "profile specific 2"),
        (0x8000, "security"),
    ];
    let names: Vec<&str> = table.iter().filter(|(bit, _)| flags & bit != 0).map(|(_, n)| *n).collect();
    if names.is_empty() { "none".into() } else { names.join(", ") }
}
