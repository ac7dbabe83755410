//! `--json`: one JSON object per event, one per line (the fields are listed
//! in the README), and a last object with the summary.

use std::io::{self, Write};

use serde_json::{Map, Value, json};

use super::{Context, Sink};
use crate::event::{Event, FLAG_CHAINED, FLAG_MBUF, FLAG_PAGED_MISSED, Link};
use crate::feature::{ct, drop, fake_headers, fields, gather, nft, progs, retval, scope, stack, track, user};
use crate::packet;

pub struct JsonSink<W: Write> {
    out: W,
}

impl<W: Write> JsonSink<W> {
    pub fn new(out: W) -> Self {
        JsonSink { out }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn headers(event: &Event) -> Value {
    let h = packet::headers(event.link, &event.data);
    let mut map = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            map.insert(key.to_string(), value);
        }
    };
    put("eth_src", h.eth_src.map(Value::from));
    put("eth_dst", h.eth_dst.map(Value::from));
    put("ethertype", h.ethertype.map(|t| Value::from(format!("0x{t:04x}"))));
    put("vlan", (!h.vlans.is_empty()).then(|| Value::from(h.vlans.clone())));
    put("ip_src", h.ip_src.map(|a| Value::from(a.to_string())));
    put("ip_dst", h.ip_dst.map(|a| Value::from(a.to_string())));
    put("ip_protocol", h.ip_protocol.map(Value::from));
    put("ttl", h.ttl.map(Value::from));
    put("ip_id", h.ip_id.map(Value::from));
    put("fragment_offset", h.fragment_offset.map(Value::from));
    put("sport", h.sport.map(Value::from));
    put("dport", h.dport.map(Value::from));
    put("tcp_flags", h.tcp_flags.map(Value::from));
    put("tcp_seq", h.tcp_seq.map(Value::from));
    put("tcp_ack", h.tcp_ack.map(Value::from));
    put("icmp_type", h.icmp_type.map(Value::from));
    put("icmp_code", h.icmp_code.map(Value::from));
    Value::Object(map)
}

pub fn object(event: &Event, context: &Context) -> Value {
    let point = |index| context.point_name(index);
    let (user, ext_arg) = user::json(event, context.user_layout.as_deref());
    let cgroup = scope::cgroup_json(event, context.cgroup_paths.as_deref());
    json!({
        "time_ns": context.wall_clock_ns(event),
        "point": context.point(event),
        "device": event.ifname,
        "ifindex": event.ifindex,
        "netns": event.netns,
        "netns_name": scope::json(event, context.netns_names.as_deref()),
        "fields": fields::json(event, context.skb_fields.as_deref()),
        "ct": ct::json(event),
        "cgroup": cgroup.0,
        "cgroup_path": cgroup.1,
        "len": event.pkt_len,
        "caplen": event.data.len(),
        "paged_len": event.paged_len,
        "paged_data_captured": event.flags & FLAG_PAGED_MISSED == 0,
        "headers_synthesized": fake_headers::synthesized(event),
        "link": match event.link { Link::Ethernet => "ethernet", Link::Raw => "ip" },
        // The packet's address: an sk_buff, or for netcap mbuf/raw an rte_mbuf or buffer.
        "skb": format!("0x{:x}", event.skb),
        "mbuf": event.flags & FLAG_MBUF != 0,
        "mbuf_chained": event.flags & FLAG_CHAINED != 0,
        "cpu": event.cpu,
        "pid": event.pid,
        "comm": event.comm,
        "mark": event.mark,
        "protocol": format!("0x{:04x}", event.protocol),
        "summary": packet::summary(event.link, &event.data, event.pkt_len as usize),
        "headers": headers(event),
        "drop": drop::json(event),
        "stack": stack::json(event),
        "journey": gather::json(event, point),
        "retval": retval::json(event),
        "verdict": progs::json(event),
        "nft": nft::json(event),
        "track": track::json(event),
        "lineage": track::lineage_json(event),
        "saved": event.saved.as_deref(),
        "ext_arg": ext_arg,
        "user": user,
        "data": hex(&event.data),
    })
}

impl<W: Write> Sink for JsonSink<W> {
    fn write(&mut self, event: &Event, context: &Context) -> io::Result<()> {
        writeln!(self.out, "{}", object(event, context))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The closing object: `{"summary": {...}}`.
    fn summary(&mut self, totals: &Value) -> io::Result<()> {
        writeln!(self.out, "{}", json!({ "summary": totals }))?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Drop;
    use crate::event::tests::sample_event;

    #[test]
    fn one_parsable_line_per_event_with_its_fields() {
        let mut event = sample_event();
        event.drop = Some(Drop { reason: "NO_SOCKET".into(), location: Some("f+0x1".into()) });
        let context = Context::plain(vec!["kfree_skb".into()]);
        let mut out = Vec::new();
        let mut sink = JsonSink::new(&mut out);
        sink.write(&event, &context).unwrap();
        sink.summary(&json!({ "captured": 1, "lost": 0 })).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        let e = &lines[0];
        assert_eq!(e["point"], "kfree_skb");
        assert_eq!(e["device"], "veth1");
        assert_eq!(e["len"], 98);
        assert_eq!(e["headers"]["ip_src"], "198.18.0.1");
        assert_eq!(e["headers"]["icmp_type"], 8);
        assert_eq!(e["drop"]["reason"], "NO_SOCKET");
        assert_eq!(e["summary"], "IP 198.18.0.1 > 198.18.0.2: ICMP echo request, id 3, seq 1, length 64");
        assert_eq!(e["data"].as_str().unwrap().len(), 98 * 2);
        assert_eq!(lines[1]["summary"]["captured"], 1);
    }
}
