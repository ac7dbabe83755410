//! The modes of `netcap`, each taking parsed options to a finished run.
//! `skb`, `raw` and `mbuf` plan their trace points and hand a `Setup` to
//! the one capture they share (`trace`).

mod attach;
mod capture;
mod output;
pub mod read;
mod report;
mod trace;
pub mod version;

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::cli::ListArgs;
use crate::cli::skb::Color;
use crate::cli::skb::{SkbArgs, UserArgs};
use crate::event::Lineage;
use crate::feature;
use crate::kernel;
use crate::kernel::features::{Feature, Features};
use crate::load::mbuf;
use crate::pipeline::{Annotator, DropReasons, Symbols};
use crate::plan::{self, spec, user};
use crate::signals::StopSignals;
use crate::sink::Context;
use crate::sink::pcapng::PcapngSink;
use capture::Capture;

pub fn skb(args: &SkbArgs, verbose: bool) -> Result<()> {
    let mut specs = Vec::new();
    for list in &args.function {
        specs.extend(spec::parse_list(list)?);
    }
    let mut btf = kernel::load_btf()?;
    let features = Features::probe(Some(&btf))?;
    features.require_minimum()?;
    // available_filter_functions (~60,000 lines) is read once, and only if a
    // pattern or --track's identity hooks ask whether a function can be traced.
    let traceable_functions = std::cell::OnceCell::new();
    let traceable = |name: &str| traceable_functions.get_or_init(kernel::traceable_functions).contains(name);
    let plan::Resolved { mut targets, skipped } =
        plan::resolve(&specs, &btf, &features, &kernel::tracepoint_category, &traceable)?;
    if !skipped.is_empty() {
        report::say(&format!(
            "netcap: the patterns leave out {} function(s) a kprobe cannot take{}",
            skipped.len(),
            if verbose { ":" } else { " (-v lists them)" }
        ));
        if verbose {
            for (name, why) in &skipped {
                report::say(&format!("netcap:   {name}: {why}"));
            }
        }
    }
    let reasons = DropReasons::from_btf(&btf);
    if !features.has(Feature::DropReasons) && targets.iter().any(|t| t.location_arg.is_some()) {
        report::say(&format!(
            "netcap: this kernel ({}) reports drop locations only (reasons came in 5.17): drops are named \
             NOT_SPECIFIED, and the summary groups them by location",
            features.release
        ));
    }
    if args.nft.nft
        && let Some(left_out) = plan::with_nft(&mut targets, &mut btf, &features, kernel::module)?
    {
        report::say(&format!("netcap: {left_out}"));
    }
    if let Some(selection) = args.progs.selection() {
        add_programs(&mut targets, &selection, &features)?;
    }
    if args.track.track {
        let added = plan::with_track_ends(&mut targets, &btf, &features)?;
        let hooks = plan::with_identity_hooks(&mut targets, &btf, &features, &traceable);
        report::say(&track_start_line(&added, &hooks));
    }
    let skb_filter =
        args.scope.skb_filter.as_deref().map(|text| crate::filter::skb::SkbFilter::compile(text, &btf)).transpose()?;
    let skb_fields =
        args.fields.skb_fields.as_deref().map(|text| feature::fields::SkbFields::compile(text, &btf)).transpose()?;
    drop(btf);
    if args.bench_floor {
        for target in targets.iter_mut().filter(|t| !t.is_function()) {
            target.flavours = vec![plan::Flavour::Floor];
        }
    }
    let netns = match &args.scope.netns {
        Some(given) => kernel::netns::resolve(given)?.map(|netns| (given.as_str(), netns)),
        None => None,
    };
    let device = kernel::resolve_device(&args.interface, netns.as_ref().map(|(given, n)| (*given, n)))?;
    // --nft names nftables rules where its table is: here, and in the
    // namespace --netns names (legacy iptables has no rule names to give).
    let traces_nftables = targets.iter().any(|t| t.netfilter == Some(plan::Netfilter::Nftables));
    let nft_rules = traces_nftables
        .then(|| netns.iter().map(|(_, n)| n.clone()).filter(|n| n.inode != kernel::own_netns()).collect());
    // -i already pins the namespace; without it --netns does.
    let netns_only = netns.filter(|_| device.is_none()).map(|(_, n)| n);
    let setup = Setup {
        targets,
        reasons,
        device,
        stacks: args.stack.stack_dump,
        stack_color: args.stack.stack_dump_color,
        fake_headers: args.fake_headers.fake_hdr,
        skb_data: (args.skb_data || args.skb_data_offset != 0).then_some(args.skb_data_offset),
        drop_summary_every: (args.drops.drop_summary_interval > 0)
            .then(|| Duration::from_secs(args.drops.drop_summary_interval)),
        mbuf: None,
        watched_pid: None,
        filter_in_place: features.has(Feature::ReadAnyAddress),
        task_btf: features.has(Feature::CurrentTaskBtf),
        track: args.track.track,
        track_entries: args.track.track_max_packets,
        netns_only,
        netns_names: args.scope.netns.is_some().then(kernel::netns::names),
        mark: args.scope.mark,
        owner: feature::scope::Owner {
            pid: args.scope.pid,
            cgroup: args.scope.cgroup.as_deref().map(kernel::cgroup::resolve).transpose()?.map(|(id, _)| id),
            shown: args.scope.pid.is_some() || args.scope.cgroup.is_some(),
        },
        skb_filter,
        skb_fields,
        ct: args.ct.ct,
        nft_rules,
        features,
    };
    trace::trace(&args.capture, setup, verbose)
}

