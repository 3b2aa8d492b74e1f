/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fakeguest: a userspace stand-in for hvisor and for a zone's virtio-mmio
 * driver, used by the hvio selftests with hvio.ko loaded hypervisor=sim.
 *
 * Through /dev/hvio-sim it plays hvisor's side of the virtio bridge exactly
 * as Documentation/abi.md section 1 describes:
 *   - push a struct hvio_device_req at req_list[req_rear] (a process-wide
 *     mutex serialises pushers), publish req_rear with release ordering,
 *     full fence, raise the root IRQ only if need_wakeup == 1;
 *   - for need_interrupt == 0, spin until cfg_flags[src_cpu] differs from
 *     its value before the push, then read cfg_values[src_cpu] (bounded by
 *     fg->timeout_ms: never hangs);
 *   - drain res_list (res_front/res_rear) after the FINISH_REQ eventfd.
 * On top of that it offers /dev/hvio helpers (zones, devices) and a guest
 * driver that runs Linux's virtio-mmio probe sequence.
 *
 * Nothing here uses the kselftest harness: functions return 0 / -errno and
 * leave a human readable explanation in fg->err (or v->err).
 */
#ifndef HVIO_FAKEGUEST_H
#define HVIO_FAKEGUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/hvio.h>
#include <linux/hvio_bridge.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>

#define FG_DEV_CTL		"/dev/hvio"
#define FG_DEV_SIM		"/dev/hvio-sim"
#define FG_TIMEOUT_MS		2000	/* longest wait for any answer */
#define FG_VENDOR_HVIS		0x48564953u
#define FG_MMIO_MAGIC		0x74726976u
#define FG_F_VERSION_1		(1ULL << VIRTIO_F_VERSION_1)
#define FG_POISON		0xdeadbeefdeadbeefULL	/* read that timed out */
#define FG_MAX_RES_LOG		1024

struct fg {
	int sim_fd;			/* /dev/hvio-sim (single open) */
	int ctl_fd;			/* /dev/hvio */
	int finish_fd;			/* eventfd signalled at FINISH_REQ */
	struct hvio_bridge *br;		/* the bridge page (shared, live) */
	size_t br_map_len;
	uint8_t *ram;			/* the whole sim_ram window */
	struct hvio_sim_info info;
	unsigned int timeout_ms;
	/* statistics of the stand-in (atomic) */
	unsigned long pushes;		/* requests pushed */
	unsigned long raises;		/* HVIO_SIM_RAISE_IRQ issued */
	unsigned long errors;		/* accesses that failed (timeout...) */
	bool dead;			/* an access timed out: fail the rest fast */
	/*
	 * false (default, like hvisor): the IRQ is raised with the push lock
	 * held.  true: the need_wakeup decision is taken under the lock but
	 * the raise happens after unlocking, so other vCPUs push while the
	 * consumer runs (more overlap for concurrency tests).
	 */
	bool raise_unlocked;
	unsigned long stale_res;	/* res_list entries found at open */
	char err[256];			/* last error, for TH_LOG */
};

/* A zone RAM region as the tests describe it. */
struct fg_zone {
	uint32_t id;
	uint64_t zonex_ipa;		/* guest physical */
	uint64_t ram_off;		/* offset into the sim_ram window */
	uint64_t size;
};

/*
 * Open /dev/hvio-sim and /dev/hvio, map the bridge and the sim_ram window,
 * attach the FINISH_REQ eventfd, drop stale res_list entries and flush any
 * request left in req_list.  Returns 0 or -errno (-ENOENT: module not
 * loaded or not in sim mode; fg->err says which).
 */
int fg_open(struct fg *fg);
void fg_close(struct fg *fg);

/* ---- raw bridge side (hvisor's part) ---------------------------------- */

enum fg_raise {
	FG_RAISE_IF_NEEDED,	/* hvisor's rule: raise iff need_wakeup == 1 */
	FG_RAISE_NEVER,		/* publish only: tests the consumer sleeps */
	FG_RAISE_ALWAYS,
};

/*
 * Push one request.  *flag_before (may be NULL) receives cfg_flags[src_cpu]
 * read before the request is published (only when src_cpu < 32).  Waits up
 * to fg->timeout_ms for space if the ring is full.
 */
int fg_push(struct fg *fg, const struct hvio_device_req *req,
	    enum fg_raise raise, uint64_t *flag_before);
