//! TCP: flags in tcpdump's order, sequence numbers absolute or relative per
//! conversation as tcpdump keeps them, options.

use std::collections::HashMap;

use super::ip::Ends;
use super::{Printer, Short, Step, bytes_at, put, u8_at, u16_at, u32_at};

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;
const URG: u8 = 0x20;

/// Conversations kept for relative numbers; past it the table starts over
/// (tcpdump's grows without bound).
const CONVERSATIONS_MAX: usize = 1 << 16;

/// tcpdump's relative TCP sequence numbers: each conversation's sequence and
/// acknowledgment bases, taken from its first packet with ACK set (printed
/// absolute, as tcpdump does; so is any later SYN, which starts over).
#[derive(Debug, Default)]
pub struct TcpSeqs {
    relative: bool,
    /// (lower end, higher end) → (sequence base of the lower end's packets,
    /// acknowledgment base).
    conversations: HashMap<(String, u16, String, u16), (u32, u32)>,
}

/// What `TcpSeqs::adjust` gives: the numbers to print, and the bases SACK
/// blocks are made relative with.
struct Adjusted {
    seq: u32,
    ack: u32,
    /// The base to take from a SACK block's edges (they acknowledge the
    /// other end's numbers).
    sack_base: u32,
}

impl TcpSeqs {
    pub fn absolute() -> TcpSeqs {
        TcpSeqs::default()
    }

    pub fn relative() -> TcpSeqs {
        TcpSeqs { relative: true, ..TcpSeqs::default() }
    }

    fn adjust(&mut self, ends: &Ends, sport: u16, dport: u16, flags: u8, seq: u32, ack: u32) -> Adjusted {
        if !self.relative || flags & ACK == 0 {
            return Adjusted { seq, ack, sack_base: 0 };
        }
        let from = (ends.source.as_str(), sport);
        let to = (ends.destination.as_str(), dport);
        let reversed = from > to;
        let (low, high) = if reversed { (to, from) } else { (from, to) };
        let key = (low.0.to_string(), low.1, high.0.to_string(), high.1);
        if flags & SYN != 0 || !self.conversations.contains_key(&key) {
            if self.conversations.len() >= CONVERSATIONS_MAX {
                self.conversations.clear();
            }
            let bases = if reversed { (ack.wrapping_sub(1), seq) } else { (seq, ack.wrapping_sub(1)) };
            self.conversations.insert(key, bases);
            let sack_base = if reversed { bases.0 } else { bases.1 };
            return Adjusted { seq, ack, sack_base };
        }
        let (low_seq, low_ack) = self.conversations[&key];
        if reversed {
            Adjusted { seq: seq.wrapping_sub(low_ack), ack: ack.wrapping_sub(low_seq), sack_base: low_seq }
        } else {
            Adjusted { seq: seq.wrapping_sub(low_seq), ack: ack.wrapping_sub(low_ack), sack_base: low_ack }
        }
    }
}

pub(super) fn tcp(p: &mut Printer, data: &[u8], length: usize, ends: &Ends) -> Step {
    p.protocol = "tcp";
    let (Ok(sport), Ok(dport)) = (u16_at(data, 0), u16_at(data, 2)) else {
        put!(p, "{} > {}:", ends.source, ends.destination);
        return Err(Short);
    };
    ends.ports(p, 6, sport, dport);
    bytes_at(data, 0, 20)?;
    let header_len = usize::from(data[12] >> 4) * 4;
    if header_len < 20 {
        put!(p, " tcp {} [bad hdr length {header_len} - too short, < 20]", length.wrapping_sub(header_len) as u32);
        return Ok(());
    }
    let flags = data[13];
    let numbers = p.seqs.adjust(ends, sport, dport, flags, u32_at(data, 4)?, u32_at(data, 8)?);
    let window = u16_at(data, 14)?;
    let urgent = u16_at(data, 18)?;
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
    put!(p, "Flags [{names}]");
    if header_len > length {
        put!(p, " [bad hdr length {header_len} - too long, > {length}]");
        return Ok(());
    }
    let payload = length - header_len;
    if payload > 0 || flags & (SYN | FIN | RST) != 0 {
        put!(p, ", seq {}", numbers.seq);
        if payload > 0 {
            put!(p, ":{}", numbers.seq.wrapping_add(payload as u32));
        }
    }
    if flags & ACK != 0 {
        put!(p, ", ack {}", numbers.ack);
    }
    put!(p, ", win {window}");
    if flags & URG != 0 {
        put!(p, ", urg {urgent}");
    }
    if header_len > 20 {
        put!(p, ", options [");
        if !options(p, &data[20..], header_len - 20, numbers.sack_base)? {
            return Ok(());
        }
        put!(p, "]");
    }
    put!(p, ", length {payload}");
    if payload > 0 && data.len() < header_len {
        put!(p, " [remaining caplen({}) < header length({header_len})]", data.len());
        return Err(Short);
    }
    Ok(())
}

