// ConstrainedOptimizerOptions (include/feasible/optimizer.h).
#include "feasible/optimizer.h"
#include "src/validate.h"

namespace feasible {

void ConstrainedOptimizerOptions::validate() const {
  detail::Validator("ConstrainedOptimizerOptions")
      .one_of("non_finite",
              non_finite() == NonFinitePolicy::kThrow || non_finite() == NonFinitePolicy::kSkipStep,
              "NonFinitePolicy::kThrow or kSkipStep", non_finite());
}

}  // namespace feasible
