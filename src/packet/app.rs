//! What UDP carries on well-known ports, at tcpdump's default verbosity:
//! BOOTP/DHCP and NTP.

use super::{Printer, Step, bytes_at, mac, put, u8_at};

pub(super) fn bootp(p: &mut Printer, data: &[u8], length: usize) -> Step {
    p.protocol = "bootp";
    let op = u8_at(data, 0)?;
    match op {
        1 => put!(p, "BOOTP/DHCP, Request"),
        2 => put!(p, "BOOTP/DHCP, Reply"),
        other => put!(p, "BOOTP/DHCP, unknown (0x{other:02x})"),
    }
    let (hardware, hardware_len) = (u8_at(data, 1)?, u8_at(data, 2)?);
    if hardware == 1 && hardware_len == 6 && op == 1 {
        put!(p, " from {}", mac(bytes_at(data, 28, 6)?));
    }
    put!(p, ", length {length}");
    Ok(())
}

pub(super) fn ntp(p: &mut Printer, data: &[u8], length: usize) -> Step {
    p.protocol = "ntp";
    let status = u8_at(data, 0)?;
    let mode = match status & 7 {
        0 => "unspecified",
        1 => "symmetric active",
        2 => "symmetric passive",
        3 => "Client",
        4 => "Server",
        5 => "Broadcast",
        6 => "Control Message",
        _ => "Reserved",
    };
    put!(p, "NTPv{}, {mode}, length {length}", status >> 3 & 7);
    Ok(())
}
