//! Ring buffer records → owned `Event`s. The header layout is the C
//! `struct netcap_event` of bpf/netcap.h, mirrored by the skeleton from the
//! object's BTF; this module checks lengths so that sinks never see raw bytes.

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

fn c_string(bytes: &[i8]) -> String {
    let bytes: Vec<u8> = bytes.iter().map(|&b| b as u8).take_while(|&b| b != 0).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

impl Event {
    pub fn decode(record: &[u8]) -> Result<Event, DecodeError> {
        if record.len() < HEADER_SIZE {
            return Err(DecodeError::Short(record.len(), HEADER_SIZE));
        }
        // SAFETY: the length was checked; RawEvent is plain old data and
        // read_unaligned makes no alignment assumption.
        let raw: RawEvent = unsafe { std::ptr::read_unaligned(record.as_ptr().cast()) };
        let carried = record.len() - HEADER_SIZE;
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
            ifname: c_string(&raw.ifname),
            netns: raw.netns,
            mark: raw.mark,
            protocol: u16::from_be(raw.protocol),
            link,
            flags: raw.flags,
            pkt_len: raw.pkt_len,
            paged_len: raw.paged_len,
            data: record[HEADER_SIZE..HEADER_SIZE + claimed].to_vec(),
        })
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A record as the BPF program writes it.
    pub fn record(raw: &RawEvent, packet: &[u8]) -> Vec<u8> {
        // SAFETY: RawEvent is repr(C) plain old data.
        let header = unsafe { std::slice::from_raw_parts((raw as *const RawEvent).cast::<u8>(), HEADER_SIZE) };
        [header, packet].concat()
    }

    #[test]
    fn the_header_matches_the_c_layout() {
        // Offsets fixed by bpf/netcap.h; a change there must show here.
        assert_eq!(HEADER_SIZE, 96);
        assert_eq!(std::mem::offset_of!(RawEvent, pkt_len), 24);
        assert_eq!(std::mem::offset_of!(RawEvent, trace_index), 52);
        assert_eq!(std::mem::offset_of!(RawEvent, ifname), 60);
        assert_eq!(std::mem::offset_of!(RawEvent, comm), 76);
    }

    #[test]
    fn decodes_a_record_and_checks_its_length() {
        let mut raw = RawEvent { ts_ns: 42, skb: 0xffff_8880_0000_1000, cap_len: 3, pkt_len: 98, link: 1, trace_index: 2, protocol: 0x0008, ..Default::default() };
        for (slot, byte) in raw.ifname.iter_mut().zip(b"veth1\0") {
            *slot = *byte as i8;
        }
        let mut bytes = record(&raw, &[1, 2, 3]);
        bytes.extend_from_slice(&[0; 5]); // ring buffer padding
        let event = Event::decode(&bytes).unwrap();
        assert_eq!((event.time_ns, event.trace_index, event.pkt_len), (42, 2, 98));
        assert_eq!(event.ifname, "veth1");
        assert_eq!(event.protocol, 0x0800);
        assert_eq!(event.link, Link::Ethernet);
        assert_eq!(event.data, [1, 2, 3]);

        raw.cap_len = 10;
        assert_eq!(Event::decode(&record(&raw, &[1, 2, 3])), Err(DecodeError::Truncated { claimed: 10, carried: 3 }));
        assert_eq!(Event::decode(&[0; 10]), Err(DecodeError::Short(10, HEADER_SIZE)));
        raw.cap_len = 0;
        raw.link = 9;
        assert_eq!(Event::decode(&record(&raw, &[])), Err(DecodeError::BadLink(9)));
    }
}
