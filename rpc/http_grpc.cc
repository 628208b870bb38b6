#include "rpc/http_grpc.h"

#include <cmath>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/utf8.h"

namespace txcoord {
namespace {

constexpr int64_t kMaxExactInJson = int64_t{1} << 53;

}  // namespace

std::string EnumName(const std::string& full, const std::string& prefix) {
  return absl::StartsWith(full, prefix) ? full.substr(prefix.size()) : full;
}

absl::Status ValueFromJson(const nlohmann::json& json, const std::string& where, v1::Value* out) {
  switch (json.type()) {
    case nlohmann::json::value_t::null:
      out->set_null_value(true);
      return absl::OkStatus();
    case nlohmann::json::value_t::boolean:
      out->set_int_value(json.get<bool>() ? 1 : 0);
      return absl::OkStatus();
    case nlohmann::json::value_t::number_integer:
      out->set_int_value(json.get<int64_t>());
      return absl::OkStatus();
    case nlohmann::json::value_t::number_unsigned:
      if (json.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) break;
      out->set_int_value(json.get<int64_t>());
      return absl::OkStatus();
    case nlohmann::json::value_t::number_float:
      out->set_real_value(json.get<double>());
      return absl::OkStatus();
    case nlohmann::json::value_t::string: {
      const std::string text = json.get<std::string>();
      if (absl::Status s = CheckUtf8(where, text); !s.ok()) return s;
      out->set_text_value(text);
      return absl::OkStatus();
    }
    case nlohmann::json::value_t::object: {
      if (json.size() != 1) break;
      // Through an iterator: binding to *json.items().begin() would keep a
      // reference into a temporary that dies at the end of the statement.
      const auto first = json.cbegin();
      const std::string& key = first.key();
      const nlohmann::json& v = first.value();
      if (key == "int" && v.is_string()) {
        int64_t parsed = 0;
        if (!absl::SimpleAtoi(v.get<std::string>(), &parsed)) break;
        out->set_int_value(parsed);
        return absl::OkStatus();
      }
      if (key == "real" && v.is_number()) {
        out->set_real_value(v.get<double>());
        return absl::OkStatus();
      }
      if (key == "blob" && v.is_string()) {
        std::string bytes;
        if (!absl::Base64Unescape(v.get<std::string>(), &bytes)) {
          return absl::InvalidArgumentError(absl::StrCat(where, ".blob is not valid base64"));
        }
        out->set_blob_value(bytes);
        return absl::OkStatus();
      }
      break;
    }
    default:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(where,
                   " must be null, true/false, a number, a string, {\"int\": \"<decimal>\"}, "
                   "{\"real\": <number>} or {\"blob\": \"<base64>\"}"));
}

nlohmann::json ValueToJson(const v1::Value& value) {
  switch (value.kind_case()) {
    case v1::Value::kIntValue:
      if (value.int_value() > kMaxExactInJson || value.int_value() < -kMaxExactInJson) {
        return {{"int", absl::StrCat(value.int_value())}};
      }
      return value.int_value();
    case v1::Value::kRealValue:
      if (!std::isfinite(value.real_value())) return {{"real", nullptr}};
      return value.real_value();
    case v1::Value::kTextValue:
      // SQL can make ill-formed TEXT (CAST(x'ff' AS TEXT)): kept byte-exact.
      if (!CheckUtf8("text", value.text_value()).ok()) {
        return {{"text_base64", absl::Base64Escape(value.text_value())}};
      }
      return value.text_value();
    case v1::Value::kBlobValue:
      return {{"blob", absl::Base64Escape(value.blob_value())}};
    default:
      return nullptr;
  }
}

nlohmann::json TransactionToJson(const v1::Transaction& tx) {
  nlohmann::json branches = nlohmann::json::array();
  for (const v1::Branch& b : tx.branches()) {
    branches.push_back({{"participant", b.participant()},
                        {"endpoint", b.endpoint()},
                        {"vote", b.vote() == v1::VOTE_UNSPECIFIED
                                     ? nlohmann::json(nullptr)
                                     : nlohmann::json(EnumName(v1::Vote_Name(b.vote()), "VOTE_"))},
                        {"acknowledged", b.acknowledged()},
                        {"phase2_attempts", b.phase2_attempts()},
                        {"last_error", b.last_error()},
                        {"heuristic", b.heuristic()},
                        {"heuristic_mixed", b.heuristic_mixed()},
                        {"awaited", b.awaited()},
                        {"last_attempt_unix_ms", b.last_attempt_unix_ms()}});
  }
  return {{"txid", tx.txid()},
          {"state", EnumName(v1::TxState_Name(tx.state()), "TX_STATE_")},
          {"branches", branches},
          {"begin_unix_ms", tx.begin_unix_ms()},
          {"deadline_unix_ms", tx.deadline_unix_ms()},
          {"reason", tx.reason()},
          {"decided_unix_ms", tx.decided_unix_ms()}};
}

}  // namespace txcoord
