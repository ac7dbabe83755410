//! DNS (and mDNS) at tcpdump's default verbosity: the id and flags, a
//! query's question, a response's counts and answers.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::{Printer, Short, Step, bytes_at, printable, put, u8_at, u16_at};

const T_A: u16 = 1;
const T_NS: u16 = 2;
const T_CNAME: u16 = 5;
const T_PTR: u16 = 12;
const T_MX: u16 = 15;
const T_TXT: u16 = 16;
const T_AAAA: u16 = 28;
const T_SRV: u16 = 33;
const T_DNAME: u16 = 39;
const T_OPT: u16 = 41;
const C_IN: u16 = 1;
/// mDNS's top class bits: unicast response wanted (questions), cache flush
/// (records).
const C_MDNS_BIT: u16 = 0x8000;
/// Longest name tcpdump prints.
const NAME_MAX: usize = 255;

fn type_name(kind: u16) -> String {
    let name = match kind {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAP_PTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        31 => "EID",
        32 => "NIMLOC",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        40 => "SINK",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        99 => "SPF",
        100 => "UINFO",
        101 => "UID",
        102 => "GID",
        103 => "UNSPEC",
        104 => "UNSPECA",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        _ => return format!("Type{kind}"),
    };
    name.to_string()
}

fn class_name(class: u16) -> String {
    match class {
        1 => "IN".into(),
        3 => "CHAOS".into(),
        4 => "HS".into(),
        255 => "ANY".into(),
        other => format!("(Class {other})"),
    }
}

const OPCODES: [&str; 16] = [
    "",
    " inv_q",
    " stat",
    " op3",
    " notify",
    " update",
    " op6",
    " op7",
    " op8",
    " updateA",
    " updateD",
    " updateDA",
    " updateM",
    " updateMA",
    " zoneInit",
    " zoneRef",
];

fn rcode_name(rcode: u16) -> String {
    const NAMES: [&str; 24] = [
        "",
        " FormErr",
        " ServFail",
        " NXDomain",
        " NotImp",
        " Refused",
        " YXDomain",
        " YXRRSet",
        " NXRRSet",
        " NotAuth",
        " NotZone",
        " Resp11",
        " Resp12",
        " Resp13",
        " Resp14",
        " NoChange",
        " BadVers",
        "Resp17",
        " Resp18",
        " Resp19",
        " Resp20",
        "Resp21",
        " Resp22",
        " BadCookie",
    ];
    NAMES.get(usize::from(rcode)).map_or_else(|| format!(" Resp{}", rcode & 0xfff), |n| n.to_string())
}

/// A DNS message: `data` from its header, `length` what UDP says it is.
pub(super) fn dns(p: &mut Printer, data: &[u8], length: usize, mdns: bool) -> Step {
    p.protocol = "domain";
    if length < 12 {
        put!(p, "domain [length {length} < 12]");
        p.invalid();
        return Ok(());
    }
    bytes_at(data, 0, 12)?;
    let id = u16_at(data, 0)?;
    let flags = u16_at(data, 2)?;
    let counts = [u16_at(data, 4)?, u16_at(data, 6)?, u16_at(data, 8)?, u16_at(data, 10)?];
    let [questions, answers, authority, additional] = counts.map(u32::from);
    let opcode = OPCODES[usize::from(flags >> 11 & 0xf)];
    let mut rcode = flags & 0xf;
    if let Some(extended) = extended_rcode(data, counts) {
        rcode |= u16::from(extended) << 4;
    }
    if flags & 0x8000 != 0 {
        put!(
            p,
            "{id}{opcode}{}{}{}{}{}",
            rcode_name(rcode),
            if flags & 0x0400 != 0 { "*" } else { "" },
            if flags & 0x0080 != 0 { "" } else { "-" },
            if flags & 0x0200 != 0 { "|" } else { "" },
            if flags & 0x0020 != 0 { "$" } else { "" }
        );
        if questions != 1 {
            put!(p, " [{questions}q]");
        }
        let mut at = 12;
        for _ in 0..questions {
            at = skip_name(data, at).ok_or(Short)? + 4;
        }
        put!(p, " {answers}/{authority}/{additional}");
        let mut left = answers;
        while left > 0 && (left == answers || at < data.len()) {
            if left != answers {
                put!(p, ",");
            }
            at = record(p, data, at, mdns)?;
            left -= 1;
        }
        if left > 0 {
            return Err(Short);
        }
    } else {
        put!(
            p,
            "{id}{opcode}{}{}",
            if flags & 0x0100 != 0 { "+" } else { "" },
            if flags & 0x0010 != 0 { "%" } else { "" }
        );
        if flags & 0x6cf != 0 {
            put!(p, " [b2&3=0x{flags:x}]");
        }
        if flags >> 11 & 0xf == 1 {
            if questions != 0 {
                put!(p, " [{questions}q]");
            }
            if answers != 1 {
                put!(p, " [{answers}a]");
            }
        } else {
            if answers != 0 {
                put!(p, " [{answers}a]");
            }
            if questions != 1 {
                put!(p, " [{questions}q]");
            }
        }
        if authority != 0 {
            put!(p, " [{authority}n]");
        }
        if additional != 0 {
            put!(p, " [{additional}au]");
        }
        let mut at = 12;
        let mut left = questions;
        while left > 0 && (left == questions || at < data.len()) {
            at = question(p, data, at, mdns)?;
            left -= 1;
        }
        if left > 0 {
            return Err(Short);
        }
    }
    put!(p, " ({length})");
    Ok(())
}

