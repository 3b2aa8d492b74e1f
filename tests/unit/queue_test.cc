// SPDX-License-Identifier: GPL-2.0
// Unit tests of the per-queue io_uring loop (userspace/lib/queue.cc) against
// a fake kernel: ops go through a real io_uring into a real image file and
// guest "RAM" in this process; the fake plays HVIO_DEV_QUEUE_RUN (commit,
// fetch, kick via the eventfd) and records what was committed.
#include <gtest/gtest.h>

#include "queue.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <map>
#include <memory>
#include <mutex>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;

constexpr uint64_t kGpa = 0x80000000;
constexpr unsigned kQueueSize = 16;
constexpr uint64_t kImageSize = 1 << 20;

class FakeKernel : public hvio::QueueBackend {
  public:
    explicit FakeKernel(int efd) : efd_(efd), ops_(kQueueSize) {}

    int run(hvio_queue_run &r) override {
        std::lock_guard<std::mutex> l(mu_);
        runs_++;
        if (r.nr_commit > kQueueSize || r.max_fetch > kQueueSize)
            return -EINVAL;
        auto *c = reinterpret_cast<const hvio_completion *>(r.commits_addr);
        for (unsigned i = 0; i < r.nr_commit; i++) {
            if (!inflight_.erase(c[i].tag))
                bad_commits_++;
            done_[c[i].tag] = c[i];
            ndone_++;
        }
        auto *tags = reinterpret_cast<uint16_t *>(r.tags_addr);
        r.nr_fetched = 0;
        r.out_flags = 0;
        r.generation = gen_;
        // Like the module: max_fetch bounds the chains taken, and those
        // answered in the kernel (GET_ID) count without becoming ops.
        for (unsigned taken = 0; taken < r.max_fetch && !pending_.empty(); taken++) {
            uint16_t t = pending_.front();
            pending_.pop_front();
            if (in_kernel_) {
                in_kernel_--;
                continue;
            }
            inflight_.insert({t, true});
            tags[r.nr_fetched++] = t;
        }
        if (!pending_.empty())
            r.out_flags |= HVIO_RUN_OUT_MORE;
        cv_.notify_all();
        return 0;
    }

    const hvio_op &op(uint16_t tag) const override { return ops_[tag]; }
    int uring_fd() const override { return uring_fd_; }
    // A file for the io_uring commands (none: QUEUE_RUN only).
    void set_uring_fd(int fd) { uring_fd_ = fd; }

    // The guest makes a request available and kicks.
    void push(const hvio_op &op, bool kick = true) {
        {
            std::lock_guard<std::mutex> l(mu_);
            ops_[op.tag] = op;
            pending_.push_back(op.tag);
        }
        if (kick)
            ::eventfd_write(efd_, 1);
    }

    // The guest resets the device: a new generation, and the kernel
    // signals the queue's eventfd.
    void reset() {
        {
            std::lock_guard<std::mutex> l(mu_);
            gen_++;
        }
        ::eventfd_write(efd_, 1);
    }

    // Waits until n completions in total were committed.
    bool wait_done(size_t n, std::chrono::milliseconds timeout = 5000ms) {
        std::unique_lock<std::mutex> l(mu_);
        return cv_.wait_for(l, timeout, [&] { return ndone_ >= n; });
    }

    // The next n chains are answered in the kernel (never reach us).
    void answer_in_kernel(const hvio_op &op, unsigned n) {
        std::lock_guard<std::mutex> l(mu_);
        for (unsigned i = 0; i < n; i++)
            pending_.push_back(op.tag);
        in_kernel_ += n;
    }

    hvio_completion done(uint16_t tag) {
        std::lock_guard<std::mutex> l(mu_);
        return done_.at(tag);
    }
    size_t runs() {
        std::lock_guard<std::mutex> l(mu_);
        return runs_;
    }
    size_t inflight() {
        std::lock_guard<std::mutex> l(mu_);
        return inflight_.size();
    }
    size_t bad_commits() {
        std::lock_guard<std::mutex> l(mu_);
        return bad_commits_;
    }

