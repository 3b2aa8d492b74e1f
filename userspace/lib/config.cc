// SPDX-License-Identifier: GPL-2.0
//
// Config: parse and check hvisor-tool's virtio_cfg.json.
//
// The file is hvisor-tool's format, read as is: numbers may be JSON
// integers or strings ("0x1000", "4096"), devices with "status": "disable"
// are skipped with a warning line, a file without "zones" is one zone (hvisor-tool's older
// form), and "zone_id" is accepted for "id".  Unlike hvisor-tool we refuse
// what it would silently misread: unknown keys (a typo is a setting that
// does not happen), negative or fractional numbers, numbers with a leading
// zero (strtoumax reads "010" as octal 8), and overlaps it would only find
// at run time or never.  The first problem found ends parsing; its key path
// tells the user exactly where to look.
#include "config.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <linux/hvio.h>
#include <optional>
#include <sstream>
#include <sys/stat.h>

namespace hvio {

namespace {

using json = nlohmann::ordered_json;

// Device types hvisor-tool knows; all but blk, net and console are skipped
// with a warning.
constexpr const char *kSkippedTypes[] = {"gpu", "scmi"};

constexpr unsigned kMaxQueueSize = 1024; // our limit; the kernel allows more
constexpr size_t kSerialMax = 20;        // VIRTIO_BLK_ID_BYTES
constexpr size_t kIfNameMax = 15;        // IFNAMSIZ - 1
constexpr uint64_t kMinMtu = 68;         // IPv4's minimum
constexpr uint64_t kMaxMtu = 65535;
constexpr size_t kSunPathMax = 108; // sizeof(sockaddr_un::sun_path)

std::string hex(uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}

// "[0x1000, 0x2000)"
std::string range(uint64_t base, uint64_t len) {
    return "[" + hex(base) + ", " + hex(base + len) + ")";
}

std::string join(const std::string &where, const std::string &key) {
    return where.empty() ? key : where + "." + key;
}

std::string index(const std::string &where, const char *key, size_t i) {
    return join(where, key) + "[" + std::to_string(i) + "]";
}

bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) {
    return a < b + blen && b < a + alen;
}

const char *type_name(const json &v) {
    if (v.is_number_float())
        return "a fractional number";
    if (v.is_number())
        return "a number";
    switch (v.type()) {
    case json::value_t::null:
        return "null";
    case json::value_t::object:
        return "an object";
    case json::value_t::array:
        return "an array";
    case json::value_t::string:
        return "a string";
    case json::value_t::boolean:
        return "a boolean";
    default:
        return "something else";
    }
}

// An image, to find two devices sharing one.
struct ImageUse {
    dev_t dev;
    ino_t ino;
    bool readonly;
    std::string where;
};

class Parser {
  public:
    explicit Parser(std::string base_dir) : base_dir_(std::move(base_dir)) {}

    ConfigResult run(std::string_view text);

  private:
    bool fail(std::string where, std::string what) {
        if (!err_)
            err_ = ConfigError{std::move(where), std::move(what)};
        return false;
    }

    bool keys(const json &obj, const std::string &where,
              std::initializer_list<const char *> allowed);
    bool number(const json &v, const std::string &where, uint64_t *out);
    bool ranged(const json &obj, const std::string &where, const char *key, uint64_t lo,
                uint64_t hi, uint64_t *out);
    bool boolean(const json &obj, const std::string &where, const char *key, bool *out);

    bool zone(const json &z, const std::string &where);
    bool region(const json &r, const std::string &where, ZoneConfig &zc);
    bool device(const json &d, const std::string &where, ZoneConfig &zc);
    bool window(const json &d, const std::string &where, const ZoneConfig &zc, uint64_t *addr,
                uint64_t *len, uint32_t *irq);
    bool queue_size(const json &d, const std::string &where, unsigned *out);
    bool poll_us(const json &d, const std::string &where, unsigned *out);
    bool blk(const json &d, const std::string &where, ZoneConfig &zc);
    bool net(const json &d, const std::string &where, ZoneConfig &zc);
    bool console(const json &d, const std::string &where, ZoneConfig &zc);
    bool path(const json &d, const std::string &where, const char *key, std::string *out);
    bool mac(const json &d, const std::string &where, NetDeviceConfig &n);
    bool image(const json &d, const std::string &where, BlkDeviceConfig &b);

