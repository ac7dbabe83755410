//! ICMP and ICMPv6 (with neighbor discovery, MLD and RPL), by tcpdump's
//! names.

use super::{Printer, Short, Step, bytes_at, ipv4_at, ipv6_at, put, u8_at, u16_at, u32_at};

pub(super) fn icmp(p: &mut Printer, data: &[u8], length: usize) -> Step {
    p.protocol = "icmp";
    // tcpdump composes the text first: a packet cut short shows none of it.
    let text = icmp_text(data)?;
    put!(p, "ICMP {text}, length {length}");
    Ok(())
}

fn icmp_text(data: &[u8]) -> Result<String, Short> {
    let (kind, code) = (u8_at(data, 0)?, u8_at(data, 1)?);
    // The quoted IP header of an error starts at 8.
    let quoted_destination = || ipv4_at(data, 8 + 16);
    Ok(match kind {
        0 | 8 => format!(
            "echo {}, id {}, seq {}",
            if kind == 8 { "request" } else { "reply" },
            u16_at(data, 4)?,
            u16_at(data, 6)?
        ),
        3 => {
            let to = quoted_destination;
            match code {
                0 => format!("net {} unreachable", to()?),
                1 => format!("host {} unreachable", to()?),
                2 => format!("{} protocol {} unreachable", to()?, u8_at(data, 8 + 9)?),
                3 => {
                    u8_at(data, 8 + 9)?;
                    let header_len = usize::from(u8_at(data, 8)? & 0x0f) * 4;
                    let port = u16_at(data, 8 + header_len + 2)?;
                    let destination = to()?;
                    match u8_at(data, 8 + 9)? {
                        6 => format!("{destination} tcp port {port} unreachable"),
                        17 => format!("{destination} udp port {port} unreachable"),
                        other => format!("{destination} protocol {other} port {port} unreachable"),
                    }
                }
                4 => match u16_at(data, 6)? {
                    0 => format!("{} unreachable - need to frag", to()?),
                    mtu => format!("{} unreachable - need to frag (mtu {mtu})", to()?),
                },
                5 => format!("{} unreachable - source route failed", to()?),
                6 => format!("net {} unreachable - unknown", to()?),
                7 => format!("host {} unreachable - unknown", to()?),
                8 => format!("{} unreachable - source host isolated", to()?),
                9 => format!("net {} unreachable - admin prohibited", to()?),
                10 => format!("host {} unreachable - admin prohibited", to()?),
                11 => format!("net {} unreachable - tos prohibited", to()?),
                12 => format!("host {} unreachable - tos prohibited", to()?),
                13 => format!("host {} unreachable - admin prohibited filter", to()?),
                14 => format!("host {} unreachable - host precedence violation", to()?),
                15 => format!("host {} unreachable - precedence cutoff", to()?),
                other => format!("{} unreachable - #{other}", to()?),
            }
        }
        5 => {
            let (to, gateway) = (quoted_destination()?, ipv4_at(data, 4)?);
            match code {
                0 => format!("redirect {to} to net {gateway}"),
                1 => format!("redirect {to} to host {gateway}"),
                2 => format!("redirect-tos {to} to net {gateway}"),
                3 => format!("redirect-tos {to} to host {gateway}"),
                other => format!("redirect-#{other} {to} to {gateway}"),
            }
        }
        9 => router_advertisement(data)?,
        11 => {
            quoted_destination()?;
            match code {
                0 => "time exceeded in-transit".into(),
                1 => "ip reassembly time exceeded".into(),
                other => format!("time exceeded-#{other}"),
            }
        }
        12 => match code {
            0 => format!("parameter problem - octet {}", u8_at(data, 4)?),
            other => format!("parameter problem - code {other}"),
        },
        18 => format!("address mask is 0x{:08x}", u32_at(data, 8)?),
        13 => format!("time stamp query id {} seq {}", u16_at(data, 4)?, u16_at(data, 6)?),
        14 => {
            u32_at(data, 16)?;
            format!(
                "time stamp reply id {} seq {}: org {}, recv {}, xmit {}",
                u16_at(data, 4)?,
                u16_at(data, 6)?,
                milliseconds_of_day(u32_at(data, 8)?),
                milliseconds_of_day(u32_at(data, 12)?),
                milliseconds_of_day(u32_at(data, 16)?)
            )
        }
        4 => "source quench".into(),
        10 => "router solicitation".into(),
        15 => "information request".into(),
        16 => "information reply".into(),
        17 => "address mask request".into(),
        other => format!("type-#{other}"),
    })
}

