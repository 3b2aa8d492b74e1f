// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_bridge: the hypervisor-facing protocol (Documentation/abi.md
 * section 1) seen from hvisor's side: the need_wakeup handshake, a full
 * request ring, several vCPUs at once, routing by (zone, address), the
 * robustness rules (unknown address, src_cpu >= 32, req_rear >= 32) and
 * interrupts that must never be dropped when res_list is full.
 */
#include "hvio_test.h"

#include <pthread.h>

#define DEV_ID		1		/* virtio-net */
#define DEV_IRQ		43
#define NQ		2
#define QMAX		256
#define CFG_LEN		32
#define RING_GPA	(GUEST_RAM + 0x10000)

FIXTURE(bridge) {
	struct fg fg;
	bool skip;
	bool zone;
	int fd;
	uint8_t cfg[CFG_LEN];
	int extra[48];
	unsigned int nr_zones;		/* extra zones 11, 12, ... */
};

/*
 * Interrupts of many devices at once: a zone's devices use at most 7
 * distinct IRQs (max_pending_irqs, T=irqlimit), so the tests that fill
 * res_list with distinct IRQs spread their devices over ZONE_A (which has
 * the fixture's device too) and six extra zones.
 */
#define SPREAD		7
#define EXTRA_ZONE0	11

static uint32_t spread_zone(int i)
{
	return i % SPREAD ? EXTRA_ZONE0 - 1 + i % SPREAD : ZONE_A;
}

FIXTURE_SETUP(bridge)
{
	struct fg_zone z = { .id = ZONE_A, .zonex_ipa = GUEST_RAM,
			     .ram_off = 0, .size = MIB };
	struct hvio_dev_create c;
	unsigned int i;

	self->fd = -1;
	for (i = 0; i < ARRAY_SIZE(self->extra); i++)
		self->extra[i] = -1;
	hvio_fixture_open(_metadata, &self->fg, &self->skip);
	if (self->skip)
		return;
	ASSERT_EQ(0, fg_zone_add(&self->fg, &z));
	self->zone = true;
	for (i = 0; i < CFG_LEN; i++)
		self->cfg[i] = (uint8_t)(3 * i + 1);
	fg_dev_init(&c, ZONE_A, DEV_ID, MMIO_BASE, DEV_IRQ, NQ, QMAX,
		    FG_F_VERSION_1 | (1ULL << 5), self->cfg, CFG_LEN);
	self->fd = fg_dev_create(&self->fg, &c);
	ASSERT_LE(0, self->fd) TH_LOG("DEV_CREATE: %s", errname(self->fd));
	fg_flush_res(&self->fg);
}

FIXTURE_TEARDOWN(bridge)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(self->extra); i++)
		if (self->extra[i] >= 0)
			close(self->extra[i]);
	if (self->fd >= 0)
		close(self->fd);
	if (self->zone) {
		EXPECT_EQ(0, fg_zone_del(&self->fg, ZONE_A));
	}
	for (i = 0; i < self->nr_zones; i++)
		EXPECT_EQ(0, fg_zone_del(&self->fg, EXTRA_ZONE0 + i));
	hvio_fixture_close(_metadata, &self->fg);
}

#define MAGIC_ADDR	(MMIO_BASE + VIRTIO_MMIO_MAGIC_VALUE)

static struct hvio_stats gstats(FIXTURE_DATA(bridge) *self)
{
	struct hvio_stats st;

	memset(&st, 0xff, sizeof(st));
	fg_stats(&self->fg, &st);
	return st;
}

static uint64_t le_bytes(const uint8_t *p, unsigned int n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | p[n];
	return v;
}

/* The consumer went to sleep: rings empty and need_wakeup == 1. */
static bool wait_idle(struct fg *fg, unsigned int timeout_ms)
{
	uint64_t deadline = fg_now_ms() + timeout_ms;
	struct hvio_bridge *br = fg->br;

	for (;;) {
		if (__atomic_load_n(&br->need_wakeup, __ATOMIC_ACQUIRE) == 1 &&
		    __atomic_load_n(&br->req_front, __ATOMIC_ACQUIRE) ==
		    __atomic_load_n(&br->req_rear, __ATOMIC_ACQUIRE))
			return true;
		if (fg_now_ms() > deadline)
			return false;
		fg_sleep_ms(1);
	}
}

/* A device of the fixture's zone at MMIO_BASE + slot * 0x200. */
static int extra_dev(FIXTURE_DATA(bridge) *self, uint32_t zone, unsigned int slot,
		     uint32_t dev_id, uint32_t irq)
{
	struct hvio_dev_create c;
	int fd;

	fg_dev_init(&c, zone, dev_id, MMIO_BASE + slot * HVIO_MMIO_ALIGN, irq,
		    1, 64, FG_F_VERSION_1, self->cfg, 8);
	fd = fg_dev_create(&self->fg, &c);
	if (fd >= 0) {
		unsigned int i;

		for (i = 0; i < ARRAY_SIZE(self->extra); i++) {
			if (self->extra[i] < 0) {
				self->extra[i] = fd;
				break;
			}
		}
	}
	return fd;
}

