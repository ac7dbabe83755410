//! Tunnels, the outer header then the inner packet as tcpdump prints them:
//! VXLAN and OTV (UDP 4789 and 8472: the inner frame on a line of its own),
//! Geneve and GRE (on the same line, after `: `).

use super::link::{self, ETH_P_IP, ETH_P_IPV6, ETH_P_TEB};
use super::{Printer, Short, Step, ip, put, rest, u8_at, u16_at, u24_at, u32_at};

pub(super) fn vxlan(p: &mut Printer, data: &[u8], length: usize) -> Step {
    p.protocol = "vxlan";
    put!(p, "VXLAN");
    if length < 8 {
        p.invalid();
        return Ok(());
    }
    let flags = u8_at(data, 0)?;
    put!(p, ", flags [{}] (0x{flags:02x}), ", if flags & 0x08 != 0 { "I" } else { "invalid" });
    put!(p, "vni {}", u24_at(data, 4)?);
    p.newline();
    u8_at(data, 7)?;
    link::ether(p, rest(data, 8), length - 8)
}

/// OTV, which tcpdump finds on 8472, Linux's own VXLAN port: the same
/// header read as an overlay and an instance.
pub(super) fn otv(p: &mut Printer, data: &[u8], length: usize) -> Step {
    p.protocol = "otv";
    put!(p, "OTV, ");
    if length < 8 {
        put!(p, "[length {length} < 8]");
        p.invalid();
        return Ok(());
    }
    let flags = u8_at(data, 0)?;
    put!(p, "flags [{}] (0x{flags:02x}), ", if flags & 0x08 != 0 { "I" } else { "." });
    put!(p, "overlay {}, ", u24_at(data, 1)?);
    put!(p, "instance {}", u24_at(data, 4)?);
    p.newline();
    u8_at(data, 7)?;
    link::ether(p, rest(data, 8), length - 8)
}

pub(super) fn geneve(p: &mut Printer, data: &[u8], length: usize) -> Step {
    p.protocol = "geneve";
    put!(p, "Geneve");
    if length < 8 {
        put!(p, " [length {length} < 8]");
        p.invalid();
        return Ok(());
    }
    u32_at(data, 4)?;
    let first = data[0];
    let version = first >> 6;
    if version != 0 {
        put!(p, " ERROR: unknown-version {version}");
        return Ok(());
    }
    let flags = data[1];
    let kind = u16_at(data, 2)?;
    let names: String =
        [(0x80, "O"), (0x40, "C"), (0x20, "R1"), (0x10, "R2"), (0x08, "R3"), (0x04, "R4"), (0x02, "R5"), (0x01, "R6")]
            .iter()
            .filter(|(bit, _)| flags & bit != 0)
            .map(|(_, name)| *name)
            .collect();
    put!(p, ", Flags [{}]", if names.is_empty() { "none" } else { &names });
    put!(p, ", vni 0x{:x}", u24_at(data, 4)?);
    if data[7] != 0 {
        put!(p, ", rsvd 0x{:x}", data[7]);
    }
    let options = usize::from(first & 0x3f) * 4;
    let left = length - 8;
    if left < options {
        put!(p, " truncated-geneve - {} bytes missing", options - left);
        return Ok(());
    }
    super::bytes_at(data, 8, options)?;
    if options > 0 {
        put!(p, ", options [{options} bytes]");
    }
    put!(p, ": ");
    let (inner, length) = (rest(data, 8 + options), left - options);
    if !link::ethertype(p, kind, inner, length)? {
        if kind == ETH_P_TEB {
            link::ether(p, inner, length)?;
        } else {
            put!(p, "geneve-proto-0x{kind:x}");
        }
    }
    Ok(())
}

pub(super) fn gre(p: &mut Printer, data: &[u8], length: usize) -> Step {
    p.protocol = "gre";
    let flags = u16_at(data, 0)?;
    if length < 2 {
        return Err(Short);
    }
    let version = flags & 7;
    put!(p, "GREv{version}");
    match version {
        0 => {}
        1 => {
            put!(p, ", length {length}");
            return Ok(());
        }
        _ => {
            put!(p, " ERROR: unknown-version");
            return Ok(());
        }
    }
    let mut left = length - 2;
    let kind = u16_at(data, 2)?;
    if left < 2 {
        return Err(Short);
    }
    left -= 2;
    let mut at = 4;
    let field = |size: usize, left: &mut usize, at: &mut usize| -> Result<u32, Short> {
        let value = if size == 2 { u32::from(u16_at(data, *at)?) } else { u32_at(data, *at)? };
        if *left < size {
            return Err(Short);
        }
        *at += size;
        *left -= size;
        Ok(value)
    };
    if flags & 0xc000 != 0 {
        field(2, &mut left, &mut at)?;
        let offset = field(2, &mut left, &mut at)?;
        put!(p, ", off 0x{offset:x}");
    }
    if flags & 0x2000 != 0 {
        let key = field(4, &mut left, &mut at)?;
        put!(p, ", key=0x{key:x}");
    }
    if flags & 0x1000 != 0 {
        let seq = field(4, &mut left, &mut at)?;
        put!(p, ", seq {seq}");
    }
    if flags & 0x4000 != 0 {
        // Source routes: netcap walks past them without printing them.
        loop {
            let family = field(2, &mut left, &mut at)?;
            u8_at(data, at)?;
            let sre_length = usize::from(u8_at(data, at + 1)?);
            field(2, &mut left, &mut at)?;
            if family == 0 && sre_length == 0 {
                break;
            }
            if left < sre_length {
                return Err(Short);
            }
            at += sre_length;
            left -= sre_length;
        }
    }
    put!(p, ", length {length}: ");
    let inner = rest(data, at);
    match kind {
        ETH_P_IP => ip::ipv4(p, inner, left),
        ETH_P_IPV6 => ip::ipv6(p, inner, left),
        ETH_P_TEB => link::ether(p, inner, left),
        other => {
            put!(p, "gre-proto-0x{other:x}");
            Ok(())
        }
    }
}
