//! The optional pieces of a capture, one module each: its command-line
//! options (flattened into the subcommands' clap structs), what it asks of
//! the kernel (a record section, a configuration field), and how it shows in
//! each output (text and `-t` lines, JSON keys, the pcapng comment).
//!
//! What a feature does not own: decoding its section (`event` reads the
//! whole record, every section into typed `Event` fields, so that no stage
//! ever sees raw bytes), and work between decoding and output (`pipeline`:
//! naming drops, symbolizing stacks, joining journeys).
//!
//! Adding one, in order: its BPF header in bpf/lib/ and, if it adds to the
//! record, a section kind and struct in bpf/netcap.h (filled in
//! bpf/lib/sections.h); its module here with options, `section` and
//! renderings; its field in `event::Event` and the section's arm in
//! `event::Sections::decode`; a call in each sink (text.rs, tcpdump.rs,
//! json.rs, pcapng.rs) where its text goes. Tests: the section's decoding
//! in event's unit tests, each rendering in its own module, and a host test
//! that runs it on real traffic against an oracle.

pub mod ct;
pub mod drop;
pub mod fake_headers;
pub mod fields;
pub mod gather;
pub mod nft;
pub mod progs;
pub mod retval;
pub mod scope;
pub mod stack;
pub mod track;
pub mod user;

use clap::ValueEnum;

use crate::bpf::types;
use crate::bpf::types::netcap_section_kind as Section;
use crate::plan::{Flavour, Target};

/// Colors of the lines features add, on a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Red,
    Green,
    Yellow,
    Blue,
    Purple,
    Cyan,
}

impl Color {
    /// The ANSI escape that starts this color.
    pub fn ansi(self) -> &'static str {
        match self {
            Color::Red => "\x1b[31m",
            Color::Green => "\x1b[32m",
            Color::Yellow => "\x1b[33m",
            Color::Blue => "\x1b[34m",
            Color::Purple => "\x1b[35m",
            Color::Cyan => "\x1b[36m",
        }
    }
}

/// Ends a colored line.
pub const RESET: &str = "\x1b[0m";

/// `line`, in `color` when there is one, after a newline.
pub fn colored_line(text: &mut String, color: Option<&str>, line: &str) {
    text.push('\n');
    match color {
        Some(color) => {
            text.push_str(color);
            text.push_str(line);
            text.push_str(RESET);
        }
        None => text.push_str(line),
    }
}

/// What one trace point's records carry (netcap_config.sections): each
/// feature says whether it wants its section there. The user's struct is
/// there whenever an action was compiled in (`layout`).
/// What the options ask every kernel skb point to record besides the packet.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wanted {
    pub stacks: bool,
    pub track: bool,
    pub fields: bool,
    pub owner: bool,
    pub ct: bool,
}

pub fn sections(target: &Target, flavour: Flavour, wanted: Wanted) -> u32 {
    let Wanted { stacks, track, fields, owner, ct } = wanted;
    let wanted = [
        (Section::NETCAP_SECTION_CT, ct::wants_section(target, ct)),
        (Section::NETCAP_SECTION_NFT, nft::wants_section(target)),
        (Section::NETCAP_SECTION_CGROUP, scope::wants_cgroup_section(target, owner)),
        (Section::NETCAP_SECTION_FIELDS, fields::wants_section(target, fields)),
        (Section::NETCAP_SECTION_TRACK, track::wants_section(track)),
        (Section::NETCAP_SECTION_STACK, stack::wants_section(stacks)),
        (Section::NETCAP_SECTION_DROP, drop::wants_section(target)),
        (Section::NETCAP_SECTION_RETVAL, retval::wants_section(flavour)),
        (Section::NETCAP_SECTION_EXT_ARG, user::wants_ext_arg_section(target)),
    ];
    wanted.iter().filter(|(_, on)| *on).fold(0, |bits, (kind, _)| bits | 1 << kind.0)
}

/// Where a point's sections go in its records, written into its
/// configuration so that the kernel side reads offsets instead of adding
/// sizes up on every event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionLayout {
    pub bits: u32,
    pub len: u32,
    pub at: [u16; Section::NETCAP_SECTION_END.0 as usize],
}

/// Lays out the sections of `bits` in kind order; `user_struct`: the
/// user's struct's bytes (rounded up to 8) when an action was compiled in.
pub fn layout(bits: u32, user_struct: Option<u32>) -> SectionLayout {
    use std::mem::size_of;
    let bits = bits | user_struct.map_or(0, |_| 1 << Section::NETCAP_SECTION_USER.0);
    let mut layout = SectionLayout { bits, len: 0, at: [0; Section::NETCAP_SECTION_END.0 as usize] };
    for kind in Section::NETCAP_SECTION_STACK.0..Section::NETCAP_SECTION_END.0 {
        if bits & (1 << kind) == 0 {
            continue;
        }
        let size = match Section(kind) {
            Section::NETCAP_SECTION_STACK => size_of::<types::netcap_section_stack>(),
            Section::NETCAP_SECTION_DROP => size_of::<types::netcap_section_drop>(),
            Section::NETCAP_SECTION_RETVAL
            | Section::NETCAP_SECTION_EXT_ARG
            | Section::NETCAP_SECTION_TRACK
            | Section::NETCAP_SECTION_CGROUP => size_of::<types::netcap_section_value>(),
            Section::NETCAP_SECTION_FIELDS => size_of::<types::netcap_section_fields>(),
            Section::NETCAP_SECTION_CT => size_of::<types::netcap_section_ct>(),
            Section::NETCAP_SECTION_NFT => size_of::<types::netcap_section_nft>(),
            _ => size_of::<types::netcap_section_user>() + user_struct.unwrap_or(0) as usize,
        };
        layout.at[kind as usize] = layout.len as u16;
        layout.len += size as u32;
    }
    layout
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_laid_out_in_kind_order_from_the_c_sizes() {
        let stack = 1 << Section::NETCAP_SECTION_STACK.0;
        let drop = 1 << Section::NETCAP_SECTION_DROP.0;
        assert_eq!(layout(0, None).len, 0, "a plain capture carries no section");
        let both = layout(stack | drop, None);
        assert_eq!((both.len, both.at[1], both.at[2]), (24, 0, 8));
        let with_user = layout(drop, Some(16));
        assert_eq!((with_user.len, with_user.at[5]), (16 + 8 + 16, 16));
        assert_eq!(with_user.bits & (1 << 5), 1 << 5);
    }
}
