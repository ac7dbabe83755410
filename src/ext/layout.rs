//! The user's `struct xcap_user_extend`: its fields as the compiled
//! object's BTF lays them out (offsets, sizes, signedness, arrays, padding),
//! each with the printf-style format of its `// format:` comment, and the
//! rendering of one record's bytes as text and JSON.

use std::collections::HashMap;

use anyhow::{Result, bail};

use crate::kernel::btf::{Btf, IntEncoding, Kind, TypeId};

pub const STRUCT_NAME: &str = "xcap_user_extend";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar {
    Unsigned,
    Signed,
    Char,
    Bool,
    Pointer,
}

#[derive(Debug, Clone, PartialEq)]
struct Field {
    /// Dotted for members of nested structs.
    name: String,
    bit_offset: u32,
    /// Non-zero for bitfields.
    bit_size: u8,
    /// Bytes of one element.
    size: u32,
    scalar: Scalar,
    /// Elements, for arrays.
    count: Option<u32>,
    format: Option<Format>,
}

/// Where the fields lie in the bytes the BPF program writes.
#[derive(Debug, Clone, PartialEq)]
pub struct UserLayout {
    /// sizeof(struct xcap_user_extend).
    pub size: usize,
    fields: Vec<Field>,
}

/// One printf conversion with the text around it: `0x%08x`, `%c`, `%s`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    prefix: String,
    suffix: String,
    left: bool,
    zero: bool,
    alternate: bool,
    width: usize,
    conversion: char,
}

