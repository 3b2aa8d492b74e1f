// SPDX-License-Identifier: GPL-2.0
//
// The hvio program's command line, run as built (HVIO_BIN): every --help
// exits 0, --version names the module's state, hvio check validates and
// creates nothing, options parse getopt_long style, lines carry journald
// priorities under $JOURNAL_STREAM, and doc/hvio.8 (HVIO_MAN_PAGE) lists
// exactly the options each command's --help prints, and every config key.
// hvio status prints what a daemon's report (served here by a
// StatusServer) says.
#include "status_socket.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

struct Ran {
    int status = -1; // exit status, -1: did not exit
    std::string out;
    std::string err;
};

std::string slurp(const std::string &path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

// Runs HVIO_BIN with args; env entries "K=V" are added to the environment.
Ran hvio(const std::vector<std::string> &args, const std::vector<std::string> &env = {}) {
    const std::string base = "/tmp/hvio-unit-cli-" + std::to_string(::getpid());
    const std::string out = base + ".out", err = base + ".err";
    pid_t pid = ::fork();
    if (pid == 0) {
        int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || e < 0 || ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0)
            ::_exit(127);
        std::vector<char *> argv{const_cast<char *>(HVIO_BIN)};
        for (const std::string &a : args)
            argv.push_back(const_cast<char *>(a.c_str()));
        argv.push_back(nullptr);
        ::unsetenv("NOTIFY_SOCKET");
        ::unsetenv("JOURNAL_STREAM");
        for (const std::string &kv : env)
            ::putenv(const_cast<char *>(kv.c_str()));
        ::execv(HVIO_BIN, argv.data());
        ::_exit(127);
    }
    Ran r;
    int st = 0;
    if (pid > 0 && ::waitpid(pid, &st, 0) == pid && WIFEXITED(st))
        r.status = WEXITSTATUS(st);
    r.out = slurp(out);
    r.err = slurp(err);
    ::unlink(out.c_str());
    ::unlink(err.c_str());
    return r;
}

// The commands `hvio --help` lists ("  NAME SYNOPSIS" after "commands:").
std::vector<std::string> commands() {
    std::vector<std::string> names;
    std::istringstream in(hvio({"--help"}).out);
    bool listing = false;
    static const std::regex entry(R"(^  ([a-z]+)( .*)?$)");
    for (std::string line; std::getline(in, line);) {
        if (line == "commands:")
            listing = true;
        else if (listing && line.empty())
            break;
        std::smatch m;
        if (listing && std::regex_match(line, m, entry))
            names.push_back(m[1]);
    }
    return names;
}

// Every "--option" in text.
std::set<std::string> options_in(const std::string &text) {
    std::set<std::string> opts;
    static const std::regex opt(R"(--[a-z][a-z-]*[a-z])");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), opt);
         it != std::sregex_iterator(); ++it)
        opts.insert(it->str());
    return opts;
}

// The man page as text: roff's "\-" a '-', font changes dropped.
std::string man_text() {
    std::string roff = slurp(HVIO_MAN_PAGE), text;
    for (size_t i = 0; i < roff.size(); i++) {
        if (roff[i] == '\\' && i + 1 < roff.size() && roff[i + 1] == '-') {
            text += '-';
            i++;
        } else if (roff[i] == '\\' && i + 2 < roff.size() && roff[i + 1] == 'f') {
            i += 2;
        } else {
            text += roff[i];
        }
    }
    return text;
}

// The man page's subsection of each command (after ".SS hvio NAME ..."
// up to the next .SS or .SH), and "" for all the rest.
std::map<std::string, std::string> man_sections() {
    std::map<std::string, std::string> sec;
    std::istringstream in(man_text());
    std::string cur;
    static const std::regex ss(R"re(^\.SS "?hvio ([a-z]+).*)re");
    for (std::string line; std::getline(in, line);) {
        std::smatch m;
        if (std::regex_match(line, m, ss)) {
            cur = m[1];
            continue; // its synopsis: an option must be described below it
        }
        if (line.rfind(".SH", 0) == 0 || line.rfind(".SS", 0) == 0)
            cur.clear();
        sec[cur] += line + "\n";
    }
    return sec;
}

TEST(Cli, EveryHelpExitsZero) {
    for (const char *h : {"--help", "-h", "help"}) {
        Ran r = hvio({h});
        EXPECT_EQ(r.status, 0) << h;
        EXPECT_NE(r.out.find("usage: hvio"), std::string::npos) << h;
    }
    auto cmds = commands();
    EXPECT_GE(cmds.size(), 6u);
    for (const std::string &c : cmds) {
        for (const char *h : {"--help", "-h"}) {
            Ran r = hvio({c, h});
            EXPECT_EQ(r.status, 0) << c << " " << h << ": " << r.err;
            EXPECT_EQ(r.out.rfind("usage: hvio " + c, 0), 0u) << c << " " << h;
        }
        EXPECT_EQ(hvio({"help", c}).status, 0) << c;
    }
    EXPECT_EQ(hvio({}).status, 2);
    EXPECT_EQ(hvio({"nosuchcommand"}).status, 2);
}

