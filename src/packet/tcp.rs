//! TCP: flags in tcpdump's order, sequence numbers absolute or relative per
//! conversation as tcpdump keeps them, options.

use std::collections::HashMap;
use std::net::IpAddr;

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
    conversations: HashMap<(IpAddr, u16, IpAddr, u16), (u32, u32)>,
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
        let from = (ends.source, sport);
        let to = (ends.destination, dport);
        let reversed = from > to;
        let (low, high) = if reversed { (to, from) } else { (from, to) };
        let key = (low.0, low.1, high.0, high.1);
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
        if !options(p, &data[20..], header_len - 20, numbers.sack_base, flags)? {
            return Ok(());
        }
        put!(p, "]");
    }
    put!(p, ", length {payload}");
    if payload == 0 {
        return Ok(());
    }
    if data.len() < header_len {
        put!(p, " [remaining caplen({}) < header length({header_len})]", data.len());
        return Err(Short);
    }
    // What tcpdump names by port, where netcap follows it.
    let body = &data[header_len..];
    let port = |n: u16| sport == n || dport == n;
    if port(179) {
        p.protocol = "bgp";
        put!(p, ": BGP");
    } else if port(22) {
        ssh_version(p, body, payload)?;
    } else if port(80) || port(8080) {
        put!(p, ": ");
        http(p, body, payload)?;
    } else if port(53) {
        dns_over_tcp(p, body, payload)?;
    }
    Ok(())
}

/// SSH's version line, when the segment starts with one (a byte past the
/// capture ends the text, as tcpdump reads byte by byte).
fn ssh_version(p: &mut Printer, body: &[u8], length: usize) -> Step {
    p.protocol = "ssh";
    for (at, &want) in b"SSH-".iter().enumerate() {
        if u8_at(body, at)? != want {
            return Ok(());
        }
    }
    if let Line::Ends(end) = text_line(body, 4, length, false)? {
        put!(p, ": SSH: {}", String::from_utf8_lossy(&body[..end]));
    }
    Ok(())
}

/// How a line of text from `at` ends.
enum Line {
    /// Before "\n" or "\r\n", at this offset.
    Ends(usize),
    /// A byte that is not text.
    NotText,
    /// At the end of the segment, with no line end.
    Unended(usize),
}

/// Reads a line of printable ASCII (with tabs, if `tabs`) as tcpdump does,
/// byte by byte: a byte past the capture is `Short`.
fn text_line(body: &[u8], mut at: usize, length: usize, tabs: bool) -> Result<Line, Short> {
    while at < length {
        let c = u8_at(body, at)?;
        if c == b'\n' || (c == b'\r' && at + 1 < length && u8_at(body, at + 1)? == b'\n') {
            return Ok(Line::Ends(at));
        }
        if c == b'\r' || !((0x20..0x7f).contains(&c) || (tabs && c == b'\t')) {
            return Ok(Line::NotText);
        }
        at += 1;
    }
    Ok(Line::Unended(at))
}

/// HTTP's request methods, as tcpdump knows them.
const HTTP_METHODS: [&str; 38] = [
    "GET",
    "PUT",
    "COPY",
    "HEAD",
    "LOCK",
    "MOVE",
    "POLL",
    "POST",
    "BCOPY",
    "BMOVE",
    "MKCOL",
    "TRACE",
    "LABEL",
    "MERGE",
    "DELETE",
    "SEARCH",
    "UNLOCK",
    "REPORT",
    "UPDATE",
    "NOTIFY",
    "BDELETE",
    "CONNECT",
    "OPTIONS",
    "CHECKIN",
    "PROPFIND",
    "CHECKOUT",
    "CCM_POST",
    "SUBSCRIBE",
    "PROPPATCH",
    "BPROPFIND",
    "BPROPPATCH",
    "UNCHECKOUT",
    "MKACTIVITY",
    "MKWORKSPACE",
    "UNSUBSCRIBE",
    "RPC_CONNECT",
    "VERSION-CONTROL",
    "BASELINE-CONTROL",
];

/// HTTP: its name, and a request's or response's first line (a segment
/// in the middle of a body shows the name only).
fn http(p: &mut Printer, body: &[u8], length: usize) -> Step {
    p.protocol = "http";
    let first = token(body, 0, length);
    let mut wanted = first.is_some_and(|(word, _)| HTTP_METHODS.iter().any(|m| m.eq_ignore_ascii_case(word)));
    // A response: the second word is a three-digit status.
    if let Some((_, next)) = first.filter(|_| !wanted) {
        wanted = token(body, next, length)
            .is_some_and(|(word, _)| word.len() == 3 && word.bytes().all(|b| b.is_ascii_digit()));
    }
    put!(p, "HTTP");
    if !wanted {
        return Ok(());
    }
    // The first line, when it is printable text; one the segment cuts off
    // is shown as far as it goes, and marked.
    match text_line(body, 0, length, true)? {
        Line::Ends(end) => put!(p, ": {}", String::from_utf8_lossy(&body[..end])),
        Line::NotText => {}
        Line::Unended(end) => {
            put!(p, ": {}", String::from_utf8_lossy(&body[..end]));
            return Err(Short);
        }
    }
    Ok(())
}

