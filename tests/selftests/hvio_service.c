// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_service: the real daemon (`hvio run`, /bin/hvio) as systemd runs
 * it, and its tools with hvio.ko loaded.
 *   - notify_and_journal: with NOTIFY_SOCKET (an abstract name) and
 *     JOURNAL_STREAM (naming its stderr) set, the socket receives exactly
 *     READY=1 + STATUS once the device answers the guest, then STOPPING=1
 *     at SIGTERM, and every stderr line carries a journald priority;
 *   - version_and_check: `hvio --version` names the loaded module's API
 *     version, `hvio check` validates against its limits and creates no
 *     zone.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "hvio_test.h"
#include "fakenet.h"

#define ZONE_SIZE	(4 * MIB)
#define BLK_IRQ		40
#define READY_MS	20000
#define STOP_MS		20000
#define VIRTIO_MAGIC	0x74726976	/* "virt" */

FIXTURE(service) {
	struct fg fg;
	struct fg_zone z;
	bool skip;
	struct fn_daemon d;
	char img[64], json[1024];
	int nfd;
};

FIXTURE_SETUP(service)
{
	int fd;

	self->nfd = -1;
	self->z = (struct fg_zone){ .id = ZONE_A, .zonex_ipa = GUEST_RAM,
				    .ram_off = 0, .size = ZONE_SIZE };
	hvio_fixture_open(_metadata, &self->fg, &self->skip);
	if (self->skip)
		return;
	fn_daemon_init(&self->d, "svc");
	snprintf(self->img, sizeof(self->img), "/tmp/hvio-svc-%d.img", getpid());
	fd = open(self->img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, MIB));
	close(fd);
	snprintf(self->json, sizeof(self->json),
		 "{\"zones\":[{\"id\":%u,\"memory_region\":[{\"zone0_ipa\":\"%#llx\","
		 "\"zonex_ipa\":\"%#llx\",\"size\":\"%#llx\"}],"
		 "\"devices\":[{\"type\":\"blk\",\"addr\":\"%#llx\",\"len\":\"0x200\","
		 "\"irq\":%u,\"img\":\"%s\",\"status\":\"enable\"}]}]}\n",
		 ZONE_A, (unsigned long long)fg_zone_phys(&self->fg, &self->z),
		 (unsigned long long)GUEST_RAM, (unsigned long long)ZONE_SIZE,
		 (unsigned long long)MMIO_BASE, BLK_IRQ, self->img);
}

FIXTURE_TEARDOWN(service)
{
	if (self->skip)
		return;
	unsetenv("NOTIFY_SOCKET");
	unsetenv("JOURNAL_STREAM");
	if (self->nfd >= 0)
		close(self->nfd);
	fn_daemon_cleanup(&self->d);
	unlink(self->img);
	hvio_fixture_close(_metadata, &self->fg);
}

/* The next datagram within ms into buf (NUL-terminated): its length or -1. */
static ssize_t notify_recv(int fd, char *buf, size_t len, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, ms) <= 0)
		return -1;
	n = recv(fd, buf, len - 1, MSG_DONTWAIT);
	buf[n > 0 ? n : 0] = 0;
	return n;
}

TEST_F(service, notify_and_journal)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char name[64], buf[512], env[64];
	struct stat st;
	socklen_t salen;
	ssize_t n;
	int fd;
	FILE *f;

	/* systemd's NOTIFY_SOCKET, in the abstract namespace */
	snprintf(name, sizeof(name), "@hvio-svc-%d", getpid());
	memcpy(sa.sun_path, name, strlen(name));
	sa.sun_path[0] = 0;
	salen = offsetof(struct sockaddr_un, sun_path) + strlen(name);
	self->nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, self->nfd);
	ASSERT_EQ(0, bind(self->nfd, (struct sockaddr *)&sa, salen));
	ASSERT_EQ(0, setenv("NOTIFY_SOCKET", name, 1));

	/* JOURNAL_STREAM naming the daemon's stderr: the log file it gets
	 * (fg_daemon_spawn truncates it, the inode stays).
	 */
	fd = open(self->d.log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, fstat(fd, &st));
	close(fd);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	ASSERT_EQ(0, setenv("JOURNAL_STREAM", env, 1));

	ASSERT_EQ(0, fn_daemon_start(&self->d, self->json, "hvio: ready (1 devices)",
				     READY_MS))
		TH_LOG("daemon: %s", fn_daemon_log(&self->d));
	n = notify_recv(self->nfd, buf, sizeof(buf), 5000);
	ASSERT_LT(0, n);
	EXPECT_STREQ("READY=1\nSTATUS=serving 1 device in 1 zone", buf);
	/* ready means answering: the guest reads the device's magic */
	EXPECT_EQ(VIRTIO_MAGIC, fg_read32(&self->fg, 0, ZONE_A, MMIO_BASE));
	EXPECT_EQ(-1, notify_recv(self->nfd, buf, sizeof(buf), 200)) TH_LOG("more: %s", buf);

	ASSERT_EQ(0, fn_daemon_stop(&self->d, SIGTERM, STOP_MS))
		TH_LOG("daemon: %s", fn_daemon_log(&self->d));
	n = notify_recv(self->nfd, buf, sizeof(buf), 1000);
	ASSERT_LT(0, n);
	EXPECT_STREQ("STOPPING=1\nSTATUS=stopping: finishing I/O in flight", buf);
	EXPECT_EQ(-1, notify_recv(self->nfd, buf, sizeof(buf), 200)) TH_LOG("more: %s", buf);

	/* every line of stderr with its priority; the stop lines are info */
	f = fopen(self->d.log, "re");
	ASSERT_NE(NULL, f);
	n = 0;
	while (fgets(buf, sizeof(buf), f)) {
		TH_LOG("stderr: %s", buf);
		EXPECT_TRUE(buf[0] == '<' && buf[2] == '>') TH_LOG("no priority: %s", buf);
		n += !strcmp(buf, "<6>hvio: stopped\n");
	}
	fclose(f);
	EXPECT_EQ(1, n);
}

TEST_F(service, version_and_check)
{
	char out[1024], want[64];
	struct hvio_stats st;
	int fd;

	EXPECT_EQ(0, fg_hvio_cmd(out, sizeof(out), "--version", NULL, NULL, NULL));
	snprintf(want, sizeof(want), "\nhvio.ko: api version %u, provider sim\n",
		 HVIO_API_VERSION);
	EXPECT_NE(NULL, strstr(out, want)) TH_LOG("hvio --version: %s", out);

	fd = open(self->d.cfg, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ((ssize_t)strlen(self->json), write(fd, self->json, strlen(self->json)));
	close(fd);
	EXPECT_EQ(0, fg_hvio_cmd(out, sizeof(out), "check", self->d.cfg, NULL, NULL));
	EXPECT_NE(NULL, strstr(out, ": ok (serving 1 device in 1 zone; within hvio.ko's limits)"))
		TH_LOG("hvio check: %s", out);
	/* nothing created */
	ASSERT_EQ(0, fg_stats(&self->fg, &st));
	EXPECT_EQ(0, st.zones);
	EXPECT_EQ(0, st.devs);
}

TEST_HARNESS_MAIN
