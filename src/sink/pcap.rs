//! Classic pcap (nanosecond timestamps, Ethernet): for `--pcap` files and
//! for the stream netcap feeds to tcpdump with `-t`.

use std::io::{self, Write};

use super::pcapng::ethernet_frame;
use super::{Context, Sink};
use crate::event::Event;

/// The nanosecond-resolution magic number.
const MAGIC_NANOSECONDS: u32 = 0xa1b2_3c4d;
const LINKTYPE_ETHERNET: u32 = 1;

pub fn header(snaplen: u32) -> [u8; 24] {
    let mut bytes = [0u8; 24];
    bytes[0..4].copy_from_slice(&MAGIC_NANOSECONDS.to_le_bytes());
    bytes[4..6].copy_from_slice(&2u16.to_le_bytes());
    bytes[6..8].copy_from_slice(&4u16.to_le_bytes());
    bytes[16..20].copy_from_slice(&snaplen.to_le_bytes());
    bytes[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    bytes
}

/// One record: header and frame.
pub fn record(time_ns: u64, frame: &[u8], original_len: u32) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(16 + frame.len());
    bytes.extend_from_slice(&((time_ns / 1_000_000_000) as u32).to_le_bytes());
    bytes.extend_from_slice(&((time_ns % 1_000_000_000) as u32).to_le_bytes());
    bytes.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&original_len.to_le_bytes());
    bytes.extend_from_slice(frame);
    bytes
}

pub fn event_record(event: &Event, context: &Context) -> Vec<u8> {
    let (frame, original) = ethernet_frame(event);
    record(context.wall_clock_ns(event), &frame, original)
}

pub struct PcapSink<W: Write> {
    out: W,
}

impl<W: Write> PcapSink<W> {
    pub fn new(mut out: W, snaplen: u32) -> io::Result<Self> {
        out.write_all(&header(snaplen + 14))?;
        Ok(PcapSink { out })
    }
}

impl<W: Write> Sink for PcapSink<W> {
    fn write(&mut self, event: &Event, context: &Context) -> io::Result<()> {
        self.out.write_all(&event_record(event, context))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample_event;

    #[test]
    fn writes_the_classic_layout() {
        let event = sample_event();
        let context = Context { clock_offset_ns: 1_700_000_000_000_000_000, ..Context::plain(vec!["p".into()]) };
        let mut out = Vec::new();
        let mut sink = PcapSink::new(&mut out, 256).unwrap();
        sink.write(&event, &context).unwrap();
        sink.flush().unwrap();
        assert_eq!(&out[0..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
        assert_eq!(u32::from_le_bytes(out[16..20].try_into().unwrap()), 270);
        let record = &out[24..];
        assert_eq!(u32::from_le_bytes(record[0..4].try_into().unwrap()), 1_700_000_000);
        assert_eq!(u32::from_le_bytes(record[4..8].try_into().unwrap()), 1_000);
        assert_eq!(u32::from_le_bytes(record[8..12].try_into().unwrap()) as usize, event.data.len());
        assert_eq!(&record[16..], &event.data[..]);
    }
}
