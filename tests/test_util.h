// Helpers shared by the test files.
#pragma once

#include <c10/util/Exception.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <torch/torch.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "src/state_key.h"

/// Expects `msg` (a string) to contain `piece`, printing both when it does not.
#define EXPECT_HAS(msg, piece)                               \
  EXPECT_NE(std::string(msg).find(piece), std::string::npos) \
      << "message:  " << (msg) << "\nexpected it to contain: " << (piece)

namespace feasible_test {

/// The message of the c10::Error that `f` throws (without the C++ backtrace); a test failure
/// when it throws nothing or another exception.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-c10 exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

/// This test program's temporary directory, made on first use (mkdtemp under GoogleTest's
/// TempDir()); register RemoveTempDir to remove it after the last test.
inline const std::string& temp_dir() {
  static const std::string dir = [] {
    std::string pattern = ::testing::TempDir() + "feasible_test_XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    const char* made = ::mkdtemp(buf.data());
    EXPECT_NE(made, nullptr) << "mkdtemp failed for " << pattern;
    return std::string(made ? made : "/tmp");
  }();
  return dir;
}

/// A path in temp_dir().
inline std::string temp_path(const std::string& name) { return temp_dir() + "/" + name; }

/// Removes temp_dir() after the last test: `::testing::AddGlobalTestEnvironment(new
/// feasible_test::RemoveTempDir)` once in a test program that uses it.
struct RemoveTempDir : ::testing::Environment {
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(temp_dir(), ec);
  }
};

/// A float64 vector tensor.
inline torch::Tensor dvec(const std::vector<double>& v) {
  return torch::tensor(v, torch::dtype(torch::kFloat64));
}

/// The entries of a tensor, flattened, as doubles.
inline std::vector<double> to_vec(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().to(torch::kFloat64).contiguous().reshape({-1});
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

/// Entry-wise |got - want| <= tol, naming `what` and the entry on failure.
inline void expect_vec_near(const torch::Tensor& got, const std::vector<double>& want, double tol,
                            const char* what) {
  const auto g = to_vec(got);
  ASSERT_EQ(g.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(g[i], want[i], tol) << what << " [" << i << "]";
  }
}

/// The key of a parameter in torch::optim::Optimizer::state(): the library's own helper.
using feasible::detail::key_of;

}  // namespace feasible_test
