//! What netcap asks of the running kernel outside BPF: BTF, devices and
//! network namespaces, privileges, clocks, tracefs categories.

pub mod btf;
pub mod cgroup;
pub mod features;
pub mod kallsyms;
pub mod netns;
pub mod nftrace;
pub mod progs;

use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, Error)]
pub enum KernelError {
    #[error(
        "this kernel has no BTF ({VMLINUX_BTF} is missing): netcap needs Linux 5.8 or later built with CONFIG_DEBUG_INFO_BTF=y"
    )]
    NoBtf,
    #[error(transparent)]
    Btf(#[from] btf::BtfError),
    #[error("no device '{name}' in this network namespace (devices here: {available})")]
    UnknownDevice { name: String, available: String },
    #[error("netcap needs root, or CAP_BPF with CAP_PERFMON, to load BPF programs: run it with sudo")]
    NotPrivileged,
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
    #[error(transparent)]
    Cgroup(#[from] cgroup::CgroupError),
}

/// Whether a module (nf_tables, ip_tables, for --nft) is loaded, and with BTF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Module {
    /// Its split BTF, to read on top of vmlinux's.
    WithBtf(PathBuf),
    WithoutBtf,
    /// Not loaded as a module (or built in: then vmlinux's BTF has it).
    Absent,
}

pub fn module(name: &str) -> Module {
    let split = Path::new("/sys/kernel/btf").join(name);
    if split.exists() {
        Module::WithBtf(split)
    } else if Path::new("/sys/module").join(name).join("initstate").exists() {
        Module::WithoutBtf
    } else {
        Module::Absent
    }
}

pub fn load_btf() -> Result<btf::Btf, KernelError> {
    let path = Path::new(VMLINUX_BTF);
    if !path.exists() {
        return Err(KernelError::NoBtf);
    }
    Ok(btf::Btf::from_file(path)?)
}

/// A device as the `-i` option names it, resolved in netcap's own netns
/// or the one --netns names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub ifindex: u32,
    pub name: String,
    /// Inode of the network namespace it lives in.
    pub netns: u32,
}

/// Resolves `-i NAME|IFINDEX|any` (inside `netns` when given); `any` is None.
pub fn resolve_device(wanted: &str, netns: Option<(&str, &netns::Netns)>) -> Result<Option<Device>, KernelError> {
    if wanted == "any" {
        return Ok(None);
    }
    let lookup = || {
        let found = wanted.parse::<u32>().ok().and_then(|index| index_to_name(index).map(|name| (index, name)));
        let found = found.or_else(|| {
            let c_name = CString::new(wanted).ok()?;
            // SAFETY: c_name is a valid NUL-terminated string.
            let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
            (index != 0).then(|| (index, wanted.to_string()))
        });
        (found, device_names())
    };
    match netns {
        None => match lookup() {
            (Some((ifindex, name)), _) => Ok(Some(Device { ifindex, name, netns: own_netns() })),
            (None, available) => {
                Err(KernelError::UnknownDevice { name: wanted.to_string(), available: available.join(", ") })
            }
        },
        Some((given, netns)) => match netns.inside(given, wanted, lookup)? {
            (Some((ifindex, name)), _) => Ok(Some(Device { ifindex, name, netns: netns.inode })),
            (None, available) => Err(netns::NetnsError::UnknownDevice {
                device: wanted.to_string(),
                netns: netns.label(),
                available: available.join(", "),
            }
            .into()),
        },
    }
}