/// The extended rcode bits of an OPT record in the additional section.
fn extended_rcode(data: &[u8], [questions, answers, authority, additional]: [u16; 4]) -> Option<u8> {
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(data, at)? + 4;
        if at >= data.len() {
            return None;
        }
    }
    for _ in 0..u32::from(answers) + u32::from(authority) {
        at = skip_name(data, at)? + 8;
        let rdlen = usize::from(u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]));
        at += 2 + rdlen;
        if at >= data.len() {
            return None;
        }
    }
    for _ in 0..additional {
        at = skip_name(data, at)?;
        let kind = u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]);
        at += 4;
        let extended = *data.get(at)?;
        if kind == T_OPT {
            return Some(extended);
        }
        at += 4;
        let rdlen = usize::from(u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]));
        at += 2 + rdlen;
        if at >= data.len() {
            return None;
        }
    }
    None
}

/// Past a name (labels, or a compression pointer ending it).
fn skip_name(data: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let byte = *data.get(at)?;
        at += 1;
        match byte & 0xc0 {
            0xc0 => return Some(at + 1),
            0x00 if byte == 0 => return Some(at),
            0x00 => at += usize::from(byte),
            0x40 if byte & 0x3f == 1 => {
                // An EDNS0 bit label: its length in bits, then the bits.
                let bits = usize::from(*data.get(at)?);
                at += 1 + if bits == 0 { 32 } else { bits.div_ceil(8) };
            }
            _ => return None,
        }
    }
}

/// A question: " TYPE? name." (class and mDNS's QU/QM bit when they say something).
fn question(p: &mut Printer, data: &[u8], at: usize, mdns: bool) -> Result<usize, Short> {
    let end = skip_name(data, at).ok_or(Short)?;
    bytes_at(data, end, 4)?;
    let kind = u16_at(data, end)?;
    put!(p, " {}", type_name(kind));
    let raw_class = u16_at(data, end + 2)?;
    let class = if mdns { raw_class & !C_MDNS_BIT } else { raw_class };
    if class != C_IN {
        put!(p, " {}", class_name(class));
    }
    if mdns {
        put!(p, "{}", if raw_class & C_MDNS_BIT != 0 { " (QU)" } else { " (QM)" });
    }
    put!(p, "? ");
    name(p, data, at)?;
    Ok(end + 4)
}

