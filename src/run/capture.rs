//! The read loop: ring buffer records → events → the sink. Records are read
//! in rounds that end after a time slice or a batch, whichever comes first,
//! so that a producer that keeps up can starve neither a stop signal, nor
//! `-p`'s process check, the drop summary interval or gather's timeouts.
//! On stop the programs are detached first; then what the ring holds is
//! drained, for a bounded time, and whatever is left is counted, not lost
//! silently.

use std::cell::RefCell;
use std::io;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use libbpf_rs::RingBufferBuilder;

use crate::event::Event;
use crate::kernel;
use crate::load::{Removal, Session};
use crate::pipeline::gather::Gather;
use crate::pipeline::{Annotator, DropSummary};
use crate::run::report::say;
use crate::signals::StopSignals;
use crate::sink::{Context, Sink};

/// Returned by the ring buffer callback to end a `consume()` call.
const STOP_CONSUMING: i32 = -libc::ECANCELED;
/// How long one round may read before the loop looks around.
const ROUND: Duration = Duration::from_millis(50);
/// Records per round at most: bounds the batch gather sorts.
const ROUND_RECORDS: u32 = 65_536;
/// After a stop: how long draining what the ring holds may take.
const DRAIN: Duration = Duration::from_millis(500);
/// How long a poll waits for the kernel's wakeup (it wakes us only once
/// data piles up, see bpf/netcap.bpf.c, so every round reads anyway).
const POLL: Duration = Duration::from_millis(100);

/// How the current `consume()` call takes records.
#[derive(Debug, Clone, Copy)]
enum Round {
    /// Decode and write; end at `ends`, after `ROUND_RECORDS`, or on a signal
    /// when `watch_signal`.
    Reading { ends: Instant, taken: u32, watch_signal: bool },
    /// Past the drain deadline: only count what is left.
    Counting,
}

pub struct Capture {
    pub sink: Box<dyn Sink>,
    pub annotator: Annotator,
    pub drops: DropSummary,
    /// With --gather: sightings of the current batch, then the journeys.
    pub gather: Option<(Gather, Vec<Event>)>,
    /// Events read from the ring buffer.
    pub seen: u64,
    /// Events (or journeys) handed to the sink; -c counts these.
    handed: u64,
    /// Of those, events the sink has pushed to the output.
    pub delivered: u64,
    limit: u64,
    pub malformed: u64,
    /// Records still in the ring buffer when the drain's time was up.
    pub unread: u64,
    pub output_error: Option<io::Error>,
    round: Round,
    /// The last callback ended its `consume()` early.
    cut_short: bool,
}

impl Capture {
    pub fn new(sink: Box<dyn Sink>, annotator: Annotator, gather: Option<Gather>, limit: u64) -> Capture {
        Capture {
            sink,
            annotator,
            drops: DropSummary::default(),
            gather: gather.map(|g| (g, Vec::new())),
            seen: 0,
            handed: 0,
            delivered: 0,
            limit,
            malformed: 0,
            unread: 0,
            output_error: None,
            round: Round::Reading { ends: Instant::now() + ROUND, taken: 0, watch_signal: false },
            cut_short: false,
        }
    }

    /// -c N reached, or the output failed.
    pub fn done(&self) -> bool {
        (self.limit > 0 && self.handed >= self.limit) || self.output_error.is_some()
    }

    fn begin(&mut self, round: Round) {
        self.round = round;
        self.cut_short = false;
    }

    fn write(&mut self, event: &Event, context: &Context) {
        if self.done() {
            return;
        }
        match self.sink.write(event, context) {
            Ok(()) => self.handed += 1,
            Err(err) => self.output_error = Some(err),
        }
    }

    /// The ring buffer callback: one record.
    pub fn take(
        &mut self,
        record: &[u8],
        context: &Context,
        stop: &StopSignals,
        stack: impl FnOnce(i32) -> Option<Vec<u64>>,
    ) -> i32 {
        if let Round::Counting = self.round {
            self.unread += 1;
            return 0;
        }
        if self.done() {
            self.cut_short = true;
            return STOP_CONSUMING;
        }
        match Event::decode(record) {
            Ok(mut event) => {
                self.seen += 1;
                event.number = self.seen;
                self.annotator.annotate(&mut event, stack);
                self.drops.add(&event);
                match &mut self.gather {
                    Some((_, batch)) => batch.push(event),
                    None => self.write(&event, context),
                }
            }
            Err(_) => self.malformed += 1,
        }
        let over = match &mut self.round {
            Round::Reading { ends, taken, watch_signal } => {
                *taken += 1;
                // The clock is read once every 256 records: it costs more than a record.
                (*watch_signal && stop.requested())
                    || *taken >= ROUND_RECORDS
                    || (*taken % 256 == 0 && Instant::now() >= *ends)
            }
            Round::Counting => false,
        };
        if over || self.done() {
            self.cut_short = true;
            STOP_CONSUMING
        } else {
            0
        }
    }

