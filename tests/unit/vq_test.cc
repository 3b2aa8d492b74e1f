// SPDX-License-Identifier: GPL-2.0
// Unit tests of the module's split-virtqueue engine (module/hvio_vq.c), built in userspace.
// A fake zone RAM buffer filled with a byte pattern stands for guest memory; the tests write
// descriptor tables and rings into it the way a driver (or a hostile guest) would, run the
// parser, and check the result, the error counters, and that no byte outside the used ring
// changed.
#include <gtest/gtest.h>

#include <endian.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <vector>

extern "C" {
#include "hvio_vq.h"
}

namespace {

constexpr uint64_t kRamBase = 0x40000000ULL;
constexpr uint64_t kRamSize = 0x100000ULL;
// A region the parser may validate buffers against but never dereferences (segments are
// only mapped to check them): big enough for chains over 4 GiB.
constexpr uint64_t kBigBase = 0x1000000000ULL;
constexpr uint64_t kBigSize = 0x400000000ULL;

constexpr uint64_t kDesc = kRamBase + 0x0000;
constexpr uint64_t kAvail = kRamBase + 0x4000;
constexpr uint64_t kUsed = kRamBase + 0x8000;
constexpr uint64_t kIndirect = kRamBase + 0x20000;
constexpr uint64_t kData = kRamBase + 0x40000;

constexpr uint16_t F_NEXT = HVIO_VQ_DESC_F_NEXT;
constexpr uint16_t F_WRITE = HVIO_VQ_DESC_F_WRITE;
constexpr uint16_t F_INDIRECT = HVIO_VQ_DESC_F_INDIRECT;

struct Ram {
    std::vector<uint8_t> bytes = std::vector<uint8_t>(kRamSize);
    std::vector<std::pair<uint64_t, uint64_t>> map_calls;
    // Runs inside map(): lets a test play a guest that rewrites memory mid-walk.
    std::function<void(uint64_t gpa)> on_map;
};

void *fake_map(void *ctx, uint64_t gpa, uint64_t len) {
    auto *ram = static_cast<Ram *>(ctx);
    ram->map_calls.emplace_back(gpa, len);
    if (ram->on_map)
        ram->on_map(gpa);
    if (!len || gpa + len < gpa)
        return nullptr;
    if (gpa >= kRamBase && len <= kRamSize && gpa - kRamBase <= kRamSize - len)
        return ram->bytes.data() + (gpa - kRamBase);
    if (gpa >= kBigBase && len <= kBigSize && gpa - kBigBase <= kBigSize - len)
        return reinterpret_cast<void *>(0x1); // never dereferenced
    return nullptr;
}

class Vq : public ::testing::Test {
  protected:
    Ram ram;
    hvio_vq_mem mem{fake_map, &ram};
    hvio_vq vq{};
    uint16_t num = 8;
    uint16_t driver_avail_idx = 0;
    std::vector<uint8_t> snapshot;
    std::array<hvio_vq_seg, 64> segs{};
    hvio_vq_chain chain{};

    void SetUp() override {
        for (size_t i = 0; i < ram.bytes.size(); i++)
            ram.bytes[i] = static_cast<uint8_t>(0xA5 ^ (i * 7) ^ (i >> 8));
        // A fresh ring: avail and used headers start at zero like a driver leaves them.
        w16(kAvail, 0);
        w16(kAvail + 2, 0);
        w16(kUsed, 0);
        w16(kUsed + 2, 0);
    }

    uint8_t *at(uint64_t gpa) { return ram.bytes.data() + (gpa - kRamBase); }
    void w16(uint64_t gpa, uint16_t v) {
        v = htole16(v);
        memcpy(at(gpa), &v, 2);
    }
    void w32(uint64_t gpa, uint32_t v) {
        v = htole32(v);
        memcpy(at(gpa), &v, 4);
    }
    void w64(uint64_t gpa, uint64_t v) {
        v = htole64(v);
        memcpy(at(gpa), &v, 8);
    }
    uint16_t r16(uint64_t gpa) {
        uint16_t v;
        memcpy(&v, at(gpa), 2);
        return le16toh(v);
    }
    uint32_t r32(uint64_t gpa) {
        uint32_t v;
        memcpy(&v, at(gpa), 4);
        return le32toh(v);
    }

    void Setup(bool event_idx = false, bool indirect = true, uint16_t n = 8) {
        num = n;
        driver_avail_idx = 0;
        w16(kAvail, 0);
        w16(kAvail + 2, 0);
        ASSERT_EQ(hvio_vq_setup(&vq, &mem, num, kDesc, kAvail, kUsed, event_idx, indirect), 0);
    }

    // Writes one descriptor of a table (the queue's own table by default).
    void Desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags = 0, uint16_t next = 0,
              uint64_t table = kDesc) {
        uint64_t d = table + 16ULL * i;
        w64(d, addr);
        w32(d + 8, len);
        w16(d + 12, flags);
        w16(d + 14, next);
    }

    // Makes @head available, as a driver does: ring entry, then the index.
    void Offer(uint16_t head) {
        w16(kAvail + 4 + 2ULL * (driver_avail_idx % num), head);
        driver_avail_idx++;
        w16(kAvail + 2, driver_avail_idx);
    }

