// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_examples: hvisor-tool's three example configs (hvisor_examples.h,
 * issue 12 §3) fed to the real daemon as hvisor-tool ships them, and their
 * devices served.  For each: the config is written into a directory of its
 * own beside a test image carrying the config's relative "img" name (the
 * daemon runs from "/", so only resolving img against the config's
 * directory finds it), with the smallest change the sim forces, made by
 * the substitution table of the variant and printed: zone0_ipa moved into
 * the sim RAM window and the region sizes shrunk to fit it.  Device
 * addresses, irqs, ids, the zone's guest addresses (zonex_ipa), the tap
 * name and the mac are the shipped ones.
 *
 * Then `hvio run` must print the ready line with the example's device
 * count (and, for the nxp config, the line saying its disabled net device
 * was skipped, its window answering no device), and this program, as the
 * guest (fakeguest, fakevring), probes every device at its shipped address
 * with its DeviceID, reads 4 KiB from the disk and compares it with the
 * image, writes a line through the console's transmitq and reads it from
 * the PTY the daemon printed, and for the x86_64 config sees the net
 * device's mac from the config and one frame of the guest's reach tap0 (in
 * a network namespace of the test); every completion comes with an
 * interrupt carrying the shipped irq.  The x86_64 config's zone has two RAM
 * regions, the second at 4 GiB: the module holds the zone with exactly
 * both (HVIO_ZONE_ADD's reuse check), the rings sit in the first (at guest
 * address 0) and the disk read lands in a buffer in the second.
 */
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <stddef.h>
#include <sys/stat.h>

#include "hvio_test.h"
#include "fakenet.h"
#include "fakevring.h"
#include "hvisor_examples.h"

#define REG_SIZE	(16 * MIB)	/* each region, shrunk to fit the sim */
#define MAX_REG		2
#define MAX_DEV		3
#define QNUM		64
#define RING_OFF	0x10000		/* rings of device i at +i * RING_STEP */
#define RING_STEP	0x30000
#define BUF_OFF		0x100000	/* headers, status, console and net bytes */
#define HIGH_BUF_OFF	0x2000		/* the disk read in the last region */
#define IMG_SIZE	(1 * MIB)
#define READ_SECTOR	8
#define READ_LEN	4096
#define READY_MS	20000
#define IO_MS		10000
#define STOP_MS		10000
#define TAP		"tap0"		/* the x86_64 example's, kept */
#define CONSOLE_LINE	"hello from the zone's virtio console\n"

/* One change the sim forces on a shipped config: key "key" from "from". */
struct subst {
	const char *key;
	const char *from;
	bool window;		/* to = the sim window's base + val */
	uint64_t val;
	const char *why;
};

#define SIM_ZONE0(off)	.window = true, .val = (off), \
			.why = "hvisor's root-zone address of the zone's RAM; the sim's RAM is a window of its own"
#define SIM_SIZE	.val = REG_SIZE, \
			.why = "the region does not fit the sim's RAM window (256 MiB, shared by the regions)"

/* A device the example serves, as shipped. */
struct exdev {
	uint32_t id;		/* VIRTIO_ID_* */
	uint64_t addr;
	uint32_t irq;
};

FIXTURE(ex) {
	struct fg fg;
	bool skip, opened;
	struct fn_daemon d;
	char dir[40], img[96];
	struct fg_zone reg[MAX_REG];
	unsigned int nreg;
	struct fg_vdev v;
	struct fv_ring r[2];
	int pty, pkt;
	uint8_t *image;			/* the test image's bytes */
};

FIXTURE_VARIANT(ex) {
	const char *text;
	const struct subst *subst;	/* ends with key NULL */
	unsigned int nreg;
	uint64_t zonex[MAX_REG];	/* the shipped zonex_ipa of each region */
	const char *img;		/* the shipped relative img name */
	struct exdev dev[MAX_DEV];	/* id 0 ends */
	const char *skipped;		/* the daemon's line for a disabled device */
	uint64_t disabled_addr;		/* its window: no device there */
};

static const struct subst qemu_aarch64_subst[] = {
	{ "zone0_ipa", "0x50000000", SIM_ZONE0(0) },
	{ "size", "0x30000000", SIM_SIZE },
	{ NULL }
};

