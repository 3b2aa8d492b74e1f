// SPDX-License-Identifier: GPL-2.0
/*
 * udpcheck: the UDP check of `make e2e`, one static program for the zone
 * and for root Linux (busybox has no UDP tool that controls datagram
 * sizes or checks contents).
 *
 *   udpcheck send ADDR PORT COUNT [PPS]
 *	COUNT datagrams to ADDR:PORT, datagram i of size sizes[i % N]
 *	(payload sizes, the 1472 of a full 1500-byte frame among them, and
 *	one IP fragments), PPS per second (0: as fast as the socket takes
 *	them).  Prints "UDPCHECK send sent=N bytes=B secs=S".
 *   udpcheck recv PORT COUNT [WAIT_S [IDLE_MS]]
 *	Receives until COUNT datagrams arrived, nothing came for IDLE_MS
 *	(default 3000) after the first, or nothing at all for WAIT_S
 *	(default 120).  Each datagram must have its sequence number's size
 *	and content.  Prints "UDPCHECK recv got=G of=N lost=L bad=B dup=D
 *	bytes=X secs=S" and exits 0 when B and D are 0 and G > 0: the
 *	caller decides how much loss is allowed.
 *
 * A datagram: a 12-byte header (magic, sequence number, size, network
 * order) and bytes from a generator seeded by the sequence number.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define UDPCHECK_MAGIC	0x48565544u	/* "HVUD" */
#define UDPCHECK_HDR	12
/* Largest datagram: sizes[] below, and the receive buffer. */
#define UDPCHECK_MAX	4096
/* 8 MiB: a receiver that falls behind under TCG keeps what arrived. */
#define UDPCHECK_RCVBUF	(8 << 20)

static const unsigned int sizes[] = { 12, 64, 512, 1000, 1472, 3000 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Datagram seq in buf; returns its size. */
static unsigned int fill(unsigned char *buf, uint32_t seq)
{
	unsigned int len = sizes[seq % NSIZES], i;
	uint32_t h[3] = { htonl(UDPCHECK_MAGIC), htonl(seq), htonl(len) };
	uint32_t x = seq * 2654435761u + 1;

	memcpy(buf, h, sizeof(h));
	for (i = UDPCHECK_HDR; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = x;
	}
	return len;
}

static int usage(void)
{
	fprintf(stderr, "usage: udpcheck send ADDR PORT COUNT [PPS]\n"
			"       udpcheck recv PORT COUNT [WAIT_S [IDLE_MS]]\n");
	return 2;
}

static int do_send(int fd, const char *addr, int port, uint32_t count, double pps)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	unsigned char buf[UDPCHECK_MAX];
	unsigned long long bytes = 0;
	double t0 = now(), next = t0;
	unsigned int retries = 0;
	uint32_t seq;

	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		return usage();
	for (seq = 0; seq < count; seq++) {
		unsigned int len = fill(buf, seq);

		if (pps > 0) {
			double d = next - now();

			if (d > 0)
				usleep(d * 1e6);
			next += 1 / pps;
		}
		/* A full device queue refuses, it does not block: retry. */
		while (sendto(fd, buf, len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			if ((errno != ENOBUFS && errno != EAGAIN) || ++retries > 100000) {
				perror("udpcheck: sendto");
				return 1;
			}
			usleep(1000);
		}
		bytes += len;
	}
	printf("UDPCHECK send sent=%u bytes=%llu secs=%.2f retries=%u\n", count, bytes,
	       now() - t0, retries);
	return 0;
}

static int do_recv(int fd, int port, uint32_t count, int wait_s, int idle_ms)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_ANY) };
	unsigned char buf[UDPCHECK_MAX + 1], want[UDPCHECK_MAX];
	unsigned long long bytes = 0;
	uint32_t got = 0, bad = 0, dup = 0;
	unsigned char *seen = calloc(count ? count : 1, 1);
	int rcvbuf = UDPCHECK_RCVBUF;
	double t0 = 0, t1 = 0;

	if (!seen)
		return 1;
	/* Beyond rmem_max as root; else as much as rmem_max allows. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("udpcheck: bind");
		return 1;
	}
	printf("UDPCHECK recv ready port=%d\n", port);
	fflush(stdout);
	while (got < count) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint32_t h[3], seq;
		ssize_t n;

		if (poll(&p, 1, got ? idle_ms : wait_s * 1000) <= 0)
			break;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			perror("udpcheck: recv");
			return 1;
		}
		if (!got)
			t0 = now();
		t1 = now();
		if (n < UDPCHECK_HDR) {
			bad++;
			continue;
		}
		memcpy(h, buf, sizeof(h));
		seq = ntohl(h[1]);
		if (ntohl(h[0]) != UDPCHECK_MAGIC || seq >= count ||
		    (size_t)n != fill(want, seq) || memcmp(buf, want, n)) {
			bad++;
			continue;
		}
		if (seen[seq]) {
			dup++;
			continue;
		}
		seen[seq] = 1;
		got++;
		bytes += n;
	}
	printf("UDPCHECK recv got=%u of=%u lost=%u bad=%u dup=%u bytes=%llu secs=%.2f\n", got, count,
	       count - got, bad, dup, bytes, t1 - t0);
	free(seen);
	return got && !bad && !dup ? 0 : 1;
}

int main(int argc, char **argv)
{
	int fd;

	if (argc < 4)
		return usage();
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("udpcheck: socket");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "send") && argc >= 5)
		return do_send(fd, argv[2], atoi(argv[3]), strtoul(argv[4], NULL, 0),
			       argc > 5 ? atof(argv[5]) : 0);
	if (!strcmp(argv[1], "recv"))
		return do_recv(fd, atoi(argv[2]), strtoul(argv[3], NULL, 0),
			       argc > 4 ? atoi(argv[4]) : 120, argc > 5 ? atoi(argv[5]) : 3000);
	return usage();
}