    void Snapshot() { snapshot = ram.bytes; }

    // Asserts that no byte outside the used ring (6 + 8 * num bytes) changed since Snapshot().
    void ExpectOnlyUsedRingWritten() {
        const uint64_t lo = kUsed - kRamBase, hi = lo + 6 + 8ULL * num;
        for (size_t i = 0; i < ram.bytes.size(); i++) {
            if (i >= lo && i < hi)
                continue;
            ASSERT_EQ(ram.bytes[i], snapshot[i]) << "byte at gpa 0x" << std::hex << kRamBase + i;
        }
    }
    void ExpectNothingWritten() { EXPECT_EQ(ram.bytes, snapshot); }

    hvio_vq_err Pop(uint16_t max_segs = 64) {
        return hvio_vq_pop(&vq, segs.data(), max_segs, &chain);
    }

    // Asserts the counters are all zero but errors[err] == count.
    void ExpectOnlyCounter(hvio_vq_err err, uint64_t count = 1) {
        for (int e = 0; e < HVIO_VQ_E_MAX; e++)
            EXPECT_EQ(vq.errors[e], e == err ? count : 0) << "counter " << e;
    }

    // A rejected chain: right error, counted once, head consumed and reported, no segments,
    // queue still usable, no guest byte written.
    void ExpectRejected(hvio_vq_err err, uint16_t head, uint16_t max_segs = 64) {
        Snapshot();
        uint16_t before = vq.last_avail;
        EXPECT_EQ(Pop(max_segs), err);
        ExpectOnlyCounter(err);
        EXPECT_EQ(chain.head, head);
        EXPECT_EQ(chain.nr_segs, 0);
        EXPECT_EQ(chain.out_bytes, 0u);
        EXPECT_EQ(chain.in_bytes, 0u);
        EXPECT_EQ(vq.last_avail, static_cast<uint16_t>(before + 1));
        EXPECT_FALSE(vq.broken);
        ExpectNothingWritten();
    }
};

// --- setup ---

TEST_F(Vq, SetupRejectsBadSizesAlignmentAndUnmappedAreas) {
    // Proves setup refuses every num that is not a power of two in [1, 32768], misaligned
    // areas, and areas that do not lie entirely inside zone RAM.
    for (uint16_t n : {0, 3, 6, 1000, 65535})
        EXPECT_EQ(hvio_vq_setup(&vq, &mem, n, kDesc, kAvail, kUsed, false, false), -EINVAL) << n;
    EXPECT_EQ(hvio_vq_setup(&vq, &mem, 8, kDesc + 8, kAvail, kUsed, false, false), -EINVAL);
    EXPECT_EQ(hvio_vq_setup(&vq, &mem, 8, kDesc, kAvail + 1, kUsed, false, false), -EINVAL);
    EXPECT_EQ(hvio_vq_setup(&vq, &mem, 8, kDesc, kAvail, kUsed + 2, false, false), -EINVAL);
    // Each area ends one byte past RAM.
    const uint64_t end = kRamBase + kRamSize;
    EXPECT_EQ(hvio_vq_setup(&vq, &mem, 8, end - 16 * 8 + 16, kAvail, kUsed, false, false), -EINVAL);
    EXPECT_EQ(hvio_vq_setup(&vq, &mem, 8, kDesc, end - (6 + 2 * 8) + 2, kUsed, false, false),
              -EINVAL);
    EXPECT_EQ(hvio_vq_setup(&vq, &mem, 8, kDesc, kAvail, end - (6 + 8 * 8) + 2, false, false),
              -EINVAL);
    EXPECT_EQ(hvio_vq_setup(&vq, &mem, 8, kDesc, kAvail, 0, false, false), -EINVAL);
    // The largest sizes that fit are accepted and map exactly the spec's area sizes.
    ram.map_calls.clear();
    EXPECT_EQ(hvio_vq_setup(&vq, &mem, 8, end - 16 * 8, end - (6 + 2 * 8) - 2,
                            end - (6 + 8 * 8) - 2, false, false),
              0);
    ASSERT_EQ(ram.map_calls.size(), 3u);
    EXPECT_EQ(ram.map_calls[0].second, 128u);
    EXPECT_EQ(ram.map_calls[1].second, 22u);
    EXPECT_EQ(ram.map_calls[2].second, 70u);
    EXPECT_EQ(hvio_vq_setup(&vq, &mem, 32768, kDesc, kAvail, kUsed + 0x10000, true, true), 0);
}

// --- valid chains ---

