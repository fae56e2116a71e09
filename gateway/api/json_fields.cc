#include "api/json_fields.h"

#include <cstring>

namespace rbdnbd::api {

using nlohmann::json;

const json* JsonFields::Find(const char* key) const {
  auto it = j_.find(key);
  if (it == j_.end() || it->is_null()) return nullptr;
  return &*it;
}

Unexpected JsonFields::Bad(const char* key, std::string_view problem) const {
  return Unexpected(Error{code_, fmt::format("{}: '{}' {}", what_, key, problem)});
}

Unexpected JsonFields::Fail(std::string_view problem) const {
  return Unexpected(Error{code_, fmt::format("{}: {}", what_, problem)});
}

Result<void> JsonFields::Optional(const char* key, bool* out) const {
  const json* v = Find(key);
  if (v == nullptr) return {};
  if (!v->is_boolean()) return Bad(key, "must be true or false");
  *out = v->get<bool>();
  return {};
}

Result<void> JsonFields::Optional(const char* key, std::string* out) const {
  const json* v = Find(key);
  if (v == nullptr) return {};
  if (!v->is_string()) return Bad(key, "must be a string");
  *out = v->get<std::string>();
  return {};
}

Result<void> JsonFields::Optional(const char* key, Secret* out) const {
  const json* v = Find(key);
  if (v == nullptr) return {};
  if (!v->is_string()) return Bad(key, "must be a string");  // never the value: it is a secret
  *out = Secret(std::string(v->get_ref<const std::string&>()));  // no named copy left behind
  return {};
}

Result<void> JsonFields::OptionalSigned(const char* key, int64_t* out, int64_t lo, int64_t hi) const {
  const json* v = Find(key);
  if (v == nullptr) return {};
  int64_t n = 0;
  if (v->is_number_integer() && !v->is_number_unsigned()) {
    n = v->get<int64_t>();
  } else if (v->is_number_unsigned() && v->get<uint64_t>() <= static_cast<uint64_t>(hi)) {
    n = static_cast<int64_t>(v->get<uint64_t>());
  } else if (v->is_number_unsigned()) {
    return Unexpected(Error{code_, fmt::format("{}: '{}' must be {}..{}", what_, key, lo, hi)});
  } else {
    return Bad(key, "must be a whole number");
  }
  if (n < lo || n > hi) {
    return Unexpected(Error{code_, fmt::format("{}: '{}' must be {}..{}, not {}", what_, key, lo, hi, n)});
  }
  *out = n;
  return {};
}

Result<void> JsonFields::Required(const char* key, std::string* out) const {
  if (Find(key) == nullptr) return Bad(key, "is required");
  RBDNBD_API_TRY(Optional(key, out));
  if (out->empty()) return Bad(key, "is required (empty)");
  return {};
}

Result<void> JsonFields::Required(const char* key, bool* out) const {
  if (Find(key) == nullptr) return Bad(key, "is required");
  return Optional(key, out);
}

Result<void> JsonFields::Absent(const char* key, std::string_view why) const {
  const json* v = Find(key);
  if (v == nullptr || (v->is_string() && v->get_ref<const std::string&>().empty())) return {};
  return Bad(key, why);
}

std::string DumpJson(const json& j, int indent) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

void WipeStringField(json* object, const char* key) {
  if (!object->is_object()) return;
  auto it = object->find(key);
  if (it == object->end() || !it->is_string()) return;
  auto& s = it->get_ref<std::string&>();
  explicit_bzero(s.data(), s.size());
  s.clear();
}

}  // namespace rbdnbd::api
