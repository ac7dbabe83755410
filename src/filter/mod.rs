//! `-e EXPRESSION`: libpcap compiles the tcpdump expression to classic BPF
//! for Ethernet frames and for bare IP packets; `translate` turns each
//! into an eBPF subprogram that `splice` puts into the BPF object's filter
//! stubs before load. No compiler runs on the user's machine.

pub mod cbpf;
pub mod ebpf;
pub mod skb;
pub mod splice;
pub mod translate;

use thiserror::Error;

use cbpf::CbpfInsn;
use ebpf::EbpfInsn;

/// libpcap's DLT_EN10MB and DLT_RAW (12 on Linux; 101 is the LINKTYPE).
const DLT_EN10MB: i32 = 1;
const DLT_RAW: i32 = 12;

#[derive(Debug, Error)]
pub enum FilterError {
    #[error("bad filter expression '{expression}': {message}")]
    Syntax { expression: String, message: String },
    #[error(
        "filter '{expression}' uses {keyword}, which libpcap answers from the capturing socket's \
         metadata, not from the packet's bytes; netcap filters bytes: {instead}"
    )]
    Ancillary { expression: String, keyword: &'static str, instead: &'static str },
    #[error(
        "filter '{expression}': libpcap compiled it to a loop (a backward jump), as it does for \
         'protochain'; netcap translates loop-free programs only: name the protocol instead (e.g. 'ip proto 17')"
    )]
    Loop { expression: String },
    #[error(transparent)]
    Translate(#[from] translate::TranslateError),
}

/// Linux's SKF_AD_OFF: classic loads from here to SKF_AD_MAX read socket
/// metadata (SKF_AD_PKTTYPE, SKF_AD_IFINDEX, ...), never packet bytes.
const ANCILLARY: u32 = 0xffff_f000;
const ANCILLARY_END: u32 = ANCILLARY + 64;

/// The keyword behind the first ancillary load of `program`, and what to use instead.
fn ancillary_keyword(program: &[CbpfInsn]) -> Option<(&'static str, &'static str)> {
    let load = program.iter().find(|insn| {
        matches!(insn.class(), cbpf::LD | cbpf::LDX)
            && matches!(insn.mode(), cbpf::ABS | cbpf::IND)
            && (ANCILLARY..ANCILLARY_END).contains(&insn.k)
    })?;
    Some(match load.k - ANCILLARY {
        4 => (
            "inbound/outbound (the packet type)",
            "pick the direction with trace points (e.g. netif_receive_skb for received packets)",
        ),
        8 => ("ifindex", "use -i DEVICE"),
        44 | 48 => ("a VLAN tag held outside the packet", "netcap puts offloaded tags back: use 'vlan N'"),
        _ => ("a socket-metadata keyword", "express it through the packet's headers"),
    })
}

/// One variant of the filter: the classic program and its translation.
#[derive(Debug, Clone)]
pub struct Variant {
    pub classic: Vec<CbpfInsn>,
    pub translated: Vec<EbpfInsn>,
}

#[derive(Debug, Clone)]
pub struct Filter {
    pub expression: String,
    /// For packets that start at the Ethernet header.
    pub ethernet: Variant,
    /// For packets that start at the IP header; None when the expression
    /// cannot apply to them (e.g. `arp`, `ether host …`): such packets never match.
    pub raw: Option<Variant>,
    /// Why `raw` is None: libpcap's message.
    pub raw_refusal: Option<String>,
    /// Compiled without libpcap's optimizer: the `and`/`or` terms it had,
    /// past OPTIMIZE_MAX_TERMS.
    pub unoptimized_terms: Option<usize>,
}

/// Past this many `and`/`or` terms libpcap's optimizer takes seconds to
/// minutes (its time grows about with the cube: 200 ports 3 s, 400 ports
/// 23 s here), so netcap compiles such expressions unoptimized, as
/// `tcpdump -O` does, and says so.
const OPTIMIZE_MAX_TERMS: usize = 64;
/// Past this many, even libpcap's code generation takes seconds and the
/// program outgrows what eBPF jumps can span: refused.
const TERMS_MAX: usize = 256;

