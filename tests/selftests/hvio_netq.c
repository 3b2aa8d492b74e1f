// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_netq: the kernel's virtio-net queue contract, with this program
 * playing hvisor, the guest driver and the daemon (no TAP, no daemon):
 * transmit chains become NET_TX ops or are refused and counted; receive
 * chains become NET_RX ops (one chain, or with MRG_RXBUF as many as the
 * largest negotiated packet needs); committed byte counts become used
 * entries and num_buffers; what a packet did not reach, a truncated packet
 * or a cancelled op gives the buffers back for the next op; the fairness
 * budget stops a fetch and says so.
 */
#include <sys/eventfd.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#include "hvio_test.h"

#define QN		512		/* queue size */
#define IRQ		41
#define ZONE_SIZE	(4 * MIB)
#define DATA		(GUEST_RAM + 0x40000)	/* buffers from here */
#define RXQ		HVIO_NET_RX_QUEUE
#define TXQ		HVIO_NET_TX_QUEUE
#define HDR		HVIO_NET_HDR_LEN
#define BIG_RX		(HDR + HVIO_NET_MAX_FRAME)	/* 65562 */

#define BIT(b)		(1ULL << (b))
#define F_RING		(BIT(VIRTIO_RING_F_INDIRECT_DESC) | \
			 BIT(VIRTIO_RING_F_EVENT_IDX))
#define F_BASE		(FG_F_VERSION_1 | F_RING | BIT(VIRTIO_NET_F_MAC) | \
			 BIT(VIRTIO_NET_F_STATUS) | BIT(VIRTIO_NET_F_MTU))
#define F_OFFLOADS	(BIT(VIRTIO_NET_F_CSUM) | \
			 BIT(VIRTIO_NET_F_GUEST_CSUM) | \
			 BIT(VIRTIO_NET_F_GUEST_TSO4) | \
			 BIT(VIRTIO_NET_F_GUEST_TSO6) | \
			 BIT(VIRTIO_NET_F_GUEST_ECN) | \
			 BIT(VIRTIO_NET_F_GUEST_UFO) | \
			 BIT(VIRTIO_NET_F_HOST_TSO4) | \
			 BIT(VIRTIO_NET_F_HOST_TSO6) | \
			 BIT(VIRTIO_NET_F_HOST_ECN) | \
			 BIT(VIRTIO_NET_F_HOST_UFO))
#define F_MRG		BIT(VIRTIO_NET_F_MRG_RXBUF)
#define F_ALL		(F_BASE | F_OFFLOADS | F_MRG)

struct buf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

FIXTURE(netq) {
	struct fg fg;
	struct fg_zone z;
	bool skip;
	bool zone;
	int fd;
	struct fg_vdev v;
	struct hvio_op *ops[2];
	size_t ops_len;
	uint16_t avail_idx[2];
	uint16_t next_desc[2];
	uint32_t gen;
};

static void *gptr(FIXTURE_DATA(netq) *self, uint64_t gpa)
{
	return fg_zone_ptr(&self->fg, &self->z, gpa);
}

static int make_dev(FIXTURE_DATA(netq) *self, uint16_t nq, uint64_t features,
		    uint16_t mtu)
{
	struct virtio_net_config cfg;
	struct hvio_dev_create c;

	memset(&cfg, 0, sizeof(cfg));
	memcpy(cfg.mac, "\x02\x00\x00\x00\x00\x01", 6);
	cfg.status = VIRTIO_NET_S_LINK_UP;
	cfg.max_virtqueue_pairs = 1;
	cfg.mtu = mtu;
	fg_dev_init(&c, ZONE_A, VIRTIO_ID_NET, MMIO_BASE, IRQ, nq, QN,
		    features, &cfg, 12);
	return fg_dev_create(&self->fg, &c);
}

static int probe(FIXTURE_DATA(netq) *self, uint64_t want)
{
	memset(self->avail_idx, 0, sizeof(self->avail_idx));
	memset(self->next_desc, 0, sizeof(self->next_desc));
	memset(gptr(self, GUEST_RAM), 0, 0x40000);
	return fg_vdev_probe(&self->v, want, 2, QN, GUEST_RAM);
}