fn index_to_name(index: u32) -> Option<String> {
    let mut buffer = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buffer holds IF_NAMESIZE bytes as if_indextoname requires.
    let result = unsafe { libc::if_indextoname(index, buffer.as_mut_ptr()) };
    if result.is_null() {
        return None;
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    Some(unsafe { std::ffi::CStr::from_ptr(buffer.as_ptr()) }.to_string_lossy().into_owned())
}

/// The devices of this thread's network namespace (by netlink, as /sys
/// shows the namespace it was mounted in).
fn device_names() -> Vec<String> {
    let mut names = Vec::new();
    // SAFETY: if_nameindex returns an array ended by a zero entry, or NULL;
    // it is freed once read.
    unsafe {
        let list = libc::if_nameindex();
        if list.is_null() {
            return names;
        }
        let mut at = list;
        while (*at).if_index != 0 && !(*at).if_name.is_null() {
            names.push(std::ffi::CStr::from_ptr((*at).if_name).to_string_lossy().into_owned());
            at = at.add(1);
        }
        libc::if_freenameindex(list);
    }
    names.sort();
    names
}

/// Inode of netcap's network namespace: what `dev->nd_net.net->ns.inum` reads in BPF.
pub fn own_netns() -> u32 {
    std::fs::metadata("/proc/self/ns/net").map(|m| m.ino() as u32).unwrap_or(0)
}

/// Root, or the capabilities that loading tracing programs takes.
pub fn check_privileges() -> Result<(), KernelError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return Ok(());
    }
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_PERFMON: u32 = 38;
    const CAP_BPF: u32 = 39;
    let effective = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|l| l.strip_prefix("CapEff:").map(|v| u64::from_str_radix(v.trim(), 16).ok()))
        })
        .flatten()
        .unwrap_or(0);
    let has = |cap: u32| effective & (1 << cap) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) { Ok(()) } else { Err(KernelError::NotPrivileged) }
}

/// CLOCK_MONOTONIC now, in nanoseconds: the clock of bpf_ktime_get_ns().
pub fn monotonic_now() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Nanoseconds to add to bpf_ktime_get_ns() (CLOCK_MONOTONIC) for wall-clock time.
pub fn monotonic_to_realtime_offset() -> i64 {
    let read = |clock| {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: ts is a valid timespec to write into.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    };
    let before = read(libc::CLOCK_MONOTONIC);
    let real = read(libc::CLOCK_REALTIME);
    let after = read(libc::CLOCK_MONOTONIC);
    real - (before + (after - before) / 2)
}

/// The category of a tracepoint, where tracefs is mounted and says; netcap
/// never mounts it (tp_btf and raw_tp do not need it).
pub fn tracepoint_category(name: &str) -> Option<String> {
    for root in ["/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"] {
        let Ok(categories) = std::fs::read_dir(root) else { continue };
        for category in categories.flatten() {
            if category.path().join(name).is_dir() {
                return Some(category.file_name().to_string_lossy().into_owned());
            }
        }
        return None;
    }
    None
}

/// Names of kernel functions that can be traced: ftrace's list where tracefs
/// is readable, else the text symbols of /proc/kallsyms.
pub fn traceable_functions() -> std::collections::HashSet<String> {
    for path in
        ["/sys/kernel/tracing/available_filter_functions", "/sys/kernel/debug/tracing/available_filter_functions"]
    {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_string).collect();
        }
    }
    std::fs::read_to_string("/proc/kallsyms")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace().skip(1);
            let kind = fields.next()?;
            matches!(kind, "t" | "T").then(|| fields.next().map(str::to_string)).flatten()
        })
        .collect()
}

/// Raises the soft limit of open files to the hard one (links and
/// perf events are file descriptors; patterns may need thousands).
pub fn raise_open_files_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: limit is a valid rlimit to read into and then pass back.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Number of possible CPUs, as BPF per-CPU structures count them.
pub fn possible_cpus() -> usize {
    libbpf_rs::num_possible_cpus().unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_loopback_by_name_and_index_and_refuses_unknown_devices() {
        let lo = resolve_device("lo", None).unwrap().unwrap();
        assert_eq!(lo.ifindex, 1);
        assert_eq!(resolve_device("1", None).unwrap().unwrap().name, "lo");
        assert!(resolve_device("any", None).unwrap().is_none());
        let message = resolve_device("nosuchdev0", None).unwrap_err().to_string();
        assert!(message.starts_with("no device 'nosuchdev0' in this network namespace"), "{message}");
        assert!(message.contains("lo"), "{message}");
    }

    #[test]
    fn the_clock_offset_is_the_time_since_boot() {
        let offset = monotonic_to_realtime_offset();
        // Wall clock minus monotonic is the boot time: after 2020, before now.
        assert!(offset > 1_577_836_800 * 1_000_000_000, "{offset}");
    }
}
