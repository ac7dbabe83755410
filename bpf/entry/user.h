/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * User-space packets (netcap raw, netcap mbuf): uprobes and USDT probes in
 * a process, which hands netcap a buffer and its length, one DPDK rte_mbuf,
 * or an array of mbufs and their count. Always copied into a scratch slot.
 */
#ifndef NETCAP_ENTRY_USER_H
#define NETCAP_ENTRY_USER_H

/* Reads a value of `size` bytes (1, 2, 4 or 8) at addr in the traced process. */
static __always_inline __u64 netcap_user_value(__u64 addr, __u32 size)
{
	__u64 value = 0;

	bpf_probe_read_user(&value, size & 0xf, (void *)addr);
	return value;
}

/* The frame of a raw buffer: len bytes at pkt. */
static __always_inline bool netcap_copy_buffer(struct netcap_scratch *scratch,
					       struct netcap_event *event,
					       __u64 pkt, __u64 len)
{
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
					     struct netcap_event *event,
					     __u64 mbuf)
{
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
	event = netcap_scratch_event(scratch);
	event->flags = 0;
	event->link = NETCAP_LINK_ETHERNET;
	event->paged_len = 0;
	event->ifindex = 0;
	if (netcap_cfg.packet_form == NETCAP_FORM_BUFFER)
		copied = netcap_copy_buffer(scratch, event, pkt, len);
	else
		copied = netcap_copy_mbuf(scratch, event, pkt);
	if (copied && netcap_wanted(event, scratch->data, (void *)pkt, 0,
				    netcap_cfg.trace_index, false, false)) {
		struct netcap_args args = { .trace_index = netcap_cfg.trace_index };

		event->flags |= netcap_cfg.packet_form == NETCAP_FORM_BUFFER ?
					0 : NETCAP_EVENT_MBUF;
		event->netns = 0;
		event->mark = 0;
		event->protocol = 0;
		event->ifname[0] = 0;
		/* No context: user-space points never record a kernel stack. */
		netcap_submit(event, NULL, (void *)pkt, &args, false);
	}
	*depth -= 1;
}

/* One mbuf of a burst. A global function: the verifier checks it once, on
 * its own, instead of once per turn of the loop that calls it, which keeps
 * a 1024-turn loop small; inlined into bpf_loop's callback, its segment
 * loop took 6.18.44's verifier past its million instructions. */
__noinline int netcap_burst_entry(__u64 mbuf)
{
	netcap_user_packet(mbuf, 0);
	return 0;
}

static long netcap_mbuf_entry(__u64 index, void *array)
{
	netcap_burst_entry(netcap_user_value(*(__u64 *)array + index * 8, 8));
	return 0;
}

/* How a program walks what it was handed. */
enum netcap_walk {
	NETCAP_WALK_ONE,	/* one buffer or one mbuf */
	NETCAP_WALK_LOOP,	/* an mbuf array, by bpf_loop */
	NETCAP_WALK_BOUNDED,	/* an mbuf array, by a loop with a constant bound (5.3 on) */
};

/* pkt: the buffer, the mbuf, or the array of mbufs; len: the buffer's
 * length, or the array's count. `walk` is a constant per program: only the
 * *_burst programs hold bpf_loop and its callback, which kernels before 5.17
 * refuse at load even where the call is never reached. */
static __always_inline int netcap_walk(__u64 pkt, __u64 len, enum netcap_walk walk)
{
	__u32 count = len & 0xffff;

	if (count > NETCAP_MBUF_BURST_MAX)
		count = NETCAP_MBUF_BURST_MAX;
	switch (walk) {
	case NETCAP_WALK_ONE:
		netcap_user_packet(pkt, len);
		break;
	case NETCAP_WALK_LOOP:
		bpf_loop(count, netcap_mbuf_entry, &pkt, 0);
		break;
	case NETCAP_WALK_BOUNDED:
		for (__u32 i = 0; i < NETCAP_MBUF_BURST_MAX; i++) {
			if (i >= count)
				break;
			netcap_burst_entry(netcap_user_value(pkt + i * 8, 8));
		}
		break;
	}
	return 0;
}

static __always_inline int netcap_uprobe_args(struct pt_regs *ctx, enum netcap_walk walk)
{
	return netcap_walk(netcap_regs_arg(ctx, netcap_cfg.skb_arg),
			   netcap_optional_regs_arg(ctx, netcap_cfg.len_arg), walk);
}

static __always_inline int netcap_usdt_args(struct pt_regs *ctx, enum netcap_walk walk)
{
	long pkt = 0, len = 0;

	bpf_usdt_arg(ctx, netcap_cfg.skb_arg, &pkt);
	if (netcap_cfg.len_arg != NETCAP_NO_ARG)
		bpf_usdt_arg(ctx, netcap_cfg.len_arg, &len);
	return netcap_walk(pkt, len, walk);
}

/* One buffer or one mbuf (NETCAP_FORM_BUFFER, NETCAP_FORM_MBUF). */
SEC("uprobe")
int netcap_uprobe(struct pt_regs *ctx)
{
	return netcap_uprobe_args(ctx, NETCAP_WALK_ONE);
}

/* An array of mbufs and its count (NETCAP_FORM_MBUF_ARRAY). */
SEC("uprobe")
int netcap_uprobe_burst(struct pt_regs *ctx)
{
	return netcap_uprobe_args(ctx, NETCAP_WALK_LOOP);
}

SEC("uprobe")
int netcap_uprobe_burst_bounded(struct pt_regs *ctx)
{
	return netcap_uprobe_args(ctx, NETCAP_WALK_BOUNDED);
}

SEC("usdt")
int netcap_usdt(struct pt_regs *ctx)
{
	return netcap_usdt_args(ctx, NETCAP_WALK_ONE);
}

SEC("usdt")
int netcap_usdt_burst(struct pt_regs *ctx)
{
	return netcap_usdt_args(ctx, NETCAP_WALK_LOOP);
}

SEC("usdt")
int netcap_usdt_burst_bounded(struct pt_regs *ctx)
{
	return netcap_usdt_args(ctx, NETCAP_WALK_BOUNDED);
}

#endif /* NETCAP_ENTRY_USER_H */
