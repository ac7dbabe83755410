/*
 * Event source for benches/event_rate.sh: calls f(frame, len) COUNT times
 * as fast as it can (each call is one netcap raw event when traced) and
 * prints the calls per second it reached. The frame is a 98-byte ICMP echo
 * request between 198.18.0.1 and 198.18.0.2; nothing is sent anywhere.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile uint64_t sink;

__attribute__((noinline, used)) void f(char *pkt, uint16_t len)
{
	sink += (unsigned char)pkt[len - 1];
	__asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv)
{
	static char frame[98] = {
		0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00,             /* Ethernet */
		0x45, 0, 0, 84, 0, 1, 0x40, 0, 64, 1, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2, /* IPv4 */
		8, 0, 0, 0, 0, 1, 0, 1,                                           /* ICMP echo */
	};
	long count = argc > 1 ? atol(argv[1]) : 1000000;
	struct timespec start, end;
	double seconds;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (long i = 0; i < count; i++) {
		frame[41] = (char)i; /* ICMP sequence, low byte */
		f(frame, sizeof(frame));
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	seconds = (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
	printf("%ld %.0f\n", count, count / seconds);
	return 0;
}
