//! `netcap read FILE`: a saved capture (pcap or pcapng; `-` for standard
//! input), filtered again with -e (libpcap's interpreter, as tcpdump -r).
//!
//! A file netcap wrote is read back as the events it held: each packet's
//! trace point, device, drop, track and stack come from its comment
//! (`saved::metadata`), and the events go through the same outputs and
//! stages as a live capture's — text, --json, --gather's journeys and
//! delays, the drop summary — and may be filtered by trace point, drop
//! reason or device, or written (-w) to a smaller pcapng. Any other capture,
//! or `--packets-only`, is printed packet by packet as tcpdump prints it:
//! the decoder's differential test drives this (tests/host/decoder.rs).

use std::collections::HashMap;
use std::io::{self, BufWriter, Write};

use anyhow::{Context as _, Result, bail};

use crate::cli::ReadArgs;
use crate::event::{Event, Link};
use crate::filter::OfflineFilter;
use crate::packet;
use crate::pipeline::DropSummary;
use crate::pipeline::gather::{Gather, Matching};
use crate::saved::{self, Packet, Reader, metadata};
use crate::sink::json::JsonSink;
use crate::sink::text::{TextSink, clock_text};
use crate::sink::{Context, Sink};

/// libpcap's link types netcap's decoder reads.
const LINKTYPE_ETHERNET: u16 = 1;
const LINKTYPE_RAW: [u16; 5] = [12, 14, 101, 228, 229];
const DLT_EN10MB: i32 = 1;
const DLT_RAW: i32 = 12;

fn link_of(file: &str, link_type: Option<u16>) -> Result<Link> {
    match link_type {
        Some(LINKTYPE_ETHERNET) => Ok(Link::Ethernet),
        Some(raw) if LINKTYPE_RAW.contains(&raw) => Ok(Link::Raw),
        Some(other) => bail!(
            "{file}: link type {other} ({}): netcap's decoder reads Ethernet (1) and raw IP (101) captures",
            pcap::Linktype(i32::from(other)).get_name().unwrap_or_else(|_| "unknown".into())
        ),
        None => bail!("{file}: a packet on an interface the file never described"),
    }
}

/// `-e`, compiled once per link type it meets.
struct Filters<'a> {
    expression: Option<&'a str>,
    compiled: HashMap<Link, OfflineFilter>,
}

impl Filters<'_> {
    fn keeps(&mut self, link: Link, packet: &Packet) -> Result<bool> {
        let Some(expression) = self.expression else { return Ok(true) };
        let filter = match self.compiled.entry(link) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let dlt = if link == Link::Ethernet { DLT_EN10MB } else { DLT_RAW };
                entry.insert(
                    OfflineFilter::compile(expression, dlt).map_err(|e| anyhow::anyhow!("-e '{expression}': {e}"))?,
                )
            }
        };
        Ok(filter.matches(&packet.data, packet.wire_len))
    }
}

pub fn read(args: &ReadArgs) -> Result<()> {
    let mut reader = Reader::open(&args.file)?;
    let by_metadata =
        !args.points.is_empty() || args.drop_reason.is_some() || args.device.is_some() || args.gather.gather;
    if by_metadata && !reader.written_by_netcap() {
        bail!(
            "{}: not written by netcap, so its packets carry no trace point, device or drop: \
             --point, --drop-reason, --dev and --gather read netcap's own pcapng (netcap skb -w)",
            args.file
        );
    }
    if args.packets_only && (by_metadata || args.json) {
        bail!(
            "--packets-only prints packets as tcpdump does: it takes no --point, --drop-reason, --dev, --gather or --json"
        );
    }
    let mut filters = Filters { expression: args.expression.as_deref(), compiled: HashMap::new() };
    if let Some(path) = &args.write_file {
        return copy(args, &mut reader, &mut filters, path);
    }
    if args.packets_only || !(reader.written_by_netcap() || args.json) {
        return packets(args, &mut reader, &mut filters);
    }
    events(args, &mut reader, &mut filters)
}

