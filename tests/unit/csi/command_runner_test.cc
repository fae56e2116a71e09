#include "csi/command_runner.h"
#include "csi/fs_tools.h"

#include <gtest/gtest.h>

namespace rbdnbd::csi {
namespace {

TEST(CommandRunnerTest, CapturesOutputAndExitCode) {
  auto r = RunCommand({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_NE(r->output.find("out"), std::string::npos);
  EXPECT_NE(r->output.find("err"), std::string::npos);
}

TEST(CommandRunnerTest, ArgumentsAreNotShellParsed) {
  auto r = RunCommand({"echo", "a;b $(x) *"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->output, "a;b $(x) *\n");
}

TEST(CommandRunnerTest, StdinIsEmpty) {
  auto r = RunCommand({"cat"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->output, "");
}

TEST(CommandRunnerTest, MissingProgramIsENOENT) {
  auto r = RunCommand({"rbd-nbdd-no-such-program"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ENOENT);
}

TEST(BlkidTest, ExitTwoIsBlank) {
  auto p = ParseBlkidExport(2, "");
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->blank);
}

TEST(BlkidTest, ReadsTypeAndPartitionTable) {
  auto fs = ParseBlkidExport(0, "DEVNAME=/dev/nbd0\nTYPE=xfs\n");
  ASSERT_TRUE(fs);
  EXPECT_FALSE(fs->blank);
  EXPECT_EQ(fs->fs_type, "xfs");
  EXPECT_EQ(fs->partition_table, "");
  auto pt = ParseBlkidExport(0, "DEVNAME=/dev/nbd0\nPTTYPE=gpt\n");
  ASSERT_TRUE(pt);
  EXPECT_EQ(pt->partition_table, "gpt");
}

TEST(BlkidTest, OtherExitCodesAreErrors) {
  auto p = ParseBlkidExport(4, "blkid: usage");
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message.find("exit 4"), std::string::npos);
  auto nothing = ParseBlkidExport(0, "DEVNAME=/dev/nbd0\n");
  ASSERT_FALSE(nothing);
}

}  // namespace
}  // namespace rbdnbd::csi
