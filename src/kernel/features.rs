//! What this kernel can do for netcap, decided once at start: each row by a
//! BTF lookup or by loading (and where that is the question, attaching) a
//! two-instruction program. The planner and the loader pick mechanisms from
//! this table instead of learning them from load failures; `netcap features`
//! prints it.

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};

use libbpf_rs::libbpf_sys as sys;
use serde_json::json;
use thiserror::Error;

use super::btf::{Btf, Kind};
use crate::filter::ebpf::{ALU64, EbpfInsn, JMP, K, MOV};

/// One thing a kernel may or may not let netcap do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    Btf,
    RingBuffer,
    TpBtf,
    Fentry,
    Kprobes,
    KprobeMulti,
    AttachCookie,
    BpfLoop,
    DynptrFromSkb,
    ReadAnyAddress,
    UprobeMulti,
    DropReasons,
    CurrentTaskBtf,
}

pub const ALL: [Feature; 13] = [
    Feature::Btf,
    Feature::RingBuffer,
    Feature::TpBtf,
    Feature::Fentry,
    Feature::Kprobes,
    Feature::KprobeMulti,
    Feature::AttachCookie,
    Feature::BpfLoop,
    Feature::DynptrFromSkb,
    Feature::ReadAnyAddress,
    Feature::UprobeMulti,
    Feature::DropReasons,
    Feature::CurrentTaskBtf,
];

impl Feature {
    /// The row's name in `netcap features`, its JSON and NETCAP_WITHOUT.
    pub fn key(self) -> &'static str {
        match self {
            Feature::Btf => "btf",
            Feature::RingBuffer => "ring_buffer",
            Feature::TpBtf => "tp_btf",
            Feature::Fentry => "fentry",
            Feature::Kprobes => "kprobes",
            Feature::KprobeMulti => "kprobe_multi",
            Feature::AttachCookie => "attach_cookie",
            Feature::BpfLoop => "bpf_loop",
            Feature::DynptrFromSkb => "dynptr_from_skb",
            Feature::ReadAnyAddress => "rdonly_cast_to_void",
            Feature::UprobeMulti => "uprobe_multi",
            Feature::DropReasons => "drop_reasons",
            Feature::CurrentTaskBtf => "get_current_task_btf",
        }
    }

    /// What it is, and since when mainline has it.
    pub fn what(self) -> &'static str {
        match self {
            Feature::Btf => "kernel BTF, /sys/kernel/btf/vmlinux (5.4+, CONFIG_DEBUG_INFO_BTF)",
            Feature::RingBuffer => "BPF ring buffer (5.8+)",
            Feature::TpBtf => "BTF-typed tracepoints, tp_btf (5.5+)",
            Feature::Fentry => "fentry/fexit trampolines that attach (5.5+, x86 with ftrace)",
            Feature::Kprobes => "kprobes through the perf PMU or tracefs (CONFIG_KPROBE_EVENTS)",
            Feature::KprobeMulti => "kprobe-multi links (5.18+, CONFIG_FPROBE)",
            Feature::AttachCookie => "bpf_get_attach_cookie in kprobes (5.15+)",
            Feature::BpfLoop => "bpf_loop (5.17+)",
            Feature::DynptrFromSkb => "bpf_dynptr_from_skb at tracepoints",
            Feature::ReadAnyAddress => "bpf_rdonly_cast to void (6.17+)",
            Feature::UprobeMulti => "uprobe-multi links (6.6+)",
            Feature::DropReasons => "drop reasons in skb:kfree_skb (5.17+)",
            Feature::CurrentTaskBtf => "bpf_get_current_task_btf (5.11+)",
        }
    }

    /// What its absence costs the user.
    pub fn without(self) -> &'static str {
        match self {
            Feature::Btf => "netcap cannot run (it needs BTF)",
            Feature::RingBuffer => "netcap cannot run (it needs the BPF ring buffer)",
            Feature::TpBtf => "tracepoints attach by raw_tp and read the skb through probe reads",
            Feature::Fentry => "kernel functions attach by kprobe, return values by kretprobe (slower per event)",
            Feature::Kprobes => "kernel functions attach by fentry only; kprobe:, kretprobe: and patterns are refused",
            Feature::KprobeMulti => "patterns and -f '*' attach one kprobe per function (slow to start and stop)",
            Feature::AttachCookie => "pattern functions are told apart by address, through a map filled from kallsyms",
            Feature::BpfLoop => "mbuf bursts are walked by a bounded loop",
            Feature::DynptrFromSkb => "tracepoints capture the linear part only (paged bytes are not read)",
            Feature::ReadAnyAddress => "the filter runs on a copy of each packet instead of where it lies",
            Feature::UprobeMulti => "USDT attaches one uprobe per call site",
            Feature::DropReasons => "drops are named by location only (NOT_SPECIFIED)",
            Feature::CurrentTaskBtf => "the task's namespace is read through probe reads",
        }
    }

    pub fn from_key(key: &str) -> Option<Feature> {
        ALL.into_iter().find(|f| f.key() == key)
    }
}

