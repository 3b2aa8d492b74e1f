// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_net_uring: the real daemon serves a fake guest's virtio-net device
 * through io_uring commands (Documentation/architecture.md, the net queue):
 * a parked HVIO_URING_FETCH per queue that a guest kick completes,
 * HVIO_URING_COMMIT SQEs for the results, no HVIO_DEV_QUEUE_RUN and no
 * kick eventfd.  Traffic both ways with checksums, no ioctl in steady
 * state, a SIGKILL with both FETCHes parked then a takeover, a reset in
 * the middle of traffic, and MRG_RXBUF buffers a parked FETCH must pick
 * up after a commit.
 *
 * The fixture, the daemon and the guest driver are hvio_net.c's: that
 * file is included with its tests compiled as unused functions (their
 * TEST_F turned into plain static functions) and without its main(), so
 * only the tests below are registered here.
 */
#include "hvio_test.h"

#pragma push_macro("TEST_F")
#pragma push_macro("TEST_F_TIMEOUT")
#pragma push_macro("TEST_HARNESS_MAIN")
#undef TEST_F
#undef TEST_F_TIMEOUT
#undef TEST_HARNESS_MAIN
#define TEST_F(f, t)							\
	static void __attribute__((unused)) net_test_##t(		\
		struct __test_metadata __attribute__((unused)) *_metadata, \
		FIXTURE_DATA(f) __attribute__((unused)) *self)
#define TEST_F_TIMEOUT(f, t, s)	TEST_F(f, t)
#define TEST_HARNESS_MAIN
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "hvio_net.c"
#pragma GCC diagnostic pop
#pragma pop_macro("TEST_HARNESS_MAIN")
#pragma pop_macro("TEST_F_TIMEOUT")
#pragma pop_macro("TEST_F")

/* The net device's "daemon" object in the status report names the path. */
static bool uring_path(FIXTURE_DATA(net) *self, char *why, size_t len)
{
	static char rep[1 << 16];
	const char *p;

	if (fn_daemon_report(&self->d, rep, sizeof(rep)) < 0) {
		snprintf(why, len, "no status report");
		return false;
	}
	p = strstr(rep, "\"type\": \"net\"");
	p = p ? strstr(p, "\"daemon\":") : NULL;
	if (!p) {
		snprintf(why, len, "no net daemon counters in the report");
		return false;
	}
	if (strstr(p, "\"path\": \"uring\""))
		return true;
	snprintf(why, len, "daemon counters: %.300s", p);
	return false;
}

#define ASSERT_URING() do {						\
	char why_[400];							\
	ASSERT_TRUE(uring_path(self, why_, sizeof(why_)))		\
		TH_LOG("the net queue does not use io_uring commands: %s", why_); \
} while (0)

/*
 * n test frames each way at once (TX from the pool, RX with at most
 * WINDOW outstanding; every 16th one each way a TCP/IPv4 frame whose
 * checksum is verified where it arrives): all arrive once, intact, RX in
 * order.  Returns the frames that arrived each way (tx + rx).
 */
