#pragma once
/// \file projection.h
/// Projections of primal parameters onto simple sets, applied in place after every primal step
/// (ConstrainedOptimizer::add_projection). Where the feasible set is this simple, projecting
/// is exact and needs no multiplier.

#include <torch/torch.h>

#include <functional>
#include <vector>

namespace feasible {

/// A projection: modifies a parameter tensor in place (called under torch::NoGradGuard).
using Projection = std::function<void(torch::Tensor&)>;

namespace projection {

/// Clamps every entry into [lower, upper] (requires lower <= upper; +-infinity leaves that
/// side open).
Projection box(double lower, double upper);

/// Clamps entry i into [lower_i, upper_i]: per-coordinate bounds, as tensors that broadcast to
/// the parameter's shape (e.g. both of the parameter's shape, or [n] for the last dimension).
/// Requires lower <= upper entry-wise and no NaN; +-infinity leaves that side open. The bounds
/// are converted to the parameter's dtype and device when applied; a shape that does not
/// broadcast is refused when the projection is added (ConstrainedOptimizer::add_projection
/// applies it at once).
Projection box(torch::Tensor lower, torch::Tensor upper);

/// As above, with the bounds given as vectors (one entry per element along the last dimension,
/// or per element of a 1-D parameter).
Projection box(const std::vector<double>& lower, const std::vector<double>& upper);

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
