// SPDX-License-Identifier: GPL-2.0
//
// hvemu: the zones as hvisor-tool's virtio_cfg.json describes them, the
// same file the daemon serves.  Only what a hypervisor needs is read: the RAM
// regions and, per enabled device, its window and interrupt.  The daemon
// validates the file strictly; here a value that is missing or not a
// number is an error, anything else is ignored.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "hvemu.h"

namespace hvemu {

using json = nlohmann::json;

// Numbers are integers or strings ("0x1000", "4096"), as in hvisor-tool.
static uint64_t num(const json &j, const char *key, const char *where) {
    auto it = j.find(key);
    if (it == j.end())
        die("%s: %s: missing", where, key);
    if (it->is_number_unsigned() || it->is_number_integer())
        return it->get<uint64_t>();
    if (it->is_string()) {
        const std::string &s = it->get_ref<const std::string &>();
        char *end = nullptr;
        errno = 0;
        uint64_t v = strtoull(s.c_str(), &end, 0);
        if (!s.empty() && !*end && !errno)
            return v;
    }
    die("%s: %s: not a number", where, key);
}

static Zone parse_zone(const json &zj, const std::string &path) {
    Zone zone;
    const char *k = zj.contains("id") ? "id" : "zone_id";
    zone.id = (uint32_t)num(zj, k, "zone");
    if (!zj.contains("memory_region") || zj["memory_region"].empty())
        die("%s: zone %u has no memory_region", path.c_str(), zone.id);
    for (const json &r : zj["memory_region"])
        zone.mem.push_back({num(r, "zone0_ipa", "memory_region"),
                            num(r, "zonex_ipa", "memory_region"), num(r, "size", "memory_region")});
    if (zj.contains("devices")) {
        for (const json &d : zj["devices"]) {
            if (d.value("status", "enable") == "disable")
                continue;
            std::string type = d.value("type", "");
            if (type != "blk" && type != "net" && type != "console")
                continue; // gpu, ...: not served by hvio
            VirtioDev v{type, num(d, "addr", "devices"), 0x200, (uint32_t)num(d, "irq", "devices")};
            if (d.contains("len"))
                v.len = num(d, "len", "devices");
            zone.devs.push_back(v);
        }
    }
    return zone;
}

std::vector<Zone> load_zones(const std::string &path) {
    std::ifstream in(path);
    if (!in)
        die("%s: cannot open", path.c_str());
    json root = json::parse(in, nullptr, false);
    if (root.is_discarded() || !root.is_object())
        die("%s: not a JSON object", path.c_str());

    json zones = root.contains("zones") ? root["zones"] : json::array({root});
    std::vector<Zone> out;
    for (const json &z : zones) {
        out.push_back(parse_zone(z, path));
        for (size_t i = 0; i + 1 < out.size(); i++)
            if (out[i].id == out.back().id)
                die("%s: zone %u is there twice", path.c_str(), out.back().id);
    }
    return out;
}

Zone pick_zone(const std::vector<Zone> &all, uint32_t id, const std::string &path) {
    for (const Zone &z : all)
        if (id == 0 || z.id == id)
            return z;
    die("%s: no zone %u", path.c_str(), id);
}

std::string check_zone_ram(const std::vector<Zone> &zones, uint64_t base, uint64_t size) {
    struct Piece {
        uint64_t lo, hi; // [lo, hi) in sim_ram's (host physical) addresses
        uint32_t zone;
    };
    std::vector<Piece> pieces;
    char b[256];
    for (const Zone &z : zones) {
        for (const MemRegion &m : z.mem) {
            if (!m.size || m.zone0_ipa < base || m.size > size ||
                m.zone0_ipa - base > size - m.size) {
                snprintf(b, sizeof(b),
                         "zone %u: memory_region %#llx+%#llx is not inside sim_ram %#llx+%#llx",
                         z.id, (unsigned long long)m.zone0_ipa, (unsigned long long)m.size,
                         (unsigned long long)base, (unsigned long long)size);
                return b;
            }
            for (const Piece &p : pieces) {
                if (m.zone0_ipa < p.hi && p.lo < m.zone0_ipa + m.size) {
                    snprintf(b, sizeof(b),
                             "zone %u: memory_region %#llx+%#llx overlaps zone %u's %#llx-%#llx in "
                             "sim_ram",
                             z.id, (unsigned long long)m.zone0_ipa, (unsigned long long)m.size,
                             p.zone, (unsigned long long)p.lo, (unsigned long long)p.hi - 1);
                    return b;
                }
            }
            pieces.push_back({m.zone0_ipa, m.zone0_ipa + m.size, z.id});
        }
    }
    return "";
}

} // namespace hvemu
