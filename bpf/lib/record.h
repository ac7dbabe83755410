/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Putting a record together and handing it to user space: a scratch slot
 * per nesting level, the fields every record has, the wakeup policy, the
 * copy out of a scratch slot, and ring buffer reservations in size classes
 * for records written in place.
 */
#ifndef NETCAP_LIB_RECORD_H
#define NETCAP_LIB_RECORD_H

/* The record header in a scratch slot, placed for this point's sections. */
static __always_inline struct netcap_event *netcap_scratch_event(struct netcap_scratch *scratch)
{
	return (void *)(scratch->head + NETCAP_SECTIONS_MAX - netcap_sections_len());
}

/* Where the user's struct lives in a record (--ext-action). */
static __always_inline void *netcap_user_struct(struct netcap_event *event)
{
	return (__u8 *)(event + 1) + netcap_section_offset(NETCAP_SECTION_USER) +
	       sizeof(struct netcap_section_user);
}

/* Takes this CPU's next scratch slot: programs nest (a softirq interrupts
 * a traced process), and each level needs its own. NULL when none is free. */
static __always_inline struct netcap_scratch *netcap_enter(__u32 **depth)
{
	__u32 zero = 0, slot;
	struct netcap_scratch *scratch;

	*depth = bpf_map_lookup_elem(&netcap_nest_map, &zero);
	if (!*depth)
		return NULL;
	if (**depth >= NETCAP_NEST_MAX) {
		netcap_count(NETCAP_COUNTER_NESTED);
		return NULL;
	}
	slot = bpf_get_smp_processor_id() * NETCAP_NEST_MAX + **depth;
	scratch = bpf_map_lookup_elem(&netcap_scratch_map, &slot);
	if (scratch)
		**depth += 1;
	return scratch;
}

/* Copies a 16-byte name with two loads: where the pointer is BTF-typed
 * (tp_btf, fentry) this is cheaper than a string helper call. */
#define netcap_copy_name16(dst, src)                                     \
	do {                                                             \
		((__u64 *)(dst))[0] = ((const __u64 *)(src))[0];         \
		((__u64 *)(dst))[1] = ((const __u64 *)(src))[1];         \
	} while (0)

/* Fills what every record has: time, CPU, task, trace point. */
static __always_inline void netcap_fill_common(struct netcap_event *event,
					       void *pkt, __u32 trace_index,
					       bool direct)
{
	event->ts_ns = bpf_ktime_get_ns();
	event->skb = (__u64)pkt;
	event->trace_index = trace_index;
	event->cpu = bpf_get_smp_processor_id();
	/* Without the helper (5.10) the branch is dead to the verifier, which
	 * then never sees the call it does not know. */
	if (direct && netcap_cfg.task_btf) {
		struct task_struct *task = bpf_get_current_task_btf();

		event->pid = task->tgid;
		netcap_copy_name16(event->comm, task->comm);
	} else {
		event->pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(&event->comm, sizeof(event->comm));
	}
}

/*
 * Whether this record should wake user space. A wakeup per record costs
 * microseconds (irq_work); user space polls every 100 ms anyway, so it is
 * woken only once data piles up. Looking at the fill level reads a cache
 * line user space writes, which costs more than the rest of a record, so
 * only about one record in 32 looks: those whose nanosecond timestamp has
 * its low 5 bits clear (no state to keep, and nothing skips it for long).
 */
static __always_inline __u64 netcap_wakeup(__u64 ts_ns)
{
	if ((ts_ns & 31) == 0 &&
	    bpf_ringbuf_query(&netcap_events_map, BPF_RB_AVAIL_DATA) >=
		    netcap_cfg.wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* Fills the common fields and the sections of the record in a scratch slot
 * and hands a copy of it to the ring buffer. */
static __always_inline void netcap_submit(struct netcap_event *event, void *ctx,
					  void *pkt, struct netcap_args *args,
					  bool direct)
{
	netcap_fill_sections(event, ctx, args);
	netcap_fill_common(event, pkt, args->trace_index, direct);
	if (netcap_cfg.defer) {
		if (bpf_map_update_elem(&netcap_pending_map, &args->defer_key, event, BPF_ANY))
			netcap_count(NETCAP_COUNTER_LOST);
		return;
	}
	if (bpf_ringbuf_output(&netcap_events_map, event,
			       (sizeof(*event) + netcap_sections_len() + event->cap_len) & 0x1ffff,
			       netcap_wakeup(event->ts_ns)))
		netcap_count(NETCAP_COUNTER_LOST);
}

/*
 * Reserves a record in the ring buffer for `want` packet bytes after the
 * header and sections: the verifier wants a size it knows, so records come
 * in classes, each a constant, the largest capture_max itself (known at
 * load). The asm makes each class's call differ, so that clang cannot merge
 * them into one call of a computed size. *room: the class's packet bytes.
 */
#define NETCAP_RECORD_CLASS(bytes)                                                  \
	if (want <= (bytes) && (bytes) < netcap_cfg.capture_max) {                 \
		event = bpf_ringbuf_reserve(&netcap_events_map,                    \
					    sizeof(*event) + sections + (bytes), 0); \
		asm volatile("" : "+r"(event) : "i"(bytes));                       \
		*room = (bytes);                                                   \
		return event;                                                      \
	}

static __always_inline struct netcap_event *netcap_reserve(long want, __u32 *room)
{
	__u32 sections = netcap_sections_len();
	struct netcap_event *event;

	NETCAP_RECORD_CLASS(128)
	NETCAP_RECORD_CLASS(256)
	NETCAP_RECORD_CLASS(512)
	NETCAP_RECORD_CLASS(1024)
	NETCAP_RECORD_CLASS(2048)
	NETCAP_RECORD_CLASS(8192)
	*room = netcap_cfg.capture_max;
	return bpf_ringbuf_reserve(&netcap_events_map,
				   sizeof(*event) + sections + netcap_cfg.capture_max, 0);
}

#endif /* NETCAP_LIB_RECORD_H */
