// Ceph-style command-line options shared by `serve` and `map`:
//   --id|--user ID | -n/--name TYPE.ID, -k/--keyring PATH,
//   --keyfile PATH ('-' = stdin), --key-fd N, -m/--mon-host MONS,
//   -c/--conf PATH, --connect-timeout SEC, --read-only, --exclusive, --notrim,
//   --encryption-format luks1|luks2, --encryption-passphrase-file PATH,
// plus $CEPH_ARGS (its --id/--user, --name/-n, -m/--mon-host, --keyring/-k
// and -c/--conf apply unless given here).
//
// Contract: control path, main thread. HandleCephOption() also takes the
// short options 'n', 'k', 'm' and 'c', which the caller must put in its own
// getopt optstring ("m:c:n:k:"). A key is only ever read from a file or a
// descriptor, never taken from argv (it would show in `ps`). Errors are one
// line naming the option.
#pragma once

#include <getopt.h>

#include <string>
#include <vector>

#include "common/result.h"
#include "rbd/cluster.h"
#include "rbd/rbd_backend.h"

namespace rbdnbd {

struct CephArgs {
  ClusterOptions cluster;
  RbdOpenOptions image;  // every field but `spec`
  bool name_given = false;
  std::string keyfile;   // read when Finish() runs
  int key_fd = -1;
  std::string passphrase_file;
};

// getopt_long entries (values >= kCephOptionBase) to append to a command's table.
inline constexpr int kCephOptionBase = 2000;
std::vector<option> CephOptionTable();
// Handles one option from CephOptionTable(); false if `code` is not one.
Result<bool> HandleCephOption(int code, const char* arg, CephArgs* out);
// Applies $CEPH_ARGS and reads keys and passphrases. Call once after parsing.
Result<void> FinishCephArgs(CephArgs* args);

void PrintCephOptionsHelp();

}  // namespace rbdnbd