impl Format {
    pub fn parse(text: &str) -> Result<Format> {
        let Some(start) = text.find('%') else { bail!("format '{text}' has no % conversion") };
        let prefix = text[..start].to_string();
        let mut chars = text[start + 1..].char_indices().peekable();
        let (mut left, mut zero, mut alternate) = (false, false, false);
        while let Some(&(_, c)) = chars.peek() {
            match c {
                '-' => left = true,
                '0' => zero = true,
                '#' => alternate = true,
                '+' | ' ' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = 0usize;
        while let Some(&(_, c)) = chars.peek().filter(|(_, c)| c.is_ascii_digit()) {
            width = width * 10 + c.to_digit(10).unwrap_or(0) as usize;
            chars.next();
        }
        // Length modifiers say nothing BTF does not already: skipped.
        while chars.peek().is_some_and(|&(_, c)| matches!(c, 'h' | 'l' | 'j' | 'z' | 't' | 'L' | 'q')) {
            chars.next();
        }
        let Some((at, conversion)) = chars.next() else { bail!("format '{text}' ends before its conversion") };
        if !matches!(conversion, 'd' | 'i' | 'u' | 'x' | 'X' | 'o' | 'c' | 's' | 'p') {
            bail!("format '{text}': %{conversion} is not one of %d %i %u %x %X %o %c %s %p");
        }
        let suffix = text[start + 1 + at + conversion.len_utf8()..].to_string();
        if suffix.contains('%') && !suffix.contains("%%") {
            bail!("format '{text}' has more than one conversion; a field takes one");
        }
        Ok(Format { prefix, suffix: suffix.replace("%%", "%"), left, zero, alternate, width, conversion })
    }

    fn pad(&self, body: String) -> String {
        let body = if body.len() >= self.width {
            body
        } else if self.left {
            format!("{body:<width$}", width = self.width)
        } else if self.zero && !matches!(self.conversion, 'c' | 's') {
            let (sign, digits) = body.strip_prefix('-').map_or(("", body.as_str()), |d| ("-", d));
            let (base, digits) = match digits.strip_prefix("0x") {
                Some(d) if self.alternate || self.conversion == 'p' => ("0x", d),
                _ => ("", digits),
            };
            let width = self.width.saturating_sub(sign.len() + base.len());
            format!("{sign}{base}{digits:0>width$}")
        } else {
            format!("{body:>width$}", width = self.width)
        };
        format!("{}{body}{}", self.prefix, self.suffix)
    }
}

/// `'M'` as M, anything unprintable as \xNN.
fn char_text(byte: u8) -> String {
    if byte.is_ascii_graphic() || byte == b' ' { (byte as char).to_string() } else { format!("\\x{byte:02x}") }
}

/// The bytes of a char array up to its first NUL, printable or escaped.
fn string_text(bytes: &[u8]) -> String {
    bytes.iter().take_while(|&&b| b != 0).map(|&b| char_text(b)).collect()
}

/// A value read from a field: raw bits, widened.
#[derive(Debug, Clone, Copy)]
struct Raw {
    bits: u64,
    /// Width in bits of the field (for sign extension and %x of negatives).
    width: u32,
}

impl Raw {
    fn signed(self) -> i64 {
        if self.width >= 64 { self.bits as i64 } else { ((self.bits << (64 - self.width)) as i64) >> (64 - self.width) }
    }

    fn unsigned(self) -> u64 {
        if self.width >= 64 { self.bits } else { self.bits & ((1u64 << self.width) - 1) }
    }
}

impl Field {
    fn read(&self, bytes: &[u8], index: u32) -> Raw {
        if self.bit_size > 0 {
            let mut bits = 0u64;
            for bit in 0..u32::from(self.bit_size) {
                let at = self.bit_offset + bit;
                let byte = bytes.get((at / 8) as usize).copied().unwrap_or(0);
                bits |= u64::from((byte >> (at % 8)) & 1) << bit;
            }
            return Raw { bits, width: u32::from(self.bit_size) };
        }
        let start = (self.bit_offset / 8 + index * self.size) as usize;
        let mut word = [0u8; 8];
        let size = (self.size as usize).min(8);
        if let Some(slice) = bytes.get(start..start + size) {
            word[..size].copy_from_slice(slice);
        }
        Raw { bits: u64::from_le_bytes(word), width: size as u32 * 8 }
    }

    /// A byte array printed as a string: `char name[N]`, or any byte array with `%s`.
    fn is_text(&self) -> bool {
        let string_format = self.format.as_ref().is_some_and(|f| f.conversion == 's');
        self.count.is_some() && self.size == 1 && (self.scalar == Scalar::Char || string_format)
    }

    fn text_value(&self, raw: Raw) -> String {
        let Some(format) = &self.format else {
            return match self.scalar {
                Scalar::Signed | Scalar::Char => raw.signed().to_string(),
                Scalar::Bool => (raw.unsigned() != 0).to_string(),
                Scalar::Pointer => format!("0x{:x}", raw.unsigned()),
                Scalar::Unsigned => raw.unsigned().to_string(),
            };
        };
        let body = match format.conversion {
            'd' | 'i' => raw.signed().to_string(),
            'u' => raw.unsigned().to_string(),
            'x' if format.alternate && raw.unsigned() != 0 => format!("0x{:x}", raw.unsigned()),
            'X' if format.alternate && raw.unsigned() != 0 => format!("0X{:X}", raw.unsigned()),
            'x' => format!("{:x}", raw.unsigned()),
            'X' => format!("{:X}", raw.unsigned()),
            'o' => format!("{:o}", raw.unsigned()),
            'c' => char_text(raw.unsigned() as u8),
            'p' => format!("0x{:x}", raw.unsigned()),
            _ => raw.signed().to_string(), // %s on a number: decimal
        };
        format.pad(body)
    }

    fn json_value(&self, raw: Raw) -> serde_json::Value {
        match self.scalar {
            Scalar::Signed | Scalar::Char => raw.signed().into(),
            Scalar::Bool => (raw.unsigned() != 0).into(),
            Scalar::Unsigned | Scalar::Pointer => raw.unsigned().into(),
        }
    }

    fn char_bytes<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        let start = (self.bit_offset / 8) as usize;
        let end = (start + self.count.unwrap_or(1) as usize).min(bytes.len());
        bytes.get(start..end).unwrap_or(&[])
    }
}

impl UserLayout {
    /// The layout of `struct xcap_user_extend` in `btf`, with the formats
    /// of `source`'s `// format:` comments.
    pub fn from_btf(btf: &Btf, source: &str) -> Result<UserLayout> {
        let Some(id) = btf.struct_named(STRUCT_NAME) else {
            bail!("the action file defines no struct {STRUCT_NAME}");
        };
        let formats = field_formats(source)?;
        let mut fields = Vec::new();
        collect_fields(btf, id, "", 0, &formats, &mut fields)?;
        let size = btf.size_of(id).unwrap_or(0) as usize;
        Ok(UserLayout { size, fields })
    }