    /// Ends a batch: joins its sightings in time order (the ring buffer
    /// holds commit order, which CPUs interleave), writes what is ready,
    /// and pushes the output.
    pub fn flush(&mut self, context: &Context, last: bool) {
        if let Some((gather, batch)) = &mut self.gather {
            batch.sort_by_key(|event| event.time_ns);
            let mut ready = Vec::new();
            for event in batch.drain(..) {
                ready.extend(gather.add(event));
            }
            ready.extend(if last { gather.drain() } else { gather.expire(kernel::monotonic_now()) });
            for event in &ready {
                self.write(event, context);
            }
        }
        if self.output_error.is_none() {
            match self.sink.flush() {
                Ok(()) => self.delivered = self.handed,
                Err(err) => self.output_error = Some(err),
            }
        }
    }

    /// Completes the output (at exit); counts what it pushed out.
    pub fn finish(&mut self) -> io::Result<()> {
        let finished = self.sink.finish();
        if finished.is_ok() && self.output_error.is_none() {
            self.delivered = self.handed;
        }
        finished
    }
}

/// What the loop does between rounds besides reading.
pub struct Chores<'a> {
    /// With -p: stop when this process exits.
    pub watched_pid: Option<i32>,
    /// --drop-summary-interval.
    pub summary_every: Option<Duration>,
    pub say: &'a dyn Fn(&str),
}

/// Reads the ring buffer into the capture until a stop signal, -c, an
/// output error or the end of the watched process; then detaches and
/// drains. Returns once the capture holds everything it will get.
pub fn read(
    session: &Session,
    capture: &RefCell<Capture>,
    context: &Context,
    stop: &StopSignals,
    chores: &Chores<'_>,
) -> Result<()> {
    let events_map = session.events_map()?;
    let mut builder = RingBufferBuilder::new();
    builder.add(&events_map, |record| capture.borrow_mut().take(record, context, stop, |id| session.stack(id)))?;
    let ring = builder.build()?;
    let mut last_summary = Instant::now();
    while !stop.requested() && !capture.borrow().done() {
        capture.borrow_mut().begin(Round::Reading { ends: Instant::now() + ROUND, taken: 0, watch_signal: true });
        let polled = ring.poll(POLL);
        // Records that arrived after the poll's wakeup, within the same round.
        let read = polled.and_then(|()| if capture.borrow().cut_short { Ok(()) } else { ring.consume() });
        check(read, capture)?;
        capture.borrow_mut().flush(context, false);
        if let Some(pid) = chores.watched_pid
            && !crate::plan::user::process_alive(pid)
        {
            (chores.say)(&format!("netcap: process {pid} exited; stopping"));
            break;
        }
        if chores.summary_every.is_some_and(|every| last_summary.elapsed() >= every) {
            last_summary = Instant::now();
            let capture = capture.borrow();
            if !capture.drops.is_empty() {
                (chores.say)(&format!("netcap: drops so far:\n{}", capture.drops.render().trim_end()));
            }
        }
    }
    // Nothing is written into the ring after this: what it holds is bounded.
    match session.detach() {
        Some(Removal::InBackground { kprobes, pid }) => say(&format!(
            "netcap: {kprobes} kprobes stopped; process {pid} removes them in the background \
             (the kernel takes a grace period for each)"
        )),
        Some(Removal::InPlace { kprobes, why }) => say(&format!("netcap: {kprobes} kprobes removed in place ({why})")),
        None => {}
    }
    let deadline = Instant::now() + DRAIN;
    while !capture.borrow().done() {
        let now = Instant::now();
        if now >= deadline {
            capture.borrow_mut().begin(Round::Counting);
            check(ring.consume(), capture)?;
            break;
        }
        capture.borrow_mut().begin(Round::Reading { ends: deadline.min(now + ROUND), taken: 0, watch_signal: false });
        check(ring.consume(), capture)?;
        capture.borrow_mut().flush(context, false);
        if !capture.borrow().cut_short {
            break;
        }
    }
    // Journeys still open are complete as far as they will get.
    capture.borrow_mut().flush(context, true);
    Ok(())
}

/// A consume() ended by the callback, or by a signal, is no error.
fn check(result: libbpf_rs::Result<()>, capture: &RefCell<Capture>) -> Result<()> {
    match result {
        Err(err)
            if !capture.borrow().cut_short
                && !capture.borrow().done()
                && err.kind() != libbpf_rs::ErrorKind::Interrupted =>
        {
            Err(err).context("reading the ring buffer")
        }
        _ => Ok(()),
    }
}
