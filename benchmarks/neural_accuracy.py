"""The neural estimator's accuracy table: translations, scaled Gaussians, shifted mixtures, and the coverage
of its standard error (n = 4096 per side, ``KRDualEstimator`` defaults).

    python benchmarks/neural_accuracy.py --seeds 3                  # translations over 3 seeds, shapes over 5
    python benchmarks/neural_accuracy.py --seeds 3 --coverage 20 --baselines

The rows come from :mod:`bench_neural_accuracy` (same samples and columns); ``--baselines`` adds, on seed 0
of each translation, plug-in exact OT, sliced W1 and Sinkhorn W1 between the same samples, and the neural
samples/s (training samples seen per second).  ``--device`` is ``cpu`` (default; the issue's targets are on a CPU) or ``cuda``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import otdist
from otdist.neural import KRDualEstimator

from bench_neural_accuracy import DIMENSIONS, coverage, run, sample


def baselines(device: str) -> None:
    print("\nseed 0 translations: the estimate against the estimators between the same samples (true W1 = 1)")
    print("| d | neural (± s.e.) | plug-in exact | sliced W1 | Sinkhorn W1 (eps = 0.01 max C) | neural seconds | samples/s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for d in DIMENSIONS:
        x, y, _ = sample("shift", d, 0)
        start = time.perf_counter()
        res = KRDualEstimator(progress=False, device=device).fit(x, y)
        seconds = time.perf_counter() - start
        processed = int((~np.isnan(res.history)).sum()) * 2 * KRDualEstimator().batch_size  # training samples seen
        plug_in = otdist.wasserstein(x, y, method="exact")
        sliced = otdist.wasserstein(x, y, method="sliced", n_projections=500)
        sink = otdist.wasserstein(x, y, method="sinkhorn", epsilon=0.01, relative=True)
        print(f"| {d} | {res.value:.3f} ± {res.standard_error:.3f} | {plug_in:.3f} | {sliced:.3f} | {sink:.3f} | "
              f"{seconds:.1f} | {processed / seconds:,.0f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the translations")
    parser.add_argument("--shape-seeds", type=int, default=5, help="seeds of the scaled Gaussians and mixtures (0: skip)")
    parser.add_argument("--coverage", type=int, default=0, metavar="SEEDS", help="coverage of W1 by value ± 2 s.e. at d = 2, 16")
    parser.add_argument("--baselines", action="store_true", help="plug-in exact, sliced and Sinkhorn on seed 0")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"n = 4096 per side, device {args.device}, torch threads = {args.threads}")
    run("shift", args.seeds, device=args.device)
    for shape in ("scale", "mixture") if args.shape_seeds else ():
        run(shape, args.shape_seeds, device=args.device)
    if args.coverage:
        coverage(args.coverage, device=args.device)
    if args.baselines:
        baselines(args.device)


if __name__ == "__main__":
    main()
