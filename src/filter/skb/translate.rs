//! A resolved --skb-filter expression as eBPF: the body of the stub
//! `netcap_filter_skb(skb)` (bpf/lib/filter.h), spliced in at load like
//! -e's. Every field is read with bpf_probe_read_kernel() (a pointer chain
//! one read per pointer), so the same code runs at every attach flavour;
//! a read that faults, a NULL pointer on the way included, means no match.
//!
//! Registers: r6 the skb, r7 the pointer being followed, r0 each value;
//! fp-8 receives each read, fp-16… hold left operands while the right one
//! is worked out (one slot per nesting level).

use super::parse::BinOp;
use super::resolve::Access;
use crate::filter::ebpf::*;

/// bpf_probe_read_kernel (5.5 on).
pub const PROBE_READ_KERNEL: i32 = 113;
/// Nesting levels a filter may use: each takes 8 bytes of the 512-byte BPF
/// stack, shared with the program that calls the filter.
pub const SLOTS: usize = 12;

/// An expression whose fields are resolved, in the shape `translate` takes.
#[derive(Debug, Clone)]
pub enum Resolved {
    Number(u64),
    Field(Access),
    Not(Box<Resolved>),
    Binary(BinOp, Box<Resolved>, Box<Resolved>),
}

impl Resolved {
    fn signed(&self) -> bool {
        matches!(self, Resolved::Field(access) if access.signed())
    }

    /// Nesting levels the translation needs (slots for left operands).
    pub fn depth(&self) -> usize {
        match self {
            Resolved::Number(_) | Resolved::Field(_) => 0,
            Resolved::Not(inner) => inner.depth(),
            Resolved::Binary(BinOp::LogicalAnd | BinOp::LogicalOr, l, r) => l.depth().max(r.depth()),
            Resolved::Binary(_, l, r) => l.depth().max(1 + r.depth()),
        }
    }

    /// Fields it reads, in order.
    pub fn fields(&self) -> Vec<&Access> {
        match self {
            Resolved::Number(_) => Vec::new(),
            Resolved::Field(access) => vec![access],
            Resolved::Not(inner) => inner.fields(),
            Resolved::Binary(_, l, r) => [l.fields(), r.fields()].concat(),
        }
    }
}

/// Jumps to the no-match exit, patched once its place is known.
struct Code {
    insns: Vec<EbpfInsn>,
    to_fail: Vec<usize>,
}

impl Code {
    fn push(&mut self, insn: EbpfInsn) -> usize {
        self.insns.push(insn);
        self.insns.len() - 1
    }

    /// Points the jump at `from` to the next instruction to be pushed.
    fn land(&mut self, from: usize) {
        self.insns[from].off = (self.insns.len() - from - 1) as i16;
    }

    fn constant(&mut self, reg: u8, value: u64) {
        if value <= i32::MAX as u64 {
            self.push(EbpfInsn::alu64_imm(MOV, reg, value as i32));
        } else {
            // mov32 zero-extends: high half, shift, then or in the low half.
            self.push(EbpfInsn::alu32_imm(MOV, reg, (value >> 32) as u32 as i32));
            self.push(EbpfInsn::alu64_imm(LSH, reg, 32));
            self.push(EbpfInsn::alu32_imm(MOV, 1, value as u32 as i32));
            self.push(EbpfInsn::alu64_reg(OR, reg, 1));
        }
    }

    /// r0 = `size` bytes at `base` + `offset`, or to the no-match exit on a fault.
    fn read(&mut self, base: u8, offset: u32, size: u32) {
        self.push(EbpfInsn::alu64_reg(MOV, 1, FP));
        self.push(EbpfInsn::alu64_imm(ADD, 1, -8));
        self.push(EbpfInsn::alu64_imm(MOV, 2, size as i32));
        self.push(EbpfInsn::alu64_reg(MOV, 3, base));
        if offset != 0 {
            self.push(EbpfInsn::alu64_imm(ADD, 3, offset as i32));
        }
        self.push(EbpfInsn::new(JMP | CALL, 0, 0, 0, PROBE_READ_KERNEL));
        let fault = self.push(EbpfInsn::jump_imm(JNE, 0, 0, 0));
        self.to_fail.push(fault);
        let width = match size {
            1 => B,
            2 => H,
            4 => W,
            _ => DW,
        };
        self.push(EbpfInsn::load(width, 0, FP, -8));
    }

    fn field(&mut self, access: &Access) {
        let (last, pointers) = access.offsets.split_last().expect("a field has an offset");
        let mut base = 6;
        for &offset in pointers {
            self.read(base, offset, 8);
            // A NULL pointer on the way: nothing to compare, no match.
            let null = self.push(EbpfInsn::jump_imm(JEQ, 0, 0, 0));
            self.to_fail.push(null);
            self.push(EbpfInsn::alu64_reg(MOV, 7, 0));
            base = 7;
        }
        self.read(base, *last, access.size);
        if access.big_endian {
            self.push(EbpfInsn::to_be(0, 8 * access.size as i32));
        }
        if let Some((shift, width)) = access.bits {
            if shift > 0 {
                self.push(EbpfInsn::alu64_imm(RSH, 0, shift as i32));
            }
            let mask = if width >= 64 { u64::MAX } else { (1u64 << width) - 1 };
            if mask <= i32::MAX as u64 {
                self.push(EbpfInsn::alu64_imm(AND, 0, mask as i32));
            }
        } else if access.signed() && access.size < 8 {
            let unused = 64 - 8 * access.size as i32;
            self.push(EbpfInsn::alu64_imm(LSH, 0, unused));
            self.push(EbpfInsn::alu64_imm(ARSH, 0, unused));
        }
    }

