// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * netcap's kernel half: one handler, entered from each attach flavour
 * (tp_btf, raw_tp, fentry, kprobe). It finds the packet in the sk_buff,
 * applies the device filter, copies up to capture_max bytes (paged data
 * included where the kernel allows it) and emits one ring buffer record.
 *
 * User space opens this object once per trace point, sets netcap_cfg and
 * leaves only the program of the chosen flavour to load; maps are shared
 * between all the opened objects.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include <bpf/usdt.bpf.h>
#include "netcap.h"

/* With --ext-filter/--ext-action netcap compiles this file at run time,
 * defining NETCAP_EXT and generating netcap_ext.h around the user's code. */
#ifdef NETCAP_EXT
#include "netcap_ext.h"
#endif

#ifdef NETCAP_EXT_ACTION
/* The record carries the user's struct between header and packet, in
 * 8-byte units so that the packet stays aligned. */
#define NETCAP_USER_SIZE ((sizeof(struct xcap_user_extend) + 7) & ~7UL)
_Static_assert(sizeof(struct xcap_user_extend) <= NETCAP_USER_MAX,
	       "struct xcap_user_extend is larger than netcap's limit (NETCAP_USER_MAX bytes)");
/* Referenced so that the object's BTF describes the struct to user space. */
struct xcap_user_extend netcap_user_layout = {};
#else
#define NETCAP_USER_SIZE 0
#endif

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* In a section of its own, so that user space finds it at offset 0. */
const volatile struct netcap_config netcap_cfg SEC(".rodata.config") = {};

/* Referenced so that the skeleton generates the Rust mirror of the record. */
struct netcap_event netcap_event_layout = {};

struct netcap_scratch {
	struct netcap_event event;
	__u8 user[NETCAP_USER_SIZE];
	__u8 data[NETCAP_SCRATCH_DATA];
};

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

/* Kernel stacks for -S; identical stacks share one id. Sized by user
 * space (one entry when -S is off). */
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, NETCAP_STACK_DEPTH * sizeof(__u64));
} netcap_stacks_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NETCAP_COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} netcap_counters_map SEC(".maps");

extern int bpf_dynptr_from_skb(struct __sk_buff *skb, __u64 flags,
			       struct bpf_dynptr *ptr) __ksym __weak;

static __always_inline void netcap_count(__u32 counter)
{
	__u64 *value = bpf_map_lookup_elem(&netcap_counters_map, &counter);

	if (value)
		*value += 1;
}

/*
 * Filter stubs: user space replaces each body with the translated -e
 * expression (classic BPF from libpcap, turned into eBPF) after libbpf
 * has relocated the program and before it is loaded. The asm keeps the
 * arguments live and the result opaque, so that clang neither drops an
 * argument nor folds the call away. A positive result keeps the packet,
 * 0 drops it, NETCAP_FILTER_SHORT says a load went past `captured`.
 */
#define NETCAP_FILTER_SHORT (-1L)

static __noinline long netcap_filter_ethernet(__u8 *packet, __u32 captured,
					      __u32 wire_len)
{
	long keep = 1;

	asm volatile("" : "+r"(keep) : "r"(packet), "r"(captured), "r"(wire_len));
	return keep;
}

static __noinline long netcap_filter_raw(__u8 *packet, __u32 captured,
					 __u32 wire_len)
{
	long keep = 2; /* differs from the twin above, so clang keeps both */

	asm volatile("" : "+r"(keep) : "r"(packet), "r"(captured), "r"(wire_len));
	return keep;
}

/* The -e filter for a packet of this link type. */
static __always_inline long netcap_filter(__u8 link, __u8 *packet,
					  __u32 captured, __u32 wire_len)
{
	if (link == NETCAP_LINK_ETHERNET)
		return netcap_filter_ethernet(packet, captured, wire_len);
	return netcap_filter_raw(packet, captured, wire_len);
}

/* The -e filter on netcap's copy of the packet: a load past the copy is
 * no match, as in libpcap. */
static __always_inline bool netcap_keep(struct netcap_scratch *scratch)
{
	struct netcap_event *event = &scratch->event;

	if (!netcap_cfg.filter)
		return true;
	return netcap_filter(event->link, scratch->data, event->cap_len,
			     event->pkt_len) > 0;
}

/*
 * Reads ptr->field: a plain load where the pointer came typed from BTF
 * (tp_btf, fentry: the verifier allows it and it costs one instruction),
 * else bpf_probe_read_kernel() through CO-RE (raw_tp, kprobe). `direct`
 * is a compile-time constant in every caller, so one branch remains.
 */
#define netcap_read(direct, ptr, field) \
	((direct) ? (ptr)->field : BPF_CORE_READ(ptr, field))

/* Mirrors skb_mac_header_was_set(): an unset offset is all ones. */
static __always_inline bool netcap_header_set(__u16 offset)
{
	return offset != (__u16)~0U;
}

