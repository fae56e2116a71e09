// SetupLogging's two formats: JSON lines that parse, with the device and image
// fields of ScopedLogFields, and the text prefix; bad options refused.
#include "common/log.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace rbdnbd {
namespace {

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/log_test_" + std::to_string(getpid()) + ".log";
    std::remove(path_.c_str());
  }
  void TearDown() override {
    spdlog::drop_all();
    std::remove(path_.c_str());
  }
  std::vector<std::string> Lines() {
    spdlog::default_logger()->flush();
    std::ifstream in(path_);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }
  void Setup(std::string_view format, std::string_view level = "trace") {
    target_ = "file:" + path_;
    ASSERT_TRUE(SetupLogging({level, target_, format}));
  }
  std::string path_, target_;
};

TEST_F(LogTest, JsonLinesParseAndCarryTheFields) {
  Setup("json");
  SetThreadName("ctl-test");
  spdlog::info("plain {}", 1);
  {
    ScopedLogFields f("/dev/nbd3", "rbd/img");
    spdlog::warn("mapped");
    {
      ScopedLogFields inner("/dev/nbd4", "");
      spdlog::debug("inner");
    }
    spdlog::error("outer again");
  }
  spdlog::info("after");
  auto lines = Lines();
  ASSERT_EQ(lines.size(), 5u);
  std::vector<nlohmann::json> j;
  for (auto& l : lines) j.push_back(nlohmann::json::parse(l));  // throws (fails) if invalid
  EXPECT_EQ(j[0]["msg"], "plain 1");
  EXPECT_EQ(j[0]["level"], "info");
  EXPECT_EQ(j[0]["thread"], "ctl-test");
  EXPECT_FALSE(j[0].contains("device"));
  EXPECT_TRUE(j[0]["time"].get<std::string>().ends_with("Z"));
  EXPECT_EQ(j[1]["device"], "/dev/nbd3");
  EXPECT_EQ(j[1]["image"], "rbd/img");
  EXPECT_EQ(j[1]["level"], "warning");
  EXPECT_EQ(j[2]["device"], "/dev/nbd4");
  EXPECT_FALSE(j[2].contains("image"));
  EXPECT_EQ(j[3]["device"], "/dev/nbd3");
  EXPECT_EQ(j[3]["image"], "rbd/img");
  EXPECT_FALSE(j[4].contains("device"));
}

TEST_F(LogTest, JsonEscapesWhateverTheMessageHolds) {
  Setup("json");
  std::string nasty = "quote\" backslash\\ newline\n tab\t bell\x07 del\x7f utf8 \xc3\xa9";
  spdlog::info("{}", nasty);
  auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u) << "a newline in a message must not split the JSON line";
  auto j = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(j["msg"].get<std::string>(), nasty);
}

TEST_F(LogTest, FieldsStayOnTheirThread) {
  Setup("json");
  ScopedLogFields f("/dev/nbd1", "rbd/a");
  std::thread([] { spdlog::info("other thread"); }).join();
  auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_FALSE(nlohmann::json::parse(lines[0]).contains("device"));
}

TEST_F(LogTest, TextHasAFieldsPrefixOnlyWhenSet) {
  Setup("text");
  spdlog::info("no fields");
  {
    ScopedLogFields f("/dev/nbd2", "rbd/b");
    spdlog::info("with fields");
  }
  auto lines = Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(lines[0].ends_with("] no fields")) << lines[0];
  EXPECT_NE(lines[1].find("[/dev/nbd2 rbd/b] with fields"), std::string::npos) << lines[1];
}

TEST_F(LogTest, LevelFiltersJsonToo) {
  Setup("json", "warn");
  spdlog::info("dropped");
  spdlog::warn("kept");
  auto lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(lines[0])["msg"], "kept");
}

TEST_F(LogTest, BadOptionsAreRefusedWithTheirName) {
  auto r = SetupLogging({"info", "stderr", "xml"});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("xml"), std::string::npos);
  auto r2 = SetupLogging({"loud", "stderr", "json"});
  ASSERT_FALSE(r2);
  EXPECT_NE(r2.error().message.find("loud"), std::string::npos);
}

TEST(JsonQuoteTest, EscapesPerRfc8259) {
  EXPECT_EQ(JsonQuote("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
}

}  // namespace
}  // namespace rbdnbd
