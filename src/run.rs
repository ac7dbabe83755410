//! The modes of `netcap`, each taking parsed options to a finished run:
//! plan, load, read the ring buffer into the sinks, report, detach.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use libbpf_rs::RingBufferBuilder;

use crate::cli::ListArgs;
use crate::cli::skb::Color;
use crate::cli::skb::{CaptureArgs, SkbArgs, UserArgs};
use crate::event::Event;
use crate::ext::Extensions;
use crate::filter::Filter;
use crate::kernel;
use crate::kernel::kallsyms::Kallsyms;
use crate::load::{self, LoadOptions, Progress, Session, mbuf};
use crate::pipeline::gather::{Gather, Matching};
use crate::pipeline::{Annotator, DropReasons, DropSummary, Symbols};
use crate::plan::{self, spec, user};
use crate::sink::json::JsonSink;
use crate::sink::pcap::PcapSink;
use crate::sink::pcapng::PcapngSink;
use crate::sink::tcpdump::{self, TcpdumpSink};
use crate::sink::text::TextSink;
use crate::sink::{Context, Rotating, Sink};

/// Returned by the ring buffer callback to stop consuming (after -c N).
const STOP_CONSUMING: i32 = -libc::ECANCELED;

pub fn skb(args: &SkbArgs, verbose: bool) -> Result<()> {
    let mut specs = Vec::new();
    for list in &args.function {
        specs.extend(spec::parse_list(list)?);
    }
    let btf = kernel::load_btf()?;
    let traceable = if specs.iter().any(|s| spec::is_pattern(&s.name)) {
        kernel::traceable_functions()
    } else {
        Default::default()
    };
    let mut targets = plan::resolve(&specs, &btf, &kernel::tracepoint_category, &|name| traceable.contains(name))?;
    let reasons = DropReasons::from_btf(&btf);
    let filter_in_place = kernel::reads_any_address(&btf);
    drop(btf);
    if args.bench_floor {
        for target in targets.iter_mut().filter(|t| !t.is_function()) {
            target.flavours = vec![plan::Flavour::Floor];
        }
    }
    let device = kernel::resolve_device(&args.interface)?;
    let setup = Setup {
        targets,
        reasons,
        device,
        stacks: args.stack_dump,
        stack_color: args.stack_dump_color,
        fake_headers: args.fake_hdr,
        skb_data: (args.skb_data || args.skb_data_offset != 0).then_some(args.skb_data_offset),
        drop_summary_every: (args.drop_summary_interval > 0).then(|| Duration::from_secs(args.drop_summary_interval)),
        mbuf: None,
        watched_pid: None,
        filter_in_place,
    };
    trace(&args.capture, setup, verbose)
}

/// `netcap raw` and `netcap mbuf`: packets inside a process.
pub fn user(args: &UserArgs, mode: user::Mode, mbuf_layout: Option<&str>, verbose: bool) -> Result<()> {
    let targets = user::resolve(&args.function, mode, args.pid)?;
    let mbuf = match mode {
        user::Mode::Mbuf => {
            let (offsets, source) = mbuf::offsets(mbuf_layout, &targets)?;
            eprintln!("netcap: rte_mbuf layout {offsets}, {source}");
            Some(offsets)
        }
        user::Mode::Raw => None,
    };
    let setup = Setup {
        targets,
        reasons: DropReasons::default(),
        device: None,
        stacks: false,
        stack_color: None,
        fake_headers: false,
        skb_data: None,
        drop_summary_every: None,
        mbuf,
        watched_pid: args.pid,
        // Packets inside a process are copied before filtering anyway.
        filter_in_place: false,
    };
    trace(&args.capture, setup, verbose)
}

/// What a mode hands the common capture.
struct Setup {
    targets: Vec<plan::Target>,
    reasons: DropReasons,
    device: Option<kernel::Device>,
    stacks: bool,
    stack_color: Option<Color>,
    fake_headers: bool,
    skb_data: Option<i32>,
    drop_summary_every: Option<Duration>,
    /// netcap mbuf: where struct rte_mbuf keeps its fields.
    mbuf: Option<mbuf::MbufOffsets>,
    /// With -p: stop when this process exits.
    watched_pid: Option<i32>,
    /// The kernel lets BPF read any address (see kernel::reads_any_address).
    filter_in_place: bool,
}

