//! pcapng output: one interface block per trace point (so Wireshark's
//! interface column says where the packet was seen), nanosecond
//! timestamps, and a comment on every packet with what netcap knows.
//!
//! libpcap refuses a pcapng section whose interfaces differ in link type,
//! so every packet is written as Ethernet: a packet captured without an
//! L2 header gets a zero-MAC header, and its comment says so.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

use super::{Context, Sink};
use crate::event::{Event, FLAG_CHAINED, FLAG_MBUF, FLAG_PAGED_MISSED, Link};
use crate::feature::{ct, drop, fake_headers, fields, gather, nft, progs, retval, scope, stack, track, user};

const SECTION_HEADER: u32 = 0x0A0D_0D0A;
const INTERFACE_DESCRIPTION: u32 = 1;
const ENHANCED_PACKET: u32 = 6;
const LINKTYPE_ETHERNET: u16 = 1;

const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
/// Enhanced Packet Block option: a 64-bit packet id (pcapng spec, epb_packetid).
const EPB_PACKETID: u16 = 5;
/// Enhanced Packet Block option: what a tc or XDP program decided (epb_verdict).
const EPB_VERDICT: u16 = 7;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_DESCRIPTION: u16 = 3;
const IF_TSRESOL: u16 = 9;

pub struct PcapngSink<W: Write> {
    out: W,
    /// Reused for every packet: its block, and its comment.
    block: Vec<u8>,
    comment: String,
}

fn option(body: &mut Vec<u8>, code: u16, value: &[u8]) {
    body.extend_from_slice(&code.to_le_bytes());
    body.extend_from_slice(&(value.len() as u16).to_le_bytes());
    body.extend_from_slice(value);
    body.resize(body.len().next_multiple_of(4), 0);
}

fn end_options(body: &mut Vec<u8>) {
    body.extend_from_slice(&OPT_END.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
}

fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let total = (12 + body.len()) as u32;
    let mut block = Vec::with_capacity(total as usize);
    block.extend_from_slice(&kind.to_le_bytes());
    block.extend_from_slice(&total.to_le_bytes());
    block.extend_from_slice(body);
    block.extend_from_slice(&total.to_le_bytes());
    block
}

/// The bytes as written: Ethernet, a zero-MAC header added where there was
/// none (only then is the packet copied).
pub fn ethernet_frame(event: &Event) -> (Cow<'_, [u8]>, u32) {
    match event.link {
        Link::Ethernet => (Cow::Borrowed(&event.data), event.pkt_len),
        Link::Raw => {
            let ethertype: u16 = if event.data.first().is_some_and(|b| b >> 4 == 6) { 0x86dd } else { 0x0800 };
            let mut frame = vec![0u8; 12];
            frame.extend_from_slice(&ethertype.to_be_bytes());
            frame.extend_from_slice(&event.data);
            (Cow::Owned(frame), event.pkt_len + 14)
        }
    }
}

/// The per-packet comment: everything netcap knows that the bytes do not
/// say. Written into `text` (cleared first), which the sink reuses: at a
/// million packets a second, a fresh string per packet shows.
pub fn write_comment(text: &mut String, event: &Event, context: &Context) {
    text.clear();
    // Writing into a String cannot fail.
    let _ = write!(
        text,
        "point={} dev={} ifindex={} {}=0x{:x} cpu={} pid={} comm={} len={}",
        context.point(event),
        if event.ifname.is_empty() { "-" } else { &event.ifname },
        event.ifindex,
        if event.flags & FLAG_MBUF != 0 { "mbuf" } else { "skb" },
        event.skb,
        event.cpu,
        event.pid,
        event.comm,
        event.pkt_len
    );
    if event.paged_len > 0 {
        let _ = write!(text, " paged={}", event.paged_len);
    }
    if event.link == Link::Raw {
        text.push_str(" l2=synthesized");
    }
    if event.flags & FLAG_PAGED_MISSED != 0 {
        text.push_str(" paged_data=not_captured");
    }
    fake_headers::comment(text, event);
    if event.flags & FLAG_CHAINED != 0 {
        text.push_str(" segments=chained");
    }
    drop::comment(text, event);
    retval::comment(text, event);
    progs::comment(text, event);
    nft::comment(text, event);
    track::comment(text, event);
    scope::comment(text, event, context.netns_names.as_deref());
    fields::comment(text, event, context.skb_fields.as_deref());
    scope::owner_comment(text, event, context.cgroup_paths.as_deref());
    ct::comment(text, event);
    user::comment(text, event, context.user_layout.as_deref());
    stack::comment(text, event);
    gather::comment(text, event, |index| context.point_name(index));
    if let Some(saved) = &event.saved {
        text.push(' ');
        text.push_str(saved);
    }
}

