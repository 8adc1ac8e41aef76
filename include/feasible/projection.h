#pragma once
/// \file projection.h
/// Projections of primal parameters onto simple sets, applied in place after every primal step
/// (ConstrainedOptimizer::add_projection). Where the feasible set is this simple, projecting
/// is exact and needs no multiplier.

#include <torch/torch.h>

#include <functional>

namespace feasible {

/// A projection: modifies a parameter tensor in place (called under torch::NoGradGuard).
using Projection = std::function<void(torch::Tensor&)>;

namespace projection {

/// Clamps every entry into [lower, upper] (requires lower <= upper).
Projection box(double lower, double upper);

/// Clamps every entry to >= 0 (the non-negative orthant).
Projection nonnegative();

/// Euclidean projection of each slice along the last dimension onto the simplex
/// {z : z >= 0, sum z = radius} (radius > 0; default 1, the probability simplex), by the
/// sort-based algorithm of Held, Wolfe & Crowder (1974) / Duchi et al. (2008), O(n log n).
Projection simplex(double radius = 1.0);

/// Scales the whole tensor onto the L2 ball {z : ||z||_2 <= radius} when outside (radius > 0).
Projection l2_ball(double radius);

/// A user-supplied projection (any callable that edits the tensor in place).
inline Projection custom(std::function<void(torch::Tensor&)> fn) { return fn; }

}  // namespace projection
}  // namespace feasible