/// The `and`/`or` operators of an expression.
fn boolean_terms(expression: &str) -> usize {
    expression
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|word| matches!(*word, "or" | "and" | "||" | "&&"))
        .count()
}

/// A classic program run by libpcap's own interpreter on packets in user
/// space (`netcap read -e`, and the translation's tests).
pub struct OfflineFilter {
    insns: Vec<LibpcapInsn>,
}

#[repr(C)]
struct LibpcapInsn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

#[repr(C)]
struct LibpcapProgram {
    len: u32,
    insns: *const LibpcapInsn,
}

#[repr(C)]
struct LibpcapHeader {
    ts: libc::timeval,
    caplen: u32,
    len: u32,
}

// libpcap comes linked by the pcap crate; a #[link] here would put it
// before native/pcap_without_dbus.c's stand-ins in the static build.
unsafe extern "C" {
    fn pcap_offline_filter(
        program: *const LibpcapProgram,
        header: *const LibpcapHeader,
        packet: *const u8,
    ) -> libc::c_int;
}

impl OfflineFilter {
    pub fn new(classic: Vec<CbpfInsn>) -> OfflineFilter {
        OfflineFilter {
            insns: classic.iter().map(|i| LibpcapInsn { code: i.code, jt: i.jt, jf: i.jf, k: i.k }).collect(),
        }
    }

    /// Compiled by libpcap for a link type, optimized as tcpdump does.
    pub fn compile(expression: &str, dlt: i32) -> Result<OfflineFilter, String> {
        compile_classic(expression, dlt, true).map(OfflineFilter::new)
    }

    /// libpcap's verdict on `captured` bytes of a `wire_len`-byte packet.
    pub fn matches(&self, captured: &[u8], wire_len: u32) -> bool {
        let program = LibpcapProgram { len: self.insns.len() as u32, insns: self.insns.as_ptr() };
        let header =
            LibpcapHeader { ts: libc::timeval { tv_sec: 0, tv_usec: 0 }, caplen: captured.len() as u32, len: wire_len };
        // SAFETY: program, header and packet are valid for the call; caplen is the slice length.
        unsafe { pcap_offline_filter(&program, &header, captured.as_ptr()) != 0 }
    }
}

/// Compiles with libpcap for a link type, the way tcpdump does (`optimize`:
/// with libpcap's optimizer, as tcpdump without -O).
pub fn compile_classic(expression: &str, dlt: i32, optimize: bool) -> Result<Vec<CbpfInsn>, String> {
    let capture = pcap::Capture::dead(pcap::Linktype(dlt)).map_err(|e| e.to_string())?;
    let program = capture.compile(expression, optimize).map_err(|e| match e {
        pcap::Error::PcapError(message) => message,
        other => other.to_string(),
    })?;
    // pcap's instruction type keeps its fields private; its Display is "code jt jf k".
    program
        .get_instructions()
        .iter()
        .map(|insn| {
            let fields: Vec<u32> = insn.to_string().split_whitespace().filter_map(|f| f.parse().ok()).collect();
            match fields[..] {
                [code, jt, jf, k] => Ok(CbpfInsn::new(code as u16, jt as u8, jf as u8, k)),
                _ => Err(format!("unexpected instruction from libpcap: {insn}")),
            }
        })
        .collect()
}

