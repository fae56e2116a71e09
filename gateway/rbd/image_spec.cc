#include "rbd/image_spec.h"

#include <cerrno>
#include <vector>

namespace rbdnbd {

std::string ImageSpec::ToString() const {
  std::string s = pool + "/";
  if (!ns.empty()) s += ns + "/";
  s += image;
  if (!snap.empty()) s += "@" + snap;
  return s;
}

Result<ImageSpec> ParseImageSpec(std::string_view text) {
  if (text.empty()) return Err(EINVAL, "empty image spec (expected pool/[namespace/]image[@snap])");
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Err(EINVAL, "image spec contains a control character");
    }
  }
  ImageSpec spec;
  std::string_view rest = text;
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    spec.snap = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
    if (spec.snap.empty()) return Err(EINVAL, "image spec '{}': empty snapshot name after '@'", text);
    if (spec.snap.find('@') != std::string::npos || spec.snap.find('/') != std::string::npos) {
      return Err(EINVAL, "image spec '{}': bad snapshot name '{}'", text, spec.snap);
    }
  }
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    size_t slash = rest.find('/', start);
    parts.push_back(rest.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.size() == 1) {
    return Err(EINVAL, "image spec '{}' has no pool (expected pool/[namespace/]image[@snap])", text);
  }
  if (parts.size() > 3) return Err(EINVAL, "image spec '{}' has too many '/' (expected pool/[namespace/]image)", text);
  for (auto p : parts) {
    if (p.empty()) return Err(EINVAL, "image spec '{}' has an empty pool, namespace or image name", text);
  }
  spec.pool = std::string(parts.front());
  spec.image = std::string(parts.back());
  if (parts.size() == 3) spec.ns = std::string(parts[1]);
  return spec;
}

}  // namespace rbdnbd
