// Export: a named backend as clients see it, and the registry of exports.
//
// Contract: an ExportRegistry is filled with Add() on the main thread at
// start-up, before a Server (or any connection) holds it; from then on it is
// only read, from every loop thread, so reads need no lock. Nothing enforces
// that order: whoever calls Add() later must make sure no one reads yet.
// TransmissionFlags() derives the NBD flags from the backend's capabilities:
// a flag is advertised only when the backend really provides it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "common/result.h"
#include "device/io_stats.h"
#include "nbd/handshake.h"

namespace rbdnbd {

struct Export {
  std::string name;
  std::string description;
  std::shared_ptr<Backend> backend;
  // Optional: the export's I/O statistics (io_stats.h). Every Connection made
  // from this Export (or from a registry holding it) registers its cells here;
  // null records nothing (metrics off).
  // (= nullptr: Export{name, description, backend} stays free of -Wmissing-field-initializers)
  std::shared_ptr<DeviceIoStats> io_stats = nullptr;
};

// NBD transmission flags for these capabilities (HAS_FLAGS always set).
uint16_t TransmissionFlags(const BackendCaps& caps);

// The view the handshake and the request validator need, taken now (the size
// may change later through a resize).
nbd::ExportInfo DescribeExport(const Export& e);

class ExportRegistry final : public nbd::ExportDirectory {
 public:
  // Fails on an empty or duplicate name.
  Result<void> Add(Export e);

  // nbd::ExportDirectory. "" selects the first export added (the default).
  std::optional<nbd::ExportInfo> Find(std::string_view name) const override;
  std::vector<nbd::ExportInfo> List() const override;

  const Export* Get(std::string_view name) const;
  const std::vector<Export>& exports() const { return exports_; }

 private:
  std::vector<Export> exports_;
};

}  // namespace rbdnbd
