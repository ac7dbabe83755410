//! netcap: follow network packets through the Linux kernel.

mod bpf {
    include!(concat!(env!("OUT_DIR"), "/netcap.skel.rs"));
}
mod cli;
mod elf;
mod event;
mod ext;
mod feature;
mod files;
mod filter;
mod kernel;
mod load;
mod packet;
mod pipeline;
mod plan;
mod run;
mod signals;
mod sink;

use clap::Parser;

use cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Skb(args) => run::skb(args, cli.verbose),
        Command::Raw(args) => run::user(&args.user, plan::user::Mode::Raw, None, cli.verbose),
        Command::Mbuf(args) => run::user(&args.user, plan::user::Mode::Mbuf, args.mbuf_layout.as_deref(), cli.verbose),
        Command::List(args) => run::list(args),
        Command::BenchSink { count, output } => run::bench_sink(*count, output),
        Command::Version => {
            println!("netcap {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    };
    if let Err(err) = result {
        let broken_pipe = err.chain().any(|cause| {
            cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
        });
        if broken_pipe {
            std::process::exit(0);
        }
        eprintln!("netcap: {err:#}");
        std::process::exit(2);
    }
}
