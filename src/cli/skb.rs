//! `netcap skb`, `netcap raw`, `netcap mbuf`: the options of ByteDance
//! netcap's subcommands, same names, same defaults.

use std::path::PathBuf;

use clap::Args;

use crate::feature::ct::CtArgs;
use crate::feature::drop::DropArgs;
use crate::feature::fake_headers::FakeHeaderArgs;
use crate::feature::fields::FieldsArgs;
use crate::feature::gather::GatherArgs;
use crate::feature::nft::NftArgs;
use crate::feature::progs::ProgsArgs;
use crate::feature::scope::ScopeArgs;
use crate::feature::stack::StackArgs;
use crate::feature::track::TrackArgs;
use crate::feature::user::ExtArgs;

pub use crate::feature::Color;

#[derive(Debug, Args)]
#[command(after_long_help = "Examples:\n  \
    netcap skb -f tracepoint:net:netif_receive_skb -i veth1\n  \
    netcap skb -f tracepoint:skb:kfree_skb -e 'tcp port 9000' -S\n  \
    netcap skb -f icmp_rcv@1 -i eth0 -e 'host 198.18.0.45' -t -nnv\n  \
    netcap skb -f tp:net:net_dev_queue,tp:net:netif_receive_skb -w out.pcapng -c 100\n  \
    netcap skb --bpf-progs=tc,xdp -i eth0 -e 'tcp port 443'")]
pub struct SkbArgs {
    /// Trace points, comma-separated: [prefix:]name[@p1[@p2]].
    ///
    /// No prefix, fentry: or kprobe: is a kernel function; tracepoint:CAT:NAME or tp:CAT:NAME a
    /// tracepoint (tp_btf, falling back to raw_tp); raw_tp:CAT:NAME forces raw_tp. @p1 is the
    /// 1-based argument holding the sk_buff (found from BTF when omitted), @p2 an extra argument
    /// for extensions. `netcap list` shows what can be traced.
    #[arg(short = 'f', long = "function", required_unless_present_any = ["bpf_progs", "nft"])]
    pub function: Vec<String>,

    #[command(flatten)]
    pub capture: CaptureArgs,

    #[command(flatten)]
    pub progs: ProgsArgs,

    #[command(flatten)]
    pub nft: NftArgs,

    /// Device of the skb, by name or index, in netcap's network namespace (or the one --netns
    /// names); `any` for all.
    #[arg(short = 'i', long, default_value = "any")]
    pub interface: String,

    #[command(flatten)]
    pub scope: ScopeArgs,

    #[command(flatten)]
    pub fields: FieldsArgs,

    #[command(flatten)]
    pub ct: CtArgs,

    #[command(flatten)]
    pub stack: StackArgs,

    #[command(flatten)]
    pub drops: DropArgs,

    #[command(flatten)]
    pub fake_headers: FakeHeaderArgs,

    #[command(flatten)]
    pub track: TrackArgs,

    /// Read the packet from skb->data.
    #[arg(long = "skb-data")]
    pub skb_data: bool,

    /// With --skb-data: start this many bytes after skb->data (may be negative).
    #[arg(long = "skb-data-offset", default_value_t = 0, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i32).range(-65535..=65535))]
    pub skb_data_offset: i32,

    /// Benchmarks only: attach an empty program instead, to measure the floor.
    #[arg(long = "bench-floor", hide = true)]
    pub bench_floor: bool,
}

/// `netcap raw` and `netcap mbuf`: packets inside a user-space process.
#[derive(Debug, Args)]
pub struct UserArgs {
    /// Trace points, comma-separated: [/path/to/binary:]func[@p1[@p2]] or usdt:PROVIDER:PROBE[@p1[@p2]].
    ///
    /// raw: func@p1@p2 is `func(char *pkt, uint16_t len)`, the buffer at argument p1 and its length
    /// at p2 (default @1@2). mbuf: func@p1 takes one struct rte_mbuf * at p1 (default @1);
    /// func@p1@p2 an array of mbufs at p1 and their count at p2. Without -p, name the binary
    /// (/path/to/binary:func): every process running it is traced, also those started later.
    #[arg(short = 'f', long = "function", required = true)]
    pub function: Vec<String>,

    /// Process to trace (its executable and shared libraries are searched for the function).
    #[arg(short = 'p', long)]
    pub pid: Option<i32>,

    #[command(flatten)]
    pub capture: CaptureArgs,
}

#[derive(Debug, Args)]
#[command(after_long_help = "Examples:\n  \
    netcap raw -p 4242 -f xsk_rx_frame -e icmp\n  \
    netcap raw -f /usr/bin/my-afxdp:handle_frame@2@3 -w out.pcapng")]
pub struct RawArgs {
    #[command(flatten)]
    pub user: UserArgs,
}

#[derive(Debug, Args)]
#[command(after_long_help = "Examples:\n  \
    netcap mbuf -p 4242 -f my_rx_one@1\n  \
    netcap mbuf -p 4242 -f my_rx_burst@2@3 -e 'udp port 4789'\n  \
    netcap mbuf -p 4242 -f usdt:my_app:rx@1@2 -w out.pcapng")]
pub struct MbufArgs {
    #[command(flatten)]
    pub user: UserArgs,

    /// Byte offsets of struct rte_mbuf's fields, e.g. buf_addr=0,data_off=16,pkt_len=36,data_len=40,next=64,port=22
    /// (default: from the target's debug information, else DPDK 21.11 to 24.11's layout).
    #[arg(long = "mbuf-layout", value_name = "FIELD=OFFSET,...")]
    pub mbuf_layout: Option<String>,
}

/// Options every subcommand shares: filtering, output, extensions, journeys.
#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// tcpdump filter expression.
    #[arg(short = 'e', long)]
    pub expression: Option<String>,

    /// Print packets with tcpdump, started with these flags (e.g. "-nnv"); needs tcpdump.
    #[arg(short = 't', long = "tcpdump-flags", allow_hyphen_values = true, conflicts_with = "json")]
    pub tcpdump_flags: Option<String>,

    /// Print one JSON object per event, and a last one with the summary.
    #[arg(long)]
    pub json: bool,

    /// Write captured packets to this pcapng file (`-` for stdout) instead of printing them.
    #[arg(short = 'w', long = "write-file", conflicts_with_all = ["tcpdump_flags", "json"])]
    pub write_file: Option<PathBuf>,

    /// With -w: classic pcap instead of pcapng (no per-packet metadata).
    #[arg(long)]
    pub pcap: bool,

    /// With -w: keep only the last N packets in memory and write them at exit.
    #[arg(long = "write-file-rotate", default_value_t = 0)]
    pub write_file_rotate: u32,

    /// Stop after N packets (0: no limit).
    #[arg(short = 'c', long, default_value_t = 0)]
    pub count: u64,

    /// Bytes of each packet to capture (paged data included).
    #[arg(long = "capture-max-size", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub capture_max_size: u32,

    #[command(flatten)]
    pub ext: ExtArgs,

    #[command(flatten)]
    pub gather: GatherArgs,

    /// Print what would be loaded and attached, then exit.
    #[arg(long = "dry-run")]
    pub dry_run: bool,

    /// Ring buffer size in MiB (a power of two).
    #[arg(long = "ring-buffer-mb", default_value_t = 8, value_parser = ring_size)]
    pub ring_buffer_mb: u32,
}

fn ring_size(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) if n.is_power_of_two() && n <= 1024 => Ok(n),
        _ => Err(format!("'{text}' is not a power of two from 1 to 1024")),
    }
}
