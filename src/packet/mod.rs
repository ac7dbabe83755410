//! netcap's own packet decoder: captured bytes → the text `tcpdump -nn`
//! (4.99) prints for them, tunnels and malformed packets included.
//!
//! The decoder works as tcpdump's printers do: each layer knows the bytes
//! captured from its header on and the length the packet claims from there
//! (the wire length, cut to what the layer below says it carries), and a
//! read past the captured bytes ends the text with ` [|proto]`, naming the
//! layer that was reading — here an `Err(Short)` that `?` carries to the top.
//!
//! Layers, one module each: `link` (Ethernet, VLAN tags, LLC, ARP, STP,
//! LLDP, PTP), `ip` (IPv4, IPv6 and its extension headers, the protocol
//! demultiplexer, IP in IP), `tcp`, `udp` (and what its ports carry),
//! `icmp` (ICMP and ICMPv6), `tunnel` (VXLAN, OTV, Geneve, GRE), `dns`,
//! `app` (DHCP, NTP), `routing` (IGMP, PIM, OSPF, VRRP, ESP, AH, SCTP).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::event::Link;

mod app;
mod dns;
mod headers;
mod icmp;
mod ip;
mod link;
mod routing;
mod tcp;
mod tunnel;
mod udp;

pub use headers::headers;
pub use tcp::TcpSeqs;

/// A read past the captured bytes: the current layer's text ends in
/// ` [|proto]`.
#[derive(Debug)]
pub(crate) struct Short;

type Step = Result<(), Short>;

/// The text being written and what the layers share.
pub(crate) struct Printer<'s> {
    out: String,
    /// The layer reading now, named in a truncation mark.
    protocol: &'static str,
    seqs: &'s mut TcpSeqs,
    /// One line: what tcpdump puts on a line of its own (a tunnel's inner
    /// packet) follows after a space, and hex dumps are left out.
    one_line: bool,
}

impl Printer<'_> {
    /// tcpdump's line break inside one packet's text.
    fn newline(&mut self) {
        self.out.push(if self.one_line { ' ' } else { '\n' });
    }

    /// tcpdump's `(invalid)` mark.
    fn invalid(&mut self) {
        self.out.push_str(" (invalid)");
    }

    /// `bytes` as tcpdump's default printer shows what it cannot decode:
    /// hex and ASCII, 16 bytes a line.
    fn hex_and_ascii(&mut self, bytes: &[u8]) {
        if self.one_line {
            return;
        }
        for (line, chunk) in bytes.chunks(16).enumerate() {
            let mut hex = String::new();
            for pair in chunk.chunks(2) {
                hex.push(' ');
                for byte in pair {
                    let _ = write!(hex, "{byte:02x}");
                }
            }
            let ascii: String =
                chunk.iter().map(|&b| if (0x21..0x7f).contains(&b) { b as char } else { '.' }).collect();
            let _ = write!(self.out, "\n\t0x{:04x}: {hex:<40}  {ascii}", line * 16);
        }
    }

    /// `bytes` as tcpdump prints unknown data: hex only.
    fn hex(&mut self, bytes: &[u8]) {
        if self.one_line {
            return;
        }
        for (line, chunk) in bytes.chunks(16).enumerate() {
            let _ = write!(self.out, "\n\t0x{:04x}: ", line * 16);
            for pair in chunk.chunks(2) {
                self.out.push(' ');
                for byte in pair {
                    let _ = write!(self.out, "{byte:02x}");
                }
            }
        }
    }
}

/// `write!` into the printer's text (writing into a String cannot fail).
macro_rules! put {
    ($p:expr, $($arg:tt)*) => {{
        let _ = ::std::fmt::Write::write_fmt(&mut $p.out, format_args!($($arg)*));
    }};
}
pub(crate) use put;

#[cfg(test)]
/// Decodes a captured packet into one line of tcpdump-like text: a tunnel's
/// inner packet on the same line, absolute TCP numbers.
pub fn describe(link: Link, data: &[u8]) -> String {
    summary(link, data, data.len())
}

/// The same for an event (live output, JSON): `wire_len` is the packet's
/// whole length, of which `data` may be the start.
pub fn summary(link: Link, data: &[u8], wire_len: usize) -> String {
    describe_packet(link, data, wire_len, &mut TcpSeqs::absolute(), true)
}

/// The same with the packet's length on the wire (`wire_len`, at least what
/// was captured), TCP sequence numbers as `seqs` says, and, unless
/// `one_line`, tcpdump's line breaks and hex dumps.
pub fn describe_packet(link: Link, data: &[u8], wire_len: usize, seqs: &mut TcpSeqs, one_line: bool) -> String {
    let mut p = Printer { out: String::new(), protocol: "", seqs, one_line };
    let wire_len = wire_len.max(data.len());
    let result = match link {
        Link::Ethernet => link::ether(&mut p, data, wire_len),
        Link::Raw => match data.first().map(|b| b >> 4) {
            Some(6) => ip::ipv6(&mut p, data, wire_len),
            _ => ip::ipv4(&mut p, data, wire_len),
        },
    };
    if result.is_err() {
        put!(p, " [|{}]", p.protocol);
    }
    p.out
}

fn u8_at(data: &[u8], at: usize) -> Result<u8, Short> {
    data.get(at).copied().ok_or(Short)
}

fn u16_at(data: &[u8], at: usize) -> Result<u16, Short> {
    Ok(u16::from_be_bytes(bytes_at(data, at, 2)?.try_into().map_err(|_| Short)?))
}

fn u24_at(data: &[u8], at: usize) -> Result<u32, Short> {
    let b = bytes_at(data, at, 3)?;
    Ok(u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]))
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, Short> {
    Ok(u32::from_be_bytes(bytes_at(data, at, 4)?.try_into().map_err(|_| Short)?))
}

fn bytes_at(data: &[u8], at: usize, len: usize) -> Result<&[u8], Short> {
    data.get(at..at.checked_add(len).ok_or(Short)?).ok_or(Short)
}

fn ipv4_at(data: &[u8], at: usize) -> Result<Ipv4Addr, Short> {
    Ok(Ipv4Addr::from(u32_at(data, at)?))
}

fn ipv6_at(data: &[u8], at: usize) -> Result<Ipv6Addr, Short> {
    Ok(Ipv6Addr::from(<[u8; 16]>::try_from(bytes_at(data, at, 16)?).map_err(|_| Short)?))
}

/// What lies past `at`, empty when nothing does.
fn rest(data: &[u8], at: usize) -> &[u8] {
    &data[at.min(data.len())..]
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    u16_at(data, at).ok()
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    u32_at(data, at).ok()
}

fn mac(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Printable text as tcpdump's `nd_printn` shows it: `M-` for the high bit,
/// `^X` for control characters.
fn printable(out: &mut String, bytes: &[u8]) {
    for &byte in bytes {
        let mut c = byte;
        if c & 0x80 != 0 {
            out.push_str("M-");
            c &= 0x7f;
        }
        if c < 0x20 || c == 0x7f {
            out.push('^');
            out.push((c ^ 0x40) as char);
        } else {
            out.push(c as char);
        }
    }
}

#[cfg(test)]
pub mod tests;
