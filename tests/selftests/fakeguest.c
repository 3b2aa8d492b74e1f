// SPDX-License-Identifier: GPL-2.0
/*
 * fakeguest: hvisor's side of the virtio bridge and a zone's virtio-mmio
 * driver, in userspace, over /dev/hvio-sim.  See fakeguest.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fakeguest.h"

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif

#define RING_MASK (HVIO_BRIDGE_MAX_REQ - 1)

/* Several threads may push (like several vCPUs trapping at once). */
static pthread_mutex_t fg_push_lock = PTHREAD_MUTEX_INITIALIZER;

static void fg_seterr(struct fg *fg, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void fg_seterr(struct fg *fg, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(fg->err, sizeof(fg->err), fmt, ap);
	va_end(ap);
}

uint64_t fg_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void fg_sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---- open / close ---------------------------------------------------- */

int fg_open(struct fg *fg)
{
	long page = sysconf(_SC_PAGESIZE);
	int32_t efd;
	void *p;
	int ret;

	memset(fg, 0, sizeof(*fg));
	fg->sim_fd = fg->ctl_fd = fg->finish_fd = -1;
	fg->timeout_ms = FG_TIMEOUT_MS;

	fg->sim_fd = open(FG_DEV_SIM, O_RDWR | O_CLOEXEC);
	if (fg->sim_fd < 0) {
		ret = -errno;
		if (access(FG_DEV_CTL, F_OK) != 0)
			fg_seterr(fg, "%s: %s (hvio.ko not loaded)", FG_DEV_SIM,
				  strerror(-ret));
		else
			fg_seterr(fg, "%s: %s (hvio.ko not loaded with hypervisor=sim?)",
				  FG_DEV_SIM, strerror(-ret));
		return ret;
	}
	if (ioctl(fg->sim_fd, HVIO_SIM_GET_INFO, &fg->info)) {
		ret = -errno;
		fg_seterr(fg, "HVIO_SIM_GET_INFO: %s", strerror(errno));
		goto fail;
	}
	fg->br_map_len = page;
	p = mmap(NULL, fg->br_map_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		 fg->sim_fd, HVIO_SIM_MMAP_BRIDGE);
	if (p == MAP_FAILED) {
		ret = -errno;
		fg_seterr(fg, "mmap bridge: %s", strerror(errno));
		goto fail;
	}
	fg->br = p;
	if (fg->info.ram_size) {
		p = mmap(NULL, fg->info.ram_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, fg->sim_fd, HVIO_SIM_MMAP_RAM);
		if (p == MAP_FAILED) {
			ret = -errno;
			fg_seterr(fg, "mmap sim_ram (%llu bytes): %s",
				  (unsigned long long)fg->info.ram_size,
				  strerror(errno));
			goto fail;
		}
		fg->ram = p;
	}
	fg->ctl_fd = open(FG_DEV_CTL, O_RDWR | O_CLOEXEC);
	if (fg->ctl_fd < 0) {
		ret = -errno;
		fg_seterr(fg, "%s: %s", FG_DEV_CTL, strerror(errno));
		goto fail;
	}
	fg->finish_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fg->finish_fd < 0) {
		ret = -errno;
		fg_seterr(fg, "eventfd: %s", strerror(errno));
		goto fail;
	}
	efd = fg->finish_fd;
	if (ioctl(fg->sim_fd, HVIO_SIM_SET_FINISH_FD, &efd)) {
		ret = -errno;
		fg_seterr(fg, "HVIO_SIM_SET_FINISH_FD: %s", strerror(errno));
		goto fail;
	}

	/* Hygiene: nothing a previous test left behind may leak into this one. */
	if (__atomic_load_n(&fg->br->req_front, __ATOMIC_ACQUIRE) !=
	    __atomic_load_n(&fg->br->req_rear, __ATOMIC_ACQUIRE)) {
		fg_raise(fg);
		fg_wait_consumed(fg, 1000);
	}
	fg->stale_res = fg_drain_res(fg, NULL, 0);
	fg_flush_res(fg);
	fg->err[0] = 0;
	return 0;
fail:
	fg_close(fg);
	return ret;
}

void fg_close(struct fg *fg)
{
	int32_t none = -1;

	if (fg->sim_fd >= 0 && fg->finish_fd >= 0)
		ioctl(fg->sim_fd, HVIO_SIM_SET_FINISH_FD, &none);
	if (fg->finish_fd >= 0)
		close(fg->finish_fd);
	if (fg->ctl_fd >= 0)
		close(fg->ctl_fd);
	if (fg->ram)
		munmap(fg->ram, fg->info.ram_size);
	if (fg->br)
		munmap(fg->br, fg->br_map_len);
	if (fg->sim_fd >= 0)
		close(fg->sim_fd);
	fg->sim_fd = fg->ctl_fd = fg->finish_fd = -1;
	fg->ram = NULL;
	fg->br = NULL;
}

