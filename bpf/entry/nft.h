/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * --nft: nft_do_chain(pkt, priv), the evaluation of one nftables base chain
 * (priv is its struct nft_chain; rules it jumps to are evaluated inside the
 * same call), with this signature from 5.10 to 6.18. Its return value is
 * the chain's verdict. From 6.1 a dropped skb is freed inside the call
 * (NF_DROP_REASON), so the packet is recorded at fentry, and the record
 * waits in netcap_pending_map until fexit adds the verdict and submits it.
 * The types live in the nf_tables module: CO-RE finds them in its BTF.
 * Legacy iptables' tables come the same way, below (netcap_fentry_xt).
 */
#ifndef NETCAP_ENTRY_NFT_H
#define NETCAP_ENTRY_NFT_H

/* The prefix of netcap's own tables (src/kernel/nftrace.rs). */
#define NETCAP_NFT_OWN_PREFIX "netcap_trace_"

/* True for a chain of netcap's own tables, which only set nf_trace. */
static __always_inline bool netcap_nft_own_chain(struct nft_chain *chain)
{
	char name[sizeof(NETCAP_NFT_OWN_PREFIX)] = {};

	if (!netcap_cfg.nft_skip_own)
		return false;
	bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(chain, table, name));
#pragma unroll
	for (int i = 0; i < (int)sizeof(NETCAP_NFT_OWN_PREFIX) - 1; i++)
		if (name[i] != NETCAP_NFT_OWN_PREFIX[i])
			return false;
	return true;
}

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

	if (netcap_nft_own_chain((struct nft_chain *)extra.nft_chain))
		return 0;
	return netcap_handle(ctx, BPF_CORE_READ(pkt, skb), &extra, false, false);
}

/* nft_trace_notify() up to 6.2 takes only its struct nft_traceinfo, which
 * then holds the packet, the chain, the rule and the verdict. */
struct nft_traceinfo___v61 {
	const struct nft_pktinfo *pkt;
	const struct nft_chain *chain;
	const struct nft_rule_dp *rule;
	const struct nft_verdict *verdict;
} __attribute__((preserve_access_index));

/* Rules a chain is walked through to its end (6.3 on) before giving up. */
#define NETCAP_NFT_RULES_MAX 1024

/* 6.3 on: the chain a rule is in is found after the chain's last rule
 * (struct nft_rule_dp_last); rules follow one another by their length. */
static __always_inline const struct nft_chain *netcap_nft_rule_chain(const struct nft_rule_dp *rule)
{
	for (int i = 0; i < NETCAP_NFT_RULES_MAX; i++) {
		if (BPF_CORE_READ_BITFIELD_PROBED(rule, is_last))
			return BPF_CORE_READ((struct nft_rule_dp_last *)rule, chain);
		rule = (void *)((__u8 *)rule + bpf_core_type_size(struct nft_rule_dp) +
				BPF_CORE_READ_BITFIELD_PROBED(rule, dlen));
	}
	return NULL;
}

/*
 * --nft's rules: nft_trace_notify(), which nf_tables calls for a traced
 * packet (skb->nf_trace, set by netcap's own table) after each rule that
 * matched and at the policy: (info) up to 6.2, (pkt, verdict, rule, info)
 * from 6.3. The last report with a final verdict (not continue, jump,
 * goto or return) names the rule that decided, in the record the call's
 * nft_do_chain entry left waiting. Each report counts: a packet may be
 * accepted by one rule in a jumped-to chain and the report still comes
 * from inside the same nft_do_chain call.
 */