static unsigned int traffic(struct __test_metadata *_metadata,
			    FIXTURE_DATA(net) *self, unsigned int n,
			    uint32_t stream)
{
	enum { WINDOW = 48, TCP_PAYLOAD = 1000 };
	struct virtio_net_hdr_mrg_rxbuf h;
	struct virtio_net_hdr vh = { 0 };
	static uint8_t f[1514];
	unsigned int tx_sent = 0, tx_got = 0, rx_sent = 0, rx_got = 0, bad = 0;
	unsigned int batch;
	uint64_t deadline = fg_now_ms() + 60000;
	uint32_t st, seq, len;
	ssize_t r;

	hdr_set(&h, 0, 0, 0, 0, 0, 0);
	while ((tx_got < n || rx_got < n) && fg_now_ms() < deadline) {
		for (batch = 0; tx_sent < n && self->ntxfree && batch < 32; batch++) {
			if (tx_sent % 16 == 15) {
				len = fn_frame_tcp4(f, TCP_PAYLOAD, fn_host_mac,
						    fn_guest_mac, tx_sent, false);
			} else {
				len = 60 + (tx_sent * 131) % (1514 - 60);
				fn_frame_test(f, len, fn_host_mac, fn_guest_mac,
					      stream, tx_sent);
			}
			ASSERT_LE(0, tx_post(self, self->txfree[--self->ntxfree], &h,
					     f, len, tx_sent % 2 ? L_ONE : L_SPLIT));
			tx_sent++;
		}
		if (batch)
			kick(self, &self->tx, TXQ);
		tx_reap(self);
		while ((r = tap_recv(self, &vh, self->fr, 0)) >= 0) {
			if (fn_frame_check(self->fr, r, &st, &seq) && st == stream &&
			    seq < n && seq % 16 != 15 &&
			    r == 60 + (seq * 131) % (1514 - 60))
				tx_got++;
			else if (r == FN_TCP4_HDR_LEN + TCP_PAYLOAD &&
				 !fn_tcp4_csum_check(self->fr, r))
				tx_got++;
			else
				bad++;
		}
		for (batch = 0; rx_sent < n && rx_sent - rx_got < WINDOW && batch < 32;
		     batch++) {
			if (rx_sent % 16 == 15) {
				len = fn_frame_tcp4(f, TCP_PAYLOAD, fn_guest_mac,
						    fn_host_mac, rx_sent, false);
				ASSERT_LT(0, tap_send(self, &vh, f, len));
			} else {
				ASSERT_LT(0, tap_send_test(self, 60 + rx_sent % 1400,
							   stream + 1, rx_sent));
			}
			rx_sent++;
		}
		while (rx_got < rx_sent) {
			int e = rx_packet(self, self->rp, 0);

			if (e == -ETIMEDOUT)
				break;
			ASSERT_RX(e);
			if (rx_got % 16 == 15) {
				EXPECT_EQ(FN_TCP4_HDR_LEN + TCP_PAYLOAD, self->rp->len);
				EXPECT_EQ(0, fn_tcp4_csum_check(self->rp->data,
								self->rp->len))
					TH_LOG("RX TCP frame %u: bad checksum", rx_got);
			} else {
				EXPECT_TRUE(fn_frame_check(self->rp->data, self->rp->len,
							   &st, &seq) &&
					    st == stream + 1 && seq == rx_got &&
					    self->rp->len == 60 + seq % 1400)
					TH_LOG("RX frame %u: stream %u seq %u len %u",
					       rx_got, st, seq, self->rp->len);
			}
			rx_got++;
		}
		pump(self, tx_got < tx_sent || rx_got < rx_sent ? 1 : 0);
	}
	EXPECT_EQ(n, tx_got) TH_LOG("TX: %u sent, %u on the TAP; %s", tx_sent,
				    tx_got, diag(self));
	EXPECT_EQ(n, rx_got) TH_LOG("RX: %u sent, %u in the guest; %s", rx_sent,
				    rx_got, diag(self));
	EXPECT_EQ(0, bad) TH_LOG("%u corrupt, duplicate or foreign TX frames", bad);
	return tx_got + rx_got;
}

/* A pool of n TX buffers (RX buffers are the test's). */
static void tx_pool(struct __test_metadata *_metadata, FIXTURE_DATA(net) *self,
		    unsigned int n)
{
	unsigned int i;

	self->ntxfree = 0;
	for (i = 0; i < n; i++) {
		ASSERT_TRUE(galloc(self, &self->txpool[i], TXB_SMALL));
		self->txpool[i].pooled = true;
		self->txfree[self->ntxfree++] = &self->txpool[i];
	}
}

TEST_F_TIMEOUT(net, traffic_both_ways_on_the_uring_path, 120)
{
	/* 2000 frames each way at once (test frames checked byte for byte, every 16th a TCP/IPv4 frame whose checksum verifies on arrival): all arrive, and `hvio status` says the net queue runs on io_uring commands (path "uring"), its ring set up as Ring does. */
	NEED_SETUP();
	up(_metadata, self, true, true);
	probe(_metadata, self, WANT_ALL);
	traffic_buffers(_metadata, self, 128);
	traffic(_metadata, self, 2000, 100);
	ASSERT_URING();
	EXPECT_LT(0, fn_daemon_counter(&self->d, "fetches"));
	EXPECT_LT(0, fn_daemon_counter(&self->d, "commits"));
	EXPECT_EQ(0, fn_daemon_counter(&self->d, "runs"));
}

