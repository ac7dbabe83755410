//! Field paths resolved against the running kernel's BTF, from struct
//! sk_buff: members (found through anonymous structs and unions), embedded
//! structs with `.`, pointers with `->`, constant array indexes, bitfields.
//! The result says where to read (byte offsets, pointers followed between
//! them), how much, and how to make a number of it.

use thiserror::Error;

use super::parse::{FieldPath, Step};
use crate::kernel::btf::{Btf, IntEncoding, Kind, TypeId};

/// What a resolved field holds, for comparing and for printing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Integer {
        signed: bool,
    },
    Bool,
    /// An enum: printed by the name of its value.
    Enum {
        name: String,
        values: Vec<(String, i64)>,
    },
    Pointer,
    /// A byte array (`cb`): printed as hex; --skb-fields only.
    Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub text: String,
    /// The value is at base + the last offset, base being the skb followed
    /// through the pointer at base + each earlier offset.
    pub offsets: Vec<u32>,
    /// Bytes read at the last offset: 1, 2, 4 or 8 (any length for Bytes).
    pub size: u32,
    /// A bitfield: shift right by .0, keep .1 bits.
    pub bits: Option<(u32, u32)>,
    pub value: Value,
    /// Network byte order (__be16, __be32, __be64): swapped when read, so
    /// that `protocol == 0x0800` reads as written.
    pub big_endian: bool,
    /// The C type, for messages and --dry-run.
    pub type_text: String,
}

impl Access {
    pub fn signed(&self) -> bool {
        matches!(self.value, Value::Integer { signed: true })
    }