/// --bpf-progs: the loaded tc and XDP programs asked for become an entry and
/// an exit point each. Programs without BTF cannot take fentry: named, left out.
fn add_programs(targets: &mut Vec<plan::Target>, selection: &[String], features: &Features) -> Result<()> {
    let loaded = kernel::progs::loaded();
    let chosen = kernel::progs::select(&loaded, selection).map_err(anyhow::Error::msg)?;
    let (traceable, without_btf): (Vec<_>, Vec<_>) = chosen.into_iter().partition(|p| p.has_btf);
    if !without_btf.is_empty() {
        let names: Vec<String> = without_btf.iter().map(|p| format!("{}[{}]", p.function, p.id)).collect();
        report::say(&format!(
            "netcap: --bpf-progs: {} carry no BTF, which fentry needs: not traced (build them with clang -g)",
            names.join(", ")
        ));
    }
    plan::with_programs(targets, &traceable, features)?;
    if traceable.is_empty() {
        if targets.is_empty() {
            anyhow::bail!(
                "--bpf-progs{}: no program to trace is loaded at tc or XDP (loaded: {}); attach one, or name trace points with -f",
                if selection.is_empty() { String::new() } else { format!("={}", selection.join(",")) },
                kernel::progs::listing(&loaded)
            );
        }
        report::say("netcap: --bpf-progs: no program to trace is loaded at tc or XDP");
        return Ok(());
    }
    let owned: Vec<kernel::progs::Program> = traceable.into_iter().cloned().collect();
    report::say(&format!("netcap: --bpf-progs: tracing {} at entry and exit", kernel::progs::listing(&owned)));
    Ok(())
}

/// What --track attached besides the user's points, and what it cannot
/// follow on this kernel.
fn track_start_line(free_points: &[String], hooks: &plan::IdentityHooks) -> String {
    let mut line = String::from("netcap: --track: matched packets are followed until the kernel frees them");
    if !free_points.is_empty() {
        line += &format!(" ({} attached for that, not shown)", free_points.join(", "));
    }
    let kinds = |lineages: Vec<Lineage>| {
        let mut kinds: Vec<&str> = lineages.into_iter().map(lineage_plural).collect();
        kinds.dedup();
        kinds.join(", ")
    };
    if !hooks.hooked.is_empty() {
        line += &format!(", and into the {} made from them", kinds(hooks.hooked.iter().map(|h| h.1).collect()));
    }
    if !hooks.missing.is_empty() {
        let mut why: Vec<&str> = hooks.missing.iter().map(|(_, _, why)| why.as_str()).collect();
        why.dedup();
        let names: Vec<&str> = hooks.missing.iter().map(|(name, _, _)| name.as_str()).collect();
        let missing = kinds(hooks.missing.iter().map(|h| h.1).collect());
        line += &format!("; not followed here: {missing} ({}: {})", names.join(", "), why.join("; "));
    }
    line
}

fn lineage_plural(lineage: Lineage) -> &'static str {
    match lineage {
        Lineage::Matched => "packets",
        Lineage::Clone => "clones",
        Lineage::Copy => "copies",
        Lineage::Segment => "GSO segments",
        Lineage::Merged => "GRO merges",
    }
}

