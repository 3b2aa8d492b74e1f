// SPDX-License-Identifier: GPL-2.0
//
// A queue's request latency histogram (HVIO_DEV_GET_QUEUE_LATENCY: from
// the kernel taking a chain off the avail ring to its completion in the
// used ring) as `hvio status` reports it.  The kernel counts in log2
// buckets of microseconds, so a percentile is known only up to its
// bucket: it is reported as the bucket's upper bound ("at most").
#pragma once

#include <cstdint>
#include <linux/hvio.h>
#include <nlohmann/json.hpp>

namespace hvio {

// The upper bound in microseconds of bucket @i (the last bucket has none:
// UINT64_MAX).
uint64_t latency_bucket_limit_us(unsigned i);

// The smallest bucket bound below which at least @permille of the counted
// requests fall; 0 when nothing was counted.
uint64_t latency_percentile_us(const hvio_queue_latency &l, unsigned permille);

// {"count", "mean_us", "max_us", "p50_us", "p99_us", "p999_us",
//  "buckets_us": {"<1": n, "<2": n, ..., ">=4194304": n}} (empty buckets left out).
nlohmann::json latency_json(const hvio_queue_latency &l);

} // namespace hvio
