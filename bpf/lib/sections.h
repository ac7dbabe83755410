/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A record's optional sections (see struct netcap_event in netcap.h). Which
 * ones a trace point emits, and where each goes, is fixed at load time
 * (netcap_cfg.sections, section_at, sections_len), so every size and
 * offset here is a constant the verifier knows.
 */
#ifndef NETCAP_LIB_SECTIONS_H
#define NETCAP_LIB_SECTIONS_H

static __always_inline bool netcap_has_section(__u32 kind)
{
	return netcap_cfg.sections & (1U << kind);
}

static __always_inline __u32 netcap_section_size(__u32 kind)
{
	switch (kind) {
	case NETCAP_SECTION_STACK:
		return sizeof(struct netcap_section_stack);
	case NETCAP_SECTION_DROP:
		return sizeof(struct netcap_section_drop);
	case NETCAP_SECTION_RETVAL:
	case NETCAP_SECTION_EXT_ARG:
	case NETCAP_SECTION_TRACK:
	case NETCAP_SECTION_CGROUP:
		return sizeof(struct netcap_section_value);
	case NETCAP_SECTION_USER:
		return sizeof(struct netcap_section_user) + NETCAP_USER_SIZE;
	case NETCAP_SECTION_FIELDS:
		return sizeof(struct netcap_section_fields);
	case NETCAP_SECTION_CT:
		return sizeof(struct netcap_section_ct);
	case NETCAP_SECTION_NFT:
		return sizeof(struct netcap_section_nft);
	}
	return 0;
}

/* Where section `kind` starts after the header. User space lays the
 * sections out (in kind order, from the sizes of the structs above as the
 * skeleton mirrors them) so that the hot path reads one constant instead
 * of adding sizes up. */
static __always_inline __u32 netcap_section_offset(__u32 kind)
{
	return netcap_cfg.section_at[kind];
}

static __always_inline __u32 netcap_sections_len(void)
{
	return netcap_cfg.sections_len;
}

/* Section `kind` of the record whose header is at event, its head filled in. */
static __always_inline void *netcap_section(struct netcap_event *event, __u32 kind)
{
	struct netcap_section *head = (void *)((__u8 *)(event + 1) + netcap_section_offset(kind));

	head->kind = kind;
	head->len = netcap_section_size(kind);
	return head;
}

/* What a trace point hands over besides the packet. */
struct netcap_args {
	__u64 ext;
	__u64 location;
	__u64 reason;
	__u64 retval;
	__u64 track;	/* --track: the followed skb's id, 0 if none */
	__u32 lineage;	/* --track: enum netcap_lineage of the followed skb */
	__u64 skb;	/* the sk_buff, for --skb-fields; 0 at user-space points */
	__u64 nft_chain; /* --nft: the struct nft_chain evaluated */
	__u32 nft_hook;	/* --nft: the hook it was evaluated at */
	__u64 xt_table;	/* --nft: the struct xt_table ipt_do_table evaluates (then no nft_chain) */
	__u64 defer_key; /* --nft: the call's nft_pktinfo or skb, its record's key in netcap_pending_map */
	__u32 trace_index;
};

/* --skb-fields: each field where netcap_cfg.fields says, by probe reads. */
static __always_inline void netcap_read_fields(struct netcap_section_fields *section, __u64 skb)
{
	section->missing = 0;
	for (__u32 i = 0; i < NETCAP_FIELDS_MAX; i++) {
		const volatile struct netcap_field *field = &netcap_cfg.fields[i];
		__u64 base = skb;
		__u32 hop;

		if (i >= netcap_cfg.field_count)
			break;
		for (hop = 0; hop + 1 < NETCAP_FIELD_HOPS && hop + 1 < field->hops; hop++) {
			if (bpf_probe_read_kernel(&base, sizeof(base), (void *)(base + field->offsets[hop])) || !base)
				break;
		}
		if (hop + 1 < field->hops ||
		    bpf_probe_read_kernel(section->data + (field->at & NETCAP_FIELD_AT_MASK),
					  field->size & NETCAP_FIELD_SIZE_MASK,
					  (void *)(base + field->offsets[hop & (NETCAP_FIELD_HOPS - 1)])))
			section->missing |= 1U << i;
	}
}

