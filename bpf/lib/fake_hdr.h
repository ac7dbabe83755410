/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* --fake-hdr: Ethernet and IP headers made up from the socket. */
#ifndef NETCAP_LIB_FAKE_HDR_H
#define NETCAP_LIB_FAKE_HDR_H

/* Length of the headers --fake-hdr makes for a socket of this family
 * (Ethernet + IPv4 or IPv6), 0 for any other family. */
static __always_inline __u32 netcap_fake_length(__u16 family)
{
	if (family == 2 /* AF_INET */)
		return 34;
	if (family == 10 /* AF_INET6 */)
		return 54;
	return 0;
}

/*
 * --fake-hdr: an skb on the send path before the IP layer built its
 * headers has neither MAC nor network header. Writes a zero-MAC Ethernet
 * header and an IPv4 or IPv6 header made from the socket (addresses,
 * protocol, lengths) at dst, netcap_fake_length() bytes. Offsets from BTF
 * (CO-RE), never version tables.
 */
static __always_inline void netcap_fake_headers(struct sock *sk, __u8 *dst,
						__u32 l4_len)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u8 protocol = BPF_CORE_READ(sk, sk_protocol);
	__u16 length;

	__builtin_memset(dst, 0, 12);
	if (family == 2 /* AF_INET */) {
		length = bpf_htons(20 + l4_len);
		dst[12] = 0x08;
		dst[13] = 0x00;
		__builtin_memset(dst + 14, 0, 20);
		dst[14] = 0x45;
		__builtin_memcpy(dst + 16, &length, 2);
		dst[22] = 64; /* TTL */
		dst[23] = protocol;
		bpf_core_read(dst + 26, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(dst + 30, 4, &sk->__sk_common.skc_daddr);
	} else if (family == 10 /* AF_INET6 */) {
		length = bpf_htons(l4_len);
		dst[12] = 0x86;
		dst[13] = 0xdd;
		__builtin_memset(dst + 14, 0, 8);
		dst[14] = 0x60;
		__builtin_memcpy(dst + 18, &length, 2);
		dst[20] = protocol;
		dst[21] = 64; /* hop limit */
		bpf_core_read(dst + 22, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(dst + 38, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

#endif /* NETCAP_LIB_FAKE_HDR_H */