FIXTURE_SETUP(netq)
{
	int q;

	self->fd = -1;
	self->z = (struct fg_zone){ .id = ZONE_A, .zonex_ipa = GUEST_RAM,
				    .ram_off = 0, .size = ZONE_SIZE };
	hvio_fixture_open(_metadata, &self->fg, &self->skip);
	if (self->skip)
		return;
	ASSERT_EQ(0, fg_zone_add(&self->fg, &self->z));
	self->zone = true;
	self->fd = make_dev(self, 2, F_ALL, 1500);
	ASSERT_LE(0, self->fd) TH_LOG("DEV_CREATE: %s", errname(self->fd));
	self->ops_len = (QN * sizeof(struct hvio_op) + 4095) & ~4095UL;
	for (q = 0; q < 2; q++) {
		self->ops[q] = mmap(NULL, self->ops_len, PROT_READ, MAP_SHARED,
				    self->fd, HVIO_DEV_MMAP_RING_BASE +
				    q * HVIO_DEV_MMAP_RING_STRIDE);
		ASSERT_NE(MAP_FAILED, self->ops[q]);
	}
	fg_vdev_init(&self->v, &self->fg, 0, ZONE_A, MMIO_BASE);
	ASSERT_EQ(0, probe(self, F_ALL)) TH_LOG("%s", self->v.err);
	fg_flush_res(&self->fg);
}

FIXTURE_TEARDOWN(netq)
{
	int q;

	for (q = 0; q < 2; q++)
		if (self->ops[q] && self->ops[q] != MAP_FAILED)
			munmap(self->ops[q], self->ops_len);
	if (self->fd >= 0)
		close(self->fd);
	if (self->zone)
		EXPECT_EQ(0, fg_zone_del(&self->fg, ZONE_A));
	hvio_fixture_close(_metadata, &self->fg);
}

/* Post one direct chain on queue q (no kick); returns its head. */
static uint16_t post(FIXTURE_DATA(netq) *self, int q, const struct buf *b,
		     int n)
{
	struct fg_vq *vq = &self->v.vq[q];
	struct vring_desc *desc = gptr(self, vq->desc);
	struct vring_avail *avail = gptr(self, vq->driver);
	uint16_t head = self->next_desc[q], d;
	int i;

	for (i = 0; i < n; i++) {
		d = (head + i) % vq->num;
		desc[d].addr = b[i].gpa;
		desc[d].len = b[i].len;
		desc[d].flags = (b[i].write ? VRING_DESC_F_WRITE : 0) |
				(i + 1 < n ? VRING_DESC_F_NEXT : 0);
		desc[d].next = (d + 1) % vq->num;
	}
	self->next_desc[q] = (head + n) % vq->num;
	avail->ring[self->avail_idx[q] % vq->num] = head;
	__atomic_store_n(&avail->idx, ++self->avail_idx[q], __ATOMIC_RELEASE);
	return head;
}

/* n receive buffers of len bytes each, one descriptor per chain. */
static void post_rx(FIXTURE_DATA(netq) *self, uint64_t gpa, uint32_t len,
		    int n, uint16_t *heads)
{
	int i;

	for (i = 0; i < n; i++) {
		struct buf b = { gpa + (uint64_t)i * len, len, true };
		uint16_t h = post(self, RXQ, &b, 1);

		if (heads)
			heads[i] = h;
	}
}

/* A transmit chain: header (own descriptor) and frame. */
static uint16_t post_tx(FIXTURE_DATA(netq) *self, uint64_t hdr_gpa,
			const struct virtio_net_hdr_v1 *h, uint64_t frame_gpa,
			uint32_t frame_len)
{
	struct buf b[] = { { hdr_gpa, HDR, false },
			   { frame_gpa, frame_len, false } };

	memcpy(gptr(self, hdr_gpa), h, HDR);
	return post(self, TXQ, b, 2);
}

/* A transmit chain of one descriptor: header and frame together. */
static uint16_t post_tx1(FIXTURE_DATA(netq) *self, uint64_t gpa,
			 uint32_t frame_len)
{
	struct buf b = { gpa, HDR + frame_len, false };

	memset(gptr(self, gpa), 0, HDR);
	return post(self, TXQ, &b, 1);
}

static void kick(FIXTURE_DATA(netq) *self, int q)
{
	fg_notify(&self->fg, 0, ZONE_A, MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, q);
	fg_wait_consumed(&self->fg, FG_TIMEOUT_MS);
}

