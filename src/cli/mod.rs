//! The command line, netcap's own: `netcap skb|list|version`. Only what the
//! user typed lives here; `run` turns it into a plan.

pub mod skb;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "netcap",
    version,
    about = "Follow network packets through the Linux kernel",
    long_about = "Follow network packets through the Linux kernel.\n\n\
        netcap attaches eBPF programs to kernel functions and tracepoints that handle an sk_buff, \
        and shows every packet seen there: where, on which device, when, and what it holds."
)]
pub struct Cli {
    /// Show libbpf's messages (verifier logs) when something fails to load.
    #[arg(short = 'v', long, global = true)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Trace kernel sk_buffs at functions and tracepoints.
    Skb(skb::SkbArgs),
    /// Trace DPDK rte_mbufs in a process, at functions (uprobes) or USDT probes.
    Mbuf(skb::MbufArgs),
    /// Trace packet buffers in a process: func(char *pkt, uint16_t len), e.g. in AF_XDP programs.
    Raw(skb::RawArgs),
    /// List the tracepoints and kernel functions that take an sk_buff.
    List(ListArgs),
    /// Read a saved capture (pcap or pcapng; - for standard input): netcap's own pcapng
    /// as the events it held (trace point, device, drop, track, stack), filtered by them
    /// and joined (--gather); any capture's packets as tcpdump prints them.
    Read(ReadArgs),
    /// Say what this kernel lets netcap do: each BPF mechanism, whether it is
    /// here, and what its absence costs.
    Features(FeaturesArgs),
    /// Print netcap's version, commit, build date and the libbpf and libpcap built in.
    Version,
    /// Packaging only: write the man pages and the bash, zsh and fish
    /// completions, generated from these very definitions, into DIR.
    #[command(hide = true)]
    GenerateDocs {
        /// Where to write them (created if missing).
        dir: std::path::PathBuf,
    },
    /// Benchmarks only: push N synthetic records through decoding and the
    /// pcapng writer, as a capture does after the ring buffer, and report events/s.
    #[command(hide = true)]
    BenchSink {
        /// Records to write.
        count: u64,
        /// The pcapng file to write.
        output: std::path::PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct ReadArgs {
    /// The capture: pcap or pcapng (netcap's own, or any other); - for standard input.
    pub file: String,
    /// Only packets that match this tcpdump expression (libpcap, as tcpdump -r would).
    #[arg(short = 'e', long = "expression")]
    pub expression: Option<String>,
    /// Stop after N packets (0: no limit).
    #[arg(short = 'c', long, default_value_t = 0)]
    pub count: u64,
    /// No timestamp at the start of each line (as tcpdump -t).
    #[arg(short = 't', long = "no-time")]
    pub no_time: bool,
    /// TCP sequence numbers as they are on the wire (tcpdump -S), not relative to each
    /// conversation's first.
    #[arg(long = "absolute-tcp-seq")]
    pub absolute_tcp_seq: bool,
    /// Number each packet, as tcpdump -# does.
    #[arg(short = '#', long = "number")]
    pub number: bool,
    /// Each packet as tcpdump prints it, even in netcap's own pcapng (whose
    /// packets are otherwise shown as netcap showed them: trace point, device,
    /// drop, track, stack).
    #[arg(long = "packets-only")]
    pub packets_only: bool,
    /// Only sightings at this trace point (as netcap named it; repeat for more).
    #[arg(long = "point", value_name = "NAME")]
    pub points: Vec<String>,
    /// Only dropped packets, with this reason (e.g. NETFILTER_DROP), or any
    /// reason with "any".
    #[arg(long = "drop-reason", value_name = "REASON")]
    pub drop_reason: Option<String>,
    /// Only packets seen on this device.
    #[arg(long = "dev", value_name = "NAME")]
    pub device: Option<String>,
    /// One JSON object per packet, as `netcap skb --json` writes them.
    #[arg(long, conflicts_with = "write_file")]
    pub json: bool,
    /// Write the packets kept to this pcapng file, each block as it was read
    /// (netcap's metadata kept).
    #[arg(short = 'w', long = "write-file", value_name = "FILE")]
    pub write_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub gather: crate::feature::gather::GatherArgs,
}

#[derive(Debug, clap::Args)]
pub struct FeaturesArgs {
    /// One JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only names containing this text.
    pub pattern: Option<String>,
    /// Only tracepoints.
    #[arg(long, conflicts_with = "functions")]
    pub tracepoints: bool,
    /// Only kernel functions.
    #[arg(long)]
    pub functions: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_seed_command_lines_parse() {
        let seeds: [&[&str]; 3] = [
            &["netcap", "skb", "-f", "icmp_rcv@1", "-i", "eth0", "-e", "host 198.18.0.45", "-t", "-nnv"],
            &["netcap", "skb", "-f", "tracepoint:skb:kfree_skb", "-e", "tcp port 9000", "-S"],
            &[
                "netcap",
                "skb",
                "-f",
                "tracepoint:net:netif_receive_skb,ip_local_deliver@1,ip_local_deliver_finish@3,icmp_rcv@1",
                "-e",
                "host 198.18.0.72 and icmp",
                "-i",
                "eth0",
                "--gather",
                "--gather-output-color",
                "cyan",
            ],
        ];
        for args in seeds {
            let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let Command::Skb(skb) = cli.command else { panic!("not skb") };
            assert!(!skb.function.is_empty());
            assert!(skb.capture.expression.is_some());
        }
    }
}
