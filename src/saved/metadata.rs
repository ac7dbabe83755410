//! What netcap wrote about a packet (the pcapng comment of `sink::pcapng`),
//! read back into an `Event`: its trace point, device, skb, task, length,
//! drop, return value, track and stack; what has no field of its own stays
//! as written, in `Event::saved`.

use crate::event::{Drop, Event, FLAG_CHAINED, FLAG_MBUF, FLAG_PAGED_MISSED, FLAG_SYNTHESIZED, Lineage, Link};

use super::Packet;

/// The comment's parts: `key=value`, a value in braces or quotes kept
/// whole, and bare words (a track's lineage).
fn parts(comment: &str) -> Vec<&str> {
    let mut parts = Vec::with_capacity(16);
    let (mut start, mut depth, mut quoted) = (0, 0i32, false);
    // Bytes, not chars: the separators are ASCII, and a multi-byte
    // character never contains one.
    for (at, c) in comment.bytes().enumerate() {
        match c {
            b'"' => quoted = !quoted,
            b'{' if !quoted => depth += 1,
            b'}' if !quoted => depth -= 1,
            b' ' if !quoted && depth <= 0 => {
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
    restore_with(packet, packet.data.clone(), link)
}

/// The same, the packet's bytes moved into the event.
pub fn take(mut packet: Packet, link: Link) -> Event {
    let data = std::mem::take(&mut packet.data);
    restore_with(&packet, data, link)
}

fn restore_with(packet: &Packet, data: Vec<u8>, link: Link) -> Event {
    let mut event = Event {
        trace_index: u16::try_from(packet.interface).unwrap_or(u16::MAX),
        pkt_len: packet.wire_len,
        track: packet.packet_id.unwrap_or(0),
        ..Event::blank(packet.time_ns, link, data)
    };
    let Some(comment) = &packet.comment else { return event };
    let mut rest = Vec::new();
    let mut synthesized_l2 = false;
    let mut after_track = false;
    // comm may hold spaces: it runs to the part that starts with "len=".
    let mut in_comm = false;
    for part in parts(comment) {
        if in_comm && !part.starts_with("len=") {
            event.comm.push(' ');
            event.comm.push_str(part);
            continue;
        }
        in_comm = false;
        let (key, value) = match part.as_bytes().iter().position(|&b| b == b'=') {
            Some(at) => (&part[..at], &part[at + 1..]),
            None => (part, ""),
        };
        let number = || value.parse::<u64>().ok();
        let was_track = std::mem::take(&mut after_track);
        match key {
            "point" => {}
            "comm" => {
                event.comm = value.to_string();
                in_comm = true;
            }
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
            "verdict" => event.verdict = crate::feature::progs::Verdict::parse(value),
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