TEST(Cli, VersionNamesTheModuleState) {
    Ran r = hvio({"--version"});
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.out.rfind("hvio " HVIO_VERSION_TEXT " (api version ", 0), 0u) << r.out;
    const bool loaded = ::access("/sys/module/hvio", F_OK) == 0;
    EXPECT_NE(r.out.find(loaded ? "\nhvio.ko: " : "\nhvio.ko: module not loaded\n"),
              std::string::npos)
        << r.out;
}

TEST(Cli, OptionsParseGetoptLongStyle) {
    const std::string sock = "/tmp/hvio-unit-cli-nosock-" + std::to_string(::getpid());
    // No daemon: exit 1 (not 2), in every spelling and order.
    EXPECT_EQ(hvio({"status", "--socket", sock, "--json"}).status, 1);
    EXPECT_EQ(hvio({"status", "--json", "--socket=" + sock}).status, 1);
    Ran r = hvio({"status", "--socket=" + sock});
    EXPECT_NE(r.err.find(sock), std::string::npos) << r.err;
    EXPECT_EQ(hvio({"run", "--bogus", "x.json"}).status, 2);
    EXPECT_EQ(hvio({"run"}).status, 2);
    EXPECT_EQ(hvio({"run", "x.json", "--drain-timeout", "-1"}).status, 2);
    EXPECT_EQ(hvio({"run", "x.json", "--socket"}).status, 2);
    EXPECT_EQ(hvio({"stop", "a.json", "b.json"}).status, 2);
    EXPECT_EQ(hvio({"info", "extra"}).status, 2);
    EXPECT_EQ(hvio({"check"}).status, 2);
    // Options after the operand, and the operand after "--".
    r = hvio({"run", "/nonexistent/x.json", "--socket", sock, "--drain-timeout", "5"});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("/nonexistent/x.json"), std::string::npos) << r.err;
    r = hvio({"check", "--", "/nonexistent/y.json"});
    EXPECT_NE(r.err.find("/nonexistent/y.json"), std::string::npos) << r.err;
}

// hvio status, as text: a direct device's fallbacks by reason (only the
// reasons that occurred), the total alone when there were none, and no
// line for a device without O_DIRECT.
TEST(Cli, StatusShowsDirectFallbacksByReason) {
    auto blk = [](int n, bool direct, int misaligned, int refused) {
        return R"({"where": "zones[0].devices[)" + std::to_string(n) +
               R"(]", "zone": 0, "type": "blk", "mmio_base": 1, "irq": 2, "img": "/tmp/d.img",)"
               R"( "size": 1048576, "readonly": false, "direct": )" +
               (direct ? "true" : "false") +
               R"(, "buffered_fallback": false, "direct_fallbacks": {"pfnmap": 0, "misaligned": )" +
               std::to_string(misaligned) + R"(, "no_direct_fs": 0, "refused": )" +
               std::to_string(refused) + R"(, "total": )" + std::to_string(misaligned + refused) +
               R"(}, "ram_modes": ["pages"], "blk_size": 512, "serial": ""})";
    };
    const std::string report = R"({"pid": 1, "config": "t.json", "uptime_s": 5, "devices": [)" +
                               blk(0, true, 3, 2) + ", " + blk(1, true, 0, 0) + ", " +
                               blk(2, false, 0, 0) + "]}\n";
    const std::string sock = "/tmp/hvio-unit-cli-status-" + std::to_string(::getpid()) + ".sock";
    hvio::StatusServer server;
    ASSERT_TRUE(server.open(sock).ok());
    ASSERT_TRUE(server.start([&] { return report; }).ok());
    Ran r = hvio({"status", "--socket", sock});
    server.stop();
    EXPECT_EQ(r.status, 0) << r.err;
    std::vector<std::string> direct;
    std::istringstream out(r.out);
    for (std::string line; std::getline(out, line);)
        if (line.rfind("  direct ", 0) == 0)
            direct.push_back(line);
    EXPECT_EQ(direct, (std::vector<std::string>{
                          "  direct   zone RAM mapped as pages; 5 I/Os fell back to buffered: "
                          "misaligned 3 refused 2",
                          "  direct   zone RAM mapped as pages; 0 I/Os fell back to buffered"}))
        << r.out;
}

class CheckTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/hvio-unit-check-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        std::ofstream(dir_ + "/disk.img") << std::string(4096, '\0');
    }
    void TearDown() override {
        std::string cmd = "rm -rf '" + dir_ + "'";
        EXPECT_EQ(0, std::system(cmd.c_str()));
    }
    // A zone with a disk and a console whose PTY link is dir_ + pty,
    // extra added to the disk's keys.
    std::string config(const std::string &extra = "", const std::string &pty = "/console") {
        const std::string path = dir_ + "/zone.json";
        std::ofstream(path)
            << R"({"zones": [{"id": 1, "memory_region": [{"zone0_ipa": "0x50000000",)"
            << R"( "zonex_ipa": "0x50000000", "size": "0x1000000"}], "devices": [)"
            << R"({"type": "blk", "addr": "0xa003c00", "len": "0x200", "irq": 78,)"
            << R"( "img": "disk.img", "status": "enable")" << extra << "},"
            << R"({"type": "console", "addr": "0xa003e00", "len": "0x200", "irq": 79,)"
            << R"( "pty": ")" << dir_ << pty << R"(", "status": "enable"}]}]})";
        return path;
    }
    std::string dir_;
};

