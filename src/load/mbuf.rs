//! Where DPDK's `struct rte_mbuf` keeps the fields netcap reads: given with
//! --mbuf-layout, else read from the traced binary's DWARF (or its
//! separate debug file), else the layout of the DPDK releases netcap knows.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use gimli::{AttributeValue, EndianSlice, LittleEndian, UnitOffset};

use crate::bpf::types::netcap_mbuf_offsets;
use crate::elf::Elf;
use crate::plan::Target;

/// Byte offsets inside struct rte_mbuf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbufOffsets {
    pub buf_addr: u32,
    pub data_off: u32,
    pub data_len: u32,
    pub pkt_len: u32,
    pub next: u32,
    pub port: u32,
}

/// DPDK 21.11 to 24.11 on 64-bit, built with the IOVA field in the mbuf
/// (the default, and Debian's): buf_addr, buf_iova, then the rearm data
/// (data_off, refcnt, nb_segs, port), ol_flags, the rx descriptor fields
/// (packet_type, pkt_len, data_len, …), and `next` opening the second
/// cache line.
pub const DPDK_DEFAULT: MbufOffsets =
    MbufOffsets { buf_addr: 0, data_off: 16, data_len: 40, pkt_len: 36, next: 64, port: 22 };

impl fmt::Display for MbufOffsets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "buf_addr={},data_off={},data_len={},pkt_len={},next={},port={}",
            self.buf_addr, self.data_off, self.data_len, self.pkt_len, self.next, self.port
        )
    }
}

impl MbufOffsets {
    /// `FIELD=OFFSET,...` over the defaults.
    pub fn parse(text: &str) -> Result<MbufOffsets> {
        let mut offsets = DPDK_DEFAULT;
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((field, value)) = part.split_once('=') else {
                bail!("--mbuf-layout: '{part}' is not FIELD=OFFSET (e.g. next=64)");
            };
            let Ok(value) = value
                .trim()
                .parse::<u32>()
                .or_else(|_| u32::from_str_radix(value.trim().trim_start_matches("0x"), 16).map_err(|_| ()))
            else {
                bail!("--mbuf-layout: '{value}' is not a byte offset");
            };
            if value > 1024 {
                bail!("--mbuf-layout: {field}={value} lies past struct rte_mbuf (a few hundred bytes)");
            }
            let slot = match field.trim() {
                "buf_addr" => &mut offsets.buf_addr,
                "data_off" => &mut offsets.data_off,
                "data_len" => &mut offsets.data_len,
                "pkt_len" => &mut offsets.pkt_len,
                "next" => &mut offsets.next,
                "port" => &mut offsets.port,
                other => {
                    bail!("--mbuf-layout: unknown field '{other}' (buf_addr, data_off, data_len, pkt_len, next, port)")
                }
            };
            *slot = value;
        }
        Ok(offsets)
    }

    pub fn to_config(self) -> netcap_mbuf_offsets {
        netcap_mbuf_offsets {
            buf_addr: self.buf_addr,
            data_off: self.data_off,
            data_len: self.data_len,
            pkt_len: self.pkt_len,
            next: self.next,
            port: self.port,
        }
    }
}

/// Where the layout came from, for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Option,
    Dwarf(PathBuf),
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Option => f.write_str("from --mbuf-layout"),
            Source::Dwarf(path) => write!(f, "from the debug information of {}", path.display()),
            Source::Default => f.write_str(
                "DPDK 21.11-24.11's default layout (no debug information for struct rte_mbuf found; \
                 --mbuf-layout overrides)",
            ),
        }
    }
}

/// The layout to use: --mbuf-layout, else the DWARF of the binaries being
/// traced, else DPDK's default.
pub fn offsets(layout: Option<&str>, targets: &[Target]) -> Result<(MbufOffsets, Source)> {
    if let Some(text) = layout {
        return Ok((MbufOffsets::parse(text)?, Source::Option));
    }
    let mut binaries: Vec<&Path> = Vec::new();
    for binary in targets.iter().filter_map(|t| t.user.as_ref()).map(|u| u.binary.as_path()) {
        if !binaries.contains(&binary) {
            binaries.push(binary);
        }
    }
    for binary in binaries {
        // Each file is read once: its own DWARF, and the build id that names its debug file.
        let Ok(bytes) = crate::files::read_regular(binary, crate::files::BINARY_MAX) else { continue };
        if let Some(offsets) = from_dwarf(&bytes) {
            return Ok((offsets, Source::Dwarf(binary.to_path_buf())));
        }
        let Some(debug_file) = build_id_debug_file(&bytes) else { continue };
        if let Some(offsets) =
            crate::files::read_regular(&debug_file, crate::files::BINARY_MAX).ok().and_then(|debug| from_dwarf(&debug))
        {
            return Ok((offsets, Source::Dwarf(debug_file)));
        }
    }
    Ok((DPDK_DEFAULT, Source::Default))
}

/// The separate debug file of an ELF file, by its build id
/// (/usr/lib/debug/.build-id/ab/cdef….debug, as Debian's -dbgsym packages install it).
fn build_id_debug_file(elf: &[u8]) -> Option<PathBuf> {
    let note = Elf::parse(elf)?.section(".note.gnu.build-id")?;
    // Note header (12 bytes), owner "GNU\0", then the id.
    let id = note.get(16..).filter(|id| id.len() > 1)?;
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    Some(PathBuf::from(format!("/usr/lib/debug/.build-id/{}/{}.debug", &hex[..2], &hex[2..])))
}