/* The daemon's side: commit, then fetch.  nr_fetched or -errno. */
static int run(FIXTURE_DATA(netq) *self, int q,
	       const struct hvio_completion *c, int nc, uint16_t *tags,
	       int max, uint32_t *out_flags)
{
	struct hvio_queue_run r = {
		.queue = q, .nr_commit = nc, .max_fetch = max,
		.commits_addr = (uintptr_t)c, .tags_addr = (uintptr_t)tags,
	};

	if (ioctl(self->fd, HVIO_DEV_QUEUE_RUN, &r))
		return -errno;
	self->gen = r.generation;
	if (out_flags)
		*out_flags = r.out_flags;
	return r.nr_fetched;
}

static int commit1(FIXTURE_DATA(netq) *self, int q, uint16_t tag,
		   int32_t result)
{
	struct hvio_completion c = { .tag = tag, .result = result,
				     .generation = self->gen };

	return run(self, q, &c, 1, NULL, 0, NULL);
}

static struct vring_used_elem used_at(FIXTURE_DATA(netq) *self, int q,
				      uint16_t i)
{
	struct vring_used *used = gptr(self, self->v.vq[q].device);

	return used->ring[i % self->v.vq[q].num];
}

static uint16_t used_idx(FIXTURE_DATA(netq) *self, int q)
{
	struct vring_used *used = gptr(self, self->v.vq[q].device);

	return __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE);
}

static struct hvio_queue_stats qstats(FIXTURE_DATA(netq) *self, int q)
{
	struct hvio_queue_stats st = { .queue = q };

	ioctl(self->fd, HVIO_DEV_GET_QUEUE_STATS, &st);
	return st;
}

/* What the daemon's readv would do: copy a packet into the op's buffers. */
static void fill_op(FIXTURE_DATA(netq) *self, const struct hvio_op *op,
		    const uint8_t *pkt, uint32_t len)
{
	uint32_t i, n;

	for (i = 0; i < op->nr_segs && len; i++) {
		n = op->segs[i].len < len ? op->segs[i].len : len;
		memcpy(gptr(self, op->segs[i].gpa), pkt, n);
		pkt += n;
		len -= n;
	}
}

static uint16_t num_buffers(FIXTURE_DATA(netq) *self, uint64_t gpa)
{
	return ((struct virtio_net_hdr_v1 *)gptr(self, gpa))->num_buffers;
}

TEST_F(netq, create_checks_queues_and_features)
{
	/* A net device has receiveq1 and transmitq1 and only features the
	 * module implements; CTRL_VQ or MQ would need queues it lacks. */
	NEED_SETUP();
	EXPECT_ERR(EINVAL, make_dev(self, 1, F_ALL, 1500));
	EXPECT_ERR(EINVAL, make_dev(self, 3, F_ALL, 1500));
	EXPECT_ERR(EINVAL, make_dev(self, 2, F_ALL | BIT(VIRTIO_NET_F_CTRL_VQ),
				    1500));
	EXPECT_ERR(EINVAL, make_dev(self, 2, F_ALL | BIT(VIRTIO_NET_F_MQ),
				    1500));
	EXPECT_EQ(F_ALL, self->v.driver_features);
}

TEST_F(netq, tx_chain_becomes_op)
{
	/* Header and frame become one NET_TX op: the header in the slot,
	 * the frame as the only segment; the completion returns the chain
	 * with length 0 and counts the frame without its header. */
	struct virtio_net_hdr_v1 h = { 0 };
	uint16_t tags[QN], head;
	struct hvio_op *op;

	NEED_SETUP();
	head = post_tx(self, DATA, &h, DATA + 0x1000, 1514);
	kick(self, TXQ);
	ASSERT_EQ(1, run(self, TXQ, NULL, 0, tags, QN, NULL));
	ASSERT_EQ(head, tags[0]);
	op = &self->ops[TXQ][head];
	EXPECT_EQ(HVIO_OP_NET_TX, op->type);
	EXPECT_EQ(HDR + 1514, op->len);
	EXPECT_EQ(0, memcmp(op->net_hdr, &h, HDR));
	ASSERT_EQ(1, op->nr_segs);
	EXPECT_EQX(DATA + 0x1000, op->segs[0].gpa);
	EXPECT_EQ(1514, op->segs[0].len);
	EXPECT_EQ(0, op->reserved2);
	EXPECT_EQ(self->gen, op->generation);
	EXPECT_EQ(0, used_idx(self, TXQ));

	ASSERT_EQ(0, commit1(self, TXQ, head, HDR + 1514));
	ASSERT_EQ(1, used_idx(self, TXQ));
	EXPECT_EQ(head, used_at(self, TXQ, 0).id);
	EXPECT_EQ(0, used_at(self, TXQ, 0).len);
	EXPECT_EQ(1, qstats(self, TXQ).packets);
	EXPECT_EQ(1514, qstats(self, TXQ).bytes);
	EXPECT_EQ(0, qstats(self, TXQ).errors);
}

