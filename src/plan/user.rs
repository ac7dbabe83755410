//! Trace points of `netcap raw` and `netcap mbuf`: `-f` parsed and each
//! function or USDT probe found where it lives — the process's executable
//! or one of its shared libraries (with -p), or the binary the spec names.

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

use super::spec::{PointKind, PointSpec};
use super::{Flavour, Target, nearest};
use crate::elf::Elf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `f(char *pkt, uint16_t len)`.
    Raw,
    /// DPDK `struct rte_mbuf *`, or an array of them and a count.
    Mbuf,
}

/// Mbufs of one burst netcap reads at most: NETCAP_MBUF_BURST_MAX in bpf/netcap.h.
pub const MBUF_BURST_MAX: u32 = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketForm {
    Buffer,
    Mbuf,
    MbufArray,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Function(String),
    Usdt { provider: String, name: String },
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::Function(name) => write!(f, "function {name}"),
            Probe::Usdt { provider, name } => write!(f, "USDT probe {provider}:{name}"),
        }
    }
}

/// A resolved user-space trace point.
#[derive(Debug, Clone)]
pub struct UserPoint {
    /// The file to attach to (`/proc/PID/exe`, a library, or the named binary).
    pub binary: PathBuf,
    /// Only this process; None: every process running the binary, also later ones.
    pub pid: Option<i32>,
    pub probe: Probe,
    pub form: PacketForm,
    /// 0-based: the buffer, the mbuf, or the array of mbufs.
    pub packet_arg: u32,
    /// 0-based: the buffer's length, or the array's count.
    pub len_arg: Option<u32>,
}

impl fmt::Display for UserPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in {}", self.probe, self.binary.display())?;
        match self.pid {
            Some(pid) => write!(f, " (process {pid})")?,
            None => f.write_str(" (every process running it)")?,
        }
        let packet = self.packet_arg + 1;
        match (self.form, self.len_arg) {
            (PacketForm::Buffer, Some(len)) => write!(f, ", packet = argument {packet}, length = argument {}", len + 1),
            (PacketForm::MbufArray, Some(count)) => {
                write!(f, ", mbuf array = argument {packet}, count = argument {}", count + 1)
            }
            _ => write!(f, ", mbuf = argument {packet}"),
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum UserError {
    #[error("'{0}': write [/path/to/binary:]FUNCTION[@p1[@p2]] or usdt:PROVIDER:PROBE[@p1[@p2]]")]
    Shape(String),
    #[error(transparent)]
    Unusable(#[from] super::spec::SpecError),
    #[error("'{spec}': '@{arg}' is not an argument number (write @1 to @{max})")]
    BadArg { spec: String, arg: String, max: u32 },
    #[error("'{0}': netcap raw needs the buffer and its length (write {1}@1@2, or the positions they have)")]
    RawNeedsLength(String, String),
    #[error("'{0}': give the process with -p PID, or name the binary: -f /path/to/binary:{1}")]
    NoProcess(String, String),
    #[error("no process {0} (is it running, in this PID namespace?)")]
    NoSuchProcess(i32),
    #[error("process {0} exists, but its memory map cannot be read ({1}): netcap needs root or CAP_SYS_PTRACE over it")]
    Unreadable(i32, String),

    #[error("'{0}': {1} is not a readable ELF file")]
    NotElf(String, String),
    #[error("'{spec}': {probe} is not in {place}{}", hint(.nearest))]
    NotFound { spec: String, probe: String, place: String, nearest: Vec<String> },
    #[error(
        "'{spec}': in {file} it is an indirect function (GNU IFUNC): a uprobe there sits on the resolver, which \
         runs once when the program starts, and would capture nothing; trace the function that calls it, or \
         the implementation the resolver picks (its name is in the library's debug symbols)"
    )]
    Indirect { spec: String, file: String },
    #[error("'{0}' is given twice")]
    Duplicate(String),
}

fn hint(nearest: &[String]) -> String {
    if nearest.is_empty() { String::new() } else { format!("; nearest: {}", nearest.join(", ")) }
}

