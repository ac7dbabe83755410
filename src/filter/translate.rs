//! Classic BPF → eBPF, as a subprogram with the signature
//! `int filter(u8 *packet, u32 captured_len, u32 wire_len)`.
//!
//! The semantics are libpcap's interpreter (`pcap_offline_filter`, the
//! reference the tests compare against): A and X start at 0; a packet
//! load past `captured_len` ends the filter, which libpcap counts as no
//! match; `len` is the wire length; division or modulo by zero returns 0;
//! shifts by 32 or more give 0. Packet reads are bounded with a mask the
//! verifier can follow, after the explicit length check that decides the
//! result.
//!
//! The result is 64 bits: a classic return value (zero-extended, so never
//! negative), or [`SHORT`] when a load went past `captured_len`. netcap
//! treats SHORT as no match on its copy of the packet; on a packet filtered
//! where it lies, with only the linear bytes as `captured_len`, it means
//! "not decided here: filter the copy".

use thiserror::Error;

use super::cbpf::{self, CbpfInsn};
use super::ebpf::{self as e, EbpfInsn};

/// Arguments of the subprogram.
const PACKET: u8 = 1;
const CAPTURED: u8 = 2;
const WIRE: u8 = 3;
/// The classic machine's registers.
const REG_A: u8 = 4;
const REG_X: u8 = 5;
const TMP: u8 = 6;
const RET: u8 = 0;
/// The result of a load past the captured bytes (see the module comment).
pub const SHORT: i64 = -1;
/// Largest packet offset: the captured bytes are at most 64 KiB.
const OFFSET_MASK: i32 = 0xffff;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TranslateError {
    #[error("classic BPF instruction {index} (code {code:#x}) is not valid")]
    BadInstruction { index: usize, code: u16 },
    #[error("classic BPF instruction {index} jumps outside the program")]
    BadJump { index: usize },
    #[error("classic BPF instruction {index} uses scratch memory word {word} (0..15 exist)")]
    BadMemory { index: usize, word: u32 },
    #[error("classic BPF program is empty or does not end in a return")]
    NoReturn,
    #[error("translated program needs a jump longer than eBPF allows")]
    TooLong,
}

/// Where a jump goes before addresses are known.
#[derive(Clone, Copy)]
enum Target {
    Classic(usize),
    /// No match (division by zero).
    Fail,
    /// A load past the captured bytes.
    Short,
}

struct Builder {
    insns: Vec<EbpfInsn>,
    /// (eBPF index of a jump, where it goes)
    fixups: Vec<(usize, Target)>,
}

impl Builder {
    fn push(&mut self, insn: EbpfInsn) {
        self.insns.push(insn);
    }

    fn jump(&mut self, insn: EbpfInsn, target: Target) {
        self.fixups.push((self.insns.len(), target));
        self.insns.push(insn);
    }

    /// Loads k into `reg` as an unsigned 32-bit value.
    fn mov_k(&mut self, reg: u8, k: u32) {
        self.push(EbpfInsn::alu32_imm(e::MOV, reg, k as i32));
    }

    /// `if (u64)reg OP k goto target`, correct for every 32-bit k: 64-bit
    /// comparisons sign-extend immediates, so large k goes through TMP.
    fn jump_k(&mut self, op: u8, reg: u8, k: u32, target: Target) {
        if k <= i32::MAX as u32 || op == e::JSET {
            self.jump(EbpfInsn::jump_imm(op, reg, k as i32, 0), target);
        } else {
            self.mov_k(TMP, k);
            self.jump(EbpfInsn::jump_reg(op, reg, TMP, 0), target);
        }
    }
}

fn size_of(insn: CbpfInsn) -> u8 {
    match insn.size() {
        cbpf::W => e::W,
        cbpf::H => e::H,
        _ => e::B,
    }
}

/// Loads `size` bytes at packet offset `k` (constant) into `dst`, or fails.
fn load_absolute(b: &mut Builder, dst: u8, insn: CbpfInsn) {
    let size = insn.load_size();
    let end = u64::from(insn.k) + u64::from(size);
    if end > OFFSET_MASK as u64 + 1 {
        // Past any packet netcap captures, so the check below always fails at
        // run time; the verifier cannot know that, and an unconditional jump
        // would leave the code after it unreachable, which it refuses.
        let bound = end.min(i32::MAX as u64) as i32;
        b.jump(EbpfInsn::jump_imm(e::JLT, CAPTURED, bound, 0), Target::Short);
        b.mov_k(dst, 0);
        return;
    }
    b.jump(EbpfInsn::jump_imm(e::JLT, CAPTURED, end as i32, 0), Target::Short);
    if insn.k <= i16::MAX as u32 {
        b.push(EbpfInsn::load(size_of(insn), dst, PACKET, insn.k as i16));
    } else {
        b.push(EbpfInsn::alu64_reg(e::MOV, TMP, PACKET));
        b.push(EbpfInsn::alu64_imm(e::ADD, TMP, insn.k as i32));
        b.push(EbpfInsn::load(size_of(insn), dst, TMP, 0));
    }
    byte_order(b, dst, size);
}

