#include "csi/mount_info.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

namespace rbdnbd::csi {

namespace {

std::vector<std::string_view> SplitSpaces(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

template <typename T>
bool ParseNumber(std::string_view s, T* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool IsOctal(char c) { return c >= '0' && c <= '7'; }

}  // namespace

std::string UnescapeMountPath(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && IsOctal(s[i + 1]) && IsOctal(s[i + 2]) && IsOctal(s[i + 3])) {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

bool MountEntry::read_only() const {
  std::string_view o = options;
  while (!o.empty()) {
    size_t comma = o.find(',');
    if (o.substr(0, comma) == "ro") return true;
    if (comma == std::string_view::npos) break;
    o.remove_prefix(comma + 1);
  }
  return false;
}

std::vector<MountEntry> ParseMountInfo(std::string_view text) {
  std::vector<MountEntry> table;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    auto f = SplitSpaces(line);
    if (f.size() < 9) continue;
    size_t sep = 6;
    while (sep < f.size() && f[sep] != "-") ++sep;
    if (sep + 2 >= f.size()) continue;  // no "-", or no fstype and source after it
    MountEntry e;
    auto colon = f[2].find(':');
    if (colon == std::string_view::npos || !ParseNumber(f[0], &e.id) || !ParseNumber(f[1], &e.parent) ||
        !ParseNumber(f[2].substr(0, colon), &e.major) || !ParseNumber(f[2].substr(colon + 1), &e.minor)) {
      continue;
    }
    e.root = UnescapeMountPath(f[3]);
    e.mount_point = UnescapeMountPath(f[4]);
    e.options = std::string(f[5]);
    e.fs_type = std::string(f[sep + 1]);
    e.source = UnescapeMountPath(f[sep + 2]);
    if (sep + 3 < f.size()) e.super_options = std::string(f[sep + 3]);
    table.push_back(std::move(e));
  }
  return table;
}

Result<std::vector<MountEntry>> ReadMountInfo(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Err(errno ? errno : EIO, "cannot read {}: {}", path, strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseMountInfo(ss.str());
}

std::optional<MountEntry> FindMount(const std::vector<MountEntry>& table, const std::string& mount_point) {
  std::optional<MountEntry> found;
  for (const auto& e : table) {
    if (e.mount_point == mount_point) found = e;
  }
  return found;
}

}  // namespace rbdnbd::csi