/* Spin until cfg_flags[cpu] != before, then read cfg_values[cpu]. */
int fg_wait_ack(struct fg *fg, unsigned int cpu, uint64_t before,
		unsigned int timeout_ms, uint64_t *value);
/* HVIO_SIM_RAISE_IRQ, counted in fg->raises. */
int fg_raise(struct fg *fg);
/* Wait until req_front == req_rear (the consumer took everything). */
int fg_wait_consumed(struct fg *fg, unsigned int timeout_ms);

/*
 * One full access with need_interrupt == 0: push, raise if needed, wait.
 * After one access timed out the bridge is considered dead and later
 * accesses fail at once (-ENOLINK), so a broken module costs one timeout
 * per test, not one per access.
 */
int fg_access(struct fg *fg, unsigned int cpu, uint32_t zone, uint64_t addr,
	      unsigned int size, bool is_write, uint64_t wval, uint64_t *rval);

/*
 * Convenience wrappers.  A read that fails returns FG_POISON truncated to
 * the width and bumps fg->errors (fg->err explains); tests check
 * fg->errors == 0.
 */
uint64_t fg_read(struct fg *fg, unsigned int cpu, uint32_t zone,
		 uint64_t addr, unsigned int size);
void fg_write(struct fg *fg, unsigned int cpu, uint32_t zone, uint64_t addr,
	      unsigned int size, uint64_t val);
static inline uint8_t fg_read8(struct fg *fg, unsigned int cpu, uint32_t zone,
			       uint64_t addr)
{
	return (uint8_t)fg_read(fg, cpu, zone, addr, 1);
}
static inline uint16_t fg_read16(struct fg *fg, unsigned int cpu,
				 uint32_t zone, uint64_t addr)
{
	return (uint16_t)fg_read(fg, cpu, zone, addr, 2);
}
static inline uint32_t fg_read32(struct fg *fg, unsigned int cpu,
				 uint32_t zone, uint64_t addr)
{
	return (uint32_t)fg_read(fg, cpu, zone, addr, 4);
}
static inline uint64_t fg_read64(struct fg *fg, unsigned int cpu,
				 uint32_t zone, uint64_t addr)
{
	return fg_read(fg, cpu, zone, addr, 8);
}
static inline void fg_write32(struct fg *fg, unsigned int cpu, uint32_t zone,
			      uint64_t addr, uint32_t val)
{
	fg_write(fg, cpu, zone, addr, 4, val);
}
/* QueueNotify-style access: need_interrupt = 1, nothing to wait for. */
int fg_notify(struct fg *fg, unsigned int cpu, uint32_t zone, uint64_t addr,
	      uint32_t queue);

/* ---- res_list (hvisor consumes) --------------------------------------- */

/* Take every entry now in res_list; returns how many (<= max stored). */
int fg_drain_res(struct fg *fg, struct hvio_device_res *out, int max);
/*
 * Collect res_list entries until `want` were seen or timeout_ms passed,
 * draining after each FINISH_REQ eventfd signal (and periodically).
 * Returns the number collected (may be < want).
 */
int fg_collect_res(struct fg *fg, struct hvio_device_res *out, int max,
		   int want, unsigned int timeout_ms);
/* Discard what is in res_list and any pending eventfd count. */
void fg_flush_res(struct fg *fg);
/* Read (and reset) the FINISH_REQ eventfd counter, waiting up to timeout. */
uint64_t fg_wait_finish(struct fg *fg, unsigned int timeout_ms);

/* ---- /dev/hvio helpers ------------------------------------------------ */

uint64_t fg_zone_phys(const struct fg *fg, const struct fg_zone *z);
/* Pointer into the sim_ram mapping for guest address gpa of zone z. */
void *fg_zone_ptr(const struct fg *fg, const struct fg_zone *z, uint64_t gpa);
/* HVIO_ZONE_ADD with one region; 0 or -errno. */
int fg_zone_add(struct fg *fg, const struct fg_zone *z);
/* HVIO_ZONE_ADD raw; 0 or -errno. */
int fg_zone_add_raw(struct fg *fg, const struct hvio_zone_add *za);
/* HVIO_ZONE_DEL; 0 or -errno. */
int fg_zone_del(struct fg *fg, uint32_t zone_id);
/* Destroy every orphaned device (HVIO_DEV_ATTACH any); how many. */
int fg_orphan_sweep(struct fg *fg);
/* Orphans first, then every zone in 1..64 and 0xffff (leftovers); returns
 * how many zones went. */
