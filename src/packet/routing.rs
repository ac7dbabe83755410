//! The protocols IP carries beside TCP and UDP, at tcpdump's default
//! verbosity: IGMP, PIM, OSPF, VRRP, SCTP, and IPsec's ESP and AH.

use super::ip::Ends;
use super::{Printer, Step, bytes_at, ipv4_at, put, u8_at, u16_at, u32_at};

pub(super) fn igmp(p: &mut Printer, data: &[u8], length: usize) -> Step {
    p.protocol = "igmp";
    let kind = u8_at(data, 0)?;
    match kind {
        0x11 => {
            put!(p, "igmp query");
            if length >= 12 {
                put!(p, " v3");
                if length & 3 != 0 {
                    put!(p, " [invalid len {length}]");
                    return Ok(());
                }
                let code = u8_at(data, 1)?;
                let time = if code < 128 {
                    u32::from(code)
                } else {
                    (u32::from(code & 0x0f) | 0x10) << ((u32::from(code & 0x70) >> 4) + 3)
                };
                if code != 100 {
                    if time < 600 {
                        put!(p, " [max resp time {}.{}s]", time / 10, time % 10);
                    } else {
                        put!(p, " [max resp time {}]", relative_time(time / 10));
                    }
                }
                let group = u32_at(data, 4)?;
                if group == 0 {
                    return Ok(());
                }
                put!(p, " [gaddr {}", ipv4_at(data, 4)?);
                let sources = u16_at(data, 10)?;
                if sources > 0 {
                    if length < 12 + usize::from(sources) * 4 {
                        put!(p, " [invalid number of sources]");
                    } else {
                        put!(p, ", {sources} source(s)");
                    }
                }
                put!(p, "]");
            } else {
                let time = u8_at(data, 1)?;
                if time != 0 {
                    put!(p, " v2");
                    if time != 100 {
                        put!(p, " [max resp time {time}]");
                    }
                } else {
                    put!(p, " v1");
                }
                if u32_at(data, 4)? != 0 {
                    put!(p, " [gaddr {}]", ipv4_at(data, 4)?);
                }
                if length != 8 {
                    put!(p, " [len {length}]");
                }
            }
        }
        0x12 => {
            put!(p, "igmp v1 report {}", ipv4_at(data, 4)?);
            if length != 8 {
                put!(p, " [len {length}]");
            }
        }
        0x16 => put!(p, "igmp v2 report {}", ipv4_at(data, 4)?),
        0x22 => {
            put!(p, "igmp v3 report");
            if length < 16 || length & 3 != 0 {
                put!(p, " [invalid len {length}]");
            } else {
                put!(p, ", {} group record(s)", u16_at(data, 6)?);
            }
        }
        0x17 => put!(p, "igmp leave {}", ipv4_at(data, 4)?),
        other => put!(p, "igmp-{other}"),
    }
    Ok(())
}

/// tcpdump's "1h2m3s" for a number of seconds.
fn relative_time(mut seconds: u32) -> String {
    if seconds == 0 {
        return "0s".into();
    }
    let mut text = String::new();
    for (unit, letter) in [(86400 * 365, 'y'), (86400 * 7, 'w'), (86400, 'd'), (3600, 'h'), (60, 'm'), (1, 's')] {
        if seconds >= unit {
            text += &format!("{}{letter}", seconds / unit);
            seconds %= unit;
        }
    }
    text
}

pub(super) fn pim(p: &mut Printer, data: &[u8], length: usize) -> Step {
    p.protocol = "pim";
    let first = u8_at(data, 0)?;
    let version = first >> 4;
    if version != 2 {
        put!(p, "PIMv{version}, length {length}");
        return Ok(());
    }
    let names = [
        "Hello",
        "Register",
        "Register Stop",
        "Join / Prune",
        "Bootstrap",
        "Assert",
        "Graft",
        "Graft Acknowledgement",
        "Candidate RP Advertisement",
        "Prune Refresh",
        "DF Election",
        "ECMP Redirect",
    ];
    let name = names.get(usize::from(first & 0x0f)).copied().unwrap_or("Unknown Type");
    put!(p, "PIMv2, {name}, length {length}");
    Ok(())
}

