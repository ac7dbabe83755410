//! Following a packet (--track): once an skb matches, the kernel keeps it in
//! a map by address and shows it at every later point, filters or not, until
//! it frees it (skb:kfree_skb, skb:consume_skb; netcap attaches those itself).
//! Each followed packet's events carry one track id, renumbered 1, 2, 3… by
//! `pipeline` in order of first sight: ` #N` on the event's line, `track` in
//! JSON, ` track=N` in the pcapng comment and the Enhanced Packet Block's
//! standard `epb_packetid` option (Wireshark's `frame.packet_id`).
//!
//! Where the kernel has fentry or kprobes, the skbs it makes from a followed
//! one (clones, copies, GSO segments, and a GRO packet a followed one was
//! merged into) carry its id on, and say so after it: ` #N clone`.

use std::fmt::Write as _;

use serde_json::Value;

use crate::event::{Event, Lineage};

#[derive(Debug, Clone, clap::Args)]
pub struct TrackArgs {
    /// Follow each matched packet until the kernel frees it: it is shown at every later point
    /// even when it no longer matches -e, -i or the ext filter (after NAT, encapsulation, a veth
    /// into another namespace), its events sharing one track id.
    #[arg(long = "track", visible_alias = "filter-track-skb")]
    pub track: bool,

    /// Most packets --track follows at once. Beyond it the least recently seen are dropped from
    /// the table and no longer followed; the summary counts them.
    #[arg(long = "track-max-packets", value_name = "N", default_value_t = 65536, requires = "track",
          value_parser = clap::value_parser!(u32).range(64..=4_194_304))]
    pub track_max_packets: u32,
}

pub fn wants_section(track: bool) -> bool {
    track
}

pub fn suffix(text: &mut String, event: &Event) {
    if event.track != 0 {
        let _ = write!(text, " #{}", event.track);
        lineage(text, event);
    }
}

pub fn json(event: &Event) -> Value {
    if event.track != 0 { event.track.into() } else { Value::Null }
}

/// JSON `lineage`: how a followed skb got its id, null for one that matched.
pub fn lineage_json(event: &Event) -> Value {
    match event.lineage.label() {
        "" => Value::Null,
        label => label.into(),
    }
}

pub fn comment(text: &mut String, event: &Event) {
    if event.track != 0 {
        let _ = write!(text, " track={}", event.track);
        lineage(text, event);
    }
}

fn lineage(text: &mut String, event: &Event) {
    if event.lineage != Lineage::Matched {
        let _ = write!(text, " {}", event.lineage.label());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample_event;

    #[test]
    fn a_track_shows_on_the_line_in_json_and_in_the_comment() {
        let mut event = sample_event();
        event.track = 7;
        let (mut text, mut note) = (String::new(), String::new());
        suffix(&mut text, &event);
        comment(&mut note, &event);
        assert_eq!((text.as_str(), note.as_str(), json(&event)), (" #7", " track=7", Value::from(7)));
        assert_eq!(lineage_json(&event), Value::Null);
        event.track = 0;
        assert_eq!(json(&event), Value::Null);
    }

    #[test]
    fn an_skb_made_from_a_followed_one_says_how() {
        let mut event = sample_event();
        (event.track, event.lineage) = (3, Lineage::Segment);
        let (mut text, mut note) = (String::new(), String::new());
        suffix(&mut text, &event);
        comment(&mut note, &event);
        assert_eq!(
            (text.as_str(), note.as_str(), lineage_json(&event)),
            (" #3 segment", " track=3 segment", Value::from("segment"))
        );
    }
}
