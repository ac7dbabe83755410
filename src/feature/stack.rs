//! `-S`: the kernel stack of each event. The kernel records a stack id
//! (STACK section, from bpf_get_stackid); `pipeline::Annotator` symbolizes
//! each distinct stack once. Shown as indented lines under the event (text,
//! `-t`), `stack` in JSON, ` stack=a|b|c` in the pcapng comment.

use std::fmt::Write as _;

use clap::Args;
use serde_json::Value;

use super::{Color, RESET};
use crate::event::Event;

#[derive(Debug, Args)]
pub struct StackArgs {
    /// Print the kernel stack of each event.
    #[arg(short = 'S', long = "stack-dump")]
    pub stack_dump: bool,

    /// Color of stacks.
    #[arg(long = "stack-dump-color", value_enum)]
    pub stack_dump_color: Option<Color>,
}

pub fn wants_section(stacks: bool) -> bool {
    stacks
}

/// One indented frame per line, each preceded by a newline.
pub fn lines(text: &mut String, event: &Event, color: Option<&str>) {
    for frame in event.stack.iter().flat_map(|frames| frames.iter()) {
        text.push_str("\n    ");
        match color {
            Some(color) => {
                let _ = write!(text, "{color}{frame}{RESET}");
            }
            None => text.push_str(frame),
        }
    }
}

pub fn json(event: &Event) -> Value {
    event.stack.as_ref().map(|frames| frames.to_vec()).into()
}

pub fn comment(text: &mut String, event: &Event) {
    if let Some(frames) = &event.stack {
        let _ = write!(text, " stack={}", frames.join("|"));
    }
}