/* ---- hvisor's producer side ------------------------------------------ */

int fg_raise(struct fg *fg)
{
	if (ioctl(fg->sim_fd, HVIO_SIM_RAISE_IRQ, 0)) {
		int ret = -errno;

		fg_seterr(fg, "HVIO_SIM_RAISE_IRQ: %s", strerror(errno));
		return ret;
	}
	__atomic_add_fetch(&fg->raises, 1, __ATOMIC_RELAXED);
	return 0;
}

int fg_push(struct fg *fg, const struct hvio_device_req *req,
	    enum fg_raise raise, uint64_t *flag_before)
{
	struct hvio_bridge *br = fg->br;
	uint64_t deadline = fg_now_ms() + fg->timeout_ms;
	uint32_t rear, front;
	bool do_raise = false;
	unsigned int spins = 0;
	int ret = 0;

	pthread_mutex_lock(&fg_push_lock);
	for (;;) {
		/* We are the only producer: rear is ours. */
		rear = __atomic_load_n(&br->req_rear, __ATOMIC_RELAXED);
		front = __atomic_load_n(&br->req_front, __ATOMIC_ACQUIRE);
		if (rear > RING_MASK || front > RING_MASK) {
			fg_seterr(fg, "bridge indices out of range: req_front %u req_rear %u",
				  front, rear);
			ret = -EPROTO;
			goto out;
		}
		if (((rear + 1) & RING_MASK) != front)
			break;
		/* Full: hvisor waits for the consumer (waking it if asleep). */
		if (raise != FG_RAISE_NEVER &&
		    __atomic_load_n(&br->need_wakeup, __ATOMIC_ACQUIRE) == 1)
			fg_raise(fg);
		if (fg_now_ms() > deadline) {
			fg_seterr(fg, "req_list full for %u ms (front %u rear %u need_wakeup %u)",
				  fg->timeout_ms, front, rear,
				  __atomic_load_n(&br->need_wakeup, __ATOMIC_RELAXED));
			ret = -ETIMEDOUT;
			goto out;
		}
		if (++spins % 64 == 0)
			sched_yield();
		else
			cpu_relax();
	}
	if (flag_before && req->src_cpu < HVIO_BRIDGE_MAX_CPUS)
		*flag_before = __atomic_load_n(&br->cfg_flags[req->src_cpu],
					       __ATOMIC_ACQUIRE);
	br->req_list[rear] = *req;
	__atomic_store_n(&br->req_rear, (rear + 1) & RING_MASK, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	__atomic_add_fetch(&fg->pushes, 1, __ATOMIC_RELAXED);
	do_raise = raise == FG_RAISE_ALWAYS ||
		   (raise == FG_RAISE_IF_NEEDED &&
		    __atomic_load_n(&br->need_wakeup, __ATOMIC_RELAXED) == 1);
	if (do_raise && !fg->raise_unlocked)
		ret = fg_raise(fg);
out:
	pthread_mutex_unlock(&fg_push_lock);
	if (!ret && do_raise && fg->raise_unlocked)
		ret = fg_raise(fg);
	return ret;
}

int fg_wait_ack(struct fg *fg, unsigned int cpu, uint64_t before,
		unsigned int timeout_ms, uint64_t *value)
{
	struct hvio_bridge *br = fg->br;
	uint64_t deadline = fg_now_ms() + timeout_ms;
	unsigned int spins = 0;

	if (cpu >= HVIO_BRIDGE_MAX_CPUS)
		return -EINVAL;
	while (__atomic_load_n(&br->cfg_flags[cpu], __ATOMIC_ACQUIRE) == before) {
		if (++spins % 64 == 0) {
			if (fg_now_ms() > deadline) {
				fg_seterr(fg, "cpu %u: no answer in %u ms (cfg_flags %llu, req_front %u req_rear %u need_wakeup %u)",
					  cpu, timeout_ms,
					  (unsigned long long)before,
					  __atomic_load_n(&br->req_front, __ATOMIC_RELAXED),
					  __atomic_load_n(&br->req_rear, __ATOMIC_RELAXED),
					  __atomic_load_n(&br->need_wakeup, __ATOMIC_RELAXED));
				return -ETIMEDOUT;
			}
			sched_yield();
		} else {
			cpu_relax();
		}
	}
	if (value)
		*value = __atomic_load_n(&br->cfg_values[cpu], __ATOMIC_RELAXED);
	return 0;
}

int fg_wait_consumed(struct fg *fg, unsigned int timeout_ms)
{
	struct hvio_bridge *br = fg->br;
	uint64_t deadline = fg_now_ms() + timeout_ms;

	while (__atomic_load_n(&br->req_front, __ATOMIC_ACQUIRE) !=
	       __atomic_load_n(&br->req_rear, __ATOMIC_ACQUIRE)) {
		if (fg_now_ms() > deadline) {
			fg_seterr(fg, "req_list not consumed in %u ms (front %u rear %u)",
				  timeout_ms,
				  __atomic_load_n(&br->req_front, __ATOMIC_RELAXED),
				  __atomic_load_n(&br->req_rear, __ATOMIC_RELAXED));
			return -ETIMEDOUT;
		}
		sched_yield();
	}
	return 0;
}

int fg_access(struct fg *fg, unsigned int cpu, uint32_t zone, uint64_t addr,
	      unsigned int size, bool is_write, uint64_t wval, uint64_t *rval)
{
	struct hvio_device_req req = {
		.src_cpu = cpu,
		.address = addr,
		.size = size,
		.value = is_write ? wval : 0,
		.src_zone = zone,
		.is_write = is_write,
		.need_interrupt = 0,
	};
	uint64_t before = 0, val = 0;
	int ret;

	if (cpu >= HVIO_BRIDGE_MAX_CPUS) {
		fg_seterr(fg, "fg_access: src_cpu %u cannot be waited for", cpu);
		return -EINVAL;
	}
	if (__atomic_load_n(&fg->dead, __ATOMIC_RELAXED))
		return -ENOLINK;	/* fg->err keeps the first failure */
	ret = fg_push(fg, &req, FG_RAISE_IF_NEEDED, &before);
	if (ret == -ETIMEDOUT)
		__atomic_store_n(&fg->dead, true, __ATOMIC_RELAXED);
	if (ret)
		return ret;
	ret = fg_wait_ack(fg, cpu, before, fg->timeout_ms, &val);
	if (ret) {
		__atomic_store_n(&fg->dead, true, __ATOMIC_RELAXED);
		return ret;
	}
	if (rval)
		*rval = val;
	return 0;
}

static uint64_t width_mask(unsigned int size)
{
	return size >= 8 ? ~0ULL : (1ULL << (size * 8)) - 1;
}

uint64_t fg_read(struct fg *fg, unsigned int cpu, uint32_t zone,
		 uint64_t addr, unsigned int size)
{
	uint64_t v;
	int ret = fg_access(fg, cpu, zone, addr, size, false, 0, &v);

	if (ret) {
		if (__atomic_add_fetch(&fg->errors, 1, __ATOMIC_RELAXED) == 1)
			fprintf(stderr, "# fakeguest: read zone %u addr %#llx size %u: %s\n",
				zone, (unsigned long long)addr, size, fg->err);
		return FG_POISON & width_mask(size);
	}
	return v;
}

void fg_write(struct fg *fg, unsigned int cpu, uint32_t zone, uint64_t addr,
	      unsigned int size, uint64_t val)
{
	int ret = fg_access(fg, cpu, zone, addr, size, true, val, NULL);

	if (ret) {
		if (__atomic_add_fetch(&fg->errors, 1, __ATOMIC_RELAXED) == 1)
			fprintf(stderr, "# fakeguest: write zone %u addr %#llx size %u: %s\n",
				zone, (unsigned long long)addr, size, fg->err);
	}
}

int fg_notify(struct fg *fg, unsigned int cpu, uint32_t zone, uint64_t addr,
	      uint32_t queue)
{
	struct hvio_device_req req = {
		.src_cpu = cpu,
		.address = addr,
		.size = 4,
		.value = queue,
		.src_zone = zone,
		.is_write = 1,
		.need_interrupt = 1,
	};
	int ret = fg_push(fg, &req, FG_RAISE_IF_NEEDED, NULL);

	if (ret)
		__atomic_add_fetch(&fg->errors, 1, __ATOMIC_RELAXED);
	return ret;
}

/* ---- hvisor's consumer side of res_list ------------------------------ */

int fg_drain_res(struct fg *fg, struct hvio_device_res *out, int max)
{
	struct hvio_bridge *br = fg->br;
	uint32_t front = __atomic_load_n(&br->res_front, __ATOMIC_RELAXED);
	uint32_t rear = __atomic_load_n(&br->res_rear, __ATOMIC_ACQUIRE);
	int n = 0;

	if (front > RING_MASK || rear > RING_MASK) {
		fg_seterr(fg, "res indices out of range: front %u rear %u",
			  front, rear);
		return -EPROTO;
	}
	while (front != rear) {
		if (out && n < max)
			out[n] = br->res_list[front];
		n++;
		front = (front + 1) & RING_MASK;
	}
	__atomic_store_n(&br->res_front, front, __ATOMIC_RELEASE);
	return n;
}

uint64_t fg_wait_finish(struct fg *fg, unsigned int timeout_ms)
{
	struct pollfd pfd = { .fd = fg->finish_fd, .events = POLLIN };
	uint64_t cnt = 0;

	if (poll(&pfd, 1, timeout_ms) == 1 &&
	    read(fg->finish_fd, &cnt, sizeof(cnt)) != sizeof(cnt))
		cnt = 0;
	return cnt;
}

int fg_collect_res(struct fg *fg, struct hvio_device_res *out, int max,
		   int want, unsigned int timeout_ms)
{
	uint64_t deadline = fg_now_ms() + timeout_ms;
	int n = 0, got;

	for (;;) {
		got = fg_drain_res(fg, out ? out + (n < max ? n : max) : NULL,
				   n < max ? max - n : 0);
		if (got < 0)
			return got;
		n += got;
		if (n >= want || fg_now_ms() >= deadline)
			break;
		/* Sleep on the FINISH_REQ eventfd, but re-check periodically. */
		fg_wait_finish(fg, 20);
	}
	return n;
}

void fg_flush_res(struct fg *fg)
{
	uint64_t cnt;

	fg_drain_res(fg, NULL, 0);
	if (read(fg->finish_fd, &cnt, sizeof(cnt)) < 0)
		; /* EAGAIN: nothing pending */
}

/* ---- /dev/hvio ------------------------------------------------------- */

uint64_t fg_zone_phys(const struct fg *fg, const struct fg_zone *z)
{
	return fg->info.ram_base + z->ram_off;
}

void *fg_zone_ptr(const struct fg *fg, const struct fg_zone *z, uint64_t gpa)
{
	if (gpa < z->zonex_ipa || gpa - z->zonex_ipa >= z->size ||
	    z->ram_off + (gpa - z->zonex_ipa) >= fg->info.ram_size)
		return NULL;
	return fg->ram + z->ram_off + (gpa - z->zonex_ipa);
}

int fg_zone_add_raw(struct fg *fg, const struct hvio_zone_add *za)
{
	return ioctl(fg->ctl_fd, HVIO_ZONE_ADD, za) ? -errno : 0;
}

int fg_zone_add(struct fg *fg, const struct fg_zone *z)
{
	struct hvio_zone_add za;

	memset(&za, 0, sizeof(za));
	za.zone_id = z->id;
	za.nr_regions = 1;
	za.regions[0].zone0_ipa = fg_zone_phys(fg, z);
	za.regions[0].zonex_ipa = z->zonex_ipa;
	za.regions[0].size = z->size;
	return fg_zone_add_raw(fg, &za);
}

int fg_zone_del(struct fg *fg, uint32_t zone_id)
{
	struct hvio_zone_del zd = { .zone_id = zone_id };

	return ioctl(fg->ctl_fd, HVIO_ZONE_DEL, &zd) ? -errno : 0;
}

int fg_orphan_sweep(struct fg *fg)
{
	struct hvio_dev_attach a = { 0 };
	int n = 0, fd;

	while ((fd = ioctl(fg->ctl_fd, HVIO_DEV_ATTACH, &a)) >= 0) {
		ioctl(fd, HVIO_DEV_DESTROY);
		close(fd);
		n++;
	}
	return n;
}

int fg_zone_sweep(struct fg *fg)
{
	int n = 0;
	uint32_t id;

	/* A daemon killed by a test leaves its devices for recovery. */
	fg_orphan_sweep(fg);
	for (id = 1; id <= 64; id++)
		n += fg_zone_del(fg, id) == 0;
	n += fg_zone_del(fg, HVIO_MAX_ZONE_ID) == 0;
	return n;
}

void fg_dev_init(struct hvio_dev_create *c, uint32_t zone, uint32_t dev_id,
		 uint64_t base, uint32_t irq, uint16_t nq, uint32_t qmax,
		 uint64_t features, const void *cfg, uint32_t cfg_len)
{
	memset(c, 0, sizeof(*c));
	c->zone_id = zone;
	c->device_id = dev_id;
	c->mmio_base = base;
	c->mmio_len = HVIO_MMIO_ALIGN;
	c->irq = irq;
	c->num_queues = nq;
	c->queue_size_max = qmax;
	c->config_len = cfg_len;
	c->features = features;
	c->config_addr = (uintptr_t)cfg;
}

int fg_dev_create(struct fg *fg, const struct hvio_dev_create *c)
{
	int fd = ioctl(fg->ctl_fd, HVIO_DEV_CREATE, c);

	return fd < 0 ? -errno : fd;
}

int fg_stats(struct fg *fg, struct hvio_stats *st)
{
	return ioctl(fg->ctl_fd, HVIO_GET_STATS, st) ? -errno : 0;
}

uint64_t fg_wait_orphans(struct fg *fg, uint64_t want, unsigned int ms,
			 unsigned int *waited_ms)
{
	uint64_t t0 = fg_now_ms();
	struct hvio_stats st;

	for (;;) {
		memset(&st, 0, sizeof(st));
		fg_stats(fg, &st);
		if (st.orphans == want || fg_now_ms() - t0 >= ms)
			break;
		fg_sleep_ms(5);
	}
	if (waited_ms)
		*waited_ms = (unsigned int)(fg_now_ms() - t0);
	return st.orphans;
}

int fg_sim_info(struct fg *fg, struct hvio_sim_info *info)
{
	return ioctl(fg->sim_fd, HVIO_SIM_GET_INFO, info) ? -errno : 0;
}

int fg_dev_info(int dev_fd, struct hvio_dev_info *info)
{
	return ioctl(dev_fd, HVIO_DEV_GET_INFO, info) ? -errno : 0;
}

int fg_dev_stats(int dev_fd, struct hvio_dev_stats *st)
{
	return ioctl(dev_fd, HVIO_DEV_GET_STATS, st) ? -errno : 0;
}

int fg_dev_events(int dev_fd, struct hvio_dev_events *ev)
{
	return ioctl(dev_fd, HVIO_DEV_GET_EVENTS, ev) ? -errno : 0;
}

int fg_dev_set_config(int dev_fd, uint32_t off, const void *buf, uint32_t len,
		      uint32_t flags)
{
	struct hvio_dev_config dc = {
		.offset = off,
		.len = len,
		.addr = (uintptr_t)buf,
		.flags = flags,
	};

	return ioctl(dev_fd, HVIO_DEV_SET_CONFIG, &dc) ? -errno : 0;
}

int fg_poll_in(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int r = poll(&pfd, 1, timeout_ms);

	if (r < 0)
		return -errno;
	return r == 1 && (pfd.revents & POLLIN) ? 1 : 0;
}

/* ---- the guest driver ------------------------------------------------ */

void fg_vdev_init(struct fg_vdev *v, struct fg *fg, unsigned int cpu,
		  uint32_t zone, uint64_t base)
{
	memset(v, 0, sizeof(*v));
	v->fg = fg;
	v->cpu = cpu;
	v->zone = zone;
	v->base = base;
}

uint32_t fg_vdev_rd(struct fg_vdev *v, uint32_t off)
{
	return fg_read32(v->fg, v->cpu, v->zone, v->base + off);
}

void fg_vdev_wr(struct fg_vdev *v, uint32_t off, uint32_t val)
{
	fg_write32(v->fg, v->cpu, v->zone, v->base + off, val);
}

#define VCHECK(v, cond, ...) do {					\
	if ((v)->fg->errors != errors0) {				\
		snprintf((v)->err, sizeof((v)->err), "bridge: %.200s",	\
			 (v)->fg->err);					\
		return -ETIMEDOUT;					\
	}								\
	if (!(cond)) {							\
		snprintf((v)->err, sizeof((v)->err), __VA_ARGS__);	\
		return -EIO;						\
	}								\
} while (0)

