// SPDX-License-Identifier: GPL-2.0
//
// Mapping: owns one mmap()ed range and unmaps it on destruction.
#pragma once

#include "result.h"

#include <cstddef>
#include <sys/mman.h>
#include <utility>

namespace hvio {

class Mapping {
  public:
    Mapping() = default;
    Mapping(void *addr, size_t len) : addr_(addr), len_(len) {}
    ~Mapping() { reset(); }

    Mapping(const Mapping &) = delete;
    Mapping &operator=(const Mapping &) = delete;
    Mapping(Mapping &&o) noexcept
        : addr_(std::exchange(o.addr_, nullptr)), len_(std::exchange(o.len_, 0)) {}
    Mapping &operator=(Mapping &&o) noexcept {
        if (this != &o) {
            reset();
            addr_ = std::exchange(o.addr_, nullptr);
            len_ = std::exchange(o.len_, 0);
        }
        return *this;
    }

    // mmap(2) of fd; the error is the kernel's errno.
    static Result<Mapping> map(int fd, size_t len, int prot, int flags, off_t offset) {
        void *p = ::mmap(nullptr, len, prot, flags, fd, offset);
        if (p == MAP_FAILED)
            return last_error();
        return Mapping(p, len);
    }

    void *get() const { return addr_; }
    size_t size() const { return len_; }
    explicit operator bool() const { return addr_ != nullptr; }

    void reset() {
        if (addr_)
            ::munmap(addr_, len_);
        addr_ = nullptr;
        len_ = 0;
    }

  private:
    void *addr_ = nullptr;
    size_t len_ = 0;
};

} // namespace hvio
