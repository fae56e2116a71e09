#include "csi/fs_tools.h"

#include <chrono>

#include <spdlog/spdlog.h>

#include "csi/command_runner.h"
#include "csi/csi_error.h"

namespace rbdnbd::csi {

namespace {

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  if (s.size() > 2000) s = "..." + s.substr(s.size() - 2000);
  return s;
}

// Runs argv; a non-zero exit is an error with the output attached.
Result<CommandResult> Run(const std::vector<std::string>& argv) {
  auto start = std::chrono::steady_clock::now();
  auto r = RunCommand(argv);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  if (!r) return Unexpected(r.error());
  spdlog::debug("{} {} -> exit {} ({} ms)", argv[0], argv.back(), r->exit_code, ms);
  return r;
}

class SystemFsTools final : public FsTools {
 public:
  Result<DeviceProbe> Probe(const std::string& device) override {
    auto r = Run({"blkid", "-p", "-s", "TYPE", "-s", "PTTYPE", "-o", "export", device});
    if (!r) return Unexpected(r.error());
    return ParseBlkidExport(r->exit_code, r->output);
  }

  Result<void> MakeFs(const std::string& device, const std::string& fs_type,
                      const std::vector<std::string>& options) override {
    std::vector<std::string> argv;
    if (fs_type == "ext4") {
      argv = {"mkfs.ext4"};
      if (options.empty()) argv.insert(argv.end(), {"-m0", "-Enodiscard,lazy_itable_init=1,lazy_journal_init=1"});
    } else if (fs_type == "xfs") {
      argv = {"mkfs.xfs"};
      if (options.empty()) argv.push_back("-K");
    } else {
      return Err(kInvalidArgument, "cannot format {} as '{}' (ext4 or xfs)", device, fs_type);
    }
    argv.insert(argv.end(), options.begin(), options.end());
    argv.push_back(device);
    auto r = Run(argv);
    if (!r) return Unexpected(r.error());
    if (r->exit_code != 0) return Err(EIO, "{} {} failed (exit {}): {}", argv[0], device, r->exit_code, Trimmed(r->output));
    return {};
  }

  Result<void> Check(const std::string& device) override {
    auto r = Run({"fsck", "-a", device});
    if (!r) return Unexpected(r.error());
    if (r->exit_code == 0 || r->exit_code == 1) return {};
    if (r->exit_code >= 4 && r->exit_code < 8) {
      return Err(kFailedPrecondition, "fsck -a {} left errors (exit {}); repair it by hand: {}", device, r->exit_code,
                 Trimmed(r->output));
    }
    return Err(EIO, "fsck -a {} failed (exit {}): {}", device, r->exit_code, Trimmed(r->output));
  }

  Result<void> Grow(const std::string& device, const std::string& mount_point, const std::string& fs_type) override {
    std::vector<std::string> argv;
    if (IsExtFamily(fs_type)) {
      argv = {"resize2fs", device};
    } else if (fs_type == "xfs") {
      argv = {"xfs_growfs", mount_point};
    } else {
      spdlog::info("not growing {}: no grow tool for '{}'", device, fs_type);
      return {};
    }
    auto r = Run(argv);
    if (!r) return Unexpected(r.error());
    if (r->exit_code != 0) return Err(EIO, "{} failed on {} (exit {}): {}", argv[0], argv.back(), r->exit_code, Trimmed(r->output));
    return {};
  }
};

}  // namespace

std::unique_ptr<FsTools> MakeSystemFsTools() { return std::make_unique<SystemFsTools>(); }

bool IsExtFamily(const std::string& t) { return t == "ext2" || t == "ext3" || t == "ext4"; }

bool IsSupportedFsType(const std::string& fs_type) { return fs_type == "ext4" || fs_type == "xfs"; }

Result<DeviceProbe> ParseBlkidExport(int exit_code, const std::string& output) {
  DeviceProbe p;
  if (exit_code == 2) {
    p.blank = true;
    return p;
  }
  if (exit_code != 0) return Err(EIO, "blkid failed (exit {}): {}", exit_code, Trimmed(output));
  size_t pos = 0;
  while (pos < output.size()) {
    size_t nl = output.find('\n', pos);
    std::string line = output.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? output.size() : nl + 1;
    if (line.rfind("TYPE=", 0) == 0) p.fs_type = line.substr(5);
    if (line.rfind("PTTYPE=", 0) == 0) p.partition_table = line.substr(7);
  }
  if (p.fs_type.empty() && p.partition_table.empty()) {
    // blkid found something it cannot name (e.g. only a UUID): refuse to guess.
    return Err(kFailedPrecondition, "blkid recognised the device but reported no TYPE or PTTYPE");
  }
  return p;
}

}  // namespace rbdnbd::csi