/// What the stages below write to, standard output; a closed pipe is a
/// normal end.
fn ended(error: io::Error) -> Result<()> {
    if error.kind() == io::ErrorKind::BrokenPipe { Ok(()) } else { Err(error.into()) }
}

/// Each packet as tcpdump prints it.
fn packets(args: &ReadArgs, reader: &mut Reader, filters: &mut Filters) -> Result<()> {
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut printed = 0u64;
    let mut seqs = if args.absolute_tcp_seq { packet::TcpSeqs::absolute() } else { packet::TcpSeqs::relative() };
    let mut line = String::new();
    while let Some(packet) = reader.next_packet().with_context(|| args.file.clone())? {
        let link = link_of(&args.file, reader.link_type(&packet))?;
        if !filters.keeps(link, &packet)? {
            continue;
        }
        line.clear();
        printed += 1;
        if args.number {
            line.push_str(&format!("{printed:5}  "));
        }
        if !args.no_time {
            line.push_str(&clock_text(packet.time_ns));
            line.push(' ');
        }
        line.push_str(&packet::describe_packet(link, &packet.data, packet.wire_len as usize, &mut seqs, false));
        line.push('\n');
        if let Err(error) = out.write_all(line.as_bytes()) {
            return ended(error);
        }
        if args.count != 0 && printed >= args.count {
            break;
        }
    }
    out.flush().or_else(ended)
}

/// The trace point names of the interfaces read so far.
fn points(reader: &Reader) -> Vec<String> {
    reader
        .interfaces
        .iter()
        .enumerate()
        .map(|(n, i)| i.name.clone().unwrap_or_else(|| format!("interface {n}")))
        .collect()
}

/// The saved events, as a live capture would have shown them.
fn events(args: &ReadArgs, reader: &mut Reader, filters: &mut Filters) -> Result<()> {
    let stdout = io::stdout();
    let out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut sink: Box<dyn Sink> = match (args.json, args.no_time) {
        (true, _) => Box::new(JsonSink::new(out)),
        (false, false) => Box::new(TextSink::new(out)),
        (false, true) => Box::new(TextSink::without_time(out)),
    };
    let mut context = Context::offline(points(reader));
    let journeys = &args.gather;
    let mut gather = journeys.gather.then(|| {
        let matching = if journeys.gather_distinguish_by_pointer { Matching::Pointer } else { Matching::Content };
        Gather::new(
            reader.interfaces.len().max(2),
            matching,
            u64::from(journeys.gather_timeout) * 1_000_000_000,
            journeys.gather_buffer_size as usize,
        )
        .with_min_latency(journeys.gather_min_latency.unwrap_or(0))
    });
    let mut drops = DropSummary::default();
    let mut written = 0u64;
    let mut number = 0u64;
    let from_netcap = reader.written_by_netcap();
    let write = |sink: &mut Box<dyn Sink>, event: &Event, context: &Context, written: &mut u64| -> io::Result<bool> {
        if args.count != 0 && *written >= args.count {
            return Ok(false);
        }
        sink.write(event, context)?;
        *written += 1;
        Ok(true)
    };
    while let Some(mut packet) = reader.next_packet().with_context(|| args.file.clone())? {
        if reader.interfaces.len() != context.points.len() {
            context.points = points(reader);
        }
        let link = link_of(&args.file, reader.link_type(&packet))?;
        if !filters.keeps(link, &packet)? {
            continue;
        }
        // Another program's comments are not netcap's metadata.
        if !from_netcap {
            packet.comment = None;
        }
        let mut event = metadata::take(packet, link);
        if !wanted(args, &event, &context) {
            continue;
        }
        number += 1;
        event.number = number;
        drops.add(&event);
        // Without --gather, each event as it comes (no batch to allocate).
        let (batch, single);
        let ready: &[Event] = match &mut gather {
            Some(gather) => {
                batch = gather.add(event);
                &batch
            }
            None => {
                single = [event];
                &single
            }
        };
        for event in ready {
            match write(&mut sink, event, &context, &mut written) {
                Ok(true) => {}
                Ok(false) => return finish(sink, &drops, gather.as_ref(), &context, args),
                Err(error) => return ended(error),
            }
        }
    }
    if let Some(gather) = &mut gather {
        for event in gather.drain() {
            match write(&mut sink, &event, &context, &mut written) {
                Ok(true) => {}
                Ok(false) => break,
                Err(error) => return ended(error),
            }
        }
    }
    finish(sink, &drops, gather.as_ref(), &context, args)
}

