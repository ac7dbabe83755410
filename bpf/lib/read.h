/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Reading the sk_buff: plain loads or CO-RE probe reads, header offsets,
 * and linear and paged bytes alike through a dynptr. */
#ifndef NETCAP_LIB_READ_H
#define NETCAP_LIB_READ_H

extern int bpf_dynptr_from_skb(struct __sk_buff *skb, __u64 flags,
			       struct bpf_dynptr *ptr) __ksym __weak;

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

/*
 * The cgroup v2 id of the skb's socket (the cgroup of the task that made
 * it), 0 without a socket. The first 8 bytes of sk->sk_cgrp_data are the
 * cgroup pointer: a member of its own from 5.15; before, a tagged word
 * whose low bit set means it holds net_prio/net_cls data instead.
 */
static __always_inline __u64 netcap_skb_cgroup(struct sk_buff *skb)
{
	struct sock *sk = BPF_CORE_READ(skb, sk);
	__u64 word = 0;
	struct cgroup *cgroup;

	if (!sk || bpf_probe_read_kernel(&word, sizeof(word), &sk->sk_cgrp_data) || !word || (word & 1))
		return 0;
	cgroup = (struct cgroup *)word;
	return BPF_CORE_READ(cgroup, kn, id);
}

#endif /* NETCAP_LIB_READ_H */
