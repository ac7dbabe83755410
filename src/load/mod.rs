//! Loading and attaching: one opened copy of the BPF object per trace
//! point (its `.rodata` holds that point's configuration), maps shared
//! through the first copy, each point attached by the first flavour that
//! the kernel accepts. Dropping a `Session` detaches and unloads everything.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::Mutex;

use anyhow::{Context, Result, anyhow, bail};
use libbpf_rs::{Link, Map, MapCore, MapFlags, Object, ObjectBuilder, ProgramMut};

mod filter_hook;
pub mod mbuf;
mod removal;

use crate::bpf::types::{netcap_config, netcap_event};
use crate::event::Lineage;
use crate::feature;
use crate::filter::Filter;
use crate::kernel::Device;
use crate::kernel::progs::Hook;
use crate::plan::user::{PacketForm, Probe};
use crate::plan::{Flavour, Netfilter, Target};

/// Must match NETCAP_NEST_MAX in bpf/netcap.h.
const NEST_MAX: u32 = 4;
/// Must match NETCAP_NO_ARG in bpf/netcap.h.
const NO_ARG: u32 = 0xff;

pub struct LoadOptions {
    /// The BPF object: `EMBEDDED_OBJECT`, or one compiled with user extensions.
    pub object: &'static [u8],
    pub capture_max: u32,
    pub device: Option<Device>,
    /// Ring buffer size in bytes (a power of two).
    pub ring_bytes: u32,
    pub filter: Option<Filter>,
    /// Record the kernel stack of each event (-S).
    pub stacks: bool,
    /// Make up missing L2/L3 headers from the socket (--fake-hdr).
    pub fake_headers: bool,
    /// Read the packet from skb->data plus this offset (--skb-data).
    pub skb_data: Option<i32>,
    /// netcap mbuf: where struct rte_mbuf keeps its fields.
    pub mbuf: Option<mbuf::MbufOffsets>,
    /// Run the filter on the packet where it lies when all it may read is
    /// linear (the kernel must allow `bpf_rdonly_cast(ptr, 0)`).
    pub filter_in_place: bool,
    /// With --ext-action: bytes of the user's struct, rounded up to 8.
    pub user_struct: Option<u32>,
    /// The kernel has bpf_get_current_task_btf() (5.11 on).
    pub task_btf: bool,
    /// The kernel has bpf_loop (5.17 on); without it mbuf bursts take a bounded loop.
    pub bpf_loop: bool,
    /// The kernel has uprobe-multi links (6.6 on), which libbpf's USDT support uses.
    pub uprobe_multi: bool,
    /// --track: follow each matched skb until the kernel frees it.
    pub track: bool,
    /// --track: most skbs followed at once (the LRU table's size).
    pub track_entries: u32,
    /// --netns without -i: only packets of devices in the namespace of this inode.
    pub netns_only: Option<u32>,
    /// --mark: only packets whose mark, masked, is the value.
    pub mark: Option<crate::feature::scope::Mark>,
    /// --skb-filter: the body of netcap_filter_skb.
    pub skb_filter: Option<Vec<crate::filter::ebpf::EbpfInsn>>,
    /// --pid, --cgroup: who the packet belongs to.
    pub owner: crate::feature::scope::Owner,
    /// --ct: record each skb's conntrack entry.
    pub ct: bool,
    /// --skb-fields: where each field is (netcap_config.fields, field_count).
    pub skb_fields: Option<([crate::bpf::types::netcap_field; 8], u32)>,
}

/// Distinct stacks the stack map can hold with -S.
const STACK_ENTRIES: u32 = 16384;

/// One attached trace point.
pub struct Attached {
    pub target: Target,
    pub flavour: Flavour,
    /// Why better flavours were not used.
    pub fallbacks: Vec<(Flavour, String)>,
}

/// Functions of `-f` patterns, attached together.
pub struct Group {
    pub flavour: Flavour,
    pub attached: usize,
    /// Functions the kernel refused one by one (with KprobeEach).
    pub refused: Vec<String>,
    /// Better mechanisms the kernel lacks (the plan's `passed_over`), then
    /// those that failed here.
    pub fallbacks: Vec<(Flavour, String)>,
}

/// Everything netcap has in the kernel. Links drop before objects; they can
/// also be dropped alone (`detach`), while the ring buffer is still read.
pub struct Session {
    pub attached: Vec<Attached>,
    pub group: Option<Group>,
    links: std::cell::RefCell<Vec<Link>>,
    /// The pattern functions' links, and the index of their object.
    group_links: std::cell::RefCell<Vec<Link>>,
    group_object: Option<usize>,
    objects: Vec<Object>,
}

/// What `Session::detach` did with many per-function kprobes.
pub enum Removal {
    /// Process `pid` removes them.
    InBackground { kprobes: usize, pid: i32 },
    /// Removed already, in place, because the background could not be had.
    InPlace { kprobes: usize, why: String },
}

