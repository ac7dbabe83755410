//! `netcap version`, and the man pages and shell completions packaging
//! generates from the clap definitions themselves (so they cannot drift
//! from `--help`).

use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::Cli;

mod build {
    include!(concat!(env!("OUT_DIR"), "/build_info.rs"));
}

/// Three lines: netcap and where it came from, the C libraries inside, and
/// how it is linked.
pub fn text() -> String {
    // SAFETY: both return constants compiled into libbpf.
    let (major, minor) =
        unsafe { (libbpf_rs::libbpf_sys::libbpf_major_version(), libbpf_rs::libbpf_sys::libbpf_minor_version()) };
    let libbpf = format!("{major}.{minor}");
    format!(
        "netcap {} (commit {}, built {})\nlibbpf {libbpf}, {}\n{}",
        env!("CARGO_PKG_VERSION"),
        build::COMMIT,
        civil_date(build::BUILT_AT),
        libpcap_version(),
        if build::STATIC {
            "a static binary: it needs no shared library (--ext-filter/--ext-action need clang)"
        } else {
            "linked against the shared libraries ldd lists"
        }
    )
}

fn libpcap_version() -> String {
    // SAFETY: pcap_lib_version returns a static NUL-terminated string.
    let text = unsafe { std::ffi::CStr::from_ptr(pcap_lib_version()) };
    text.to_string_lossy().into_owned()
}

unsafe extern "C" {
    fn pcap_lib_version() -> *const std::os::raw::c_char;
}

/// YYYY-MM-DD (UTC) of seconds since 1970, by the days-to-civil conversion.
fn civil_date(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// netcap.1 and netcap-SUBCOMMAND.1, and netcap.bash, _netcap, netcap.fish.
pub fn generate_docs(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let command = Cli::command();
    let write_page = |name: &str, page: clap::Command| -> Result<()> {
        let mut bytes = Vec::new();
        clap_mangen::Man::new(page).render(&mut bytes)?;
        std::fs::write(dir.join(format!("{name}.1")), bytes).with_context(|| format!("writing {name}.1"))
    };
    write_page("netcap", command.clone())?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("netcap-{}", sub.get_name());
        // clap takes a static name; this runs once, at packaging.
        let static_name: &'static str = Box::leak(name.clone().into_boxed_str());
        write_page(&name, sub.clone().name(static_name))?;
    }
    for (shell, file) in [
        (clap_complete::Shell::Bash, "netcap.bash"),
        (clap_complete::Shell::Zsh, "_netcap"),
        (clap_complete::Shell::Fish, "netcap.fish"),
    ] {
        let mut bytes = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "netcap", &mut bytes);
        std::fs::write(dir.join(file), bytes).with_context(|| format!("writing {file}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_the_calendar_s() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(951_782_400), "2000-02-29");
        assert_eq!(civil_date(1_796_083_200), "2026-12-01");
    }

    #[test]
    fn version_names_both_libraries() {
        let text = text();
        assert!(text.starts_with(&format!("netcap {} (commit ", env!("CARGO_PKG_VERSION"))), "{text}");
        assert!(text.contains("libbpf 1.") && text.contains("libpcap version 1."), "{text}");
    }

    #[test]
    fn docs_cover_every_visible_subcommand_and_three_shells() {
        let dir = std::env::temp_dir().join(format!("netcap-docs-{}", std::process::id()));
        generate_docs(&dir).unwrap();
        let skb = std::fs::read_to_string(dir.join("netcap-skb.1")).unwrap();
        assert!(skb.contains("\\-\\-gather") && skb.contains(".TH netcap-skb"), "{}", &skb[..200.min(skb.len())]);
        assert!(!dir.join("netcap-bench-sink.1").exists(), "hidden commands get no page");
        let bash = std::fs::read_to_string(dir.join("netcap.bash")).unwrap();
        assert!(bash.contains("--capture-max-size"), "every option completes");
        for file in ["netcap.1", "netcap-features.1", "_netcap", "netcap.fish"] {
            assert!(dir.join(file).exists(), "{file}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
