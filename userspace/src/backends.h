// SPDX-License-Identifier: GPL-2.0
//
// The adapters from the queue libraries to a device fd: DeviceQueueBackend
// gives a blk queue loop (lib/queue.h) one queue of a device, and
// DeviceNetBackend gives the net loop (lib/net_queue.h) a device and its TAP.
#pragma once

#include "device.h"
#include "mapping.h"
#include "net_queue.h"
#include "queue.h"

#include <cstdint>
#include <string>
#include <utility>

namespace hvio {

// The kernel side of one queue of a device fd.
class DeviceQueueBackend final : public QueueBackend {
  public:
    DeviceQueueBackend(const DeviceFd &dev, const Mapping &ops, uint16_t queue)
        : dev_(dev), ops_(ops), queue_(queue) {}
    int run(hvio_queue_run &r) override;
    const hvio_op &op(uint16_t tag) const override;
    int uring_fd() const override;
    int unpark() override;

  private:
    const DeviceFd &dev_;
    const Mapping &ops_;
    const uint16_t queue_;
};

// The kernel and TAP side of one net device.
class DeviceNetBackend final : public NetBackend {
  public:
    DeviceNetBackend(const DeviceFd &dev, const Mapping *ops, int tap, std::string tap_name)
        : dev_(dev), ops_(ops), tap_(tap), tap_name_(std::move(tap_name)) {}
    int run(hvio_queue_run &r) override;
    const hvio_op &op(uint16_t queue, uint16_t tag) const override;
    int get_events(hvio_dev_events &ev) override;
    int driver_features(uint64_t *f) override;
    int set_config(uint32_t off, const void *data, uint32_t len, uint32_t flags) override;
    int set_offload(unsigned flags) override;
    int link_flags(unsigned *f) override;
    int uring_fd() const override;
    int unpark(uint16_t queue) override;

  private:
    const DeviceFd &dev_;
    const Mapping *ops_; // [2]: RX, TX
    int tap_;
    std::string tap_name_;
};

} // namespace hvio
