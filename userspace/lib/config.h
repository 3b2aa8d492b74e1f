// SPDX-License-Identifier: GPL-2.0
//
// Config: hvisor-tool's virtio_cfg.json, read as is, plus hvio's own keys
// for block, net and console devices.  Parsing checks everything that can be checked before
// /dev/hvio is touched (values, ranges, overlaps, image files), so a bad
// file fails with one line naming the key path and nothing is created.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace hvio {

// Alignment the config demands of RAM regions (the kernel checks its own
// PAGE_SIZE on top).
inline constexpr uint64_t kConfigPageSize = 4096;

// "poll_us" when the file does not say (HVIO_DEV_SET_POLL; 0 turns it off).
// Measured (Documentation/performance.md, "The poll window"): the window
// must cover the guest's answer to its completion interrupt to save the
// kick; a longer one only costs CPU for a guest paced slower than it.
inline constexpr unsigned kDefaultPollUs = 200;

// A console's "stall_ms" when the file does not say: how long its output
// waits for a PTY (or socket) that takes nothing before it is discarded
// (console_queue.h); 0 waits for ever.  At most kMaxConsoleStallMs.
inline constexpr unsigned kDefaultConsoleStallMs = 1000;
inline constexpr unsigned kMaxConsoleStallMs = 600000;

struct MemRegionConfig {
    uint64_t zone0_ipa = 0; // host physical
    uint64_t zonex_ipa = 0; // guest physical
    uint64_t size = 0;
};

struct BlkDeviceConfig {
    std::string where; // key path, "zones[0].devices[1]"
    uint64_t addr = 0; // MMIO window (zone IPA)
    uint64_t len = 0x200;
    uint32_t irq = 0;
    std::string img;           // as written in the file
    std::string path;          // img resolved against the config file's directory
    bool block_device = false; // path names a block device
    unsigned queues = 1;
    unsigned queue_size = 256;
    bool readonly = false;
    bool direct = false;
    bool discard = true;
    std::string serial;                // <= 20 bytes; derived from the file name if absent
    unsigned poll_us = kDefaultPollUs; // avail ring polling after a commit
};

struct NetDeviceConfig {
    std::string where; // key path, "zones[0].devices[1]"
    uint64_t addr = 0; // MMIO window (zone IPA)
    uint64_t len = 0x200;
    uint32_t irq = 0;
    std::string tap;                 // interface name, <= 15 bytes
    std::array<uint8_t, 6> mac = {}; // unicast
    bool mac_given = false;          // false: derived from zone id and index
    unsigned mtu = 1500;             // 68..65535
    bool offloads = true;            // CSUM, GUEST_CSUM, TSO4/6, ECN, UFO both ways
    bool mrg_rxbuf = true;
    unsigned queue_size = 256;
    unsigned poll_us = kDefaultPollUs; // TX ring polling after a commit
};

// A virtio-console (port 0 only).  The backend is a PTY unless "socket" is
// given; "pty" only adds a stable symlink to the PTY's slave.
struct ConsoleDeviceConfig {
    std::string where; // key path, "zones[0].devices[2]"
    uint64_t addr = 0; // MMIO window (zone IPA)
    uint64_t len = 0x200;
    uint32_t irq = 0;
    std::string pty;    // absolute symlink path to the PTY slave, empty: none
    std::string socket; // absolute UNIX stream socket path, empty: PTY backend
    unsigned queue_size = 256;
    unsigned stall_ms = kDefaultConsoleStallMs; // output discarded after; 0: never
};

struct ZoneConfig {
    std::string where; // "zones[0]"
    uint32_t id = 0;
    std::vector<MemRegionConfig> regions;
    std::vector<BlkDeviceConfig> blk;         // enabled block devices, in file order
    std::vector<NetDeviceConfig> net;         // enabled net devices, in file order
    std::vector<ConsoleDeviceConfig> console; // enabled consoles, in file order
};

struct Config {
    std::vector<ZoneConfig> zones;
    // Things skipped or worth knowing ("zones[0].devices[2]: gpu devices
    // are not yet supported, skipped"); printed by the caller.
    std::vector<std::string> warnings;

    size_t device_count() const;
};

// A refused configuration: where is the key path ("zones[0].devices[1].irq",
// empty for the file as a whole), what says what is wrong with it.
struct ConfigError {
    std::string where;
    std::string what;

    // "where: what", or "what" alone.
    std::string text() const;
};

class [[nodiscard]] ConfigResult {
  public:
    ConfigResult(Config c) : v_(std::move(c)) {}
    ConfigResult(ConfigError e) : v_(std::move(e)) {}

    bool ok() const { return std::holds_alternative<Config>(v_); }
    explicit operator bool() const { return ok(); }
    Config &value() { return std::get<Config>(v_); }
    const Config &value() const { return std::get<Config>(v_); }
    Config *operator->() { return &value(); }
    const ConfigError &error() const { return std::get<ConfigError>(v_); }

  private:
    std::variant<Config, ConfigError> v_;
};

// Parses a configuration text.  Relative image paths are resolved against
// base_dir (the config file's directory); images must exist.  TAP
// interfaces need not exist (the daemon creates them).
ConfigResult parse_config(std::string_view text, const std::string &base_dir);

// Reads and parses a configuration file.
ConfigResult load_config(const std::string &file);

// Parses a number the way hvisor-tool's files write them: a non-negative
// JSON integer, or a string "0x1f" (hex) or "31" (decimal).  Returns an
// error message, or an empty string on success.
std::string parse_number_string(std::string_view s, uint64_t *out);

} // namespace hvio
