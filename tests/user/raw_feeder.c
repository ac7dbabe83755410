/*
 * Test program for `netcap raw`: reads the frames of a classic pcap file
 * and hands each one to f(char *pkt, uint16_t len), as an AF_XDP program
 * hands frames to its handler, and fires the USDT probe netcap_test:frame
 * (pkt, len) for each. Then, as a DPDK program without DPDK, it hands the
 * same frames over in one burst of mbufs: rx_burst(queue, mbufs, n) and the
 * USDT probe netcap_test:rx(mbufs, n). Prints its PID, then feeds every
 * frame once per line read from stdin, and exits at end of input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/sdt.h>

#include "frames.h"

static volatile uint64_t checksum;

/* The fields netcap mbuf reads, at DPDK's offsets (21.11 to 24.11, 64-bit),
 * under DPDK's names: netcap finds them in this program's DWARF as it does
 * in a real DPDK program's. */
struct rte_mbuf {
	void *buf_addr;		/* 0 */
	uint64_t buf_iova;	/* 8 */
	uint16_t data_off;	/* 16 */
	uint16_t refcnt;	/* 18 */
	uint16_t nb_segs;	/* 20 */
	uint16_t port;		/* 22 */
	uint64_t ol_flags;	/* 24 */
	uint32_t packet_type;	/* 32 */
	uint32_t pkt_len;	/* 36 */
	uint16_t data_len;	/* 40 */
	uint16_t vlan_tci;	/* 42 */
	uint8_t rest_of_the_first_cache_line[20];
	struct rte_mbuf *next;	/* 64 */
};

#define BURST_MAX 256

__attribute__((noinline, used)) void rx_burst(void *queue, struct rte_mbuf **mbufs, uint16_t n)
{
	checksum += (uintptr_t)queue + n + mbufs[0]->pkt_len;
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline, used)) void f(char *pkt, uint16_t len)
{
	/* Touch the bytes so the call cannot be optimized away. */
	checksum += (unsigned char)pkt[0] + len;
	__asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv)
{
	static struct frame frames[4096];
	size_t count;
	char line[64];

	if (argc != 2) {
		fprintf(stderr, "usage: %s FILE.pcap\n", argv[0]);
		return 2;
	}
	count = read_frames(argv[1], frames, 4096);
	static struct rte_mbuf mbufs[BURST_MAX];
	static struct rte_mbuf *burst[BURST_MAX];
	size_t in_burst = count < BURST_MAX ? count : BURST_MAX;
	for (size_t i = 0; i < in_burst; i++) {
		mbufs[i].buf_addr = frames[i].bytes;
		mbufs[i].data_off = 0;
		mbufs[i].pkt_len = frames[i].len;
		mbufs[i].data_len = frames[i].len;
		mbufs[i].port = 0xffff;
		mbufs[i].nb_segs = 1;
		burst[i] = &mbufs[i];
	}
	printf("%d %zu\n", (int)getpid(), count);
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		for (size_t i = 0; i < count; i++) {
			f(frames[i].bytes, frames[i].len);
			DTRACE_PROBE2(netcap_test, frame, frames[i].bytes, frames[i].len);
		}
		if (in_burst) {
			rx_burst(NULL, burst, (uint16_t)in_burst);
			DTRACE_PROBE2(netcap_test, rx, burst, (uint16_t)in_burst);
		}
		printf("fed %zu\n", count);
		fflush(stdout);
	}
	return 0;
}
