// Export specs: the CLI's `--export key=value,key=value,...` turned into a
// backend chain.
//
// Contract
// --------
// * ParseExportSpec() is control path: any thread, no loop needed. It opens
//   files / allocates tables as the chosen backend's Create() does, and
//   returns either a ready ExportSpec or an Error whose message is one line:
//     "export spec '<spec>': <key>: <problem>"
// * Keys (each at most once; unknown keys are errors):
//     name=NAME            required; 1..255 printable ASCII characters
//     backend=KIND         required; memory | file
//     description=TEXT     optional; default: the backend's Describe()
//     read-only[=true|false]
//     size=SIZE            memory: required (ParseSize: 64M, 1G, ...)
//     path=PATH            file: required
//     direct=auto|on|off   file
//     fault-errno=EIO|ENOSPC|...|N   fault-ops=read+write+flush+trim+zero+cache|all
//     fault-rate=0.01|1%   fault-every=N   fault-range=BEGIN-END (sizes, END
//     exclusive)           fault-trigger=PATH
//     delay=5ms  delay-read=..  delay-write=..  delay-other=..  (us|ms|s)
// * Chain, innermost first: backend -> FaultBackend (any fault-* key) ->
//   DelayBackend (any delay* key) -> ReadOnlyBackend (read-only, when the
//   backend is not read-only by itself). The delay comes first and the fault
//   decision after it, so injected errors are slow like real ones.
// * Adding a backend kind (rbd): add one BackendKind row in
//   backend_factory.cc with its own keys and a Create function.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "backend/backend.h"
#include "common/result.h"

namespace rbdnbd {

struct ExportSpec {
  std::string name;
  std::string description;
  std::shared_ptr<Backend> backend;
};

Result<ExportSpec> ParseExportSpec(std::string_view spec);

}  // namespace rbdnbd