TEST_F(netq, tx_header_in_op_is_the_checked_one)
{
	/* A header cut over three descriptors (5 bytes, 4 bytes, the last 3
	 * with the frame's first 100 bytes) reaches the daemon as the copy
	 * the module checked, in op->net_hdr; the segments start at the
	 * frame's first byte.  Rewriting the guest's header afterwards (GSO
	 * and ECN it never negotiated) changes nothing the daemon sends. */
	struct virtio_net_hdr_v1 h = {
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
		.csum_start = 34, .csum_offset = 6,
	};
	struct buf b[] = { { DATA, 5, false }, { DATA + 0x100, 4, false },
			   { DATA + 0x200, 3 + 100, false },
			   { DATA + 0x1000, 1414, false } };
	uint16_t tags[QN], head;
	struct hvio_op *op;
	uint8_t *g;

	NEED_SETUP();
	memcpy(gptr(self, DATA), &h, 5);
	memcpy(gptr(self, DATA + 0x100), (uint8_t *)&h + 5, 4);
	memcpy(gptr(self, DATA + 0x200), (uint8_t *)&h + 9, 3);
	head = post(self, TXQ, b, 4);
	kick(self, TXQ);
	ASSERT_EQ(1, run(self, TXQ, NULL, 0, tags, QN, NULL));
	op = &self->ops[TXQ][head];
	/* The guest rewrites its header after the fetch. */
	g = gptr(self, DATA);
	g[0] = 0;
	g[1] = VIRTIO_NET_HDR_GSO_UDP | VIRTIO_NET_HDR_GSO_ECN;
	EXPECT_EQ(HVIO_OP_NET_TX, op->type);
	EXPECT_EQ(HDR + 1514, op->len);
	EXPECT_EQ(0, memcmp(op->net_hdr, &h, HDR));
	ASSERT_EQ(2, op->nr_segs);
	EXPECT_EQX(DATA + 0x200 + 3, op->segs[0].gpa);
	EXPECT_EQ(100, op->segs[0].len);
	EXPECT_EQX(DATA + 0x1000, op->segs[1].gpa);
	EXPECT_EQ(1414, op->segs[1].len);
	ASSERT_EQ(0, commit1(self, TXQ, head, HDR + 1514));
	EXPECT_EQ(1, qstats(self, TXQ).packets);
	EXPECT_EQ(0, qstats(self, TXQ).bad_request);
}

TEST_F(netq, tx_tso_with_negotiated_offloads)
{
	/* A 64 KiB TSO frame with NEEDS_CSUM passes when CSUM and HOST_TSO4
	 * were negotiated; a failed write still returns the chain. */
	struct virtio_net_hdr_v1 h = {
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
		.gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
		.hdr_len = 54, .gso_size = 1448,
		.csum_start = 34, .csum_offset = 16,
	};
	uint16_t tags[QN], head;

	NEED_SETUP();
	head = post_tx(self, DATA, &h, DATA + 0x1000, HVIO_NET_MAX_FRAME);
	kick(self, TXQ);
	ASSERT_EQ(1, run(self, TXQ, NULL, 0, tags, QN, NULL));
	EXPECT_EQ(HDR + HVIO_NET_MAX_FRAME, self->ops[TXQ][head].len);
	ASSERT_EQ(0, commit1(self, TXQ, head, -EIO));
	EXPECT_EQ(1, used_idx(self, TXQ));
	EXPECT_EQ(0, qstats(self, TXQ).packets);
	EXPECT_EQ(1, qstats(self, TXQ).errors);
	EXPECT_EQ(0, qstats(self, TXQ).bad_request);
}