TEST_F(Vq, DirectChainIsReturnedInOrderWithByteCounts) {
    // Proves a direct chain (2 readable + 1 writable) comes back segment by segment with the
    // right head, sums and directions, and that popping writes no guest memory.
    Setup();
    Desc(5, kData, 16, F_NEXT, 2);
    Desc(2, kData + 0x100, 512, F_NEXT, 7);
    Desc(7, kData + 0x1000, 1, F_WRITE);
    Offer(5);
    Snapshot();
    EXPECT_EQ(hvio_vq_avail(&vq), 1);
    ASSERT_EQ(Pop(), HVIO_VQ_OK);
    EXPECT_EQ(chain.head, 5);
    ASSERT_EQ(chain.nr_segs, 3);
    EXPECT_EQ(chain.out_bytes, 528u);
    EXPECT_EQ(chain.in_bytes, 1u);
    EXPECT_EQ(segs[0].gpa, kData);
    EXPECT_EQ(segs[0].len, 16u);
    EXPECT_EQ(segs[0].write, 0u);
    EXPECT_EQ(segs[1].gpa, kData + 0x100);
    EXPECT_EQ(segs[2].gpa, kData + 0x1000);
    EXPECT_EQ(segs[2].write, 1u);
    // Each segment carries map()'s pointer: its users need no second lookup.
    EXPECT_EQ(segs[0].va, ram.bytes.data() + (kData - kRamBase));
    EXPECT_EQ(segs[2].va, ram.bytes.data() + (kData + 0x1000 - kRamBase));
    ExpectOnlyCounter(HVIO_VQ_E_MAX, 0);
    ExpectNothingWritten();
    EXPECT_EQ(Pop(), HVIO_VQ_EMPTY);
    ExpectOnlyCounter(HVIO_VQ_E_MAX, 0);
}

TEST_F(Vq, IndirectChainIsWalkedInsideItsTable) {
    // Proves an indirect descriptor's table is walked (following next inside the table, not in
    // table order) and its buffers returned.
    Setup(false, true);
    Desc(0, kData, 10, F_NEXT, 2, kIndirect);
    Desc(2, kData + 0x200, 20, F_NEXT, 1, kIndirect);
    Desc(1, kData + 0x400, 30, F_WRITE, 0, kIndirect);
    Desc(3, kIndirect, 3 * 16, F_INDIRECT);
    Offer(3);
    Snapshot();
    ASSERT_EQ(Pop(), HVIO_VQ_OK);
    EXPECT_EQ(chain.head, 3);
    ASSERT_EQ(chain.nr_segs, 3);
    EXPECT_EQ(segs[0].gpa, kData);
    EXPECT_EQ(segs[1].gpa, kData + 0x200);
    EXPECT_EQ(segs[2].gpa, kData + 0x400);
    EXPECT_EQ(chain.out_bytes, 30u);
    EXPECT_EQ(chain.in_bytes, 30u);
    ExpectNothingWritten();
}

TEST_F(Vq, UnalignedIndirectTableIsAccepted) {
    // Proves an indirect table needs no alignment (the spec requires none), so descriptors are
    // read whole rather than with aligned loads.
    Setup(false, true);
    Desc(0, kData, 10, F_NEXT, 1, kIndirect + 3);
    Desc(1, kData + 0x20, 7, F_WRITE, 0, kIndirect + 3);
    Desc(0, kIndirect + 3, 32, F_INDIRECT);
    Offer(0);
    ASSERT_EQ(Pop(), HVIO_VQ_OK);
    EXPECT_EQ(chain.nr_segs, 2);
    EXPECT_EQ(chain.in_bytes, 7u);
}

TEST_F(Vq, DirectDescriptorsFollowedByIndirectTable) {
    // Proves a chain may start with direct descriptors and end in an indirect one, and that the
    // readable-before-writable rule spans both parts.
    Setup(false, true);
    Desc(4, kData, 8, F_NEXT, 6);
    Desc(6, kIndirect, 32, F_INDIRECT);
    Desc(0, kData + 0x100, 100, F_NEXT, 1, kIndirect);
    Desc(1, kData + 0x200, 200, F_WRITE, 0, kIndirect);
    Offer(4);
    ASSERT_EQ(Pop(), HVIO_VQ_OK);
    ASSERT_EQ(chain.nr_segs, 3);
    EXPECT_EQ(chain.out_bytes, 108u);
    EXPECT_EQ(chain.in_bytes, 200u);

    // A writable direct descriptor followed by a table holding a readable one is out of order.
    Desc(4, kData, 8, F_NEXT | F_WRITE, 6);
    Desc(0, kData + 0x100, 100, 0, 0, kIndirect);
    Offer(4);
    ExpectRejected(HVIO_VQ_E_ORDER, 4);
}

TEST_F(Vq, ChainOfNumDescriptorsIsAccepted) {
    // Proves the longest legal direct chain (every descriptor of the table, num = 256) is not
    // mistaken for a loop.
    Setup(false, false, 256);
    for (uint16_t i = 0; i < 256; i++)
        Desc(i, kData + 16ULL * i, 16, i == 255 ? F_WRITE : F_NEXT | F_WRITE,
             static_cast<uint16_t>(i + 1));
    Offer(0);
    std::vector<hvio_vq_seg> many(256);
    ASSERT_EQ(hvio_vq_pop(&vq, many.data(), 256, &chain), HVIO_VQ_OK);
    EXPECT_EQ(chain.nr_segs, 256);
    EXPECT_EQ(chain.in_bytes, 256u * 16);
    EXPECT_EQ(many[255].gpa, kData + 16ULL * 255);
}

