// SPDX-License-Identifier: GPL-2.0
// Unit tests of the module's virtio-mmio register file (module/hvio_mmio.c),
// built in userspace. Each test drives the registers the way a guest driver
// (or a hostile guest) would and checks the answers, the counters and the
// callbacks into the device.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

extern "C" {
#include "hvio_mmio.h"
}

namespace {

constexpr uint64_t kVersion1 = 1ULL << 32;
constexpr uint64_t kOffered = kVersion1 | (1ULL << 28) | (1ULL << 9) | 0x3;
constexpr uint64_t kRamBase = 0x80000000ULL;
constexpr uint64_t kRamSize = 0x100000ULL;

struct Harness {
    hvio_mmio m{};
    hvio_dev_stats stats{};
    std::vector<uint32_t> kicks;
    std::vector<uint32_t> irqs;
    struct StatusEvent {
        uint32_t old_status, new_status;
        bool reset;
    };
    std::vector<StatusEvent> status_events;
};

Harness *harness_of(hvio_mmio *m) {
    // hvio_mmio is the first member of Harness.
    return reinterpret_cast<Harness *>(m);
}

bool fake_ram_ok(hvio_mmio *, uint64_t gpa, uint64_t len) {
    return gpa >= kRamBase && len <= kRamSize && gpa - kRamBase <= kRamSize - len;
}

void fake_kick(hvio_mmio *m, uint32_t q) { harness_of(m)->kicks.push_back(q); }

void fake_status(hvio_mmio *m, uint32_t o, uint32_t n, bool reset) {
    harness_of(m)->status_events.push_back({o, n, reset});
}

void fake_interrupt(hvio_mmio *m, uint32_t bits) { harness_of(m)->irqs.push_back(bits); }

const hvio_mmio_ops kOps = {fake_ram_ok, fake_kick, fake_status, fake_interrupt};

class Mmio : public ::testing::Test {
  protected:
    void SetUp() override {
        static_assert(offsetof(Harness, m) == 0);
        h.m.device_id = 2;
        h.m.num_queues = 2;
        h.m.queue_size_max = 256;
        h.m.device_features = kOffered;
        h.m.config_len = 16;
        h.m.cfg_wr_off = -1;
        for (uint32_t i = 0; i < 16; i++)
            h.m.config[i] = static_cast<uint8_t>(0x10 + i);
        hvio_mmio_init(&h.m, &kOps, &h.stats);
    }

    uint32_t rd(uint64_t off, uint32_t size = 4) {
        return static_cast<uint32_t>(hvio_mmio_read(&h.m, off, size));
    }
    void wr(uint64_t off, uint64_t v, uint32_t size = 4) { hvio_mmio_write(&h.m, off, size, v); }

    void negotiate(uint64_t features) {
        wr(HVIO_REG_STATUS, 0);
        wr(HVIO_REG_STATUS, HVIO_S_ACKNOWLEDGE);
        wr(HVIO_REG_STATUS, HVIO_S_ACKNOWLEDGE | HVIO_S_DRIVER);
        wr(HVIO_REG_DRV_FEAT_SEL, 0);
        wr(HVIO_REG_DRV_FEAT, static_cast<uint32_t>(features));
        wr(HVIO_REG_DRV_FEAT_SEL, 1);
        wr(HVIO_REG_DRV_FEAT, static_cast<uint32_t>(features >> 32));
        wr(HVIO_REG_STATUS, HVIO_S_ACKNOWLEDGE | HVIO_S_DRIVER | HVIO_S_FEATURES_OK);
    }

