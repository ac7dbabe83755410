//! `-e EXPRESSION`: libpcap compiles the tcpdump expression to classic BPF
//! for Ethernet frames and for bare IP packets; `translate` turns each
//! into an eBPF subprogram that `splice` puts into the BPF object's filter
//! stubs before load. No compiler runs on the user's machine.

pub mod cbpf;
pub mod ebpf;
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
    #[error(transparent)]
    Translate(#[from] translate::TranslateError),
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
}

/// Compiles with libpcap for a link type, the way tcpdump does (optimized).
pub fn compile_classic(expression: &str, dlt: i32) -> Result<Vec<CbpfInsn>, String> {
    let capture = pcap::Capture::dead(pcap::Linktype(dlt)).map_err(|e| e.to_string())?;
    let program = capture.compile(expression, true).map_err(|e| match e {
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
        let classic = compile_classic(expression, DLT_EN10MB).map_err(syntax)?;
        let ethernet = Variant { translated: translate::translate(&classic)?, classic };
        let (raw, raw_refusal) = match compile_classic(expression, DLT_RAW) {
            Ok(classic) => (Some(Variant { translated: translate::translate(&classic)?, classic }), None),
            Err(message) => (None, Some(message)),
        };
        Ok(Filter { expression: expression.to_string(), ethernet, raw, raw_refusal })
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
