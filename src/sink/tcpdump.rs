//! `-t FLAGS`: tcpdump prints the packets. netcap starts `tcpdump -r -`
//! itself (no shell), feeds it a pcap stream, and prints tcpdump's text for
//! each packet with netcap's own line as one block.
//!
//! Telling where one packet's text ends: netcap adds `-#` (tcpdump numbers
//! each packet's first line, "%5u  ") and follows every packet with a
//! marker packet. The marker's number closes the packet's block; the
//! marker's own text is skipped.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use thiserror::Error;

use super::pcap;
use super::text::lines_after;
use super::{Context, Sink};
use crate::event::Event;
use crate::feature::{ct, drop, fields, nft, progs, retval, scope, track};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FlagsError {
    #[error("-t '{0}': unbalanced quotes")]
    Quotes(String),
    #[error(
        "-t: tcpdump option '{0}' is not allowed here (netcap feeds tcpdump itself; \
         allowed: -A -e -K -n -N -q -S -t -u -v -x -X, -s N, -T TYPE)"
    )]
    NotAllowed(String),
}

/// Splits FLAGS as a shell would and keeps only options that change how
/// tcpdump prints, refusing any that would make it read other input,
/// write elsewhere, stop early or run commands.
pub fn parse_flags(flags: &str) -> Result<Vec<String>, FlagsError> {
    let words = shlex::split(flags).ok_or_else(|| FlagsError::Quotes(flags.to_string()))?;
    let mut taking_value = false;
    for word in &words {
        if taking_value {
            taking_value = false;
            continue;
        }
        let Some(letters) = word.strip_prefix('-').filter(|l| !l.is_empty() && !l.starts_with('-')) else {
            return Err(FlagsError::NotAllowed(word.clone()));
        };
        for (i, letter) in letters.char_indices() {
            match letter {
                'A' | 'e' | 'K' | 'n' | 'N' | 'q' | 'S' | 't' | 'u' | 'v' | 'x' | 'X' | '#' => {}
                // Options with a value: the rest of the word, or the next word.
                's' | 'T' => {
                    taking_value = i + 1 == letters.len();
                    break;
                }
                _ => return Err(FlagsError::NotAllowed(format!("-{letter}"))),
            }
        }
    }
    if taking_value {
        return Err(FlagsError::NotAllowed(words.last().cloned().unwrap_or_default()));
    }
    Ok(words)
}

pub struct TcpdumpSink<W: Write> {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    out: W,
    /// Packets fed so far, markers included.
    fed: u64,
}

fn number_prefix(n: u64) -> String {
    format!("{n:5}  ")
}

impl<W: Write> TcpdumpSink<W> {
    pub fn new(flags: &[String], snaplen: u32, out: W) -> anyhow::Result<Self> {
        let mut child = Command::new("tcpdump")
            .args(["-r", "-", "-l", "-#"])
            .args(flags)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a Ctrl-C on the terminal is netcap's to
            // handle, and tcpdump must live until netcap has fed it the rest.
            .process_group(0)
            .spawn()
            .map_err(|err| match err.kind() {
                io::ErrorKind::NotFound => {
                    anyhow::anyhow!("-t needs tcpdump, which is not installed (Debian: apt-get install tcpdump)")
                }
                _ => anyhow::anyhow!("starting tcpdump: {err}"),
            })?;
        let input = child.stdin.take().ok_or_else(|| anyhow::anyhow!("tcpdump has no stdin"))?;
        let output = BufReader::new(child.stdout.take().ok_or_else(|| anyhow::anyhow!("tcpdump has no stdout"))?);
        let mut sink = TcpdumpSink { child, input, output, out, fed: 0 };
        // The header and one marker now: tcpdump refusing an option (-s abc)
        // or a -T type says so here, before anything is attached, not at the
        // first packet. Both go through feed: a tcpdump that has already
        // exited makes the write fail with EPIPE, which main would take for
        // a reader that closed netcap's own output and exit 0 in silence.
        let mut start = pcap::header(snaplen + 14).to_vec();
        start.extend_from_slice(&pcap::record(0, &MARKER, MARKER.len() as u32));
        sink.feed(&start).map_err(|err| anyhow::Error::new(err).context("-t"))?;
        loop {
            let mut line = String::new();
            if sink.output.read_line(&mut line)? == 0 {
                return Err(anyhow::Error::new(sink.tcpdump_failed()).context("-t"));
            }
            if line.starts_with(&number_prefix(1)) {
                break;
            }
        }
        sink.fed = 1;
        Ok(sink)
    }

    fn feed(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.input.write_all(bytes).and_then(|()| self.input.flush()).is_err() {
            return Err(self.tcpdump_failed());
        }
        Ok(())
    }

