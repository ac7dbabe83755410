//! Stages between decoding and output: naming drop reasons (from this
//! kernel's BTF `enum skb_drop_reason`, never a table of ours), symbolizing
//! drop locations and kernel stacks (each distinct stack once), and the
//! drop summary printed at exit.

pub mod gather;

use std::collections::HashMap;
use std::sync::Arc;

use crate::event::{Drop, Event};
use crate::feature::progs::Verdict;
use crate::kernel::btf::Btf;
use crate::kernel::kallsyms::Kallsyms;
use crate::kernel::progs::Hook;

const REASON_PREFIX: &str = "SKB_DROP_REASON_";
/// What a drop is called where the kernel gives no reason: what kernels
/// with reasons call a kfree_skb() that names none.
const UNSPECIFIED: &str = "NOT_SPECIFIED";

/// Names for `enum skb_drop_reason` values, as this kernel defines them.
#[derive(Debug, Default, Clone)]
pub struct DropReasons {
    names: HashMap<u32, String>,
    /// Values that mean "not a drop" (SKB_CONSUMED, SKB_NOT_DROPPED_YET).
    not_drops: Vec<u32>,
}

impl DropReasons {
    pub fn from_btf(btf: &Btf) -> DropReasons {
        let mut reasons = DropReasons::default();
        for (name, value) in btf.enum_values("skb_drop_reason").unwrap_or_default() {
            let value = value as u32;
            match name.strip_prefix(REASON_PREFIX) {
                Some(short) => {
                    reasons.names.insert(value, short.to_string());
                }
                None if name == "SKB_CONSUMED" || name == "SKB_NOT_DROPPED_YET" => reasons.not_drops.push(value),
                None => {
                    reasons.names.insert(value, name.to_string());
                }
            }
        }
        reasons
    }

    /// The kernel has no `enum skb_drop_reason` (before 5.17).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.not_drops.is_empty()
    }

    /// The name of a reason; None when the value means "not dropped".
    pub fn name(&self, value: u32) -> Option<String> {
        if self.not_drops.contains(&value) {
            return None;
        }
        Some(self.names.get(&value).cloned().unwrap_or_else(|| format!("reason {value:#x}")))
    }
}

/// Kernel symbols for drop locations and stacks. Reading /proc/kallsyms
/// takes tens of milliseconds, so it runs on a thread of its own while
/// netcap starts tracing, and is waited for by the first event that needs it.
pub enum Symbols {
    Loading(std::thread::JoinHandle<Option<Kallsyms>>),
    Ready(Option<Kallsyms>),
}

impl Symbols {
    pub fn none() -> Symbols {
        Symbols::Ready(None)
    }

    fn get(&mut self) -> Option<&Kallsyms> {
        if let Symbols::Loading(_) = self {
            let Symbols::Loading(handle) = std::mem::replace(self, Symbols::Ready(None)) else { unreachable!() };
            *self = Symbols::Ready(handle.join().ok().flatten());
        }
        match self {
            Symbols::Ready(symbols) => symbols.as_ref(),
            Symbols::Loading(_) => None,
        }
    }
}

/// Fills in the named parts of events.
/// Kernel track ids (time of first sight and CPU) to short numbers, in order
/// of first sight. Bounded: past `LIMIT` ids it forgets them and goes on
/// counting, so a number is never given twice; a packet followed across
/// that moment gets a second number.
#[derive(Debug, Default)]
pub struct Renumber {
    numbers: std::collections::HashMap<u64, u64>,
    next: u64,
}

const LIMIT: usize = 1 << 20;

impl Renumber {
    pub fn apply(&mut self, event: &mut Event) {
        if event.track == 0 {
            return;
        }
        if self.numbers.len() >= LIMIT && !self.numbers.contains_key(&event.track) {
            self.numbers.clear();
        }
        let next = &mut self.next;
        event.track = *self.numbers.entry(event.track).or_insert_with(|| {
            *next += 1;
            *next
        });
    }
}

