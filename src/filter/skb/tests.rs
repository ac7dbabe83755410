//! The translation, run in rbpf on made-up sk_buffs laid out as this
//! kernel's BTF says (a net_device and a sock behind the pointers), must
//! decide as the same expression evaluated here in Rust.

use super::resolve::{Access, Value};
use super::translate::{PROBE_READ_KERNEL, Resolved};
use super::*;
use crate::filter::ebpf;

fn btf() -> Btf {
    crate::kernel::load_btf().expect("this kernel's BTF")
}

/// bpf_probe_read_kernel for rbpf: reads the test's own memory; an address
/// in the first page faults, as NULL does in the kernel.
fn probe_read(dst: u64, size: u64, src: u64, _: u64, _: u64) -> u64 {
    if src < 4096 {
        return -14i64 as u64;
    }
    // SAFETY: src points into buffers the test keeps alive (or past them by
    // less than the sizes it laid out); dst is rbpf's stack slot of 8 bytes.
    unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, size as usize) };
    0
}

fn run_in_rbpf(insns: &[ebpf::EbpfInsn], skb: &mut [u8]) -> u64 {
    let bytes = ebpf::to_bytes(insns);
    let mut vm = rbpf::EbpfVmRaw::new(Some(&bytes)).expect("rbpf accepts the program");
    vm.register_helper(PROBE_READ_KERNEL as u32, probe_read).unwrap();
    vm.execute_program(skb).unwrap_or_else(|e| panic!("rbpf: {e}"))
}

struct Fault;

/// The value of a field, read as the kernel side does.
fn read(access: &Access, skb: u64) -> Result<u64, Fault> {
    let mut base = skb;
    let (last, pointers) = access.offsets.split_last().unwrap();
    for offset in pointers {
        let mut pointer = [0u8; 8];
        if probe_read(pointer.as_mut_ptr() as u64, 8, base + u64::from(*offset), 0, 0) != 0 {
            return Err(Fault);
        }
        base = u64::from_le_bytes(pointer);
        if base == 0 {
            return Err(Fault);
        }
    }
    let mut bytes = [0u8; 8];
    if probe_read(bytes.as_mut_ptr() as u64, u64::from(access.size), base + u64::from(*last), 0, 0) != 0 {
        return Err(Fault);
    }
    Ok(access.number(u64::from_le_bytes(bytes)))
}

fn evaluate(expr: &Resolved, skb: u64) -> Result<u64, Fault> {
    Ok(match expr {
        Resolved::Number(n) => *n,
        Resolved::Field(access) => read(access, skb)?,
        Resolved::Not(inner) => u64::from(evaluate(inner, skb)? == 0),
        Resolved::Binary(BinOp::LogicalAnd, l, r) => u64::from(evaluate(l, skb)? != 0 && evaluate(r, skb)? != 0),
        Resolved::Binary(BinOp::LogicalOr, l, r) => u64::from(evaluate(l, skb)? != 0 || evaluate(r, skb)? != 0),
        Resolved::Binary(op, l, r) => {
            let signed =
                matches!(&**l, Resolved::Field(a) if a.signed()) || matches!(&**r, Resolved::Field(a) if a.signed());
            let (a, b) = (evaluate(l, skb)?, evaluate(r, skb)?);
            let compare =
                |unsigned: bool, signed_result: bool| u64::from(if signed { signed_result } else { unsigned });
            match op {
                BinOp::And => a & b,
                BinOp::Or => a | b,
                BinOp::Xor => a ^ b,
                BinOp::Shl => a.wrapping_shl(b as u32),
                BinOp::Shr => a.wrapping_shr(b as u32),
                BinOp::Eq => u64::from(a == b),
                BinOp::Ne => u64::from(a != b),
                BinOp::Lt => compare(a < b, (a as i64) < (b as i64)),
                BinOp::Le => compare(a <= b, (a as i64) <= (b as i64)),
                BinOp::Gt => compare(a > b, (a as i64) > (b as i64)),
                BinOp::Ge => compare(a >= b, (a as i64) >= (b as i64)),
                BinOp::LogicalAnd | BinOp::LogicalOr => unreachable!(),
            }
        }
    })
}

use parse::BinOp;

/// Writes `value`'s low `access.size` bytes (or its bits) where `access`
/// says, in the buffer the last pointer leads to.
fn store(buffer: &mut [u8], access: &Access, value: u64) {
    let at = *access.offsets.last().unwrap() as usize;
    let size = access.size as usize;
    let mut unit = [0u8; 8];
    unit[..size].copy_from_slice(&buffer[at..at + size]);
    let mut raw = u64::from_le_bytes(unit);
    match access.bits {
        Some((shift, width)) => {
            let mask = ((1u64 << width) - 1) << shift;
            raw = (raw & !mask) | ((value << shift) & mask);
        }
        None => raw = value,
    }
    buffer[at..at + size].copy_from_slice(&raw.to_le_bytes()[..size]);
}

/// A made-up skb with a device and a socket behind its pointers; the
/// buffers stay where they are (boxed) while the test reads them by address.
struct World {
    skb: Vec<u8>,
    dev: Box<[u8]>,
    sk: Box<[u8]>,
}

impl World {
    fn new(btf: &Btf) -> World {
        let size = |name: &str| btf.size_of(btf.struct_named(name).unwrap()).unwrap() as usize;
        World {
            skb: vec![0; size("sk_buff")],
            dev: vec![0; size("net_device")].into_boxed_slice(),
            sk: vec![0; size("sock")].into_boxed_slice(),
        }
    }