TEST_F(netq, tx_malformed_refused_and_counted)
{
	/* Each malformed chain goes back with length 0 and never becomes an
	 * op; a good frame after them still does. */
	struct virtio_net_hdr_v1 ok = { 0 }, h;
	struct buf wr[] = { { DATA, HDR, false }, { DATA + 0x1000, 100, true } };
	struct buf shorthdr[] = { { DATA, 8, false } };
	uint16_t tags[QN], good;
	int n = 0, i;

	NEED_SETUP();
	post(self, TXQ, wr, 2), n++;			/* writable buffer */
	post(self, TXQ, shorthdr, 1), n++;		/* under a header */
	post_tx(self, DATA, &ok, DATA + 0x1000, 10), n++;	/* < 14 */
	post_tx(self, DATA, &ok, DATA + 0x1000, HVIO_NET_MAX_FRAME + 1), n++;
	h = ok;
	h.flags = VIRTIO_NET_HDR_F_DATA_VALID;		/* RX-only flag */
	post_tx(self, DATA + 0x100, &h, DATA + 0x1000, 60), n++;
	h = ok;
	h.gso_type = 7;					/* unknown */
	h.gso_size = 1000;
	post_tx(self, DATA + 0x200, &h, DATA + 0x1000, 60), n++;
	h = ok;
	h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;		/* beyond frame */
	h.csum_start = 50;
	h.csum_offset = 16;
	post_tx(self, DATA + 0x300, &h, DATA + 0x1000, 60), n++;
	h = ok;
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;		/* gso_size 0 */
	h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h.csum_start = 34;
	h.csum_offset = 16;
	post_tx(self, DATA + 0x400, &h, DATA + 0x1000, 1514), n++;
	good = post_tx(self, DATA + 0x500, &ok, DATA + 0x1000, 60);
	kick(self, TXQ);
	ASSERT_EQ(1, run(self, TXQ, NULL, 0, tags, QN, NULL));
	EXPECT_EQ(good, tags[0]);
	ASSERT_EQ(n, used_idx(self, TXQ));
	for (i = 0; i < n; i++)
		EXPECT_EQ(0, used_at(self, TXQ, i).len);
	EXPECT_EQ(n, qstats(self, TXQ).bad_request);
	EXPECT_EQ(1, qstats(self, TXQ).ops);
}

TEST_F(netq, tx_offload_not_negotiated_refused)
{
	/* Without CSUM and HOST_TSO4 the driver may not ask for them. */
	struct virtio_net_hdr_v1 h = {
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
		.csum_start = 34, .csum_offset = 16,
	};
	struct virtio_net_hdr_v1 tso = {
		.gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .gso_size = 1448,
	};
	uint16_t tags[QN];

	NEED_SETUP();
	ASSERT_EQ(0, probe(self, F_BASE | F_MRG)) TH_LOG("%s", self->v.err);
	post_tx(self, DATA, &h, DATA + 0x1000, 1514);
	post_tx(self, DATA + 0x100, &tso, DATA + 0x1000, 1514);
	kick(self, TXQ);
	ASSERT_EQ(0, run(self, TXQ, NULL, 0, tags, QN, NULL));
	EXPECT_EQ(2, used_idx(self, TXQ));
	EXPECT_EQ(2, qstats(self, TXQ).bad_request);
}

TEST_F(netq, rx_one_chain_per_op_without_mrg)
{
	/* Without MRG_RXBUF each chain is one op; the used length is the
	 * packet's and num_buffers is 1. */
	uint8_t pkt[HDR + 100];
	uint16_t tags[QN], heads[3];
	struct hvio_op *op;
	int i;

	NEED_SETUP();
	ASSERT_EQ(0, probe(self, F_BASE | F_OFFLOADS)) TH_LOG("%s", self->v.err);
	post_rx(self, DATA, BIG_RX, 3, heads);
	kick(self, RXQ);
	ASSERT_EQ(3, run(self, RXQ, NULL, 0, tags, QN, NULL));
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(heads[i], tags[i]);
		op = &self->ops[RXQ][tags[i]];
		EXPECT_EQ(HVIO_OP_NET_RX, op->type);
		EXPECT_EQ(BIG_RX, op->len);
		EXPECT_EQ(1, op->nr_segs);
	}
	memset(pkt, 0x5a, sizeof(pkt));
	memset(pkt, 0, HDR);
	((struct virtio_net_hdr_v1 *)pkt)->num_buffers = 0x7777;
	op = &self->ops[RXQ][tags[1]];
	fill_op(self, op, pkt, sizeof(pkt));
	ASSERT_EQ(0, commit1(self, RXQ, tags[1], sizeof(pkt)));
	ASSERT_EQ(1, used_idx(self, RXQ));
	EXPECT_EQ(heads[1], used_at(self, RXQ, 0).id);
	EXPECT_EQ(sizeof(pkt), used_at(self, RXQ, 0).len);
	EXPECT_EQ(1, num_buffers(self, op->segs[0].gpa));
	EXPECT_EQ(0x5a, *(uint8_t *)gptr(self, op->segs[0].gpa + HDR + 99));
	EXPECT_EQ(1, qstats(self, RXQ).packets);
	EXPECT_EQ(100, qstats(self, RXQ).bytes);
}