/// Uprobes read arguments from the six argument registers; USDT probes carry up to 12.
const UPROBE_ARGS: u32 = 6;
const USDT_ARGS: u32 = 12;

struct UserSpec {
    text: String,
    binary: Option<PathBuf>,
    probe: Probe,
    args: Vec<u32>,
}

fn parse_one(text: &str) -> Result<UserSpec, UserError> {
    super::spec::check_text(text)?;
    let shape = || UserError::Shape(text.to_string());
    let mut parts = text.split('@');
    let head = parts.next().unwrap_or_default();
    let arg_texts: Vec<&str> = parts.collect();
    if arg_texts.len() > 2 {
        return Err(shape());
    }
    let (binary, probe, max) = if let Some(rest) = head.strip_prefix("usdt:") {
        let fields: Vec<&str> = rest.split(':').collect();
        let (binary, provider, name) = match fields.as_slice() {
            [provider, name] => (None, provider, name),
            [path, provider, name] if path.starts_with('/') => (Some(PathBuf::from(path)), provider, name),
            _ => return Err(shape()),
        };
        (binary, Probe::Usdt { provider: provider.to_string(), name: name.to_string() }, USDT_ARGS)
    } else {
        match head.rsplit_once(':') {
            Some((path, function)) if path.starts_with('/') => {
                (Some(PathBuf::from(path)), Probe::Function(function.to_string()), UPROBE_ARGS)
            }
            Some(_) => return Err(shape()),
            None => (None, Probe::Function(head.to_string()), UPROBE_ARGS),
        }
    };
    let names_ok = match &probe {
        Probe::Function(name) => valid_name(name),
        Probe::Usdt { provider, name } => valid_name(provider) && valid_name(name),
    };
    if !names_ok {
        return Err(shape());
    }
    let args = arg_texts
        .iter()
        .map(|arg| match arg.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n - 1),
            _ => Err(UserError::BadArg { spec: text.to_string(), arg: arg.to_string(), max }),
        })
        .collect::<Result<Vec<u32>, _>>()?;
    Ok(UserSpec { text: text.to_string(), binary, probe, args })
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$'))
}

/// Resolves every `-f` entry of `netcap raw` / `netcap mbuf`.
pub fn resolve(lists: &[String], mode: Mode, pid: Option<i32>) -> Result<Vec<Target>, UserError> {
    let mut targets: Vec<Target> = Vec::new();
    for text in lists.iter().flat_map(|list| list.split(',')).map(str::trim) {
        let spec = parse_one(text)?;
        let (form, packet_arg, len_arg) = match (mode, spec.args.as_slice()) {
            (Mode::Raw, []) => (PacketForm::Buffer, 0, Some(1)),
            (Mode::Raw, [packet, len]) => (PacketForm::Buffer, *packet, Some(*len)),
            (Mode::Raw, _) => {
                let name = spec.text.split('@').next().unwrap_or_default().to_string();
                return Err(UserError::RawNeedsLength(spec.text, name));
            }
            (Mode::Mbuf, []) => (PacketForm::Mbuf, 0, None),
            (Mode::Mbuf, [mbuf]) => (PacketForm::Mbuf, *mbuf, None),
            (Mode::Mbuf, [array, count]) => (PacketForm::MbufArray, *array, Some(*count)),
            (Mode::Mbuf, _) => return Err(UserError::Shape(spec.text)),
        };
        let binary = locate(&spec, pid)?;
        // What each event line names: the function, or usdt:PROVIDER:PROBE.
        let label = match &spec.probe {
            Probe::Function(name) => name.clone(),
            Probe::Usdt { provider, name } => format!("usdt:{provider}:{name}"),
        };
        if targets.iter().any(|t| t.spec.name == label) {
            return Err(UserError::Duplicate(spec.text));
        }
        let flavour = match spec.probe {
            Probe::Function(_) => Flavour::Uprobe,
            Probe::Usdt { .. } => Flavour::Usdt,
        };
        targets.push(Target {
            spec: PointSpec { kind: PointKind::User, name: label, packet_arg: None, extra_arg: None },
            skb_arg: packet_arg,
            extra_arg: None,
            reason_arg: None,
            location_arg: None,
            ret_arg: None,
            flavours: vec![flavour],
            passed_over: Vec::new(),
            frees: false,
            hidden: false,
            inherit: None,
            signature: String::new(),
            user: Some(UserPoint { binary, pid, probe: spec.probe, form, packet_arg, len_arg }),
            program: None,
            netfilter: None,
        });
    }
    Ok(targets)
}