TEST_F_TIMEOUT(net, no_queue_run_ioctls_in_steady_state, 120)
{
	/* After a warm-up, 2000 frames each way cost the daemon no ioctl at all (no QUEUE_RUN: the FETCHes and COMMITs are SQEs); io_uring_enter calls and wakeups per frame are printed. */
	long long io0, runs0, en0, wk0, sys0, io1, runs1, en1, wk1, sys1;
	unsigned int frames;

	NEED_SETUP();
	up(_metadata, self, true, true);
	probe(_metadata, self, WANT_ALL);
	traffic_buffers(_metadata, self, 128);
	traffic(_metadata, self, 200, 110);
	io0 = fn_daemon_counter(&self->d, "ioctls");
	runs0 = fn_daemon_counter(&self->d, "runs");
	en0 = fn_daemon_counter(&self->d, "enters");
	wk0 = fn_daemon_counter(&self->d, "wakeups");
	sys0 = fn_daemon_counter(&self->d, "syscalls");
	ASSERT_LE(0, io0);
	frames = traffic(_metadata, self, 2000, 120);
	io1 = fn_daemon_counter(&self->d, "ioctls");
	runs1 = fn_daemon_counter(&self->d, "runs");
	en1 = fn_daemon_counter(&self->d, "enters");
	wk1 = fn_daemon_counter(&self->d, "wakeups");
	sys1 = fn_daemon_counter(&self->d, "syscalls");
	EXPECT_EQ(io0, io1) TH_LOG("%lld ioctls during steady traffic", io1 - io0);
	EXPECT_EQ(runs0, runs1) TH_LOG("%lld QUEUE_RUNs during steady traffic",
				       runs1 - runs0);
	TH_LOG("%u frames: %lld syscalls (%lld io_uring_enter), %lld wakeups; per frame %.3f, %.3f, %.3f",
	       frames, sys1 - sys0, en1 - en0, wk1 - wk0,
	       (double)(sys1 - sys0) / frames, (double)(en1 - en0) / frames,
	       (double)(wk1 - wk0) / frames);
	ASSERT_URING();
}

TEST_F_TIMEOUT(net, sigkill_with_fetches_parked_then_takeover, 120)
{
	/* Traffic, then an idle daemon whose RX FETCH (32 guest buffers, fewer than its 64 RX slots) and TX FETCH are both parked is SIGKILLed: the device becomes an orphan (the parked FETCHes do not keep it), a new daemon takes it over on the uring path, and traffic flows both ways again. */
	struct hvio_stats st;
	char json[1024];
	long long armed;
	int r;

	NEED_SETUP();
	up(_metadata, self, true, true);
	probe(_metadata, self, WANT_ALL);
	self->rx_recycle = true;
	rx_fill(_metadata, self, 32, RXBUF_MRG, false);
	tx_pool(_metadata, self, 64);
	traffic(_metadata, self, 300, 130);
	ASSERT_URING();
	fg_sleep_ms(100);
	/* Free slots on both queues: each has its FETCH out, parked. */
	armed = fn_daemon_counter(&self->d, "rx_armed");
	EXPECT_TRUE(armed >= 1 && armed < 64) TH_LOG("%lld RX ops armed", armed);
	EXPECT_EQ(0, fn_daemon_counter(&self->d, "tx_inflight"));
	kill_daemon(_metadata, self);
	/* The parked FETCHes do not hold the device: it becomes an orphan
	 * (the other requests in the dead daemon's ring are cancelled by
	 * io_uring's exit work, possibly just after the reap). */
	EXPECT_TRUE(wait_orphan(self));
	ASSERT_EQ(0, fg_stats(&self->fg, &st));
	EXPECT_EQ(1, st.orphans);
	EXPECT_EQ(1, st.devs);

	cfg_json(self, json, sizeof(json), true, true);
	r = fn_daemon_start(&self->d, json, READY_LINE, READY_MS);
	ASSERT_EQ(0, r) TH_LOG("no takeover (%s): stderr \"%s\"", errname(r),
			       fn_daemon_log(&self->d));
	ASSERT_EQ(0, fg_stats(&self->fg, &st));
	EXPECT_EQ(0, st.orphans);
	traffic(_metadata, self, 300, 140);
	ASSERT_URING();
}

