#include "control/quiesce_mounts.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace rbdnbd {

namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo (octal).
std::string Unescape(std::string_view s) {
  auto octal = [](char c) { return c >= '0' && c <= '7'; };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '\\' && i + 3 < s.size() && octal(s[i + 1]) && octal(s[i + 2]) && octal(s[i + 3])) {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
      continue;
    }
    out.push_back(s[i]);
  }
  return out;
}

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> f;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') i++;
    size_t start = i;
    while (i < line.size() && line[i] != ' ') i++;
    if (i > start) f.push_back(line.substr(start, i - start));
  }
  return f;
}

bool ParseMajorMinor(std::string_view s, unsigned* major, unsigned* minor) {
  auto colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 >= s.size()) return false;
  auto num = [](std::string_view d, unsigned* out) {
    unsigned v = 0;
    for (char c : d) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    *out = v;
    return true;
  };
  return num(s.substr(0, colon), major) && num(s.substr(colon + 1), minor);
}

}  // namespace

std::vector<MountInfoEntry> ParseMountInfo(std::string_view text) {
  // "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue"
  //  id parent maj:min root mount-point options [optional fields...] - fstype source super-options
  std::vector<MountInfoEntry> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    auto f = Fields(text.substr(pos, nl - pos));
    pos = nl + 1;
    if (f.size() < 7) continue;
    MountInfoEntry e;
    if (!ParseMajorMinor(f[2], &e.major, &e.minor)) continue;
    e.root = Unescape(f[3]);
    e.mount_point = Unescape(f[4]);
    auto dash = std::find(f.begin() + 6, f.end(), std::string_view("-"));
    if (dash == f.end()) continue;
    if (dash + 1 < f.end()) e.fs_type = Unescape(*(dash + 1));
    if (dash + 2 < f.end()) e.source = Unescape(*(dash + 2));
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<std::string> MountsToFreeze(const std::vector<MountInfoEntry>& mounts,
                                        const std::vector<DeviceNumber>& devices) {
  std::vector<std::string> out;
  std::vector<DeviceNumber> seen;
  for (const auto& m : mounts) {
    DeviceNumber d{m.major, m.minor};
    if (std::find(devices.begin(), devices.end(), d) == devices.end()) continue;
    if (std::find(seen.begin(), seen.end(), d) != seen.end()) continue;  // a bind mount of one we have
    seen.push_back(d);
    out.push_back(m.mount_point);
  }
  return out;
}

Result<std::vector<DeviceNumber>> DeviceNumbersOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Err(errno, "stat {}: {}", path, strerror(errno));
  if (!S_ISBLK(st.st_mode)) return Err(ENOTBLK, "{} is not a block device", path);
  std::vector<DeviceNumber> out{{major(st.st_rdev), minor(st.st_rdev)}};
  // /sys/dev/block/M:m is the disk; each partition is a subfolder with a "partition" file.
  std::error_code ec;
  auto sys = std::filesystem::path(fmt::format("/sys/dev/block/{}:{}", out[0].major, out[0].minor));
  for (const auto& child : std::filesystem::directory_iterator(sys, ec)) {
    if (!std::filesystem::exists(child.path() / "partition", ec)) continue;
    std::ifstream dev(child.path() / "dev");
    std::string text;
    DeviceNumber d;
    if (dev >> text && ParseMajorMinor(text, &d.major, &d.minor)) out.push_back(d);
  }
  return out;
}

}  // namespace rbdnbd