/// The file holding the spec's function or probe.
fn locate(spec: &UserSpec, pid: Option<i32>) -> Result<PathBuf, UserError> {
    let candidates: Vec<PathBuf> = match (&spec.binary, pid) {
        (Some(binary), Some(pid)) => {
            process_files(pid)?;
            // The binary as the process sees it (its mount namespace).
            let inside = PathBuf::from(format!("/proc/{pid}/root{}", binary.display()));
            vec![if inside.exists() { inside } else { binary.clone() }]
        }
        (Some(binary), None) => vec![binary.clone()],
        (None, Some(pid)) => process_files(pid)?,
        (None, None) => {
            let name = match &spec.probe {
                Probe::Function(name) => name.clone(),
                Probe::Usdt { provider, name } => format!("usdt:{provider}:{name}"),
            };
            return Err(UserError::NoProcess(spec.text.clone(), name));
        }
    };
    let mut everything: Vec<String> = Vec::new();
    for (index, path) in candidates.iter().enumerate() {
        let Ok(bytes) = crate::files::read_regular(path, crate::files::BINARY_MAX) else {
            if spec.binary.is_some() {
                return Err(UserError::NotElf(spec.text.clone(), path.display().to_string()));
            }
            continue;
        };
        let Some(elf) = Elf::parse(&bytes) else {
            if index == 0 && spec.binary.is_some() {
                return Err(UserError::NotElf(spec.text.clone(), path.display().to_string()));
            }
            continue;
        };
        match &spec.probe {
            Probe::Function(name) => {
                let functions = elf.functions();
                if functions.binary_search(&name.as_str()).is_ok() {
                    if elf.indirect_functions().contains(&name.as_str()) {
                        // memcpy and friends in glibc: the implementation is chosen at load time.
                        return Err(UserError::Indirect { spec: spec.text.clone(), file: path.display().to_string() });
                    }
                    return Ok(path.clone());
                }
                everything.extend(functions.iter().map(|f| f.to_string()));
            }
            Probe::Usdt { provider, name } => {
                let probes = elf.probes();
                if probes.iter().any(|p| p.provider == *provider && p.name == *name) {
                    return Ok(path.clone());
                }
                everything.extend(probes.iter().map(|p| format!("{}:{}", p.provider, p.name)));
            }
        }
    }
    let wanted = match &spec.probe {
        Probe::Function(name) => name.clone(),
        Probe::Usdt { provider, name } => format!("{provider}:{name}"),
    };
    let place = match (pid, &spec.binary) {
        (Some(pid), None) => format!(
            "process {pid} ({}) or its {} shared libraries",
            describe_exe(pid),
            candidates.len().saturating_sub(1)
        ),
        _ => candidates.first().map(|p| p.display().to_string()).unwrap_or_default(),
    };
    everything.sort_unstable();
    everything.dedup();
    Err(UserError::NotFound {
        spec: spec.text.clone(),
        probe: spec.probe.to_string(),
        place,
        nearest: nearest(&wanted, everything.iter().map(String::as_str).collect()),
    })
}

fn describe_exe(pid: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe")).map_or_else(|_| "?".into(), |p| p.display().to_string())
}

/// The process's executable, then every file it maps executable (its
/// shared libraries), each as the process sees it.
fn process_files(pid: i32) -> Result<Vec<PathBuf>, UserError> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => UserError::NoSuchProcess(pid),
        _ => UserError::Unreadable(pid, err.to_string()),
    })?;
    let exe = describe_exe(pid);
    let mut files = vec![PathBuf::from(format!("/proc/{pid}/exe"))];
    let mut seen = vec![exe];
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let perms = fields.nth(1).unwrap_or_default();
        let Some(path) = fields.nth(3).filter(|p| p.starts_with('/')) else { continue };
        if perms.contains('x') && !seen.iter().any(|s| s == path) {
            seen.push(path.to_string());
            files.push(PathBuf::from(format!("/proc/{pid}/root{path}")));
        }
    }
    Ok(files)
}

