/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The one definition of what the BPF programs hand to user space and what
 * user space configures before load. Rust sees these types through the
 * skeleton libbpf-cargo generates from the object's BTF, so there is no
 * second declaration to keep in sync.
 */
#ifndef NETCAP_H
#define NETCAP_H

/* Largest --capture-max-size; the scratch buffer is twice this, plus room
 * for made-up headers, so the verifier can prove every variable-offset copy
 * stays inside it. */
#define NETCAP_CAPTURE_MAX 65535
#define NETCAP_SCRATCH_DATA (2 * 65536 + 64)
/* How deeply programs may nest on one CPU (process context interrupted by
 * softirq, or a preempted tracing program) before events are counted lost. */
#define NETCAP_NEST_MAX 4
#define NETCAP_IFNAMSIZ 16
#define NETCAP_COMM_LEN 16
/* Marks "no such argument" in netcap_config.ext_arg. */
#define NETCAP_NO_ARG 0xff
/* Frames kept per kernel stack (the kernel's PERF_MAX_STACK_DEPTH). */
#define NETCAP_STACK_DEPTH 127
/* Attach cookies of pattern-matched functions: trace index in the low 16
 * bits, then the skb's and the drop reason's argument index. */
#define NETCAP_COOKIE_INDEX_MASK 0xffff
#define NETCAP_COOKIE_SKB_SHIFT 16
#define NETCAP_COOKIE_REASON_SHIFT 24

enum netcap_link {
	NETCAP_LINK_NONE = 0,
	NETCAP_LINK_ETHERNET = 1, /* packet starts at the MAC header */
	NETCAP_LINK_RAW = 2,      /* packet starts at the IP header */
};

enum netcap_event_flags {
	/* The skb had paged data that this kernel gave no way to read:
	 * the capture holds only the linear part. */
	NETCAP_EVENT_PAGED_MISSED = 1 << 0,
	/* The L2 and L3 headers were made up from the socket (--fake-hdr). */
	NETCAP_EVENT_SYNTHESIZED = 1 << 2,
	/* --ext-action returned non-zero: show the user's struct. */
	NETCAP_EVENT_USER = 1 << 3,
	/* A DPDK rte_mbuf (netcap mbuf): ifindex holds its port. */
	NETCAP_EVENT_MBUF = 1 << 4,
	/* The mbuf had more than one segment. */
	NETCAP_EVENT_CHAINED = 1 << 5,
};

/* What a trace point hands netcap as the packet. */
enum netcap_packet_form {
	NETCAP_FORM_SKB = 0,
	NETCAP_FORM_BUFFER = 1,     /* netcap raw: f(char *pkt, uint16_t len) */
	NETCAP_FORM_MBUF = 2,       /* netcap mbuf: one struct rte_mbuf * */
	NETCAP_FORM_MBUF_ARRAY = 3, /* netcap mbuf: struct rte_mbuf **, count */
};

/* Segments followed per mbuf chain, and mbufs read per burst. */
#define NETCAP_MBUF_SEGMENTS_MAX 16
#define NETCAP_MBUF_BURST_MAX 1024

/* Where struct rte_mbuf keeps what netcap reads (byte offsets). */
struct netcap_mbuf_offsets {
	__u32 buf_addr;
	__u32 data_off;
	__u32 data_len;
	__u32 pkt_len;
	__u32 next;
	__u32 port;
};

enum netcap_counter {
	NETCAP_COUNTER_LOST = 0,       /* ring buffer full */
	NETCAP_COUNTER_NESTED = 1,     /* nested deeper than NETCAP_NEST_MAX */
	NETCAP_COUNTER_NO_HEADER = 2,  /* neither MAC nor network header set */
	NETCAP_COUNTER_READ_FAULT = 3, /* packet bytes could not be read */
	NETCAP_COUNTER_OUTSIDE = 4,    /* the packet's start lay outside the skb's data */
	NETCAP_COUNTER_TRACK_FULL = 5, /* --track: a packet not followed, its insert refused */
	NETCAP_COUNTER_TRACK_STARTED = 6, /* --track: entries put in netcap_tracks_map */
	NETCAP_COUNTER_TRACK_ENDED = 7,   /* --track: entries taken out (freed, merged, stale) */
	NETCAP_COUNTER_TRACK_INHERITED = 8, /* --track: clones, copies, segments given a parent's id */
	NETCAP_COUNTER_TRACK_MERGED = 9,  /* --track: followed packets GRO merged into another */
	NETCAP_COUNTER_MAX = 10,
};

