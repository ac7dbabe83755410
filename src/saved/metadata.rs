//! What netcap wrote about a packet (the pcapng comment of `sink::pcapng`),
//! read back into an `Event`: its trace point, device, skb, task, length,
//! drop, return value, track and stack; what has no field of its own stays
//! as written, in `Event::saved`.

use crate::event::{Drop, Event, FLAG_CHAINED, FLAG_MBUF, FLAG_PAGED_MISSED, FLAG_SYNTHESIZED, Lineage, Link};

use super::Packet;

/// The comment's parts: `key=value`, a value in braces or quotes kept
/// whole, and bare words (a track's lineage).
fn parts(comment: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut depth, mut quoted) = (0, 0i32, false);
    for (at, c) in comment.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '{' if !quoted => depth += 1,
            '}' if !quoted => depth -= 1,
            ' ' if !quoted && depth <= 0 => {
                if at > start {
                    parts.push(&comment[start..at]);
                }
                start = at + 1;
            }
            _ => {}
        }
    }
    if start < comment.len() {
        parts.push(&comment[start..]);
    }
    parts
}

fn lineage(word: &str) -> Option<Lineage> {
    Some(match word {
        "clone" => Lineage::Clone,
        "copy" => Lineage::Copy,
        "segment" => Lineage::Segment,
        "merged" => Lineage::Merged,
        _ => return None,
    })
}

/// The event a saved packet stands for, as `link` says its bytes start
/// (netcap writes Ethernet, with a made-up header where there was none).
pub fn restore(packet: &Packet, link: Link) -> Event {
    let mut event = Event {
        time_ns: packet.time_ns,
        skb: 0,
        ext_arg: 0,
        trace_index: u16::try_from(packet.interface).unwrap_or(u16::MAX),
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
        pkt_len: packet.wire_len,
        paged_len: 0,
        data: packet.data.clone(),
        retval: None,
        reason: 0,
        location: 0,
        stack_id: -1,
        drop: None,
        stack: None,
        journey: None,
        user: None,
        track: packet.packet_id.unwrap_or(0),
        lineage: Lineage::Matched,
        cgroup: 0,
        ct: None,
        fields: None,
        number: 0,
        saved: None,
    };
    let Some(comment) = &packet.comment else { return event };
    // comm may hold spaces: it runs to " len=".
    let comment = match (comment.find(" comm="), comment.find(" len=")) {
        (Some(from), Some(to)) if from < to => {
            event.comm = comment[from + 6..to].to_string();
            format!("{}{}", &comment[..from], &comment[to..])
        }
        _ => comment.clone(),
    };
    let mut rest = Vec::new();
    let mut synthesized_l2 = false;
    let mut after_track = false;
    for part in parts(&comment) {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let number = || value.parse::<u64>().ok();
        let was_track = std::mem::take(&mut after_track);
        match key {
            "point" => {}
            "dev" => event.ifname = if value == "-" { String::new() } else { value.to_string() },
            "ifindex" => event.ifindex = number().unwrap_or(0) as u32,
            "skb" | "mbuf" => {
                event.skb = u64::from_str_radix(value.trim_start_matches("0x"), 16).unwrap_or(0);
                if key == "mbuf" {
                    event.flags |= FLAG_MBUF;
                }
            }
            "cpu" => event.cpu = number().unwrap_or(0) as u16,
            "pid" => event.pid = number().unwrap_or(0) as u32,
            "len" => event.pkt_len = number().unwrap_or(u64::from(packet.wire_len)) as u32,
            "paged" => event.paged_len = number().unwrap_or(0) as u32,
            "l2" if value == "synthesized" => synthesized_l2 = true,
            "paged_data" => event.flags |= FLAG_PAGED_MISSED,
            "headers" if value == "synthesized" => event.flags |= FLAG_SYNTHESIZED,
            "segments" => event.flags |= FLAG_CHAINED,
            "drop" => event.drop = Some(Drop { reason: value.to_string(), location: None }),
            "location" => {
                if let Some(drop) = &mut event.drop {
                    drop.location = Some(value.to_string());
                }
            }
            "ret" => event.retval = value.parse().ok(),
            "track" => {
                event.track = number().unwrap_or(event.track);
                after_track = true;
            }
            "stack" => event.stack = Some(value.split('|').map(str::to_string).collect::<Vec<_>>().into()),
            // Made again by --gather from the sightings themselves.
            "journey" => {}
            _ => match lineage(part).filter(|_| was_track) {
                Some(found) => event.lineage = found,
                None => rest.push(part),
            },
        }
    }
    if synthesized_l2 && event.data.len() >= 14 {
        // netcap put a zero-MAC header in front of a packet that had none.
        event.link = Link::Raw;
        event.data.drain(..14);
        event.pkt_len = event.pkt_len.saturating_sub(14).max(event.data.len() as u32);
    }
    if !rest.is_empty() {
        event.saved = Some(rest.join(" ").into());
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_in_braces_and_quotes_stay_whole() {
        assert_eq!(
            parts(r#"point=a fields={len=60, mark=0x10} ct="NEW orig 1.2.3.4" track=2 clone"#),
            ["point=a", "fields={len=60, mark=0x10}", r#"ct="NEW orig 1.2.3.4""#, "track=2", "clone"]
        );
    }
}