FIXTURE_VARIANT_ADD(ex, qemu_aarch64) {
	.text = HVT_QEMU_AARCH64,
	.subst = qemu_aarch64_subst,
	.nreg = 1,
	.zonex = { 0x50000000 },
	.img = "rootfs2.ext4",
	.dev = { { VIRTIO_ID_BLOCK, 0xa003c00, 78 },
		 { VIRTIO_ID_CONSOLE, 0xa003800, 76 } },
};

FIXTURE_VARIANT_ADD(ex, nxp_aarch64) {
	.text = HVT_NXP_AARCH64,
	.subst = qemu_aarch64_subst,	/* the same zone */
	.nreg = 1,
	.zonex = { 0x50000000 },
	.img = "rootfs2.ext4",
	.dev = { { VIRTIO_ID_BLOCK, 0xa003c00, 78 },
		 { VIRTIO_ID_CONSOLE, 0xa003800, 76 } },
	.skipped = "zones[0].devices[1]: net device disabled (\"status\": \"disable\"), skipped",
	.disabled_addr = 0xa003600,
};

static const struct subst qemu_x86_64_subst[] = {
	{ "zone0_ipa", "0x40300000", SIM_ZONE0(0) },
	{ "size", "0x20000000", SIM_SIZE },
	{ "zone0_ipa", "0x100000000", SIM_ZONE0(REG_SIZE) },
	{ "size", "0x70000000", SIM_SIZE },
	{ NULL }
};

FIXTURE_VARIANT_ADD(ex, qemu_x86_64) {
	.text = HVT_QEMU_X86_64,
	.subst = qemu_x86_64_subst,
	.nreg = 2,
	.zonex = { 0x0, 0x100000000ULL },
	.img = "rootfs2.img",
	.dev = { { VIRTIO_ID_CONSOLE, 0x5950f000, 10 },
		 { VIRTIO_ID_NET, 0x5950f200, 14 },
		 { VIRTIO_ID_BLOCK, 0x5950f400, 11 } },
};

/* Host pointer of a guest address in any region of the zone, or NULL. */
static uint8_t *hp(FIXTURE_DATA(ex) *self, uint64_t gpa, size_t len)
{
	unsigned int i;
	uint8_t *p;

	for (i = 0; i < self->nreg; i++) {
		p = fg_zone_ptr(&self->fg, &self->reg[i], gpa);
		if (p && fg_zone_ptr(&self->fg, &self->reg[i], gpa + len - 1))
			return p;
	}
	return NULL;
}

/* The byte at offset i of the test image. */
static uint8_t img_byte(size_t i)
{
	return (uint8_t)(i * 167 + (i >> 9) * 13 + 5);
}

/*
 * Apply one substitution to the text in buf: the value of the only
 * "key": "from" pair (any blanks around the colon) becomes to.  0, or
 * -ENOENT / -EEXIST when the pair is not there exactly once.
 */
static int subst_apply(char *buf, size_t cap, const char *key,
		       const char *from, const char *to)
{
	char k[32], *p, *v, *hit = NULL;
	size_t tail;

	snprintf(k, sizeof(k), "\"%s\"", key);
	for (p = strstr(buf, k); p; p = strstr(p + 1, k)) {
		v = p + strlen(k);
		v += strspn(v, " \t\n");
		if (*v++ != ':')
			continue;
		v += strspn(v, " \t\n");
		if (*v != '"' || strncmp(v + 1, from, strlen(from)) ||
		    v[1 + strlen(from)] != '"')
			continue;
		if (hit)
			return -EEXIST;
		hit = v + 1;
	}
	if (!hit)
		return -ENOENT;
	tail = strlen(hit + strlen(from)) + 1;
	if (hit - buf + strlen(to) + tail > cap)
		return -ENOSPC;
	memmove(hit + strlen(to), hit + strlen(from), tail);
	memcpy(hit, to, strlen(to));
	return 0;
}

/* The example's config with the sim's substitutions, each one printed. */
static void make_config(struct __test_metadata *_metadata,
			FIXTURE_DATA(ex) *self,
			const FIXTURE_VARIANT(ex) *variant, char *buf, size_t cap)
{
	const struct subst *s;
	char to[24];
	int r;

	snprintf(buf, cap, "%s\n", variant->text);
	for (s = variant->subst; s->key; s++) {
		snprintf(to, sizeof(to), "%#llx", (unsigned long long)
			 (s->window ? self->fg.info.ram_base + s->val : s->val));
		r = subst_apply(buf, cap, s->key, s->from, to);
		ASSERT_EQ(0, r) TH_LOG("\"%s\": \"%s\" in the example: %s",
				       s->key, s->from, errname(r));
		TH_LOG("adapted: \"%s\": \"%s\" -> \"%s\" (%s)", s->key, s->from,
		       to, s->why);
	}
}