    std::string base_dir_;
    Config cfg_;
    std::optional<ConfigError> err_;
    std::vector<std::pair<MemRegionConfig, std::string>> all_regions_;
    std::vector<ImageUse> images_;
    std::vector<std::pair<std::string, std::string>> taps_;  // name, where
    std::vector<std::pair<std::string, std::string>> paths_; // console pty/socket, where
    size_t devices_ = 0;
};

bool Parser::keys(const json &obj, const std::string &where,
                  std::initializer_list<const char *> allowed) {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
        const std::string &k = it.key();
        if (std::none_of(allowed.begin(), allowed.end(), [&](const char *a) { return k == a; })) {
            std::string known;
            for (const char *a : allowed)
                known += known.empty() ? a : std::string(", ") + a;
            return fail(join(where, k), "unknown key (known here: " + known + ")");
        }
    }
    return true;
}

bool Parser::number(const json &v, const std::string &where, uint64_t *out) {
    if (v.is_number_unsigned()) {
        *out = v.get<uint64_t>();
        return true;
    }
    if (v.is_number_integer())
        return fail(where, "must not be negative");
    if (v.is_string()) {
        std::string msg = parse_number_string(v.get_ref<const std::string &>(), out);
        return msg.empty() || fail(where, msg);
    }
    return fail(where,
                std::string("must be an integer or a \"0x...\" string, not ") + type_name(v));
}

bool Parser::ranged(const json &obj, const std::string &where, const char *key, uint64_t lo,
                    uint64_t hi, uint64_t *out) {
    std::string w = join(where, key);
    if (!number(obj.at(key), w, out))
        return false;
    if (*out < lo || *out > hi)
        return fail(w, "must be " + std::to_string(lo) + ".." + std::to_string(hi));
    return true;
}

bool Parser::boolean(const json &obj, const std::string &where, const char *key, bool *out) {
    auto it = obj.find(key);
    if (it == obj.end())
        return true;
    if (!it->is_boolean())
        return fail(join(where, key), std::string("must be true or false, not ") + type_name(*it));
    *out = it->get<bool>();
    return true;
}

ConfigResult Parser::run(std::string_view text) {
    json root;
    try {
        root = json::parse(text.begin(), text.end(), nullptr, true, /*ignore_comments=*/true);
    } catch (const json::exception &e) {
        // parse_error, or out_of_range for a number like 1e999.  Drop
        // nlohmann's "[json.exception.parse_error.101] " prefix.
        std::string msg = e.what();
        if (auto p = msg.find("] "); msg.rfind("[json.exception", 0) == 0 && p != msg.npos)
            msg.erase(0, p + 2);
        return ConfigError{"", "not valid JSON: " + msg};
    }
    if (!root.is_object())
        return ConfigError{"", std::string("must be a JSON object, not ") + type_name(root)};

    if (root.contains("zones")) {
        if (!keys(root, "", {"zones"}))
            return *err_;
        const json &zones = root["zones"];
        if (!zones.is_array())
            return ConfigError{"zones", std::string("must be an array, not ") + type_name(zones)};
        if (zones.empty())
            return ConfigError{"zones", "is empty: nothing to serve"};
        if (zones.size() > HVIO_MAX_ZONES)
            return ConfigError{"zones", "has " + std::to_string(zones.size()) + " zones, at most " +
                                            std::to_string(HVIO_MAX_ZONES) + " are supported"};
        for (size_t i = 0; i < zones.size(); i++)
            if (!zone(zones[i], "zones[" + std::to_string(i) + "]"))
                return *err_;
    } else if (!zone(root, "")) {
        // hvisor-tool's older form: the file is one zone.
        return *err_;
    }
    if (!devices_)
        cfg_.warnings.push_back(
            "no enabled blk, net or console device: hvio only registers the zones");
    return std::move(cfg_);
}