int fg_vdev_reset(struct fg_vdev *v)
{
	unsigned long errors0 = v->fg->errors;
	uint32_t st;

	fg_vdev_wr(v, VIRTIO_MMIO_STATUS, 0);
	st = fg_vdev_rd(v, VIRTIO_MMIO_STATUS);
	VCHECK(v, st == 0, "Status after reset %#x, expected 0", st);
	return 0;
}

int fg_vdev_reset_start(struct fg_vdev *v, uint64_t *flag)
{
	struct hvio_device_req req = {
		.src_cpu = v->cpu, .address = v->base + VIRTIO_MMIO_STATUS,
		.size = 4, .value = 0, .src_zone = v->zone, .is_write = 1,
	};
	int ret = fg_push(v->fg, &req, FG_RAISE_IF_NEEDED, flag);

	if (ret)
		snprintf(v->err, sizeof(v->err), "push Status = 0: %s",
			 strerror(-ret));
	return ret;
}

int fg_vdev_reset_wait(struct fg_vdev *v, uint64_t flag)
{
	unsigned long errors0 = v->fg->errors;
	uint32_t st;
	int ret;

	ret = fg_wait_ack(v->fg, v->cpu, flag, v->fg->timeout_ms, NULL);
	if (ret) {
		__atomic_add_fetch(&v->fg->errors, 1, __ATOMIC_RELAXED);
		snprintf(v->err, sizeof(v->err), "Status = 0 not answered: %.200s",
			 v->fg->err);
		return ret;
	}
	st = fg_vdev_rd(v, VIRTIO_MMIO_STATUS);
	VCHECK(v, st == 0, "Status after reset %#x, expected 0", st);
	return 0;
}

