//! Kernel addresses → `function+0xoff [module]`, from /proc/kallsyms.

use std::path::Path;

/// Text symbols sorted by address.
pub struct Kallsyms {
    symbols: Vec<(u64, String, Option<String>)>,
}

impl Kallsyms {
    pub fn load() -> std::io::Result<Kallsyms> {
        Ok(Kallsyms::parse(&std::fs::read_to_string(Path::new("/proc/kallsyms"))?))
    }

    /// Parses kallsyms text: "ADDRESS TYPE NAME [MODULE]".
    pub fn parse(text: &str) -> Kallsyms {
        let mut symbols: Vec<(u64, String, Option<String>)> = text
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let address = u64::from_str_radix(fields.next()?, 16).ok()?;
                let kind = fields.next()?;
                let name = fields.next()?;
                let module = fields.next().map(|m| m.trim_matches(|c| c == '[' || c == ']').to_string());
                // Text symbols only; zero addresses mean kptr_restrict hid them.
                (address != 0 && matches!(kind, "t" | "T")).then(|| (address, name.to_string(), module))
            })
            .collect();
        symbols.sort_by_key(|s| s.0);
        Kallsyms { symbols }
    }

    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// Every address of a function of this name (static functions repeat).
    pub fn addresses_of(&self, name: &str) -> Vec<u64> {
        self.symbols.iter().filter(|s| s.1 == name).map(|s| s.0).collect()
    }

    /// The symbol containing `address`, as `name+0xoff [module]`.
    pub fn describe(&self, address: u64) -> String {
        let index = self.symbols.partition_point(|s| s.0 <= address);
        match index.checked_sub(1).map(|i| &self.symbols[i]) {
            Some((start, name, module)) => {
                let module = module.as_ref().map(|m| format!(" [{m}]")).unwrap_or_default();
                format!("{name}+0x{:x}{module}", address - start)
            }
            None => format!("0x{address:x}"),
        }
    }

    /// True where the address is tracing machinery rather than the code
    /// that was traced: a JITed BPF program or the tracepoint's dispatch.
    pub fn is_tracing_machinery(&self, address: u64) -> bool {
        let index = self.symbols.partition_point(|s| s.0 <= address);
        let Some((_, name, module)) = index.checked_sub(1).map(|i| &self.symbols[i]) else { return false };
        module.as_deref() == Some("bpf") || name.starts_with("bpf_trace_run") || name.starts_with("__bpf_trace_")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_symbol_containing_an_address() {
        let symbols = Kallsyms::parse(
            "ffffffff81000000 T _stext\n\
             ffffffff81a00000 T nf_hook_slow\n\
             ffffffff81a00100 t nf_hook_slow_list\n\
             ffffffff82000000 D some_data\n\
             ffffffffc0001000 t veth_xmit\t[veth]\n",
        );
        assert_eq!(symbols.describe(0xffffffff81a000a3), "nf_hook_slow+0xa3");
        assert_eq!(symbols.describe(0xffffffff81a00100), "nf_hook_slow_list+0x0");
        assert_eq!(symbols.describe(0xffffffffc0001010), "veth_xmit+0x10 [veth]");
        assert_eq!(symbols.describe(0x1000), "0x1000");
        // Data symbols are not functions: the address stays with the text before it.
        assert_eq!(symbols.describe(0xffffffff82000010), "nf_hook_slow_list+0x5fff10");
    }

    #[test]
    fn bpf_programs_and_tracepoint_dispatch_are_machinery() {
        let symbols = Kallsyms::parse(
            "ffffffff81100000 T bpf_trace_run4\n\
             ffffffff81200000 T sk_skb_reason_drop\n\
             ffffffffa0000000 t bpf_prog_6deef7357e7b4530_netcap_tp_btf\t[bpf]\n",
        );
        assert!(symbols.is_tracing_machinery(0xffffffffa0000040));
        assert!(symbols.is_tracing_machinery(0xffffffff81100010));
        assert!(!symbols.is_tracing_machinery(0xffffffff81200010));
    }

    #[test]
    fn hidden_addresses_give_no_symbols() {
        assert!(Kallsyms::parse("0000000000000000 T _stext\n").is_empty());
    }
}