/// libbpf's own messages (verifier logs among them), kept for --verbose.
static LIBBPF_LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// With --verbose, keeps every libbpf message for the error report;
/// otherwise silences libbpf (fallbacks are reported by netcap itself), so
/// that start-up does not format and store thousands of debug lines.
pub fn route_libbpf_messages(verbose: bool) {
    fn keep(_level: libbpf_rs::PrintLevel, message: String) {
        if let Ok(mut log) = LIBBPF_LOG.lock() {
            log.push(message.trim_end().to_string());
        }
    }
    libbpf_rs::set_print(verbose.then_some((libbpf_rs::PrintLevel::Debug, keep as libbpf_rs::PrintCallback)));
}

/// Takes what libbpf said since the last call.
pub fn drain_libbpf_messages() -> Vec<String> {
    LIBBPF_LOG.lock().map(|mut log| std::mem::take(&mut *log)).unwrap_or_default()
}

impl Session {
    pub fn attach(
        targets: &[Target],
        options: &LoadOptions,
        mut progress: impl FnMut(Progress<'_>),
    ) -> Result<Session> {
        filter_hook::register_handlers()?;
        if targets.iter().any(|t| t.flavours.contains(&Flavour::Usdt)) {
            filter_hook::set_usdt_uprobe_multi(options.uprobe_multi);
        }
        let mut session = Session {
            attached: Vec::new(),
            group: None,
            links: Default::default(),
            group_links: Default::default(),
            group_object: None,
            objects: Vec::new(),
        };
        let (grouped, singles): (Vec<Indexed<'_>>, Vec<Indexed<'_>>) = targets
            .iter()
            .enumerate()
            .map(|(index, target)| (index as u16, target))
            .partition(|(_, target)| target.flavours.first().is_some_and(|f| f.is_group()));
        // The first object creates the maps the others share; the others
        // load side by side (libbpf parses the kernel's BTF for each).
        let mut outcomes = Vec::with_capacity(singles.len());
        if let Some(&(index, target)) = singles.first() {
            outcomes.push(attach_best(target, index, options, None));
        }
        if let Some(Ok(first)) = outcomes.first() {
            let shared = &first.object;
            outcomes.extend(in_parallel(&singles[1..], |&(index, target)| {
                attach_best(target, index, options, Some(shared))
            }));
        }
        for outcome in outcomes {
            let Loaded { object, flavour, links, fallbacks, target } = outcome?;
            session.objects.push(object);
            session.links.get_mut().extend(links);
            let attached = Attached { target: target.clone(), flavour, fallbacks };
            progress(Progress::Attached(&attached));
            session.attached.push(attached);
        }
        if !grouped.is_empty() {
            let (object, group, links) = attach_group(&grouped, options, session.objects.first(), &mut progress)?;
            session.group_object = Some(session.objects.len());
            session.objects.push(object);
            session.group_links.get_mut().extend(links);
            progress(Progress::Group(&group));
            session.group = Some(group);
        }
        Ok(session)
    }

    /// Counters kept per CPU by the BPF programs, summed (enum netcap_counter).
    pub fn counters(&self) -> Counters {
        let Some(map) = self.objects.first().and_then(|o| map_named(o, "netcap_counters_map").ok()) else {
            return Counters::default();
        };
        let read = |index: u32| -> u64 {
            map.lookup_percpu(&index.to_ne_bytes(), MapFlags::ANY)
                .ok()
                .flatten()
                .map(|cpus| cpus.iter().map(|v| u64::from_ne_bytes(v[..8].try_into().unwrap_or([0; 8]))).sum())
                .unwrap_or(0)
        };
        Counters {
            lost: read(0),
            nested: read(1),
            no_header: read(2),
            read_fault: read(3),
            outside: read(4),
            track_full: read(5),
            track_started: read(6),
            track_ended: read(7),
            track_inherited: read(8),
            track_merged: read(9),
            track_left: self.tracks_left(),
        }
    }

    /// --track: skbs still followed (entries left in the map).
    fn tracks_left(&self) -> u64 {
        self.objects
            .first()
            .and_then(|o| map_named(o, "netcap_tracks_map").ok())
            .map_or(0, |map| map.keys().count() as u64)
    }

    /// The return addresses of stack `id`, innermost first.
    pub fn stack(&self, id: i32) -> Option<Vec<u64>> {
        let map = map_named(self.objects.first()?, "netcap_stacks_map").ok()?;
        let id = u32::try_from(id).ok()?;
        let bytes = map.lookup(&id.to_ne_bytes(), MapFlags::ANY).ok()??;
        Some(
            bytes
                .chunks_exact(8)
                .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
                .take_while(|&address| address != 0)
                .collect(),
        )
    }

    /// Detaches every program: no event is written after this returns, and
    /// the maps (ring buffer, counters, stacks) stay readable. Many
    /// per-function kprobes are stopped at once and left to a process that
    /// removes them (see `removal`).
    pub fn detach(&self) -> Option<Removal> {
        self.links.borrow_mut().clear();
        let links = std::mem::take(&mut *self.group_links.borrow_mut());
        let kprobes = links.len();
        let per_function = self.group.as_ref().is_some_and(|g| g.flavour != Flavour::KprobeMulti);
        if !per_function || kprobes < removal::IN_BACKGROUND_FROM {
            return None;
        }
        let object = self.group_object.and_then(|i| self.objects.get(i))?;
        // On failure the links were dropped, and so detached in place.
        Some(match removal::remove_in_background(object, links) {
            Ok(pid) => Removal::InBackground { kprobes, pid },
            Err(err) => Removal::InPlace { kprobes, why: format!("{err:#}") },
        })
    }

    pub fn events_map(&self) -> Result<Map<'_>> {
        map_named(self.objects.first().ok_or_else(|| anyhow!("nothing attached"))?, "netcap_events_map")
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Detach every link before the programs and maps go away.
        self.links.get_mut().clear();
        self.group_links.get_mut().clear();
        self.objects.clear();
    }
}

