//! Ring buffer records → owned `Event`s. A record is the C `struct
//! netcap_event` of bpf/netcap.h (what every event has), then the optional
//! sections a trace point's features add, then the packet; every layout is
//! mirrored by the skeleton from the object's BTF. This module checks every
//! length, so that sinks never see raw bytes: a section of a kind it does
//! not know is skipped, a section that does not fit is a malformed record.

use std::sync::Arc;

use thiserror::Error;

use crate::bpf::types::netcap_event as RawEvent;
use crate::bpf::types::{
    netcap_section, netcap_section_ct, netcap_section_drop, netcap_section_fields, netcap_section_kind as Kind,
    netcap_section_nft, netcap_section_stack, netcap_section_user, netcap_section_value,
};

/// Where the captured bytes begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Link {
    /// At the Ethernet header.
    Ethernet,
    /// At the IP header (no L2 header in the skb).
    Raw,
}

pub const FLAG_PAGED_MISSED: u8 = 1;
pub const FLAG_SYNTHESIZED: u8 = 4;
pub const FLAG_USER: u8 = 8;
pub const FLAG_MBUF: u8 = 16;
pub const FLAG_CHAINED: u8 = 32;

/// One later trace point of a gathered journey (--gather).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub trace_index: u16,
    /// Time after the first sighting; None when the packet was not seen there.
    pub delay_ns: Option<u64>,
    /// The device of that sighting.
    pub device: Option<String>,
}

/// Why and where a packet was dropped, named (filled in by `pipeline`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drop {
    /// `enum skb_drop_reason` without its SKB_DROP_REASON_ prefix, e.g. NETFILTER_DROP.
    pub reason: String,
    /// `function+0xoff` of the code that dropped it, when the point says.
    pub location: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// CLOCK_MONOTONIC nanoseconds.
    pub time_ns: u64,
    pub skb: u64,
    pub ext_arg: u64,
    pub trace_index: u16,
    pub cpu: u16,
    pub pid: u32,
    pub comm: String,
    pub ifindex: u32,
    pub ifname: String,
    pub netns: u32,
    pub mark: u32,
    /// skb->protocol in host order.
    pub protocol: u16,
    pub link: Link,
    pub flags: u8,
    /// The whole packet's length, paged part included.
    pub pkt_len: u32,
    /// Bytes of the packet held in skb frags.
    pub paged_len: u32,
    /// The captured bytes (at most --capture-max-size).
    pub data: Vec<u8>,
    /// The traced function's return value (fexit, kretprobe).
    pub retval: Option<i64>,
    /// Filled in by `pipeline` at a --bpf-progs exit: the program's return value as its verdict.
    pub verdict: Option<crate::feature::progs::Verdict>,
    /// Raw drop reason and location from the trace point's arguments (0: none).
    pub reason: u32,
    pub location: u64,
    /// Id in the stack map; negative when no stack was recorded.
    pub stack_id: i32,
    /// Filled in by `pipeline`: the drop, named.
    pub drop: Option<Drop>,
    /// Filled in by `pipeline` with -S: symbolized frames, innermost first.
    pub stack: Option<Arc<[String]>>,
    /// With --gather, on a journey's first sighting: the later points.
    pub journey: Option<Vec<Hop>>,
    /// With --ext-action, when it returned non-zero: the bytes of the user's struct.
    pub user: Option<Box<[u8]>>,
    /// --track: the followed packet's id as the kernel made it (0: not
    /// followed); `pipeline` renumbers it 1, 2, 3… in order of first sight.
    pub track: u64,
    /// --track: how this skb came to carry the track.
    pub lineage: Lineage,
    /// --pid, --cgroup: the cgroup v2 id of the skb's socket (0: none, or not read).
    pub cgroup: u64,
    /// --ct: the skb's conntrack entry, if it had one.
    pub ct: Option<Box<crate::feature::ct::Conntrack>>,
    /// --nft: the nftables base chain evaluated, and (from `pipeline`) its verdict.
    pub nft: Option<Box<crate::feature::nft::Nft>>,
    /// --skb-fields: the fields' bytes as read, and a bit per field that could not be.
    pub fields: Option<(u32, Box<[u8]>)>,
    /// 1 for the first event read, then counting (netcap's "No N's pkt").
    pub number: u64,
    /// Read back from a saved capture (`netcap read`): what netcap wrote that
    /// has no field here (namespace and cgroup names, --skb-fields,
    /// conntrack, the user's struct), as it was written.
    pub saved: Option<Box<str>>,
}

