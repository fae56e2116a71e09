#include "nbd/handshake.h"

#include <utility>

#include <fmt/format.h>

#include "nbd/wire.h"

namespace rbdnbd::nbd {
namespace {

uint16_t WireFlags(const ExportInfo& info) {
  return static_cast<uint16_t>(info.transmission_flags | kFlagHasFlags);
}

std::string_view AsString(std::span<const uint8_t> data) {
  return {reinterpret_cast<const char*>(data.data()), data.size()};
}

void AppendInfo(std::vector<uint8_t>* out, uint32_t option,
                const std::vector<uint8_t>& info) {
  AppendOptionReply(out, option, kRepInfo, std::span<const uint8_t>(info));
}

}  // namespace

void AppendOptionReply(std::vector<uint8_t>* out, uint32_t option,
                       uint32_t reply_type, std::span<const uint8_t> data) {
  AppendBe64(out, kOptionReplyMagic);
  AppendBe32(out, option);
  AppendBe32(out, reply_type);
  AppendBe32(out, static_cast<uint32_t>(data.size()));
  out->insert(out->end(), data.begin(), data.end());
}

void AppendOptionReply(std::vector<uint8_t>* out, uint32_t option,
                       uint32_t reply_type, std::string_view message) {
  AppendOptionReply(
      out, option, reply_type,
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(message.data()),
                               message.size()));
}

Handshake::Handshake(const ExportDirectory& dir) : dir_(dir) {}

void Handshake::Greeting(std::vector<uint8_t>* out) const {
  AppendBe64(out, kNbdMagic);
  AppendBe64(out, kIHaveOptMagic);
  AppendBe16(out, kHandshakeFlagFixedNewstyle | kHandshakeFlagNoZeroes);
}

size_t Handshake::BytesWanted() const {
  switch (phase_) {
    case Phase::kClientFlags:
      return 4;
    case Phase::kOptionHeader:
      return kOptionHeaderSize;
    case Phase::kOptionData:
      return option_length_;
    case Phase::kDone:
      return 0;
  }
  return 0;
}

Handshake::State Handshake::Feed(std::span<const uint8_t> data,
                                 std::vector<uint8_t>* out) {
  if (state_ != State::kNegotiating) return state_;
  if (data.size() != BytesWanted()) {
    return Close(fmt::format("internal: fed {} bytes, wanted {}", data.size(),
                             BytesWanted()));
  }
  switch (phase_) {
    case Phase::kClientFlags:
      return OnClientFlags(data);
    case Phase::kOptionHeader:
      return OnOptionHeader(data, out);
    case Phase::kOptionData:
      return OnOption(data, out);
    case Phase::kDone:
      break;
  }
  return state_;
}

Handshake::State Handshake::Close(std::string reason) {
  phase_ = Phase::kDone;
  state_ = State::kClose;
  close_reason_ = std::move(reason);
  return state_;
}

Handshake::State Handshake::Negotiate() {
  phase_ = Phase::kOptionHeader;
  return state_;
}

Handshake::State Handshake::OnClientFlags(std::span<const uint8_t> data) {
  const uint32_t flags = LoadBe32(data.data());
  // The spec: the server MUST drop the connection on an unknown client flag.
  // A client without FIXED_NEWSTYLE is still served fixed newstyle (allowed).
  if ((flags & ~kClientFlagsKnown) != 0) {
    return Close(fmt::format("unknown client flags {:#x}", flags));
  }
  no_zeroes_ = (flags & kClientFlagNoZeroes) != 0;
  return Negotiate();
}

Handshake::State Handshake::OnOptionHeader(std::span<const uint8_t> data,
                                           std::vector<uint8_t>* out) {
  if (LoadBe64(data.data()) != kIHaveOptMagic) return Close("bad option magic");
  if (++options_seen_ > kMaxOptions) return Close("too many options");
  option_ = LoadBe32(data.data() + 8);
  option_length_ = LoadBe32(data.data() + 12);
  if (option_length_ > kMaxOptionDataLength) {
    return Close(fmt::format("option {} data too long ({} bytes)", option_,
                             option_length_));
  }
  if (option_length_ == 0) return OnOption({}, out);
  phase_ = Phase::kOptionData;
  return state_;
}

