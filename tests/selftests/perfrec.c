// SPDX-License-Identifier: GPL-2.0
/*
 * perfrec: perf record of the test VM around a bench run, and its tables
 * (perfrec.h).
 */
#include "perfrec.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PERF_DATA	"/tmp/perf.data"

static void write_proc(const char *path, const char *val)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(val, f);
		fclose(f);
	}
}

/*
 * perf record starts with its events disabled (-D -1) and is enabled
 * through its control FIFO, whose ack says the events are on: a perf
 * that is slow to start (its libraries, under TCG, on a loaded host) does
 * not miss the start of the run.
 */
#define PERF_CTL	"/tmp/perf.ctl"
#define PERF_ACK	"/tmp/perf.ack"

pid_t pr_start(void)
{
	struct pollfd p;
	char ack[8] = "";
	int ctl = -1, fd, i;
	pid_t pid;

	/* kernel symbols and every CPU's samples for root */
	write_proc("/proc/sys/kernel/kptr_restrict", "0");
	write_proc("/proc/sys/kernel/perf_event_paranoid", "-1");
	unlink(PERF_CTL);
	unlink(PERF_ACK);
	if (mkfifo(PERF_CTL, 0600) || mkfifo(PERF_ACK, 0600))
		return -1;
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0)
			dup2(null, 1);
		execlp("perf", "perf", "record", "-q", "-a", "-g",
		       "-e", "cpu-clock", "-D", "-1",
		       "--control", "fifo:" PERF_CTL "," PERF_ACK,
		       "-o", PERF_DATA, (char *)NULL);
		_exit(127);
	}
	if (pid < 0)
		return -1;
	/* the ack end first (never blocks), then wait for perf's reader */
	fd = open(PERF_ACK, O_RDONLY | O_NONBLOCK);
	for (i = 0; i < 600; i++) {
		ctl = open(PERF_CTL, O_WRONLY | O_NONBLOCK);
		if (ctl >= 0 || waitpid(pid, NULL, WNOHANG))
			break;
		usleep(50 * 1000);
	}
	p.fd = fd;
	p.events = POLLIN;
	if (fd < 0 || ctl < 0 || write(ctl, "enable\n", 7) != 7 ||
	    poll(&p, 1, 30000) != 1 || read(fd, ack, sizeof(ack) - 1) <= 0 ||
	    strncmp(ack, "ack", 3))
		printf("# perf: record did not start\n");
	if (ctl >= 0)
		close(ctl);
	if (fd >= 0)
		close(fd);
	return pid;
}

/* Each line of the table is printed as "# perf| ...". */
void pr_table(const char *title, const char *opts,
		       const char *match, unsigned int max)
{
	char cmd[512], *line = NULL;
	size_t cap = 0;
	unsigned int n = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd),
		 "perf report -i %s --stdio --no-children %s 2>/dev/null",
		 PERF_DATA, opts);
	printf("# perf: %s (perf report --stdio --no-children %s%s%s)\n",
	       title, opts, match ? " | grep " : "", match ? match : "");
	p = popen(cmd, "r");
	if (!p) {
		printf("# perf: report failed: %s\n", strerror(errno));
		return;
	}
	/* whole lines: perf's header lines run past any fixed buffer */
	while (getline(&line, &cap, p) > 0) {
		if (line[0] == '#' || line[0] == '\n' ||
		    (match && !strstr(line, match)))
			continue;
		if (n++ < max)
			printf("# perf| %s", line);
	}
	free(line);
	pclose(p);
}

/*
 * The VM's clocksource: with hpet, every ktime_get() is an emulated MMIO
 * read (QEMU's big lock), a cost a tsc clocksource does not have.
 */
const char *pr_clocksource(void)
{
	static char cs[32];
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource",
			"r");

	strcpy(cs, "?");
	if (f) {
		if (!fgets(cs, sizeof(cs), f))
			strcpy(cs, "?");
		cs[strcspn(cs, "\n")] = 0;
		fclose(f);
	}
	return cs;
}

/* Ends the recording: perf writes PERF_DATA on SIGINT. */
void pr_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGINT);
	waitpid(pid, NULL, 0);
	unlink(PERF_CTL);
	unlink(PERF_ACK);
}

void pr_done(void)
{
	unlink(PERF_DATA);
}

void pr_thread_tables(const char *daemon_title, const char *daemon_comm,
		      const char *bench_title, const char *bench_comm)
{
	pr_table("share of each thread", "-n -g none --sort comm,pid", NULL,
		 20);
	pr_table("whole VM", "-n -g none --sort comm,dso,sym", NULL, PR_TOP);
	/*
	 * Per thread: the whole VM's table cut by name.  perf report's
	 * --comms/--tid filters drop samples taken where interrupts were
	 * turned back on (_raw_spin_unlock_irqrestore), so they are not
	 * used for the tables.
	 */
	pr_table(daemon_title, "-n -g none --sort comm,dso,sym", daemon_comm,
		 PR_TOP);
	pr_table(bench_title, "-n -g none --sort comm,dso,sym", bench_comm,
		 PR_TOP);
}
