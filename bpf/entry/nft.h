/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * --nft: nft_do_chain(pkt, priv), the evaluation of one nftables base chain
 * (priv is its struct nft_chain; rules it jumps to are evaluated inside the
 * same call), with this signature from 5.10 to 6.18. Its return value is
 * the chain's verdict. From 6.1 a dropped skb is freed inside the call
 * (NF_DROP_REASON), so the packet is recorded at fentry, and the record
 * waits in netcap_pending_map until fexit adds the verdict and submits it.
 * The types live in the nf_tables module: CO-RE finds them in its BTF.
 */
#ifndef NETCAP_ENTRY_NFT_H
#define NETCAP_ENTRY_NFT_H

SEC("fentry")
int netcap_fentry_nft(__u64 *ctx)
{
	struct nft_pktinfo *pkt = (void *)netcap_array_arg(ctx, 0);
	struct netcap_args extra = {
		.nft_chain = netcap_array_arg(ctx, 1),
		.nft_hook = BPF_CORE_READ(pkt, state, hook),
		.defer_key = (__u64)pkt,
		.trace_index = netcap_cfg.trace_index,
	};

	return netcap_handle(ctx, BPF_CORE_READ(pkt, skb), &extra, false, false);
}

SEC("fexit")
int netcap_fexit_nft(__u64 *ctx)
{
	__u64 key = netcap_array_arg(ctx, 0);
	struct netcap_event *event = bpf_map_lookup_elem(&netcap_pending_map, &key);
	__u64 len;

	if (!event)
		return 0;
	if (netcap_has_section(NETCAP_SECTION_RETVAL)) {
		struct netcap_section_value *retval =
			(void *)((__u8 *)(event + 1) + netcap_section_offset(NETCAP_SECTION_RETVAL));

		if ((__u8 *)(retval + 1) <= (__u8 *)event + netcap_cfg.pending_size)
			retval->value = (__u32)netcap_array_arg(ctx, 2);
	}
	len = sizeof(*event) + netcap_sections_len() + event->cap_len;
	if (len > netcap_cfg.pending_size)
		len = netcap_cfg.pending_size;
	/* One register for the checked length, which the verifier then knows. */
	asm volatile("" : "+r"(len));
	if (bpf_ringbuf_output(&netcap_events_map, event, len, netcap_wakeup(event->ts_ns)))
		netcap_count(NETCAP_COUNTER_LOST);
	bpf_map_delete_elem(&netcap_pending_map, &key);
	return 0;
}

#endif /* NETCAP_ENTRY_NFT_H */
