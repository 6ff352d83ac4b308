// StrictJson: a small, strict JSON (RFC 8259) reader for untrusted file headers (SafeTensors).
// Policy: the whole input must be one valid JSON value (surrounding whitespace allowed);
// strings must be valid UTF-8 (no overlongs, no surrogates) and \u escapes must pair up;
// duplicate object keys, nesting deeper than kMaxDepth, and integers outside int64 are errors.
// Numbers keep their text plus an int64 when they are integers. Objects keep key order.
// Every problem throws JsonError with the byte offset; nothing here aborts or reads out of range.
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vbt::interop {

class JsonError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct JsonValue {
  enum class Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  bool is_integer = false;  // Number without fraction/exponent that fits int64
  int64_t integer = 0;
  std::string text;  // String: decoded UTF-8; Number: its source text
  std::vector<JsonValue> items;                             // Array
  std::vector<std::pair<std::string, JsonValue>> members;   // Object, in source order

  const JsonValue* find(std::string_view key) const;  // nullptr when absent (Object only)
  static const char* kind_name(Kind k);
};

constexpr int kMaxJsonDepth = 64;

JsonValue parse_json_strict(std::string_view input);

}  // namespace vbt::interop
