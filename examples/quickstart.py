"""Quick start in Python: minimize (x - 2)^2 + (y - 1)^2 subject to x + y <= 1.

The closed form (KKT): x = 1, y = 0, with multiplier lambda = 2 (the gradient 2 (x - 2, y - 1)
= (-2, -2) balances lambda (1, 1)). Run it with the module on the path, e.g.

    PYTHONPATH=build/python /usr/bin/python3 examples/quickstart.py
"""
import torch

import feasible


class Point(torch.nn.Module):
    """The model: one parameter holding (x, y)."""

    def __init__(self):
        super().__init__()
        self.xy = torch.nn.Parameter(torch.zeros(2))


def main(steps=2000, verbose=True):
    model = Point()
    target = torch.tensor([2.0, 1.0])

    problem = feasible.Problem()
    budget = problem.add_constraint("budget")  # an inequality g(x) <= 0 of one entry

    # The default optimizer: no dual step size to choose (docs/defaults.md). The primal player
    # is a feasible.optim optimizer over the module's own parameters (no copies).
    optimizer = feasible.make_default_optimizer(
        problem, feasible.optim.SGD(model.parameters(), lr=0.05))

    def closure():
        state = feasible.ProblemState((model.xy - target).pow(2).sum())
        state.observe(budget, model.xy.sum() - 1)  # the violation g(x) = x + y - 1
        return state

    for _ in range(steps):
        result = optimizer.step(closure)

    x, y = model.xy.tolist()
    lam = problem.multiplier_values("budget").item()
    if verbose:
        print(result)
        print(f"x = {x:.4f}, y = {y:.4f}, lambda = {lam:.4f}   (closed form: 1, 0, 2)")
    return x, y, lam, result


if __name__ == "__main__":
    main()
