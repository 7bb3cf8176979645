// Reading HPCALLOC_* environment variables without allocating: values are
// parsed in place from the environment block (env_value, base/process_info.h,
// which reads what getenv reads without touching getenv's code), and
// a bad value gets one warning line naming the variable and the default used.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "base/process_info.h"
#include "base/report.h"

namespace hpcalloc {

// Decimal digits with an optional binary suffix k/K, m/M, g/G (KiB, MiB, GiB).
// False on empty input, any other character, or overflow of 64 bits.
constexpr bool parse_size(std::string_view s, std::uint64_t* out) {
  if (s.empty()) return false;
  std::uint64_t shift = 0;
  switch (s.back()) {
    case 'k':
    case 'K': shift = 10; break;
    case 'm':
    case 'M': shift = 20; break;
    case 'g':
    case 'G': shift = 30; break;
    default: break;
  }
  if (shift != 0) s.remove_suffix(1);
  if (s.empty()) return false;
  std::uint64_t value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    if (__builtin_mul_overflow(value, std::uint64_t{10}, &value)) return false;
    if (__builtin_add_overflow(value, static_cast<std::uint64_t>(c - '0'), &value)) return false;
  }
  if (shift != 0 && (value >> (64 - shift)) != 0) return false;
  *out = value << shift;
  return true;
}

// 1/0, true/false, yes/no, on/off (lower case, as in the README).
constexpr bool parse_bool(std::string_view s, bool* out) {
  if (s == "1" || s == "true" || s == "yes" || s == "on") {
    *out = true;
    return true;
  }
  if (s == "0" || s == "false" || s == "no" || s == "off") {
    *out = false;
    return true;
  }
  return false;
}

namespace detail {
[[gnu::cold]] inline void warn_bad_env(const char* name, std::string_view value,
                                       std::string_view expected) {
  ReportLine line = report_line("ignoring ");
  line.text(name).text("=").text(value).text(" (expected ").text(expected).text(")");
  line.write_to(2);
}
}  // namespace detail

// The size in variable `name`, or `fallback` when it is unset, malformed or
// outside [min, max] (the last two with a warning).
inline std::uint64_t env_size(const char* name, std::uint64_t fallback, std::uint64_t min = 0,
                              std::uint64_t max = UINT64_MAX) {
  const char* raw = env_value(name);
  if (raw == nullptr) return fallback;
  std::uint64_t value = 0;
  if (!parse_size(raw, &value) || value < min || value > max) {
    ReportLine expected;
    expected.text("a size from ").dec(min).text(" to ").dec(max).text(", default ").dec(fallback);
    detail::warn_bad_env(name, raw, expected.view());
    return fallback;
  }
  return value;
}

// A delay in milliseconds from variable `name`: a number up to `max`, or -1
// (also "never") for none; `fallback` when unset or malformed (warned).
inline std::int64_t env_delay_ms(const char* name, std::int64_t fallback,
                                 std::uint64_t max = std::uint64_t{1} << 40) {
  const char* raw = env_value(name);
  if (raw == nullptr) return fallback;
  const std::string_view value(raw);
  if (value == "-1" || value == "never") return -1;
  std::uint64_t ms = 0;
  const bool digits_only = !value.empty() && value.back() >= '0' && value.back() <= '9';
  if (!digits_only || !parse_size(value, &ms) || ms > max) {
    ReportLine expected;
    expected.text("milliseconds, 0 (at once) or -1 (never); default ");
    if (fallback < 0) {
      expected.text("-1");
    } else {
      expected.dec(static_cast<std::uint64_t>(fallback));
    }
    detail::warn_bad_env(name, raw, expected.view());
    return fallback;
  }
  return static_cast<std::int64_t>(ms);
}

// The boolean in variable `name`, or `fallback` when unset or malformed.
inline bool env_bool(const char* name, bool fallback) {
  const char* raw = env_value(name);
  if (raw == nullptr) return fallback;
  bool value = false;
  if (!parse_bool(raw, &value)) {
    detail::warn_bad_env(name, raw, fallback ? "0 or 1, default 1" : "0 or 1, default 0");
    return fallback;
  }
  return value;
}

// The index of the value of variable `name` in `choices`, or `fallback` when
// it is unset or not one of them (with a warning listing the choices).
template <std::size_t kCount>
int env_choice(const char* name, const char* const (&choices)[kCount], int fallback) {
  const char* raw = env_value(name);
  if (raw == nullptr) return fallback;
  const std::string_view value(raw);
  for (std::size_t i = 0; i < kCount; ++i) {
    if (value == choices[i]) return static_cast<int>(i);
  }
  ReportLine expected;
  for (std::size_t i = 0; i < kCount; ++i) {
    expected.text(i == 0 ? "" : ", ").text(choices[i]);
  }
  expected.text("; default ").text(choices[fallback]);
  detail::warn_bad_env(name, raw, expected.view());
  return fallback;
}

}  // namespace hpcalloc