TEST_F(Vq, IndirectTableOfMaxEntriesIsAccepted) {
    // Proves an indirect table of exactly HVIO_VQ_MAX_INDIRECT entries, all chained, is walked
    // in full (the loop bound is the table's entry count, not num).
    Setup(false, true);
    const uint16_t n = HVIO_VQ_MAX_INDIRECT;
    for (uint16_t i = 0; i < n; i++)
        Desc(i, kData + i, 1, i == n - 1 ? 0 : F_NEXT, static_cast<uint16_t>(i + 1), kIndirect);
    Desc(1, kIndirect, n * 16, F_INDIRECT);
    Offer(1);
    std::vector<hvio_vq_seg> many(n);
    ASSERT_EQ(hvio_vq_pop(&vq, many.data(), n, &chain), HVIO_VQ_OK);
    EXPECT_EQ(chain.nr_segs, n);
    EXPECT_EQ(chain.out_bytes, n);
}

TEST_F(Vq, ChainOfExactlyMaxSegsIsAcceptedAndOneMoreIsNot) {
    // Proves max_segs is a capacity: a chain of exactly max_segs buffers fits, one more is
    // E_SEGS and never writes past the caller's array.
    Setup();
    Desc(0, kData, 4, F_NEXT, 1);
    Desc(1, kData + 4, 4, F_NEXT, 2);
    Desc(2, kData + 8, 4, F_WRITE);
    Offer(0);
    segs.fill({0xdead, 0xdead, 0xdead, nullptr});
    ASSERT_EQ(Pop(3), HVIO_VQ_OK);
    EXPECT_EQ(chain.nr_segs, 3);
    EXPECT_EQ(segs[3].gpa, 0xdeadu);

    Offer(0);
    segs.fill({0xdead, 0xdead, 0xdead, nullptr});
    ExpectRejected(HVIO_VQ_E_SEGS, 0, 2);
    EXPECT_EQ(segs[2].gpa, 0xdeadu);
    Offer(0);
    vq.errors[HVIO_VQ_E_SEGS] = 0;
    ExpectRejected(HVIO_VQ_E_SEGS, 0, 0);
}

// --- rejected chains: counted, head consumed, queue goes on ---

TEST_F(Vq, HeadOutOfRangeBreaksTheQueue) {
    // Proves an avail entry >= num is a ring-level error: counted as E_HEAD, the head is not
    // consumed, the queue is marked broken, and later calls refuse without re-counting.
    Setup();
    Offer(8);
    Snapshot();
    EXPECT_EQ(Pop(), HVIO_VQ_E_HEAD);
    ExpectOnlyCounter(HVIO_VQ_E_HEAD);
    EXPECT_TRUE(vq.broken);
    EXPECT_EQ(vq.last_avail, 0);
    EXPECT_EQ(Pop(), HVIO_VQ_BROKEN);
    EXPECT_EQ(hvio_vq_avail(&vq), -EIO);
    ExpectOnlyCounter(HVIO_VQ_E_HEAD);
    ExpectNothingWritten();
}

TEST_F(Vq, NextOutOfRangeIsRejected) {
    // Proves next >= num is E_NEXT for a direct chain.
    Setup();
    Desc(1, kData, 4, F_NEXT, 8);
    Offer(1);
    ExpectRejected(HVIO_VQ_E_NEXT, 1);
}

TEST_F(Vq, DirectLoopIsCaught) {
    // Proves a chain that cycles (0 -> 1 -> 2 -> 1) ends with E_LOOP after at most num reads
    // instead of spinning, and so does a descriptor that points at itself.
    Setup();
    Desc(0, kData, 1, F_NEXT, 1);
    Desc(1, kData, 1, F_NEXT, 2);
    Desc(2, kData, 1, F_NEXT, 1);
    Offer(0);
    ExpectRejected(HVIO_VQ_E_LOOP, 0);

    Desc(3, kData, 1, F_NEXT, 3);
    Offer(3);
    vq.errors[HVIO_VQ_E_LOOP] = 0;
    ExpectRejected(HVIO_VQ_E_LOOP, 3);
}

TEST_F(Vq, IndirectLoopIsCaught) {
    // Proves loops inside an indirect table are caught against the table's entry count.
    Setup(false, true);
    Desc(0, kData, 1, F_NEXT, 1, kIndirect);
    Desc(1, kData, 1, F_NEXT, 0, kIndirect);
    Desc(0, kIndirect, 32, F_INDIRECT);
    Offer(0);
    ExpectRejected(HVIO_VQ_E_LOOP, 0);
}

TEST_F(Vq, IndirectNextOutsideTableIsRejected) {
    // Proves an indirect descriptor may only chain inside its own table: next = entries is
    // E_NEXT even though it is < num.
    Setup(false, true);
    Desc(0, kData, 1, F_NEXT, 2, kIndirect);
    Desc(1, kData, 1, 0, 0, kIndirect);
    Desc(0, kIndirect, 32, F_INDIRECT);
    Offer(0);
    ExpectRejected(HVIO_VQ_E_NEXT, 0);
}

TEST_F(Vq, NestedIndirectIsRejected) {
    // Proves an INDIRECT descriptor inside an indirect table is E_NESTED_INDIRECT.
    Setup(false, true);
    Desc(0, kData, 1, F_NEXT, 1, kIndirect);
    Desc(1, kIndirect + 0x100, 16, F_INDIRECT, 0, kIndirect);
    Desc(0, kData, 1, 0, 0, kIndirect + 0x100);
    Desc(0, kIndirect, 32, F_INDIRECT);
    Offer(0);
    ExpectRejected(HVIO_VQ_E_NESTED_INDIRECT, 0);
}

