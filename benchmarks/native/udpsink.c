// SPDX-License-Identifier: GPL-3.0-or-later
/* Copyright (c) 2026, ebpf.datapath contributors */
/*
 * UDP receiver for the swap benchmark: records what each datagram says.
 *
 *   udpsink ADDR PORT OUT_FILE MAX_SECONDS IDLE_MS
 *
 * Binds ADDR:PORT (SO_RCVBUFFORCE 32 MiB) and reads with recvmmsg. For every
 * datagram it appends 16 bytes to OUT_FILE: the sender's sequence number (u64)
 * and the 8-byte stamp area that follows it (count, then up to 7 plugin ids).
 * Writes "ready" on stdout once bound; ends IDLE_MS after the last datagram
 * (once one arrived) or after MAX_SECONDS, and prints "received N".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define RECORD 16

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static unsigned char bufs[BATCH][2048];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_in addr = { .sin_family = AF_INET };
	unsigned long long received = 0;
	double deadline, last = 0;
	int fd, size = 32 << 20, idle_ms, i;
	FILE *out;

	if (argc != 6) {
		fprintf(stderr, "usage: udpsink ADDR PORT OUT_FILE MAX_SECONDS IDLE_MS\n");
		return 2;
	}
	if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
		fprintf(stderr, "udpsink: bad address %s\n", argv[1]);
		return 2;
	}
	addr.sin_port = htons(atoi(argv[2]));
	idle_ms = atoi(argv[5]);
	out = fopen(argv[3], "wb");
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (!out || fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) ||
	    bind(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		perror("udpsink: setup");
		return 1;
	}
	memset(msgs, 0, sizeof(msgs));
	for (i = 0; i < BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = sizeof(bufs[i]);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	printf("ready\n");
	fflush(stdout);

	deadline = now() + atof(argv[4]);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		double t = now();
		int n;

		if (t >= deadline || (received && (t - last) * 1000 >= idle_ms))
			break;
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			continue;
		for (i = 0; i < n; i++) {
			unsigned char rec[RECORD] = { 0 };

			memcpy(rec, bufs[i], msgs[i].msg_len < RECORD ? msgs[i].msg_len : RECORD);
			fwrite(rec, RECORD, 1, out);
		}
		received += n;
		last = now();
	}
	fclose(out);
	printf("received %llu\n", received);
	return 0;
}