int fg_set_reset_timeout(unsigned int ms, unsigned int *old)
{
	char buf[32];
	int fd, n;

	fd = open("/sys/module/hvio/parameters/reset_timeout_ms",
		  O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (old && n > 0) {
		buf[n] = 0;
		*old = strtoul(buf, NULL, 0);
	}
	n = snprintf(buf, sizeof(buf), "%u\n", ms);
	n = pwrite(fd, buf, n, 0) == n ? 0 : -errno;
	close(fd);
	return n;
}

uint64_t fg_vring_layout(uint64_t gpa, uint32_t num, struct fg_vq *q)
{
	uint64_t avail_end;

	q->num = num;
	q->desc = gpa;
	q->driver = gpa + 16ULL * num;
	avail_end = q->driver + 6 + 2ULL * num;
	q->device = (avail_end + 4095) & ~4095ULL;
	return (q->device + 6 + 8ULL * num + 4095) & ~4095ULL;
}

void fg_vdev_setup_queue(struct fg_vdev *v, uint32_t q, const struct fg_vq *vq)
{
	fg_vdev_wr(v, VIRTIO_MMIO_QUEUE_SEL, q);
	fg_vdev_wr(v, VIRTIO_MMIO_QUEUE_NUM, vq->num);
	fg_vdev_wr(v, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)vq->desc);
	fg_vdev_wr(v, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(vq->desc >> 32));
	fg_vdev_wr(v, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)vq->driver);
	fg_vdev_wr(v, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(vq->driver >> 32));
	fg_vdev_wr(v, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)vq->device);
	fg_vdev_wr(v, VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(vq->device >> 32));
	fg_vdev_wr(v, VIRTIO_MMIO_QUEUE_READY, 1);
}