TEST_F(bridge, need_wakeup_after_answer)
{
	/* After answering, the consumer sleeps with need_wakeup == 1 (counting a sleep), so the next access raises exactly one IRQ. */
	struct hvio_stats a, b;
	unsigned long raises;

	NEED_SETUP();
	a = gstats(self);
	EXPECT_EQX(FG_MMIO_MAGIC, fg_read32(&self->fg, 0, ZONE_A, MAGIC_ADDR));
	ASSERT_TRUE(wait_idle(&self->fg, 1000))
		TH_LOG("need_wakeup %u after the access was answered",
		       self->fg.br->need_wakeup);
	b = gstats(self);
	EXPECT_LT(a.sleeps, b.sleeps);

	raises = self->fg.raises;
	EXPECT_EQX(FG_MMIO_MAGIC, fg_read32(&self->fg, 0, ZONE_A, MAGIC_ADDR));
	EXPECT_EQ(raises + 1, self->fg.raises);
	EXPECT_TRUE(wait_idle(&self->fg, 1000));
}

TEST_F(bridge, no_irq_no_answer)
{
	/* A request published without raising the IRQ is not answered (the consumer sleeps, it does not poll) until the IRQ comes. */
	struct hvio_device_req req = {
		.src_cpu = 0, .address = MAGIC_ADDR, .size = 4,
		.src_zone = ZONE_A,
	};
	struct hvio_bridge *br = self->fg.br;
	struct hvio_stats a, b;
	uint64_t before = 0, val = 0;
	uint32_t front;

	NEED_SETUP();
	ASSERT_TRUE(wait_idle(&self->fg, 1000));
	a = gstats(self);
	front = br->req_front;
	ASSERT_EQ(0, fg_push(&self->fg, &req, FG_RAISE_NEVER, &before))
		TH_LOG("%s", self->fg.err);
	fg_sleep_ms(200);
	EXPECT_EQ(before, __atomic_load_n(&br->cfg_flags[0], __ATOMIC_ACQUIRE));
	EXPECT_EQ(front, __atomic_load_n(&br->req_front, __ATOMIC_ACQUIRE));
	b = gstats(self);
	EXPECT_EQ(a.irqs, b.irqs);
	EXPECT_EQ(a.reqs, b.reqs);

	ASSERT_EQ(0, fg_raise(&self->fg));
	ASSERT_EQ(0, fg_wait_ack(&self->fg, 0, before, 2000, &val))
		TH_LOG("%s", self->fg.err);
	EXPECT_EQX(FG_MMIO_MAGIC, val);
	b = gstats(self);
	EXPECT_EQ(a.irqs + 1, b.irqs);
	EXPECT_EQ(a.reqs + 1, b.reqs);
	EXPECT_EQ(a.acks + 1, b.acks);
}

TEST_F(bridge, full_ring_one_irq)
{
	/* 31 requests (a full ring) pushed before a single IRQ are all answered by that one IRQ, each with its own value, and counted in irqs/reqs/acks. */
	struct hvio_bridge *br = self->fg.br;
	uint64_t before[31], val;
	struct hvio_stats a, b;
	unsigned int cpu;

	NEED_SETUP();
	ASSERT_TRUE(wait_idle(&self->fg, 1000));
	a = gstats(self);
	for (cpu = 0; cpu < 31; cpu++) {
		struct hvio_device_req req = {
			.src_cpu = cpu,
			.address = MMIO_BASE + HVIO_MMIO_CONFIG_OFF + cpu,
			.size = 1,
			.src_zone = ZONE_A,
		};

		ASSERT_EQ(0, fg_push(&self->fg, &req, FG_RAISE_NEVER, &before[cpu]))
			TH_LOG("push %u: %s", cpu, self->fg.err);
	}
	EXPECT_EQ(br->req_front, (br->req_rear + 1) & 31) TH_LOG("ring not full");
	fg_sleep_ms(50);
	for (cpu = 0; cpu < 31; cpu++) {
		EXPECT_EQ(before[cpu], br->cfg_flags[cpu])
			TH_LOG("cpu %u answered without IRQ", cpu);
	}

	ASSERT_EQ(0, fg_raise(&self->fg));
	for (cpu = 0; cpu < 31; cpu++) {
		val = ~0ULL;
		EXPECT_EQ(0, fg_wait_ack(&self->fg, cpu, before[cpu], 2000, &val))
			TH_LOG("%s", self->fg.err);
		EXPECT_EQ(self->cfg[cpu], val) TH_LOG("cpu %u", cpu);
	}
	EXPECT_TRUE(wait_idle(&self->fg, 1000));
	b = gstats(self);
	EXPECT_EQ(a.irqs + 1, b.irqs);
	EXPECT_EQ(a.reqs + 31, b.reqs);
	EXPECT_EQ(a.acks + 31, b.acks);
	EXPECT_EQ(a.unknown_addr, b.unknown_addr);
}

