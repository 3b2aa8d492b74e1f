// SPDX-License-Identifier: GPL-2.0
//
// `hvio check`: what can be known of the backends `hvio run` would make
// without making them.  The config parser and the image opens check the
// rest (config.h, blk.h).
#pragma once

#include "config.h"

#include <string>

namespace hvio {

// Checks each net device's TAP (an existing interface must be a TAP;
// otherwise the TUN device must open, as creating it needs) and each
// console's socket and PTY link path (the directory exists; a socket
// path names nothing but an old socket, a link path no directory).
// Returns 0, or -errno with the key path in *where and the problem in
// *why.
int check_backends(const Config &cfg, std::string *where, std::string *why);

} // namespace hvio