pub(super) fn ospf(p: &mut Printer, data: &[u8], length: usize) -> Step {
    p.protocol = "ospf2";
    // An MD5 trailer is not part of the message.
    let length = if u16_at(data, 14)? == 2 { length.saturating_sub(16) } else { length };
    let version = u8_at(data, 0)?;
    let kind = u8_at(data, 1)?;
    let name = match kind {
        1 => "Hello".to_string(),
        2 => "Database Description".into(),
        3 => "LS-Request".into(),
        4 => "LS-Update".into(),
        5 => "LS-Ack".into(),
        other => format!("unknown LS-type {other}"),
    };
    put!(p, "OSPFv{version}, {name}, length {length}");
    Ok(())
}

pub(super) fn vrrp(p: &mut Printer, data: &[u8], length: usize, ends: &Ends) -> Step {
    p.protocol = "vrrp";
    put!(p, "VRRP");
    let first = u8_at(data, 0)?;
    let (version, kind) = (first >> 4, first & 0x0f);
    put!(p, "v{version}, {}", if kind == 1 { "Advertisement".to_string() } else { format!("unknown type ({kind})") });
    if ends.ttl != 255 {
        put!(p, ", (ttl {})", ends.ttl);
    }
    if !(2..=3).contains(&version) || kind != 1 {
        return Ok(());
    }
    put!(p, ", vrid {}, prio {}", u8_at(data, 1)?, u8_at(data, 2)?);
    if version == 2 {
        let auth = match u8_at(data, 4)? {
            0 => "none",
            1 => "simple",
            2 => "ah",
            _ => "(null)",
        };
        put!(p, ", authtype {auth}");
        put!(p, ", intvl {}s, length {length}", u8_at(data, 5)?);
    } else {
        let interval = u16::from(u8_at(data, 4)? & 0x0f) << 8 | u16::from(u8_at(data, 5)?);
        put!(p, ", intvl {interval}cs, length {length}");
    }
    Ok(())
}

pub(super) fn sctp(p: &mut Printer, data: &[u8], length: usize, ends: &Ends) -> Step {
    p.protocol = "sctp";
    if length < 12 {
        put!(p, "truncated-sctp - {} bytes missing!", 12 - length);
        return Ok(());
    }
    bytes_at(data, 0, 12)?;
    put!(p, "{}.{} > {}.{}: sctp", ends.source, u16_at(data, 0)?, ends.destination, u16_at(data, 2)?);
    Ok(())
}

pub(super) fn esp(p: &mut Printer, data: &[u8], length: usize) -> Step {
    p.protocol = "esp";
    if data.len() <= 8 {
        return Err(super::Short);
    }
    put!(p, "ESP(spi=0x{:08x}", u32_at(data, 0)?);
    put!(p, ",seq=0x{:x}), length {length}", u32_at(data, 4)?);
    Ok(())
}

/// The authentication header; returns its length, the next header's offset.
pub(super) fn ah(p: &mut Printer, data: &[u8]) -> Result<usize, super::Short> {
    p.protocol = "ah";
    put!(p, "AH");
    let length = (usize::from(u8_at(data, 1)?) + 2) * 4;
    put!(p, "(");
    let reserved = u16_at(data, 2)?;
    if reserved != 0 {
        put!(p, "reserved=0x{reserved:x}[MustBeZero],");
    }
    put!(p, "spi=0x{:08x},", u32_at(data, 4)?);
    put!(p, "seq=0x{:x},", u32_at(data, 8)?);
    put!(p, "icv=0x");
    for at in 12..length {
        put!(p, "{:02x}", u8_at(data, at)?);
    }
    put!(p, "): ");
    Ok(length)
}
