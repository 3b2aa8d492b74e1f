// SPDX-License-Identifier: GPL-2.0
#include "latency.h"

#include <string>

namespace hvio {

uint64_t latency_bucket_limit_us(unsigned i) {
    if (i + 1 >= HVIO_LAT_BUCKETS)
        return UINT64_MAX;
    return uint64_t{1} << i;
}

uint64_t latency_percentile_us(const hvio_queue_latency &l, unsigned permille) {
    uint64_t total = 0, seen = 0;
    for (uint64_t n : l.buckets)
        total += n;
    if (!total)
        return 0;
    // The first bucket by which permille/1000 of the requests are in.
    for (unsigned i = 0; i < HVIO_LAT_BUCKETS; i++) {
        seen += l.buckets[i];
        if (seen * 1000 >= total * permille)
            return i + 1 < HVIO_LAT_BUCKETS ? latency_bucket_limit_us(i) : l.max_ns / 1000;
    }
    return l.max_ns / 1000;
}

nlohmann::json latency_json(const hvio_queue_latency &l) {
    nlohmann::json buckets = nlohmann::json::object();
    for (unsigned i = 0; i < HVIO_LAT_BUCKETS; i++) {
        if (!l.buckets[i])
            continue;
        std::string key = i + 1 < HVIO_LAT_BUCKETS
                              ? "<" + std::to_string(latency_bucket_limit_us(i))
                              : ">=" + std::to_string(latency_bucket_limit_us(i - 1));
        buckets[key] = l.buckets[i];
    }
    return {{"count", l.count},
            {"mean_us", l.count ? l.sum_ns / l.count / 1000 : 0},
            {"max_us", l.max_ns / 1000},
            {"p50_us", latency_percentile_us(l, 500)},
            {"p99_us", latency_percentile_us(l, 990)},
            {"p999_us", latency_percentile_us(l, 999)},
            {"buckets_us", std::move(buckets)}};
}

} // namespace hvio
