// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_hvtool: living beside hvisor-tool's hvisor.ko.  hvisor keeps one
 * virtio bridge, the page of the last HVISOR_HC_INIT_VIRTIO, and raises
 * the root IRQ only while that page asks for it; `hvisor virtio start`
 * after hvio's load hands hvisor hvisor.ko's own page, and from then on
 * every root IRQ finds hvio's ring empty.  hvio counts root IRQs that
 * found nothing (HVIO_GET_STATS empty_irqs) and warns once a run of them
 * is long (64 in a row), which a lone empty IRQ (the handler's re-check
 * already took its request) never makes.
 *
 * hvisor.ko requests the root IRQ at its load (IRQF_SHARED |
 * IRQF_TRIGGER_RISING, "hvisor_virtio_device") with a handler that says
 * IRQ_NONE while its daemon is not running.  kmod/hvtool_stub.ko plays
 * that request on a software IRQ line of its own, and hvio.ko loaded with
 * sim_irq=<that line> requests it exactly as the hvisor provider requests
 * the root IRQ: the two share it with either one first, and every
 * register access is still answered.
 */
#include "hvio_test.h"

#include <libgen.h>
#include <sys/klog.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

#define EMPTY_WARN	64	/* HVIO_BRIDGE_EMPTY_WARN in module/hvio_bridge.c */
#define WARN_TEXT	"root IRQs in a row found the bridge empty"
#define KLOG_SIZE	(1 << 20)

FIXTURE(hvtool) {
	struct fg fg;
	bool skip;
};

FIXTURE_SETUP(hvtool)
{
	hvio_fixture_open(_metadata, &self->fg, &self->skip);
}

FIXTURE_TEARDOWN(hvtool)
{
	if (!self->skip)
		hvio_fixture_close(_metadata, &self->fg);
}

/* Times the kernel log holds WARN_TEXT (-1: unreadable). */
static int klog_count(void)
{
	static char buf[KLOG_SIZE + 1];
	int n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, KLOG_SIZE);
	const char *p = buf;
	int c = 0;

	if (n < 0)
		return -1;
	buf[n] = 0;
	while ((p = strstr(p, WARN_TEXT))) {
		c++;
		p++;
	}
	return c;
}

/* Raise the root IRQ with nothing in req_list, and wait for the handler. */
static int raise_empty(struct fg *fg, unsigned int times)
{
	struct hvio_stats st;
	uint64_t irqs, t0;
	unsigned int i;
	int r;

	for (i = 0; i < times; i++) {
		r = fg_stats(fg, &st);
		if (r)
			return r;
		irqs = st.irqs;
		r = fg_raise(fg);
		if (r)
			return r;
		/* irq_work: wait until it ran, so no raise folds into another */
		t0 = fg_now_ms();
		do {
			r = fg_stats(fg, &st);
			if (r)
				return r;
			if (st.irqs != irqs)
				break;
			fg_sleep_ms(1);
		} while (fg_now_ms() - t0 < FG_TIMEOUT_MS);
		if (st.irqs == irqs)
			return -ETIMEDOUT;
	}
	return 0;
}