fn router_advertisement(data: &[u8]) -> Result<String, Short> {
    bytes_at(data, 4, 4)?;
    let lifetime = u16_at(data, 6)?;
    let lifetime = match lifetime {
        0..60 => format!("{lifetime}"),
        60..3600 => format!("{}:{:02}", lifetime / 60, lifetime % 60),
        _ => format!("{}:{:02}:{:02}", lifetime / 3600, lifetime % 3600 / 60, lifetime % 60),
    };
    let (count, size) = (u8_at(data, 4)?, u8_at(data, 5)?);
    let mut text = format!("router advertisement lifetime {lifetime} {count}:");
    if size != 2 {
        text += &format!(" [size {size}]");
        return Ok(text);
    }
    for i in 0..usize::from(count) {
        let at = 8 + 8 * i;
        bytes_at(data, at, 8)?;
        text += &format!(" {{{} {}}}", ipv4_at(data, at)?, u32_at(data, at + 4)?);
    }
    Ok(text)
}

/// An ICMP timestamp: milliseconds since midnight UTC.
fn milliseconds_of_day(ms: u32) -> String {
    let seconds = ms / 1000;
    format!("{:02}:{:02}:{:02}.{:03}", seconds / 3600, seconds / 60 % 60, seconds % 60, ms % 1000)
}

fn icmp6_name(kind: u8) -> Option<&'static str> {
    Some(match kind {
        1 => "destination unreachable",
        2 => "packet too big",
        3 => "time exceeded in-transit",
        4 => "parameter problem",
        128 => "echo request",
        129 => "echo reply",
        130 => "multicast listener query",
        131 => "multicast listener report",
        132 => "multicast listener done",
        133 => "router solicitation",
        134 => "router advertisement",
        135 => "neighbor solicitation",
        136 => "neighbor advertisement",
        137 => "redirect",
        138 => "router renumbering",
        141 => "inverse neighbor solicitation",
        142 => "inverse neighbor advertisement",
        143 => "multicast listener report v2",
        144 => "ha discovery request",
        145 => "ha discovery reply",
        146 => "mobile router solicitation",
        147 => "mobile router advertisement",
        // tcpdump's table names 139 and 140 by KAME's older names first.
        139 => "who-are-you request",
        140 => "who-are-you reply",
        200 => "mtrace response",
        201 => "mtrace message",
        155 => "RPL",
        _ => return None,
    })
}

pub(super) fn icmp6(p: &mut Printer, data: &[u8], length: usize) -> Step {
    p.protocol = "icmp6";
    if length == 0 {
        put!(p, "ICMP6, length 0");
        p.invalid();
        return Ok(());
    }
    let kind = u8_at(data, 0)?;
    match icmp6_name(kind) {
        Some(name) => put!(p, "ICMP6, {name}"),
        None => put!(p, "ICMP6, unknown icmp6 type ({kind})"),
    }
    let code = u8_at(data, 1)?;
    // What an error quotes: the offending packet's IPv6 header, from 8.
    let quoted = |at: usize| ipv6_at(data, 8 + at);
    match kind {
        1 => {
            match code {
                0 => put!(p, ", unreachable route"),
                1 => put!(p, ",  unreachable prohibited"),
                2 => put!(p, ", beyond scope"),
                3 => put!(p, ", unreachable address"),
                4 => put!(p, ", unreachable port"),
                other => put!(p, ", unknown unreach code ({other})"),
            }
            match code {
                0 | 1 | 3 => put!(p, " {}", quoted(24)?),
                2 => put!(p, " {}, source address {}", quoted(24)?, quoted(8)?),
                4 => {
                    let (protocol, at) = upper_layer(&data[8.min(data.len())..]).ok_or(Short)?;
                    let port = u16_at(data, 8 + at + 2)?;
                    let destination = quoted(24)?;
                    match protocol {
                        6 => put!(p, ", {destination} tcp port {port}"),
                        17 => put!(p, ", {destination} udp port {port}"),
                        other => put!(p, ", {destination} protocol {other} port {port} unreachable"),
                    }
                }
                _ => {
                    p.hex(&data[..data.len().min(length)]);
                    return Ok(());
                }
            }
        }
        2 => put!(p, ", mtu {}", u32_at(data, 4)?),
        3 => match code {
            0 => put!(p, " for {}", quoted(24)?),
            1 => put!(p, " (reassembly)"),
            other => put!(p, ", unknown code ({other})"),
        },
        4 => {
            quoted(24)?;
            let pointer = u32_at(data, 4)?;
            match code {
                0 => put!(p, ", erroneous - octet {pointer}"),
                1 => put!(p, ", next header - octet {pointer}"),
                2 => put!(p, ", option - octet {pointer}"),
                3 => put!(p, ", incomplete header chain - octet {pointer}"),
                other => put!(p, ", code-#{other}"),
            }
        }
        128 | 129 => put!(p, ", id {}, seq {}", u16_at(data, 4)?, u16_at(data, 6)?),
        130 => {
            if length == 24 {
                mld(p, data)?;
            } else if length >= 28 {
                put!(p, " v2 [gaddr {}", ipv6_at(data, 8)?);
                let sources = u16_at(data, 26)?;
                if sources > 0 {
                    put!(p, ", {sources} source(s)");
                }
                put!(p, "]");
            } else {
                put!(p, " unknown-version (len {length}) ");
            }
        }
        131 | 132 => mld(p, data)?,
        135 => put!(p, ", who has {}", ipv6_at(data, 8)?),
        136 => put!(p, ", tgt is {}", ipv6_at(data, 8)?),
        137 => put!(p, ", {} to {}", ipv6_at(data, 24)?, ipv6_at(data, 8)?),
        133 | 134 | 141 | 142 | 145 | 147 => {}
        143 => {
            if length < 8 {
                put!(p, " [invalid len {length}]");
            } else {
                put!(p, ", {} group record(s)", u16_at(data, 6)?);
            }
        }
        144 | 146 => put!(p, ", id 0x{:04x}", u16_at(data, 4)?),
        138 => {
            // Router renumbering: the code and sequence number; a command's
            // match part cut short is marked and the line goes on.
            if data.len() < 16 {
                put!(p, " [|icmp6], length {length}");
                return Ok(());
            }
            match code {
                0 => put!(p, ", command"),
                1 => put!(p, ", result"),
                255 => put!(p, ", sequence number reset"),
                other => put!(p, ", code-#{other}"),
            }
            put!(p, ", seq={}", u32_at(data, 4)?);
            if code == 0 && data.len() < 16 + 24 {
                put!(p, " [|icmp6]");
            }
        }
        139 | 140 => node_information(p, data, length, kind),
        155 => {
            if code & 0x80 != 0 {
                put!(p, ", (SEC) [worktodo]");
            } else {
                put!(p, ", (CLR)");
                match code {
                    0 => put!(p, "DODAG Information Solicitation"),
                    1 => put!(p, "DODAG Information Object"),
                    2 => put!(p, "Destination Advertisement Object"),
                    3 => put!(p, "Destination Advertisement Object Ack"),
                    other => put!(p, "RPL message, unknown code {other}"),
                }
            }
        }
        _ => {
            put!(p, ", length {length}");
            p.hex(&data[..data.len().min(length)]);
            return Ok(());
        }
    }
    put!(p, ", length {length}");
    Ok(())
}