struct worker {
	struct fg *fg;
	const uint8_t *cfg;
	unsigned int cpu, n, bad;
	char msg[160];
};

static void *worker_fn(void *arg)
{
	static const unsigned int widths[] = { 1, 2, 4, 8 };
	struct worker *w = arg;
	uint64_t got, exp, addr;
	unsigned int i, width, off;

	for (i = 0; i < w->n; i++) {
		switch (i % 6) {
		case 0:
			addr = MAGIC_ADDR;
			width = 4;
			exp = FG_MMIO_MAGIC;
			break;
		case 1:
			addr = MMIO_BASE + VIRTIO_MMIO_DEVICE_ID;
			width = 4;
			exp = DEV_ID;
			break;
		default:
			width = widths[i % 4];
			off = (i * 7 * width) % CFG_LEN & ~(width - 1);
			addr = MMIO_BASE + HVIO_MMIO_CONFIG_OFF + off;
			exp = le_bytes(w->cfg + off, width);
			break;
		}
		got = fg_read(w->fg, w->cpu, ZONE_A, addr, width);
		if (got != exp && !w->bad++)
			snprintf(w->msg, sizeof(w->msg),
				 "cpu %u access %u: addr %#llx width %u read %#llx, expected %#llx",
				 w->cpu, i, (unsigned long long)addr, width,
				 (unsigned long long)got, (unsigned long long)exp);
	}
	return NULL;
}

/* Run NTHREADS vCPUs of PER_THREAD reads each; check answers and counters. */
static void run_concurrent(struct __test_metadata *_metadata,
			   FIXTURE_DATA(bridge) *self, bool unlocked)
{
	enum { NTHREADS = 4, PER_THREAD = 2500 };
	struct worker w[NTHREADS];
	pthread_t th[NTHREADS];
	struct hvio_stats a, b;
	unsigned long raises, pushes;
	unsigned int i;

	self->fg.raise_unlocked = unlocked;
	ASSERT_TRUE(wait_idle(&self->fg, 1000));
	a = gstats(self);
	raises = self->fg.raises;
	pushes = self->fg.pushes;
	for (i = 0; i < NTHREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].fg = &self->fg;
		w[i].cfg = self->cfg;
		w[i].cpu = 3 + 7 * i;		/* 3, 10, 17, 24 */
		w[i].n = PER_THREAD;
		ASSERT_EQ(0, pthread_create(&th[i], NULL, worker_fn, &w[i]));
	}
	for (i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < NTHREADS; i++) {
		EXPECT_EQ(0, w[i].bad) TH_LOG("%u wrong answers; first: %s",
					      w[i].bad, w[i].msg);
	}
	ASSERT_EQ(0, self->fg.errors) TH_LOG("%s", self->fg.err);
	EXPECT_TRUE(wait_idle(&self->fg, 1000));
	b = gstats(self);
	EXPECT_EQ(a.reqs + NTHREADS * PER_THREAD, b.reqs);
	EXPECT_EQ(a.acks + NTHREADS * PER_THREAD, b.acks);
	EXPECT_EQ(a.bad_cpu, b.bad_cpu);
	EXPECT_EQ(a.unknown_addr, b.unknown_addr);
	EXPECT_EQ(pushes + NTHREADS * PER_THREAD, self->fg.pushes);
	EXPECT_GE(NTHREADS * PER_THREAD, self->fg.raises - raises);
	EXPECT_GE(self->fg.raises - raises, b.irqs - a.irqs);
	TH_LOG("raise %s lock: %d requests, %lu IRQs raised, %llu handled, %llu sleeps",
	       unlocked ? "outside the" : "under the", NTHREADS * PER_THREAD,
	       self->fg.raises - raises, (unsigned long long)(b.irqs - a.irqs),
	       (unsigned long long)(b.sleeps - a.sleeps));
}

TEST_F_TIMEOUT(bridge, concurrent_cpus, 120)
{
	/* Four vCPUs (distinct src_cpu) hammering the device concurrently all get correct answers, every request consumed and acked once, whether hvisor raises the IRQ under its lock or after it. */
	NEED_SETUP();
	run_concurrent(_metadata, self, false);
	run_concurrent(_metadata, self, true);
}

