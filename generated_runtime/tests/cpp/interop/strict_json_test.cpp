// StrictJson: accepts RFC 8259 JSON and rejects what a hostile header could use to confuse a reader.
#include <gtest/gtest.h>

#include "strict_json.h"

using namespace vbt::interop;

TEST(StrictJson, ParsesNestedValuesInOrder) {
  JsonValue v = parse_json_strict(R"( {"b": [1, -2, 3.5e1, true, null], "a": {"s": "x\u00e9\ud83d\ude00\n"}}  )");
  ASSERT_EQ(v.kind, JsonValue::Kind::Object);
  ASSERT_EQ(v.members.size(), 2u);
  EXPECT_EQ(v.members[0].first, "b");
  const JsonValue& arr = v.members[0].second;
  ASSERT_EQ(arr.items.size(), 5u);
  EXPECT_TRUE(arr.items[0].is_integer);
  EXPECT_EQ(arr.items[1].integer, -2);
  EXPECT_FALSE(arr.items[2].is_integer);
  EXPECT_EQ(arr.items[2].text, "3.5e1");
  EXPECT_TRUE(arr.items[3].boolean);
  EXPECT_EQ(arr.items[4].kind, JsonValue::Kind::Null);
  EXPECT_EQ(v.find("a")->find("s")->text, "x\xC3\xA9\xF0\x9F\x98\x80\n");
  EXPECT_EQ(v.find("zz"), nullptr);
}

TEST(StrictJson, Int64Bounds) {
  EXPECT_EQ(parse_json_strict("9223372036854775807").integer, INT64_MAX);
  EXPECT_EQ(parse_json_strict("-9223372036854775808").integer, INT64_MIN);
  EXPECT_FALSE(parse_json_strict("9223372036854775808").is_integer);
  EXPECT_FALSE(parse_json_strict("123456789012345678901234567890").is_integer);
}

TEST(StrictJson, RejectsMalformedInput) {
  const char* bad[] = {
      "",  "{",  "{\"a\":1,}",  "[1,]",  "{\"a\":1}x",  "{\"a\" 1}",  "01",  "1.",  "1e",  "-",  "tru",
      "\"abc",  "\"\\x\"",  "\"\\u12\"",  "\"\\ud800\"",  "\"\\udc00\"",  "\"\\ud800\\u0041\"",
      "{\"a\":1,\"a\":2}",    // duplicate key
      "\"\x01\"",             // raw control character
      "\"\xC0\xAF\"",         // overlong UTF-8
      "\"\xED\xA0\x80\"",     // UTF-8-encoded surrogate
      "\"\x80\"",             // stray continuation byte
      "\"\xF4\x90\x80\x80\"", // above U+10FFFF
      "\"\xE2\x82\"",         // truncated sequence
      "{1:2}",
  };
  for (const char* s : bad) EXPECT_THROW(parse_json_strict(s), JsonError) << "input: " << s;
}

TEST(StrictJson, DepthIsBounded) {
  std::string ok(kMaxJsonDepth, '['), ok_close(kMaxJsonDepth, ']');
  EXPECT_NO_THROW(parse_json_strict(ok + ok_close));
  std::string deep(100000, '[');
  EXPECT_THROW(parse_json_strict(deep), JsonError);
}
