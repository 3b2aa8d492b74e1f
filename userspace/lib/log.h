// SPDX-License-Identifier: GPL-2.0
//
// Log lines for journald.  The daemon writes its messages as plain lines
// on stderr ("hvio: ..."), and its "ready" line on stdout.  Started by
// systemd with that stream connected to the journal, it is told so by
// $JOURNAL_STREAM ("DEVICE:INODE" of the stream, systemd.exec(5)); then
// log_init() puts a line filter on that stdio stream which starts every
// line with its syslog priority as sd-daemon(3) describes: "<3>" for an
// error, "<4>" for a warning, "<6>" for information.  Without it (a
// terminal, a pipe, a file) the lines stay exactly as they are.
//
// Which priority: a line that already starts with one keeps it (log()
// writes one); otherwise a line with "warning" in it is a warning, and any
// other line an error on stderr, information on stdout.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace hvio {

enum class LogLevel { kError = 3, kWarning = 4, kInfo = 6 };

// Whether fd is the stream $JOURNAL_STREAM names (journal_stream: its
// value, nullptr when unset).
bool journal_stream_matches(int fd, const char *journal_stream);

// One line (without its '\n') as it goes to the journal: with a priority
// prefix, fallback used when the line has none and says no "warning".
std::string journal_line(std::string_view line, LogLevel fallback);

// A stdio stream that writes each complete line to fd as journal_line()
// makes it (line buffered; a last partial line goes at fclose).  nullptr
// with errno on failure.
FILE *journal_fopen(int fd, LogLevel fallback);

// Replaces stderr and stdout by journal_fopen() streams when
// $JOURNAL_STREAM names them.  Call once, first thing, before any thread.
void log_init();

// Whether stderr goes to the journal (log_init() replaced it).
bool log_journal();

// One line on stderr: "hvio: " and fmt, with level's prefix under journald.
void log_line(LogLevel level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

} // namespace hvio