/// --point, --drop-reason, --dev.
fn wanted(args: &ReadArgs, event: &Event, context: &Context) -> bool {
    if !args.points.is_empty() && !args.points.iter().any(|p| p == context.point(event)) {
        return false;
    }
    if let Some(reason) = &args.drop_reason {
        match &event.drop {
            None => return false,
            Some(drop) if reason != "any" && !drop.reason.eq_ignore_ascii_case(reason) => return false,
            Some(_) => {}
        }
    }
    args.device.as_ref().is_none_or(|device| &event.ifname == device)
}

fn finish(
    mut sink: Box<dyn Sink>,
    drops: &DropSummary,
    gather: Option<&Gather>,
    context: &Context,
    args: &ReadArgs,
) -> Result<()> {
    if let Err(error) = sink.finish() {
        return ended(error);
    }
    if args.json {
        return Ok(());
    }
    if !drops.is_empty() {
        eprintln!("netcap: drops:\n{}", drops.render().trim_end());
    }
    if let Some(gather) = gather {
        eprintln!("netcap: delays between trace points:\n{}", gather.render_hops(&context.points).trim_end());
    }
    Ok(())
}

/// -w: the packets kept, into a pcapng file — netcap's own blocks copied as
/// they were (metadata and all), a classic pcap's packets in new ones.
fn copy(args: &ReadArgs, reader: &mut Reader, filters: &mut Filters, path: &std::path::Path) -> Result<()> {
    let file = super::output::create_capture_file(path)?;
    reader.keep_blocks = true;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let from_pcapng = reader.sections > 0;
    let context = Context::offline(points(reader));
    let mut sections_written = 0;
    let mut interfaces_written = 0;
    let mut kept = 0u64;
    while let Some(packet) = reader.next_packet().with_context(|| args.file.clone())? {
        let link = link_of(&args.file, reader.link_type(&packet))?;
        if !filters.keeps(link, &packet)? {
            continue;
        }
        if reader.written_by_netcap() && !wanted(args, &metadata::restore(&packet, link), &context) {
            continue;
        }
        if from_pcapng {
            // A new section of the input starts one in the output.
            if sections_written != reader.sections {
                out.write_all(&reader.section)?;
                sections_written = reader.sections;
                interfaces_written = 0;
            }
            for interface in &reader.interfaces[interfaces_written..] {
                out.write_all(&interface.block)?;
            }
            interfaces_written = reader.interfaces.len();
            out.write_all(&packet.block)?;
        } else {
            if kept == 0 {
                let link_type = reader.interfaces[0].link_type;
                out.write_all(&saved::new_section(link_type))?;
            }
            out.write_all(&saved::packet_block(&packet))?;
        }
        kept += 1;
        if args.count != 0 && kept >= args.count {
            break;
        }
    }
    if kept == 0 && !from_pcapng {
        out.write_all(&saved::new_section(reader.interfaces[0].link_type))?;
    } else if kept == 0 {
        out.write_all(&reader.section)?;
        for interface in &reader.interfaces {
            out.write_all(&interface.block)?;
        }
    }
    out.flush().with_context(|| format!("writing {}", path.display()))?;
    eprintln!("netcap: {kept} packets written to {}", path.display());
    Ok(())
}
