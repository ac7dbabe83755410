//! --skb-fields 'mark,priority,dev->mtu,sk->sk_hash,cb': sk_buff fields
//! printed with each event, resolved against the running kernel's BTF like
//! --skb-filter's (`filter::skb::resolve`) and read in the kernel by probe
//! reads into a FIELDS section (bpf/lib/sections.h, netcap_config.fields).
//! Typed from BTF: integers in decimal, enums by the name of their value,
//! pointers and byte arrays in hex, bools as true/false. Text: ` {mark=16
//! dev->mtu=1500}`; JSON: `fields` {name: value}; pcapng comment:
//! ` fields={…}`. A field behind a NULL pointer shows as `-` (null in JSON).

use std::fmt::Write as _;

use serde_json::Value as Json;
use thiserror::Error;

use crate::bpf::types::netcap_field;
use crate::event::Event;
use crate::filter::skb::parse::{self, ParseError};
use crate::filter::skb::resolve::{self, Access, ResolveError, Value};
use crate::kernel::btf::Btf;
use crate::plan::Target;

/// Must match NETCAP_FIELDS_MAX, NETCAP_FIELD_HOPS, NETCAP_FIELD_AT_MASK
/// and NETCAP_FIELD_SIZE_MASK in bpf/netcap.h.
const FIELDS_MAX: usize = 8;
const HOPS: usize = 4;
const AT_LIMIT: u32 = 128;
const SIZE_LIMIT: u32 = 63;

#[derive(Debug, Clone, clap::Args)]
pub struct FieldsArgs {
    /// Print these sk_buff fields with each event, comma-separated, e.g.
    /// 'mark,priority,hash,dev->mtu,sk->sk_hash,cb' (the names --skb-filter takes; at most 8,
    /// each through at most 3 pointers; byte arrays of up to 63 bytes shown in hex).
    #[arg(long = "skb-fields", value_name = "LIST")]
    pub skb_fields: Option<String>,
}

#[derive(Debug, Error)]
pub enum FieldsError {
    #[error("--skb-fields: {0}")]
    Parse(String),
    #[error("--skb-fields: {0}")]
    Resolve(Box<ResolveError>),
    #[error("--skb-fields: {what} (at most {FIELDS_MAX} fields, {} pointers deep, {SIZE_LIMIT} bytes each, 128 in all)", HOPS - 1)]
    TooMuch { what: String },
}

/// The fields to read and where each lands in the section.
#[derive(Debug, Clone)]
pub struct SkbFields {
    pub fields: Vec<(Access, u32)>,
}

impl SkbFields {
    pub fn compile(text: &str, btf: &Btf) -> Result<SkbFields, FieldsError> {
        let paths = parse::parse_field_list(text)
            .map_err(|e: ParseError| FieldsError::Parse(e.to_string().replacen("--skb-filter ", "", 1)))?;
        if paths.len() > FIELDS_MAX {
            return Err(FieldsError::TooMuch { what: format!("{} fields", paths.len()) });
        }
        let mut fields = Vec::new();
        let mut at = 0u32;
        for path in &paths {
            let access = resolve::resolve(btf, path, true).map_err(|e| FieldsError::Resolve(Box::new(e)))?;
            if access.offsets.len() > HOPS {
                return Err(FieldsError::TooMuch {
                    what: format!("{} is {} pointers deep", access.text, access.offsets.len() - 1),
                });
            }
            if access.size > SIZE_LIMIT {
                return Err(FieldsError::TooMuch { what: format!("{} is {} bytes", access.text, access.size) });
            }
            if at >= AT_LIMIT {
                return Err(FieldsError::TooMuch { what: format!("the fields up to {} take {at} bytes", access.text) });
            }
            let size = access.size;
            fields.push((access, at));
            at += size.div_ceil(8) * 8;
        }
        Ok(SkbFields { fields })
    }

    /// netcap_config.fields and field_count.
    pub fn config(&self) -> ([netcap_field; FIELDS_MAX], u32) {
        let mut config = [netcap_field::default(); FIELDS_MAX];
        for ((access, at), slot) in self.fields.iter().zip(config.iter_mut()) {
            for (i, offset) in access.offsets.iter().enumerate() {
                slot.offsets[i] = *offset;
            }
            slot.hops = access.offsets.len() as u32;
            slot.size = access.size;
            slot.at = *at;
        }
        (config, self.fields.len() as u32)
    }

    /// Each field's value as text, None where it could not be read.
    fn values(&self, event: &Event) -> Vec<(&str, Option<Rendered>)> {
        let Some((missing, data)) = &event.fields else { return Vec::new() };
        self.fields
            .iter()
            .enumerate()
            .map(|(i, (access, at))| {
                let bytes = data.get(*at as usize..(*at + access.size) as usize);
                let value = bytes.filter(|_| missing & (1 << i) == 0).map(|bytes| render(access, bytes));
                (access.text.as_str(), value)
            })
            .collect()
    }
}

/// A field's value, for text and for JSON.
enum Rendered {
    Number(i128),
    Text(String),
    Bool(bool),
}

