//! `netcap read FILE`: a saved capture (pcap or pcapng, read by libpcap;
//! `-` for standard input) printed with netcap's decoder, one line a packet,
//! filtered again with -e. Also the driver of the decoder's differential test
//! against tcpdump (tests/host/decoder.rs).

use std::io::{self, BufWriter, Write};

use anyhow::{Context as _, Result, bail};

use crate::cli::ReadArgs;
use crate::event::Link;
use crate::packet;
use crate::sink::text::clock_text;

/// libpcap's link types netcap's decoder reads.
const DLT_EN10MB: i32 = 1;
const DLT_RAW: [i32; 3] = [12, 14, 101];

pub fn read(args: &ReadArgs) -> Result<()> {
    let mut capture = if args.file == "-" {
        // SAFETY: fd 0 is this process's standard input, open for the capture's lifetime.
        unsafe { pcap::Capture::from_raw_fd(0) }.context("reading a capture from standard input")?
    } else {
        pcap::Capture::from_file(&args.file).with_context(|| format!("reading {}", args.file))?
    };
    let link = match capture.get_datalink().0 {
        DLT_EN10MB => Link::Ethernet,
        dlt if DLT_RAW.contains(&dlt) => Link::Raw,
        dlt => bail!(
            "{}: link type {dlt} ({}): netcap's decoder reads Ethernet (1) and raw IP (12, 101) captures",
            args.file,
            pcap::Linktype(dlt).get_name().unwrap_or_else(|_| "unknown".into())
        ),
    };
    if let Some(expression) = &args.expression {
        capture.filter(expression, true).with_context(|| format!("-e '{expression}'"))?;
    }
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut printed = 0u64;
    let mut seqs = if args.absolute_tcp_seq { packet::TcpSeqs::absolute() } else { packet::TcpSeqs::relative() };
    let mut line = String::new();
    loop {
        let packet = match capture.next_packet() {
            Ok(packet) => packet,
            Err(pcap::Error::NoMorePackets) => break,
            Err(error) => bail!("{}: {error}", args.file),
        };
        line.clear();
        printed += 1;
        if args.number {
            line.push_str(&format!("{printed:5}  "));
        }
        if !args.no_time {
            let ts = packet.header.ts;
            let ns = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_usec as u64 * 1000;
            line.push_str(&clock_text(ns));
            line.push(' ');
        }
        let wire_len = packet.header.len as usize;
        line.push_str(&packet::describe_packet(link, packet.data, wire_len, &mut seqs, false));
        line.push('\n');
        if let Err(error) = out.write_all(line.as_bytes()) {
            if error.kind() == io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(error.into());
        }
        if args.count != 0 && printed >= args.count {
            break;
        }
    }
    match out.flush() {
        Err(error) if error.kind() != io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}
