// SPDX-License-Identifier: GPL-2.0
//
// hvemu's model of hvisor's per-CPU virtio interrupt list (PendingIrqs,
// tests/hvemu/irqs.cc): what the e2e relies on to fail exactly where
// hvisor's hv_virtio_inject_irq would panic.
#include "hvemu.h"

#include <gtest/gtest.h>

namespace hvemu {

// The unit binary's stand-ins for the VMM: arch_irq records.
static std::vector<uint32_t> g_injected;
void arch_irq(Vm &, uint32_t irq) { g_injected.push_back(irq); }
uint64_t now_ms() { return 0; }

} // namespace hvemu

namespace {

using hvemu::g_injected;
using hvemu::PendingIrqs;

struct HvemuIrqsTest : ::testing::Test {
    void SetUp() override { g_injected.clear(); }
    hvemu::Vm &vm() { return *reinterpret_cast<hvemu::Vm *>(&storage); }
    alignas(8) unsigned char storage[8] = {};
    hvemu::Stats stats;
};

TEST_F(HvemuIrqsTest, OutsideATrapEachInterruptIsInjectedAtOnce) {
    PendingIrqs p(vm(), stats, 8);
    for (uint32_t irq : {33u, 34u, 33u})
        ASSERT_TRUE(p.add(irq));
    EXPECT_EQ((std::vector<uint32_t>{33, 34, 33}), g_injected);
    EXPECT_EQ(1u, p.peak());
    EXPECT_EQ(3u, stats.irqs.load());
    EXPECT_EQ(33u, stats.last_irq.load());
}

TEST_F(HvemuIrqsTest, DuringATrapTheListCollectsDistinctIrqsAndTheEndInjectsThem) {
    PendingIrqs p(vm(), stats, 8);
    p.enter_trap();
    for (uint32_t irq : {40u, 41u, 40u, 42u, 41u})
        ASSERT_TRUE(p.add(irq));
    EXPECT_TRUE(g_injected.empty());
    EXPECT_EQ("40, 41, 42", p.listed());
    p.leave_trap();
    EXPECT_EQ((std::vector<uint32_t>{40, 41, 42}), g_injected);
    EXPECT_EQ("", p.listed());
    EXPECT_EQ(3u, p.peak());
}

TEST_F(HvemuIrqsTest, TheListHoldsMaxDevsMinusOneDistinctIrqsLikeHvisorsAssertion) {
    // hvisor: assert!(len + 1 < MAX_DEVS) before appending, MAX_DEVS 8.
    PendingIrqs p(vm(), stats, 8);
    p.enter_trap();
    for (uint32_t irq = 1; irq <= 7; irq++)
        ASSERT_TRUE(p.add(irq)) << "IRQ " << irq;
    EXPECT_TRUE(p.add(3)) << "a listed IRQ is skipped, never refused";
    EXPECT_FALSE(p.add(8)) << "the 8th distinct IRQ is where hvisor panics";
    EXPECT_EQ("1, 2, 3, 4, 5, 6, 7", p.listed());
    p.leave_trap();
    EXPECT_EQ(7u, g_injected.size());
    EXPECT_TRUE(p.add(8)) << "an emptied list has room again";
}

TEST_F(HvemuIrqsTest, AnOlderHvisorWithMaxDevsFourHoldsThree) {
    PendingIrqs p(vm(), stats, 4);
    p.enter_trap();
    EXPECT_TRUE(p.add(1));
    EXPECT_TRUE(p.add(2));
    EXPECT_TRUE(p.add(3));
    EXPECT_FALSE(p.add(4));
}

} // namespace