TEST_F(bridge, unknown_address)
{
	/* Accesses where no device lives (past the window, address 0, zone RAM) are answered with 0, writes are acked, and each counts unknown_addr. */
	struct hvio_stats a, b;
	uint64_t v = ~0ULL;

	NEED_SETUP();
	a = gstats(self);
	EXPECT_EQX(0, fg_read32(&self->fg, 1, ZONE_A, MMIO_BASE + 0x10000));
	EXPECT_EQX(0, fg_read32(&self->fg, 1, ZONE_A, MMIO_BASE + HVIO_MMIO_ALIGN));
	EXPECT_EQX(0, fg_read32(&self->fg, 1, ZONE_A, 0));
	EXPECT_EQX(0, fg_read(&self->fg, 1, ZONE_A, GUEST_RAM + 0x100, 8));
	EXPECT_EQ(0, fg_access(&self->fg, 1, ZONE_A, MMIO_BASE + 0x20070, 4,
			       true, 1, &v)) TH_LOG("%s", self->fg.err);
	EXPECT_EQX(0, v);
	b = gstats(self);
	EXPECT_EQ(a.unknown_addr + 5, b.unknown_addr);
	EXPECT_EQ(a.acks + 5, b.acks);
	/* the device itself is unaffected */
	EXPECT_EQX(FG_MMIO_MAGIC, fg_read32(&self->fg, 1, ZONE_A, MAGIC_ADDR));
}

TEST_F(bridge, unknown_zone)
{
	/* The same address from a zone with no device there (unregistered zone, zone 0) reads 0 and counts unknown_addr. */
	struct hvio_stats a, b;

	NEED_SETUP();
	a = gstats(self);
	EXPECT_EQX(0, fg_read32(&self->fg, 1, 77, MAGIC_ADDR));
	EXPECT_EQX(0, fg_read32(&self->fg, 1, 0, MAGIC_ADDR));
	EXPECT_EQX(0, fg_read32(&self->fg, 1, 0xffffffff, MAGIC_ADDR));
	b = gstats(self);
	EXPECT_EQ(a.unknown_addr + 3, b.unknown_addr);
	EXPECT_EQX(FG_MMIO_MAGIC, fg_read32(&self->fg, 1, ZONE_A, MAGIC_ADDR));
}

TEST_F(bridge, zone_routing)
{
	/* Requests are routed by (src_zone, address): the same window in two zones and two windows in one zone reach four different devices. */
	struct fg_zone zb = { .id = ZONE_B, .zonex_ipa = GUEST_RAM,
			      .ram_off = MIB, .size = MIB };

	NEED_SETUP();
	ASSERT_EQ(0, fg_zone_add(&self->fg, &zb));
	ASSERT_LE(0, extra_dev(self, ZONE_B, 0, 2, 50));	/* same window */
	ASSERT_LE(0, extra_dev(self, ZONE_A, 1, 5, 51));
	ASSERT_LE(0, extra_dev(self, ZONE_B, 2, 9, 52));

	EXPECT_EQ(DEV_ID, fg_read32(&self->fg, 0, ZONE_A, MMIO_BASE + VIRTIO_MMIO_DEVICE_ID));
	EXPECT_EQ(2, fg_read32(&self->fg, 0, ZONE_B, MMIO_BASE + VIRTIO_MMIO_DEVICE_ID));
	EXPECT_EQ(5, fg_read32(&self->fg, 0, ZONE_A, MMIO_BASE + 0x200 + VIRTIO_MMIO_DEVICE_ID));
	EXPECT_EQ(0, fg_read32(&self->fg, 0, ZONE_B, MMIO_BASE + 0x200 + VIRTIO_MMIO_DEVICE_ID));
	EXPECT_EQ(9, fg_read32(&self->fg, 0, ZONE_B, MMIO_BASE + 0x400 + VIRTIO_MMIO_DEVICE_ID));
	EXPECT_EQ(0, fg_read32(&self->fg, 0, ZONE_A, MMIO_BASE + 0x400 + VIRTIO_MMIO_DEVICE_ID));
	/* state is per device */
	fg_write32(&self->fg, 0, ZONE_B, MMIO_BASE + VIRTIO_MMIO_STATUS, 1);
	EXPECT_EQ(1, fg_read32(&self->fg, 0, ZONE_B, MMIO_BASE + VIRTIO_MMIO_STATUS));
	EXPECT_EQ(0, fg_read32(&self->fg, 0, ZONE_A, MMIO_BASE + VIRTIO_MMIO_STATUS));
	EXPECT_EQ(0, fg_read32(&self->fg, 0, ZONE_A, MMIO_BASE + 0x200 + VIRTIO_MMIO_STATUS));
}