/* --track: how a followed skb came to carry its track id (the TRACK
 * section's pad, and what identity hooks give the skbs they make). */
enum netcap_lineage {
	NETCAP_LINEAGE_MATCHED = 0, /* it matched the filters itself */
	NETCAP_LINEAGE_CLONE = 1,   /* made by skb_clone from a followed skb */
	NETCAP_LINEAGE_COPY = 2,    /* skb_copy, pskb_copy, skb_copy_expand of one */
	NETCAP_LINEAGE_SEGMENT = 3, /* a GSO segment of one (skb_segment) */
	NETCAP_LINEAGE_MERGED = 4,  /* a GRO packet that a followed one was merged into */
};

/* --track: a followed skb's entry in netcap_tracks_map. */
struct netcap_track {
	__u64 id;
	__u32 lineage;   /* enum netcap_lineage */
	__u32 pad;
};

/* Largest struct xcap_user_extend (--ext-action). */
#define NETCAP_USER_MAX 1024

/*
 * One record in the ring buffer: this header (what every event has), then
 * sections_len bytes of optional sections, then cap_len packet bytes. A
 * section is there only when its feature is on for the trace point (the
 * kernel stack with -S, the drop reason at a drop point, ...): a plain
 * capture's record is the header and the packet. Each section starts with
 * struct netcap_section, whose len covers the whole section and is a
 * multiple of 8, so the packet stays 8-byte aligned; a reader skips kinds
 * it does not know.
 */
struct netcap_event {
	__u64 ts_ns;     /* bpf_ktime_get_ns() */
	__u64 skb;       /* address of the sk_buff (or of the user-space packet) */
	__u32 pkt_len;   /* whole packet, from its first header, paged data included */
	__u32 cap_len;   /* packet bytes at the end of the record */
	__u32 paged_len; /* skb->data_len: bytes not in the linear area */
	__u32 ifindex;
	__u32 netns;     /* inode of the device's network namespace */
	__u32 pid;
	__u32 mark;
	__u16 trace_index;
	__u16 cpu;
	__u16 protocol;  /* skb->protocol, network byte order */
	__u16 sections_len; /* bytes of sections between this header and the packet */
	__u8 link;       /* enum netcap_link */
	__u8 flags;      /* enum netcap_event_flags */
	char ifname[NETCAP_IFNAMSIZ];
	char comm[NETCAP_COMM_LEN];
};

/* Section kinds, in the order they appear in a record; netcap_config's
 * sections has bit (1 << kind) set for each one a trace point emits. */
enum netcap_section_kind {
	NETCAP_SECTION_STACK = 1,   /* struct netcap_section_stack (-S) */
	NETCAP_SECTION_DROP = 2,    /* struct netcap_section_drop: points with a drop reason or location */
	NETCAP_SECTION_RETVAL = 3,  /* struct netcap_section_value: fexit, kretprobe */
	NETCAP_SECTION_EXT_ARG = 4, /* struct netcap_section_value: the @p2 argument */
	NETCAP_SECTION_USER = 5,    /* struct netcap_section_user, then the user's struct (--ext-action) */
	NETCAP_SECTION_TRACK = 6,   /* struct netcap_section_value: the followed packet's track id (--track) */
	NETCAP_SECTION_FIELDS = 7,  /* struct netcap_section_fields: sk_buff fields (--skb-fields) */
	NETCAP_SECTION_CGROUP = 8,  /* struct netcap_section_value: the skb's socket's cgroup v2 id (--pid, --cgroup) */
	NETCAP_SECTION_CT = 9,      /* struct netcap_section_ct: the skb's conntrack entry (--ct) */
	NETCAP_SECTION_NFT = 10,    /* struct netcap_section_nft: the nftables base chain that decided (--nft) */
	NETCAP_SECTION_END = 11,
};