pub struct Annotator {
    tracks: Renumber,
    reasons: DropReasons,
    /// Points whose events carry a drop reason, by trace index.
    drop_points: Vec<bool>,
    /// --bpf-progs: the exit points, by trace index: their program's hook and label.
    verdict_points: Vec<Option<(Hook, String)>>,
    symbols: Symbols,
    stacks: HashMap<Vec<u64>, Arc<[String]>>,
    /// Events whose stack could not be read.
    pub missing_stacks: u64,
}

impl Annotator {
    pub fn new(reasons: DropReasons, drop_points: Vec<bool>, symbols: Symbols) -> Annotator {
        Annotator {
            tracks: Renumber::default(),
            reasons,
            drop_points,
            verdict_points: Vec::new(),
            symbols,
            stacks: HashMap::new(),
            missing_stacks: 0,
        }
    }

    /// --bpf-progs: at these exit points (by trace index) the return value
    /// is the program's verdict, and a dropping verdict is the event's drop.
    pub fn with_verdicts(mut self, verdict_points: Vec<Option<(Hook, String)>>) -> Annotator {
        self.verdict_points = verdict_points;
        self
    }

    fn symbol(&mut self, address: u64) -> String {
        match self.symbols.get() {
            Some(symbols) => symbols.describe(address),
            None => format!("0x{address:x}"),
        }
    }

    /// Names the drop and the stack of one event; `stack` reads a stack by id.
    pub fn annotate(&mut self, event: &mut Event, stack: impl FnOnce(i32) -> Option<Vec<u64>>) {
        self.tracks.apply(event);
        if self.drop_points.get(usize::from(event.trace_index)).copied().unwrap_or(false) {
            let location = (event.location != 0).then(|| self.symbol(event.location));
            // A kernel without drop reasons (before 5.17) never says why.
            let reason =
                if self.reasons.is_empty() { Some(UNSPECIFIED.to_string()) } else { self.reasons.name(event.reason) };
            event.drop = reason.map(|reason| Drop { reason, location });
        }
        if let Some(nft) = event.nft.as_deref_mut()
            && let Some(value) = event.retval.take()
        {
            nft.verdict = Some(value as u32);
            if nft.drops() {
                event.drop = Some(Drop { reason: "NF_DROP".into(), location: Some(nft.location()) });
            }
        }
        if let Some(Some((hook, label))) = self.verdict_points.get(usize::from(event.trace_index))
            && let Some(value) = event.retval.take()
        {
            // The program returns an int: the low 32 bits are all of it.
            let verdict = Verdict { hook: *hook, code: value as i32 };
            if verdict.drops() {
                event.drop = Some(Drop { reason: verdict.name(), location: Some(label.clone()) });
            }
            event.verdict = Some(verdict);
        }
        if event.stack_id >= 0 {
            match stack(event.stack_id) {
                Some(mut addresses) => {
                    // Frames of netcap's own program and the tracepoint's
                    // dispatch come first; they say nothing about the packet.
                    if let Some(symbols) = self.symbols.get() {
                        let machinery = addresses.iter().take_while(|&&a| symbols.is_tracing_machinery(a)).count();
                        addresses.drain(..machinery);
                    }
                    if !self.stacks.contains_key(&addresses) {
                        let frames: Arc<[String]> =
                            addresses.iter().map(|&a| self.symbol(a)).collect::<Vec<_>>().into();
                        self.stacks.insert(addresses.clone(), frames);
                    }
                    event.stack = self.stacks.get(&addresses).cloned();
                }
                None => self.missing_stacks += 1,
            }
        } else if event.stack_id != -1 {
            // bpf_get_stackid() failed in the kernel (e.g. the map was full).
            self.missing_stacks += 1;
        }
    }
}

/// Drops by reason, location and device: what dropwatch shows.
#[derive(Debug, Default)]
pub struct DropSummary {
    counts: HashMap<(String, String, String), u64>,
}

