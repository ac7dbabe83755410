/*
 * Test program for --track's GSO and GRO hooks in the VM tier: connects to
 * ADDRESS:PORT and sends BYTES of zeros in 64 KiB writes, so that the
 * stack builds large GSO skbs (busybox nc writes a few KiB at a time, and
 * each goes out as a packet of its own).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	static char chunk[65536];
	struct sockaddr_in to = { .sin_family = AF_INET };
	long left;
	int fd;

	if (argc != 4 || inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) {
		fprintf(stderr, "usage: tcp_sender ADDRESS PORT BYTES\n");
		return 2;
	}
	to.sin_port = htons(atoi(argv[2]));
	left = atol(argv[3]);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0) {
		perror("tcp_sender: connect");
		return 1;
	}
	while (left > 0) {
		ssize_t sent = write(fd, chunk, left < (long)sizeof(chunk) ? left : (long)sizeof(chunk));

		if (sent <= 0) {
			perror("tcp_sender: write");
			return 1;
		}
		left -= sent;
	}
	close(fd);
	return 0;
}