    void setup_queue(uint32_t q, uint32_t num, uint64_t desc, uint64_t drv, uint64_t dev) {
        wr(HVIO_REG_QUEUE_SEL, q);
        wr(HVIO_REG_QUEUE_NUM, num);
        wr(HVIO_REG_QUEUE_DESC_LO, static_cast<uint32_t>(desc));
        wr(HVIO_REG_QUEUE_DESC_HI, static_cast<uint32_t>(desc >> 32));
        wr(HVIO_REG_QUEUE_DRV_LO, static_cast<uint32_t>(drv));
        wr(HVIO_REG_QUEUE_DRV_HI, static_cast<uint32_t>(drv >> 32));
        wr(HVIO_REG_QUEUE_DEV_LO, static_cast<uint32_t>(dev));
        wr(HVIO_REG_QUEUE_DEV_HI, static_cast<uint32_t>(dev >> 32));
        wr(HVIO_REG_QUEUE_READY, 1);
    }

    void setup_good_queue(uint32_t q) {
        uint64_t base = kRamBase + 0x10000 * (q + 1);
        setup_queue(q, 128, base, base + 0x1000, base + 0x2000);
    }

    Harness h;
};

TEST_F(Mmio, IdentityRegisters) {
    EXPECT_EQ(rd(HVIO_REG_MAGIC), 0x74726976u);
    EXPECT_EQ(rd(HVIO_REG_VERSION), 2u);
    EXPECT_EQ(rd(HVIO_REG_DEVICE_ID), 2u);
    EXPECT_EQ(rd(HVIO_REG_VENDOR_ID), 0x48564953u);
    EXPECT_EQ(h.stats.reg_reads, 4u);
}

TEST_F(Mmio, DeviceFeatureWordsFollowSelector) {
    wr(HVIO_REG_DEV_FEAT_SEL, 0);
    EXPECT_EQ(rd(HVIO_REG_DEV_FEAT), static_cast<uint32_t>(kOffered));
    wr(HVIO_REG_DEV_FEAT_SEL, 1);
    EXPECT_EQ(rd(HVIO_REG_DEV_FEAT), static_cast<uint32_t>(kOffered >> 32));
    wr(HVIO_REG_DEV_FEAT_SEL, 2);
    EXPECT_EQ(rd(HVIO_REG_DEV_FEAT), 0u);
    wr(HVIO_REG_DEV_FEAT_SEL, 0xffffffff);
    EXPECT_EQ(rd(HVIO_REG_DEV_FEAT), 0u);
}

TEST_F(Mmio, FeaturesOkAcceptedForSubsetWithVersion1) {
    negotiate(kVersion1 | 0x1);
    EXPECT_EQ(rd(HVIO_REG_STATUS),
              uint32_t{HVIO_S_ACKNOWLEDGE | HVIO_S_DRIVER | HVIO_S_FEATURES_OK});
    EXPECT_EQ(h.m.driver_features, kVersion1 | 0x1);
    EXPECT_EQ(h.stats.features_refused, 0u);
}

TEST_F(Mmio, FeaturesOkRefusedForFeatureNotOffered) {
    negotiate(kVersion1 | (1ULL << 5));
    EXPECT_EQ(rd(HVIO_REG_STATUS) & HVIO_S_FEATURES_OK, 0u);
    EXPECT_EQ(h.stats.features_refused, 1u);
}

TEST_F(Mmio, FeaturesOkRefusedWithoutVersion1) {
    negotiate(0x1);
    EXPECT_EQ(rd(HVIO_REG_STATUS) & HVIO_S_FEATURES_OK, 0u);
    EXPECT_EQ(h.stats.features_refused, 1u);
}

TEST_F(Mmio, DriverFeaturesFrozenAfterFeaturesOk) {
    negotiate(kVersion1);
    wr(HVIO_REG_DRV_FEAT_SEL, 0);
    wr(HVIO_REG_DRV_FEAT, 0x3);
    EXPECT_EQ(h.m.driver_features, kVersion1);
    EXPECT_EQ(h.stats.bad_state, 1u);
}

TEST_F(Mmio, StatusBitsCannotBeClearedButByReset) {
    negotiate(kVersion1);
    wr(HVIO_REG_STATUS, HVIO_S_ACKNOWLEDGE);
    EXPECT_EQ(rd(HVIO_REG_STATUS),
              uint32_t{HVIO_S_ACKNOWLEDGE | HVIO_S_DRIVER | HVIO_S_FEATURES_OK});
    EXPECT_EQ(h.stats.bad_state, 1u);
}

TEST_F(Mmio, StatusAboveOneByteIsIgnoredNotAReset) {
    // 0x100 has a zero low byte; it must not be taken as a reset.
    negotiate(kVersion1);
    uint32_t gen = h.m.generation;
    wr(HVIO_REG_STATUS, 0x100);
    EXPECT_EQ(rd(HVIO_REG_STATUS),
              uint32_t{HVIO_S_ACKNOWLEDGE | HVIO_S_DRIVER | HVIO_S_FEATURES_OK});
    EXPECT_EQ(h.m.generation, gen);
    EXPECT_EQ(h.stats.bad_state, 1u);
}

TEST_F(Mmio, DriverOkRequiresFeaturesOk) {
    wr(HVIO_REG_STATUS, HVIO_S_ACKNOWLEDGE | HVIO_S_DRIVER | HVIO_S_DRIVER_OK);
    EXPECT_EQ(rd(HVIO_REG_STATUS), uint32_t{HVIO_S_ACKNOWLEDGE | HVIO_S_DRIVER});
    EXPECT_EQ(h.stats.bad_state, 1u);
}

TEST_F(Mmio, ResetClearsDriverStateAndAdvancesGeneration) {
    negotiate(kVersion1 | 0x1);
    setup_good_queue(0);
    ASSERT_EQ(h.m.queues[0].ready, 1u);
    hvio_mmio_set_config(&h.m, 0, h.m.config, 1, true);
    ASSERT_NE(rd(HVIO_REG_INT_STATUS), 0u);
    uint32_t gen = h.m.generation;

    wr(HVIO_REG_STATUS, 0);
    EXPECT_EQ(rd(HVIO_REG_STATUS), 0u);
    EXPECT_EQ(rd(HVIO_REG_INT_STATUS), 0u);
    EXPECT_EQ(h.m.driver_features, 0u);
    EXPECT_EQ(h.m.queue_sel, 0u);
    EXPECT_EQ(h.m.queues[0].ready, 0u);
    EXPECT_EQ(h.m.queues[0].num, 0u);
    EXPECT_EQ(h.m.queues[0].desc, 0u);
    EXPECT_EQ(h.m.generation, gen + 1);
    EXPECT_EQ(h.stats.resets, 2u); // negotiate() starts with a reset too
    ASSERT_FALSE(h.status_events.empty());
    EXPECT_TRUE(h.status_events.back().reset);
    // Identity and config space are the device's: they survive.
    EXPECT_EQ(rd(HVIO_REG_DEVICE_ID), 2u);
    EXPECT_EQ(rd(HVIO_REG_CONFIG, 1), 0x10u);
}

TEST_F(Mmio, QueueSetupAndReadyWithRingsInRam) {
    negotiate(kVersion1);
    wr(HVIO_REG_QUEUE_SEL, 1);
    EXPECT_EQ(rd(HVIO_REG_QUEUE_READY), 0u);
    EXPECT_EQ(rd(HVIO_REG_QUEUE_NUM_MAX), 256u);
    setup_good_queue(1);
    EXPECT_EQ(rd(HVIO_REG_QUEUE_READY), 1u);
    EXPECT_EQ(h.m.queues[1].num, 128u);
    EXPECT_EQ(h.m.queues[1].desc, kRamBase + 0x20000);
    EXPECT_EQ(h.stats.queue_refused, 0u);
    EXPECT_TRUE(h.irqs.empty());
}

TEST_F(Mmio, QueueReadyRefusedForBadNum) {
    negotiate(kVersion1);
    uint64_t b = kRamBase;
    for (uint32_t num : {0u, 3u, 512u}) {
        wr(HVIO_REG_STATUS, 0);
        negotiate(kVersion1);
        setup_queue(0, num, b, b + 0x1000, b + 0x2000);
        EXPECT_EQ(rd(HVIO_REG_QUEUE_READY), 0u) << num;
        EXPECT_NE(rd(HVIO_REG_STATUS) & HVIO_S_NEEDS_RESET, 0u) << num;
    }
    EXPECT_EQ(h.stats.queue_refused, 3u);
}

TEST_F(Mmio, QueueRefusalRaisesConfigInterruptOnce) {
    negotiate(kVersion1);
    setup_queue(0, 3, kRamBase, kRamBase + 0x1000, kRamBase + 0x2000);
    setup_queue(1, 3, kRamBase, kRamBase + 0x1000, kRamBase + 0x2000);
    ASSERT_EQ(h.irqs.size(), 1u);
    EXPECT_EQ(h.irqs[0], uint32_t{HVIO_INT_CONFIG});
    EXPECT_EQ(rd(HVIO_REG_INT_STATUS), uint32_t{HVIO_INT_CONFIG});
    EXPECT_EQ(h.stats.queue_refused, 2u);
}

TEST_F(Mmio, QueueReadyRefusedForMisalignedRings) {
    negotiate(kVersion1);
    setup_queue(0, 8, kRamBase + 8, kRamBase + 0x1000, kRamBase + 0x2000);
    EXPECT_EQ(rd(HVIO_REG_QUEUE_READY), 0u);
    wr(HVIO_REG_STATUS, 0);
    negotiate(kVersion1);
    setup_queue(0, 8, kRamBase, kRamBase + 0x1001, kRamBase + 0x2000);
    EXPECT_EQ(rd(HVIO_REG_QUEUE_READY), 0u);
    wr(HVIO_REG_STATUS, 0);
    negotiate(kVersion1);
    setup_queue(0, 8, kRamBase, kRamBase + 0x1000, kRamBase + 0x2002);
    EXPECT_EQ(rd(HVIO_REG_QUEUE_READY), 0u);
    EXPECT_EQ(h.stats.queue_refused, 3u);
}

TEST_F(Mmio, QueueReadyRefusedForRingsOutsideRam) {
    negotiate(kVersion1);
    // Used ring of 256 entries needs 6 + 8 * 256 bytes: put it so that only
    // its last bytes fall past the end of RAM.
    uint64_t end = kRamBase + kRamSize;
    setup_queue(0, 256, kRamBase, kRamBase + 0x1000, end - 2048);
    EXPECT_EQ(rd(HVIO_REG_QUEUE_READY), 0u);
    wr(HVIO_REG_STATUS, 0);
    negotiate(kVersion1);
    setup_queue(0, 256, kRamBase, kRamBase + 0x1000, end - 2056);
    EXPECT_EQ(rd(HVIO_REG_QUEUE_READY), 1u);
    wr(HVIO_REG_STATUS, 0);
    negotiate(kVersion1);
    setup_queue(0, 16, 0x1000, kRamBase + 0x1000, kRamBase + 0x2000);
    EXPECT_EQ(rd(HVIO_REG_QUEUE_READY), 0u);
    // An address that wraps the 64-bit space is outside too.
    wr(HVIO_REG_STATUS, 0);
    negotiate(kVersion1);
    setup_queue(0, 16, 0xfffffffffffffff0ULL, kRamBase + 0x1000, kRamBase + 0x2000);
    EXPECT_EQ(rd(HVIO_REG_QUEUE_READY), 0u);
}

TEST_F(Mmio, QueueRegistersLockedWhileReady) {
    negotiate(kVersion1);
    setup_good_queue(0);
    uint64_t desc = h.m.queues[0].desc;
    wr(HVIO_REG_QUEUE_NUM, 64);
    wr(HVIO_REG_QUEUE_DESC_LO, 0);
    EXPECT_EQ(h.m.queues[0].num, 128u);
    EXPECT_EQ(h.m.queues[0].desc, desc);
    EXPECT_EQ(h.stats.bad_state, 2u);
    // QueueReady = 0 unlocks them again.
    wr(HVIO_REG_QUEUE_READY, 0);
    wr(HVIO_REG_QUEUE_NUM, 64);
    EXPECT_EQ(h.m.queues[0].num, 64u);
}

TEST_F(Mmio, QueueSelOutOfRange) {
    wr(HVIO_REG_QUEUE_SEL, 2);
    EXPECT_EQ(rd(HVIO_REG_QUEUE_NUM_MAX), 0u);
    EXPECT_EQ(rd(HVIO_REG_QUEUE_READY), 0u);
    wr(HVIO_REG_QUEUE_NUM, 8);
    wr(HVIO_REG_QUEUE_DESC_LO, 0x1000);
    wr(HVIO_REG_QUEUE_READY, 1);
    EXPECT_EQ(h.stats.bad_queue, 3u);
    wr(HVIO_REG_QUEUE_SEL, 0xffffffff);
    wr(HVIO_REG_QUEUE_NUM, 8);
    EXPECT_EQ(h.stats.bad_queue, 4u);
    for (auto &q : h.m.queues)
        EXPECT_EQ(q.num, 0u);
}

TEST_F(Mmio, NotifyKicksOnlyReadyQueues) {
    negotiate(kVersion1);
    setup_good_queue(1);
    wr(HVIO_REG_QUEUE_NOTIFY, 1);
    wr(HVIO_REG_QUEUE_NOTIFY, 0);   // not ready
    wr(HVIO_REG_QUEUE_NOTIFY, 7);   // no such queue
    wr(HVIO_REG_QUEUE_NOTIFY, ~0u); // hostile
    ASSERT_EQ(h.kicks.size(), 1u);
    EXPECT_EQ(h.kicks[0], 1u);
    EXPECT_EQ(h.stats.notifies, 1u);
    EXPECT_EQ(h.stats.bad_queue, 3u);
}

TEST_F(Mmio, RegistersNeedAligned32BitAccess) {
    EXPECT_EQ(rd(HVIO_REG_MAGIC, 2), 0u);
    EXPECT_EQ(rd(HVIO_REG_MAGIC, 1), 0u);
    EXPECT_EQ(rd(HVIO_REG_MAGIC, 8), 0u);
    EXPECT_EQ(rd(HVIO_REG_MAGIC + 1, 4), 0u);
    EXPECT_EQ(rd(HVIO_REG_MAGIC, 0), 0u);
    wr(HVIO_REG_STATUS, HVIO_S_ACKNOWLEDGE, 1);
    EXPECT_EQ(h.m.status, 0u);
    EXPECT_EQ(h.stats.bad_width, 6u);
}

TEST_F(Mmio, UnknownAndWrongDirectionOffsets) {
    EXPECT_EQ(rd(0x018), 0u);                  // hole
    EXPECT_EQ(rd(HVIO_REG_QUEUE_NUM), 0u);     // write-only
    EXPECT_EQ(rd(HVIO_REG_QUEUE_DESC_LO), 0u); // write-only
    wr(HVIO_REG_MAGIC, 0);                     // read-only
    wr(HVIO_REG_INT_STATUS, 0xff);             // read-only
    wr(0x0f8, 1);                              // hole
    EXPECT_EQ(h.stats.bad_offset, 6u);
    EXPECT_EQ(rd(HVIO_REG_MAGIC), 0x74726976u);
}

TEST_F(Mmio, SharedMemoryRegionsReadAsAbsent) {
    wr(HVIO_REG_SHM_SEL, 0);
    EXPECT_EQ(rd(HVIO_REG_SHM_LEN_LO), 0xffffffffu);
    EXPECT_EQ(rd(HVIO_REG_SHM_LEN_HI), 0xffffffffu);
}

TEST_F(Mmio, ConfigSpaceReadsAreLittleEndianAtEveryWidth) {
    EXPECT_EQ(rd(HVIO_REG_CONFIG + 3, 1), 0x13u);
    EXPECT_EQ(rd(HVIO_REG_CONFIG + 2, 2), 0x1312u);
    EXPECT_EQ(rd(HVIO_REG_CONFIG + 4, 4), 0x17161514u);
    EXPECT_EQ(hvio_mmio_read(&h.m, HVIO_REG_CONFIG + 8, 8), 0x1f1e1d1c1b1a1918ULL);
    EXPECT_EQ(h.stats.bad_offset, 0u);
}

TEST_F(Mmio, ConfigSpaceRejectsOutOfRangeAndMisaligned) {
    EXPECT_EQ(rd(HVIO_REG_CONFIG + 16, 1), 0u); // past config_len
    EXPECT_EQ(rd(HVIO_REG_CONFIG + 14, 4), 0u); // straddles the end
    EXPECT_EQ(rd(HVIO_REG_CONFIG + 1, 2), 0u);  // misaligned
    EXPECT_EQ(rd(HVIO_REG_CONFIG + 0, 3), 0u);  // no such width
    EXPECT_EQ(hvio_mmio_read(&h.m, 0xfffffffffffffff8ULL, 8), 0u);
    EXPECT_EQ(h.stats.bad_offset, 5u);
}

TEST_F(Mmio, ConfigWritesAreIgnoredAndCounted) {
    wr(HVIO_REG_CONFIG, 0xab, 1);
    EXPECT_EQ(rd(HVIO_REG_CONFIG, 1), 0x10u);
    EXPECT_EQ(h.stats.config_writes, 1u);
}

TEST_F(Mmio, WritableConfigByteNeedsItsFeatureAndAByteAccess) {
    // virtio-blk's wce: writable only once CONFIG_WCE (bit 11) is negotiated.
    h.m.cfg_wr_off = 5;
    h.m.cfg_wr_feature = 9;
    wr(HVIO_REG_CONFIG + 5, 0, 1);
    EXPECT_EQ(rd(HVIO_REG_CONFIG + 5, 1), 0x15u); // not negotiated yet
    negotiate(kVersion1 | (1ULL << 9));
    wr(HVIO_REG_CONFIG + 5, 0, 1);
    EXPECT_EQ(rd(HVIO_REG_CONFIG + 5, 1), 0u);
    wr(HVIO_REG_CONFIG + 5, 1, 1);
    EXPECT_EQ(rd(HVIO_REG_CONFIG + 5, 1), 1u);
    wr(HVIO_REG_CONFIG + 5, 7, 1);   // only 0 and 1
    wr(HVIO_REG_CONFIG + 4, 0x0, 4); // not a byte access
    wr(HVIO_REG_CONFIG + 6, 0, 1);   // another byte
    EXPECT_EQ(rd(HVIO_REG_CONFIG + 5, 1), 1u);
    EXPECT_EQ(rd(HVIO_REG_CONFIG + 6, 1), 0x16u);
    EXPECT_EQ(h.stats.config_writes, 6u);
}

TEST_F(Mmio, SetConfigAdvancesGenerationAndNotifies) {
    uint32_t gen = rd(HVIO_REG_CONFIG_GEN);
    const uint8_t bytes[2] = {0xaa, 0xbb};
    hvio_mmio_set_config(&h.m, 2, bytes, 2, false);
    EXPECT_EQ(rd(HVIO_REG_CONFIG_GEN), gen + 1);
    EXPECT_EQ(rd(HVIO_REG_CONFIG + 2, 2), 0xbbaau);
    EXPECT_TRUE(h.irqs.empty());
    hvio_mmio_set_config(&h.m, 0, bytes, 1, true);
    EXPECT_EQ(rd(HVIO_REG_CONFIG_GEN), gen + 2);
    ASSERT_EQ(h.irqs.size(), 1u);
    EXPECT_EQ(rd(HVIO_REG_INT_STATUS), uint32_t{HVIO_INT_CONFIG});
    wr(HVIO_REG_INT_ACK, HVIO_INT_CONFIG);
    EXPECT_EQ(rd(HVIO_REG_INT_STATUS), 0u);
}

TEST_F(Mmio, NeedsResetIsStickyUntilReset) {
    negotiate(kVersion1);
    setup_queue(0, 3, kRamBase, kRamBase + 0x1000, kRamBase + 0x2000);
    uint32_t s = rd(HVIO_REG_STATUS);
    ASSERT_NE(s & HVIO_S_NEEDS_RESET, 0u);
    // The driver writes back what it read minus NEEDS_RESET: refused silently
    // for that bit, the rest of the status stays.
    wr(HVIO_REG_STATUS, s & ~HVIO_S_NEEDS_RESET);
    EXPECT_NE(rd(HVIO_REG_STATUS) & HVIO_S_NEEDS_RESET, 0u);
    wr(HVIO_REG_STATUS, 0);
    EXPECT_EQ(rd(HVIO_REG_STATUS), 0u);
}

TEST_F(Mmio, StatusCallbackSeesEveryChange) {
    negotiate(kVersion1);
    // reset, ACK, DRIVER, FEATURES_OK
    ASSERT_EQ(h.status_events.size(), 4u);
    EXPECT_TRUE(h.status_events[0].reset);
    EXPECT_EQ(h.status_events[3].new_status,
              uint32_t{HVIO_S_ACKNOWLEDGE | HVIO_S_DRIVER | HVIO_S_FEATURES_OK});
    // Writing the same value again is not a change.
    wr(HVIO_REG_STATUS, HVIO_S_ACKNOWLEDGE | HVIO_S_DRIVER | HVIO_S_FEATURES_OK);
    EXPECT_EQ(h.status_events.size(), 4u);
}

} // namespace