/// How a row was decided, and why it is missing when it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub feature: Feature,
    pub present: bool,
    /// "BTF" or "probe".
    pub how: &'static str,
    /// Why it is missing (empty when present).
    pub why: String,
}

#[derive(Debug, Error)]
pub enum FeatureError {
    #[error("NETCAP_WITHOUT: unknown feature '{0}' (known: {known})", known = ALL.map(Feature::key).join(", "))]
    UnknownFeature(String),
    #[error(
        "this kernel ({release}) has no {what}: netcap needs Linux 5.8 or later, built with BTF \
         (CONFIG_DEBUG_INFO_BTF=y), for BTF and the BPF ring buffer"
    )]
    TooOld { release: String, what: &'static str },
}

#[derive(Debug, Clone)]
pub struct Features {
    pub release: String,
    pub rows: Vec<Row>,
}

impl Features {
    /// Probes the running kernel (BTF, where it has it). Without privileges
    /// the rows that need a probe are taken from BTF alone and say so.
    pub fn probe(btf: Option<&Btf>) -> Result<Features, FeatureError> {
        let disabled = disabled_by_environment()?;
        let privileged = super::check_privileges().is_ok();
        let rows = ALL
            .into_iter()
            .map(|feature| {
                let (how, outcome) = decide(feature, btf, privileged);
                let outcome =
                    if disabled.contains(&feature) { Err("disabled by NETCAP_WITHOUT".into()) } else { outcome };
                Row { feature, present: outcome.is_ok(), how, why: outcome.err().unwrap_or_default() }
            })
            .collect();
        Ok(Features { release: release(), rows })
    }

    /// A kernel with every feature: what plans are tested against.
    #[cfg(test)]
    pub fn everything() -> Features {
        let rows =
            ALL.into_iter().map(|feature| Row { feature, present: true, how: "BTF", why: String::new() }).collect();
        Features { release: "test".into(), rows }
    }

    /// The same kernel without `missing`.
    #[cfg(test)]
    pub fn without(mut self, missing: &[Feature]) -> Features {
        for row in self.rows.iter_mut().filter(|r| missing.contains(&r.feature)) {
            row.present = false;
            row.why = "absent in this test".into();
        }
        self
    }

    pub fn has(&self, feature: Feature) -> bool {
        self.row(feature).is_some_and(|r| r.present)
    }

    /// Why `feature` is missing, for a one-line note.
    pub fn why_missing(&self, feature: Feature) -> String {
        match self.row(feature) {
            Some(row) if !row.present => format!("no {} here: {}", feature.key(), row.why),
            _ => String::new(),
        }
    }

    fn row(&self, feature: Feature) -> Option<&Row> {
        self.rows.iter().find(|r| r.feature == feature)
    }

