//! Where events go. Every sink takes one whole event per call, so no two
//! outputs ever interleave inside an event.

pub mod pcapng;
pub mod text;

use std::io;

use crate::event::Event;

/// What sinks need to know besides the event itself.
pub struct Context {
    /// Trace point labels, indexed by `Event::trace_index`.
    pub points: Vec<String>,
    /// Add to an event's monotonic time for wall-clock nanoseconds.
    pub clock_offset_ns: i64,
}

impl Context {
    pub fn point(&self, event: &Event) -> &str {
        self.points.get(usize::from(event.trace_index)).map_or("?", String::as_str)
    }

    pub fn wall_clock_ns(&self, event: &Event) -> u64 {
        (event.time_ns as i64 + self.clock_offset_ns).max(0) as u64
    }
}

pub trait Sink {
    fn write(&mut self, event: &Event, context: &Context) -> io::Result<()>;
    /// Flushes what is buffered; called on every exit path.
    fn finish(&mut self) -> io::Result<()>;
}
