//! eBPF instructions: encoding, the few constructors the translator needs,
//! and a one-line disassembly for --dry-run.

use std::fmt;

pub const LDX: u8 = 0x01;
pub const ST: u8 = 0x02;
pub const STX: u8 = 0x03;
pub const ALU: u8 = 0x04;
pub const JMP: u8 = 0x05;
pub const ALU64: u8 = 0x07;

pub const W: u8 = 0x00;
pub const H: u8 = 0x08;
pub const B: u8 = 0x10;
pub const DW: u8 = 0x18;
pub const MEM: u8 = 0x60;

pub const K: u8 = 0x00;
pub const X: u8 = 0x08;

pub const ADD: u8 = 0x00;
pub const SUB: u8 = 0x10;
pub const MUL: u8 = 0x20;
pub const DIV: u8 = 0x30;
pub const OR: u8 = 0x40;
pub const AND: u8 = 0x50;
pub const LSH: u8 = 0x60;
pub const RSH: u8 = 0x70;
pub const NEG: u8 = 0x80;
pub const MOD: u8 = 0x90;
pub const XOR: u8 = 0xa0;
pub const MOV: u8 = 0xb0;
pub const ARSH: u8 = 0xc0;
pub const END: u8 = 0xd0;

pub const JA: u8 = 0x00;
pub const JEQ: u8 = 0x10;
pub const JGT: u8 = 0x20;
pub const JGE: u8 = 0x30;
pub const JSET: u8 = 0x40;
pub const JNE: u8 = 0x50;
pub const EXIT: u8 = 0x90;
pub const JLT: u8 = 0xa0;
pub const JSGT: u8 = 0x60;
pub const JSGE: u8 = 0x70;
pub const CALL: u8 = 0x80;
pub const JLE: u8 = 0xb0;
pub const JSLT: u8 = 0xc0;
pub const JSLE: u8 = 0xd0;

pub const FP: u8 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EbpfInsn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl EbpfInsn {
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        EbpfInsn { code, dst, src, off, imm }
    }

    /// 32-bit ALU with an immediate: `dst op= imm` (upper half zeroed).
    pub const fn alu32_imm(op: u8, dst: u8, imm: i32) -> Self {
        Self::new(ALU | op | K, dst, 0, 0, imm)
    }

    pub const fn alu32_reg(op: u8, dst: u8, src: u8) -> Self {
        Self::new(ALU | op | X, dst, src, 0, 0)
    }

    pub const fn alu64_imm(op: u8, dst: u8, imm: i32) -> Self {
        Self::new(ALU64 | op | K, dst, 0, 0, imm)
    }

    pub const fn alu64_reg(op: u8, dst: u8, src: u8) -> Self {
        Self::new(ALU64 | op | X, dst, src, 0, 0)
    }

    /// `dst = bswap-to-big-endian(dst)` for 16 or 32 bits, zero-extended.
    pub const fn to_be(dst: u8, bits: i32) -> Self {
        Self::new(ALU | END | X, dst, 0, 0, bits)
    }

    /// `dst = *(size *)(src + off)`
    pub const fn load(size: u8, dst: u8, src: u8, off: i16) -> Self {
        Self::new(LDX | MEM | size, dst, src, off, 0)
    }

    /// `*(size *)(dst + off) = src`
    pub const fn store_reg(size: u8, dst: u8, src: u8, off: i16) -> Self {
        Self::new(STX | MEM | size, dst, src, off, 0)
    }

    /// `*(size *)(dst + off) = imm`
    pub const fn store_imm(size: u8, dst: u8, off: i16, imm: i32) -> Self {
        Self::new(ST | MEM | size, dst, 0, off, imm)
    }

    pub const fn jump_imm(op: u8, dst: u8, imm: i32, off: i16) -> Self {
        Self::new(JMP | op | K, dst, 0, off, imm)
    }

    pub const fn jump_reg(op: u8, dst: u8, src: u8, off: i16) -> Self {
        Self::new(JMP | op | X, dst, src, off, 0)
    }

    pub const fn exit() -> Self {
        Self::new(JMP | EXIT, 0, 0, 0, 0)
    }

    /// The 8 bytes of the kernel's `struct bpf_insn` (little-endian host).
    pub fn to_bytes(self) -> [u8; 8] {
        let mut bytes = [0u8; 8];
        bytes[0] = self.code;
        bytes[1] = (self.src << 4) | (self.dst & 0x0f);
        bytes[2..4].copy_from_slice(&self.off.to_le_bytes());
        bytes[4..8].copy_from_slice(&self.imm.to_le_bytes());
        bytes
    }

    pub fn from_bytes(bytes: [u8; 8]) -> Self {
        EbpfInsn {
            code: bytes[0],
            dst: bytes[1] & 0x0f,
            src: bytes[1] >> 4,
            off: i16::from_le_bytes([bytes[2], bytes[3]]),
            imm: i32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        }
    }
}