    /// BTF and the ring buffer: below them netcap cannot run at all.
    pub fn require_minimum(&self) -> Result<(), FeatureError> {
        for feature in [Feature::Btf, Feature::RingBuffer] {
            if !self.has(feature) {
                return Err(FeatureError::TooOld { release: self.release.clone(), what: feature.what() });
            }
        }
        Ok(())
    }

    /// The table for `netcap features`.
    pub fn text(&self) -> String {
        let mut out = format!("kernel {}\n", self.release);
        let width = ALL.iter().map(|f| f.key().len()).max().unwrap_or(0);
        for row in &self.rows {
            let verdict = if row.present { "yes" } else { "no " };
            out.push_str(&format!("{:width$}  {verdict}  {}", row.feature.key(), row.feature.what()));
            if !row.present {
                out.push_str(&format!(
                    "\n{:width$}       why: {}\n{:width$}       so: {}",
                    "",
                    row.why,
                    "",
                    row.feature.without()
                ));
            }
            out.push('\n');
        }
        out
    }

    pub fn json(&self) -> serde_json::Value {
        let rows: serde_json::Map<String, serde_json::Value> = self
            .rows
            .iter()
            .map(|row| {
                let mut value = json!({ "present": row.present, "how": row.how, "what": row.feature.what() });
                if !row.present {
                    value["why"] = json!(row.why);
                    value["without"] = json!(row.feature.without());
                }
                (row.feature.key().to_string(), value)
            })
            .collect();
        json!({ "kernel": self.release, "features": rows })
    }
}

/// NETCAP_WITHOUT=fentry,bpf_loop: features to treat as missing, to test
/// or work around the fallbacks.
fn disabled_by_environment() -> Result<Vec<Feature>, FeatureError> {
    let Some(list) = std::env::var_os("NETCAP_WITHOUT") else { return Ok(Vec::new()) };
    list.to_string_lossy()
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|key| Feature::from_key(key).ok_or_else(|| FeatureError::UnknownFeature(key.to_string())))
        .collect()
}

fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|r| r.trim().to_string()).unwrap_or_default()
}

type Outcome = Result<(), String>;

