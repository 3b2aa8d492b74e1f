// SPDX-License-Identifier: GPL-2.0
//
// The console's PTY (userspace/lib/console_queue.h): the stable symlink
// ("pty": "/run/hvio/zone1-console") is made even where its directory
// does not exist yet, as on a freshly booted /run.
#include "console_queue.h"

#include <gtest/gtest.h>

#include <climits>
#include <cstdlib>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace {

std::string target_of(const std::string &link) {
    char buf[PATH_MAX];
    ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

TEST(ConsolePty, LinkInMissingDirectoriesIsMade) {
    char tmpl[] = "/tmp/hvio-unit-pty-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const std::string top = tmpl;
    const std::string link = top + "/run/hvio/zone1-console";
    hvio::ConsolePty pty;
    std::string why;
    ASSERT_EQ(pty.open(link, &why), 0) << why;
    EXPECT_EQ(pty.link, link);
    EXPECT_EQ(target_of(link), pty.path);
    struct stat st;
    ASSERT_EQ(::stat((top + "/run/hvio").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0755u);
    // Made again over the old link, as after a restart.
    hvio::ConsolePty again;
    ASSERT_EQ(again.open(link, &why), 0) << why;
    EXPECT_EQ(target_of(link), again.path);
    again.remove_link();
    EXPECT_EQ(::access(link.c_str(), F_OK), -1);
    pty.remove_link();
    ::rmdir((top + "/run/hvio").c_str());
    ::rmdir((top + "/run").c_str());
    ::rmdir(top.c_str());
}

TEST(ConsolePty, LinkUnderAFileFailsWithItsReason) {
    char tmpl[] = "/tmp/hvio-unit-pty-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const std::string top = tmpl;
    const std::string file = top + "/file";
    FILE *f = std::fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fclose(f);
    hvio::ConsolePty pty;
    std::string why;
    EXPECT_EQ(pty.open(file + "/zone1-console", &why), -ENOTDIR);
    EXPECT_NE(why.find(file), std::string::npos) << why;
    EXPECT_TRUE(pty.link.empty());
    ::unlink(file.c_str());
    ::rmdir(top.c_str());
}

} // namespace
