//! `--bpf-progs` on this host: real tc and XDP programs (tests/bpf/, built
//! here with clang) attached in a namespace, bpftool as the oracle of what
//! is loaded. This kernel has no fentry, which is the only way to trace a
//! BPF program: netcap must say so in one line naming the programs it would
//! trace, exit 2 and leave nothing loaded. The tracing itself is the VM
//! tier's (tests/vm/guest.sh, checks bpf_progs_*).

use std::path::Path;

use crate::util::*;

/// Builds tests/bpf/NAME.c into `dir`.
fn build(name: &str, dir: &Path) -> String {
    let source = format!("{}/tests/bpf/{name}.c", env!("CARGO_MANIFEST_DIR"));
    let object = dir.join(format!("{name}.o")).to_string_lossy().into_owned();
    must(
        "clang",
        &[
            "-O2",
            "-g",
            "-target",
            "bpf",
            "-Wall",
            "-Werror",
            "-I/usr/include/x86_64-linux-gnu",
            "-c",
            &source,
            "-o",
            &object,
        ],
    );
    object
}

/// The id bpftool gives the loaded program of `kind` whose name starts with `name`.
fn bpftool_id(kind: &str, name: &str) -> String {
    let listing = must("bpftool", &["prog", "show"]);
    listing
        .lines()
        .find(|line| line.contains(&format!(" {kind} ")) && line.contains(&format!(" name {name}")))
        .and_then(|line| line.split(':').next())
        .unwrap_or_else(|| panic!("bpftool shows no {kind} program {name}: {listing}"))
        .to_string()
}

#[test]
fn bpf_progs_without_fentry_names_what_it_would_trace_and_leaves_nothing() {
    let Some(_guard) = root_test("bpf_progs_without_fentry_names_what_it_would_trace_and_leaves_nothing") else {
        return;
    };
    let features: serde_json::Value = serde_json::from_slice(&netcap(&["features", "--json"]).stdout).unwrap();
    assert_eq!(
        features["features"]["fentry"]["present"].as_bool(),
        Some(false),
        "this test is for kernels without fentry (the VM tier traces programs where fentry is)"
    );
    let dir = scratch_dir("bpf-progs");
    let pair = Pair::new();
    let tc_object = build("tc_drop_port", &dir);
    let xdp_object = build("xdp_drop_echo", &dir);
    let in_b = |args: &[&str]| {
        let output = pair.exec(&pair.b, args);
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    in_b(&["tc", "qdisc", "add", "dev", &pair.dev_b, "clsact"]);
    in_b(&["tc", "filter", "add", "dev", &pair.dev_b, "ingress", "bpf", "da", "obj", &tc_object, "sec", "tc"]);
    in_b(&["ip", "link", "set", &pair.dev_b, "xdp", "obj", &xdp_object, "sec", "xdp"]);
    let tc_id = bpftool_id("sched_cls", "drop_tcp_9000");
    let xdp_id = bpftool_id("xdp", "drop_echo_reque");

    let every = netcap(&["skb", "--bpf-progs", "-i", "any"]);
    let stderr = String::from_utf8_lossy(&every.stderr);
    assert_eq!(every.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("fentry") && stderr.contains("cannot do"), "{stderr}");
    // Named as fentry would attach to them: the BTF function's whole name
    // (the kernel keeps 15 bytes of it), with bpftool's ids.
    assert!(stderr.contains(&format!("drop_tcp_9000[{tc_id}]")), "{stderr}");
    assert!(stderr.contains(&format!("drop_echo_requests[{xdp_id}]")), "{stderr}");

    // A selection narrows the list: by hook, by id, by name.
    for (selection, listed, left_out) in [
        ("xdp".to_string(), format!("drop_echo_requests[{xdp_id}]"), "drop_tcp_9000"),
        (tc_id.clone(), format!("drop_tcp_9000[{tc_id}]"), "drop_echo_requests"),
        ("drop_echo_requests".into(), format!("drop_echo_requests[{xdp_id}]"), "drop_tcp_9000"),
    ] {
        let chosen = netcap(&["skb", &format!("--bpf-progs={selection}"), "-f", "tp:net:netif_receive_skb"]);
        let stderr = String::from_utf8_lossy(&chosen.stderr);
        assert_eq!((chosen.status.code(), stderr.lines().count()), (Some(2), 1), "{selection}: {stderr}");
        assert!(
            stderr.contains(&format!("would trace: {listed}")) && !stderr.contains(left_out),
            "{selection}: {stderr}"
        );
    }

    // A name nobody loaded: the mistake and what is loaded.
    let unknown = netcap(&["skb", "--bpf-progs=no_such_prog"]);
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!((unknown.status.code(), stderr.lines().count()), (Some(2), 1), "{stderr}");
    assert!(stderr.contains("'no_such_prog'") && stderr.contains(&format!("drop_tcp_9000[{tc_id}] (tc)")), "{stderr}");

    // Without --bpf-progs, -f is still required.
    let neither = netcap(&["skb"]);
    assert_eq!(neither.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&neither.stderr).contains("--function"));

    assert_eq!(netcap_programs_loaded(), Vec::<String>::new(), "netcap left programs loaded");
    // The traced programs themselves are untouched.
    assert_eq!(bpftool_id("sched_cls", "drop_tcp_9000"), tc_id);
    assert_eq!(bpftool_id("xdp", "drop_echo_reque"), xdp_id);
}

/// `--nft` is fexit on nft_do_chain and ipt_do_table: on this kernel, without fentry, one
/// line that says so, exit 2, nothing loaded.
#[test]
fn nft_without_fentry_says_so_in_one_line() {
    let Some(_guard) = root_test("nft_without_fentry_says_so_in_one_line") else { return };
    let output = netcap(&["skb", "--nft", "-e", "tcp port 9100"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!((output.status.code(), stderr.lines().count()), (Some(2), 1), "{stderr}");
    assert!(
        stderr.contains("--nft traces nft_do_chain, nft_trace_notify and ipt_do_table by fentry and fexit")
            && stderr.contains("no fentry here"),
        "{stderr}"
    );
    assert_eq!(netcap_programs_loaded(), Vec::<String>::new(), "netcap left programs loaded");
}
