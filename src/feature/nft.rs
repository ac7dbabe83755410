//! Netfilter verdicts (`--nft`): `nft_do_chain` evaluates one base chain;
//! its fentry records the packet with an NFT section (table, family, chain,
//! its handle, the hook), nf_tables' trace report (`nft_trace_notify`, for
//! packets netcap's own table marks with nftrace: `kernel::nftrace`) adds
//! the rule that decided, and its fexit adds the chain's verdict in the
//! RETVAL section. `pipeline` puts the verdict into `Nft` (a drop into the
//! event's drop, named after the chain and rule). Shown as
//! ` [nft inet filter input rule 4 accept]` on the line (a drop as
//! ` [drop NF_DROP at nft inet filter input rule 4]`), `nft` in JSON,
//! ` nft=…` in the pcapng comment. Legacy iptables comes the same way:
//! `ipt_do_table`/`ip6t_do_table` evaluate one table at one hook, shown
//! as ` [iptables filter INPUT accept]`, the chain being the hook's
//! built-in one (the kernel keeps no rule names, and which rule matched
//! is known only inside the call).

use std::fmt::Write as _;

use clap::Args;
use serde_json::{Value, json};

use crate::bpf::types::netcap_section_nft;
use crate::event::{Event, c_string};
use crate::plan::Target;

#[derive(Debug, Args)]
pub struct NftArgs {
    /// Show the verdict of every nftables base chain each packet goes through and the rule that
    /// gave it (table, chain, hook, rule handle; a drop names the rule), by fentry and fexit on
    /// nft_do_chain and nf_tables' own trace reports, for which netcap adds a table
    /// netcap_trace_PID that sets nftrace, while it runs
    #[arg(long = "nft")]
    pub nft: bool,
}

pub fn wants_section(target: &Target) -> bool {
    target.netfilter.is_some()
}

/// One base chain's (or legacy table's) evaluation of a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nft {
    pub engine: Engine,
    /// NFPROTO_* of the table.
    pub family: u8,
    /// The hook the chain is at, in its family's numbering.
    pub hook: u8,
    pub chain_handle: u64,
    pub table: String,
    pub chain: String,
    /// What nft_do_chain returned: NF_* in the low byte, an errno or queue number above.
    pub verdict: Option<u32>,
    pub decider: Decider,
}

/// Which netfilter engine evaluated the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// nf_tables: a base chain, with its handle and the rule that decided.
    Nftables,
    /// Legacy iptables (x_tables): a table at a hook; `chain` is the
    /// hook's built-in chain, there is no handle and no rule.
    Xtables,
}

/// What gave the chain's verdict, as nf_tables' trace reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decider {
    /// No report: the packet was not traced (netcap's table could not be
    /// added, or the packet was in a namespace without it).
    Unknown,
    /// The rule of this handle, in `chain` (the base chain or one it jumped to).
    Rule { handle: u64, chain: String },
    /// No rule decided: the base chain's policy.
    Policy,
}

impl Decider {
    /// From the section's enum netcap_nft_decider and its rule fields.
    pub fn from_section(kind: u8, handle: u64, chain: &[i8]) -> Decider {
        match kind {
            1 => Decider::Rule { handle, chain: c_string(chain) },
            2 => Decider::Policy,
            _ => Decider::Unknown,
        }
    }
}

impl Nft {
    /// From the record's section (enum netcap_netfilter_engine in `engine`);
    /// the verdict comes later, from the RETVAL section.
    pub fn from_section(section: &netcap_section_nft) -> Nft {
        let engine = if section.engine == 1 { Engine::Xtables } else { Engine::Nftables };
        let mut nft = Nft {
            engine,
            family: section.family,
            hook: section.hook,
            chain_handle: section.chain_handle,
            table: c_string(&section.table),
            chain: c_string(&section.chain),
            verdict: None,
            decider: Decider::from_section(section.decider, section.rule_handle, &section.rule_chain),
        };
        if engine == Engine::Xtables {
            nft.chain = nft.builtin_chain();
        }
        nft
    }

