#include "cli/json_writer.h"

#include "gtest/gtest.h"

namespace txcoord::cli {
namespace {

TEST(JsonWriterTest, NestsWithCommasInTheRightPlaces) {
  JsonWriter json;
  json.BeginObject();
  json.Key("a").Int(-1).Key("b").BeginArray().Bool(true).Null().Uint(7).EndArray();
  json.Key("c").BeginObject().EndObject();
  json.EndObject();
  EXPECT_EQ(json.str(), R"({"a":-1,"b":[true,null,7],"c":{}})");
}

TEST(JsonWriterTest, EscapesQuotesBackslashesAndControlBytes) {
  JsonWriter json;
  json.String("say \"hi\"\\\n\t\x01 é");
  EXPECT_EQ(json.str(), "\"say \\\"hi\\\"\\\\\\n\\t\\u0001 é\"");
}

}  // namespace
}  // namespace txcoord::cli