/// A word of printable ASCII at `at` (ending at white space), and where the
/// next one starts; None when there is none or it is not text.
fn token(body: &[u8], mut at: usize, length: usize) -> Option<(&str, usize)> {
    let start = at;
    while at < length {
        let c = *body.get(at)?;
        if !c.is_ascii() {
            return None;
        }
        if matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
            break;
        }
        if !(0x20..0x7f).contains(&c) {
            return None;
        }
        at += 1;
    }
    if at == start {
        return None;
    }
    let word = std::str::from_utf8(&body[start..at]).ok()?;
    while at < length {
        match body.get(at) {
            Some(b' ' | b'\t') => at += 1,
            _ => break,
        }
    }
    Some((word, at))
}

/// DNS over TCP: a two-byte length, then the message.
fn dns_over_tcp(p: &mut Printer, body: &[u8], length: usize) -> Step {
    p.protocol = "domain";
    if length < 2 {
        put!(p, " [DNS over TCP: length {length} < 2]");
        p.invalid();
        return Ok(());
    }
    let prefix = usize::from(u16_at(body, 0)?);
    if prefix != length - 2 {
        put!(p, " [prefix length({prefix}) != length({})]", length - 2);
        p.invalid();
        return Ok(());
    }
    put!(p, " ");
    super::dns::dns(p, &body[2..], length - 2, false)
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
fn options(p: &mut Printer, data: &[u8], mut left: usize, sack_base: u32, flags: u8) -> Result<bool, Short> {
    let mut at = 0;
    let mut first = true;
    while left > 0 {
        match option(p, data, &mut at, &mut left, first, sack_base, flags) {
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
    flags: u8,
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
            if kind == 30 || kind == 34 || kind == 254 {
                let Some(value) = body(datalen, *left)? else { return Ok(None) };
                let known = match kind {
                    30 => mptcp(p, &data[*at - 2..*at + datalen], flags),
                    34 => {
                        put!(p, " ");
                        fast_open(p, value);
                        true
                    }
                    _ => {
                        if datalen < 2 {
                            return Ok(None);
                        }
                        put!(p, "-");
                        if value[..2] == [0xf9, 0x89] {
                            put!(p, "tfo");
                            fast_open(p, &value[2..]);
                        } else {
                            put!(p, "{:02x}{:02x}", value[0], value[1]);
                        }
                        true
                    }
                };
                if !known {
                    return Ok(None);
                }
            } else if kind == 19 || kind == 29 || kind == 28 || kind == 20 {
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

/// A TCP Fast Open cookie, or its request.
fn fast_open(p: &mut Printer, cookie: &[u8]) {
    if cookie.is_empty() {
        put!(p, " cookiereq");
    } else if !cookie.len().is_multiple_of(2) || cookie.len() < 4 || cookie.len() > 16 {
        p.invalid();
    } else {
        put!(p, " cookie ");
        for byte in cookie {
            put!(p, "{byte:02x}");
        }
    }
}

/// A Multipath TCP option (`option`: from its kind byte), by subtype, as
/// tcpdump prints it; false for a length its subtype cannot have.
fn mptcp(p: &mut Printer, option: &[u8], flags: u8) -> bool {
    let len = option.len();
    if len < 3 {
        return false;
    }
    let be64 = |at: usize| option.get(at..at + 8).map(|b| u64::from_be_bytes(b.try_into().unwrap_or([0; 8])));
    let be32 = |at: usize| option.get(at..at + 4).map(|b| u32::from_be_bytes(b.try_into().unwrap_or([0; 4])));
    let subtype = (option[2] >> 4).min(8);
    let names = ["capable", "join", "dss", "add-addr", "rem-addr", "prio", "fail", "fast-close", "unknown"];
    put!(p, " {len} {}", names[usize::from(subtype)]);
    let (syn, ack) = (flags & SYN != 0, flags & ACK != 0);
    match subtype {
        0 => {
            if !(((len == 12 || len == 4) && syn) || ((len == 20 || len == 22) && ack && !syn)) {
                return false;
            }
            let version = option[2] & 0x0f;
            if version > 1 {
                put!(p, " Unknown Version ({version})");
                return true;
            }
            put!(p, " v{version}");
            if option.get(3).is_some_and(|f| f & 0x80 != 0) {
                put!(p, " csum");
            }
            if len == 12 || len >= 20 {
                put!(p, " {{0x{:x}", be64(4).unwrap_or(0));
                if len >= 20 {
                    put!(p, ",0x{:x}", be64(12).unwrap_or(0));
                }
                put!(p, "}}");
            }
        }
        1 => {
            if !((len == 12 && syn) || (len == 16 && syn && ack) || (len == 24 && ack)) {
                return false;
            }
            if len != 24 {
                if option[2] & 1 != 0 {
                    put!(p, " backup");
                }
                put!(p, " id {}", option.get(3).copied().unwrap_or(0));
            }
            match len {
                12 => put!(p, " token 0x{:x} nonce 0x{:x}", be32(4).unwrap_or(0), be32(8).unwrap_or(0)),
                16 => put!(p, " hmac 0x{:x} nonce 0x{:x}", be64(4).unwrap_or(0), be32(12).unwrap_or(0)),
                _ => {
                    put!(p, " hmac 0x");
                    for byte in &option[4..24] {
                        put!(p, "{byte:02x}");
                    }
                }
            }
        }
        2 => {
            if len < 4 || syn {
                return false;
            }
            let dss = option[3];
            if dss & 0x10 != 0 {
                put!(p, " fin");
            }
            let mut at = 4;
            // The data ack and sequence number: 8 bytes or 4, as the flags say.
            for (present, wide, name) in [(0x01, 0x02, "ack"), (0x04, 0x08, "seq")] {
                if dss & present == 0 {
                    continue;
                }
                let (value, size) = if dss & wide != 0 { (be64(at), 8) } else { (be32(at).map(u64::from), 4) };
                put!(p, " {name} ");
                let Some(value) = value else { return false };
                put!(p, "{value}");
                at += size;
            }
            if dss & 0x04 != 0 {
                let Some(subseq) = be32(at) else { return false };
                put!(p, " subseq {subseq}");
                at += 4;
                let Some(data_len) = option.get(at..at + 2) else { return false };
                put!(p, " len {}", u16::from_be_bytes([data_len[0], data_len[1]]));
                at += 2;
                if let Some(sum) = option.get(at..at + 2) {
                    put!(p, " csum 0x{:x}", u16::from_be_bytes([sum[0], sum[1]]));
                    at += 2;
                }
            }
            if at != len {
                return false;
            }
        }
        3 => {
            if ![8, 10, 16, 18, 20, 22, 28, 30].contains(&len) {
                return false;
            }
            let echo = match option[2] & 0x0f {
                6 => "v0-ip6",
                4 => "v0-ip4",
                1 => "v1-echo",
                0 => "v1",
                _ => "[bad version/echo]",
            };
            put!(p, " {echo} id {}", option.get(3).copied().unwrap_or(0));
            let port = |at: usize| option.get(at..at + 2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
            if len <= 18 {
                put!(p, " {}", std::net::Ipv4Addr::from(be32(4).unwrap_or(0)));
                match len {
                    10 => put!(p, ":{}", port(8)),
                    16 => put!(p, " hmac 0x{:x}", be64(8).unwrap_or(0)),
                    18 => put!(p, ":{} hmac 0x{:x}", port(8), be64(10).unwrap_or(0)),
                    _ => {}
                }
            } else {
                let address: [u8; 16] = option.get(4..20).and_then(|b| b.try_into().ok()).unwrap_or([0; 16]);
                put!(p, " {}", std::net::Ipv6Addr::from(address));
                match len {
                    22 => put!(p, ":{}", port(20)),
                    28 => put!(p, " hmac 0x{:x}", be64(20).unwrap_or(0)),
                    30 => put!(p, ":{} hmac 0x{:x}", port(20), be64(22).unwrap_or(0)),
                    _ => {}
                }
            }
        }
        4 => {
            if len < 4 {
                return false;
            }
            put!(p, " id");
            for id in &option[3..] {
                put!(p, " {id}");
            }
        }
        5 => {
            if len != 3 && len != 4 {
                return false;
            }
            put!(p, "{}", if option[2] & 1 != 0 { " backup" } else { " non-backup" });
            if len == 4 {
                put!(p, " id {}", option[3]);
            }
        }
        6 | 7 => {
            if len != 12 {
                return false;
            }
            if subtype == 6 {
                put!(p, " seq {}", be64(4).unwrap_or(0));
            } else {
                put!(p, " key 0x{:x}", be64(4).unwrap_or(0));
            }
        }
        _ => {}
    }
    true
}
