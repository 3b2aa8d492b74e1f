// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_blk_uring: the real daemon serves virtio-blk through io_uring
 * commands (HVIO_URING_FETCH parked until a kick, HVIO_URING_COMMIT),
 * says so in `hvio status`, commits what it finished at once before it
 * waits, and a SIGKILL while its FETCHes are parked leaves an orphan at
 * once that a restarted daemon serves again.  The kernel's side of the
 * commands alone: hvio_uring.c.
 * Fixture, daemon and guest helpers: blkdaemon.h.
 */
#include <stdio.h>

#include "hvio_test.h"

#include "blkdaemon.h"

/* `hvio status --socket S --json` into buf; 0 or -1. */
static int status_json(FIXTURE_DATA(blk) *self, char *buf, size_t len)
{
	char cmd[256];
	size_t got;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "%s status --socket %s --json",
		 fg_daemon_bin(), self->sock);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	got = fread(buf, 1, len - 1, f);
	buf[got] = 0;
	return pclose(f) == 0 ? 0 : -1;
}

/* The first number after "key": in a JSON text (crude, enough here). */
static unsigned long long json_num(const char *j, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(j, pat);
	return p ? strtoull(p + strlen(pat), NULL, 10) : ~0ULL;
}

static void serial_reads(struct __test_metadata *_metadata,
			 FIXTURE_DATA(blk) *self, int n)
{
	struct breq *r;
	int i;

	for (i = 0; i < n; i++) {
		r = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 8ULL * i, 4096);
		RUN_EXPECT(0, r, ST_OK, 4097);
		EXPECT_DATA(r);
	}
}

TEST_F(blk, daemon_serves_through_uring_commands)
{
	/* Requests one at a time: every one is fetched by a parked FETCH
	 * that the kick completed (no QUEUE_RUN, no eventfd), and `hvio
	 * status` names the path and no op in flight (all were committed,
	 * the FETCH is parked).  The syscalls per request are printed. */
	static char out[65536];
	unsigned long long sys, runs, wake, inflight;
	const char *q0;

	NEED_SETUP();
	UP();
	serial_reads(_metadata, self, 32);
	ASSERT_EQ(0, status_json(self, out, sizeof(out)));
	q0 = strstr(out, "\"daemon\":");
	ASSERT_NE(NULL, q0) TH_LOG("status: %.400s", out);
	EXPECT_NE(NULL, strstr(q0, "\"path\": \"uring\"")) TH_LOG("%.600s", q0);
	runs = json_num(q0, "runs");
	sys = json_num(q0, "syscalls");
	wake = json_num(q0, "wakeups");
	inflight = json_num(q0, "inflight");
	EXPECT_EQ(0, runs);
	EXPECT_EQ(0, inflight) TH_LOG("%.600s", q0);
	EXPECT_LE(32, wake);
	TH_LOG("32 serial reads: %llu syscalls, %llu wakeups of queue 0",
	       sys, wake);
}

TEST_F(blk, an_op_finished_at_once_is_committed_before_the_daemon_waits)
{
	/* A FLUSH of a read-only image is done without any I/O: the daemon
	 * finishes it while it starts it, and must commit it before it
	 * sleeps again in io_uring_enter; nothing else (a kick, a timeout)
	 * would wake it for it.  The same with reads in the fetch (which
	 * then starts at once, not in parts). */
	struct breq *r[10];
	int i;

	NEED_SETUP();
	daemon_up(_metadata, self, NULL, true);
	probe(_metadata, self, WANT_ALL);
	r[0] = rq_new(_metadata, self, VIRTIO_BLK_T_FLUSH, 0, 0);
	RUN_EXPECT(0, r[0], ST_OK, 1);
	for (i = 0; i < 9; i++)
		r[i] = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 8ULL * i, 4096);
	r[9] = rq_new(_metadata, self, VIRTIO_BLK_T_FLUSH, 0, 0);
	for (i = 0; i < 10; i++)
		rq_post(_metadata, self, 0, r[i]);
	publish(self, 0);
	kick(self, 0);
	EXPECT_EQ(0, wait_done(self, r, 10, IO_MS)) TH_LOG("%s", diag(self));
	for (i = 0; i < 9; i++) {
		EXPECT_DONE(r[i], ST_OK, 4097);
		EXPECT_DATA(r[i]);
	}
	EXPECT_DONE(r[9], ST_OK, 1);
}

TEST_F(blk, sigkill_with_fetch_parked_then_restart_serves)
{
	/* The daemon idles (both queues' FETCHes parked) and is killed: the
	 * device becomes an orphan (its exit completes the parked commands,
	 * which hold the device file; on 6.12 shortly after the reap), and a
	 * new daemon takes it over and serves reads and writes. */
	struct hvio_stats st;
	struct breq *w, *r;
	unsigned int waited;
	int ws;

	NEED_SETUP();
	UP();
	serial_reads(_metadata, self, 4);
	fg_sleep_ms(100);
	ws = daemon_stop(self, SIGKILL);
	ASSERT_TRUE(ws >= 0 && WIFSIGNALED(ws)) TH_LOG("%s", wstatus_str(ws));
	self->pid = 0;
	EXPECT_EQ(1, fg_wait_orphans(&self->fg, 1, FG_ORPHAN_WAIT_MS, &waited));
	TH_LOG("orphan %u ms after the reap", waited);
	ASSERT_EQ(0, fg_stats(&self->fg, &st));
	EXPECT_EQ(1, st.devs);

	if (self->out_fd >= 0)
		close(self->out_fd);
	self->out_fd = -1;
	daemon_up(_metadata, self, NULL, false);
	w = rq_new(_metadata, self, VIRTIO_BLK_T_OUT, 800, 4096);
	memcpy(self->shadow + 800 * 512, w->data, 4096);
	RUN_EXPECT(1, w, ST_OK, 1);
	r = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 800, 4096);
	RUN_EXPECT(0, r, ST_OK, 4097);
	EXPECT_DATA(r);
	ASSERT_EQ(0, fg_stats(&self->fg, &st));
	EXPECT_EQ(0, st.orphans);
}

TEST_HARNESS_MAIN
