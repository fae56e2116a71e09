// NBD transmission-phase request codec: decode, encode and validate the
// 28-byte request header, and map backend errno values to NBD errors.
//
// Contract:
//  - Pure functions: no I/O, no allocation, no global state; callable from any
//    thread. Buffers are owned by the caller and must hold
//    kRequestHeaderSize bytes.
//  - DecodeRequest() only parses. It fails only on a bad magic, which means
//    the byte stream is out of sync: the caller must close the connection
//    (there is no cookie it could trust to reply to).
//  - ValidateRequest() decides whether a decoded request may reach the
//    backend. Its Verdict tells the caller two independent things:
//      error   - 0 to execute, else the NBD error to put in the simple reply;
//      payload - how many bytes follow the header on the wire. The caller
//                MUST consume exactly this many bytes before reading the next
//                header, also when error != 0 (an invalid WRITE still carries
//                its data), or the stream falls out of sync. For WRITE it is
//                always r.length, which may be up to 4 GiB - 1: drain it in
//                bounded chunks, never allocate it in one piece.
//  - kCmdDisc validates with error 0: there is no reply; the caller finishes
//    in-flight requests and closes.
//
// Validation order (first failing rule wins). Modelled on nbdkit's
// server/protocol.c validate_request, with the deviations noted:
//   1. type unknown (> kCmdBlockStatus)                  -> EINVAL
//   2. kCmdDisc                                          -> OK (no reply)
//   3. WRITE/TRIM/WRITE_ZEROES on a read-only export     -> EPERM
//      (first, as in nbdkit: the client gets the most useful error)
//   4. kCmdBlockStatus (no structured replies here)      -> EINVAL
//   5. flags: unknown bits, DF, REQ_ONE, FAST_ZERO, NO_HOLE on anything but
//      WRITE_ZEROES, FUA without kFlagSendFua advertised -> EINVAL
//      (FUA is accepted on every command once advertised, as the spec
//      requires and nbdkit does; only WRITE/TRIM/WRITE_ZEROES act on it)
//   6. FLUSH/TRIM/WRITE_ZEROES/CACHE not advertised      -> EINVAL
//   7. FLUSH with non-zero offset or length              -> EINVAL
//   8. zero length on READ/WRITE/TRIM/WRITE_ZEROES/CACHE -> EINVAL
//   9. READ/WRITE length > max_length                    -> EINVAL
//      (only the commands that carry a payload: the Linux kernel sends TRIM
//      and WRITE_ZEROES up to 4 GiB and must not see them fail. nbdkit
//      answers ENOMEM here; EINVAL tells the client it asked for too much.)
//  10. offset + length overflows or ends past the export -> ENOSPC for
//      WRITE/WRITE_ZEROES (the spec asks for it), EINVAL otherwise
#pragma once

#include <cstdint>

#include "nbd/protocol.h"

namespace rbdnbd::nbd {

struct Request {
  uint16_t flags;   // kCmdFlag* bits
  uint16_t type;    // a Command, or any value a client sent
  uint64_t cookie;  // opaque; echoed in the reply ("handle" in older specs)
  uint64_t offset;
  uint32_t length;
};

// Parses `header` (kRequestHeaderSize bytes, big-endian). Returns false only
// for a bad magic; *out is then left unspecified.
bool DecodeRequest(const uint8_t* header, Request* out);

// Writes r as kRequestHeaderSize bytes to `out`. For tests, clients and the
// fuzz target.
void EncodeRequest(const Request& r, uint8_t* out);

// What ValidateRequest needs to know about the export this connection serves.
struct ExportView {
  uint64_t size;                // bytes
  uint16_t transmission_flags;  // as advertised to the client (kFlag*)
  uint32_t max_length = kMaxRequestLength;  // largest READ/WRITE accepted
};

struct Verdict {
  int error = 0;         // NBD error to reply with (kNbdE*), 0 = valid
  uint32_t payload = 0;  // bytes to consume after the header, even on error
};

// Applies the rules in the order documented above.
Verdict ValidateRequest(const Request& r, const ExportView& e);

// Maps a backend errno to the NBD error set:
//   0 -> 0; EPERM, EROFS -> EPERM; ENOMEM -> ENOMEM; EINVAL -> EINVAL;
//   ENOSPC, EDQUOT, EFBIG -> ENOSPC; EOVERFLOW -> EOVERFLOW;
//   ENOTSUP/EOPNOTSUPP -> ENOTSUP; ESHUTDOWN -> ESHUTDOWN; anything else
//   (EIO included) -> EIO.
// `err` may be positive (an errno) or negative (the data path's -errno):
// either is taken as its magnitude. Idempotent on NBD values (they equal
// Linux errno), so passing a Verdict's error through it is harmless.
uint32_t ErrnoToNbd(int err);

// "READ", "WRITE", ..., or "UNKNOWN": for log lines.
const char* CommandName(uint16_t type);

}  // namespace rbdnbd::nbd
