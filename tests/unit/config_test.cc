// SPDX-License-Identifier: GPL-2.0
// Unit tests of the config parser (userspace/lib/config.cc): hvisor-tool's
// virtio_cfg.json is read as is, hvio's own keys work, and every refused
// file gives one message naming the key path.
#include <gtest/gtest.h>

#include "../selftests/hvisor_examples.h"
#include "config.h"

#include <array>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

using hvio::Config;
using hvio::ConfigResult;

// hvisor-tool's examples, verbatim, shared with the selftest that serves them
// (tests/selftests/hvisor_examples.h): nxp-aarch64 (blk, net disabled,
// console), qemu-aarch64/with_virtio_blk_console, and qemu-x86_64 (two RAM
// regions, the second one high, console, net on tap0, blk on rootfs2.img).
const char *kHvisorExample = HVT_NXP_AARCH64;
const char *kHvisorQemuAarch64 = HVT_QEMU_AARCH64;
const char *kHvisorQemuX86 = HVT_QEMU_X86_64;

class ConfigTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/hvio-config-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        touch("rootfs2.ext4", 1 << 20);
        touch("rootfs2.img", 1 << 20);
        touch("data.img", 4096);
    }
    void TearDown() override {
        std::string cmd = "rm -rf '" + dir_ + "'";
        ASSERT_EQ(std::system(cmd.c_str()), 0);
    }

    void touch(const std::string &name, off_t size) {
        int fd = ::open((dir_ + "/" + name).c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::ftruncate(fd, size), 0);
        ::close(fd);
    }

    ConfigResult parse(const std::string &text) { return hvio::parse_config(text, dir_); }

    // One zone with one blk device whose extra JSON members are dev_extra.
    std::string one_blk(const std::string &dev_extra, const std::string &zone_extra = "") {
        return R"({"zones":[{"id":1,"memory_region":[{"zone0_ipa":"0x50000000",)"
               R"("zonex_ipa":"0x50000000","size":"0x10000000"}],)" +
               zone_extra + R"("devices":[{"type":"blk","addr":"0xa003c00","irq":78,)" +
               R"("img":"rootfs2.ext4")" + (dev_extra.empty() ? "" : "," + dev_extra) + "}]}]}";
    }

    // Expects a refusal whose message is "where: <contains what>".
    void expect_error(const std::string &text, const std::string &where, const std::string &what) {
        ConfigResult r = parse(text);
        ASSERT_FALSE(r.ok()) << text;
        EXPECT_EQ(r.error().where, where) << r.error().text();
        EXPECT_NE(r.error().what.find(what), std::string::npos) << r.error().text();
    }

    std::string dir_;
};

TEST_F(ConfigTest, HvisorToolExampleParses) {
    ConfigResult r = parse(kHvisorExample);
    ASSERT_TRUE(r.ok()) << r.error().text();
    const Config &c = r.value();
    ASSERT_EQ(c.zones.size(), 1u);
    EXPECT_EQ(c.zones[0].id, 1u);
    ASSERT_EQ(c.zones[0].regions.size(), 1u);
    EXPECT_EQ(c.zones[0].regions[0].zone0_ipa, 0x50000000u);
    EXPECT_EQ(c.zones[0].regions[0].zonex_ipa, 0x50000000u);
    EXPECT_EQ(c.zones[0].regions[0].size, 0x30000000u);
    ASSERT_EQ(c.zones[0].blk.size(), 1u);
    const hvio::BlkDeviceConfig &b = c.zones[0].blk[0];
    EXPECT_EQ(b.where, "zones[0].devices[0]");
    EXPECT_EQ(b.addr, 0xa003c00u);
    EXPECT_EQ(b.len, 0x200u);
    EXPECT_EQ(b.irq, 78u);
    EXPECT_EQ(b.path, dir_ + "/rootfs2.ext4");
    EXPECT_FALSE(b.block_device);
    // Defaults of our keys.
    EXPECT_EQ(b.queues, 1u);
    EXPECT_EQ(b.queue_size, 256u);
    EXPECT_FALSE(b.readonly);
    EXPECT_FALSE(b.direct);
    EXPECT_TRUE(b.discard);
    EXPECT_EQ(b.serial, "rootfs2.ext4");
    EXPECT_EQ(b.poll_us, hvio::kDefaultPollUs);
    EXPECT_EQ(c.device_count(), 2u); // and the console
}

TEST_F(ConfigTest, HvisorToolQemuAarch64ExampleParses) {
    ConfigResult r = parse(kHvisorQemuAarch64);
    ASSERT_TRUE(r.ok()) << r.error().text();
    const Config &c = r.value();
    EXPECT_TRUE(c.warnings.empty());
    ASSERT_EQ(c.zones.size(), 1u);
    ASSERT_EQ(c.zones[0].regions.size(), 1u);
    EXPECT_EQ(c.zones[0].regions[0].size, 0x30000000u);
    ASSERT_EQ(c.zones[0].blk.size(), 1u);
    EXPECT_EQ(c.zones[0].blk[0].irq, 78u);
    EXPECT_EQ(c.zones[0].blk[0].path, dir_ + "/rootfs2.ext4");
    ASSERT_EQ(c.zones[0].console.size(), 1u);
    EXPECT_EQ(c.zones[0].console[0].addr, 0xa003800u);
    EXPECT_EQ(c.zones[0].console[0].irq, 76u);
    EXPECT_EQ(c.device_count(), 2u);
}