TEST_F(Mmio, GenerationNeverWrapsToZero) {
    // Proves the generation a reset advances does not wrap at 2^32: the queue engine reads 0
    // as "not attached", and a completion from 2^32 resets ago must not match again.
    h.m.generation = 0xffffffffULL;
    wr(HVIO_REG_STATUS, 0);
    EXPECT_NE(h.m.generation, 0u);
    EXPECT_EQ(h.m.generation, 0x100000000ULL);
    wr(HVIO_REG_STATUS, 0);
    EXPECT_EQ(h.m.generation, 0x100000001ULL);
    EXPECT_NE(static_cast<uint64_t>(h.m.generation), uint64_t{1});
}

TEST_F(Mmio, QueueReadyZeroStartsANewEpoch) {
    // Proves that QueueReady 1 -> 0 moves the queue's ready epoch on (the engine stops
    // using the old rings), a repeated 0 or a refused 1 does not, and another queue's epoch
    // stays.
    negotiate(kVersion1);
    setup_good_queue(0);
    setup_good_queue(1);
    const uint32_t e0 = h.m.queues[0].epoch, e1 = h.m.queues[1].epoch;
    wr(HVIO_REG_QUEUE_SEL, 0);
    wr(HVIO_REG_QUEUE_READY, 0);
    EXPECT_EQ(h.m.queues[0].ready, 0u);
    EXPECT_EQ(h.m.queues[0].epoch, e0 + 1);
    wr(HVIO_REG_QUEUE_READY, 0);
    EXPECT_EQ(h.m.queues[0].epoch, e0 + 1);
    EXPECT_EQ(h.m.queues[1].epoch, e1);
    // New rings, ready again: same epoch, the engine attaches to them.
    wr(HVIO_REG_QUEUE_READY, 1);
    EXPECT_EQ(h.m.queues[0].ready, 1u);
    EXPECT_EQ(h.m.queues[0].epoch, e0 + 1);
}
