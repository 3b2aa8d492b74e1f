// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_blk_lifecycle: device reset and daemon shutdown with I/O in
 * flight.  A reset drops the completions of what was in flight (nothing is
 * written into the old rings after it); SIGTERM completes every request the
 * guest made available before the daemon exits 0; the daemon restarts on
 * the same config, and refuses a bad one with exit status 2 and a
 * one-line error.
 * Fixture, daemon and guest helpers: blkdaemon.h.
 */
#include "hvio_test.h"

#include <sched.h>

#include "blkdaemon.h"

static uint64_t now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static void spin_us(uint64_t us)
{
	uint64_t t0 = now_us();

	while (now_us() - t0 < us)
		;
}

TEST_F_TIMEOUT(blk, reset_drops_stale_completions, 90)
{
	/* Device resets at varying moments after a batch of reads was notified: nothing is ever written into the old used ring or status bytes after the reset is acknowledged (ops in flight complete as stale), the daemon survives every reset, and after a re-probe new requests complete with no stale entry in the new rings. */
	enum { N = 32, LEN = 16384, ROUNDS = 12 };
	struct breq *r[N], *nr[8];
	unsigned int round, partial = 0, none = 0, all = 0;
	uint64_t t0, batch_us, h0[N];
	unsigned int stale = 0;
	uint8_t st0[N];
	uint16_t u0;
	struct gq old;
	int i;

	NEED_SETUP();
	UP();
	/* how long a batch takes, to spread the resets over it */
	for (i = 0; i < N; i++) {
		r[i] = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 64ULL * i, LEN);
		rq_split(r[i], 2);
		rq_post(_metadata, self, 0, r[i]);
	}
	t0 = now_us();
	publish(self, 0);
	kick_now(self, 0);
	while (used_idx(&self->q[0]) != N && now_us() - t0 < IO_MS * 1000ULL)
		sched_yield();
	batch_us = now_us() - t0;
	ASSERT_EQ(0, wait_done(self, r, N, IO_MS)) TH_LOG("%s", diag(self));
	self->heap = HEAP_GPA;

	for (round = 0; round < ROUNDS; round++) {
		probe(_metadata, self, WANT_ALL);
		for (i = 0; i < N; i++) {
			r[i] = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 64ULL * i, LEN);
			rq_split(r[i], 2);
			rq_post(_metadata, self, 0, r[i]);
		}
		publish(self, 0);
		kick_now(self, 0);
		EXPECT_EQ(0, fg_wait_consumed(&self->fg, IRQ_MS));
		spin_us(batch_us * round / (ROUNDS - 2));
		WR(VIRTIO_MMIO_STATUS, 0);	/* acknowledged once the reset is done */
		old = self->q[0];
		u0 = used_idx(&old);
		for (i = 0; i < N; i++) {
			st0[i] = *r[i]->status;
			h0[i] = fnv1a(r[i]->data, LEN);
		}
		/* let whatever was in flight finish */
		fg_sleep_ms(100);
		/* zero-copy reads that landed after the reset were in flight */
		for (i = 0; i < N; i++)
			if (fnv1a(r[i]->data, LEN) != h0[i])
				break;
		stale += i < N;
		EXPECT_EQ(u0, used_idx(&old))
			TH_LOG("round %u: used ring written after the reset", round);
		for (i = 0; i < N; i++) {
			EXPECT_EQ(st0[i], *r[i]->status)
				TH_LOG("round %u request %d: status byte written after the reset",
				       round, i);
		}
		EXPECT_EQ(0, RD(VIRTIO_MMIO_STATUS));
		if (u0 == 0)
			none++;
		else if (u0 == N)
			all++;
		else
			partial++;
	}
	TH_LOG("batch of %d reads: %llu us; %u rounds: %u reset before any completion (%u with reads in flight, dropped as stale), %u in the middle, %u after all",
	       N, (unsigned long long)batch_us, ROUNDS, none, stale, partial, all);

	probe(_metadata, self, WANT_ALL);
	for (i = 0; i < 8; i++) {
		nr[i] = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 5000 + 8ULL * i, 4096);
		rq_post(_metadata, self, i % NQ, nr[i]);
	}
	publish(self, 0);
	publish(self, 1);
	kick(self, 0);
	kick(self, 1);
	EXPECT_EQ(0, wait_done(self, nr, 8, IO_MS)) TH_LOG("%s", diag(self));
	for (i = 0; i < 8; i++) {
		EXPECT_DONE(nr[i], ST_OK, 4097);
		EXPECT_DATA(nr[i]);
	}
	pump(self, 100);
	EXPECT_EQ(4, used_idx(&self->q[0]));
	EXPECT_EQ(4, used_idx(&self->q[1]));
}

