//! User extensions (--ext-filter, --ext-action): C compiled by clang at run
//! time, loaded in place of the embedded object, the user's struct read
//! from the object's BTF and printed in each packet's block.

use std::path::Path;

use crate::util::*;

/// The seed's action, with the names of netcap's articles (xcap_user_*).
const SEED_ACTION_OLD_NAMES: &str = "struct xcap_user_extend {
int a; // format: 0x%x
uint32_t b;
int64_t c;
uint8_t x1; // format: %c
uint8_t x2; // format: 0x%x
uint16_t x3; // format: 0x%x
};
static inline int xcap_user_action(void *ctx, void *pkt, u32 pkt_len, struct xcap_user_extend *user, u16 trace_index) {
user->a = 0x12345678;
user->b = 1000;
user->c = 2002;
user->x1 = 'M';
user->x2 = 0x11;
user->x3 = 0xabcd;
return 1;
}
";

const SEED_LINE: &str = "{a: 0x12345678; b: 1000; c: 2002; x1: M; x2: 0x11; x3: 0xabcd}";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// The seed's struct and action under both name generations print exactly
/// the seed's values, once per packet, right after that packet's line.
#[test]
fn the_seed_action_prints_its_struct_under_both_names() {
    let Some(_guard) = root_test("the_seed_action_prints_its_struct_under_both_names") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("ext-seed");
    let new_names = SEED_ACTION_OLD_NAMES.replace("xcap_user_action(void *ctx", "xcap_ext_action(void *ext");
    assert_ne!(new_names, SEED_ACTION_OLD_NAMES);
    for (name, source) in [("old.c", SEED_ACTION_OLD_NAMES), ("new.c", new_names.as_str())] {
        let action = write(&dir, name, source);
        let netcap = pair.watch_receive(&["-e", "icmp", "--ext-action", &action], &dir);
        assert!(pair.ping(3, 56).status.success());
        let out = netcap.interrupt();
        assert!(out.status.success(), "{name}: {}", out.stderr);
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 6, "{name}: a packet line and a user line per ping:\n{}", out.stdout);
        for (i, pair_of_lines) in lines.chunks(2).enumerate() {
            assert!(pair_of_lines[0].contains("ICMP echo request"), "{name}: {}", pair_of_lines[0]);
            assert_eq!(pair_of_lines[1], format!("--> No {}'s pkt User Action >> {SEED_LINE}", i + 1), "{name}");
        }
    }

    // The same fields travel in each packet's pcapng comment.
    let action = write(&dir, "old.c", SEED_ACTION_OLD_NAMES);
    let file = dir.join("ext.pcapng");
    let file = file.to_str().unwrap();
    let netcap = pair.watch_receive(&["-e", "icmp", "-w", file, "--ext-action", &action], &dir);
    assert!(pair.ping(2, 56).status.success());
    assert!(netcap.interrupt().status.success());
    let comments = must("tshark", &["-r", file, "-T", "fields", "-e", "frame.comment"]);
    let comments: Vec<&str> = comments.lines().collect();
    assert_eq!(comments.len(), 2, "{comments:?}");
    assert!(comments.iter().all(|c| c.contains(&format!(" user={SEED_LINE}"))), "{comments:?}");
}

/// A struct of mixed sizes (padding between them), negative values, arrays,
/// a char array, a bool, a value taken from the packet: printed as C would,
/// and given to JSON as numbers.
#[test]
fn mixed_struct_with_padding_negatives_and_arrays() {
    let Some(_guard) = root_test("mixed_struct_with_padding_negatives_and_arrays") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("ext-mixed");
    let action = write(
        &dir,
        "mixed.c",
        r#"struct xcap_user_extend {
    char tag;            // format: %c
    int64_t big;
    short neg;
    unsigned char bytes[3];
    int arr[2];          /* format: %d */
    char name[8];
    __u32 len;           // format: len=%u
    bool flag;
    long minus;          // format: %x
};

static inline int xcap_ext_action(void *ext, void *pkt, u32 pkt_len,
                                  struct xcap_user_extend *user, u16 trace_index)
{
    user->tag = 'Z';
    user->big = -1234567890123LL;
    user->neg = -300;
    user->bytes[0] = 1; user->bytes[1] = 2; user->bytes[2] = 255;
    user->arr[0] = -1; user->arr[1] = 7;
    __builtin_memcpy(user->name, "netcap", 7);
    user->len = pkt_len;
    user->flag = pkt_len > 64;
    user->minus = -2;
    return 1;
}
"#,
    );
    let netcap = pair.watch_receive(&["-e", "icmp", "--json", "--ext-action", &action], &dir);
    assert!(pair.ping(2, 56).status.success());
    let out = netcap.interrupt();
    assert!(out.status.success(), "{}", out.stderr);
    let events = json_events(&out.stdout);
    assert_eq!(events.len(), 2, "{}", out.stdout);
    for event in &events {
        let user = &event["user"];
        assert_eq!(user["tag"], 90);
        assert_eq!(user["big"], -1_234_567_890_123i64);
        assert_eq!(user["neg"], -300);
        assert_eq!(user["bytes"], serde_json::json!([1, 2, 255]));
        assert_eq!(user["arr"], serde_json::json!([-1, 7]));
        assert_eq!(user["name"], "netcap");
        assert_eq!(user["len"], event["len"], "pkt_len reaches the action");
        assert_eq!(user["flag"], true);
        assert_eq!(user["minus"], -2);
    }

    let netcap = pair.watch_receive(&["-e", "icmp", "--ext-action", &action], &dir);
    assert!(pair.ping(1, 56).status.success());
    let out = netcap.interrupt();
    let user_lines = lines_with(&out.stdout, "User Action");
    assert_eq!(
        user_lines,
        ["--> No 1's pkt User Action >> {tag: Z; big: -1234567890123; neg: -300; bytes: [1, 2, 255]; \
          arr: [-1, 7]; name: netcap; len: len=98; flag: true; minus: fffffffffffffffe}"],
        "{}",
        out.stdout
    );
}