/*
 * Reads len bytes at offset from skb->data, linear and paged parts alike
 * (skb_copy_bits() underneath). A function of its own so that its dynptr
 * lives in a stack frame nothing else reuses: the verifier refuses any
 * write over a dynptr's slots.
 */
static __noinline int netcap_read_skb(struct sk_buff *skb, __u8 *dst,
				      __u32 len, __u32 offset)
{
	struct bpf_dynptr bytes;

	if (bpf_dynptr_from_skb((struct __sk_buff *)skb, 0, &bytes))
		return -1;
	return bpf_dynptr_read(dst, len, &bytes, offset, 0);
}

/* With the frame copied 4 bytes into data, moves its MACs to the front and
 * writes the tag after them. */
static __always_inline void netcap_insert_tag(struct netcap_scratch *scratch,
					      __u32 tag, long copied)
{
	__u8 *data = scratch->data;

	if (!tag)
		return;
	if (copied < 12) {
		/* Too short to hold the tag's place: drop it. */
		scratch->event.cap_len = 0;
		return;
	}
	__builtin_memmove(data, data + 4, 12);
	__builtin_memcpy(data + 12, &tag, 4);
}

/* Kernels before 6.2 flag a tag with this bit; later ones by vlan_all != 0. */
struct sk_buff___vlan_present {
	__u8 vlan_present : 1;
} __attribute__((preserve_access_index));

/*
 * The 802.1Q tag a driver moved out of the data (skb->vlan_all), in
 * network order as it stood in the frame (TPID, TCI), or 0 for none.
 * Mirrors skb_vlan_tag_present().
 */
static __always_inline __u32 netcap_vlan_tag(struct sk_buff *skb, bool direct)
{
	__u16 proto = netcap_read(direct, skb, vlan_proto);
	__u16 tci = netcap_read(direct, skb, vlan_tci);

	if (bpf_core_field_exists(((struct sk_buff___vlan_present *)skb)->vlan_present)) {
		if (!BPF_CORE_READ_BITFIELD_PROBED((struct sk_buff___vlan_present *)skb,
						   vlan_present))
			return 0;
	} else if (!proto) {
		return 0;
	}
	/* vlan_proto is already big-endian; the TCI is host order. */
	return (__u32)proto | (__u32)bpf_htons(tci) << 16;
}

/* Length of the headers --fake-hdr makes for a socket of this family
 * (Ethernet + IPv4 or IPv6), 0 for any other family. */
static __always_inline __u32 netcap_fake_length(__u16 family)
{
	if (family == 2 /* AF_INET */)
		return 34;
	if (family == 10 /* AF_INET6 */)
		return 54;
	return 0;
}

/*
 * --fake-hdr: an skb on the send path before the IP layer built its
 * headers has neither MAC nor network header. Writes a zero-MAC Ethernet
 * header and an IPv4 or IPv6 header made from the socket (addresses,
 * protocol, lengths) at dst, netcap_fake_length() bytes. Offsets from BTF
 * (CO-RE), never version tables.
 */
