//! `--gather`: each packet followed across the trace points, printed once
//! with the delay to each later point (the joining is `pipeline::gather`'s,
//! in user space; nothing is asked of the kernel). Shown as `seen … later
//! at P` / `NOT seen at P` lines, `journey` in JSON, ` journey=P:+Nns,…` in
//! the pcapng comment.

use std::fmt::Write as _;

use clap::Args;
use serde_json::{Value, json};

use super::{Color, colored_line};
use crate::event::Event;
use crate::pipeline::gather::duration;

#[derive(Debug, Args)]
pub struct GatherArgs {
    /// Follow each packet across the trace points and print the delays.
    #[arg(short = 'G', long)]
    pub gather: bool,

    /// With --gather: match packets by skb (or mbuf) address instead of content.
    #[arg(long = "gather-distinguish-by-pointer")]
    pub gather_distinguish_by_pointer: bool,

    /// With --gather: seconds to wait for the later points.
    #[arg(long = "gather-timeout", default_value_t = 2)]
    pub gather_timeout: u32,

    /// With --gather: packets pending at once (16..2048).
    #[arg(long = "gather-buffer-size", default_value_t = 64, value_parser = clap::value_parser!(u32).range(16..=2048))]
    pub gather_buffer_size: u32,

    /// With --gather: color of the journey lines.
    #[arg(long = "gather-output-color", value_enum, default_value = "green")]
    pub gather_output_color: Color,
}

/// One line per later trace point, each after a newline.
pub fn lines<'a>(text: &mut String, event: &Event, point: impl Fn(u16) -> &'a str, color: Option<&str>) {
    for hop in event.journey.iter().flatten() {
        let line = match hop.delay_ns {
            Some(delay) => format!("  seen {} later at {}", duration(delay), point(hop.trace_index)),
            None => format!("  NOT seen at {}", point(hop.trace_index)),
        };
        colored_line(text, color, &line);
    }
}

pub fn json<'a>(event: &Event, point: impl Fn(u16) -> &'a str) -> Value {
    event
        .journey
        .as_ref()
        .map(|hops| {
            hops.iter()
                .map(|hop| json!({ "point": point(hop.trace_index), "delay_ns": hop.delay_ns, "device": hop.device }))
                .collect::<Vec<_>>()
        })
        .into()
}

pub fn comment<'a>(text: &mut String, event: &Event, point: impl Fn(u16) -> &'a str) {
    if let Some(journey) = &event.journey {
        text.push_str(" journey=");
        for (n, hop) in journey.iter().enumerate() {
            let separator = if n == 0 { "" } else { "," };
            let _ = match hop.delay_ns {
                Some(delay) => write!(text, "{separator}{}:+{delay}ns", point(hop.trace_index)),
                None => write!(text, "{separator}{}:not_seen", point(hop.trace_index)),
            };
        }
    }
}
