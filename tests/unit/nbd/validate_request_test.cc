// ValidateRequest(): one test per rule, plus the order in which rules apply
// and the payload the caller must drain.
#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>

#include "nbd/request_codec.h"

namespace rbdnbd::nbd {
namespace {

constexpr uint64_t kSize = 1 << 20;  // 1 MiB export
constexpr uint16_t kAllCaps = kFlagHasFlags | kFlagSendFlush | kFlagSendFua |
                              kFlagSendTrim | kFlagSendWriteZeroes |
                              kFlagSendCache;

ExportView Rw() { return ExportView{kSize, kAllCaps}; }
ExportView Ro() {
  return ExportView{kSize, static_cast<uint16_t>(kAllCaps | kFlagReadOnly)};
}
ExportView Bare() { return ExportView{kSize, kFlagHasFlags}; }

Request Req(uint16_t type, uint64_t offset, uint32_t length,
            uint16_t flags = 0) {
  return Request{flags, type, 42, offset, length};
}

int Err(const Request& r, const ExportView& e) {
  return ValidateRequest(r, e).error;
}

// --- valid requests -------------------------------------------------------

TEST(Validate, AcceptsOrdinaryRequests) {
  EXPECT_EQ(Err(Req(kCmdRead, 0, 4096), Rw()), 0);
  EXPECT_EQ(Err(Req(kCmdWrite, 4096, 4096), Rw()), 0);
  EXPECT_EQ(Err(Req(kCmdFlush, 0, 0), Rw()), 0);
  EXPECT_EQ(Err(Req(kCmdTrim, 0, kSize), Rw()), 0);
  EXPECT_EQ(Err(Req(kCmdCache, 0, 512), Rw()), 0);
  EXPECT_EQ(Err(Req(kCmdWriteZeroes, 0, 512), Rw()), 0);
}

TEST(Validate, AcceptsRequestEndingExactlyAtExportEnd) {
  EXPECT_EQ(Err(Req(kCmdRead, kSize - 1, 1), Rw()), 0);
  EXPECT_EQ(Err(Req(kCmdWrite, kSize - 4096, 4096), Rw()), 0);
}

TEST(Validate, AcceptsReadsOnReadOnlyExport) {
  EXPECT_EQ(Err(Req(kCmdRead, 0, 512), Ro()), 0);
  EXPECT_EQ(Err(Req(kCmdFlush, 0, 0), Ro()), 0);
  EXPECT_EQ(Err(Req(kCmdCache, 0, 512), Ro()), 0);
}

TEST(Validate, DiscIsAlwaysValid) {
  EXPECT_EQ(Err(Req(kCmdDisc, 0, 0), Rw()), 0);
  EXPECT_EQ(Err(Req(kCmdDisc, 0, 0), Ro()), 0);
  // Garbage fields on DISC are ignored: there is no reply to carry an error.
  EXPECT_EQ(Err(Req(kCmdDisc, UINT64_MAX, 7, 0xffff), Bare()), 0);
  EXPECT_EQ(ValidateRequest(Req(kCmdDisc, 0, 7), Rw()).payload, 0u);
}

// --- rule 1: unknown command ----------------------------------------------

TEST(Validate, UnknownCommandIsEinval) {
  for (uint16_t t : {8, 9, 100, 0xffff}) {
    EXPECT_EQ(Err(Req(t, 0, 512), Rw()), static_cast<int>(kNbdEINVAL)) << t;
  }
}

// --- rule 3: read-only ----------------------------------------------------

TEST(Validate, WritesOnReadOnlyExportAreEperm) {
  EXPECT_EQ(Err(Req(kCmdWrite, 0, 512), Ro()), static_cast<int>(kNbdEPERM));
  EXPECT_EQ(Err(Req(kCmdTrim, 0, 512), Ro()), static_cast<int>(kNbdEPERM));
  EXPECT_EQ(Err(Req(kCmdWriteZeroes, 0, 512), Ro()),
            static_cast<int>(kNbdEPERM));
}

TEST(Validate, ReadOnlyWinsOverEveryOtherProblem) {
  // Out of range, zero length, bad flags: a read-only export still says EPERM.
  EXPECT_EQ(Err(Req(kCmdWrite, kSize, 512), Ro()), static_cast<int>(kNbdEPERM));
  EXPECT_EQ(Err(Req(kCmdWrite, 0, 0), Ro()), static_cast<int>(kNbdEPERM));
  EXPECT_EQ(Err(Req(kCmdTrim, 0, 512, 0x8000), Ro()),
            static_cast<int>(kNbdEPERM));
}

// --- rule 4: block status -------------------------------------------------

TEST(Validate, BlockStatusIsEinval) {
  EXPECT_EQ(Err(Req(kCmdBlockStatus, 0, 512), Rw()),
            static_cast<int>(kNbdEINVAL));
  EXPECT_EQ(Err(Req(kCmdBlockStatus, 0, 512, kCmdFlagReqOne), Rw()),
            static_cast<int>(kNbdEINVAL));
}

// --- rule 5: flags --------------------------------------------------------

TEST(Validate, FuaAllowedOnWritingCommandsWhenAdvertised) {
  EXPECT_EQ(Err(Req(kCmdWrite, 0, 512, kCmdFlagFua), Rw()), 0);
  EXPECT_EQ(Err(Req(kCmdTrim, 0, 512, kCmdFlagFua), Rw()), 0);
  EXPECT_EQ(Err(Req(kCmdWriteZeroes, 0, 512, kCmdFlagFua), Rw()), 0);
}

TEST(Validate, FuaWithoutSendFuaIsEinval) {
  ExportView e = Rw();
  e.transmission_flags &= static_cast<uint16_t>(~kFlagSendFua);
  EXPECT_EQ(Err(Req(kCmdWrite, 0, 512), e), 0);
  EXPECT_EQ(Err(Req(kCmdWrite, 0, 512, kCmdFlagFua), e),
            static_cast<int>(kNbdEINVAL));
  EXPECT_EQ(Err(Req(kCmdTrim, 0, 512, kCmdFlagFua), e),
            static_cast<int>(kNbdEINVAL));
}

TEST(Validate, FuaOnAnyCommandIsAcceptedWhenAdvertised) {
  // The spec: with SEND_FUA the server MUST accept FUA on every command.
  EXPECT_EQ(Err(Req(kCmdRead, 0, 512, kCmdFlagFua), Rw()), 0);
  EXPECT_EQ(Err(Req(kCmdFlush, 0, 0, kCmdFlagFua), Rw()), 0);
  EXPECT_EQ(Err(Req(kCmdCache, 0, 512, kCmdFlagFua), Rw()), 0);
}

TEST(Validate, FuaOnReadWithoutSendFuaIsEinval) {
  EXPECT_EQ(Err(Req(kCmdRead, 0, 512, kCmdFlagFua), Bare()),
            static_cast<int>(kNbdEINVAL));
  EXPECT_EQ(Err(Req(kCmdRead, 0, 512), Bare()), 0);
}

TEST(Validate, NoHoleOnlyOnWriteZeroes) {
  EXPECT_EQ(Err(Req(kCmdWriteZeroes, 0, 512, kCmdFlagNoHole), Rw()), 0);
  EXPECT_EQ(
      Err(Req(kCmdWriteZeroes, 0, 512, kCmdFlagNoHole | kCmdFlagFua), Rw()), 0);
  EXPECT_EQ(Err(Req(kCmdWrite, 0, 512, kCmdFlagNoHole), Rw()),
            static_cast<int>(kNbdEINVAL));
  EXPECT_EQ(Err(Req(kCmdTrim, 0, 512, kCmdFlagNoHole), Rw()),
            static_cast<int>(kNbdEINVAL));
  EXPECT_EQ(Err(Req(kCmdRead, 0, 512, kCmdFlagNoHole), Rw()),
            static_cast<int>(kNbdEINVAL));
}

TEST(Validate, DfReqOneFastZeroAreNeverAccepted) {
  const ExportView e{kSize, static_cast<uint16_t>(kAllCaps | kFlagSendDf |
                                                  kFlagSendFastZero)};
  EXPECT_EQ(Err(Req(kCmdRead, 0, 512, kCmdFlagDf), e),
            static_cast<int>(kNbdEINVAL));
  EXPECT_EQ(Err(Req(kCmdRead, 0, 512, kCmdFlagReqOne), e),
            static_cast<int>(kNbdEINVAL));
  EXPECT_EQ(Err(Req(kCmdWriteZeroes, 0, 512, kCmdFlagFastZero), e),
            static_cast<int>(kNbdEINVAL));
}

TEST(Validate, UnknownFlagBitsAreEinval) {
  for (int bit = 5; bit < 16; ++bit) {
    const auto flag = static_cast<uint16_t>(1u << bit);
    EXPECT_EQ(Err(Req(kCmdWrite, 0, 512, flag), Rw()),
              static_cast<int>(kNbdEINVAL))
        << bit;
    EXPECT_EQ(Err(Req(kCmdRead, 0, 512, flag), Rw()),
              static_cast<int>(kNbdEINVAL))
        << bit;
  }
}

// --- rule 6: capabilities -------------------------------------------------

TEST(Validate, UnadvertisedCommandsAreEinval) {
  EXPECT_EQ(Err(Req(kCmdFlush, 0, 0), Bare()), static_cast<int>(kNbdEINVAL));
  EXPECT_EQ(Err(Req(kCmdTrim, 0, 512), Bare()), static_cast<int>(kNbdEINVAL));
  EXPECT_EQ(Err(Req(kCmdWriteZeroes, 0, 512), Bare()),
            static_cast<int>(kNbdEINVAL));
  EXPECT_EQ(Err(Req(kCmdCache, 0, 512), Bare()), static_cast<int>(kNbdEINVAL));
  // READ and WRITE need no capability.
  EXPECT_EQ(Err(Req(kCmdRead, 0, 512), Bare()), 0);
  EXPECT_EQ(Err(Req(kCmdWrite, 0, 512), Bare()), 0);
}

TEST(Validate, EachCapabilityEnablesOnlyItsCommand) {
  const ExportView flush_only{kSize, kFlagHasFlags | kFlagSendFlush};
  EXPECT_EQ(Err(Req(kCmdFlush, 0, 0), flush_only), 0);
  EXPECT_EQ(Err(Req(kCmdTrim, 0, 512), flush_only),
            static_cast<int>(kNbdEINVAL));
  const ExportView trim_only{kSize, kFlagHasFlags | kFlagSendTrim};
  EXPECT_EQ(Err(Req(kCmdTrim, 0, 512), trim_only), 0);
  EXPECT_EQ(Err(Req(kCmdWriteZeroes, 0, 512), trim_only),
            static_cast<int>(kNbdEINVAL));
}

// --- rule 7: flush fields -------------------------------------------------

TEST(Validate, FlushWithOffsetOrLengthIsEinval) {
  EXPECT_EQ(Err(Req(kCmdFlush, 512, 0), Rw()), static_cast<int>(kNbdEINVAL));
  EXPECT_EQ(Err(Req(kCmdFlush, 0, 512), Rw()), static_cast<int>(kNbdEINVAL));
}

// --- rule 8: zero length --------------------------------------------------

TEST(Validate, ZeroLengthIsEinval) {
  for (uint16_t t : {kCmdRead, kCmdWrite, kCmdTrim, kCmdWriteZeroes, kCmdCache})
    EXPECT_EQ(Err(Req(t, 0, 0), Rw()), static_cast<int>(kNbdEINVAL)) << t;
}

TEST(Validate, ZeroLengthPastEndIsStillEinvalNotEnospc) {
  EXPECT_EQ(Err(Req(kCmdWrite, kSize + 1, 0), Rw()),
            static_cast<int>(kNbdEINVAL));
}

// --- rule 9: max length ---------------------------------------------------

TEST(Validate, ReadOrWriteOverMaxLengthIsEinval) {
  const ExportView e{uint64_t{1} << 40, kAllCaps};
  EXPECT_EQ(Err(Req(kCmdRead, 0, kMaxRequestLength), e), 0);
  EXPECT_EQ(Err(Req(kCmdRead, 0, kMaxRequestLength + 1), e),
            static_cast<int>(kNbdEINVAL));
  EXPECT_EQ(Err(Req(kCmdWrite, 0, kMaxRequestLength + 1), e),
            static_cast<int>(kNbdEINVAL));
  EXPECT_EQ(Err(Req(kCmdRead, 0, UINT32_MAX), e), static_cast<int>(kNbdEINVAL));
}

TEST(Validate, MaxLengthComesFromTheExportView) {
  ExportView e = Rw();
  e.max_length = 4096;
  EXPECT_EQ(Err(Req(kCmdRead, 0, 4096), e), 0);
  EXPECT_EQ(Err(Req(kCmdRead, 0, 4097), e), static_cast<int>(kNbdEINVAL));
}

TEST(Validate, TrimAndWriteZeroesMayExceedMaxLength) {
  // The kernel sends discards of up to 4 GiB; they carry no payload.
  const ExportView e{uint64_t{1} << 40, kAllCaps};
  EXPECT_EQ(Err(Req(kCmdTrim, 0, UINT32_MAX), e), 0);
  EXPECT_EQ(Err(Req(kCmdWriteZeroes, 0, UINT32_MAX), e), 0);
  EXPECT_EQ(Err(Req(kCmdCache, 0, UINT32_MAX), e), 0);
}

// --- rule 10: range -------------------------------------------------------

TEST(Validate, PastEndIsEnospcForWrites) {
  EXPECT_EQ(Err(Req(kCmdWrite, kSize, 1), Rw()), static_cast<int>(kNbdENOSPC));
  EXPECT_EQ(Err(Req(kCmdWrite, kSize - 1, 2), Rw()),
            static_cast<int>(kNbdENOSPC));
  EXPECT_EQ(Err(Req(kCmdWriteZeroes, kSize - 512, 1024), Rw()),
            static_cast<int>(kNbdENOSPC));
}

TEST(Validate, PastEndIsEinvalForOthers) {
  EXPECT_EQ(Err(Req(kCmdRead, kSize, 1), Rw()), static_cast<int>(kNbdEINVAL));
  EXPECT_EQ(Err(Req(kCmdTrim, kSize - 1, 2), Rw()),
            static_cast<int>(kNbdEINVAL));
  EXPECT_EQ(Err(Req(kCmdCache, kSize + 512, 512), Rw()),
            static_cast<int>(kNbdEINVAL));
}

TEST(Validate, OffsetPlusLengthOverflowIsCaught) {
  const ExportView huge{UINT64_MAX, kAllCaps};
  // offset + length == 2^64 wraps to 0 and must not look "in range".
  EXPECT_EQ(Err(Req(kCmdRead, UINT64_MAX, 1), huge),
            static_cast<int>(kNbdEINVAL));
  EXPECT_EQ(Err(Req(kCmdRead, UINT64_MAX - 1, 1), huge), 0);
}

TEST(Validate, WrappingRangeIsRejected) {
  const ExportView big{UINT64_MAX - 10, kAllCaps};
  EXPECT_EQ(Err(Req(kCmdRead, UINT64_MAX - 4, 8), big),
            static_cast<int>(kNbdEINVAL));
  EXPECT_EQ(Err(Req(kCmdWrite, UINT64_MAX - 4, 8), big),
            static_cast<int>(kNbdENOSPC));
  EXPECT_EQ(Err(Req(kCmdWrite, UINT64_MAX, 4096), Rw()),
            static_cast<int>(kNbdENOSPC));
}

TEST(Validate, EmptyExportRejectsEveryRange) {
  const ExportView empty{0, kAllCaps};
  EXPECT_EQ(Err(Req(kCmdRead, 0, 1), empty), static_cast<int>(kNbdEINVAL));
  EXPECT_EQ(Err(Req(kCmdWrite, 0, 1), empty), static_cast<int>(kNbdENOSPC));
  EXPECT_EQ(Err(Req(kCmdFlush, 0, 0), empty), 0);
}

// --- order ----------------------------------------------------------------

TEST(Validate, FlagsAreCheckedBeforeRange) {
  // DF is invalid and the write is past the end: the flag rule (EINVAL)
  // must win over the range rule (ENOSPC).
  EXPECT_EQ(Err(Req(kCmdWrite, kSize, 512, kCmdFlagDf), Rw()),
            static_cast<int>(kNbdEINVAL));
}

TEST(Validate, MaxLengthIsCheckedBeforeRange) {
  EXPECT_EQ(Err(Req(kCmdWrite, kSize, kMaxRequestLength + 1), Rw()),
            static_cast<int>(kNbdEINVAL));
}

// --- payload --------------------------------------------------------------

TEST(Validate, WritePayloadIsLengthWhenValid) {
  EXPECT_EQ(ValidateRequest(Req(kCmdWrite, 0, 4096), Rw()).payload, 4096u);
}

TEST(Validate, WritePayloadIsLengthEvenWhenRejected) {
  EXPECT_EQ(ValidateRequest(Req(kCmdWrite, 0, 4096), Ro()).payload, 4096u);
  EXPECT_EQ(ValidateRequest(Req(kCmdWrite, kSize, 4096), Rw()).payload, 4096u);
  EXPECT_EQ(ValidateRequest(Req(kCmdWrite, 0, 512, 0x80), Rw()).payload, 512u);
  const Verdict big = ValidateRequest(Req(kCmdWrite, 0, UINT32_MAX), Rw());
  EXPECT_EQ(big.error, static_cast<int>(kNbdEINVAL));
  EXPECT_EQ(big.payload, UINT32_MAX);
}

TEST(Validate, NonWritesHaveNoPayload) {
  for (uint16_t t : std::initializer_list<uint16_t>{
           kCmdRead, kCmdDisc, kCmdFlush, kCmdTrim, kCmdCache, kCmdWriteZeroes,
           kCmdBlockStatus, 8}) {
    EXPECT_EQ(ValidateRequest(Req(t, 0, 4096), Rw()).payload, 0u) << t;
  }
}

}  // namespace
}  // namespace rbdnbd::nbd
