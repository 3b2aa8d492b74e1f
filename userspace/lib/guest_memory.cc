// SPDX-License-Identifier: GPL-2.0
//
// GuestMemory: bounds-checked gpa -> virtual address translation.
#include "guest_memory.h"

#include <algorithm>
#include <cerrno>

namespace hvio {

bool GuestMemory::add(uint64_t gpa, uint64_t size, void *va, bool pinnable) {
    if (!size || gpa + size < gpa)
        return false;
    for (const Region &r : regions_)
        if (gpa < r.gpa + r.size && r.gpa < gpa + size)
            return false;
    Region n{gpa, size, static_cast<uint8_t *>(va), pinnable};
    regions_.insert(
        std::upper_bound(regions_.begin(), regions_.end(), n,
                         [](const Region &a, const Region &b) { return a.gpa < b.gpa; }),
        n);
    return true;
}

// The region holding gpa, or nullptr.  At most 16 regions: a linear scan
// over a sorted vector is as fast as anything cleverer.
const GuestMemory::Region *GuestMemory::find(uint64_t gpa) const {
    for (const Region &r : regions_) {
        if (gpa < r.gpa)
            return nullptr;
        if (gpa - r.gpa < r.size)
            return &r;
    }
    return nullptr;
}

uint8_t *GuestMemory::at(uint64_t gpa, uint64_t len) const {
    const Region *r = find(gpa);
    if (!r || len > r->size - (gpa - r->gpa))
        return nullptr;
    return r->va + (gpa - r->gpa);
}

int GuestMemory::translate(std::span<const hvio_op_seg> segs, std::span<iovec> out,
                           bool *pinnable) const {
    size_t n = 0;
    bool pin = true;
    for (const hvio_op_seg &s : segs) {
        uint64_t gpa = s.gpa;
        uint64_t left = s.len;
        if (gpa + left < gpa)
            return -EFAULT;
        while (left) {
            const Region *r = find(gpa);
            if (!r)
                return -EFAULT;
            uint64_t off = gpa - r->gpa;
            uint64_t chunk = std::min(left, r->size - off);
            pin = pin && r->pinnable;
            uint8_t *va = r->va + off;
            if (n && static_cast<uint8_t *>(out[n - 1].iov_base) + out[n - 1].iov_len == va) {
                // Contiguous with the previous piece (a guest's receive
                // buffers carved from one page, say): one iovec.
                out[n - 1].iov_len += static_cast<size_t>(chunk);
            } else {
                if (n == out.size())
                    return -E2BIG;
                out[n++] = iovec{va, static_cast<size_t>(chunk)};
            }
            gpa += chunk;
            left -= chunk;
        }
    }
    if (pinnable)
        *pinnable = pin;
    return static_cast<int>(n);
}

} // namespace hvio
