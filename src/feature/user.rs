//! User extensions (`--ext-filter`, `--ext-action`, compiled by `ext`): the
//! trace point's `@p2` argument travels in an EXT_ARG section, the user's
//! struct in a USER section (present whenever an action was compiled in,
//! shown only when the action returned non-zero). Shown as netcap's
//! `--> No N's pkt User Action >> {…}` line, `user` and `ext_arg` in JSON,
//! ` user={…}` in the pcapng comment.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use serde_json::Value;

use super::{Color, colored_line};
use crate::event::Event;
use crate::ext::layout::UserLayout;
use crate::plan::Target;

#[derive(Debug, Args)]
pub struct ExtArgs {
    /// User C filter: `int xcap_ext_filter(void *ext, void *pkt, u16 trace_index)`.
    #[arg(long = "ext-filter")]
    pub ext_filter: Option<PathBuf>,

    /// User C action filling `struct xcap_user_extend`.
    #[arg(long = "ext-action")]
    pub ext_action: Option<PathBuf>,

    /// Color of extension output.
    #[arg(long = "ext-output-color", value_enum, default_value = "green")]
    pub ext_output_color: Color,
}

pub fn wants_ext_arg_section(target: &Target) -> bool {
    target.extra_arg.is_some()
}

/// `a: 0x12345678; b: 1000` when the user's action filled its struct.
pub fn fields(event: &Event, layout: Option<&UserLayout>) -> Option<String> {
    Some(layout?.text(event.user.as_deref()?))
}

/// netcap's "--> No N's pkt User Action >> {…}" line, after a newline;
/// nothing when the action returned 0.
pub fn line(text: &mut String, event: &Event, layout: Option<&UserLayout>, color: Option<&str>) {
    if let Some(fields) = fields(event, layout) {
        colored_line(text, color, &format!("--> No {}'s pkt User Action >> {{{fields}}}", event.number));
    }
}

/// `user` (the struct's fields, or null) and `ext_arg`.
pub fn json(event: &Event, layout: Option<&UserLayout>) -> (Value, Value) {
    let user = layout.zip(event.user.as_deref()).map(|(layout, bytes)| layout.json(bytes));
    (user.into(), event.ext_arg.into())
}

pub fn comment(text: &mut String, event: &Event, layout: Option<&UserLayout>) {
    if let Some(fields) = fields(event, layout) {
        let _ = write!(text, " user={{{fields}}}");
    }
}