TEST_F(ConfigTest, HvisorToolQemuX86ExampleTwoRegionsParses) {
    ConfigResult r = parse(kHvisorQemuX86);
    ASSERT_TRUE(r.ok()) << r.error().text();
    const Config &c = r.value();
    EXPECT_TRUE(c.warnings.empty());
    ASSERT_EQ(c.zones.size(), 1u);
    const hvio::ZoneConfig &z = c.zones[0];
    ASSERT_EQ(z.regions.size(), 2u);
    EXPECT_EQ(z.regions[0].zone0_ipa, 0x40300000u);
    EXPECT_EQ(z.regions[0].zonex_ipa, 0x0u);
    EXPECT_EQ(z.regions[0].size, 0x20000000u);
    EXPECT_EQ(z.regions[1].zone0_ipa, 0x100000000u);
    EXPECT_EQ(z.regions[1].zonex_ipa, 0x100000000u);
    EXPECT_EQ(z.regions[1].size, 0x70000000u);
    ASSERT_EQ(z.console.size(), 1u);
    EXPECT_EQ(z.console[0].addr, 0x5950f000u);
    EXPECT_EQ(z.console[0].irq, 10u);
    ASSERT_EQ(z.net.size(), 1u);
    EXPECT_EQ(z.net[0].addr, 0x5950f200u);
    EXPECT_EQ(z.net[0].irq, 14u);
    EXPECT_EQ(z.net[0].tap, "tap0");
    ASSERT_EQ(z.blk.size(), 1u);
    EXPECT_EQ(z.blk[0].addr, 0x5950f400u);
    EXPECT_EQ(z.blk[0].irq, 11u);
    EXPECT_EQ(z.blk[0].path, dir_ + "/rootfs2.img");
    EXPECT_EQ(c.device_count(), 3u);
}

TEST_F(ConfigTest, DisabledDeviceSkippedWithALine) {
    // Proves that a disabled device is skipped with one line naming it (issue 12 §3), and that
    // its keys are not looked at (the example's disabled net device has keys we do not know).
    ConfigResult r = parse(kHvisorExample);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.value().warnings,
              std::vector<std::string>{
                  R"(zones[0].devices[1]: net device disabled ("status": "disable"), skipped)"});

    r = parse(one_blk(R"("status":"disable","bogus":1)"));
    ASSERT_TRUE(r.ok()) << r.error().text();
    EXPECT_EQ(r.value().device_count(), 0u);
    ASSERT_FALSE(r.value().warnings.empty());
    EXPECT_EQ(r.value().warnings[0],
              R"(zones[0].devices[0]: blk device disabled ("status": "disable"), skipped)");
}

TEST_F(ConfigTest, ConsoleHvisorToolFormatServed) {
    ConfigResult r = parse(kHvisorExample);
    ASSERT_TRUE(r.ok()) << r.error().text();
    EXPECT_EQ(r.value().warnings.size(), 1u); // the disabled net device
    ASSERT_EQ(r.value().zones[0].console.size(), 1u);
    const hvio::ConsoleDeviceConfig &c = r.value().zones[0].console[0];
    EXPECT_EQ(c.where, "zones[0].devices[2]");
    EXPECT_EQ(c.addr, 0xa003800u);
    EXPECT_EQ(c.len, 0x200u);
    EXPECT_EQ(c.irq, 76u);
    EXPECT_TRUE(c.pty.empty());
    EXPECT_TRUE(c.socket.empty());
    EXPECT_EQ(c.queue_size, 256u);
    EXPECT_EQ(r.value().device_count(), 2u);
}

// One zone with one console whose extra JSON members are dev_extra.
static std::string one_console(const std::string &dev_extra) {
    return R"({"zones":[{"id":1,"memory_region":[{"zone0_ipa":"0x50000000",)"
           R"("zonex_ipa":"0x50000000","size":"0x10000000"}],"devices":[{"type":"console",)"
           R"("addr":"0xa003800","len":"0x200","irq":76,"status":"enable")" +
           (dev_extra.empty() ? "" : "," + dev_extra) + "}]}]}";
}

TEST_F(ConfigTest, ConsolePtyAndSocketKeys) {
    ConfigResult r = parse(one_console(R"("pty":"/run/hvio/zone1-console")"));
    ASSERT_TRUE(r.ok()) << r.error().text();
    EXPECT_EQ(r.value().zones[0].console[0].pty, "/run/hvio/zone1-console");
    EXPECT_TRUE(r.value().zones[0].console[0].socket.empty());

    r = parse(one_console(R"("socket":"/run/hvio/zone1.sock","queue_size":64)"));
    ASSERT_TRUE(r.ok()) << r.error().text();
    EXPECT_EQ(r.value().zones[0].console[0].socket, "/run/hvio/zone1.sock");
    EXPECT_TRUE(r.value().zones[0].console[0].pty.empty());
    EXPECT_EQ(r.value().zones[0].console[0].queue_size, 64u);
}

TEST_F(ConfigTest, ConsoleStallMs) {
    // How long output waits for a PTY nobody reads: 1 s unless said, 0
    // for ever, at most ten minutes.
    ConfigResult r = parse(one_console(""));
    ASSERT_TRUE(r.ok()) << r.error().text();
    EXPECT_EQ(r.value().zones[0].console[0].stall_ms, 1000u);
    r = parse(one_console(R"("stall_ms":0)"));
    ASSERT_TRUE(r.ok()) << r.error().text();
    EXPECT_EQ(r.value().zones[0].console[0].stall_ms, 0u);
    EXPECT_EQ(parse(one_console(R"("stall_ms":"0x64")")).value().zones[0].console[0].stall_ms,
              100u);
    const std::string w = "zones[0].devices[0].stall_ms";
    expect_error(one_console(R"("stall_ms":600001)"), w, "must be 0..600000");
    expect_error(one_console(R"("stall_ms":-1)"), w, "must not be negative");
    expect_error(one_blk(R"("stall_ms":5)"), w, "unknown key");
}