TEST_F(Vq, IndirectWithNextIsRejected) {
    // Proves INDIRECT together with NEXT is E_INDIRECT_NEXT.
    Setup(false, true);
    Desc(0, kData, 1, 0, 0, kIndirect);
    Desc(2, kIndirect, 16, F_INDIRECT | F_NEXT, 3);
    Desc(3, kData, 1);
    Offer(2);
    ExpectRejected(HVIO_VQ_E_INDIRECT_NEXT, 2);
}

TEST_F(Vq, IndirectWithoutFeatureIsRejected) {
    // Proves an INDIRECT descriptor is E_INDIRECT_OFF when INDIRECT_DESC was not negotiated.
    Setup(false, false);
    Desc(0, kData, 1, 0, 0, kIndirect);
    Desc(2, kIndirect, 16, F_INDIRECT);
    Offer(2);
    ExpectRejected(HVIO_VQ_E_INDIRECT_OFF, 2);
}

TEST_F(Vq, BadIndirectLengthsAreRejected) {
    // Proves indirect table lengths of 0, not a multiple of 16, and more than
    // HVIO_VQ_MAX_INDIRECT entries are E_INDIRECT_LEN.
    Setup(false, true);
    for (uint32_t len : {0u, 8u, 17u, 33u, (HVIO_VQ_MAX_INDIRECT + 1) * 16u, 0xfffffff0u}) {
        Desc(0, kIndirect, len, F_INDIRECT);
        Offer(0);
        vq.errors[HVIO_VQ_E_INDIRECT_LEN] = 0;
        ExpectRejected(HVIO_VQ_E_INDIRECT_LEN, 0);
    }
}

TEST_F(Vq, IndirectTableOutsideRamIsRejected) {
    // Proves the indirect table itself must map (E_ADDR): one that ends past RAM, one in no
    // region, and one whose end wraps past 2^64.
    Setup(false, true);
    for (uint64_t addr : {kRamBase + kRamSize - 16, uint64_t{0x1000}, ~uint64_t{0} - 15}) {
        Desc(0, addr, 32, F_INDIRECT);
        Offer(0);
        vq.errors[HVIO_VQ_E_ADDR] = 0;
        ExpectRejected(HVIO_VQ_E_ADDR, 0);
    }
}

TEST_F(Vq, ZeroLengthBufferIsRejected) {
    // Proves a buffer of length 0 is E_ZERO_LEN, in a direct chain and in an indirect table.
    Setup(false, true);
    Desc(0, kData, 4, F_NEXT, 1);
    Desc(1, kData, 0);
    Offer(0);
    ExpectRejected(HVIO_VQ_E_ZERO_LEN, 0);

    Desc(0, kData, 0, 0, 0, kIndirect);
    Desc(2, kIndirect, 16, F_INDIRECT);
    Offer(2);
    vq.errors[HVIO_VQ_E_ZERO_LEN] = 0;
    ExpectRejected(HVIO_VQ_E_ZERO_LEN, 2);
}

TEST_F(Vq, BufferOutsideRamIsRejected) {
    // Proves a buffer that is not entirely inside one RAM region, or whose end wraps past 2^64,
    // is E_ADDR.
    Setup();
    const std::pair<uint64_t, uint32_t> bad[] = {
        {kRamBase + kRamSize - 4, 5}, // straddles the end of RAM
        {kRamBase - 1, 2},            // starts before RAM
        {0, 1},                       // in no region
        {~0ULL - 3, 16},              // wraps
        {~0ULL, 1},                   // ends exactly at 2^64
    };
    for (auto [addr, len] : bad) {
        Desc(0, addr, len, F_WRITE);
        Offer(0);
        vq.errors[HVIO_VQ_E_ADDR] = 0;
        ExpectRejected(HVIO_VQ_E_ADDR, 0);
    }
    // The last byte of RAM is fine.
    Desc(0, kRamBase + kRamSize - 1, 1, F_WRITE);
    Offer(0);
    EXPECT_EQ(Pop(), HVIO_VQ_OK);
}

TEST_F(Vq, ReadableAfterWritableIsRejected) {
    // Proves a device-readable buffer after a device-writable one is E_ORDER.
    Setup();
    Desc(0, kData, 4, F_NEXT, 1);
    Desc(1, kData, 4, F_NEXT | F_WRITE, 2);
    Desc(2, kData, 4);
    Offer(0);
    ExpectRejected(HVIO_VQ_E_ORDER, 0);
}

TEST_F(Vq, ChainOver4GiBIsRejected) {
    // Proves the byte sums cannot overflow: a chain totalling 2^32 bytes (readable and writable
    // combined) is E_TOO_BIG while 2^32 - 1 is fine.
    Setup();
    Desc(0, kBigBase, 0x80000000u, F_NEXT, 1);
    Desc(1, kBigBase, 0x7fffffffu, F_WRITE);
    Offer(0);
    ASSERT_EQ(Pop(), HVIO_VQ_OK);
    EXPECT_EQ(chain.out_bytes, 0x80000000u);
    EXPECT_EQ(chain.in_bytes, 0x7fffffffu);

    Desc(1, kBigBase, 0x80000000u, F_WRITE);
    Offer(0);
    ExpectRejected(HVIO_VQ_E_TOO_BIG, 0);

    Desc(0, kBigBase, 0xffffffffu, F_NEXT, 1);
    Desc(1, kBigBase, 1, 0);
    Offer(0);
    vq.errors[HVIO_VQ_E_TOO_BIG] = 0;
    ExpectRejected(HVIO_VQ_E_TOO_BIG, 0);
}

