"""Exact solvers against scipy and POT, measured in the same run.

    python benchmarks/bench_exact.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import ot
import scipy.stats
from scipy.spatial.distance import cdist

sys.path.insert(0, str(Path(__file__).parent))
import otdist  # noqa: E402
from _timing import HEADER, best_time, row  # noqa: E402


def one_d(n: int = 1_000_000) -> list[str]:
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=n), rng.normal(1.0, 2.0, size=n)
    uw, vw = rng.random(n), rng.random(n)
    sort_both = best_time(lambda: (np.sort(u), np.sort(v)))
    lines = []
    for label, args in [("uniform", (u, v)), ("weighted", (u, v, uw, vw))]:
        ours = best_time(lambda: otdist.wasserstein(*args))
        lines.append(row(f"1-D n=1e6 {label} vs scipy", ours, best_time(lambda: scipy.stats.wasserstein_distance(*args)), "scipy"))
        pot_args = (u, v) if len(args) == 2 else (u, v, uw / uw.sum(), vw / vw.sum())
        lines.append(row(f"1-D n=1e6 {label} vs POT", ours, best_time(lambda: ot.wasserstein_1d(*pot_args, p=1)), "POT"))
        lines.append(row(f"1-D n=1e6 {label} vs sorting both arrays", ours, sort_both, "np.sort x2"))
    return lines


def network_simplex(n: int = 2000) -> list[str]:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(n, 3)), rng.normal(size=(n, 3)) + 0.5
    a = b = np.full(n, 1.0 / n)
    ours = best_time(lambda: otdist.wasserstein(x, y, method="exact"), repeat=3)
    theirs = best_time(lambda: ot.emd2(a, b, cdist(x, y)), repeat=3)
    return [row(f"exact n={n} d=3 vs ot.emd2 (cost matrix included in both)", ours, theirs, "POT")]


def linear_programs(n: int = 300) -> list[str]:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(n, 2)), rng.normal(size=(n, 2)) + 1.0
    a, b = rng.random(n), rng.random(n)
    theirs = best_time(lambda: scipy.stats.wasserstein_distance_nd(x, y, a, b), repeat=3)
    return [
        row(f"LP {method} n={n} d=2 vs scipy wasserstein_distance_nd", best_time(lambda: otdist.wasserstein(x, y, a, b, method=method), repeat=3), theirs, "scipy")
        for method in ("primal", "dual")
    ]


if __name__ == "__main__":
    print(HEADER)
    for line in one_d() + network_simplex() + linear_programs():
        print(line, flush=True)
