/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared pieces of the hvio selftest programs (hvio_*.c).  Include this once
 * per program, after nothing else from the harness: it pulls in
 * kselftest_harness.h, which defines non-static symbols.
 */
#ifndef HVIO_TEST_H
#define HVIO_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "fakeguest.h"
#include "geometry.h"

/* -errno of a failed syscall, else its result. */
static inline long sys_ret(long r)
{
	return r < 0 ? -errno : r;
}

static inline const char *errname(long r)
{
	return r >= 0 ? "success" : strerror((int)-r);
}

/* _expr returns 0/positive or -errno; expect exactly -_err. */
#define EXPECT_ERR(_err, _expr) do {					\
	long __r = (long)(_expr);					\
	EXPECT_EQ((long)-(_err), __r)					\
		TH_LOG("%s: got %ld (%s), expected -%d (%s)", #_expr,	\
		       __r, errname(__r), (_err), strerror(_err));	\
} while (0)

#define ASSERT_OK(_expr) do {						\
	long __r = (long)(_expr);					\
	ASSERT_LE(0, __r)						\
		TH_LOG("%s: %s", #_expr, errname(__r));			\
} while (0)

#define EXPECT_OK(_expr) do {						\
	long __r = (long)(_expr);					\
	EXPECT_LE(0, __r)						\
		TH_LOG("%s: %s", #_expr, errname(__r));			\
} while (0)

/* Equality with both values shown in hex (registers, addresses). */
#define EXPECT_EQX(_exp, _seen) do {					\
	unsigned long long __e = (_exp), __s = (_seen);			\
	EXPECT_EQ(__e, __s)						\
		TH_LOG("%s: %#llx, expected %#llx", #_seen, __s, __e);	\
} while (0)

#define ASSERT_EQX(_exp, _seen) do {					\
	unsigned long long __e = (_exp), __s = (_seen);			\
	ASSERT_EQ(__e, __s)						\
		TH_LOG("%s: %#llx, expected %#llx", #_seen, __s, __e);	\
} while (0)

/*
 * Open the fake hypervisor in FIXTURE_SETUP.  With the module absent the
 * test is skipped, unless HVIO_KO is set (the runner promised a loaded
 * module): then it is a failure.  A SKIP in setup does not stop the 6.1
 * harness from running the test body, so bodies start with NEED_SETUP().
 */
static inline void hvio_fixture_open(struct __test_metadata *_metadata,
				     struct fg *fg, bool *skip)
{
	int r = fg_open(fg);
	int n;

	if ((r == -ENOENT || r == -ENODEV) && !getenv("HVIO_KO")) {
		*skip = true;
		SKIP(return, "%s", fg->err);
	}
	ASSERT_EQ(0, r) TH_LOG("fg_open: %s", fg->err);
	if (fg->info.ram_size < MIN_SIM_RAM) {
		*skip = true;
		SKIP(return, "sim_ram is %llu bytes, the tests need %llu",
		     (unsigned long long)fg->info.ram_size, MIN_SIM_RAM);
	}
	n = fg_zone_sweep(fg);
	if (n)
		TH_LOG("removed %d zone(s) left behind by an earlier test", n);
	if (fg->stale_res)
		TH_LOG("dropped %lu res_list entries left by an earlier test",
		       fg->stale_res);
}

/*
 * hvio_fixture_open() for a test that runs the real daemon: wait up to 5 s
 * for /dev/hvio-sim to be released (a test killed at its timeout may still
 * hold it), open, skip without the daemon binary (unless HVIO_KO is set),
 * and wait up to 3 s for a daemon of an earlier test, still exiting with
 * its devices, to let zone go.  *opened tells the teardown to close.
 */
static inline void hvio_daemon_fixture_open(struct __test_metadata *_metadata,
					    struct fg *fg, bool *skip,
					    bool *opened, uint32_t zone)
{
	int r, i;

	for (i = 0; i < 500; i++) {
		r = open(FG_DEV_SIM, O_RDWR | O_CLOEXEC);
		if (r >= 0)
			close(r);
		if (r >= 0 || errno != EBUSY)
			break;
		fg_sleep_ms(10);
	}
	hvio_fixture_open(_metadata, fg, skip);
	if (*skip)
		return;
	*opened = true;
	if (access(fg_daemon_bin(), X_OK) && !getenv("HVIO_KO")) {
		*skip = true;
		SKIP(return, "%s: no daemon binary", fg_daemon_bin());
	}
	for (i = 0; i < 300; i++) {
		r = fg_zone_del(fg, zone);
		if (r == -ENOENT)
			break;
		fg_sleep_ms(10);
	}
	ASSERT_EQ(-ENOENT, r) TH_LOG("zone %u still busy: %s", zone, errname(r));
}

/* FIXTURE_TEARDOWN: no bridge access may have failed; delete zones. */
static inline void hvio_fixture_close(struct __test_metadata *_metadata,
				      struct fg *fg)
{
	if (fg->ctl_fd >= 0)
		fg_zone_sweep(fg);
	EXPECT_EQ(0, fg->errors) TH_LOG("bridge accesses failed; last: %s",
					fg->err);
	fg_close(fg);
}

#define NEED_SETUP() do { if (self->skip) return; } while (0)

#endif /* HVIO_TEST_H */