    /// `a: 0x12345678; b: 1000; name: eth0` — netcap's rendering.
    pub fn text(&self, bytes: &[u8]) -> String {
        let parts: Vec<String> = self
            .fields
            .iter()
            .map(|field| {
                let value = if field.is_text() {
                    string_text(field.char_bytes(bytes))
                } else if let Some(count) = field.count {
                    let items: Vec<String> = (0..count).map(|i| field.text_value(field.read(bytes, i))).collect();
                    format!("[{}]", items.join(", "))
                } else {
                    field.text_value(field.read(bytes, 0))
                };
                format!("{}: {value}", field.name)
            })
            .collect();
        parts.join("; ")
    }

    /// The same fields as a JSON object of numbers, strings and arrays.
    pub fn json(&self, bytes: &[u8]) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        for field in &self.fields {
            let value = if field.is_text() {
                serde_json::Value::String(
                    String::from_utf8_lossy(
                        &field.char_bytes(bytes).iter().copied().take_while(|&b| b != 0).collect::<Vec<_>>(),
                    )
                    .into_owned(),
                )
            } else if let Some(count) = field.count {
                (0..count).map(|i| field.json_value(field.read(bytes, i))).collect()
            } else {
                field.json_value(field.read(bytes, 0))
            };
            object.insert(field.name.clone(), value);
        }
        serde_json::Value::Object(object)
    }
}

fn collect_fields(
    btf: &Btf,
    id: TypeId,
    prefix: &str,
    base_bits: u32,
    formats: &HashMap<String, Format>,
    fields: &mut Vec<Field>,
) -> Result<()> {
    let (Kind::Struct { members, .. } | Kind::Union { members, .. }) = btf.kind(btf.resolve(id)) else {
        bail!("struct {STRUCT_NAME}: {} is not a struct", btf.type_text(id));
    };
    for member in members {
        let own = btf.member_name(member);
        let name = if prefix.is_empty() { own.to_string() } else { format!("{prefix}.{own}") };
        let bit_offset = base_bits + member.bit_offset;
        let mut ty = btf.resolve(member.ty);
        let mut count = None;
        if let Kind::Array { element, count: n } = btf.kind(ty) {
            count = Some(*n);
            ty = btf.resolve(*element);
            if matches!(btf.kind(ty), Kind::Array { .. }) {
                bail!("struct {STRUCT_NAME}: field {name} is an array of arrays; use one dimension");
            }
        }
        let (size, scalar) = match btf.kind(ty) {
            Kind::Int { size, encoding, .. } => (
                *size,
                match encoding {
                    IntEncoding::Signed => Scalar::Signed,
                    IntEncoding::Char => Scalar::Char,
                    IntEncoding::Bool => Scalar::Bool,
                    IntEncoding::Unsigned => Scalar::Unsigned,
                },
            ),
            Kind::Enum { values } => {
                (4, if values.iter().any(|&(_, v)| v < 0) { Scalar::Signed } else { Scalar::Unsigned })
            }
            Kind::Ptr { .. } => (8, Scalar::Pointer),
            Kind::Struct { .. } | Kind::Union { .. } if count.is_none() => {
                collect_fields(btf, ty, &name, bit_offset, formats, fields)?;
                continue;
            }
            _ => bail!("struct {STRUCT_NAME}: field {name} has type {}, which netcap cannot print", btf.type_text(ty)),
        };
        if size > 8 {
            bail!("struct {STRUCT_NAME}: field {name} is {size} bytes wide; netcap prints integers up to 8 bytes");
        }
        // Plain `char` arrays are strings; a signed char is BTF's char only when spelled `char`.
        let scalar =
            if size == 1 && scalar == Scalar::Signed && btf.name(ty) == "char" { Scalar::Char } else { scalar };
        fields.push(Field {
            format: formats.get(&name).or_else(|| formats.get(own)).cloned(),
            name,
            bit_offset,
            bit_size: member.bit_size,
            size,
            scalar,
            count,
        });
    }
    Ok(())
}

/// Field name → format, from `// format: …` (or `/* format: … */`)
/// comments on a declaration's line inside `struct xcap_user_extend { … }`.
/// Only comments are read from the text; the layout comes from BTF.
fn field_formats(source: &str) -> Result<HashMap<String, Format>> {
    let mut formats = HashMap::new();
    let Some(start) = find_struct_body(source) else { return Ok(formats) };
    let mut depth = 0usize;
    for line in source[start..].lines() {
        let (code, comment) = split_comment(line);
        let format = comment.and_then(|c| c.trim().strip_prefix("format:")).map(str::trim);
        if let Some(format) = format.filter(|f| !f.is_empty()) {
            let parsed = Format::parse(format)?;
            for name in declared_names(code) {
                formats.insert(name, parsed.clone());
            }
        }
        for c in code.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        if depth == 0 && code.contains('}') {
            break;
        }
    }
    Ok(formats)
}

