/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Where the packet lies in an skb and how much of it netcap takes. */
#ifndef NETCAP_LIB_LOCATE_H
#define NETCAP_LIB_LOCATE_H

/* Where the packet lies in an skb and how much of it netcap takes: found
 * before any scratch slot is taken, so that the filter can run on the
 * packet in place and most packets leave without a copy. */
struct netcap_frame {
	unsigned char *start; /* first byte of the packet in the skb */
	struct sock *sk;      /* --fake-hdr: the socket that made it */
	long before_data;     /* start lies this many bytes before skb->data */
	long linear_end;      /* the linear area ends this far after start */
	long want;            /* bytes to copy from start */
	__u32 pkt_len;        /* whole packet, made-up bytes included */
	__u32 paged;          /* skb->data_len */
	__u32 len;            /* skb->len */
	__u32 made;           /* bytes netcap makes up in front (tag, --fake-hdr) */
	__u32 tag;            /* 802.1Q tag to put back, or 0 */
	__u8 link;            /* enum netcap_link */
	__u8 flags;           /* enum netcap_event_flags */
};

/* Describes the packet in skb. False when it holds none netcap can show. */
static __always_inline bool netcap_locate(struct sk_buff *skb, bool direct,
					  struct netcap_frame *frame)
{
	unsigned char *head = netcap_read(direct, skb, head);
	unsigned char *data = netcap_read(direct, skb, data);
	__u16 mac = netcap_read(direct, skb, mac_header);
	__u16 network = netcap_read(direct, skb, network_header);
	__u32 len = netcap_read(direct, skb, len);
	long want;

	frame->flags = 0;
	frame->made = 0;
	frame->tag = 0;
	frame->sk = NULL;
	if (netcap_cfg.skb_data) {
		frame->start = data + netcap_cfg.skb_data_offset;
		frame->link = netcap_header_set(mac) && head + mac == frame->start ?
				      NETCAP_LINK_ETHERNET :
				      NETCAP_LINK_RAW;
	} else if (netcap_header_set(mac) && mac != network) {
		frame->start = head + mac;
		frame->link = NETCAP_LINK_ETHERNET;
		/* Put back a tag the driver took out, as tcpdump shows it: the
		 * frame is copied 4 bytes later and its MACs moved in front. */
		frame->tag = netcap_vlan_tag(skb, direct);
		if (frame->tag)
			frame->made = 4;
	} else if (netcap_header_set(network) && network) {
		frame->start = head + network;
		frame->link = NETCAP_LINK_RAW;
	} else {
		struct sock *sk = netcap_cfg.fake_hdr ? netcap_read(direct, skb, sk) : NULL;

		if (sk)
			frame->made = netcap_fake_length(BPF_CORE_READ(sk, __sk_common.skc_family));
		if (!frame->made) {
			netcap_count(NETCAP_COUNTER_NO_HEADER);
			return false;
		}
		frame->sk = sk;
		frame->start = data;
		frame->link = NETCAP_LINK_ETHERNET;
		frame->flags = NETCAP_EVENT_SYNTHESIZED;
	}
	frame->made &= 0x3f;
	frame->len = len;
	frame->paged = netcap_read(direct, skb, data_len);
	/* Headers already pulled (receive path) lie before skb->data. */
	frame->before_data = data - frame->start;
	if (frame->before_data < -(long)len || frame->before_data > 0xffff) {
		netcap_count(NETCAP_COUNTER_OUTSIDE);
		return false;
	}
	frame->pkt_len = len + frame->before_data + frame->made;
	/* The linear area ends paged bytes before skb->data + len. */
	frame->linear_end = frame->before_data + len - frame->paged;

	/* What to copy from the skb, after what was made up. */
	want = frame->pkt_len;
	if (want > netcap_cfg.capture_max)
		want = netcap_cfg.capture_max;
	want -= frame->made;
	if (want <= 0) {
		netcap_count(NETCAP_COUNTER_OUTSIDE);
		return false;
	}
	frame->want = want & 0xffff;
	return true;
}

#endif /* NETCAP_LIB_LOCATE_H */
