// SPDX-License-Identifier: GPL-2.0
//
// The latency histogram as `hvio status` reports it (userspace/lib/latency.h),
// against the kernel's bucket rule in uapi/linux/hvio.h: buckets[0] under
// 1 us, buckets[i] [2^(i-1), 2^i) us, the last one from 2^22 us on.
#include "latency.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace {

// The kernel's rule, written from the uapi comment.
unsigned bucket_of(uint64_t us) {
    unsigned i = 0;
    while (us) {
        i++;
        us >>= 1;
    }
    return i < HVIO_LAT_BUCKETS ? i : HVIO_LAT_BUCKETS - 1;
}

hvio_queue_latency with(const std::vector<uint64_t> &us_values) {
    hvio_queue_latency l{};
    for (uint64_t us : us_values) {
        l.buckets[bucket_of(us)]++;
        l.count++;
        l.sum_ns += us * 1000;
        l.max_ns = std::max<uint64_t>(l.max_ns, us * 1000);
    }
    return l;
}

TEST(Latency, PercentilesAreTheBucketBoundAtOrAboveTheValue) {
    // 98 requests of 3 us, one of 100 us, one of 5000 us.
    std::vector<uint64_t> us(98, 3);
    us.push_back(100);
    us.push_back(5000);
    const hvio_queue_latency l = with(us);
    EXPECT_EQ(4u, hvio::latency_percentile_us(l, 500)); // 3 us is in [2, 4)
    EXPECT_EQ(4u, hvio::latency_percentile_us(l, 980));
    EXPECT_EQ(128u, hvio::latency_percentile_us(l, 990));  // 100 us in [64, 128)
    EXPECT_EQ(8192u, hvio::latency_percentile_us(l, 999)); // 5000 us in [4096, 8192)
    auto j = hvio::latency_json(l);
    EXPECT_EQ(100u, j["count"].get<uint64_t>());
    EXPECT_EQ(5000u, j["max_us"].get<uint64_t>());
    EXPECT_EQ((98 * 3000 + 5100000) / 100 / 1000, j["mean_us"].get<uint64_t>());
    EXPECT_EQ(98u, j["buckets_us"]["<4"].get<uint64_t>());
    EXPECT_EQ(1u, j["buckets_us"]["<128"].get<uint64_t>());
    EXPECT_EQ(1u, j["buckets_us"]["<8192"].get<uint64_t>());
    EXPECT_EQ(3u, j["buckets_us"].size());
}

TEST(Latency, EmptyHistogramReportsZeros) {
    hvio_queue_latency l{};
    EXPECT_EQ(0u, hvio::latency_percentile_us(l, 500));
    auto j = hvio::latency_json(l);
    EXPECT_EQ(0u, j["count"].get<uint64_t>());
    EXPECT_EQ(0u, j["mean_us"].get<uint64_t>());
    EXPECT_TRUE(j["buckets_us"].empty());
}

TEST(Latency, SubMicrosecondAndOverflowBuckets) {
    auto l = with({0, 0, 10000000}); // two under 1 us, one of 10 s
    auto j = hvio::latency_json(l);
    EXPECT_EQ(2u, j["buckets_us"]["<1"].get<uint64_t>());
    EXPECT_EQ(1u, j["buckets_us"][">=4194304"].get<uint64_t>());
    EXPECT_EQ(1u, hvio::latency_percentile_us(l, 500));
    // The overflow bucket has no bound: its percentile is the maximum.
    EXPECT_EQ(10000000u, hvio::latency_percentile_us(l, 999));
}

} // namespace
