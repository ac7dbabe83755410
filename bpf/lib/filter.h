/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The -e filter: the stubs user space replaces, on the copy and in place. */
#ifndef NETCAP_LIB_FILTER_H
#define NETCAP_LIB_FILTER_H

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

/* --skb-filter: user space replaces the body with the translated
 * expression over the skb's fields (src/filter/skb/translate.rs), which
 * reads them with bpf_probe_read_kernel(). Non-zero keeps the packet. */
static __noinline long netcap_filter_skb(struct sk_buff *skb)
{
	long keep = 3; /* differs from the stubs above, so clang keeps it apart */

	asm volatile("" : "+r"(keep) : "r"(skb));
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
 * no match, as in libpcap. Where the filter also runs in place, the copy is
 * handed over through the same cast: the verifier refuses a load
 * instruction that sees two kinds of pointer (6.18 refuses the copy's map
 * value beside the in-place read-only memory: "same insn cannot be used
 * with different pointers"). */
static __always_inline bool netcap_keep_copy(struct netcap_event *event, __u8 *data)
{
	__u8 *packet = data;

	if (!netcap_cfg.filter)
		return true;
	if (netcap_cfg.filter_in_place)
		packet = bpf_rdonly_cast(data, 0);
	return netcap_filter(event->link, packet, event->cap_len, event->pkt_len) > 0;
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

#endif /* NETCAP_LIB_FILTER_H */