    /// iptables' name for the chain of the hook (`INPUT`).
    fn builtin_chain(&self) -> String {
        const CHAINS: [&str; 5] = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];
        CHAINS.get(usize::from(self.hook)).map_or_else(|| format!("HOOK{}", self.hook), |c| c.to_string())
    }

    /// The legacy command of the family (`iptables`, `ip6tables`).
    fn legacy_command(&self) -> &'static str {
        if self.family == 10 { "ip6tables" } else { "iptables" }
    }

    /// `nft list ruleset`'s word for the table's family.
    pub fn family_name(&self) -> String {
        match self.family {
            1 => "inet".into(),
            2 => "ip".into(),
            3 => "arp".into(),
            5 => "netdev".into(),
            7 => "bridge".into(),
            10 => "ip6".into(),
            other => format!("family{other}"),
        }
    }

    /// The hook's name as a chain declares it (`hook input`).
    pub fn hook_name(&self) -> String {
        let names: &[&str] = match self.family {
            5 => &["ingress", "egress"],
            3 => &["input", "output", "forward"],
            _ => &["prerouting", "input", "forward", "output", "postrouting", "ingress"],
        };
        names.get(usize::from(self.hook)).map_or_else(|| format!("hook{}", self.hook), |n| n.to_string())
    }

    /// `nft`'s word for the verdict (`accept`, `drop`, `queue`, …).
    pub fn verdict_name(&self) -> Option<String> {
        if self.drops() {
            return Some("drop".into());
        }
        let code = self.verdict? & 0xff;
        Some(match code {
            1 => "accept".into(),
            2 => "stolen".into(),
            3 => "queue".into(),
            4 => "repeat".into(),
            5 => "stop".into(),
            other => format!("verdict{other}"),
        })
    }

    /// NF_DROP (with or without an errno above it) up to 6.0; from 6.1
    /// nft_do_chain frees a dropped skb itself (NF_DROP_REASON) and returns
    /// NF_STOLEN with the errno above it, where a packet really taken over
    /// (fwd, dup) is NF_STOLEN alone.
    pub fn drops(&self) -> bool {
        self.verdict.is_some_and(|v| v & 0xff == 0 || (v & 0xff == 2 && v >> 16 != 0))
    }

    /// `nft inet filter input rule 4`: where a drop happened (a rule in a
    /// chain jumped to: `input>tcp_in rule 7`; no rule: `input policy`).
    /// Legacy iptables: `iptables filter INPUT`.
    pub fn location(&self) -> String {
        if self.engine == Engine::Xtables {
            return format!("{} {} {}", self.legacy_command(), self.table, self.chain);
        }
        let chain = format!("nft {} {} {}", self.family_name(), self.table, self.chain);
        match &self.decider {
            Decider::Unknown => chain,
            Decider::Policy => format!("{chain} policy"),
            Decider::Rule { handle, chain: inner } if *inner == self.chain || inner.is_empty() => {
                format!("{chain} rule {handle}")
            }
            Decider::Rule { handle, chain: inner } => format!("{chain}>{inner} rule {handle}"),
        }
    }

    /// JSON's `rule`: the handle and its chain, "policy", or null.
    fn rule_json(&self) -> Value {
        match &self.decider {
            Decider::Unknown => Value::Null,
            Decider::Policy => json!("policy"),
            Decider::Rule { handle, chain } => json!({"handle": handle, "chain": chain}),
        }
    }
}

/// ` [nft inet filter input accept]` unless it dropped (the drop says so).
pub fn suffix(text: &mut String, event: &Event) {
    if let Some(nft) = event.nft.as_deref().filter(|n| !n.drops()) {
        let _ = write!(text, " [{} {}]", nft.location(), nft.verdict_name().as_deref().unwrap_or("?"));
    }
}

pub fn json(event: &Event) -> Value {
    event
        .nft
        .as_deref()
        .map(|nft| {
            let (engine, chain_handle) = match nft.engine {
                Engine::Nftables => ("nftables", json!(nft.chain_handle)),
                Engine::Xtables => ("xtables", Value::Null),
            };
            json!({
                "engine": engine,
                "family": nft.family_name(),
                "table": nft.table,
                "chain": nft.chain,
                "chain_handle": chain_handle,
                "hook": nft.hook_name(),
                "verdict": nft.verdict_name(),
                "code": nft.verdict,
                "rule": nft.rule_json(),
            })
        })
        .into()
}