/// The filter sees the trace index: keeping index 1 of two points leaves
/// only that point's packets. An action returning 0 hides only its line.
#[test]
fn a_filter_keeps_one_trace_point_and_an_action_can_stay_silent() {
    let Some(_guard) = root_test("a_filter_keeps_one_trace_point_and_an_action_can_stay_silent") else { return };
    let pair = Pair::new();
    let dir = scratch_dir("ext-filter");
    let filter = write(
        &dir,
        "filter.c",
        "static inline int xcap_ext_filter(void *ext, void *pkt, u16 trace_index)\n{\n\treturn trace_index == 1;\n}\n",
    );
    let points = "tp:net:net_dev_queue,tp:net:netif_receive_skb";
    let args = ["skb", "-f", points, "-i", &pair.dev_b, "-e", "icmp", "--ext-filter", &filter];
    let netcap = Netcap::start(Some(&pair.b), &args, &dir);
    assert!(pair.ping(3, 56).status.success());
    let out = netcap.interrupt();
    assert!(out.status.success(), "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    // b receives 3 requests (netif_receive_skb) and queues 3 replies (net_dev_queue).
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(lines.iter().all(|l| l.contains(" netif_receive_skb ") && l.contains("echo request")), "{}", out.stdout);

    // Without the filter both points show; the action speaks only at index 0.
    let action = write(
        &dir,
        "quiet.c",
        "struct xcap_user_extend { u16 index; };\n\
         static inline int xcap_ext_action(void *ext, void *pkt, u32 pkt_len, struct xcap_user_extend *user, u16 trace_index)\n\
         {\n\tuser->index = trace_index;\n\treturn trace_index == 0;\n}\n",
    );
    let netcap = Netcap::start(
        Some(&pair.b),
        &["skb", "-f", points, "-i", &pair.dev_b, "-e", "icmp", "--ext-action", &action],
        &dir,
    );
    assert!(pair.ping(2, 56).status.success());
    let out = netcap.interrupt();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 6, "4 packets, 2 user lines:\n{}", out.stdout);
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("-->") {
            assert!(lines[i - 1].contains(" net_dev_queue "), "{}", out.stdout);
            assert!(line.ends_with("User Action >> {index: 0}"), "{line}");
        }
    }
}

/// Mistakes are reported in the user's terms, with exit code 2 and nothing
/// left in the kernel: a compile error at the user's line, clang missing,
/// a verifier refusal with the verifier's words.
#[test]
fn compile_errors_missing_clang_and_verifier_refusals_are_explained() {
    let Some(_guard) = root_test("compile_errors_missing_clang_and_verifier_refusals_are_explained") else { return };
    let dir = scratch_dir("ext-errors");
    let bad = write(
        &dir,
        "bad_filter.c",
        "static inline int xcap_ext_filter(void *ext, void *pkt, u16 trace_index)\n{\n\treturn undefined_thing;\n}\n",
    );
    let out = netcap(&["skb", "-f", "tp:net:netif_receive_skb", "--ext-filter", &bad]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("{bad}:3:")), "clang names the user's file and line: {stderr}");
    assert!(stderr.contains("undefined_thing"), "{stderr}");
    assert!(!stderr.contains("/tmp/netcap-ext-"), "no temporary paths: {stderr}");

    let good = write(&dir, "good.c", "static inline int xcap_ext_filter(void *e, void *p, u16 i) { return 1; }\n");
    let no_clang = std::process::Command::new(NETCAP)
        .args(["skb", "-f", "tp:net:netif_receive_skb", "--ext-filter", &good])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&no_clang.stderr);
    assert_eq!(no_clang.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("clang") && stderr.contains("apt-get install clang"), "{stderr}");

    let unsafe_read = write(
        &dir,
        "unsafe.c",
        "static inline int xcap_ext_filter(void *ext, void *pkt, u16 trace_index)\n{\n\treturn *(long *)(pkt + 100000);\n}\n",
    );
    let out = netcap(&["skb", "-f", "tp:net:netif_receive_skb", "--ext-filter", &unsafe_read]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the verifier refused"), "{stderr}");
    assert!(stderr.contains("unsafe.c:3"), "the log points at the user's line: {stderr}");
    assert!(netcap_programs_loaded().is_empty(), "nothing left attached");

    let dry = netcap(&["skb", "-f", "tp:net:netif_receive_skb", "--ext-filter", &good, "--dry-run"]);
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(dry.status.success());
    assert!(text.contains(&format!("#line 1 \"{good}\"")) && text.contains("return 1;"), "{text}");
    assert!(text.contains("xcap_ext_filter((void *)ext, pkt, trace_index)"), "netcap's own code is shown too");
}