/// A target with its trace index.
type Indexed<'a> = (u16, &'a Target);

/// One trace point loaded and attached by the best flavour the kernel took.
struct Loaded<'a> {
    target: &'a Target,
    object: Object,
    flavour: Flavour,
    links: Vec<Link>,
    /// Why better flavours were not used.
    fallbacks: Vec<(Flavour, String)>,
}

/// Tries the target's flavours in order.
fn attach_best<'a>(
    target: &'a Target,
    index: u16,
    options: &LoadOptions,
    shared: Option<&Object>,
) -> Result<Loaded<'a>> {
    // Each note is whole: "no fentry here: …" or "fentry failed: …".
    let mut failures = target.passed_over.clone();
    for &flavour in &target.flavours {
        match attach_one(target, index, flavour, options, shared) {
            Ok((object, links)) => return Ok(Loaded { target, object, flavour, links, fallbacks: failures }),
            Err(err) => failures.push((flavour, format!("{} failed: {err:#}", flavour.label()))),
        }
    }
    Err(attach_failure(target, &failures))
}

/// `work` applied to every item on up to one thread per CPU; results in item order.
fn in_parallel<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len()).min(8);
    if threads <= 1 {
        return items.iter().map(work).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let at = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(at) else { break };
                    let result = work(item);
                    results.lock().unwrap_or_else(|p| p.into_inner())[at] = Some(result);
                }
            });
        }
    });
    results.into_inner().unwrap_or_else(|p| p.into_inner()).into_iter().flatten().collect()
}

/// What `Session::attach` reports as it goes.
pub enum Progress<'a> {
    Attached(&'a Attached),
    /// Pattern functions attached one by one so far, of all.
    Counting(usize, usize),
    Group(&'a Group),
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Events dropped because the ring buffer was full.
    pub lost: u64,
    /// Events dropped because programs nested too deeply on one CPU.
    pub nested: u64,
    /// skbs skipped: neither MAC nor network header set.
    pub no_header: u64,
    /// Packets whose bytes could not be read.
    pub read_fault: u64,
    /// skbs whose packet start lay outside their data (e.g. a --skb-data-offset past the end).
    pub outside: u64,
    /// Packets --track could not follow: the map refused them.
    pub track_full: u64,
    /// --track: skbs put in the map, and taken out (freed, merged, stale).
    pub track_started: u64,
    pub track_ended: u64,
    /// --track: clones, copies and segments given their parent's id.
    pub track_inherited: u64,
    /// --track: followed packets GRO merged into another.
    pub track_merged: u64,
    /// --track: skbs still followed when the counters were read.
    pub track_left: u64,
}

impl Counters {
    /// --track: entries the full map dropped to make room (LRU), so packets
    /// no longer followed: whatever went in and neither came out nor is left.
    pub fn track_evicted(&self) -> u64 {
        self.track_started.saturating_sub(self.track_ended).saturating_sub(self.track_left)
    }
}

impl LoadOptions {
    /// The sections these options ask of every kernel skb point.
    fn wanted(&self) -> feature::Wanted {
        feature::Wanted {
            stacks: self.stacks,
            track: self.track,
            fields: self.skb_fields.is_some(),
            owner: self.owner.shown,
            ct: self.ct,
        }
    }
}

/// Per-object settings written into `.rodata`.
struct ObjectConfig {
    trace_index: u16,
    skb_arg: u32,
    ext_arg: Option<u32>,
    reason_arg: Option<u32>,
    location_arg: Option<u32>,
    ret_arg: Option<u32>,
    /// User-space points: how the packet is handed over, and the length/count argument.
    form: Option<(PacketForm, Option<u32>)>,
    /// The record sections its events carry (feature::sections).
    sections: u32,
    /// The skb is freed here: with --track, its track ends.
    frees: bool,
    /// Attached only to end tracks (--track at a free point not asked for).
    silent: bool,
    /// --track's identity hook: what the function's result is to its skb.
    inherit: Option<Lineage>,
    /// --bpf-progs: the hook of the program traced (its own entry programs).
    program_hook: Option<Hook>,
    /// --nft: nft_do_chain or ipt_do_table, by programs of their own.
    netfilter: Option<Netfilter>,
}

impl ObjectConfig {
    fn of(target: &Target, trace_index: u16) -> ObjectConfig {
        ObjectConfig {
            form: target.user.as_ref().map(|u| (u.form, u.len_arg)),
            trace_index,
            skb_arg: target.skb_arg,
            ext_arg: target.extra_arg,
            reason_arg: target.reason_arg,
            location_arg: target.location_arg,
            ret_arg: target.ret_arg,
            sections: 0,
            frees: target.frees,
            silent: target.hidden,
            inherit: target.inherit,
            program_hook: target.program.as_ref().map(|p| p.hook),
            netfilter: target.netfilter,
        }
    }
}

/// The object compiled at build time (no user extensions).
pub static EMBEDDED_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/netcap.bpf.o"));

/// The program that implements a flavour for packets of this form (mbuf
/// arrays have programs of their own: by bpf_loop, else a bounded loop).
fn program_for(flavour: Flavour, config: &ObjectConfig, bpf_loop: bool) -> &'static str {
    match (flavour, config.program_hook) {
        (Flavour::Fentry, Some(Hook::Tc)) => return "netcap_fentry_tc",
        (Flavour::Fexit, Some(Hook::Tc)) => return "netcap_fexit_tc",
        (Flavour::Fentry, Some(Hook::Xdp)) => return "netcap_fentry_xdp",
        (Flavour::Fexit, Some(Hook::Xdp)) => return "netcap_fexit_xdp",
        (Flavour::Fexit, None) => match config.netfilter {
            Some(Netfilter::Nftables) => return "netcap_fentry_nft",
            Some(Netfilter::Xtables { .. }) => return "netcap_fentry_xt",
            None => {}
        },
        _ => {}
    }
    match (flavour, config.form.map(|(form, _)| form), bpf_loop) {
        (Flavour::Uprobe, Some(PacketForm::MbufArray), true) => "netcap_uprobe_burst",
        (Flavour::Uprobe, Some(PacketForm::MbufArray), false) => "netcap_uprobe_burst_bounded",
        (Flavour::Usdt, Some(PacketForm::MbufArray), true) => "netcap_usdt_burst",
        (Flavour::Usdt, Some(PacketForm::MbufArray), false) => "netcap_usdt_burst_bounded",
        _ => program_name(flavour),
    }
}