/// How one row is decided, and the outcome.
fn decide(feature: Feature, btf: Option<&Btf>, privileged: bool) -> (&'static str, Outcome) {
    let Some(btf) = btf else {
        return ("BTF", Err("the kernel has no BTF".into()));
    };
    let enum_has = |name: &str, value: &str| -> Outcome {
        let found = btf.enum_values(name).is_some_and(|values| values.iter().any(|(v, _)| *v == value));
        if found { Ok(()) } else { Err(format!("its BTF has no {value}")) }
    };
    // Rows that need the bpf syscall fall back to what BTF says without root.
    let probed = |by_btf: Outcome, probe: &dyn Fn() -> Outcome| -> (&'static str, Outcome) {
        match by_btf {
            Err(why) => ("BTF", Err(why)),
            Ok(()) if !privileged => ("BTF (not probed: needs root)", Ok(())),
            Ok(()) => ("probe", probe()),
        }
    };
    match feature {
        Feature::Btf => ("BTF", Ok(())),
        Feature::RingBuffer => probed(enum_has("bpf_map_type", "BPF_MAP_TYPE_RINGBUF"), &|| {
            // SAFETY: libbpf creates and closes a map; no pointers are kept.
            verdict(unsafe { sys::libbpf_probe_bpf_map_type(sys::BPF_MAP_TYPE_RINGBUF, std::ptr::null()) })
        }),
        Feature::TpBtf => probed(tracepoint_typedef(btf).map(|_| ()), &|| {
            let id = tracepoint_typedef(btf)?;
            load(sys::BPF_PROG_TYPE_TRACING, sys::BPF_TRACE_RAW_TP, id, &return_zero()).map(drop)
        }),
        Feature::Fentry => probed(enum_has("bpf_attach_type", "BPF_TRACE_FENTRY"), &|| {
            let id = probe_function(btf)?;
            let prog = load(sys::BPF_PROG_TYPE_TRACING, sys::BPF_TRACE_FENTRY, id, &return_zero())?;
            // SAFETY: prog is a loaded program; the returned link is closed at once.
            attached(unsafe { sys::bpf_raw_tracepoint_open(std::ptr::null(), raw(&prog)) })
        }),
        Feature::Kprobes => ("tracefs/PMU", kprobes_reachable()),
        Feature::KprobeMulti => {
            let by_btf = kprobes_reachable().and(enum_has("bpf_attach_type", "BPF_TRACE_KPROBE_MULTI"));
            probed(by_btf, &|| kprobe_multi_attaches(btf))
        }
        Feature::AttachCookie => probed(enum_has("bpf_func_id", "BPF_FUNC_get_attach_cookie"), &|| {
            helper_in_kprobes(sys::BPF_FUNC_get_attach_cookie)
        }),
        Feature::BpfLoop => probed(enum_has("bpf_func_id", "BPF_FUNC_loop"), &|| helper_in_kprobes(sys::BPF_FUNC_loop)),
        Feature::DynptrFromSkb => {
            let by_btf = match btf.ids("bpf_dynptr_from_skb").find(|&id| matches!(btf.kind(id), Kind::Func { .. })) {
                Some(_) => tracepoint_typedef(btf).map(|_| ()),
                None => Err("its BTF has no kfunc bpf_dynptr_from_skb (6.3+)".into()),
            };
            probed(by_btf, &|| dynptr_at_tracepoints(btf))
        }
        Feature::ReadAnyAddress => ("BTF", enum_has("bpf_features", "BPF_FEAT_RDONLY_CAST_TO_VOID")),
        // As libbpf's own probe finds: the function that creates the links is in BTF.
        Feature::UprobeMulti => {
            let found = btf.ids("bpf_uprobe_multi_link_attach").any(|id| matches!(btf.kind(id), Kind::Func { .. }));
            ("BTF", if found { Ok(()) } else { Err("its BTF has no bpf_uprobe_multi_link_attach".into()) })
        }
        Feature::DropReasons => {
            let typed = btf.tracepoint_params("kfree_skb").is_some_and(|params| {
                params.iter().any(|(_, ty)| {
                    let ty = btf.resolve(*ty);
                    matches!(btf.kind(ty), Kind::Enum { .. }) && btf.name(ty) == "skb_drop_reason"
                })
            });
            ("BTF", if typed { Ok(()) } else { Err("skb:kfree_skb has no reason argument".into()) })
        }
        Feature::CurrentTaskBtf => ("BTF", enum_has("bpf_func_id", "BPF_FUNC_get_current_task_btf")),
    }
}

/// Kprobes are reachable through the perf PMU (4.17+) or tracefs.
fn kprobes_reachable() -> Outcome {
    let paths = [
        "/sys/bus/event_source/devices/kprobe",
        "/sys/kernel/tracing/kprobe_events",
        "/sys/kernel/debug/tracing/kprobe_events",
    ];
    if paths.iter().any(|p| std::path::Path::new(p).exists()) {
        Ok(())
    } else {
        Err("no kprobe PMU and no kprobe_events (CONFIG_KPROBE_EVENTS is off)".into())
    }
}

/// The tracepoint every probe that needs one uses: netif_receive_skb(skb).
fn tracepoint_typedef(btf: &Btf) -> Result<u32, String> {
    btf.ids("btf_trace_netif_receive_skb").next().ok_or_else(|| "its BTF has no tracepoint netif_receive_skb".into())
}

/// A function every networking kernel has built in, to attach probes to.
const PROBE_FUNCTIONS: [&str; 2] = ["bpf_fentry_test1", "icmp_rcv"];

fn probe_function(btf: &Btf) -> Result<u32, String> {
    PROBE_FUNCTIONS
        .iter()
        .find_map(|name| btf.ids(name).find(|&id| matches!(btf.kind(id), Kind::Func { .. })))
        .ok_or_else(|| format!("its BTF has none of {}", PROBE_FUNCTIONS.join(", ")))
}