TEST_F(ConfigTest, ConsoleRefusals) {
    const std::string w = "zones[0].devices[0]";
    expect_error(one_console(R"("tap":"tap0")"), w + ".tap", "unknown key");
    expect_error(one_console(R"("pty":"relative")"), w + ".pty", "absolute path");
    expect_error(one_console(R"("pty":"/run/hvio/")"), w + ".pty", "absolute path");
    expect_error(one_console(R"("pty":5)"), w + ".pty", "must be a string");
    expect_error(one_console(R"("socket":"")"), w + ".socket", "absolute path");
    expect_error(one_console(R"("socket":"/)" + std::string(120, 'x') + R"(")"), w + ".socket",
                 "UNIX socket path");
    expect_error(one_console(R"("pty":"/a","socket":"/b")"), w + ".socket", "exclude each other");
    expect_error(one_console(R"("queue_size":3)"), w + ".queue_size", "power of two");
    expect_error(R"({"zones":[{"id":1,"memory_region":[{"zone0_ipa":"0x50000000",)"
                 R"("zonex_ipa":"0x50000000","size":"0x10000000"}],"devices":[)"
                 R"({"type":"console","addr":"0xa003800","irq":76,"pty":"/run/c"},)"
                 R"({"type":"console","addr":"0xa003a00","irq":77,"pty":"/run/c"}]}]})",
                 "zones[0].devices[1].pty", "also used by zones[0].devices[0].pty");
    expect_error(R"({"zones":[{"id":1,"memory_region":[{"zone0_ipa":"0x50000000",)"
                 R"("zonex_ipa":"0x50000000","size":"0x10000000"}],"devices":[)"
                 R"({"type":"console","addr":"0xa003800","irq":76},)"
                 R"({"type":"console","addr":"0xa003800","irq":77}]}]})",
                 "zones[0].devices[1].addr", "overlaps zones[0].devices[0]");
}

TEST_F(ConfigTest, GpuSkippedWithWarning) {
    std::string text = one_console("");
    text.replace(text.find(R"("type":"console")"), 16, R"("type":"gpu")");
    ConfigResult r = parse(text);
    ASSERT_TRUE(r.ok()) << r.error().text();
    ASSERT_EQ(r.value().warnings.size(), 2u);
    EXPECT_EQ(r.value().warnings[0],
              "zones[0].devices[0]: gpu devices are not yet supported, skipped");
}

// ---- net devices -------------------------------------------------------------

// One zone with one net device whose extra JSON members are dev_extra.
static std::string one_net(const std::string &dev_extra,
                           const std::string &base = R"("tap":"tap0",)") {
    return R"({"zones":[{"id":1,"memory_region":[{"zone0_ipa":"0x50000000",)"
           R"("zonex_ipa":"0x50000000","size":"0x10000000"}],"devices":[{"type":"net",)"
           R"("addr":"0xa003600","len":"0x200","irq":75,)" +
           base + R"("mac":["0x00","0x16","0x3e","0x10","0x10","0x10"])" +
           (dev_extra.empty() ? "" : "," + dev_extra) + "}]}]}";
}

TEST_F(ConfigTest, NetHvisorToolFormatAndDefaults) {
    std::string text = kHvisorExample;
    text.replace(text.find(R"("status":"disable")"), 18, R"("status":"enable")");
    ConfigResult r = parse(text);
    ASSERT_TRUE(r.ok()) << r.error().text();
    ASSERT_EQ(r.value().zones[0].net.size(), 1u);
    const hvio::NetDeviceConfig &n = r.value().zones[0].net[0];
    EXPECT_EQ(n.where, "zones[0].devices[1]");
    EXPECT_EQ(n.addr, 0xa003600u);
    EXPECT_EQ(n.len, 0x200u);
    EXPECT_EQ(n.irq, 75u);
    EXPECT_EQ(n.tap, "tap0");
    EXPECT_EQ(n.mac, (std::array<uint8_t, 6>{0x00, 0x16, 0x3e, 0x10, 0x10, 0x10}));
    EXPECT_TRUE(n.mac_given);
    EXPECT_EQ(n.mtu, 1500u);
    EXPECT_TRUE(n.offloads);
    EXPECT_TRUE(n.mrg_rxbuf);
    EXPECT_EQ(n.queue_size, 256u);
    EXPECT_EQ(n.poll_us, hvio::kDefaultPollUs);
    EXPECT_EQ(r.value().device_count(), 3u); // blk, net, console
    for (const std::string &w : r.value().warnings)
        EXPECT_EQ(w.find("net"), std::string::npos) << w;
}

TEST_F(ConfigTest, NetDisabledSkipped) {
    ConfigResult r = parse(kHvisorExample);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r.value().zones[0].net.empty());
    r = parse(one_net(R"("status":"disable","bogus":1)"));
    ASSERT_TRUE(r.ok()) << r.error().text();
    EXPECT_EQ(r.value().device_count(), 0u);
}