/// The program that implements each flavour.
fn program_name(flavour: Flavour) -> &'static str {
    match flavour {
        Flavour::TpBtfPaged => "netcap_tp_btf_paged",
        Flavour::TpBtf => "netcap_tp_btf",
        Flavour::RawTp => "netcap_raw_tp",
        Flavour::Fentry => "netcap_fentry",
        Flavour::Kprobe => "netcap_kprobe",
        Flavour::Floor => "netcap_tp_btf_floor",
        Flavour::KprobeMulti => "netcap_kprobe_multi",
        Flavour::KprobeEach => "netcap_kprobe_cookie",
        Flavour::KprobeByAddress => "netcap_kprobe_addr",
        Flavour::Fexit => "netcap_fexit",
        Flavour::Kretprobe => "netcap_kretprobe",
        Flavour::Uprobe => "netcap_uprobe",
        Flavour::Usdt => "netcap_usdt",
    }
}

/// A kretprobe needs its entry half too.
const KRETPROBE_ENTRY: &str = "netcap_kretprobe_entry";

/// --nft's exit half, for both engines: it adds the verdict to the record its entry made.
const NETFILTER_EXIT: &str = "netcap_fexit_netfilter";
/// --nft's rules: nf_tables' report of the rule that decided, into the same record.
const NFT_RULE: &str = "netcap_fentry_nft_rule";
const NFT_RULE_FUNCTION: &str = "nft_trace_notify";

/// The programs loaded and attached with --nft's entry, in its object:
/// the exit for both engines, and nf_tables' rule report for nftables.
fn netfilter_companions(engine: Option<Netfilter>) -> &'static [&'static str] {
    match engine {
        Some(Netfilter::Nftables) => &[NETFILTER_EXIT, NFT_RULE],
        Some(Netfilter::Xtables { .. }) => &[NETFILTER_EXIT],
        None => &[],
    }
}

/// Maps every opened copy shares with the first.
const SHARED_MAPS: [&str; 8] = [
    "netcap_events_map",
    "netcap_scratch_map",
    "netcap_nest_map",
    "netcap_counters_map",
    "netcap_stacks_map",
    "netcap_entries_map",
    "netcap_tracks_map",
    "netcap_live_map",
];

fn map_named<'a>(object: &'a Object, name: &str) -> Result<Map<'a>> {
    object.maps().find(|m| m.name() == name).ok_or_else(|| anyhow!("BPF object has no map {name}"))
}

fn program_named<'a>(object: &'a Object, name: &str) -> Result<ProgramMut<'a>> {
    object.progs_mut().find(|p| p.name() == name).ok_or_else(|| anyhow!("BPF object has no program {name}"))
}

