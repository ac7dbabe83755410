//! The capture every mode shares, in the order data flows: check the
//! options, print the plan (--dry-run) or open the output, attach, read
//! the ring buffer until told to stop, report.

use std::cell::RefCell;
use std::sync::Arc;

use anyhow::{Result, bail};

use super::capture::{self, Capture, Chores};
use super::report::{Totals, say};
use super::{Setup, attach, colors_wanted, output};
use crate::cli::skb::{CaptureArgs, Color};
use crate::ext::Extensions;
use crate::filter::Filter;
use crate::kernel;
use crate::kernel::features::Feature;
use crate::kernel::kallsyms::Kallsyms;
use crate::kernel::nftrace::RuleTracing;
use crate::load::{self, LoadOptions};
use crate::pipeline::gather::{Gather, Matching};
use crate::pipeline::{Annotator, Symbols};
use crate::signals::StopSignals;
use crate::sink::Context;
use crate::sink::tcpdump;

/// Loads, attaches, and copies events to the output until Ctrl-C, -c N,
/// or the end of the traced process.
pub fn trace(args: &CaptureArgs, setup: Setup, verbose: bool) -> Result<()> {
    if args.gather.gather && setup.targets.len() < 2 {
        bail!("--gather follows packets across trace points: give at least two with -f");
    }
    let filter = args.expression.as_deref().map(Filter::compile).transpose()?;
    let tcpdump_flags = args.tcpdump_flags.as_deref().map(tcpdump::parse_flags).transpose()?;
    if args.write_file.is_none() && (args.write_file_rotate > 0 || args.pcap) {
        bail!("--write-file-rotate and --pcap go with -w FILE");
    }
    let extensions = Extensions::read(args.ext.ext_filter.as_deref(), args.ext.ext_action.as_deref())?;
    if args.dry_run {
        dry_run(args, &setup, extensions.as_ref(), filter.as_ref());
        return Ok(());
    }
    // From here on a stop signal ends the run cleanly: during the compile too.
    let stop = StopSignals::install()?;
    let compiled = extensions.as_ref().map(|e| e.compile(&stop)).transpose()?;
    kernel::check_privileges()?;
    if let Some(terms) = filter.as_ref().and_then(|f| f.unoptimized_terms) {
        say(&format!(
            "netcap: the filter has {terms} and/or terms: compiled without libpcap's optimizer (as tcpdump -O), \
             which would take minutes on it"
        ));
    }
    if let Some(refusal) = filter.as_ref().and_then(|f| f.raw_refusal.as_deref()) {
        say(&format!(
            "netcap: the filter cannot apply to packets without an Ethernet header ({refusal}); they are not shown"
        ));
    }
    let user_layout = compiled.as_ref().and_then(|c| c.layout.clone()).map(Arc::new);
    let context = Context {
        points: setup.targets.iter().map(|t| t.label().to_string()).collect(),
        clock_offset_ns: kernel::monotonic_to_realtime_offset(),
        stack_color: setup.stack_color.filter(|_| colors_wanted()).map(Color::ansi),
        gather_color: Some(args.gather.gather_output_color).filter(|_| colors_wanted()).map(Color::ansi),
        user_color: Some(args.ext.ext_output_color).filter(|_| colors_wanted()).map(Color::ansi),
        user_layout: user_layout.clone(),
        netns_names: setup.netns_names.clone().map(Arc::new),
        skb_fields: setup.skb_fields.clone().map(Arc::new),
        cgroup_paths: setup.owner.shown.then(|| Arc::new(kernel::cgroup::paths())),
    };
    // A bad -w path or a tcpdump that will not start fails before anything is attached.
    let sink = output::open(args, &context, tcpdump_flags)?;

    // With extensions, libbpf's messages hold the verifier's verdict on the user's code.
    load::route_libbpf_messages(verbose || compiled.is_some());
    // One kprobe per function takes one file descriptor each.
    kernel::raise_open_files_limit();
    let options = LoadOptions {
        object: compiled.as_ref().map_or(load::EMBEDDED_OBJECT, |c| c.object),
        capture_max: args.capture_max_size,
        device: setup.device.clone(),
        ring_bytes: args.ring_buffer_mb << 20,
        filter,
        stacks: setup.stacks,
        fake_headers: setup.fake_headers,
        skb_data: setup.skb_data,
        mbuf: setup.mbuf,
        filter_in_place: setup.filter_in_place,
        user_struct: user_layout.as_ref().map(|layout| layout.size.next_multiple_of(8) as u32),
        task_btf: setup.task_btf,
        bpf_loop: setup.features.has(Feature::BpfLoop),
        uprobe_multi: setup.features.has(Feature::UprobeMulti),
        track: setup.track,
        track_entries: setup.track_entries,
        netns_only: setup.netns_only.as_ref().map(|n| n.inode),
        mark: setup.mark,
        skb_filter: setup.skb_filter.as_ref().map(|f| f.translated.clone()),
        skb_fields: setup.skb_fields.as_ref().map(|f| f.config()),
        owner: setup.owner,
        ct: setup.ct,
    };
    let session = attach::attach(&setup.targets, &options, verbose, compiled.is_some())?;
    // Added once the programs are in: the kernel deletes it when this is dropped.
    let rule_tracing = setup.nft_rules.as_deref().and_then(|others| match RuleTracing::start(others) {
        Ok(tracing) => {
            say(&format!(
                "netcap: --nft: {}, so that nf_tables names the rule of each verdict; it goes when netcap does",
                tracing.summary()
            ));
            Some(tracing)
        }
        Err(err) => {
            say(&format!("netcap: --nft: chains and verdicts only, no rules: {err:#}"));
            None
        }
    });

    let drop_points: Vec<bool> = setup.targets.iter().map(crate::feature::drop::wants_section).collect();
    // Symbols name drop locations and stack frames; read after attaching,
    // so that netcap's own programs are among them (and left out of stacks).
    let symbols = if setup.stacks || drop_points.contains(&true) {
        Symbols::Loading(std::thread::spawn(|| Kallsyms::load().ok().filter(|s| !s.is_empty())))
    } else {
        Symbols::none()
    };
    let verdict_points =
        setup.targets.iter().map(|t| t.program.as_ref().filter(|p| p.exit).map(|p| (p.hook, p.label()))).collect();
    let annotator = Annotator::new(setup.reasons, drop_points, symbols).with_verdicts(verdict_points);
    // Points netcap added for --track (emitting nothing) come last: neither counted nor part of journeys.
    let shown = setup.targets.iter().filter(|t| !t.hidden).count();
    let journeys = &args.gather;
    let gather = journeys.gather.then(|| {
        let matching = if journeys.gather_distinguish_by_pointer { Matching::Pointer } else { Matching::Content };
        let timeout = u64::from(journeys.gather_timeout) * 1_000_000_000;
        Gather::new(shown, matching, timeout, journeys.gather_buffer_size as usize)
            .with_min_latency(journeys.gather_min_latency.unwrap_or(0))
    });
    let capture = RefCell::new(Capture::new(sink, annotator, gather, args.count));

    say(&format!("netcap: tracing {shown} point(s); Ctrl-C to stop"));
    let chores = Chores { watched_pid: setup.watched_pid, summary_every: setup.drop_summary_every, say: &say };
    capture::read(&session, &capture, &context, &stop, &chores)?;
    drop(rule_tracing);

    let mut capture = capture.into_inner();
    let counters = session.counters();
    drop(session);
    report(args, &mut capture, &context, counters)
}