int fg_zone_sweep(struct fg *fg);

/* Fill a valid hvio_dev_create. */
void fg_dev_init(struct hvio_dev_create *c, uint32_t zone, uint32_t dev_id,
		 uint64_t base, uint32_t irq, uint16_t nq, uint32_t qmax,
		 uint64_t features, const void *cfg, uint32_t cfg_len);
/* HVIO_DEV_CREATE; the device fd or -errno. */
int fg_dev_create(struct fg *fg, const struct hvio_dev_create *c);

int fg_stats(struct fg *fg, struct hvio_stats *st);
/*
 * Wait up to ms for HVIO_GET_STATS to count want orphans; returns the last
 * count seen (and in *waited_ms, if not NULL, how long it took).  A killed
 * daemon's device becomes an orphan when its last file reference goes:
 * io_uring drops those of requests in flight from its exit work, which can
 * run after the process was reaped.
 */
uint64_t fg_wait_orphans(struct fg *fg, uint64_t want, unsigned int ms,
			 unsigned int *waited_ms);
/*
 * How long a test waits for a reaped daemon's devices to become orphans.
 * 6.1 lets go of them before the reap; 6.12 completes a parked FETCH
 * (io_uring_cmd_done() from outside io_uring) through task work that an
 * exiting DEFER_TASKRUN task never runs, so its ring's exit work does it.
 */
#define FG_ORPHAN_WAIT_MS 2000
int fg_sim_info(struct fg *fg, struct hvio_sim_info *info);
int fg_dev_info(int dev_fd, struct hvio_dev_info *info);
int fg_dev_stats(int dev_fd, struct hvio_dev_stats *st);
int fg_dev_events(int dev_fd, struct hvio_dev_events *ev);
int fg_dev_set_config(int dev_fd, uint32_t off, const void *buf, uint32_t len,
		      uint32_t flags);
/* poll(POLLIN) on fd: 1 readable, 0 timeout, -errno. */
int fg_poll_in(int fd, int timeout_ms);

/* ---- the guest's virtio-mmio driver ----------------------------------- */

struct fg_vq {
	uint32_t num;
	uint64_t desc, driver, device;	/* guest physical */
};

struct fg_vdev {
	struct fg *fg;
	unsigned int cpu;		/* src_cpu used for every access */
	uint32_t zone;
	uint64_t base;			/* MMIO window (zone IPA) */
	uint32_t device_id;
	uint32_t vendor_id;
	uint64_t device_features;	/* read during probe */
	uint64_t driver_features;	/* written during probe */
	unsigned int nq;		/* queues set up */
	struct fg_vq vq[HVIO_MAX_QUEUES];
	char err[256];
};

void fg_vdev_init(struct fg_vdev *v, struct fg *fg, unsigned int cpu,
		  uint32_t zone, uint64_t base);
uint32_t fg_vdev_rd(struct fg_vdev *v, uint32_t off);
void fg_vdev_wr(struct fg_vdev *v, uint32_t off, uint32_t val);
/* Status 0 and check it reads back 0. */
int fg_vdev_reset(struct fg_vdev *v);
/*
 * A reset in two steps, for a test that also plays the daemon: the device
 * answers Status = 0 only once the ops of the old generation are back, so
 * push the write, commit them, then wait for the answer (Status reads 0).
 * *flag is cfg_flags before the write.
 */
int fg_vdev_reset_start(struct fg_vdev *v, uint64_t *flag);
int fg_vdev_reset_wait(struct fg_vdev *v, uint64_t flag);
/*
 * Set hvio.ko's reset_timeout_ms (how long a reset may wait for ops the
 * daemon never gives back); the old value in *old if not NULL.
 */
int fg_set_reset_timeout(unsigned int ms, unsigned int *old);
/*
 * Split-ring layout for a queue of `num` entries at gpa (desc 16-aligned,
 * avail 2, used 4096): fills q, returns the next free 4 KiB aligned gpa.
 */