struct netcap_section {
	__u16 kind;      /* enum netcap_section_kind */
	__u16 len;       /* the whole section, this header included, a multiple of 8 */
};

struct netcap_section_stack {
	struct netcap_section head;
	__s32 stack_id;  /* in netcap_stacks_map, or negative when the kernel had none */
};

struct netcap_section_drop {
	struct netcap_section head;
	__u32 reason;    /* enum skb_drop_reason, 0 when the point has none */
	__u64 location;  /* where the kernel dropped it (kfree_skb's location), or 0 */
};

struct netcap_section_value {
	struct netcap_section head;
	__u32 pad;
	__u64 value;
};

/* --skb-fields: at most this many fields, each reached through at most
 * NETCAP_FIELD_HOPS - 1 pointers, each at most 63 bytes starting in the
 * first 128 of the data (masks the verifier can check the bounds by). */
#define NETCAP_FIELDS_MAX 8
#define NETCAP_FIELD_HOPS 4
#define NETCAP_FIELD_AT_MASK 127
#define NETCAP_FIELD_SIZE_MASK 63
#define NETCAP_FIELDS_BYTES 192

/* Where one field is: the pointer at skb + offsets[0] is followed, then
 * the one at that + offsets[1], …; size bytes are read at the last + the
 * last offset, into the section's data at `at`. */
struct netcap_field {
	__u32 offsets[NETCAP_FIELD_HOPS];
	__u32 hops;       /* offsets used */
	__u32 size;
	__u32 at;
};

struct netcap_section_fields {
	struct netcap_section head;
	__u32 missing;   /* bit i: field i could not be read (a NULL pointer on the way) */
	__u8 data[NETCAP_FIELDS_BYTES];
};

/* One direction of a conntrack entry, as struct nf_conntrack_tuple has it
 * (addresses and ports in network byte order). */
struct netcap_ct_tuple {
	__u8 src[16];
	__u8 dst[16];
	__u16 sport;     /* or ICMP id */
	__u16 dport;     /* or ICMP type and code */
};

struct netcap_section_ct {
	struct netcap_section head;
	__u8 present;    /* 0: the skb carries no conntrack entry */
	__u8 ctinfo;     /* enum ip_conntrack_info: skb->_nfct & 7 */
	__u8 l3num;      /* AF_INET, AF_INET6 */
	__u8 protonum;   /* IPPROTO_* */
	__u32 mark;      /* ct mark (CONFIG_NF_CONNTRACK_MARK), else 0 */
	__u64 status;    /* enum ip_conntrack_status bits */
	__u16 zone;      /* CONFIG_NF_CONNTRACK_ZONES, else 0 */
	__u16 pad[3];
	struct netcap_ct_tuple original;
	struct netcap_ct_tuple reply;
};

/* --nft: names are cut to this many bytes (nftables allows 256). */
#define NETCAP_NFT_NAME_LEN 32

/* --nft: which netfilter engine evaluated the packet. */
enum netcap_netfilter_engine {
	NETCAP_NETFILTER_NFTABLES = 0, /* nft_do_chain: a base chain */
	NETCAP_NETFILTER_XTABLES = 1,  /* ipt_do_table, ip6t_do_table: a legacy table at one hook */
};

/* --nft: what decided the verdict, as nft_trace_notify() reported it. */
enum netcap_nft_decider {
	NETCAP_NFT_UNKNOWN = 0, /* no report (the packet was not traced) */
	NETCAP_NFT_RULE = 1,    /* rule_handle, in chain rule_chain */
	NETCAP_NFT_POLICY = 2,  /* the base chain's policy */
};

/* --nft: the base chain nft_do_chain() evaluated, or the legacy table
 * ipt_do_table() did (engine XTABLES: no chain, handle or rule; the hook
 * names its built-in chain), with its verdict in the RETVAL section, and
 * the rule that gave the verdict. */
