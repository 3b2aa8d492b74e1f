// SPDX-License-Identifier: GPL-2.0
//
// Option parsing shared by the commands: getopt_long over a command's
// arguments (argv[0] is the command's name), so options and operands may
// come in any order, "--opt=value" works as "--opt value", and "--"
// ends the options.  Every command takes --help (-h): its help on stdout,
// exit 0.
#pragma once

#include <cstdio>
#include <functional>
#include <getopt.h>
#include <optional>
#include <vector>

namespace hvio {

// Prints `hvio CMD --help` (cmd nullptr: `hvio --help`) to out.
void command_help(const char *cmd, FILE *out);

// Calls on(val, optarg) for each option of longopts (terminated by a zero
// entry; "help" is added) and collects the operands.  Returns nullopt to
// go on, or the exit status to return at once: kExitOk after --help,
// kExitUsage (with a line and the synopsis on stderr) for an unknown
// option, a missing argument, more than max_operands operands, or an
// error on() returned.
std::optional<int> parse_options(int argc, char **argv, const option *longopts,
                                 const std::function<int(int, const char *)> &on,
                                 std::vector<const char *> *operands, size_t max_operands);

} // namespace hvio