static void pump(FIXTURE_DATA(ex) *self, unsigned int ms,
		 uint32_t irq, unsigned int *irqs)
{
	struct hvio_device_res res[HVIO_BRIDGE_MAX_REQ];
	int i, n;

	if (ms)
		fg_wait_finish(&self->fg, ms);
	n = fg_drain_res(&self->fg, res, HVIO_BRIDGE_MAX_REQ);
	for (i = 0; i < n; i++)
		if (irqs && res[i].target_zone == ZONE_A && res[i].irq_id == irq)
			(*irqs)++;
}

/*
 * The module holds zone 1 with exactly the example's regions (as adapted):
 * HVIO_ZONE_ADD with HVIO_ZONE_F_REUSE answers 1 only for the very same
 * region list, -EEXIST for any other (here: the list one region short).
 */
static void zone_regions(struct __test_metadata *_metadata,
			 FIXTURE_DATA(ex) *self)
{
	struct hvio_zone_add za = { .zone_id = ZONE_A,
				    .flags = HVIO_ZONE_F_REUSE };
	unsigned int i;

	for (i = 0; i < self->nreg; i++)
		za.regions[i] = (struct hvio_mem_region){
			.zone0_ipa = fg_zone_phys(&self->fg, &self->reg[i]),
			.zonex_ipa = self->reg[i].zonex_ipa,
			.size = self->reg[i].size,
		};
	za.nr_regions = self->nreg;
	EXPECT_EQ(1, sys_ret(ioctl(self->fg.ctl_fd, HVIO_ZONE_ADD, &za)))
		TH_LOG("zone %u is not registered with the config's %u region(s)",
		       ZONE_A, self->nreg);
	if (self->nreg < 2)
		return;
	memset(&za.regions[self->nreg - 1], 0, sizeof(za.regions[0]));
	za.nr_regions = self->nreg - 1;
	EXPECT_EQ(-EEXIST, sys_ret(ioctl(self->fg.ctl_fd, HVIO_ZONE_ADD, &za)));
	TH_LOG("zone %u registered with its %u regions (HVIO_ZONE_ADD reuse check)",
	       ZONE_A, self->nreg);
}

/* Probe the device at dev->addr with want; rings at the device's slot. */
static void probe(struct __test_metadata *_metadata, FIXTURE_DATA(ex) *self,
		  const struct exdev *dev, unsigned int slot, uint64_t want,
		  unsigned int nq)
{
	uint64_t ring = self->reg[0].zonex_ipa + RING_OFF + slot * RING_STEP;
	unsigned int q;
	int r;

	fg_vdev_init(&self->v, &self->fg, 0, ZONE_A, dev->addr);
	r = fg_vdev_probe(&self->v, want, nq, QNUM, ring);
	ASSERT_EQ(0, r) TH_LOG("device at %#llx: probe: %s",
			       (unsigned long long)dev->addr, self->v.err);
	EXPECT_EQ(dev->id, self->v.device_id)
		TH_LOG("DeviceID at %#llx", (unsigned long long)dev->addr);
	ASSERT_EQ(nq, self->v.nq);
	for (q = 0; q < nq; q++)
		fv_init(&self->r[q], self->v.vq[q].num,
			hp(self, self->v.vq[q].desc, 16),
			hp(self, self->v.vq[q].driver, 4),
			hp(self, self->v.vq[q].device, 4), false);
}

