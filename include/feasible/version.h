#pragma once
/// \file version.h
/// The library's version.

namespace feasible {
/// Semantic version of the library, "MAJOR.MINOR.PATCH".
inline constexpr const char* kVersion = "0.1.0";
}  // namespace feasible