/// A resource record at default verbosity: its type and data.
fn record(p: &mut Printer, data: &[u8], at: usize, mdns: bool) -> Result<usize, Short> {
    let Some(start) = skip_name(data, at) else { return Ok(data.len()) };
    if bytes_at(data, start, 10).is_err() {
        return Ok(data.len());
    }
    let kind = u16_at(data, start)?;
    let raw_class = u16_at(data, start + 2)?;
    let class = if mdns { raw_class & !C_MDNS_BIT } else { raw_class };
    if class != C_IN && kind != T_OPT {
        put!(p, " {}", class_name(class));
    }
    if mdns && raw_class & C_MDNS_BIT != 0 {
        put!(p, " (Cache flush)");
    }
    let opt_flags = u16_at(data, start + 6)?;
    let len = usize::from(u16_at(data, start + 8)?);
    let body = start + 10;
    let end = body + len;
    put!(p, " {}", type_name(kind));
    if end > data.len() {
        return Err(Short);
    }
    match kind {
        T_A => put!(p, " {}", Ipv4Addr::from(super::u32_at(data, body)?)),
        T_AAAA => put!(p, " {}", super::ipv6_at(data, body)?),
        T_NS | T_CNAME | T_PTR | T_DNAME => {
            put!(p, " ");
            name(p, data, body)?;
        }
        T_MX => {
            put!(p, " ");
            u16_at(data, body)?;
            name(p, data, body + 2)?;
            put!(p, " {}", u16_at(data, body)?);
        }
        T_TXT => {
            let mut at = body;
            while at < end {
                put!(p, " \"");
                let text_len = usize::from(u8_at(data, at)?);
                printable(&mut p.out, bytes_at(data, at + 1, text_len)?);
                at += 1 + text_len;
                put!(p, "\"");
            }
        }
        T_SRV => {
            put!(p, " ");
            bytes_at(data, body, 6)?;
            name(p, data, body + 6)?;
            put!(p, ":{} {} {}", u16_at(data, body + 4)?, u16_at(data, body)?, u16_at(data, body + 2)?);
        }
        T_OPT => {
            put!(p, " UDPsize={class}");
            if opt_flags & 0x8000 != 0 {
                put!(p, " DO");
            }
            if len > 0 {
                put!(p, " [");
                let mut at = body;
                let mut first = true;
                while at + 4 <= end {
                    if !first {
                        put!(p, ",");
                    }
                    first = false;
                    let (code, option_len) = (u16_at(data, at)?, usize::from(u16_at(data, at + 2)?));
                    put!(p, "{}", edns_option(code));
                    at += 4 + option_len;
                }
                put!(p, "]");
            }
        }
        // SOA, TSIG and the rest: the type's name only, without -v.
        _ => {}
    }
    Ok(end)
}

fn edns_option(code: u16) -> String {
    match code {
        1 => "LLQ".into(),
        2 => "UL".into(),
        3 => "NSID".into(),
        5 => "DAU".into(),
        6 => "DHU".into(),
        7 => "N3U".into(),
        8 => "ECS".into(),
        9 => "EXPIRE".into(),
        10 => "COOKIE".into(),
        11 => "KEEPALIVE".into(),
        12 => "PADDING".into(),
        13 => "CHAIN".into(),
        14 => "KEY-TAG".into(),
        other => format!("Opt{other}"),
    }
}

/// A name, labels joined by dots and ending in one, compression pointers
/// followed backwards only (as tcpdump and BIND require).
fn name(p: &mut Printer, data: &[u8], mut at: usize) -> Step {
    let mut limit = at;
    let mut printed = 0usize;
    let mut any = false;
    loop {
        let byte = u8_at(data, at)?;
        match byte & 0xc0 {
            0xc0 => {
                let offset = usize::from(u16_at(data, at)? & 0x3fff);
                if offset >= limit {
                    put!(p, "<BAD PTR>");
                    return Err(Short);
                }
                limit = offset;
                at = offset;
                continue;
            }
            0x00 if byte == 0 => break,
            0x00 => {
                let len = usize::from(byte);
                let label = bytes_at(data, at + 1, len)?;
                if printed < NAME_MAX {
                    let mut text = String::new();
                    printable(&mut text, label);
                    let room = NAME_MAX - printed;
                    p.out.push_str(if text.len() > room { &text[..room] } else { &text });
                }
                printed += len;
                if printed <= NAME_MAX {
                    put!(p, ".");
                }
                printed += 1;
                at += 1 + len;
                any = true;
            }
            0x40 => {
                let kind = byte & 0x3f;
                if kind != 1 {
                    put!(p, "<ELT {kind}>");
                    return Err(Short);
                }
                let bits = usize::from(u8_at(data, at + 1)?);
                let bits = if bits == 0 { 256 } else { bits };
                let bytes = bytes_at(data, at + 2, bits.div_ceil(8))?;
                let mut text = String::from("\\[x");
                for byte in bytes {
                    let _ = write!(text, "{byte:02x}");
                }
                let _ = write!(text, "/{bits}]");
                p.out.push_str(&text);
                at += 2 + bits.div_ceil(8);
                if printed <= NAME_MAX {
                    put!(p, ".");
                }
                any = true;
            }
            _ => {
                put!(p, "<BAD LABEL TYPE>");
                return Err(Short);
            }
        }
    }
    if !any {
        put!(p, ".");
    }
    if printed > NAME_MAX {
        put!(p, "<DOMAIN NAME TOO LONG>");
    }
    Ok(())
}
