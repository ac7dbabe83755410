//! Ring buffer records → owned `Event`s. The header layout is the C
//! `struct netcap_event` of bpf/netcap.h, mirrored by the skeleton from the
//! object's BTF; this module checks lengths so that sinks never see raw bytes.

use std::sync::Arc;

use thiserror::Error;

use crate::bpf::types::netcap_event as RawEvent;

/// Where the captured bytes begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// At the Ethernet header.
    Ethernet,
    /// At the IP header (no L2 header in the skb).
    Raw,
}

pub const FLAG_PAGED_MISSED: u8 = 1;
pub const FLAG_RETVAL: u8 = 2;
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
    /// 1 for the first event read, then counting (netcap's "No N's pkt").
    pub number: u64,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than its {1}-byte header")]
    Short(usize, usize),
    #[error("record claims {claimed} packet bytes but carries {carried}")]
    Truncated { claimed: usize, carried: usize },
    #[error("record has unknown link type {0}")]
    BadLink(u8),
}

pub const HEADER_SIZE: usize = std::mem::size_of::<RawEvent>();

/// A NUL-terminated name of at most 16 bytes (comm, ifname).
fn c_string(bytes: &[i8]) -> String {
    let mut name = [0u8; 16];
    let mut length = 0;
    for (slot, &byte) in name.iter_mut().zip(bytes).take_while(|&(_, &byte)| byte != 0) {
        *slot = byte as u8;
        length += 1;
    }
    String::from_utf8_lossy(&name[..length]).into_owned()
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

impl Event {
    /// `user_size`: bytes of the user's struct between header and packet
    /// (sizeof(struct xcap_user_extend) rounded up to 8; 0 without --ext-action).
    pub fn decode(record: &[u8], user_size: usize) -> Result<Event, DecodeError> {
        if record.len() < HEADER_SIZE + user_size {
            return Err(DecodeError::Short(record.len(), HEADER_SIZE + user_size));
        }
        // SAFETY: the length was checked; RawEvent is plain old data and
        // read_unaligned makes no alignment assumption.
        let raw: RawEvent = unsafe { std::ptr::read_unaligned(record.as_ptr().cast()) };
        let data_at = HEADER_SIZE + user_size;
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
            ext_arg: raw.ext_arg,
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
            retval: (raw.flags & FLAG_RETVAL != 0).then_some(raw.retval),
            reason: raw.reason,
            location: raw.location,
            stack_id: raw.stack_id,
            drop: None,
            stack: None,
            journey: None,
            user: (raw.flags & FLAG_USER != 0).then(|| record[HEADER_SIZE..data_at].into()),
            number: 0,
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
            ext_arg: 0,
            trace_index: 0,
            cpu: 1,
            pid: 42,
            comm: "ping".into(),
            ifindex: 4,
            ifname: "veth1".into(),
            netns: 0,
            mark: 0,
            protocol: 0x0800,
            link: Link::Ethernet,
            flags: 0,
            pkt_len: data.len() as u32,
            paged_len: 0,
            data,
            retval: None,
            reason: 0,
            location: 0,
            stack_id: -1,
            drop: None,
            stack: None,
            journey: None,
            user: None,
            number: 1,
        }
    }

    /// A record as the BPF program writes it.
    pub fn record(raw: &RawEvent, packet: &[u8]) -> Vec<u8> {
        // SAFETY: RawEvent is repr(C) plain old data.
        let header = unsafe { std::slice::from_raw_parts((raw as *const RawEvent).cast::<u8>(), HEADER_SIZE) };
        [header, packet].concat()
    }

    #[test]
    fn the_header_matches_the_c_layout() {
        // Offsets fixed by bpf/netcap.h; a change there must show here.
        assert_eq!(HEADER_SIZE, 120);
        assert_eq!(std::mem::offset_of!(RawEvent, location), 24);
        assert_eq!(std::mem::offset_of!(RawEvent, retval), 32);
        assert_eq!(std::mem::offset_of!(RawEvent, stack_id), 44);
        assert_eq!(std::mem::offset_of!(RawEvent, pkt_len), 48);
        assert_eq!(std::mem::offset_of!(RawEvent, trace_index), 76);
        assert_eq!(std::mem::offset_of!(RawEvent, ifname), 84);
        assert_eq!(std::mem::offset_of!(RawEvent, comm), 100);
    }

    #[test]
    fn decodes_a_record_and_checks_its_length() {
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
        let mut bytes = record(&raw, &[1, 2, 3]);
        bytes.extend_from_slice(&[0; 5]); // ring buffer padding
        let event = Event::decode(&bytes, 0).unwrap();
        assert_eq!((event.time_ns, event.trace_index, event.pkt_len), (42, 2, 98));
        assert_eq!(event.ifname, "veth1");
        assert_eq!(event.protocol, 0x0800);
        assert_eq!(event.link, Link::Ethernet);
        assert_eq!(event.data, [1, 2, 3]);

        raw.cap_len = 10;
        assert_eq!(
            Event::decode(&record(&raw, &[1, 2, 3]), 0),
            Err(DecodeError::Truncated { claimed: 10, carried: 3 })
        );
        assert_eq!(Event::decode(&[0; 10], 0), Err(DecodeError::Short(10, HEADER_SIZE)));
        // With --ext-action the user's struct sits between header and packet.
        raw.cap_len = 3;
        raw.flags = FLAG_USER;
        let with_user = record(&raw, &[7, 7, 7, 7, 7, 7, 7, 7, 1, 2, 3]);
        let event = Event::decode(&with_user, 8).unwrap();
        assert_eq!(event.user.as_deref(), Some(&[7u8; 8][..]));
        assert_eq!(event.data, [1, 2, 3]);
        raw.flags = 0;
        assert_eq!(Event::decode(&record(&raw, &[7; 11]), 8).unwrap().user, None, "action returned 0");

        raw.cap_len = 0;
        raw.link = 9;
        assert_eq!(Event::decode(&record(&raw, &[]), 0), Err(DecodeError::BadLink(9)));
    }
}
