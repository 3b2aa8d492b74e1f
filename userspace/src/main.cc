// SPDX-License-Identifier: GPL-2.0
//
// hvio: the userspace side of hvio.ko.  For now a tool with one
// subcommand, `hvio info`; the I/O daemon comes next.
#include "commands.h"

#include <cstdio>
#include <cstring>

namespace {

void usage(FILE *out) {
    std::fputs("usage: hvio <command> [options]\n"
               "\n"
               "commands:\n"
               "  info [--device PATH]   show hvio.ko's version, limits and counters\n"
               "  help                   show this help\n",
               out);
}

} // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return hvio::kExitUsage;
    }
    const char *cmd = argv[1];
    if (!std::strcmp(cmd, "info"))
        return hvio::cmd_info(argc - 1, argv + 1);
    if (!std::strcmp(cmd, "help") || !std::strcmp(cmd, "--help") || !std::strcmp(cmd, "-h")) {
        usage(stdout);
        return hvio::kExitOk;
    }
    std::fprintf(stderr, "hvio: unknown command '%s'\n", cmd);
    usage(stderr);
    return hvio::kExitUsage;
}
