//! Return values: at fexit and kretprobe points the kernel adds a RETVAL
//! section with the traced function's result. Shown as ` [ret N]` on the
//! event's line, `retval` in JSON, ` ret=N` in the pcapng comment.

use std::fmt::Write as _;

use serde_json::Value;

use crate::event::Event;
use crate::plan::Flavour;

pub fn wants_section(flavour: Flavour) -> bool {
    matches!(flavour, Flavour::Fexit | Flavour::Kretprobe)
}

pub fn suffix(text: &mut String, event: &Event) {
    if let Some(value) = event.retval {
        let _ = write!(text, " [ret {value}]");
    }
}

pub fn json(event: &Event) -> Value {
    event.retval.into()
}

pub fn comment(text: &mut String, event: &Event) {
    if let Some(value) = event.retval {
        let _ = write!(text, " ret={value}");
    }
}
