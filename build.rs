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