SEC("fentry")
int netcap_fentry_nft_rule(__u64 *ctx)
{
	const struct nft_pktinfo *pkt;
	const struct nft_rule_dp *rule;
	const struct nft_verdict *verdict;
	const struct nft_chain *chain;
	struct nft_traceinfo *info;
	struct netcap_event *event;
	struct netcap_section_nft *nft;
	__u32 type;
	__s32 code;
	__u64 key;

	if (bpf_core_field_exists(((struct nft_traceinfo___v61 *)0)->pkt)) {
		struct nft_traceinfo___v61 *old = (void *)netcap_array_arg(ctx, 0);

		info = (void *)old;
		pkt = BPF_CORE_READ(old, pkt);
		rule = BPF_CORE_READ(old, rule);
		verdict = BPF_CORE_READ(old, verdict);
		chain = BPF_CORE_READ(old, chain);
	} else {
		pkt = (void *)netcap_array_arg(ctx, 0);
		verdict = (void *)netcap_array_arg(ctx, 1);
		rule = (void *)netcap_array_arg(ctx, 2);
		info = (void *)netcap_array_arg(ctx, 3);
		chain = NULL;
	}
	type = BPF_CORE_READ_BITFIELD_PROBED(info, type);
	code = (__s32)BPF_CORE_READ(verdict, code);
	/* NFT_CONTINUE, NFT_BREAK, NFT_JUMP, NFT_GOTO, NFT_RETURN are below 0. */
	if (!(type == NFT_TRACETYPE_POLICY || (type == NFT_TRACETYPE_RULE && code >= 0)))
		return 0;
	key = (__u64)pkt;
	event = bpf_map_lookup_elem(&netcap_pending_map, &key);
	if (!event || !netcap_has_section(NETCAP_SECTION_NFT))
		return 0;
	nft = (void *)((__u8 *)(event + 1) + netcap_section_offset(NETCAP_SECTION_NFT));
	if ((__u8 *)(nft + 1) > (__u8 *)event + netcap_cfg.pending_size)
		return 0;
	if (type == NFT_TRACETYPE_POLICY || !rule) {
		nft->decider = NETCAP_NFT_POLICY;
		nft->rule_handle = 0;
		nft->rule_chain[0] = 0;
		return 0;
	}
	/* (6.1 has no struct nft_rule_dp_last: the walk must be dead code there.) */
	if (!chain && bpf_core_type_exists(struct nft_rule_dp_last))
		chain = netcap_nft_rule_chain(rule);
	nft->decider = NETCAP_NFT_RULE;
	nft->rule_handle = BPF_CORE_READ_BITFIELD_PROBED(rule, handle);
	nft->rule_chain[0] = 0;
	if (chain)
		bpf_probe_read_kernel_str(nft->rule_chain, sizeof(nft->rule_chain), BPF_CORE_READ(chain, name));
	return 0;
}

/*
 * --nft on legacy iptables: ipt_do_table() and ip6t_do_table() evaluate one
 * table at one hook, (priv, skb, state) from 6.2 (and Debian's 6.1), where
 * priv is the struct xt_table; (skb, state, table) before. The state always
 * follows the skb. Rules hold no handle, and which rule matched is known
 * only inside the call: the record names the table and the hook, whose
 * built-in chain the packet entered. A dropped skb is freed by the caller,
 * after fexit, but the record is made at fentry all the same: one path for
 * both engines, and the packet as the table saw it.
 */
SEC("fentry")
int netcap_fentry_xt(__u64 *ctx)
{
	struct sk_buff *skb = (void *)netcap_array_arg(ctx, netcap_cfg.skb_arg);
	struct nf_hook_state *state = (void *)netcap_array_arg(ctx, netcap_cfg.skb_arg + 1);
	struct netcap_args extra = {
		.xt_table = netcap_array_arg(ctx, netcap_cfg.xt_table_arg),
		.nft_hook = BPF_CORE_READ(state, hook),
		.defer_key = (__u64)skb,
		.trace_index = netcap_cfg.trace_index,
	};

	return netcap_handle(ctx, skb, &extra, false, false);
}

/* --nft's exit, for both engines: the verdict into the waiting record,
 * which then goes to the ring buffer. */
SEC("fexit")
int netcap_fexit_netfilter(__u64 *ctx)
{
	__u64 key = netcap_array_arg(ctx, netcap_cfg.defer_arg);
	struct netcap_event *event = bpf_map_lookup_elem(&netcap_pending_map, &key);
	__u64 len;

	if (!event)
		return 0;
	if (netcap_has_section(NETCAP_SECTION_RETVAL)) {
		struct netcap_section_value *retval =
			(void *)((__u8 *)(event + 1) + netcap_section_offset(NETCAP_SECTION_RETVAL));

		if ((__u8 *)(retval + 1) <= (__u8 *)event + netcap_cfg.pending_size)
			retval->value = (__u32)netcap_array_arg(ctx, netcap_cfg.ret_arg);
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
