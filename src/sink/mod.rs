//! Where events go. Every sink takes one whole event per call, so no two
//! outputs ever interleave inside an event.

pub mod json;
pub mod pcap;
pub mod pcapng;
pub mod tcpdump;
pub mod text;

use std::io;
use std::sync::Arc;

use crate::event::Event;
use crate::ext::layout::UserLayout;
use crate::feature::fields::SkbFields;
use crate::feature::scope::{CgroupPaths, NetnsNames};

/// What sinks need to know besides the event itself.
pub struct Context {
    /// Trace point labels, indexed by `Event::trace_index`.
    pub points: Vec<String>,
    /// Add to an event's monotonic time for wall-clock nanoseconds.
    pub clock_offset_ns: i64,
    /// ANSI color for stack frames, on a terminal only.
    pub stack_color: Option<&'static str>,
    /// ANSI color for journey lines (--gather), on a terminal only.
    pub gather_color: Option<&'static str>,
    /// With --ext-action: how to read the user's struct.
    pub user_layout: Option<Arc<UserLayout>>,
    /// ANSI color for the user's line (--ext-output-color), on a terminal only.
    pub user_color: Option<&'static str>,
    /// With --netns: name each event's namespace (names by inode).
    pub netns_names: Option<Arc<NetnsNames>>,
    /// With --pid or --cgroup: name each event's task and socket's cgroup (paths by id).
    pub cgroup_paths: Option<Arc<CgroupPaths>>,
    /// With --skb-fields: which fields the records carry.
    pub skb_fields: Option<Arc<SkbFields>>,
}

impl Context {
    /// No clock offset, no colors: for tests.
    #[cfg(test)]
    pub fn plain(points: Vec<String>) -> Context {
        Context::offline(points)
    }

    /// Events whose times are wall-clock already (read from a saved capture),
    /// no colors.
    pub fn offline(points: Vec<String>) -> Context {
        Context {
            points,
            clock_offset_ns: 0,
            stack_color: None,
            gather_color: None,
            user_layout: None,
            user_color: None,
            netns_names: None,
            skb_fields: None,
            cgroup_paths: None,
        }
    }

    pub fn point(&self, event: &Event) -> &str {
        self.point_name(event.trace_index)
    }

    pub fn point_name(&self, trace_index: u16) -> &str {
        self.points.get(usize::from(trace_index)).map_or("?", String::as_str)
    }

    pub fn wall_clock_ns(&self, event: &Event) -> u64 {
        (event.time_ns as i64 + self.clock_offset_ns).max(0) as u64
    }
}

pub trait Sink {
    fn write(&mut self, event: &Event, context: &Context) -> io::Result<()>;
    /// Pushes out what is buffered; called after every batch of events.
    fn flush(&mut self) -> io::Result<()>;
    /// Completes the output; called once, on every exit path.
    fn finish(&mut self) -> io::Result<()> {
        self.flush()
    }
    /// The run's totals, for outputs that carry them (JSON).
    fn summary(&mut self, _totals: &serde_json::Value) -> io::Result<()> {
        Ok(())
    }
}

/// `--write-file-rotate N`: only the last N events, written at the end.
pub struct Rotating {
    inner: Box<dyn Sink>,
    keep: usize,
    last: std::collections::VecDeque<Event>,
    context: Option<Context>,
}

impl Rotating {
    pub fn new(inner: Box<dyn Sink>, keep: usize, context: Context) -> Rotating {
        // Grown as events come: N may be far more than a run ever sees.
        Rotating { inner, keep, last: std::collections::VecDeque::new(), context: Some(context) }
    }
}

impl Sink for Rotating {
    fn write(&mut self, event: &Event, _context: &Context) -> io::Result<()> {
        if self.last.len() == self.keep {
            self.last.pop_front();
        }
        self.last.push_back(event.clone());
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        if let Some(context) = self.context.take() {
            for event in self.last.drain(..) {
                self.inner.write(&event, &context)?;
            }
        }
        self.inner.finish()
    }
}

impl Clone for Context {
    fn clone(&self) -> Context {
        Context {
            points: self.points.clone(),
            clock_offset_ns: self.clock_offset_ns,
            stack_color: self.stack_color,
            gather_color: self.gather_color,
            user_layout: self.user_layout.clone(),
            user_color: self.user_color,
            netns_names: self.netns_names.clone(),
            skb_fields: self.skb_fields.clone(),
            cgroup_paths: self.cgroup_paths.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample_event;

    /// Counts what reaches it.
    struct Counting(std::rc::Rc<std::cell::RefCell<Vec<u64>>>);

    impl Sink for Counting {
        fn write(&mut self, event: &Event, _context: &Context) -> io::Result<()> {
            self.0.borrow_mut().push(event.time_ns);
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn rotation_keeps_exactly_the_last_n_and_writes_them_at_the_end() {
        let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let context = Context::plain(vec!["p".into()]);
        let mut sink = Rotating::new(Box::new(Counting(seen.clone())), 3, context.clone());
        for time in 1..=10 {
            let mut event = sample_event();
            event.time_ns = time;
            sink.write(&event, &context).unwrap();
            sink.flush().unwrap();
        }
        assert!(seen.borrow().is_empty(), "nothing before the end");
        sink.finish().unwrap();
        assert_eq!(*seen.borrow(), [8, 9, 10]);
    }
}
