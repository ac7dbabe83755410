//! Compiles bpf/netcap.bpf.c with clang and generates its libbpf-rs
//! skeleton (Rust types for the event and config come from its BTF), and
//! lists every BPF source for the binary to carry (user extensions compile
//! them again at run time).
use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use libbpf_cargo::SkeletonBuilder;

const SOURCE: &str = "bpf/netcap.bpf.c";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    if which_clang().is_none() {
        panic!("clang not found on PATH: install it (Debian: apt-get install clang)");
    }
    SkeletonBuilder::new()
        .source(SOURCE)
        .obj(out.join("netcap.bpf.o"))
        .clang_args(["-Wall", "-Werror", "-Ibpf"])
        .build_and_generate(out.join("netcap.skel.rs"))
        .unwrap_or_else(|err| panic!("building {SOURCE}: {err:#}"));
    let mut sources = Vec::new();
    list_sources(Path::new("bpf"), &mut sources);
    sources.sort();
    let mut table =
        String::from("/// netcap's BPF sources (path under bpf/, text), as built into the embedded object.\n");
    table.push_str("pub const SOURCES: &[(&str, &str)] = &[\n");
    for path in &sources {
        println!("cargo:rerun-if-changed={}", path.display());
        let relative = path.strip_prefix("bpf").expect("listed under bpf/").display().to_string();
        let absolute = env::current_dir().expect("the package directory").join(path);
        writeln!(table, "    ({relative:?}, include_str!({:?})),", absolute.display().to_string()).unwrap();
    }
    table.push_str("];\n");
    std::fs::write(out.join("bpf_sources.rs"), table).expect("writing bpf_sources.rs");
    println!("cargo:rerun-if-changed=bpf");
    if env::var("CARGO_CFG_TARGET_FEATURE").is_ok_and(|features| features.split(',').any(|f| f == "crt-static")) {
        link_pcap_without_dbus(&out);
    }
    write_build_info(&out);
}

/// The static build (scripts/release.sh): libpcap's D-Bus capture source
/// replaced (native/pcap_without_dbus.c), linked whole so that its symbols
/// are defined before libpcap.a is searched.
fn link_pcap_without_dbus(out: &Path) {
    const STUBS: &str = "native/pcap_without_dbus.c";
    println!("cargo:rerun-if-changed={STUBS}");
    let object = out.join("pcap_without_dbus.o");
    let compiled = std::process::Command::new("clang")
        .args(["-O2", "-Wall", "-Werror", "-fPIC", "-c", STUBS, "-o"])
        .arg(&object)
        .status()
        .expect("running clang");
    assert!(compiled.success(), "compiling {STUBS}");
    let archive = out.join("libnetcap_pcap_without_dbus.a");
    let _ = std::fs::remove_file(&archive);
    let archived = std::process::Command::new("ar").arg("crs").arg(&archive).arg(&object).status().expect("running ar");
    assert!(archived.success(), "archiving {STUBS}");
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static:+whole-archive=netcap_pcap_without_dbus");
}

/// The commit and date `netcap version` prints (SOURCE_DATE_EPOCH, for
/// reproducible builds, else now).
fn write_build_info(out: &Path) {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let seconds = env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.parse::<i64>().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
    });
    let static_build = env::var("CARGO_CFG_TARGET_FEATURE").is_ok_and(|f| f.split(',').any(|f| f == "crt-static"));
    let info = format!(
        "pub const COMMIT: &str = {:?};\npub const BUILT_AT: i64 = {seconds};\npub const STATIC: bool = {static_build};\n",
        if dirty { format!("{commit}-dirty") } else { commit }
    );
    std::fs::write(out.join("build_info.rs"), info).expect("writing build_info.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    if Path::new(".git/HEAD").exists() {
        println!("cargo:rerun-if-changed=.git/HEAD");
        println!("cargo:rerun-if-changed=.git/index");
    }
}

/// Every .c and .h file under `dir`.
fn list_sources(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|err| panic!("reading {}: {err}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            list_sources(&path, into);
        } else if path.extension().is_some_and(|ext| ext == "c" || ext == "h") {
            into.push(path);
        }
    }
}

fn which_clang() -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?).map(|dir| dir.join("clang")).find(|candidate| candidate.is_file())
}
