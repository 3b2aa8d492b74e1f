// SPDX-License-Identifier: GPL-2.0
//
// DeviceFd: the device fd's ioctls and mappings.
#include "device.h"

#include <cerrno>
#include <sys/ioctl.h>
#include <unistd.h>

namespace hvio {

namespace {

template <typename T> Result<T> ioctl_out(int fd, unsigned long cmd, T in = {}) {
    if (::ioctl(fd, cmd, &in) < 0)
        return last_error();
    return in;
}

} // namespace

Result<hvio_dev_info> DeviceFd::info() const {
    return ioctl_out<hvio_dev_info>(fd_.get(), HVIO_DEV_GET_INFO);
}

Result<void> DeviceFd::destroy_on_close() const {
    if (::ioctl(fd_.get(), HVIO_DEV_DESTROY) < 0)
        return last_error();
    return {};
}

Result<hvio_dev_stats> DeviceFd::stats() const {
    return ioctl_out<hvio_dev_stats>(fd_.get(), HVIO_DEV_GET_STATS);
}

Result<hvio_queue_stats> DeviceFd::queue_stats(uint16_t queue) const {
    hvio_queue_stats in{};
    in.queue = queue;
    return ioctl_out(fd_.get(), HVIO_DEV_GET_QUEUE_STATS, in);
}

Result<hvio_queue_latency> DeviceFd::queue_latency(uint16_t queue) const {
    hvio_queue_latency in{};
    in.queue = queue;
    return ioctl_out(fd_.get(), HVIO_DEV_GET_QUEUE_LATENCY, in);
}

Result<void> DeviceFd::set_queue_eventfd(uint16_t queue, int efd) const {
    hvio_queue_eventfd qe{};
    qe.queue = queue;
    qe.fd = efd;
    if (::ioctl(fd_.get(), HVIO_DEV_SET_QUEUE_EVENTFD, &qe) < 0)
        return last_error();
    return {};
}

Result<void> DeviceFd::set_poll(uint32_t poll_us) const {
    hvio_dev_poll p{};
    p.poll_us = poll_us;
    if (::ioctl(fd_.get(), HVIO_DEV_SET_POLL, &p) < 0)
        return last_error();
    return {};
}

Result<hvio_dev_events> DeviceFd::events() const {
    return ioctl_out<hvio_dev_events>(fd_.get(), HVIO_DEV_GET_EVENTS);
}

Result<void> DeviceFd::set_config(uint32_t offset, const void *data, uint32_t len,
                                  uint32_t flags) const {
    hvio_dev_config c{};
    c.offset = offset;
    c.len = len;
    c.addr = reinterpret_cast<uintptr_t>(data);
    c.flags = flags;
    if (::ioctl(fd_.get(), HVIO_DEV_SET_CONFIG, &c) < 0)
        return last_error();
    return {};
}

Result<void> DeviceFd::queue_run(hvio_queue_run &run) const {
    while (::ioctl(fd_.get(), HVIO_DEV_QUEUE_RUN, &run) < 0)
        if (errno != EINTR)
            return last_error();
    return {};
}

Result<void> DeviceFd::queue_unpark(uint16_t queue) const {
    hvio_queue_unpark u{};
    u.queue = queue;
    if (::ioctl(fd_.get(), HVIO_DEV_QUEUE_UNPARK, &u) < 0)
        return last_error();
    return {};
}

Result<Mapping> DeviceFd::map_ram(uint64_t gpa, uint64_t size) const {
    return Mapping::map(fd_.get(), size, PROT_READ | PROT_WRITE, MAP_SHARED,
                        static_cast<off_t>(gpa));
}

Result<Mapping> DeviceFd::map_ops(uint16_t queue, uint32_t queue_size_max) const {
    size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    size_t len = (queue_size_max * sizeof(hvio_op) + page - 1) / page * page;
    return Mapping::map(
        fd_.get(), len, PROT_READ, MAP_SHARED,
        static_cast<off_t>(HVIO_DEV_MMAP_RING_BASE + queue * HVIO_DEV_MMAP_RING_STRIDE));
}

} // namespace hvio