TEST_F(netq, rx_mrg_spans_chains_for_a_gso_packet)
{
	/* With MRG_RXBUF and GUEST_TSO4 an op gathers 4 KiB buffers until it
	 * holds 65562 bytes (17 of them); a 64 KiB packet fills 17 chains,
	 * num_buffers = 17, the last used length is the remainder. */
	uint32_t len = HDR + HVIO_NET_MAX_FRAME, left;
	uint16_t tags[QN], heads[17];
	static uint8_t pkt[HDR + HVIO_NET_MAX_FRAME];
	struct hvio_op *op;
	int i;

	NEED_SETUP();
	post_rx(self, DATA, 4096, 17, heads);
	kick(self, RXQ);
	ASSERT_EQ(1, run(self, RXQ, NULL, 0, tags, QN, NULL));
	op = &self->ops[RXQ][tags[0]];
	EXPECT_EQ(heads[0], tags[0]);
	EXPECT_EQ(17 * 4096, op->len);
	ASSERT_EQ(17, op->nr_segs);
	for (i = 0; i < 17; i++)
		EXPECT_EQX(DATA + i * 4096ULL, op->segs[i].gpa);

	for (i = 0; i < (int)len; i++)
		pkt[i] = (uint8_t)(i * 7);
	memset(pkt, 0, HDR);
	fill_op(self, op, pkt, len);
	ASSERT_EQ(0, commit1(self, RXQ, tags[0], len));
	ASSERT_EQ(17, used_idx(self, RXQ));
	for (i = 0, left = len; i < 17; i++) {
		EXPECT_EQ(heads[i], used_at(self, RXQ, i).id);
		EXPECT_EQ(left > 4096 ? 4096 : left, used_at(self, RXQ, i).len);
		left -= used_at(self, RXQ, i).len;
	}
	EXPECT_EQ(17, num_buffers(self, DATA));
	EXPECT_EQ(pkt[len - 1], *(uint8_t *)gptr(self, DATA + len - 1));
	EXPECT_EQ(17, qstats(self, RXQ).rx_chains);
}

TEST_F(netq, rx_mrg_leftover_chains_lead_the_next_op)
{
	/* A small packet uses one chain of a 17-chain op; the other 16 are
	 * offered again, after the chains that were waiting, in the next op.
	 * While an op is out, too few chains for a full op wait. */
	uint16_t tags[QN], heads[20];
	struct hvio_op *op;
	uint8_t pkt[HDR + 60] = { 0 };
	int i;

	NEED_SETUP();
	post_rx(self, DATA, 4096, 20, heads);
	kick(self, RXQ);
	ASSERT_EQ(1, run(self, RXQ, NULL, 0, tags, QN, NULL));
	EXPECT_EQ(17, self->ops[RXQ][tags[0]].nr_segs);

	fill_op(self, &self->ops[RXQ][tags[0]], pkt, sizeof(pkt));
	ASSERT_EQ(0, commit1(self, RXQ, tags[0], sizeof(pkt)));
	ASSERT_EQ(1, used_idx(self, RXQ));
	EXPECT_EQ(heads[0], used_at(self, RXQ, 0).id);
	EXPECT_EQ(sizeof(pkt), used_at(self, RXQ, 0).len);
	EXPECT_EQ(1, num_buffers(self, DATA));

	/* 3 waiting + 16 given back = 19: one op of 17, 2 wait. */
	ASSERT_EQ(1, run(self, RXQ, NULL, 0, tags, QN, NULL));
	op = &self->ops[RXQ][tags[0]];
	EXPECT_EQ(heads[17], tags[0]);
	ASSERT_EQ(17, op->nr_segs);
	EXPECT_EQX(DATA + 17 * 4096ULL, op->segs[0].gpa);
	EXPECT_EQX(DATA + 19 * 4096ULL, op->segs[2].gpa);
	for (i = 3; i < 17; i++)
		EXPECT_EQX(DATA + (i - 2) * 4096ULL, op->segs[i].gpa);
	EXPECT_EQ(0, run(self, RXQ, NULL, 0, tags, QN, NULL));
}