/// The `.rodata` configuration of one opened copy, as the C struct's bytes.
fn config_bytes(config: &ObjectConfig, options: &LoadOptions) -> netcap_config {
    let sections = feature::layout(config.sections, options.user_struct);
    let mut rodata = netcap_config {
        sections: sections.bits,
        sections_len: sections.len,
        section_at: sections.at,
        trace_index: u32::from(config.trace_index),
        skb_arg: config.skb_arg,
        ext_arg: config.ext_arg.unwrap_or(NO_ARG),
        reason_arg: config.reason_arg.unwrap_or(NO_ARG),
        location_arg: config.location_arg.unwrap_or(NO_ARG),
        ret_arg: config.ret_arg.unwrap_or(NO_ARG),
        capture_max: options.capture_max,
        filter: u32::from(options.filter.is_some()),
        stack: u32::from(options.stacks),
        fake_hdr: u32::from(options.fake_headers),
        skb_data: u32::from(options.skb_data.is_some()),
        skb_data_offset: options.skb_data.unwrap_or(0),
        filter_in_place: u32::from(options.filter_in_place),
        task_btf: u32::from(options.task_btf),
        track: u32::from(options.track),
        frees: u32::from(config.frees),
        silent: u32::from(config.silent),
        inherit: config.inherit.map_or(0, Lineage::to_kernel),
        // User space also polls on a timer; wake it early when an eighth is full.
        wakeup_bytes: options.ring_bytes / 8,
        ..Default::default()
    };
    if let Some(device) = &options.device {
        rodata.ifindex = device.ifindex;
        rodata.netns = device.netns;
    }
    if let Some(inode) = options.netns_only {
        rodata.netns_only = 1;
        rodata.netns = inode;
    }
    if let Some(mark) = options.mark {
        (rodata.mark_value, rodata.mark_mask) = (mark.value, mark.mask);
    }
    rodata.skb_filter = u32::from(options.skb_filter.is_some());
    rodata.pid = options.owner.pid.unwrap_or(0);
    rodata.cgroup_id = options.owner.cgroup.unwrap_or(0);
    if let Some((fields, count)) = options.skb_fields {
        (rodata.fields, rodata.field_count) = (fields, count);
    }
    if let Some(engine) = config.netfilter {
        // A waiting record: header, sections and up to capture_max bytes of
        // packet, keyed by the call's nft_pktinfo, or its skb.
        rodata.defer = 1;
        match engine {
            Netfilter::Nftables => {
                rodata.defer_arg = 0;
                rodata.nft_skip_own = 1;
            }
            Netfilter::Xtables { table_arg } => {
                rodata.defer_arg = config.skb_arg;
                rodata.xt_table_arg = table_arg;
            }
        }
        rodata.pending_size = std::mem::size_of::<netcap_event>() as u32 + sections.len + options.capture_max;
    }
    rodata.len_arg = NO_ARG;
    if let Some((form, len_arg)) = config.form {
        // enum netcap_packet_form
        rodata.packet_form = match form {
            PacketForm::Buffer => 1,
            PacketForm::Mbuf => 2,
            PacketForm::MbufArray => 3,
        };
        rodata.len_arg = len_arg.unwrap_or(NO_ARG);
    }
    if let Some(offsets) = options.mbuf {
        rodata.mbuf = offsets.to_config();
    }
    rodata
}

/// Opens a copy of the object, configured, maps shared with `shared`, with
/// only the program of `flavour` left to load (attached to `attach_name`,
/// a function of the kernel or of the BPF program `attach_prog`, where the
/// flavour needs its target at load time), and loads it.
fn load_object(
    config: &ObjectConfig,
    flavour: Flavour,
    attach_name: Option<&str>,
    attach_prog: Option<BorrowedFd<'_>>,
    options: &LoadOptions,
    shared: Option<&Object>,
) -> Result<Object> {
    let mut open = ObjectBuilder::default().open_memory(options.object).context("opening the BPF object")?;

    let rodata = config_bytes(config, options);
    {
        let mut map = open
            .maps_mut()
            .find(|m| m.name().to_string_lossy().ends_with(".rodata.config"))
            .ok_or_else(|| anyhow!("BPF object has no .rodata.config"))?;
        let value = map.initial_value_mut().ok_or_else(|| anyhow!(".rodata.config has no value"))?;
        let size = std::mem::size_of::<netcap_config>();
        if value.len() < size {
            bail!(".rodata.config holds {} bytes, not the {size} of struct netcap_config", value.len());
        }
        // SAFETY: netcap_config is repr(C) plain old data of `size` bytes.
        let bytes = unsafe { std::slice::from_raw_parts((&rodata as *const netcap_config).cast::<u8>(), size) };
        value[..size].copy_from_slice(bytes);
    }

    for mut map in open.maps_mut() {
        let name = map.name().to_string_lossy().into_owned();
        // libbpf's USDT maps serve the usdt programs only, the address → cookie
        // map the by-address kprobes only: other copies do not create them.
        let serves_another = (name.starts_with("__bpf_usdt") && flavour != Flavour::Usdt)
            || (name == "netcap_cookies_map" && flavour != Flavour::KprobeByAddress);
        if serves_another {
            map.set_autocreate(false)?;
            continue;
        }
        if name == "netcap_cookies_map" {
            map.set_max_entries(COOKIES_BY_ADDRESS)?;
        }
        if name == "netcap_pending_map" && config.netfilter.is_some() {
            // Calls in flight at once: one per CPU, and a few nested (a
            // reject's reply goes through the output chains inside the call).
            map.set_value_size(rodata.pending_size)?;
            map.set_max_entries(crate::kernel::possible_cpus() as u32 * NEST_MAX)?;
        }
        match shared {
            Some(first) if SHARED_MAPS.contains(&name.as_str()) => map.reuse_fd(map_named(first, &name)?.as_fd())?,
            Some(_) => {}
            None => match name.as_str() {
                "netcap_scratch_map" => map.set_max_entries(crate::kernel::possible_cpus() as u32 * NEST_MAX)?,
                "netcap_events_map" => map.set_max_entries(options.ring_bytes)?,
                "netcap_stacks_map" => map.set_max_entries(if options.stacks { STACK_ENTRIES } else { 1 })?,
                "netcap_tracks_map" => map.set_max_entries(if options.track { options.track_entries } else { 1 })?,
                _ => {}
            },
        }
    }

    let chosen = program_for(flavour, config, options.bpf_loop);
    for mut prog in open.progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        let second_half = (flavour == Flavour::Kretprobe && name == KRETPROBE_ENTRY)
            || netfilter_companions(config.netfilter).contains(&name.as_str());
        let load = name == chosen || second_half;
        prog.set_autoload(load);
        // Only tracing flavours have an attach name, so a kretprobe's entry never gets one.
        let attach_name = if name == NFT_RULE { Some(NFT_RULE_FUNCTION) } else { attach_name };
        if load && let Some(target) = attach_name {
            prog.set_attach_target(attach_prog.map_or(0, |fd| fd.as_raw_fd()), Some(target.to_string()))?;
        }
    }

    let mut replacements = Vec::new();
    if let Some(filter) = &options.filter {
        let raw = filter.raw.as_ref().map_or_else(filter_hook::never, |v| v.translated.clone());
        replacements.push((filter_hook::STUB_ETHERNET, filter.ethernet.translated.clone()));
        replacements.push((filter_hook::STUB_RAW, raw));
    }
    if let Some(skb_filter) = &options.skb_filter {
        replacements.push((filter_hook::STUB_SKB, skb_filter.clone()));
    }
    if !replacements.is_empty() {
        filter_hook::arm(&open, replacements);
    }
    let loaded = open.load();
    let splice_error = filter_hook::disarm();
    loaded.map_err(|err| match splice_error {
        Some(splice) => anyhow!("splicing the filter: {splice}"),
        None => anyhow!("loading: {}", root_cause(&err)),
    })
}

