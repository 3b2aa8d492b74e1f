// SPDX-License-Identifier: GPL-2.0
// Unit tests of Ring (userspace/lib/ring.h): set-up flags and their
// fall-back steps, fixed files and the io_uring_enter count the bench
// reports as syscalls_per_req.
#include <gtest/gtest.h>

#include "ring.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string_view>
#include <sys/eventfd.h>
#include <unistd.h>
#include <vector>

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

// ---- Ring::init's fall-back, with stand-ins for io_uring_queue_init_params

constexpr unsigned kDefer = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;

// The setup flags the stand-ins were asked for, in order.
std::vector<unsigned> tried;

// A kernel that does not know the flags in unknown: EINVAL, as Linux
// answers; any other flags get a real ring.
template <unsigned unknown>
int kernel_without(unsigned entries, io_uring *ring, io_uring_params *p) {
    tried.push_back(p->flags);
    if (p->flags & unknown)
        return -EINVAL;
    return io_uring_queue_init_params(entries, ring, p);
}

int out_of_memory(unsigned, io_uring *, io_uring_params *p) {
    tried.push_back(p->flags);
    return -ENOMEM;
}

// Refuses everything, and leaves a file descriptor number in the ring as a
// setup that failed half way may: io_uring_queue_exit() would close it.
int stale_fd = -1;
int refuses_all(unsigned, io_uring *ring, io_uring_params *p) {
    tried.push_back(p->flags);
    ring->ring_fd = ring->enter_ring_fd = stale_fd;
    return -EINVAL;
}

TEST(RingTest, WithoutDeferTaskrunFallsBackToCoopTaskrun) {
    tried.clear();
    hvio::Ring r;
    ASSERT_TRUE(r.init(8, kernel_without<IORING_SETUP_DEFER_TASKRUN>).ok());
    EXPECT_TRUE(r.ok());
    EXPECT_STREQ(r.mode(), "coop_taskrun");
    EXPECT_EQ(tried, (std::vector<unsigned>{kDefer, IORING_SETUP_COOP_TASKRUN}));
    EXPECT_TRUE(r.get().flags & IORING_SETUP_COOP_TASKRUN);
    EXPECT_FALSE(r.get().flags & IORING_SETUP_DEFER_TASKRUN);
    io_uring_prep_nop(r.sqe());
    EXPECT_EQ(r.submit(1), 1);
}

TEST(RingTest, WithoutEitherTaskrunFlagFallsBackToPlain) {
    tried.clear();
    hvio::Ring r;
    ASSERT_TRUE(
        r.init(8, kernel_without<IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN>).ok());
    EXPECT_TRUE(r.ok());
    EXPECT_STREQ(r.mode(), "plain");
    EXPECT_EQ(tried, (std::vector<unsigned>{kDefer, IORING_SETUP_COOP_TASKRUN, 0u}));
    EXPECT_EQ(r.get().flags & (kDefer | IORING_SETUP_COOP_TASKRUN), 0u);
    io_uring_prep_nop(r.sqe());
    EXPECT_EQ(r.submit(1), 1);
}

TEST(RingTest, AnErrorOtherThanEinvalStopsAtOnce) {
    tried.clear();
    hvio::Ring r;
    auto res = r.init(8, out_of_memory);
    ASSERT_FALSE(res.ok());
    EXPECT_EQ(res.error(), ENOMEM);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(tried, std::vector<unsigned>{kDefer});
}

TEST(RingTest, EveryFlagRefusedFailsAndTheRingIsNotTornDown) {
    tried.clear();
    stale_fd = ::eventfd(0, EFD_CLOEXEC);
    ASSERT_GE(stale_fd, 0);
    {
        hvio::Ring r;
        auto res = r.init(8, refuses_all);
        ASSERT_FALSE(res.ok());
        EXPECT_EQ(res.error(), EINVAL);
        EXPECT_FALSE(r.ok());
        EXPECT_STREQ(r.mode(), "none");
        EXPECT_EQ(tried, (std::vector<unsigned>{kDefer, IORING_SETUP_COOP_TASKRUN, 0u}));
    }
    // The destructor did not run io_uring_queue_exit() on the ring.
    EXPECT_EQ(::fcntl(stale_fd, F_GETFD), FD_CLOEXEC);
    ::close(stale_fd);
    stale_fd = -1;
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