/// Which classic instructions can run: the verifier refuses unreachable
/// code, so those are not translated.
fn reachable(program: &[CbpfInsn]) -> Vec<bool> {
    let mut seen = vec![false; program.len()];
    let mut stack = vec![0usize];
    while let Some(pc) = stack.pop() {
        if pc >= program.len() || seen[pc] {
            continue;
        }
        seen[pc] = true;
        let insn = program[pc];
        match insn.class() {
            cbpf::RET => {}
            cbpf::JMP if insn.op() == cbpf::JA => stack.push(pc + 1 + insn.k as usize),
            cbpf::JMP => {
                stack.push(pc + 1 + insn.jt as usize);
                stack.push(pc + 1 + insn.jf as usize);
            }
            _ => stack.push(pc + 1),
        }
    }
    seen
}

fn byte_order(b: &mut Builder, dst: u8, size: u32) {
    match size {
        4 => b.push(EbpfInsn::to_be(dst, 32)),
        2 => b.push(EbpfInsn::to_be(dst, 16)),
        _ => {}
    }
}

/// Loads `size` bytes at packet offset X + k into A, or fails.
fn load_indirect(b: &mut Builder, insn: CbpfInsn) {
    let size = insn.load_size();
    // TMP = (u64)X + k, exact in 64 bits; fail when TMP + size > captured.
    b.mov_k(TMP, insn.k);
    b.push(EbpfInsn::alu64_reg(e::ADD, TMP, REG_X));
    b.push(EbpfInsn::alu64_reg(e::MOV, RET, TMP));
    b.push(EbpfInsn::alu64_imm(e::ADD, RET, size as i32));
    b.jump(EbpfInsn::jump_reg(e::JGT, RET, CAPTURED, 0), Target::Short);
    // Already below 64 KiB; the mask tells the verifier so. Pointer first:
    // the verifier keeps `pointer += scalar` a pointer for every pointer
    // type, but makes `scalar += pointer` a scalar for untrusted memory.
    b.push(EbpfInsn::alu64_imm(e::AND, TMP, OFFSET_MASK));
    b.push(EbpfInsn::alu64_reg(e::MOV, RET, PACKET));
    b.push(EbpfInsn::alu64_reg(e::ADD, RET, TMP));
    b.push(EbpfInsn::load(size_of(insn), REG_A, RET, 0));
    byte_order(b, REG_A, size);
}

fn memory_offset(word: u32) -> i16 {
    -(4 * cbpf::MEMWORDS as i16) + 4 * word as i16
}