/// Loads, attaches, and copies events to the output until Ctrl-C, -c N,
/// or the end of the traced process.
fn trace(args: &CaptureArgs, setup: Setup, verbose: bool) -> Result<()> {
    let Setup { targets, reasons, device, .. } = setup;
    if args.gather && targets.len() < 2 {
        bail!("--gather follows packets across trace points: give at least two with -f");
    }
    let filter = args.expression.as_deref().map(Filter::compile).transpose()?;
    let tcpdump_flags = args.tcpdump_flags.as_deref().map(tcpdump::parse_flags).transpose()?;
    if args.write_file.is_none() && (args.write_file_rotate > 0 || args.pcap) {
        bail!("--write-file-rotate and --pcap go with -w FILE");
    }
    let extensions = Extensions::read(args.ext_filter.as_deref(), args.ext_action.as_deref())?;
    if args.dry_run {
        if let Some(extensions) = &extensions {
            print!("{}", extensions.assembled_source());
        }
        if let Some(filter) = &filter {
            print!("{}", filter.describe());
        }
        for target in &targets {
            println!("{target}");
        }
        if let Some(offsets) = &setup.mbuf {
            println!("rte_mbuf: {offsets}");
        }
        // User-space points have no device.
        let kernel_points = targets.iter().all(|t| t.user.is_none());
        match &device {
            Some(d) => println!("device: {} (ifindex {}, netns {})", d.name, d.ifindex, d.netns),
            None if kernel_points => println!("device: any"),
            None => {}
        }
        println!("capture: {} bytes per packet", args.capture_max_size);
        return Ok(());
    }
    let compiled = extensions.as_ref().map(Extensions::compile).transpose()?;
    kernel::check_privileges()?;
    if let Some(refusal) = filter.as_ref().and_then(|f| f.raw_refusal.as_deref()) {
        eprintln!(
            "netcap: the filter cannot apply to packets without an Ethernet header ({refusal}); they are not shown"
        );
    }

    // With extensions, libbpf's messages hold the verifier's verdict on the user's code.
    load::route_libbpf_messages(verbose || compiled.is_some());
    // One kprobe per function takes one file descriptor each.
    kernel::raise_open_files_limit();
    let options = LoadOptions {
        object: compiled.as_ref().map_or(load::EMBEDDED_OBJECT, |c| c.object),
        capture_max: args.capture_max_size,
        device,
        ring_bytes: args.ring_buffer_mb << 20,
        filter,
        stacks: setup.stacks,
        fake_headers: setup.fake_headers,
        skb_data: setup.skb_data,
        mbuf: setup.mbuf,
        filter_in_place: setup.filter_in_place,
    };
    let terminal = io::stderr().is_terminal();
    let session = Session::attach(&targets, &options, |progress| match progress {
        Progress::Attached(attached) => {
            eprintln!(
                "netcap: {} attached by {}{}",
                attached.target.spec,
                attached.flavour.label(),
                fallback_note(&attached.fallbacks)
            );
        }
        Progress::Counting(done, all) if terminal && (done % 50 == 0 || done == all) => {
            eprint!("\rnetcap: attaching {done}/{all} functions{}", if done == all { "\n" } else { "" });
        }
        Progress::Counting(..) => {}
        Progress::Group(group) => {
            eprintln!(
                "netcap: {} functions attached by {}{}{}",
                group.attached,
                group.flavour.label(),
                fallback_note(&group.fallbacks),
                match group.refused.len() {
                    0 => String::new(),
                    n if n <= 10 => format!("; the kernel refused {n}: {}", group.refused.join(", ")),
                    n => format!("; the kernel refused {n}, among them {}", group.refused[..10].join(", ")),
                }
            );
        }
    })
    .map_err(|err| with_libbpf_log(err, verbose, compiled.is_some()))?;
    let user_layout = compiled.and_then(|c| c.layout).map(Arc::new);

    let drop_points: Vec<bool> = targets.iter().map(|t| t.reason_arg.is_some()).collect();
    // Symbols name drop locations and stack frames; read after attaching,
    // so that netcap's own programs are among them (and left out of stacks).
    let symbols = if setup.stacks || drop_points.contains(&true) {
        Symbols::Loading(std::thread::spawn(|| Kallsyms::load().ok().filter(|s| !s.is_empty())))
    } else {
        Symbols::none()
    };
    let annotator = Annotator::new(reasons, drop_points, symbols);

    let context = Context {
        points: targets.iter().map(|t| t.label().to_string()).collect(),
        clock_offset_ns: kernel::monotonic_to_realtime_offset(),
        stack_color: setup.stack_color.filter(|_| colors_wanted()).map(Color::ansi),
        gather_color: Some(args.gather_output_color).filter(|_| colors_wanted()).map(Color::ansi),
        user_color: Some(args.ext_output_color).filter(|_| colors_wanted()).map(Color::ansi),
        user_layout: user_layout.clone(),
    };
    let sink = open_sink(args, &context, tcpdump_flags)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).context("installing the signal handler")?;
    }
    eprintln!("netcap: tracing {} point(s); Ctrl-C to stop", targets.len());

    let gather = args.gather.then(|| {
        let matching = if args.gather_distinguish_by_pointer { Matching::Pointer } else { Matching::Content };
        let timeout = u64::from(args.gather_timeout) * 1_000_000_000;
        (Gather::new(targets.len(), matching, timeout, args.gather_buffer_size as usize), Vec::new())
    });
    let capture = RefCell::new(Capture {
        sink,
        annotator,
        drops: DropSummary::default(),
        gather,
        written: 0,
        seen: 0,
        limit: args.count,
        malformed: 0,
        output_error: None,
        user_size: user_layout.as_ref().map_or(0, |layout| layout.size.next_multiple_of(8)),
    });
    let summary_every = setup.drop_summary_every;
    let mut last_summary = Instant::now();
    {
        let events_map = session.events_map()?;
        let mut builder = RingBufferBuilder::new();
        builder.add(&events_map, |record| capture.borrow_mut().take(record, &context, |id| session.stack(id)))?;
        let ring = builder.build()?;
        // The kernel wakes us only once data piles up (see bpf/netcap.bpf.c),
        // so every round also consumes whatever arrived quietly.
        let read = |ring: &libbpf_rs::RingBuffer, wait: bool| -> Result<()> {
            let result =
                if wait { ring.poll(Duration::from_millis(100)) } else { Ok(()) }.and_then(|()| ring.consume());
            match result {
                Err(err) if !capture.borrow().done() && err.kind() != libbpf_rs::ErrorKind::Interrupted => {
                    Err(err).context("reading the ring buffer")
                }
                _ => {
                    capture.borrow_mut().flush(&context, !wait);
                    Ok(())
                }
            }
        };
        while !stop.load(Ordering::Relaxed) && !capture.borrow().done() {
            read(&ring, true)?;
            if let Some(pid) = setup.watched_pid
                && !user::process_alive(pid)
            {
                eprintln!("netcap: process {pid} exited; stopping");
                break;
            }
            if summary_every.is_some_and(|every| last_summary.elapsed() >= every) {
                last_summary = Instant::now();
                let capture = capture.borrow();
                if !capture.drops.is_empty() {
                    eprint!("netcap: drops so far:\n{}", capture.drops.render());
                }
            }
        }
        // What the kernel wrote before we stopped is part of the capture.
        read(&ring, false)?;
    }
    let mut capture = capture.into_inner();
    let counters = session.counters();
    drop(session);
    let finished = capture.sink.finish();
    let written = match args.write_file_rotate {
        0 => capture.written,
        keep => capture.written.min(u64::from(keep)),
    };
    if let Some((gather, _)) = &capture.gather {
        eprint!("netcap: delays between trace points:\n{}", gather.render_hops(&context.points));
    }
    let totals = serde_json::json!({
        "captured": capture.seen,
        "written": written,
        "lost_ring_buffer_full": counters.lost,
        "lost_nested": counters.nested,
        "unreadable": counters.read_fault,
        "skipped_without_headers": counters.no_header,
        "stacks_unavailable": capture.annotator.missing_stacks,
    });
    let finished = finished.and_then(|()| capture.sink.summary(&totals));
    let mut summary = format!("netcap: {} packets captured, {} lost (ring buffer full)", capture.seen, counters.lost);
    if args.write_file.is_some() {
        summary.push_str(&format!(", {written} written"));
    }
    if counters.nested > 0 {
        summary.push_str(&format!(", {} lost (nested too deep)", counters.nested));
    }
    if counters.read_fault > 0 {
        summary.push_str(&format!(", {} unreadable", counters.read_fault));
    }
    if counters.no_header > 0 {
        summary.push_str(&format!(", {} skipped without headers", counters.no_header));
    }
    if capture.malformed > 0 {
        summary.push_str(&format!(", {} malformed records", capture.malformed));
    }
    if capture.annotator.missing_stacks > 0 {
        summary.push_str(&format!(", {} stacks unavailable", capture.annotator.missing_stacks));
    }
    if !capture.drops.is_empty() {
        eprint!("netcap: drops:\n{}", capture.drops.render());
    }
    eprintln!("{summary}");
    match capture.output_error.map_or(finished, Err) {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing the output"),
    }
}