TEST_F(ConfigTest, NetOurKeys) {
    ConfigResult r =
        parse(one_net(R"("mtu":9000,"offloads":false,"mrg_rxbuf":false,"queue_size":"0x400")"));
    ASSERT_TRUE(r.ok()) << r.error().text();
    const hvio::NetDeviceConfig &n = r.value().zones[0].net[0];
    EXPECT_EQ(n.mtu, 9000u);
    EXPECT_FALSE(n.offloads);
    EXPECT_FALSE(n.mrg_rxbuf);
    EXPECT_EQ(n.queue_size, 1024u);
    for (const char *mtu : {"68", "65535"})
        EXPECT_TRUE(parse(one_net(std::string(R"("mtu":)") + mtu)).ok()) << mtu;
}

TEST_F(ConfigTest, NetMtuRange) {
    expect_error(one_net(R"("mtu":67)"), "zones[0].devices[0].mtu", "must be 68..65535");
    expect_error(one_net(R"("mtu":65536)"), "zones[0].devices[0].mtu", "must be 68..65535");
    expect_error(one_net(R"("mtu":-1)"), "zones[0].devices[0].mtu", "must not be negative");
}

TEST_F(ConfigTest, NetBooleansAndQueueSize) {
    expect_error(one_net(R"("offloads":1)"), "zones[0].devices[0].offloads",
                 "must be true or false");
    expect_error(one_net(R"("mrg_rxbuf":"yes")"), "zones[0].devices[0].mrg_rxbuf",
                 "must be true or false");
    expect_error(one_net(R"("queue_size":100)"), "zones[0].devices[0].queue_size",
                 "not a power of two");
    expect_error(one_net(R"("queue_size":2048)"), "zones[0].devices[0].queue_size",
                 "must be 2..1024");
}

TEST_F(ConfigTest, NetMac) {
    const std::string w = "zones[0].devices[0].mac";
    auto with_mac = [](const std::string &mac) {
        std::string t = one_net("");
        size_t p = t.find(R"("mac":)");
        size_t e = t.find(']', p);
        return t.replace(p, e + 1 - p, R"("mac":)" + mac);
    };
    ConfigResult r = parse(with_mac(R"([2,"0x48",0,"255","0xfe",1])"));
    ASSERT_TRUE(r.ok()) << r.error().text();
    EXPECT_EQ(r.value().zones[0].net[0].mac,
              (std::array<uint8_t, 6>{0x02, 0x48, 0x00, 0xff, 0xfe, 0x01}));
    r = parse(with_mac(R"("52:54:00:AB:cd:0f")"));
    ASSERT_TRUE(r.ok()) << r.error().text();
    EXPECT_EQ(r.value().zones[0].net[0].mac,
              (std::array<uint8_t, 6>{0x52, 0x54, 0x00, 0xab, 0xcd, 0x0f}));

    expect_error(with_mac(R"(["0x00","0x16","0x3e","0x10","0x10"])"), w, "has 5 bytes, must be 6");
    expect_error(with_mac(R"(["0x00","0x16","0x3e","0x10","0x10","0x10","0x1"])"), w,
                 "has 7 bytes");
    expect_error(with_mac(R"(["0x00","0x16","0x3e","0x10","0x100","0x10"])"), w + "[4]",
                 "is not a byte");
    expect_error(with_mac(R"(["0x00","0x16","0x3e","zz","0x10","0x10"])"), w + "[3]", "bad number");
    expect_error(with_mac(R"(["0x01","0x16","0x3e","0x10","0x10","0x10"])"), w, "multicast");
    expect_error(with_mac(R"("ff:ff:ff:ff:ff:ff")"), w, "multicast");
    expect_error(with_mac(R"([0,0,0,0,0,0])"), w, "00:00:00:00:00:00");
    expect_error(with_mac(R"("52:54:00:ab:cd")"), w, "must be 6 bytes");
    expect_error(with_mac(R"("52:54:00:ab:cd:0fx")"), w, "must be 6 bytes");
    expect_error(with_mac(R"(5)"), w, "must be an array of 6 bytes");
}

TEST_F(ConfigTest, NetMacDefaultIsStableLocalUnicast) {
    std::string t = one_net("");
    size_t p = t.find(R"(,"mac":)");
    t.erase(p, t.find(']', p) + 1 - p);
    ConfigResult r = parse(t);
    ASSERT_TRUE(r.ok()) << r.error().text();
    const hvio::NetDeviceConfig &n = r.value().zones[0].net[0];
    EXPECT_FALSE(n.mac_given);
    EXPECT_EQ(n.mac, (std::array<uint8_t, 6>{0x02, 0x48, 0x56, 0x00, 0x01, 0x00}));
}

TEST_F(ConfigTest, NetTapName) {
    const std::string w = "zones[0].devices[0].tap";
    auto with_tap = [](const std::string &tap) { return one_net("", R"("tap":)" + tap + ","); };
    EXPECT_TRUE(parse(with_tap(R"("123456789012345")")).ok());
    expect_error(with_tap(R"("1234567890123456")"), w, "must be 1..15 bytes");
    expect_error(with_tap(R"("")"), w, "must be 1..15 bytes");
    expect_error(with_tap(R"("a/b")"), w, "must not contain '/'");
    expect_error(with_tap(R"("a b")"), w, "whitespace");
    expect_error(with_tap(R"("a\tb")"), w, "whitespace");
    expect_error(with_tap(R"("..")"), w, "not a valid interface name");
    expect_error(with_tap(R"(7)"), w, "must be a string");
    expect_error(one_net("", ""), w, "missing");
}