TEST_F(Vq, RejectedHeadCanBeCompletedAndTheQueueGoesOn) {
    // Proves the documented recovery: a rejected head is completed with used length 0 and the
    // next, valid chain is popped normally.
    Setup();
    Desc(0, kData, 0);
    Desc(1, kData, 4);
    Offer(0);
    Offer(1);
    EXPECT_EQ(Pop(), HVIO_VQ_E_ZERO_LEN);
    hvio_vq_push_used(&vq, chain.head, 0);
    ASSERT_EQ(Pop(), HVIO_VQ_OK);
    EXPECT_EQ(chain.head, 1);
    EXPECT_EQ(r16(kUsed + 2), 1);
    EXPECT_EQ(r32(kUsed + 4), 0u);
    EXPECT_EQ(r32(kUsed + 8), 0u);
}

TEST_F(Vq, DescriptorRewrittenMidWalkIsReadOnce) {
    // Proves each descriptor is used from one snapshot: a guest rewriting descriptor 0 (next,
    // flags, len) while the parser checks its buffer does not change what the parser does.
    Setup();
    Desc(0, kData, 4, F_NEXT, 1);
    Desc(1, kData + 0x10, 8, F_WRITE);
    Offer(0);
    ram.on_map = [this](uint64_t gpa) {
        if (gpa == kData) {
            Desc(0, kData, 0, F_INDIRECT | F_WRITE, 0xffff);
        }
    };
    ASSERT_EQ(Pop(), HVIO_VQ_OK);
    ram.on_map = nullptr;
    ASSERT_EQ(chain.nr_segs, 2);
    EXPECT_EQ(segs[0].len, 4u);
    EXPECT_EQ(segs[0].write, 0u);
    EXPECT_EQ(segs[1].gpa, kData + 0x10);
    EXPECT_EQ(chain.out_bytes, 4u);
    EXPECT_EQ(chain.in_bytes, 8u);
}

// --- avail index ---

TEST_F(Vq, AvailJumpBreaksTheQueue) {
    // Proves avail->idx moving by more than num is E_AVAIL_JUMP (once), -EIO, broken; exactly
    // num is accepted.
    Setup();
    w16(kAvail + 2, 8);
    EXPECT_EQ(hvio_vq_avail(&vq), 8);
    EXPECT_FALSE(vq.broken);
    Setup();
    Snapshot();
    w16(kAvail + 2, 9);
    EXPECT_EQ(hvio_vq_avail(&vq), -EIO);
    EXPECT_TRUE(vq.broken);
    EXPECT_EQ(hvio_vq_avail(&vq), -EIO);
    EXPECT_EQ(Pop(), HVIO_VQ_BROKEN);
    ExpectOnlyCounter(HVIO_VQ_E_AVAIL_JUMP);

    // Going backwards is a jump too (the distance is taken modulo 2^16).
    Setup();
    w16(kAvail + 2, 0xffff);
    EXPECT_EQ(Pop(), HVIO_VQ_E_AVAIL_JUMP);
    EXPECT_TRUE(vq.broken);
    ExpectOnlyCounter(HVIO_VQ_E_AVAIL_JUMP);
}

TEST_F(Vq, AvailIndexWrapsAt65536) {
    // Proves avail->idx wrapping 65535 -> 0 is counted modulo 2^16 and the ring entries are
    // taken at idx % num across the wrap.
    Setup();
    vq.last_avail = vq.avail_idx = 65533;
    driver_avail_idx = 65533;
    w16(kAvail + 2, driver_avail_idx);
    for (uint16_t h = 0; h < 6; h++) {
        Desc(h, kData + h, 1 + h, F_WRITE);
        Offer(h);
    }
    EXPECT_EQ(r16(kAvail + 2), 3);
    EXPECT_EQ(hvio_vq_avail(&vq), 6);
    for (uint16_t h = 0; h < 6; h++) {
        ASSERT_EQ(Pop(), HVIO_VQ_OK) << h;
        EXPECT_EQ(chain.head, h);
        EXPECT_EQ(chain.in_bytes, 1u + h);
    }
    EXPECT_EQ(vq.last_avail, 3);
    EXPECT_EQ(Pop(), HVIO_VQ_EMPTY);
    ExpectOnlyCounter(HVIO_VQ_E_MAX, 0);
}

TEST_F(Vq, PopRefreshesTheAvailIndexItself) {
    // Proves pop works without a prior hvio_vq_avail() and sees buffers added later.
    Setup();
    Desc(0, kData, 1);
    EXPECT_EQ(Pop(), HVIO_VQ_EMPTY);
    Offer(0);
    EXPECT_EQ(Pop(), HVIO_VQ_OK);
    Offer(0);
    Offer(0);
    EXPECT_EQ(Pop(), HVIO_VQ_OK);
    EXPECT_EQ(Pop(), HVIO_VQ_OK);
    EXPECT_EQ(Pop(), HVIO_VQ_EMPTY);
}