/// struct rte_mbuf's field offsets from DWARF, when a complete definition is there.
pub fn from_dwarf(bytes: &[u8]) -> Option<MbufOffsets> {
    let elf = Elf::parse(bytes)?;
    let dwarf = gimli::Dwarf::load(|id| -> Result<_, gimli::Error> {
        Ok(EndianSlice::new(elf.section(id.name()).unwrap_or(&[]), LittleEndian))
    })
    .ok()?;
    let mut headers = dwarf.units();
    while let Ok(Some(header)) = headers.next() {
        let Ok(unit) = dwarf.unit(header) else { continue };
        let mut entries = unit.entries();
        while let Ok(Some(entry)) = entries.next_dfs() {
            let named_rte_mbuf = entry
                .attr_value(gimli::DW_AT_name)
                .and_then(|name| dwarf.attr_string(&unit, name).ok())
                .is_some_and(|name| name.slice() == b"rte_mbuf");
            let definition = entry.attr_value(gimli::DW_AT_declaration).is_none();
            if entry.tag() != gimli::DW_TAG_structure_type || !named_rte_mbuf || !definition {
                continue;
            }
            let mut fields = HashMap::new();
            collect_members(&dwarf, &unit, entry.offset(), 0, &mut fields, 0);
            let field = |name: &str| fields.get(name).copied();
            return Some(MbufOffsets {
                buf_addr: field("buf_addr")?,
                data_off: field("data_off")?,
                data_len: field("data_len")?,
                pkt_len: field("pkt_len")?,
                next: field("next")?,
                port: field("port")?,
            });
        }
    }
    None
}

type Slice<'a> = EndianSlice<'a, LittleEndian>;

/// Member name → byte offset, descending into anonymous structs and
/// unions (DPDK nests most fields in them).
fn collect_members(
    dwarf: &gimli::Dwarf<Slice<'_>>,
    unit: &gimli::Unit<Slice<'_>>,
    offset: UnitOffset,
    base: u32,
    fields: &mut HashMap<String, u32>,
    depth: u32,
) {
    if depth > 8 {
        return;
    }
    let Ok(mut tree) = unit.entries_tree(Some(offset)) else { return };
    let Ok(root) = tree.root() else { return };
    let mut children = root.children();
    while let Ok(Some(child)) = children.next() {
        let member = child.entry();
        if member.tag() != gimli::DW_TAG_member {
            continue;
        }
        // Union members have no location: they start at the union's.
        let at = base
            + member.attr_value(gimli::DW_AT_data_member_location).and_then(|v| v.udata_value()).unwrap_or(0) as u32;
        let name = member.attr_value(gimli::DW_AT_name).and_then(|n| dwarf.attr_string(unit, n).ok());
        match name {
            Some(name) => {
                fields.entry(name.to_string_lossy().into_owned()).or_insert(at);
            }
            None => {
                if let Some(AttributeValue::UnitRef(ty)) = member.attr_value(gimli::DW_AT_type) {
                    collect_members(dwarf, unit, ty, at, fields, depth + 1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A C file with its own struct rte_mbuf (fields moved, nested in
    /// anonymous unions as DPDK does), compiled with -g: DWARF gives its offsets.
    #[test]
    fn reads_the_layout_from_dwarf() {
        let dir = std::env::temp_dir().join(format!("netcap-mbuf-dwarf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let source = dir.join("m.c");
        std::fs::write(
            &source,
            "#include <stdint.h>\n\
             struct rte_mbuf { void *buf_addr; void *next;\n\
               union { uint64_t rearm; struct { uint16_t data_off; uint16_t refcnt; uint16_t nb_segs; uint16_t port; }; };\n\
               uint64_t flags;\n\
               union { uint32_t packet_type; struct { uint8_t l2; uint8_t l3; uint16_t pad; }; };\n\
               uint32_t pkt_len; uint16_t data_len; };\n\
             int touch(struct rte_mbuf *m) { return m->data_len; }\n",
        )
        .unwrap();
        // Linked: a relocatable object's DWARF needs its relocations applied.
        let object = dir.join("m.so");
        let status = std::process::Command::new("cc")
            .args(["-g", "-shared", "-fPIC", "-o"])
            .arg(&object)
            .arg(&source)
            .status()
            .unwrap();
        assert!(status.success());
        let bytes = std::fs::read(&object).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            from_dwarf(&bytes),
            Some(MbufOffsets { buf_addr: 0, next: 8, data_off: 16, port: 22, pkt_len: 36, data_len: 40 })
        );
        assert_eq!(from_dwarf(crate::load::EMBEDDED_OBJECT), None, "no rte_mbuf there");
    }

    #[test]
    fn overrides_apply_over_the_default_layout() {
        let offsets = MbufOffsets::parse("next=8, pkt_len=0x24").unwrap();
        assert_eq!(offsets, MbufOffsets { next: 8, pkt_len: 36, ..DPDK_DEFAULT });
        assert_eq!(MbufOffsets::parse(&DPDK_DEFAULT.to_string()).unwrap(), DPDK_DEFAULT);
        assert!(MbufOffsets::parse("nxt=8").unwrap_err().to_string().contains("unknown field 'nxt'"));
        assert!(MbufOffsets::parse("next").is_err());
        assert!(MbufOffsets::parse("next=99999").is_err());
    }
}