/* Post one chain on queue q and notify the device. */
static void post(struct __test_metadata *_metadata, FIXTURE_DATA(ex) *self,
		 unsigned int q, const struct fv_buf *b, unsigned int n)
{
	ASSERT_LE(0, fv_add(&self->r[q], b, n, NULL, 0, (void *)1));
	fv_publish(&self->r[q]);
	fg_notify(&self->fg, self->v.cpu, ZONE_A,
		  self->v.base + VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

/* Wait for the used entry of the one chain on queue q: its length or -1. */
static long wait_used(FIXTURE_DATA(ex) *self, unsigned int q, uint32_t irq,
		      unsigned int *irqs)
{
	uint64_t deadline = fg_now_ms() + IO_MS;
	uint32_t len;
	void *tok;

	do {
		if (fv_get_used(&self->r[q], &len, &tok) == 1)
			return len;
		pump(self, 1, irq, irqs);
	} while (fg_now_ms() < deadline);
	return -1;
}

/* The completions came with interrupts carrying the shipped irq. */
static void expect_irq(struct __test_metadata *_metadata,
		       FIXTURE_DATA(ex) *self, const struct exdev *dev,
		       unsigned int irqs)
{
	pump(self, 100, dev->irq, &irqs);
	EXPECT_LT(0, irqs) TH_LOG("no interrupt with irq %u in res_list", dev->irq);
}

/* 4 KiB from the disk into a buffer of the zone's last region. */
static void blk_read(struct __test_metadata *_metadata, FIXTURE_DATA(ex) *self,
		     const struct exdev *dev)
{
	const struct fg_zone *high = &self->reg[self->nreg - 1];
	uint64_t hdr_gpa = self->reg[0].zonex_ipa + BUF_OFF;
	uint64_t data_gpa = high->zonex_ipa + HIGH_BUF_OFF;
	struct virtio_blk_outhdr h = {
		.type = htole32(VIRTIO_BLK_T_IN),
		.sector = htole64(READ_SECTOR),
	};
	struct fv_buf b[3] = {
		{ hdr_gpa, sizeof(h), false },
		{ data_gpa, READ_LEN, true },
		{ hdr_gpa + 512, 1, true },
	};
	uint8_t *data = hp(self, data_gpa, READ_LEN);
	uint8_t *status = hp(self, hdr_gpa + 512, 1);
	unsigned int irqs = 0;
	uint64_t cap;
	long len;

	cap = fg_read32(&self->fg, 0, ZONE_A, dev->addr + HVIO_MMIO_CONFIG_OFF) |
	      (uint64_t)fg_read32(&self->fg, 0, ZONE_A,
				  dev->addr + HVIO_MMIO_CONFIG_OFF + 4) << 32;
	EXPECT_EQ(IMG_SIZE / 512, cap) TH_LOG("capacity in sectors");
	ASSERT_NE(NULL, data);
	memcpy(hp(self, hdr_gpa, sizeof(h)), &h, sizeof(h));
	memset(data, 0xa5, READ_LEN);
	*status = 0xff;
	post(_metadata, self, 0, b, 3);
	len = wait_used(self, 0, dev->irq, &irqs);
	ASSERT_EQ(READ_LEN + 1, len) TH_LOG("disk read: used length");
	EXPECT_EQ(VIRTIO_BLK_S_OK, *status);
	EXPECT_EQ(0, memcmp(data, self->image + READ_SECTOR * 512, READ_LEN))
		TH_LOG("the disk's bytes differ from the image's");
	expect_irq(_metadata, self, dev, irqs);
	TH_LOG("blk at %#llx (irq %u): 4 KiB from sector %u read into guest %#llx, as in the image",
	       (unsigned long long)dev->addr, dev->irq, READ_SECTOR,
	       (unsigned long long)data_gpa);
}

/* The PTY the daemon printed ("console on /dev/pts/N"), opened. */
static void pty_open(struct __test_metadata *_metadata, FIXTURE_DATA(ex) *self)
{
	const char *p = strstr(self->d.out, "console on /dev/pts/");
	char path[64];
	size_t n;

	ASSERT_NE(NULL, p) TH_LOG("no PTY in stdout \"%s\"", self->d.out);
	p += strlen("console on ");
	n = strcspn(p, " \n");
	ASSERT_GT(sizeof(path), n);
	memcpy(path, p, n);
	path[n] = 0;
	self->pty = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	ASSERT_LE(0, self->pty) TH_LOG("open %s: %s", path, strerror(errno));
}

/* A line through transmitq0, read from the PTY. */
static void console_write(struct __test_metadata *_metadata,
			  FIXTURE_DATA(ex) *self, const struct exdev *dev)
{
	uint64_t gpa = self->reg[0].zonex_ipa + BUF_OFF + 0x1000;
	struct fv_buf b = { gpa, strlen(CONSOLE_LINE), false };
	uint64_t deadline = fg_now_ms() + IO_MS;
	unsigned int irqs = 0;
	char got[128];
	size_t n = 0;
	ssize_t r;

	pty_open(_metadata, self);
	memcpy(hp(self, gpa, b.len), CONSOLE_LINE, b.len);
	post(_metadata, self, 1, &b, 1);
	while (n < b.len && fg_now_ms() < deadline) {
		r = read(self->pty, got + n, sizeof(got) - 1 - n);
		if (r > 0)
			n += r;
		else
			pump(self, 1, dev->irq, &irqs);
	}
	got[n] = 0;
	EXPECT_STREQ(CONSOLE_LINE, got);
	EXPECT_EQ(0, wait_used(self, 1, dev->irq, &irqs));
	expect_irq(_metadata, self, dev, irqs);
	TH_LOG("console at %#llx (irq %u): a line from transmitq0 read from the PTY",
	       (unsigned long long)dev->addr, dev->irq);
}

/* The mac from the config, and one frame of the guest's on tap0. */
static void net_send(struct __test_metadata *_metadata, FIXTURE_DATA(ex) *self,
		     const struct exdev *dev)
{
	static const uint8_t mac[6] = { 0x00, 0x16, 0x3e, 0x10, 0x10, 0x10 };
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint64_t gpa = self->reg[0].zonex_ipa + BUF_OFF + 0x2000;
	struct fv_buf b = { gpa, HVIO_NET_HDR_LEN + 100, false };
	uint64_t deadline = fg_now_ms() + IO_MS;
	uint8_t got[256], *p = hp(self, gpa, b.len);
	uint32_t stream = 0, seq = 0;
	unsigned int i, irqs = 0;
	ssize_t n = -1;

	ASSERT_TRUE(self->v.driver_features & (1ULL << VIRTIO_NET_F_MAC));
	for (i = 0; i < 6; i++)
		EXPECT_EQ(mac[i], fg_read8(&self->fg, 0, ZONE_A, dev->addr +
					   HVIO_MMIO_CONFIG_OFF + i))
			TH_LOG("mac byte %u", i);
	ASSERT_OK(fn_if_set_up(TAP, true));
	self->pkt = fn_pkt_open(fn_if_index(TAP), false);
	ASSERT_LE(0, self->pkt) TH_LOG("packet socket on %s: %s", TAP,
				       errname(self->pkt));
	memset(p, 0, HVIO_NET_HDR_LEN);
	fn_frame_test(p + HVIO_NET_HDR_LEN, 100, bcast, mac, 12, 3);
	post(_metadata, self, HVIO_NET_TX_QUEUE, &b, 1);
	/* anything else the TAP sees is skipped */
	while (fg_now_ms() < deadline) {
		n = fn_pkt_recv(self->pkt, got, sizeof(got), 100);
		if (n == 100 && fn_frame_check(got, n, &stream, &seq))
			break;
		pump(self, 0, dev->irq, &irqs);
	}
	EXPECT_EQ(100, n) TH_LOG("no frame from the guest on %s", TAP);
	EXPECT_EQ(12, stream);
	EXPECT_EQ(3, seq);
	EXPECT_EQ(0, wait_used(self, HVIO_NET_TX_QUEUE, dev->irq, &irqs));
	expect_irq(_metadata, self, dev, irqs);
	TH_LOG("net at %#llx (irq %u): mac 00:16:3e:10:10:10, a frame reached %s",
	       (unsigned long long)dev->addr, dev->irq, TAP);
}

FIXTURE_SETUP(ex)
{
	size_t k;
	int r;

	self->pty = -1;
	self->pkt = -1;
	fn_daemon_init(&self->d, "examples");
	hvio_daemon_fixture_open(_metadata, &self->fg, &self->skip,
				 &self->opened, ZONE_A);
	if (self->skip)
		return;
	ASSERT_LE(MAX_REG * REG_SIZE, self->fg.info.ram_size);
	/* tap0 of the x86_64 example lives in a namespace of the test */
	r = fn_netns_enter();
	ASSERT_EQ(0, r) TH_LOG("unshare(CLONE_NEWNET): %s", errname(r));
	self->nreg = variant->nreg;
	for (k = 0; k < variant->nreg; k++)
		self->reg[k] = (struct fg_zone){ .id = ZONE_A,
			.zonex_ipa = variant->zonex[k], .ram_off = k * REG_SIZE,
			.size = REG_SIZE };
	memset(self->fg.ram, 0, MAX_REG * REG_SIZE);
	/* the config's own directory; the daemon runs from elsewhere */
	snprintf(self->dir, sizeof(self->dir), "/tmp/hvio-examples-%d",
		 (int)getpid());
	ASSERT_EQ(0, mkdir(self->dir, 0755)) TH_LOG("%s: %s", self->dir, strerror(errno));
	snprintf(self->d.cfg, sizeof(self->d.cfg), "%s/virtio_cfg.json", self->dir);
	snprintf(self->img, sizeof(self->img), "%s/%s", self->dir, variant->img);
	ASSERT_EQ(0, chdir("/"));
	ASSERT_NE(0, access(variant->img, F_OK)) TH_LOG("/%s exists", variant->img);
	self->image = malloc(IMG_SIZE);
	ASSERT_NE(NULL, self->image);
	for (k = 0; k < IMG_SIZE; k++)
		self->image[k] = img_byte(k);
	r = open(self->img, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_LE(0, r) TH_LOG("%s: %s", self->img, strerror(errno));
	EXPECT_EQ(IMG_SIZE, write(r, self->image, IMG_SIZE));
	close(r);
	fg_flush_res(&self->fg);
}

FIXTURE_TEARDOWN(ex)
{
	int st;

	_metadata->trigger = 0;
	if (self->pty >= 0)
		close(self->pty);
	if (self->pkt >= 0)
		close(self->pkt);
	if (self->d.pid > 0) {
		st = fn_daemon_stop(&self->d, SIGTERM, STOP_MS);
		EXPECT_TRUE(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
			TH_LOG("daemon after SIGTERM: %s; stderr \"%s\"",
			       fn_wstatus(st), fn_daemon_log(&self->d));
	}
	fn_daemon_cleanup(&self->d);
	if (self->img[0])
		unlink(self->img);
	if (self->dir[0])
		rmdir(self->dir);
	free(self->image);
	if (self->opened) {
		EXPECT_EQ(0, self->r[0].bad_used + self->r[1].bad_used);
		hvio_fixture_close(_metadata, &self->fg);
	}
}

TEST_F_TIMEOUT(ex, served_as_shipped, 120)
{
	/* `hvio run` on the example (sim substitutions only) says ready with its device count (and skips its disabled device with a line), and every device answers at its shipped address: the disk's bytes, a console line on the PTY, a frame on tap0. */
	char json[4096], ready[64], log[4096];
	const struct exdev *dev;
	unsigned int ndev, i;
	int r;

	if (self->skip)
		return;
	make_config(_metadata, self, variant, json, sizeof(json));
	for (ndev = 0; ndev < MAX_DEV && variant->dev[ndev].id; ndev++)
		;
	snprintf(ready, sizeof(ready), "hvio: ready (%u devices)", ndev);
	r = fn_daemon_start(&self->d, json, ready, READY_MS);
	ASSERT_EQ(0, r)
		TH_LOG("daemon not ready (%s; %s): stdout \"%s\", stderr \"%s\"",
		       errname(r), self->d.pid > 0 ? "running" :
		       fn_wstatus(self->d.exit_status), self->d.out,
		       fn_daemon_log(&self->d));
	snprintf(log, sizeof(log), "%s", fg_file_tail(self->d.log));
	if (variant->skipped) {
		EXPECT_NE(NULL, strstr(log, variant->skipped))
			TH_LOG("no \"%s\" in stderr \"%s\"", variant->skipped, log);
		/* nothing answers in the disabled device's window */
		EXPECT_EQ(0, fg_read32(&self->fg, 0, ZONE_A, variant->disabled_addr +
				       VIRTIO_MMIO_MAGIC_VALUE));
	} else {
		EXPECT_EQ(NULL, strstr(log, "skipped")) TH_LOG("stderr \"%s\"", log);
	}
	zone_regions(_metadata, self);
	for (i = 0; i < ndev; i++) {
		dev = &variant->dev[i];
		switch (dev->id) {
		case VIRTIO_ID_BLOCK:
			probe(_metadata, self, dev, i, FG_F_VERSION_1, 1);
			blk_read(_metadata, self, dev);
			break;
		case VIRTIO_ID_CONSOLE:
			probe(_metadata, self, dev, i, FG_F_VERSION_1, 2);
			console_write(_metadata, self, dev);
			break;
		case VIRTIO_ID_NET:
			probe(_metadata, self, dev, i, FG_F_VERSION_1 |
			      (1ULL << VIRTIO_NET_F_MAC), 2);
			net_send(_metadata, self, dev);
			break;
		}
	}
	EXPECT_EQ(0, self->fg.errors) TH_LOG("bridge: %s", self->fg.err);
	EXPECT_TRUE(fn_daemon_alive(&self->d)) TH_LOG("stderr \"%s\"",
						       fn_daemon_log(&self->d));
}

TEST_HARNESS_MAIN