/// --track: how a followed skb came to carry its track id (enum
/// netcap_lineage): it matched, or the kernel made it from a followed skb.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lineage {
    #[default]
    Matched,
    Clone,
    Copy,
    Segment,
    /// A GRO packet a followed packet was merged into.
    Merged,
}

impl Lineage {
    pub fn from_kernel(value: u32) -> Lineage {
        match value {
            1 => Lineage::Clone,
            2 => Lineage::Copy,
            3 => Lineage::Segment,
            4 => Lineage::Merged,
            _ => Lineage::Matched,
        }
    }

    /// The value the kernel side uses (enum netcap_lineage).
    pub fn to_kernel(self) -> u32 {
        match self {
            Lineage::Matched => 0,
            Lineage::Clone => 1,
            Lineage::Copy => 2,
            Lineage::Segment => 3,
            Lineage::Merged => 4,
        }
    }

    /// How it is shown after the track id; empty for a packet that matched.
    pub fn label(self) -> &'static str {
        match self {
            Lineage::Matched => "",
            Lineage::Clone => "clone",
            Lineage::Copy => "copy",
            Lineage::Segment => "segment",
            Lineage::Merged => "merged",
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than its {1}-byte header")]
    Short(usize, usize),
    #[error("record claims {claimed} packet bytes but carries {carried}")]
    Truncated { claimed: usize, carried: usize },
    #[error("record has unknown link type {0}")]
    BadLink(u8),
    #[error("record's section {kind} of {len} bytes at {at} does not fit its {room} bytes of sections")]
    Section { kind: u16, len: usize, at: usize, room: usize },
}

pub const HEADER_SIZE: usize = std::mem::size_of::<RawEvent>();

/// A NUL-terminated name in a fixed array (comm, ifname, nft names).
pub fn c_string(bytes: &[i8]) -> String {
    let name: Vec<u8> = bytes.iter().take_while(|&&byte| byte != 0).map(|&byte| byte as u8).collect();
    String::from_utf8_lossy(&name).into_owned()
}

/// An mbuf's device is its DPDK port; RTE_MBUF_PORT_INVALID (0xffff) is none.
fn mbuf_port(port: u32) -> String {
    if port == 0xffff { String::new() } else { format!("port{port}") }
}

/// A kernel-supplied name (device, comm) made safe for a terminal: any
/// user can name a device in a namespace of their own, and a name holding
/// escape sequences must not reach root's terminal as they are. Control
/// characters and backslashes are written as `\xNN`.
pub fn printable(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.chars().any(|c| c.is_control() || c == '\\') {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut text = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        match c {
            '\\' => text.push_str("\\\\"),
            c if c.is_control() && (c as u32) < 0x100 => text.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => text.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => text.push(c),
        }
    }
    std::borrow::Cow::Owned(text)
}

/// What a record's sections say; what is absent keeps its default.
#[derive(Debug)]
struct Sections<'a> {
    stack_id: i32,
    reason: u32,
    location: u64,
    retval: Option<i64>,
    ext_arg: u64,
    track: u64,
    lineage: u32,
    cgroup: u64,
    ct: Option<netcap_section_ct>,
    nft: Option<netcap_section_nft>,
    fields: Option<(u32, &'a [u8])>,
    user: Option<&'a [u8]>,
}

/// A `T` from the first bytes of `bytes`, when there are enough.
fn read<T: Copy>(bytes: &[u8]) -> Option<T> {
    // SAFETY: the length is checked; T is one of the record's plain C
    // types, and read_unaligned makes no alignment assumption.
    (bytes.len() >= std::mem::size_of::<T>()).then(|| unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) })
}