    fn set(&mut self, access: &Access, value: u64) {
        let buffer: &mut [u8] = match access.offsets.len() {
            1 => &mut self.skb,
            _ if access.text.starts_with("dev->") => &mut self.dev,
            _ => &mut self.sk,
        };
        store(buffer, access, value);
    }

    fn link(&mut self, btf: &Btf, dev: bool, sk: bool) {
        for (name, present, address) in [("dev", dev, self.dev.as_ptr() as u64), ("sk", sk, self.sk.as_ptr() as u64)] {
            let access = resolve::resolve(btf, &parse::parse_field_list(name).unwrap()[0], false).unwrap();
            store(&mut self.skb, &access, if present { address } else { 0 });
        }
    }
}

/// A small deterministic generator (xorshift), so failures repeat.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Mostly values the expressions compare with, sometimes anything.
    fn value(&mut self, interesting: &[u64]) -> u64 {
        match self.next() % 4 {
            0 => self.next(),
            _ => interesting[(self.next() % interesting.len() as u64) as usize],
        }
    }
}

pub const EXPRESSIONS: [&str; 15] = [
    "mark == 0x10",
    "mark & 0xff == 0x10",
    "len > 1000 && mark != 0",
    "len >= 1000 || priority < 3",
    "!(len < 60)",
    "dev->mtu == 9000",
    "dev->mtu == 1500 && len > 100",
    "sk->sk_protocol == 6 || sk->sk_protocol == 17",
    "pkt_type == 0 && mark >> 4 == 1",
    "(mark | priority) & 0xf0 != 0",
    "hash ^ mark == 0xffffffffffffffff",
    "sk->__sk_common.skc_family == 2 && dev->ifindex > 1",
    "tstamp > 0x123456789",
    "queue_mapping <= 2 && !(pkt_type == 1) && (len > 10 || data_len == 0)",
    "protocol == 0x0800 && len > 100",
];

#[test]
fn the_translation_decides_as_the_expression_does_on_made_up_skbs() {
    let btf = btf();
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let interesting =
        [0, 1, 2, 3, 6, 17, 0x10, 0x110, 0xff, 60, 100, 999, 1000, 1001, 1500, 9000, 0x1_2345_6789, 0x0008];
    let mut both = [0usize; 2];
    for text in EXPRESSIONS {
        let filter = SkbFilter::compile(text, &btf).unwrap_or_else(|e| panic!("{text}: {e}"));
        let fields: Vec<Access> = filter.resolved.fields().into_iter().cloned().collect();
        for round in 0..300 {
            let mut world = World::new(&btf);
            // Now and then a NULL device or socket: the read faults, no match.
            world.link(&btf, round % 13 != 0, round % 17 != 0);
            for access in &fields {
                world.set(access, random.value(&interesting));
            }
            let skb = world.skb.as_ptr() as u64;
            let expected = evaluate(&filter.resolved, skb).map_or(0, |v| u64::from(v != 0));
            let got = run_in_rbpf(&filter.translated, &mut world.skb);
            assert_eq!(got, expected, "'{text}', round {round}:\n{}", filter.describe());
            both[expected as usize] += 1;
        }
    }
    // Both verdicts were exercised, many times.
    assert!(both[0] > 500 && both[1] > 500, "{both:?}");
}

#[test]
fn signed_fields_compare_signed_and_bitfields_are_masked() {
    let btf = btf();
    // skb_iif is an int: -1 is less than 0 there.
    let filter = SkbFilter::compile("skb_iif < 0", &btf).unwrap();
    let mut world = World::new(&btf);
    let iif = filter.resolved.fields()[0].clone();
    assert!(iif.signed());
    world.set(&iif, 0xffff_ffff);
    assert_eq!(run_in_rbpf(&filter.translated, &mut world.skb), 1);
    world.set(&iif, 5);
    assert_eq!(run_in_rbpf(&filter.translated, &mut world.skb), 0);

    // The bits around a bitfield do not leak into it.
    let filter = SkbFilter::compile("pkt_type == 3", &btf).unwrap();
    let pkt_type = filter.resolved.fields()[0].clone();
    let at = pkt_type.offsets[0] as usize;
    world.skb[at] = 0xff;
    world.set(&pkt_type, 3);
    assert_eq!(run_in_rbpf(&filter.translated, &mut world.skb), 1);
    assert_eq!(pkt_type.value, Value::Integer { signed: false });
}

#[test]
fn too_deep_and_wrong_fields_are_refused_in_the_user_s_terms() {
    let btf = btf();
    // Right-nested: each level keeps its left operand while the right one is worked out.
    let deep = (0..14).fold("mark".to_string(), |e, i| format!("({i} | {e})")) + " == 1";
    let error = SkbFilter::compile(&deep, &btf).unwrap_err().to_string();
    assert!(error.contains("levels deep, past the 12 the BPF stack leaves room for"), "{error}");
    let error = SkbFilter::compile("mark == 1 && dev->mut == 9000", &btf).unwrap_err().to_string();
    assert!(
        error.starts_with(
            "--skb-filter 'mark == 1 && dev->mut == 9000': dev->mut: no field 'mut' in struct net_device; nearest: "
        ),
        "{error}"
    );
    assert!(error.contains("mtu (unsigned int)"), "{error}");
    let error = SkbFilter::compile("dev == 0", &btf).map(|f| f.describe()).unwrap();
    assert!(error.contains("dev (struct net_device *): 8 bytes at skb+"), "{error}");
}
