//! Attaching, as the user sees it: how each point was attached and why
//! better mechanisms were not used, a counter while patterns attach one by
//! one, and on failure libbpf's or the verifier's own words.

use std::io::{self, IsTerminal};

use anyhow::Result;

use crate::load::{self, LoadOptions, Progress, Session};
use crate::plan::{self, Target};

/// Attaches every target, reporting on stderr as it goes.
pub fn attach(targets: &[Target], options: &LoadOptions, verbose: bool, extensions: bool) -> Result<Session> {
    let terminal = io::stderr().is_terminal();
    Session::attach(targets, options, |progress| report(progress, terminal))
        .map_err(|err| with_libbpf_log(err, verbose, extensions))
}

fn report(progress: Progress<'_>, terminal: bool) {
    match progress {
        Progress::Attached(attached) => eprintln!(
            "netcap: {} attached by {}{}",
            attached.target.spec,
            attached.flavour.label(),
            fallback_note(&attached.fallbacks)
        ),
        Progress::Counting(done, all) if terminal && (done % 50 == 0 || done == all) => {
            eprint!("\rnetcap: attaching {done}/{all} functions{}", if done == all { "\n" } else { "" });
        }
        // Into a log: a line at each quarter of a long attach.
        Progress::Counting(done, all)
            if !terminal && all >= 200 && done < all && (done * 4 / all) != ((done - 1) * 4 / all) =>
        {
            eprintln!("netcap: attaching {done}/{all} functions");
        }
        Progress::Counting(..) => {}
        Progress::Group(group) => eprintln!(
            "netcap: {} functions attached by {}{}{}",
            group.attached,
            group.flavour.label(),
            fallback_note(&group.fallbacks),
            match group.refused.len() {
                0 => String::new(),
                n if n <= 10 => format!("; the kernel refused {n}: {}", group.refused.join(", ")),
                n => format!("; the kernel refused {n}, among them {}", group.refused[..10].join(", ")),
            }
        ),
    }
}

/// " (no fentry here: why; kprobe failed: why)": the better flavours passed over or tried first.
fn fallback_note(fallbacks: &[(plan::Flavour, String)]) -> String {
    if fallbacks.is_empty() {
        return String::new();
    }
    let notes: Vec<&str> = fallbacks.iter().map(|(_, why)| why.as_str()).collect();
    format!(" ({})", notes.join("; "))
}

/// Lines of a verifier log shown for extensions without -v.
const VERIFIER_TAIL: usize = 16;

/// Adds libbpf's messages (-v), or with user extensions the verifier's log
/// of the first program it refused.
fn with_libbpf_log(err: anyhow::Error, verbose: bool, extensions: bool) -> anyhow::Error {
    let log = load::drain_libbpf_messages();
    if verbose && !log.is_empty() {
        return err.context(format!("libbpf said:\n{}", log.join("\n")));
    }
    if extensions {
        let text = log.join("\n");
        if let Some(start) = text.find("-- BEGIN PROG LOAD LOG --") {
            let body = &text[start + "-- BEGIN PROG LOAD LOG --".len()..];
            let body = body.split("-- END PROG LOAD LOG --").next().unwrap_or(body);
            // The verdict and the source lines before it are at the end.
            let lines: Vec<&str> = body.trim().lines().collect();
            let tail = lines[lines.len().saturating_sub(VERIFIER_TAIL)..].join("\n");
            return anyhow::anyhow!(
                "{err:#}\nthe verifier refused the program built with the extensions; the end of its log \
                 (-v shows all of it):\n{tail}"
            );
        }
    }
    err
}