TEST_F_TIMEOUT(net, reset_during_traffic_on_the_uring_path, 120)
{
	/* Three resets, each while frames are in flight both ways: no used entry is written to the old rings after the reset, the daemon sees each reset (its parked FETCHes complete with the new generation), and after each re-probe traffic flows both ways on the uring path. */
	enum { ROUNDS = 3, N = 40 };
	struct virtio_net_hdr_mrg_rxbuf h;
	static uint8_t f[600];
	unsigned int round, i;
	uint16_t rx_used0, tx_used0;
	struct fv_ring old_r, old_t;
	long long resets0;

	NEED_SETUP();
	up(_metadata, self, true, true);
	hdr_set(&h, 0, 0, 0, 0, 0, 0);
	resets0 = fn_daemon_counter(&self->d, "resets");
	for (round = 0; round < ROUNDS; round++) {
		self->heap = HEAP_GPA + round * 4 * MIB;
		probe(_metadata, self, WANT_ALL);
		self->rx_recycle = true;
		rx_fill(_metadata, self, 64, RXBUF_MRG, false);
		for (i = 0; i < N; i++)
			ASSERT_TRUE(galloc(self, &self->txpool[i], TXB_SMALL));
		for (i = 0; i < N; i++) {
			fn_frame_test(f, sizeof(f), fn_host_mac, fn_guest_mac,
				      150 + round, i);
			ASSERT_LE(0, tx_post(self, &self->txpool[i], &h, f,
					     sizeof(f), L_SPLIT));
			ASSERT_LT(0, tap_send_test(self, 300, 160 + round, i));
			if (i % 8 == 7) {
				kick(self, &self->tx, TXQ);
				kick(self, &self->rx, RXQ);
			}
			if (i == N / 2 + round * 4)
				WR(VIRTIO_MMIO_STATUS, 0);
		}
		EXPECT_EQ(0, RD(VIRTIO_MMIO_STATUS));
		old_r = self->rx;
		old_t = self->tx;
		rx_used0 = fv_used_idx(&old_r);
		tx_used0 = fv_used_idx(&old_t);
		fg_sleep_ms(100);
		EXPECT_EQ(rx_used0, fv_used_idx(&old_r))
			TH_LOG("round %u: RX used ring written after the reset", round);
		EXPECT_EQ(tx_used0, fv_used_idx(&old_t))
			TH_LOG("round %u: TX used ring written after the reset", round);
		ASSERT_TRUE(fn_daemon_alive(&self->d))
			TH_LOG("daemon gone: %s; %s", fn_wstatus(self->d.exit_status),
			       fn_daemon_log(&self->d));

		/* Fresh device: what was queued before is drained, then new
		 * frames flow both ways. */
		probe(_metadata, self, WANT_ALL);
		traffic_buffers(_metadata, self, 0);
		tx_pool(_metadata, self, 64);
		while (rx_packet(self, self->rp, QUIET_MS) != -ETIMEDOUT)
			;
		fn_pkt_drain(self->pkt);
		traffic(_metadata, self, 100, 170 + 2 * round);
		ASSERT_URING();
		if (!_metadata->passed)
			break;
		WR(VIRTIO_MMIO_STATUS, 0);
	}
	EXPECT_LE(resets0 + ROUNDS, fn_daemon_counter(&self->d, "resets"));
}

TEST_F_TIMEOUT(net, mrg_buffers_left_after_a_commit_are_used, 60)
{
	/* MRG_RXBUF, 4 small buffers posted once and never again: the first op takes them all (the daemon has no op yet), the first frame uses one, and the parked RX FETCH must look again after that op's commit (the kernel gives out the 3 left over only once the daemon holds no op): the second and third frames arrive without another kick. */
	struct virtio_net_hdr vh = { 0 };
	static uint8_t f[1514];
	unsigned int i;
	int r;

	NEED_SETUP();
	up(_metadata, self, true, true);
	probe(_metadata, self, WANT_ALL);
	ASSERT_TRUE(self->mrg);
	self->rx_recycle = false;
	rx_fill(_metadata, self, 4, RXBUF_MRG, false);
	fg_sleep_ms(50);
	ASSERT_URING();
	for (i = 0; i < 3; i++) {
		fn_frame_test(f, 1000, fn_guest_mac, fn_host_mac, 180, i);
		ASSERT_LT(0, tap_send(self, &vh, f, 1000));
		r = rx_packet(self, self->rp, IO_MS);
		ASSERT_RX(r);
		EXPECT_EQ(1000, self->rp->len);
	}
}

TEST_HARNESS_MAIN
