"""Exact solvers against scipy and POT, measured in the same run.

    python benchmarks/bench_exact.py
    python benchmarks/bench_exact.py --baseline REV   # instead: this tree's exact solvers against revision REV
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import subprocess
import sys
import tarfile
import tempfile
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


def _baseline_solvers(rev: str):
    """The ``otdist.solvers`` package of git revision ``rev``, imported as ``otdist_baseline``."""
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "archive", rev, "otdist"], cwd=root, check=True, capture_output=True).stdout
    target = Path(tempfile.mkdtemp(prefix="otdist_baseline_"))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    package = target / "otdist"
    spec = importlib.util.spec_from_file_location("otdist_baseline", package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["otdist_baseline"] = module
    spec.loader.exec_module(module)
    return importlib.import_module("otdist_baseline.solvers")


def against_baseline(rev: str) -> list[str]:
    """Each solver's ``solve`` on the same inputs, this tree against revision ``rev``, runs interleaved
    (best of ``repeat`` pairs)."""
    from otdist import solvers

    old = _baseline_solvers(rev)
    cases = []
    for n, repeat in ((300, 3), (1000, 2)):
        rng = np.random.default_rng(2)
        x, y = rng.normal(size=(n, 2)), rng.normal(size=(n, 2)) + 1.0
        a, b = rng.random(n), rng.random(n)
        cases += [(f"LP {name} n={n} d=2", name, repeat, a / a.sum(), b / b.sum(), cdist(x, y))
                  for name in ("lp_primal", "lp_dual")]
    rng = np.random.default_rng(1)
    uniform = np.full(2000, 1.0 / 2000)
    cost = cdist(rng.normal(size=(2000, 3)), rng.normal(size=(2000, 3)) + 0.5)
    cases.append(("exact n=2000 d=3", "network_simplex", 3, uniform, uniform, cost))
    lines = []
    for label, name, repeat, a, b, cost in cases:
        ours = theirs = float("inf")
        for _ in range(repeat):
            ours = min(ours, best_time(lambda: getattr(solvers, name).solve(a, b, cost), repeat=1))
            theirs = min(theirs, best_time(lambda: getattr(old, name).solve(a, b, cost), repeat=1))
        lines.append(row(f"{label}: this tree vs {rev}", ours, theirs, rev))
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="time the exact solvers against those of this git revision instead")
    args = parser.parse_args()
    print(HEADER)
    for line in against_baseline(args.baseline) if args.baseline else one_d() + network_simplex() + linear_programs():
        print(line, flush=True)
