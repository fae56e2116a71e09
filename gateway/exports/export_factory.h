// Export specs: the CLI's `--export key=value,key=value,...` (and `--rbd SPEC`)
// turned into a backend chain. This library sits above backend/ and rbd/ so
// that every decorator wraps every backend kind, RBD images included.
//
// Contract
// --------
// * ParseExportSpec() and RbdExport() are control path: any thread, no loop
//   needed. They open files / allocate tables / open images as the chosen
//   backend's Create() does, and return either a ready ExportSpec or an Error
//   whose message is one line:
//     "export spec '<spec>': <key>: <problem>"   (RbdExport: the problem only)
// * Keys (each at most once; unknown keys are errors):
//     name=NAME            required; 1..255 printable ASCII characters
//     backend=KIND         required; memory | file | rbd
//     description=TEXT     optional; default: the backend's Describe()
//     read-only[=true|false]
//     size=SIZE            memory: required (ParseSize: 64M, 1G, ...)
//     path=PATH            file: required
//     direct=auto|on|off   file
//     image=POOL/[NS/]IMAGE[@SNAP]   rbd: required; the cluster, the user and
//                          the image options (--exclusive, --notrim,
//                          --encryption-*) are the command line's, through
//                          ExportContext
//     fault-errno=EIO|ENOSPC|...|N   fault-ops=read+write+flush+trim+zero+cache|all
//     fault-rate=0.01|1%   fault-every=N   fault-range=BEGIN-END (sizes, END
//     exclusive)           fault-trigger=PATH
//     delay=5ms  delay-read=..  delay-write=..  delay-other=..  (us|ms|s)
// * Chain, innermost first: backend -> FaultBackend (any fault-* key) ->
//   DelayBackend (any delay* key) -> ReadOnlyBackend (read-only, when the
//   backend is not read-only by itself). The delay comes first and the fault
//   decision after it, so injected errors are slow like real ones.
// * backend=rbd calls ExportContext::connect (once per rbd export; the
//   caller shares one connection between them) only after every other key
//   was checked, so a typo never waits for a cluster.
// * Adding a backend kind: add one BackendKind row in export_factory.cc with
//   its own keys and a Create function.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "backend/backend.h"
#include "common/result.h"
#include "rbd/cluster.h"
#include "rbd/rbd_backend.h"

namespace rbdnbd {

struct ExportSpec {
  std::string name;
  std::string description;
  std::shared_ptr<Backend> backend;
};

// What backend=rbd takes from the command line rather than from the spec.
struct RbdConnection {
  std::shared_ptr<RadosCluster> cluster;
  // Image options for every rbd export: `spec` is replaced by the export's
  // image, `read_only` is ORed with its read-only key.
  RbdOpenOptions image;
};

struct ExportContext {
  // The cluster connection and image options, made on first use by the
  // caller (it reads keys and passphrases then) and shared by its exports.
  // Empty: backend=rbd is refused.
  std::function<Result<RbdConnection>()> connect;
};

Result<ExportSpec> ParseExportSpec(std::string_view spec, const ExportContext& context = {});

// `serve --rbd SPEC`: the same export as name=SPEC,backend=rbd,image=SPEC,
// but SPEC may hold any character (commas too) and errors are not prefixed.
Result<ExportSpec> RbdExport(std::string_view image_spec, const ExportContext& context);

}  // namespace rbdnbd