impl Filter {
    pub fn compile(expression: &str) -> Result<Filter, FilterError> {
        let syntax = |message: String| FilterError::Syntax { expression: expression.to_string(), message };
        let terms = boolean_terms(expression);
        if terms > TERMS_MAX {
            return Err(syntax(format!(
                "{terms} and/or terms, more than the {TERMS_MAX} netcap compiles; for many ports or hosts \
                 use ranges and nets ('portrange 1-2000', 'net 198.18.0.0/15')"
            )));
        }
        let translate = |classic: &[CbpfInsn]| -> Result<Vec<EbpfInsn>, FilterError> {
            if let Some((keyword, instead)) = ancillary_keyword(classic) {
                return Err(FilterError::Ancillary { expression: expression.to_string(), keyword, instead });
            }
            translate::translate(classic).map_err(|err| match err {
                translate::TranslateError::BadJump { .. } => FilterError::Loop { expression: expression.to_string() },
                other => other.into(),
            })
        };
        let optimize = terms <= OPTIMIZE_MAX_TERMS;
        let classic = compile_classic(expression, DLT_EN10MB, optimize).map_err(syntax)?;
        let ethernet = Variant { translated: translate(&classic)?, classic };
        let (raw, raw_refusal) = match compile_classic(expression, DLT_RAW, optimize) {
            Ok(classic) => (Some(Variant { translated: translate(&classic)?, classic }), None),
            Err(message) => (None, Some(message)),
        };
        let unoptimized_terms = (!optimize).then_some(terms);
        Ok(Filter { expression: expression.to_string(), ethernet, raw, raw_refusal, unoptimized_terms })
    }

    /// What --dry-run prints: each variant as `tcpdump -d` and as eBPF.
    pub fn describe(&self) -> String {
        let mut text = format!("filter: {}\n", self.expression);
        let variants =
            [("Ethernet (DLT_EN10MB)", Some(&self.ethernet)), ("IP without L2 (DLT_RAW)", self.raw.as_ref())];
        for (name, variant) in variants {
            match variant {
                Some(variant) => {
                    text.push_str(&format!("{name}, classic BPF:\n{}", cbpf::Listing(&variant.classic)));
                    text.push_str(&format!("{name}, eBPF ({} instructions):\n", variant.translated.len()));
                    for (pc, insn) in variant.translated.iter().enumerate() {
                        text.push_str(&format!("  {pc:4}: {insn}\n"));
                    }
                }
                None => text.push_str(&format!(
                    "{name}: never matches ({})\n",
                    self.raw_refusal.as_deref().unwrap_or("not applicable")
                )),
            }
        }
        text
    }
}

#[cfg(test)]
pub mod tests;

#[cfg(test)]
mod refusals {
    use super::*;

    #[test]
    fn metadata_keywords_are_refused_by_name_not_left_to_match_nothing() {
        for (expression, keyword) in [
            ("inbound", "inbound/outbound"),
            ("not outbound", "inbound/outbound"),
            ("icmp and inbound", "inbound/outbound"),
            ("ifindex 3", "ifindex"),
        ] {
            let err = Filter::compile(expression).unwrap_err().to_string();
            assert!(err.contains(keyword) && err.contains(expression), "{expression}: {err}");
        }
        assert!(Filter::compile("icmp or vlan 100").is_ok());
    }

    #[test]
    fn huge_expressions_skip_the_optimizer_or_are_refused() {
        let ports = |n: usize| (1..=n).map(|p| format!("port {p}")).collect::<Vec<_>>().join(" or ");
        assert_eq!(boolean_terms(&ports(80)), 79);
        assert_eq!(boolean_terms("(tcp)and(port 1 || port 2)"), 2);
        // Unoptimized, and still the same verdicts (checked against libpcap in tests.rs for small ones).
        assert_eq!(Filter::compile(&ports(80)).unwrap().unoptimized_terms, Some(79));
        assert_eq!(Filter::compile(&ports(10)).unwrap().unoptimized_terms, None);
        let err = Filter::compile(&ports(2000)).unwrap_err().to_string();
        assert!(err.contains("1999 and/or terms") && err.contains("portrange"), "{err}");
    }

    #[test]
    fn protochain_s_loop_is_named() {
        let err = Filter::compile("ip protochain 17").unwrap_err().to_string();
        assert!(err.contains("protochain") && err.contains("ip proto 17"), "{err}");
    }
}
