//! Saved captures, read back (`netcap read`): classic pcap and pcapng (any
//! byte order, several sections, any timestamp resolution), and in
//! netcap's own pcapng the metadata each packet's comment carries
//! (`metadata`). Blocks are kept as read, so a filtered copy (`-w`) holds
//! exactly what the original did.

pub mod metadata;

use std::fs::File;
use std::io::{self, BufReader, Read};

use anyhow::{Context as _, Result, bail};

const PCAPNG_SECTION: u32 = 0x0A0D_0D0A;
const PCAPNG_INTERFACE: u32 = 1;
const PCAPNG_OBSOLETE_PACKET: u32 = 2;
const PCAPNG_SIMPLE_PACKET: u32 = 3;
const PCAPNG_ENHANCED_PACKET: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
const OPT_COMMENT: u16 = 1;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;
const EPB_PACKETID: u16 = 5;
/// A block larger than this is not a capture's (pcapng has no limit; this
/// keeps a corrupt length from taking all memory).
const BLOCK_MAX: usize = 64 << 20;

/// One interface of a pcapng section (the only one of a pcap file).
#[derive(Debug, Clone)]
pub struct Interface {
    pub link_type: u16,
    /// `if_name`: netcap writes the trace point's name here.
    pub name: Option<String>,
    /// Timestamp units per second.
    units_per_second: u64,
    /// The block as read, for a copy.
    pub block: Vec<u8>,
}

/// One packet, with what the file says about it.
#[derive(Debug)]
pub struct Packet {
    pub interface: usize,
    /// Wall-clock nanoseconds.
    pub time_ns: u64,
    pub data: Vec<u8>,
    pub wire_len: u32,
    pub comment: Option<String>,
    pub packet_id: Option<u64>,
    /// The block as read (pcapng), for a copy.
    pub block: Vec<u8>,
}

enum Format {
    Pcap { nanoseconds: bool, big_endian: bool },
    Pcapng { big_endian: bool },
}

pub struct Reader {
    input: Box<dyn Read>,
    format: Format,
    pub interfaces: Vec<Interface>,
    /// The first section's `shb_userappl` ("netcap 0.x" in netcap's files).
    pub application: Option<String>,
    /// The current section's header block as read.
    pub section: Vec<u8>,
    /// Sections read so far (pcapng): a copy starts a new one when this grows.
    pub sections: usize,
    /// Keep each packet's block (for a copy); off, none is allocated.
    pub keep_blocks: bool,
    /// The block being read, reused.
    buffer: Vec<u8>,
}

