/*
 * Test program for `netcap raw`: reads the frames of a classic pcap file
 * and hands each one to f(char *pkt, uint16_t len), as an AF_XDP program
 * hands frames to its handler, and fires the USDT probe netcap_test:frame
 * (pkt, len) for each. Prints its PID, then feeds every frame once per line
 * read from stdin, and exits at end of input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/sdt.h>

#include "frames.h"

static volatile uint64_t checksum;

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
	printf("%d %zu\n", (int)getpid(), count);
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		for (size_t i = 0; i < count; i++) {
			f(frames[i].bytes, frames[i].len);
			DTRACE_PROBE2(netcap_test, frame, frames[i].bytes, frames[i].len);
		}
		printf("fed %zu\n", count);
		fflush(stdout);
	}
	return 0;
}
