/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Whether a copied packet is wanted: the -e filter on the copy, then the
 * user's filter and action (--ext-filter, --ext-action). */
#ifndef NETCAP_LIB_EXT_H
#define NETCAP_LIB_EXT_H

/*
 * False when the packet is not wanted. Decided before anything is reserved
 * in the ring buffer. `filtered`: -e already kept it in place.
 */
static __always_inline bool netcap_wanted(struct netcap_event *event, __u8 *data,
					  void *pkt, __u64 ext,
					  __u32 trace_index, bool filtered, bool followed)
{
	/* A followed packet (--track) is wanted whatever the filters say now. */
	if (!followed && !filtered && !netcap_keep_copy(event, data))
		return false;
#ifdef NETCAP_EXT_FILTER
	if (!followed && !xcap_ext_filter((void *)ext, pkt, trace_index))
		return false;
#endif
#ifdef NETCAP_EXT_ACTION
	__builtin_memset(netcap_user_struct(event), 0, NETCAP_USER_SIZE);
	if (xcap_ext_action((void *)ext, pkt, event->pkt_len,
			    (struct xcap_user_extend *)netcap_user_struct(event),
			    trace_index))
		event->flags |= NETCAP_EVENT_USER;
#endif
	return true;
}

#endif /* NETCAP_LIB_EXT_H */