    /// The number in `raw` (the field's bytes, read little-endian) as the
    /// kernel side makes it: swapped from network order, bits extracted,
    /// sign extended.
    pub fn number(&self, raw: u64) -> u64 {
        let raw = match (self.big_endian, self.size) {
            (true, 2) => u64::from((raw as u16).swap_bytes()),
            (true, 4) => u64::from((raw as u32).swap_bytes()),
            (true, _) => raw.swap_bytes(),
            _ => raw,
        };
        match self.bits {
            Some((shift, width)) => (raw >> shift) & ((1u64 << width) - 1),
            None if self.signed() && self.size < 8 => {
                let unused = 64 - 8 * self.size;
                (((raw << unused) as i64) >> unused) as u64
            }
            None => raw,
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ResolveError {
    #[error("{path}: no field '{name}' in {within}{}", nearest_list(.nearest))]
    NoField { path: String, name: String, within: String, nearest: Vec<String> },
    #[error("{path}: '{before}' is a pointer ({type_text}): write {before}->{name}")]
    DotOnPointer { path: String, before: String, name: String, type_text: String },
    #[error("{path}: '{before}' is {type_text}, not a pointer: write {before}.{name}")]
    ArrowOnValue { path: String, before: String, name: String, type_text: String },
    #[error("{path}: '{before}' is {type_text}, which has no fields")]
    NotAStruct { path: String, before: String, type_text: String },
    #[error("{path}: '{before}' is {type_text}, not an array")]
    NotAnArray { path: String, before: String, type_text: String },
    #[error("{path}: index {index} is past the end of {type_text}")]
    PastTheEnd { path: String, index: u32, type_text: String },
    #[error("{path} is {type_text}, not a number: {hint}")]
    NotANumber { path: String, type_text: String, hint: String },
    #[error("this kernel's BTF has no struct sk_buff")]
    NoSkBuff,
}

fn nearest_list(nearest: &[String]) -> String {
    if nearest.is_empty() { String::new() } else { format!("; nearest: {}", nearest.join(", ")) }
}

/// C spelling of a type, arrays included ("char[48]").
fn type_text_of(btf: &Btf, ty: TypeId) -> String {
    match btf.kind(btf.resolve(ty)) {
        Kind::Array { element, count } if btf.name(ty).is_empty() => {
            format!("{}[{count}]", type_text_of(btf, *element))
        }
        _ => btf.type_text(ty),
    }
}

/// Where a member is inside its struct.
struct Found {
    bit_offset: u32,
    bit_size: u32,
    ty: TypeId,
}

/// A member by name, looking into anonymous structs and unions.
fn find_member(btf: &Btf, container: TypeId, name: &str) -> Option<Found> {
    let (Kind::Struct { members, .. } | Kind::Union { members, .. }) = btf.kind(container) else { return None };
    for member in members {
        let member_name = btf.member_name(member);
        if member_name == name {
            return Some(Found { bit_offset: member.bit_offset, bit_size: u32::from(member.bit_size), ty: member.ty });
        }
        if member_name.is_empty()
            && let Some(inner) = find_member(btf, btf.resolve(member.ty), name)
        {
            return Some(Found { bit_offset: member.bit_offset + inner.bit_offset, ..inner });
        }
    }
    None
}

/// Every member name with its type ("mark (__u32)"), anonymous ones flattened.
fn member_names(btf: &Btf, container: TypeId, out: &mut Vec<(String, String)>) {
    let (Kind::Struct { members, .. } | Kind::Union { members, .. }) = btf.kind(container) else { return };
    for member in members {
        let name = btf.member_name(member);
        if name.is_empty() {
            member_names(btf, btf.resolve(member.ty), out);
        } else {
            out.push((name.to_string(), btf.type_text(member.ty)));
        }
    }
}

/// Resolves `path` from struct sk_buff. `bytes_allowed`: --skb-fields may
/// name byte arrays; filters need numbers.
pub fn resolve(btf: &Btf, path: &FieldPath, bytes_allowed: bool) -> Result<Access, ResolveError> {
    let skb = btf.struct_named("sk_buff").ok_or(ResolveError::NoSkBuff)?;
    let text = path.text.clone();
    let mut offsets = vec![0u32];
    let mut ty = skb;
    let mut before = "skb".to_string();
    let mut bits: Option<(u32, u32)> = None;
    for step in &path.steps {
        let current = btf.resolve(ty);
        let type_text = type_text_of(btf, ty);
        match step {
            Step::Member { name, arrow } => {
                let first = offsets.len() == 1 && before == "skb";
                let container = match (btf.kind(current), *arrow) {
                    _ if first => current,
                    (Kind::Ptr { target }, true) => {
                        // The pointer is read, and the path continues from where it points.
                        offsets.push(0);
                        btf.resolve(*target)
                    }
                    (Kind::Ptr { .. }, false) => {
                        return Err(ResolveError::DotOnPointer { path: text, before, name: name.clone(), type_text });
                    }
                    (Kind::Struct { .. } | Kind::Union { .. }, false) => current,
                    (Kind::Struct { .. } | Kind::Union { .. }, true) => {
                        return Err(ResolveError::ArrowOnValue { path: text, before, name: name.clone(), type_text });
                    }
                    _ => return Err(ResolveError::NotAStruct { path: text, before, type_text }),
                };
                let found = find_member(btf, container, name).ok_or_else(|| {
                    let mut names = Vec::new();
                    member_names(btf, container, &mut names);
                    let candidates: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
                    let nearest = crate::plan::nearest(name, candidates)
                        .into_iter()
                        .map(|n| {
                            let ty = names.iter().find(|(m, _)| *m == n).map_or("", |(_, t)| t.as_str());
                            format!("{n} ({ty})")
                        })
                        .collect();
                    ResolveError::NoField {
                        path: text.clone(),
                        name: name.clone(),
                        within: type_text_of(btf, container),
                        nearest,
                    }
                })?;
                let last = offsets.last_mut().expect("offsets start with one");
                if found.bit_size > 0 {
                    bits = Some((found.bit_offset, found.bit_size));
                } else {
                    *last += found.bit_offset / 8;
                }
                ty = found.ty;
                before = if before == "skb" {
                    name.clone()
                } else {
                    format!("{before}{}{name}", if *arrow { "->" } else { "." })
                };
            }
            Step::Index(index) => {
                let Kind::Array { element, count } = btf.kind(current) else {
                    return Err(ResolveError::NotAnArray { path: text, before, type_text });
                };
                if index >= count {
                    return Err(ResolveError::PastTheEnd { path: text, index: *index, type_text });
                }
                let element_size = btf.size_of(*element).unwrap_or(0);
                *offsets.last_mut().expect("offsets start with one") += index * element_size;
                ty = *element;
                before = format!("{before}[{index}]");
            }
        }
    }
    let type_text = type_text_of(btf, ty);
    let resolved = btf.resolve(ty);
    let not_a_number =
        |hint: &str| ResolveError::NotANumber { path: text.clone(), type_text: type_text.clone(), hint: hint.into() };
    let (size, value) = match btf.kind(resolved) {
        Kind::Int { size, encoding } => (
            *size,
            match encoding {
                IntEncoding::Bool => Value::Bool,
                IntEncoding::Signed | IntEncoding::Char => Value::Integer { signed: true },
                IntEncoding::Unsigned => Value::Integer { signed: false },
            },
        ),
        Kind::Enum { .. } => {
            let name = btf.name(resolved).to_string();
            let values =
                btf.enum_values(&name).unwrap_or_default().into_iter().map(|(n, v)| (n.to_string(), v)).collect();
            (4, Value::Enum { name, values })
        }
        Kind::Ptr { .. } => (8, Value::Pointer),
        Kind::Array { element, count } if bytes_allowed && btf.size_of(*element) == Some(1) => (*count, Value::Bytes),
        Kind::Array { .. } => return Err(not_a_number("index it with [N]")),
        Kind::Struct { .. } | Kind::Union { .. } => {
            return Err(not_a_number("name one of its fields with . (or -> through a pointer)"));
        }
        _ => return Err(not_a_number("only integers, enums and pointers compare")),
    };
    let last = *offsets.last().expect("offsets start with one");
    // A bitfield: read the smallest power-of-two unit that holds its bits.
    let (offsets, size, bits) = match bits {
        Some((bit_offset, bit_size)) => {
            let start = last + bit_offset / 8;
            let end = last + (bit_offset + bit_size).div_ceil(8);
            let unit = (end - start).next_power_of_two();
            let mut offsets = offsets;
            *offsets.last_mut().expect("offsets start with one") = start;
            (offsets, unit, Some((bit_offset % 8, bit_size)))
        }
        None => (offsets, size, None),
    };
    let big_endian = bits.is_none() && matches!(btf.name(ty), "__be16" | "__be32" | "__be64");
    Ok(Access { text, offsets, size, bits, value, big_endian, type_text })
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse_field_list;
    use super::*;

    fn btf() -> Btf {
        crate::kernel::load_btf().expect("this kernel's BTF")
    }

    fn access(btf: &Btf, text: &str) -> Result<Access, ResolveError> {
        resolve(btf, &parse_field_list(text).unwrap()[0], true)
    }

    #[test]
    fn plain_members_nested_structs_pointers_unions_and_arrays_resolve() {
        let btf = btf();
        let skb = btf.struct_named("sk_buff").unwrap();
        let offset_of = |name: &str| find_member(&btf, skb, name).unwrap().bit_offset / 8;
        let len = access(&btf, "len").unwrap();
        assert_eq!(
            (len.offsets.clone(), len.size, len.value.clone()),
            (vec![offset_of("len")], 4, Value::Integer { signed: false })
        );
        // mark shares an anonymous union with reserved_tailroom.
        assert_eq!(access(&btf, "mark").unwrap().offsets, vec![offset_of("mark")]);
        let dev = btf.struct_named("net_device").unwrap();
        let mtu = access(&btf, "dev->mtu").unwrap();
        assert_eq!(mtu.offsets, vec![offset_of("dev"), find_member(&btf, dev, "mtu").unwrap().bit_offset / 8]);
        let sock = btf.struct_named("sock").unwrap();
        let common = btf.struct_named("sock_common").unwrap();
        let family = access(&btf, "sk->__sk_common.skc_family").unwrap();
        let expected = find_member(&btf, sock, "__sk_common").unwrap().bit_offset / 8
            + find_member(&btf, common, "skc_family").unwrap().bit_offset / 8;
        assert_eq!((family.offsets[1], family.size), (expected, 2));
        let cb3 = access(&btf, "cb[3]").unwrap();
        assert_eq!((cb3.offsets[0], cb3.size), (offset_of("cb") + 3, 1));
        assert_eq!(access(&btf, "cb").unwrap().value, Value::Bytes);
        assert_eq!(access(&btf, "sk").unwrap().value, Value::Pointer);
        let protocol = access(&btf, "protocol").unwrap();
        assert!(protocol.big_endian && protocol.size == 2, "{protocol:?}");
        assert!(matches!(access(&btf, "dev").unwrap().value, Value::Pointer));
    }

    #[test]
    fn bitfields_read_the_unit_that_holds_them() {
        let btf = btf();
        let pkt_type = access(&btf, "pkt_type").unwrap();
        let (shift, width) = pkt_type.bits.expect("pkt_type is a bitfield");
        assert_eq!((width, pkt_type.size), (3, 1));
        let skb = btf.struct_named("sk_buff").unwrap();
        let found = find_member(&btf, skb, "pkt_type").unwrap();
        assert_eq!(pkt_type.offsets[0] * 8 + shift, found.bit_offset);
    }

    #[test]
    fn mistakes_name_the_nearest_real_fields_with_their_types() {
        let btf = btf();
        let cases = [
            ("mrak", "mrak: no field 'mrak' in struct sk_buff; nearest: mark (__u32)"),
            ("dev.mtu", "dev.mtu: 'dev' is a pointer (struct net_device *): write dev->mtu"),
            ("len->x", "len->x: 'len' is unsigned int, which has no fields"),
            ("cb[48]", "cb[48]: index 48 is past the end of char[48]"),
            ("mark[1]", "mark[1]: 'mark' is __u32, not an array"),
            ("dev->no_such_field", "dev->no_such_field: no field 'no_such_field' in struct net_device"),
            ("headers", "headers is struct"),
        ];
        for (text, message) in cases {
            let error = access(&btf, text).unwrap_err().to_string();
            assert!(error.starts_with(message) || error.contains(message), "'{text}': {error}");
        }
        let error = resolve(&btf, &parse_field_list("cb").unwrap()[0], false).unwrap_err().to_string();
        assert!(error.contains("not a number: index it with [N]"), "{error}");
    }
}
