//! --skb-filter: a C-like expression over struct sk_buff's fields
//! (`mark & 0xff == 0x10 && len > 1000 && dev->mtu == 9000`), resolved
//! against the running kernel's BTF and translated into eBPF by netcap, no
//! compiler needed. The translation replaces the body of the stub
//! `netcap_filter_skb` at load, as -e's does its stubs, and runs before
//! anything is read from the packet; it decides first matches only (a
//! packet followed by --track passes it).
//!
//! parse.rs reads the text, resolve.rs finds each field in BTF, and
//! translate.rs writes the eBPF.

pub mod parse;
pub mod resolve;
pub mod translate;

use thiserror::Error;

use crate::filter::ebpf::EbpfInsn;
use crate::kernel::btf::Btf;
use parse::Expr;
use resolve::ResolveError;
use translate::Resolved;

#[derive(Debug, Error)]
pub enum SkbFilterError {
    #[error(transparent)]
    Parse(#[from] parse::ParseError),
    #[error("--skb-filter '{text}': {source}")]
    Resolve { text: String, source: Box<ResolveError> },
    #[error(
        "--skb-filter '{text}': nested {depth} levels deep, past the {} the BPF stack leaves room for: split it with && or ||",
        translate::SLOTS
    )]
    TooDeep { text: String, depth: usize },
}

#[derive(Debug, Clone)]
pub struct SkbFilter {
    pub expression: String,
    pub resolved: Resolved,
    /// The body of netcap_filter_skb.
    pub translated: Vec<EbpfInsn>,
}

fn resolve_expr(btf: &Btf, expr: &Expr) -> Result<Resolved, ResolveError> {
    Ok(match expr {
        Expr::Number(n) => Resolved::Number(*n),
        Expr::Field(path) => Resolved::Field(resolve::resolve(btf, path, false)?),
        Expr::Not(inner) => Resolved::Not(Box::new(resolve_expr(btf, inner)?)),
        Expr::Binary(op, l, r) => {
            Resolved::Binary(*op, Box::new(resolve_expr(btf, l)?), Box::new(resolve_expr(btf, r)?))
        }
    })
}

impl SkbFilter {
    pub fn compile(text: &str, btf: &Btf) -> Result<SkbFilter, SkbFilterError> {
        let expr = parse::parse(text)?;
        let resolved = resolve_expr(btf, &expr)
            .map_err(|source| SkbFilterError::Resolve { text: text.into(), source: Box::new(source) })?;
        let depth = resolved.depth();
        if depth > translate::SLOTS {
            return Err(SkbFilterError::TooDeep { text: text.into(), depth });
        }
        let translated = translate::translate(&resolved);
        Ok(SkbFilter { expression: text.into(), resolved, translated })
    }

    /// For --dry-run: each field where it is read, then the eBPF.
    pub fn describe(&self) -> String {
        let mut text = format!("skb filter: {}\n", self.expression);
        for access in self.resolved.fields() {
            let offsets: Vec<String> = access.offsets.iter().map(|o| format!("+{o}")).collect();
            let bits = access.bits.map_or(String::new(), |(shift, width)| format!(", bits {shift}..{}", shift + width));
            text.push_str(&format!(
                "  {} ({}): {} bytes at skb{}{bits}\n",
                access.text,
                access.type_text,
                access.size,
                offsets.join(" ->")
            ));
        }
        text.push_str(&format!("skb filter, eBPF ({} instructions):\n", self.translated.len()));
        for (pc, insn) in self.translated.iter().enumerate() {
            text.push_str(&format!("  {pc:4}: {insn}\n"));
        }
        text
    }
}

#[cfg(test)]
pub mod tests;
