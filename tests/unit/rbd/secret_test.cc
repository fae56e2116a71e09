#include "rbd/secret.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include <gtest/gtest.h>

namespace rbdnbd {
namespace {

std::string WriteTemp(const std::string& content) {
  char path[] = "/tmp/rbdnbd-secret-XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  close(fd);
  return path;
}

TEST(SecretTest, ReadsFileAndStripsTrailingNewline) {
  auto path = WriteTemp("AQBkey==\n");
  auto s = ReadSecretFile(path, "key file");
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->reveal(), "AQBkey==");
  unlink(path.c_str());
}

TEST(SecretTest, ReadsFromDescriptor) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  ASSERT_EQ(write(p[1], "passphrase", 10), 10);
  close(p[1]);
  auto s = ReadSecretFd(p[0], "passphrase");
  close(p[0]);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->reveal(), "passphrase");
}

TEST(SecretTest, ErrorsNameTheSecretButNeverItsContent) {
  auto empty = WriteTemp("\n");
  auto s = ReadSecretFile(empty, "key file");
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().message.find("key file is empty"), std::string::npos);
  unlink(empty.c_str());
  auto missing = ReadSecretFile("/nonexistent/key", "key file");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ENOENT);
  EXPECT_NE(missing.error().message.find("/nonexistent/key"), std::string::npos);
}

TEST(SecretTest, MovedFromSecretIsEmpty) {
  Secret a(std::string("top-secret"));
  Secret b(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): checking the wipe
  EXPECT_EQ(b.reveal(), "top-secret");
  Secret c;
  c = std::move(b);
  EXPECT_TRUE(b.empty());  // NOLINT
  EXPECT_EQ(c.reveal(), "top-secret");
}

}  // namespace
}  // namespace rbdnbd