TEST_F(bridge, bad_cpu_dropped)
{
	/* Requests with src_cpu >= 32 are dropped and counted in bad_cpu without stalling the requests queued behind them. */
	struct hvio_device_req req = {
		.address = MAGIC_ADDR, .size = 4, .src_zone = ZONE_A,
	};
	struct hvio_stats a, b;

	NEED_SETUP();
	ASSERT_TRUE(wait_idle(&self->fg, 1000));
	a = gstats(self);
	req.src_cpu = HVIO_BRIDGE_MAX_CPUS;
	ASSERT_EQ(0, fg_push(&self->fg, &req, FG_RAISE_NEVER, NULL));
	req.src_cpu = 1ULL << 40;
	ASSERT_EQ(0, fg_push(&self->fg, &req, FG_RAISE_NEVER, NULL));
	req.src_cpu = ~0ULL;
	req.is_write = 1;
	req.address = MMIO_BASE + VIRTIO_MMIO_STATUS;
	req.value = 1;
	ASSERT_EQ(0, fg_push(&self->fg, &req, FG_RAISE_NEVER, NULL));
	/* this one raises the IRQ (need_wakeup is 1) and must be answered */
	EXPECT_EQX(FG_MMIO_MAGIC, fg_read32(&self->fg, 5, ZONE_A, MAGIC_ADDR));
	EXPECT_EQ(0, fg_wait_consumed(&self->fg, 1000));
	b = gstats(self);
	EXPECT_EQ(a.bad_cpu + 3, b.bad_cpu);
	EXPECT_EQ(a.reqs + 4, b.reqs);
	EXPECT_EQ(a.acks + 1, b.acks);
	/* the dropped write did not reach the device */
	EXPECT_EQ(0, fg_read32(&self->fg, 5, ZONE_A, MMIO_BASE + VIRTIO_MMIO_STATUS));
}

