// SPDX-License-Identifier: GPL-2.0
//
// GuestMemory: a zone's RAM as the daemon sees it, guest physical address
// -> daemon virtual address, for the regions mapped through a device fd.
//
// Op segments come from the kernel, which already checked them against the
// zone's registered RAM; the daemon checks them again against what it
// actually mapped, so a kernel bug or a mismatch between the config and the
// mappings fails one request with -EFAULT instead of touching memory that is
// not the guest's.
#pragma once

#include <cstdint>
#include <linux/hvio.h>
#include <span>
#include <sys/uio.h>
#include <vector>

namespace hvio {

class GuestMemory {
  public:
    struct Region {
        uint64_t gpa;
        uint64_t size;
        uint8_t *va;
        bool pinnable; // O_DIRECT can pin it (the kernel maps it with pages)
    };

    // Adds a mapped region; regions must not overlap (false if they do, or
    // if gpa + size wraps).  pinnable: see Region.
    bool add(uint64_t gpa, uint64_t size, void *va, bool pinnable = true);

    // The address of [gpa, gpa + len) if it lies inside one region, else
    // nullptr.
    uint8_t *at(uint64_t gpa, uint64_t len) const;

    // Appends iovecs for segs to out: pieces that follow each other in the
    // daemon's mapping share one iovec (a segment crossing from one region
    // into another is split unless their mappings are adjacent too; empty
    // segments add nothing).
    // Returns the number of iovecs, -EFAULT if a byte lies outside every
    // region, -E2BIG if out is too small.  *pinnable (if given) tells
    // whether every iovec lies in a pinnable region.
    int translate(std::span<const hvio_op_seg> segs, std::span<iovec> out,
                  bool *pinnable = nullptr) const;

    const std::vector<Region> &regions() const { return regions_; }

  private:
    const Region *find(uint64_t gpa) const;

    std::vector<Region> regions_; // sorted by gpa
};

} // namespace hvio
