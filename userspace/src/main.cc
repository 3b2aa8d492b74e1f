// SPDX-License-Identifier: GPL-2.0
//
// hvio: the userspace side of hvio.ko: the I/O daemon (`hvio run`) and
// its tools.
#include "commands.h"

#include <cstdio>
#include <cstring>

namespace {

void usage(FILE *out) {
    std::fputs(
        "usage: hvio <command> [options]\n"
        "\n"
        "commands:\n"
        "  run CONFIG.json [--socket PATH] [--drain-timeout SECONDS]\n"
        "      Serve the virtio-blk and virtio-net devices of CONFIG.json (hvisor-tool's\n"
        "      virtio_cfg.json) until SIGTERM/SIGINT, then finish the I/O in\n"
        "      flight, remove the devices and zones, and exit 0.  Prints\n"
        "      \"hvio: ready (N devices)\" once the devices answer the guest.\n"
        "      The status socket is PATH (default /run/hvio.sock).  If the daemon\n"
        "      dies without that (SIGKILL, a crash), hvio.ko keeps its devices for\n"
        "      the guest, and the next `hvio run` with the same config takes them\n"
        "      over: the guest sees only delay, nothing completed is lost.\n"
        "      Finishing the I/O takes at most --drain-timeout seconds (default\n"
        "      30; 0: no limit); after that, or at a second SIGTERM/SIGINT, it\n"
        "      exits 1 at once, naming what was still in flight, and leaves the\n"
        "      devices for the next `hvio run` as a crash would.  SIGHUP is\n"
        "      ignored.  When it has exited, nothing holds hvio.ko any more.\n"
        "  stop [CONFIG.json] [--socket PATH]\n"
        "      Stop the running daemon (the process the kernel names as the\n"
        "      socket's owner: SIGTERM, then waits for it to exit, up to its\n"
        "      drain timeout + 10 s), then destroy the devices a dead daemon\n"
        "      left for recovery: those of CONFIG's zones, whose zones are\n"
        "      removed too, or without CONFIG all of them.\n"
        "  status [--socket PATH] [--json]\n"
        "      Show the running daemon's devices: status byte, negotiated\n"
        "      features, device and per-queue counters (kernel and daemon).\n"
        "      --json prints the daemon's report as is.  Exit 1 if no daemon.\n"
        "  info [--device PATH]\n"
        "      Show hvio.ko's version, limits and bridge counters.\n"
        "  help\n"
        "      Show this help.\n"
        "\n"
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
        "    poll_us     0..10000, default 50: after completing requests the kernel\n"
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
        "    poll_us     as for blk, on the transmit queue (default 50)\n"
        "  console devices (port 0) are served on a PTY whose path `hvio run` prints\n"
        "  and `hvio status` shows.  hvio's keys:\n"
        "    pty         absolute path: a symlink to the PTY made at start (an old\n"
        "                one replaced) and removed on an orderly stop\n"
        "    socket      absolute path of a UNIX stream socket instead of a PTY:\n"
        "                one client at a time, the next waits until it leaves\n"
        "    queue_size  power of two 2..1024, default 256 (both queues)\n"
        "  Any other key is an error: a typo must not go unnoticed.\n"
        "\n"
        "exit status: 0 success, 1 error, 2 bad usage or configuration refused\n"
        "(one line \"hvio: CONFIG: key.path: problem\"; nothing was created).\n",
        out);
}

} // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return hvio::kExitUsage;
    }
    const char *cmd = argv[1];
    if (!std::strcmp(cmd, "run"))
        return hvio::cmd_run(argc - 1, argv + 1);
    if (!std::strcmp(cmd, "status"))
        return hvio::cmd_status(argc - 1, argv + 1);
    if (!std::strcmp(cmd, "stop"))
        return hvio::cmd_stop(argc - 1, argv + 1);
    if (!std::strcmp(cmd, "info"))
        return hvio::cmd_info(argc - 1, argv + 1);
    if (!std::strcmp(cmd, "help") || !std::strcmp(cmd, "--help") || !std::strcmp(cmd, "-h")) {
        usage(stdout);
        return hvio::kExitOk;
    }
    std::fprintf(stderr, "hvio: unknown command '%s'\n", cmd);
    usage(stderr);
    return hvio::kExitUsage;
}