/* Writes the sections of this trace point after the header at event (the
 * user's struct is already in place: the action ran before). */
static __always_inline void netcap_fill_sections(struct netcap_event *event, void *ctx,
						 struct netcap_args *args)
{
	event->sections_len = netcap_sections_len();
	if (netcap_has_section(NETCAP_SECTION_STACK)) {
		struct netcap_section_stack *stack = netcap_section(event, NETCAP_SECTION_STACK);

		stack->stack_id = bpf_get_stackid(ctx, &netcap_stacks_map, 0);
	}
	if (netcap_has_section(NETCAP_SECTION_DROP)) {
		struct netcap_section_drop *drop = netcap_section(event, NETCAP_SECTION_DROP);

		drop->reason = args->reason;
		drop->location = args->location;
	}
	if (netcap_has_section(NETCAP_SECTION_RETVAL)) {
		struct netcap_section_value *retval = netcap_section(event, NETCAP_SECTION_RETVAL);

		retval->pad = 0;
		retval->value = args->retval;
	}
	if (netcap_has_section(NETCAP_SECTION_EXT_ARG)) {
		struct netcap_section_value *ext = netcap_section(event, NETCAP_SECTION_EXT_ARG);

		ext->pad = 0;
		ext->value = args->ext;
	}
	if (netcap_has_section(NETCAP_SECTION_TRACK)) {
		struct netcap_section_value *track = netcap_section(event, NETCAP_SECTION_TRACK);

		track->pad = args->lineage;
		track->value = args->track;
	}
	if (netcap_has_section(NETCAP_SECTION_CGROUP)) {
		struct netcap_section_value *cgroup = netcap_section(event, NETCAP_SECTION_CGROUP);

		cgroup->pad = 0;
		cgroup->value = args->skb ? netcap_skb_cgroup((struct sk_buff *)args->skb) : 0;
	}
	if (netcap_has_section(NETCAP_SECTION_CT)) {
		struct netcap_section_ct *ct = netcap_section(event, NETCAP_SECTION_CT);

		netcap_read_ct(ct, args->skb);
	}
	if (netcap_has_section(NETCAP_SECTION_NFT)) {
		struct netcap_section_nft *nft = netcap_section(event, NETCAP_SECTION_NFT);

		nft->hook = args->nft_hook;
		nft->decider = NETCAP_NFT_UNKNOWN;
		nft->rule_handle = 0;
		nft->rule_chain[0] = 0;
		if (args->xt_table) {
			struct xt_table *table = (void *)args->xt_table;

			nft->engine = NETCAP_NETFILTER_XTABLES;
			nft->family = BPF_CORE_READ(table, af);
			nft->chain_handle = 0;
			nft->chain[0] = 0;
			bpf_probe_read_kernel_str(nft->table, sizeof(nft->table), &table->name);
		} else {
			struct nft_chain *chain = (void *)args->nft_chain;
			struct nft_table *table = BPF_CORE_READ(chain, table);

			nft->engine = NETCAP_NETFILTER_NFTABLES;
			/* A bitfield since 5.x: its place comes from the kernel's BTF. */
			nft->family = BPF_CORE_READ_BITFIELD_PROBED(table, family);
			nft->chain_handle = BPF_CORE_READ(chain, handle);
			bpf_probe_read_kernel_str(nft->table, sizeof(nft->table), BPF_CORE_READ(table, name));
			bpf_probe_read_kernel_str(nft->chain, sizeof(nft->chain), BPF_CORE_READ(chain, name));
		}
	}
	if (netcap_has_section(NETCAP_SECTION_FIELDS)) {
		struct netcap_section_fields *fields = netcap_section(event, NETCAP_SECTION_FIELDS);

		netcap_read_fields(fields, args->skb);
	}
	if (netcap_has_section(NETCAP_SECTION_USER)) {
		struct netcap_section_user *user = netcap_section(event, NETCAP_SECTION_USER);

		user->pad = 0;
	}
}

#endif /* NETCAP_LIB_SECTIONS_H */
