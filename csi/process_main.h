// What the mains of rbd-nbdd-csi and rbd-nbdd-csi-controller share: the end of
// their flag parsing, and how they wait for SIGTERM/SIGINT.
//
// Contract
// * Called from main() only, on its thread, in this order: ParseFlagNumber while
//   reading flags, FinishFlags once getopt_long is done, BlockStopSignals
//   before any thread starts, WaitForStopSignal once the server runs.
// * Problems with the command line are printed to stderr as "PROGRAM: ..."
//   (the caller exits 2); nothing here exits.
#pragma once

#include <charconv>
#include <string>
#include <string_view>
#include <system_error>

namespace rbdnbd::csi {

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

// After getopt_long: refuses a positional argument (printing `usage` after the
// complaint) and sets up logging from --log-level/--log-target. False: the
// reason is on stderr, exit 2.
bool FinishFlags(std::string_view program, int argc, char** argv, const char* usage, const std::string& log_level,
                 const std::string& log_target);

// Blocks SIGTERM and SIGINT in the calling thread, and so in every thread it
// starts later (gRPC's, librados's): only WaitForStopSignal() sees them.
// Ignores SIGPIPE (a peer that hangs up is an error return, not a death).
void BlockStopSignals();

// Waits for SIGTERM or SIGINT (blocked by BlockStopSignals()) and returns it.
int WaitForStopSignal();

}  // namespace rbdnbd::csi
