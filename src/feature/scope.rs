//! Where a packet is and what its skb says: --netns (its device's network
//! namespace; -i then names a device in there), --mark VALUE[/MASK], and
//! --skb-filter EXPR (any sk_buff field, `filter::skb`).
//! Both are checked in the kernel before a byte is read (bpf/entry/skb.h,
//! netcap_config's netns_only and mark_*), and decide first matches only: a
//! followed packet (--track) passes them. With --netns each event names its
//! namespace: ` netns NAME` (the inode when /var/run/netns has no name for
//! it), `netns_name` in JSON, ` netns=NAME` in the pcapng comment.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::event::Event;
use crate::plan::Target;

#[derive(Debug, Clone, clap::Args)]
pub struct ScopeArgs {
    /// Only packets whose device is in this network namespace: an inode number, a path
    /// (/var/run/netns/NAME, /proc/PID/ns/net), a name under /var/run/netns, or `any` (each event
    /// then names its namespace). -i names a device in it.
    #[arg(long, value_name = "NETNS")]
    pub netns: Option<String>,

    /// Only packets whose skb->mark, masked, equals VALUE: VALUE[/MASK], decimal or 0x hex
    /// (e.g. 0x10/0xff).
    #[arg(long, value_name = "VALUE[/MASK]", value_parser = parse_mark)]
    pub mark: Option<Mark>,

    /// Only packets whose sk_buff fields satisfy EXPR, e.g. 'mark & 0xff == 0x10 && len > 1000 &&
    /// dev->mtu == 9000 && sk->sk_protocol == 6': C-like (== != < <= > >= & | ^ << >> ! && ||,
    /// `.` and `->` through embedded structs and pointers, [N]), resolved against this kernel's
    /// BTF and run in the kernel, no compiler needed. & | ^ bind tighter than comparisons.
    #[arg(long = "skb-filter", value_name = "EXPR")]
    pub skb_filter: Option<String>,

    /// Only events of this process: the task running when the kernel handled the packet, which is
    /// its sender on the send path in process context, not in softirq (each event then names the
    /// task and the cgroup of the skb's socket).
    #[arg(long, value_name = "PID", value_parser = clap::value_parser!(u32).range(1..))]
    pub pid: Option<u32>,

    /// Only skbs whose socket belongs to this cgroup v2 (the cgroup of the task that made the
    /// socket: a container's traffic, in softirq too): a directory of the cgroup2 mount, or its
    /// path under it.
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<String>,
}

/// --pid and --cgroup, resolved: what the kernel compares, and whether
/// events carry the socket's cgroup to show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Owner {
    pub pid: Option<u32>,
    /// The cgroup's id (its directory's inode).
    pub cgroup: Option<u64>,
    /// Events name their task and socket's cgroup.
    pub shown: bool,
}

/// The socket's cgroup is read at kernel skb points when it is shown.
pub fn wants_cgroup_section(target: &Target, owner: bool) -> bool {
    owner && target.has_skb()
}

/// cgroup paths by id, to name the socket's cgroup with each event.
pub type CgroupPaths = HashMap<u64, String>;

fn cgroup_label(event: &Event, paths: &CgroupPaths) -> String {
    match event.cgroup {
        0 => "-".into(),
        id => paths.get(&id).cloned().unwrap_or_else(|| id.to_string()),
    }
}

/// ` pid 4242 nc cgroup /netcap-a`: the task that ran, the socket's cgroup.
pub fn owner_suffix(text: &mut String, event: &Event, paths: Option<&CgroupPaths>) {
    if let Some(paths) = paths {
        let _ = write!(
            text,
            " pid {} {} cgroup {}",
            event.pid,
            crate::event::printable(&event.comm),
            cgroup_label(event, paths)
        );
    }
}

pub fn owner_comment(text: &mut String, event: &Event, paths: Option<&CgroupPaths>) {
    if let Some(paths) = paths {
        let _ = write!(text, " cgroup={}", cgroup_label(event, paths));
    }
}