/// `netcap raw` and `netcap mbuf`: packets inside a process.
pub fn user(args: &UserArgs, mode: user::Mode, mbuf_layout: Option<&str>, verbose: bool) -> Result<()> {
    if args.pid == Some(std::process::id() as i32) {
        anyhow::bail!(
            "-p {} is netcap itself: it would trace its own output; give the traced program's PID",
            std::process::id()
        );
    }
    let features = Features::probe(kernel::load_btf().ok().as_ref())?;
    features.require_minimum()?;
    let targets = user::resolve(&args.function, mode, args.pid)?;
    let bursts = targets.iter().any(|t| t.user.as_ref().is_some_and(|u| u.form == user::PacketForm::MbufArray));
    if bursts && !features.has(Feature::BpfLoop) {
        report::say(&format!(
            "netcap: {}: bursts are walked by a bounded loop of at most {} mbufs",
            features.why_missing(Feature::BpfLoop),
            user::MBUF_BURST_MAX
        ));
    }
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
        // User-space programs read the task through helpers every kernel has.
        task_btf: false,
        track: false,
        track_entries: 0,
        netns_only: None,
        netns_names: None,
        mark: None,
        owner: Default::default(),
        skb_filter: None,
        skb_fields: None,
        ct: false,
        nft_rules: None,
        features,
    };
    trace::trace(&args.capture, setup, verbose)
}

/// `netcap features`: the table the planner uses, for this kernel. It runs
/// where netcap cannot (that is when it is most wanted) and says why.
pub fn features(json: bool) -> Result<()> {
    let btf = kernel::load_btf().ok();
    let features = Features::probe(btf.as_ref())?;
    if json {
        println!("{}", features.json());
    } else {
        print!("{}", features.text());
        if let Err(err) = features.require_minimum() {
            println!("netcap cannot run here: {err}");
        }
    }
    Ok(())
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
    /// The kernel lets BPF read any address (`bpf_rdonly_cast(ptr, 0)`, 6.17 on).
    filter_in_place: bool,
    /// The kernel has bpf_get_current_task_btf() (5.11 on).
    task_btf: bool,
    /// What the kernel can do, probed at start.
    features: Features,
    /// --track: follow each matched skb until the kernel frees it.
    track: bool,
    /// --track: most skbs followed at once.
    track_entries: u32,
    /// --netns without -i: only packets of devices in it.
    netns_only: Option<kernel::netns::Netns>,
    /// --netns given: namespace names to show with each event.
    netns_names: Option<feature::scope::NetnsNames>,
    /// --mark: only packets whose mark, masked, is the value.
    mark: Option<feature::scope::Mark>,
    /// --pid, --cgroup.
    owner: feature::scope::Owner,
    /// --skb-filter, translated.
    skb_filter: Option<crate::filter::skb::SkbFilter>,
    /// --skb-fields, resolved.
    skb_fields: Option<feature::fields::SkbFields>,
    /// --ct: show each skb's conntrack entry.
    ct: bool,
    /// --nft: the namespaces besides netcap's own where its table marks
    /// packets for nf_tables' rule reports.
    nft_rules: Option<Vec<kernel::netns::Netns>>,
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
        netns_names: None,
        skb_fields: None,
        cgroup_paths: None,
    };
    let out = BufWriter::new(File::create(output).with_context(|| format!("creating {}", output.display()))?);
    let sink = Box::new(PcapngSink::new(out, &context, 256)?);
    let annotator = Annotator::new(DropReasons::default(), vec![false], Symbols::none());
    let mut capture = Capture::new(sink, annotator, None, 0);
    let stop = StopSignals::none();
    let start = Instant::now();
    for n in 0..count {
        record[..8].copy_from_slice(&(n * 1000).to_ne_bytes());
        capture.take(&record, &context, &stop, |_| None);
        // The ring buffer hands records over in batches; each ends with a flush.
        if n % 4096 == 4095 {
            capture.flush(&context, false);
        }
    }
    capture.flush(&context, true);
    capture.finish()?;
    let seconds = start.elapsed().as_secs_f64();
    println!("{} events in {seconds:.3} s: {:.0} events/s", capture.delivered, capture.delivered as f64 / seconds);
    Ok(())
}

/// Colors only on a terminal, and never when NO_COLOR is set.
fn colors_wanted() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && io::stdout().is_terminal()
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
