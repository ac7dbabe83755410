//! The libbpf side of filter splicing: netcap registers its own handlers
//! for the section names its programs use, whose prepare-load callback
//! runs after relocation and just before BPF_PROG_LOAD. There, the
//! program's instructions and its func_info/line_info are rewritten by
//! `filter::splice`, for the object being loaded (one at a time).

use std::cell::RefCell;
use std::ffi::{CStr, c_int, c_long};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, bail};
use libbpf_rs::libbpf_sys;

use crate::filter::ebpf::{self, EbpfInsn};
use crate::filter::splice::{self, Function};

pub const STUB_ETHERNET: &str = "netcap_filter_ethernet";
pub const STUB_RAW: &str = "netcap_filter_raw";
pub const STUB_SKB: &str = "netcap_filter_skb";

/// What the next load must splice, and storage that must outlive it.
struct Request {
    object_btf: *const libbpf_sys::btf,
    replacements: Vec<(&'static str, Vec<EbpfInsn>)>,
    func_info: Vec<u8>,
    line_info: Vec<u8>,
    error: Option<String>,
}

thread_local! {
    /// Per thread: libbpf runs the callback on the thread that loads the
    /// object, and several objects load at once on different threads.
    static PENDING: RefCell<Option<Request>> = const { RefCell::new(None) };
}

/// Registers netcap's handlers for its programs' section names, once,
/// before any object is opened (libbpf picks handlers at open time).
pub fn register_handlers() -> Result<()> {
    static ONCE: Once = Once::new();
    static mut RESULT: c_int = 0;
    ONCE.call_once(|| {
        let sections: [(&CStr, u32, u32); 9] = [
            (c"tp_btf", libbpf_sys::BPF_PROG_TYPE_TRACING, libbpf_sys::BPF_TRACE_RAW_TP),
            (c"raw_tp", libbpf_sys::BPF_PROG_TYPE_RAW_TRACEPOINT, 0),
            (c"fentry", libbpf_sys::BPF_PROG_TYPE_TRACING, libbpf_sys::BPF_TRACE_FENTRY),
            (c"kprobe", libbpf_sys::BPF_PROG_TYPE_KPROBE, 0),
            (c"kprobe.multi", libbpf_sys::BPF_PROG_TYPE_KPROBE, libbpf_sys::BPF_TRACE_KPROBE_MULTI),
            (c"fexit", libbpf_sys::BPF_PROG_TYPE_TRACING, libbpf_sys::BPF_TRACE_FEXIT),
            (c"kretprobe", libbpf_sys::BPF_PROG_TYPE_KPROBE, 0),
            (c"uprobe", libbpf_sys::BPF_PROG_TYPE_KPROBE, 0),
            (c"usdt", libbpf_sys::BPF_PROG_TYPE_KPROBE, 0),
        ];
        for (section, prog_type, attach_type) in sections {
            let opts = libbpf_sys::libbpf_prog_handler_opts {
                sz: std::mem::size_of::<libbpf_sys::libbpf_prog_handler_opts>() as _,
                cookie: 0,
                prog_setup_fn: None,
                prog_prepare_load_fn: Some(prepare_load),
                prog_attach_fn: None,
            };
            // SAFETY: section is NUL-terminated (libbpf copies it); opts is valid.
            let ret =
                unsafe { libbpf_sys::libbpf_register_prog_handler(section.as_ptr(), prog_type, attach_type, &opts) };
            if ret < 0 {
                // SAFETY: written once, inside call_once.
                unsafe { RESULT = ret };
            }
        }
    });
    // SAFETY: only read after call_once completed.
    let result = unsafe { RESULT };
    if result < 0 {
        bail!("registering program handlers with libbpf: error {result}");
    }
    Ok(())
}

/// Arms the splice for the next program load of `object`: each stub named
/// gets the instructions given.
pub fn arm(object: &libbpf_rs::OpenObject, replacements: Vec<(&'static str, Vec<EbpfInsn>)>) {
    use libbpf_rs::AsRawLibbpf;
    // SAFETY: the object is open; its BTF lives as long as it does.
    let object_btf = unsafe { libbpf_sys::bpf_object__btf(object.as_libbpf_object().as_ptr()) };
    let request = Request { object_btf, replacements, func_info: Vec::new(), line_info: Vec::new(), error: None };
    PENDING.with(|pending| *pending.borrow_mut() = Some(request));
}

/// Disarms after the load; returns the splice's own error, if it failed.
pub fn disarm() -> Option<String> {
    PENDING.with(|pending| pending.borrow_mut().take().and_then(|r| r.error))
}

/// Whether USDT programs load for uprobe-multi links (the kernel has them).
static USDT_UPROBE_MULTI: AtomicBool = AtomicBool::new(false);

/// libbpf attaches USDT probes by uprobe-multi where the kernel has it, and
/// its own section handler then loads the program for that link type;
/// netcap's handler replaces libbpf's, so it must do the same.
pub fn set_usdt_uprobe_multi(available: bool) {
    USDT_UPROBE_MULTI.store(available, Ordering::Relaxed);
}

unsafe extern "C" fn prepare_load(
    prog: *mut libbpf_sys::bpf_program,
    opts: *mut libbpf_sys::bpf_prog_load_opts,
    _cookie: c_long,
) -> c_int {
    // SAFETY: libbpf hands a valid program for the duration of the call.
    let section = unsafe { CStr::from_ptr(libbpf_sys::bpf_program__section_name(prog)) };
    if section == c"usdt" && USDT_UPROBE_MULTI.load(Ordering::Relaxed) {
        // SAFETY: as above; opts is valid and ours to adjust before the load.
        unsafe {
            libbpf_sys::bpf_program__set_expected_attach_type(prog, libbpf_sys::BPF_TRACE_UPROBE_MULTI);
            (*opts).expected_attach_type = libbpf_sys::BPF_TRACE_UPROBE_MULTI;
        }
    }
    PENDING.with(|pending| {
        let mut pending = pending.borrow_mut();
        let Some(request) = pending.as_mut() else { return 0 };
        // SAFETY: libbpf hands valid program and options for the duration of the call.
        match unsafe { splice_program(prog, &mut *opts, request) } {
            Ok(()) => 0,
            Err(err) => {
                request.error = Some(err);
                -libc::EINVAL
            }
        }
    })
}

/// Reads a u32 field of a BTF.ext record.
fn record_u32(records: &[u8], index: usize, size: usize, field: usize) -> u32 {
    let at = index * size + field;
    u32::from_le_bytes(records[at..at + 4].try_into().unwrap_or([0; 4]))
}

unsafe fn splice_program(
    prog: *mut libbpf_sys::bpf_program,
    opts: &mut libbpf_sys::bpf_prog_load_opts,
    request: &mut Request,
) -> Result<(), String> {
    // SAFETY (whole function): pointers and counts come from libbpf for this load.
    let count = unsafe { libbpf_sys::bpf_program__insn_cnt(prog) } as usize;
    let raw = unsafe { std::slice::from_raw_parts(libbpf_sys::bpf_program__insns(prog).cast::<[u8; 8]>(), count) };
    let insns: Vec<EbpfInsn> = raw.iter().map(|bytes| EbpfInsn::from_bytes(*bytes)).collect();

    let func_size = opts.func_info_rec_size as usize;
    let func_count = opts.func_info_cnt as usize;
    if opts.func_info.is_null() || func_size < 8 {
        return Err("the program carries no func_info to find the filter stubs by".into());
    }
    let func_records = unsafe { std::slice::from_raw_parts(opts.func_info.cast::<u8>(), func_size * func_count) };
    let mut functions = Vec::with_capacity(func_count);
    for i in 0..func_count {
        let type_id = record_u32(func_records, i, func_size, 4);
        let name = unsafe {
            let ty = libbpf_sys::btf__type_by_id(request.object_btf, type_id);
            if ty.is_null() {
                return Err(format!("func_info names BTF type {type_id}, which does not exist"));
            }
            CStr::from_ptr(libbpf_sys::btf__name_by_offset(request.object_btf, (*ty).name_off))
                .to_string_lossy()
                .into_owned()
        };
        functions.push(Function { start: record_u32(func_records, i, func_size, 0) as usize, name });
    }
    // A program that never calls the filter (none was needed) has no stub.
    let replacements: Vec<(&str, &[EbpfInsn])> = request
        .replacements
        .iter()
        .filter(|(name, _)| functions.iter().any(|f| f.name == *name))
        .map(|(name, insns)| (*name, insns.as_slice()))
        .collect();
    if replacements.is_empty() {
        return Ok(());
    }

    let line_size = opts.line_info_rec_size as usize;
    let line_count = if opts.line_info.is_null() { 0 } else { opts.line_info_cnt as usize };
    let line_records = if line_count == 0 {
        &[][..]
    } else {
        unsafe { std::slice::from_raw_parts(opts.line_info.cast::<u8>(), line_size * line_count) }
    };
    let line_offsets: Vec<usize> =
        (0..line_count).map(|i| record_u32(line_records, i, line_size, 0) as usize).collect();

    let spliced = splice::splice(&insns, &functions, &line_offsets, &replacements).map_err(|e| e.to_string())?;

    request.func_info = func_records.to_vec();
    for (i, start) in spliced.function_starts.iter().enumerate() {
        request.func_info[i * func_size..i * func_size + 4].copy_from_slice(&(*start as u32).to_le_bytes());
    }
    request.line_info.clear();
    let mut kept = 0u32;
    for (i, offset) in spliced.line_offsets.iter().enumerate() {
        if let Some(offset) = offset {
            let record = &line_records[i * line_size..(i + 1) * line_size];
            request.line_info.extend_from_slice(&(*offset as u32).to_le_bytes());
            request.line_info.extend_from_slice(&record[4..]);
            kept += 1;
        }
    }
    let mut bytes = ebpf::to_bytes(&spliced.insns);
    let ret = unsafe { libbpf_sys::bpf_program__set_insns(prog, bytes.as_mut_ptr().cast(), spliced.insns.len() as _) };
    if ret != 0 {
        return Err(format!("bpf_program__set_insns failed: {ret}"));
    }
    opts.func_info = request.func_info.as_ptr().cast();
    if line_count > 0 {
        opts.line_info = request.line_info.as_ptr().cast();
        opts.line_info_cnt = kept;
    }
    Ok(())
}

/// The raw-variant replacement for expressions that cannot match packets
/// without an L2 header: never keep.
pub fn never() -> Vec<EbpfInsn> {
    vec![EbpfInsn::alu32_imm(ebpf::MOV, 0, 0), EbpfInsn::exit()]
}