fn attach_one(
    target: &Target,
    index: u16,
    flavour: Flavour,
    options: &LoadOptions,
    shared: Option<&Object>,
) -> Result<(Object, Vec<Link>)> {
    let name = target.spec.name.as_str();
    let needs_target =
        matches!(flavour, Flavour::TpBtfPaged | Flavour::TpBtf | Flavour::Fentry | Flavour::Fexit | Flavour::Floor);
    let config = ObjectConfig {
        sections: feature::sections(target, flavour, options.wanted()),
        ..ObjectConfig::of(target, index)
    };
    // --bpf-progs: fentry/fexit on another program, by its BTF function's name.
    let program_fd = match &target.program {
        Some(program) => Some(
            crate::kernel::progs::open(program.id)
                .with_context(|| format!("opening BPF program {} (unloaded since?)", program.id))?,
        ),
        None => None,
    };
    let attach_name = match &target.program {
        Some(program) => Some(program.function.as_str()),
        None => needs_target.then_some(name),
    };
    let object = load_object(&config, flavour, attach_name, program_fd.as_ref().map(|fd| fd.as_fd()), options, shared)?;
    let prog = program_named(&object, program_for(flavour, &config, options.bpf_loop))?;
    let attach = |result: libbpf_rs::Result<Link>| result.map_err(|err| anyhow!("attaching: {}", root_cause(&err)));
    let links = match flavour {
        Flavour::Fexit if config.netfilter.is_some() => {
            let mut links = vec![attach(prog.attach_trace())?];
            for companion in netfilter_companions(config.netfilter) {
                links.push(attach(program_named(&object, companion)?.attach_trace())?);
            }
            links
        }
        Flavour::TpBtfPaged | Flavour::TpBtf | Flavour::Fentry | Flavour::Fexit | Flavour::Floor => {
            vec![attach(prog.attach_trace())?]
        }
        Flavour::RawTp => vec![attach(prog.attach_raw_tracepoint(name))?],
        Flavour::Kprobe => vec![attach(prog.attach_kprobe(false, name))?],
        Flavour::Kretprobe => vec![
            attach(program_named(&object, KRETPROBE_ENTRY)?.attach_kprobe(false, name))?,
            attach(prog.attach_kprobe(true, name))?,
        ],
        Flavour::Uprobe | Flavour::Usdt => {
            let user = target.user.as_ref().ok_or_else(|| anyhow!("{name} is not a user-space point"))?;
            // -1: every process running the binary, also those started later.
            let pid = user.pid.unwrap_or(-1);
            let link = match &user.probe {
                Probe::Function(function) => {
                    let opts = libbpf_rs::UprobeOpts { func_name: Some(function.clone()), ..Default::default() };
                    prog.attach_uprobe_with_opts(pid, &user.binary, 0, opts)
                }
                Probe::Usdt { provider, name } => prog.attach_usdt(pid, &user.binary, provider, name),
            };
            vec![attach(link)?]
        }
        Flavour::KprobeMulti | Flavour::KprobeEach | Flavour::KprobeByAddress => {
            bail!("{} attaches groups only", flavour.label())
        }
    };
    Ok((object, links))
}

