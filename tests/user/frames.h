/*
 * Shared by the test feeders: the frames of a classic (microsecond) pcap
 * file, read into memory once.
 */
#ifndef NETCAP_TEST_FRAMES_H
#define NETCAP_TEST_FRAMES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct frame {
	uint32_t len;
	char *bytes;
};

/* Reads up to max frames of the file at path; exits with status 2 when it
 * is not a microsecond pcap file. Returns how many frames it read. */
static size_t read_frames(const char *path, struct frame *frames, size_t max)
{
	uint32_t header[6], record[4];
	size_t count = 0;
	FILE *file = fopen(path, "rb");

	if (!file || fread(header, sizeof(header), 1, file) != 1 || header[0] != 0xa1b2c3d4) {
		fprintf(stderr, "%s: not a microsecond pcap file\n", path);
		exit(2);
	}
	while (count < max && fread(record, sizeof(record), 1, file) == 1) {
		frames[count].len = record[2];
		frames[count].bytes = malloc(record[2]);
		if (!frames[count].bytes || fread(frames[count].bytes, 1, record[2], file) != record[2])
			break;
		count++;
	}
	fclose(file);
	return count;
}

#endif