pub fn translate(program: &[CbpfInsn]) -> Result<Vec<EbpfInsn>, TranslateError> {
    if program.last().is_none_or(|insn| insn.class() != cbpf::RET) {
        return Err(TranslateError::NoReturn);
    }
    let mut b = Builder { insns: Vec::new(), fixups: Vec::new() };
    b.mov_k(REG_A, 0);
    b.mov_k(REG_X, 0);
    let uses_memory = program.iter().any(|i| matches!(i.class(), cbpf::ST | cbpf::STX) || i.mode() == cbpf::MEM);
    if uses_memory {
        // Scratch words start at 0; the verifier also refuses reads of unwritten stack.
        for slot in 0..cbpf::MEMWORDS as i16 / 2 {
            b.push(EbpfInsn::store_imm(e::DW, e::FP, -8 * (slot + 1), 0));
        }
    }

    let live = reachable(program);
    let mut starts = Vec::with_capacity(program.len());
    for (index, &insn) in program.iter().enumerate() {
        starts.push(b.insns.len());
        if !live[index] {
            continue;
        }
        let bad = || TranslateError::BadInstruction { index, code: insn.code };
        let next = |offset: u32| -> Result<Target, TranslateError> {
            let target = index + 1 + offset as usize;
            if target >= program.len() {
                return Err(TranslateError::BadJump { index });
            }
            Ok(Target::Classic(target))
        };
        let word = |k: u32| -> Result<i16, TranslateError> {
            if k >= cbpf::MEMWORDS {
                return Err(TranslateError::BadMemory { index, word: k });
            }
            Ok(memory_offset(k))
        };
        match insn.class() {
            cbpf::LD => match insn.mode() {
                cbpf::IMM => b.mov_k(REG_A, insn.k),
                cbpf::ABS => load_absolute(&mut b, REG_A, insn),
                cbpf::IND => load_indirect(&mut b, insn),
                cbpf::MEM => b.push(EbpfInsn::load(e::W, REG_A, e::FP, word(insn.k)?)),
                cbpf::LEN => b.push(EbpfInsn::alu32_reg(e::MOV, REG_A, WIRE)),
                _ => return Err(bad()),
            },
            cbpf::LDX => match insn.mode() {
                cbpf::IMM => b.mov_k(REG_X, insn.k),
                cbpf::MEM => b.push(EbpfInsn::load(e::W, REG_X, e::FP, word(insn.k)?)),
                cbpf::LEN => b.push(EbpfInsn::alu32_reg(e::MOV, REG_X, WIRE)),
                cbpf::MSH => {
                    let byte = CbpfInsn::new(cbpf::LD | cbpf::B | cbpf::ABS, 0, 0, insn.k);
                    load_absolute(&mut b, REG_X, byte);
                    b.push(EbpfInsn::alu32_imm(e::AND, REG_X, 0x0f));
                    b.push(EbpfInsn::alu32_imm(e::LSH, REG_X, 2));
                }
                _ => return Err(bad()),
            },
            cbpf::ST => b.push(EbpfInsn::store_reg(e::W, e::FP, REG_A, word(insn.k)?)),
            cbpf::STX => b.push(EbpfInsn::store_reg(e::W, e::FP, REG_X, word(insn.k)?)),
            cbpf::ALU => alu(&mut b, insn).ok_or_else(bad)?,
            cbpf::JMP => {
                let op = match insn.op() {
                    cbpf::JA => {
                        b.jump(EbpfInsn::jump_imm(e::JA, 0, 0, 0), next(insn.k)?);
                        continue;
                    }
                    cbpf::JEQ => e::JEQ,
                    cbpf::JGT => e::JGT,
                    cbpf::JGE => e::JGE,
                    cbpf::JSET => e::JSET,
                    _ => return Err(bad()),
                };
                let (on_true, on_false) = (next(u32::from(insn.jt))?, next(u32::from(insn.jf))?);
                if insn.src() == cbpf::X {
                    b.jump(EbpfInsn::jump_reg(op, REG_A, REG_X, 0), on_true);
                } else {
                    b.jump_k(op, REG_A, insn.k, on_true);
                }
                if insn.jf != 0 {
                    b.jump(EbpfInsn::jump_imm(e::JA, 0, 0, 0), on_false);
                }
            }
            cbpf::RET => {
                match insn.rval() {
                    cbpf::A => b.push(EbpfInsn::alu32_reg(e::MOV, RET, REG_A)),
                    cbpf::K => b.mov_k(RET, insn.k),
                    // Classic BPF returns only a constant or A (libpcap aborts on others).
                    _ => return Err(bad()),
                }
                b.push(EbpfInsn::exit());
            }
            cbpf::MISC => match insn.misc_op() {
                cbpf::TAX => b.push(EbpfInsn::alu32_reg(e::MOV, REG_X, REG_A)),
                cbpf::TXA => b.push(EbpfInsn::alu32_reg(e::MOV, REG_A, REG_X)),
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        }
    }
    // The shared exits, each only where something jumps to it (the
    // verifier refuses unreachable code).
    let fail = b.insns.len();
    if b.fixups.iter().any(|(_, target)| matches!(target, Target::Fail)) {
        b.mov_k(RET, 0);
        b.push(EbpfInsn::exit());
    }
    let short = b.insns.len();
    if b.fixups.iter().any(|(_, target)| matches!(target, Target::Short)) {
        b.push(EbpfInsn::alu64_imm(e::MOV, RET, SHORT as i32));
        b.push(EbpfInsn::exit());
    }

    let Builder { mut insns, fixups } = b;
    for (at, target) in fixups {
        let destination = match target {
            Target::Classic(index) => starts[index],
            Target::Fail => fail,
            Target::Short => short,
        };
        let offset = destination as i64 - at as i64 - 1;
        insns[at].off = i16::try_from(offset).map_err(|_| TranslateError::TooLong)?;
    }
    Ok(insns)
}

/// One ALU instruction; None for an opcode that does not exist.
fn alu(b: &mut Builder, insn: CbpfInsn) -> Option<()> {
    let op = match insn.op() {
        cbpf::ADD => e::ADD,
        cbpf::SUB => e::SUB,
        cbpf::MUL => e::MUL,
        cbpf::DIV => e::DIV,
        cbpf::OR => e::OR,
        cbpf::AND => e::AND,
        cbpf::LSH => e::LSH,
        cbpf::RSH => e::RSH,
        cbpf::MOD => e::MOD,
        cbpf::XOR => e::XOR,
        cbpf::NEG => {
            b.push(EbpfInsn::new(e::ALU | e::NEG, REG_A, 0, 0, 0));
            return Some(());
        }
        _ => return None,
    };
    let divides = op == e::DIV || op == e::MOD;
    let shifts = op == e::LSH || op == e::RSH;
    if insn.src() == cbpf::X {
        if divides {
            b.jump(EbpfInsn::jump_imm(e::JEQ, REG_X, 0, 0), Target::Fail);
        }
        if shifts {
            // A shift by 32 or more gives 0, as in libpcap; eBPF would mask it.
            b.push(EbpfInsn::jump_imm(e::JLT, REG_X, 32, 2));
            b.mov_k(REG_A, 0);
            b.push(EbpfInsn::jump_imm(e::JA, 0, 0, 1));
        }
        b.push(EbpfInsn::alu32_reg(op, REG_A, REG_X));
    } else if divides && insn.k == 0 {
        b.jump(EbpfInsn::jump_imm(e::JA, 0, 0, 0), Target::Fail);
    } else if shifts && insn.k >= 32 {
        b.mov_k(REG_A, 0);
    } else {
        b.push(EbpfInsn::alu32_imm(op, REG_A, insn.k as i32));
    }
    Some(())
}
