// SPDX-License-Identifier: GPL-2.0
//
// getopt_long for the commands: see cli.h.
#include "cli.h"

#include "commands.h"

#include <cstdio>

namespace hvio {

namespace {

constexpr int kOptHelp = 'h';

int usage_error(const char *cmd) {
    std::fprintf(stderr, "(`hvio %s --help` explains)\n", cmd);
    return kExitUsage;
}

} // namespace

std::optional<int> parse_options(int argc, char **argv, const option *longopts,
                                 const std::function<int(int, const char *)> &on,
                                 std::vector<const char *> *operands, size_t max_operands) {
    const char *cmd = argv[0];
    std::vector<option> opts;
    for (const option *o = longopts; o && o->name; o++)
        opts.push_back(*o);
    opts.push_back({"help", no_argument, nullptr, kOptHelp});
    opts.push_back({});

    // ':' first: a missing argument is ':', not '?'; errors are ours.
    opterr = 0;
    optind = 0; // glibc: start over (main may have parsed before)
    for (;;) {
        int c = getopt_long(argc, argv, ":h", opts.data(), nullptr);
        if (c == -1)
            break;
        const char *arg = argv[optind - 1]; // the option getopt_long just read
        if (c == kOptHelp) {
            command_help(cmd, stdout);
            return kExitOk;
        }
        if (c == '?') {
            std::fprintf(stderr, "hvio %s: unknown option '%s'\n", cmd, arg);
            return usage_error(cmd);
        }
        if (c == ':') {
            std::fprintf(stderr, "hvio %s: option '%s' needs a value\n", cmd, arg);
            return usage_error(cmd);
        }
        if (int r = on(c, optarg))
            return r;
    }
    for (int i = optind; i < argc; i++)
        operands->push_back(argv[i]);
    if (operands->size() > max_operands) {
        std::fprintf(stderr, "hvio %s: unexpected argument '%s'\n", cmd, (*operands)[max_operands]);
        return usage_error(cmd);
    }
    return std::nullopt;
}

} // namespace hvio
