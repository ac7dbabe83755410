//! Putting translated filters into a program: the BPF object has one
//! `__noinline` stub subprogram per filter variant; after libbpf has
//! relocated the program (subprograms appended) and just before it is
//! loaded, each stub's instructions are replaced with the translation.
//! Calls into functions after a stub move with it, and so do the
//! program's func_info and line_info records.
//!
//! Pure: works on instruction and record bytes, so it is tested without
//! root. `load` glues it to libbpf's prepare-load callback.

use thiserror::Error;

use super::ebpf::EbpfInsn;

const CALL: u8 = 0x85;
const LD_IMM64: u8 = 0x18;
const PSEUDO_CALL: u8 = 1;
const PSEUDO_FUNC: u8 = 4;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SpliceError {
    #[error("the BPF program has no filter stub '{0}'")]
    MissingStub(String),
    #[error("call at instruction {0} leaves the program")]
    BadCall(usize),
}

/// A function of the relocated program, from its func_info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub start: usize,
    pub name: String,
}

/// The program after splicing, with its BTF records' instruction offsets moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spliced {
    pub insns: Vec<EbpfInsn>,
    /// New start of each function, in the order given.
    pub function_starts: Vec<usize>,
    /// For each line_info record: its new offset, or None to drop it (it
    /// pointed inside a replaced stub).
    pub line_offsets: Vec<Option<usize>>,
}

/// Replaces each named stub's body with its replacement.
pub fn splice(
    insns: &[EbpfInsn],
    functions: &[Function],
    line_offsets: &[usize],
    replacements: &[(&str, &[EbpfInsn])],
) -> Result<Spliced, SpliceError> {
    let mut starts: Vec<usize> = functions.iter().map(|f| f.start).collect();
    starts.sort_unstable();
    let end_of = |start: usize| starts.iter().copied().find(|&s| s > start).unwrap_or(insns.len());

    // Regions to replace, in program order: (start, old end, replacement).
    let mut regions: Vec<(usize, usize, &[EbpfInsn])> = Vec::new();
    for (name, replacement) in replacements {
        let function =
            functions.iter().find(|f| f.name == *name).ok_or_else(|| SpliceError::MissingStub(name.to_string()))?;
        regions.push((function.start, end_of(function.start), replacement));
    }
    regions.sort_by_key(|r| r.0);

    // Old index → new index, for indices outside replaced bodies (and starts).
    let map = |old: usize| -> Option<usize> {
        let mut shift: isize = 0;
        for &(start, end, replacement) in &regions {
            if old == start {
                return Some((old as isize + shift) as usize);
            }
            if old > start && old < end {
                return None;
            }
            if old >= end {
                shift += replacement.len() as isize - (end - start) as isize;
            }
        }
        Some((old as isize + shift) as usize)
    };

    let mut out: Vec<EbpfInsn> = Vec::with_capacity(insns.len());
    let mut old = 0;
    while old < insns.len() {
        if let Some(&(_, end, replacement)) = regions.iter().find(|r| r.0 == old) {
            out.extend_from_slice(replacement);
            old = end;
            continue;
        }
        let mut insn = insns[old];
        let is_call = insn.code == CALL && insn.src == PSEUDO_CALL;
        let is_func_address = insn.code == LD_IMM64 && insn.src == PSEUDO_FUNC;
        if is_call || is_func_address {
            let target = old as isize + insn.imm as isize + 1;
            let new_here = map(old).ok_or(SpliceError::BadCall(old))?;
            let new_target = usize::try_from(target).ok().and_then(map).ok_or(SpliceError::BadCall(old))?;
            insn.imm = (new_target as isize - new_here as isize - 1) as i32;
        }
        out.push(insn);
        old += 1;
    }
    Ok(Spliced {
        insns: out,
        function_starts: functions.iter().map(|f| map(f.start).unwrap_or(f.start)).collect(),
        line_offsets: line_offsets.iter().map(|&o| map(o)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::ebpf::{self as e};

    fn mov(imm: i32) -> EbpfInsn {
        EbpfInsn::alu32_imm(e::MOV, 0, imm)
    }

    fn call(offset: i32) -> EbpfInsn {
        EbpfInsn::new(CALL, 0, PSEUDO_CALL, 0, offset)
    }

    #[test]
    fn replaces_a_stub_and_moves_calls_and_records_after_it() {
        // main: call stub; call helper; exit | stub: mov 1; exit | helper: mov 2; exit
        let insns = [call(2), call(3), EbpfInsn::exit(), mov(1), EbpfInsn::exit(), mov(2), EbpfInsn::exit()];
        let functions = [
            Function { start: 0, name: "main".into() },
            Function { start: 3, name: "stub".into() },
            Function { start: 5, name: "helper".into() },
        ];
        let replacement = [mov(7), mov(8), mov(9), EbpfInsn::exit()];
        let spliced = splice(&insns, &functions, &[0, 3, 4, 5], &[("stub", &replacement)]).unwrap();
        assert_eq!(spliced.insns.len(), 9);
        assert_eq!(&spliced.insns[3..7], &replacement);
        // call stub still lands at 3; call helper now lands at 7.
        assert_eq!(spliced.insns[0].imm, 2);
        assert_eq!(1 + spliced.insns[1].imm + 1, 7);
        assert_eq!(spliced.function_starts, [0, 3, 7]);
        assert_eq!(spliced.line_offsets, [Some(0), Some(3), None, Some(7)]);
    }

    #[test]
    fn calls_from_after_a_stub_to_before_it_move_too() {
        // main: call helper; exit | stub: mov 1; exit | helper: call main_sub... (backwards)
        let insns = [call(3), EbpfInsn::exit(), mov(1), EbpfInsn::exit(), call(-5), EbpfInsn::exit()];
        let functions = [
            Function { start: 0, name: "main".into() },
            Function { start: 2, name: "stub".into() },
            Function { start: 4, name: "helper".into() },
        ];
        let spliced = splice(&insns, &functions, &[], &[("stub", &[EbpfInsn::exit()])]).unwrap();
        // helper moved from 4 to 3; its call to 0 keeps its target.
        assert_eq!(3 + spliced.insns[3].imm + 1, 0);
        assert_eq!(spliced.insns[0].imm + 1, 3, "the call at 0 lands at 3");
    }

    #[test]
    fn a_missing_stub_is_an_error() {
        let functions = [Function { start: 0, name: "main".into() }];
        assert_eq!(
            splice(&[EbpfInsn::exit()], &functions, &[], &[("stub", &[])]),
            Err(SpliceError::MissingStub("stub".into()))
        );
    }
}
