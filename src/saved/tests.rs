//! Captures written by netcap's own sinks (and pcap files built byte by
//! byte) read back: every block kind, both byte orders, timestamps.

use super::metadata::restore;
use super::*;
use crate::event::tests::sample_event;
use crate::event::{Drop, Lineage, Link};
use crate::feature::progs::Verdict;
use crate::kernel::progs::Hook;
use crate::sink::pcapng::PcapngSink;
use crate::sink::{Context, Sink};

fn reader_of(bytes: Vec<u8>) -> Reader {
    Reader::new(Box::new(io::Cursor::new(bytes))).unwrap()
}

#[test]
fn netcap_pcapng_reads_back_into_the_events_it_was_written_from() {
    let context = Context::plain(vec!["ip_rcv".into(), "kfree_skb".into()]);
    let mut first = sample_event();
    first.time_ns = 1_700_000_000_123_456_789;
    first.track = 7;
    first.lineage = Lineage::Clone;
    first.comm = "my app".into();
    let mut second = sample_event();
    second.time_ns = first.time_ns + 5_000;
    second.trace_index = 1;
    second.link = Link::Raw;
    second.data = second.data[14..].to_vec();
    second.pkt_len = second.data.len() as u32;
    second.drop = Some(Drop { reason: "NETFILTER_DROP".into(), location: Some("nft_do_chain+0x3e8".into()) });
    second.stack = Some(vec!["kfree_skb_reason+0x0".to_string(), "nf_hook_slow+0x91".to_string()].into());
    second.retval = Some(-22);
    let mut third = sample_event();
    third.verdict = Some(Verdict { hook: Hook::Xdp, code: 1 });
    let mut bytes = Vec::new();
    let mut sink = PcapngSink::new(&mut bytes, &context, 256).unwrap();
    sink.write(&first, &context).unwrap();
    sink.write(&second, &context).unwrap();
    sink.write(&third, &context).unwrap();
    sink.flush().unwrap();
    drop(sink);

    let mut reader = reader_of(bytes);
    assert!(reader.written_by_netcap(), "{:?}", reader.application);
    let a = reader.next_packet().unwrap().unwrap();
    let b = reader.next_packet().unwrap().unwrap();
    let c = reader.next_packet().unwrap().unwrap();
    assert!(reader.next_packet().unwrap().is_none());
    let names: Vec<_> = reader.interfaces.iter().map(|i| i.name.clone().unwrap()).collect();
    assert_eq!(names, ["ip_rcv", "kfree_skb"]);

    let a = restore(&a, Link::Ethernet);
    assert_eq!((a.time_ns, a.trace_index, a.skb, a.cpu, a.pid), (first.time_ns, 0, first.skb, first.cpu, first.pid));
    assert_eq!((a.ifname.as_str(), a.ifindex, a.comm.as_str()), ("veth1", 4, "my app"));
    assert_eq!((a.track, a.lineage, a.data.clone()), (7, Lineage::Clone, first.data.clone()));
    assert_eq!(a.saved, None);

    let b = restore(&b, Link::Ethernet);
    assert_eq!(b.link, Link::Raw, "the made-up Ethernet header is taken off again");
    assert_eq!((b.data.clone(), b.pkt_len), (second.data.clone(), second.pkt_len));
    assert_eq!(b.drop, second.drop);
    assert_eq!(b.stack, second.stack);
    assert_eq!((b.retval, b.trace_index, b.time_ns), (Some(-22), 1, second.time_ns));
    assert_eq!(restore(&c, Link::Ethernet).verdict, third.verdict);
}