/* virtio_add_status(): read-modify-write of the status byte. */
static int vdev_add_status(struct fg_vdev *v, uint32_t bit)
{
	unsigned long errors0 = v->fg->errors;
	uint32_t st = fg_vdev_rd(v, VIRTIO_MMIO_STATUS);
	uint32_t rb;

	fg_vdev_wr(v, VIRTIO_MMIO_STATUS, st | bit);
	rb = fg_vdev_rd(v, VIRTIO_MMIO_STATUS);
	VCHECK(v, rb == (st | bit), "Status %#x after writing %#x", rb, st | bit);
	return 0;
}

int fg_vdev_probe(struct fg_vdev *v, uint64_t want_features,
		  unsigned int max_queues, uint32_t qnum, uint64_t ring_gpa)
{
	unsigned long errors0 = v->fg->errors;
	uint32_t magic, version, lo, hi, st, q, max, ready;
	int ret;

	/* vm_probe() */
	magic = fg_vdev_rd(v, VIRTIO_MMIO_MAGIC_VALUE);
	VCHECK(v, magic == FG_MMIO_MAGIC, "MagicValue %#x", magic);
	version = fg_vdev_rd(v, VIRTIO_MMIO_VERSION);
	VCHECK(v, version == 2, "Version %u, expected 2", version);
	v->device_id = fg_vdev_rd(v, VIRTIO_MMIO_DEVICE_ID);
	VCHECK(v, v->device_id != 0, "DeviceID 0 (no device)");
	v->vendor_id = fg_vdev_rd(v, VIRTIO_MMIO_VENDOR_ID);
	VCHECK(v, v->vendor_id == FG_VENDOR_HVIS, "VendorID %#x", v->vendor_id);

	/* register_virtio_device(): reset, ACKNOWLEDGE */
	ret = fg_vdev_reset(v);
	if (ret)
		return ret;
	ret = vdev_add_status(v, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	if (ret)
		return ret;
	/* virtio_dev_probe(): DRIVER, features */
	ret = vdev_add_status(v, VIRTIO_CONFIG_S_DRIVER);
	if (ret)
		return ret;
	fg_vdev_wr(v, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	hi = fg_vdev_rd(v, VIRTIO_MMIO_DEVICE_FEATURES);
	fg_vdev_wr(v, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	lo = fg_vdev_rd(v, VIRTIO_MMIO_DEVICE_FEATURES);
	v->device_features = (uint64_t)hi << 32 | lo;
	VCHECK(v, v->device_features & FG_F_VERSION_1,
	       "device does not offer VERSION_1 (features %#llx)",
	       (unsigned long long)v->device_features);
	v->driver_features = v->device_features & want_features;
	fg_vdev_wr(v, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	fg_vdev_wr(v, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(v->driver_features >> 32));
	fg_vdev_wr(v, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	fg_vdev_wr(v, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)v->driver_features);
	/* virtio_features_ok() */
	st = fg_vdev_rd(v, VIRTIO_MMIO_STATUS);
	fg_vdev_wr(v, VIRTIO_MMIO_STATUS, st | VIRTIO_CONFIG_S_FEATURES_OK);
	st = fg_vdev_rd(v, VIRTIO_MMIO_STATUS);
	VCHECK(v, st & VIRTIO_CONFIG_S_FEATURES_OK,
	       "FEATURES_OK not accepted (Status %#x, driver features %#llx)",
	       st, (unsigned long long)v->driver_features);

	/* vm_find_vqs() / vm_setup_vq() */
	v->nq = 0;
	for (q = 0; q < max_queues && q < HVIO_MAX_QUEUES; q++) {
		fg_vdev_wr(v, VIRTIO_MMIO_QUEUE_SEL, q);
		ready = fg_vdev_rd(v, VIRTIO_MMIO_QUEUE_READY);
		VCHECK(v, ready == 0, "queue %u: QueueReady %u before setup", q, ready);
		max = fg_vdev_rd(v, VIRTIO_MMIO_QUEUE_NUM_MAX);
		if (max == 0)
			break;
		ring_gpa = fg_vring_layout(ring_gpa, qnum < max ? qnum : max,
					   &v->vq[q]);
		fg_vdev_setup_queue(v, q, &v->vq[q]);
		ready = fg_vdev_rd(v, VIRTIO_MMIO_QUEUE_READY);
		VCHECK(v, ready == 1, "queue %u: QueueReady reads %u after setup (num %u)",
		       q, ready, v->vq[q].num);
		v->nq++;
	}
	VCHECK(v, v->nq > 0, "no queue: QueueNumMax of queue 0 is 0");

	/* virtio_device_ready() */
	ret = vdev_add_status(v, VIRTIO_CONFIG_S_DRIVER_OK);
	if (ret)
		return ret;
	return 0;
}

/* ---- the daemon and the module ------------------------------------- */

const char *fg_daemon_bin(void)
{
	const char *b = getenv("HVIO_BIN");

	return b && *b ? b : "/bin/hvio";
}

int fg_daemon_wait_line(int out_fd, const char *line, unsigned int ms)
{
	uint64_t t0 = fg_now_ms();
	char out[512];
	size_t len = 0;
	ssize_t n;

	while (fg_now_ms() - t0 < ms) {
		if (fg_poll_in(out_fd, 100) <= 0)
			continue;
		n = read(out_fd, out + len, sizeof(out) - 1 - len);
		if (n <= 0)
			return -EPIPE;
		len += n;
		out[len] = 0;
		if (strstr(out, line))
			return 0;
		if (len == sizeof(out) - 1) {
			/* Keep the tail: the line may straddle the cut. */
			memmove(out, out + len / 2, len - len / 2);
			len -= len / 2;
		}
	}
	return -ETIMEDOUT;
}

int fg_write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -EIO;
}

const char *fg_file_tail(const char *path)
{
	static char buf[512];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	off_t end;

	buf[0] = 0;
	if (fd < 0)
		return buf;
	end = lseek(fd, 0, SEEK_END);
	lseek(fd, end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0,
	      SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

int fg_daemon_spawn(const char *cfg, const char *sock, const char *log,
		    int *out_fd)
{
	pid_t parent = getpid(), pid;
	int p[2], logfd, nul, err;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (logfd < 0) {
		err = -errno;
		close(p[0]);
		close(p[1]);
		return err;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		err = -errno;
		close(p[0]);
		close(p[1]);
		close(logfd);
		return err;
	}
	if (pid == 0) {
		/* never outlive the test, even if it is killed */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(126);
		nul = open("/dev/null", O_RDONLY);
		if (nul < 0 || dup2(nul, 0) < 0 || dup2(p[1], 1) < 0 ||
		    dup2(logfd, 2) < 0)
			_exit(126);
		execl(fg_daemon_bin(), "hvio", "run", cfg, "--socket", sock,
		      (char *)NULL);
		dprintf(2, "exec %s: %s\n", fg_daemon_bin(), strerror(errno));
		_exit(127);
	}
	close(p[1]);
	close(logfd);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	*out_fd = p[0];
	return pid;
}

int fg_daemon_wait_ready(int out_fd, unsigned int timeout_ms)
{
	return fg_daemon_wait_line(out_fd, "hvio: ready", timeout_ms);
}

int fg_rmmod(void)
{
	return syscall(__NR_delete_module, "hvio", O_NONBLOCK) ? -errno : 0;
}

bool fg_rmmod_refused(int r)
{
	return r == -EBUSY || r == -EAGAIN || r == -EWOULDBLOCK;
}

int fg_insmod(void)
{
	const char *ko = getenv("HVIO_KO");
	const char *params = getenv("HVIO_PARAMS");
	int fd, r;

	if (!ko || !*ko || !params)
		return 1;
	fd = open(ko, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = syscall(__NR_finit_module, fd, params, 0) ? -errno : 0;
	close(fd);
	return r;
}

bool fg_wait_path(const char *path, bool want, unsigned int timeout_ms)
{
	uint64_t deadline = fg_now_ms() + timeout_ms;

	while ((access(path, F_OK) == 0) != want) {
		if (fg_now_ms() > deadline)
			return false;
		fg_sleep_ms(10);
	}
	return true;
}

int fg_put(const char *dir, const char *attr, const char *val)
{
	char path[192];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, attr);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		ret = -errno;
	close(fd);
	return ret;
}

#define FG_NULLB_CFS	"/sys/kernel/config/nullb"

int fg_nullb_create(const char *name, unsigned int size_mib, char *dir,
		    size_t dir_len, char *dev, size_t dev_len)
{
	char buf[32], path[192];
	int fd, n, ret;

	dir[0] = 0;
	if (access(FG_NULLB_CFS, F_OK)) {
		mount("none", "/sys/kernel/config", "configfs", 0, NULL);
		if (access(FG_NULLB_CFS, F_OK))
			return -ENOENT;
	}
	snprintf(dir, dir_len, FG_NULLB_CFS "/%s%d", name, (int)getpid());
	if (mkdir(dir, 0755)) {
		ret = -errno;
		dir[0] = 0;
		return ret;
	}
	snprintf(buf, sizeof(buf), "%u", size_mib);
	ret = fg_put(dir, "size", buf);
	if (!ret)
		ret = fg_put(dir, "memory_backed", "1");
	if (!ret)
		ret = fg_put(dir, "blocksize", "512");
	if (!ret)
		ret = fg_put(dir, "irqmode", "0");
	if (!ret)
		ret = fg_put(dir, "power", "1");
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "%s/index", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	/* Named after the configfs directory (6.1), or nullb<index>. */
	snprintf(dev, dev_len, "/dev/%s", strrchr(dir, '/') + 1);
	if (fg_wait_path(dev, true, 2000))
		return 0;
	snprintf(dev, dev_len, "/dev/nullb%lu", strtoul(buf, NULL, 0));
	return fg_wait_path(dev, true, 2000) ? 0 : -ENODEV;
}

void fg_nullb_remove(char *dir)
{
	if (!dir || !dir[0])
		return;
	fg_put(dir, "power", "0");
	rmdir(dir);
	dir[0] = 0;
}

long long fg_page_cache_kb(void)
{
	long long kb, cached = -1, buffers = -1;
	char line[128];
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Cached: %lld kB", &kb) == 1)
			cached = kb;
		else if (sscanf(line, "Buffers: %lld kB", &kb) == 1)
			buffers = kb;
	}
	fclose(f);
	return cached < 0 || buffers < 0 ? -1 : cached + buffers;
}

int fg_hvio_cmd(char *out, size_t len, const char *a1, const char *a2,
		const char *a3, const char *a4)
{
	int p[2], st;
	size_t got = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		execl(fg_daemon_bin(), "hvio", a1, a2, a3, a4, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while (got < len - 1) {
		ssize_t n = read(p[0], out + got, len - 1 - got);

		if (n <= 0)
			break;
		got += n;
	}
	out[got] = 0;
	close(p[0]);
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int fg_daemon_status(const char *sock, char *buf, size_t len)
{
	return fg_hvio_cmd(buf, len, "status", "--socket", sock, "--json") ?
	       -1 : 0;
}

const char *fg_json_val(const char *from, const char *key)
{
	char pat[64];
	const char *v;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	v = from ? strstr(from, pat) : NULL;
	if (!v)
		return NULL;
	for (v += strlen(pat); *v == ' ' || *v == '\n'; v++)
		;
	return v;
}

bool fg_ram_pfnmap(const char *json)
{
	const char *v = fg_json_val(json, "ram_modes");

	if (!v || *v++ != '[')
		return false;
	while (*v == ' ' || *v == '\n')
		v++;
	return !strncmp(v, "\"pfnmap\"", 8);
}
