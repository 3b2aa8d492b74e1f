// SPDX-License-Identifier: GPL-2.0
//
// hvio: the userspace side of hvio.ko: the I/O daemon (`hvio run`) and
// its tools.  The help texts live here, one per command; doc/hvio.8 says
// the same at length (tests/unit/manpage_test.cc keeps their options
// equal).
#include "cli.h"
#include "commands.h"
#include "control.h"
#include "log.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unistd.h>
#include <vector>

#ifndef HVIO_VERSION
#define HVIO_VERSION "unknown"
#endif

namespace hvio {

namespace {

struct Command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *synopsis; // after "hvio NAME"
    const char *text;     // what it does, each line indented by 6
    bool config_keys;     // its help shows CONFIG.json's keys
};

int cmd_help(int argc, char **argv);

const Command kCommands[] = {
    {"run", cmd_run, "CONFIG.json [--socket PATH] [--drain-timeout SECONDS]",
     "      Serve the virtio-blk, virtio-net and virtio-console devices of\n"
     "      CONFIG.json (hvisor-tool's virtio_cfg.json) until SIGTERM/SIGINT, then\n"
     "      finish the I/O in flight, remove the devices and zones, and exit 0.\n"
     "      Prints \"hvio: ready (N devices)\" once the devices answer the guest\n"
     "      (and tells systemd READY=1 when $NOTIFY_SOCKET is set).  The status\n"
     "      socket is PATH (default /run/hvio.sock).  If the daemon dies without\n"
     "      that (SIGKILL, a crash), hvio.ko keeps its devices for the guest,\n"
     "      and the next `hvio run` with the same config takes them over: the\n"
     "      guest sees only delay, nothing completed is lost.  Finishing the\n"
     "      I/O takes at most --drain-timeout seconds (default 30; 0: no\n"
     "      limit); after that, or at a second SIGTERM/SIGINT, it exits 1 at\n"
     "      once, naming what was still in flight, and leaves the devices for\n"
     "      the next `hvio run` as a crash would.  SIGHUP is ignored.  When it\n"
     "      has exited, nothing holds hvio.ko any more.\n",
     true},
    {"check", cmd_check, "CONFIG.json",
     "      Validate CONFIG.json as `hvio run` does before it creates anything\n"
     "      (keys, values, overlaps, images opened as run opens them, TAP names\n"
     "      and console paths, hvio.ko's limits if it is loaded), create\n"
     "      nothing, and exit 0 (\"hvio: CONFIG.json: ok ...\") or 2 with the\n"
     "      one-line error.\n",
     true},
    {"stop", cmd_stop, "[CONFIG.json] [--socket PATH]",
     "      Stop the running daemon (the process the kernel names as the\n"
     "      socket's owner: SIGTERM, then waits for it to exit, up to its\n"
     "      drain timeout + 10 s), then destroy the devices a dead daemon\n"
     "      left for recovery: those of CONFIG's zones, whose zones are\n"
     "      removed too, or without CONFIG all of them.\n",
     false},
    {"status", cmd_status, "[--socket PATH] [--json]",
     "      Show the running daemon's devices: status byte, negotiated\n"
     "      features, device and per-queue counters (kernel and daemon).\n"
     "      --json prints the daemon's report as is.  Exit 1 if no daemon.\n",
     false},
    {"info", cmd_info, "[--device PATH]",
     "      Show hvio.ko's version, limits and bridge counters (PATH: the\n"
     "      control device, default /dev/hvio).\n",
     false},
    {"help", cmd_help, "[COMMAND]", "      Show this help, or COMMAND's.\n", false},
};

const char kConfigKeys[] =
    "CONFIG.json (hvisor-tool's format; numbers as integers or \"0x..\" strings):\n"
    "  {\"zones\": [{\"id\": 1,\n"
    "    \"memory_region\": [{\"zone0_ipa\": \"0x50000000\", \"zonex_ipa\": \"0x50000000\",\n"
    "                       \"size\": \"0x30000000\"}],\n"
    "    \"devices\": [{\"type\": \"blk\", \"addr\": \"0xa003c00\", \"len\": \"0x200\",\n"
    "                 \"irq\": 78, \"img\": \"rootfs2.ext4\", \"status\": \"enable\"},\n"
    "                {\"type\": \"net\", \"addr\": \"0xa003600\", \"len\": \"0x200\", \"irq\": "
    "75,\n"
    "                 \"tap\": \"tap0\", \"mac\": [\"0x00\", \"0x16\", \"0x3e\", \"0x10\", "
    "\"0x10\",\n"
    "                 \"0x10\"], \"status\": \"enable\"}]}]}\n"
    "  Devices with \"status\": \"disable\" are skipped; gpu and scmi devices\n"
    "  are not supported yet and skipped with a warning.  img is a file or\n"
    "  block device, relative to the config file's directory.\n"
    "  hvio's keys for blk devices:\n"
    "    queues      1..16, default 1 (one thread and io_uring each)\n"
    "    queue_size  power of two 2..1024, default 256\n"
    "    readonly    true: open read-only, offer VIRTIO_BLK_F_RO\n"
    "    direct      true: O_DIRECT (bypass root Linux's page cache) where\n"
    "                hvio.ko maps zone RAM with struct pages; other I/O goes\n"
    "                buffered, counted in hvio status (direct_fallbacks)\n"
    "    serial      up to 20 bytes, default the image's file name\n"
    "    discard     false: do not offer DISCARD (default true)\n"
    "    poll_us     0..10000, default 200: after completing requests the kernel\n"
    "                polls the queue this long for the guest's next ones, which\n"
    "                then need no kick; 0 turns it off\n"
    "  net devices: tap is the TAP interface (<= 15 bytes; created if it does\n"
    "  not exist, its up/down state and addresses are left to you; the guest's\n"
    "  link follows its UP and carrier), mac six bytes, unicast (default\n"
    "  02:48:56:<zone id>:<index>).  hvio's keys:\n"
    "    mtu         68..65535, default 1500 (told to the guest; set the TAP's too)\n"
    "    offloads    false: offer no checksum/TSO/ECN/UFO offloads (default true)\n"
    "    mrg_rxbuf   false: do not offer mergeable RX buffers (default true)\n"
    "    queue_size  power of two 2..1024, default 256 (both queues)\n"
    "    poll_us     as for blk, on the transmit queue (default 200)\n"
    "  console devices (port 0) are served on a PTY whose path `hvio run` prints\n"
    "  and `hvio status` shows.  hvio's keys:\n"
    "    pty         absolute path: a symlink to the PTY made at start (missing\n"
    "                directories made, an old link replaced) and removed on an\n"
    "                orderly stop\n"
    "    socket      absolute path of a UNIX stream socket instead of a PTY:\n"
    "                one client at a time, the next waits until it leaves\n"
    "    queue_size  power of two 2..1024, default 256 (both queues)\n"
    "  Any other key is an error: a typo must not go unnoticed.\n";

const char kExitStatus[] = "exit status: 0 success, 1 error, 2 bad usage or configuration refused\n"
                           "(one line \"hvio: CONFIG: key.path: problem\"; nothing was created).\n";

const Command *find_command(const char *name) {
    for (const Command &c : kCommands)
        if (!std::strcmp(c.name, name))
            return &c;
    return nullptr;
}

void print_entry(const Command &c, FILE *out) {
    std::fprintf(out, "  %s %s\n%s", c.name, c.synopsis, c.text);
}

// hvio help [COMMAND]
int cmd_help(int argc, char **argv) {
    std::vector<const char *> operands;
    if (auto r = parse_options(
            argc, argv, nullptr, [](int, const char *) { return 0; }, &operands, 1))
        return *r;
    if (!operands.empty() && !find_command(operands[0])) {
        std::fprintf(stderr, "hvio: unknown command '%s'\n", operands[0]);
        return kExitUsage;
    }
    command_help(operands.empty() ? nullptr : operands[0], stdout);
    return kExitOk;
}

// hvio --version: this program's version and API, and the loaded module's.
int print_version() {
    std::printf("hvio %s (api version %u)\n", HVIO_VERSION, HVIO_API_VERSION);
    auto ctl = Control::open();
    if (ctl) {
        auto v = ctl->version();
        if (v)
            std::printf("hvio.ko: api version %u, provider %s\n", v->api_version,
                        provider_name(v->provider));
        else
            std::printf("hvio.ko: loaded (HVIO_GET_VERSION: %s)\n", v.message().c_str());
    } else if (ctl.error() == ENOENT && ::access("/sys/module/hvio", F_OK) < 0) {
        std::printf("hvio.ko: module not loaded\n");
    } else {
        std::printf("hvio.ko: loaded (api version unknown: %s: %s)\n", kControlPath,
                    ctl.message().c_str());
    }
    return kExitOk;
}

} // namespace

