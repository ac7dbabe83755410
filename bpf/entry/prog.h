/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * BPF programs at tc and XDP (--bpf-progs): fentry and fexit on another
 * loaded program. The kernel hands a tracing program the target's context
 * converted to the kernel's own type: a tc program's struct __sk_buff is the
 * struct sk_buff, an XDP program's struct xdp_md the struct xdp_buff. At
 * fexit the program's verdict follows its one argument.
 */
#ifndef NETCAP_ENTRY_PROG_H
#define NETCAP_ENTRY_PROG_H

/* The verdict a program returned: fexit's slot after the one argument. */
static __always_inline __u64 netcap_prog_verdict(__u64 *ctx)
{
	return (__u32)netcap_array_arg(ctx, 1);
}

/* tc: an skb like any other point's, read by CO-RE since the target's
 * declared argument type decides what the verifier lets through. */
static __always_inline int netcap_from_tc(__u64 *ctx, bool exit)
{
	struct netcap_args extra = {
		.retval = exit ? netcap_prog_verdict(ctx) : 0,
		.trace_index = netcap_cfg.trace_index,
	};

	return netcap_handle(ctx, (void *)netcap_array_arg(ctx, 0), &extra, false, false);
}

SEC("fentry")
int netcap_fentry_tc(__u64 *ctx)
{
	return netcap_from_tc(ctx, false);
}

SEC("fexit")
int netcap_fexit_tc(__u64 *ctx)
{
	return netcap_from_tc(ctx, true);
}

/*
 * XDP: no skb yet, so the frame is copied from xdp->data..data_end and
 * filtered on the copy. Filters that read the skb (--mark, --cgroup,
 * --skb-filter) match nothing here.
 */
static __always_inline int netcap_xdp_packet(__u64 *ctx, bool exit)
{
	struct xdp_buff *xdp = (void *)netcap_array_arg(ctx, 0);
	struct netcap_args extra = {
		.retval = exit ? netcap_prog_verdict(ctx) : 0,
		.trace_index = netcap_cfg.trace_index,
	};
	struct netcap_scratch *scratch;
	struct netcap_event *event;
	struct net_device *dev;
	__u32 ifindex = 0, netns = 0, *depth;
	__u64 data, data_end, len, want;

	if (!xdp || netcap_cfg.mark_mask || netcap_cfg.cgroup_id || netcap_cfg.skb_filter)
		return 0;
	if (netcap_cfg.pid && (bpf_get_current_pid_tgid() >> 32) != netcap_cfg.pid)
		return 0;
	dev = BPF_CORE_READ(xdp, rxq, dev);
	if (dev) {
		ifindex = BPF_CORE_READ(dev, ifindex);
		netns = BPF_CORE_READ(dev, nd_net.net, ns.inum);
	}
	if (netcap_cfg.ifindex && (ifindex != netcap_cfg.ifindex || netns != netcap_cfg.netns))
		return 0;
	if (netcap_cfg.netns_only && netns != netcap_cfg.netns)
		return 0;
	data = (__u64)BPF_CORE_READ(xdp, data);
	data_end = (__u64)BPF_CORE_READ(xdp, data_end);
	if (data_end <= data)
		return 0;
	len = data_end - data;
	want = len < netcap_cfg.capture_max ? len : netcap_cfg.capture_max;
	want &= 0xffff;
	if (!want)
		return 0;

	scratch = netcap_enter(&depth);
	if (!scratch)
		return 0;
	event = netcap_scratch_event(scratch);
	event->flags = 0;
	event->link = NETCAP_LINK_ETHERNET;
	event->pkt_len = len;
	event->paged_len = 0;
	event->cap_len = want;
	if (bpf_probe_read_kernel(scratch->data, want, (void *)data)) {
		netcap_count(NETCAP_COUNTER_READ_FAULT);
		goto out;
	}
	if (!netcap_wanted(event, scratch->data, xdp, 0, extra.trace_index, false, false))
		goto out;
	event->ifindex = ifindex;
	event->netns = netns;
	event->mark = 0;
	event->protocol = 0;
	event->ifname[0] = 0;
	if (dev)
		bpf_probe_read_kernel_str(&event->ifname, sizeof(event->ifname), dev->name);
	netcap_submit(event, ctx, xdp, &extra, false);
out:
	*depth -= 1;
	return 0;
}

SEC("fentry")
int netcap_fentry_xdp(__u64 *ctx)
{
	return netcap_xdp_packet(ctx, false);
}

SEC("fexit")
int netcap_fexit_xdp(__u64 *ctx)
{
	return netcap_xdp_packet(ctx, true);
}

#endif /* NETCAP_ENTRY_PROG_H */