/// --dry-run: the plan, the filter and the C netcap would compile; nothing loaded.
fn dry_run(args: &CaptureArgs, setup: &Setup, extensions: Option<&Extensions>, filter: Option<&Filter>) {
    if let Some(extensions) = extensions {
        print!("{}", extensions.assembled_source());
    }
    if let Some(filter) = filter {
        print!("{}", filter.describe());
    }
    if let Some(skb_filter) = &setup.skb_filter {
        print!("{}", skb_filter.describe());
    }
    if let Some(fields) = &setup.skb_fields {
        for (access, at) in &fields.fields {
            let offsets: Vec<String> = access.offsets.iter().map(|o| format!("+{o}")).collect();
            println!(
                "skb field {} ({}): {} bytes at skb{}, slot {at}",
                access.text,
                access.type_text,
                access.size,
                offsets.join(" ->")
            );
        }
    }
    for target in &setup.targets {
        println!("{target}");
    }
    if let Some(offsets) = &setup.mbuf {
        println!("rte_mbuf: {offsets}");
    }
    // User-space points have no device.
    let kernel_points = setup.targets.iter().all(|t| t.user.is_none());
    if let Some(netns) = &setup.netns_only {
        println!("netns: {} (inode {})", netns.label(), netns.inode);
    }
    if let Some(mark) = setup.mark {
        println!("mark: {:#x}/{:#x}", mark.value, mark.mask);
    }
    if let Some(pid) = setup.owner.pid {
        println!("pid: {pid} (the task running when the kernel handles the packet)");
    }
    if let Some(id) = setup.owner.cgroup {
        println!("cgroup: id {id} (the cgroup of the skb's socket)");
    }
    match &setup.device {
        Some(d) => println!("device: {} (ifindex {}, netns {})", d.name, d.ifindex, d.netns),
        None if kernel_points => println!("device: any"),
        None => {}
    }
    println!("capture: {} bytes per packet", args.capture_max_size);
}

/// Completes the output, then the summary: journeys' delays, drops, totals.
fn report(args: &CaptureArgs, capture: &mut Capture, context: &Context, counters: load::Counters) -> Result<()> {
    let finished = capture.finish();
    let written = match args.write_file_rotate {
        0 => capture.delivered,
        keep => capture.delivered.min(u64::from(keep)),
    };
    if let Some((gather, _)) = &capture.gather {
        say(&format!("netcap: delays between trace points:\n{}", gather.render_hops(&context.points).trim_end()));
    }
    let totals = Totals {
        captured: capture.seen,
        written,
        counters,
        malformed: capture.malformed,
        unread: capture.unread,
        stacks_unavailable: capture.annotator.missing_stacks,
        to_file: args.write_file.is_some(),
    };
    let finished = finished.and_then(|()| capture.sink.summary(&totals.json()));
    if !capture.drops.is_empty() {
        say(&format!("netcap: drops:\n{}", capture.drops.render().trim_end()));
    }
    say(&totals.sentence());
    match capture.output_error.take().map_or(finished, Err) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|err| anyhow::Error::new(err).context("writing the output")),
    }
}