fn render(access: &Access, bytes: &[u8]) -> Rendered {
    if access.value == Value::Bytes {
        return Rendered::Text(bytes.iter().map(|b| format!("{b:02x}")).collect());
    }
    let mut unit = [0u8; 8];
    unit[..bytes.len().min(8)].copy_from_slice(&bytes[..bytes.len().min(8)]);
    let raw = access.number(u64::from_le_bytes(unit));
    match &access.value {
        Value::Integer { signed: true } => Rendered::Number(i128::from(raw as i64)),
        Value::Integer { signed: false } => Rendered::Number(i128::from(raw)),
        Value::Bool => Rendered::Bool(raw != 0),
        Value::Pointer => Rendered::Text(format!("{raw:#x}")),
        Value::Enum { values, .. } => match values.iter().find(|(_, v)| *v as u64 & 0xffff_ffff == raw) {
            Some((name, _)) => Rendered::Text(name.clone()),
            None => Rendered::Number(i128::from(raw)),
        },
        Value::Bytes => unreachable!("handled above"),
    }
}

/// Fields are read at kernel skb points only.
pub fn wants_section(target: &Target, fields: bool) -> bool {
    fields && target.has_skb()
}

fn braces(event: &Event, fields: &SkbFields) -> Option<String> {
    let values = fields.values(event);
    if values.is_empty() {
        return None;
    }
    let parts: Vec<String> = values
        .into_iter()
        .map(|(name, value)| match value {
            Some(Rendered::Number(n)) => format!("{name}={n}"),
            Some(Rendered::Text(t)) => format!("{name}={t}"),
            Some(Rendered::Bool(b)) => format!("{name}={b}"),
            None => format!("{name}=-"),
        })
        .collect();
    Some(format!("{{{}}}", parts.join(" ")))
}

pub fn suffix(text: &mut String, event: &Event, fields: Option<&SkbFields>) {
    if let Some(braces) = fields.and_then(|f| braces(event, f)) {
        let _ = write!(text, " {braces}");
    }
}

pub fn comment(text: &mut String, event: &Event, fields: Option<&SkbFields>) {
    if let Some(braces) = fields.and_then(|f| braces(event, f)) {
        let _ = write!(text, " fields={braces}");
    }
}

pub fn json(event: &Event, fields: Option<&SkbFields>) -> Json {
    let Some(fields) = fields else { return Json::Null };
    let values = fields.values(event);
    if values.is_empty() {
        return Json::Null;
    }
    let map = values
        .into_iter()
        .map(|(name, value)| {
            let value = match value {
                Some(Rendered::Number(n)) => i64::try_from(n).map_or_else(|_| Json::from(n as u64), Json::from),
                Some(Rendered::Text(t)) => Json::from(t),
                Some(Rendered::Bool(b)) => Json::from(b),
                None => Json::Null,
            };
            (name.to_string(), value)
        })
        .collect();
    Json::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample_event;

    fn btf() -> Btf {
        crate::kernel::load_btf().expect("this kernel's BTF")
    }

    #[test]
    fn fields_are_laid_out_in_eight_byte_slots_and_typed_when_shown() {
        let btf = btf();
        let fields = SkbFields::compile("mark,pkt_type,dev->mtu,cb,skb_iif,dev", &btf).unwrap();
        let at: Vec<u32> = fields.fields.iter().map(|(_, at)| *at).collect();
        assert_eq!(at, [0, 8, 16, 24, 72, 80]);
        let (config, count) = fields.config();
        assert_eq!((count, config[2].hops, config[3].size), (6, 2, 48));

        let mut event = sample_event();
        let mut data = vec![0u8; 192];
        data[0..4].copy_from_slice(&0x10u32.to_le_bytes());
        let (shift, _) = fields.fields[1].0.bits.unwrap();
        data[8] = 3 << shift;
        data[24] = 0xab;
        data[72..76].copy_from_slice(&(-1i32).to_le_bytes());
        data[80..88].copy_from_slice(&0xffff_8881_0000_1000u64.to_le_bytes());
        // dev->mtu could not be read: its bit is set.
        event.fields = Some((1 << 2, data.into()));
        let mut text = String::new();
        suffix(&mut text, &event, Some(&fields));
        let cb = format!("ab{}", "00".repeat(47));
        assert_eq!(text, format!(" {{mark=16 pkt_type=3 dev->mtu=- cb={cb} skb_iif=-1 dev=0xffff888100001000}}"));
        let json = json(&event, Some(&fields));
        assert_eq!(
            (json["mark"].clone(), json["dev->mtu"].clone(), json["skb_iif"].clone()),
            (16.into(), Json::Null, (-1).into())
        );
    }

    #[test]
    fn too_many_or_too_large_fields_are_refused() {
        let btf = btf();
        let nine = ["mark"; 9].join(",");
        assert!(
            SkbFields::compile(&nine, &btf)
                .unwrap_err()
                .to_string()
                .starts_with("--skb-fields: 9 fields (at most 8 fields")
        );
        let error = SkbFields::compile("mark,nope", &btf).unwrap_err().to_string();
        assert!(error.starts_with("--skb-fields: nope: no field 'nope' in struct sk_buff"), "{error}");
        let error = SkbFields::compile("headers", &btf).unwrap_err().to_string();
        assert!(error.contains("not a number"), "{error}");
    }
}
