//! The BPF programs loaded at tc and XDP (`--bpf-progs`): found by walking
//! every loaded program (BPF_PROG_GET_NEXT_ID), named by their BTF, opened
//! by id for fentry/fexit to attach to.

use std::os::fd::{FromRawFd, OwnedFd};

use libbpf_rs::ProgramType;
use libbpf_rs::btf::{BtfType, TypeId};
use libbpf_rs::query::{ProgInfoIter, ProgInfoQueryOptions};

/// Where a program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    /// clsact ingress/egress, tcx, or an act_bpf action.
    Tc,
    Xdp,
}

impl Hook {
    pub fn name(self) -> &'static str {
        match self {
            Hook::Tc => "tc",
            Hook::Xdp => "xdp",
        }
    }
}

/// One loaded program netcap could trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub id: u32,
    /// Its function's name in its BTF (the name fentry attaches by); the
    /// kernel's 15-byte name where it has no BTF.
    pub function: String,
    pub hook: Hook,
    /// Whether it carries BTF: fentry and fexit can attach to it only then.
    pub has_btf: bool,
}

/// Every loaded program at tc or XDP, by id.
pub fn loaded() -> Vec<Program> {
    let query = ProgInfoQueryOptions::default().include_func_info(true);
    let mut found = Vec::new();
    for info in ProgInfoIter::with_query_opts(query) {
        let hook = match info.ty {
            ProgramType::SchedCls | ProgramType::SchedAct => Hook::Tc,
            ProgramType::Xdp => Hook::Xdp,
            _ => continue,
        };
        let kernel_name = info.name.to_string_lossy().into_owned();
        let btf_name = (info.btf_id != 0)
            .then(|| info.func_info.first().map(|f| f.type_id))
            .flatten()
            .and_then(|type_id| function_name(info.id, type_id));
        found.push(Program {
            id: info.id,
            has_btf: btf_name.is_some(),
            function: btf_name.unwrap_or(kernel_name),
            hook,
        });
    }
    found.sort_by_key(|p| p.id);
    found
}

/// The name of BTF type `type_id` in program `id`'s BTF.
fn function_name(id: u32, type_id: u32) -> Option<String> {
    let btf = libbpf_rs::btf::Btf::from_prog_id(id).ok()?;
    let ty: BtfType<'_> = btf.type_by_id(TypeId::from(type_id))?;
    ty.name().map(|n| n.to_string_lossy().into_owned()).filter(|n| !n.is_empty())
}

/// What `--bpf-progs=LIST` asks for: a hook (`tc`, `xdp`), a program id or
/// a program's name; empty: every program at tc and XDP.
pub fn select<'a>(programs: &'a [Program], wanted: &[String]) -> Result<Vec<&'a Program>, String> {
    if wanted.is_empty() {
        return Ok(programs.iter().collect());
    }
    let mut chosen: Vec<&Program> = Vec::new();
    for word in wanted {
        let matching: Vec<&Program> = programs
            .iter()
            .filter(|p| match word.as_str() {
                "tc" => p.hook == Hook::Tc,
                "xdp" => p.hook == Hook::Xdp,
                _ => word.parse::<u32>().map_or(*word == p.function, |id| id == p.id),
            })
            .collect();
        if matching.is_empty() && !matches!(word.as_str(), "tc" | "xdp") {
            return Err(format!(
                "--bpf-progs: no program at tc or XDP is named or numbered '{word}' (loaded: {})",
                listing(programs)
            ));
        }
        for program in matching {
            if !chosen.iter().any(|c| c.id == program.id) {
                chosen.push(program);
            }
        }
    }
    chosen.sort_by_key(|p| p.id);
    Ok(chosen)
}

/// `NAME[ID] (tc), …`, or `none`.
pub fn listing(programs: &[Program]) -> String {
    if programs.is_empty() {
        return "none".into();
    }
    programs.iter().map(|p| format!("{}[{}] ({})", p.function, p.id, p.hook.name())).collect::<Vec<_>>().join(", ")
}

/// A descriptor of program `id`, for fentry/fexit to attach to.
pub fn open(id: u32) -> std::io::Result<OwnedFd> {
    // SAFETY: a plain syscall wrapper; a non-negative result is a new descriptor we own.
    let fd = unsafe { libbpf_rs::libbpf_sys::bpf_prog_get_fd_by_id(id) };
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: fd was just returned by the kernel and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(id: u32, function: &str, hook: Hook) -> Program {
        Program { id, function: function.into(), hook, has_btf: true }
    }

    #[test]
    fn selection_by_hook_id_and_name() {
        let all =
            [program(7, "drop_port", Hook::Tc), program(9, "drop_echo", Hook::Xdp), program(12, "pass", Hook::Tc)];
        let ids = |words: &[&str]| {
            select(&all, &words.iter().map(|w| w.to_string()).collect::<Vec<_>>())
                .map(|v| v.iter().map(|p| p.id).collect::<Vec<_>>())
        };
        assert_eq!(ids(&[]), Ok(vec![7, 9, 12]));
        assert_eq!(ids(&["tc"]), Ok(vec![7, 12]));
        assert_eq!(ids(&["xdp"]), Ok(vec![9]));
        assert_eq!(ids(&["12", "drop_echo", "xdp"]), Ok(vec![9, 12]));
        let error = ids(&["nope"]).unwrap_err();
        assert!(error.contains("'nope'") && error.contains("drop_port[7] (tc)"), "{error}");
        assert_eq!(ids(&["13"]).unwrap_err().lines().count(), 1);
        // A hook with nothing at it is not a mistake: there is simply nothing to trace.
        assert_eq!(select(&all[..1], &["xdp".to_string()]), Ok(vec![]));
    }
}
