// rbd-nbdd: a userspace block gateway. main() only dispatches subcommands.
#include <cstdio>
#include <cstring>
#include <string_view>

#include "control/client_command.h"
#include "control/daemon_command.h"
#include "control/serve_command.h"

namespace {

void PrintUsage() {
  std::printf(R"(usage: rbd-nbdd COMMAND [options]

Commands:
  serve        export memory, file or RBD backends over NBD sockets (TCP/Unix),
               and optionally as a ublk block device /dev/ublkbN (--ublk)
  daemon       serve RBD images as /dev/nbdX for this node (one process for all)
  map          map an image through the daemon; prints /dev/nbdX
  unmap        unmap a device
  list-mapped  list mapped devices
  attach       take back a device the kernel kept after a daemon stopped
  detach       stop serving a device but leave it in the kernel
  status       the daemon's state
  help      show this help, or `rbd-nbdd help COMMAND`
  version   print the version

Run `rbd-nbdd COMMAND --help` for the options of a command.
)");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    PrintUsage();
    return 2;
  }
  std::string_view cmd = argv[1];
  if (cmd == "serve") return rbdnbd::RunServe(argc - 1, argv + 1);
  if (cmd == "daemon") return rbdnbd::RunDaemon(argc - 1, argv + 1);
  if (cmd == "map" || cmd == "unmap" || cmd == "list-mapped" || cmd == "attach" || cmd == "detach" ||
      cmd == "status") {
    return rbdnbd::RunClientCommand(argv[1], argc - 1, argv + 1);
  }
  if (cmd == "version" || cmd == "--version") {
    std::printf("rbd-nbdd %s\n", RBDNBD_VERSION);
    return 0;
  }
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    if (argc > 2 && std::strcmp(argv[2], "serve") == 0) {
      rbdnbd::PrintServeHelp();
    } else if (argc > 2 && std::strcmp(argv[2], "daemon") == 0) {
      rbdnbd::PrintDaemonHelp();
    } else if (argc > 2) {
      rbdnbd::PrintClientHelp();
    } else {
      PrintUsage();
    }
    return 0;
  }
  std::fprintf(stderr, "rbd-nbdd: unknown command '%s' (see rbd-nbdd help)\n", argv[1]);
  return 2;
}