bool Parser::zone(const json &z, const std::string &where) {
    if (!z.is_object())
        return fail(where.empty() ? "zones" : where,
                    std::string("must be an object, not ") + type_name(z));
    if (!keys(z, where, {"id", "zone_id", "memory_region", "devices"}))
        return false;

    ZoneConfig zc;
    zc.where = where;
    const char *id_key = z.contains("id") ? "id" : "zone_id";
    if (z.contains("id") && z.contains("zone_id"))
        return fail(join(where, "zone_id"), "give either \"id\" or \"zone_id\", not both");
    if (!z.contains(id_key))
        return fail(join(where, "id"), "missing (the zone's id, 1..65535)");
    uint64_t id;
    if (!number(z[id_key], join(where, id_key), &id))
        return false;
    if (id < 1 || id > HVIO_MAX_ZONE_ID)
        return fail(join(where, id_key), "must be 1..65535 (zone 0 is root Linux)");
    zc.id = static_cast<uint32_t>(id);
    for (const ZoneConfig &other : cfg_.zones)
        if (other.id == zc.id)
            return fail(join(where, id_key),
                        "duplicate zone id " + std::to_string(id) + " (also " + other.where + ")");

    auto mr = z.find("memory_region");
    if (mr == z.end())
        return fail(join(where, "memory_region"), "missing (the zone's RAM regions)");
    if (!mr->is_array())
        return fail(join(where, "memory_region"),
                    std::string("must be an array, not ") + type_name(*mr));
    if (mr->empty() || mr->size() > HVIO_MAX_REGIONS)
        return fail(join(where, "memory_region"),
                    "must have 1.." + std::to_string(HVIO_MAX_REGIONS) + " regions");
    for (size_t i = 0; i < mr->size(); i++)
        if (!region((*mr)[i], index(where, "memory_region", i), zc))
            return false;

    cfg_.zones.push_back(std::move(zc));
    ZoneConfig &zref = cfg_.zones.back();

    auto devs = z.find("devices");
    if (devs == z.end())
        return true;
    if (!devs->is_array())
        return fail(join(where, "devices"),
                    std::string("must be an array, not ") + type_name(*devs));
    for (size_t i = 0; i < devs->size(); i++)
        if (!device((*devs)[i], index(where, "devices", i), zref))
            return false;
    return true;
}

bool Parser::region(const json &r, const std::string &where, ZoneConfig &zc) {
    if (!r.is_object())
        return fail(where, std::string("must be an object, not ") + type_name(r));
    if (!keys(r, where, {"zone0_ipa", "zonex_ipa", "size"}))
        return false;
    MemRegionConfig m;
    const std::pair<const char *, uint64_t *> fields[] = {
        {"zone0_ipa", &m.zone0_ipa}, {"zonex_ipa", &m.zonex_ipa}, {"size", &m.size}};
    for (auto [key, out] : fields) {
        if (!r.contains(key))
            return fail(join(where, key), "missing");
        if (!number(r[key], join(where, key), out))
            return false;
        if (*out % kConfigPageSize)
            return fail(join(where, key), hex(*out) + " is not 4 KiB aligned");
    }
    if (!m.size)
        return fail(join(where, "size"), "must not be 0");
    if (m.zone0_ipa + m.size < m.zone0_ipa)
        return fail(join(where, "size"), "zone0_ipa + size wraps around");
    if (m.zonex_ipa + m.size < m.zonex_ipa || m.zonex_ipa + m.size > HVIO_IPA_LIMIT)
        return fail(join(where, "size"), "zonex_ipa + size goes beyond 2^52");

    for (size_t i = 0; i < zc.regions.size(); i++) {
        const MemRegionConfig &o = zc.regions[i];
        std::string ow = index(zc.where, "memory_region", i);
        if (overlaps(m.zonex_ipa, m.size, o.zonex_ipa, o.size))
            return fail(join(where, "zonex_ipa"), "guest range " + range(m.zonex_ipa, m.size) +
                                                      " overlaps " + ow + " " +
                                                      range(o.zonex_ipa, o.size));
    }
    for (const auto &[o, ow] : all_regions_)
        if (overlaps(m.zone0_ipa, m.size, o.zone0_ipa, o.size))
            return fail(join(where, "zone0_ipa"), "host range " + range(m.zone0_ipa, m.size) +
                                                      " overlaps " + ow + " " +
                                                      range(o.zone0_ipa, o.size));
    zc.regions.push_back(m);
    all_regions_.emplace_back(m, where);
    return true;
}

