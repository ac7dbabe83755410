//! One line per event: wall-clock time (µs), trace point, device, length,
//! then the packet as netcap's decoder reads it.

use std::io::{self, Write};

use super::{Context, Sink};
use crate::event::{Event, FLAG_PAGED_MISSED};
use crate::feature::{ct, drop, fake_headers, fields, gather, nft, progs, retval, scope, stack, track, user};
use crate::packet;

pub struct TextSink<W: Write> {
    out: W,
    /// Each line starts with the time (`netcap read -t` leaves it out).
    time: bool,
}

impl<W: Write> TextSink<W> {
    pub fn new(out: W) -> Self {
        TextSink { out, time: true }
    }

    /// Lines without the time, as tcpdump -t prints them.
    pub fn without_time(out: W) -> Self {
        TextSink { out, time: false }
    }
}

/// "HH:MM:SS.uuuuuu" in local time, as tcpdump prints it.
pub fn clock_text(wall_ns: u64) -> String {
    let second = wall_ns / 1_000_000_000;
    let micros = (wall_ns % 1_000_000_000) / 1000;
    // localtime_r costs more than the rest of a line: once per second of events.
    thread_local!(static LAST: std::cell::Cell<(u64, [u8; 8])> = const { std::cell::Cell::new((u64::MAX, [0; 8])) });
    let (cached, mut clock) = LAST.get();
    if cached != second {
        // SAFETY: tm is plain data that localtime_r fills in.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are valid for the call.
        unsafe { libc::localtime_r(&(second as libc::time_t), &mut tm) };
        let text = format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec);
        clock.copy_from_slice(&text.as_bytes()[..8]);
        LAST.set((second, clock));
    }
    format!("{}.{micros:06}", std::str::from_utf8(&clock).unwrap_or("??:??:??"))
}

pub fn line(event: &Event, context: &Context) -> String {
    let device = event.device_label();
    let mut text = format!(
        "{} {} {} len {} {}",
        clock_text(context.wall_clock_ns(event)),
        context.point(event),
        device,
        event.pkt_len,
        packet::summary(event.link, &event.data, event.pkt_len as usize)
    );
    if event.flags & FLAG_PAGED_MISSED != 0 {
        text.push_str(" [paged data not captured]");
    }
    fake_headers::marker(&mut text, event);
    drop::suffix(&mut text, event);
    retval::suffix(&mut text, event);
    progs::suffix(&mut text, event);
    nft::suffix(&mut text, event);
    track::suffix(&mut text, event);
    scope::suffix(&mut text, event, context.netns_names.as_deref());
    fields::suffix(&mut text, event, context.skb_fields.as_deref());
    scope::owner_suffix(&mut text, event, context.cgroup_paths.as_deref());
    ct::suffix(&mut text, event);
    if let Some(saved) = &event.saved {
        text.push_str(" [");
        text.push_str(saved);
        text.push(']');
    }
    lines_after(&mut text, event, context);
    text
}

/// What features print under an event's line, in netcap's order: the
/// user's struct, the journey, the stack.
pub fn lines_after(text: &mut String, event: &Event, context: &Context) {
    user::line(text, event, context.user_layout.as_deref(), context.user_color);
    gather::lines(text, event, |index| context.point_name(index), context.gather_color);
    stack::lines(text, event, context.stack_color);
}

impl<W: Write> Sink for TextSink<W> {
    fn write(&mut self, event: &Event, context: &Context) -> io::Result<()> {
        let text = line(event, context);
        // The time is the line's first word.
        let text = if self.time { &text[..] } else { text.split_once(' ').map_or(&text[..], |(_, rest)| rest) };
        writeln!(self.out, "{text}")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Drop;
    use crate::event::tests::sample_event;

    #[test]
    fn a_line_names_point_device_length_and_packet() {
        let mut event = sample_event();
        event.trace_index = 1;
        let context = Context::plain(vec!["a".into(), "netif_receive_skb".into()]);
        let mut out = Vec::new();
        let mut sink = TextSink::new(&mut out);
        sink.write(&event, &context).unwrap();
        sink.flush().unwrap();
        let text = String::from_utf8(out).unwrap();
        let (time, rest) = text.split_once(' ').unwrap();
        assert_eq!(time.len(), "00:00:00.000001".len());
        assert!(time.ends_with(".000001"), "{time}");
        assert_eq!(
            rest,
            "netif_receive_skb veth1 len 98 IP 198.18.0.1 > 198.18.0.2: ICMP echo request, id 3, seq 1, length 64\n"
        );
    }

    #[test]
    fn a_program_s_verdict_ends_the_line_and_its_drop_names_the_program() {
        use crate::feature::progs::Verdict;
        use crate::kernel::progs::Hook;
        let context = Context::plain(vec!["tc:drop_tcp_9000[7]:exit".into()]);
        let mut event = sample_event();
        event.verdict = Some(Verdict { hook: Hook::Tc, code: 0 });
        assert!(line(&event, &context).ends_with("length 64 [verdict TC_ACT_OK]"), "{}", line(&event, &context));
        event.verdict = Some(Verdict { hook: Hook::Tc, code: 2 });
        event.drop = Some(Drop { reason: "TC_ACT_SHOT".into(), location: Some("tc:drop_tcp_9000[7]:exit".into()) });
        let text = line(&event, &context);
        assert!(text.ends_with("length 64 [drop TC_ACT_SHOT at tc:drop_tcp_9000[7]:exit]"), "{text}");
    }

    #[test]
    fn a_journey_lists_every_later_point() {
        let mut event = sample_event();
        event.journey = Some(vec![
            crate::event::Hop { trace_index: 1, delay_ns: Some(12_345), device: Some("veth1".into()) },
            crate::event::Hop { trace_index: 2, delay_ns: None, device: None },
        ]);
        let context = Context::plain(vec!["netif_receive_skb".into(), "ip_rcv".into(), "icmp_rcv".into()]);
        let text = line(&event, &context);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(&lines[1..], ["  seen 12.345µs later at ip_rcv", "  NOT seen at icmp_rcv"]);
    }

    #[test]
    fn drops_and_stacks_follow_the_packet() {
        let mut event = sample_event();
        event.drop = Some(Drop { reason: "NETFILTER_DROP".into(), location: Some("nf_hook_slow+0xa3".into()) });
        event.stack = Some(vec!["kfree_skb_reason+0x5".to_string(), "nf_hook_slow+0xa3".to_string()].into());
        let mut context = Context::plain(vec!["kfree_skb".into()]);
        let text = line(&event, &context);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with("length 64 [drop NETFILTER_DROP at nf_hook_slow+0xa3]"), "{text}");
        assert_eq!(&lines[1..], ["    kfree_skb_reason+0x5", "    nf_hook_slow+0xa3"]);
        context.stack_color = Some("\x1b[36m");
        assert!(line(&event, &context).ends_with("\n    \x1b[36mnf_hook_slow+0xa3\x1b[0m"));
    }
}
