// SPDX-License-Identifier: GPL-2.0
// Unit tests of Ring (userspace/lib/ring.h): set-up flags, fixed files and
// the io_uring_enter count the bench reports as syscalls_per_req.
#include <gtest/gtest.h>

#include "ring.h"

#include <cstring>
#include <string_view>
#include <sys/eventfd.h>
#include <unistd.h>

namespace {

TEST(RingTest, SetsUpWithTheBestFlagsTheKernelTakes) {
    hvio::Ring r;
    ASSERT_TRUE(r.init(8).ok());
    ASSERT_TRUE(r.ok());
    const std::string_view mode = r.mode();
    EXPECT_TRUE(mode == "defer_taskrun" || mode == "coop_taskrun" || mode == "plain") << mode;
    if (mode == "defer_taskrun") {
        EXPECT_TRUE(r.get().flags & IORING_SETUP_DEFER_TASKRUN);
    }
}

TEST(RingTest, CountsOnlyTheEntersItMakes) {
    // Nothing queued and no wait: no syscall.  A NOP submitted and waited
    // for: one.  Its CQE already there: a wait needs no syscall.
    hvio::Ring r;
    ASSERT_TRUE(r.init(8).ok());
    EXPECT_EQ(r.submit(0), 0);
    EXPECT_EQ(r.enters(), 0u);
    io_uring_prep_nop(r.sqe());
    EXPECT_EQ(r.submit(1), 1);
    EXPECT_EQ(r.enters(), 1u);
    EXPECT_EQ(r.waits(), 1u);
    EXPECT_EQ(io_uring_cq_ready(&r.get()), 1u);
    EXPECT_EQ(r.submit(1), 0);
    EXPECT_EQ(r.enters(), 1u);
}

TEST(RingTest, FixTurnsRegisteredFdsIntoFixedSlots) {
    hvio::Ring r;
    ASSERT_TRUE(r.init(8).ok());
    int a = ::eventfd(0, EFD_CLOEXEC), b = ::eventfd(0, EFD_CLOEXEC);
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    const int fds[] = {a, b};
    ASSERT_EQ(r.register_files(fds), 0);
    io_uring_sqe *s = r.sqe();
    uint64_t v = 0;
    io_uring_prep_read(s, b, &v, sizeof(v), 0);
    r.fix(s);
    EXPECT_EQ(s->fd, 1);
    EXPECT_TRUE(s->flags & IOSQE_FIXED_FILE);
    io_uring_prep_read(s, 0, &v, sizeof(v), 0); // not registered
    r.fix(s);
    EXPECT_EQ(s->fd, 0);
    EXPECT_FALSE(s->flags & IOSQE_FIXED_FILE);
    ::close(a);
    ::close(b);
}

} // namespace
