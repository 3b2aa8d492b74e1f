// SPDX-License-Identifier: GPL-2.0
//
// Subcommands of the hvio tool.  Each returns the process exit status:
// 0 success, 1 error, 2 bad usage.
#pragma once

namespace hvio {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

// hvio info [--device PATH]: module version, limits and bridge counters.
int cmd_info(int argc, char **argv);

} // namespace hvio
