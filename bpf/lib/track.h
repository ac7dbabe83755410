/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * --track: following a matched skb, by its address, until the kernel frees
 * it. Points look an skb up; a match starts a track; free points end it;
 * identity hooks (fexit/kretprobe on skb_clone, skb_copy, __pskb_copy_fclone,
 * skb_copy_expand, skb_segment, skb_gro_receive) hand a followed skb's id to
 * the skbs the kernel makes from it.
 */
#ifndef NETCAP_LIB_TRACK_H
#define NETCAP_LIB_TRACK_H

/* GSO segments of one skb given its id; more are left unfollowed (a 64 KiB
 * GSO skb at an MSS of 536 makes 123). */
#define NETCAP_SEGMENTS_MAX 128

/* The count of followed skbs (netcap_live_map). */
static __always_inline __s64 *netcap_live(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&netcap_live_map, &zero);
}

/* True when some skb may be followed: while none is, no point pays for a lookup. */
static __always_inline bool netcap_tracking(void)
{
	__s64 *live = netcap_live();

	return live && *live > 0;
}

/* The track of a followed skb, or NULL. */
static __always_inline struct netcap_track *netcap_track_of(__u64 skb)
{
	if (!netcap_tracking())
		return NULL;
	return bpf_map_lookup_elem(&netcap_tracks_map, &skb);
}

/* Puts skb in the map with track; false when the map refused it. */
static __always_inline bool netcap_track_start(__u64 skb, struct netcap_track *track)
{
	__s64 *live;

	if (bpf_map_update_elem(&netcap_tracks_map, &skb, track, BPF_NOEXIST)) {
		netcap_count(NETCAP_COUNTER_TRACK_FULL);
		return false;
	}
	netcap_count(NETCAP_COUNTER_TRACK_STARTED);
	live = netcap_live();
	if (live)
		__sync_fetch_and_add(live, 1);
	return true;
}

/* Takes skb out of the map, if it is there. */
static __always_inline void netcap_track_end(__u64 skb)
{
	__s64 *live;

	if (bpf_map_delete_elem(&netcap_tracks_map, &skb))
		return;
	netcap_count(NETCAP_COUNTER_TRACK_ENDED);
	live = netcap_live();
	if (live)
		__sync_fetch_and_add(live, -1);
}

/* Starts following a packet that just matched. The id needs no shared
 * counter: the first sight's time in 16 ns steps, and the CPU (one CPU
 * never matches two packets within 16 ns). */
static __always_inline void netcap_follow(struct sk_buff *skb, struct netcap_args *args)
{
	struct netcap_track track = {};

	if (!netcap_cfg.track || args->track)
		return;
	track.id = ((bpf_ktime_get_ns() >> 4) << 10) | (bpf_get_smp_processor_id() & 0x3ff);
	if (netcap_track_start((__u64)skb, &track))
		args->track = track.id;
}

/* A new skb made from a followed one takes its id. Its address may still
 * be in the map from an skb freed where no free point saw it: that stale
 * entry goes first. */
static __always_inline void netcap_hand_down(__u64 child, struct netcap_track *track)
{
	if (!child || child >= (__u64)-4095) /* NULL or ERR_PTR: nothing was made */
		return;
	netcap_track_end(child);
	if (netcap_track_start(child, track))
		netcap_count(NETCAP_COUNTER_TRACK_INHERITED);
}

/*
 * An identity hook returned: parent is the skb the function was given,
 * result what it returned, other its other skb (skb_gro_receive's p).
 * The hook's kind (netcap_cfg.inherit) says what the result is.
 */
static __always_inline int netcap_inherit(__u64 parent, __u64 result, __u64 other)
{
	struct netcap_track *found = netcap_track_of(parent);
	struct netcap_track track;
	__u64 segment = result;

	if (!found)
		return 0;
	track.id = found->id;
	track.lineage = netcap_cfg.inherit;
	track.pad = 0;
	switch (netcap_cfg.inherit) {
	case NETCAP_LINEAGE_CLONE:
	case NETCAP_LINEAGE_COPY:
		netcap_hand_down(result, &track);
		break;
	case NETCAP_LINEAGE_SEGMENT:
		/* The segments are a list through skb->next. */
		for (int i = 0; i < NETCAP_SEGMENTS_MAX; i++) {
			if (!segment || segment >= (__u64)-4095)
				break;
			netcap_hand_down(segment, &track);
			if (bpf_probe_read_kernel(&segment, sizeof(segment),
						  &((struct sk_buff *)segment)->next))
				break;
		}
		break;
	case NETCAP_LINEAGE_MERGED:
		/* skb_gro_receive(p, skb) returns 0 when skb went into p; skb
		 * is then freed (or kept in p's frag_list) where no free point
		 * sees it. p carries the id on unless it is followed already. */
		if ((int)result != 0)
			break;
		netcap_track_end(parent);
		netcap_count(NETCAP_COUNTER_TRACK_MERGED);
		if (!bpf_map_lookup_elem(&netcap_tracks_map, &other))
			netcap_hand_down(other, &track);
		break;
	}
	return 0;
}

#endif /* NETCAP_LIB_TRACK_H */