struct netcap_section_nft {
	struct netcap_section head;
	__u8 family;     /* NFPROTO_*: the table's family */
	__u8 hook;       /* enum nf_inet_hooks (or the netdev hook) the packet is at */
	__u8 decider;    /* enum netcap_nft_decider */
	__u8 engine;     /* enum netcap_netfilter_engine */
	__u64 chain_handle;
	__u64 rule_handle;
	char table[NETCAP_NFT_NAME_LEN];
	char chain[NETCAP_NFT_NAME_LEN];
	char rule_chain[NETCAP_NFT_NAME_LEN]; /* the chain holding the rule (a jump's target, or chain) */
};

struct netcap_section_user {
	struct netcap_section head;
	__u32 pad;       /* the user's struct follows, rounded up to 8 bytes */
};

/* Set per attached trace point before load; the verifier sees it as
 * constants, so the branches a trace point does not need are pruned. */
struct netcap_config {
	__u32 trace_index;
	__u32 skb_arg;     /* 0-based argument holding the sk_buff */
	__u32 ext_arg;     /* 0-based argument handed to extensions, or NETCAP_NO_ARG */
	__u32 capture_max;
	__u32 ifindex;     /* 0: every device */
	__u32 netns;       /* network namespace of ifindex, or of every packet with netns_only */
	__u32 netns_only;  /* 1: --netns without -i: packets of devices in netns only */
	__u32 mark_mask;   /* --mark: (skb->mark & mark_mask) == mark_value; 0: no filter */
	__u32 mark_value;
	__u32 skb_filter;  /* 1: netcap_filter_skb holds a --skb-filter expression */
	__u32 pid;         /* --pid: only events of this process (the task that ran); 0: any */
	__u64 cgroup_id;   /* --cgroup: only skbs whose socket is in this cgroup v2 (its id); 0: any */
	__u32 field_count; /* --skb-fields: entries of fields in use */
	struct netcap_field fields[NETCAP_FIELDS_MAX];
	__u32 filter;      /* 1: the filter stubs hold a -e expression */
	__u32 wakeup_bytes; /* wake user space once this much data waits */
	__u32 reason_arg;  /* 0-based argument holding a drop reason, or NETCAP_NO_ARG */
	__u32 location_arg; /* 0-based argument holding a drop location, or NETCAP_NO_ARG */
	__u32 stack;       /* 1: record the kernel stack of each event */
	__u32 ret_arg;     /* fexit: the context slot of the return value */
	__u32 fake_hdr;    /* 1: make up missing headers from the socket */
	__u32 skb_data;    /* 1: the packet starts at skb->data + skb_data_offset */
	__s32 skb_data_offset;
	__u32 packet_form; /* enum netcap_packet_form; skb_arg then holds the packet */
	__u32 len_arg;     /* buffer length or mbuf count argument, or NETCAP_NO_ARG */
	__u32 filter_in_place; /* 1: the kernel allows bpf_rdonly_cast(ptr, 0) */
	__u32 task_btf;    /* 1: the kernel has bpf_get_current_task_btf() (5.11 on) */
	__u32 track;       /* 1: --track: a matched skb is followed, filters or not, until freed */
	__u32 frees;       /* 1: the skb is freed here (kfree_skb, consume_skb): its track ends */
	__u32 silent;      /* 1: attached only to end tracks; emits nothing */
	__u32 inherit;     /* an identity hook (--track): the enum netcap_lineage it gives; 0: none */
	__u32 sections;    /* bit (1 << kind) for each enum netcap_section_kind emitted */
	__u32 sections_len; /* bytes of all of them */
	__u16 section_at[NETCAP_SECTION_END]; /* where each starts after the header */
	struct netcap_mbuf_offsets mbuf;
	__u32 defer;       /* 1: --nft's entry: the record waits in netcap_pending_map for the exit */
	__u32 defer_arg;   /* --nft: the argument keying the waiting record (the call's nft_pktinfo, or skb) */
	__u32 xt_table_arg; /* --nft on ipt_do_table: the argument holding its struct xt_table */
	__u32 pending_size; /* netcap_pending_map's value size */
	__u32 nft_skip_own; /* 1: --nft: chains of tables named netcap_trace_* (netcap's own) are not events */
};

#endif /* NETCAP_H */
