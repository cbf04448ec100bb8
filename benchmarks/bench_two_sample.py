"""Throughput of the permutation two-sample test: B permutations of n points per side.

    python benchmarks/bench_two_sample.py                      # n = 500, B = 1000: energy, mmd, sliced, sinkhorn
    python benchmarks/bench_two_sample.py --metrics energy,mmd --n 1000

Each metric's test (``otdist.two_sample.two_sample_test``, its fast path) is timed once, and against it, in
the same run, the metric recomputed from scratch on each of the first ``--baseline`` permutations
(``otdist.distance`` in a loop, what a test without a pooled path does), extrapolated to B. Samples:
N(0, I_2) against N(0.1 e1, I_2).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import otdist  # noqa: E402
from otdist import two_sample  # noqa: E402

DIM = 2
SHIFT = 0.1


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="points per side")
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--baseline", type=int, default=20, help="permutations timed for the recomputing loop")
    parser.add_argument("--metrics", default="energy,mmd,sliced,sinkhorn")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(args.n, DIM)), rng.normal(size=(args.n, DIM))
    y[:, 0] += SHIFT
    z = np.concatenate([x, y])
    baseline_rows = next(two_sample.permutation_chunks(2 * args.n, args.baseline, seed=1))
    print(f"n = {args.n} per side, d = {DIM}, B = {args.permutations}")
    print("| metric | path | test time | per permutation | recomputing loop (extrapolated to B) | speed-up | p-value |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for metric in args.metrics.split(","):
        start = time.perf_counter()
        result = two_sample.two_sample_test(x, y, metric=metric, n_permutations=args.permutations, seed=0)
        elapsed = time.perf_counter() - start
        start = time.perf_counter()
        for row in baseline_rows:
            otdist.distance(z[row[:args.n]], z[row[args.n:]], metric=metric)
        loop = (time.perf_counter() - start) / args.baseline * args.permutations
        print(f"| {metric} | {result.engine} | {elapsed:.2f} s | {elapsed / args.permutations * 1e3:.2f} ms | "
              f"{loop:.1f} s | {loop / elapsed:.1f} | {result.p_value:.4g} |", flush=True)


if __name__ == "__main__":
    main()
