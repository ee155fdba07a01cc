// SPDX-License-Identifier: GPL-3.0-or-later
/* Copyright (c) 2026, ebpf.datapath contributors */
/*
 * UDP sender for the benchmarks, bounded in count and time.
 *
 *   udpgen ADDR PORT SECONDS MAX_PACKETS RATE_PPS PAYLOAD_BYTES
 *
 * Sends to ADDR:PORT with sendmmsg in batches of 64, until MAX_PACKETS were
 * sent or SECONDS passed. RATE_PPS 0 sends as fast as the kernel takes them;
 * otherwise batches are paced so packet n leaves at n / RATE_PPS seconds.
 * Payload: sequence number (u64, little endian) at byte 0, then a zeroed stamp
 * area (benchmarks/bpf/stamp.c writes into it), then filler. UDP checksums are
 * off (SO_NO_CHECK) so a plugin may rewrite the payload.
 * SIGINT or SIGTERM ends the run early (the count is still printed).
 * Prints one line: "sent N seconds S".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_PAYLOAD 1400

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
	struct timespec ts;

	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - ts.tv_sec) * 1e9);
	while (!stop && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

int main(int argc, char **argv)
{
	static unsigned char bufs[BATCH][MAX_PAYLOAD];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_in dst = { .sin_family = AF_INET };
	double seconds, start, deadline;
	uint64_t max, sent = 0, rate;
	int fd, one = 1, len, i;

	if (argc != 7) {
		fprintf(stderr, "usage: udpgen ADDR PORT SECONDS MAX_PACKETS RATE_PPS PAYLOAD_BYTES\n");
		return 2;
	}
	if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
		fprintf(stderr, "udpgen: bad address %s\n", argv[1]);
		return 2;
	}
	dst.sin_port = htons(atoi(argv[2]));
	seconds = atof(argv[3]);
	max = strtoull(argv[4], NULL, 10);
	rate = strtoull(argv[5], NULL, 10);
	len = atoi(argv[6]);
	if (len < 16 || len > MAX_PAYLOAD || seconds <= 0 || max == 0) {
		fprintf(stderr, "udpgen: need 16 <= PAYLOAD_BYTES <= %d, SECONDS > 0, MAX_PACKETS > 0\n", MAX_PAYLOAD);
		return 2;
	}

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_NO_CHECK, &one, sizeof(one)) ||
	    connect(fd, (struct sockaddr *)&dst, sizeof(dst))) {
		perror("udpgen: socket");
		return 1;
	}
	memset(bufs, 0, sizeof(bufs));
	memset(msgs, 0, sizeof(msgs));
	for (i = 0; i < BATCH; i++) {
		memset(bufs[i] + 16, 'x', len - 16);
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = len;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	start = now();
	deadline = start + seconds;
	while (sent < max && !stop) {
		uint64_t n = max - sent < BATCH ? max - sent : BATCH;
		int done;

		if (rate) {
			/* pace: at most one millisecond's worth per batch */
			uint64_t per_ms = rate / 1000 ? rate / 1000 : 1;

			if (n > per_ms)
				n = per_ms;
			sleep_until(start + (double)sent / rate);
		}
		if (stop || now() >= deadline)
			break;
		for (i = 0; i < (int)n; i++)
			memcpy(bufs[i], &(uint64_t){ sent + i }, 8);
		done = sendmmsg(fd, msgs, n, 0);
		if (done < 0) {
			if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR)
				continue; /* the same sequence numbers again */
			perror("udpgen: sendmmsg");
			return 1;
		}
		sent += done;
	}
	printf("sent %llu seconds %.6f\n", (unsigned long long)sent, now() - start);
	close(fd);
	return 0;
}
