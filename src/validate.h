// Shared checks for the options structs' validate() (internal). Every failure throws c10::Error
// with the common message
//
//   [<context>: ]<Struct>.<field> must <rule>, got <value>
//
// so that a rule is written once and reads the same wherever it applies.
#pragma once

#include <c10/util/Exception.h>
#include <c10/util/Optional.h>
#include <c10/util/StringUtil.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

namespace feasible {
namespace detail {

/// The checks of one struct's fields. `type` names the struct ("NuPIOptions"); `context`, when
/// not empty, is prepended as "<context>: " (e.g. "Problem::add_constraint('c')").
class Validator {
 public:
  explicit Validator(const char* type, std::string context = "")
      : type_(type), prefix_(context.empty() ? std::string() : context + ": ") {}

  /// Throws "<prefix><type>.<field> must <rule>, got <got...>" unless `ok`.
  template <typename... Got>
  void require(bool ok, const char* field, const char* rule, const Got&... got) const {
    if (!ok) fail(field, c10::str(rule), got...);
  }

  /// Finite (not NaN, not +-Inf).
  void finite(const char* field, double value) const {
    require(std::isfinite(value), field, "be finite", value);
  }
  /// Finite and > 0.
  void positive(const char* field, double value) const { above(field, value, 0.0); }
  /// Finite and > `bound`.
  void above(const char* field, double value, double bound) const {
    if (!(std::isfinite(value) && value > bound)) {
      fail(field, c10::str("be finite and > ", bound), value);
    }
  }
  /// Finite and < `bound`.
  void below(const char* field, double value, double bound) const {
    if (!(std::isfinite(value) && value < bound)) {
      fail(field, c10::str("be finite and < ", bound), value);
    }
  }
  /// Finite and >= `bound`.
  void at_least(const char* field, double value, double bound) const {
    if (!(std::isfinite(value) && value >= bound)) {
      fail(field, c10::str("be finite and >= ", bound), value);
    }
  }
  /// An integer >= `bound`.
  void at_least(const char* field, int64_t value, int64_t bound) const {
    if (!(value >= bound)) fail(field, c10::str("be >= ", bound), value);
  }
  /// Unset, or finite and > 0 (an optional bound).
  void positive_or_unset(const char* field, const c10::optional<double>& value) const {
    if (value && !(std::isfinite(*value) && *value > 0)) {
      fail(field, std::string("be finite and > 0 (or unset)"), *value);
    }
  }
  /// In [lo, hi) (`Interval::kClosedOpen`) or (lo, hi) (`Interval::kOpen`); NaN is outside.
  enum class Interval { kClosedOpen, kOpen };
  void in_range(const char* field, double value, double lo, double hi, Interval interval) const {
    const bool low_ok = interval == Interval::kClosedOpen ? value >= lo : value > lo;
    if (!(low_ok && value < hi)) {
      fail(field,
           c10::str("be in ", interval == Interval::kClosedOpen ? "[" : "(", lo, ", ", hi, ")"),
           value);
    }
  }
  /// An enumerator among `choices` (e.g. "NuPIInit::kSGD or kZero"); `ok` says whether it is.
  template <typename Enum>
  void one_of(const char* field, bool ok, const char* choices, Enum value) const {
    if (!ok) fail(field, c10::str("be ", choices), static_cast<int>(value));
  }

  /// Throws "<prefix><type>.<field> must <rule>, got <got...>" (for rules not covered above).
  template <typename... Got>
  [[noreturn]] void fail(const char* field, const std::string& rule, const Got&... got) const {
    TORCH_CHECK(false, prefix_, type_, ".", field, " must ", rule, ", got ", got...);
  }

 private:
  const char* type_;
  std::string prefix_;
};

}  // namespace detail
}  // namespace feasible
