// SPDX-License-Identifier: GPL-2.0
//
// Control: the /dev/hvio control device (zones, devices, global queries).
// Each method is one ioctl of uapi/linux/hvio.h; errors come back as the
// kernel's errno, untouched.
#pragma once

#include "result.h"
#include "unique_fd.h"

#include <cstdint>
#include <linux/hvio.h>

namespace hvio {

inline constexpr const char *kControlPath = "/dev/hvio";

class Control {
  public:
    // Opens path (default /dev/hvio) read-write, close-on-exec.
    static Result<Control> open(const char *path = kControlPath);

    Result<hvio_version> version() const;
    Result<hvio_stats> stats() const;
    // HVIO_ZONE_ADD: true when z.flags has HVIO_ZONE_F_REUSE and the zone
    // already existed with these regions (left by a daemon that died).
    Result<bool> zone_add(const hvio_zone_add &z) const;
    Result<void> zone_del(uint32_t zone_id) const;
    // HVIO_DEV_CREATE: the new device's fd.
    Result<UniqueFd> dev_create(const hvio_dev_create &d) const;
    // HVIO_DEV_ATTACH: an orphaned device's new fd; mmio_base
    // HVIO_ATTACH_ANY takes any orphan of the zone, zone 0 any at all.
    Result<UniqueFd> dev_attach(uint32_t zone_id, uint64_t mmio_base) const;

    int fd() const { return fd_.get(); }

  private:
    explicit Control(UniqueFd fd) : fd_(std::move(fd)) {}
    UniqueFd fd_;
};

// Name of an HVIO_PROVIDER_* value ("hvisor", "sim", or "unknown").
const char *provider_name(unsigned provider);

} // namespace hvio
