//! `--gather`: one packet's journey across the trace points. Sightings are
//! joined by skb address while it is the same skb, and otherwise by an
//! identity that survives header rewrites (addresses, protocol, IP id,
//! ports, TCP sequence numbers, ICMP id and sequence). A journey is
//! complete once every point after its first has seen it; it is written
//! then, at its timeout, when the buffer is full (oldest first) or at exit.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use crate::event::{Event, Hop};
use crate::packet;

/// What identifies a packet whatever its L2 header, TTL or checksum.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    protocol: Option<u8>,
    ip_id: Option<u32>,
    ports: (Option<u16>, Option<u16>),
    tcp: (Option<u32>, Option<u32>, Option<u8>),
    icmp: (Option<u8>, Option<u8>),
    /// The ICMP header's second word: identifier and sequence for echoes.
    icmp_echo: Option<u32>,
}

impl Identity {
    pub fn of(event: &Event) -> Option<Identity> {
        let h = packet::headers(event.link, &event.data);
        h.ip_src?;
        Some(Identity {
            src: h.ip_src,
            dst: h.ip_dst,
            protocol: h.ip_protocol,
            ip_id: h.ip_id,
            ports: (h.sport, h.dport),
            tcp: (h.tcp_seq, h.tcp_ack, h.tcp_flags),
            icmp: (h.icmp_type, h.icmp_code),
            icmp_echo: h.icmp_rest,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matching {
    /// skb address first, then packet identity.
    Content,
    /// skb address only (--gather-distinguish-by-pointer).
    Pointer,
}

struct Journey {
    first: Event,
    /// Per trace point: time and device of the sighting.
    seen: Vec<Option<(u64, String)>>,
    /// Every skb the packet was seen in (clones, copies), the latest last.
    skbs: Vec<u64>,
    identity: Option<Identity>,
}

impl Journey {
    fn complete(&self) -> bool {
        let first = usize::from(self.first.trace_index);
        self.seen[first..].iter().all(Option::is_some)
    }

    /// The first sighting, with the journey attached.
    fn into_event(self) -> Event {
        let mut event = self.first;
        let start = usize::from(event.trace_index);
        let base = event.time_ns;
        event.journey = Some(
            self.seen
                .iter()
                .enumerate()
                .skip(start + 1)
                .map(|(point, sighting)| Hop {
                    trace_index: point as u16,
                    delay_ns: sighting.as_ref().map(|(time, _)| time.saturating_sub(base)),
                    device: sighting.as_ref().map(|(_, device)| device.clone()),
                })
                .collect(),
        );
        event
    }
}

/// Delays kept exactly per hop; past this many, quantiles come from the
/// histogram alone.
const EXACT_SAMPLES: usize = 1024;
/// Sub-buckets per power of two: a bucket spans at most 1/128 of its lower
/// bound, and a quantile is read as its bucket's middle, so it is within
/// 0.4% of the true sample's value.
const SUB_BUCKETS: u64 = 128;
const SUB_BITS: u32 = SUB_BUCKETS.trailing_zeros();
/// Values below SUB_BUCKETS have a bucket each; then SUB_BUCKETS per power of two up to 2^64.
const BUCKETS: usize = (SUB_BUCKETS + (64 - SUB_BITS as u64) * SUB_BUCKETS) as usize;

/// Delay statistics of one hop (point i → i + 1), in bounded memory
/// whatever the run's length: the first `EXACT_SAMPLES` delays exactly,
/// and every delay in a log-linear histogram (BUCKETS counters).
#[derive(Debug, Clone)]
pub struct HopDelays {
    samples: Vec<u64>,
    buckets: Box<[u64]>,
    count: u64,
    min: u64,
    max: u64,
}

impl Default for HopDelays {
    fn default() -> HopDelays {
        HopDelays { samples: Vec::new(), buckets: vec![0; BUCKETS].into(), count: 0, min: u64::MAX, max: 0 }
    }
}

fn bucket_of(value: u64) -> usize {
    if value < SUB_BUCKETS {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros(); // >= SUB_BITS
    let shift = exponent - SUB_BITS;
    let sub = (value >> shift) & (SUB_BUCKETS - 1);
    (SUB_BUCKETS + u64::from(shift) * SUB_BUCKETS + sub) as usize
}

/// The middle of a bucket's range of values.
fn bucket_middle(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < SUB_BUCKETS {
        return bucket;
    }
    let shift = (bucket - SUB_BUCKETS) / SUB_BUCKETS;
    let sub = (bucket - SUB_BUCKETS) % SUB_BUCKETS;
    let low = (SUB_BUCKETS + sub) << shift;
    low + ((1u64 << shift) >> 1)
}

impl HopDelays {
    pub fn add(&mut self, delay: u64) {
        if self.samples.len() < EXACT_SAMPLES {
            self.samples.push(delay);
        }
        self.buckets[bucket_of(delay)] += 1;
        self.count += 1;
        self.min = self.min.min(delay);
        self.max = self.max.max(delay);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The delay at quantile `q` (0..=1): the sample of rank
    /// round((count - 1) · q), exactly while all samples are kept.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((self.count - 1) as f64 * q).round() as u64;
        if self.count as usize <= self.samples.len() {
            let mut sorted = self.samples.clone();
            sorted.sort_unstable();
            return sorted[rank as usize];
        }
        let mut below = 0;
        for (bucket, &n) in self.buckets.iter().enumerate() {
            below += n;
            if below > rank {
                return bucket_middle(bucket).clamp(self.min, self.max);
            }
        }
        self.max
    }
}

pub struct Gather {
    points: usize,
    matching: Matching,
    timeout_ns: u64,
    capacity: usize,
    journeys: HashMap<u64, Journey>,
    order: VecDeque<u64>,
    by_skb: HashMap<u64, u64>,
    by_identity: HashMap<Identity, u64>,
    /// --track ids: the same packet whatever NAT or encapsulation did to it.
    by_track: HashMap<u64, u64>,
    /// --gather-min-latency: journeys quicker than this are not shown.
    min_latency_ns: u64,
    next_id: u64,
    /// Delays between consecutive points, over complete journeys.
    pub hops: Vec<HopDelays>,
}

impl Gather {
    pub fn new(points: usize, matching: Matching, timeout_ns: u64, capacity: usize) -> Gather {
        Gather {
            points,
            matching,
            timeout_ns,
            capacity,
            journeys: HashMap::new(),
            order: VecDeque::new(),
            by_skb: HashMap::new(),
            by_identity: HashMap::new(),
            by_track: HashMap::new(),
            min_latency_ns: 0,
            next_id: 0,
            hops: vec![HopDelays::default(); points.saturating_sub(1)],
        }
    }

    /// Shows only journeys whose first-to-last delay is at least `ns` (the
    /// hop statistics still count every complete one).
    pub fn with_min_latency(mut self, ns: u64) -> Gather {
        self.min_latency_ns = ns;
        self
    }

    fn find(&self, event: &Event, identity: Option<&Identity>) -> Option<u64> {
        let point = usize::from(event.trace_index);
        let open = |id: &u64| self.journeys.get(id).is_some_and(|j| j.seen[point].is_none());
        // A followed packet's track joins first: its bytes may have changed.
        if event.track != 0
            && let Some(id) = self.by_track.get(&event.track).filter(|id| open(id))
        {
            return Some(*id);
        }
        if let Some(id) = self.by_skb.get(&event.skb).filter(|id| open(id)) {
            return Some(*id);
        }
        if self.matching == Matching::Content {
            return identity.and_then(|i| self.by_identity.get(i)).filter(|id| open(id)).copied();
        }
        None
    }

    fn finish(&mut self, id: u64) -> Option<Event> {
        let journey = self.journeys.remove(&id)?;
        self.order.retain(|&other| other != id);
        for skb in &journey.skbs {
            if self.by_skb.get(skb) == Some(&id) {
                self.by_skb.remove(skb);
            }
        }
        if let Some(identity) = &journey.identity
            && self.by_identity.get(identity) == Some(&id)
        {
            self.by_identity.remove(identity);
        }
        if self.by_track.get(&journey.first.track) == Some(&id) {
            self.by_track.remove(&journey.first.track);
        }
        if journey.complete() {
            for (hop, pair) in journey.seen.windows(2).enumerate() {
                if let (Some((a, _)), Some((b, _))) = (&pair[0], &pair[1]) {
                    self.hops[hop].add(b.saturating_sub(*a));
                }
            }
        }
        let first = journey.first.time_ns;
        let last = journey.seen.iter().flatten().map(|(time, _)| *time).max().unwrap_or(first);
        if last.saturating_sub(first) < self.min_latency_ns {
            return None;
        }
        Some(journey.into_event())
    }

    /// Takes one sighting (in time order); returns journeys ready to write.
    pub fn add(&mut self, event: Event) -> Vec<Event> {
        let mut ready = self.expire(event.time_ns);
        let point = usize::from(event.trace_index);
        if point >= self.points {
            return ready;
        }
        let identity = match self.matching {
            Matching::Content => Identity::of(&event),
            Matching::Pointer => None,
        };
        let id = match self.find(&event, identity.as_ref()) {
            Some(id) => {
                let journey = self.journeys.get_mut(&id).expect("found above");
                journey.seen[point] = Some((event.time_ns, event.ifname.clone()));
                // Follow the packet into a new skb (clones, copies).
                if journey.skbs.last() != Some(&event.skb) {
                    journey.skbs.push(event.skb);
                }
                self.by_skb.insert(event.skb, id);
                if event.track != 0 {
                    self.by_track.insert(event.track, id);
                }
                id
            }
            None => {
                if self.journeys.len() >= self.capacity
                    && let Some(oldest) = self.order.front().copied()
                {
                    ready.extend(self.finish(oldest));
                }
                let id = self.next_id;
                self.next_id += 1;
                let mut seen = vec![None; self.points];
                seen[point] = Some((event.time_ns, event.ifname.clone()));
                self.by_skb.insert(event.skb, id);
                if let Some(identity) = &identity {
                    self.by_identity.insert(identity.clone(), id);
                }
                if event.track != 0 {
                    self.by_track.insert(event.track, id);
                }
                self.journeys.insert(id, Journey { skbs: vec![event.skb], identity, seen, first: event });
                self.order.push_back(id);
                id
            }
        };
        if self.journeys.get(&id).is_some_and(Journey::complete) {
            ready.extend(self.finish(id));
        }
        ready
    }

    /// Journeys whose first sighting is older than the timeout at `now`.
    pub fn expire(&mut self, now: u64) -> Vec<Event> {
        let mut ready = Vec::new();
        while let Some(&oldest) = self.order.front() {
            let started = self.journeys.get(&oldest).map_or(0, |j| j.first.time_ns);
            if now.saturating_sub(started) < self.timeout_ns {
                break;
            }
            ready.extend(self.finish(oldest));
        }
        ready
    }

    /// Everything pending, oldest first (at exit).
    pub fn drain(&mut self) -> Vec<Event> {
        let ids: Vec<u64> = self.order.iter().copied().collect();
        ids.into_iter().filter_map(|id| self.finish(id)).collect()
    }

    /// "point → point: count, min, p50, p99, max" for each hop.
    pub fn render_hops(&self, points: &[String]) -> String {
        let mut text = String::new();
        for (hop, delays) in self.hops.iter().enumerate() {
            let route = format!("{} → {}", points[hop], points[hop + 1]);
            if delays.count() == 0 {
                text.push_str(&format!("{route}: no packet seen at both\n"));
            } else {
                text.push_str(&format!(
                    "{route}: {} packets, min {}, p50 {}, p99 {}, max {}\n",
                    delays.count(),
                    duration(delays.min),
                    duration(delays.quantile(0.5)),
                    duration(delays.quantile(0.99)),
                    duration(delays.max)
                ));
            }
        }
        text
    }
}

/// "850ns", "12.345µs", "3.2ms".
pub fn duration(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns}ns"),
        1_000..1_000_000 => format!("{:.3}µs", ns as f64 / 1e3),
        _ => format!("{:.3}ms", ns as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample_event;
    use crate::packet::tests::{ether, icmp_echo, ipv4};

    fn sighting(point: u16, time: u64, skb: u64, seq: u16) -> Event {
        let mut event = sample_event();
        event.trace_index = point;
        event.time_ns = time;
        event.skb = skb;
        event.data = ether(0x0800, &ipv4(1, [198, 18, 0, 1], [198, 18, 0, 2], &icmp_echo(true, 7, seq, 8), seq, 0));
        event
    }

    fn delays(event: &Event) -> Vec<Option<u64>> {
        event.journey.as_ref().unwrap().iter().map(|hop| hop.delay_ns).collect()
    }

    #[test]
    fn joins_by_skb_and_by_identity_when_the_skb_changes() {
        let mut gather = Gather::new(3, Matching::Content, 1_000_000, 64);
        assert!(gather.add(sighting(0, 100, 0xa, 1)).is_empty());
        assert!(gather.add(sighting(1, 150, 0xa, 1)).is_empty());
        // A copy of the packet in another skb, e.g. after skb_copy().
        let done = gather.add(sighting(2, 400, 0xb, 1));
        assert_eq!(done.len(), 1);
        assert_eq!(delays(&done[0]), [Some(50), Some(300)]);
        assert_eq!(gather.hops[0].samples, [50]);
        assert_eq!(gather.hops[1].samples, [250]);
        assert_eq!((gather.hops[0].count(), gather.hops[1].count()), (1, 1));
    }

    #[test]
    fn a_track_joins_a_packet_whose_bytes_and_skb_changed_and_slow_ones_can_be_singled_out() {
        let mut gather = Gather::new(2, Matching::Content, 1_000_000, 64);
        let mut first = sighting(0, 100, 0xa, 1);
        first.track = 5;
        let mut rewritten = sighting(1, 900, 0xb, 2);
        rewritten.track = 5;
        assert!(gather.add(first).is_empty());
        let done = gather.add(rewritten);
        assert_eq!(done.len(), 1);
        assert_eq!(delays(&done[0]), [Some(800)]);

        let mut gather = Gather::new(2, Matching::Content, 1_000_000, 64).with_min_latency(500);
        assert!(gather.add(sighting(0, 100, 0xa, 1)).is_empty());
        assert!(gather.add(sighting(1, 200, 0xa, 1)).is_empty(), "100 ns: quicker than 500, not shown");
        assert!(gather.add(sighting(0, 300, 0xc, 3)).is_empty());
        assert_eq!(gather.add(sighting(1, 900, 0xc, 3)).len(), 1, "600 ns: shown");
        assert_eq!(gather.hops[0].count(), 2, "both counted in the hop statistics");
    }

    #[test]
    fn different_packets_in_one_reused_skb_are_two_journeys() {
        let mut gather = Gather::new(2, Matching::Content, 1_000_000, 64);
        gather.add(sighting(0, 100, 0xa, 1));
        // The skb was freed and reused for the next packet: point 0 again.
        let done = gather.add(sighting(0, 200, 0xa, 2));
        assert!(done.is_empty());
        let done = gather.add(sighting(1, 250, 0xa, 2));
        assert_eq!(done.len(), 1);
        assert!(done[0].summary_has_seq(2));
        let rest = gather.drain();
        assert_eq!(rest.len(), 1);
        assert_eq!(delays(&rest[0]), [None]);
    }

    #[test]
    fn pointer_mode_never_joins_by_content() {
        let mut gather = Gather::new(2, Matching::Pointer, 1_000_000, 64);
        gather.add(sighting(0, 100, 0xa, 1));
        // Other skb, same content: a journey of its own, starting (and ending) at the last point.
        let alone = gather.add(sighting(1, 200, 0xb, 1));
        assert_eq!(alone.len(), 1);
        assert_eq!((alone[0].trace_index, delays(&alone[0])), (1, vec![]));
        let first = gather.drain();
        assert_eq!(delays(&first[0]), [None]);
    }

    #[test]
    fn timeouts_and_a_full_buffer_release_the_oldest_with_missing_points() {
        let mut gather = Gather::new(2, Matching::Content, 1_000, 2);
        gather.add(sighting(0, 100, 0xa, 1));
        gather.add(sighting(0, 200, 0xb, 2));
        // A third pending journey: the oldest goes out, incomplete.
        let out = gather.add(sighting(0, 300, 0xc, 3));
        assert_eq!(out.len(), 1);
        assert!(out[0].summary_has_seq(1));
        assert_eq!(delays(&out[0]), [None]);
        // Past the timeout of the remaining two.
        let expired = gather.expire(1_250);
        assert_eq!(expired.len(), 1, "only seq 2 started before 250");
        assert!(expired[0].summary_has_seq(2));
        assert_eq!(gather.hops[0].count(), 0, "incomplete journeys give no delays");
    }

    #[test]
    fn hop_statistics_read_like_a_table() {
        let mut gather = Gather::new(2, Matching::Content, 1_000_000, 64);
        for seq in 1..=100u16 {
            let start = u64::from(seq) * 10_000;
            gather.add(sighting(0, start, u64::from(seq), seq));
            gather.add(sighting(1, start + u64::from(seq) * 10, u64::from(seq), seq));
        }
        let text = gather.render_hops(&["a".into(), "b".into()]);
        assert_eq!(text, "a → b: 100 packets, min 10ns, p50 510ns, p99 990ns, max 1.000µs\n");
    }

    #[test]
    fn many_delays_keep_memory_flat_and_quantiles_within_the_stated_error() {
        let mut delays = HopDelays::default();
        // A skewed spread of delays, from nanoseconds to seconds, in a scrambled order.
        let values: Vec<u64> = (0..200_000u64).map(|i| 1 + (i * 7919 % 200_000).pow(2) / 37).collect();
        for &value in &values {
            delays.add(value);
        }
        assert_eq!(delays.samples.len(), EXACT_SAMPLES, "exact samples stop growing");
        assert_eq!(delays.buckets.len(), BUCKETS, "the histogram has a fixed size");
        let mut sorted = values.clone();
        sorted.sort_unstable();
        for q in [0.0, 0.01, 0.5, 0.9, 0.99, 0.999, 1.0] {
            let exact = sorted[((sorted.len() - 1) as f64 * q).round() as usize];
            let estimate = delays.quantile(q);
            let error = (estimate as f64 - exact as f64).abs() / exact as f64;
            assert!(error <= 0.004, "q {q}: {estimate} for {exact} ({error})");
        }
        assert_eq!((delays.min, delays.max), (sorted[0], sorted[sorted.len() - 1]));
    }

    #[test]
    fn every_value_falls_in_a_bucket_whose_middle_is_close() {
        for value in (0..5000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]).chain((0..64).map(|b| 1u64 << b)) {
            let bucket = bucket_of(value);
            assert!(bucket < BUCKETS, "{value}");
            let middle = bucket_middle(bucket);
            assert!(middle.abs_diff(value) as f64 <= value as f64 / 256.0 + 0.5, "{value} -> {middle}");
        }
    }

    #[test]
    fn skbs_a_journey_moved_through_are_forgotten_with_it() {
        let mut gather = Gather::new(3, Matching::Content, 1_000_000, 64);
        for seq in 1..=50u16 {
            let base = u64::from(seq) * 1000;
            let skb = u64::from(seq) * 16;
            gather.add(sighting(0, base, skb, seq));
            // Copied into another skb at the next point, and once more.
            gather.add(sighting(1, base + 10, skb + 1, seq));
            gather.add(sighting(2, base + 20, skb + 2, seq));
        }
        assert!(gather.journeys.is_empty());
        assert!(gather.by_skb.is_empty(), "{} skbs still mapped", gather.by_skb.len());
        assert!(gather.by_identity.is_empty());
    }

    impl Event {
        fn summary_has_seq(&self, seq: u16) -> bool {
            crate::packet::describe(self.link, &self.data).contains(&format!("seq {seq},"))
        }
    }
}