pub fn to_bytes(program: &[EbpfInsn]) -> Vec<u8> {
    program.iter().flat_map(|insn| insn.to_bytes()).collect()
}

impl fmt::Display for EbpfInsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (class, op) = (self.code & 0x07, self.code & 0xf0);
        let size = |code: u8| match code & 0x18 {
            W => "u32",
            H => "u16",
            B => "u8",
            _ => "u64",
        };
        let alu = |op: u8| match op {
            ADD => "+=",
            SUB => "-=",
            MUL => "*=",
            DIV => "/=",
            OR => "|=",
            AND => "&=",
            LSH => "<<=",
            RSH => ">>=",
            MOD => "%=",
            XOR => "^=",
            MOV => "=",
            ARSH => "s>>=",
            _ => "?=",
        };
        let (d, s, imm, off) = (self.dst, self.src, self.imm, self.off);
        match class {
            ALU | ALU64 => {
                let r = if class == ALU { "w" } else { "r" };
                match op {
                    NEG => write!(f, "{r}{d} = -{r}{d}"),
                    END => write!(f, "r{d} = be{imm} r{d}"),
                    _ if self.code & X != 0 => write!(f, "{r}{d} {} {r}{s}", alu(op)),
                    _ => write!(f, "{r}{d} {} {imm:#x}", alu(op)),
                }
            }
            LDX => write!(f, "r{d} = *({} *)(r{s} {off:+})", size(self.code)),
            STX => write!(f, "*({} *)(r{d} {off:+}) = r{s}", size(self.code)),
            ST => write!(f, "*({} *)(r{d} {off:+}) = {imm:#x}", size(self.code)),
            JMP => {
                let cmp = match op {
                    JA => return write!(f, "goto {off:+}"),
                    EXIT => return write!(f, "exit"),
                    CALL => return write!(f, "call {imm}"),
                    JSGT => "s>",
                    JSGE => "s>=",
                    JLE => "<=",
                    JSLT => "s<",
                    JSLE => "s<=",
                    JEQ => "==",
                    JGT => ">",
                    JGE => ">=",
                    JSET => "&",
                    JNE => "!=",
                    JLT => "<",
                    _ => "?",
                };
                if self.code & X != 0 {
                    write!(f, "if r{d} {cmp} r{s} goto {off:+}")
                } else {
                    write!(f, "if r{d} {cmp} {imm:#x} goto {off:+}")
                }
            }
            _ => write!(f, "code {:#04x} dst {d} src {s} off {off} imm {imm}", self.code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_the_kernel() {
        // r4 = *(u16 *)(r1 + 12): code 0x69, regs 0x14, off 12.
        let insn = EbpfInsn::load(H, 4, 1, 12);
        assert_eq!(insn.to_bytes(), [0x69, 0x14, 12, 0, 0, 0, 0, 0]);
        assert_eq!(EbpfInsn::from_bytes(insn.to_bytes()), insn);
        assert_eq!(EbpfInsn::exit().to_bytes(), [0x95, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(EbpfInsn::alu32_imm(MOV, 0, -1).to_bytes(), [0xb4, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(insn.to_string(), "r4 = *(u16 *)(r1 +12)");
    }
}
