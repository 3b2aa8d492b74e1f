// SPDX-License-Identifier: GPL-2.0
//
// DeviceQueueBackend and DeviceNetBackend (backends.h): each call of a
// queue loop becomes an ioctl of the device fd, a read of its op slots, or
// for net a call on the TAP.
#include "backends.h"

#include "net.h"

namespace hvio {

int DeviceQueueBackend::run(hvio_queue_run &r) {
    auto ret = dev_.queue_run(r);
    return ret ? 0 : -ret.error();
}

const hvio_op &DeviceQueueBackend::op(uint16_t tag) const {
    return static_cast<const hvio_op *>(ops_.get())[tag];
}

int DeviceQueueBackend::uring_fd() const { return dev_.fd(); }

int DeviceQueueBackend::unpark() {
    auto ret = dev_.queue_unpark(queue_);
    return ret ? 0 : -ret.error();
}

int DeviceNetBackend::run(hvio_queue_run &r) {
    auto ret = dev_.queue_run(r);
    return ret ? 0 : -ret.error();
}

const hvio_op &DeviceNetBackend::op(uint16_t queue, uint16_t tag) const {
    return static_cast<const hvio_op *>(ops_[queue].get())[tag];
}

int DeviceNetBackend::get_events(hvio_dev_events &ev) {
    auto r = dev_.events();
    if (!r)
        return -r.error();
    ev = *r;
    return 0;
}

int DeviceNetBackend::driver_features(uint64_t *f) {
    auto r = dev_.info();
    if (!r)
        return -r.error();
    *f = r->driver_features;
    return 0;
}

int DeviceNetBackend::set_config(uint32_t off, const void *data, uint32_t len, uint32_t flags) {
    auto r = dev_.set_config(off, data, len, flags);
    return r ? 0 : -r.error();
}

int DeviceNetBackend::set_offload(unsigned flags) { return tap_set_offload(tap_, flags); }

int DeviceNetBackend::link_flags(unsigned *f) {
    auto r = hvio::link_flags(tap_name_);
    if (!r)
        return -r.error();
    *f = *r;
    return 0;
}

int DeviceNetBackend::uring_fd() const { return dev_.fd(); }

int DeviceNetBackend::unpark(uint16_t queue) {
    auto ret = dev_.queue_unpark(queue);
    return ret ? 0 : -ret.error();
}

} // namespace hvio
