//! `--fake-hdr`: on the send path, before the IP layer built its headers,
//! the kernel side makes up Ethernet and IP headers from the socket
//! (bpf/lib/fake_hdr.h, netcap_config.fake_hdr). Marked ` [headers
//! synthesized]` on the event's line, `headers_synthesized` in JSON,
//! ` headers=synthesized` in the pcapng comment.

use clap::Args;

use crate::event::{Event, FLAG_SYNTHESIZED};

#[derive(Debug, Args)]
pub struct FakeHeaderArgs {
    /// Rebuild missing L2/L3 headers from the socket on the send path.
    #[arg(long = "fake-hdr")]
    pub fake_hdr: bool,
}

pub fn synthesized(event: &Event) -> bool {
    event.flags & FLAG_SYNTHESIZED != 0
}

pub fn marker(text: &mut String, event: &Event) {
    if synthesized(event) {
        text.push_str(" [headers synthesized]");
    }
}

pub fn comment(text: &mut String, event: &Event) {
    if synthesized(event) {
        text.push_str(" headers=synthesized");
    }
}