TEST_F(hvtool, empty_irqs_counted_and_a_run_warned)
{
	/* Root IRQs that find req_list empty are counted in empty_irqs; 64 in a row log one warning that another driver may hold hvisor's bridge, while runs broken by a real request (63, a register read, 63) log none. */
	struct hvio_stats a, b;
	int k0, k1, k2;

	NEED_SETUP();
	ASSERT_EQ(0, fg_stats(&self->fg, &a));
	k0 = klog_count();
	ASSERT_LE(0, k0) TH_LOG("klogctl: %s", strerror(errno));

	/* a request ends any run an earlier test left; one in between too */
	fg_read32(&self->fg, 0, ZONE_A, MMIO_BASE);
	ASSERT_EQ(0, raise_empty(&self->fg, EMPTY_WARN - 1));
	fg_read32(&self->fg, 0, ZONE_A, MMIO_BASE);
	ASSERT_EQ(0, self->fg.errors) TH_LOG("%s", self->fg.err);
	ASSERT_EQ(0, raise_empty(&self->fg, EMPTY_WARN - 1));
	ASSERT_EQ(0, fg_stats(&self->fg, &b));
	EXPECT_EQ(2 * (EMPTY_WARN - 1), b.empty_irqs - a.empty_irqs);
	k1 = klog_count();
	EXPECT_EQ(k0, k1) TH_LOG("warned for runs of %d empty IRQs", EMPTY_WARN - 1);

	/* the 64th in a row warns, once */
	fg_read32(&self->fg, 0, ZONE_A, MMIO_BASE);
	ASSERT_EQ(0, raise_empty(&self->fg, 2 * EMPTY_WARN));
	ASSERT_EQ(0, fg_stats(&self->fg, &a));
	EXPECT_EQ(2 * EMPTY_WARN, a.empty_irqs - b.empty_irqs);
	k2 = klog_count();
	EXPECT_EQ(k1 + 1, k2) TH_LOG("warnings: %d before, %d after", k1, k2);
	/* the bridge still answers */
	fg_read32(&self->fg, 0, ZONE_A, MMIO_BASE);
	EXPECT_EQ(0, self->fg.errors) TH_LOG("%s", self->fg.err);
	TH_LOG("irqs %llu, empty %llu, reqs %llu",
	       (unsigned long long)a.irqs, (unsigned long long)a.empty_irqs,
	       (unsigned long long)a.reqs);
}

/* ---- sharing the root IRQ line with hvisor.ko ----------------------- */

#define STUB		"hvtool_stub"
#define HVISOR_KO_NAME	"hvisor_virtio_device"
#define TRAFFIC		100

FIXTURE(shared) {
	char stub_ko[512];
	bool skip, stub_loaded;
	int irq;
};

static int mod_load(const char *ko, const char *params)
{
	int fd = open(ko, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0)
		return -errno;
	r = syscall(__NR_finit_module, fd, params, 0) ? -errno : 0;
	close(fd);
	return r;
}

/* delete_module, retried while the module is still busy for up to 5 s. */
static int mod_unload(const char *name)
{
	uint64_t t0 = fg_now_ms();
	int r;

	do {
		r = syscall(__NR_delete_module, name, O_NONBLOCK) ? -errno : 0;
		if (!fg_rmmod_refused(r))
			return r;
		fg_sleep_ms(20);
	} while (fg_now_ms() - t0 < 5000);
	return r;
}

/* hvio.ko with the VM's parameters plus sim_irq (0: none). */
static int hvio_load(int irq)
{
	char params[512];

	snprintf(params, sizeof(params), "%s sim_irq=%d",
		 getenv("HVIO_PARAMS"), irq);
	return mod_load(getenv("HVIO_KO"), irq ? params : getenv("HVIO_PARAMS"));
}

