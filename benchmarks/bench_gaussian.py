"""Gaussian (Bures) W_2 at d = 2048 from n = 10 000 samples each, against POT and a scipy.linalg.sqrtm
implementation (the pytorch-fid formula), measured in the same run.

    python benchmarks/bench_gaussian.py                 # d = 2048, n = 10 000
    python benchmarks/bench_gaussian.py --d 256 --n 2000 --repeat 3

Every reference gets the same ddof = 1 covariances (np.cov), so all three compute the same number; the
table prints each one's value and its relative difference from otdist's. "from samples" times the whole
computation, covariances included (otdist: ``wasserstein(x, y, p=2, method="gaussian")``); "from
covariances" times the closed form alone (otdist: ``gaussian_w2``, input checks included).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import ot
import scipy.linalg

sys.path.insert(0, str(Path(__file__).parent))
import otdist  # noqa: E402
import otdist.methods.gaussian  # noqa: E402,F401  (registers method="gaussian")
from otdist.gaussian import gaussian_w2  # noqa: E402
from _timing import HEADER, best_time, row  # noqa: E402


def moments(x):
    return x.mean(axis=0), np.cov(x, rowvar=False)


def pot_w2(m1, c1, m2, c2) -> float:
    return float(ot.gaussian.bures_wasserstein_distance(m1, m2, c1, c2))


def sqrtm_w2(m1, c1, m2, c2) -> float:
    """pytorch-fid's formula: FID = ‖Δm‖² + tr(C1 + C2 - 2 sqrtm(C1 C2)), real part taken; W_2 = √FID."""
    covmean = scipy.linalg.sqrtm(c1 @ c2)
    fid = np.sum((m1 - m2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * np.trace(np.real(covmean))
    return float(np.sqrt(max(fid, 0.0)))


def samples(d: int, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    mixing = [rng.normal(size=(d, d)) / np.sqrt(d) for _ in range(2)]
    x = rng.normal(size=(n, d)) @ mixing[0]
    y = rng.normal(size=(n, d)) @ mixing[1] + 0.1
    return x, y


def timed(fn, repeat: int, cpu: dict, key: str):
    """(value of the first call, best wall time over ``repeat`` calls); the best CPU time of the process
    (all its threads, ``time.process_time``) goes to ``cpu[key]``: on a shared machine it is the figure
    that does not depend on the other jobs."""
    values, cpu_times = [], []

    def call():
        start = time.process_time()
        values.append(fn())
        cpu_times.append(time.process_time() - start)

    seconds = best_time(call, repeat=repeat)
    cpu[key] = min(cpu_times)
    return values[0], seconds


def main(d: int, n: int, repeat: int) -> list[str]:
    x, y = samples(d, n)
    (m1, c1), (m2, c2) = moments(x), moments(y)
    cpu = {}
    ours, t_ours = timed(lambda: otdist.wasserstein(x, y, p=2, method="gaussian"), repeat, cpu, "otdist from samples")
    cov_ours, t_cov_ours = timed(lambda: gaussian_w2(m1, c1, m2, c2), repeat, cpu, "otdist from covariances")
    references = {
        "POT bures_wasserstein_distance": pot_w2,
        "scipy.linalg.sqrtm (pytorch-fid formula)": sqrtm_w2,
    }
    lines = [f"d = {d}, n = m = {n}, float64, best of {repeat}; otdist from samples: W_2 = {ours:.12g}", "", HEADER]
    values = []
    for label, reference in references.items():
        value, t_samples = timed(lambda: reference(*moments(x), *moments(y)), repeat, cpu, f"{label} from samples")
        _, t_cov = timed(lambda: reference(m1, c1, m2, c2), repeat, cpu, f"{label} from covariances")
        lines.append(row(f"from samples vs {label}", t_ours, t_samples, label.split()[0]))
        lines.append(row(f"from covariances vs {label}", t_cov_ours, t_cov, label.split()[0]))
        values.append(f"{label}: W_2 = {value:.12g}, relative difference from otdist {abs(value - ours) / ours:.2e}")
    lines += ["", f"otdist gaussian_w2 on the covariances: W_2 = {cov_ours:.12g}, relative difference "
              f"{abs(cov_ours - ours) / ours:.2e}", *values, "",
              "CPU time (time.process_time, best of the same calls):"]
    lines += [f"- {key}: {seconds:.3f} s" for key, seconds in cpu.items()]
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    start = time.perf_counter()
    print("\n".join(main(args.d, args.n, args.repeat)))
    print(f"\n(total {time.perf_counter() - start:.0f} s)")
