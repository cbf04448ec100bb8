"""Sliced and 1-D methods, measured in one run: batched 1-D W_p against loops, max-sliced against the
exact W_p it bounds, and the cost of the 1-D dual potentials.

    python benchmarks/bench_sliced.py

With ``--large``, the peak resident memory (whole process) and wall time of sliced, max-sliced and exact 1-D W_p
on 10^6 points per side in R^16 (and on the line), one fresh subprocess per case; ``--against DIR`` runs the same
cases on the otdist package found in DIR (another checkout), for before/after tables:

    nice -n 10 python benchmarks/bench_sliced.py --large [--against /path/to/other/checkout]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.stats

sys.path.insert(0, str(Path(__file__).parent))
import otdist  # noqa: E402
from _timing import HEADER, best_time, row  # noqa: E402
from otdist.methods.line import wasserstein_along_axis  # noqa: E402
from otdist.solvers import exact_1d, sliced  # noqa: E402


def along_axis(n: int = 50, m: int = 40, columns: int = 2000) -> list[str]:
    rng = np.random.default_rng(0)
    u, v, a = rng.normal(size=(n, columns)), rng.normal(1.0, 2.0, size=(m, columns)), rng.random((n, columns))
    ours = best_time(lambda: wasserstein_along_axis(u, v, a))
    scipy_loop = best_time(lambda: [scipy.stats.wasserstein_distance(u[:, k], v[:, k], a[:, k]) for k in range(columns)],
                           repeat=3)
    otdist_loop = best_time(lambda: [otdist.wasserstein(u[:, k], v[:, k], a[:, k]) for k in range(columns)], repeat=3)
    name = f"{columns} columns, n={n}, m={m}, weighted"
    return [row(f"{name} vs scipy per column", ours, scipy_loop, "scipy loop"),
            row(f"{name} vs otdist.wasserstein per column", ours, otdist_loop, "otdist loop")]


def weighted_slices(n: int = 2000, m: int = 1500, d: int = 5, n_projections: int = 200) -> list[str]:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(n, d)), rng.normal(size=(m, d)) + 0.3
    a, b = rng.random(n), rng.random(m)
    a, b = a / a.sum(), b / b.sum()
    theta = sliced.directions(d, n_projections, 0)
    px, py = theta.T @ x.T, theta.T @ y.T
    ours = best_time(lambda: exact_1d.transport_cost(px, py, a, b, 2.0))
    loop = best_time(lambda: [exact_1d.transport_cost(px[k], py[k], a, b, 2.0) for k in range(n_projections)])
    return [row(f"{n_projections} weighted slices, n={n}, m={m}: batched vs one slice at a time", ours, loop, "loop")]


def max_sliced_against_exact(n: int = 400, d: int = 5, seeds: int = 3) -> list[str]:
    lines = ["", "| seed | sliced | max-sliced (steps) | exact W_2 | bounds (sliced) | bounds (max-sliced) | max-sliced time |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        x, y = rng.normal(size=(n, d)), rng.normal(size=(n + 13, d)) * np.linspace(0.5, 2.0, d) + 0.2
        sl = otdist.transport(x, y, p=2, method="sliced")
        ms = otdist.transport(x, y, p=2, method="max-sliced")
        exact = otdist.wasserstein(x, y, p=2, method="exact")
        seconds = best_time(lambda: otdist.wasserstein(x, y, p=2, method="max-sliced"), repeat=3)
        lines.append(f"| {seed} | {sl.value:.4f} | {ms.value:.4f} ({ms.n_iter}) | {exact:.4f} | "
                     f"[{sl.bounds[0]:.4f}, {sl.bounds[1]:.4f}] | [{ms.bounds[0]:.4f}, {ms.bounds[1]:.4f}] | "
                     f"{seconds * 1e3:.1f} ms |")
    return lines


def potentials(n: int = 100_000, n_lp: int = 300) -> list[str]:
    rng = np.random.default_rng(2)
    u, v, a, b = rng.normal(size=n), rng.exponential(size=n - 7), rng.random(n), rng.random(n - 7)
    with_potentials = best_time(lambda: otdist.transport(u, v, a, b, p=2, method="1d"), repeat=3)
    value_only = best_time(lambda: otdist.wasserstein(u, v, a, b, p=2, method="1d"), repeat=3)
    res = otdist.transport(u[:n_lp], v[:n_lp], a[:n_lp], b[:n_lp], p=2, method="1d")
    lp = otdist.transport(u[:n_lp], v[:n_lp], a[:n_lp], b[:n_lp], p=2, method="dual")
    ours = best_time(lambda: otdist.transport(u[:n_lp], v[:n_lp], a[:n_lp], b[:n_lp], p=2, method="1d"))
    theirs = best_time(lambda: otdist.transport(u[:n_lp], v[:n_lp], a[:n_lp], b[:n_lp], p=2, method="dual"), repeat=2)
    return [row(f"1-D plan and potentials, n={n}, vs the value alone", with_potentials, value_only, "value only"),
            row(f"1-D plan and potentials, n={n_lp}, vs the dual LP (gaps {res.duality_gap:.1e} and "
                f"{lp.duality_gap:.1e})", ours, theirs, "HiGHS dual")]


#: Points per side and dimension of the large cases.
LARGE_N, LARGE_D = 10**6, 16
#: The large cases: (name, method, dtype, options); "torch" backpropagates to the points.
LARGE_CASES = [
    ("sliced, 200 directions (default)", "sliced", "float64", {}),
    ("sliced, 1000 directions", "sliced", "float64", {"n_projections": 1000}),
    ("sliced, float32 input", "sliced", "float32", {}),
    ("distance(metric='sliced')", "distance", "float64", {}),
    ("sliced, torch float64, value and gradient", "torch", "float64", {}),
    ("max-sliced, 200 directions (default)", "max-sliced", "float64", {}),
    ("exact 1-D W_2, uniform", "1d", "float64", {}),
    ("exact 1-D W_2, weighted", "1d-weighted", "float64", {}),
]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _large_child(method: str, dtype: str, options: dict) -> dict:
    """One large case in this process: the peak RSS before and after the call, its wall time and value."""
    rng = np.random.default_rng(0)
    shape = (LARGE_N,) if method.startswith("1d") else (LARGE_N, LARGE_D)
    x, y = rng.standard_normal(shape, dtype=dtype), rng.standard_normal(shape, dtype=dtype)
    y += 0.5
    weights = (rng.random(LARGE_N), rng.random(LARGE_N)) if method == "1d-weighted" else (None, None)
    if method == "torch":
        import torch

        x, y = torch.from_numpy(x).requires_grad_(), torch.from_numpy(y)
    before = _peak_mb()
    start = time.perf_counter()
    if method == "distance":
        value = otdist.distance(x, y, metric="sliced", seed=0, **options)
    elif method == "torch":
        value = otdist.wasserstein(x, y, method="sliced", seed=0, **options)
        value.backward()
        value = float(value.detach())
    elif method.startswith("1d"):
        value = otdist.wasserstein(x, y, *weights, p=2)
    else:
        value = otdist.wasserstein(x, y, method=method, seed=0, **options)
    seconds = time.perf_counter() - start
    return {"value": float(value), "seconds": seconds, "inputs_mb": before, "peak_mb": _peak_mb(),
            "package": str(Path(otdist.__file__).parent)}


def large(against: str | None) -> list[str]:
    env = dict(os.environ)
    if against:
        env["PYTHONPATH"] = os.pathsep.join([against, env.get("PYTHONPATH", "")])
    lines = [f"| case (n = m = {LARGE_N:.0e}, d = {LARGE_D}) | peak RSS | RSS before the call | wall | value |",
             "| --- | --- | --- | --- | --- |"]
    for name, method, dtype, options in LARGE_CASES:
        child = [sys.executable, __file__, "--child", json.dumps([method, dtype, options])]
        out = json.loads(subprocess.run(child, env=env, check=True, capture_output=True, text=True).stdout)
        lines.append(f"| {name} | {out['peak_mb']:.0f} MB | {out['inputs_mb']:.0f} MB | {out['seconds']:.1f} s | "
                     f"{out['value']:.12g} |")
    lines.append(f"\npackage: {out['package']}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="the 10^6-point cases, in subprocesses")
    parser.add_argument("--against", help="a checkout whose otdist package the large cases run on")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_large_child(*json.loads(args.child))))
        return
    if args.large:
        for line in large(args.against):
            print(line)
        return
    print(HEADER)
    for line in along_axis() + weighted_slices() + potentials():
        print(line)
    for line in max_sliced_against_exact():
        print(line)


if __name__ == "__main__":
    main()