impl DropSummary {
    pub fn add(&mut self, event: &Event) {
        if let Some(drop) = &event.drop {
            let device = event.device_label().into_owned();
            let location = drop.location.clone().unwrap_or_else(|| "-".into());
            *self.counts.entry((drop.reason.clone(), location, device)).or_default() += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// A table, most frequent first.
    pub fn render(&self) -> String {
        let mut rows: Vec<(&(String, String, String), &u64)> = self.counts.iter().collect();
        rows.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        // Wide enough for the longest location (an nft rule in a jumped-to chain runs long).
        let width = rows.iter().map(|((_, location, _), _)| location.len()).max().unwrap_or(0).max(40);
        let mut text = format!("{:>8}  {:<28} {:<width$} {}\n", "drops", "reason", "location", "device");
        for ((reason, location, device), count) in rows {
            text.push_str(&format!("{count:>8}  {reason:<28} {location:<width$} {device}\n"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample_event;

    fn reasons() -> DropReasons {
        let mut reasons = DropReasons::default();
        reasons.names.insert(2, "NOT_SPECIFIED".into());
        reasons.names.insert(9, "NETFILTER_DROP".into());
        reasons.not_drops.push(1);
        reasons
    }

    #[test]
    fn names_come_from_the_kernel_s_enum() {
        let btf = crate::kernel::load_btf().expect("the test machine's kernel has BTF");
        let reasons = DropReasons::from_btf(&btf);
        let values = btf.enum_values("skb_drop_reason").unwrap();
        let value_of = |name: &str| values.iter().find(|(n, _)| *n == name).unwrap().1 as u32;
        assert_eq!(reasons.name(value_of("SKB_DROP_REASON_NETFILTER_DROP")).unwrap(), "NETFILTER_DROP");
        assert_eq!(reasons.name(value_of("SKB_DROP_REASON_NO_SOCKET")).unwrap(), "NO_SOCKET");
        assert_eq!(reasons.name(value_of("SKB_CONSUMED")), None);
    }

    #[test]
    fn a_kernel_without_drop_reasons_still_says_where() {
        // 5.10: kfree_skb(skb, location) and no enum skb_drop_reason in BTF.
        let symbols = Kallsyms::parse("ffffffff81002000 T tcp_v4_rcv\n");
        let mut annotator = Annotator::new(DropReasons::default(), vec![true], Symbols::Ready(Some(symbols)));
        let mut event = sample_event();
        event.location = 0xffffffff81002062;
        annotator.annotate(&mut event, |_| None);
        let drop = event.drop.unwrap();
        assert_eq!((drop.reason.as_str(), drop.location.as_deref()), ("NOT_SPECIFIED", Some("tcp_v4_rcv+0x62")));
    }

    #[test]
    fn a_program_s_return_value_is_its_verdict_and_a_dropping_one_its_drop() {
        let exit = Some((Hook::Tc, "tc:drop_tcp_9000[7]:exit".to_string()));
        let mut annotator = Annotator::new(DropReasons::default(), vec![false, false, false], Symbols::none())
            .with_verdicts(vec![None, exit, Some((Hook::Xdp, "xdp:pass[9]:exit".into()))]);
        let at = |index: u16, retval: Option<i64>, annotator: &mut Annotator| {
            let mut event = sample_event();
            event.trace_index = index;
            event.retval = retval;
            annotator.annotate(&mut event, |_| None);
            event
        };
        let shot = at(1, Some(2), &mut annotator);
        assert_eq!(shot.verdict, Some(Verdict { hook: Hook::Tc, code: 2 }));
        assert_eq!(shot.retval, None, "the verdict takes the return value's place");
        let drop = shot.drop.unwrap();
        assert_eq!((drop.reason.as_str(), drop.location.as_deref()), ("TC_ACT_SHOT", Some("tc:drop_tcp_9000[7]:exit")));
        let ok = at(1, Some(0), &mut annotator);
        assert_eq!((ok.verdict.map(|v| v.name()), ok.drop), (Some("TC_ACT_OK".into()), None));
        let pass = at(2, Some(2), &mut annotator);
        assert_eq!((pass.verdict.map(|v| v.name()), pass.drop), (Some("XDP_PASS".into()), None));
        // A function's fexit is not a program's: its return value stays one.
        let other = at(0, Some(2), &mut annotator);
        assert_eq!((other.verdict, other.retval), (None, Some(2)));
    }

    #[test]
    fn a_chain_s_verdict_goes_into_its_nft_and_a_drop_names_the_chain() {
        let mut annotator = Annotator::new(DropReasons::default(), vec![false], Symbols::none());
        let chain = |retval| {
            let mut event = sample_event();
            event.retval = Some(retval);
            event.nft = Some(Box::new(crate::feature::nft::Nft {
                engine: crate::feature::nft::Engine::Nftables,
                family: 1,
                hook: 1,
                chain_handle: 1,
                table: "netcap_test".into(),
                chain: "first".into(),
                verdict: None,
                decider: crate::feature::nft::Decider::Rule { handle: 3, chain: "first".into() },
            }));
            event
        };
        let mut accepted = chain(1);
        annotator.annotate(&mut accepted, |_| None);
        assert_eq!((accepted.retval, accepted.drop.clone()), (None, None));
        assert_eq!(accepted.nft.unwrap().verdict_name().as_deref(), Some("accept"));
        let mut dropped = chain(0);
        annotator.annotate(&mut dropped, |_| None);
        let drop = dropped.drop.unwrap();
        assert_eq!(
            (drop.reason.as_str(), drop.location.as_deref()),
            ("NF_DROP", Some("nft inet netcap_test first rule 3"))
        );
    }

    #[test]
    fn tracks_are_numbered_in_order_of_first_sight() {
        let mut renumber = Renumber::default();
        let mut seen = Vec::new();
        for kernel_id in [0x5000_0001u64, 0x4000_0002, 0x5000_0001, 0, 0x4000_0002] {
            let mut event = crate::event::tests::sample_event();
            event.track = kernel_id;
            renumber.apply(&mut event);
            seen.push(event.track);
        }
        assert_eq!(seen, [1, 2, 1, 0, 2]);
    }

    #[test]
    fn annotates_drops_only_at_drop_points_and_symbolizes_each_stack_once() {
        let symbols = Kallsyms::parse("ffffffff81000000 T nf_hook_slow\nffffffff81001000 T ip_rcv\n");
        let mut annotator = Annotator::new(reasons(), vec![true, false], Symbols::Ready(Some(symbols)));
        let mut event = sample_event();
        event.reason = 9;
        event.location = 0xffffffff81000010;
        event.stack_id = 4;
        let mut lookups = 0;
        let mut read = |id: i32| {
            lookups += 1;
            assert_eq!(id, 4);
            Some(vec![0xffffffff81000010, 0xffffffff81001020])
        };
        annotator.annotate(&mut event, &mut read);
        let drop = event.drop.clone().unwrap();
        assert_eq!((drop.reason.as_str(), drop.location.as_deref()), ("NETFILTER_DROP", Some("nf_hook_slow+0x10")));
        assert_eq!(&*event.stack.clone().unwrap(), ["nf_hook_slow+0x10", "ip_rcv+0x20"]);

        let mut again = sample_event();
        again.stack_id = 4;
        again.reason = 9;
        annotator.annotate(&mut again, &mut read);
        assert!(Arc::ptr_eq(event.stack.as_ref().unwrap(), again.stack.as_ref().unwrap()), "one symbolization");

        let mut consumed = sample_event();
        consumed.reason = 1;
        annotator.annotate(&mut consumed, |_| None);
        assert_eq!(consumed.drop, None, "SKB_CONSUMED is a normal free");
        let mut elsewhere = sample_event();
        elsewhere.trace_index = 1;
        elsewhere.reason = 9;
        annotator.annotate(&mut elsewhere, |_| None);
        assert_eq!(elsewhere.drop, None, "not a drop point");
    }

    #[test]
    fn the_summary_counts_by_reason_location_and_device_most_first() {
        let mut summary = DropSummary::default();
        for (reason, count) in [("NO_SOCKET", 3), ("NETFILTER_DROP", 5)] {
            for _ in 0..count {
                let mut event = sample_event();
                event.drop = Some(Drop { reason: reason.into(), location: Some("x+0x1".into()) });
                summary.add(&event);
            }
        }
        summary.add(&sample_event());
        let text = summary.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[1].trim_start().starts_with("5  NETFILTER_DROP"), "{text}");
        assert!(lines[2].trim_start().starts_with("3  NO_SOCKET"), "{text}");
        assert!(lines[1].ends_with("veth1"), "{text}");
    }
}
