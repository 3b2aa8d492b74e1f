// SPDX-License-Identifier: GPL-2.0
//
// hvemu: the zone as hvisor-tool's virtio_cfg.json describes it, the same
// file the daemon serves.  Only what a hypervisor needs is read: the RAM
// regions and, per enabled device, its window and interrupt.  The daemon
// validates the file strictly; here a value that is missing or not a
// number is an error, anything else is ignored.
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

Zone load_zone(const std::string &path, uint32_t id) {
    std::ifstream in(path);
    if (!in)
        die("%s: cannot open", path.c_str());
    json root = json::parse(in, nullptr, false);
    if (root.is_discarded() || !root.is_object())
        die("%s: not a JSON object", path.c_str());

    json zones = root.contains("zones") ? root["zones"] : json::array({root});
    const json *zj = nullptr;
    for (const json &z : zones) {
        const char *k = z.contains("id") ? "id" : "zone_id";
        uint64_t zid = z.contains(k) ? num(z, k, path.c_str()) : 0;
        if (id == 0 || zid == id) {
            zj = &z;
            break;
        }
    }
    if (!zj)
        die("%s: no zone %u", path.c_str(), id);

    Zone zone;
    const char *k = zj->contains("id") ? "id" : "zone_id";
    zone.id = (uint32_t)num(*zj, k, "zone");
    if (!zj->contains("memory_region") || (*zj)["memory_region"].empty())
        die("%s: zone %u has no memory_region", path.c_str(), zone.id);
    for (const json &r : (*zj)["memory_region"])
        zone.mem.push_back({num(r, "zone0_ipa", "memory_region"),
                            num(r, "zonex_ipa", "memory_region"), num(r, "size", "memory_region")});
    if (zj->contains("devices")) {
        for (const json &d : (*zj)["devices"]) {
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

} // namespace hvemu