/// `netcap bench-sink N FILE`: the user-space half of a capture on one
/// core — records as the kernel writes them (a 98-byte ICMP echo request,
/// 256-byte capture limit), decoded and written to pcapng in batches —
/// without the kernel, to measure how many events per second it sustains.
pub fn bench_sink(count: u64, output: &std::path::Path) -> Result<()> {
    let mut raw =
        crate::bpf::types::netcap_event { cap_len: 98, pkt_len: 98, link: 1, protocol: 0x0008, ..Default::default() };
    for (slot, byte) in raw.ifname.iter_mut().zip(b"veth-b\0") {
        *slot = *byte as i8;
    }
    let mut frame = vec![0u8; 98];
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    frame[14..34].copy_from_slice(&[0x45, 0, 0, 84, 0, 1, 0x40, 0, 64, 1, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2]);
    frame[34] = 8;
    let header_size = std::mem::size_of_val(&raw);
    // SAFETY: the record header is repr(C) plain old data.
    let header = unsafe {
        std::slice::from_raw_parts((&raw as *const crate::bpf::types::netcap_event).cast::<u8>(), header_size)
    };
    let mut record = [header, &frame].concat();

    let context = Context {
        points: vec!["netif_receive_skb".into()],
        clock_offset_ns: kernel::monotonic_to_realtime_offset(),
        stack_color: None,
        gather_color: None,
        user_layout: None,
        user_color: None,
    };
    let out = BufWriter::new(File::create(output).with_context(|| format!("creating {}", output.display()))?);
    let sink = Box::new(PcapngSink::new(out, &context, 256)?);
    let mut capture = Capture {
        sink,
        annotator: Annotator::new(DropReasons::default(), vec![false], Symbols::none()),
        drops: DropSummary::default(),
        gather: None,
        seen: 0,
        written: 0,
        limit: 0,
        malformed: 0,
        output_error: None,
        user_size: 0,
    };
    let start = Instant::now();
    for n in 0..count {
        record[..8].copy_from_slice(&(n * 1000).to_ne_bytes());
        capture.take(&record, &context, |_| None);
        // The ring buffer hands records over in batches; each ends with a flush.
        if n % 4096 == 4095 {
            capture.flush(&context, false);
        }
    }
    capture.flush(&context, true);
    capture.sink.finish()?;
    let seconds = start.elapsed().as_secs_f64();
    println!("{} events in {seconds:.3} s: {:.0} events/s", capture.written, capture.written as f64 / seconds);
    Ok(())
}

