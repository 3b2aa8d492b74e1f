// SPDX-License-Identifier: GPL-2.0
//
// Control: the /dev/hvio ioctls, and Error::message().
#include "control.h"

#include <cstring>
#include <fcntl.h>
#include <sys/ioctl.h>

namespace hvio {

std::string Error::message() const { return std::strerror(err); }

Result<Control> Control::open(const char *path) {
    int fd = ::open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return last_error();
    return Control(UniqueFd(fd));
}

// Zero-initialise the struct (reserved fields must be zero) and run one
// _IOR ioctl into it.
template <typename T> static Result<T> ioctl_read(int fd, unsigned long cmd) {
    T out{};
    if (::ioctl(fd, cmd, &out) < 0)
        return last_error();
    return out;
}

Result<hvio_version> Control::version() const {
    return ioctl_read<hvio_version>(fd_.get(), HVIO_GET_VERSION);
}

Result<hvio_stats> Control::stats() const {
    return ioctl_read<hvio_stats>(fd_.get(), HVIO_GET_STATS);
}

Result<bool> Control::zone_add(const hvio_zone_add &z) const {
    int ret = ::ioctl(fd_.get(), HVIO_ZONE_ADD, &z);
    if (ret < 0)
        return last_error();
    return ret == 1;
}

Result<void> Control::zone_del(uint32_t zone_id) const {
    hvio_zone_del d{};
    d.zone_id = zone_id;
    if (::ioctl(fd_.get(), HVIO_ZONE_DEL, &d) < 0)
        return last_error();
    return {};
}

Result<UniqueFd> Control::dev_create(const hvio_dev_create &d) const {
    int fd = ::ioctl(fd_.get(), HVIO_DEV_CREATE, &d);
    if (fd < 0)
        return last_error();
    return UniqueFd(fd);
}

Result<UniqueFd> Control::dev_attach(uint32_t zone_id, uint64_t mmio_base) const {
    hvio_dev_attach a{};
    a.zone_id = zone_id;
    a.mmio_base = mmio_base;
    int fd = ::ioctl(fd_.get(), HVIO_DEV_ATTACH, &a);
    if (fd < 0)
        return last_error();
    return UniqueFd(fd);
}

const char *provider_name(unsigned provider) {
    switch (provider) {
    case HVIO_PROVIDER_HVISOR:
        return "hvisor";
    case HVIO_PROVIDER_SIM:
        return "sim";
    default:
        return "unknown";
    }
}

} // namespace hvio