TEST_F(ConfigTest, NetTwoDevicesOneTap) {
    std::string t = one_net("");
    std::string second = R"(,{"type":"net","addr":"0xa003800","irq":76,"tap":"tap0"})";
    t.insert(t.rfind("]}]}"), second);
    expect_error(t, "zones[0].devices[1].tap", "also the TAP of zones[0].devices[0]");
    t.replace(t.rfind("tap0"), 4, "tap1");
    ConfigResult r = parse(t);
    ASSERT_TRUE(r.ok()) << r.error().text();
    EXPECT_EQ(r.value().zones[0].net.size(), 2u);
    // The default MAC differs per device.
    EXPECT_NE(r.value().zones[0].net[0].mac, r.value().zones[0].net[1].mac);
}

TEST_F(ConfigTest, NetWindowChecks) {
    const std::string w = "zones[0].devices[0]";
    std::string t = one_net("");
    t.replace(t.find("0xa003600"), 9, "0xa003601");
    expect_error(t, w + ".addr", "not 0x200 aligned");
    t = one_net("");
    t.replace(t.find(R"("irq":75)"), 8, R"("irq":0)");
    expect_error(t, w + ".irq", "must be 1..1019");
    t = one_net("");
    t.erase(t.find(R"("irq":75,)"), 9);
    expect_error(t, w + ".irq", "missing");
    t = one_net("");
    t.replace(t.find("0xa003600"), 9, "0x50001000");
    expect_error(t, w + ".addr", "overlaps zone RAM zones[0].memory_region[0]");
    expect_error(one_net(R"("tx":1)"), w + ".tx", "unknown key");
}

TEST_F(ConfigTest, NetAndBlkWindowsMustNotOverlap) {
    // A net window on top of the blk one, in either order.
    std::string t = one_blk("");
    std::string net = R"(,{"type":"net","addr":"0xa003c00","irq":75,"tap":"tap0"})";
    t.insert(t.rfind("]}]}"), net);
    expect_error(t, "zones[0].devices[1].addr", "overlaps zones[0].devices[0]");

    t = one_net("");
    std::string blk = R"(,{"type":"blk","addr":"0xa003400","len":"0x400","irq":78,)"
                      R"("img":"rootfs2.ext4"})";
    t.insert(t.rfind("]}]}"), blk);
    expect_error(t, "zones[0].devices[1].addr", "overlaps zones[0].devices[0]");

    // Adjacent is fine; a shared irq only warns.
    t = one_net("");
    blk = R"(,{"type":"blk","addr":"0xa003800","irq":75,"img":"rootfs2.ext4"})";
    t.insert(t.rfind("]}]}"), blk);
    ConfigResult r = parse(t);
    ASSERT_TRUE(r.ok()) << r.error().text();
    ASSERT_EQ(r.value().warnings.size(), 1u);
    EXPECT_NE(r.value().warnings[0].find("zones[0].devices[1].irq: 75 is also the irq of "
                                         "zones[0].devices[0]"),
              std::string::npos)
        << r.value().warnings[0];
}

TEST_F(ConfigTest, OurKeys) {
    ConfigResult r = parse(one_blk(R"("queues":4,"queue_size":"1024","readonly":true,)"
                                   R"("direct":true,"serial":"disk-0","discard":false)"));
    ASSERT_TRUE(r.ok()) << r.error().text();
    const hvio::BlkDeviceConfig &b = r.value().zones[0].blk[0];
    EXPECT_EQ(b.queues, 4u);
    EXPECT_EQ(b.queue_size, 1024u);
    EXPECT_TRUE(b.readonly);
    EXPECT_TRUE(b.direct);
    EXPECT_FALSE(b.discard);
    EXPECT_EQ(b.serial, "disk-0");
}

TEST_F(ConfigTest, NumbersAsIntegersAndStrings) {
    ConfigResult r = parse(R"({"zones":[{"id":"7","memory_region":[{"zone0_ipa":1342177280,)"
                           R"("zonex_ipa":"0X1000","size":"4096"}],"devices":[{"type":"blk",)"
                           R"("addr":167787520,"len":1024,"irq":"78","img":"data.img"}]}]})");
    ASSERT_TRUE(r.ok()) << r.error().text();
    const auto &z = r.value().zones[0];
    EXPECT_EQ(z.id, 7u);
    EXPECT_EQ(z.regions[0].zone0_ipa, 0x50000000u);
    EXPECT_EQ(z.regions[0].zonex_ipa, 0x1000u);
    EXPECT_EQ(z.regions[0].size, 4096u);
    EXPECT_EQ(z.blk[0].addr, 0xa003c00u);
    EXPECT_EQ(z.blk[0].len, 0x400u);
    EXPECT_EQ(z.blk[0].irq, 78u);

    // irq as a hex string, as some hvisor-tool configs write it (issue 12 §3).
    std::string t = one_blk("");
    t.replace(t.find(R"("irq":78)"), 8, R"("irq":"0x4e")");
    r = parse(t);
    ASSERT_TRUE(r.ok()) << r.error().text();
    EXPECT_EQ(r.value().zones[0].blk[0].irq, 78u);
}

TEST_F(ConfigTest, SingleZoneFormAndZoneId) {
    // hvisor-tool's older form: the file is the zone; "zone_id" for "id".
    ConfigResult r = parse(R"({"zone_id":3,"memory_region":[{"zone0_ipa":"0x50000000",)"
                           R"("zonex_ipa":"0x50000000","size":"0x1000"}],"devices":[)"
                           R"({"type":"blk","addr":"0xa000000","irq":33,"img":"data.img"}]})");
    ASSERT_TRUE(r.ok()) << r.error().text();
    EXPECT_EQ(r.value().zones[0].id, 3u);
    EXPECT_EQ(r.value().zones[0].blk[0].where, "devices[0]");
}