TEST_F(netq, rx_mrg_few_buffers_still_receive)
{
	/* With no op out, a guest that posted less than a full op still gets
	 * one with what it posted. */
	uint16_t tags[QN];

	NEED_SETUP();
	post_rx(self, DATA, 2048, 2, NULL);
	kick(self, RXQ);
	ASSERT_EQ(1, run(self, RXQ, NULL, 0, tags, QN, NULL));
	EXPECT_EQ(4096, self->ops[RXQ][tags[0]].len);
	EXPECT_EQ(2, self->ops[RXQ][tags[0]].nr_segs);
}

TEST_F(netq, rx_mtu_target_without_guest_tso)
{
	/* Without GUEST_TSO/UFO an op needs only header + MTU + 18 bytes: with
	 * mtu 1500 and 1024-byte buffers that is 2 chains (1530 bytes). */
	uint16_t tags[QN];

	NEED_SETUP();
	ASSERT_EQ(0, probe(self, F_BASE | F_MRG)) TH_LOG("%s", self->v.err);
	post_rx(self, DATA, 1024, 6, NULL);
	kick(self, RXQ);
	ASSERT_EQ(3, run(self, RXQ, NULL, 0, tags, QN, NULL));
	EXPECT_EQ(2048, self->ops[RXQ][tags[0]].len);
	EXPECT_EQ(2048, self->ops[RXQ][tags[2]].len);
}

TEST_F(netq, rx_truncated_or_cancelled_gives_buffers_back)
{
	/* A count above the op's length (the TAP truncated the packet) or
	 * below a header hands the guest nothing and counts a drop; a
	 * cancelled op is not a drop.  The same buffers come back. */
	uint16_t tags[QN], heads[2];

	NEED_SETUP();
	ASSERT_EQ(0, probe(self, F_BASE)) TH_LOG("%s", self->v.err);
	post_rx(self, DATA, 2048, 2, heads);
	kick(self, RXQ);
	ASSERT_EQ(2, run(self, RXQ, NULL, 0, tags, QN, NULL));
	ASSERT_EQ(0, commit1(self, RXQ, tags[0], 2049));
	ASSERT_EQ(0, commit1(self, RXQ, tags[1], -ECANCELED));
	EXPECT_EQ(0, used_idx(self, RXQ));
	EXPECT_EQ(1, qstats(self, RXQ).rx_dropped);
	EXPECT_EQ(0, qstats(self, RXQ).errors);
	ASSERT_EQ(2, run(self, RXQ, NULL, 0, tags, QN, NULL));
	EXPECT_EQ(heads[0], tags[0]);
	EXPECT_EQ(heads[1], tags[1]);
	ASSERT_EQ(0, commit1(self, RXQ, tags[0], 5));	/* below a header */
	EXPECT_EQ(2, qstats(self, RXQ).rx_dropped);
	/* A spare chain is not an op: committing it is refused. */
	EXPECT_ERR(EINVAL, commit1(self, RXQ, heads[0], 100));
}

TEST_F(netq, rx_malformed_chains_refused)
{
	/* Readable buffers, or fewer than 12 bytes, in a receive chain: back
	 * with length 0, counted; the good chain after them is an op. */
	struct buf rd[] = { { DATA, 2048, false } };
	struct buf tiny[] = { { DATA, 8, true } };
	uint16_t tags[QN];

	NEED_SETUP();
	post(self, RXQ, rd, 1);
	post(self, RXQ, tiny, 1);
	post_rx(self, DATA + 0x10000, 4096, 17, NULL);
	kick(self, RXQ);
	ASSERT_EQ(1, run(self, RXQ, NULL, 0, tags, QN, NULL));
	EXPECT_EQ(2, used_idx(self, RXQ));
	EXPECT_EQ(0, used_at(self, RXQ, 0).len);
	EXPECT_EQ(2, qstats(self, RXQ).bad_request);
}

