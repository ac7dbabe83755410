/*
 * Test program for `netcap mbuf`: a DPDK process (EAL on a null vdev, no
 * hugepages, no PCI) that puts the frames of a classic pcap file into real
 * mbufs from a real mempool and hands them over the way DPDK code does:
 *   one    rx_one(m) per frame, one segment each
 *   chain  rx_one(m) per frame, split over three chained segments
 *   burst  rx_burst(queue, mbufs, n) with every frame at once
 *   usdt   the USDT probe netcap_test:rx(mbufs, n) with every frame at once
 *   both   rx_burst, then the USDT probe, with the same mbufs
 * Prints its PID and frame count, then runs one mode per line of stdin.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/sdt.h>

#include <rte_eal.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "frames.h"

#define MAX_FRAMES 512

static volatile uint64_t checksum;

__attribute__((noinline, used)) void rx_one(struct rte_mbuf *m)
{
	checksum += m->pkt_len;
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline, used)) void rx_burst(void *queue, struct rte_mbuf **mbufs, uint16_t n)
{
	checksum += (uintptr_t)queue + n + mbufs[0]->pkt_len;
	__asm__ volatile("" ::: "memory");
}

static struct rte_mbuf *segment(struct rte_mempool *pool, const char *bytes, uint32_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	char *room;

	if (!m)
		abort();
	room = rte_pktmbuf_append(m, len);
	if (!room)
		abort();
	memcpy(room, bytes, len);
	return m;
}

/* The frame in up to three segments (chained) or one. */
static struct rte_mbuf *build(struct rte_mempool *pool, const struct frame *f, int chained)
{
	uint32_t first, second;
	struct rte_mbuf *head;

	if (!chained || f->len < 3)
		return segment(pool, f->bytes, f->len);
	first = f->len / 3;
	second = f->len / 3;
	head = segment(pool, f->bytes, first);
	if (rte_pktmbuf_chain(head, segment(pool, f->bytes + first, second)) ||
	    rte_pktmbuf_chain(head, segment(pool, f->bytes + first + second, f->len - first - second)))
		abort();
	return head;
}

int main(int argc, char **argv)
{
	char prefix[64];
	char *eal_args[] = { argv[0], "--no-huge", "--no-pci", "--no-shconf", "--vdev=net_null0",
			     "-l", "0", "-m", "128", "--log-level=error", prefix, NULL };
	static struct frame frames[MAX_FRAMES];
	static struct rte_mbuf *burst[MAX_FRAMES];
	struct rte_mempool *pool;
	size_t count;
	char line[64];

	if (argc != 2) {
		fprintf(stderr, "usage: %s FILE.pcap\n", argv[0]);
		return 2;
	}
	/* EAL's runtime directory, /var/run/dpdk/PREFIX: the test removes it. */
	snprintf(prefix, sizeof(prefix), "--file-prefix=netcap-test-%d", (int)getpid());
	count = read_frames(argv[1], frames, MAX_FRAMES);
	if (rte_eal_init(sizeof(eal_args) / sizeof(eal_args[0]) - 1, eal_args) < 0) {
		fprintf(stderr, "rte_eal_init failed\n");
		return 1;
	}
	pool = rte_pktmbuf_pool_create("netcap_test", 4095, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	if (!pool) {
		fprintf(stderr, "rte_pktmbuf_pool_create failed\n");
		return 1;
	}
	printf("%d %zu\n", (int)getpid(), count);
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		int chained = strncmp(line, "chain", 5) == 0;

		if (strncmp(line, "one", 3) == 0 || chained) {
			for (size_t i = 0; i < count; i++) {
				struct rte_mbuf *m = build(pool, &frames[i], chained);

				rx_one(m);
				rte_pktmbuf_free(m);
			}
		} else {
			for (size_t i = 0; i < count; i++)
				burst[i] = build(pool, &frames[i], 0);
			if (strncmp(line, "usdt", 4) != 0)
				rx_burst(pool, burst, (uint16_t)count);
			if (strncmp(line, "usdt", 4) == 0 || strncmp(line, "both", 4) == 0)
				DTRACE_PROBE2(netcap_test, rx, burst, (uint16_t)count);
			for (size_t i = 0; i < count; i++)
				rte_pktmbuf_free(burst[i]);
		}
		printf("fed %zu\n", count);
		fflush(stdout);
	}
	rte_eal_cleanup();
	return 0;
}