TEST_F(ConfigTest, MissingImage) {
    expect_error(one_blk("").replace(one_blk("").find("rootfs2.ext4"), 12, "nope.img"),
                 "zones[0].devices[0].img", "nope.img: No such file or directory");
}

TEST_F(ConfigTest, ImageNotAFile) {
    ::mkdir((dir_ + "/adir").c_str(), 0755);
    std::string t = one_blk("");
    t.replace(t.find("rootfs2.ext4"), 12, "adir");
    expect_error(t, "zones[0].devices[0].img", "not a regular file or block device");
}

TEST_F(ConfigTest, RelativeImageResolvedAgainstConfigDir) {
    ::mkdir((dir_ + "/images").c_str(), 0755);
    touch("images/disk.img", 512);
    std::string t = one_blk("");
    t.replace(t.find("rootfs2.ext4"), 12, "images/disk.img");
    ConfigResult r = parse(t);
    ASSERT_TRUE(r.ok()) << r.error().text();
    EXPECT_EQ(r.value().zones[0].blk[0].path, dir_ + "/images/disk.img");
    EXPECT_EQ(r.value().zones[0].blk[0].img, "images/disk.img");
    EXPECT_EQ(r.value().zones[0].blk[0].serial, "disk.img");

    // load_config() takes the directory from the file's path, whatever the
    // current directory.
    std::ofstream(dir_ + "/images/cfg.json") << t;
    ::mkdir((dir_ + "/images/images").c_str(), 0755);
    touch("images/images/disk.img", 512);
    ConfigResult l = hvio::load_config(dir_ + "/images/cfg.json");
    ASSERT_TRUE(l.ok()) << l.error().text();
    EXPECT_EQ(l.value().zones[0].blk[0].path, dir_ + "/images/images/disk.img");

    // An absolute path stays as it is.
    t = one_blk("");
    t.replace(t.find("rootfs2.ext4"), 12, dir_ + "/data.img");
    r = parse(t);
    ASSERT_TRUE(r.ok()) << r.error().text();
    EXPECT_EQ(r.value().zones[0].blk[0].path, dir_ + "/data.img");
}

TEST_F(ConfigTest, BadIrq) {
    std::string t = one_blk("");
    t.replace(t.find("78"), 2, "1020");
    expect_error(t, "zones[0].devices[0].irq", "must be 1..1019");
    t = one_blk("");
    t.replace(t.find("78"), 2, "0");
    expect_error(t, "zones[0].devices[0].irq", "must be 1..1019");
    t = one_blk("");
    t.replace(t.find("78"), 2, "-5");
    expect_error(t, "zones[0].devices[0].irq", "must not be negative");
    t = one_blk("");
    t.replace(t.find("78"), 2, "7.5");
    expect_error(t, "zones[0].devices[0].irq", "must be an integer");
}

TEST_F(ConfigTest, BadHex) {
    std::string t = one_blk("");
    t.replace(t.find("0xa003c00"), 9, "0xa00zc00");
    expect_error(t, "zones[0].devices[0].addr", "bad hex number \"0xa00zc00\"");
    t = one_blk("");
    t.replace(t.find("0x10000000"), 10, "0x");
    expect_error(t, "zones[0].memory_region[0].size", "bad number");
    t = one_blk("");
    t.replace(t.find("0x10000000"), 10, "0x10000000000000000");
    expect_error(t, "zones[0].memory_region[0].size", "does not fit in 64 bits");
}

TEST_F(ConfigTest, NumberStrings) {
    uint64_t v = 0;
    EXPECT_EQ(hvio::parse_number_string("0x1f", &v), "");
    EXPECT_EQ(v, 31u);
    EXPECT_EQ(hvio::parse_number_string("18446744073709551615", &v), "");
    EXPECT_EQ(v, UINT64_MAX);
    EXPECT_NE(hvio::parse_number_string("18446744073709551616", &v), "");
    EXPECT_NE(hvio::parse_number_string("010", &v).find("leading zero"), std::string::npos);
    EXPECT_NE(hvio::parse_number_string(" 1", &v), "");
    EXPECT_NE(hvio::parse_number_string("+1", &v), "");
    EXPECT_NE(hvio::parse_number_string("-1", &v), "");
    EXPECT_NE(hvio::parse_number_string("", &v), "");
    EXPECT_EQ(hvio::parse_number_string("0", &v), "");
    EXPECT_EQ(v, 0u);
}

TEST_F(ConfigTest, UnknownKey) {
    expect_error(one_blk(R"("queue_sz":64)"), "zones[0].devices[0].queue_sz", "unknown key");
    expect_error(one_blk("", R"("name":"linux",)"), "zones[0].name", "unknown key");
    expect_error(R"({"zones":[],"extra":1})", "extra", "unknown key");
    std::string t = one_blk("");
    t.replace(t.find("\"size\""), 6, "\"sizes\"");
    expect_error(t, "zones[0].memory_region[0].sizes", "unknown key");
}

