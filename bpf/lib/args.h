/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* A trace point's arguments: from the u64 array of tp_btf, raw_tp, fentry
 * and fexit, or from pt_regs for kprobes and uprobes. */
#ifndef NETCAP_LIB_ARGS_H
#define NETCAP_LIB_ARGS_H

/* Arguments arrive as an array of u64 for tp_btf, raw_tp and fentry. The
 * verifier wants every context access at a fixed offset, and the index is
 * a load-time constant, so each case is its own load; asm keeps clang from
 * merging the cases into one load through a computed pointer, which the
 * verifier refuses ("dereference of modified ctx ptr"). */
#define NETCAP_ARG_CASE(index, offset)                                   \
	case index:                                                      \
		asm volatile("%0 = *(u64 *)(%1 + " #offset ")"           \
			     : "=r"(value)                               \
			     : "r"(args));                               \
		break

static __always_inline __u64 netcap_array_arg(__u64 *args, __u32 index)
{
	__u64 value = 0;

	switch (index) {
	NETCAP_ARG_CASE(0, 0);
	NETCAP_ARG_CASE(1, 8);
	NETCAP_ARG_CASE(2, 16);
	NETCAP_ARG_CASE(3, 24);
	NETCAP_ARG_CASE(4, 32);
	NETCAP_ARG_CASE(5, 40);
	NETCAP_ARG_CASE(6, 48);
	NETCAP_ARG_CASE(7, 56);
	NETCAP_ARG_CASE(8, 64);
	NETCAP_ARG_CASE(9, 72);
	NETCAP_ARG_CASE(10, 80);
	NETCAP_ARG_CASE(11, 88);
	}
	return value;
}

static __always_inline __u64 netcap_regs_arg(struct pt_regs *regs, __u32 index)
{
	switch (index) {
	case 0: return PT_REGS_PARM1_CORE(regs);
	case 1: return PT_REGS_PARM2_CORE(regs);
	case 2: return PT_REGS_PARM3_CORE(regs);
	case 3: return PT_REGS_PARM4_CORE(regs);
	case 4: return PT_REGS_PARM5_CORE(regs);
	case 5: return PT_REGS_PARM6_CORE(regs);
	}
	return 0;
}

/* Argument `index` of the trace point, or 0 when it has none such. */
static __always_inline __u64 netcap_optional_array_arg(__u64 *args, __u32 index)
{
	return index == NETCAP_NO_ARG ? 0 : netcap_array_arg(args, index);
}

static __always_inline __u64 netcap_optional_regs_arg(struct pt_regs *regs,
							__u32 index)
{
	return index == NETCAP_NO_ARG ? 0 : netcap_regs_arg(regs, index);
}

#endif /* NETCAP_LIB_ARGS_H */