TEST_F(bridge, bad_index_recovers)
{
	/* A req_rear >= 32 stops consumption (bad_index) without touching any entry; once hvisor publishes a sane index the bridge works again. */
	struct hvio_device_req req = {
		.src_cpu = 0, .address = MAGIC_ADDR, .size = 4,
		.src_zone = ZONE_A,
	};
	struct hvio_bridge *br = self->fg.br;
	struct hvio_stats a, b;
	uint64_t before = 0, val = 0, deadline;
	uint32_t front;

	NEED_SETUP();
	ASSERT_TRUE(wait_idle(&self->fg, 1000));
	a = gstats(self);
	__atomic_store_n(&br->req_rear, 40, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	ASSERT_EQ(0, fg_raise(&self->fg));
	deadline = fg_now_ms() + 2000;
	do {
		fg_sleep_ms(10);
		b = gstats(self);
	} while (b.bad_index == a.bad_index && fg_now_ms() < deadline);
	EXPECT_LE(a.bad_index + 1, b.bad_index);
	EXPECT_EQ(a.reqs, b.reqs);
	EXPECT_EQ(a.acks, b.acks);
	front = __atomic_load_n(&br->req_front, __ATOMIC_ACQUIRE);
	EXPECT_GT(32, front);

	/* hvisor repairs its index; the next request is served */
	__atomic_store_n(&br->req_rear, front < 32 ? front : 0, __ATOMIC_RELEASE);
	if (front >= 32)
		__atomic_store_n(&br->req_front, 0, __ATOMIC_RELEASE);
	ASSERT_EQ(0, fg_push(&self->fg, &req, FG_RAISE_ALWAYS, &before));
	ASSERT_EQ(0, fg_wait_ack(&self->fg, 0, before, 2000, &val))
		TH_LOG("%s", self->fg.err);
	EXPECT_EQX(FG_MMIO_MAGIC, val);
	/* and the normal protocol (raise only on need_wakeup) works again */
	EXPECT_TRUE(wait_idle(&self->fg, 1000));
	EXPECT_EQX(FG_MMIO_MAGIC, fg_read32(&self->fg, 0, ZONE_A, MAGIC_ADDR));
}

TEST_F(bridge, notify_not_acknowledged)
{
	/* QueueNotify (need_interrupt = 1) is consumed and recorded as a kick but never acknowledged through cfg_flags. */
	struct hvio_bridge *br = self->fg.br;
	struct hvio_dev_stats da, db;
	struct hvio_stats a, b;
	struct fg_vdev v;
	uint64_t flag;

	NEED_SETUP();
	fg_vdev_init(&v, &self->fg, 2, ZONE_A, MMIO_BASE);
	ASSERT_EQ(0, fg_vdev_probe(&v, ~0ULL, NQ, 64, RING_GPA)) TH_LOG("%s", v.err);
	ASSERT_TRUE(wait_idle(&self->fg, 1000));
	ASSERT_EQ(0, fg_dev_stats(self->fd, &da));
	a = gstats(self);
	flag = br->cfg_flags[2];
	ASSERT_EQ(0, fg_notify(&self->fg, 2, ZONE_A, MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, 1));
	ASSERT_EQ(0, fg_wait_consumed(&self->fg, 2000)) TH_LOG("%s", self->fg.err);
	fg_sleep_ms(100);
	EXPECT_EQ(flag, br->cfg_flags[2]);
	b = gstats(self);
	EXPECT_EQ(a.reqs + 1, b.reqs);
	EXPECT_EQ(a.acks, b.acks);
	ASSERT_EQ(0, fg_dev_stats(self->fd, &db));
	EXPECT_EQ(da.notifies + 1, db.notifies);
	EXPECT_EQ(1, fg_poll_in(self->fd, 1000));
}

TEST_F(bridge, write_ack_value_zero)
{
	/* A write is acknowledged like a read, with cfg_values[src_cpu] = 0. */
	struct hvio_bridge *br = self->fg.br;
	uint64_t v = 0x5555;

	NEED_SETUP();
	__atomic_store_n(&br->cfg_values[6], 0x123456789abcdefULL, __ATOMIC_RELEASE);
	ASSERT_EQ(0, fg_access(&self->fg, 6, ZONE_A, MMIO_BASE + VIRTIO_MMIO_STATUS,
			       4, true, VIRTIO_CONFIG_S_ACKNOWLEDGE, &v))
		TH_LOG("%s", self->fg.err);
	EXPECT_EQX(0, v);
	EXPECT_EQ(VIRTIO_CONFIG_S_ACKNOWLEDGE,
		  fg_read32(&self->fg, 6, ZONE_A, MMIO_BASE + VIRTIO_MMIO_STATUS));
}

TEST_F(bridge, counters_exact)
{
	/* Every consumed request counts once in reqs, every answered one once in acks; a spurious IRQ with nothing queued counts only in irqs. */
	struct hvio_stats a, b;
	uint64_t deadline;
	int i;

	NEED_SETUP();
	ASSERT_TRUE(wait_idle(&self->fg, 1000));
	a = gstats(self);
	for (i = 0; i < 10; i++) {
		EXPECT_EQX(FG_MMIO_MAGIC, fg_read32(&self->fg, 7, ZONE_A, MAGIC_ADDR));
	}
	for (i = 0; i < 5; i++)
		fg_write32(&self->fg, 7, ZONE_A, MMIO_BASE + VIRTIO_MMIO_QUEUE_SEL, i);
	b = gstats(self);
	EXPECT_EQ(a.reqs + 15, b.reqs);
	EXPECT_EQ(a.acks + 15, b.acks);
	EXPECT_EQ(a.unknown_addr, b.unknown_addr);
	EXPECT_EQ(a.bad_cpu, b.bad_cpu);
	EXPECT_EQ(a.bad_index, b.bad_index);
	EXPECT_LE(a.irqs + 1, b.irqs);

	ASSERT_TRUE(wait_idle(&self->fg, 1000));
	a = gstats(self);
	ASSERT_EQ(0, fg_raise(&self->fg));
	deadline = fg_now_ms() + 1000;
	do {
		b = gstats(self);
	} while (b.irqs == a.irqs && fg_now_ms() < deadline);
	EXPECT_EQ(a.irqs + 1, b.irqs);
	EXPECT_EQ(a.reqs, b.reqs);
	EXPECT_EQ(a.acks, b.acks);
	EXPECT_TRUE(wait_idle(&self->fg, 1000));
}

TEST_F(bridge, closed_device_reads_zero)
{
	/* Closing a device fd removes it from the bridge at once: its window then reads 0 and counts unknown_addr. */
	struct hvio_stats a, b;
	int fd, i;

	NEED_SETUP();
	fd = extra_dev(self, ZONE_A, 2, 5, 60);
	ASSERT_LE(0, fd);
	EXPECT_EQ(5, fg_read32(&self->fg, 0, ZONE_A, MMIO_BASE + 0x400 + VIRTIO_MMIO_DEVICE_ID));
	a = gstats(self);
	for (i = 0; i < (int)ARRAY_SIZE(self->extra); i++)
		if (self->extra[i] == fd)
			self->extra[i] = -1;
	close(fd);
	EXPECT_EQX(0, fg_read32(&self->fg, 0, ZONE_A, MMIO_BASE + 0x400 + VIRTIO_MMIO_MAGIC_VALUE));
	EXPECT_EQX(0, fg_read32(&self->fg, 0, ZONE_A, MMIO_BASE + 0x400 + VIRTIO_MMIO_DEVICE_ID));
	b = gstats(self);
	EXPECT_EQ(a.unknown_addr + 2, b.unknown_addr);
	EXPECT_EQ(a.devs - 1, b.devs);
	/* the neighbour is still there */
	EXPECT_EQ(DEV_ID, fg_read32(&self->fg, 0, ZONE_A, MMIO_BASE + VIRTIO_MMIO_DEVICE_ID));
}

/* Zones EXTRA_ZONE0 .. EXTRA_ZONE0 + SPREAD - 2 beside ZONE_A. */
static int spread_zones(FIXTURE_DATA(bridge) *self)
{
	struct fg_zone z = { .zonex_ipa = GUEST_RAM, .size = MIB };
	int ret;

	while (self->nr_zones < SPREAD - 1) {
		z.id = EXTRA_ZONE0 + self->nr_zones;
		z.ram_off = (1 + self->nr_zones) * MIB;
		ret = fg_zone_add(&self->fg, &z);
		if (ret)
			return ret;
		self->nr_zones++;
	}
	return 0;
}

TEST_F_TIMEOUT(bridge, res_list_full_deferred, 90)
{
	/* 40 interrupts raised while hvisor drains nothing overflow res_list (res_full); all 40 are delivered later, each exactly once, none dropped. */
	enum { NDEV = 40 };
	struct hvio_device_res res[128];
	int seen[NDEV] = { 0 };
	struct hvio_stats a, b;
	uint8_t nb = 0x42;
	int fds[NDEV], i, n;

	NEED_SETUP();
	ASSERT_EQ(0, spread_zones(self));
	for (i = 0; i < NDEV; i++) {
		struct fg_vdev v;
		uint64_t base = MMIO_BASE + (16 + i) * HVIO_MMIO_ALIGN;

		fds[i] = extra_dev(self, spread_zone(i), 16 + i, 5, 100 + i);
		ASSERT_LE(0, fds[i]) TH_LOG("device %d: %s", i, errname(fds[i]));
		/* bring it up as a driver would (no queues needed) */
		fg_vdev_init(&v, &self->fg, 1, spread_zone(i), base);
		fg_vdev_wr(&v, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
		fg_vdev_wr(&v, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE |
			   VIRTIO_CONFIG_S_DRIVER);
		fg_vdev_wr(&v, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
		fg_vdev_wr(&v, VIRTIO_MMIO_DRIVER_FEATURES, 1);
		fg_vdev_wr(&v, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE |
			   VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
		fg_vdev_wr(&v, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE |
			   VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
			   VIRTIO_CONFIG_S_DRIVER_OK);
		ASSERT_EQ(0xf, fg_vdev_rd(&v, VIRTIO_MMIO_STATUS)) TH_LOG("device %d", i);
	}
	fg_flush_res(&self->fg);
	a = gstats(self);
	for (i = 0; i < NDEV; i++) {
		ASSERT_EQ(0, fg_dev_set_config(fds[i], 0, &nb, 1, HVIO_CONFIG_F_NOTIFY));
	}
	b = gstats(self);
	EXPECT_LT(a.res_full, b.res_full) TH_LOG("40 interrupts, res_list holds 31");

	n = fg_collect_res(&self->fg, res, ARRAY_SIZE(res), NDEV, 5000);
	EXPECT_EQ(NDEV, n);
	for (i = 0; i < n && i < (int)ARRAY_SIZE(res); i++) {
		if (res[i].irq_id >= 100 && res[i].irq_id < 100 + NDEV) {
			seen[res[i].irq_id - 100]++;
			EXPECT_EQ(spread_zone(res[i].irq_id - 100),
				  res[i].target_zone);
		} else
			TH_LOG("unexpected irq %u", res[i].irq_id);
	}
	for (i = 0; i < NDEV; i++) {
		EXPECT_EQ(1, seen[i]) TH_LOG("irq %d delivered %d times", 100 + i, seen[i]);
	}
	/* nothing else trickles in */
	EXPECT_EQ(0, fg_collect_res(&self->fg, NULL, 0, 1, 200));
	b = gstats(self);
	EXPECT_EQ(a.res_pushed + NDEV, b.res_pushed);
}

TEST_F(bridge, finish_fd_detach)
{
	/* HVIO_SIM_SET_FINISH_FD(-1) detaches the eventfd: FINISH_REQ is still issued and res_list still filled, but nothing is signalled until an eventfd is attached again. */
	struct hvio_device_res res[4];
	struct hvio_sim_info i0, i1;
	int32_t none = -1, efd = self->fg.finish_fd;
	struct fg_vdev v;
	uint8_t nb = 9;
	int n;

	NEED_SETUP();
	fg_vdev_init(&v, &self->fg, 0, ZONE_A, MMIO_BASE);
	ASSERT_EQ(0, fg_vdev_probe(&v, ~0ULL, NQ, 64, RING_GPA)) TH_LOG("%s", v.err);
	fg_flush_res(&self->fg);
	ASSERT_EQ(0, ioctl(self->fg.sim_fd, HVIO_SIM_SET_FINISH_FD, &none));
	ASSERT_EQ(0, fg_sim_info(&self->fg, &i0));
	ASSERT_EQ(0, fg_dev_set_config(self->fd, 0, &nb, 1, HVIO_CONFIG_F_NOTIFY));
	n = fg_collect_res(&self->fg, res, 4, 1, 2000);
	EXPECT_EQ(1, n);
	EXPECT_EQ(ZONE_A, res[0].target_zone);
	EXPECT_EQ(DEV_IRQ, res[0].irq_id);
	ASSERT_EQ(0, fg_sim_info(&self->fg, &i1));
	EXPECT_LT(i0.finish_calls, i1.finish_calls);
	EXPECT_EQ(0, fg_wait_finish(&self->fg, 100)) TH_LOG("detached eventfd was signalled");

	ASSERT_EQ(0, ioctl(self->fg.sim_fd, HVIO_SIM_SET_FINISH_FD, &efd));
	fg_write32(&self->fg, 0, ZONE_A, MMIO_BASE + VIRTIO_MMIO_INTERRUPT_ACK, 2);
	ASSERT_EQ(0, fg_dev_set_config(self->fd, 0, &nb, 1, HVIO_CONFIG_F_NOTIFY));
	EXPECT_LT(0, fg_wait_finish(&self->fg, 2000)) TH_LOG("re-attached eventfd not signalled");
	EXPECT_EQ(1, fg_collect_res(&self->fg, res, 4, 1, 2000));
}

/* Bring the device at base in zone to DRIVER_OK, VERSION_1 only, no queues. */
static void driver_ok_in(struct fg *fg, uint32_t zone, uint64_t base)
{
	struct fg_vdev v;

	fg_vdev_init(&v, fg, 1, zone, base);
	fg_vdev_wr(&v, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	fg_vdev_wr(&v, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE |
		   VIRTIO_CONFIG_S_DRIVER);
	fg_vdev_wr(&v, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	fg_vdev_wr(&v, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	fg_vdev_wr(&v, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE |
		   VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
	fg_vdev_wr(&v, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE |
		   VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
		   VIRTIO_CONFIG_S_DRIVER_OK);
}

TEST_F(bridge, deferred_irq_of_closed_device)
{
	/* An interrupt deferred because res_list was full, whose device is then closed, is never delivered as an interrupt of the device that takes its place. */
	enum { NDEV = 32 };
	struct hvio_device_res res[64];
	int fds[NDEV], i, n, fd, late = 0;
	struct hvio_stats a, b;
	uint8_t nb = 7;

	NEED_SETUP();
	ASSERT_EQ(0, spread_zones(self));
	for (i = 0; i < NDEV; i++) {
		fds[i] = extra_dev(self, spread_zone(i), 16 + i, 5, 200 + i);
		ASSERT_LE(0, fds[i]) TH_LOG("device %d: %s", i, errname(fds[i]));
		driver_ok_in(&self->fg, spread_zone(i),
			     MMIO_BASE + (16 + i) * HVIO_MMIO_ALIGN);
	}
	fg_flush_res(&self->fg);
	a = gstats(self);
	for (i = 0; i < NDEV; i++) {
		ASSERT_EQ(0, fg_dev_set_config(fds[i], 0, &nb, 1, HVIO_CONFIG_F_NOTIFY));
	}
	b = gstats(self);
	ASSERT_LT(a.res_full, b.res_full) TH_LOG("res_list did not fill up");
	/* the last device's interrupt is pending; close it, reuse its slot */
	for (i = 0; i < (int)ARRAY_SIZE(self->extra); i++)
		if (self->extra[i] == fds[NDEV - 1])
			self->extra[i] = -1;
	close(fds[NDEV - 1]);
	fd = extra_dev(self, ZONE_A, 15, 5, 300);
	ASSERT_LE(0, fd) TH_LOG("%s", errname(fd));

	n = fg_collect_res(&self->fg, res, ARRAY_SIZE(res), NDEV, 1000);
	EXPECT_LE(NDEV - 1, n);
	for (i = 0; i < n && i < (int)ARRAY_SIZE(res); i++) {
		EXPECT_NE(300, res[i].irq_id) TH_LOG("the new device got the old one's interrupt");
		if (res[i].irq_id == 200 + NDEV - 1)
			late++;
	}
	TH_LOG("%d entries; the closed device's interrupt was %s", n,
	       late ? "delivered anyway" : "dropped");
}

TEST_HARNESS_MAIN