// --- used ring ---

TEST_F(Vq, PushUsedWrapsTheRingAndTheIndex) {
    // Proves used entries go to used_idx % num, the index is published as a wrapping u16, and
    // nothing outside the used ring is written (not even avail_event without EVENT_IDX).
    Setup();
    vq.used_idx = 65530;
    Snapshot();
    for (uint32_t k = 0; k < 10; k++) {
        hvio_vq_push_used(&vq, static_cast<uint16_t>(k), 100 + k);
        EXPECT_EQ(r16(kUsed + 2), static_cast<uint16_t>(65531 + k));
    }
    for (uint32_t k = 0; k < 10; k++) {
        uint64_t e = kUsed + 4 + 8ULL * ((65530 + k) % num);
        if (k < 2)
            continue; // overwritten by k + 8
        EXPECT_EQ(r32(e), k);
        EXPECT_EQ(r32(e + 4), 100 + k);
    }
    EXPECT_EQ(r16(kUsed), 0); // flags untouched
    ExpectOnlyUsedRingWritten();
    // avail_event (last 2 bytes of the area) untouched without EVENT_IDX use.
    EXPECT_EQ(memcmp(at(kUsed + 4 + 8 * num), &snapshot[kUsed + 4 + 8 * num - kRamBase], 2), 0);
}

TEST_F(Vq, BatchedUsedEntriesArePublishedOnce) {
    // Proves add_used fills entries without moving used->idx and publish_used moves it once.
    Setup();
    hvio_vq_add_used(&vq, 3, 30);
    hvio_vq_add_used(&vq, 4, 40);
    EXPECT_EQ(r16(kUsed + 2), 0);
    EXPECT_EQ(r32(kUsed + 4), 3u);
    EXPECT_EQ(r32(kUsed + 12 + 4), 40u);
    hvio_vq_publish_used(&vq);
    EXPECT_EQ(r16(kUsed + 2), 2);
}

// --- notifications ---

TEST_F(Vq, NeedEventMatchesTheSpecFormula) {
    // Proves vring_need_event() is the spec's (u16)(new - event - 1) < (u16)(new - old),
    // including across the u16 wrap.
    EXPECT_TRUE(hvio_vq_need_event(0, 1, 0));
    EXPECT_FALSE(hvio_vq_need_event(1, 1, 0));
    EXPECT_TRUE(hvio_vq_need_event(4, 10, 2));
    EXPECT_FALSE(hvio_vq_need_event(10, 10, 2));
    EXPECT_FALSE(hvio_vq_need_event(1, 10, 2));
    EXPECT_TRUE(hvio_vq_need_event(2, 10, 2));
    EXPECT_FALSE(hvio_vq_need_event(5, 5, 5));
    EXPECT_TRUE(hvio_vq_need_event(65535, 2, 65534));
    EXPECT_TRUE(hvio_vq_need_event(0, 2, 65534));
    EXPECT_TRUE(hvio_vq_need_event(65534, 2, 65534));
    EXPECT_FALSE(hvio_vq_need_event(65533, 2, 65534));
    EXPECT_FALSE(hvio_vq_need_event(2, 2, 65534));
    // Exhaustive against a direct model: event in [old, new) modulo 2^16.
    for (uint32_t old = 65530; old < 65530 + 12; old++)
        for (uint32_t delta = 0; delta < 10; delta++)
            for (uint32_t ev = old - 3; ev < old + 14; ev++) {
                bool want = (ev - old) % 65536 < delta;
                EXPECT_EQ(hvio_vq_need_event(static_cast<uint16_t>(ev),
                                             static_cast<uint16_t>(old + delta),
                                             static_cast<uint16_t>(old)),
                          want);
            }
}

TEST_F(Vq, NeedInterruptWithoutEventIdxFollowsNoInterruptFlag) {
    // Proves that without EVENT_IDX the decision is !(avail->flags & NO_INTERRUPT).
    Setup(false);
    hvio_vq_push_used(&vq, 0, 1);
    EXPECT_TRUE(hvio_vq_need_interrupt(&vq));
    w16(kAvail, HVIO_VQ_AVAIL_F_NO_INTERRUPT);
    hvio_vq_push_used(&vq, 0, 1);
    EXPECT_FALSE(hvio_vq_need_interrupt(&vq));
    w16(kAvail, 0xfffe);
    hvio_vq_push_used(&vq, 0, 1);
    EXPECT_TRUE(hvio_vq_need_interrupt(&vq));
    // used_event is ignored.
    w16(kAvail, 0);
    w16(kAvail + 4 + 2 * num, 1000);
    hvio_vq_push_used(&vq, 0, 1);
    EXPECT_TRUE(hvio_vq_need_interrupt(&vq));
}

TEST_F(Vq, NoInterruptWithoutNewUsedEntries) {
    // Proves that without EVENT_IDX a decision over no new used entry (a net RX commit that
    // gave its buffers back) does not interrupt, and the next real entry does.
    Setup(false);
    hvio_vq_push_used(&vq, 0, 1);
    EXPECT_TRUE(hvio_vq_need_interrupt(&vq));
    hvio_vq_publish_used(&vq);
    EXPECT_FALSE(hvio_vq_need_interrupt(&vq));
    hvio_vq_push_used(&vq, 1, 1);
    EXPECT_TRUE(hvio_vq_need_interrupt(&vq));
    // With EVENT_IDX nothing new was never a reason either.
    Setup(true);
    w16(kAvail + 4 + 2 * num, 0);
    hvio_vq_push_used(&vq, 0, 1);
    EXPECT_TRUE(hvio_vq_need_interrupt(&vq));
    EXPECT_FALSE(hvio_vq_need_interrupt(&vq));
}