  private:
    int efd_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<hvio_op> ops_;
    std::deque<uint16_t> pending_;
    std::map<uint16_t, bool> inflight_;
    std::map<uint16_t, hvio_completion> done_;
    size_t ndone_ = 0, runs_ = 0, bad_commits_ = 0;
    unsigned in_kernel_ = 0;
    uint32_t gen_ = 3; // what op() gives its ops
    int uring_fd_ = -1;
};

class QueueTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char path[] = "/tmp/hvio-queue-XXXXXX";
        fd_ = ::mkstemp(path);
        ASSERT_GE(fd_, 0);
        ::unlink(path);
        ASSERT_EQ(::ftruncate(fd_, kImageSize), 0);
        std::vector<uint8_t> pattern(kImageSize);
        for (size_t i = 0; i < pattern.size(); i++)
            pattern[i] = static_cast<uint8_t>(i * 7 + i / 4096);
        ASSERT_EQ(::pwrite(fd_, pattern.data(), pattern.size(), 0), (ssize_t)pattern.size());
        image_ = pattern;

        ram_.assign(0x100000, 0);
        ASSERT_TRUE(mem_.add(kGpa, ram_.size(), ram_.data()));
        efd_ = ::eventfd(0, EFD_CLOEXEC);
        ASSERT_GE(efd_, 0);
        t_.where = "test";
        t_.fd = fd_;
        t_.size = kImageSize;
        kernel_ = std::make_unique<FakeKernel>(efd_);
        q_ = std::make_unique<hvio::BlkQueue>(*kernel_, t_, mem_, 0, kQueueSize, efd_, stop_);
        ASSERT_TRUE(q_->init().ok());
    }
    void TearDown() override {
        stop();
        q_.reset();
        ::close(efd_);
        ::close(fd_);
    }

    void start() {
        thread_ = std::thread([this] { rc_ = q_->run(); });
    }
    void stop() {
        if (!thread_.joinable())
            return;
        stop_ = true;
        ::eventfd_write(efd_, 1);
        thread_.join();
    }

    hvio_op op(uint16_t tag, uint8_t type, uint64_t offset, uint64_t gpa, uint32_t len) {
        hvio_op o{};
        o.tag = tag;
        o.type = type;
        o.offset = offset;
        o.len = len;
        o.generation = 3;
        if (type == HVIO_OP_READ || type == HVIO_OP_WRITE) {
            o.nr_segs = 1;
            o.segs[0] = {gpa, len, 0};
        }
        return o;
    }

    int fd_ = -1, efd_ = -1;
    std::vector<uint8_t> image_, ram_;
    hvio::GuestMemory mem_;
    hvio::BlkTarget t_;
    std::atomic<bool> stop_{false};
    std::unique_ptr<FakeKernel> kernel_;
    std::unique_ptr<hvio::BlkQueue> q_;
    std::thread thread_;
    int rc_ = -1;
};

TEST_F(QueueTest, ReadWriteFlushRoundTrip) {
    start();
    // Read 8 KiB at 64 KiB into RAM, split over two segments.
    hvio_op r = op(1, HVIO_OP_READ, 65536, 0, 8192);
    r.nr_segs = 2;
    r.segs[0] = {kGpa + 0x1000, 4096, 0};
    r.segs[1] = {kGpa + 0x8000, 4096, 0};
    kernel_->push(r);
    ASSERT_TRUE(kernel_->wait_done(1));
    EXPECT_EQ(kernel_->done(1).result, 0);
    EXPECT_EQ(kernel_->done(1).generation, 3u);
    EXPECT_EQ(std::memcmp(&ram_[0x1000], &image_[65536], 4096), 0);
    EXPECT_EQ(std::memcmp(&ram_[0x8000], &image_[65536 + 4096], 4096), 0);

    // Write RAM to the image, then flush.
    std::memset(&ram_[0x20000], 0xab, 4096);
    kernel_->push(op(2, HVIO_OP_WRITE, 4096, kGpa + 0x20000, 4096));
    ASSERT_TRUE(kernel_->wait_done(2));
    EXPECT_EQ(kernel_->done(2).result, 0);
    kernel_->push(op(3, HVIO_OP_FLUSH, 0, 0, 0));
    ASSERT_TRUE(kernel_->wait_done(3));
    EXPECT_EQ(kernel_->done(3).result, 0);
    uint8_t buf[4096];
    ASSERT_EQ(::pread(fd_, buf, sizeof(buf), 4096), 4096);
    EXPECT_EQ(buf[0], 0xab);
    EXPECT_EQ(buf[4095], 0xab);

    stop();
    EXPECT_EQ(rc_, 0);
    EXPECT_EQ(kernel_->bad_commits(), 0u);
    EXPECT_EQ(q_->counters().bytes_read.load(), 8192u);
    EXPECT_EQ(q_->counters().bytes_written.load(), 4096u);
}