impl<'a> Sections<'a> {
    fn decode(bytes: &'a [u8]) -> Result<Sections<'a>, DecodeError> {
        let mut sections = Sections {
            stack_id: -1,
            reason: 0,
            location: 0,
            retval: None,
            ext_arg: 0,
            track: 0,
            lineage: 0,
            cgroup: 0,
            ct: None,
            nft: None,
            fields: None,
            user: None,
        };
        let mut at = 0;
        while at < bytes.len() {
            let malformed = |kind: u16, len: usize| DecodeError::Section { kind, len, at, room: bytes.len() };
            let head: netcap_section = read(&bytes[at..]).ok_or_else(|| malformed(0, bytes.len() - at))?;
            let len = usize::from(head.len);
            if len < std::mem::size_of::<netcap_section>() || len % 8 != 0 || at + len > bytes.len() {
                return Err(malformed(head.kind, len));
            }
            let body = &bytes[at..at + len];
            let short = || malformed(head.kind, len);
            match Kind(u32::from(head.kind)) {
                Kind::NETCAP_SECTION_STACK => {
                    sections.stack_id = read::<netcap_section_stack>(body).ok_or_else(short)?.stack_id;
                }
                Kind::NETCAP_SECTION_DROP => {
                    let drop: netcap_section_drop = read(body).ok_or_else(short)?;
                    (sections.reason, sections.location) = (drop.reason, drop.location);
                }
                Kind::NETCAP_SECTION_RETVAL => {
                    sections.retval = Some(read::<netcap_section_value>(body).ok_or_else(short)?.value as i64);
                }
                Kind::NETCAP_SECTION_EXT_ARG => {
                    sections.ext_arg = read::<netcap_section_value>(body).ok_or_else(short)?.value;
                }
                Kind::NETCAP_SECTION_TRACK => {
                    let track: netcap_section_value = read(body).ok_or_else(short)?;
                    (sections.track, sections.lineage) = (track.value, track.pad);
                }
                Kind::NETCAP_SECTION_CT => {
                    sections.ct = Some(read::<netcap_section_ct>(body).ok_or_else(short)?);
                }
                Kind::NETCAP_SECTION_NFT => {
                    sections.nft = Some(read::<netcap_section_nft>(body).ok_or_else(short)?);
                }
                Kind::NETCAP_SECTION_CGROUP => {
                    sections.cgroup = read::<netcap_section_value>(body).ok_or_else(short)?.value;
                }
                Kind::NETCAP_SECTION_FIELDS => {
                    let fields: netcap_section_fields = read(body).ok_or_else(short)?;
                    let data = &body[std::mem::offset_of!(netcap_section_fields, data)..];
                    sections.fields = Some((fields.missing, data));
                }
                Kind::NETCAP_SECTION_USER => {
                    sections.user = Some(body.get(std::mem::size_of::<netcap_section_user>()..).ok_or_else(short)?);
                }
                // A newer netcap's section: not ours to read.
                _ => {}
            }
            at += len;
        }
        Ok(sections)
    }
}

impl Event {
    /// An event with these bytes and nothing else known yet (no device,
    /// task, drop or sections): what a saved packet starts as, and tests.
    pub fn blank(time_ns: u64, link: Link, data: Vec<u8>) -> Event {
        Event {
            time_ns,
            skb: 0,
            ext_arg: 0,
            trace_index: 0,
            cpu: 0,
            pid: 0,
            comm: String::new(),
            ifindex: 0,
            ifname: String::new(),
            netns: 0,
            mark: 0,
            protocol: 0,
            link,
            flags: 0,
            pkt_len: data.len() as u32,
            paged_len: 0,
            data,
            retval: None,
            verdict: None,
            reason: 0,
            location: 0,
            stack_id: -1,
            drop: None,
            stack: None,
            journey: None,
            user: None,
            track: 0,
            lineage: Lineage::Matched,
            cgroup: 0,
            ct: None,
            nft: None,
            fields: None,
            number: 0,
            saved: None,
        }
    }
}

impl Event {
    /// The device as text output shows it: escaped (see `printable`), `-` for none.
    pub fn device_label(&self) -> std::borrow::Cow<'_, str> {
        if self.ifname.is_empty() { "-".into() } else { printable(&self.ifname) }
    }

