//! Network namespaces as --netns names them: `any`, an inode number, a path
//! (/var/run/netns/NAME, /proc/PID/ns/net) or a name under /var/run/netns.
//! The kernel side compares `dev->nd_net.net->ns.inum` with the inode; -i is
//! resolved inside the namespace, by entering it for the lookup.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Where `ip netns add` keeps its namespaces.
const NAMED: &str = "/var/run/netns";

/// `stat -f` of an nsfs file: the network namespace files' filesystem.
const NSFS_MAGIC: i64 = 0x6e73_6673;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Netns {
    pub inode: u32,
    /// A file that enters it (for -i); None for an inode nothing names.
    pub path: Option<PathBuf>,
    /// Its name under /var/run/netns, if it has one.
    pub name: Option<String>,
}

#[derive(Debug, Error)]
pub enum NetnsError {
    #[error(
        "--netns {given}: {why} (give any, an inode number, a path like /var/run/netns/NAME or /proc/PID/ns/net, or a \
         name under /var/run/netns{})",
        names_here(.names)
    )]
    Unknown { given: String, why: String, names: Vec<String> },
    #[error("--netns {given}: entering it to find -i {device}: {why}")]
    Enter { given: String, device: String, why: String },
    #[error("no device '{device}' in network namespace {netns} (devices there: {available})")]
    UnknownDevice { device: String, netns: String, available: String },
}

fn names_here(names: &[String]) -> String {
    if names.is_empty() { String::new() } else { format!(": {}", names.join(", ")) }
}

/// Names under /var/run/netns by inode, to show with each event.
pub fn names() -> HashMap<u32, String> {
    let mut names = HashMap::new();
    for entry in std::fs::read_dir(NAMED).into_iter().flatten().flatten() {
        if let Ok(meta) = entry.metadata() {
            names.insert(meta.ino() as u32, entry.file_name().to_string_lossy().into_owned());
        }
    }
    names
}

fn sorted_names() -> Vec<String> {
    let mut names: Vec<String> = names().into_values().collect();
    names.sort();
    names
}

/// True when `path` is a namespace file (nsfs), not any file.
fn is_namespace_file(path: &Path) -> bool {
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else { return false };
    // SAFETY: statfs is plain data, filled by the call; c_path is NUL-terminated.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statfs(c_path.as_ptr(), &mut fs) } == 0) && fs.f_type as i64 == NSFS_MAGIC
}

/// Resolves --netns; `any` is None.
pub fn resolve(given: &str) -> Result<Option<Netns>, NetnsError> {
    if given == "any" {
        return Ok(None);
    }
    let unknown = |why: &str| NetnsError::Unknown { given: given.into(), why: why.into(), names: sorted_names() };
    let named = names();
    if let Ok(inode) = given.parse::<u32>() {
        // Find a file that enters it, for -i: a name, else some process in it.
        let path = named
            .iter()
            .find(|(i, _)| **i == inode)
            .map(|(_, name)| Path::new(NAMED).join(name))
            .or_else(|| process_in(inode));
        return Ok(Some(Netns { inode, path, name: named.get(&inode).cloned() }));
    }
    let path = if given.contains('/') { PathBuf::from(given) } else { Path::new(NAMED).join(given) };
    let meta = std::fs::metadata(&path).map_err(|e| unknown(&e.to_string()))?;
    if !is_namespace_file(&path) {
        return Err(unknown("not a namespace file"));
    }
    let inode = meta.ino() as u32;
    Ok(Some(Netns { inode, path: Some(path), name: named.get(&inode).cloned() }))
}

/// /proc/PID/ns/net of some process in namespace `inode`.
fn process_in(inode: u32) -> Option<PathBuf> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let path = entry.path().join("ns/net");
        let meta = std::fs::metadata(&path).ok()?;
        (meta.ino() as u32 == inode).then_some(path)
    })
}

impl Netns {
    /// How events and errors name it: its name, else its inode.
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.inode.to_string())
    }

    /// Runs `lookup` inside this namespace (on this thread), then returns to
    /// netcap's own.
    pub fn inside<T>(&self, given: &str, device: &str, lookup: impl FnOnce() -> T) -> Result<T, NetnsError> {
        self.enter(lookup).map_err(|why| NetnsError::Enter { given: given.into(), device: device.into(), why })
    }

    /// Runs `work` inside this namespace (on this thread), then returns to
    /// netcap's own; the error says why it could not get in.
    pub fn enter<T>(&self, work: impl FnOnce() -> T) -> Result<T, String> {
        let Some(path) = &self.path else {
            return Err("no file enters it (no name, no process in it)".into());
        };
        let own = File::open("/proc/thread-self/ns/net").map_err(|e| e.to_string())?;
        let target = File::open(path).map_err(|e| e.to_string())?;
        // SAFETY: both are open namespace files; setns changes this thread only.
        if unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        let done = work();
        // SAFETY: as above, back to where this thread was.
        if unsafe { libc::setns(own.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            panic!("cannot return to netcap's own network namespace: {}", std::io::Error::last_os_error());
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_is_every_namespace_and_a_number_is_an_inode() {
        assert_eq!(resolve("any").unwrap(), None);
        assert_eq!(resolve("4026531840").unwrap().map(|n| n.inode), Some(4026531840));
    }

    #[test]
    fn a_file_that_is_no_namespace_is_refused_and_says_what_would_do() {
        let error = resolve("/etc/hostname").unwrap_err().to_string();
        assert!(error.starts_with("--netns /etc/hostname: not a namespace file (give any, an inode number"), "{error}");
        let missing = resolve("no-such-namespace-here").unwrap_err().to_string();
        assert!(missing.contains("No such file or directory"), "{missing}");
    }

    #[test]
    fn our_own_namespace_file_resolves_to_its_inode() {
        let own = std::fs::metadata("/proc/self/ns/net").unwrap().ino() as u32;
        assert_eq!(resolve("/proc/self/ns/net").unwrap().map(|n| n.inode), Some(own));
    }
}