    fn tcpdump_failed(&mut self) -> io::Error {
        let _ = self.child.kill();
        let mut message = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut message);
        }
        let message = message.lines().filter(|l| !l.starts_with("reading from file")).collect::<Vec<_>>().join("; ");
        io::Error::other(format!("tcpdump stopped: {message}"))
    }

    /// tcpdump's lines for the packet numbered `packet`, up to the marker's number.
    fn read_block(&mut self, packet: u64) -> io::Result<Vec<String>> {
        let (start, end) = (number_prefix(packet), number_prefix(packet + 1));
        let mut block: Vec<String> = Vec::new();
        let mut started = false;
        loop {
            let mut line = String::new();
            if self.output.read_line(&mut line)? == 0 {
                return Err(self.tcpdump_failed());
            }
            let line = line.trim_end_matches('\n');
            if let Some(first) = line.strip_prefix(&start) {
                started = true;
                block.push(first.to_string());
            } else if line.starts_with(&end) {
                return Ok(block);
            } else if started {
                block.push(line.to_string());
            }
            // Lines before the start are the previous marker's text.
        }
    }
}

/// The smallest Ethernet frame tcpdump will print something for.
const MARKER: [u8; 14] = [0; 14];

impl<W: Write> Sink for TcpdumpSink<W> {
    fn write(&mut self, event: &Event, context: &Context) -> io::Result<()> {
        let mut bytes = pcap::event_record(event, context);
        bytes.extend_from_slice(&pcap::record(context.wall_clock_ns(event), &MARKER, MARKER.len() as u32));
        self.feed(&bytes)?;
        let packet = self.fed + 1;
        self.fed += 2;
        let lines = self.read_block(packet)?;
        let device = event.device_label();
        let mut text = format!("{} {}", context.point(event), device);
        drop::suffix(&mut text, event);
        retval::suffix(&mut text, event);
        progs::suffix(&mut text, event);
        nft::suffix(&mut text, event);
        track::suffix(&mut text, event);
        scope::suffix(&mut text, event, context.netns_names.as_deref());
        fields::suffix(&mut text, event, context.skb_fields.as_deref());
        scope::owner_suffix(&mut text, event, context.cgroup_paths.as_deref());
        ct::suffix(&mut text, event);
        for line in &lines {
            text.push('\n');
            text.push_str(line);
        }
        lines_after(&mut text, event, context);
        writeln!(self.out, "{text}")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl<W: Write> Drop for TcpdumpSink<W> {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample_event;

    #[test]
    fn flags_split_like_a_shell_and_only_printing_options_pass() {
        assert_eq!(parse_flags("-nnv").unwrap(), ["-nnv"]);
        assert_eq!(parse_flags("-nn -v -s 128 -T 'vxlan'").unwrap(), ["-nn", "-v", "-s", "128", "-T", "vxlan"]);
        assert_eq!(parse_flags("-s128 -XX").unwrap(), ["-s128", "-XX"]);
        for bad in ["-w /tmp/x", "-nnw x", "-r file", "-i eth0", "-c 5", "-z rm", "--version", "port 80", "-s"] {
            assert!(matches!(parse_flags(bad), Err(FlagsError::NotAllowed(_))), "{bad}");
        }
        assert!(matches!(parse_flags("-n 'x"), Err(FlagsError::Quotes(_))));
    }

    #[test]
    fn blocks_hold_tcpdump_s_lines_for_each_packet() {
        if std::process::Command::new("tcpdump").arg("--version").output().is_err() {
            assert!(std::env::var_os("CI").is_none(), "CI installs tcpdump");
            return eprintln!("skipped: no tcpdump");
        }
        let context = Context::plain(vec!["netif_receive_skb".into()]);
        let mut out = Vec::new();
        {
            let flags = parse_flags("-nnv").unwrap();
            let mut sink = TcpdumpSink::new(&flags, 256, &mut out).unwrap();
            for _ in 0..3 {
                sink.write(&sample_event(), &context).unwrap();
            }
            sink.flush().unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // Per packet: netcap's line, then tcpdump -v's two lines.
        assert_eq!(lines.len(), 9, "{text}");
        for block in lines.chunks(3) {
            assert_eq!(block[0], "netif_receive_skb veth1");
            assert!(
                block[1].contains("IP (tos 0x0, ttl 64, id 1, offset 0, flags [none], proto ICMP (1), length 84"),
                "{text}"
            );
            assert!(
                block[2].trim_start().starts_with("198.18.0.1 > 198.18.0.2: ICMP echo request, id 3, seq 1, length 64"),
                "{text}"
            );
        }
    }
}