pub fn cgroup_json(event: &Event, paths: Option<&CgroupPaths>) -> (Value, Value) {
    match paths {
        Some(paths) if event.cgroup != 0 => {
            (event.cgroup.into(), paths.get(&event.cgroup).map_or(Value::Null, |p| p.as_str().into()))
        }
        _ => (Value::Null, Value::Null),
    }
}

/// --mark: (skb->mark & mask) == value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub value: u32,
    pub mask: u32,
}

fn number(text: &str) -> Option<u32> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

pub fn parse_mark(text: &str) -> Result<Mark, String> {
    let wrong = || format!("'{text}' is not a mark: write VALUE or VALUE/MASK, each a 32-bit number (e.g. 0x10/0xff)");
    let (value, mask) = match text.split_once('/') {
        Some((value, mask)) => (number(value).ok_or_else(wrong)?, number(mask).ok_or_else(wrong)?),
        None => (number(text).ok_or_else(wrong)?, u32::MAX),
    };
    if mask == 0 {
        return Err(format!("'{text}': a mask of 0 matches every packet; leave --mark out for that"));
    }
    if value & !mask != 0 {
        return Err(format!("'{text}': the value has bits outside the mask, so no packet could match"));
    }
    Ok(Mark { value, mask })
}

/// Names of namespaces to show with each event (--netns given), by inode.
pub type NetnsNames = HashMap<u32, String>;

fn label(event: &Event, names: &NetnsNames) -> String {
    names.get(&event.netns).cloned().unwrap_or_else(|| event.netns.to_string())
}

pub fn suffix(text: &mut String, event: &Event, names: Option<&NetnsNames>) {
    if let Some(names) = names.filter(|_| event.netns != 0) {
        let _ = write!(text, " netns {}", label(event, names));
    }
}

pub fn json(event: &Event, names: Option<&NetnsNames>) -> Value {
    match names {
        Some(names) if event.netns != 0 => names.get(&event.netns).map_or(Value::Null, |n| n.as_str().into()),
        _ => Value::Null,
    }
}

pub fn comment(text: &mut String, event: &Event, names: Option<&NetnsNames>) {
    if let Some(names) = names.filter(|_| event.netns != 0) {
        let _ = write!(text, " netns={}", label(event, names));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample_event;

    #[test]
    fn marks_parse_with_and_without_a_mask_and_mistakes_say_why() {
        assert_eq!(parse_mark("16"), Ok(Mark { value: 16, mask: u32::MAX }));
        assert_eq!(parse_mark("0x10/0xff"), Ok(Mark { value: 0x10, mask: 0xff }));
        assert!(parse_mark("0x10/0").unwrap_err().contains("matches every packet"));
        assert!(parse_mark("0x100/0xff").unwrap_err().contains("outside the mask"));
        assert!(parse_mark("ten").unwrap_err().starts_with("'ten' is not a mark: write VALUE or VALUE/MASK"));
        assert!(parse_mark("0x1ffffffff").is_err());
    }

    #[test]
    fn the_namespace_shows_by_name_else_by_inode_only_when_asked() {
        let mut event = sample_event();
        event.netns = 4026532000;
        let names: NetnsNames = [(4026532000, "blue".to_string())].into();
        let (mut text, mut note, mut none) = (String::new(), String::new(), String::new());
        suffix(&mut text, &event, Some(&names));
        comment(&mut note, &event, Some(&names));
        suffix(&mut none, &event, None);
        assert_eq!((text.as_str(), note.as_str(), none.as_str()), (" netns blue", " netns=blue", ""));
        assert_eq!(json(&event, Some(&names)), Value::from("blue"));
        event.netns = 4026532001;
        let mut unnamed = String::new();
        suffix(&mut unnamed, &event, Some(&names));
        assert_eq!(unnamed, " netns 4026532001");
    }
}
