// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* An XDP program for the tests of --bpf-progs: drops ICMP echo requests
 * (XDP_DROP), passes everything else (XDP_PASS). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>

/* Self-contained: only the kernel's UAPI headers, so the tests need nothing
 * but clang to build it. */
#define SEC(name) __attribute__((section(name), used))
#define bpf_htons(x) __builtin_bswap16(x)

#define ICMP_ECHO_REQUEST 8

SEC("xdp")
int drop_echo_requests(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u8 *icmp_type;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_ICMP)
		return XDP_PASS;
	icmp_type = (void *)ip + ip->ihl * 4;
	if ((void *)(icmp_type + 1) > data_end)
		return XDP_PASS;
	return *icmp_type == ICMP_ECHO_REQUEST ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