/// Where an option was cut short: in its kind or length byte (the packet's
/// text ends there), or in its value (tcpdump marks it and ends the options).
enum Cut {
    Header,
    Value,
}

impl From<Short> for Cut {
    fn from(_: Short) -> Cut {
        Cut::Value
    }
}

/// The options, as tcpdump prints them; false where it stops (a bad option,
/// or a value cut short, which it marks in its own way).
fn options(p: &mut Printer, data: &[u8], mut left: usize, sack_base: u32) -> Result<bool, Short> {
    let mut at = 0;
    let mut first = true;
    while left > 0 {
        match option(p, data, &mut at, &mut left, first, sack_base) {
            Ok(Some(true)) => first = false,
            Ok(Some(false)) => break,
            Ok(None) => {
                put!(p, "[bad opt]");
                if !first {
                    put!(p, "]");
                }
                return Ok(false);
            }
            Err(Cut::Header) => return Err(Short),
            Err(Cut::Value) => {
                put!(p, " [|tcp]");
                if !first {
                    put!(p, ">");
                }
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// One option: Some(true) to go on, Some(false) after end-of-list, None for
/// a bad length.
fn option(
    p: &mut Printer,
    data: &[u8],
    at: &mut usize,
    left: &mut usize,
    first: bool,
    sack_base: u32,
) -> Result<Option<bool>, Cut> {
    if !first {
        put!(p, ",");
    }
    let kind = u8_at(data, *at).map_err(|_| Cut::Header)?;
    *at += 1;
    let len = if kind <= 1 {
        1
    } else {
        let len = usize::from(u8_at(data, *at).map_err(|_| Cut::Header)?);
        *at += 1;
        if len < 2 || len > *left {
            return Ok(None);
        }
        *left -= 1;
        len
    };
    *left -= 1;
    let name = match kind {
        0 => "eol",
        1 => "nop",
        2 => "mss",
        3 => "wscale",
        4 => "sackOK",
        5 => "sack",
        6 => "echo",
        7 => "echoreply",
        8 => "TS",
        11 => "cc",
        12 => "ccnew",
        13 => "",
        19 => "md5",
        20 => "scps",
        28 => "uto",
        29 => "tcp-ao",
        30 => "mptcp",
        34 => "tfo",
        254 => "exp",
        _ => "",
    };
    if name.is_empty() && kind != 13 {
        put!(p, "unknown-{kind}");
    } else {
        put!(p, "{name}");
    }
    let body = |need: usize, left: usize| -> Result<Option<&[u8]>, Short> {
        if need > left {
            return Ok(None);
        }
        bytes_at(data, *at, need).map(Some)
    };
    let datalen = match kind {
        0 | 1 | 4 => 0,
        2 => match body(2, *left)? {
            Some(b) => {
                put!(p, " {}", u16::from_be_bytes([b[0], b[1]]));
                2
            }
            None => return Ok(None),
        },
        3 => match body(1, *left)? {
            Some(b) => {
                put!(p, " {}", b[0]);
                1
            }
            None => return Ok(None),
        },
        5 => {
            let datalen = len - 2;
            if datalen % 8 != 0 {
                put!(p, " invalid sack");
            } else {
                put!(p, " {} ", datalen / 8);
                for i in (0..datalen).step_by(8) {
                    let Some(start) = body(i + 4, *left)? else { return Ok(None) };
                    let start = u32::from_be_bytes(start[i..i + 4].try_into().unwrap_or([0; 4]));
                    let Some(end) = body(i + 8, *left)? else { return Ok(None) };
                    let end = u32::from_be_bytes(end[i + 4..i + 8].try_into().unwrap_or([0; 4]));
                    put!(p, "{{{}:{}}}", start.wrapping_sub(sack_base), end.wrapping_sub(sack_base));
                }
            }
            datalen
        }
        6 | 7 | 11 | 12 | 13 => match body(4, *left)? {
            Some(b) => {
                put!(p, " {}", u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                4
            }
            None => return Ok(None),
        },
        8 => match body(8, *left)? {
            Some(b) => {
                put!(
                    p,
                    " val {} ecr {}",
                    u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                    u32::from_be_bytes([b[4], b[5], b[6], b[7]])
                );
                8
            }
            None => return Ok(None),
        },
        _ => {
            let datalen = len - 2;
            if kind == 30 || kind == 34 || kind == 254 || kind == 19 || kind == 29 || kind == 28 || kind == 20 {
                // Decoded by tcpdump in ways netcap does not follow: its raw bytes.
                if body(datalen, *left)?.is_none() {
                    return Ok(None);
                }
            } else {
                if datalen > 0 {
                    put!(p, " 0x");
                }
                for i in 0..datalen {
                    let Some(b) = body(i + 1, *left)? else { return Ok(None) };
                    put!(p, "{:02x}", b[i]);
                }
            }
            datalen
        }
    };
    *at += datalen;
    *left -= datalen;
    let counted = datalen + if kind <= 1 { 1 } else { 2 };
    if counted != len {
        put!(p, "[len {len}]");
    }
    Ok(Some(kind != 0))
}
