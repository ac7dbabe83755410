//! A reader for the kernel's BTF (`/sys/kernel/btf/vmlinux` and the split
//! BTF of modules): just enough of the format to find functions,
//! tracepoint prototypes, their parameters and enums by name.
//!
//! Written here rather than taken from a crate because netcap needs only
//! a read-only walk of a few kinds and full control of split-BTF numbering.

use std::path::Path;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum BtfError {
    #[error("{path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{0}: not BTF (bad magic or header)")]
    BadHeader(String),
    #[error("{0}: BTF type {1} is truncated or of unknown kind {2}")]
    BadType(String, u32, u32),
}

pub type TypeId = u32;

/// The kinds netcap looks at; everything else is kept as `Other`.
#[derive(Debug, Clone)]
pub enum Kind {
    Int {
        /// Bytes.
        size: u32,
        encoding: IntEncoding,
    },
    Ptr {
        target: TypeId,
    },
    Array {
        element: TypeId,
        count: u32,
    },
    Struct {
        size: u32,
        members: Vec<Member>,
    },
    Union {
        size: u32,
        members: Vec<Member>,
    },
    Enum {
        values: Vec<(u32, i64)>,
    },
    Fwd,
    Typedef {
        target: TypeId,
    },
    /// const, volatile, restrict, type tags: qualifiers to see through.
    Qualifier {
        target: TypeId,
    },
    Func {
        proto: TypeId,
    },
    FuncProto {
        params: Vec<(u32, TypeId)>,
    },
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntEncoding {
    Unsigned,
    Signed,
    /// `char` (its signedness is the target's; BPF's is signed).
    Char,
    Bool,
}

/// A struct or union member.
#[derive(Debug, Clone)]
pub struct Member {
    name_off: u32,
    pub ty: TypeId,
    pub bit_offset: u32,
    /// Non-zero for bitfields.
    pub bit_size: u8,
}

#[derive(Debug, Clone)]
struct Type {
    name_off: u32,
    kind: Kind,
}

/// vmlinux's BTF, then optionally one module's split BTF that continues
/// its type and string numbering.
pub struct Btf {
    types: Vec<Type>, // index 0 is void
    strings: Vec<u8>,
    /// Types and string bytes of vmlinux alone, where a module's split starts.
    base: (usize, usize),
    /// (hash of the name, id) of every named type, sorted: a lookup is a
    /// binary search plus a name check. vmlinux has ~100,000 named types, and
    /// a map owning a String per name cost more than the rest of the parse.
    by_name: Vec<(u64, TypeId)>,
}

/// FNV-1a: short identifiers, no adversary.
fn name_hash(name: &[u8]) -> u64 {
    name.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3))
}

const MAGIC: u16 = 0xeb9f;

fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(offset..offset + 4)?.try_into().ok()?))
}

impl Btf {
    pub fn from_file(path: &Path) -> Result<Btf, BtfError> {
        Btf::from_bytes(&read(path)?, &path.display().to_string())
    }