fn return_zero() -> Vec<EbpfInsn> {
    vec![EbpfInsn::alu64_imm(MOV, 0, 0), EbpfInsn::exit()]
}

fn raw(fd: &OwnedFd) -> i32 {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd()
}

/// Loads a probe program; the error is the kernel's errno, named.
fn load(prog_type: u32, attach_type: u32, attach_btf_id: u32, insns: &[EbpfInsn]) -> Result<OwnedFd, String> {
    // u64 words: the kernel's struct bpf_insn is 8 bytes, 4-aligned.
    let words: Vec<u64> = insns.iter().map(|i| u64::from_le_bytes(i.to_bytes())).collect();
    let mut opts = sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<sys::bpf_prog_load_opts>() as _,
        expected_attach_type: attach_type,
        attach_btf_id,
        ..Default::default()
    };
    let license = CString::new("GPL").expect("no NUL");
    let name = CString::new("netcap_probe").expect("no NUL");
    // SAFETY: every pointer is valid for the call; the kernel copies the instructions.
    let fd = unsafe {
        sys::bpf_prog_load(
            prog_type,
            name.as_ptr(),
            license.as_ptr(),
            words.as_ptr().cast(),
            words.len() as _,
            &mut opts,
        )
    };
    if fd < 0 {
        return Err(format!("the kernel refused to load a test program ({})", errno_text(-fd)));
    }
    // SAFETY: fd is a new descriptor this function owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An attachment's fd (closed at once, detaching it) or the errno.
fn attached(fd: i32) -> Outcome {
    if fd < 0 {
        return Err(format!("the kernel refused to attach a test program ({})", errno_text(-fd)));
    }
    // SAFETY: fd is a new descriptor nothing else owns.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    Ok(())
}

/// libbpf's probes return 1 (yes), 0 (no) or a negative errno.
fn verdict(answer: i32) -> Outcome {
    match answer {
        1 => Ok(()),
        0 => Err("the kernel refused it".into()),
        e => Err(errno_text(-e)),
    }
}

fn helper_in_kprobes(helper: u32) -> Outcome {
    // SAFETY: libbpf loads and closes a probe program.
    match unsafe { sys::libbpf_probe_bpf_helper(sys::BPF_PROG_TYPE_KPROBE, helper, std::ptr::null()) } {
        0 => Err("the verifier refuses it in kprobe programs".into()),
        answer => verdict(answer),
    }
}

fn kprobe_multi_attaches(btf: &Btf) -> Outcome {
    let prog = load(sys::BPF_PROG_TYPE_KPROBE, sys::BPF_TRACE_KPROBE_MULTI, 0, &return_zero())?;
    let id = probe_function(btf)?;
    let symbol = CString::new(btf.name(id)).map_err(|_| "bad function name".to_string())?;
    let mut symbols = [symbol.as_ptr()];
    let mut opts =
        sys::bpf_link_create_opts { sz: std::mem::size_of::<sys::bpf_link_create_opts>() as _, ..Default::default() };
    // The kprobe_multi member of the union is the one this attach type reads.
    opts.__bindgen_anon_1.kprobe_multi.cnt = 1;
    opts.__bindgen_anon_1.kprobe_multi.syms = symbols.as_mut_ptr();
    // SAFETY: prog is loaded; opts and the symbol outlive the call.
    attached(unsafe { sys::bpf_link_create(raw(&prog), 0, sys::BPF_TRACE_KPROBE_MULTI, &opts) })
}

