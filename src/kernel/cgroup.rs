//! cgroup v2, as --cgroup names it and events show it: a directory of the
//! cgroup2 mount (found in /proc/self/mounts; /sys/fs/cgroup on a unified
//! host, /sys/fs/cgroup/unified on a hybrid one), whose inode is the id the
//! kernel side reads (`cgroup->kn->id`).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum CgroupError {
    #[error("--cgroup {given}: there is no cgroup2 file system mounted here (see /proc/self/mounts)")]
    NoCgroup2 { given: String },
    #[error("--cgroup {given}: {why} (give a cgroup v2 directory, e.g. {root}/system.slice, or its path under {root})")]
    Unknown { given: String, why: String, root: String },
}

/// Where the cgroup2 file system is mounted.
pub fn mount_point() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (_, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
        (kind == "cgroup2").then(|| PathBuf::from(point))
    })
}

/// The id of a cgroup given as a directory of the mount, or as a path under it.
pub fn resolve(given: &str) -> Result<(u64, String), CgroupError> {
    let root = mount_point().ok_or_else(|| CgroupError::NoCgroup2 { given: given.into() })?;
    let path = if Path::new(given).starts_with(&root) {
        PathBuf::from(given)
    } else {
        root.join(given.trim_start_matches('/'))
    };
    let unknown = |why: String| CgroupError::Unknown { given: given.into(), why, root: root.display().to_string() };
    let meta = std::fs::metadata(&path).map_err(|e| unknown(e.to_string()))?;
    if !meta.is_dir() || !path.join("cgroup.procs").exists() {
        return Err(unknown("not a cgroup directory".into()));
    }
    Ok((meta.ino(), relative(&root, &path)))
}

fn relative(root: &Path, path: &Path) -> String {
    let inner = path.strip_prefix(root).map(|p| p.display().to_string()).unwrap_or_default();
    format!("/{inner}")
}

/// Every cgroup's path under the mount by id, to show with each event.
pub fn paths() -> HashMap<u64, String> {
    let mut paths = HashMap::new();
    let Some(root) = mount_point() else { return paths };
    let mut pending = vec![root.clone()];
    // Bounded: a host has thousands of cgroups, not millions.
    while let Some(dir) = pending.pop().filter(|_| paths.len() < 200_000) {
        if let Ok(meta) = std::fs::metadata(&dir) {
            paths.insert(meta.ino(), relative(&root, &dir));
        }
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(entry.path());
            }
        }
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_resolves_to_its_inode_and_a_file_is_refused() {
        let Some(root) = mount_point() else { return };
        let (id, path) = resolve(root.to_str().unwrap()).unwrap();
        assert_eq!((id, path.as_str()), (std::fs::metadata(&root).unwrap().ino(), "/"));
        assert_eq!(resolve("/").unwrap().0, id);
        let error = resolve("cgroup.procs").unwrap_err().to_string();
        assert!(error.contains("not a cgroup directory"), "{error}");
        assert_eq!(paths().get(&id).map(String::as_str), Some("/"));
    }
}