bool Parser::device(const json &d, const std::string &where, ZoneConfig &zc) {
    if (!d.is_object())
        return fail(where, std::string("must be an object, not ") + type_name(d));

    auto st = d.find("status");
    if (st != d.end()) {
        if (!st->is_string() || (*st != "enable" && *st != "disable"))
            return fail(join(where, "status"), "must be \"enable\" or \"disable\"");
        if (*st == "disable") {
            // Its other keys are not looked at (hvisor-tool's examples
            // keep a disabled net device with keys of its own), but the
            // skip is said, so a device missing from the zone is explained.
            auto ty = d.find("type");
            std::string what = ty != d.end() && ty->is_string()
                                   ? ty->get_ref<const std::string &>() + " device"
                                   : std::string("device");
            cfg_.warnings.push_back(where + ": " + what +
                                    " disabled (\"status\": \"disable\"), skipped");
            return true;
        }
    }

    auto ty = d.find("type");
    if (ty == d.end())
        return fail(join(where, "type"), "missing (blk, net, console, ...)");
    if (!ty->is_string())
        return fail(join(where, "type"), std::string("must be a string, not ") + type_name(*ty));
    const std::string &type = ty->get_ref<const std::string &>();
    if (type == "blk")
        return blk(d, where, zc);
    if (type == "net")
        return net(d, where, zc);
    if (type == "console")
        return console(d, where, zc);
    for (const char *t : kSkippedTypes)
        if (type == t) {
            cfg_.warnings.push_back(where + ": " + type +
                                    " devices are not yet supported, skipped");
            return true;
        }
    return fail(join(where, "type"),
                "unknown device type \"" + type + "\" (blk, net, console, gpu, scmi)");
}

// addr, len and irq of a device; the window must not cover the zone's RAM
// nor another device's window (of any type).
bool Parser::window(const json &d, const std::string &where, const ZoneConfig &zc, uint64_t *addr,
                    uint64_t *len, uint32_t *irq) {
    for (const char *key : {"addr", "irq"})
        if (!d.contains(key))
            return fail(join(where, key), "missing");
    if (!number(d["addr"], join(where, "addr"), addr))
        return false;
    if (*addr % HVIO_MMIO_ALIGN)
        return fail(join(where, "addr"), hex(*addr) + " is not 0x200 aligned");
    if (d.contains("len")) {
        if (!number(d["len"], join(where, "len"), len))
            return false;
        if (!*len || *len % HVIO_MMIO_ALIGN || *len > HVIO_MMIO_MAX_LEN)
            return fail(join(where, "len"), "must be a multiple of 0x200, 0x200..0x10000");
    }
    if (*addr >= HVIO_IPA_LIMIT || *len > HVIO_IPA_LIMIT - *addr)
        return fail(join(where, "addr"), "window " + range(*addr, *len) + " goes beyond 2^52");

    uint64_t v;
    if (!ranged(d, where, "irq", 1, HVIO_MAX_IRQ, &v))
        return false;
    *irq = static_cast<uint32_t>(v);

    for (size_t i = 0; i < zc.regions.size(); i++) {
        const MemRegionConfig &m = zc.regions[i];
        if (overlaps(*addr, *len, m.zonex_ipa, m.size))
            return fail(join(where, "addr"),
                        "window " + range(*addr, *len) + " overlaps zone RAM " +
                            index(zc.where, "memory_region", i) + " " + range(m.zonex_ipa, m.size));
    }
    auto other = [&](const std::string &ow, uint64_t oaddr, uint64_t olen, uint32_t oirq) {
        if (overlaps(*addr, *len, oaddr, olen))
            return fail(join(where, "addr"), "window " + range(*addr, *len) + " overlaps " + ow +
                                                 " " + range(oaddr, olen));
        if (oirq == *irq)
            cfg_.warnings.push_back(join(where, "irq") + ": " + std::to_string(*irq) +
                                    " is also the irq of " + ow + " (shared)");
        return true;
    };
    for (const BlkDeviceConfig &o : zc.blk)
        if (!other(o.where, o.addr, o.len, o.irq))
            return false;
    for (const NetDeviceConfig &o : zc.net)
        if (!other(o.where, o.addr, o.len, o.irq))
            return false;
    for (const ConsoleDeviceConfig &o : zc.console)
        if (!other(o.where, o.addr, o.len, o.irq))
            return false;
    return true;
}

bool Parser::queue_size(const json &d, const std::string &where, unsigned *out) {
    if (!d.contains("queue_size"))
        return true;
    uint64_t v;
    if (!ranged(d, where, "queue_size", 2, kMaxQueueSize, &v))
        return false;
    if (v & (v - 1))
        return fail(join(where, "queue_size"),
                    std::to_string(v) + " is not a power of two (2, 4, ... 1024)");
    *out = static_cast<unsigned>(v);
    return true;
}

