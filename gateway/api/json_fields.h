// JsonFields: reads the fields of one JSON object of the control API, and
// names the bad field when one is wrong. Internal to gateway/api/ (the codec's
// .cc files); nothing outside the api library sees JSON.
//
// Contract: Optional() leaves *out as it was when the field is absent or null
// (a default, or an older peer that did not send it); Required() fails when it
// is absent, null or an empty string. Errors carry the reader's `code` (EINVAL
// for a request: the caller's input; EPROTO for a reply: the daemon's fault)
// and read "<what>: '<key>' must be ...". Integers must be whole, non-negative
// and in range (a negative or fractional number is an error, never wrapped).
// Any thread; borrows the object, which must outlive the reader.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "rbd/secret.h"

namespace rbdnbd::api {

// Returns the failure of a Result<void> expression from the enclosing function.
#define RBDNBD_API_TRY(expr) \
  if (auto try_ = (expr); !try_) return Unexpected(try_.error())

class JsonFields {
 public:
  JsonFields(const nlohmann::json& object, int code, std::string_view what)
      : j_(object), code_(code), what_(what) {}

  Result<void> Optional(const char* key, bool* out) const;
  Result<void> Optional(const char* key, std::string* out) const;
  Result<void> Optional(const char* key, Secret* out) const;
  template <typename T>
    requires std::is_integral_v<T> && (!std::is_same_v<T, bool>)
  Result<void> Optional(const char* key, T* out, T lo = 0, T hi = std::numeric_limits<T>::max()) const {
    const nlohmann::json* v = Find(key);
    if (v == nullptr) return {};
    uint64_t n = 0;
    if (v->is_number_unsigned()) {
      n = v->get<uint64_t>();
    } else if (v->is_number_integer() && v->get<int64_t>() >= 0) {
      n = static_cast<uint64_t>(v->get<int64_t>());  // JSON built in memory may hold a signed one
    } else {
      return Bad(key, "must be a non-negative whole number");
    }
    if (n < static_cast<uint64_t>(lo) || n > static_cast<uint64_t>(hi)) {
      return Unexpected(Error{code_, fmt::format("{}: '{}' must be {}..{}, not {}", what_, key, lo, hi, n)});
    }
    *out = static_cast<T>(n);
    return {};
  }

  // A signed whole number in lo..hi (e.g. -1 as "none").
  Result<void> OptionalSigned(const char* key, int64_t* out, int64_t lo, int64_t hi) const;

  Result<void> Required(const char* key, std::string* out) const;
  Result<void> Required(const char* key, bool* out) const;

  // Present and not null.
  bool Has(const char* key) const { return Find(key) != nullptr; }

  // Refuses a field that must not be there (e.g. a key in an attach).
  Result<void> Absent(const char* key, std::string_view why) const;

  // A failure that names `key`: "<what>: '<key>' <problem>".
  Unexpected Bad(const char* key, std::string_view problem) const;
  // A failure about the object as a whole: "<what>: <problem>".
  Unexpected Fail(std::string_view problem) const;

 private:
  const nlohmann::json* Find(const char* key) const;  // null when absent or null

  const nlohmann::json& j_;
  int code_;
  std::string what_;
};

// JSON text; bytes that are not UTF-8 (a spec or path echoed in a message)
// become U+FFFD instead of throwing, since no exception may leave the codec.
std::string DumpJson(const nlohmann::json& j, int indent = -1);

// Overwrites the bytes of a string field in place (a key or passphrase in a
// JSON copy) before the object is freed.
void WipeStringField(nlohmann::json* object, const char* key);

}  // namespace rbdnbd::api
