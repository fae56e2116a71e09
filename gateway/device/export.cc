#include "device/export.h"

#include <cerrno>

#include "nbd/protocol.h"

namespace rbdnbd {

uint16_t TransmissionFlags(const BackendCaps& caps) {
  uint16_t f = nbd::kFlagHasFlags;
  if (caps.can_flush) f |= nbd::kFlagSendFlush;
  if (caps.rotational) f |= nbd::kFlagRotational;
  if (caps.can_cache) f |= nbd::kFlagSendCache;
  if (caps.read_only) {
    f |= nbd::kFlagReadOnly;
  } else {
    if (caps.can_fua) f |= nbd::kFlagSendFua;
    if (caps.can_trim) f |= nbd::kFlagSendTrim;
    if (caps.can_write_zeroes) f |= nbd::kFlagSendWriteZeroes;
  }
  // Only when a FLUSH on one connection covers writes completed on all the
  // others (the backend says so); otherwise clients must use one connection.
  if (caps.can_multi_conn) f |= nbd::kFlagCanMultiConn;
  return f;
}

nbd::ExportInfo DescribeExport(const Export& e) {
  BackendCaps caps = e.backend->Capabilities();
  nbd::ExportInfo info;
  info.name = e.name;
  info.description = e.description.empty() ? e.backend->Describe() : e.description;
  info.size = caps.size;
  info.transmission_flags = TransmissionFlags(caps);
  info.min_block = caps.min_block;
  info.preferred_block = caps.preferred_block;
  info.max_block = caps.max_block;
  return info;
}

Result<void> ExportRegistry::Add(Export e) {
  if (e.name.empty()) return Err(EINVAL, "an export needs a name");
  if (Get(e.name) != nullptr) return Err(EEXIST, "export '{}' is defined twice", e.name);
  if (!e.backend) return Err(EINVAL, "export '{}' has no backend", e.name);
  exports_.push_back(std::move(e));
  return {};
}

const Export* ExportRegistry::Get(std::string_view name) const {
  if (name.empty()) return exports_.empty() ? nullptr : &exports_.front();
  for (const auto& e : exports_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

std::optional<nbd::ExportInfo> ExportRegistry::Find(std::string_view name) const {
  const Export* e = Get(name);
  if (e == nullptr) return std::nullopt;
  return DescribeExport(*e);
}

std::vector<nbd::ExportInfo> ExportRegistry::List() const {
  std::vector<nbd::ExportInfo> out;
  out.reserve(exports_.size());
  for (const auto& e : exports_) out.push_back(DescribeExport(e));
  return out;
}

}  // namespace rbdnbd
