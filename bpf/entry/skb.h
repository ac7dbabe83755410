/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Kernel skb points: one handler, netcap_handle(), entered from one program
 * per attach flavour (tp_btf with and without paged reads, raw_tp, fentry,
 * fexit, kprobe, kretprobe, kprobe-multi and cookie kprobes for patterns,
 * and an empty tp_btf floor for benchmarks).
 */
#ifndef NETCAP_ENTRY_SKB_H
#define NETCAP_ENTRY_SKB_H

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
 * of event (in the same slot) that describe it. False when it could not be read.
 */
static __always_inline bool netcap_copy_frame(struct sk_buff *skb,
					      struct netcap_frame *frame,
					      struct netcap_scratch *scratch,
					      struct netcap_event *event,
					      bool paged_reads)
{
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
		netcap_insert_tag(scratch->data, &event->cap_len, frame->tag, want);
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
	netcap_insert_tag(scratch->data, &event->cap_len, frame->tag, want);
	return true;
fault:
	netcap_count(NETCAP_COUNTER_READ_FAULT);
	return false;
}

/* What an skb's record says besides the packet and its sections. */
static __always_inline void netcap_fill_skb(struct netcap_event *event,
					    struct sk_buff *skb,
					    struct net_device *dev, __u32 ifindex,
					    __u32 netns, bool direct)
{
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
	if (bpf_probe_read_kernel((__u8 *)(event + 1) + netcap_sections_len(), want & 0xffff,
				  frame->start)) {
		bpf_ringbuf_discard(event, BPF_RB_NO_WAKEUP);
		netcap_count(NETCAP_COUNTER_READ_FAULT);
		return;
	}
	netcap_describe(event, frame, want);
	netcap_fill_skb(event, skb, dev, ifindex, netns, direct);
	netcap_fill_sections(event, ctx, args);
	netcap_fill_common(event, skb, args->trace_index, direct);
	bpf_ringbuf_submit(event, netcap_wakeup(event->ts_ns));
}

/* Device, where the packet is, the filter in place (a followed packet
 * passes them all), then the record written in place or through a copy. */
static __always_inline void netcap_handle_packet(void *ctx, struct sk_buff *skb,
						 struct netcap_args *args, bool direct,
						 bool paged_reads)
{
	struct net_device *dev;
	struct netcap_scratch *scratch;
	struct netcap_event *event;
	struct netcap_frame frame;
	__u32 ifindex = 0, netns = 0, *depth;
	int verdict;

	dev = netcap_read(direct, skb, dev);
	if (dev) {
		struct net *net = netcap_read(direct, dev, nd_net.net);

		ifindex = netcap_read(direct, dev, ifindex);
		netns = net ? netcap_read(direct, net, ns.inum) : 0;
	}
	/* Where it is and its mark decide first matches; a followed packet
	 * passes them all. */
	if (!args->track) {
		if (netcap_cfg.ifindex &&
		    (ifindex != netcap_cfg.ifindex || netns != netcap_cfg.netns))
			return;
		if (netcap_cfg.netns_only && netns != netcap_cfg.netns)
			return;
		if (netcap_cfg.mark_mask &&
		    (netcap_read(direct, skb, mark) & netcap_cfg.mark_mask) != netcap_cfg.mark_value)
			return;
		if (netcap_cfg.pid && (bpf_get_current_pid_tgid() >> 32) != netcap_cfg.pid)
			return;
		if (netcap_cfg.cgroup_id && netcap_skb_cgroup(skb) != netcap_cfg.cgroup_id)
			return;
		if (netcap_cfg.skb_filter && !netcap_filter_skb(skb))
			return;
	}
	if (!netcap_locate(skb, direct, &frame))
		return;
	verdict = args->track ? 1 : netcap_filter_in_place(&frame);
	if (!verdict)
		return;

#ifndef NETCAP_EXT
	if (verdict > 0 && !frame.made && frame.want <= frame.linear_end && !netcap_cfg.defer) {
		netcap_follow(skb, args);
		netcap_emit_in_place(ctx, skb, &frame, args, dev, ifindex, netns, direct);
		return;
	}
#endif
	scratch = netcap_enter(&depth);
	if (!scratch)
		return;
	event = netcap_scratch_event(scratch);
	if (netcap_copy_frame(skb, &frame, scratch, event, paged_reads) &&
	    netcap_wanted(event, scratch->data, skb, args->ext, args->trace_index,
			  verdict > 0, args->track != 0)) {
		netcap_follow(skb, args);
		netcap_fill_skb(event, skb, dev, ifindex, netns, direct);
		netcap_submit(event, ctx, skb, args, direct);
	}
	*depth -= 1;
}

/* Every kernel skb point comes here. With --track, a point that frees the
 * skb ends its track after showing it (or silently, where netcap attached
 * the point only for that). */
