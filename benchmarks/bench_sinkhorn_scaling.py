"""Iterations of otdist's Sinkhorn with the default epsilon-scaling against no scaling, per epsilon stage.

    python benchmarks/bench_sinkhorn_scaling.py [--n 60] [--seeds 3]

Checks the bound ``scaled <= plain + STAGE_ITERATIONS * stages`` (the default scaling costs at most
STAGE_ITERATIONS iterations per epsilon stage more than starting at the target epsilon) on Gaussian,
clustered and uniform clouds in 3-D, p = 2, float64, L1 marginal tolerance 1e-8, epsilon relative to
the cost spread.  Prints one row per problem and the rows where the bound fails.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from otdist.cost import ground_cost
from otdist.solvers import sinkhorn as core

REL_EPSILONS = (0.05, 0.01, 0.002)
TOL = 1e-8
MAX_ITER = 20_000


def clouds(kind: str, n: int, rng: np.random.Generator):
    if kind == "gaussian":
        return rng.normal(size=(n, 3)), rng.normal(size=(n, 3)) + 0.5
    if kind == "clusters":
        return (rng.normal(size=(n, 3)) * 0.1 + rng.integers(0, 3, (n, 1)),
                rng.normal(size=(n, 3)) * 0.1 + rng.integers(0, 3, (n, 1)) * 1.2)
    return rng.random((n, 3)), rng.random((n, 3)) + 0.2


def compare(x, y, rel_eps: float):
    """(plain iterations, scaled iterations, stages, both converged) for one problem."""
    cost = ground_cost(torch.as_tensor(x)[None], torch.as_tensor(y)[None], 2, "euclidean")
    n, m = cost.shape[1:]
    a = torch.full((1, n), 1.0 / n, dtype=torch.float64)
    b = torch.full((1, m), 1.0 / m, dtype=torch.float64)
    spread = float(cost.max() - cost.min())
    eps = rel_eps * spread
    options = dict(eps_start=max(spread, eps), tol=TOL, max_iter=MAX_ITER)
    plain = core.solve(cost, a, b, eps, scaling=0.0, **options)
    scaled = core.solve(cost, a, b, eps, scaling=0.1, **options)
    stages = len(core.epsilon_schedule(eps, max(spread, eps), 0.1))
    return plain.n_iter, scaled.n_iter, stages, plain.converged and scaled.converged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    print(f"n = {args.n}, tol = {TOL:g}, bound: scaled <= plain + {core.STAGE_ITERATIONS} * stages")
    print(f"{'clouds':9} {'eps/spread':>10} {'seed':>4} {'plain':>6} {'scaled':>6} {'stages':>6}  bound")
    failures = []
    for kind in ("gaussian", "clusters", "uniform"):
        for rel_eps in REL_EPSILONS:
            for seed in range(args.seeds):
                x, y = clouds(kind, args.n, np.random.default_rng(seed))
                plain, scaled, stages, converged = compare(x, y, rel_eps)
                holds = scaled <= plain + core.STAGE_ITERATIONS * stages
                verdict = "holds" if holds else "FAILS"
                if not converged:
                    verdict += f" (a run hit max_iter={MAX_ITER})"
                print(f"{kind:9} {rel_eps:10g} {seed:4d} {plain:6d} {scaled:6d} {stages:6d}  {verdict}")
                if not holds:
                    failures.append((kind, rel_eps, seed, plain, scaled, stages))
    print(f"bound fails on {len(failures)} problem(s): {failures}")


if __name__ == "__main__":
    main()