    /// r0 = (r0 != 0).
    fn truth(&mut self) {
        self.push(EbpfInsn::jump_imm(JEQ, 0, 0, 1));
        self.push(EbpfInsn::alu64_imm(MOV, 0, 1));
    }

    fn slot(level: usize) -> i16 {
        -16 - 8 * level as i16
    }

    fn expr(&mut self, expr: &Resolved, level: usize) {
        match expr {
            Resolved::Number(n) => self.constant(0, *n),
            Resolved::Field(access) => self.field(access),
            Resolved::Not(inner) => {
                self.expr(inner, level);
                // r0 = (r0 == 0)
                self.push(EbpfInsn::jump_imm(JEQ, 0, 0, 2));
                self.push(EbpfInsn::alu64_imm(MOV, 0, 0));
                self.push(EbpfInsn::jump_imm(JA, 0, 0, 1));
                self.push(EbpfInsn::alu64_imm(MOV, 0, 1));
            }
            Resolved::Binary(BinOp::LogicalAnd, left, right) => {
                self.expr(left, level);
                let skip = self.push(EbpfInsn::jump_imm(JEQ, 0, 0, 0));
                self.expr(right, level);
                self.truth();
                self.land(skip);
            }
            Resolved::Binary(BinOp::LogicalOr, left, right) => {
                self.expr(left, level);
                let skip = self.push(EbpfInsn::jump_imm(JNE, 0, 0, 0));
                self.expr(right, level);
                self.truth();
                let done = self.push(EbpfInsn::jump_imm(JA, 0, 0, 0));
                self.land(skip);
                self.push(EbpfInsn::alu64_imm(MOV, 0, 1));
                self.land(done);
            }
            Resolved::Binary(op, left, right) => {
                self.expr(left, level);
                // A small constant on the right goes into the instruction itself.
                let constant = match **right {
                    Resolved::Number(n) if n <= i32::MAX as u64 => Some(n as i32),
                    _ => None,
                };
                match constant {
                    Some(_) => {
                        self.push(EbpfInsn::alu64_reg(MOV, 1, 0));
                    }
                    None => {
                        self.push(EbpfInsn::store_reg(DW, FP, 0, Self::slot(level)));
                        self.expr(right, level + 1);
                        self.push(EbpfInsn::load(DW, 1, FP, Self::slot(level)));
                    }
                }
                let with = |code: u8, imm_form: fn(u8, u8, i32) -> EbpfInsn, reg_form: fn(u8, u8, u8) -> EbpfInsn| {
                    match constant {
                        Some(imm) => imm_form(code, 1, imm),
                        None => reg_form(code, 1, 0),
                    }
                };
                if op.is_comparison() {
                    let signed = left.signed() || right.signed();
                    let jump = match (op, signed) {
                        (BinOp::Eq, _) => JEQ,
                        (BinOp::Ne, _) => JNE,
                        (BinOp::Lt, false) => JLT,
                        (BinOp::Le, false) => JLE,
                        (BinOp::Gt, false) => JGT,
                        (BinOp::Ge, false) => JGE,
                        (BinOp::Lt, true) => JSLT,
                        (BinOp::Le, true) => JSLE,
                        (BinOp::Gt, true) => JSGT,
                        (BinOp::Ge, true) => JSGE,
                        _ => unreachable!("a comparison"),
                    };
                    let mut test = with(
                        jump,
                        |code, dst, imm| EbpfInsn::jump_imm(code, dst, imm, 0),
                        |code, dst, src| EbpfInsn::jump_reg(code, dst, src, 0),
                    );
                    test.off = 2;
                    self.push(test);
                    self.push(EbpfInsn::alu64_imm(MOV, 0, 0));
                    self.push(EbpfInsn::jump_imm(JA, 0, 0, 1));
                    self.push(EbpfInsn::alu64_imm(MOV, 0, 1));
                } else {
                    let alu = match op {
                        BinOp::And => AND,
                        BinOp::Or => OR,
                        BinOp::Xor => XOR,
                        BinOp::Shl => LSH,
                        BinOp::Shr => RSH,
                        _ => unreachable!("an arithmetic operator"),
                    };
                    self.push(with(alu, EbpfInsn::alu64_imm, EbpfInsn::alu64_reg));
                    self.push(EbpfInsn::alu64_reg(MOV, 0, 1));
                }
            }
        }
    }
}

/// The stub's body: r1 holds the skb; r0 ends 1 (keep) or 0.
pub fn translate(expr: &Resolved) -> Vec<EbpfInsn> {
    let mut code = Code { insns: Vec::new(), to_fail: Vec::new() };
    code.push(EbpfInsn::alu64_reg(MOV, 6, 1));
    code.expr(expr, 0);
    code.truth();
    code.push(EbpfInsn::exit());
    for from in std::mem::take(&mut code.to_fail) {
        code.land(from);
    }
    code.push(EbpfInsn::alu64_imm(MOV, 0, 0));
    code.push(EbpfInsn::exit());
    code.insns
}
