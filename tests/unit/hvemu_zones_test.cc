// SPDX-License-Identifier: GPL-2.0
//
// hvemu's reading of several zones from one virtio_cfg.json and its rule
// for zones that run at once (tests/hvemu/config.cc): every memory_region
// inside the sim_ram window, none overlapping another, of the same zone or
// of another.
#include "hvemu.h"

#include <cstdarg>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <unistd.h>

#include <gtest/gtest.h>

namespace hvemu {

// The unit binary's die(): an exception the test can expect.
void die(const char *fmt, ...) {
    char b[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof(b), fmt, ap);
    va_end(ap);
    throw std::runtime_error(b);
}

} // namespace hvemu

namespace {

using hvemu::check_zone_ram;
using hvemu::load_zones;
using hvemu::pick_zone;
using hvemu::Zone;

constexpr uint64_t kBase = 0x20000000, kSize = 0x10000000;

struct HvemuZonesTest : ::testing::Test {
    std::string path;
    void SetUp() override {
        char tmpl[] = "/tmp/hvemu_zones_XXXXXX";
        int fd = mkstemp(tmpl);
        ASSERT_GE(fd, 0);
        close(fd);
        path = tmpl;
    }
    void TearDown() override { unlink(path.c_str()); }
    void write(const std::string &text) { std::ofstream(path) << text; }
};

// Two zones as e2e-zones writes them: the same windows and IRQs, RAM in the
// two halves of the sim window.
const char *kTwoZones = R"({"zones": [
  {"id": 1, "memory_region": [{"zone0_ipa": "0x20000000", "zonex_ipa": "0x0", "size": "0x8000000"}],
   "devices": [{"type": "blk", "addr": "0xd0000000", "len": "0x200", "irq": 10, "img": "a"},
               {"type": "net", "addr": "0xd0000400", "irq": 5, "tap": "t1"}]},
  {"id": 2, "memory_region": [{"zone0_ipa": "0x28000000", "zonex_ipa": "0x0", "size": "0x8000000"}],
   "devices": [{"type": "blk", "addr": "0xd0000000", "len": "0x200", "irq": 10, "img": "b"},
               {"type": "gpu", "addr": "0xd0000800", "irq": 6},
               {"type": "net", "addr": "0xd0000400", "irq": 5, "tap": "t2", "status": "disable"}]}]})";

TEST_F(HvemuZonesTest, ReadsEveryZoneInFileOrder) {
    write(kTwoZones);
    std::vector<Zone> zones = load_zones(path);
    ASSERT_EQ(2u, zones.size());
    EXPECT_EQ(1u, zones[0].id);
    EXPECT_EQ(2u, zones[1].id);
    ASSERT_EQ(2u, zones[0].devs.size());
    EXPECT_EQ("net", zones[0].devs[1].type);
    EXPECT_EQ(0x200u, zones[0].devs[1].len);
    // gpu is not hvio's, a disabled device is not there.
    ASSERT_EQ(1u, zones[1].devs.size());
    EXPECT_EQ(0x28000000u, zones[1].mem[0].zone0_ipa);
    EXPECT_EQ(2u, pick_zone(zones, 2, path).id);
    EXPECT_EQ(1u, pick_zone(zones, 0, path).id); // 0: the first
    EXPECT_THROW(pick_zone(zones, 3, path), std::runtime_error);
    EXPECT_EQ("", check_zone_ram(zones, kBase, kSize));
}

TEST_F(HvemuZonesTest, AZoneIdTwiceIsAnError) {
    write(R"({"zones": [{"id": 1, "memory_region": [{"zone0_ipa": 0, "zonex_ipa": 0, "size": 1}]},
                        {"id": 1, "memory_region": [{"zone0_ipa": 1, "zonex_ipa": 0, "size": 1}]}]})");
    EXPECT_THROW(load_zones(path), std::runtime_error);
}

TEST_F(HvemuZonesTest, OverlappingRamOfTwoZonesIsNamed) {
    write(kTwoZones);
    std::vector<Zone> zones = load_zones(path);
    zones[1].mem[0].zone0_ipa = 0x27fff000; // one page into zone 1's
    std::string why = check_zone_ram(zones, kBase, kSize);
    EXPECT_NE(std::string::npos, why.find("zone 2")) << why;
    EXPECT_NE(std::string::npos, why.find("zone 1's")) << why;
    // Touching is not overlapping.
    zones[1].mem[0].zone0_ipa = 0x28000000;
    EXPECT_EQ("", check_zone_ram(zones, kBase, kSize));
}

TEST_F(HvemuZonesTest, RegionsOfOneZoneMustNotOverlapEither) {
    write(kTwoZones);
    std::vector<Zone> zones = load_zones(path);
    zones[0].mem.push_back({0x20100000, 0x100000000, 0x100000});
    EXPECT_NE("", check_zone_ram({zones[0]}, kBase, kSize));
}

TEST_F(HvemuZonesTest, RamOutsideTheSimWindowIsRefused) {
    write(kTwoZones);
    std::vector<Zone> zones = load_zones(path);
    zones[1].mem[0].size = 0x8001000; // one page past the window's end
    EXPECT_NE(std::string::npos, check_zone_ram(zones, kBase, kSize).find("not inside sim_ram"));
    zones[1].mem[0] = {0x1ffff000, 0, 0x2000}; // starts below it
    EXPECT_NE("", check_zone_ram(zones, kBase, kSize));
    zones[1].mem[0] = {kBase + kSize - 0x1000, 0, UINT64_MAX - 0x100}; // wraps
    EXPECT_NE("", check_zone_ram(zones, kBase, kSize));
    zones[1].mem[0] = {0x28000000, 0, 0}; // empty
    EXPECT_NE("", check_zone_ram(zones, kBase, kSize));
}

} // namespace