TEST_F(CheckTest, GoodConfigExitsZeroAndCreatesNothing) {
    Ran r = hvio({"check", config()});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find(": ok (serving 2 devices in 1 zone"), std::string::npos) << r.out;
    struct stat st;
    EXPECT_NE(0, ::lstat((dir_ + "/console").c_str(), &st)); // no PTY link made
}

TEST_F(CheckTest, PtyLinkInAMissingDirectoryPassesAsRunMakesIt) {
    Ran r = hvio({"check", config("", "/run/hvio/console")});
    EXPECT_EQ(r.status, 0) << r.err;
    struct stat st;
    EXPECT_NE(0, ::lstat((dir_ + "/run").c_str(), &st)); // nothing made
    // Under a file, run() could not make it.
    std::ofstream(dir_ + "/file") << "x";
    r = hvio({"check", config("", "/file/hvio/console")});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("zones[0].devices[1].pty"), std::string::npos) << r.err;
}

TEST_F(CheckTest, RefusedConfigExitsTwoWithOneLine) {
    Ran r = hvio({"check", config(R"(, "queus": 2)")});
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(r.err, "hvio: " + dir_ + "/zone.json: zones[0].devices[0].queus: unknown key " +
                         "(known here: type, status, addr, len, irq, img, queues, queue_size, " +
                         "readonly, direct, serial, discard, poll_us)\n");
    ASSERT_EQ(0, ::unlink((dir_ + "/disk.img").c_str()));
    r = hvio({"check", config()});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("zones[0].devices[0].img"), std::string::npos) << r.err;
}

TEST_F(CheckTest, JournalStreamPrefixesPriorities) {
    const std::string cfg = config(R"(, "queus": 2)");
    Ran plain = hvio({"check", cfg});
    ASSERT_EQ(plain.err.rfind("hvio: ", 0), 0u) << plain.err;
    // $JOURNAL_STREAM naming the file stderr goes to, as systemd sets it
    // for a socket: hvio() writes stderr to base + ".err".
    const std::string err = "/tmp/hvio-unit-cli-" + std::to_string(::getpid()) + ".err";
    ::close(::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600));
    struct stat st;
    ASSERT_EQ(0, ::stat(err.c_str(), &st));
    const std::string js =
        "JOURNAL_STREAM=" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    // O_TRUNC keeps the inode: the child's stderr is the same file.
    Ran j = hvio({"check", cfg}, {js});
    EXPECT_EQ(j.status, 2);
    EXPECT_EQ(j.err, "<3>" + plain.err);
    // Another stream's numbers: no prefix.
    Ran other = hvio({"check", cfg}, {"JOURNAL_STREAM=1:1"});
    EXPECT_EQ(other.err, plain.err);
}

TEST(ManPage, ListsExactlyTheOptionsOfEachCommandsHelp) {
    auto sec = man_sections();
    std::set<std::string> all_help = options_in(hvio({"--help"}).out);
    for (const std::string &c : commands()) {
        ASSERT_TRUE(sec.count(c)) << "doc/hvio.8 has no .SS for hvio " << c;
        auto help = options_in(hvio({c, "--help"}).out);
        auto man = options_in(sec[c]);
        EXPECT_EQ(help, man) << "hvio " << c << " --help vs doc/hvio.8";
        all_help.insert(help.begin(), help.end());
    }
    std::set<std::string> man_cmds, help_cmds;
    for (const auto &[name, text] : sec)
        if (!name.empty())
            man_cmds.insert(name);
    for (const std::string &c : commands())
        help_cmds.insert(c);
    EXPECT_EQ(man_cmds, help_cmds) << "commands of doc/hvio.8 vs hvio --help";
    EXPECT_EQ(options_in(man_text()), all_help) << "options of doc/hvio.8 vs every --help";
}

TEST(ManPage, NamesEveryConfigKey) {
    // The keys hvio run --help lists ("    key   text").
    std::istringstream in(hvio({"run", "--help"}).out);
    static const std::regex key(R"(^    ([a-z_0-9]+)  +\S.*)");
    const std::string man = man_text();
    int n = 0;
    for (std::string line; std::getline(in, line);) {
        std::smatch m;
        if (!std::regex_match(line, m, key))
            continue;
        n++;
        EXPECT_NE(man.find(".B " + m[1].str() + "\n"), std::string::npos)
            << m[1] << " is not a .B entry of doc/hvio.8";
    }
    EXPECT_GE(n, 15);
    for (const char *k : {"zones", "id", "memory_region", "zone0_ipa", "zonex_ipa", "size",
                          "devices", "type", "addr", "len", "irq", "img", "tap", "mac", "status"})
        EXPECT_NE(man.find(".B " + std::string(k) + "\n"), std::string::npos) << k;
}

} // namespace
