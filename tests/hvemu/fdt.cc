// SPDX-License-Identifier: GPL-2.0
//
// hvemu: the flattened device tree writer (see fdt.h).
#include "fdt.h"

#include <cstring>

#include "hvemu.h"

namespace hvemu {

static constexpr uint32_t kMagic = 0xd00dfeed;
static constexpr uint32_t kBeginNode = 1, kEndNode = 2, kProp = 3, kEnd = 9;
static constexpr uint32_t kHeaderSize = 40, kRsvmapSize = 16;

static void be32(std::vector<uint8_t> &v, uint32_t x) {
    for (int i = 3; i >= 0; i--)
        v.push_back((uint8_t)(x >> (8 * i)));
}

void Fdt::raw(const void *p, size_t n) {
    const uint8_t *b = static_cast<const uint8_t *>(p);
    st_.insert(st_.end(), b, b + n);
}

void Fdt::u32(uint32_t v) { be32(st_, v); }

void Fdt::pad() {
    while (st_.size() % 4)
        st_.push_back(0);
}

uint32_t Fdt::name_off(const std::string &name) {
    // Names are few: a linear search keeps the strings block deduplicated.
    size_t pos = 0;
    while (pos < strings_.size()) {
        if (name == strings_.c_str() + pos)
            return (uint32_t)pos;
        pos += strlen(strings_.c_str() + pos) + 1;
    }
    strings_.append(name);
    strings_.push_back('\0');
    return (uint32_t)pos;
}

void Fdt::begin(const std::string &name) {
    u32(kBeginNode);
    raw(name.c_str(), name.size() + 1);
    pad();
    depth_++;
}

void Fdt::end() {
    if (depth_ <= 0)
        die("fdt: end() without begin()");
    u32(kEndNode);
    depth_--;
}

void Fdt::prop_bytes(const std::string &name, const std::vector<uint8_t> &b) {
    u32(kProp);
    u32((uint32_t)b.size());
    u32(name_off(name));
    raw(b.data(), b.size());
    pad();
}

void Fdt::prop(const std::string &name) { prop_bytes(name, {}); }

void Fdt::prop(const std::string &name, const std::string &s) {
    std::vector<uint8_t> b(s.begin(), s.end());
    b.push_back(0);
    prop_bytes(name, b);
}

void Fdt::prop_strings(const std::string &name, std::initializer_list<const char *> l) {
    std::vector<uint8_t> b;
    for (const char *s : l)
        b.insert(b.end(), s, s + strlen(s) + 1);
    prop_bytes(name, b);
}

void Fdt::prop_u32(const std::string &name, std::initializer_list<uint32_t> cells) {
    std::vector<uint8_t> b;
    for (uint32_t c : cells)
        be32(b, c);
    prop_bytes(name, b);
}

void Fdt::prop_u64(const std::string &name, std::initializer_list<uint64_t> v) {
    std::vector<uint8_t> b;
    for (uint64_t x : v) {
        be32(b, (uint32_t)(x >> 32));
        be32(b, (uint32_t)x);
    }
    prop_bytes(name, b);
}

std::vector<uint8_t> Fdt::finish() {
    if (depth_ != 0)
        die("fdt: %d node(s) left open", depth_);
    u32(kEnd);
    uint32_t off_struct = kHeaderSize + kRsvmapSize;
    uint32_t off_strings = off_struct + (uint32_t)st_.size();
    uint32_t total = off_strings + (uint32_t)strings_.size();
    std::vector<uint8_t> out;
    for (uint32_t v : {kMagic, total, off_struct, off_strings, kHeaderSize, 17u, 16u, 0u,
                       (uint32_t)strings_.size(), (uint32_t)st_.size()})
        be32(out, v);
    out.resize(out.size() + kRsvmapSize, 0); // one terminating (empty) entry
    out.insert(out.end(), st_.begin(), st_.end());
    out.insert(out.end(), strings_.begin(), strings_.end());
    return out;
}

} // namespace hvemu
