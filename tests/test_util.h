// Helpers shared by the test files.
#pragma once

#include <c10/util/Exception.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

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