fn read_exact_or_end(input: &mut dyn Read, buffer: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buffer.len() {
        match input.read(&mut buffer[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file ends inside a block")),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn u16_of(bytes: &[u8], big_endian: bool) -> u16 {
    let b = [bytes[0], bytes[1]];
    if big_endian { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) }
}

fn u32_of(bytes: &[u8], big_endian: bool) -> u32 {
    let b = [bytes[0], bytes[1], bytes[2], bytes[3]];
    if big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
}

/// The options of a pcapng block body from `at`: (code, value) pairs.
fn options(body: &[u8], mut at: usize, big_endian: bool) -> Vec<(u16, &[u8])> {
    let mut found = Vec::new();
    while at + 4 <= body.len() {
        let code = u16_of(&body[at..], big_endian);
        let len = usize::from(u16_of(&body[at + 2..], big_endian));
        if code == 0 {
            break;
        }
        let Some(value) = body.get(at + 4..at + 4 + len) else { break };
        found.push((code, value));
        at += 4 + len.next_multiple_of(4);
    }
    found
}

impl Reader {
    /// A file, or standard input for "-".
    pub fn open(path: &str) -> Result<Reader> {
        let input: Box<dyn Read> = if path == "-" {
            Box::new(BufReader::with_capacity(1 << 20, io::stdin()))
        } else {
            Box::new(BufReader::with_capacity(1 << 20, File::open(path).with_context(|| format!("reading {path}"))?))
        };
        Reader::new(input).with_context(|| format!("reading {path}"))
    }

    fn new(mut input: Box<dyn Read>) -> Result<Reader> {
        let mut magic = [0u8; 4];
        if !read_exact_or_end(&mut input, &mut magic)? {
            bail!("the file is empty: a pcap or pcapng capture was expected");
        }
        let mut reader = match u32::from_le_bytes(magic) {
            PCAPNG_SECTION => Reader {
                input,
                format: Format::Pcapng { big_endian: false },
                interfaces: Vec::new(),
                application: None,
                section: Vec::new(),
                sections: 0,
                keep_blocks: false,
                buffer: Vec::new(),
            },
            0xa1b2_c3d4 | 0xa1b2_3c4d | 0xd4c3_b2a1 | 0x4d3c_b2a1 => {
                let value = u32::from_le_bytes(magic);
                let big_endian = matches!(value, 0xd4c3_b2a1 | 0x4d3c_b2a1);
                let nanoseconds = matches!(value, 0xa1b2_3c4d | 0x4d3c_b2a1);
                let mut header = [0u8; 20];
                if !read_exact_or_end(&mut input, &mut header)? {
                    bail!("the pcap file header is cut short");
                }
                let link_type = u32_of(&header[16..], big_endian) as u16;
                let units_per_second = if nanoseconds { 1_000_000_000 } else { 1_000_000 };
                Reader {
                    input,
                    format: Format::Pcap { nanoseconds, big_endian },
                    interfaces: vec![Interface { link_type, name: None, units_per_second, block: Vec::new() }],
                    application: None,
                    section: Vec::new(),
                    sections: 0,
                    keep_blocks: false,
                    buffer: Vec::new(),
                }
            }
            _ => bail!("not a pcap or pcapng capture (its first bytes are {magic:02x?})"),
        };
        if let Format::Pcapng { .. } = reader.format {
            let mut length = [0u8; 4];
            if !read_exact_or_end(&mut reader.input, &mut length)? {
                bail!("the section header is cut short");
            }
            reader.section_header(magic, length)?;
        }
        Ok(reader)
    }

    /// A section header block, its type and length already read.
    fn section_header(&mut self, kind: [u8; 4], length: [u8; 4]) -> Result<()> {
        let mut order = [0u8; 4];
        if !read_exact_or_end(&mut self.input, &mut order)? {
            bail!("the section header is cut short");
        }
        let head = [length, order].concat();
        let order = u32::from_le_bytes(order);
        let big_endian = match order {
            BYTE_ORDER_MAGIC => false,
            o if o.swap_bytes() == BYTE_ORDER_MAGIC => true,
            _ => bail!("a pcapng section header with no byte-order magic"),
        };
        let total = u32_of(&head[0..4], big_endian) as usize;
        if !(28..=BLOCK_MAX).contains(&total) {
            bail!("a pcapng section header of {total} bytes");
        }
        let mut rest = vec![0u8; total - 12];
        read_exact_or_end(&mut self.input, &mut rest)?;
        self.format = Format::Pcapng { big_endian };
        self.interfaces.clear();
        let block = [&kind[..], &head[..], &rest[..]].concat();
        // Options follow the magic, version and section length.
        let body = &block[8..block.len() - 4];
        if self.application.is_none() {
            self.application = options(body, 16, big_endian)
                .into_iter()
                .find(|(code, _)| *code == SHB_USERAPPL)
                .map(|(_, value)| String::from_utf8_lossy(value).trim_end_matches('\0').to_string());
        }
        self.section = block;
        self.sections += 1;
        Ok(())
    }

    /// True when netcap wrote the file (its comments carry metadata).
    pub fn written_by_netcap(&self) -> bool {
        self.application.as_deref().is_some_and(|a| a.starts_with("netcap"))
    }

    /// The next packet, or None at the end.
    pub fn next_packet(&mut self) -> Result<Option<Packet>> {
        match self.format {
            Format::Pcap { nanoseconds, big_endian } => self.next_pcap(nanoseconds, big_endian),
            Format::Pcapng { .. } => self.next_pcapng(),
        }
    }

    fn next_pcap(&mut self, nanoseconds: bool, big_endian: bool) -> Result<Option<Packet>> {
        let mut header = [0u8; 16];
        if !read_exact_or_end(&mut self.input, &mut header)? {
            return Ok(None);
        }
        let seconds = u64::from(u32_of(&header[0..], big_endian));
        let fraction = u64::from(u32_of(&header[4..], big_endian));
        let captured = u32_of(&header[8..], big_endian) as usize;
        let wire_len = u32_of(&header[12..], big_endian);
        if captured > BLOCK_MAX {
            bail!("a pcap record of {captured} bytes");
        }
        let mut data = vec![0u8; captured];
        if !read_exact_or_end(&mut self.input, &mut data)? {
            bail!("the file ends inside a packet");
        }
        let time_ns = seconds * 1_000_000_000 + if nanoseconds { fraction } else { fraction * 1000 };
        Ok(Some(Packet { interface: 0, time_ns, data, wire_len, comment: None, packet_id: None, block: Vec::new() }))
    }

    fn next_pcapng(&mut self) -> Result<Option<Packet>> {
        loop {
            let mut head = [0u8; 8];
            if !read_exact_or_end(&mut self.input, &mut head)? {
                return Ok(None);
            }
            let kind = [head[0], head[1], head[2], head[3]];
            if u32::from_le_bytes(kind) == PCAPNG_SECTION {
                // A new section, whose byte order may differ.
                self.section_header(kind, [head[4], head[5], head[6], head[7]])?;
                continue;
            }
            let Format::Pcapng { big_endian } = self.format else { unreachable!("pcapng blocks in a pcap file") };
            let kind = u32_of(&kind, big_endian);
            let total = u32_of(&head[4..], big_endian) as usize;
            if !(12..=BLOCK_MAX).contains(&total) || !total.is_multiple_of(4) {
                bail!("a pcapng block of {total} bytes");
            }
            let mut block = std::mem::take(&mut self.buffer);
            block.clear();
            block.extend_from_slice(&head);
            block.resize(total, 0);
            if !read_exact_or_end(&mut self.input, &mut block[8..])? {
                bail!("the file ends inside a block");
            }
            let found = self.packet_of(kind, &block, big_endian);
            self.buffer = block;
            match found? {
                Some(packet) => return Ok(Some(packet)),
                None => continue,
            }
        }
    }

    /// The packet a block holds, if it holds one (an interface block is
    /// taken in on the way).
    fn packet_of(&mut self, kind: u32, block: &[u8], big_endian: bool) -> Result<Option<Packet>> {
        let total = block.len();
        let body = &block[8..total - 4];
        {
            match kind {
                PCAPNG_INTERFACE if body.len() >= 8 => {
                    let mut interface = Interface {
                        link_type: u16_of(body, big_endian),
                        name: None,
                        units_per_second: 1_000_000,
                        block: block.to_vec(),
                    };
                    for (code, value) in options(body, 8, big_endian) {
                        match code {
                            IF_NAME => {
                                interface.name = Some(String::from_utf8_lossy(value).trim_end_matches('\0').into())
                            }
                            IF_TSRESOL if !value.is_empty() => {
                                let exponent = u32::from(value[0] & 0x7f);
                                let base: u64 = if value[0] & 0x80 != 0 { 2 } else { 10 };
                                interface.units_per_second = base.checked_pow(exponent).unwrap_or(1_000_000_000);
                            }
                            _ => {}
                        }
                    }
                    self.interfaces.push(interface);
                }
                PCAPNG_ENHANCED_PACKET | PCAPNG_OBSOLETE_PACKET if body.len() >= 20 => {
                    let interface = if kind == PCAPNG_OBSOLETE_PACKET {
                        usize::from(u16_of(body, big_endian))
                    } else {
                        u32_of(body, big_endian) as usize
                    };
                    let ticks =
                        u64::from(u32_of(&body[4..], big_endian)) << 32 | u64::from(u32_of(&body[8..], big_endian));
                    let captured = u32_of(&body[12..], big_endian) as usize;
                    let wire_len = u32_of(&body[16..], big_endian);
                    let Some(data) = body.get(20..20 + captured) else {
                        bail!("a packet block shorter than its packet")
                    };
                    let mut packet = Packet {
                        interface,
                        time_ns: self.nanoseconds(interface, ticks),
                        data: data.to_vec(),
                        wire_len,
                        comment: None,
                        packet_id: None,
                        block: Vec::new(),
                    };
                    for (code, value) in options(body, 20 + captured.next_multiple_of(4), big_endian) {
                        match code {
                            OPT_COMMENT => {
                                packet.comment = Some(
                                    String::from_utf8(value.to_vec())
                                        .unwrap_or_else(|bad| String::from_utf8_lossy(bad.as_bytes()).into_owned()),
                                )
                            }
                            EPB_PACKETID if value.len() == 8 => {
                                let bytes: [u8; 8] = value.try_into().unwrap_or_default();
                                packet.packet_id = Some(if big_endian {
                                    u64::from_be_bytes(bytes)
                                } else {
                                    u64::from_le_bytes(bytes)
                                });
                            }
                            _ => {}
                        }
                    }
                    if self.keep_blocks {
                        packet.block = block.to_vec();
                    }
                    return Ok(Some(packet));
                }
                PCAPNG_SIMPLE_PACKET if body.len() >= 4 => {
                    let wire_len = u32_of(body, big_endian);
                    let captured = (wire_len as usize).min(body.len() - 4);
                    return Ok(Some(Packet {
                        interface: 0,
                        time_ns: 0,
                        data: body[4..4 + captured].to_vec(),
                        wire_len,
                        comment: None,
                        packet_id: None,
                        block: if self.keep_blocks { block.to_vec() } else { Vec::new() },
                    }));
                }
                // Name resolution, statistics, secrets, custom blocks: nothing netcap reads.
                _ => {}
            }
        }
        Ok(None)
    }

    fn nanoseconds(&self, interface: usize, ticks: u64) -> u64 {
        let per_second = self.interfaces.get(interface).map_or(1_000_000, |i| i.units_per_second).max(1);
        (u128::from(ticks) * 1_000_000_000 / u128::from(per_second)) as u64
    }

    /// The link type of a packet's interface.
    pub fn link_type(&self, packet: &Packet) -> Option<u16> {
        self.interfaces.get(packet.interface).map(|i| i.link_type)
    }
}

/// A pcapng block, little-endian.
fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let total = (12 + body.len()) as u32;
    [&kind.to_le_bytes()[..], &total.to_le_bytes(), body, &total.to_le_bytes()].concat()
}

/// A section header and one interface of `link_type` in nanoseconds, for
/// packets copied from a classic pcap file (which has no blocks to copy).
pub fn new_section(link_type: u16) -> Vec<u8> {
    let application = b"pcap copied by netcap read";
    let mut section =
        [&BYTE_ORDER_MAGIC.to_le_bytes()[..], &1u16.to_le_bytes(), &0u16.to_le_bytes(), &(-1i64).to_le_bytes()]
            .concat();
    section.extend_from_slice(&SHB_USERAPPL.to_le_bytes());
    section.extend_from_slice(&(application.len() as u16).to_le_bytes());
    section.extend_from_slice(application);
    section.resize(section.len().next_multiple_of(4), 0);
    section.extend_from_slice(&[0; 4]);
    let mut interface = [&link_type.to_le_bytes()[..], &0u16.to_le_bytes(), &0u32.to_le_bytes()].concat();
    interface.extend_from_slice(&[&IF_TSRESOL.to_le_bytes()[..], &1u16.to_le_bytes(), &[9, 0, 0, 0], &[0; 4]].concat());
    [block(PCAPNG_SECTION, &section), block(PCAPNG_INTERFACE, &interface)].concat()
}

/// An enhanced packet block for a packet read from a classic pcap file.
pub fn packet_block(packet: &Packet) -> Vec<u8> {
    let mut body = Vec::with_capacity(20 + packet.data.len() + 4);
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&((packet.time_ns >> 32) as u32).to_le_bytes());
    body.extend_from_slice(&(packet.time_ns as u32).to_le_bytes());
    body.extend_from_slice(&(packet.data.len() as u32).to_le_bytes());
    body.extend_from_slice(&packet.wire_len.to_le_bytes());
    body.extend_from_slice(&packet.data);
    body.resize(body.len().next_multiple_of(4), 0);
    block(PCAPNG_ENHANCED_PACKET, &body)
}

#[cfg(test)]
mod tests;