/// A classic pcap file: header, then records.
fn pcap(big_endian: bool, nanoseconds: bool, records: &[(u32, u32, &[u8], u32)]) -> Vec<u8> {
    let word = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let half = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut out = Vec::new();
    out.extend_from_slice(&word(if nanoseconds { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    out.extend_from_slice(&half(2));
    out.extend_from_slice(&half(4));
    out.extend_from_slice(&word(0));
    out.extend_from_slice(&word(0));
    out.extend_from_slice(&word(65535));
    out.extend_from_slice(&word(101));
    for (seconds, fraction, data, wire) in records {
        out.extend_from_slice(&word(*seconds));
        out.extend_from_slice(&word(*fraction));
        out.extend_from_slice(&word(data.len() as u32));
        out.extend_from_slice(&word(*wire));
        out.extend_from_slice(data);
    }
    out
}

#[test]
fn classic_pcap_in_both_byte_orders_and_resolutions() {
    for (big_endian, nanoseconds) in [(false, false), (true, false), (false, true), (true, true)] {
        let mut reader = reader_of(pcap(big_endian, nanoseconds, &[(10, 20, &[0x45, 0, 0, 20], 60), (11, 0, &[], 0)]));
        assert_eq!(reader.interfaces[0].link_type, 101);
        let first = reader.next_packet().unwrap().unwrap();
        let unit = if nanoseconds { 1 } else { 1000 };
        assert_eq!(
            (first.time_ns, first.data.as_slice(), first.wire_len),
            (10_000_000_000 + 20 * unit, &[0x45, 0, 0, 20][..], 60)
        );
        assert!(reader.next_packet().unwrap().is_some());
        assert!(reader.next_packet().unwrap().is_none());
    }
}

/// A big-endian pcapng section with microsecond timestamps (no if_tsresol),
/// then a little-endian one with an interface in 2^-10 s units.
#[test]
fn pcapng_sections_of_either_byte_order_and_any_resolution() {
    fn block(big_endian: bool, kind: u32, body: &[u8]) -> Vec<u8> {
        let word = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
        let total = (12 + body.len()) as u32;
        [&word(kind)[..], &word(total), body, &word(total)].concat()
    }
    let mut file = Vec::new();
    for (big_endian, resolution) in [(true, None), (false, Some(0x8a_u8))] {
        let word = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
        let half = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
        let section = [&word(0x1A2B_3C4D)[..], &half(1), &half(0), &[0xff; 8]].concat();
        file.extend(block(big_endian, 0x0A0D_0D0A, &section));
        let mut interface = [&half(1)[..], &half(0), &word(0)].concat();
        if let Some(resolution) = resolution {
            interface.extend_from_slice(&[&half(9)[..], &half(1), &[resolution, 0, 0, 0], &[0; 4]].concat());
        }
        file.extend(block(big_endian, 1, &interface));
        let data = [1u8, 2, 3, 4, 5, 6];
        let ticks: u64 = 3 * 1024 + 512;
        let packet = [
            &word(0)[..],
            &word((ticks >> 32) as u32),
            &word(ticks as u32),
            &word(data.len() as u32),
            &word(100),
            &data,
            &[0, 0],
            &half(1),
            &half(5),
            b"hello",
            &[0, 0, 0],
            &[0; 4],
        ]
        .concat();
        file.extend(block(big_endian, 6, &packet));
    }
    let mut reader = reader_of(file);
    let first = reader.next_packet().unwrap().unwrap();
    assert_eq!((first.time_ns, first.wire_len, first.comment.as_deref()), (3_584_000, 100, Some("hello")));
    let second = reader.next_packet().unwrap().unwrap();
    assert_eq!(second.time_ns, 3_500_000_000, "2^-10 s units");
    assert_eq!(second.data, [1, 2, 3, 4, 5, 6]);
    assert!(reader.next_packet().unwrap().is_none());
}

#[test]
fn garbage_is_refused_in_one_line() {
    let error = Reader::new(Box::new(io::Cursor::new(b"GIF89a...".to_vec()))).err().unwrap();
    assert!(error.to_string().starts_with("not a pcap or pcapng capture"), "{error}");
    let error = Reader::new(Box::new(io::Cursor::new(Vec::new()))).err().unwrap();
    assert!(error.to_string().contains("empty"), "{error}");
}