/// ` nft=inet:filter:input:accept chain_handle=N hook=input`, then
/// ` nft_rule=H nft_rule_chain=C` or ` nft_rule=policy`; legacy tables
/// ` iptables=filter:INPUT:accept hook=input`.
pub fn comment(text: &mut String, event: &Event) {
    if let Some(nft) = event.nft.as_deref().filter(|n| n.engine == Engine::Xtables) {
        let _ = write!(
            text,
            " {}={}:{}:{} hook={}",
            nft.legacy_command(),
            nft.table,
            nft.chain,
            nft.verdict_name().as_deref().unwrap_or("?"),
            nft.hook_name()
        );
    } else if let Some(nft) = event.nft.as_deref() {
        let _ = write!(
            text,
            " nft={}:{}:{}:{} chain_handle={} hook={}",
            nft.family_name(),
            nft.table,
            nft.chain,
            nft.verdict_name().as_deref().unwrap_or("?"),
            nft.chain_handle,
            nft.hook_name()
        );
        match &nft.decider {
            Decider::Unknown => {}
            Decider::Policy => text.push_str(" nft_rule=policy"),
            Decider::Rule { handle, chain } => {
                let _ = write!(text, " nft_rule={handle} nft_rule_chain={chain}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_nft_writes_them() {
        let mut nft = Nft {
            engine: Engine::Nftables,
            family: 1,
            hook: 1,
            chain_handle: 3,
            table: "filter".into(),
            chain: "in".into(),
            verdict: Some(1),
            decider: Decider::Unknown,
        };
        assert_eq!(
            (nft.family_name(), nft.hook_name(), nft.verdict_name()),
            ("inet".into(), "input".into(), Some("accept".into()))
        );
        assert!(!nft.drops());
        // NF_DROP_ERR(-EPERM): the errno rides above the verdict.
        nft.verdict = Some((-1i32 as u32) << 16); // NF_DROP (0) in the low byte
        assert!(nft.drops());
        assert_eq!(nft.verdict_name().as_deref(), Some("drop"));
        assert_eq!(nft.location(), "nft inet filter in");
        // The rule that decided, in the base chain or in one it jumped to; else the policy.
        nft.decider = Decider::from_section(1, 4, &[b'i' as i8, b'n' as i8, 0]);
        assert_eq!(nft.location(), "nft inet filter in rule 4");
        nft.decider = Decider::Rule { handle: 7, chain: "tcp_in".into() };
        assert_eq!(nft.location(), "nft inet filter in>tcp_in rule 7");
        // Names run to the section's 32 bytes, not comm's 16.
        let long: Vec<i8> = b"input_from_the_uplink\0".iter().map(|&b| b as i8).collect();
        assert_eq!(
            Decider::from_section(1, 9, &long),
            Decider::Rule { handle: 9, chain: "input_from_the_uplink".into() }
        );
        nft.decider = Decider::from_section(2, 0, &[0]);
        assert_eq!(nft.location(), "nft inet filter in policy");
        nft.decider = Decider::Unknown;
        nft.family = 5;
        nft.hook = 0;
        assert_eq!((nft.family_name(), nft.hook_name()), ("netdev".into(), "ingress".into()));
        nft.verdict = Some(0x0003_0003);
        assert_eq!(nft.verdict_name().as_deref(), Some("queue"));
        // 6.1 on: NF_DROP_REASON(skb, …, EPERM) is EPERM << 16 | NF_STOLEN.
        nft.verdict = Some(1 << 16 | 2);
        assert!(nft.drops());
        assert_eq!(nft.verdict_name().as_deref(), Some("drop"));
        nft.verdict = Some(2);
        assert!(!nft.drops());
        assert_eq!(nft.verdict_name().as_deref(), Some("stolen"));
    }

    #[test]
    fn legacy_tables_are_named_as_iptables_lists_them() {
        let section = netcap_section_nft {
            engine: 1,
            family: 10,
            hook: 3,
            table: c_chars("filter"),
            chain: c_chars(""),
            ..Default::default()
        };
        let mut nft = Nft::from_section(&section);
        nft.verdict = Some(0);
        assert_eq!(nft.location(), "ip6tables filter OUTPUT");
        assert_eq!((nft.family_name(), nft.hook_name()), ("ip6".into(), "output".into()));
        assert!(nft.drops());
        let mut event = crate::event::tests::sample_event();
        event.nft = Some(Box::new(nft.clone()));
        let mut written = String::new();
        comment(&mut written, &event);
        assert_eq!(written, " ip6tables=filter:OUTPUT:drop hook=output");
        let value = json(&event);
        assert_eq!((value["engine"].as_str(), value["chain"].as_str()), (Some("xtables"), Some("OUTPUT")));
        assert!(value["chain_handle"].is_null() && value["rule"].is_null());
        nft.family = 2;
        nft.hook = 1;
        nft.chain = nft.builtin_chain();
        nft.verdict = Some(1);
        event.nft = Some(Box::new(nft));
        let mut text = String::new();
        suffix(&mut text, &event);
        assert_eq!(text, " [iptables filter INPUT accept]");
    }

    fn c_chars<const N: usize>(text: &str) -> [i8; N] {
        let mut chars = [0i8; N];
        for (slot, byte) in chars.iter_mut().zip(text.bytes()) {
            *slot = byte as i8;
        }
        chars
    }
}
