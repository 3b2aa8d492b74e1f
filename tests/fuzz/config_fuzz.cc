// SPDX-License-Identifier: GPL-2.0
//
// libFuzzer target for the daemon's config parser (userspace/lib/config.cc).
//
// Input: the text of a virtio_cfg.json.  Images are resolved against a
// scratch directory holding one image file, "a" (the seeds use it), so the
// fuzzer can get past the image checks.  Besides crashes, sanitizer
// reports and escaping exceptions, it traps when an accepted config
// breaks a promise the parser makes to the daemon: ranges, power-of-two
// queue sizes, alignment, no window overlapping RAM or another window, no
// two zones with one id, net devices with a valid TAP name, a unicast MAC
// and an MTU in range, no TAP used twice.
#include "config.h"

#include <linux/hvio.h>

#include <cstdint>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <string_view>
#include <unistd.h>

namespace {

std::string scratch;

bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) {
    return a < b + blen && b < a + alen;
}

void check(const hvio::Config &c) {
    if (c.zones.empty() || c.zones.size() > HVIO_MAX_ZONES)
        __builtin_trap();
    for (size_t i = 0; i < c.zones.size(); i++) {
        const hvio::ZoneConfig &z = c.zones[i];
        if (!z.id || z.id > HVIO_MAX_ZONE_ID)
            __builtin_trap();
        for (size_t j = 0; j < i; j++)
            if (c.zones[j].id == z.id)
                __builtin_trap();
        if (z.regions.empty() || z.regions.size() > HVIO_MAX_REGIONS)
            __builtin_trap();
        for (const hvio::MemRegionConfig &m : z.regions)
            if (!m.size || (m.zone0_ipa | m.zonex_ipa | m.size) % hvio::kConfigPageSize ||
                m.zonex_ipa + m.size > HVIO_IPA_LIMIT || m.zone0_ipa + m.size < m.zone0_ipa)
                __builtin_trap();
        for (size_t k = 0; k < z.blk.size(); k++) {
            const hvio::BlkDeviceConfig &b = z.blk[k];
            if (b.addr % HVIO_MMIO_ALIGN || !b.len || b.len % HVIO_MMIO_ALIGN ||
                b.len > HVIO_MMIO_MAX_LEN || b.addr + b.len > HVIO_IPA_LIMIT)
                __builtin_trap();
            if (!b.irq || b.irq > HVIO_MAX_IRQ || !b.queues || b.queues > HVIO_MAX_QUEUES)
                __builtin_trap();
            if (b.queue_size < 2 || b.queue_size > 1024 || (b.queue_size & (b.queue_size - 1)))
                __builtin_trap();
            if (b.serial.size() > 20 || b.path.empty())
                __builtin_trap();
            for (const hvio::MemRegionConfig &m : z.regions)
                if (overlaps(b.addr, b.len, m.zonex_ipa, m.size))
                    __builtin_trap();
            for (size_t j = 0; j < k; j++)
                if (overlaps(b.addr, b.len, z.blk[j].addr, z.blk[j].len))
                    __builtin_trap();
        }
    }
    for (size_t i = 0; i < c.zones.size(); i++) {
        const hvio::ZoneConfig &z = c.zones[i];
        for (size_t k = 0; k < z.net.size(); k++) {
            const hvio::NetDeviceConfig &n = z.net[k];
            if (n.addr % HVIO_MMIO_ALIGN || !n.len || n.len % HVIO_MMIO_ALIGN ||
                n.len > HVIO_MMIO_MAX_LEN || n.addr + n.len > HVIO_IPA_LIMIT)
                __builtin_trap();
            if (!n.irq || n.irq > HVIO_MAX_IRQ || n.mtu < 68 || n.mtu > 65535)
                __builtin_trap();
            if (n.queue_size < 2 || n.queue_size > 1024 || (n.queue_size & (n.queue_size - 1)))
                __builtin_trap();
            if (n.tap.empty() || n.tap.size() > 15 || n.tap.find('/') != std::string::npos ||
                (n.mac[0] & 1))
                __builtin_trap();
            for (const hvio::MemRegionConfig &m : z.regions)
                if (overlaps(n.addr, n.len, m.zonex_ipa, m.size))
                    __builtin_trap();
            for (const hvio::BlkDeviceConfig &b : z.blk)
                if (overlaps(n.addr, n.len, b.addr, b.len))
                    __builtin_trap();
            for (size_t j = 0; j < k; j++)
                if (overlaps(n.addr, n.len, z.net[j].addr, z.net[j].len))
                    __builtin_trap();
            // One TAP, one device, in all zones.
            for (size_t zi = 0; zi <= i; zi++)
                for (size_t j = 0; j < (zi == i ? k : c.zones[zi].net.size()); j++)
                    if (c.zones[zi].net[j].tap == n.tap)
                        __builtin_trap();
        }
    }
    if (c.device_count() > HVIO_MAX_DEVS)
        __builtin_trap();
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
    char tmpl[] = "/tmp/hvio-config-fuzz-XXXXXX";
    if (!mkdtemp(tmpl))
        std::abort();
    scratch = tmpl;
    int fd = ::open((scratch + "/a").c_str(), O_CREAT | O_WRONLY, 0644);
    if (fd < 0 || ::ftruncate(fd, 1 << 20) < 0)
        std::abort();
    ::close(fd);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string_view text(reinterpret_cast<const char *>(data), size);
    hvio::ConfigResult r = hvio::parse_config(text, scratch);
    if (r.ok())
        check(r.value());
    else if (r.error().what.empty())
        __builtin_trap(); // every refusal says why
    return 0;
}