    pub fn decode(record: &[u8]) -> Result<Event, DecodeError> {
        let raw: RawEvent = read(record).ok_or(DecodeError::Short(record.len(), HEADER_SIZE))?;
        let data_at = HEADER_SIZE + usize::from(raw.sections_len);
        if record.len() < data_at {
            return Err(DecodeError::Short(record.len(), data_at));
        }
        let sections = Sections::decode(&record[HEADER_SIZE..data_at])?;
        let carried = record.len() - data_at;
        let claimed = raw.cap_len as usize;
        // The ring buffer rounds records up to 8 bytes, so more may follow.
        if claimed > carried {
            return Err(DecodeError::Truncated { claimed, carried });
        }
        let link = match raw.link {
            1 => Link::Ethernet,
            2 => Link::Raw,
            other => return Err(DecodeError::BadLink(other)),
        };
        Ok(Event {
            time_ns: raw.ts_ns,
            skb: raw.skb,
            ext_arg: sections.ext_arg,
            trace_index: raw.trace_index,
            cpu: raw.cpu,
            pid: raw.pid,
            comm: c_string(&raw.comm),
            ifindex: raw.ifindex,
            ifname: if raw.flags & FLAG_MBUF != 0 { mbuf_port(raw.ifindex) } else { c_string(&raw.ifname) },
            netns: raw.netns,
            mark: raw.mark,
            protocol: u16::from_be(raw.protocol),
            link,
            flags: raw.flags,
            pkt_len: raw.pkt_len,
            paged_len: raw.paged_len,
            data: record[data_at..data_at + claimed].to_vec(),
            retval: sections.retval,
            verdict: None,
            reason: sections.reason,
            location: sections.location,
            stack_id: sections.stack_id,
            drop: None,
            stack: None,
            journey: None,
            user: sections.user.filter(|_| raw.flags & FLAG_USER != 0).map(Into::into),
            track: sections.track,
            lineage: Lineage::from_kernel(sections.lineage),
            cgroup: sections.cgroup,
            ct: sections.ct.as_ref().and_then(crate::feature::ct::Conntrack::from_section).map(Box::new),
            nft: sections.nft.as_ref().map(|nft| Box::new(crate::feature::nft::Nft::from_section(nft))),
            fields: sections.fields.map(|(missing, data)| (missing, data.into())),
            number: 0,
            saved: None,
        })
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    #[test]
    fn names_with_control_characters_are_escaped_for_the_terminal() {
        assert_eq!(printable("veth0"), "veth0");
        assert_eq!(printable("x\x1b]0;title\x07"), "x\\x1b]0;title\\x07");
        assert_eq!(printable("a\\b\u{9b}"), "a\\\\b\\x9b");
    }

    /// An ICMP echo request seen on veth1, for tests of later stages.
    pub fn sample_event() -> Event {
        let data = crate::packet::tests::ether(
            0x0800,
            &crate::packet::tests::ipv4(
                1,
                [198, 18, 0, 1],
                [198, 18, 0, 2],
                &crate::packet::tests::icmp_echo(true, 3, 1, 56),
                1,
                0,
            ),
        );
        Event {
            time_ns: 1_000,
            skb: 0xffff_8880_0000_1000,
            cpu: 1,
            pid: 42,
            comm: "ping".into(),
            ifindex: 4,
            ifname: "veth1".into(),
            protocol: 0x0800,
            number: 1,
            ..Event::blank(1_000, Link::Ethernet, data)
        }
    }

    /// A record as the BPF program writes it.
    pub fn record(raw: &RawEvent, packet: &[u8]) -> Vec<u8> {
        // SAFETY: RawEvent is repr(C) plain old data.
        let header = unsafe { std::slice::from_raw_parts((raw as *const RawEvent).cast::<u8>(), HEADER_SIZE) };
        [header, packet].concat()
    }

    /// A section as the BPF program writes it: kind, whole length, body.
    pub fn section(kind: Kind, body: &[u8]) -> Vec<u8> {
        let len = (4 + body.len()) as u16;
        [&(kind.0 as u16).to_ne_bytes()[..], &len.to_ne_bytes(), body].concat()
    }

    /// A record with sections: header (sections_len set), sections, packet.
    pub fn record_with(raw: &RawEvent, sections: &[Vec<u8>], packet: &[u8]) -> Vec<u8> {
        let sections = sections.concat();
        let mut raw = *raw;
        raw.sections_len = sections.len() as u16;
        let mut bytes = record(&raw, &[]);
        bytes.extend_from_slice(&sections);
        bytes.extend_from_slice(packet);
        bytes
    }

    fn raw_event() -> RawEvent {
        let mut raw = RawEvent {
            ts_ns: 42,
            skb: 0xffff_8880_0000_1000,
            cap_len: 3,
            pkt_len: 98,
            link: 1,
            trace_index: 2,
            protocol: 0x0008,
            ..Default::default()
        };
        for (slot, byte) in raw.ifname.iter_mut().zip(b"veth1\0") {
            *slot = *byte as i8;
        }
        raw
    }

    #[test]
    fn the_header_matches_the_c_layout() {
        // Offsets fixed by bpf/netcap.h; a change there must show here. The
        // header is what a plain capture's record carries besides the packet.
        assert_eq!(HEADER_SIZE, 88);
        assert_eq!(std::mem::offset_of!(RawEvent, pkt_len), 16);
        assert_eq!(std::mem::offset_of!(RawEvent, trace_index), 44);
        assert_eq!(std::mem::offset_of!(RawEvent, sections_len), 50);
        assert_eq!(std::mem::offset_of!(RawEvent, ifname), 54);
        assert_eq!(std::mem::offset_of!(RawEvent, comm), 70);
        assert_eq!(std::mem::size_of::<netcap_section_stack>(), 8);
        assert_eq!(std::mem::size_of::<netcap_section_drop>(), 16);
        assert_eq!(std::mem::size_of::<netcap_section_value>(), 16);
        assert_eq!(std::mem::size_of::<netcap_section_user>(), 8);
    }

    #[test]
    fn decodes_a_record_and_checks_its_length() {
        let mut raw = raw_event();
        let mut bytes = record(&raw, &[1, 2, 3]);
        bytes.extend_from_slice(&[0; 5]); // ring buffer padding
        let event = Event::decode(&bytes).unwrap();
        assert_eq!((event.time_ns, event.trace_index, event.pkt_len), (42, 2, 98));
        assert_eq!(event.ifname, "veth1");
        assert_eq!(event.protocol, 0x0800);
        assert_eq!(event.link, Link::Ethernet);
        assert_eq!(event.data, [1, 2, 3]);
        // No sections: no stack, no drop, no return value.
        assert_eq!((event.stack_id, event.reason, event.location, event.retval, event.ext_arg), (-1, 0, 0, None, 0));

        raw.cap_len = 10;
        assert_eq!(Event::decode(&record(&raw, &[1, 2, 3])), Err(DecodeError::Truncated { claimed: 10, carried: 3 }));
        assert_eq!(Event::decode(&[0; 10]), Err(DecodeError::Short(10, HEADER_SIZE)));
        raw.cap_len = 0;
        raw.link = 9;
        assert_eq!(Event::decode(&record(&raw, &[])), Err(DecodeError::BadLink(9)));
    }

    #[test]
    fn each_section_fills_its_fields() {
        let mut raw = raw_event();
        raw.flags = FLAG_USER;
        let mut drop = 9u32.to_ne_bytes().to_vec();
        drop.extend_from_slice(&0xffff_ffff_8100_0010u64.to_ne_bytes());
        let value = |v: u64| [&[0u8; 4][..], &v.to_ne_bytes()].concat();
        let sections = [
            section(Kind::NETCAP_SECTION_STACK, &7i32.to_ne_bytes()),
            section(Kind::NETCAP_SECTION_DROP, &drop),
            section(Kind::NETCAP_SECTION_RETVAL, &value(-22i64 as u64)),
            section(Kind::NETCAP_SECTION_EXT_ARG, &value(0xabcd)),
            section(Kind::NETCAP_SECTION_USER, &[[0u8; 4], [5u8; 4], [6u8; 4]].concat()),
            section(
                Kind::NETCAP_SECTION_TRACK,
                &[&3u32.to_ne_bytes()[..], &0x1234_5678_9abcu64.to_ne_bytes()].concat(),
            ),
        ];
        let event = Event::decode(&record_with(&raw, &sections, &[1, 2, 3])).unwrap();
        assert_eq!((event.track, event.lineage), (0x1234_5678_9abc, Lineage::Segment));
        assert_eq!((event.stack_id, event.reason, event.location), (7, 9, 0xffff_ffff_8100_0010));
        assert_eq!((event.retval, event.ext_arg), (Some(-22), 0xabcd));
        assert_eq!(event.user.as_deref(), Some(&[5, 5, 5, 5, 6, 6, 6, 6][..]));
        assert_eq!(event.data, [1, 2, 3]);
        // The action returned 0: the struct is there, but not shown.
        raw.flags = 0;
        assert_eq!(Event::decode(&record_with(&raw, &sections, &[1, 2, 3])).unwrap().user, None);
    }

    #[test]
    fn unknown_sections_are_skipped_and_broken_ones_rejected() {
        let raw = raw_event();
        let unknown = section(Kind(99), &[0xee; 12]);
        let stack = section(Kind::NETCAP_SECTION_STACK, &3i32.to_ne_bytes());
        let event = Event::decode(&record_with(&raw, &[unknown.clone(), stack.clone()], &[1, 2, 3])).unwrap();
        assert_eq!((event.stack_id, event.data.as_slice()), (3, &[1u8, 2, 3][..]));

        // A section claiming more than the record's sections hold.
        let mut long = stack.clone();
        long[2..4].copy_from_slice(&64u16.to_ne_bytes());
        let err = Event::decode(&record_with(&raw, &[long], &[1, 2, 3])).unwrap_err();
        assert!(matches!(err, DecodeError::Section { kind: 1, len: 64, at: 0, room: 8 }), "{err:?}");
        // A known kind too short for its body.
        let short = section(Kind::NETCAP_SECTION_DROP, &[0; 4]);
        assert!(matches!(
            Event::decode(&record_with(&raw, &[short], &[])),
            Err(DecodeError::Section { kind: 2, len: 8, .. })
        ));
        // A length that is not a multiple of 8, or shorter than a section's head.
        for bad in [5u16, 2, 0] {
            let mut odd = stack.clone();
            odd[2..4].copy_from_slice(&bad.to_ne_bytes());
            assert!(Event::decode(&record_with(&raw, &[odd], &[])).is_err(), "len {bad}");
        }
        // sections_len past the end of the record.
        let mut cut = record_with(&raw, &[stack], &[]);
        cut.truncate(HEADER_SIZE + 4);
        assert_eq!(Event::decode(&cut), Err(DecodeError::Short(HEADER_SIZE + 4, HEADER_SIZE + 8)));
    }
}
