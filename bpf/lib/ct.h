/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * --ct: the conntrack entry an skb carries (skb->_nfct: the struct nf_conn
 * pointer, its low 3 bits the enum ip_conntrack_info), read by CO-RE where
 * the packet is, so at tracepoints too. Fields a kernel lacks (mark, zone
 * without their config options) read as 0.
 */
#ifndef NETCAP_LIB_CT_H
#define NETCAP_LIB_CT_H

#define NETCAP_NFCT_INFO_MASK 7UL

static __always_inline void netcap_read_ct_tuple(struct netcap_ct_tuple *out,
						 struct nf_conntrack_tuple *tuple)
{
	bpf_core_read(out->src, sizeof(out->src), &tuple->src.u3);
	bpf_core_read(out->dst, sizeof(out->dst), &tuple->dst.u3);
	bpf_core_read(&out->sport, sizeof(out->sport), &tuple->src.u.all);
	bpf_core_read(&out->dport, sizeof(out->dport), &tuple->dst.u.all);
}

static __always_inline void netcap_read_ct(struct netcap_section_ct *out, __u64 skb_address)
{
	struct sk_buff *skb = (struct sk_buff *)skb_address;
	unsigned long nfct = 0;
	struct nf_conn *ct;

	__builtin_memset((__u8 *)out + sizeof(out->head), 0, sizeof(*out) - sizeof(out->head));
	if (!skb || !bpf_core_field_exists(skb->_nfct))
		return;
	nfct = BPF_CORE_READ(skb, _nfct);
	ct = (struct nf_conn *)(nfct & ~NETCAP_NFCT_INFO_MASK);
	if (!ct)
		return;
	out->present = 1;
	out->ctinfo = nfct & NETCAP_NFCT_INFO_MASK;
	out->status = BPF_CORE_READ(ct, status);
	out->l3num = BPF_CORE_READ(ct, tuplehash[0].tuple.src.l3num);
	out->protonum = BPF_CORE_READ(ct, tuplehash[0].tuple.dst.protonum);
	if (bpf_core_field_exists(ct->mark))
		out->mark = BPF_CORE_READ(ct, mark);
	if (bpf_core_field_exists(ct->zone))
		out->zone = BPF_CORE_READ(ct, zone.id);
	netcap_read_ct_tuple(&out->original, &ct->tuplehash[0].tuple);
	netcap_read_ct_tuple(&out->reply, &ct->tuplehash[1].tuple);
}

#endif /* NETCAP_LIB_CT_H */
