// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_blk_notify: used and available buffer notification suppression
 * (the virtio spec's split virtqueue rules).  Without EVENT_IDX every
 * completion interrupts unless the driver sets VRING_AVAIL_F_NO_INTERRUPT;
 * with EVENT_IDX used_event decides (from the first completion after
 * attach on), and the device re-arms avail_event so each request needs
 * exactly one kick.
 * Fixture, daemon and guest helpers: blkdaemon.h.
 */
#include "hvio_test.h"

#include "blkdaemon.h"

/*
 * N requests one after the other, each waited for.  With expect_irq, each
 * completion must bring an interrupt, which is acknowledged as Linux's
 * vm_interrupt() does.  Returns the interrupts seen.
 */
static unsigned long serial_reads(struct __test_metadata *_metadata,
				  FIXTURE_DATA(blk) *self, int n, bool expect_irq)
{
	unsigned long base = self->irqs, b;
	struct breq *r;
	uint32_t isr;
	int i;

	for (i = 0; i < n; i++) {
		b = self->irqs;
		r = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 64ULL * i, 512);
		RUN_EXPECT(0, r, ST_OK, 513);
		if (!r->done)
			break;
		if (expect_irq) {
			EXPECT_TRUE(wait_irqs(self, b, 1, IRQ_MS))
				TH_LOG("request %d: no interrupt", i);
			isr = RD(VIRTIO_MMIO_INTERRUPT_STATUS);
			EXPECT_TRUE(isr & VIRTIO_MMIO_INT_VRING)
				TH_LOG("request %d: InterruptStatus %#x", i, isr);
			WR(VIRTIO_MMIO_INTERRUPT_ACK, isr);
		}
	}
	return self->irqs - base;
}

TEST_F(blk, event_idx_suppresses_interrupts)
{
	/*
	 * Without EVENT_IDX every completion interrupts; with EVENT_IDX and
	 * used_event held far ahead the same completions raise none (the
	 * first one after attach included), every request needs exactly one
	 * kick because the device re-arms avail_event after draining, and
	 * moving used_event brings the interrupt back.  Without polling: a
	 * request the daemon's poll finds after a commit needs no kick
	 * (engine.guest_answering_within_the_poll_window_needs_no_kick).
	 */
	enum { N = 24 };
	unsigned long without, with, first, b, irqs0;
	uint64_t deadline;
	struct breq *r;
	unsigned int q;
	uint16_t ae;

	NEED_SETUP();
	snprintf(self->dev_json, sizeof(self->dev_json), ",\"poll_us\":0");
	daemon_up(_metadata, self, NULL, false);
	probe(_metadata, self, WANT_ALL & ~F_EVENT_IDX);
	ASSERT_FALSE(self->event_idx);
	pump(self, 0);
	without = serial_reads(_metadata, self, N, true);

	probe(_metadata, self, WANT_ALL);
	ASSERT_TRUE(self->event_idx);
	self->hold_used_event = true;
	for (q = 0; q < self->nq; q++)
		*used_event(&self->q[q]) = htole16(self->q[q].last_used + HOLD_EVENT);
	/*
	 * The queue attaches at reset, so nothing was signalled before:
	 * used_event rules from the first completion on (virtio 1.2, 2.7.10).
	 */
	irqs0 = self->irqs;
	serial_reads(_metadata, self, 1, false);
	pump(self, 100);
	first = self->irqs - irqs0;
	EXPECT_EQ(0, first);
	b = self->kicks;
	irqs0 = self->irqs;
	serial_reads(_metadata, self, N, false);
	pump(self, 200);
	with = self->irqs - irqs0;
	b = self->kicks - b;
	/* every request found the queue drained and re-armed: one kick each */
	EXPECT_EQ(N, b) TH_LOG("%lu kicks for %d requests", b, N);
	/* avail_event re-armed to the next index once drained */
	deadline = fg_now_ms() + IRQ_MS;
	do {
		ae = le16toh(__atomic_load_n(avail_event(&self->q[0]), __ATOMIC_ACQUIRE));
		if (ae == self->q[0].avail_idx)
			break;
		pump(self, 5);
	} while (fg_now_ms() < deadline);
	EXPECT_EQ(self->q[0].avail_idx, ae) TH_LOG("avail_event not re-armed");

	TH_LOG("interrupts for %d completions: %lu without EVENT_IDX, %lu with used_event held (and %lu for the first completion after attach)",
	       N, without, with, first);
	EXPECT_LE(N, without);
	EXPECT_EQ(0, with);

	/* ask for the next one: it interrupts */
	b = self->irqs;
	*used_event(&self->q[0]) = htole16(self->q[0].last_used);
	r = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 0, 512);
	RUN_EXPECT(0, r, ST_OK, 513);
	EXPECT_TRUE(wait_irqs(self, b, 1, IRQ_MS)) TH_LOG("no interrupt at used_event");
	EXPECT_TRUE(RD(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_VRING);
	WR(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
}

TEST_F(blk, avail_no_interrupt_flag)
{
	/* Without EVENT_IDX, VRING_AVAIL_F_NO_INTERRUPT suppresses completion interrupts; clearing it brings them back. */
	enum { N = 16 };
	unsigned long with, b;
	struct breq *r;

	NEED_SETUP();
	daemon_up(_metadata, self, NULL, false);
	probe(_metadata, self, WANT_ALL & ~F_EVENT_IDX);
	self->q[0].avail->flags = htole16(VRING_AVAIL_F_NO_INTERRUPT);
	pump(self, 0);
	with = serial_reads(_metadata, self, N, false);
	pump(self, 200);
	EXPECT_EQ(0, with) TH_LOG("%lu interrupts with NO_INTERRUPT set", with);

	self->q[0].avail->flags = 0;
	b = self->irqs;
	r = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 0, 512);
	RUN_EXPECT(0, r, ST_OK, 513);
	EXPECT_TRUE(wait_irqs(self, b, 1, IRQ_MS)) TH_LOG("no interrupt");
}

TEST_HARNESS_MAIN