struct Capture {
    sink: Box<dyn Sink>,
    annotator: Annotator,
    drops: DropSummary,
    /// With --gather: sightings of the current batch, then the journeys.
    gather: Option<(Gather, Vec<Event>)>,
    /// Events read from the ring buffer.
    seen: u64,
    /// Events (or journeys) written; -c counts these.
    written: u64,
    limit: u64,
    malformed: u64,
    output_error: Option<io::Error>,
    /// Bytes of the user's struct in each record (--ext-action).
    user_size: usize,
}

impl Capture {
    fn done(&self) -> bool {
        (self.limit > 0 && self.written >= self.limit) || self.output_error.is_some()
    }

    fn write(&mut self, event: &Event, context: &Context) {
        if self.done() {
            return;
        }
        match self.sink.write(event, context) {
            Ok(()) => self.written += 1,
            Err(err) => self.output_error = Some(err),
        }
    }

    fn take(&mut self, record: &[u8], context: &Context, stack: impl FnOnce(i32) -> Option<Vec<u64>>) -> i32 {
        if self.done() {
            return STOP_CONSUMING;
        }
        match Event::decode(record, self.user_size) {
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
        if self.done() { STOP_CONSUMING } else { 0 }
    }

    /// Ends a batch: joins its sightings in time order (the ring buffer
    /// holds commit order, which CPUs interleave), writes what is ready.
    fn flush(&mut self, context: &Context, last: bool) {
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
        if self.output_error.is_none()
            && let Err(err) = self.sink.flush()
        {
            self.output_error = Some(err);
        }
    }
}

/// " (tp_btf (paged data) failed: why)" for flavours tried before the one used.
fn fallback_note(fallbacks: &[(plan::Flavour, String)]) -> String {
    if fallbacks.is_empty() {
        return String::new();
    }
    let notes: Vec<String> = fallbacks.iter().map(|(f, why)| format!("{} failed: {why}", f.label())).collect();
    format!(" ({})", notes.join("; "))
}

/// The output: a capture file (-w), tcpdump's text (-t), JSON, or netcap's lines.
fn open_sink(args: &CaptureArgs, context: &Context, tcpdump_flags: Option<Vec<String>>) -> Result<Box<dyn Sink>> {
    let snaplen = args.capture_max_size;
    if let Some(path) = &args.write_file {
        let out: Box<dyn Write> = if path.as_os_str() == "-" {
            Box::new(BufWriter::new(io::stdout()))
        } else {
            Box::new(BufWriter::new(File::create(path).with_context(|| format!("creating {}", path.display()))?))
        };
        let file: Box<dyn Sink> = if args.pcap {
            Box::new(PcapSink::new(out, snaplen)?)
        } else {
            Box::new(PcapngSink::new(out, context, snaplen)?)
        };
        return Ok(match args.write_file_rotate {
            0 => file,
            keep => Box::new(Rotating::new(file, keep as usize, context.clone())),
        });
    }
    let stdout = BufWriter::new(io::stdout());
    Ok(match tcpdump_flags {
        Some(flags) => Box::new(TcpdumpSink::new(&flags, snaplen, stdout)?),
        None if args.json => Box::new(JsonSink::new(stdout)),
        None => Box::new(TextSink::new(stdout)),
    })
}

/// Colors only on a terminal, and never when NO_COLOR is set.
fn colors_wanted() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && io::stdout().is_terminal()
}

