// SPDX-License-Identifier: GPL-2.0
//
// hvemu: a flattened device tree writer (devicetree specification v0.4,
// chapter 5: header, empty memory reservation map, structure block, strings
// block; everything big-endian).  Enough for the zone's tree, nothing more.
#ifndef HVEMU_FDT_H
#define HVEMU_FDT_H

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace hvemu {

class Fdt {
  public:
    void begin(const std::string &name); // "" for the root node
    void end();
    void prop(const std::string &name); // empty (boolean) property
    void prop(const std::string &name, const std::string &s);
    void prop_strings(const std::string &name, std::initializer_list<const char *> l);
    void prop_u32(const std::string &name, std::initializer_list<uint32_t> cells);
    void prop_u64(const std::string &name, std::initializer_list<uint64_t> v); // 2 cells each
    std::vector<uint8_t> finish();

  private:
    void raw(const void *p, size_t n);
    void u32(uint32_t v);
    void pad();
    uint32_t name_off(const std::string &name);
    void prop_bytes(const std::string &name, const std::vector<uint8_t> &b);
    std::vector<uint8_t> st_;
    std::string strings_;
    int depth_ = 0;
};

} // namespace hvemu

#endif
