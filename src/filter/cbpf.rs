//! Classic BPF as libpcap produces it: the instruction, its opcode fields,
//! and a listing in the style of `tcpdump -d`.

use std::fmt;

// Instruction classes, sizes, modes and sources shared with eBPF.
pub const LD: u16 = 0x00;
pub const LDX: u16 = 0x01;
pub const ST: u16 = 0x02;
pub const STX: u16 = 0x03;
pub const ALU: u16 = 0x04;
pub const JMP: u16 = 0x05;
pub const RET: u16 = 0x06;
pub const MISC: u16 = 0x07;

pub const W: u16 = 0x00;
pub const H: u16 = 0x08;
pub const B: u16 = 0x10;

pub const IMM: u16 = 0x00;
pub const ABS: u16 = 0x20;
pub const IND: u16 = 0x40;
pub const MEM: u16 = 0x60;
pub const LEN: u16 = 0x80;
pub const MSH: u16 = 0xa0;

pub const K: u16 = 0x00;
pub const X: u16 = 0x08;
/// RET's source: the accumulator.
pub const A: u16 = 0x10;

pub const ADD: u16 = 0x00;
pub const SUB: u16 = 0x10;
pub const MUL: u16 = 0x20;
pub const DIV: u16 = 0x30;
pub const OR: u16 = 0x40;
pub const AND: u16 = 0x50;
pub const LSH: u16 = 0x60;
pub const RSH: u16 = 0x70;
pub const NEG: u16 = 0x80;
pub const MOD: u16 = 0x90;
pub const XOR: u16 = 0xa0;

pub const JA: u16 = 0x00;
pub const JEQ: u16 = 0x10;
pub const JGT: u16 = 0x20;
pub const JGE: u16 = 0x30;
pub const JSET: u16 = 0x40;

pub const TAX: u16 = 0x00;
pub const TXA: u16 = 0x80;

/// Scratch memory words (M[0..16]).
pub const MEMWORDS: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CbpfInsn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl CbpfInsn {
    pub const fn new(code: u16, jt: u8, jf: u8, k: u32) -> Self {
        CbpfInsn { code, jt, jf, k }
    }
    pub fn class(self) -> u16 {
        self.code & 0x07
    }
    pub fn size(self) -> u16 {
        self.code & 0x18
    }
    pub fn mode(self) -> u16 {
        self.code & 0xe0
    }
    pub fn op(self) -> u16 {
        self.code & 0xf0
    }
    pub fn src(self) -> u16 {
        self.code & 0x08
    }
    pub fn rval(self) -> u16 {
        self.code & 0x18
    }
    pub fn misc_op(self) -> u16 {
        self.code & 0xf8
    }
    /// Bytes a packet load reads.
    pub fn load_size(self) -> u32 {
        match self.size() {
            W => 4,
            H => 2,
            _ => 1,
        }
    }
}

/// One instruction in `tcpdump -d` style, at position `pc`.
pub fn listing_line(pc: usize, insn: CbpfInsn) -> String {
    let size = match insn.size() {
        W => "",
        H => "h",
        _ => "b",
    };
    let k = insn.k;
    let text = match insn.class() {
        LD => match insn.mode() {
            IMM => format!("ld       #0x{k:x}"),
            ABS => format!("ld{size:<7}[{k}]"),
            IND => format!("ld{size:<7}[x + {k}]"),
            MEM => format!("ld       M[{k}]"),
            LEN => "ld       #pktlen".into(),
            _ => format!("unknown  0x{:x}", insn.code),
        },
        LDX => match insn.mode() {
            IMM => format!("ldx      #0x{k:x}"),
            MEM => format!("ldx      M[{k}]"),
            LEN => "ldx      #pktlen".into(),
            MSH => format!("ldxb     4*([{k}]&0xf)"),
            _ => format!("unknown  0x{:x}", insn.code),
        },
        ST => format!("st       M[{k}]"),
        STX => format!("stx      M[{k}]"),
        ALU => {
            let name = match insn.op() {
                ADD => "add",
                SUB => "sub",
                MUL => "mul",
                DIV => "div",
                OR => "or",
                AND => "and",
                LSH => "lsh",
                RSH => "rsh",
                NEG => "neg",
                MOD => "mod",
                XOR => "xor",
                _ => "unknown",
            };
            match (insn.op(), insn.src()) {
                (NEG, _) => name.to_string(),
                (_, X) => format!("{name:<9}x"),
                _ => format!("{name:<9}#0x{k:x}"),
            }
        }
        JMP => {
            let name = match insn.op() {
                JA => return format!("({pc:03}) ja       {}", pc + 1 + k as usize),
                JEQ => "jeq",
                JGT => "jgt",
                JGE => "jge",
                JSET => "jset",
                _ => "unknown",
            };
            let operand = if insn.src() == X { "x".to_string() } else { format!("#0x{k:x}") };
            format!("{name:<9}{operand:<14}jt {}\tjf {}", pc + 1 + insn.jt as usize, pc + 1 + insn.jf as usize)
        }
        RET => match insn.rval() {
            A => "ret      a".into(),
            X => "ret      x".into(),
            _ => format!("ret      #{k}"),
        },
        MISC => {
            if insn.misc_op() == TXA {
                "txa".into()
            } else {
                "tax".into()
            }
        }
        _ => format!("unknown  0x{:x}", insn.code),
    };
    format!("({pc:03}) {text}")
}

pub struct Listing<'a>(pub &'a [CbpfInsn]);

impl fmt::Display for Listing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (pc, insn) in self.0.iter().enumerate() {
            writeln!(f, "{}", listing_line(pc, *insn))?;
        }
        Ok(())
    }
}