bool Parser::poll_us(const json &d, const std::string &where, unsigned *out) {
    uint64_t v;
    if (!d.contains("poll_us"))
        return true;
    if (!ranged(d, where, "poll_us", 0, HVIO_MAX_POLL_US, &v))
        return false;
    *out = static_cast<unsigned>(v);
    return true;
}

bool Parser::blk(const json &d, const std::string &where, ZoneConfig &zc) {
    if (!keys(d, where,
              {"type", "status", "addr", "len", "irq", "img", "queues", "queue_size", "readonly",
               "direct", "serial", "discard", "poll_us"}))
        return false;

    BlkDeviceConfig b;
    b.where = where;
    for (const char *key : {"addr", "irq", "img"})
        if (!d.contains(key))
            return fail(join(where, key), "missing");
    if (!window(d, where, zc, &b.addr, &b.len, &b.irq))
        return false;

    uint64_t v;
    if (d.contains("queues")) {
        if (!ranged(d, where, "queues", 1, HVIO_MAX_QUEUES, &v))
            return false;
        b.queues = static_cast<unsigned>(v);
    }
    if (!queue_size(d, where, &b.queue_size) || !poll_us(d, where, &b.poll_us))
        return false;
    if (!boolean(d, where, "readonly", &b.readonly) || !boolean(d, where, "direct", &b.direct) ||
        !boolean(d, where, "discard", &b.discard))
        return false;

    if (d.contains("serial")) {
        const json &s = d["serial"];
        if (!s.is_string())
            return fail(join(where, "serial"),
                        std::string("must be a string, not ") + type_name(s));
        b.serial = s.get<std::string>();
        if (b.serial.size() > kSerialMax)
            return fail(join(where, "serial"),
                        "is " + std::to_string(b.serial.size()) + " bytes, at most 20");
        for (unsigned char c : b.serial)
            if (c < 0x20 || c > 0x7e)
                return fail(join(where, "serial"), "must be printable ASCII");
    }

    if (!image(d, where, b))
        return false;
    for (const BlkDeviceConfig &o : zc.blk)
        if (o.serial == b.serial)
            cfg_.warnings.push_back(join(where, "serial") + ": \"" + b.serial +
                                    "\" is also the serial of " + o.where);

    if (++devices_ > HVIO_MAX_DEVS)
        return fail(where, "more than " + std::to_string(HVIO_MAX_DEVS) + " devices");
    zc.blk.push_back(std::move(b));
    return true;
}

// hvisor-tool writes the MAC as an array of six "0x.." strings; numbers and
// "00:16:3e:10:10:10" are accepted too.
bool Parser::mac(const json &d, const std::string &where, NetDeviceConfig &n) {
    const std::string w = join(where, "mac");
    const json &m = d["mac"];
    if (m.is_string()) {
        const std::string &s = m.get_ref<const std::string &>();
        unsigned b[6];
        char tail;
        if (s.size() != 17 || std::sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1],
                                          &b[2], &b[3], &b[4], &b[5], &tail) != 6)
            return fail(w, "must be 6 bytes: [\"0x00\", \"0x16\", ...] or \"00:16:3e:10:10:10\"");
        for (int i = 0; i < 6; i++)
            n.mac[i] = static_cast<uint8_t>(b[i]);
    } else if (m.is_array()) {
        if (m.size() != 6)
            return fail(w, "has " + std::to_string(m.size()) + " bytes, must be 6");
        for (size_t i = 0; i < 6; i++) {
            uint64_t v;
            if (!number(m[i], index(where, "mac", i), &v))
                return false;
            if (v > 0xff)
                return fail(index(where, "mac", i), hex(v) + " is not a byte (0x00..0xff)");
            n.mac[i] = static_cast<uint8_t>(v);
        }
    } else {
        return fail(w, std::string("must be an array of 6 bytes, not ") + type_name(m));
    }
    if (n.mac[0] & 1)
        return fail(w, "is a multicast address (bit 0 of the first byte is set)");
    if (std::all_of(n.mac.begin(), n.mac.end(), [](uint8_t b) { return b == 0; }))
        return fail(w, "must not be 00:00:00:00:00:00");
    n.mac_given = true;
    return true;
}