/// True while the process runs (for netcap to stop when it exits).
/// A zombie (exited, not yet reaped) counts as ended.
pub fn process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn one(text: &str, mode: Mode, pid: Option<i32>) -> Result<UserPoint, UserError> {
        resolve(&[text.to_string()], mode, pid).map(|mut t| t.remove(0).user.unwrap())
    }

    #[test]
    fn parses_every_form_of_the_spec() {
        let spec = parse_one("f@1@2").unwrap();
        assert_eq!((spec.probe, spec.args, spec.binary), (Probe::Function("f".into()), vec![0, 1], None));
        let spec = parse_one("/usr/bin/app:handle_rx@2").unwrap();
        assert_eq!(spec.binary.as_deref(), Some(Path::new("/usr/bin/app")));
        assert_eq!(spec.probe, Probe::Function("handle_rx".into()));
        let spec = parse_one("usdt:my_app:rx@3@4").unwrap();
        assert_eq!(spec.probe, Probe::Usdt { provider: "my_app".into(), name: "rx".into() });
        let spec = parse_one("usdt:/opt/app:my_app:rx@1").unwrap();
        assert_eq!(spec.binary.as_deref(), Some(Path::new("/opt/app")));
        assert!(matches!(parse_one("f@7"), Err(UserError::BadArg { max: 6, .. })));
        assert!(parse_one("usdt:p:n@12").is_ok());
        assert!(matches!(parse_one("f@1@2@3"), Err(UserError::Shape(_))));
        assert!(matches!(parse_one("relative/path:f"), Err(UserError::Shape(_))));
        assert!(matches!(parse_one("usdt:only"), Err(UserError::Shape(_))));
    }

    #[test]
    fn finds_functions_in_a_process_and_says_where_it_looked() {
        let me = std::process::id() as i32;
        let point = one("main", Mode::Raw, Some(me)).unwrap();
        assert_eq!(point.binary, PathBuf::from(format!("/proc/{me}/exe")));
        assert_eq!((point.form, point.packet_arg, point.len_arg), (PacketForm::Buffer, 0, Some(1)));
        // In the C library, not the executable.
        let point = one("send@2@3", Mode::Raw, Some(me)).unwrap();
        assert!(point.binary.to_string_lossy().contains("libc"), "{}", point.binary.display());
        assert_eq!(point.len_arg, Some(2));
        let err = one("sendd@2@3", Mode::Raw, Some(me)).unwrap_err().to_string();
        assert!(err.contains("is not in process") && err.contains("nearest: send"), "{err}");
        // glibc's memcpy is an IFUNC: its symbol is the resolver, said so.
        assert!(matches!(one("memcpy@1@3", Mode::Raw, Some(me)), Err(UserError::Indirect { .. })));
    }

    #[test]
    fn mbuf_forms_and_mistakes() {
        let me = std::process::id() as i32;
        assert_eq!(one("main", Mode::Mbuf, Some(me)).unwrap().form, PacketForm::Mbuf);
        let burst = one("main@2@3", Mode::Mbuf, Some(me)).unwrap();
        assert_eq!((burst.form, burst.packet_arg, burst.len_arg), (PacketForm::MbufArray, 1, Some(2)));
        assert!(matches!(one("main@1", Mode::Raw, Some(me)), Err(UserError::RawNeedsLength(..))));
        assert!(matches!(one("main", Mode::Raw, None), Err(UserError::NoProcess(..))));
        assert_eq!(one("main", Mode::Raw, Some(i32::MAX)).unwrap_err(), UserError::NoSuchProcess(i32::MAX));
        assert!(matches!(one("/etc/hostname:f", Mode::Raw, None), Err(UserError::NotElf(..))));
        let err = one("usdt:nope:rx", Mode::Mbuf, Some(me)).unwrap_err().to_string();
        assert!(err.contains("USDT probe nope:rx is not in process"), "{err}");
    }
}
