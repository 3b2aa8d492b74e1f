// SPDX-License-Identifier: GPL-2.0
//
// journald priorities (userspace/lib/log.h): with $JOURNAL_STREAM naming
// the stream, each line starts with <3>, <4> or <6>; otherwise lines stay
// as they are.
#include "log.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace {

std::string dev_ino(int fd) {
    struct stat st;
    EXPECT_EQ(0, ::fstat(fd, &st));
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

TEST(Log, JournalStreamMustNameTheFd) {
    FILE *f = std::tmpfile();
    ASSERT_NE(f, nullptr);
    FILE *g = std::tmpfile();
    ASSERT_NE(g, nullptr);
    const std::string mine = dev_ino(fileno(f));
    EXPECT_TRUE(hvio::journal_stream_matches(fileno(f), mine.c_str()));
    EXPECT_FALSE(hvio::journal_stream_matches(fileno(g), mine.c_str()));
    EXPECT_FALSE(hvio::journal_stream_matches(fileno(f), nullptr));
    EXPECT_FALSE(hvio::journal_stream_matches(fileno(f), ""));
    EXPECT_FALSE(hvio::journal_stream_matches(fileno(f), (mine + "x").c_str()));
    EXPECT_FALSE(hvio::journal_stream_matches(fileno(f), "1:2"));
    std::fclose(f);
    std::fclose(g);
}

TEST(Log, LinePriorities) {
    using hvio::LogLevel;
    EXPECT_EQ(hvio::journal_line("hvio: x: HVIO_DEV_CREATE: EBUSY", LogLevel::kError),
              "<3>hvio: x: HVIO_DEV_CREATE: EBUSY");
    EXPECT_EQ(hvio::journal_line("hvio: c.json: warning: 7 bytes", LogLevel::kError),
              "<4>hvio: c.json: warning: 7 bytes");
    EXPECT_EQ(hvio::journal_line("hvio: ready (3 devices)", LogLevel::kInfo),
              "<6>hvio: ready (3 devices)");
    EXPECT_EQ(hvio::journal_line("<6>hvio: stopped", LogLevel::kError), "<6>hvio: stopped");
    EXPECT_EQ(hvio::journal_line("<9>x", LogLevel::kError), "<3><9>x");
}

TEST(Log, StreamPrefixesEachCompleteLine) {
    FILE *out = std::tmpfile();
    ASSERT_NE(out, nullptr);
    FILE *j = hvio::journal_fopen(fileno(out), hvio::LogLevel::kError);
    ASSERT_NE(j, nullptr);
    std::fputs("hvio: first\nhvio: a warning: ", j);
    std::fprintf(j, "%d split\n<6>hvio: info\n", 2);
    std::fputs("hvio: last, no newline", j);
    std::fclose(j);
    std::rewind(out);
    std::string got;
    for (int c; (c = std::fgetc(out)) != EOF;)
        got += static_cast<char>(c);
    EXPECT_EQ(got, "<3>hvio: first\n<4>hvio: a warning: 2 split\n<6>hvio: info\n"
                   "<3>hvio: last, no newline\n");
    std::fclose(out);
}

} // namespace
