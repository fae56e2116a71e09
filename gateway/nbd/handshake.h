// The NBD fixed-newstyle handshake as a pure state machine (server side).
//
// Contract:
//  - No I/O. The caller owns the socket: it sends Greeting(), then loops
//    { read exactly BytesWanted() bytes; Feed() them; send whatever Feed()
//    appended to *out } until Feed() returns kTransmission or kClose. On kClose
//    it still sends the appended bytes (e.g. the ACK to OPT_ABORT), then
//    closes and logs close_reason().
//  - Feed() must be given exactly BytesWanted() bytes; anything else closes
//    the negotiation (a caller bug, reported in close_reason()). After a
//    terminal state Feed() appends nothing and returns that state again.
//  - BytesWanted() is never more than kMaxOptionDataLength (64 KiB), so the
//    caller can size its buffer once. Larger options close the connection
//    before any of their data is read.
//  - The ExportDirectory must outlive the Handshake; Find()/List() are called
//    synchronously from Feed(), on the caller's thread.
//  - Single-threaded: one Handshake per connection, used by one thread.
//  - Only simple replies are offered: STRUCTURED_REPLY, META_CONTEXT and
//    STARTTLS are answered NBD_REP_ERR_UNSUP.
//
// State machine (numbers are BytesWanted()):
//
//   caller sends Greeting()
//            |
//            v
//   +-----------------+  unknown client flag bits
//   | ClientFlags (4) |------------------------------------------> kClose
//   +-----------------+
//            |
//            v
//   +-----------------+  bad magic | data > 64 KiB | > 1024 options
//   | OptionHdr (16)  |------------------------------------------> kClose
//   +-----------------+
//     ^      | len > 0            | len == 0
//     |      v                    |
//     |  +----------------+       |
//     |  | OptionData (N) |       |
//     |  +----------------+       |
//     |      |                    |
//     |      v                    v
//     |  +-------------------------------+  EXPORT_NAME ok, GO ok
//     |  |        handle option          |-------------------> kTransmission
//     |  +-------------------------------+
//     |      |                    |  EXPORT_NAME unknown, ABORT (after ACK)
//     |      |                    +--------------------------> kClose
//     +------+ INFO, LIST, GO failed, unsupported option (reply sent)
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nbd/protocol.h"

namespace rbdnbd::nbd {

// Largest option data we accept; a longer option closes the connection.
inline constexpr uint32_t kMaxOptionDataLength = 64 * 1024;
// Most options one client may send; the next one closes the connection.
inline constexpr uint32_t kMaxOptions = 1024;

struct ExportInfo {
  std::string name;
  std::string description;
  uint64_t size = 0;
  uint16_t transmission_flags = 0;  // kFlagHasFlags is added on the wire
  uint32_t min_block = 1, preferred_block = 4096, max_block = kMaxRequestLength;
};

// The exports a client may choose from. Implemented by the device layer.
class ExportDirectory {
 public:
  virtual ~ExportDirectory() = default;
  // Required. "" means the default export; nullopt when there is none.
  virtual std::optional<ExportInfo> Find(std::string_view name) const = 0;
  // Required. Every export, for NBD_OPT_LIST.
  virtual std::vector<ExportInfo> List() const = 0;
};

class Handshake {
 public:
  enum class State { kNegotiating, kTransmission, kClose };

  explicit Handshake(const ExportDirectory& dir);

  // Appends the 18-byte server greeting: NBDMAGIC, IHAVEOPT, handshake flags
  // FIXED_NEWSTYLE|NO_ZEROES.
  void Greeting(std::vector<uint8_t>* out) const;

  // Bytes Feed() needs next: 4 (client flags), 16 (option header) or the
  // option's data length; 0 once the state is terminal.
  size_t BytesWanted() const;

  // Consumes exactly BytesWanted() bytes and appends any reply to *out.
  State Feed(std::span<const uint8_t> data, std::vector<uint8_t>* out);

  State state() const { return state_; }

  // The export chosen by EXPORT_NAME or GO, transmission_flags as sent on
  // the wire (kFlagHasFlags included). Meaningful after kTransmission.
  const ExportInfo& selected_export() const { return selected_; }

  // One line for the log after kClose: "client sent ABORT", ...
  const std::string& close_reason() const { return close_reason_; }

  // Whether the client set NBD_FLAG_C_NO_ZEROES.
  bool no_zeroes() const { return no_zeroes_; }

  // Option headers accepted so far.
  uint32_t options_seen() const { return options_seen_; }

 private:
  enum class Phase { kClientFlags, kOptionHeader, kOptionData, kDone };

  State OnClientFlags(std::span<const uint8_t> data);
  State OnOptionHeader(std::span<const uint8_t> data, std::vector<uint8_t>* out);
  State OnOption(std::span<const uint8_t> data, std::vector<uint8_t>* out);

  State ExportName(std::span<const uint8_t> data, std::vector<uint8_t>* out);
  State InfoOrGo(std::span<const uint8_t> data, std::vector<uint8_t>* out);
  State ListExports(std::span<const uint8_t> data, std::vector<uint8_t>* out);

  State Close(std::string reason);
  State Negotiate();

  const ExportDirectory& dir_;
  Phase phase_ = Phase::kClientFlags;
  State state_ = State::kNegotiating;
  bool no_zeroes_ = false;
  uint32_t option_ = 0;         // option whose data is awaited
  uint32_t option_length_ = 0;  // its data length
  uint32_t options_seen_ = 0;
  ExportInfo selected_;
  std::string close_reason_;
};

// Appends one fixed-newstyle option reply (header + data). Exposed for tests
// and for a server that wants to send NBD_REP_ERR_SHUTDOWN itself.
void AppendOptionReply(std::vector<uint8_t>* out, uint32_t option,
                       uint32_t reply_type, std::span<const uint8_t> data);
void AppendOptionReply(std::vector<uint8_t>* out, uint32_t option,
                       uint32_t reply_type, std::string_view message = {});

}  // namespace rbdnbd::nbd
