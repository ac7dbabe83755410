//! UDP, and what tcpdump finds by port: DNS, DHCP, NTP, PTP, VXLAN, OTV
//! and Geneve.

use super::ip::Ends;
use super::{Printer, Short, Step, app, dns, link, put, rest, tunnel, u16_at};

pub(super) fn udp(p: &mut Printer, data: &[u8], length: usize, ends: &Ends, fragmented: bool) -> Step {
    p.protocol = "udp";
    let (Ok(sport), Ok(dport)) = (u16_at(data, 0), u16_at(data, 2)) else {
        ends.addresses(p, 17);
        return Err(Short);
    };
    if length < 8 {
        ends.ports(p, 17, sport, dport);
        put!(p, "truncated-udp {length}");
        return Ok(());
    }
    let Ok(claimed) = u16_at(data, 4) else {
        ends.ports(p, 17, sport, dport);
        return Err(Short);
    };
    let mut claimed = usize::from(claimed);
    // A jumbogram's length is the IPv6 payload's.
    if claimed == 0 && length > 65535 {
        claimed = length;
    }
    if claimed < 8 {
        ends.ports(p, 17, sport, dport);
        put!(p, "truncated-udplength {claimed}");
        return Ok(());
    }
    let claimed = claimed - 8;
    let length = (length - 8).min(claimed);
    if data.len() < 8 {
        ends.ports(p, 17, sport, dport);
        return Err(Short);
    }
    ends.ports(p, 17, sport, dport);
    let payload = rest(data, 8);
    let port = |n: u16| sport == n || dport == n;
    if port(53) {
        dns::dns(p, payload, length, false)
    } else if port(5353) {
        dns::dns(p, payload, length, true)
    } else if port(67) || port(68) {
        app::bootp(p, payload, length)
    } else if port(123) {
        app::ntp(p, payload, length)
    } else if port(8472) {
        tunnel::otv(p, payload, length)
    } else if port(4789) {
        tunnel::vxlan(p, payload, length)
    } else if port(6081) {
        tunnel::geneve(p, payload, length)
    } else if port(319) || port(320) {
        link::ptp(p, payload, length)
    } else {
        if claimed > length && !fragmented {
            put!(p, "UDP, bad length {claimed} > {length}");
        } else {
            put!(p, "UDP, length {claimed}");
        }
        Ok(())
    }
}
