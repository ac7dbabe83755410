//! A read-only view of little-endian ELF64 files: sections by name,
//! function symbols, and USDT (`stapsdt`) notes. Enough to find where a
//! process defines a function or a probe, and the BTF of an object file.

/// An ELF64 file's bytes, checked for the header netcap reads.
pub struct Elf<'a> {
    bytes: &'a [u8],
}

/// One section header.
#[derive(Debug, Clone, Copy)]
struct Section {
    name: usize,
    kind: u32,
    offset: usize,
    size: usize,
    link: usize,
}

const SHT_SYMTAB: u32 = 2;
const SHT_NOTE: u32 = 7;
const SHT_DYNSYM: u32 = 11;
const STT_FUNC: u8 = 2;
const STT_GNU_IFUNC: u8 = 10;
const NT_STAPSDT: u32 = 3;
/// Bytes of one ELF64 section header.
const SECTION_HEADER_SIZE: usize = 0x40;
/// Longest symbol or section name read.
const NAME_MAX: usize = 4096;

/// A USDT probe: `provider:name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub provider: String,
    pub name: String,
}

impl<'a> Elf<'a> {
    pub fn parse(bytes: &'a [u8]) -> Option<Elf<'a>> {
        // 64-bit, little-endian.
        (bytes.get(..6)? == b"\x7fELF\x02\x01").then_some(Elf { bytes })
    }

    fn u16_at(&self, at: usize) -> Option<usize> {
        Some(u16::from_le_bytes(self.bytes.get(at..at + 2)?.try_into().ok()?) as usize)
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        Some(u32::from_le_bytes(self.bytes.get(at..at + 4)?.try_into().ok()?))
    }

    fn u64_at(&self, at: usize) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes.get(at..at + 8)?.try_into().ok()?))
    }

    /// A NUL-terminated name of at most NAME_MAX bytes: a crafted table
    /// without NULs must not make every lookup scan the rest of the file.
    fn c_str(&self, at: usize) -> Option<&'a str> {
        let rest = self.bytes.get(at..)?;
        let rest = &rest[..rest.len().min(NAME_MAX)];
        std::str::from_utf8(&rest[..rest.iter().position(|&b| b == 0)?]).ok()
    }

    /// The section headers that lie inside the file.
    fn sections(&self) -> Vec<Section> {
        let (Some(table), Some(entry), Some(count)) = (self.u64_at(0x28), self.u16_at(0x3a), self.u16_at(0x3c)) else {
            return Vec::new();
        };
        let fits = (table as usize).checked_add(count.saturating_mul(entry)).is_some_and(|end| end <= self.bytes.len());
        if entry < SECTION_HEADER_SIZE || !fits {
            return Vec::new();
        }
        (0..count)
            .filter_map(|index| {
                let at = table as usize + index * entry;
                Some(Section {
                    name: self.u32_at(at)? as usize,
                    kind: self.u32_at(at + 4)?,
                    offset: self.u64_at(at + 0x18)? as usize,
                    size: self.u64_at(at + 0x20)? as usize,
                    link: self.u32_at(at + 0x28)? as usize,
                })
            })
            .collect()
    }

    fn data(&self, section: &Section) -> Option<&'a [u8]> {
        self.bytes.get(section.offset..section.offset.checked_add(section.size)?)
    }

    /// The bytes of section `name`.
    pub fn section(&self, name: &str) -> Option<&'a [u8]> {
        let sections = self.sections();
        let names = sections.get(self.u16_at(0x3e)?)?;
        let found = sections.iter().find(|s| self.c_str(names.offset + s.name) == Some(name))?;
        self.data(found)
    }

    /// Names of the functions this file defines (symbol table and dynamic symbols).
    pub fn functions(&self) -> Vec<&'a str> {
        self.symbols(|kind| kind == STT_FUNC || kind == STT_GNU_IFUNC)
    }

    /// Of those, the GNU indirect functions: the symbol is a resolver that
    /// runs once, when the dynamic linker binds it, not the function itself.
    pub fn indirect_functions(&self) -> Vec<&'a str> {
        self.symbols(|kind| kind == STT_GNU_IFUNC)
    }

    /// Defined symbols whose type `wanted` accepts.
    fn symbols(&self, wanted: impl Fn(u8) -> bool) -> Vec<&'a str> {
        let sections = self.sections();
        let mut names = Vec::new();
        let mut tables: Vec<(usize, usize, usize)> = sections
            .iter()
            .filter(|s| s.kind == SHT_SYMTAB || s.kind == SHT_DYNSYM)
            .map(|s| (s.offset, s.size, s.link))
            .collect();
        // Each table once, however many headers name it.
        tables.sort_unstable();
        tables.dedup();
        for (offset, size, link) in tables {
            let Some(strings) = sections.get(link) else { continue };
            let end = offset.saturating_add(size).min(self.bytes.len());
            for at in (offset..end).step_by(24) {
                let (Some(name), Some(info), Some(defined)) =
                    (self.u32_at(at), self.bytes.get(at + 4), self.u16_at(at + 6))
                else {
                    break;
                };
                let kind = info & 0xf;
                if defined != 0
                    && wanted(kind)
                    && let Some(name) = self.c_str(strings.offset + name as usize).filter(|n| !n.is_empty())
                {
                    names.push(name);
                }
            }
        }
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The USDT probes of `.note.stapsdt`.
    pub fn probes(&self) -> Vec<Probe> {
        let mut probes = Vec::new();
        for note in self.sections().iter().filter(|s| s.kind == SHT_NOTE) {
            let Some(data) = self.data(note) else { continue };
            let mut at = 0usize;
            while at + 12 <= data.len() {
                let word = |i: usize| u32::from_le_bytes(data[at + 4 * i..at + 4 * i + 4].try_into().unwrap_or([0; 4]));
                let (name_size, desc_size, kind) = (word(0) as usize, word(1) as usize, word(2));
                let owner_at = at + 12;
                let desc_at = owner_at + name_size.next_multiple_of(4);
                let next = desc_at + desc_size.next_multiple_of(4);
                if next > data.len() {
                    break;
                }
                let owner = &data[owner_at..owner_at + name_size];
                // The descriptor: pc, base, semaphore (3 × u64), then provider, name, arguments.
                if kind == NT_STAPSDT && owner.starts_with(b"stapsdt") && desc_size > 24 {
                    let mut strings = data[desc_at + 24..desc_at + desc_size].split(|&b| b == 0);
                    if let (Some(provider), Some(name)) = (strings.next(), strings.next()) {
                        probes.push(Probe {
                            provider: String::from_utf8_lossy(provider).into_owned(),
                            name: String::from_utf8_lossy(name).into_owned(),
                        });
                    }
                }
                at = next;
            }
        }
        probes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sections_and_function_symbols_of_a_real_file() {
        let object = crate::load::EMBEDDED_OBJECT;
        let elf = Elf::parse(object).expect("the embedded BPF object is ELF64 LE");
        let btf = elf.section(".BTF").expect("it has BTF");
        assert_eq!(&btf[..2], &0xeb9fu16.to_le_bytes());
        assert!(elf.section(".no_such_section").is_none());
        assert!(elf.functions().contains(&"netcap_tp_btf"), "{:?}", elf.functions());
        assert!(Elf::parse(b"not an elf file at all").is_none());
    }

    /// A crafted file: 65,535 section headers all naming one symbol table
    /// of a million entries whose names have no NUL. Read once, bounded.
    #[test]
    fn a_crafted_file_is_read_in_bounded_time() {
        let symbols = 1 << 20;
        let headers = 65_535usize;
        let table_at = 0x40;
        let strings_at = table_at + symbols * 24;
        let headers_at = strings_at + (1 << 16);
        let mut bytes = vec![0u8; headers_at + headers * 0x40];
        bytes[..6].copy_from_slice(b"\x7fELF\x02\x01");
        bytes[0x28..0x30].copy_from_slice(&(headers_at as u64).to_le_bytes());
        bytes[0x3a..0x3c].copy_from_slice(&0x40u16.to_le_bytes());
        bytes[0x3c..0x3e].copy_from_slice(&(headers as u16).to_le_bytes());
        for symbol in 0..symbols {
            let at = table_at + symbol * 24;
            bytes[at + 4] = STT_FUNC;
            bytes[at + 6] = 1;
        }
        bytes[strings_at..strings_at + (1 << 16)].fill(b'a');
        for header in 0..headers {
            let at = headers_at + header * 0x40;
            bytes[at + 4..at + 8].copy_from_slice(&SHT_SYMTAB.to_le_bytes());
            bytes[at + 0x18..at + 0x20].copy_from_slice(&(table_at as u64).to_le_bytes());
            bytes[at + 0x20..at + 0x28].copy_from_slice(&((symbols * 24) as u64).to_le_bytes());
            // Its string table: header 0, pointed at the NUL-free bytes.
            bytes[at + 0x28..at + 0x2c].copy_from_slice(&0u32.to_le_bytes());
        }
        bytes[headers_at + 0x18..headers_at + 0x20].copy_from_slice(&(strings_at as u64).to_le_bytes());
        bytes[headers_at + 0x20..headers_at + 0x28].copy_from_slice(&(1u64 << 16).to_le_bytes());
        let elf = Elf::parse(&bytes).unwrap();
        let start = std::time::Instant::now();
        assert!(elf.functions().is_empty(), "no name has a NUL within NAME_MAX");
        assert!(elf.probes().is_empty());
        // Before: 65,535 scans of a million symbols, each name scanned to the end.
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "a hang guard, not a benchmark: {:?}",
            start.elapsed()
        );
    }

    /// A function of its own that neither inlining nor identical-code
    /// folding can make disappear from the symbol table.
    #[inline(never)]
    fn a_function_elf_must_find(seed: u64) -> u64 {
        std::hint::black_box(seed.rotate_left(17) ^ 0x6e65_7463_6170)
    }

    #[test]
    fn finds_functions_in_the_running_test_binary() {
        std::hint::black_box(a_function_elf_must_find(std::hint::black_box(1)));
        let exe = std::fs::read("/proc/self/exe").unwrap();
        let elf = Elf::parse(&exe).unwrap();
        let functions = elf.functions();
        assert!(functions.iter().any(|f| f.contains("a_function_elf_must_find")), "{}", functions.len());
    }
}