TEST_F(netq, tx_budget_stops_and_says_more)
{
	/* 300 frames: one fetch takes 256 and reports MORE without re-arming
	 * notifications; the next takes the rest.  20 frames of 64 KiB
	 * stop at the op that crosses 1 MiB. */
	static struct hvio_completion c[300];
	uint16_t tags[QN];
	uint32_t flags;
	int i;

	NEED_SETUP();
	for (i = 0; i < 300; i++)
		post_tx1(self, DATA, 60);
	kick(self, TXQ);
	ASSERT_EQ(HVIO_NET_BUDGET_PKTS, run(self, TXQ, NULL, 0, tags, QN,
					    &flags));
	EXPECT_EQ(HVIO_RUN_OUT_MORE, flags);
	for (i = 0; i < HVIO_NET_BUDGET_PKTS; i++)
		c[i] = (struct hvio_completion){ .tag = tags[i], .generation = self->gen };
	ASSERT_EQ(300 - HVIO_NET_BUDGET_PKTS,
		  run(self, TXQ, NULL, 0, tags, QN, &flags));
	EXPECT_EQ(0, flags);
	EXPECT_EQ(1, qstats(self, TXQ).budget_stops);
	for (; i < 300; i++)
		c[i] = (struct hvio_completion){ .tag = tags[i - HVIO_NET_BUDGET_PKTS],
						 .generation = self->gen };
	/* The ops go back before the re-probe: its reset waits for them. */
	ASSERT_EQ(0, run(self, TXQ, c, 300, NULL, 0, NULL));

	ASSERT_EQ(0, probe(self, F_ALL)) TH_LOG("%s", self->v.err);
	for (i = 0; i < 20; i++)
		post_tx1(self, DATA, HVIO_NET_MAX_FRAME);
	kick(self, TXQ);
	ASSERT_EQ(16, run(self, TXQ, NULL, 0, tags, QN, &flags));
	EXPECT_EQ(HVIO_RUN_OUT_MORE, flags);
	ASSERT_EQ(4, run(self, TXQ, NULL, 0, tags, QN, &flags));
	EXPECT_EQ(0, flags);
}

TEST_F(netq, reset_drops_rx_ops_and_spares)
{
	/* A reset while RX ops and spare chains are held: the old ops'
	 * completions are stale and touch nothing (the reset is answered
	 * once they are back); after a new probe the queue starts from the
	 * new rings. */
	uint16_t tags[QN];
	uint32_t old_gen;
	uint64_t flag;

	NEED_SETUP();
	post_rx(self, DATA, 4096, 20, NULL);
	kick(self, RXQ);
	ASSERT_EQ(1, run(self, RXQ, NULL, 0, tags, QN, NULL));
	old_gen = self->gen;
	ASSERT_EQ(0, fg_vdev_reset_start(&self->v, &flag));
	{
		struct hvio_completion c = { .tag = tags[0], .result = 100,
					     .generation = old_gen };

		ASSERT_EQ(0, run(self, RXQ, &c, 1, NULL, 0, NULL));
	}
	ASSERT_EQ(0, fg_vdev_reset_wait(&self->v, flag)) TH_LOG("%s", self->v.err);
	ASSERT_EQ(0, probe(self, F_ALL)) TH_LOG("%s", self->v.err);
	EXPECT_EQ(1, qstats(self, RXQ).stale);
	EXPECT_EQ(0, used_idx(self, RXQ));
	post_rx(self, DATA, 4096, 2, NULL);
	kick(self, RXQ);
	ASSERT_EQ(1, run(self, RXQ, NULL, 0, tags, QN, NULL));
	EXPECT_EQ(2, self->ops[RXQ][tags[0]].nr_segs);
	EXPECT_NE(old_gen, self->gen);
}

TEST_F(netq, kick_with_eventfd_does_not_wake_the_device_fd)
{
	/* A queue with an eventfd is woken through it alone: the kick
	 * signals the eventfd and leaves HVIO_EV_KICK to queues without one
	 * (whose kick still wakes poll on the device fd). */
	struct hvio_queue_eventfd qe = { .queue = TXQ };
	struct hvio_dev_events ev;
	uint64_t n = 0;
	int efd;

	NEED_SETUP();
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, efd);
	qe.fd = efd;
	ASSERT_EQ(0, ioctl(self->fd, HVIO_DEV_SET_QUEUE_EVENTFD, &qe));
	ASSERT_EQ(0, fg_dev_events(self->fd, &ev));	/* clear */
	kick(self, TXQ);
	EXPECT_EQ(sizeof(n), read(efd, &n, sizeof(n)));
	EXPECT_EQ(1, n);
	EXPECT_EQ(0, fg_poll_in(self->fd, 0));
	ASSERT_EQ(0, fg_dev_events(self->fd, &ev));
	EXPECT_EQ(0, ev.events & HVIO_EV_KICK);
	kick(self, RXQ);
	EXPECT_EQ(1, fg_poll_in(self->fd, 1000));
	ASSERT_EQ(0, fg_dev_events(self->fd, &ev));
	EXPECT_EQ(HVIO_EV_KICK, ev.events & HVIO_EV_KICK);
	EXPECT_EQX(1U << RXQ, ev.kicked_queues);
	close(efd);
}

TEST_HARNESS_MAIN
