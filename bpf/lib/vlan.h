/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The 802.1Q tag a driver moved out of the frame, found and put back. */
#ifndef NETCAP_LIB_VLAN_H
#define NETCAP_LIB_VLAN_H

/* With the frame copied 4 bytes into data, moves its MACs to the front and
 * writes the tag after them. */
static __always_inline void netcap_insert_tag(__u8 *data, __u32 *cap_len,
					      __u32 tag, long copied)
{
	if (!tag)
		return;
	if (copied < 12) {
		/* Too short to hold the tag's place: drop it. */
		*cap_len = 0;
		return;
	}
	__builtin_memmove(data, data + 4, 12);
	__builtin_memcpy(data + 12, &tag, 4);
}

/* Kernels before 6.2 flag a tag with this bit; later ones by vlan_all != 0. */
struct sk_buff___vlan_present {
	__u8 vlan_present : 1;
} __attribute__((preserve_access_index));

/*
 * The 802.1Q tag a driver moved out of the data (skb->vlan_all), in
 * network order as it stood in the frame (TPID, TCI), or 0 for none.
 * Mirrors skb_vlan_tag_present().
 */
static __always_inline __u32 netcap_vlan_tag(struct sk_buff *skb, bool direct)
{
	__u16 proto = netcap_read(direct, skb, vlan_proto);
	__u16 tci = netcap_read(direct, skb, vlan_tci);

	if (bpf_core_field_exists(((struct sk_buff___vlan_present *)skb)->vlan_present)) {
		if (!BPF_CORE_READ_BITFIELD_PROBED((struct sk_buff___vlan_present *)skb,
						   vlan_present))
			return 0;
	} else if (!proto) {
		return 0;
	}
	/* vlan_proto is already big-endian; the TCI is host order. */
	return (__u32)proto | (__u32)bpf_htons(tci) << 16;
}

#endif /* NETCAP_LIB_VLAN_H */