/*
 * 64 writes over both queues, notified and taken by the module, then
 * SIGTERM: every one must come back with status OK before the daemon exits
 * 0, and be in the image.  after_first: SIGTERM once the first completion
 * is back (the daemon has fetched the batch: ops in flight); else right
 * after the notifies.  split_us >= 0: the second half of the writes is
 * posted and notified split_us after the first (the daemon is then busy
 * with the first half when the second half and SIGTERM arrive).
 */
static void sigterm_writes(struct __test_metadata *_metadata,
			   FIXTURE_DATA(blk) *self, bool after_first,
			   int split_us)
{
	enum { N = 64, LEN = 65536 };
	struct breq *r[N], *missing = NULL;
	unsigned int at_term = 0, ok = 0, done = 0;
	int i, st, first = split_us >= 0 ? N / 2 : N;
	uint64_t deadline;

	for (i = 0; i < N; i++)
		r[i] = rq_new(_metadata, self, VIRTIO_BLK_T_OUT, 128ULL * i, LEN);
	for (i = 0; i < N; i++) {
		rq_post(_metadata, self, i % NQ, r[i]);
		if (i + 1 != first && i + 1 != N)
			continue;
		publish(self, 0);
		publish(self, 1);
		kick_now(self, 0);
		kick_now(self, 1);
		/* the notifies reached the module (not just the bridge ring) */
		EXPECT_EQ(0, fg_wait_consumed(&self->fg, IRQ_MS));
		if (i + 1 == first && first != N)
			spin_us(split_us);
	}
	if (after_first) {
		deadline = fg_now_ms() + IO_MS;
		while (!used_idx(&self->q[0]) && !used_idx(&self->q[1]) &&
		       fg_now_ms() < deadline)
			sched_yield();
	}
	at_term = used_idx(&self->q[0]) + used_idx(&self->q[1]);
	if (after_first) {
		EXPECT_LT(0, at_term) TH_LOG("no completion at all: %s", diag(self));
	}
	ASSERT_EQ(0, kill(self->pid, SIGTERM));
	st = daemon_wait_exit(self, STOP_MS);
	EXPECT_TRUE(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		TH_LOG("daemon: %s; stderr \"%s\"", wstatus_str(st), log_tail(self));
	reap(self, 0);
	reap(self, 1);
	for (i = 0; i < N; i++) {
		done += r[i]->done;
		if (r[i]->done && *r[i]->status == ST_OK && r[i]->used_len == 1) {
			ok++;
			shadow_write(self, r[i]);
		} else if (!missing) {
			missing = r[i];
		}
	}
	TH_LOG("%u of %d writes had completed when SIGTERM was sent, %u when the daemon had exited",
	       at_term, N, done);
	EXPECT_EQ(N, ok)
		TH_LOG("%u of %d writes completed OK; first missing: %s (done %d, status %u, used len %u)",
		       ok, N, missing ? rq_str(missing) : "-", missing ? missing->done : 0,
		       missing ? *missing->status : 0, missing ? missing->used_len : 0);
	EXPECT_IMG();
}

TEST_F_TIMEOUT(blk, sigterm_completes_ops_in_flight, 60)
{
	/* SIGTERM while the daemon holds fetched writes: it completes every one (status OK in the used ring) before exiting with status 0, and all the data is in the image. */
	NEED_SETUP();
	UP();
	sigterm_writes(_metadata, self, true, -1);
}

TEST_F_TIMEOUT(blk, sigterm_loses_no_kicked_request, 90)
{
	/* SIGTERM right after the guest's notifies reached the module (five daemons in a row, with the writes in one batch or in two a little apart): the 64 writes the guest made available are all completed with status OK before the daemon exits 0, none is silently dropped, and the data is in the image. */
	static const int split[] = { -1, 0, 200, 500, 1000 };
	unsigned int round;

	NEED_SETUP();
	for (round = 0; round < ARRAY_SIZE(split); round++) {
		UP();
		self->heap = HEAP_GPA;
		sigterm_writes(_metadata, self, false, split[round]);
	}
}

TEST_F(blk, daemon_restart)
{
	/* Stopping the daemon (exit 0) and starting it again with the same config works: the zone comes back, the device probes, and data written before the restart reads back. */
	struct breq *w, *r;
	int st;

	NEED_SETUP();
	UP();
	w = rq_new(_metadata, self, VIRTIO_BLK_T_OUT, 3333, 8192);
	RUN_EXPECT(0, w, ST_OK, 1);
	if (w->done && *w->status == ST_OK)
		shadow_write(self, w);
	st = daemon_stop(self, SIGTERM);
	ASSERT_TRUE(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		TH_LOG("first daemon: %s; stderr \"%s\"", wstatus_str(st), log_tail(self));
	EXPECT_IMG();

	UP();
	r = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 3333, 8192);
	RUN_EXPECT(1, r, ST_OK, 8193);
	EXPECT_DATA(r);
	w = rq_new(_metadata, self, VIRTIO_BLK_T_OUT, 4444, 4096);
	RUN_EXPECT(0, w, ST_OK, 1);
	if (w->done && *w->status == ST_OK)
		shadow_write(self, w);
	EXPECT_IMG();
}

/* Run the daemon on a config it must refuse: exit 2, one line on stderr. */
static void expect_refused(struct __test_metadata *_metadata,
			   FIXTURE_DATA(blk) *self, const char *json,
			   const char *what)
{
	char errbuf[1024] = "";
	ssize_t n = 0;
	int st, fd, lines = 0, i;

	ASSERT_EQ(0, write_all(self->cfg, json, strlen(json)));
	ASSERT_EQ(0, daemon_spawn(self));
	st = daemon_wait_exit(self, STOP_MS);
	fd = open(self->log, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, errbuf, sizeof(errbuf) - 1);
		close(fd);
	}
	if (n < 0)
		n = 0;
	errbuf[n] = 0;
	for (i = 0; i < n; i++)
		lines += errbuf[i] == '\n';
	EXPECT_TRUE(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 2)
		TH_LOG("%s: %s (expected exit status 2); stderr \"%s\"", what,
		       wstatus_str(st), log_tail(self));
	EXPECT_EQ(1, lines) TH_LOG("%s: stderr should be one line: \"%s\"", what, log_tail(self));
	EXPECT_LT(1, n) TH_LOG("%s: empty error", what);
	EXPECT_TRUE(strstr(self->out, "ready") == NULL) TH_LOG("%s: stdout \"%s\"", what, self->out);
	TH_LOG("%s: %s", what, errbuf);
}

TEST_F(blk, bad_config_exits_2)
{
	/* A config naming a missing image, or that is not JSON, makes the daemon exit with status 2 and a one-line error; the daemon then starts fine with a good config. */
	char json[1024];
	struct breq *r;

	NEED_SETUP();
	unlink(self->extra);
	cfg_json(self, json, sizeof(json), self->extra, false);
	expect_refused(_metadata, self, json, "missing image");
	expect_refused(_metadata, self, "{\"zones\":[{\"id\":1,\n", "truncated JSON");

	UP();
	r = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 0, 4096);
	RUN_EXPECT(0, r, ST_OK, 4097);
	EXPECT_DATA(r);
}

TEST_HARNESS_MAIN
