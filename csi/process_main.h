// What the mains of rbd-nbdd-csi and rbd-nbdd-csi-controller share: reading
// their flags, and how they wait for SIGTERM/SIGINT.
//
// Contract
// * Called from main() only, on its thread, in this order: ParseFlags (its
//   handler may call ParseFlagNumber), BlockStopSignals before any thread
//   starts, WaitForStopSignal once the server runs.
// * Problems with the command line are printed to stderr as "PROGRAM: ..."
//   and answered with exit code 2; nothing here exits.
#pragma once

#include <charconv>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace rbdnbd::csi {

// A flag of the program's own: --NAME VALUE, handed to the handler as `id`
// (256 and up: getopt_long's own answers are below).
struct Flag {
  const char* name;
  int id;
};

// What ParseFlags reads for both binaries, beyond logging.
struct SharedFlags {
  std::string metrics_address;  // --metrics-address ADDR; empty (the default): no /metrics
};

// Reads argv with getopt_long, in order: the program's `flags`, each handed to
// `on_flag(id, value)` (false: it printed why, exit 2), and the flags both
// binaries take: --metrics-address (into `shared`; an empty value is refused,
// exit 2), --log-level, --log-target, --log-format, --help (`usage` on stdout, exit 0) and
// --version ("PROGRAM VERSION", exit 0). An unknown flag or a missing
// value prints `usage` on stderr (exit 2), as does a positional argument
// (after naming it). Then sets up logging (a bad level or target: exit 2).
// Returns nullopt to go on, else the exit code.
std::optional<int> ParseFlags(std::string_view program, const char* usage, std::initializer_list<Flag> flags, int argc,
                              char** argv, const std::function<bool(int id, const char* value)>& on_flag,
                              SharedFlags* shared);

// A flag's value as a whole decimal number in [min, max]: false for an empty
// value, trailing bytes, a value T cannot hold, or one out of range. A sign is
// read only when T is signed (so "-0" is 0 for int64_t, refused for uint32_t).
template <typename T>
bool ParseFlagNumber(std::string_view s, T min, T max, T* out) {
  T n{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty() || n < min || n > max) return false;
  *out = n;
  return true;
}

// Blocks SIGTERM and SIGINT in the calling thread, and so in every thread it
// starts later (gRPC's, librados's): only WaitForStopSignal() sees them.
// Ignores SIGPIPE (a peer that hangs up is an error return, not a death).
void BlockStopSignals();

// Waits for SIGTERM or SIGINT (blocked by BlockStopSignals()) and returns it.
int WaitForStopSignal();

}  // namespace rbdnbd::csi
