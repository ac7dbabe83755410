//! Compiles bpf/netcap.bpf.c with clang and generates its libbpf-rs
//! skeleton (Rust types for the event and config come from its BTF).
use std::env;
use std::path::PathBuf;

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
    for path in ["bpf/netcap.bpf.c", "bpf/netcap.h", "bpf/vmlinux.h", "bpf/linux/errno.h"] {
        println!("cargo:rerun-if-changed={path}");
    }
}

fn which_clang() -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?).map(|dir| dir.join("clang")).find(|candidate| candidate.is_file())
}