static __always_inline int netcap_handle(void *ctx, struct sk_buff *skb,
					 struct netcap_args *args, bool direct,
					 bool paged_reads)
{
	if (!skb)
		return 0;
	args->skb = (__u64)skb;
	if (netcap_cfg.track) {
		struct netcap_track *track = netcap_track_of((__u64)skb);

		if (track) {
			args->track = track->id;
			args->lineage = track->lineage;
		}
	}
	if (!netcap_cfg.silent)
		netcap_handle_packet(ctx, skb, args, direct, paged_reads);
	if (netcap_cfg.track && netcap_cfg.frees && args->track)
		netcap_track_end((__u64)skb);
	return 0;
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

/* Return values: fexit sees the arguments and, after them, the result. */
SEC("fexit")
int netcap_fexit(__u64 *ctx)
{
	struct sk_buff *skb = (void *)netcap_array_arg(ctx, netcap_cfg.skb_arg);
	struct netcap_args extra;

	if (netcap_cfg.inherit)
		return netcap_inherit((__u64)skb, netcap_array_arg(ctx, netcap_cfg.ret_arg),
				      netcap_optional_array_arg(ctx, netcap_cfg.ext_arg));
	extra = (struct netcap_args){
		.ext = netcap_optional_array_arg(ctx, netcap_cfg.ext_arg),
		.reason = netcap_optional_array_arg(ctx, netcap_cfg.reason_arg),
		.retval = netcap_array_arg(ctx, netcap_cfg.ret_arg),
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
 * them per task and trace point (a function re-entered by the same task
 * before it returns loses its first entry). tgid takes 22 bits of the
 * upper half, so the trace point goes above them. */
static __always_inline __u64 netcap_entry_key(void)
{
	return bpf_get_current_pid_tgid() ^ ((__u64)netcap_cfg.trace_index << 54);
}

SEC("kprobe")
int netcap_kretprobe_entry(struct pt_regs *ctx)
{
	__u64 key = netcap_entry_key();
	struct netcap_entry entry = {
		.skb = netcap_regs_arg(ctx, netcap_cfg.skb_arg),
		.ext = netcap_optional_regs_arg(ctx, netcap_cfg.ext_arg),
	};

	/* An identity hook has nothing to hand down while nothing is followed. */
	if (netcap_cfg.inherit && !netcap_tracking())
		return 0;
	bpf_map_update_elem(&netcap_entries_map, &key, &entry, BPF_ANY);
	return 0;
}

SEC("kretprobe")
int netcap_kretprobe(struct pt_regs *ctx)
{
	__u64 key = netcap_entry_key();
	struct netcap_entry *entry = bpf_map_lookup_elem(&netcap_entries_map, &key);
	struct netcap_args extra = {
		.retval = PT_REGS_RC_CORE(ctx),
		.trace_index = netcap_cfg.trace_index,
	};
	struct sk_buff *skb;

	if (!entry)
		return 0;
	skb = (void *)entry->skb;
	extra.ext = entry->ext;
	bpf_map_delete_elem(&netcap_entries_map, &key);
	if (netcap_cfg.inherit)
		return netcap_inherit((__u64)skb, extra.retval, extra.ext);
	return netcap_handle(ctx, skb, &extra, false, false);
}

/* Set by user space when a pattern's kprobes are left to a process that
 * removes them in the background (the kernel takes a grace period for each):
 * from then on they do nothing. */
volatile __u32 netcap_group_stopped SEC(".data.stop") = 0;

/*
 * One program for many kernel functions (-f 'tcp_v4_*'): each attachment's
 * cookie says which trace point it is and where its arguments are, see
 * NETCAP_COOKIE_* in netcap.h. Here the argument index is a run-time value,
 * which pt_regs allows (every case is a valid context offset).
 */
static __always_inline int netcap_from_cookie_value(struct pt_regs *ctx, __u64 cookie)
{
	__u32 skb_arg = (cookie >> NETCAP_COOKIE_SKB_SHIFT) & 0xff;
	__u32 reason_arg = (cookie >> NETCAP_COOKIE_REASON_SHIFT) & 0xff;
	struct sk_buff *skb = (void *)netcap_regs_arg(ctx, skb_arg);
	struct netcap_args extra = {
		.reason = netcap_optional_regs_arg(ctx, reason_arg),
		.trace_index = cookie & NETCAP_COOKIE_INDEX_MASK,
	};

	return netcap_handle(ctx, skb, &extra, false, false);
}

static __always_inline int netcap_from_cookie(struct pt_regs *ctx)
{
	if (netcap_group_stopped)
		return 0;
	return netcap_from_cookie_value(ctx, bpf_get_attach_cookie(ctx));
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
 * The same where the kernel has no attach cookies (before 5.15): the
 * cookie is found by the function's address. At a kprobe the registers
 * hold the address after the breakpoint's one byte, on x86 both for int3
 * and for ftrace-based kprobes.
 */
SEC("kprobe")
int netcap_kprobe_addr(struct pt_regs *ctx)
{
	__u64 address = PT_REGS_IP(ctx) - 1;
	__u64 *cookie;

	if (netcap_group_stopped)
		return 0;
	cookie = bpf_map_lookup_elem(&netcap_cookies_map, &address);
	if (!cookie)
		return 0;
	return netcap_from_cookie_value(ctx, *cookie);
}

#endif /* NETCAP_ENTRY_SKB_H */
