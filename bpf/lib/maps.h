/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What every program shares: the per-point configuration, the ring buffer,
 * the scratch slots, the kretprobe entries, the stacks and the counters.
 */
#ifndef NETCAP_LIB_MAPS_H
#define NETCAP_LIB_MAPS_H

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* In a section of its own, so that user space finds it at offset 0. */
const volatile struct netcap_config netcap_cfg SEC(".rodata.config") = {};

/* Referenced so that the skeleton generates the Rust mirror of the record
 * and of its sections. */
struct netcap_event netcap_event_layout = {};
struct netcap_section_stack netcap_section_stack_layout = {};
struct netcap_section_drop netcap_section_drop_layout = {};
struct netcap_section_value netcap_section_value_layout = {};
struct netcap_section_user netcap_section_user_layout = {};
struct netcap_section_fields netcap_section_fields_layout = {};
struct netcap_section_ct netcap_section_ct_layout = {};
struct netcap_section_nft netcap_section_nft_layout = {};
enum netcap_section_kind netcap_section_kind_layout;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} netcap_events_map SEC(".maps");

/* Entries: CPUs × NETCAP_NEST_MAX, sized by user space before load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct netcap_scratch);
} netcap_scratch_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} netcap_nest_map SEC(".maps");

/* kretprobe: the skb (and extra argument) seen at entry, by task. */
struct netcap_entry {
	__u64 skb;
	__u64 ext;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct netcap_entry);
} netcap_entries_map SEC(".maps");

/* --nft: records made at nft_do_chain's entry, waiting there for the
 * chain's verdict at its exit (by then a dropped skb is freed), by the
 * address of the call's struct nft_pktinfo. Sized by user space: the nft
 * point's record with capture_max bytes; one byte elsewhere. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u64));
	__uint(value_size, 1);
} netcap_pending_map SEC(".maps");

/* Kernel stacks for -S; identical stacks share one id. Sized by user
 * space (one entry when -S is off). */
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, NETCAP_STACK_DEPTH * sizeof(__u64));
} netcap_stacks_map SEC(".maps");

/* Pattern functions where the kernel has no attach cookies: the function's
 * address → its cookie (NETCAP_COOKIE_*). Sized and filled by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u64);
	__type(value, __u64);
} netcap_cookies_map SEC(".maps");

/* --track: skbs being followed, by address, to their track. An entry goes
 * when the kernel frees the skb. Some frees fire no tracepoint (TCP's
 * acknowledged clones, GRO's stolen heads), so the map is an LRU: a full
 * map drops its oldest entries rather than refusing new packets. User space
 * counts what it dropped (started - ended - left at exit), never silent.
 * Sized by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__uint(max_entries, 1);
	__type(key, __u64);
	__type(value, struct netcap_track);
} netcap_tracks_map SEC(".maps");

/* --track: how many entries netcap_tracks_map holds, kept beside it so that
 * while nothing is followed no point pays for a lookup. A hint, updated with
 * atomic adds: an skb is handled by one CPU at a time, so the one it counts
 * is never missed. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} netcap_live_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NETCAP_COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} netcap_counters_map SEC(".maps");

#endif /* NETCAP_LIB_MAPS_H */