static __always_inline void netcap_fake_headers(struct sock *sk, __u8 *dst,
						__u32 l4_len)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u8 protocol = BPF_CORE_READ(sk, sk_protocol);
	__u16 length;

	__builtin_memset(dst, 0, 12);
	if (family == 2 /* AF_INET */) {
		length = bpf_htons(20 + l4_len);
		dst[12] = 0x08;
		dst[13] = 0x00;
		__builtin_memset(dst + 14, 0, 20);
		dst[14] = 0x45;
		__builtin_memcpy(dst + 16, &length, 2);
		dst[22] = 64; /* TTL */
		dst[23] = protocol;
		bpf_core_read(dst + 26, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(dst + 30, 4, &sk->__sk_common.skc_daddr);
	} else if (family == 10 /* AF_INET6 */) {
		length = bpf_htons(l4_len);
		dst[12] = 0x86;
		dst[13] = 0xdd;
		__builtin_memset(dst + 14, 0, 8);
		dst[14] = 0x60;
		__builtin_memcpy(dst + 18, &length, 2);
		dst[20] = protocol;
		dst[21] = 64; /* hop limit */
		bpf_core_read(dst + 22, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(dst + 38, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

/* Where the packet lies in an skb and how much of it netcap takes: found
 * before any scratch slot is taken, so that the filter can run on the
 * packet in place and most packets leave without a copy. */
struct netcap_frame {
	unsigned char *start; /* first byte of the packet in the skb */
	struct sock *sk;      /* --fake-hdr: the socket that made it */
	long before_data;     /* start lies this many bytes before skb->data */
	long linear_end;      /* the linear area ends this far after start */
	long want;            /* bytes to copy from start */
	__u32 pkt_len;        /* whole packet, made-up bytes included */
	__u32 paged;          /* skb->data_len */
	__u32 len;            /* skb->len */
	__u32 made;           /* bytes netcap makes up in front (tag, --fake-hdr) */
	__u32 tag;            /* 802.1Q tag to put back, or 0 */
	__u8 link;            /* enum netcap_link */
	__u8 flags;           /* enum netcap_event_flags */
};

/* Describes the packet in skb. False when it holds none netcap can show. */
static __always_inline bool netcap_locate(struct sk_buff *skb, bool direct,
					  struct netcap_frame *frame)
{
	unsigned char *head = netcap_read(direct, skb, head);
	unsigned char *data = netcap_read(direct, skb, data);
	__u16 mac = netcap_read(direct, skb, mac_header);
	__u16 network = netcap_read(direct, skb, network_header);
	__u32 len = netcap_read(direct, skb, len);
	long want;

	frame->flags = 0;
	frame->made = 0;
	frame->tag = 0;
	frame->sk = NULL;
	if (netcap_cfg.skb_data) {
		frame->start = data + netcap_cfg.skb_data_offset;
		frame->link = netcap_header_set(mac) && head + mac == frame->start ?
				      NETCAP_LINK_ETHERNET :
				      NETCAP_LINK_RAW;
	} else if (netcap_header_set(mac) && mac != network) {
		frame->start = head + mac;
		frame->link = NETCAP_LINK_ETHERNET;
		/* Put back a tag the driver took out, as tcpdump shows it: the
		 * frame is copied 4 bytes later and its MACs moved in front. */
		frame->tag = netcap_vlan_tag(skb, direct);
		if (frame->tag)
			frame->made = 4;
	} else if (netcap_header_set(network) && network) {
		frame->start = head + network;
		frame->link = NETCAP_LINK_RAW;
	} else {
		struct sock *sk = netcap_cfg.fake_hdr ? netcap_read(direct, skb, sk) : NULL;

		if (sk)
			frame->made = netcap_fake_length(BPF_CORE_READ(sk, __sk_common.skc_family));
		if (!frame->made) {
			netcap_count(NETCAP_COUNTER_NO_HEADER);
			return false;
		}
		frame->sk = sk;
		frame->start = data;
		frame->link = NETCAP_LINK_ETHERNET;
		frame->flags = NETCAP_EVENT_SYNTHESIZED;
	}
	frame->made &= 0x3f;
	frame->len = len;
	frame->paged = netcap_read(direct, skb, data_len);
	/* Headers already pulled (receive path) lie before skb->data. */
	frame->before_data = data - frame->start;
	if (frame->before_data < -(long)len || frame->before_data > 0xffff)
		return false;
	frame->pkt_len = len + frame->before_data + frame->made;
	/* The linear area ends paged bytes before skb->data + len. */
	frame->linear_end = frame->before_data + len - frame->paged;

	/* What to copy from the skb, after what was made up. */
	want = frame->pkt_len;
	if (want > netcap_cfg.capture_max)
		want = netcap_cfg.capture_max;
	want -= frame->made;
	if (want <= 0)
		return false;
	frame->want = want & 0xffff;
	return true;
}

/*
 * The -e filter on the packet where it lies, without copying it: the
 * kernel must let a program read any address through a fault-tolerant
 * load (bpf_rdonly_cast() to void, 6.17 on; user space looks in the
 * kernel's BTF and says so in filter_in_place), and nothing may be made up
 * in front of the packet. The filter sees the linear bytes only; a load
 * past them that the copy would have satisfied (paged data) leaves the
 * verdict to the copy. Returns 1 keep, 0 drop, -1 not decided here. A
 * verdict given here is the one the copy would get: the filter reads the
 * same bytes, and a load past what the copy holds means no match in both.
 */
static __always_inline int netcap_filter_in_place(struct netcap_frame *frame)
{
	long linear = frame->want < frame->linear_end ? frame->want : frame->linear_end;
	__u8 *packet;
	long verdict;

	if (!netcap_cfg.filter)
		return 1;
	if (!netcap_cfg.filter_in_place || frame->made || linear <= 0)
		return -1;
	packet = bpf_rdonly_cast(frame->start, 0);
	verdict = netcap_filter(frame->link, packet, linear, frame->pkt_len);
	if (verdict == NETCAP_FILTER_SHORT)
		return linear < frame->want ? -1 : 0;
	return verdict > 0;
}

/* The record's fields that describe the located packet, cap_len bytes of it. */
static __always_inline void netcap_describe(struct netcap_event *event,
					    struct netcap_frame *frame,
					    __u32 cap_len)
{
	event->flags = frame->flags;
	event->link = frame->link;
	event->pkt_len = frame->pkt_len;
	event->paged_len = frame->paged;
	event->cap_len = cap_len;
}

/*
 * Copies the located packet into scratch->data and fills the header fields
 * that describe it. False when it could not be read.
 */
static __always_inline bool netcap_copy_frame(struct sk_buff *skb,
					      struct netcap_frame *frame,
					      struct netcap_scratch *scratch,
					      bool paged_reads)
{
	struct netcap_event *event = &scratch->event;
	long want = frame->want, before_data = frame->before_data;
	__u32 made = frame->made;

	netcap_describe(event, frame, want + made);
	if (frame->sk)
		netcap_fake_headers(frame->sk, scratch->data, frame->len);

	if (want > frame->linear_end && paged_reads &&
	    bpf_ksym_exists(bpf_dynptr_from_skb)) {
		long prefix = before_data > 0 ? before_data : 0;
		long skip = before_data < 0 ? -before_data : 0;

		if (prefix > want)
			prefix = want;
		prefix &= 0xffff;
		if (prefix &&
		    bpf_probe_read_kernel(scratch->data + made, prefix, frame->start))
			goto fault;
		/* Bounded for the verifier: offset and length each below 64 KiB. */
		if (netcap_read_skb(skb, scratch->data + made + (prefix & 0xffff),
				    (want - prefix) & 0xffff, skip & 0xffff))
			goto fault;
		netcap_insert_tag(scratch, frame->tag, want);
		return true;
	}
	if (want > frame->linear_end) {
		if (frame->linear_end <= 0)
			return false;
		want = frame->linear_end & 0xffff;
		event->cap_len = want + made;
		event->flags |= NETCAP_EVENT_PAGED_MISSED;
	}
	/* All wanted bytes are linear: one read, the common and cheap case. */
	if (bpf_probe_read_kernel(scratch->data + made, want & 0xffff, frame->start))
		goto fault;
	netcap_insert_tag(scratch, frame->tag, want);
	return true;
fault:
	netcap_count(NETCAP_COUNTER_READ_FAULT);
	return false;
}

/* What a trace point hands over besides the skb. */
struct netcap_args {
	__u64 ext;
	__u64 location;
	__u64 reason;
	__u64 retval;
	__u32 trace_index;
	bool has_retval;
};

/* Takes this CPU's next scratch slot: programs nest (a softirq interrupts
 * a traced process), and each level needs its own. NULL when none is free. */
static __always_inline struct netcap_scratch *netcap_enter(__u32 **depth)
{
	__u32 zero = 0, slot;
	struct netcap_scratch *scratch;

	*depth = bpf_map_lookup_elem(&netcap_nest_map, &zero);
	if (!*depth)
		return NULL;
	if (**depth >= NETCAP_NEST_MAX) {
		netcap_count(NETCAP_COUNTER_NESTED);
		return NULL;
	}
	slot = bpf_get_smp_processor_id() * NETCAP_NEST_MAX + **depth;
	scratch = bpf_map_lookup_elem(&netcap_scratch_map, &slot);
	if (scratch)
		**depth += 1;
	return scratch;
}

/*
 * The -e filter, then the user's filter and action (--ext-*). False when
 * the packet is not wanted. Decided before anything else is read or
 * reserved in the ring buffer: most packets stop here.
 */
static __always_inline bool netcap_wanted(struct netcap_scratch *scratch,
					  void *pkt, __u64 ext,
					  __u32 trace_index, bool filtered)
{
	if (!filtered && !netcap_keep(scratch))
		return false;
#ifdef NETCAP_EXT_FILTER
	if (!xcap_ext_filter((void *)ext, pkt, trace_index))
		return false;
#endif
#ifdef NETCAP_EXT_ACTION
	__builtin_memset(scratch->user, 0, NETCAP_USER_SIZE);
	if (xcap_ext_action((void *)ext, pkt, scratch->event.pkt_len,
			    (struct xcap_user_extend *)scratch->user,
			    trace_index))
		scratch->event.flags |= NETCAP_EVENT_USER;
#endif
	return true;
}

/* Copies a 16-byte name with two loads: where the pointer is BTF-typed
 * (tp_btf, fentry) this is cheaper than a string helper call. */
#define netcap_copy_name16(dst, src)                                     \
	do {                                                             \
		((__u64 *)(dst))[0] = ((const __u64 *)(src))[0];         \
		((__u64 *)(dst))[1] = ((const __u64 *)(src))[1];         \
	} while (0)

/* Fills what every record has: time, CPU, task, trace point. */
static __always_inline void netcap_fill_common(struct netcap_event *event,
					       void *pkt, __u64 ext,
					       __u32 trace_index, bool direct)
{
	event->ts_ns = bpf_ktime_get_ns();
	event->skb = (__u64)pkt;
	event->ext_arg = ext;
	event->trace_index = trace_index;
	event->cpu = bpf_get_smp_processor_id();
	if (direct) {
		struct task_struct *task = bpf_get_current_task_btf();

		event->pid = task->tgid;
		netcap_copy_name16(event->comm, task->comm);
	} else {
		event->pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(&event->comm, sizeof(event->comm));
	}
}

/*
 * Whether this record should wake user space. A wakeup per record costs
 * microseconds (irq_work); user space polls every 100 ms anyway, so it is
 * woken only once data piles up. Looking at the fill level reads a cache
 * line user space writes, which costs more than the rest of a record, so
 * only about one record in 32 looks: those whose nanosecond timestamp has
 * its low 5 bits clear (no state to keep, and nothing skips it for long).
 */
static __always_inline __u64 netcap_wakeup(__u64 ts_ns)
{
	if ((ts_ns & 31) == 0 &&
	    bpf_ringbuf_query(&netcap_events_map, BPF_RB_AVAIL_DATA) >=
		    netcap_cfg.wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* Fills the common fields of the record in scratch and hands a copy of it
 * to the ring buffer. */
static __always_inline void netcap_submit(struct netcap_scratch *scratch,
					  void *pkt, __u64 ext,
					  __u32 trace_index, bool direct)
{
	struct netcap_event *event = &scratch->event;

	netcap_fill_common(event, pkt, ext, trace_index, direct);
	if (bpf_ringbuf_output(&netcap_events_map, scratch,
			       (sizeof(*event) + NETCAP_USER_SIZE + event->cap_len) & 0x1ffff,
			       netcap_wakeup(event->ts_ns)))
		netcap_count(NETCAP_COUNTER_LOST);
}

/* What an skb's record says besides the packet. */
static __always_inline void netcap_fill_skb(struct netcap_event *event, void *ctx,
					    struct sk_buff *skb,
					    struct netcap_args *args,
					    struct net_device *dev, __u32 ifindex,
					    __u32 netns, bool direct)
{
	event->location = args->location;
	event->reason = args->reason;
	event->retval = args->retval;
	if (args->has_retval)
		event->flags |= NETCAP_EVENT_RETVAL;
	event->stack_id = netcap_cfg.stack ?
				  bpf_get_stackid(ctx, &netcap_stacks_map, 0) :
				  NETCAP_NO_STACK;
	event->ifindex = ifindex;
	event->netns = netns;
	event->mark = netcap_read(direct, skb, mark);
	event->protocol = netcap_read(direct, skb, protocol);
	event->ifname[0] = 0;
	if (dev && direct)
		netcap_copy_name16(event->ifname, dev->name);
	else if (dev)
		bpf_probe_read_kernel_str(&event->ifname, sizeof(event->ifname),
					  dev->name);
}

/*
 * Reserves a record in the ring buffer for `want` packet bytes: the
 * verifier wants a size it knows, so records come in classes, each a
 * constant, the largest capture_max itself (known at load). The asm makes
 * each class's call differ, so that clang cannot merge them into one call
 * of a computed size. *room: the class's packet bytes.
 */
#define NETCAP_RECORD_CLASS(bytes)                                           \
	if (want <= (bytes) && (bytes) < netcap_cfg.capture_max) {          \
		event = bpf_ringbuf_reserve(&netcap_events_map,             \
					    sizeof(*event) + (bytes), 0);   \
		asm volatile("" : "+r"(event) : "i"(bytes));                \
		*room = (bytes);                                            \
		return event;                                               \
	}

static __always_inline struct netcap_event *netcap_reserve(long want, __u32 *room)
{
	struct netcap_event *event;

	NETCAP_RECORD_CLASS(128)
	NETCAP_RECORD_CLASS(256)
	NETCAP_RECORD_CLASS(512)
	NETCAP_RECORD_CLASS(1024)
	NETCAP_RECORD_CLASS(2048)
	NETCAP_RECORD_CLASS(8192)
	*room = netcap_cfg.capture_max;
	return bpf_ringbuf_reserve(&netcap_events_map,
				   sizeof(*event) + netcap_cfg.capture_max, 0);
}

/*
 * The cheap way for a packet that is wanted (filtered in place, or no
 * filter), linear and with nothing made up: its bytes go straight from the
 * skb into a record reserved in the ring buffer. No scratch slot, and no
 * second copy from scratch into the ring.
 */
static __always_inline void netcap_emit_in_place(void *ctx, struct sk_buff *skb,
						 struct netcap_frame *frame,
						 struct netcap_args *args,
						 struct net_device *dev,
						 __u32 ifindex, __u32 netns,
						 bool direct)
{
	struct netcap_event *event;
	long want = frame->want;
	__u32 room;

	event = netcap_reserve(want, &room);
	if (!event) {
		netcap_count(NETCAP_COUNTER_LOST);
		return;
	}
	if (want > room) /* never: the class fits; tells the verifier so */
		want = room;
	if (bpf_probe_read_kernel(event + 1, want & 0xffff, frame->start)) {
		bpf_ringbuf_discard(event, BPF_RB_NO_WAKEUP);
		netcap_count(NETCAP_COUNTER_READ_FAULT);
		return;
	}
	netcap_describe(event, frame, want);
	netcap_fill_skb(event, ctx, skb, args, dev, ifindex, netns, direct);
	netcap_fill_common(event, skb, args->ext, args->trace_index, direct);
	bpf_ringbuf_submit(event, netcap_wakeup(event->ts_ns));
}

static __always_inline int netcap_handle(void *ctx, struct sk_buff *skb,
					 struct netcap_args *args, bool direct,
					 bool paged_reads)
{
	struct net_device *dev;
	struct netcap_scratch *scratch;
	struct netcap_event *event;
	struct netcap_frame frame;
	__u32 ifindex = 0, netns = 0, *depth;
	int verdict;

	if (!skb)
		return 0;
	dev = netcap_read(direct, skb, dev);
	if (dev) {
		struct net *net = netcap_read(direct, dev, nd_net.net);

		ifindex = netcap_read(direct, dev, ifindex);
		netns = net ? netcap_read(direct, net, ns.inum) : 0;
	}
	if (netcap_cfg.ifindex &&
	    (ifindex != netcap_cfg.ifindex || netns != netcap_cfg.netns))
		return 0;
	if (!netcap_locate(skb, direct, &frame))
		return 0;
	verdict = netcap_filter_in_place(&frame);
	if (!verdict)
		return 0;

#ifndef NETCAP_EXT
	if (verdict > 0 && !frame.made && frame.want <= frame.linear_end) {
		netcap_emit_in_place(ctx, skb, &frame, args, dev, ifindex, netns, direct);
		return 0;
	}
#endif
	scratch = netcap_enter(&depth);
	if (!scratch)
		return 0;
	event = &scratch->event;
	if (netcap_copy_frame(skb, &frame, scratch, paged_reads) &&
	    netcap_wanted(scratch, skb, args->ext, args->trace_index, verdict > 0)) {
		netcap_fill_skb(event, ctx, skb, args, dev, ifindex, netns, direct);
		netcap_submit(scratch, skb, args->ext, args->trace_index, direct);
	}
	*depth -= 1;
	return 0;
}

/* Arguments arrive as an array of u64 for tp_btf, raw_tp and fentry. The
 * verifier wants every context access at a fixed offset, and the index is
 * a load-time constant, so each case is its own load; asm keeps clang from
 * merging the cases into one load through a computed pointer, which the
 * verifier refuses ("dereference of modified ctx ptr"). */
#define NETCAP_ARG_CASE(index, offset)                                   \
	case index:                                                      \
		asm volatile("%0 = *(u64 *)(%1 + " #offset ")"           \
			     : "=r"(value)                               \
			     : "r"(args));                               \
		break

static __always_inline __u64 netcap_array_arg(__u64 *args, __u32 index)
{
	__u64 value = 0;

	switch (index) {
	NETCAP_ARG_CASE(0, 0);
	NETCAP_ARG_CASE(1, 8);
	NETCAP_ARG_CASE(2, 16);
	NETCAP_ARG_CASE(3, 24);
	NETCAP_ARG_CASE(4, 32);
	NETCAP_ARG_CASE(5, 40);
	NETCAP_ARG_CASE(6, 48);
	NETCAP_ARG_CASE(7, 56);
	NETCAP_ARG_CASE(8, 64);
	NETCAP_ARG_CASE(9, 72);
	NETCAP_ARG_CASE(10, 80);
	NETCAP_ARG_CASE(11, 88);
	}
	return value;
}

static __always_inline __u64 netcap_regs_arg(struct pt_regs *regs, __u32 index)
{
	switch (index) {
	case 0: return PT_REGS_PARM1_CORE(regs);
	case 1: return PT_REGS_PARM2_CORE(regs);
	case 2: return PT_REGS_PARM3_CORE(regs);
	case 3: return PT_REGS_PARM4_CORE(regs);
	case 4: return PT_REGS_PARM5_CORE(regs);
	case 5: return PT_REGS_PARM6_CORE(regs);
	}
	return 0;
}

/* Argument `index` of the trace point, or 0 when it has none such. */
static __always_inline __u64 netcap_optional_array_arg(__u64 *args, __u32 index)
{
	return index == NETCAP_NO_ARG ? 0 : netcap_array_arg(args, index);
}

static __always_inline int netcap_from_array(void *ctx, __u64 *args,
					     bool direct, bool paged_reads)
{
	struct sk_buff *skb = (void *)netcap_array_arg(args, netcap_cfg.skb_arg);
	struct netcap_args extra = {
		.ext = netcap_optional_array_arg(args, netcap_cfg.ext_arg),
		.location = netcap_optional_array_arg(args, netcap_cfg.location_arg),
		.reason = netcap_optional_array_arg(args, netcap_cfg.reason_arg),
		.trace_index = netcap_cfg.trace_index,
	};

	return netcap_handle(ctx, skb, &extra, direct, paged_reads);
}

/* tp_btf with reads through bpf_dynptr_from_skb(): paged data included. */
SEC("tp_btf")
int netcap_tp_btf_paged(__u64 *ctx)
{
	return netcap_from_array(ctx, ctx, true, true);
}

SEC("tp_btf")
int netcap_tp_btf(__u64 *ctx)
{
	return netcap_from_array(ctx, ctx, true, false);
}

/* Does nothing: the floor that benchmarks compare netcap's cost with. */
SEC("tp_btf")
int netcap_tp_btf_floor(__u64 *ctx)
{
	return 0;
}

SEC("raw_tp")
int netcap_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	return netcap_from_array(ctx, ctx->args, false, false);
}

SEC("fentry")
int netcap_fentry(__u64 *ctx)
{
	return netcap_from_array(ctx, ctx, true, false);
}

static __always_inline __u64 netcap_optional_regs_arg(struct pt_regs *regs,
							__u32 index)
{
	return index == NETCAP_NO_ARG ? 0 : netcap_regs_arg(regs, index);
}

/* Return values: fexit sees the arguments and, after them, the result. */
SEC("fexit")
int netcap_fexit(__u64 *ctx)
{
	struct sk_buff *skb = (void *)netcap_array_arg(ctx, netcap_cfg.skb_arg);
	struct netcap_args extra = {
		.ext = netcap_optional_array_arg(ctx, netcap_cfg.ext_arg),
		.reason = netcap_optional_array_arg(ctx, netcap_cfg.reason_arg),
		.retval = netcap_array_arg(ctx, netcap_cfg.ret_arg),
		.has_retval = true,
		.trace_index = netcap_cfg.trace_index,
	};

	return netcap_handle(ctx, skb, &extra, true, false);
}

SEC("kprobe")
int netcap_kprobe(struct pt_regs *ctx)
{
	struct sk_buff *skb = (void *)netcap_regs_arg(ctx, netcap_cfg.skb_arg);
	struct netcap_args extra = {
		.ext = netcap_optional_regs_arg(ctx, netcap_cfg.ext_arg),
		.location = netcap_optional_regs_arg(ctx, netcap_cfg.location_arg),
		.reason = netcap_optional_regs_arg(ctx, netcap_cfg.reason_arg),
		.trace_index = netcap_cfg.trace_index,
	};

	return netcap_handle(ctx, skb, &extra, false, false);
}

/* kretprobe: registers hold no arguments at return, so the entry keeps
 * them per task (a function re-entered by the same task before it
 * returns loses its first entry). */
SEC("kprobe")
int netcap_kretprobe_entry(struct pt_regs *ctx)
{
	__u64 task = bpf_get_current_pid_tgid();
	struct netcap_entry entry = {
		.skb = netcap_regs_arg(ctx, netcap_cfg.skb_arg),
		.ext = netcap_optional_regs_arg(ctx, netcap_cfg.ext_arg),
	};

	bpf_map_update_elem(&netcap_entries_map, &task, &entry, BPF_ANY);
	return 0;
}

SEC("kretprobe")
int netcap_kretprobe(struct pt_regs *ctx)
{
	__u64 task = bpf_get_current_pid_tgid();
	struct netcap_entry *entry = bpf_map_lookup_elem(&netcap_entries_map, &task);
	struct netcap_args extra = {
		.retval = PT_REGS_RC_CORE(ctx),
		.has_retval = true,
		.trace_index = netcap_cfg.trace_index,
	};
	struct sk_buff *skb;

	if (!entry)
		return 0;
	skb = (void *)entry->skb;
	extra.ext = entry->ext;
	bpf_map_delete_elem(&netcap_entries_map, &task);
	return netcap_handle(ctx, skb, &extra, false, false);
}

/*
 * One program for many kernel functions (-f 'tcp_v4_*'): each attachment's
 * cookie says which trace point it is and where its arguments are, see
 * NETCAP_COOKIE_* in netcap.h. Here the argument index is a run-time value,
 * which pt_regs allows (every case is a valid context offset).
 */
static __always_inline int netcap_from_cookie(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 skb_arg = (cookie >> NETCAP_COOKIE_SKB_SHIFT) & 0xff;
	__u32 reason_arg = (cookie >> NETCAP_COOKIE_REASON_SHIFT) & 0xff;
	struct sk_buff *skb = (void *)netcap_regs_arg(ctx, skb_arg);
	struct netcap_args extra = {
		.reason = netcap_optional_regs_arg(ctx, reason_arg),
		.trace_index = cookie & NETCAP_COOKIE_INDEX_MASK,
	};

	return netcap_handle(ctx, skb, &extra, false, false);
}

SEC("kprobe.multi")
int netcap_kprobe_multi(struct pt_regs *ctx)
{
	return netcap_from_cookie(ctx);
}

/* The same, attached one kprobe at a time where kprobe-multi is missing. */
SEC("kprobe")
int netcap_kprobe_cookie(struct pt_regs *ctx)
{
	return netcap_from_cookie(ctx);
}

/*
 * User-space packets (netcap raw, netcap mbuf): uprobes and USDT probes in
 * a process, which hands netcap a buffer and its length, one DPDK rte_mbuf,
 * or an array of mbufs and their count.
 */

/* Reads a value of `size` bytes (1, 2, 4 or 8) at addr in the traced process. */
static __always_inline __u64 netcap_user_value(__u64 addr, __u32 size)
{
	__u64 value = 0;

	bpf_probe_read_user(&value, size & 0xf, (void *)addr);
	return value;
}

/* The frame of a raw buffer: len bytes at pkt. */
static __always_inline bool netcap_copy_buffer(struct netcap_scratch *scratch,
					       __u64 pkt, __u64 len)
{
	struct netcap_event *event = &scratch->event;
	__u64 want = len < netcap_cfg.capture_max ? len : netcap_cfg.capture_max;

	event->pkt_len = len;
	want &= 0xffff;
	if (!want)
		return false;
	if (bpf_probe_read_user(scratch->data, want, (void *)pkt)) {
		netcap_count(NETCAP_COUNTER_READ_FAULT);
		return false;
	}
	event->cap_len = want;
	return true;
}

/* The frame of an rte_mbuf chain, segment after segment through `next`,
 * up to capture_max bytes. Field offsets come from user space. */
static __always_inline bool netcap_copy_mbuf(struct netcap_scratch *scratch,
					     __u64 mbuf)
{
	struct netcap_event *event = &scratch->event;
	__u32 pkt_len, want, copied = 0, segment;

	pkt_len = netcap_user_value(mbuf + netcap_cfg.mbuf.pkt_len, 4);
	event->pkt_len = pkt_len;
	event->ifindex = netcap_user_value(mbuf + netcap_cfg.mbuf.port, 2);
	want = pkt_len < netcap_cfg.capture_max ? pkt_len : netcap_cfg.capture_max;
	for (segment = 0; segment < NETCAP_MBUF_SEGMENTS_MAX; segment++) {
		__u64 buf, data_off, data_len;

		if (!mbuf || copied >= want)
			break;
		buf = netcap_user_value(mbuf + netcap_cfg.mbuf.buf_addr, 8);
		data_off = netcap_user_value(mbuf + netcap_cfg.mbuf.data_off, 2);
		data_len = netcap_user_value(mbuf + netcap_cfg.mbuf.data_len, 2);
		if (data_len > want - copied)
			data_len = want - copied;
		if (data_len &&
		    bpf_probe_read_user(scratch->data + (copied & 0xffff),
					data_len & 0xffff,
					(void *)(buf + data_off))) {
			netcap_count(NETCAP_COUNTER_READ_FAULT);
			return false;
		}
		copied += data_len;
		if (segment > 0)
			event->flags |= NETCAP_EVENT_CHAINED;
		mbuf = netcap_user_value(mbuf + netcap_cfg.mbuf.next, 8);
	}
	if (mbuf && copied < want)
		event->flags |= NETCAP_EVENT_PAGED_MISSED;
	event->cap_len = copied & 0xffff;
	return copied > 0;
}

/* One packet of the traced process: copied, filtered, submitted. */
static __always_inline void netcap_user_packet(__u64 pkt, __u64 len)
{
	struct netcap_scratch *scratch;
	struct netcap_event *event;
	__u32 *depth;
	bool copied;

	if (!pkt)
		return;
	scratch = netcap_enter(&depth);
	if (!scratch)
		return;
	event = &scratch->event;
	event->flags = 0;
	event->link = NETCAP_LINK_ETHERNET;
	event->paged_len = 0;
	event->ifindex = 0;
	if (netcap_cfg.packet_form == NETCAP_FORM_BUFFER)
		copied = netcap_copy_buffer(scratch, pkt, len);
	else
		copied = netcap_copy_mbuf(scratch, pkt);
	if (copied && netcap_wanted(scratch, (void *)pkt, 0, netcap_cfg.trace_index, false)) {
		event->flags |= netcap_cfg.packet_form == NETCAP_FORM_BUFFER ?
					0 : NETCAP_EVENT_MBUF;
		event->location = 0;
		event->reason = 0;
		event->retval = 0;
		event->stack_id = NETCAP_NO_STACK;
		event->netns = 0;
		event->mark = 0;
		event->protocol = 0;
		event->ifname[0] = 0;
		netcap_submit(scratch, (void *)pkt, 0, netcap_cfg.trace_index, false);
	}
	*depth -= 1;
}

static long netcap_mbuf_entry(__u64 index, void *array)
{
	netcap_user_packet(netcap_user_value(*(__u64 *)array + index * 8, 8), 0);
	return 0;
}

/* pkt: the buffer, the mbuf, or the array of mbufs; len: the buffer's
 * length, or the array's count. */
static __always_inline int netcap_from_user(__u64 pkt, __u64 len)
{
	if (netcap_cfg.packet_form == NETCAP_FORM_MBUF_ARRAY) {
		__u64 count = len & 0xffff;

		if (count > NETCAP_MBUF_BURST_MAX)
			count = NETCAP_MBUF_BURST_MAX;
		bpf_loop(count, netcap_mbuf_entry, &pkt, 0);
		return 0;
	}
	netcap_user_packet(pkt, len);
	return 0;
}

SEC("uprobe")
int netcap_uprobe(struct pt_regs *ctx)
{
	return netcap_from_user(netcap_regs_arg(ctx, netcap_cfg.skb_arg),
				netcap_optional_regs_arg(ctx, netcap_cfg.len_arg));
}

SEC("usdt")
int netcap_usdt(struct pt_regs *ctx)
{
	long pkt = 0, len = 0;

	bpf_usdt_arg(ctx, netcap_cfg.skb_arg, &pkt);
	if (netcap_cfg.len_arg != NETCAP_NO_ARG)
		bpf_usdt_arg(ctx, netcap_cfg.len_arg, &len);
	return netcap_from_user(pkt, len);
}
