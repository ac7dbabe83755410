//! --ct: the conntrack entry each skb carries (`skb->_nfct`), read in the
//! kernel where the packet is (bpf/lib/ct.h; tracepoints included): the
//! packet's state in it, the original and reply tuples (a NAT shows as a
//! reply that is not the original reversed), zone, mark and status bits.
//! Text: ` ct NEW orig 198.18.1.1:40000>198.18.1.100:80 reply
//! 198.18.2.2:8080>198.18.1.1:40000 [CONFIRMED,DST_NAT]`; JSON: `ct`; pcapng
//! comment: ` ct=…`. An skb without an entry shows nothing.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{Value, json};

use crate::bpf::types::{netcap_ct_tuple, netcap_section_ct};
use crate::event::Event;
use crate::plan::Target;

#[derive(Debug, Clone, clap::Args)]
pub struct CtArgs {
    /// Show the conntrack entry of each skb that has one: the packet's state in it (NEW,
    /// ESTABLISHED, RELATED, … and whether it goes the reply way), the original and reply tuples
    /// (which show NAT), zone, mark and status bits.
    #[arg(long = "ct")]
    pub ct: bool,
}

pub fn wants_section(target: &Target, ct: bool) -> bool {
    ct && target.has_skb()
}

/// One direction of the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
}

/// The entry as the kernel had it when the event happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conntrack {
    /// enum ip_conntrack_info.
    pub info: u8,
    pub protonum: u8,
    pub status: u64,
    pub mark: u32,
    pub zone: u16,
    pub original: Tuple,
    pub reply: Tuple,
}

const AF_INET6: u8 = 10;

fn tuple(raw: &netcap_ct_tuple, l3num: u8) -> Tuple {
    let address = |bytes: &[u8; 16]| -> IpAddr {
        if l3num == AF_INET6 {
            IpAddr::V6(Ipv6Addr::from(*bytes))
        } else {
            IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
        }
    };
    Tuple {
        src: address(&raw.src),
        dst: address(&raw.dst),
        sport: u16::from_be(raw.sport),
        dport: u16::from_be(raw.dport),
    }
}

impl Conntrack {
    pub fn from_section(raw: &netcap_section_ct) -> Option<Conntrack> {
        (raw.present == 1).then(|| Conntrack {
            info: raw.ctinfo,
            protonum: raw.protonum,
            status: raw.status,
            mark: raw.mark,
            zone: raw.zone,
            original: tuple(&raw.original, raw.l3num),
            reply: tuple(&raw.reply, raw.l3num),
        })
    }

    /// The packet's state, as conntrack -L and iptables' --ctstate name it.
    pub fn state(&self) -> &'static str {
        match self.info {
            0 | 3 => "ESTABLISHED",
            1 | 4 => "RELATED",
            2 => "NEW",
            7 => "UNTRACKED",
            _ => "?",
        }
    }

    /// The packet goes the reply way (IP_CT_IS_REPLY).
    pub fn is_reply(&self) -> bool {
        matches!(self.info, 3 | 4)
    }

    /// enum ip_conntrack_status bits by name.
    pub fn status_names(&self) -> Vec<&'static str> {
        const NAMES: [&str; 16] = [
            "EXPECTED",
            "SEEN_REPLY",
            "ASSURED",
            "CONFIRMED",
            "SRC_NAT",
            "DST_NAT",
            "SEQ_ADJUST",
            "SRC_NAT_DONE",
            "DST_NAT_DONE",
            "DYING",
            "FIXED_TIMEOUT",
            "TEMPLATE",
            "UNTRACKED",
            "HELPER",
            "OFFLOAD",
            "HW_OFFLOAD",
        ];
        NAMES.iter().enumerate().filter(|(bit, _)| self.status & (1 << bit) != 0).map(|(_, n)| *n).collect()
    }

    fn uses_ports(&self) -> bool {
        matches!(self.protonum, 6 | 17 | 33 | 132 | 136)
    }

    fn tuple_text(&self, tuple: &Tuple) -> String {
        let host = |address: &IpAddr, port: u16| match (address, self.uses_ports()) {
            (IpAddr::V6(a), true) => format!("[{a}]:{port}"),
            (a, true) => format!("{a}:{port}"),
            (a, false) => a.to_string(),
        };
        format!("{}>{}", host(&tuple.src, tuple.sport), host(&tuple.dst, tuple.dport))
    }

    /// `ct NEW orig A:p>B:q reply C:r>A:p [CONFIRMED,DST_NAT]` and zone/mark when set.
    pub fn text(&self) -> String {
        let mut text = format!("ct {}", self.state());
        if self.is_reply() {
            text.push_str(" reply-direction");
        }
        let _ = write!(text, " orig {} reply {}", self.tuple_text(&self.original), self.tuple_text(&self.reply));
        let _ = write!(text, " [{}]", self.status_names().join(","));
        if self.zone != 0 {
            let _ = write!(text, " zone {}", self.zone);
        }
        if self.mark != 0 {
            let _ = write!(text, " mark {:#x}", self.mark);
        }
        text
    }

    fn tuple_json(tuple: &Tuple) -> Value {
        json!({ "src": tuple.src.to_string(), "dst": tuple.dst.to_string(), "sport": tuple.sport, "dport": tuple.dport })
    }
}

pub fn suffix(text: &mut String, event: &Event) {
    if let Some(ct) = &event.ct {
        let _ = write!(text, " {}", ct.text());
    }
}

pub fn comment(text: &mut String, event: &Event) {
    if let Some(ct) = &event.ct {
        let _ = write!(text, " ct=\"{}\"", ct.text().trim_start_matches("ct "));
    }
}

pub fn json(event: &Event) -> Value {
    let Some(ct) = &event.ct else { return Value::Null };
    json!({
        "state": ct.state(),
        "reply_direction": ct.is_reply(),
        "protocol": ct.protonum,
        "original": Conntrack::tuple_json(&ct.original),
        "reply": Conntrack::tuple_json(&ct.reply),
        "status": ct.status_names(),
        "zone": ct.zone,
        "mark": ct.mark,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dnat_entry_reads_as_conntrack_prints_it() {
        let mut raw = netcap_section_ct {
            present: 1,
            ctinfo: 2,
            l3num: 2,
            protonum: 6,
            status: 0b1_0010_1000,
            ..Default::default()
        };
        raw.original.src[..4].copy_from_slice(&[198, 18, 1, 1]);
        raw.original.dst[..4].copy_from_slice(&[198, 18, 1, 100]);
        (raw.original.sport, raw.original.dport) = (40000u16.to_be(), 80u16.to_be());
        raw.reply.src[..4].copy_from_slice(&[198, 18, 2, 2]);
        raw.reply.dst[..4].copy_from_slice(&[198, 18, 1, 1]);
        (raw.reply.sport, raw.reply.dport) = (8080u16.to_be(), 40000u16.to_be());
        let ct = Conntrack::from_section(&raw).unwrap();
        assert_eq!(
            ct.text(),
            "ct NEW orig 198.18.1.1:40000>198.18.1.100:80 reply 198.18.2.2:8080>198.18.1.1:40000 [CONFIRMED,DST_NAT,DST_NAT_DONE]"
        );
        raw.ctinfo = 3;
        assert!(Conntrack::from_section(&raw).unwrap().text().starts_with("ct ESTABLISHED reply-direction orig"));
        raw.present = 0;
        assert_eq!(Conntrack::from_section(&raw), None);
    }
}
