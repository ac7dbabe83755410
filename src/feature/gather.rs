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

    /// With --gather: show only journeys whose first-to-last delay is at least this long
    /// (e.g. 500us, 2ms, 1s): the slow packets. Hop statistics still count every journey.
    #[arg(long = "gather-min-latency", value_parser = parse_duration, requires = "gather")]
    pub gather_min_latency: Option<u64>,

    /// With --gather: color of the journey lines.
    #[arg(long = "gather-output-color", value_enum, default_value = "green")]
    pub gather_output_color: Color,
}

/// "250ns", "500us", "2ms", "1s" (or plain nanoseconds) as nanoseconds.
fn parse_duration(text: &str) -> Result<u64, String> {
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "" | "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return Err(format!("'{text}': give a duration such as 250ns, 500us, 2ms or 1s")),
    };
    let value: f64 =
        number.parse().map_err(|_| format!("'{text}': give a duration such as 250ns, 500us, 2ms or 1s"))?;
    Ok((value * scale).round() as u64)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_their_units() {
        assert_eq!(parse_duration("250ns"), Ok(250));
        assert_eq!(parse_duration("1.5ms"), Ok(1_500_000));
        assert_eq!(parse_duration("2s"), Ok(2_000_000_000));
        assert_eq!(parse_duration("700"), Ok(700));
        assert!(parse_duration("3 weeks").unwrap_err().contains("such as 250ns"));
    }
}