void command_help(const char *cmd, FILE *out) {
    const Command *c = cmd ? find_command(cmd) : nullptr;
    if (c) {
        std::fprintf(out, "usage: hvio %s %s\n\n%s", c->name, c->synopsis, c->text);
        if (c->config_keys)
            std::fprintf(out, "\n%s", kConfigKeys);
        std::fprintf(out, "\n%s", kExitStatus);
        return;
    }
    std::fputs("usage: hvio <command> [options]\n"
               "       hvio --version | --help\n"
               "\n"
               "  --version\n"
               "      Show this program's version and API version, and the loaded\n"
               "      hvio.ko's API version (or \"module not loaded\").\n"
               "  --help, -h\n"
               "      Show this help; `hvio COMMAND --help` shows COMMAND's.\n"
               "\n"
               "commands:\n",
               out);
    for (const Command &e : kCommands)
        print_entry(e, out);
    std::fprintf(out, "\n%s\n%s", kConfigKeys, kExitStatus);
}

} // namespace hvio

int main(int argc, char **argv) {
    hvio::log_init();
    if (argc < 2) {
        hvio::command_help(nullptr, stderr);
        return hvio::kExitUsage;
    }
    const char *cmd = argv[1];
    if (!std::strcmp(cmd, "--help") || !std::strcmp(cmd, "-h")) {
        hvio::command_help(nullptr, stdout);
        return hvio::kExitOk;
    }
    if (!std::strcmp(cmd, "--version"))
        return hvio::print_version();
    if (const hvio::Command *c = hvio::find_command(cmd))
        return c->fn(argc - 1, argv + 1);
    std::fprintf(stderr, "hvio: unknown command '%s' (`hvio --help` lists them)\n", cmd);
    return hvio::kExitUsage;
}
