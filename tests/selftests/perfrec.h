/* SPDX-License-Identifier: GPL-2.0 */
/*
 * perfrec: `perf record -a -g -e cpu-clock` of the whole test VM around
 * one bench run, and `perf report` tables of it, for the benches'
 * HVIO_BENCH_PERF=1 (make profile).  TCG has no PMU, hence cpu-clock.
 * Tables are printed as lines starting "# perf".
 */
#ifndef HVIO_PERFREC_H
#define HVIO_PERFREC_H

#include <sys/types.h>

#define PR_TOP		40	/* entries of the whole-VM and per-thread tables */

/*
 * Start recording, events on once perf says so; the pid of perf (> 0),
 * or -1 (and a "# perf:" line) when it did not start.
 */
pid_t pr_start(void);
/* Stop the recording started as @pid (<= 0: none); the data stays. */
void pr_stop(pid_t pid);
/*
 * One `perf report --stdio --no-children @opts` table of the recording:
 * its first @max lines that contain @match (NULL: any), comments skipped.
 */
void pr_table(const char *title, const char *opts, const char *match,
	      unsigned int max);
/* The VM's clocksource ("tsc", "hpet", ...; "?" if unknown). */
const char *pr_clocksource(void);
/*
 * The tables every profile starts with: each thread's share of the
 * samples, the whole VM, then the whole VM's table cut to the daemon's
 * thread (@daemon_comm, padded with blanks to match one name) and to the
 * bench's own threads (@bench_comm).
 */
void pr_thread_tables(const char *daemon_title, const char *daemon_comm,
		      const char *bench_title, const char *bench_comm);
/* Drop the recording. */
void pr_done(void);

#endif
