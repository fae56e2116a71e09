// NBD wire constants: every magic number, flag bit, command, option, reply
// type and error value that rbd-nbdd speaks.
//
// Contract: constants only, no code and no state. Every value is as sent on
// the wire (big-endian there; host order here) and was checked against the
// NBD protocol document (NetworkBlockDevice/nbd doc/proto.md) and nbdkit's
// common/protocol/nbd-protocol.h. Bit numbers are as the spec numbers them
// (bit 0 = least significant bit of the field in network byte order).
//
// The netlink/ioctl uapi (linux/nbd.h) shifts the command flags by 16 for the
// kernel's own use; that encoding is NOT this one and belongs in netlink/.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rbdnbd::nbd {

// ---- Transmission phase: messages -----------------------------------------

inline constexpr uint32_t kRequestMagic = 0x25609513;
inline constexpr uint32_t kSimpleReplyMagic = 0x67446698;
inline constexpr uint32_t kStructuredReplyMagic = 0x668e33ef;  // never sent

// magic u32, flags u16, type u16, cookie u64, offset u64, length u32.
inline constexpr size_t kRequestHeaderSize = 28;
// magic u32, error u32, cookie u64.
inline constexpr size_t kSimpleReplyHeaderSize = 16;

// The largest READ/WRITE payload we accept (and advertise as max_block).
inline constexpr uint32_t kMaxRequestLength = 32u << 20;

enum Command : uint16_t {
  kCmdRead = 0,
  kCmdWrite = 1,
  kCmdDisc = 2,
  kCmdFlush = 3,
  kCmdTrim = 4,
  kCmdCache = 5,
  kCmdWriteZeroes = 6,
  kCmdBlockStatus = 7,
};

// Command flags (the request's u16 flags field).
inline constexpr uint16_t kCmdFlagFua = 1 << 0;
inline constexpr uint16_t kCmdFlagNoHole = 1 << 1;
inline constexpr uint16_t kCmdFlagDf = 1 << 2;
inline constexpr uint16_t kCmdFlagReqOne = 1 << 3;
inline constexpr uint16_t kCmdFlagFastZero = 1 << 4;

// Transmission flags (per export, sent at the end of the handshake).
inline constexpr uint16_t kFlagHasFlags = 1 << 0;  // MUST always be set
inline constexpr uint16_t kFlagReadOnly = 1 << 1;
inline constexpr uint16_t kFlagSendFlush = 1 << 2;
inline constexpr uint16_t kFlagSendFua = 1 << 3;
inline constexpr uint16_t kFlagRotational = 1 << 4;
inline constexpr uint16_t kFlagSendTrim = 1 << 5;
inline constexpr uint16_t kFlagSendWriteZeroes = 1 << 6;
inline constexpr uint16_t kFlagSendDf = 1 << 7;
inline constexpr uint16_t kFlagCanMultiConn = 1 << 8;
inline constexpr uint16_t kFlagSendResize = 1 << 9;
inline constexpr uint16_t kFlagSendCache = 1 << 10;
inline constexpr uint16_t kFlagSendFastZero = 1 << 11;

// Error values for the reply's error field. Not host errno values: map with
// ErrnoToNbd() (request_codec.h).
inline constexpr uint32_t kNbdEPERM = 1;
inline constexpr uint32_t kNbdEIO = 5;
inline constexpr uint32_t kNbdENOMEM = 12;
inline constexpr uint32_t kNbdEINVAL = 22;
inline constexpr uint32_t kNbdENOSPC = 28;
inline constexpr uint32_t kNbdEOVERFLOW = 75;
inline constexpr uint32_t kNbdENOTSUP = 95;
inline constexpr uint32_t kNbdESHUTDOWN = 108;

// ---- Handshake phase (fixed newstyle) -------------------------------------

inline constexpr uint64_t kNbdMagic = 0x4e42444d41474943;      // "NBDMAGIC"
inline constexpr uint64_t kIHaveOptMagic = 0x49484156454f5054;  // "IHAVEOPT"
inline constexpr uint64_t kOptionReplyMagic = 0x3e889045565a9;

// Server greeting: NBDMAGIC u64, IHAVEOPT u64, handshake flags u16.
inline constexpr size_t kGreetingSize = 18;
// Client option header: IHAVEOPT u64, option u32, data length u32.
inline constexpr size_t kOptionHeaderSize = 16;
// Server option reply header: magic u64, option u32, type u32, length u32.
inline constexpr size_t kOptionReplyHeaderSize = 20;
// Zero padding after an OPT_EXPORT_NAME reply unless NO_ZEROES was agreed.
inline constexpr size_t kExportNameZeroes = 124;

// Handshake flags (server -> client, u16).
inline constexpr uint16_t kHandshakeFlagFixedNewstyle = 1 << 0;
inline constexpr uint16_t kHandshakeFlagNoZeroes = 1 << 1;

// Client flags (client -> server, u32).
inline constexpr uint32_t kClientFlagFixedNewstyle = 1 << 0;
inline constexpr uint32_t kClientFlagNoZeroes = 1 << 1;
inline constexpr uint32_t kClientFlagsKnown =
    kClientFlagFixedNewstyle | kClientFlagNoZeroes;

// Options (client -> server).
inline constexpr uint32_t kOptExportName = 1;
inline constexpr uint32_t kOptAbort = 2;
inline constexpr uint32_t kOptList = 3;
inline constexpr uint32_t kOptStartTls = 5;
inline constexpr uint32_t kOptInfo = 6;
inline constexpr uint32_t kOptGo = 7;
inline constexpr uint32_t kOptStructuredReply = 8;
inline constexpr uint32_t kOptListMetaContext = 9;
inline constexpr uint32_t kOptSetMetaContext = 10;

// Option reply types (server -> client). Errors have bit 31 set.
inline constexpr uint32_t kRepErrBit = 1u << 31;
inline constexpr uint32_t kRepAck = 1;
inline constexpr uint32_t kRepServer = 2;
inline constexpr uint32_t kRepInfo = 3;
inline constexpr uint32_t kRepMetaContext = 4;
inline constexpr uint32_t kRepErrUnsup = 1 | kRepErrBit;
inline constexpr uint32_t kRepErrPolicy = 2 | kRepErrBit;
inline constexpr uint32_t kRepErrInvalid = 3 | kRepErrBit;
inline constexpr uint32_t kRepErrPlatform = 4 | kRepErrBit;
inline constexpr uint32_t kRepErrTlsReqd = 5 | kRepErrBit;
inline constexpr uint32_t kRepErrUnknown = 6 | kRepErrBit;
inline constexpr uint32_t kRepErrShutdown = 7 | kRepErrBit;
inline constexpr uint32_t kRepErrBlockSizeReqd = 8 | kRepErrBit;
inline constexpr uint32_t kRepErrTooBig = 9 | kRepErrBit;

// Information types in NBD_OPT_INFO/GO requests and NBD_REP_INFO replies.
inline constexpr uint16_t kInfoExport = 0;
inline constexpr uint16_t kInfoName = 1;
inline constexpr uint16_t kInfoDescription = 2;
inline constexpr uint16_t kInfoBlockSize = 3;

}  // namespace rbdnbd::nbd