uint64_t fg_vring_layout(uint64_t gpa, uint32_t num, struct fg_vq *q);
/* QueueSel, QueueNum, ring addresses, QueueReady = 1 (no checks). */
void fg_vdev_setup_queue(struct fg_vdev *v, uint32_t q, const struct fg_vq *vq);
/*
 * The whole Linux virtio_mmio probe (vm_probe + virtio_dev_probe +
 * vm_find_vqs): magic/version/device/vendor, reset, ACKNOWLEDGE, DRIVER,
 * DeviceFeatures words 0 and 1, DriverFeatures words 0 and 1 =
 * (offered & want), FEATURES_OK and its read back, then up to max_queues
 * queues (QueueSel, QueueReady == 0, QueueNumMax, QueueNum =
 * min(qnum, max), rings laid out from ring_gpa, QueueReady = 1 read back),
 * DRIVER_OK.  Every answer is checked; 0 or -EIO/-ETIMEDOUT with v->err.
 */
int fg_vdev_probe(struct fg_vdev *v, uint64_t want_features,
		  unsigned int max_queues, uint32_t qnum, uint64_t ring_gpa);

/* Milliseconds on CLOCK_MONOTONIC. */
/* ---- the daemon and the module, for tests that start or reload them ---- */

/* $HVIO_BIN, else /bin/hvio. */
const char *fg_daemon_bin(void);
/*
 * Start `hvio run cfg --socket sock`, stdin /dev/null, stderr to log,
 * stdout on a non-blocking pipe returned in *out_fd; the child dies with
 * the test (PR_SET_PDEATHSIG).  Returns its pid or -errno.
 */
int fg_daemon_spawn(const char *cfg, const char *sock, const char *log,
		    int *out_fd);
/* Read the daemon's stdout until "hvio: ready": 0, -EPIPE, -ETIMEDOUT. */
int fg_daemon_wait_ready(int out_fd, unsigned int timeout_ms);
/* Read the daemon's stdout until it holds line: 0, -EPIPE or -ETIMEDOUT. */
int fg_daemon_wait_line(int out_fd, const char *line, unsigned int ms);
/* Write text to path (created or truncated): 0 or -errno. */
int fg_write_file(const char *path, const char *text);
/* The last bytes of a file (a log) in a static buffer; "" if unreadable. */
const char *fg_file_tail(const char *path);
/* delete_module("hvio", O_NONBLOCK): 0 or -errno. */
int fg_rmmod(void);
/* An unload refused because the module is in use. */
bool fg_rmmod_refused(int r);
/* finit_module($HVIO_KO, $HVIO_PARAMS): 0, -errno, or 1 if not set. */
int fg_insmod(void);
/* Wait until path exists (want) or not (!want); false on timeout. */
bool fg_wait_path(const char *path, bool want, unsigned int timeout_ms);
/* Write val to dir/attr (sysfs, configfs): 0 or -errno. */
int fg_put(const char *dir, const char *attr, const char *val);
/*
 * A memory-backed null_blk of size_mib made through configfs as
 * .../nullb/<name><pid> with 512-byte blocks, completing in the submitter
 * (irqmode 0); its directory in dir, its /dev node in dev.  0, -ENOENT
 * without null_blk's configfs, or -errno.
 */
int fg_nullb_create(const char *name, unsigned int size_mib, char *dir,
		    size_t dir_len, char *dev, size_t dev_len);
/* Power the null_blk off and remove it (dir "" or NULL: nothing). */
void fg_nullb_remove(char *dir);
/*
 * Root Linux's page cache in KiB: "Cached" plus "Buffers" of /proc/meminfo
 * (a block device's cache is counted in Buffers); -1 if unreadable.
 */
long long fg_page_cache_kb(void);
/*
 * Run `hvio A1 A2 A3 A4` (a NULL ends the list early) with its stdout in
 * out: its exit status, or -1 if it did not exit.
 */
int fg_hvio_cmd(char *out, size_t len, const char *a1, const char *a2,
		const char *a3, const char *a4);
/* The running daemon's `hvio status --socket sock --json` in buf: 0 or -1. */
int fg_daemon_status(const char *sock, char *buf, size_t len);
/*
 * In a JSON text from `from` on: the first non-blank character of the
 * value of "key", or NULL.
 */
const char *fg_json_val(const char *from, const char *key);
/* Does the `hvio status` report say zone RAM is mapped as raw PFNs (its
 * first region "pfnmap": no O_DIRECT into it)? */
bool fg_ram_pfnmap(const char *json);

uint64_t fg_now_ms(void);
void fg_sleep_ms(unsigned int ms);

#endif /* HVIO_FAKEGUEST_H */
