// SPDX-License-Identifier: GPL-2.0
// Unit tests of the daemon's virtio-blk pieces (userspace/lib): guest
// memory translation with bounds checks, offered features and config
// space, and the op -> io_uring SQE mapping (checked on SQEs prepared in
// plain memory, no ring needed).
#include <gtest/gtest.h>

#include "blk.h"
#include "guest_memory.h"

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <liburing.h>
#include <linux/falloc.h>
#include <linux/virtio_blk.h>
#include <sstream>
#include <string>
#include <vector>

namespace {

using hvio::BlkIo;
using hvio::BlkTarget;
using hvio::GuestMemory;

constexpr uint64_t kGpa = 0x40000000;

// ---- GuestMemory -----------------------------------------------------------

TEST(GuestMemory, TranslatesInsideOneRegion) {
    std::vector<uint8_t> ram(0x10000);
    GuestMemory m;
    ASSERT_TRUE(m.add(kGpa, ram.size(), ram.data()));
    hvio_op_seg segs[2] = {{kGpa + 0x100, 0x200, 0}, {kGpa + 0xf000, 0x1000, 0}};
    iovec iov[4];
    ASSERT_EQ(m.translate(segs, iov), 2);
    EXPECT_EQ(iov[0].iov_base, ram.data() + 0x100);
    EXPECT_EQ(iov[0].iov_len, 0x200u);
    EXPECT_EQ(iov[1].iov_base, ram.data() + 0xf000);
    EXPECT_EQ(iov[1].iov_len, 0x1000u);
}

TEST(GuestMemory, JoinsPiecesThatFollowEachOther) {
    std::vector<uint8_t> ram(0x10000);
    GuestMemory m;
    ASSERT_TRUE(m.add(kGpa, ram.size(), ram.data()));
    // Receive buffers of 0x600 bytes carved one after another from a page,
    // then one elsewhere, then one that precedes the first.
    hvio_op_seg segs[5] = {{kGpa + 0x1000, 0x600, 0},
                           {kGpa + 0x1600, 0x600, 0},
                           {kGpa + 0x1c00, 0x400, 0},
                           {kGpa + 0x8000, 0x100, 0},
                           {kGpa + 0x7f00, 0x100, 0}};
    iovec iov[2];
    ASSERT_EQ(m.translate(std::span(segs, 3), std::span(iov, 1)), 1);
    EXPECT_EQ(iov[0].iov_base, ram.data() + 0x1000);
    EXPECT_EQ(iov[0].iov_len, 0x1000u);
    // Not joined: a gap, and a piece that comes before its predecessor.
    EXPECT_EQ(m.translate(std::span(segs, 5), std::span(iov, 2)), -E2BIG);
    iovec all[3];
    ASSERT_EQ(m.translate(segs, all), 3);
    EXPECT_EQ(all[1].iov_base, ram.data() + 0x8000);
    EXPECT_EQ(all[2].iov_base, ram.data() + 0x7f00);
    EXPECT_EQ(all[2].iov_len, 0x100u);
    // Regions whose mappings adjoin are joined too; pinnable is of both.
    std::vector<uint8_t> two(0x2000);
    GuestMemory n;
    ASSERT_TRUE(n.add(kGpa, 0x1000, two.data(), true));
    ASSERT_TRUE(n.add(kGpa + 0x1000, 0x1000, two.data() + 0x1000, false));
    hvio_op_seg across = {kGpa + 0xf00, 0x200, 0};
    bool pinnable = true;
    ASSERT_EQ(n.translate(std::span(&across, 1), iov, &pinnable), 1);
    EXPECT_EQ(iov[0].iov_len, 0x200u);
    EXPECT_FALSE(pinnable);
}

TEST(GuestMemory, RefusesAnythingOutside) {
    std::vector<uint8_t> ram(0x10000);
    GuestMemory m;
    ASSERT_TRUE(m.add(kGpa, ram.size(), ram.data()));
    iovec iov[4];
    hvio_op_seg before = {kGpa - 1, 2, 0};
    EXPECT_EQ(m.translate(std::span(&before, 1), iov), -EFAULT);
    hvio_op_seg past = {kGpa + 0xffff, 2, 0};
    EXPECT_EQ(m.translate(std::span(&past, 1), iov), -EFAULT);
    hvio_op_seg wrap = {UINT64_MAX - 10, 100, 0};
    EXPECT_EQ(m.translate(std::span(&wrap, 1), iov), -EFAULT);
    hvio_op_seg far = {0x1000, 0x10, 0};
    EXPECT_EQ(m.translate(std::span(&far, 1), iov), -EFAULT);
    EXPECT_EQ(m.at(kGpa + 0xfff0, 0x10), ram.data() + 0xfff0);
    EXPECT_EQ(m.at(kGpa + 0xfff0, 0x11), nullptr);
}

TEST(GuestMemory, SplitsAtAdjacentRegionsAndStopsAtGaps) {
    std::vector<uint8_t> a(0x1000), b(0x1000), c(0x1000);
    GuestMemory m;
    ASSERT_TRUE(m.add(kGpa + 0x1000, b.size(), b.data())); // out of order on purpose
    ASSERT_TRUE(m.add(kGpa, a.size(), a.data()));
    ASSERT_TRUE(m.add(kGpa + 0x3000, c.size(), c.data())); // gap at 0x2000
    EXPECT_FALSE(m.add(kGpa + 0x800, 0x1000, c.data()));   // overlap refused
    iovec iov[4];
    hvio_op_seg across = {kGpa + 0xf00, 0x200, 0};
    ASSERT_EQ(m.translate(std::span(&across, 1), iov), 2);
    EXPECT_EQ(iov[0].iov_base, a.data() + 0xf00);
    EXPECT_EQ(iov[0].iov_len, 0x100u);
    EXPECT_EQ(iov[1].iov_base, b.data());
    EXPECT_EQ(iov[1].iov_len, 0x100u);
    hvio_op_seg gap = {kGpa + 0x1f00, 0x200, 0};
    EXPECT_EQ(m.translate(std::span(&gap, 1), iov), -EFAULT);
    // Out of iovecs.
    EXPECT_EQ(m.translate(std::span(&across, 1), std::span(iov, 1)), -E2BIG);
    // Empty segments produce nothing.
    hvio_op_seg empty = {kGpa, 0, 0};
    EXPECT_EQ(m.translate(std::span(&empty, 1), iov), 0);
}

// ---- features and config space --------------------------------------------

hvio::BlkDeviceConfig blk_cfg() {
    hvio::BlkDeviceConfig c;
    c.queues = 4;
    return c;
}

TEST(BlkDevice, Features) {
    hvio::BlkDeviceConfig c = blk_cfg();
    const uint64_t base = 1ULL << 32 | 1ULL << 29 | 1ULL << 28 | 1ULL << 2 | 1ULL << 1 | 1ULL << 6 |
                          1ULL << 10 | 1ULL << 9 | 1ULL << 11 | 1ULL << 12;
    EXPECT_EQ(hvio::blk_features(c), base | 1ULL << 13 | 1ULL << 14);
    c.discard = false;
    EXPECT_EQ(hvio::blk_features(c), base | 1ULL << 14);
    c.readonly = true;
    EXPECT_EQ(hvio::blk_features(c), base | 1ULL << 5);
}

TEST(BlkDevice, ConfigSpace) {
    hvio::BlkImage img;
    img.size = (1ULL << 30) + 1000; // the partial sector is not visible
    img.blk_size = 512;
    img.physical_block_exp = 3;
    img.min_io_size = 8;
    std::vector<uint8_t> cs = hvio::blk_config_space(blk_cfg(), img);
    ASSERT_EQ(cs.size(), offsetof(virtio_blk_config, unused1) + 3);
    virtio_blk_config c{};
    std::memcpy(&c, cs.data(), cs.size());
    EXPECT_EQ(le64toh(c.capacity), (1ULL << 30) / 512 + 1);
    EXPECT_EQ(le32toh(c.size_max), 1u << 20);
    EXPECT_EQ(le32toh(c.seg_max), static_cast<uint32_t>(HVIO_OP_MAX_SEGS));
    EXPECT_EQ(le32toh(c.blk_size), 512u);
    EXPECT_EQ(c.physical_block_exp, 3);
    EXPECT_EQ(le16toh(c.min_io_size), 8);
    EXPECT_EQ(c.wce, 1);
    EXPECT_EQ(le16toh(c.num_queues), 4);
    EXPECT_EQ(le32toh(c.max_discard_sectors), 0x3fffffu);
    EXPECT_EQ(le32toh(c.max_discard_seg), 1u);
    EXPECT_EQ(le32toh(c.discard_sector_alignment), 8u);
    EXPECT_EQ(le32toh(c.max_write_zeroes_sectors), 0x3fffffu);
    EXPECT_EQ(le32toh(c.max_write_zeroes_seg), 1u);
    EXPECT_EQ(c.write_zeroes_may_unmap, 1);
}

// ---- op -> SQE -------------------------------------------------------------

class BlkOps : public ::testing::Test {
  protected:
    void SetUp() override {
        ram_.resize(0x100000);
        ASSERT_TRUE(mem_.add(kGpa, ram_.size(), ram_.data()));
        t_.fd = 7;
        t_.size = 1 << 20;
        t_.where = "test";
    }

