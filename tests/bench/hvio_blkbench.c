// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_blkbench: 4 KiB random read/write through the whole hvio path —
 * fake hvisor and guest driver (this program, through /dev/hvio-sim), the
 * module's bridge and virtqueue engine, the hvio daemon's io_uring — and,
 * in the same run on the same file, a plain io_uring loop as the baseline.
 *
 * The guest side behaves like Linux's virtio_blk with EVENT_IDX: it kicks
 * only when avail_event asks for it, and sleeps for an interrupt with
 * used_event set to the next completion it waits for.
 *
 * Each (rw, qd) row runs in HVIO_BENCH_SLICES turns (default 3) of the
 * fake guest and the baseline, seconds / slices each, and sums them: the
 * VM's speed drifts under TCG, and a ratio of one run of each taken
 * seconds apart measured that drift as much as hvio.
 *
 * Prints one JSON object per line per (rw, qd), e.g.
 *   {"bench":"blk","arch":"x86_64","rw":"randread","bs":4096,"qd":32,
 *    "iops":...,"base_iops":...,"ratio":...,"kicks_per_req":...,
 *    "irqs_per_req":...}
 * Then the "direct" rows: randread QD1 and QD32 through a second daemon
 * whose device is "direct": true on a memory-backed null_blk (O_DIRECT
 * into zone RAM), against plain io_uring O_DIRECT on the same device,
 *   {"bench":"blk","direct":true,"backing":"null_blk",...,"ram_mode":"devmap",
 *    "fallbacks":0,"page_cache_kb":...}
 * with the daemon's count of I/Os that fell back to buffered and the growth
 * of root's page cache (Cached + Buffers) over the row's hvio turns.
 * and, for the VM runner, a kselftest totals line: each run is "ok" when
 * every request completed with status 0 and the data read matched.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>

#include "fakeguest.h"
#include "perfrec.h"

#define IMG		"/tmp/bench.img"
#define CFG		"/tmp/bench.json"
#define SOCK		"/tmp/bench.sock"
#define IMG_SIZE	(64ULL << 20)
#define BS		4096
#define QSIZE		512	/* 3 descriptors per request at QD 128 */
#define ZONE		7
#define GPA		0x80000000ULL
#define ZONE_SIZE	(16ULL << 20)
#define MMIO		0x0a000000ULL
#define IRQ		33
#define DATA		(GPA + (1ULL << 20))	/* QSIZE * BS data buffers */
#define HDRS		(GPA + (4ULL << 20))	/* headers + status bytes */

#define DZONE		8	/* the direct rows' zone, after ZONE's RAM */
#define DCFG		"/tmp/bench-direct.json"
#define DSOCK		"/tmp/bench-direct.sock"
#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#endif

static double seconds = 3.0;
/* HVIO_BENCH_SLICES: turns hvio and the baseline take per row */
static unsigned int slices = 3;
static pid_t daemon_pid;
/* HVIO_BENCH_POLL_US: the device's poll_us; -1: the daemon's default */
static int poll_us = -1;
static char poll_key[32];
/* HVIO_BENCH_CPU: the vCPU guest and daemon are pinned to; -1: none */
static int bench_cpu = -1;
/*
 * HVIO_BENCH_GUEST_POLL=1: the fake guest polls its used ring instead of
 * sleeping for an interrupt (used_event held out of reach, as a Linux
 * guest's virtio_blk poll queues with io_uring IOPOLL do on a zone's
 * dedicated CPU): the rows then show the device path without the
 * completion interrupt's hand-off.  "guest_poll" in the JSON lines.
 */
static bool guest_poll;

/*
 * HVIO_BENCH_PERF=1 (make profile): `perf record -e cpu-clock -g` of the
 * whole VM while the guest runs (TCG has no PMU, so cpu-clock), then the
 * top symbols of the VM, of the daemon's queue thread and of the fake
 * guest, each `perf report --stdio --no-children`.  The figures of a
 * profiled row are slowed by the sampling; compare them with each other,
 * not with an unprofiled run.
 */
static bool perf_on;

/*
 * The tables of the hvio run (@reqs requests): -n gives sample counts, at
 * perf's default 4000 Hz per CPU, so samples / requests compare with the
 * baseline's.
 */