/// The cookie of one pattern function: see NETCAP_COOKIE_* in bpf/netcap.h.
fn cookie(index: u16, target: &Target) -> u64 {
    u64::from(index) | u64::from(target.skb_arg) << 16 | u64::from(target.reason_arg.unwrap_or(NO_ARG)) << 24
}

/// Attaches every function of the patterns with one program, by the first
/// of the plan's flavours that works: one kprobe-multi link, else one kprobe
/// each with its cookie, else one kprobe each told apart by address
/// (functions the kernel refuses one by one are skipped and named).
fn attach_group(
    grouped: &[(u16, &Target)],
    options: &LoadOptions,
    shared: Option<&Object>,
    progress: &mut impl FnMut(Progress<'_>),
) -> Result<(Object, Group, Vec<Link>)> {
    let config = ObjectConfig {
        trace_index: 0,
        skb_arg: 0,
        ext_arg: None,
        reason_arg: None,
        location_arg: None,
        ret_arg: None,
        form: None,
        frees: false,
        silent: false,
        inherit: None,
        program_hook: None,
        netfilter: None,
        sections: grouped
            .iter()
            .fold(0, |bits, (_, t)| bits | feature::sections(t, Flavour::KprobeMulti, options.wanted())),
    };
    let first = grouped.first().map(|(_, t)| *t).ok_or_else(|| anyhow!("no pattern functions"))?;
    let mut fallbacks = first.passed_over.clone();
    for &flavour in &first.flavours {
        let attached = if flavour == Flavour::KprobeMulti {
            attach_multi(grouped, &config, options, shared)
        } else {
            attach_each(grouped, flavour, &config, options, shared, progress)
        };
        match attached {
            Ok((object, links, refused)) => {
                let group = Group { flavour, attached: grouped.len() - refused.len(), refused, fallbacks };
                return Ok((object, group, links));
            }
            Err(err) => fallbacks.push((flavour, format!("{} failed: {err:#}", flavour.label()))),
        }
    }
    let reasons: Vec<&str> = fallbacks.iter().map(|(_, why)| why.as_str()).collect();
    bail!("cannot attach the {} functions of the patterns ({})", grouped.len(), reasons.join("; "))
}

type GroupLinks = (Object, Vec<Link>, Vec<String>);

fn attach_multi(
    grouped: &[(u16, &Target)],
    config: &ObjectConfig,
    options: &LoadOptions,
    shared: Option<&Object>,
) -> Result<GroupLinks> {
    let object = load_object(config, Flavour::KprobeMulti, None, None, options, shared)?;
    let opts = libbpf_rs::KprobeMultiOpts {
        symbols: grouped.iter().map(|(_, t)| t.spec.name.clone()).collect(),
        cookies: grouped.iter().map(|(index, t)| cookie(*index, t)).collect(),
        retprobe: false,
        ..Default::default()
    };
    let link = program_named(&object, program_name(Flavour::KprobeMulti))?
        .attach_kprobe_multi_with_opts(opts)
        .map_err(|err| anyhow!("attaching: {}", root_cause(&err)))?;
    Ok((object, vec![link], Vec::new()))
}

/// One kprobe per function, its cookie carried by the link (5.15 on), else
/// found by the function's address in a map netcap fills.
fn attach_each(
    grouped: &[(u16, &Target)],
    flavour: Flavour,
    config: &ObjectConfig,
    options: &LoadOptions,
    shared: Option<&Object>,
    progress: &mut impl FnMut(Progress<'_>),
) -> Result<GroupLinks> {
    let object = load_object(config, flavour, None, None, options, shared)?;
    if flavour == Flavour::KprobeByAddress {
        fill_cookies_by_address(&object, grouped)?;
    }
    let prog = program_named(&object, program_name(flavour))?;
    let (mut links, mut refused) = (Vec::new(), Vec::new());
    // One at a time: registering a kprobe updates ftrace under the kernel's
    // locks, so threads measured no faster (1,443 kprobes on 6.1: 32 s with
    // one thread, 34 s with eight).
    for (done, (index, target)) in grouped.iter().enumerate() {
        let cookie = if flavour == Flavour::KprobeEach { cookie(*index, target) } else { 0 };
        let opts = libbpf_rs::KprobeOpts { cookie, ..Default::default() };
        match prog.attach_kprobe_with_opts(false, &target.spec.name, opts) {
            Ok(link) => links.push(link),
            Err(_) => refused.push(target.spec.name.clone()),
        }
        progress(Progress::Counting(done + 1, grouped.len()));
    }
    if links.is_empty() {
        bail!("the kernel refused every function of the patterns ({} of them)", refused.len());
    }
    Ok((object, links, refused))
}

/// Entries the address → cookie map holds (static functions repeat names).
const COOKIES_BY_ADDRESS: u32 = 16384;

/// Writes each pattern function's cookie under each of its addresses.
fn fill_cookies_by_address(object: &Object, grouped: &[(u16, &Target)]) -> Result<()> {
    let symbols = crate::kernel::kallsyms::Kallsyms::load().context("reading /proc/kallsyms")?;
    let map = map_named(object, "netcap_cookies_map")?;
    let mut written = 0;
    for (index, target) in grouped {
        for address in symbols.addresses_of(&target.spec.name) {
            if written == COOKIES_BY_ADDRESS {
                bail!("more than {COOKIES_BY_ADDRESS} function addresses in the patterns: narrow them");
            }
            map.update(&address.to_ne_bytes(), &cookie(*index, target).to_ne_bytes(), MapFlags::ANY)?;
            written += 1;
        }
    }
    if written == 0 {
        bail!("/proc/kallsyms shows no addresses (kptr_restrict?): the patterns cannot be told apart");
    }
    Ok(())
}

fn root_cause(err: &libbpf_rs::Error) -> String {
    let text = format!("{err:#}");
    text.rsplit(": ").next().unwrap_or(&text).to_string()
}

fn attach_failure(target: &Target, failures: &[(Flavour, String)]) -> anyhow::Error {
    let reasons: Vec<&str> = failures.iter().map(|(_, why)| why.as_str()).collect();
    if target.is_function() {
        // The plan's own sentence, for when every mechanism it chose failed here.
        anyhow!(crate::plan::PlanError::NoMechanism {
            what: format!("kernel function {}", target.spec.name),
            name: target.spec.name.clone(),
            why: reasons.join("; "),
        })
    } else if let Some(user) = &target.user {
        anyhow!("cannot attach to {} in {} ({})", target.spec, user.binary.display(), reasons.join("; "))
    } else {
        anyhow!("cannot attach to tracepoint {} ({})", target.spec, reasons.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::features::{Feature, Features};
    use crate::plan::spec;

    /// Root only; in CI (always root) a skip would be a failure.
    fn root() -> bool {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        assert!(root || std::env::var_os("CI").is_none(), "CI runs as root");
        if !root {
            eprintln!("skipped: loading BPF needs root");
        }
        root
    }

    /// What a capture with this filter loads with, on this kernel.
    fn test_options(filter: Filter, features: &Features) -> LoadOptions {
        LoadOptions {
            object: EMBEDDED_OBJECT,
            capture_max: 256,
            device: None,
            ring_bytes: 1 << 16,
            filter: Some(filter),
            stacks: false,
            fake_headers: false,
            skb_data: None,
            mbuf: None,
            // Where the kernel allows it the filter also runs on the packet in place.
            filter_in_place: features.has(Feature::ReadAnyAddress),
            user_struct: None,
            task_btf: features.has(Feature::CurrentTaskBtf),
            bpf_loop: true,
            uprobe_multi: false,
            track: false,
            track_entries: 0,
            netns_only: None,
            mark: None,
            skb_filter: None,
            skb_fields: None,
            owner: Default::default(),
            ct: false,
        }
    }

    #[test]
    fn every_differential_expression_passes_the_kernel_verifier() {
        if !root() {
            return;
        }
        let btf = crate::kernel::load_btf().unwrap();
        let specs = spec::parse_list("tp:net:netif_receive_skb").unwrap();
        let features = Features::probe(Some(&btf)).unwrap();
        let targets = crate::plan::resolve(&specs, &btf, &features, &|_| None, &|_| true).unwrap().targets;
        let mut loaded = 0;
        for expression in crate::filter::tests::expressions() {
            let filter = match Filter::compile(&expression) {
                Ok(filter) => filter,
                Err(e) if e.to_string().contains("rejects all packets") => continue,
                Err(e) => panic!("{expression}: {e}"),
            };
            let options = test_options(filter, &features);
            let session = Session::attach(&targets, &options, |_| {})
                .unwrap_or_else(|e| panic!("'{expression}': {e:#}\n{}", drain_libbpf_messages().join("\n")));
            assert_eq!(session.attached[0].flavour, Flavour::TpBtfPaged, "'{expression}' fell back");
            loaded += 1;
        }
        assert!(loaded >= 200, "{loaded}");
    }

    #[test]
    fn every_skb_filter_passes_the_kernel_verifier_at_tp_btf_and_raw_tp() {
        if !root() {
            return;
        }
        let btf = crate::kernel::load_btf().unwrap();
        let specs = spec::parse_list("tp:net:netif_receive_skb,raw_tp:net:net_dev_queue").unwrap();
        let features = Features::probe(Some(&btf)).unwrap();
        let targets = crate::plan::resolve(&specs, &btf, &features, &|_| None, &|_| true).unwrap().targets;
        for expression in crate::filter::skb::tests::EXPRESSIONS {
            let skb_filter = crate::filter::skb::SkbFilter::compile(expression, &btf).unwrap();
            // With --track and an -e filter too: all of them at once.
            let options = LoadOptions {
                track: true,
                track_entries: 64,
                skb_filter: Some(skb_filter.translated),
                ..test_options(Filter::compile("tcp port 1").unwrap(), &features)
            };
            let session = Session::attach(&targets, &options, |_| {})
                .unwrap_or_else(|e| panic!("'{expression}': {e:#}\n{}", drain_libbpf_messages().join("\n")));
            assert_eq!(session.attached[0].flavour, Flavour::TpBtfPaged, "'{expression}' fell back");
            assert_eq!(session.attached[1].flavour, Flavour::RawTp, "'{expression}'");
        }
    }
}