    hvio_op rw(uint8_t type, uint64_t offset, std::initializer_list<hvio_op_seg> segs) {
        hvio_op op{};
        op.tag = 5;
        op.type = type;
        op.offset = offset;
        op.generation = 42;
        for (const hvio_op_seg &s : segs) {
            op.segs[op.nr_segs++] = s;
            op.len += s.len;
        }
        return op;
    }

    hvio_op range(uint8_t type, uint64_t offset, uint64_t len, uint32_t flags = 0) {
        hvio_op op{};
        op.tag = 9;
        op.type = type;
        op.offset = offset;
        op.len = len;
        op.flags = flags;
        return op;
    }

    io_uring_sqe prep(BlkIo &io) {
        io_uring_sqe sqe;
        std::memset(&sqe, 0xff, sizeof(sqe));
        hvio::blk_prep(&sqe, io, t_);
        return sqe;
    }

    std::vector<uint8_t> ram_;
    GuestMemory mem_;
    BlkTarget t_;
    BlkIo io_;
};

TEST_F(BlkOps, ReadBecomesReadv) {
    hvio_op op = rw(HVIO_OP_READ, 4096, {{kGpa, 512, 0}, {kGpa + 0x2000, 1024, 0}});
    ASSERT_EQ(hvio::blk_start(io_, op, mem_, t_), hvio::kBlkSubmit);
    EXPECT_EQ(io_.tag, 5);
    EXPECT_EQ(io_.generation, 42u);
    io_uring_sqe s = prep(io_);
    EXPECT_EQ(s.opcode, IORING_OP_READV);
    EXPECT_EQ(s.fd, 7);
    EXPECT_EQ(s.off, 4096u);
    EXPECT_EQ(s.len, 2u);
    EXPECT_EQ(s.rw_flags, 0);
    auto *iov = reinterpret_cast<const iovec *>(s.addr);
    EXPECT_EQ(iov[0].iov_base, ram_.data());
    EXPECT_EQ(iov[1].iov_base, ram_.data() + 0x2000);
    EXPECT_EQ(iov[1].iov_len, 1024u);
}

TEST_F(BlkOps, OneBufferNeedsNoIovec) {
    hvio_op op = rw(HVIO_OP_READ, 8192, {{kGpa + 0x1000, 4096, 0}});
    ASSERT_EQ(hvio::blk_start(io_, op, mem_, t_), hvio::kBlkSubmit);
    io_uring_sqe s = prep(io_);
    EXPECT_EQ(s.opcode, IORING_OP_READ);
    EXPECT_EQ(s.off, 8192u);
    EXPECT_EQ(s.len, 4096u);
    EXPECT_EQ(s.rw_flags, 0);
    EXPECT_EQ(reinterpret_cast<const uint8_t *>(s.addr), ram_.data() + 0x1000);
    // A short read goes on from where it stopped, still without an iovec.
    int result = 1;
    EXPECT_FALSE(hvio::blk_complete(io_, 1000, t_, &result));
    s = prep(io_);
    EXPECT_EQ(s.opcode, IORING_OP_READ);
    EXPECT_EQ(s.off, 9192u);
    EXPECT_EQ(s.len, 3096u);
    EXPECT_EQ(reinterpret_cast<const uint8_t *>(s.addr), ram_.data() + 0x1000 + 1000);

    // Buffers that follow each other in guest RAM are one buffer.
    op = rw(HVIO_OP_READ, 0, {{kGpa + 0x3000, 512, 0}, {kGpa + 0x3200, 3584, 0}});
    ASSERT_EQ(hvio::blk_start(io_, op, mem_, t_), hvio::kBlkSubmit);
    s = prep(io_);
    EXPECT_EQ(s.opcode, IORING_OP_READ);
    EXPECT_EQ(s.len, 4096u);
    EXPECT_EQ(reinterpret_cast<const uint8_t *>(s.addr), ram_.data() + 0x3000);

    op = rw(HVIO_OP_WRITE, 0, {{kGpa, 4096, 0}});
    ASSERT_EQ(hvio::blk_start(io_, op, mem_, t_), hvio::kBlkSubmit);
    s = prep(io_);
    EXPECT_EQ(s.opcode, IORING_OP_WRITE);
    EXPECT_EQ(s.len, 4096u);
    EXPECT_EQ(reinterpret_cast<const uint8_t *>(s.addr), ram_.data());
}

TEST_F(BlkOps, WriteWithFuaIsDsync) {
    hvio_op op = rw(HVIO_OP_WRITE, 0, {{kGpa, 4096, 0}});
    op.flags = HVIO_OP_F_FUA;
    ASSERT_EQ(hvio::blk_start(io_, op, mem_, t_), hvio::kBlkSubmit);
    io_uring_sqe s = prep(io_);
    EXPECT_EQ(s.opcode, IORING_OP_WRITE);
    EXPECT_EQ(static_cast<int>(s.rw_flags), RWF_DSYNC);
    op.flags = 0;
    ASSERT_EQ(hvio::blk_start(io_, op, mem_, t_), hvio::kBlkSubmit);
    EXPECT_EQ(prep(io_).rw_flags, 0);
}

TEST_F(BlkOps, FlushIsDatasync) {
    hvio_op op = range(HVIO_OP_FLUSH, 0, 0);
    ASSERT_EQ(hvio::blk_start(io_, op, mem_, t_), hvio::kBlkSubmit);
    io_uring_sqe s = prep(io_);
    EXPECT_EQ(s.opcode, IORING_OP_FSYNC);
    EXPECT_EQ(s.fsync_flags, IORING_FSYNC_DATASYNC);
}

TEST_F(BlkOps, DiscardPunchesFileHoles) {
    ASSERT_EQ(hvio::blk_start(io_, range(HVIO_OP_DISCARD, 8192, 4096), mem_, t_), hvio::kBlkSubmit);
    io_uring_sqe s = prep(io_);
    EXPECT_EQ(s.opcode, IORING_OP_FALLOCATE);
    EXPECT_EQ(s.len, static_cast<unsigned>(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE));
    EXPECT_EQ(s.off, 8192u);
    EXPECT_EQ(s.addr, 4096u); // fallocate's length travels in addr
}

TEST_F(BlkOps, DiscardOnBlockDeviceUsesDiscardMode) {
    t_.block_device = true;
    ASSERT_EQ(hvio::blk_start(io_, range(HVIO_OP_DISCARD, 0, 4096), mem_, t_), hvio::kBlkSubmit);
    EXPECT_EQ(prep(io_).len, static_cast<unsigned>(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE |
                                                   FALLOC_FL_NO_HIDE_STALE));
    // A device that cannot discard: done at once.
    t_.bdev_discard = hvio::kDiscardNoop;
    EXPECT_EQ(hvio::blk_start(io_, range(HVIO_OP_DISCARD, 0, 4096), mem_, t_), 0);
}

TEST_F(BlkOps, WriteZeroes) {
    ASSERT_EQ(hvio::blk_start(io_, range(HVIO_OP_WRITE_ZEROES, 0, 4096), mem_, t_),
              hvio::kBlkSubmit);
    EXPECT_EQ(prep(io_).len, static_cast<unsigned>(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE));
    ASSERT_EQ(hvio::blk_start(io_, range(HVIO_OP_WRITE_ZEROES, 0, 4096, HVIO_OP_F_UNMAP), mem_, t_),
              hvio::kBlkSubmit);
    EXPECT_EQ(prep(io_).len, static_cast<unsigned>(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE));
}

TEST_F(BlkOps, WriteZeroesFallbackChain) {
    // UNMAP: punch -> zero range -> plain writes of zeroes, remembered.
    ASSERT_EQ(
        hvio::blk_start(io_, range(HVIO_OP_WRITE_ZEROES, 0, 300000, HVIO_OP_F_UNMAP), mem_, t_),
        hvio::kBlkSubmit);
    int result = 1;
    EXPECT_FALSE(hvio::blk_complete(io_, -EOPNOTSUPP, t_, &result));
    EXPECT_TRUE(t_.no_punch);
    EXPECT_EQ(prep(io_).len, static_cast<unsigned>(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE));
    EXPECT_FALSE(hvio::blk_complete(io_, -EOPNOTSUPP, t_, &result));
    EXPECT_TRUE(t_.no_zero_range);
    io_uring_sqe s = prep(io_);
    EXPECT_EQ(s.opcode, IORING_OP_WRITEV);
    EXPECT_EQ(s.off, 0u);
    size_t total = 0;
    auto *iov = reinterpret_cast<const iovec *>(s.addr);
    for (unsigned i = 0; i < s.len; i++) {
        total += iov[i].iov_len;
        for (size_t j = 0; j < iov[i].iov_len; j += 4096)
            ASSERT_EQ(static_cast<const uint8_t *>(iov[i].iov_base)[j], 0);
    }
    EXPECT_EQ(total, 300000u);
    // A short write continues where it stopped.
    EXPECT_FALSE(hvio::blk_complete(io_, 100000, t_, &result));
    EXPECT_EQ(prep(io_).off, 100000u);
    EXPECT_TRUE(hvio::blk_complete(io_, 200000, t_, &result));
    EXPECT_EQ(result, 0);
    // Next time straight to the writes.
    ASSERT_EQ(hvio::blk_start(io_, range(HVIO_OP_WRITE_ZEROES, 0, 4096), mem_, t_),
              hvio::kBlkSubmit);
    EXPECT_EQ(prep(io_).opcode, IORING_OP_WRITEV);
}

TEST_F(BlkOps, DiscardUnsupportedBecomesNoop) {
    ASSERT_EQ(hvio::blk_start(io_, range(HVIO_OP_DISCARD, 0, 4096), mem_, t_), hvio::kBlkSubmit);
    int result = 1;
    EXPECT_TRUE(hvio::blk_complete(io_, -EOPNOTSUPP, t_, &result));
    EXPECT_EQ(result, 0); // discard is a hint
    EXPECT_EQ(hvio::blk_start(io_, range(HVIO_OP_DISCARD, 0, 4096), mem_, t_), 0);
}

TEST_F(BlkOps, ShortReadResubmitsTheRest) {
    hvio_op op = rw(HVIO_OP_READ, 0, {{kGpa, 1024, 0}, {kGpa + 0x4000, 1024, 0}});
    ASSERT_EQ(hvio::blk_start(io_, op, mem_, t_), hvio::kBlkSubmit);
    int result = 1;
    EXPECT_FALSE(hvio::blk_complete(io_, 1536, t_, &result));
    // What is left is one buffer: a plain read of its rest.
    io_uring_sqe s = prep(io_);
    EXPECT_EQ(s.opcode, IORING_OP_READ);
    EXPECT_EQ(s.off, 1536u);
    EXPECT_EQ(s.len, 512u);
    EXPECT_EQ(reinterpret_cast<const uint8_t *>(s.addr), ram_.data() + 0x4000 + 512);
    EXPECT_TRUE(hvio::blk_complete(io_, 512, t_, &result));
    EXPECT_EQ(result, 0);
}

TEST_F(BlkOps, ReadAtEndOfShrunkFileIsEio) {
    ASSERT_EQ(hvio::blk_start(io_, rw(HVIO_OP_READ, 0, {{kGpa, 4096, 0}}), mem_, t_),
              hvio::kBlkSubmit);
    int result = 1;
    EXPECT_TRUE(hvio::blk_complete(io_, 0, t_, &result));
    EXPECT_EQ(result, -EIO);
}

TEST_F(BlkOps, ErrorsPassThroughAndRetries) {
    ASSERT_EQ(hvio::blk_start(io_, rw(HVIO_OP_WRITE, 0, {{kGpa, 4096, 0}}), mem_, t_),
              hvio::kBlkSubmit);
    int result = 1;
    EXPECT_FALSE(hvio::blk_complete(io_, -EAGAIN, t_, &result));
    EXPECT_TRUE(hvio::blk_complete(io_, -ENOSPC, t_, &result));
    EXPECT_EQ(result, -ENOSPC);
}

TEST_F(BlkOps, DirectFallsBackToBufferedOnEfault) {
    t_.buffered_fd = 8;
    ASSERT_EQ(hvio::blk_start(io_, rw(HVIO_OP_READ, 0, {{kGpa, 4096, 0}}), mem_, t_),
              hvio::kBlkSubmit);
    EXPECT_EQ(prep(io_).fd, 7);
    int result = 1;
    EXPECT_FALSE(hvio::blk_complete(io_, -EFAULT, t_, &result));
    EXPECT_TRUE(t_.use_buffered);
    EXPECT_EQ(prep(io_).fd, 8);
}

// A direct device on zone RAM with struct pages: aligned I/O stays
// O_DIRECT; what O_DIRECT cannot do goes buffered and is counted by reason.
TEST_F(BlkOps, DirectFallbacksAreCountedByReason) {
    alignas(4096) static uint8_t pages[0x4000];
    alignas(4096) static uint8_t raw[0x4000];
    GuestMemory m;
    ASSERT_TRUE(m.add(0x100000, sizeof(pages), pages, true));
    ASSERT_TRUE(m.add(0x200000, sizeof(raw), raw, false)); // PFNMAP
    t_.buffered_fd = 8;
    t_.direct_align = 512;
    auto count = [&](unsigned why) { return t_.fallbacks[why].load(); };

    ASSERT_EQ(hvio::blk_start(io_, rw(HVIO_OP_READ, 4096, {{0x100000, 4096, 0}}), m, t_),
              hvio::kBlkSubmit);
    EXPECT_EQ(prep(io_).fd, 7);
    ASSERT_EQ(hvio::blk_start(io_, rw(HVIO_OP_WRITE, 512, {{0x100200, 512, 0}}), m, t_),
              hvio::kBlkSubmit);
    EXPECT_EQ(prep(io_).fd, 7);
    for (unsigned i = 0; i < hvio::kFallbackCount; i++)
        EXPECT_EQ(count(i), 0u) << hvio::blk_fallback_name(i);

    // A buffer 16 bytes into a page, a length, an offset off the block.
    ASSERT_EQ(hvio::blk_start(io_, rw(HVIO_OP_READ, 0, {{0x100010, 512, 0}}), m, t_),
              hvio::kBlkSubmit);
    EXPECT_EQ(prep(io_).fd, 8);
    ASSERT_EQ(hvio::blk_start(io_, rw(HVIO_OP_READ, 0, {{0x100000, 100, 0}}), m, t_),
              hvio::kBlkSubmit);
    EXPECT_EQ(prep(io_).fd, 8);
    ASSERT_EQ(hvio::blk_start(io_, rw(HVIO_OP_WRITE, 1000, {{0x100000, 512, 0}}), m, t_),
              hvio::kBlkSubmit);
    EXPECT_EQ(prep(io_).fd, 8);
    EXPECT_EQ(count(hvio::kFallbackMisaligned), 3u);

    // A segment in raw-PFN zone RAM.
    ASSERT_EQ(hvio::blk_start(io_, rw(HVIO_OP_READ, 0, {{0x100000, 4096, 0}, {0x200000, 4096, 0}}),
                              m, t_),
              hvio::kBlkSubmit);
    EXPECT_EQ(prep(io_).fd, 8);
    EXPECT_EQ(count(hvio::kFallbackPfnmap), 1u);

    // O_DIRECT refusing an aligned op anyway (EINVAL): that op, buffered.
    ASSERT_EQ(hvio::blk_start(io_, rw(HVIO_OP_READ, 0, {{0x100000, 4096, 0}}), m, t_),
              hvio::kBlkSubmit);
    int result = 1;
    EXPECT_FALSE(hvio::blk_complete(io_, -EINVAL, t_, &result));
    EXPECT_EQ(prep(io_).fd, 8);
    EXPECT_EQ(count(hvio::kFallbackRefused), 1u);
    EXPECT_FALSE(t_.use_buffered);
    ASSERT_EQ(hvio::blk_start(io_, rw(HVIO_OP_READ, 0, {{0x100000, 4096, 0}}), m, t_),
              hvio::kBlkSubmit);
    EXPECT_EQ(prep(io_).fd, 7);
}

// The lines of text, without their newlines.
std::vector<std::string> lines_of(const std::string &text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    return lines;
}

// Every fallback is counted; each reason is logged once per device, on
// its first fallback, naming the device, the reason and its counter.
TEST_F(BlkOps, DirectFallbackIsLoggedOncePerReason) {
    alignas(4096) static uint8_t pages[0x4000];
    GuestMemory m;
    ASSERT_TRUE(m.add(0x100000, sizeof(pages), pages, true));
    t_.where = "zones[0].devices[1]";
    t_.buffered_fd = 8;
    t_.direct_align = 512;
    const std::string prefix = "hvio: zones[0].devices[1]: buffered I/O instead of O_DIRECT: ";

    // Two misaligned reads: a buffer 16 bytes into a page, an offset off
    // the block.
    testing::internal::CaptureStderr();
    EXPECT_EQ(hvio::blk_start(io_, rw(HVIO_OP_READ, 0, {{0x100010, 512, 0}}), m, t_),
              hvio::kBlkSubmit);
    EXPECT_EQ(hvio::blk_start(io_, rw(HVIO_OP_READ, 1000, {{0x100000, 512, 0}}), m, t_),
              hvio::kBlkSubmit);
    std::vector<std::string> log = lines_of(testing::internal::GetCapturedStderr());
    ASSERT_EQ(log.size(), 1u) << ::testing::PrintToString(log);
    EXPECT_EQ(log[0].rfind(prefix, 0), 0u) << log[0];
    EXPECT_NE(log[0].find("a guest buffer, length or offset is not aligned to the O_DIRECT "
                          "block size (counted as misaligned)"),
              std::string::npos)
        << log[0];
    EXPECT_EQ(t_.fallbacks[hvio::kFallbackMisaligned].load(), 2u);

    // O_DIRECT refusing two aligned reads (EINVAL), and a third misaligned
    // one: a line for the new reason only.
    testing::internal::CaptureStderr();
    int result = 1;
    for (int i = 0; i < 2; i++) {
        EXPECT_EQ(hvio::blk_start(io_, rw(HVIO_OP_READ, 0, {{0x100000, 4096, 0}}), m, t_),
                  hvio::kBlkSubmit);
        EXPECT_FALSE(hvio::blk_complete(io_, -EINVAL, t_, &result));
    }
    EXPECT_EQ(hvio::blk_start(io_, rw(HVIO_OP_WRITE, 0, {{0x100000, 100, 0}}), m, t_),
              hvio::kBlkSubmit);
    log = lines_of(testing::internal::GetCapturedStderr());
    ASSERT_EQ(log.size(), 1u) << ::testing::PrintToString(log);
    EXPECT_EQ(log[0].rfind(prefix, 0), 0u) << log[0];
    EXPECT_NE(log[0].find("O_DIRECT refused an I/O (EINVAL or EFAULT) (counted as refused)"),
              std::string::npos)
        << log[0];
    EXPECT_EQ(t_.fallbacks[hvio::kFallbackRefused].load(), 2u);
    EXPECT_EQ(t_.fallbacks[hvio::kFallbackMisaligned].load(), 3u);
}

// "direct" on a file system without O_DIRECT: the image fd is buffered,
// and every read and write is counted.
TEST_F(BlkOps, DirectOnFileSystemWithoutODirectIsCounted) {
    t_.no_direct = true;
    ASSERT_EQ(hvio::blk_start(io_, rw(HVIO_OP_READ, 0, {{kGpa, 4096, 0}}), mem_, t_),
              hvio::kBlkSubmit);
    EXPECT_EQ(prep(io_).fd, 7);
    EXPECT_EQ(t_.fallbacks[hvio::kFallbackNoDirectFs].load(), 1u);
}

TEST_F(BlkOps, RefusedOps) {
    // Outside the guest's RAM: never touched.
    EXPECT_EQ(hvio::blk_start(io_, rw(HVIO_OP_READ, 0, {{kGpa + 0xff000, 0x2000, 0}}), mem_, t_),
              -EFAULT);
    // Beyond the disk.
    EXPECT_EQ(hvio::blk_start(io_, rw(HVIO_OP_READ, (1 << 20) - 512, {{kGpa, 1024, 0}}), mem_, t_),
              -EIO);
    EXPECT_EQ(hvio::blk_start(io_, range(HVIO_OP_DISCARD, UINT64_MAX - 100, 4096), mem_, t_), -EIO);
    // len disagreeing with the segments.
    hvio_op op = rw(HVIO_OP_WRITE, 0, {{kGpa, 512, 0}});
    op.len = 1024;
    EXPECT_EQ(hvio::blk_start(io_, op, mem_, t_), -EINVAL);
    op = rw(HVIO_OP_WRITE, 0, {{kGpa, 512, 0}});
    op.nr_segs = HVIO_OP_MAX_SEGS + 1;
    EXPECT_EQ(hvio::blk_start(io_, op, mem_, t_), -EINVAL);
    // Unknown type.
    EXPECT_EQ(hvio::blk_start(io_, range(77, 0, 0), mem_, t_), -EOPNOTSUPP);
    // Discard not offered.
    t_.discard = false;
    EXPECT_EQ(hvio::blk_start(io_, range(HVIO_OP_DISCARD, 0, 4096), mem_, t_), -EOPNOTSUPP);
    // Read-only disk.
    t_.readonly = true;
    EXPECT_EQ(hvio::blk_start(io_, rw(HVIO_OP_WRITE, 0, {{kGpa, 512, 0}}), mem_, t_), -EROFS);
    EXPECT_EQ(hvio::blk_start(io_, range(HVIO_OP_WRITE_ZEROES, 0, 512), mem_, t_), -EROFS);
    EXPECT_EQ(hvio::blk_start(io_, range(HVIO_OP_FLUSH, 0, 0), mem_, t_), 0);
    EXPECT_EQ(hvio::blk_start(io_, rw(HVIO_OP_READ, 0, {{kGpa, 512, 0}}), mem_, t_),
              hvio::kBlkSubmit);
}

} // namespace