    /// BTF from a blob (a `.BTF` section); `origin` names it in errors.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Btf, BtfError> {
        let mut btf = Btf {
            types: vec![Type { name_off: 0, kind: Kind::Other }],
            strings: Vec::new(),
            base: (1, 0),
            by_name: Vec::new(),
        };
        btf.append(bytes, origin)?;
        btf.base = (btf.types.len(), btf.strings.len());
        Ok(btf)
    }

    /// Puts a module's split BTF (`/sys/kernel/btf/MODULE`) after this
    /// vmlinux's, in place of another module's: each continues vmlinux alone.
    pub fn use_split(&mut self, path: &Path) -> Result<(), BtfError> {
        let bytes = read(path)?;
        let (types, strings) = self.base;
        self.types.truncate(types);
        self.strings.truncate(strings);
        self.by_name.retain(|&(_, id)| (id as usize) < types);
        self.append(&bytes, &path.display().to_string())
    }

    fn append(&mut self, bytes: &[u8], origin: &str) -> Result<(), BtfError> {
        let bad = || BtfError::BadHeader(origin.to_string());
        if bytes.len() < 24 || u16::from_le_bytes([bytes[0], bytes[1]]) != MAGIC {
            return Err(bad());
        }
        let hdr_len = u32_at(bytes, 4).ok_or_else(bad)? as usize;
        let field = |i: usize| u32_at(bytes, 8 + 4 * i).map(|v| v as usize).ok_or_else(bad);
        let (type_off, type_len, str_off, str_len) = (field(0)?, field(1)?, field(2)?, field(3)?);
        let types = bytes.get(hdr_len + type_off..hdr_len + type_off + type_len).ok_or_else(bad)?;
        let strings = bytes.get(hdr_len + str_off..hdr_len + str_off + str_len).ok_or_else(bad)?;
        // Split BTF's string offsets already count the base's strings
        // (an offset past them is into the split's own), as its type ids do:
        // appended after them, every offset stays as written.
        self.strings.extend_from_slice(strings);
        let first_new = self.types.len();

        let mut at = 0usize;
        while at < types.len() {
            let id = self.types.len() as u32;
            let word = |i: usize| u32_at(types, at + 4 * i).ok_or(BtfError::BadType(origin.into(), id, 0));
            let (name_off, info, size_or_type) = (word(0)?, word(1)?, word(2)?);
            let vlen = (info & 0xffff) as usize;
            let kind_code = (info >> 24) & 0x1f;
            at += 12;
            let members = || -> Result<Vec<Member>, BtfError> {
                let bad = || BtfError::BadType(origin.into(), id, kind_code);
                let bitfields = info >> 31 == 1;
                (0..vlen)
                    .map(|i| {
                        let name_off = u32_at(types, at + 12 * i).ok_or_else(bad)?;
                        let ty = u32_at(types, at + 12 * i + 4).ok_or_else(bad)?;
                        let offset = u32_at(types, at + 12 * i + 8).ok_or_else(bad)?;
                        let (bit_offset, bit_size) =
                            if bitfields { (offset & 0xff_ffff, (offset >> 24) as u8) } else { (offset, 0) };
                        Ok(Member { name_off, ty, bit_offset, bit_size })
                    })
                    .collect()
            };
            let (kind, extra) = match kind_code {
                1 => {
                    let bits = u32_at(types, at).ok_or(BtfError::BadType(origin.into(), id, 1))?;
                    let encoding = match (bits >> 24) & 0xf {
                        1 => IntEncoding::Signed,
                        2 => IntEncoding::Char,
                        4 => IntEncoding::Bool,
                        _ => IntEncoding::Unsigned,
                    };
                    (Kind::Int { size: size_or_type, encoding }, 4)
                }
                2 => (Kind::Ptr { target: size_or_type }, 0),
                3 => {
                    let element = u32_at(types, at).ok_or(BtfError::BadType(origin.into(), id, 3))?;
                    let count = u32_at(types, at + 8).ok_or(BtfError::BadType(origin.into(), id, 3))?;
                    (Kind::Array { element, count }, 12)
                }
                4 => (Kind::Struct { size: size_or_type, members: members()? }, 12 * vlen),
                5 => (Kind::Union { size: size_or_type, members: members()? }, 12 * vlen),
                6 => {
                    let mut values = Vec::with_capacity(vlen);
                    for i in 0..vlen {
                        let name = u32_at(types, at + 8 * i).ok_or(BtfError::BadType(origin.into(), id, 6))?;
                        let value = u32_at(types, at + 8 * i + 4).ok_or(BtfError::BadType(origin.into(), id, 6))?;
                        // kind_flag set means signed values.
                        let value = if info >> 31 == 1 { value as i32 as i64 } else { value as i64 };
                        values.push((name, value));
                    }
                    (Kind::Enum { values }, 8 * vlen)
                }
                7 => (Kind::Fwd, 0),
                8 => (Kind::Typedef { target: size_or_type }, 0),
                9 | 10 | 11 | 18 => (Kind::Qualifier { target: size_or_type }, 0),
                12 => (Kind::Func { proto: size_or_type }, 0),
                13 => {
                    let mut params = Vec::with_capacity(vlen);
                    for i in 0..vlen {
                        let name = u32_at(types, at + 8 * i).ok_or(BtfError::BadType(origin.into(), id, 13))?;
                        let ty = u32_at(types, at + 8 * i + 4).ok_or(BtfError::BadType(origin.into(), id, 13))?;
                        params.push((name, ty));
                    }
                    (Kind::FuncProto { params }, 8 * vlen)
                }
                14 => (Kind::Other, 4),
                15 => (Kind::Other, 12 * vlen),
                16 => (Kind::Other, 0),
                17 => (Kind::Other, 4),
                19 => {
                    let mut values = Vec::with_capacity(vlen);
                    for i in 0..vlen {
                        let bad = || BtfError::BadType(origin.into(), id, 19);
                        let name = u32_at(types, at + 12 * i).ok_or_else(bad)?;
                        let lo = u32_at(types, at + 12 * i + 4).ok_or_else(bad)? as u64;
                        let hi = u32_at(types, at + 12 * i + 8).ok_or_else(bad)? as u64;
                        values.push((name, ((hi << 32) | lo) as i64));
                    }
                    (Kind::Enum { values }, 12 * vlen)
                }
                other => return Err(BtfError::BadType(origin.into(), id, other)),
            };
            at += extra;
            self.types.push(Type { name_off, kind });
        }
        for id in first_new..self.types.len() {
            let name = self.bytes_at(self.types[id].name_off);
            if !name.is_empty() {
                self.by_name.push((name_hash(name), id as TypeId));
            }
        }
        // Ties keep id order: static functions that repeat come first-defined first.
        self.by_name.sort_unstable();
        Ok(())
    }

    fn bytes_at(&self, offset: u32) -> &[u8] {
        let rest = self.strings.get(offset as usize..).unwrap_or(&[]);
        &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
    }

    fn str_at(&self, offset: u32) -> &str {
        std::str::from_utf8(self.bytes_at(offset)).unwrap_or("")
    }

    pub fn name(&self, id: TypeId) -> &str {
        self.types.get(id as usize).map_or("", |t| self.str_at(t.name_off))
    }

    pub fn kind(&self, id: TypeId) -> &Kind {
        static VOID: Kind = Kind::Other;
        self.types.get(id as usize).map_or(&VOID, |t| &t.kind)
    }

    /// Ids of every type with this name (static functions may repeat), in id order.
    pub fn ids<'a>(&'a self, name: &'a str) -> impl Iterator<Item = TypeId> + 'a {
        let hash = name_hash(name.as_bytes());
        let first = self.by_name.partition_point(|&(h, _)| h < hash);
        self.by_name[first..]
            .iter()
            .take_while(move |&&(h, _)| h == hash)
            .map(|&(_, id)| id)
            .filter(move |&id| self.name(id) == name)
    }

    /// Every distinct type name, each once.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        // Equal names have equal hashes, so they stand together in by_name;
        // within a run of one hash, a name is new unless met earlier in it.
        self.by_name.iter().enumerate().filter_map(|(at, &(hash, id))| {
            let name = self.name(id);
            let run = self.by_name[..at].iter().rev().take_while(|&&(h, _)| h == hash);
            run.clone().all(|&(_, other)| self.name(other) != name).then_some(name)
        })
    }

    /// Follows typedefs and qualifiers to the type underneath.
    pub fn resolve(&self, mut id: TypeId) -> TypeId {
        for _ in 0..32 {
            match self.kind(id) {
                Kind::Typedef { target } | Kind::Qualifier { target } => id = *target,
                _ => break,
            }
        }
        id
    }

    /// The prototype's parameters as (name, type id).
    pub fn params(&self, proto: TypeId) -> Vec<(&str, TypeId)> {
        match self.kind(self.resolve(proto)) {
            Kind::FuncProto { params, .. } => params.iter().map(|&(n, t)| (self.str_at(n), t)).collect(),
            _ => Vec::new(),
        }
    }

    /// True for `struct NAME *` (through typedefs and qualifiers).
    pub fn is_pointer_to_struct(&self, id: TypeId, struct_name: &str) -> bool {
        match self.kind(self.resolve(id)) {
            Kind::Ptr { target } => {
                let pointee = self.resolve(*target);
                matches!(self.kind(pointee), Kind::Struct { .. } | Kind::Fwd) && self.name(pointee) == struct_name
            }
            _ => false,
        }
    }

    /// C spelling of a type, good enough for messages ("struct sk_buff *").
    pub fn type_text(&self, id: TypeId) -> String {
        if id == 0 {
            return "void".into();
        }
        match self.kind(id) {
            Kind::Ptr { target } => format!("{} *", self.type_text(*target)),
            Kind::Qualifier { target } => self.type_text(*target),
            Kind::Struct { .. } => format!("struct {}", self.name(id)),
            Kind::Union { .. } => format!("union {}", self.name(id)),
            Kind::Enum { .. } => format!("enum {}", self.name(id)),
            Kind::FuncProto { .. } => "function".into(),
            _ => self.name(id).to_string(),
        }
    }

    /// The first FUNC of this name, with its prototype id.
    pub fn function(&self, name: &str) -> Option<TypeId> {
        self.ids(name).find_map(|id| match self.kind(id) {
            Kind::Func { proto } => Some(*proto),
            _ => None,
        })
    }

    /// A tracepoint's arguments, from `typedef void (*btf_trace_NAME)(void *, ...)`,
    /// without the leading `void *__data`.
    pub fn tracepoint_params(&self, name: &str) -> Option<Vec<(&str, TypeId)>> {
        let id = self.ids(&format!("btf_trace_{name}")).next()?;
        let Kind::Typedef { target } = self.kind(id) else { return None };
        let Kind::Ptr { target: proto } = self.kind(self.resolve(*target)) else { return None };
        let params = self.params(*proto);
        Some(params.into_iter().skip(1).collect())
    }

    pub fn member_name(&self, member: &Member) -> &str {
        self.str_at(member.name_off)
    }

    /// Bytes a value of this type takes, for the kinds that have a size.
    pub fn size_of(&self, id: TypeId) -> Option<u32> {
        match self.kind(self.resolve(id)) {
            Kind::Int { size, .. } | Kind::Struct { size, .. } | Kind::Union { size, .. } => Some(*size),
            Kind::Ptr { .. } => Some(8),
            Kind::Enum { .. } => Some(4),
            Kind::Array { element, count } => self.size_of(*element).map(|s| s * count),
            _ => None,
        }
    }

    /// The first struct of this name.
    pub fn struct_named(&self, name: &str) -> Option<TypeId> {
        self.ids(name).find(|&id| matches!(self.kind(id), Kind::Struct { .. }))
    }

    /// Enumerator names and values of `enum NAME`.
    pub fn enum_values(&self, name: &str) -> Option<Vec<(&str, i64)>> {
        self.ids(name).find_map(|id| match self.kind(id) {
            Kind::Enum { values } => Some(values.iter().map(|&(n, v)| (self.str_at(n), v)).collect()),
            _ => None,
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, BtfError> {
    std::fs::read(path).map_err(|source| BtfError::Read { path: path.display().to_string(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

    fn kernel_btf() -> Option<Btf> {
        Path::new(VMLINUX).exists().then(|| Btf::from_file(Path::new(VMLINUX)).unwrap())
    }

    /// A module's split BTF, as the kernel writes it: its names' offsets
    /// and its type ids both continue vmlinux's, and it refers to vmlinux's
    /// types by their ids.
    #[test]
    fn reads_a_module_s_split_btf_on_top_of_vmlinux() {
        let Some(mut btf) = kernel_btf() else { return eprintln!("skipped: no {VMLINUX}") };
        let sk_buff = btf.struct_named("sk_buff").unwrap();
        let (first_id, base_strings) = (btf.types.len() as u32, btf.strings.len() as u32);
        // No leading NUL, like a module's.
        let strings = b"netcap_split_fn\0skb\0";
        let mut types = Vec::new();
        for word in [
            0,
            2 << 24,
            sk_buff, // PTR to vmlinux's struct sk_buff
            0,
            13 << 24 | 1,
            0,
            base_strings + 16,
            first_id, // FUNC_PROTO void (struct sk_buff *skb)
            base_strings,
            12 << 24,
            first_id + 1, // FUNC netcap_split_fn
        ] {
            types.extend_from_slice(&u32::to_le_bytes(word));
        }
        let mut blob = vec![0x9f, 0xeb, 1, 0];
        for word in [24, 0, types.len() as u32, types.len() as u32, strings.len() as u32] {
            blob.extend_from_slice(&u32::to_le_bytes(word));
        }
        blob.extend_from_slice(&types);
        blob.extend_from_slice(strings);
        let path = std::env::temp_dir().join(format!("netcap-split-btf-{}", std::process::id()));
        std::fs::write(&path, &blob).unwrap();
        // A second module's takes the place of the first's, which would
        // otherwise shift its numbering.
        for _ in 0..2 {
            btf.use_split(&path).unwrap();
            let params = btf.params(btf.function("netcap_split_fn").expect("the module's function"));
            assert_eq!(params.len(), 1);
            assert_eq!(params[0].0, "skb");
            assert!(btf.is_pointer_to_struct(params[0].1, "sk_buff"));
            assert_eq!(btf.ids("netcap_split_fn").count(), 1);
        }
        std::fs::remove_file(&path).unwrap();
        // vmlinux's own names are as they were.
        assert!(btf.function("ip_rcv").is_some());
    }

    #[test]
    fn finds_the_skb_parameter_of_kernel_functions() {
        let Some(btf) = kernel_btf() else { return eprintln!("skipped: no {VMLINUX}") };
        let proto = btf.function("ip_rcv").expect("ip_rcv is in every kernel's BTF");
        let params = btf.params(proto);
        assert_eq!(params[0].0, "skb");
        assert!(btf.is_pointer_to_struct(params[0].1, "sk_buff"));
        assert!(!btf.is_pointer_to_struct(params[1].1, "sk_buff"));
        assert_eq!(btf.type_text(params[1].1), "struct net_device *");
    }

    #[test]
    fn reads_tracepoint_prototypes_without_the_data_argument() {
        let Some(btf) = kernel_btf() else { return eprintln!("skipped: no {VMLINUX}") };
        let args = btf.tracepoint_params("netif_receive_skb").unwrap();
        assert_eq!(args.len(), 1);
        assert!(btf.is_pointer_to_struct(args[0].1, "sk_buff"));
        let kfree = btf.tracepoint_params("kfree_skb").unwrap();
        assert!(btf.is_pointer_to_struct(kfree[0].1, "sk_buff"));
        assert!(kfree.len() >= 3, "kfree_skb(skb, location, reason...)");
        assert!(btf.tracepoint_params("no_such_tracepoint").is_none());
    }

    #[test]
    fn reads_enums_with_their_values() {
        let Some(btf) = kernel_btf() else { return eprintln!("skipped: no {VMLINUX}") };
        let reasons = btf.enum_values("skb_drop_reason").unwrap();
        assert!(reasons.iter().any(|&(n, _)| n == "SKB_DROP_REASON_NOT_SPECIFIED"));
        let values: Vec<i64> = reasons.iter().map(|&(_, v)| v).collect();
        assert!(values.windows(2).all(|w| w[0] < w[1]), "enumerators come in declaration order");
    }

    #[test]
    fn rejects_what_is_not_btf() {
        let dir = std::env::temp_dir().join(format!("netcap-btf-test-{}", std::process::id()));
        std::fs::write(&dir, b"not btf at all, definitely not").unwrap();
        let err = Btf::from_file(&dir).err().unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert!(matches!(err, BtfError::BadHeader(_)));
    }
}