impl<W: Write> PcapngSink<W> {
    /// Writes the section header and one interface per trace point.
    pub fn new(mut out: W, context: &Context, snaplen: u32) -> io::Result<Self> {
        let mut body = Vec::new();
        body.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&(-1i64).to_le_bytes()); // section length unknown
        option(&mut body, SHB_USERAPPL, concat!("netcap ", env!("CARGO_PKG_VERSION")).as_bytes());
        end_options(&mut body);
        out.write_all(&block(SECTION_HEADER, &body))?;
        for point in &context.points {
            let mut body = Vec::new();
            body.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
            body.extend_from_slice(&0u16.to_le_bytes());
            body.extend_from_slice(&(snaplen + 14).to_le_bytes());
            option(&mut body, IF_NAME, point.as_bytes());
            option(&mut body, IF_DESCRIPTION, format!("netcap trace point {point}").as_bytes());
            option(&mut body, IF_TSRESOL, &[9]); // nanoseconds
            end_options(&mut body);
            out.write_all(&block(INTERFACE_DESCRIPTION, &body))?;
        }
        Ok(PcapngSink { out, block: Vec::new(), comment: String::new() })
    }
}

impl<W: Write> Sink for PcapngSink<W> {
    fn write(&mut self, event: &Event, context: &Context) -> io::Result<()> {
        let (frame, original) = ethernet_frame(event);
        let time = context.wall_clock_ns(event);
        write_comment(&mut self.comment, event, context);
        // The block is built in a buffer the sink keeps, its total length
        // filled in at the end.
        let block = &mut self.block;
        block.clear();
        block.extend_from_slice(&ENHANCED_PACKET.to_le_bytes());
        block.extend_from_slice(&0u32.to_le_bytes());
        block.extend_from_slice(&u32::from(event.trace_index).to_le_bytes());
        block.extend_from_slice(&((time >> 32) as u32).to_le_bytes());
        block.extend_from_slice(&(time as u32).to_le_bytes());
        block.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        block.extend_from_slice(&original.to_le_bytes());
        block.extend_from_slice(&frame);
        block.resize(block.len().next_multiple_of(4), 0);
        option(block, OPT_COMMENT, self.comment.as_bytes());
        if event.track != 0 {
            // epb_packetid: the same id on every event of one followed packet.
            option(block, EPB_PACKETID, &event.track.to_le_bytes());
        }
        if let Some(verdict) = event.verdict {
            option(block, EPB_VERDICT, &verdict.pcapng_option());
        }
        end_options(block);
        let total = (block.len() + 4) as u32;
        block[4..8].copy_from_slice(&total.to_le_bytes());
        block.extend_from_slice(&total.to_le_bytes());
        self.out.write_all(block)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample_event;
    use crate::packet::tests::{icmp_echo, ipv4};

    fn u32_at(bytes: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn blocks_are_well_formed_and_raw_packets_get_an_ethernet_header() {
        let data = ipv4(1, [198, 18, 0, 1], [198, 18, 0, 2], &icmp_echo(true, 1, 1, 8), 1, 0);
        let mut event = sample_event();
        event.time_ns = 5_000_000_123;
        event.trace_index = 1;
        event.ifindex = 3;
        event.ifname = "veth0".into();
        event.link = Link::Raw;
        event.pkt_len = data.len() as u32;
        event.data = data.clone();
        event.drop = Some(crate::event::Drop { reason: "NO_SOCKET".into(), location: None });
        event.stack = Some(vec!["a+0x1".to_string(), "b+0x2".to_string()].into());
        let context = Context::plain(vec!["ip_rcv".into(), "net_dev_xmit".into()]);
        let mut out = Vec::new();
        let mut sink = PcapngSink::new(&mut out, &context, 256).unwrap();
        sink.write(&event, &context).unwrap();
        sink.flush().unwrap();

        // Walk the blocks: each one's two length fields agree and are 4-aligned.
        let mut at = 0;
        let mut kinds = Vec::new();
        while at < out.len() {
            let (kind, total) = (u32_at(&out, at), u32_at(&out, at + 4) as usize);
            assert_eq!(total % 4, 0);
            assert_eq!(u32_at(&out, at + total - 4) as usize, total);
            kinds.push(kind);
            if kind == ENHANCED_PACKET {
                assert_eq!(u32_at(&out, at + 8), 1, "interface = trace index");
                let time = (u64::from(u32_at(&out, at + 12)) << 32) | u64::from(u32_at(&out, at + 16));
                assert_eq!(time, 5_000_000_123);
                let captured = u32_at(&out, at + 20) as usize;
                assert_eq!(captured, data.len() + 14);
                assert_eq!(&out[at + 28 + 12..at + 28 + 14], &[0x08, 0x00]);
                assert_eq!(&out[at + 28 + 14..at + 28 + captured], &data[..]);
                let text = String::from_utf8_lossy(&out[at + 28..at + total]);
                assert!(text.contains("point=net_dev_xmit dev=veth0 ifindex=3 skb=0xffff888000001000"), "{text}");
                assert!(text.contains("l2=synthesized"), "{text}");
                assert!(text.contains("drop=NO_SOCKET stack=a+0x1|b+0x2"), "{text}");
            }
            at += total;
        }
        assert_eq!(kinds, [SECTION_HEADER, INTERFACE_DESCRIPTION, INTERFACE_DESCRIPTION, ENHANCED_PACKET]);
    }
}
