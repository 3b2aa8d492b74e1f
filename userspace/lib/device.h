// SPDX-License-Identifier: GPL-2.0
//
// DeviceFd: one hvio device file descriptor (HVIO_DEV_CREATE's result).
// Each method is one ioctl or mmap of uapi/linux/hvio.h; errors come back
// as the kernel's errno.  Closing the fd (and unmapping everything mapped
// through it) destroys the device, unless it is recoverable
// (HVIO_DEV_F_RECOVERABLE) and destroy_on_close() was not called: then the
// kernel keeps it for a restarted daemon (Control::dev_attach).
#pragma once

#include "mapping.h"
#include "result.h"
#include "unique_fd.h"

#include <cstdint>
#include <linux/hvio.h>

namespace hvio {

class DeviceFd {
  public:
    DeviceFd() = default;
    explicit DeviceFd(UniqueFd fd) : fd_(std::move(fd)) {}

    int fd() const { return fd_.get(); }
    void close() { fd_.reset(); }

    Result<hvio_dev_info> info() const;
    // HVIO_DEV_DESTROY: closing this fd destroys a recoverable device
    // instead of leaving it for a restarted daemon.
    Result<void> destroy_on_close() const;
    Result<hvio_dev_stats> stats() const;
    Result<hvio_queue_stats> queue_stats(uint16_t queue) const;
    Result<hvio_queue_latency> queue_latency(uint16_t queue) const;
    Result<void> set_queue_eventfd(uint16_t queue, int efd) const;
    // HVIO_DEV_GET_EVENTS: read and clear the pending events.
    Result<hvio_dev_events> events() const;
    // HVIO_DEV_SET_CONFIG: replace len bytes of config space at offset.
    Result<void> set_config(uint32_t offset, const void *data, uint32_t len, uint32_t flags) const;
    // HVIO_DEV_SET_POLL: poll avail rings for up to poll_us after a commit.
    Result<void> set_poll(uint32_t poll_us) const;
    // HVIO_DEV_QUEUE_RUN, retried on EINTR.
    Result<void> queue_run(hvio_queue_run &run) const;
    // HVIO_DEV_QUEUE_UNPARK: complete the queue's parked io_uring FETCH.
    Result<void> queue_unpark(uint16_t queue) const;

    // Zone RAM [gpa, gpa + size), read-write, shared.
    Result<Mapping> map_ram(uint64_t gpa, uint64_t size) const;
    // Queue q's op slots (read-only), queue_size_max of them.
    Result<Mapping> map_ops(uint16_t queue, uint32_t queue_size_max) const;

  private:
    UniqueFd fd_;
};

} // namespace hvio
