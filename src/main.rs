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
mod saved;
mod signals;
mod sink;

use clap::Parser;

use cli::{Cli, Command};

/// clap's own help and version go out as clap writes them; a usage error
/// becomes one line, as every other error is, with exit code 2.
fn usage_error(err: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        err.exit();
    }
    let text = err.render().to_string();
    // The message, with the lines clap indents under it (the missing arguments), up to its tips.
    let message: Vec<&str> = text.lines().take_while(|line| !line.trim().is_empty()).map(str::trim).collect();
    let message = message.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    eprintln!("netcap: {message} (netcap --help lists the options)");
    std::process::exit(2);
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => usage_error(err),
    };
    let result = match &cli.command {
        Command::Skb(args) => run::skb(args, cli.verbose),
        Command::Raw(args) => run::user(&args.user, plan::user::Mode::Raw, None, cli.verbose),
        Command::Mbuf(args) => run::user(&args.user, plan::user::Mode::Mbuf, args.mbuf_layout.as_deref(), cli.verbose),
        Command::List(args) => run::list(args),
        Command::Read(args) => run::read::read(args),
        Command::Features(args) => run::features(args.json),
        Command::BenchSink { count, output } => run::bench_sink(*count, output),
        Command::Version => {
            println!("{}", run::version::text());
            Ok(())
        }
        Command::GenerateDocs { dir } => run::version::generate_docs(dir),
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
