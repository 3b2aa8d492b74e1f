// SPDX-License-Identifier: GPL-2.0
//
// Control: the /dev/hvio control device (zones, devices, global queries).
// Each method is one ioctl of uapi/linux/hvio.h; errors come back as the
// kernel's errno, untouched.
#pragma once

#include "result.h"
#include "unique_fd.h"

#include <linux/hvio.h>

namespace hvio {

inline constexpr const char *kControlPath = "/dev/hvio";

class Control {
  public:
    // Opens path (default /dev/hvio) read-write, close-on-exec.
    static Result<Control> open(const char *path = kControlPath);

    Result<hvio_version> version() const;
    Result<hvio_stats> stats() const;

    int fd() const { return fd_.get(); }

  private:
    explicit Control(UniqueFd fd) : fd_(std::move(fd)) {}
    UniqueFd fd_;
};

// Name of an HVIO_PROVIDER_* value ("hvisor", "sim", or "unknown").
const char *provider_name(unsigned provider);

} // namespace hvio