static long param_get(const char *name)
{
	char path[128], buf[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/" STUB "/parameters/%s", name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return buf[0] ? strtol(buf, NULL, 10) : -1;
}

static int param_set(const char *name, const char *val)
{
	char path[128];
	int fd, r = 0;

	snprintf(path, sizeof(path), "/sys/module/" STUB "/parameters/%s", name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* The handler names of IRQ irq in /proc/interrupts ("" if none). */
static const char *irq_actions(int irq)
{
	static char line[4096];
	char want[16];
	FILE *f = fopen("/proc/interrupts", "r");
	char *p;

	line[0] = 0;
	if (!f)
		return line;
	snprintf(want, sizeof(want), "%d:", irq);
	while (fgets(line, sizeof(line), f)) {
		p = line + strspn(line, " ");
		if (!strncmp(p, want, strlen(want)))
			break;
		line[0] = 0;
	}
	fclose(f);
	return line;
}

/*
 * PREEMPT_RT force-threads both handlers of the shared line: a raise
 * wakes each one's thread, and a thread woken again before it ran runs
 * once for both raises, so the two handlers' counts differ (the stub's
 * thread may even run only after the traffic).
 */
static bool kernel_is_rt(void)
{
	struct utsname u;

	return !uname(&u) && strstr(u.version, "PREEMPT_RT");
}

/*
 * TRAFFIC register reads through the bridge (no device there: answered
 * with 0); every read raises the line when hvio sleeps.  With the line
 * shared the stub's handler must have run once for each of hvio's (on
 * PREEMPT_RT: at least once, within a second, see kernel_is_rt()).
 */
static void traffic(struct __test_metadata *_metadata, const char *what,
		    bool shared)
{
	struct hvio_stats a, b;
	bool stub_ok;
	long c0, c1;
	struct fg fg;
	int i, r;

	r = fg_open(&fg);
	ASSERT_EQ(0, r) TH_LOG("%s: fg_open: %s", what, fg.err);
	ASSERT_EQ(0, fg_stats(&fg, &a));
	c0 = param_get("calls");
	for (i = 0; i < TRAFFIC; i++)
		fg_read32(&fg, i % 4, ZONE_A, MMIO_BASE + 4 * i);
	EXPECT_EQ(0, fg.errors) TH_LOG("%s: %s", what, fg.err);
	ASSERT_EQ(0, fg_stats(&fg, &b));
	c1 = param_get("calls");
	EXPECT_LE(TRAFFIC, b.reqs - a.reqs);
	EXPECT_LT(0, b.irqs - a.irqs) TH_LOG("%s: no root IRQ reached hvio", what);
	if (shared && kernel_is_rt()) {
		/* Its thread may not have had the CPU yet: give it a second. */
		for (i = 0; i < 200 && c1 == c0; i++) {
			fg_sleep_ms(5);
			c1 = param_get("calls");
		}
		stub_ok = c1 - c0 > 0;
	} else
		stub_ok = c1 - c0 == (shared ? (long)(b.irqs - a.irqs) : 0);
	EXPECT_TRUE(stub_ok)
		TH_LOG("%s: hvio's handler ran %llu times, the stub's %ld", what,
		       (unsigned long long)(b.irqs - a.irqs), c1 - c0);
	TH_LOG("%s: %d reads answered, %llu root IRQs (%llu empty), stub handler runs %ld",
	       what, TRAFFIC, (unsigned long long)(b.irqs - a.irqs),
	       (unsigned long long)(b.empty_irqs - a.empty_irqs), c1 - c0);
	fg_close(&fg);
}

FIXTURE_SETUP(shared)
{
	const char *ko = getenv("HVIO_KO");
	char dir[512];

	self->irq = 0;
	if (!ko || !getenv("HVIO_PARAMS")) {
		self->skip = true;
		SKIP(return, "HVIO_KO/HVIO_PARAMS not set: not in the test VM");
	}
	snprintf(dir, sizeof(dir), "%s", ko);
	snprintf(self->stub_ko, sizeof(self->stub_ko), "%s/" STUB ".ko",
		 dirname(dir));
	if (access(self->stub_ko, R_OK)) {
		self->skip = true;
		SKIP(return, "%s: not built", self->stub_ko);
	}
}

FIXTURE_TEARDOWN(shared)
{
	int r;

	if (self->skip)
		return;
	_metadata->trigger = 0;
	mod_unload("hvio");
	if (self->stub_loaded) {
		/* the stub's own request holds a reference on it */
		EXPECT_EQ(0, param_set("request", "0"));
		EXPECT_EQ(0, mod_unload(STUB));
	}
	r = hvio_load(0);
	EXPECT_EQ(0, r) TH_LOG("insmod hvio.ko %s: %s", getenv("HVIO_PARAMS"), errname(r));
}

static void stub_load(struct __test_metadata *_metadata,
		      FIXTURE_DATA(shared) *self, const char *params)
{
	int r = mod_load(self->stub_ko, params);

	ASSERT_EQ(0, r) TH_LOG("insmod %s %s: %s", self->stub_ko, params, errname(r));
	self->stub_loaded = true;
	self->irq = (int)param_get("irq");
	ASSERT_LT(0, self->irq);
}

TEST_F(shared, root_irq_shared_with_hvisor_ko_either_order)
{
	/* On a rising-edge line (hvisor's example device trees), hvio.ko and a stand-in for hvisor.ko's root IRQ request (IRQF_SHARED | IRQF_TRIGGER_RISING, IRQ_NONE unless its daemon runs) share it loaded in either order: both handlers run for every raise, every register access is answered, whether the stand-in says IRQ_NONE or IRQ_HANDLED, and the line stays with the other driver when one goes. */
	const char *acts;
	int r;

	NEED_SETUP();
	ASSERT_EQ(0, mod_unload("hvio")) TH_LOG("rmmod hvio");
	/* hvisor.ko first, then hvio */
	stub_load(_metadata, self, "request=1 trigger=1");
	r = hvio_load(self->irq);
	ASSERT_EQ(0, r) TH_LOG("insmod hvio.ko sim_irq=%d: %s", self->irq, errname(r));
	acts = irq_actions(self->irq);
	EXPECT_TRUE(strstr(acts, HVISOR_KO_NAME) && strstr(acts, "hvio"))
		TH_LOG("IRQ %d: \"%s\"", self->irq, acts);
	traffic(_metadata, "hvisor.ko first, IRQ_NONE", true);
	ASSERT_EQ(0, param_set("armed", "1"));
	traffic(_metadata, "hvisor.ko first, IRQ_HANDLED", true);
	ASSERT_EQ(0, param_set("armed", "0"));
	ASSERT_EQ(0, mod_unload("hvio"));
	acts = irq_actions(self->irq);
	EXPECT_TRUE(strstr(acts, HVISOR_KO_NAME) && !strstr(acts, "hvio"))
		TH_LOG("IRQ %d after rmmod hvio: \"%s\"", self->irq, acts);

	/* hvio first, then hvisor.ko */
	ASSERT_EQ(0, param_set("request", "0"));
	r = hvio_load(self->irq);
	ASSERT_EQ(0, r) TH_LOG("insmod hvio.ko sim_irq=%d: %s", self->irq, errname(r));
	r = param_set("request", "1");
	ASSERT_EQ(0, r) TH_LOG("the stand-in's request after hvio's: %s", errname(r));
	acts = irq_actions(self->irq);
	EXPECT_TRUE(strstr(acts, HVISOR_KO_NAME) && strstr(acts, "hvio"))
		TH_LOG("IRQ %d: \"%s\"", self->irq, acts);
	traffic(_metadata, "hvio first, IRQ_NONE", true);
	/* hvisor.ko unloaded under hvio: hvio keeps the line */
	ASSERT_EQ(0, param_set("request", "0"));
	acts = irq_actions(self->irq);
	EXPECT_TRUE(!strstr(acts, HVISOR_KO_NAME) && strstr(acts, "hvio"))
		TH_LOG("IRQ %d: \"%s\"", self->irq, acts);
	traffic(_metadata, "hvio alone", false);
}

TEST_F(shared, level_line_needs_hvisor_ko_first)
{
	/* On a line the device tree makes level-triggered, hvisor.ko loaded first sets it to rising edge and hvio shares it; with hvio first, hvisor.ko's rising-edge request is refused (EBUSY, a flags mismatch) and hvio goes on serving alone: the load order README.md gives. */
	const char *acts;
	int r;

	NEED_SETUP();
	ASSERT_EQ(0, mod_unload("hvio")) TH_LOG("rmmod hvio");
	stub_load(_metadata, self, "request=1 trigger=4");
	r = hvio_load(self->irq);
	ASSERT_EQ(0, r) TH_LOG("insmod hvio.ko sim_irq=%d: %s", self->irq, errname(r));
	acts = irq_actions(self->irq);
	EXPECT_TRUE(strstr(acts, HVISOR_KO_NAME) && strstr(acts, "hvio"))
		TH_LOG("IRQ %d: \"%s\"", self->irq, acts);
	traffic(_metadata, "level line, hvisor.ko first", true);
	ASSERT_EQ(0, mod_unload("hvio"));
	ASSERT_EQ(0, param_set("request", "0"));
	ASSERT_EQ(0, mod_unload(STUB));
	self->stub_loaded = false;

	stub_load(_metadata, self, "request=0 trigger=4");
	r = hvio_load(self->irq);
	ASSERT_EQ(0, r) TH_LOG("insmod hvio.ko sim_irq=%d: %s", self->irq, errname(r));
	EXPECT_EQ(-EBUSY, param_set("request", "1"));
	acts = irq_actions(self->irq);
	EXPECT_TRUE(!strstr(acts, HVISOR_KO_NAME) && strstr(acts, "hvio"))
		TH_LOG("IRQ %d: \"%s\"", self->irq, acts);
	traffic(_metadata, "level line, hvio first, hvisor.ko refused", false);
}

TEST_HARNESS_MAIN