static void perf_print(const char *rw, unsigned int qd, uint64_t reqs,
		       int zone)
{
	char comm[32];

	printf("# perf: hvio %s%s qd %u, %" PRIu64 " requests, clocksource %s\n",
	       zone == ZONE ? "" : "direct ", rw, qd, reqs, pr_clocksource());
	/* daemon_threads.cc names the queue thread hvio-z<zone>d<dev>q<q> */
	snprintf(comm, sizeof(comm), " hvio-z%dd0q0 ", zone);
	pr_thread_tables("daemon queue thread", comm, "fake guest",
			 " hvio_blkbench ");
	/* who calls the top entries (not filtered by thread: perfrec.c) */
	pr_table("call chains (callee first) of entries >= 2%",
		   "-g graph,0.5,callee --sort comm,sym --percent-limit 2", NULL,
		   400);
	pr_done();
	fflush(stdout);
}

/* The baseline's table: plain io_uring on the same file, @reqs requests. */
static void perf_print_base(unsigned int qd, double reqs)
{
	printf("# perf: baseline qd %u, %.0f requests\n", qd, reqs);
	pr_table("baseline, whole VM", "-n -g none --sort comm,dso,sym", NULL,
		   20);
	pr_done();
	fflush(stdout);
}

/* CPU seconds (user + system) a process has used so far. */
static double cpu_seconds(pid_t pid)
{
	unsigned long ut = 0, st = 0;
	char path[64], buf[1024], *p;
	FILE *f;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/stat");
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	p = strrchr(buf, ')');
	/* fields after "comm)": state is 3rd, utime 14th, stime 15th */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			 &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * Image content: every 8-byte word holds its own byte offset.  Then the
 * image is read twice: the second read of a page cache page moves it to
 * the active list (folio_mark_accessed()), a cost each page pays once.
 * Without that, the first rows' hvio turns, which run before their
 * baseline's, paid it for the whole image and the baseline never did.
 */
static int make_image(void)
{
	static uint64_t buf[1 << 16];
	uint64_t off = 0;
	int fd = open(IMG, O_RDWR | O_CREAT | O_TRUNC, 0600);
	int pass, ret = 0;
	size_t i;

	if (fd < 0)
		return -errno;
	while (off < IMG_SIZE && !ret) {
		for (i = 0; i < sizeof(buf) / 8; i++)
			buf[i] = off + i * 8;
		if (write(fd, buf, sizeof(buf)) != sizeof(buf))
			ret = -EIO;
		off += sizeof(buf);
	}
	for (pass = 0; pass < 2 && !ret; pass++)
		for (off = 0; off < IMG_SIZE && !ret; off += sizeof(buf))
			if (pread(fd, buf, sizeof(buf), off) != sizeof(buf))
				ret = -EIO;
	close(fd);
	return ret;
}

/* ---- the daemon ---------------------------------------------------- */

/*
 * `hvio run` on zone `zone` (RAM at ram_off in sim_ram) with one blk device
 * on img, "direct" as given, status socket sock (NULL: the default).
 */
static pid_t daemon_start(const struct fg *fg, const char *cfg, int zone,
			  uint64_t ram_off, const char *img, bool direct,
			  const char *sock)
{
	char line[256];
	FILE *f = fopen(cfg, "w");
	int pfd[2];
	pid_t pid;
	FILE *out;

	if (!f)
		return -1;
	fprintf(f, "{\"zones\":[{\"id\":%d,\"memory_region\":[{\"zone0_ipa\":\"%#llx\",\"zonex_ipa\":\"%#llx\",\"size\":\"%#llx\"}],"
		"\"devices\":[{\"type\":\"blk\",\"addr\":\"%#llx\",\"len\":\"0x200\",\"irq\":%d,\"img\":\"%s\",\"status\":\"enable\",\"queue_size\":%d,\"direct\":%s%s}]}]}\n",
		zone, (unsigned long long)(fg->info.ram_base + ram_off),
		(unsigned long long)GPA, (unsigned long long)ZONE_SIZE,
		(unsigned long long)MMIO, IRQ, img, QSIZE,
		direct ? "true" : "false", poll_key);
	fclose(f);
	if (pipe(pfd))
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		if (sock)
			execl("/bin/hvio", "hvio", "run", cfg, "--socket", sock,
			      (char *)NULL);
		else
			execl("/bin/hvio", "hvio", "run", cfg, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	out = fdopen(pfd[0], "r");
	while (out && fgets(line, sizeof(line), out))
		if (!strncmp(line, "hvio: ready", 11))
			return pid;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static int daemon_stop(pid_t pid)
{
	int st = 0;

	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* ---- the guest driver ---------------------------------------------- */

struct guest {
	struct fg *fg;
	struct fg_zone z;
	struct fg_vdev v;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t *used_event, *avail_event;
	uint16_t avail_idx, last_used;
	uint64_t sector[QSIZE];
	uint64_t kicks, irqs, done, bad;
};

static void *gp(struct guest *g, uint64_t gpa)
{
	return fg_zone_ptr(g->fg, &g->z, gpa);
}

/* Descriptors 3*slot .. 3*slot+2 serve slot: header, data, status. */
static void post(struct guest *g, unsigned int slot, bool write,
		 uint64_t *seed)
{
	uint16_t d = 3 * slot;
	struct virtio_blk_outhdr *h = gp(g, HDRS + 32 * slot);
	uint64_t sector = (rnd(seed) % (IMG_SIZE / BS)) * (BS / 512);

	h->type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	h->ioprio = 0;
	h->sector = sector;
	g->sector[slot] = sector;
	if (write) {
		uint64_t *p = gp(g, DATA + (uint64_t)slot * BS);
		unsigned int i;

		for (i = 0; i < BS / 8; i++)
			p[i] = sector * 512 + i * 8;
	}
	*(uint8_t *)gp(g, HDRS + 32 * slot + 16) = 0xff;
	g->desc[d] = (struct vring_desc){ HDRS + 32 * slot, 16,
					  VRING_DESC_F_NEXT, d + 1 };
	g->desc[d + 1] = (struct vring_desc){
		DATA + (uint64_t)slot * BS, BS,
		VRING_DESC_F_NEXT | (write ? 0 : VRING_DESC_F_WRITE), d + 2 };
	g->desc[d + 2] = (struct vring_desc){ HDRS + 32 * slot + 16, 1,
					      VRING_DESC_F_WRITE, 0 };
	g->avail->ring[g->avail_idx % QSIZE] = d;
	g->avail_idx++;
}

/* Publish new avail entries and kick only if the device asked. */
static void publish(struct guest *g, uint16_t old)
{
	__atomic_store_n(&g->avail->idx, g->avail_idx, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vring_need_event(__atomic_load_n(g->avail_event, __ATOMIC_ACQUIRE),
			     g->avail_idx, old)) {
		fg_notify(g->fg, 0, g->z.id, MMIO + VIRTIO_MMIO_QUEUE_NOTIFY, 0);
		g->kicks++;
	}
}

static bool check(struct guest *g, unsigned int slot, bool write)
{
	const uint64_t *p = gp(g, DATA + (uint64_t)slot * BS);
	uint8_t status = *(uint8_t *)gp(g, HDRS + 32 * slot + 16);

	if (status != VIRTIO_BLK_S_OK)
		return false;
	/* Writes store the offset pattern too, so reads always verify. */
	return write || (p[0] == g->sector[slot] * 512 &&
			 p[BS / 8 - 1] == g->sector[slot] * 512 + BS - 8);
}

static inline void cpu_pause(void)
{
#if defined(__x86_64__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

/* Run qd requests for `seconds`; returns completed requests/s. */
static double guest_run(struct guest *g, unsigned int qd, bool write)
{
	struct hvio_device_res res[32];
	uint64_t seed = 0x9e3779b97f4a7c15ULL ^ qd;
	double t0, t1, idle_since = 0;
	unsigned int i;
	uint16_t old;

	if (qd > QSIZE / 3)
		return -1;
	g->kicks = g->irqs = g->done = g->bad = 0;
	old = g->avail_idx;
	for (i = 0; i < qd; i++)
		post(g, i, write, &seed);
	publish(g, old);
	t0 = now();
	t1 = t0 + seconds;
	for (;;) {
		uint16_t uidx = __atomic_load_n(&g->used->idx, __ATOMIC_ACQUIRE);
		bool stop = now() >= t1;

		if (uidx == g->last_used && guest_poll) {
			/*
			 * No interrupt: used_event beyond what can come.  The
			 * clock (an emulated HPET read on x86_64 under TCG)
			 * only every few thousand looks at the ring.
			 */
			unsigned int spin;

			__atomic_store_n(g->used_event,
					 (uint16_t)(g->last_used + 0x7fff),
					 __ATOMIC_RELEASE);
			for (spin = 0; spin < 4096 &&
			     __atomic_load_n(&g->used->idx, __ATOMIC_ACQUIRE) ==
			     g->last_used; spin++)
				cpu_pause();
			if (spin < 4096) {
				idle_since = 0;
			} else if (!idle_since) {
				idle_since = now();
			} else if (now() - idle_since > 2.0) {
				fprintf(stderr, "# no completion for 2 s: used %u avail %u\n",
					g->last_used, g->avail_idx);
				return -1;	/* lost: the run is broken */
			}
			continue;
		}
		if (uidx == g->last_used) {
			/* Sleep for an interrupt at the next completion. */
			__atomic_store_n(g->used_event, g->last_used,
					 __ATOMIC_RELEASE);
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (__atomic_load_n(&g->used->idx, __ATOMIC_ACQUIRE) !=
			    g->last_used)
				continue;
			if (!fg_wait_finish(g->fg, 2000)) {
				fprintf(stderr, "# no interrupt for 2 s: used %u avail %u\n",
					g->last_used, g->avail_idx);
				return -1;	/* lost: the run is broken */
			}
			g->irqs += fg_drain_res(g->fg, res, 32);
			continue;
		}
		old = g->avail_idx;
		while (g->last_used != uidx) {
			struct vring_used_elem e =
				g->used->ring[g->last_used % QSIZE];
			unsigned int slot = e.id / 3;

			g->last_used++;
			g->done++;
			if (!check(g, slot, write))
				g->bad++;
			if (!stop)
				post(g, slot, write, &seed);
		}
		if (g->avail_idx != old)
			publish(g, old);
		if (stop && (uint16_t)(g->avail_idx - g->last_used) == 0)
			break;
	}
	return g->done / (now() - t0);
}

/* The guest driver's probe of the blk device at MMIO of zone (RAM at ram_off). */
static int guest_setup(struct guest *g, struct fg *fg, uint32_t zone,
		       uint64_t ram_off)
{
	struct fg_vq *vq;

	memset(g, 0, sizeof(*g));
	g->fg = fg;
	g->z = (struct fg_zone){ .id = zone, .zonex_ipa = GPA,
				 .ram_off = ram_off, .size = ZONE_SIZE };
	fg_vdev_init(&g->v, fg, 0, zone, MMIO);
	if (fg_vdev_probe(&g->v, FG_F_VERSION_1 |
			  (1ULL << VIRTIO_RING_F_EVENT_IDX) |
			  (1ULL << VIRTIO_BLK_F_FLUSH), 1, QSIZE, GPA))
		return -1;
	vq = &g->v.vq[0];
	g->desc = gp(g, vq->desc);
	g->avail = gp(g, vq->driver);
	g->used = gp(g, vq->device);
	g->used_event = (uint16_t *)&g->avail->ring[QSIZE];
	g->avail_event = (uint16_t *)&g->used->ring[QSIZE];
	fg_flush_res(fg);
	return 0;
}

/*
 * The daemon's own counters (`hvio status`), summed over its queues:
 * syscalls (io_uring_enter + ioctls), wakeups, and QUEUE_RUN ioctls.  A
 * daemon that does not count a key reports it as -1.
 */
struct dcount {
	double syscalls, wakeups, runs, poll_cpu_us;
};

static double sum_key(const char *j, const char *key)
{
	char pat[32];
	double sum = -1;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	while ((j = strstr(j, pat))) {
		j += strlen(pat);
		sum = (sum < 0 ? 0 : sum) + strtod(j, NULL);
	}
	return sum;
}

static struct dcount daemon_counts(const char *sock)
{
	static char buf[1 << 16];
	struct dcount d = { -1, -1, -1, -1 };

	if (fg_daemon_status(sock, buf, sizeof(buf)))
		return d;
	d.syscalls = sum_key(buf, "syscalls");
	d.wakeups = sum_key(buf, "wakeups");
	d.runs = sum_key(buf, "runs");
	/* the module's avail-ring poll after commits, in us */
	d.poll_cpu_us = sum_key(buf, "poll_ns");
	if (d.poll_cpu_us >= 0)
		d.poll_cpu_us /= 1000;
	return d;
}

/* Per request between two readings; -1 when the daemon does not count it. */
static double per_req(double a, double b, uint64_t n)
{
	return a < 0 || b < 0 ? -1 : (b - a) / n;
}

/* ---- the baseline: plain io_uring on the same file ----------------- */

static void base_prep(struct io_uring *ring, int fd, char *buf, bool write,
		      uint64_t *seed, unsigned int slot)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	uint64_t off = (rnd(seed) % (IMG_SIZE / BS)) * BS;

	if (write)
		io_uring_prep_write(sqe, fd, buf, BS, off);
	else
		io_uring_prep_read(sqe, fd, buf, BS, off);
	io_uring_sqe_set_data64(sqe, slot);
}

static double baseline(const char *path, int oflags, unsigned int qd,
		       bool write)
{
	static char bufs[QSIZE][BS] __attribute__((aligned(4096)));
	uint64_t seed = 0x9e3779b97f4a7c15ULL ^ qd, done = 0;
	struct io_uring ring;
	struct io_uring_cqe *cqe;
	double t0, t1;
	unsigned int i, inflight = 0;
	int fd = open(path, O_RDWR | oflags);

	if (fd < 0 || io_uring_queue_init(QSIZE, &ring, 0))
		return -1;
	t0 = now();
	t1 = t0 + seconds;
	for (i = 0; i < qd; i++) {
		base_prep(&ring, fd, bufs[i], write, &seed, i);
		inflight++;
	}
	io_uring_submit(&ring);
	while (inflight) {
		bool stop = now() >= t1;

		if (io_uring_wait_cqe(&ring, &cqe))
			break;
		do {
			i = io_uring_cqe_get_data64(cqe);
			io_uring_cqe_seen(&ring, cqe);
			inflight--;
			done++;
			if (!stop) {
				base_prep(&ring, fd, bufs[i], write, &seed, i);
				inflight++;
			}
		} while (!io_uring_peek_cqe(&ring, &cqe));
		io_uring_submit(&ring);
	}
	io_uring_queue_exit(&ring);
	close(fd);
	return done / (now() - t0);
}

/* One row's sums over its slices. */
struct row {
	uint64_t done, kicks, irqs, bad, bdone;
	double gsec, bsec, gcpu, dcpu, bcpu;
	long long fallbacks, cache_kb;	/* direct rows: over the hvio turns */
	bool ok;
};

static long long direct_status(char *mode, size_t len);

/*
 * A row in slices, hvio and the baseline (plain io_uring on base_path)
 * taking turns: this VM's speed drifts by up to 2x within a minute (TCG
 * on a shared host), and a ratio of two runs seconds apart would measure
 * the drift.  With mode, the direct daemon's fallbacks and root's page
 * cache growth are summed over the hvio turns.
 */
static void run_row(struct guest *g, pid_t dpid, unsigned int qd, bool write,
		    const char *base_path, int base_oflags, char *mode,
		    size_t mode_len, struct row *r)
{
	double total = seconds;
	unsigned int sl;

	memset(r, 0, sizeof(*r));
	r->ok = true;
	seconds = total / slices;
	for (sl = 0; sl < slices && r->ok; sl++) {
		long long f0 = mode ? direct_status(mode, mode_len) : 0;
		long long k0 = mode ? fg_page_cache_kb() : 0, k1, f1;
		pid_t perf = perf_on ? pr_start() : 0;
		double c0 = cpu_seconds(0), d0 = cpu_seconds(dpid);
		double iops = guest_run(g, qd, write);
		double c1 = cpu_seconds(0), d1 = cpu_seconds(dpid);
		double b, c2;

		pr_stop(perf);
		if (perf > 0)
			perf_print(write ? "randwrite" : "randread", qd, g->done,
				   mode ? DZONE : ZONE);
		k1 = mode ? fg_page_cache_kb() : 0;
		f1 = mode ? direct_status(mode, mode_len) : 0;
		perf = perf_on ? pr_start() : 0;
		b = baseline(base_path, base_oflags, qd, write);
		pr_stop(perf);
		if (perf > 0)
			perf_print_base(qd, b * seconds);
		c2 = cpu_seconds(0);
		r->ok = iops > 0 && b > 0 && f0 >= 0 && f1 >= 0;
		if (!r->ok)
			break;
		r->done += g->done, r->kicks += g->kicks, r->irqs += g->irqs;
		r->bad += g->bad;
		r->gsec += g->done / iops;
		r->bsec += seconds;
		r->bdone += (uint64_t)(b * seconds);
		r->gcpu += c1 - c0, r->dcpu += d1 - d0, r->bcpu += c2 - c1;
		r->fallbacks += f1 - f0, r->cache_kb += k1 - k0;
	}
	seconds = total;
	r->ok = r->ok && !r->bad;
}

static double row_iops(const struct row *r)
{
	return r->gsec > 0 ? r->done / r->gsec : -1;
}

static double row_base(const struct row *r)
{
	return r->bsec > 0 ? r->bdone / r->bsec : -1;
}

/*
 * A row's JSON line and its TAP line.  @extra holds the direct rows'
 * fields (each ending in a comma), "" for the others; @k0 and @k1 are the
 * daemon's counters around the row.
 */
static bool row_print(const char *arch, const char *rw, bool direct,
		      unsigned int qd, const struct row *r, struct dcount k0,
		      struct dcount k1, const char *extra, unsigned int *test)
{
	double iops = row_iops(r), base = row_base(r);
	uint64_t n = r->done ? r->done : 1;

	/*
	 * Where the time goes: CPU microseconds per request of the fake
	 * guest (this process: ring handling, MMIO traps through the
	 * bridge, interrupt waits), of the daemon (its io_uring I/O and the
	 * module's queue engine in its syscalls) and of the baseline loop;
	 * poll_cpu_us: the part of the daemon's that polled for the guest.
	 */
	printf("{\"bench\":\"blk\",%s\"arch\":\"%s\",\"rw\":\"%s\",\"bs\":%d,\"qd\":%u,\"iops\":%.0f,\"base_iops\":%.0f,\"ratio\":%.3f,\"kicks_per_req\":%.4f,\"irqs_per_req\":%.4f,\"guest_cpu_us\":%.2f,\"daemon_cpu_us\":%.2f,\"base_cpu_us\":%.2f,\"syscalls_per_req\":%.3f,\"wakeups_per_req\":%.3f,\"runs_per_req\":%.3f,\"poll_cpu_us\":%.2f,%s\"poll_us\":%d,\"cpu\":%d,\"guest_poll\":%s,\"slices\":%u}\n",
	       direct ? "\"direct\":true,\"backing\":\"null_blk\"," : "",
	       arch, rw, BS, qd, iops, base, base > 0 ? iops / base : 0,
	       (double)r->kicks / n, (double)r->irqs / n, r->gcpu * 1e6 / n,
	       r->dcpu * 1e6 / n, r->bdone ? r->bcpu * 1e6 / r->bdone : 0,
	       per_req(k0.syscalls, k1.syscalls, n),
	       per_req(k0.wakeups, k1.wakeups, n), per_req(k0.runs, k1.runs, n),
	       per_req(k0.poll_cpu_us, k1.poll_cpu_us, n), extra, poll_us,
	       bench_cpu, guest_poll ? "true" : "false", slices);
	printf("%s %u blk %s%s qd %u (%" PRIu64 " requests, %" PRIu64 " bad)\n",
	       r->ok ? "ok" : "not ok", ++*test, direct ? "direct " : "", rw,
	       qd, r->done, r->bad);
	fflush(stdout);
	return r->ok;
}

/* ---- direct: O_DIRECT on null_blk, zero-copy into zone RAM ---------- */

/* The direct rows' queue depths unless HVIO_BENCH_QDS picks others. */
static const unsigned int direct_qds[] = { 1, 32 };

/* Fill the device with the offset pattern of make_image(), O_DIRECT. */
static int fill_pattern(const char *dev)
{
	static uint64_t buf[1 << 16] __attribute__((aligned(4096)));
	int fd = open(dev, O_WRONLY | O_DIRECT);
	uint64_t off;
	size_t i;

	if (fd < 0)
		return -errno;
	for (off = 0; off < IMG_SIZE; off += sizeof(buf)) {
		for (i = 0; i < sizeof(buf) / 8; i++)
			buf[i] = off + i * 8;
		if (pwrite(fd, buf, sizeof(buf), off) != sizeof(buf)) {
			close(fd);
			return -EIO;
		}
	}
	close(fd);
	return 0;
}

/*
 * The direct daemon's fallback count ("total" of direct_fallbacks) and
 * the mode of its zone RAM, from `hvio status --json`.
 */
static long long direct_status(char *mode, size_t len)
{
	static char json[65536];
	const char *f, *v;

	snprintf(mode, len, "?");
	if (fg_daemon_status(DSOCK, json, sizeof(json)))
		return -1;
	v = fg_json_val(json, "ram_modes");
	if (v && *v == '[') {
		v = strchr(v, '"');
		if (v)
			snprintf(mode, len, "%.*s", (int)strcspn(v + 1, "\""), v + 1);
	}
	f = fg_json_val(json, "direct_fallbacks");
	v = fg_json_val(f, "total");
	return v ? strtoll(v, NULL, 10) : -1;
}

/*
 * randread through a second daemon whose device is "direct": true on a
 * memory-backed null_blk (zone DZONE, RAM after ZONE's), against plain
 * io_uring O_DIRECT on the same device.  Returns the failed rows.
 */
static unsigned int direct_rows(struct fg *fg, const char *arch,
				unsigned int *test, const unsigned int *qds,
				unsigned int nqd)
{
	char dir[96] = "", dev[48], mode[16];
	unsigned int i, failed = 0;
	struct guest g;
	pid_t pid = -1;
	int r;

	r = fg_nullb_create("benchd", IMG_SIZE >> 20, dir, sizeof(dir), dev,
			    sizeof(dev));
	if (!r)
		r = fill_pattern(dev);
	if (r) {
		for (i = 0; i < nqd; i++)
			printf("ok %u blk direct randread qd %u # SKIP null_blk: %s\n",
			       ++*test, qds[i], strerror(-r));
		fg_nullb_remove(dir);
		return 0;
	}
	pid = daemon_start(fg, DCFG, DZONE, ZONE_SIZE, dev, true, DSOCK);
	if (pid < 0 || guest_setup(&g, fg, DZONE, ZONE_SIZE)) {
		printf("# direct: %s\n", pid < 0 ? "hvio run did not become ready" : g.v.err);
		for (i = 0; i < nqd; i++)
			printf("not ok %u blk direct randread qd %u\n", ++*test,
			       qds[i]);
		failed = nqd;
		goto out;
	}
	for (i = 0; i < nqd; i++) {
		struct dcount k0 = daemon_counts(DSOCK);
		char extra[128];
		struct row r;

		run_row(&g, pid, qds[i], false, dev, O_DIRECT, mode,
			sizeof(mode), &r);
		snprintf(extra, sizeof(extra),
			 "\"ram_mode\":\"%s\",\"fallbacks\":%lld,\"page_cache_kb\":%lld,",
			 mode, r.fallbacks, r.cache_kb);
		failed += !row_print(arch, "randread", true, qds[i], &r, k0,
				     daemon_counts(DSOCK), extra, test);
		/*
		 * Zone RAM without struct pages (pfnmap: arm64's Debian 6.1
		 * with the default sim window) takes the buffered fallback:
		 * such a row is no measure of the zero-copy path.
		 */
		if (r.fallbacks)
			printf("# direct qd %u: %lld of %llu requests fell back to buffered I/O (zone RAM %s): the row measures the fallback, not zero-copy\n",
			       qds[i], r.fallbacks,
			       (unsigned long long)r.done, mode);
	}
out:
	if (pid > 0 && daemon_stop(pid)) {
		printf("# the direct hvio run did not exit 0 on SIGTERM\n");
		failed++;
	}
	fg_nullb_remove(dir);
	unlink(DCFG);
	return failed;
}

/*
 * HVIO_BENCH_QDS=1,32 (default 1,32,128; the direct rows 1,32),
 * HVIO_BENCH_RW=randread|randwrite (default both) and HVIO_BENCH_DIRECT=0
 * (skip the direct rows) or =only (nothing but the direct rows) pick the
 * rows, for make profile.
 */
static unsigned int pick_qds(unsigned int *qds, unsigned int max)
{
	const char *e = getenv("HVIO_BENCH_QDS");
	unsigned int n = 0;
	char *end;

	if (!e || !*e) {
		qds[0] = 1, qds[1] = 32, qds[2] = 128;
		return 3;
	}
	while (*e && n < max) {
		unsigned long v = strtoul(e, &end, 10);

		if (end == e)
			break;
		if (v)
			qds[n++] = v;
		e = *end == ',' ? end + 1 : end;
	}
	return n;
}

int main(void)
{
	const char *rw = getenv("HVIO_BENCH_RW");
	const char *de = getenv("HVIO_BENCH_DIRECT");
	const char *qe = getenv("HVIO_BENCH_QDS");
	bool direct = !de || strcmp(de, "0");
	bool only = de && !strcmp(de, "only");
	unsigned int qds[8], nqd = pick_qds(qds, ARRAY_SIZE(qds));
	const unsigned int *dqds = qe && *qe ? qds : direct_qds;
	unsigned int ndqd = qe && *qe ? nqd : ARRAY_SIZE(direct_qds);
	unsigned int w0 = rw && !strcmp(rw, "randwrite");
	unsigned int w1 = rw && !strcmp(rw, "randread") ? 1 : 2;
	struct utsname u;
	struct fg fg;
	struct guest g;
	unsigned int i, w, test = 0, failed = 0;
	pid_t pid;
	int rc;

	if (getenv("HVIO_BENCH_SECONDS"))
		seconds = atof(getenv("HVIO_BENCH_SECONDS"));
	if (getenv("HVIO_BENCH_POLL_US") && *getenv("HVIO_BENCH_POLL_US")) {
		poll_us = atoi(getenv("HVIO_BENCH_POLL_US"));
		snprintf(poll_key, sizeof(poll_key), ",\"poll_us\":%d", poll_us);
	}
	perf_on = getenv("HVIO_BENCH_PERF") && !strcmp(getenv("HVIO_BENCH_PERF"), "1");
	if (getenv("HVIO_BENCH_SLICES") && atoi(getenv("HVIO_BENCH_SLICES")) > 0)
		slices = atoi(getenv("HVIO_BENCH_SLICES"));
	/* One recording per run: the profile tables are per row. */
	if (perf_on)
		slices = 1;
	guest_poll = getenv("HVIO_BENCH_GUEST_POLL") &&
		     !strcmp(getenv("HVIO_BENCH_GUEST_POLL"), "1");
	/*
	 * HVIO_BENCH_CPU=N: this program, and so the daemon it starts, on
	 * vCPU N only (an experiment: guest and daemon hand off without
	 * cross-vCPU wakeups; the baseline runs there too).
	 */
	if (getenv("HVIO_BENCH_CPU") && *getenv("HVIO_BENCH_CPU")) {
		cpu_set_t set;

		bench_cpu = atoi(getenv("HVIO_BENCH_CPU"));
		CPU_ZERO(&set);
		CPU_SET(bench_cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set)) {
			printf("# HVIO_BENCH_CPU: %s\n", strerror(errno));
			bench_cpu = -1;
		}
	}
	uname(&u);
	if (only)
		w1 = w0;
	printf("TAP version 13\n1..%u\n",
	       (w1 - w0) * nqd + (direct ? ndqd : 0));
	if (fg_open(&fg)) {
		printf("Bail out! setup: %s\n", fg.err);
		return 1;
	}
	if (only) {
		failed = direct_rows(&fg, u.machine, &test, dqds, ndqd);
		goto out;
	}
	rc = make_image();
	if (rc) {
		printf("Bail out! setup: %s: %s\n", IMG, strerror(-rc));
		return 1;
	}
	pid = daemon_start(&fg, CFG, ZONE, 0, IMG, false, SOCK);
	daemon_pid = pid;
	if (pid < 0) {
		printf("Bail out! hvio run did not become ready\n");
		return 1;
	}
	if (guest_setup(&g, &fg, ZONE, 0)) {
		printf("Bail out! probe: %s\n", g.v.err);
		return 1;
	}

	for (w = w0; w < w1; w++) {
		for (i = 0; i < nqd; i++) {
			struct dcount k0 = daemon_counts(SOCK);
			struct row r;

			run_row(&g, daemon_pid, qds[i], w, IMG, 0, NULL, 0, &r);
			failed += !row_print(u.machine,
					     w ? "randwrite" : "randread",
					     false, qds[i], &r, k0,
					     daemon_counts(SOCK), "", &test);
		}
	}
	if (direct)
		failed += direct_rows(&fg, u.machine, &test, dqds, ndqd);
	if (daemon_stop(pid)) {
		printf("# hvio run did not exit 0 on SIGTERM\n");
		failed++;
	}
	unlink(IMG);
	unlink(CFG);
out:
	fg_close(&fg);
	printf("# Totals: pass:%u fail:%u xfail:0 xpass:0 skip:0 error:0\n",
	       test - failed, failed);
	return failed ? 1 : 0;
}