/// Node information queries and replies (RFC 4620), as far as tcpdump
/// prints them without -v; a part cut short is marked and the line goes on.
fn node_information(p: &mut Printer, data: &[u8], length: usize, kind: u8) {
    let captured = data.len();
    if kind == 139 {
        if captured == 12 {
            put!(p, " who-are-you request");
            return;
        }
        put!(p, " node information query");
        if captured < 16 {
            put!(p, " [|icmp6]");
            return;
        }
        let qtype = u16::from_be_bytes([data[8], data[9]]);
        let flags = u16::from_be_bytes([data[10], data[11]]);
        put!(p, " (");
        match qtype {
            0 => put!(p, "noop"),
            1 => {
                put!(p, "supported qtypes");
                if flags != 0 {
                    put!(p, " [{}]", if flags & 1 != 0 { "C" } else { "" });
                }
            }
            2 => put!(p, "DNS name"),
            3 => put!(p, "node addresses"),
            _ => put!(p, "unknown"),
        }
        if qtype > 1 && captured == 16 {
            put!(p, ", 03 draft");
        }
        put!(p, ")");
    } else {
        if length > captured || captured < 16 {
            put!(p, " [|icmp6]");
            return;
        }
        put!(p, " node information reply (");
        match data[1] {
            1 => put!(p, "refused"),
            2 => put!(p, "unknown"),
            _ => match u16::from_be_bytes([data[8], data[9]]) {
                0 => put!(p, "noop"),
                1 => put!(p, "supported qtypes"),
                2 => put!(p, "DNS name"),
                3 => put!(p, "node addresses"),
                _ => put!(p, "unknown"),
            },
        }
        put!(p, ")");
    }
}

/// MLDv1's delay and address, when all of it was captured.
fn mld(p: &mut Printer, data: &[u8]) -> Step {
    if data.len() < 24 {
        return Ok(());
    }
    put!(p, "max resp delay: {} addr: {}", u16_at(data, 4)?, ipv6_at(data, 8)?);
    Ok(())
}

/// The transport protocol and its offset in a quoted IPv6 packet, past its
/// extension headers.
fn upper_layer(packet: &[u8]) -> Option<(u8, usize)> {
    let mut next = *packet.get(6)?;
    let mut at = 40;
    loop {
        match next {
            6 | 17 => {
                packet.get(at + 3)?;
                return Some((next, at));
            }
            0 | 43 | 60 => {
                next = *packet.get(at)?;
                at += (usize::from(*packet.get(at + 1)?) + 1) * 8;
            }
            44 => {
                if u16::from_be_bytes([*packet.get(at + 2)?, *packet.get(at + 3)?]) & 0xfff8 != 0 {
                    return None;
                }
                next = *packet.get(at)?;
                at += 8;
            }
            51 => {
                next = *packet.get(at)?;
                at += (usize::from(*packet.get(at + 1)?) + 2) * 4;
            }
            _ => return None,
        }
    }
}
