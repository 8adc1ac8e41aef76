#pragma once
/// \file feasible.h
/// Everything in the public API of feasible: constrained training on LibTorch.
/// See docs/guide.md for the concepts and docs/design.md for the architecture and the mathematics.

#include "feasible/audit.h"
#include "feasible/checkpoint.h"
#include "feasible/data.h"
#include "feasible/defaults.h"
#include "feasible/distributed.h"
#include "feasible/formulation.h"
#include "feasible/kinds.h"
#include "feasible/l0.h"
#include "feasible/multiplier.h"
#include "feasible/optim/augmented_dual.h"
#include "feasible/optim/extra.h"
#include "feasible/optim/nupi.h"
#include "feasible/optim/optimistic.h"
#include "feasible/optimizer.h"
#include "feasible/penalty.h"
#include "feasible/problem.h"
#include "feasible/projection.h"
#include "feasible/rates.h"
#include "feasible/selection.h"
#include "feasible/version.h"
