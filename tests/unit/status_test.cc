// SPDX-License-Identifier: GPL-2.0
//
// The status socket (userspace/src/status_socket.h): a report that throws
// does not end the daemon, and the client learns who serves the socket.
#include "status_socket.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <string>
#include <unistd.h>

namespace {

TEST(StatusServer, ReportThatThrowsAnswersAnErrorAndTheThreadGoesOn) {
    const std::string path = "/tmp/hvio-unit-status-" + std::to_string(::getpid()) + ".sock";
    hvio::StatusServer s;
    ASSERT_TRUE(s.open(path).ok());
    std::atomic<int> calls{0};
    ASSERT_TRUE(s.start([&] {
                     if (calls++ == 0) {
                         // What the daemon's report did with a path that is
                         // not UTF-8: nlohmann's dump() throws type_error.
                         nlohmann::json j{{"img", std::string("/tmp/\xff\xfe/disk.img")}};
                         return j.dump();
                     }
                     return std::string("{\"pid\": 1}\n");
                 }).ok());
    auto first = hvio::status_fetch(path);
    ASSERT_TRUE(first.ok());
    auto doc = nlohmann::json::parse(*first, nullptr, false);
    ASSERT_TRUE(doc.is_object()) << *first;
    EXPECT_NE(doc.value("error", std::string()).find("invalid UTF-8"), std::string::npos) << *first;
    pid_t peer = 0;
    auto second = hvio::status_fetch(path, &peer);
    ASSERT_TRUE(second.ok());
    EXPECT_EQ(*second, "{\"pid\": 1}\n");
    // The kernel's word, not the report's.
    EXPECT_EQ(peer, ::getpid());
    s.stop();
    EXPECT_NE(::access(path.c_str(), F_OK), 0);
}

TEST(StatusServer, ErrorReportIsValidJsonWhateverTheMessage) {
    auto doc =
        nlohmann::json::parse(hvio::error_report("a \"quoted\" \\ \xff\n thing"), nullptr, false);
    ASSERT_TRUE(doc.is_object());
    EXPECT_NE(doc["error"].get<std::string>().find("a \"quoted\" \\  thing"), std::string::npos);
}

} // namespace
