//! The end of a run: the totals, built once from netcap's own counts and
//! the kernel's counters, rendered both as the summary sentence on stderr
//! and as the JSON summary, from one table so the two cannot drift.

use std::io::{self, Write};

use crate::load::Counters;

/// When a total appears in the summary sentence.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shown {
    Always,
    /// Only when writing a file (-w).
    WithFile,
    /// Only when it is not zero.
    NonZero,
}

pub struct Totals {
    pub captured: u64,
    pub written: u64,
    pub counters: Counters,
    pub malformed: u64,
    pub unread: u64,
    pub stacks_unavailable: u64,
    /// -w was given.
    pub to_file: bool,
}

impl Totals {
    /// (JSON key, the sentence's words after the number, when shown, value), in sentence order.
    fn table(&self) -> [(&'static str, &'static str, Shown, u64); 15] {
        let c = &self.counters;
        [
            ("captured", "packets captured", Shown::Always, self.captured),
            ("lost_ring_buffer_full", "lost (ring buffer full)", Shown::Always, c.lost),
            ("written", "written", Shown::WithFile, self.written),
            ("lost_nested", "lost (nested too deep)", Shown::NonZero, c.nested),
            ("unreadable", "unreadable", Shown::NonZero, c.read_fault),
            ("skipped_without_headers", "skipped without headers", Shown::NonZero, c.no_header),
            ("skipped_outside_packet", "skipped (start outside the packet)", Shown::NonZero, c.outside),
            ("followed", "followed (--track)", Shown::NonZero, c.track_started.saturating_sub(c.track_inherited)),
            ("followed_made_from_followed", "clones, copies or segments followed", Shown::NonZero, c.track_inherited),
            ("followed_merged_by_gro", "followed merged by GRO", Shown::NonZero, c.track_merged),
            (
                "no_longer_followed_track_map_full",
                "no longer followed (--track map full)",
                Shown::NonZero,
                c.track_evicted(),
            ),
            ("not_followed_track_map_refused", "not followed (--track map refused)", Shown::NonZero, c.track_full),
            ("malformed_records", "malformed records", Shown::NonZero, self.malformed),
            ("stacks_unavailable", "stacks unavailable", Shown::NonZero, self.stacks_unavailable),
            ("unread_at_exit", "left unread in the ring buffer at exit", Shown::NonZero, self.unread),
        ]
    }

    /// "netcap: 4 packets captured, 0 lost (ring buffer full), 4 written".
    pub fn sentence(&self) -> String {
        let parts: Vec<String> = self
            .table()
            .iter()
            .filter(|(_, _, shown, value)| match shown {
                Shown::Always => true,
                Shown::WithFile => self.to_file,
                Shown::NonZero => *value > 0,
            })
            .map(|(_, words, _, value)| format!("{value} {words}"))
            .collect();
        format!("netcap: {}", parts.join(", "))
    }

    /// The `{"summary": …}` object's body.
    pub fn json(&self) -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> =
            self.table().iter().map(|(key, _, _, value)| (key.to_string(), (*value).into())).collect();
        serde_json::Value::Object(map)
    }
}

/// Writes a line to stderr, ignoring failure: after SIGHUP the terminal may
/// be gone, and the run must still finish its output.
pub fn say(text: &str) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals() -> Totals {
        Totals {
            captured: 4,
            written: 4,
            counters: Counters::default(),
            malformed: 0,
            unread: 0,
            stacks_unavailable: 0,
            to_file: true,
        }
    }

    #[test]
    fn the_sentence_names_what_happened_and_skips_zero_extras() {
        assert_eq!(totals().sentence(), "netcap: 4 packets captured, 0 lost (ring buffer full), 4 written");
        let mut more = totals();
        more.to_file = false;
        more.counters.nested = 2;
        more.unread = 7;
        assert_eq!(
            more.sentence(),
            "netcap: 4 packets captured, 0 lost (ring buffer full), 2 lost (nested too deep), \
             7 left unread in the ring buffer at exit"
        );
    }

    #[test]
    fn what_the_track_map_dropped_is_counted() {
        let mut tracked = totals();
        tracked.to_file = false;
        (tracked.counters.track_started, tracked.counters.track_inherited) = (10, 3);
        (tracked.counters.track_ended, tracked.counters.track_left) = (4, 2);
        assert_eq!(
            tracked.sentence(),
            "netcap: 4 packets captured, 0 lost (ring buffer full), 7 followed (--track), \
             3 clones, copies or segments followed, 4 no longer followed (--track map full)"
        );
    }

    #[test]
    fn json_carries_every_total_including_zeros() {
        let mut some = totals();
        some.counters.lost = 3;
        let json = some.json();
        assert_eq!(json["captured"], 4);
        assert_eq!(json["lost_ring_buffer_full"], 3);
        assert_eq!(json["unread_at_exit"], 0);
        assert_eq!(json.as_object().unwrap().len(), 15);
    }
}