bool Parser::net(const json &d, const std::string &where, ZoneConfig &zc) {
    if (!keys(d, where,
              {"type", "status", "addr", "len", "irq", "tap", "mac", "mtu", "offloads", "mrg_rxbuf",
               "queue_size", "poll_us"}))
        return false;

    NetDeviceConfig n;
    n.where = where;
    if (!window(d, where, zc, &n.addr, &n.len, &n.irq))
        return false;

    const std::string tw = join(where, "tap");
    auto tap = d.find("tap");
    if (tap == d.end())
        return fail(tw, "missing (the TAP interface, e.g. \"tap0\")");
    if (!tap->is_string())
        return fail(tw, std::string("must be a string, not ") + type_name(*tap));
    n.tap = tap->get<std::string>();
    if (n.tap.empty() || n.tap.size() > kIfNameMax)
        return fail(tw, "must be 1.." + std::to_string(kIfNameMax) + " bytes (an interface name)");
    if (n.tap == "." || n.tap == "..")
        return fail(tw, "\"" + n.tap + "\" is not a valid interface name");
    for (unsigned char c : n.tap)
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == ':')
            return fail(tw, "must not contain '/', ':', whitespace or non-ASCII bytes");
    for (const auto &[name, ow] : taps_)
        if (name == n.tap)
            return fail(tw, "\"" + n.tap + "\" is also the TAP of " + ow);

    if (d.contains("mac")) {
        if (!mac(d, where, n))
            return false;
    } else {
        // Locally administered, unicast, stable for this zone and device.
        n.mac = {0x02,
                 0x48,
                 0x56,
                 static_cast<uint8_t>(zc.id >> 8),
                 static_cast<uint8_t>(zc.id),
                 static_cast<uint8_t>(zc.net.size())};
    }

    uint64_t v;
    if (d.contains("mtu")) {
        if (!ranged(d, where, "mtu", kMinMtu, kMaxMtu, &v))
            return false;
        n.mtu = static_cast<unsigned>(v);
    }
    if (!boolean(d, where, "offloads", &n.offloads) ||
        !boolean(d, where, "mrg_rxbuf", &n.mrg_rxbuf) || !queue_size(d, where, &n.queue_size) ||
        !poll_us(d, where, &n.poll_us))
        return false;

    if (++devices_ > HVIO_MAX_DEVS)
        return fail(where, "more than " + std::to_string(HVIO_MAX_DEVS) + " devices");
    taps_.emplace_back(n.tap, where);
    zc.net.push_back(std::move(n));
    return true;
}

// An absolute path for a console's "pty" symlink or "socket"; one path
// serves one console.
bool Parser::path(const json &d, const std::string &where, const char *key, std::string *out) {
    const std::string w = join(where, key);
    const json &v = d[key];
    if (!v.is_string())
        return fail(w, std::string("must be a string, not ") + type_name(v));
    const std::string &p = v.get_ref<const std::string &>();
    if (p.empty() || p[0] != '/' || p.back() == '/')
        return fail(w, "must be an absolute path to a file, e.g. \"/run/hvio/zone1-console\"");
    if (p.find('\0') != std::string::npos)
        return fail(w, "contains a NUL byte");
    if (std::string_view(key) == "socket" && p.size() >= kSunPathMax)
        return fail(w, "longer than " + std::to_string(kSunPathMax - 1) +
                           " bytes (a UNIX socket path)");
    for (const auto &[op, ow] : paths_)
        if (op == p)
            return fail(w, "\"" + p + "\" is also used by " + ow);
    paths_.emplace_back(p, w);
    *out = p;
    return true;
}

bool Parser::console(const json &d, const std::string &where, ZoneConfig &zc) {
    if (!keys(d, where,
              {"type", "status", "addr", "len", "irq", "pty", "socket", "queue_size", "stall_ms"}))
        return false;

    ConsoleDeviceConfig c;
    c.where = where;
    if (!window(d, where, zc, &c.addr, &c.len, &c.irq))
        return false;
    if (d.contains("pty") && d.contains("socket"))
        return fail(join(where, "socket"), "\"pty\" and \"socket\" exclude each other "
                                           "(the backend is a PTY or a UNIX socket)");
    if (d.contains("pty") && !path(d, where, "pty", &c.pty))
        return false;
    if (d.contains("socket") && !path(d, where, "socket", &c.socket))
        return false;
    if (!queue_size(d, where, &c.queue_size))
        return false;
    if (d.contains("stall_ms")) {
        uint64_t v;
        if (!ranged(d, where, "stall_ms", 0, kMaxConsoleStallMs, &v))
            return false;
        c.stall_ms = static_cast<unsigned>(v);
    }

    if (++devices_ > HVIO_MAX_DEVS)
        return fail(where, "more than " + std::to_string(HVIO_MAX_DEVS) + " devices");
    zc.console.push_back(std::move(c));
    return true;
}

