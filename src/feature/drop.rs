//! Drops: at a point that carries a drop reason or location (kfree_skb and
//! friends) the kernel adds a DROP section; `pipeline` names the reason from
//! this kernel's `enum skb_drop_reason` and symbolizes the location, and
//! sums drops for the summary. Shown as ` [drop REASON at LOCATION]` on the
//! event's line, `drop` in JSON, ` drop=… location=…` in the pcapng comment.

use std::fmt::Write as _;

use clap::Args;
use serde_json::{Value, json};

use crate::event::Event;
use crate::plan::Target;

#[derive(Debug, Args)]
pub struct DropArgs {
    /// Also print the drop summary every N seconds (it is always printed at exit).
    #[arg(long = "drop-summary-interval", default_value_t = 0, value_name = "SECONDS")]
    pub drop_summary_interval: u64,
}

pub fn wants_section(target: &Target) -> bool {
    target.reason_arg.is_some() || target.location_arg.is_some()
}

/// " [drop REASON at LOCATION]", or nothing.
pub fn suffix(text: &mut String, event: &Event) {
    if let Some(drop) = &event.drop {
        match &drop.location {
            Some(location) => {
                let _ = write!(text, " [drop {} at {location}]", drop.reason);
            }
            None => {
                let _ = write!(text, " [drop {}]", drop.reason);
            }
        }
    }
}

pub fn json(event: &Event) -> Value {
    event.drop.as_ref().map(|d| json!({ "reason": d.reason, "location": d.location })).into()
}

pub fn comment(text: &mut String, event: &Event) {
    if let Some(drop) = &event.drop {
        let _ = write!(text, " drop={}", drop.reason);
        if let Some(location) = &drop.location {
            let _ = write!(text, " location={location}");
        }
    }
}