Handshake::State Handshake::OnOption(std::span<const uint8_t> data,
                                     std::vector<uint8_t>* out) {
  switch (option_) {
    case kOptExportName:
      return ExportName(data, out);
    case kOptAbort:
      AppendOptionReply(out, option_, kRepAck);
      return Close("client sent ABORT");
    case kOptList:
      return ListExports(data, out);
    case kOptInfo:
    case kOptGo:
      return InfoOrGo(data, out);
    default:
      // STARTTLS, STRUCTURED_REPLY, the META_CONTEXT pair and unknown numbers.
      AppendOptionReply(out, option_, kRepErrUnsup, "option not supported");
      return Negotiate();
  }
}

Handshake::State Handshake::ExportName(std::span<const uint8_t> data,
                                       std::vector<uint8_t>* out) {
  // EXPORT_NAME has no error reply: an unknown name ends the session.
  std::optional<ExportInfo> info = dir_.Find(AsString(data));
  if (!info) return Close("EXPORT_NAME: unknown export");
  selected_ = std::move(*info);
  selected_.transmission_flags = WireFlags(selected_);
  AppendBe64(out, selected_.size);
  AppendBe16(out, selected_.transmission_flags);
  if (!no_zeroes_) out->insert(out->end(), kExportNameZeroes, 0);
  phase_ = Phase::kDone;
  state_ = State::kTransmission;
  return state_;
}

// Data: u32 name length, name, u16 request count, count * u16 info types.
Handshake::State Handshake::InfoOrGo(std::span<const uint8_t> data,
                                     std::vector<uint8_t>* out) {
  const size_t n = data.size();
  if (n < 6) {
    AppendOptionReply(out, option_, kRepErrInvalid, "option too short");
    return Negotiate();
  }
  const uint32_t name_length = LoadBe32(data.data());
  if (name_length > n - 6) {
    AppendOptionReply(out, option_, kRepErrInvalid, "bad export name length");
    return Negotiate();
  }
  const size_t count = LoadBe16(data.data() + 4 + name_length);
  if (n != 4 + name_length + 2 + 2 * count) {
    AppendOptionReply(out, option_, kRepErrInvalid,
                      "information request count does not match length");
    return Negotiate();
  }
  const std::string_view name = AsString(data.subspan(4, name_length));
  std::optional<ExportInfo> info = dir_.Find(name);
  if (!info) {
    AppendOptionReply(out, option_, kRepErrUnknown, "unknown export");
    return Negotiate();
  }

  bool want_name = false;
  bool want_description = false;
  const uint8_t* requests = data.data() + 4 + name_length + 2;
  for (size_t i = 0; i < count; ++i) {
    const uint16_t type = LoadBe16(requests + 2 * i);
    want_name |= type == kInfoName;
    want_description |= type == kInfoDescription;
  }

  std::vector<uint8_t> reply;
  AppendBe16(&reply, kInfoExport);
  AppendBe64(&reply, info->size);
  AppendBe16(&reply, WireFlags(*info));
  AppendInfo(out, option_, reply);

  // Always sent: clients that honour it then respect our request limits.
  reply.clear();
  AppendBe16(&reply, kInfoBlockSize);
  AppendBe32(&reply, info->min_block);
  AppendBe32(&reply, info->preferred_block);
  AppendBe32(&reply, info->max_block);
  AppendInfo(out, option_, reply);

  if (want_name) {
    reply.clear();
    AppendBe16(&reply, kInfoName);
    AppendBytes(&reply, info->name);
    AppendInfo(out, option_, reply);
  }
  if (want_description) {
    reply.clear();
    AppendBe16(&reply, kInfoDescription);
    AppendBytes(&reply, info->description);
    AppendInfo(out, option_, reply);
  }
  AppendOptionReply(out, option_, kRepAck);

  if (option_ == kOptInfo) return Negotiate();
  selected_ = std::move(*info);
  selected_.transmission_flags = WireFlags(selected_);
  phase_ = Phase::kDone;
  state_ = State::kTransmission;
  return state_;
}

Handshake::State Handshake::ListExports(std::span<const uint8_t> data,
                                        std::vector<uint8_t>* out) {
  if (!data.empty()) {
    AppendOptionReply(out, option_, kRepErrInvalid, "LIST takes no data");
    return Negotiate();
  }
  std::vector<uint8_t> reply;
  for (const ExportInfo& e : dir_.List()) {
    reply.clear();
    AppendBe32(&reply, static_cast<uint32_t>(e.name.size()));
    AppendBytes(&reply, e.name);
    AppendOptionReply(out, option_, kRepServer,
                      std::span<const uint8_t>(reply));
  }
  AppendOptionReply(out, option_, kRepAck);
  return Negotiate();
}

}  // namespace rbdnbd::nbd