TEST_F(Vq, NoNotifyWithoutEventIdxWhileBusy) {
    // Proves that without EVENT_IDX disable_notify sets VRING_USED_F_NO_NOTIFY (and nothing
    // else), enable_notify clears it; with EVENT_IDX used->flags is never touched.
    Setup(false);
    Snapshot();
    hvio_vq_disable_notify(&vq);
    EXPECT_EQ(r16(kUsed), HVIO_VQ_USED_F_NO_NOTIFY);
    snapshot[kUsed - kRamBase] = HVIO_VQ_USED_F_NO_NOTIFY;
    ExpectNothingWritten();
    hvio_vq_enable_notify(&vq);
    EXPECT_EQ(r16(kUsed), 0);
    snapshot[kUsed - kRamBase] = 0;
    ExpectNothingWritten();

    Setup(true);
    w16(kUsed, 0);
    hvio_vq_disable_notify(&vq);
    EXPECT_EQ(r16(kUsed), 0);
}

TEST_F(Vq, UnpopGivesTheSameChainAgain) {
    // Proves unpop makes the next pop return the chain just taken.
    Setup(false);
    Desc(0, kData, 1);
    Desc(1, kData, 2);
    Offer(0);
    Offer(1);
    ASSERT_EQ(Pop(), HVIO_VQ_OK);
    ASSERT_EQ(Pop(), HVIO_VQ_OK);
    EXPECT_EQ(chain.head, 1);
    hvio_vq_unpop(&vq);
    ASSERT_EQ(Pop(), HVIO_VQ_OK);
    EXPECT_EQ(chain.head, 1);
    EXPECT_EQ(Pop(), HVIO_VQ_EMPTY);
}

TEST_F(Vq, NeedInterruptWithEventIdxUsesUsedEventAcrossTheWrap) {
    // Proves that with EVENT_IDX the decision covers the entries published since the previous
    // call, reads used_event after the ring, ignores NO_INTERRUPT, and wraps at 65536.
    Setup(true);
    const uint64_t used_event = kAvail + 4 + 2ULL * num;
    w16(kAvail, HVIO_VQ_AVAIL_F_NO_INTERRUPT);
    w16(used_event, 100);
    hvio_vq_push_used(&vq, 0, 1);
    EXPECT_FALSE(hvio_vq_need_interrupt(&vq)); // a fresh ring honours used_event at once
    hvio_vq_push_used(&vq, 0, 1);              // used 1 -> 2, event 100
    EXPECT_FALSE(hvio_vq_need_interrupt(&vq));
    w16(used_event, 2);
    hvio_vq_push_used(&vq, 0, 1); // 2 -> 3 crosses event 2
    EXPECT_TRUE(hvio_vq_need_interrupt(&vq));
    EXPECT_FALSE(hvio_vq_need_interrupt(&vq)); // nothing new

    // Near the wrap: signalled at 65534, push 4 entries -> 2.
    vq.used_idx = 65534;
    vq.signalled_used = 65534;
    for (int k = 0; k < 4; k++)
        hvio_vq_push_used(&vq, 0, 1);
    EXPECT_EQ(r16(kUsed + 2), 2);
    w16(used_event, 65535);
    EXPECT_TRUE(hvio_vq_need_interrupt(&vq));
    vq.signalled_used = 65534;
    w16(used_event, 1);
    EXPECT_TRUE(hvio_vq_need_interrupt(&vq));
    vq.signalled_used = 65534;
    w16(used_event, 2);
    EXPECT_FALSE(hvio_vq_need_interrupt(&vq));
    vq.signalled_used = 65534;
    w16(used_event, 65533);
    EXPECT_FALSE(hvio_vq_need_interrupt(&vq));
}

TEST_F(Vq, EnableNotifyWritesOnlyAvailEvent) {
    // Proves enable_notify writes last_avail into the 2 bytes after the used entries with
    // EVENT_IDX, and writes nothing without it.
    Setup(false);
    Snapshot();
    hvio_vq_enable_notify(&vq);
    ExpectNothingWritten();

    Setup(true);
    Desc(0, kData, 1);
    for (int k = 0; k < 3; k++) {
        Offer(0);
        ASSERT_EQ(Pop(), HVIO_VQ_OK);
    }
    Snapshot();
    hvio_vq_enable_notify(&vq);
    const uint64_t avail_event = kUsed + 4 + 8ULL * num;
    EXPECT_EQ(r16(avail_event), 3);
    snapshot[avail_event - kRamBase] = 3;
    snapshot[avail_event - kRamBase + 1] = 0;
    ExpectNothingWritten();
    // Wraps with last_avail.
    vq.last_avail = 65535;
    hvio_vq_enable_notify(&vq);
    EXPECT_EQ(r16(avail_event), 65535);
}

} // namespace
