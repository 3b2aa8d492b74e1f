// SPDX-License-Identifier: GPL-2.0
//
// Tally: a counter that one thread writes and any thread reads.
//
// A queue thread counts every request (ops, reads, bytes, packets) and
// `hvio status` reads the counts from another thread.  With one writer the
// count needs no atomic read-modify-write: a relaxed load and store keep it
// exact and still give readers whole values.  That saves a locked add per
// count on x86_64 and an outline-atomics call on arm64, several of them
// per request.  Only the owning thread may call add(), sub() and store().
#pragma once

#include <atomic>
#include <cstdint>

namespace hvio {

class Tally {
  public:
    void add(uint64_t n = 1) noexcept { v_.store(load() + n, std::memory_order_relaxed); }
    void sub(uint64_t n = 1) noexcept { v_.store(load() - n, std::memory_order_relaxed); }
    void store(uint64_t v) noexcept { v_.store(v, std::memory_order_relaxed); }
    uint64_t load() const noexcept { return v_.load(std::memory_order_relaxed); }

  private:
    std::atomic<uint64_t> v_{0};
};

} // namespace hvio