/// Lines of a verifier log shown for extensions without -v.
const VERIFIER_TAIL: usize = 16;

/// Adds libbpf's messages (-v), or with user extensions the verifier's log
/// of the first program it refused.
fn with_libbpf_log(err: anyhow::Error, verbose: bool, extensions: bool) -> anyhow::Error {
    let log = load::drain_libbpf_messages();
    if verbose && !log.is_empty() {
        return err.context(format!("libbpf said:\n{}", log.join("\n")));
    }
    if extensions {
        let text = log.join("\n");
        if let Some(start) = text.find("-- BEGIN PROG LOAD LOG --") {
            let body = &text[start + "-- BEGIN PROG LOAD LOG --".len()..];
            let body = body.split("-- END PROG LOAD LOG --").next().unwrap_or(body);
            // The verdict and the source lines before it are at the end.
            let lines: Vec<&str> = body.trim().lines().collect();
            let tail = lines[lines.len().saturating_sub(VERIFIER_TAIL)..].join("\n");
            return anyhow::anyhow!(
                "{err:#}\nthe verifier refused the program built with the extensions; the end of its log \
                 (-v shows all of it):\n{tail}"
            );
        }
    }
    err
}

pub fn list(args: &ListArgs) -> Result<()> {
    let btf = kernel::load_btf()?;
    let matches = |name: &str| args.pattern.as_deref().is_none_or(|p| name.contains(p));
    let mut lines: Vec<String> = Vec::new();
    if !args.functions {
        for name in plan::tracepoint_names(&btf).into_iter().filter(|n| matches(n)) {
            let Some(params) = btf.tracepoint_params(name) else { continue };
            let Some(position) = params.iter().position(|(_, ty)| btf.is_pointer_to_struct(*ty, "sk_buff")) else {
                continue;
            };
            let prefix = match kernel::tracepoint_category(name) {
                Some(category) => format!("tracepoint:{category}:"),
                None => "tp:".to_string(),
            };
            lines.push(format!("{prefix}{name}@{} {}", position + 1, plan::signature(&btf, &params)));
        }
    }
    if !args.tracepoints {
        for name in plan::skb_function_names(&btf).into_iter().filter(|n| matches(n)) {
            let Some(proto) = btf.function(name) else { continue };
            let params = btf.params(proto);
            let Some(position) = params.iter().position(|(_, ty)| btf.is_pointer_to_struct(*ty, "sk_buff")) else {
                continue;
            };
            lines.push(format!("{name}@{} {}", position + 1, plan::signature(&btf, &params)));
        }
    }
    lines.sort();
    let mut out = io::stdout().lock();
    for line in lines {
        if let Err(err) = writeln!(out, "{line}") {
            return if err.kind() == io::ErrorKind::BrokenPipe { Ok(()) } else { Err(err.into()) };
        }
    }
    Ok(())
}
