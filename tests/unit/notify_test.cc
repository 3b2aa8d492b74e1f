// SPDX-License-Identifier: GPL-2.0
//
// sd_notify without libsystemd (userspace/lib/notify.h): a NOTIFY_SOCKET
// of the test's own, a path and an abstract name, receives exactly the
// datagrams hvio run sends (READY=1 with STATUS, then STOPPING=1).
#include "notify.h"
#include "unique_fd.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

namespace {

// A datagram socket bound to name ('@': abstract), as systemd makes one.
hvio::UniqueFd bind_notify_socket(const std::string &name) {
    hvio::UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd)
        return fd;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, name.data(), name.size());
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
    if (name[0] == '@')
        sa.sun_path[0] = '\0';
    if (::bind(fd.get(), reinterpret_cast<sockaddr *>(&sa), len) < 0)
        fd.reset();
    return fd;
}

// Every datagram waiting on fd.
std::vector<std::string> receive_all(int fd) {
    std::vector<std::string> got;
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) >= 0;)
        got.emplace_back(buf, static_cast<size_t>(n));
    return got;
}

// What hvio run sends over its life: ready with 3 devices in 1 zone,
// then the drain.
std::vector<std::string> daemon_lifecycle(const std::string &socket) {
    EXPECT_EQ(0, ::setenv("NOTIFY_SOCKET", socket.c_str(), 1));
    hvio::Notifier n = hvio::Notifier::from_env();
    ::unsetenv("NOTIFY_SOCKET");
    EXPECT_TRUE(n.enabled());
    EXPECT_EQ(0, n.ready(3, 1));
    EXPECT_EQ(0, n.stopping());
    return {"READY=1\nSTATUS=serving 3 devices in 1 zone",
            "STOPPING=1\nSTATUS=stopping: finishing I/O in flight"};
}

TEST(Notify, PathSocketReceivesReadyStatusThenStopping) {
    const std::string path = "/tmp/hvio-unit-notify-" + std::to_string(::getpid());
    ::unlink(path.c_str());
    hvio::UniqueFd s = bind_notify_socket(path);
    ASSERT_TRUE(s) << std::strerror(errno);
    auto want = daemon_lifecycle(path);
    EXPECT_EQ(receive_all(s.get()), want);
    ::unlink(path.c_str());
}

TEST(Notify, AbstractSocketReceivesReadyStatusThenStopping) {
    const std::string name = "@hvio-unit-notify-" + std::to_string(::getpid());
    hvio::UniqueFd s = bind_notify_socket(name);
    ASSERT_TRUE(s) << std::strerror(errno);
    auto want = daemon_lifecycle(name);
    EXPECT_EQ(receive_all(s.get()), want);
}

TEST(Notify, WithoutNotifySocketNothingIsSent) {
    ::unsetenv("NOTIFY_SOCKET");
    hvio::Notifier n = hvio::Notifier::from_env();
    EXPECT_FALSE(n.enabled());
    EXPECT_EQ(0, n.ready(1, 1));
    EXPECT_EQ(0, n.stopping());
}

TEST(Notify, GoneSocketIsAnErrorNotACrash) {
    hvio::Notifier n("/tmp/hvio-unit-notify-nobody-" + std::to_string(::getpid()));
    EXPECT_EQ(-ENOENT, n.ready(1, 1));
    EXPECT_EQ(-EINVAL, hvio::Notifier("relative").stopping());
}

TEST(Notify, StatusCountsDevicesAndZones) {
    EXPECT_EQ(hvio::serving_status(1, 1), "serving 1 device in 1 zone");
    EXPECT_EQ(hvio::serving_status(5, 2), "serving 5 devices in 2 zones");
}

} // namespace