bool Parser::image(const json &d, const std::string &where, BlkDeviceConfig &b) {
    std::string w = join(where, "img");
    const json &img = d["img"];
    if (!img.is_string() || img.get_ref<const std::string &>().empty())
        return fail(w, "must be a non-empty path");
    b.img = img.get<std::string>();
    if (b.img.find('\0') != std::string::npos)
        return fail(w, "contains a NUL byte");
    if (b.img[0] == '/' || base_dir_.empty())
        b.path = b.img;
    else
        b.path = base_dir_ + (base_dir_.back() == '/' ? "" : "/") + b.img;

    struct stat st;
    if (::stat(b.path.c_str(), &st) < 0)
        return fail(w, b.path + ": " + std::strerror(errno));
    if (S_ISBLK(st.st_mode))
        b.block_device = true;
    else if (!S_ISREG(st.st_mode))
        return fail(w, b.path + ": not a regular file or block device");

    for (const ImageUse &u : images_)
        if (u.dev == st.st_dev && u.ino == st.st_ino && !(u.readonly && b.readonly))
            return fail(w, b.path + ": also the image of " + u.where +
                               "; two devices may share an image only if both are readonly");
    images_.push_back({st.st_dev, st.st_ino, b.readonly, where});

    if (b.serial.empty() && !d.contains("serial")) {
        // Default serial: the image's file name, as much as fits.
        std::string base = b.path.substr(b.path.find_last_of('/') + 1);
        b.serial = base.substr(0, kSerialMax);
        for (char &c : b.serial)
            if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e)
                c = '_';
    }
    return true;
}

} // namespace

size_t Config::device_count() const {
    size_t n = 0;
    for (const ZoneConfig &z : zones)
        n += z.blk.size() + z.net.size() + z.console.size();
    return n;
}

std::string ConfigError::text() const { return where.empty() ? what : where + ": " + what; }

std::string parse_number_string(std::string_view s, uint64_t *out) {
    const std::string quoted = "\"" + std::string(s.substr(0, 40)) + "\"";
    if (s.empty())
        return "empty string, expected a number";
    uint64_t v = 0;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        for (char c : s.substr(2)) {
            unsigned d;
            if (c >= '0' && c <= '9')
                d = c - '0';
            else if (c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F')
                d = c - 'A' + 10;
            else
                return "bad hex number " + quoted;
            if (v >> 60)
                return quoted + " does not fit in 64 bits";
            v = v << 4 | d;
        }
        *out = v;
        return {};
    }
    for (char c : s) {
        if (c < '0' || c > '9')
            return "bad number " + quoted + ": expected \"0x...\" (hex) or decimal digits";
        unsigned d = c - '0';
        if (v > (UINT64_MAX - d) / 10)
            return quoted + " does not fit in 64 bits";
        v = v * 10 + d;
    }
    if (s.size() > 1 && s[0] == '0')
        return "ambiguous number " + quoted +
               ": hvisor-tool reads a leading zero as octal; write \"0x...\" or drop the zero";
    *out = v;
    return {};
}

ConfigResult parse_config(std::string_view text, const std::string &base_dir) {
    return Parser(base_dir).run(text);
}

ConfigResult load_config(const std::string &file) {
    std::ifstream in(file, std::ios::binary);
    if (!in)
        return ConfigError{"", std::string("cannot read: ") + std::strerror(errno)};
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad())
        return ConfigError{"", std::string("cannot read: ") + std::strerror(errno)};

    // Relative images are relative to the file's directory, made absolute
    // so messages and `hvio status` show where they are.
    std::string dir = ".";
    if (auto slash = file.find_last_of('/'); slash != std::string::npos)
        dir = slash == 0 ? "/" : file.substr(0, slash);
    if (char *real = ::realpath(dir.c_str(), nullptr)) {
        dir = real;
        std::free(real);
    }
    return parse_config(ss.str(), dir);
}

} // namespace hvio
