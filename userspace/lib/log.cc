// SPDX-License-Identifier: GPL-2.0
//
// journald priority prefixes on stderr and stdout: see log.h.
#include "log.h"

#include <cerrno>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <sys/stat.h>
#include <unistd.h>

namespace hvio {

namespace {

bool g_journal = false; // stderr was replaced by log_init()

// A line starts with "<N>", N a syslog priority 0..7.
bool has_prefix(std::string_view line) {
    return line.size() >= 3 && line[0] == '<' && line[1] >= '0' && line[1] <= '7' && line[2] == '>';
}

void write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; // the journal went away: nowhere to say so
        p += w;
        n -= static_cast<size_t>(w);
    }
}

// The state behind a journal_fopen() stream: the line not yet ended.
struct JournalCookie {
    int fd;
    LogLevel fallback;
    std::string partial;
};

void emit(JournalCookie &c, std::string_view line) {
    std::string out = journal_line(line, c.fallback);
    out += '\n';
    write_all(c.fd, out.data(), out.size());
}

ssize_t cookie_write(void *cookie, const char *buf, size_t size) {
    auto &c = *static_cast<JournalCookie *>(cookie);
    std::string_view in(buf, size);
    for (size_t nl; (nl = in.find('\n')) != std::string_view::npos; in.remove_prefix(nl + 1)) {
        if (c.partial.empty()) {
            emit(c, in.substr(0, nl));
        } else {
            c.partial.append(in.substr(0, nl));
            emit(c, c.partial);
            c.partial.clear();
        }
    }
    c.partial.append(in);
    return static_cast<ssize_t>(size);
}

int cookie_close(void *cookie) {
    auto *c = static_cast<JournalCookie *>(cookie);
    if (!c->partial.empty())
        emit(*c, c->partial);
    delete c;
    return 0;
}

} // namespace

bool journal_stream_matches(int fd, const char *journal_stream) {
    if (!journal_stream)
        return false;
    unsigned long long dev, ino;
    int end = 0;
    if (std::sscanf(journal_stream, "%llu:%llu%n", &dev, &ino, &end) != 2 || journal_stream[end])
        return false;
    struct stat st;
    if (::fstat(fd, &st) < 0)
        return false;
    return st.st_dev == dev && st.st_ino == ino;
}

std::string journal_line(std::string_view line, LogLevel fallback) {
    if (has_prefix(line))
        return std::string(line);
    LogLevel l = line.find("warning") != std::string_view::npos ? LogLevel::kWarning : fallback;
    std::string out = "<" + std::to_string(static_cast<int>(l)) + ">";
    out.append(line);
    return out;
}

FILE *journal_fopen(int fd, LogLevel fallback) {
    auto *c = new JournalCookie{fd, fallback, {}};
    cookie_io_functions_t io{};
    io.write = cookie_write;
    io.close = cookie_close;
    FILE *f = ::fopencookie(c, "w", io);
    if (!f) {
        delete c;
        return nullptr;
    }
    std::setvbuf(f, nullptr, _IOLBF, 0);
    return f;
}

void log_init() {
    const char *js = std::getenv("JOURNAL_STREAM");
    if (journal_stream_matches(STDERR_FILENO, js)) {
        if (FILE *f = journal_fopen(STDERR_FILENO, LogLevel::kError)) {
            std::fflush(stderr);
            stderr = f;
            g_journal = true;
        }
    }
    if (journal_stream_matches(STDOUT_FILENO, js)) {
        if (FILE *f = journal_fopen(STDOUT_FILENO, LogLevel::kInfo)) {
            std::fflush(stdout);
            stdout = f;
        }
    }
}

bool log_journal() { return g_journal; }

void log_line(LogLevel level, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (g_journal)
        std::fprintf(stderr, "<%d>hvio: %s\n", static_cast<int>(level), msg);
    else
        std::fprintf(stderr, "hvio: %s\n", msg);
}

} // namespace hvio
