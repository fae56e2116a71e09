// Result<T>: the control-path error type.
//
// Contract: a Result holds either a value or an Error (a positive errno-style
// code plus a human-readable context message). Members are named after
// std::expected (has_value, value, error, operator*, operator->) so that moving
// to `template <class T> using Result = std::expected<T, Error>` later is a
// one-line change. The data path does not use this type: it returns negative
// errno, because that ends up in an NBD reply anyway.
//
// Thread-safety: a plain value type; no shared state.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace rbdnbd {

struct Error {
  int code = 0;         // positive errno value (EINVAL, ENOENT, ...)
  std::string message;  // what failed and why, for a human; never a secret
};

// Mirrors std::unexpected<Error>.
class Unexpected {
 public:
  explicit Unexpected(Error e) : error_(std::move(e)) {}
  Error& error() & { return error_; }
  Error&& error() && { return std::move(error_); }

 private:
  Error error_;
};

// Err(EINVAL, "bad size '{}'", s): builds the failure side of a Result.
template <typename... Args>
Unexpected Err(int code, fmt::format_string<Args...> f, Args&&... args) {
  return Unexpected(Error{code, fmt::format(f, std::forward<Args>(args)...)});
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(const T& v) : v_(std::in_place_index<0>, v) {}                 // NOLINT
  Result(T&& v) : v_(std::in_place_index<0>, std::move(v)) {}            // NOLINT
  Result(Unexpected e) : v_(std::in_place_index<1>, std::move(e).error()) {}  // NOLINT

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { assert(has_value()); return std::get<0>(v_); }
  const T& value() const& { assert(has_value()); return std::get<0>(v_); }
  T&& value() && { assert(has_value()); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { assert(!has_value()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Unexpected e) : error_(std::move(e).error()) {}  // NOLINT

  bool has_value() const { return !error_.has_value(); }
  explicit operator bool() const { return has_value(); }
  void value() const { assert(has_value()); }
  const Error& error() const { assert(!has_value()); return *error_; }

 private:
  std::optional<Error> error_;
};

// Adds context to a failed Result's message: "opening export: <inner>".
inline Unexpected WithContext(const Error& e, std::string_view context) {
  return Unexpected(Error{e.code, fmt::format("{}: {}", context, e.message)});
}

}  // namespace rbdnbd
