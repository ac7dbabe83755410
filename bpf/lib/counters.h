/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Counters user space sums at exit (enum netcap_counter): never silent. */
#ifndef NETCAP_LIB_COUNTERS_H
#define NETCAP_LIB_COUNTERS_H

static __always_inline void netcap_count(__u32 counter)
{
	__u64 *value = bpf_map_lookup_elem(&netcap_counters_map, &counter);

	if (value)
		*value += 1;
}

#endif /* NETCAP_LIB_COUNTERS_H */