TEST_F(ConfigTest, OverlappingWindows) {
    std::string t = R"({"zones":[{"id":1,"memory_region":[{"zone0_ipa":"0x50000000",)"
                    R"("zonex_ipa":"0x50000000","size":"0x1000"}],"devices":[)"
                    R"({"type":"blk","addr":"0xa003c00","len":"0x400","irq":78,"img":"data.img",)"
                    R"("readonly":true},{"type":"blk","addr":"0xa003e00","irq":79,)"
                    R"("img":"rootfs2.ext4"}]}]})";
    expect_error(t, "zones[0].devices[1].addr",
                 "window [0xa003e00, 0xa004000) overlaps zones[0].devices[0]");
}

TEST_F(ConfigTest, SameWindowInTwoZonesIsFine) {
    std::string t = R"({"zones":[{"id":1,"memory_region":[{"zone0_ipa":"0x50000000",)"
                    R"("zonex_ipa":"0x50000000","size":"0x1000"}],"devices":[)"
                    R"({"type":"blk","addr":"0xa003c00","irq":78,"img":"data.img"}]},)"
                    R"({"id":2,"memory_region":[{"zone0_ipa":"0x60000000",)"
                    R"("zonex_ipa":"0x50000000","size":"0x1000"}],"devices":[)"
                    R"({"type":"blk","addr":"0xa003c00","irq":78,"img":"rootfs2.ext4"}]}]})";
    ConfigResult r = parse(t);
    ASSERT_TRUE(r.ok()) << r.error().text();
    EXPECT_EQ(r.value().device_count(), 2u);
}

TEST_F(ConfigTest, WindowOverlappingRam) {
    std::string t = one_blk("");
    t.replace(t.find("0xa003c00"), 9, "0x50001000");
    expect_error(t, "zones[0].devices[0].addr", "overlaps zone RAM zones[0].memory_region[0]");
}

TEST_F(ConfigTest, DuplicateZone) {
    std::string z = R"({"id":1,"memory_region":[{"zone0_ipa":"0x50000000",)"
                    R"("zonex_ipa":"0x0","size":"0x1000"}]})";
    std::string z2 = R"({"id":"0x1","memory_region":[{"zone0_ipa":"0x60000000",)"
                     R"("zonex_ipa":"0x0","size":"0x1000"}]})";
    expect_error(R"({"zones":[)" + z + "," + z2 + "]}", "zones[1].id",
                 "duplicate zone id 1 (also zones[0])");
}

TEST_F(ConfigTest, ZoneIdRange) {
    expect_error(R"({"zones":[{"id":0,"memory_region":[{"zone0_ipa":"0x50000000",)"
                 R"("zonex_ipa":"0x0","size":"0x1000"}]}]})",
                 "zones[0].id", "must be 1..65535");
}

TEST_F(ConfigTest, RegionChecks) {
    auto zone = [](const std::string &regions) {
        return R"({"zones":[{"id":1,"memory_region":[)" + regions + "]}]}";
    };
    expect_error(zone(R"({"zone0_ipa":"0x50000800","zonex_ipa":"0x0","size":"0x1000"})"),
                 "zones[0].memory_region[0].zone0_ipa", "not 4 KiB aligned");
    expect_error(zone(R"({"zone0_ipa":"0x50000000","zonex_ipa":"0x0","size":"0"})"),
                 "zones[0].memory_region[0].size", "must not be 0");
    expect_error(zone(R"({"zone0_ipa":"0x50000000","zonex_ipa":"0x0"})"),
                 "zones[0].memory_region[0].size", "missing");
    expect_error(zone(R"({"zone0_ipa":"0x50000000","zonex_ipa":"0x0","size":"0x2000"},)"
                      R"({"zone0_ipa":"0x60000000","zonex_ipa":"0x1000","size":"0x1000"})"),
                 "zones[0].memory_region[1].zonex_ipa", "overlaps zones[0].memory_region[0]");
    expect_error(zone(R"({"zone0_ipa":"0x50000000","zonex_ipa":"0x0","size":"0x2000"},)"
                      R"({"zone0_ipa":"0x50001000","zonex_ipa":"0x10000","size":"0x1000"})"),
                 "zones[0].memory_region[1].zone0_ipa", "host range");
    expect_error(zone(""), "zones[0].memory_region", "must have 1..16 regions");
    // Host ranges of two zones must not overlap either.
    expect_error(R"({"zones":[{"id":1,"memory_region":[{"zone0_ipa":"0x50000000",)"
                 R"("zonex_ipa":"0x0","size":"0x2000"}]},{"id":2,"memory_region":[)"
                 R"({"zone0_ipa":"0x50001000","zonex_ipa":"0x0","size":"0x1000"}]}]})",
                 "zones[1].memory_region[0].zone0_ipa", "overlaps zones[0].memory_region[0]");
}

TEST_F(ConfigTest, QueueSizeNotPowerOfTwo) {
    expect_error(one_blk(R"("queue_size":100)"), "zones[0].devices[0].queue_size",
                 "100 is not a power of two");
    expect_error(one_blk(R"("queue_size":2048)"), "zones[0].devices[0].queue_size",
                 "must be 2..1024");
    expect_error(one_blk(R"("queue_size":1)"), "zones[0].devices[0].queue_size", "must be 2..1024");
}

TEST_F(ConfigTest, PollUs) {
    // 0 turns polling off; the kernel's limit is the config's.
    for (const char *v : {"0", "\"0x10\"", "10000"}) {
        ConfigResult b = parse(one_blk(std::string(R"("poll_us":)") + v));
        ASSERT_TRUE(b.ok()) << v << ": " << b.error().text();
        ConfigResult n = parse(one_net(std::string(R"("poll_us":)") + v));
        ASSERT_TRUE(n.ok()) << v << ": " << n.error().text();
        EXPECT_EQ(b.value().zones[0].blk[0].poll_us, n.value().zones[0].net[0].poll_us);
    }
    EXPECT_EQ(parse(one_blk(R"("poll_us":"0x10")")).value().zones[0].blk[0].poll_us, 16u);
    expect_error(one_blk(R"("poll_us":10001)"), "zones[0].devices[0].poll_us", "must be 0..10000");
    expect_error(one_net(R"("poll_us":-5)"), "zones[0].devices[0].poll_us", "must not be negative");
}

