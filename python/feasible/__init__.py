"""feasible: constrained deep learning for PyTorch, on feasible's C++ core.

The classes and functions are those of the C++ library (include/feasible/*.h) in Pythonic
form: keyword arguments for options, snake_case, properties. Tensors pass without copies: a
torch.nn.Module's parameters are the parameters feasible steps. See docs/python.md.
"""

import torch  # noqa: F401  (loads LibTorch and registers torch's types before the module)

from . import _feasible
from ._feasible import (  # noqa: F401
    AdditivePenaltyUpdater,
    AlternatingDualPrimalOptimizer,
    AlternatingPrimalDualOptimizer,
    AuditEntry,
    AuditReport,
    Auditor,
    AugmentedLagrangian,
    CheckpointInfo,
    Constraint,
    ConstraintKind,
    ConstraintOptions,
    ConstraintResult,
    ConstraintState,
    ConstrainedOptimizer,
    Correction,
    DefaultOptimizer,
    ExtragradientOptimizer,
    FixedPenalty,
    Formulation,
    Lagrangian,
    MeanBound,
    MultiplicativePenaltyUpdater,
    MultiplierKind,
    NonFiniteError,
    NonFinitePolicy,
    NonFiniteQuantity,
    PenaltyUpdater,
    Problem,
    ProblemState,
    QuadraticPenalty,
    SaveInfo,
    SimultaneousOptimizer,
    StepResult,
    UnconstrainedOptimizer,
    Verdict,
    audit_margin,
    load,
    optim,
    projection,
    rates,
    save,
)

__version__ = _feasible.__version__

INEQUALITY = ConstraintKind.INEQUALITY
EQUALITY = ConstraintKind.EQUALITY

_add_constraint = Problem.add_constraint


def _problem_add_constraint(self, name, options=None, **kwargs):
    """Registers a constraint: `problem.add_constraint("c", kind=feasible.EQUALITY, size=3)`.

    The keyword arguments are those of ConstraintOptions (or pass a ConstraintOptions).
    Raises ValueError when the name is empty or used, or an option is invalid.
    """
    if options is None:
        options = ConstraintOptions(**kwargs)
    elif kwargs:
        raise ValueError("Problem.add_constraint: give a ConstraintOptions or keyword "
                         "arguments, not both")
    return _add_constraint(self, name, options)


Problem.add_constraint = _problem_add_constraint


def make_default_optimizer(problem, primal, **kwargs):
    """The optimizer a user gets without choosing a dual step (docs/defaults.md): `primal` is
    one feasible.optim optimizer (SGD, Adam, AdamW, RMSprop, Adagrad) or a list of them."""
    return DefaultOptimizer(problem, primal, **kwargs)
