// SPDX-License-Identifier: GPL-2.0
//
// Subcommands of the hvio tool.  Each returns the process exit status:
// 0 success, 1 error, 2 bad usage or a configuration refused.
#pragma once

namespace hvio {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

// hvio info [--device PATH]: module version, limits and bridge counters.
int cmd_info(int argc, char **argv);

// hvio run CONFIG.json [--socket PATH]: the I/O daemon.
int cmd_run(int argc, char **argv);

// hvio check CONFIG.json: what hvio run checks before it creates anything.
int cmd_check(int argc, char **argv);

// hvio status [--socket PATH] [--json]: the running daemon's report.
int cmd_status(int argc, char **argv);

// hvio stop [CONFIG.json] [--socket PATH]: stop the daemon, destroy the
// devices a dead daemon left for recovery.
int cmd_stop(int argc, char **argv);

} // namespace hvio