TEST_F(ConfigTest, QueuesRange) {
    expect_error(one_blk(R"("queues":0)"), "zones[0].devices[0].queues", "must be 1..16");
    expect_error(one_blk(R"("queues":17)"), "zones[0].devices[0].queues", "must be 1..16");
}

TEST_F(ConfigTest, BadBooleansAndSerial) {
    expect_error(one_blk(R"("readonly":"yes")"), "zones[0].devices[0].readonly",
                 "must be true or false");
    expect_error(one_blk(R"("direct":1)"), "zones[0].devices[0].direct", "must be true or false");
    expect_error(one_blk(R"("serial":"123456789012345678901")"), "zones[0].devices[0].serial",
                 "at most 20");
    expect_error(one_blk(R"("serial":"a\nb")"), "zones[0].devices[0].serial", "printable");
}

TEST_F(ConfigTest, SerialDefaultTruncated) {
    touch("a-very-long-image-file-name.img", 512);
    std::string t = one_blk("");
    t.replace(t.find("rootfs2.ext4"), 12, "a-very-long-image-file-name.img");
    ConfigResult r = parse(t);
    ASSERT_TRUE(r.ok()) << r.error().text();
    EXPECT_EQ(r.value().zones[0].blk[0].serial, "a-very-long-image-fi");
}

TEST_F(ConfigTest, WindowChecks) {
    expect_error(one_blk(R"("len":"0x100")"), "zones[0].devices[0].len", "multiple of 0x200");
    expect_error(one_blk(R"("len":"0x20000")"), "zones[0].devices[0].len", "multiple of 0x200");
    std::string t = one_blk("");
    t.replace(t.find("0xa003c00"), 9, "0xa003c10");
    expect_error(t, "zones[0].devices[0].addr", "not 0x200 aligned");
    t = one_blk("");
    t.replace(t.find("0xa003c00"), 9, "0x10000000000000");
    expect_error(t, "zones[0].devices[0].addr", "beyond 2^52");
}

TEST_F(ConfigTest, MissingKeys) {
    std::string t = one_blk("");
    t.replace(t.find(R"("irq":78,)"), 9, "");
    expect_error(t, "zones[0].devices[0].irq", "missing");
    expect_error(R"({"zones":[{"memory_region":[]}]})", "zones[0].id", "missing");
    t = one_blk("");
    t.replace(t.find(R"("type":"blk",)"), 13, "");
    expect_error(t, "zones[0].devices[0].type", "missing");
}

TEST_F(ConfigTest, UnknownTypeAndStatus) {
    std::string t = one_blk("");
    t.replace(t.find("\"blk\""), 5, "\"gpio\"");
    expect_error(t, "zones[0].devices[0].type", "unknown device type \"gpio\"");
    expect_error(one_blk(R"("status":"on")"), "zones[0].devices[0].status",
                 "must be \"enable\" or \"disable\"");
}

TEST_F(ConfigTest, SharedImageOnlyReadonly) {
    std::string t = R"({"zones":[{"id":1,"memory_region":[{"zone0_ipa":"0x50000000",)"
                    R"("zonex_ipa":"0x50000000","size":"0x1000"}],"devices":[)"
                    R"({"type":"blk","addr":"0xa003c00","irq":78,"img":"data.img"},)"
                    R"({"type":"blk","addr":"0xa003e00","irq":79,"img":"./data.img"}]}]})";
    expect_error(t, "zones[0].devices[1].img", "also the image of zones[0].devices[0]");
    std::string ro = t;
    ro.replace(ro.find(R"("img":"data.img")"), 16, R"("img":"data.img","readonly":true)");
    ro.replace(ro.find(R"("img":"./data.img")"), 18, R"("img":"./data.img","readonly":true)");
    ConfigResult r = parse(ro);
    EXPECT_TRUE(r.ok()) << r.error().text();
}

TEST_F(ConfigTest, NotJson) {
    expect_error("{\"zones\": [", "", "not valid JSON");
    expect_error("[1,2]", "", "must be a JSON object");
    expect_error(R"({"zones":{}})", "zones", "must be an array");
    expect_error(R"({"zones":[]})", "zones", "is empty");
    // Found by the fuzzer: nlohmann throws out_of_range, not parse_error.
    expect_error(R"({"zones":[1E3333]})", "", "not valid JSON: number overflow");
}

TEST_F(ConfigTest, CommentsAllowed) {
    std::string t = "// hvio\n" + one_blk("");
    EXPECT_TRUE(parse(t).ok());
}

TEST_F(ConfigTest, LoadConfigMissingFile) {
    ConfigResult r = hvio::load_config(dir_ + "/nope.json");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().where, "");
    EXPECT_NE(r.error().what.find("cannot read"), std::string::npos);
}

TEST_F(ConfigTest, ErrorTextFormat) {
    std::string t = one_blk("");
    t.replace(t.find("78"), 2, "1020");
    ConfigResult r = parse(t);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().text(), "zones[0].devices[0].irq: must be 1..1019");
}

} // namespace
