//! One line per event: wall-clock time (µs), trace point, device, length,
//! then the packet as netcap's decoder reads it.

use std::io::{self, Write};

use super::{Context, Sink};
use crate::event::{Event, FLAG_PAGED_MISSED};
use crate::packet;

pub struct TextSink<W: Write> {
    out: W,
}

impl<W: Write> TextSink<W> {
    pub fn new(out: W) -> Self {
        TextSink { out }
    }
}

/// "HH:MM:SS.uuuuuu" in local time, as tcpdump prints it.
pub fn clock_text(wall_ns: u64) -> String {
    let seconds = (wall_ns / 1_000_000_000) as libc::time_t;
    let micros = (wall_ns % 1_000_000_000) / 1000;
    // SAFETY: tm is plain data that localtime_r fills in.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    unsafe { libc::localtime_r(&seconds, &mut tm) };
    format!("{:02}:{:02}:{:02}.{micros:06}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

pub fn line(event: &Event, context: &Context) -> String {
    let device = if event.ifname.is_empty() { "-" } else { &event.ifname };
    let mut text = format!(
        "{} {} {} len {} {}",
        clock_text(context.wall_clock_ns(event)),
        context.point(event),
        device,
        event.pkt_len,
        packet::describe(event.link, &event.data)
    );
    if event.flags & FLAG_PAGED_MISSED != 0 {
        text.push_str(" [paged data not captured]");
    }
    text
}

impl<W: Write> Sink for TextSink<W> {
    fn write(&mut self, event: &Event, context: &Context) -> io::Result<()> {
        writeln!(self.out, "{}", line(event, context))
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Link;
    use crate::packet::tests::{ether, icmp_echo, ipv4};

    #[test]
    fn a_line_names_point_device_length_and_packet() {
        let data = ether(0x0800, &ipv4(1, [198, 18, 0, 1], [198, 18, 0, 2], &icmp_echo(true, 3, 1, 56), 1, 0));
        let event = Event {
            time_ns: 1_000,
            skb: 0,
            ext_arg: 0,
            trace_index: 1,
            cpu: 0,
            pid: 0,
            comm: String::new(),
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
        };
        let context = Context { points: vec!["a".into(), "netif_receive_skb".into()], clock_offset_ns: 0 };
        let mut out = Vec::new();
        let mut sink = TextSink::new(&mut out);
        sink.write(&event, &context).unwrap();
        sink.finish().unwrap();
        let text = String::from_utf8(out).unwrap();
        let (time, rest) = text.split_once(' ').unwrap();
        assert_eq!(time.len(), "00:00:00.000001".len());
        assert!(time.ends_with(".000001"), "{time}");
        assert_eq!(
            rest,
            "netif_receive_skb veth1 len 98 IP 198.18.0.1 > 198.18.0.2: ICMP echo request, id 3, seq 1, length 64\n"
        );
    }
}
