#include "csi/mounter.h"

#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "csi/csi_error.h"

namespace rbdnbd::csi {

namespace {

struct FlagWord {
  const char* word;
  unsigned long set;
  unsigned long clear;
};

constexpr FlagWord kFlagWords[] = {
    {"ro", MS_RDONLY, 0},          {"rw", 0, MS_RDONLY},
    {"nosuid", MS_NOSUID, 0},      {"suid", 0, MS_NOSUID},
    {"nodev", MS_NODEV, 0},        {"dev", 0, MS_NODEV},
    {"noexec", MS_NOEXEC, 0},      {"exec", 0, MS_NOEXEC},
    {"sync", MS_SYNCHRONOUS, 0},   {"async", 0, MS_SYNCHRONOUS},
    {"dirsync", MS_DIRSYNC, 0},    {"noatime", MS_NOATIME, 0},
    {"atime", 0, MS_NOATIME},      {"nodiratime", MS_NODIRATIME, 0},
    {"diratime", 0, MS_NODIRATIME}, {"relatime", MS_RELATIME, 0},
    {"norelatime", 0, MS_RELATIME}, {"strictatime", MS_STRICTATIME, 0},
    {"lazytime", MS_LAZYTIME, 0},  {"nolazytime", 0, MS_LAZYTIME},
    {"mand", MS_MANDLOCK, 0},      {"nomand", 0, MS_MANDLOCK},
    {"silent", MS_SILENT, 0},      {"loud", 0, MS_SILENT},
    {"defaults", 0, 0},            {"bind", 0, 0},  // bind is implied by BindMount, not a data word
};

class SystemMounter final : public Mounter {
 public:
  Result<std::optional<MountEntry>> MountAt(const std::string& path) override {
    auto table = ReadMountInfo();
    if (!table) return Unexpected(table.error());
    return FindMount(*table, CanonicalPath(path));
  }

  Result<void> Mount(const std::string& source, const std::string& target, const std::string& fs_type,
                     const std::vector<std::string>& options) override {
    MountOptions o = ParseMountOptions(options);
    if (::mount(source.c_str(), target.c_str(), fs_type.c_str(), o.flags, o.data.empty() ? nullptr : o.data.c_str()) != 0) {
      int e = errno;
      return Err(e == EBUSY ? EBUSY : e, "mount {} on {} ({}): {}", source, target, fs_type, strerror(e));
    }
    spdlog::info("mounted {} on {} ({}{})", source, target, fs_type, (o.flags & MS_RDONLY) ? ", ro" : "");
    return {};
  }

  Result<void> BindMount(const std::string& source, const std::string& target, bool read_only) override {
    if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      return Err(errno, "bind mount {} on {}: {}", source, target, strerror(errno));
    }
    if (read_only &&
        ::mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
      int e = errno;
      ::umount2(target.c_str(), 0);
      return Err(e, "remount {} read-only: {}", target, strerror(e));
    }
    spdlog::info("bind-mounted {} on {}{}", source, target, read_only ? " (ro)" : "");
    return {};
  }

  Result<void> Unmount(const std::string& target) override {
    // Unmount until nothing is left at `target` (mounts can be stacked).
    for (int i = 0; i < 16; ++i) {
      auto m = MountAt(target);
      if (!m) return Unexpected(m.error());
      if (!m->has_value()) return {};
      std::string where = (*m)->mount_point;
      if (::umount2(where.c_str(), UMOUNT_NOFOLLOW) != 0) {
        int e = errno;
        if (e == EINVAL || e == ENOENT) return {};  // raced with another unmount
        return Err(e == EBUSY ? EBUSY : e, "umount {}: {}", where, strerror(e));
      }
      spdlog::info("unmounted {}", where);
    }
    return Err(EBUSY, "{} still has mounts after 16 unmounts", target);
  }
};

}  // namespace

std::unique_ptr<Mounter> MakeSystemMounter() { return std::make_unique<SystemMounter>(); }

MountOptions ParseMountOptions(const std::vector<std::string>& options) {
  MountOptions o;
  for (const auto& option : options) {
    // A CSI mount flag may itself be "a,b": split on commas.
    size_t pos = 0;
    while (pos <= option.size()) {
      size_t comma = option.find(',', pos);
      std::string word = option.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      pos = comma == std::string::npos ? option.size() + 1 : comma + 1;
      if (word.empty()) continue;
      bool known = false;
      for (const auto& f : kFlagWords) {
        if (word == f.word) {
          o.flags = (o.flags | f.set) & ~f.clear;
          known = true;
          break;
        }
      }
      if (!known) {
        if (!o.data.empty()) o.data += ',';
        o.data += word;
      }
    }
  }
  return o;
}

std::string CanonicalPath(const std::string& path) {
  std::error_code ec;
  auto canonical = std::filesystem::canonical(path, ec);
  if (!ec) return canonical.string();
  std::string normal = std::filesystem::path(path).lexically_normal().string();
  while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  return normal;
}

}  // namespace rbdnbd::csi