/// Loads a tp_btf program that calls bpf_dynptr_from_skb(skb, 0, &dynptr),
/// as netcap's paged reads do: kernels list the kfunc long before they let
/// tracing programs call it.
fn dynptr_at_tracepoints(btf: &Btf) -> Outcome {
    let kfunc = btf
        .ids("bpf_dynptr_from_skb")
        .find(|&id| matches!(btf.kind(id), Kind::Func { .. }))
        .ok_or("no kfunc bpf_dynptr_from_skb")?;
    const CALL: u8 = 0x80;
    const PSEUDO_KFUNC_CALL: u8 = 2;
    let insns = [
        EbpfInsn::load(crate::filter::ebpf::DW, 1, 1, 0),
        EbpfInsn::alu64_imm(MOV, 2, 0),
        EbpfInsn::new(ALU64 | MOV | 0x08, 3, 10, 0, 0),
        EbpfInsn::alu64_imm(crate::filter::ebpf::ADD, 3, -16),
        EbpfInsn::new(JMP | CALL | K, 0, PSEUDO_KFUNC_CALL, 0, kfunc as i32),
        EbpfInsn::alu64_imm(MOV, 0, 0),
        EbpfInsn::exit(),
    ];
    load(sys::BPF_PROG_TYPE_TRACING, sys::BPF_TRACE_RAW_TP, tracepoint_typedef(btf)?, &insns).map(drop)
}

fn errno_text(errno: i32) -> String {
    match errno {
        524 => "not supported (ENOTSUPP, 524)".into(),
        _ => std::io::Error::from_raw_os_error(errno).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(missing: &[Feature]) -> Features {
        Features { release: "4.19.0-27-amd64".into(), ..Features::everything().without(missing) }
    }

    #[test]
    fn a_kernel_without_btf_or_the_ring_buffer_is_refused_naming_the_minimum() {
        assert!(table(&[Feature::KprobeMulti]).require_minimum().is_ok());
        for missing in [Feature::Btf, Feature::RingBuffer] {
            let err = table(&[missing]).require_minimum().unwrap_err().to_string();
            assert!(err.contains("4.19.0-27-amd64") && err.contains("Linux 5.8 or later"), "{err}");
            assert!(err.contains(missing.what()), "{err}");
        }
    }

    #[test]
    fn every_missing_row_says_why_and_what_it_costs() {
        let features = table(&[Feature::Fentry, Feature::BpfLoop]);
        let text = features.text();
        assert_eq!(text.lines().count(), 1 + ALL.len() + 4, "{text}");
        assert!(text.contains("so: kernel functions attach by kprobe"), "{text}");
        let json = features.json();
        assert_eq!(json["features"]["fentry"]["present"], false);
        assert_eq!(json["features"]["bpf_loop"]["without"], Feature::BpfLoop.without());
        assert_eq!(json["features"]["ring_buffer"]["present"], true);
        assert_eq!(features.why_missing(Feature::Fentry), "no fentry here: absent in this test");
        assert_eq!(features.why_missing(Feature::Kprobes), "");
    }

    #[test]
    fn keys_are_unique_and_round_trip() {
        for feature in ALL {
            assert_eq!(Feature::from_key(feature.key()), Some(feature));
        }
        assert_eq!(Feature::from_key("fentry_please"), None);
    }

    /// Root only: this machine's kernel (6.18, no kprobes, no fentry).
    #[test]
    fn the_host_kernel_probes_as_it_is() {
        if super::super::check_privileges().is_err() {
            assert!(std::env::var_os("CI").is_none(), "CI runs as root");
            return;
        }
        let btf = super::super::load_btf().unwrap();
        let features = Features::probe(Some(&btf)).unwrap();
        for present in [Feature::Btf, Feature::RingBuffer, Feature::TpBtf, Feature::BpfLoop, Feature::AttachCookie] {
            assert!(features.has(present), "{}", features.text());
        }
        assert!(features.has(Feature::DynptrFromSkb), "6.18 lets tp_btf read paged bytes: {}", features.text());
        for absent in [Feature::Kprobes, Feature::Fentry, Feature::KprobeMulti] {
            assert!(!features.has(absent), "this host has no {}: {}", absent.key(), features.text());
        }
    }
}
