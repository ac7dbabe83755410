//! BPF programs at tc and XDP (`--bpf-progs`): each loaded program is
//! traced at its entry (the packet as it got it) and its exit, where the
//! RETVAL section holds its verdict. `pipeline` turns that into a `Verdict`
//! (a dropping one into the event's drop, named after the program). Shown as
//! ` [verdict TC_ACT_OK]` on the line (a drop as ` [drop TC_ACT_SHOT at
//! tc:NAME[ID]:exit]`), `verdict` in JSON, ` verdict=NAME` in the pcapng
//! comment and the standard `epb_verdict` option.

use std::fmt::Write as _;

use clap::Args;
use serde_json::{Value, json};

use crate::event::Event;
use crate::kernel::progs::Hook;

#[derive(Debug, Args)]
pub struct ProgsArgs {
    /// Trace the BPF programs loaded at tc and XDP, at entry and exit, with their verdicts:
    /// all of them, or those of a hook (tc, xdp), an id or a name (comma-separated)
    #[arg(
        long = "bpf-progs",
        value_name = "tc,xdp,ID,NAME",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "",
        value_delimiter = ','
    )]
    pub bpf_progs: Option<Vec<String>>,
}

impl ProgsArgs {
    /// What was asked for, without empty words (`--bpf-progs` alone: everything).
    pub fn selection(&self) -> Option<Vec<String>> {
        self.bpf_progs
            .as_ref()
            .map(|words| words.iter().map(|w| w.trim().to_string()).filter(|w| !w.is_empty()).collect())
    }
}

/// What a tc or XDP program returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub hook: Hook,
    pub code: i32,
}

const TC_NAMES: [&str; 9] = [
    "TC_ACT_OK",
    "TC_ACT_RECLASSIFY",
    "TC_ACT_SHOT",
    "TC_ACT_PIPE",
    "TC_ACT_STOLEN",
    "TC_ACT_QUEUED",
    "TC_ACT_REPEAT",
    "TC_ACT_REDIRECT",
    "TC_ACT_TRAP",
];
const XDP_NAMES: [&str; 5] = ["XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX", "XDP_REDIRECT"];

impl Verdict {
    /// Its name in the kernel's headers (`TC_ACT_SHOT`, `XDP_PASS`), or
    /// `tc:N`/`xdp:N` for a value they do not name.
    pub fn name(&self) -> String {
        let names: &[&str] = match self.hook {
            Hook::Tc => &TC_NAMES,
            Hook::Xdp => &XDP_NAMES,
        };
        match (self.hook, self.code) {
            (Hook::Tc, -1) => "TC_ACT_UNSPEC".into(),
            (_, code) => usize::try_from(code)
                .ok()
                .and_then(|i| names.get(i))
                .map_or_else(|| format!("{}:{code}", self.hook.name()), |n| n.to_string()),
        }
    }

    /// Whether the packet ends here: tc's SHOT and TRAP (dropped in the
    /// datapath), XDP's DROP and ABORTED. STOLEN and QUEUED are consumed, not lost.
    pub fn drops(&self) -> bool {
        match self.hook {
            Hook::Tc => matches!(self.code, 2 | 8),
            Hook::Xdp => !(2..=4).contains(&self.code),
        }
    }

    /// The pcapng `epb_verdict` option's value: type 1 (Linux eBPF tc) or 2
    /// (Linux eBPF XDP), then the returned value as 64 bits.
    pub fn pcapng_option(&self) -> [u8; 9] {
        let mut value = [0; 9];
        value[0] = match self.hook {
            Hook::Tc => 1,
            Hook::Xdp => 2,
        };
        value[1..].copy_from_slice(&i64::from(self.code).to_le_bytes());
        value
    }

    /// A name `name` wrote back into a verdict.
    pub fn parse(text: &str) -> Option<Verdict> {
        if let Some((hook, code)) = text.split_once(':') {
            let hook = match hook {
                "tc" => Hook::Tc,
                "xdp" => Hook::Xdp,
                _ => return None,
            };
            return Some(Verdict { hook, code: code.parse().ok()? });
        }
        if text == "TC_ACT_UNSPEC" {
            return Some(Verdict { hook: Hook::Tc, code: -1 });
        }
        let find =
            |names: &[&str], hook| names.iter().position(|n| *n == text).map(|i| Verdict { hook, code: i as i32 });
        find(&TC_NAMES, Hook::Tc).or_else(|| find(&XDP_NAMES, Hook::Xdp))
    }
}

/// ` [verdict NAME]` where the program let the packet on (a drop shows as
/// the event's drop instead).
pub fn suffix(text: &mut String, event: &Event) {
    if let Some(verdict) = event.verdict.filter(|v| !v.drops()) {
        let _ = write!(text, " [verdict {}]", verdict.name());
    }
}

pub fn json(event: &Event) -> Value {
    event.verdict.map(|v| json!({ "hook": v.hook.name(), "code": v.code, "name": v.name() })).into()
}

pub fn comment(text: &mut String, event: &Event) {
    if let Some(verdict) = event.verdict {
        let _ = write!(text, " verdict={}", verdict.name());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_drops_and_their_reading_back() {
        let tc = |code| Verdict { hook: Hook::Tc, code };
        let xdp = |code| Verdict { hook: Hook::Xdp, code };
        assert_eq!(tc(2).name(), "TC_ACT_SHOT");
        assert_eq!(tc(-1).name(), "TC_ACT_UNSPEC");
        assert_eq!(tc(7).name(), "TC_ACT_REDIRECT");
        assert_eq!(tc(42).name(), "tc:42");
        assert_eq!(xdp(1).name(), "XDP_DROP");
        assert_eq!(xdp(2).name(), "XDP_PASS");
        assert_eq!(xdp(-3).name(), "xdp:-3");
        assert!(tc(2).drops() && tc(8).drops() && !tc(0).drops() && !tc(4).drops() && !tc(-1).drops());
        assert!(xdp(0).drops() && xdp(1).drops() && !xdp(2).drops() && !xdp(4).drops() && xdp(9).drops());
        for verdict in [tc(-1), tc(0), tc(2), tc(8), tc(42), xdp(0), xdp(1), xdp(4), xdp(-3)] {
            assert_eq!(Verdict::parse(&verdict.name()), Some(verdict));
        }
        assert_eq!(Verdict::parse("TC_ACT_NOPE"), None);
        assert_eq!(xdp(1).pcapng_option(), [2, 1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(tc(-1).pcapng_option(), [1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    }
}