/// Offset of the `{` that opens `struct xcap_user_extend`'s definition.
fn find_struct_body(source: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = source[from..].find(STRUCT_NAME) {
        let after = from + found + STRUCT_NAME.len();
        let before = source[..from + found].trim_end();
        let rest = source[after..].trim_start();
        if before.ends_with("struct") && rest.starts_with('{') {
            return Some(after + (source[after..].len() - rest.len()));
        }
        from = after;
    }
    None
}

fn split_comment(line: &str) -> (&str, Option<&str>) {
    if let Some(at) = line.find("//") {
        return (&line[..at], Some(&line[at + 2..]));
    }
    if let Some(at) = line.find("/*") {
        let rest = &line[at + 2..];
        return (&line[..at], Some(rest.split("*/").next().unwrap_or(rest)));
    }
    (line, None)
}

/// The names a declaration line declares: `uint8_t x1, x2[4];` → x1, x2.
fn declared_names(code: &str) -> Vec<String> {
    let code = code.rsplit('{').next().unwrap_or(code);
    let declaration = code.split(';').find(|part| !part.trim().is_empty()).unwrap_or("");
    let mut names = Vec::new();
    for (i, declarator) in declaration.split(',').enumerate() {
        // Drop array bounds and bitfield widths, keep the last identifier.
        let declarator = declarator.split(['[', ':']).next().unwrap_or("");
        let words: Vec<&str> =
            declarator.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).collect();
        // The first declarator starts with its type: needs two words.
        if (i > 0 || words.len() >= 2)
            && let Some(last) = words.last()
        {
            names.push((*last).to_string());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_printf_formats() {
        let f = Format::parse("0x%x").unwrap();
        assert_eq!((f.prefix.as_str(), f.conversion), ("0x", 'x'));
        assert_eq!(Format::parse("%08lx").unwrap().width, 8);
        assert!(Format::parse("%q").is_err());
        assert!(Format::parse("plain").is_err());
        assert!(Format::parse("%d and %d").is_err());
    }

    #[test]
    fn finds_formats_by_declared_name() {
        let source = "int unrelated; // format: %x\n\
            struct xcap_user_extend {\n  int a;        // format: 0x%x\n  uint32_t b;\n  \
            uint8_t x1, x2; /* format: %c */\n  char name[16]; // format: %s\n  unsigned f : 3; // format: %o\n};\n\
            int after; // format: %d\n";
        let formats = field_formats(source).unwrap();
        let mut names: Vec<&str> = formats.keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(names, ["a", "f", "name", "x1", "x2"]);
        assert_eq!(formats["x2"].conversion, 'c');
    }

    fn field(name: &str, byte: u32, size: u32, scalar: Scalar, format: Option<&str>) -> Field {
        Field {
            name: name.into(),
            bit_offset: byte * 8,
            bit_size: 0,
            size,
            scalar,
            count: None,
            format: format.map(|f| Format::parse(f).unwrap()),
        }
    }

    #[test]
    fn renders_values_as_c_would_print_them() {
        let layout = UserLayout {
            size: 16,
            fields: vec![
                field("neg", 0, 4, Scalar::Signed, None),
                field("negx", 0, 4, Scalar::Signed, Some("0x%x")),
                field("small", 4, 2, Scalar::Signed, None),
                field("c", 6, 1, Scalar::Unsigned, Some("%c")),
                field("pad", 8, 8, Scalar::Unsigned, Some("%016x")),
            ],
        };
        let mut bytes = vec![0u8; 16];
        bytes[..4].copy_from_slice(&(-5i32).to_le_bytes());
        bytes[4..6].copy_from_slice(&(-300i16).to_le_bytes());
        bytes[6] = b'M';
        bytes[8..16].copy_from_slice(&0xabcdu64.to_le_bytes());
        assert_eq!(layout.text(&bytes), "neg: -5; negx: 0xfffffffb; small: -300; c: M; pad: 000000000000abcd");
        assert_eq!(layout.json(&bytes)["small"], -300);
    }
}
