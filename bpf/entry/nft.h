/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * --nft: fexit on nft_do_chain(pkt, priv), the evaluation of one nftables
 * base chain (priv is its struct nft_chain; rules it jumps to are evaluated
 * inside the same call), from 5.10 to 6.18 with this signature. Its return
 * value is the chain's verdict (NF_ACCEPT, NF_DROP, …, with an errno or
 * queue number above the low byte). The skb is pkt->skb. The types live in
 * the nf_tables module: CO-RE finds them in its BTF (5.11 on).
 */
#ifndef NETCAP_ENTRY_NFT_H
#define NETCAP_ENTRY_NFT_H

SEC("fexit")
int netcap_fexit_nft(__u64 *ctx)
{
	struct nft_pktinfo *pkt = (void *)netcap_array_arg(ctx, 0);
	struct netcap_args extra = {
		.nft_chain = netcap_array_arg(ctx, 1),
		.nft_hook = BPF_CORE_READ(pkt, state, hook),
		.retval = (__u32)netcap_array_arg(ctx, 2),
		.trace_index = netcap_cfg.trace_index,
	};

	return netcap_handle(ctx, BPF_CORE_READ(pkt, skb), &extra, false, false);
}

#endif /* NETCAP_ENTRY_NFT_H */
