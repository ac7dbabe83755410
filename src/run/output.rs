//! Opening the output, before anything is attached: a capture file (-w),
//! tcpdump's text (-t), JSON, or netcap's lines.
//!
//! netcap runs as root and `-w` may name a path in a directory other users
//! can write (/tmp): the final component is never followed if it is a
//! symbolic link, an existing regular file is reused only when netcap's own
//! user owns it, and a new file is created readable by its owner only.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{Result, anyhow, bail};

use crate::cli::skb::CaptureArgs;
use crate::sink::json::JsonSink;
use crate::sink::pcap::PcapSink;
use crate::sink::pcapng::PcapngSink;
use crate::sink::tcpdump::TcpdumpSink;
use crate::sink::text::TextSink;
use crate::sink::{Context, Rotating, Sink};

pub fn open(args: &CaptureArgs, context: &Context, tcpdump_flags: Option<Vec<String>>) -> Result<Box<dyn Sink>> {
    let snaplen = args.capture_max_size;
    if let Some(path) = &args.write_file {
        let out: Box<dyn Write> = if path.as_os_str() == "-" {
            Box::new(BufWriter::new(io::stdout()))
        } else {
            Box::new(BufWriter::new(create_capture_file(path)?))
        };
        let file: Box<dyn Sink> = if args.pcap {
            Box::new(PcapSink::new(out, snaplen)?)
        } else {
            Box::new(PcapngSink::new(out, context, snaplen)?)
        };
        return Ok(match args.write_file_rotate {
            0 => file,
            keep => Box::new(Rotating::new(file, keep as usize, context.clone())),
        });
    }
    let stdout = BufWriter::new(io::stdout());
    Ok(match tcpdump_flags {
        Some(flags) => Box::new(TcpdumpSink::new(&flags, snaplen, stdout)?),
        None if args.json => Box::new(JsonSink::new(stdout)),
        None => Box::new(TextSink::new(stdout)),
    })
}

/// Opens `-w PATH` for writing as described at the top of this file. FIFOs
/// and character devices (a pipe to another program, /dev/null) are written
/// as they are.
pub fn create_capture_file(path: &Path) -> Result<File> {
    let shown = path.display();
    let file = File::options()
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|err| match err.raw_os_error() {
            // With O_CREAT the kernel answers a final symlink with EACCES, without it ELOOP.
            _ if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) => {
                anyhow!("-w {shown} is a symbolic link, which netcap does not follow: name the file it points to")
            }
            Some(libc::EISDIR) => anyhow!("-w {shown} is a directory: name a file in it"),
            Some(libc::ENOENT) => anyhow!("-w {shown}: its directory does not exist"),
            _ => anyhow!("creating {shown}: {err}"),
        })?;
    let meta = file.metadata().map_err(|err| anyhow!("creating {shown}: {err}"))?;
    if meta.file_type().is_file() {
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            bail!(
                "-w {shown} exists and belongs to uid {}, not to netcap's user ({me}): remove it or name another file",
                meta.uid()
            );
        }
        // Another name for the same file (a hard link planted beside it) is refused too.
        if meta.nlink() > 1 {
            bail!("-w {shown} has {} names (hard links): remove it or name another file", meta.nlink());
        }
        file.set_len(0).map_err(|err| anyhow!("truncating {shown}: {err}"))?;
    }
    Ok(file)
}