TEST_F(QueueTest, ResetCancelsIoInFlightAndCommitsItAtOnce) {
    // A read that cannot finish (an empty pipe) is cancelled when the
    // generation changes and committed with its old generation; it never
    // touches the guest buffer, even once data arrives.
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    t_.fd = p[0];
    start();
    std::memset(&ram_[0x3000], 0x5a, 4096);
    kernel_->push(op(4, HVIO_OP_READ, 0, kGpa + 0x3000, 4096));
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (kernel_->inflight() != 1 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
    ASSERT_EQ(kernel_->inflight(), 1u);
    kernel_->reset();
    ASSERT_TRUE(kernel_->wait_done(1));
    EXPECT_EQ(kernel_->done(4).generation, 3u);
    EXPECT_LT(kernel_->done(4).result, 0);
    std::vector<uint8_t> junk(4096, 0x11);
    ASSERT_EQ(::write(p[1], junk.data(), junk.size()), 4096);
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(ram_[0x3000], 0x5a);
    EXPECT_EQ(ram_[0x3fff], 0x5a);
    // An op fetched after the reset but naming the old generation is not
    // started at all.
    kernel_->push(op(5, HVIO_OP_READ, 0, kGpa + 0x3000, 4096));
    ASSERT_TRUE(kernel_->wait_done(2));
    EXPECT_EQ(kernel_->done(5).result, -ECANCELED);
    EXPECT_EQ(ram_[0x3000], 0x5a);
    stop();
    EXPECT_EQ(rc_, 0);
    EXPECT_EQ(q_->counters().stale.load(), 2u);
    EXPECT_EQ(q_->counters().errors.load(), 0u);
    ::close(p[0]);
    ::close(p[1]);
}

TEST_F(QueueTest, BadAddressFailsWithoutIo) {
    start();
    kernel_->push(op(4, HVIO_OP_WRITE, 0, kGpa + 0xff000, 0x2000)); // runs off RAM
    kernel_->push(op(5, 99, 0, 0, 0));                              // unknown type
    ASSERT_TRUE(kernel_->wait_done(2));
    EXPECT_EQ(kernel_->done(4).result, -EFAULT);
    EXPECT_EQ(kernel_->done(5).result, -EOPNOTSUPP);
    uint8_t buf[16];
    ASSERT_EQ(::pread(fd_, buf, sizeof(buf), 0), 16);
    EXPECT_EQ(std::memcmp(buf, image_.data(), 16), 0);
    EXPECT_EQ(q_->counters().errors.load(), 2u);
}

TEST_F(QueueTest, ReadPastShrunkFileIsEio) {
    start();
    ASSERT_EQ(::ftruncate(fd_, 4096), 0);
    kernel_->push(op(6, HVIO_OP_READ, 8192, kGpa, 4096));
    kernel_->push(op(7, HVIO_OP_READ, 2048, kGpa + 0x4000, 4096)); // half there
    ASSERT_TRUE(kernel_->wait_done(2));
    EXPECT_EQ(kernel_->done(6).result, -EIO);
    EXPECT_EQ(kernel_->done(7).result, -EIO);
}

TEST_F(QueueTest, WriteZeroesAndDiscard) {
    start();
    kernel_->push(op(8, HVIO_OP_WRITE_ZEROES, 8192, 0, 8192));
    ASSERT_TRUE(kernel_->wait_done(1));
    EXPECT_EQ(kernel_->done(8).result, 0);
    std::vector<uint8_t> buf(8192, 1);
    ASSERT_EQ(::pread(fd_, buf.data(), buf.size(), 8192), 8192);
    EXPECT_EQ(std::count(buf.begin(), buf.end(), 0), 8192);
    // Discard: succeeds whether or not the file system can punch holes.
    kernel_->push(op(9, HVIO_OP_DISCARD, 65536, 0, 65536));
    ASSERT_TRUE(kernel_->wait_done(2));
    EXPECT_EQ(kernel_->done(9).result, 0);
    // The file keeps its size.
    struct stat st;
    ASSERT_EQ(::fstat(fd_, &st), 0);
    EXPECT_EQ(static_cast<uint64_t>(st.st_size), kImageSize);
}

TEST_F(QueueTest, ManyOpsMoreThanQueueSize) {
    start();
    size_t total = 0;
    for (int round = 0; round < 4; round++) {
        // All tags at once, kicked once: a fetch as large as the queue.
        for (uint16_t tag = 0; tag < kQueueSize; tag++)
            kernel_->push(op(tag, HVIO_OP_READ, tag * 4096, kGpa + tag * 4096, 4096),
                          tag == kQueueSize - 1);
        total += kQueueSize;
        ASSERT_TRUE(kernel_->wait_done(total)) << "round " << round;
    }
    for (uint16_t tag = 0; tag < kQueueSize; tag++)
        EXPECT_EQ(kernel_->done(tag).result, 0);
    EXPECT_EQ(std::memcmp(ram_.data(), image_.data(), kQueueSize * 4096), 0);
    EXPECT_EQ(kernel_->bad_commits(), 0u);
}

TEST_F(QueueTest, PendingOpsWithoutKickAreFetchedOnStart) {
    // Requests made before the thread runs, no kick: the first QUEUE_RUN
    // takes them.
    kernel_->push(op(1, HVIO_OP_READ, 0, kGpa, 512), false);
    start();
    ASSERT_TRUE(kernel_->wait_done(1));
    EXPECT_EQ(kernel_->done(1).result, 0);
}

TEST_F(QueueTest, IdleQueueSleeps) {
    start();
    ASSERT_TRUE(kernel_->wait_done(0));
    std::this_thread::sleep_for(50ms);
    size_t before = kernel_->runs();
    std::this_thread::sleep_for(300ms);
    // No busy polling: no QUEUE_RUN at all while nothing happens.
    EXPECT_EQ(kernel_->runs(), before);
    // A kick wakes it: exactly one more QUEUE_RUN (nothing was fetched).
    ::eventfd_write(efd_, 1);
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(kernel_->runs(), before + 1);
}

TEST_F(QueueTest, MoreFlagNotFetchCountSaysTheRingHoldsMore) {
    // A fetch that stopped at max_fetch after answering every chain in the
    // kernel returns no op but HVIO_RUN_OUT_MORE: the queue must call
    // again (no kick comes: the kernel left notifications off), not sleep
    // because it got fewer ops than it asked for.
    kernel_->answer_in_kernel(op(0, HVIO_OP_READ, 0, kGpa, 512), kQueueSize);
    kernel_->push(op(1, HVIO_OP_READ, 0, kGpa, 512), false);
    start();
    ASSERT_TRUE(kernel_->wait_done(1, 2000ms));
    EXPECT_EQ(kernel_->done(1).result, 0);
}

TEST_F(QueueTest, StopDrainsEverythingInFlight) {
    start();
    for (uint16_t tag = 0; tag < kQueueSize; tag++)
        kernel_->push(op(tag, HVIO_OP_WRITE, tag * 65536, kGpa + tag * 65536, 65536),
                      tag == kQueueSize - 1);
    // Stop at once, while the writes are (likely) still in flight or not
    // even fetched yet.
    stop();
    EXPECT_EQ(rc_, 0);
    // Every request made available before the stop was served and
    // committed; nothing in flight.
    EXPECT_EQ(kernel_->inflight(), 0u);
    EXPECT_EQ(kernel_->bad_commits(), 0u);
    ASSERT_TRUE(kernel_->wait_done(kQueueSize, 0ms));
    for (uint16_t tag = 0; tag < kQueueSize; tag++)
        EXPECT_EQ(kernel_->done(tag).result, 0);
}

TEST_F(QueueTest, StopBeforeStartStillServesAvailableRequests) {
    kernel_->push(op(1, HVIO_OP_READ, 0, kGpa, 4096), false);
    stop_ = true;
    start();
    thread_.join();
    EXPECT_EQ(rc_, 0);
    ASSERT_TRUE(kernel_->wait_done(1, 0ms));
    EXPECT_EQ(kernel_->done(1).result, 0);
}

TEST_F(QueueTest, StopDrainIsBounded) {
    // A guest that reposts every completed request at once cannot keep a
    // stopping queue alive: at most one queue's worth is fetched after the
    // stop.
    class Endless : public FakeKernel {
      public:
        using FakeKernel::FakeKernel;
        int run(hvio_queue_run &r) override {
            auto *tags = reinterpret_cast<uint16_t *>(r.tags_addr);
            fetched += r.max_fetch;
            for (unsigned i = 0; i < r.max_fetch; i++)
                tags[i] = static_cast<uint16_t>(i);
            r.nr_fetched = r.max_fetch;
            r.out_flags = HVIO_RUN_OUT_MORE;
            return 0;
        }
        const hvio_op &op(uint16_t) const override { return o; }
        hvio_op o{};
        size_t fetched = 0;
    } endless(efd_);
    endless.o.type = HVIO_OP_FLUSH;
    stop_ = true;
    hvio::BlkQueue q(endless, t_, mem_, 0, kQueueSize, efd_, stop_);
    ASSERT_TRUE(q.init().ok());
    EXPECT_EQ(q.run(), 0);
    EXPECT_EQ(endless.fetched, kQueueSize);
}

TEST_F(QueueTest, FatalKernelErrorEndsTheLoop) {
    class Broken : public hvio::QueueBackend {
      public:
        int run(hvio_queue_run &) override { return -ENOTTY; }
        const hvio_op &op(uint16_t) const override { return op_; }
        hvio_op op_{};
    } broken;
    hvio::BlkQueue q(broken, t_, mem_, 0, kQueueSize, efd_, stop_);
    ASSERT_TRUE(q.init().ok());
    EXPECT_EQ(q.run(), -ENOTTY);
}

TEST_F(QueueTest, RefusedFetchFallsBackToQueueRun) {
    // A device fd that refuses IORING_OP_URING_CMD (an hvio.ko without
    // the commands; here an eventfd, which has no uring_cmd at all): the
    // first FETCH fails with EOPNOTSUPP and the queue serves through
    // QUEUE_RUN, saying so in its counters.
    kernel_->set_uring_fd(efd_);
    start();
    kernel_->push(op(5, HVIO_OP_READ, 8192, kGpa + 0x4000, 4096));
    ASSERT_TRUE(kernel_->wait_done(1));
    EXPECT_EQ(kernel_->done(5).result, 0);
    EXPECT_EQ(std::memcmp(&ram_[0x4000], &image_[8192], 4096), 0);
    stop();
    EXPECT_EQ(rc_, 0);
    EXPECT_EQ(q_->counters().path.load(), hvio::kPathQueueRun);
    EXPECT_EQ(q_->counters().fetches.load(), 0u);
    EXPECT_GT(q_->counters().runs.load(), 0u);
    EXPECT_GT(q_->counters().enters.load(), 0u);
    EXPECT_STRNE(q_->counters().ring_mode.load(), "none");
}

TEST_F(QueueTest, BlkdiscardRunsOnTheHelperThread) {
    // A block device whose discard needs the BLKDISCARD ioctl: the queue
    // thread hands it to its helper and gets the result back through the
    // ring (here the ioctl fails with ENOTTY: the "device" is a file).
    t_.block_device = true;
    t_.bdev_discard = hvio::kDiscardIoctl;
    start();
    kernel_->push(op(6, HVIO_OP_DISCARD, 4096, 0, 4096));
    ASSERT_TRUE(kernel_->wait_done(1));
    EXPECT_EQ(kernel_->done(6).result, -ENOTTY);
    // Then a fallocate discard that the "device" refuses (EOPNOTSUPP)
    // goes the same way.
    t_.bdev_discard = hvio::kDiscardFallocate;
    kernel_->push(op(7, HVIO_OP_DISCARD, 8192, 0, 4096));
    ASSERT_TRUE(kernel_->wait_done(2));
    stop();
    EXPECT_EQ(rc_, 0);
    EXPECT_EQ(q_->counters().offloaded.load(), 2u);
    EXPECT_EQ(kernel_->bad_commits(), 0u);
}

} // namespace
