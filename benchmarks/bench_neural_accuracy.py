"""Accuracy and time of the neural KR estimator (``KRDualEstimator`` defaults), n = 4096 per side, CPU.

    python benchmarks/bench_neural_accuracy.py                  # translations, d = 2, 16, 64, 128, 3 seeds
    python benchmarks/bench_neural_accuracy.py --shapes --seeds 5   # scaled Gaussians and shifted mixtures
    python benchmarks/bench_neural_accuracy.py --coverage 20        # value +- 2 s.e. against W1, d = 2 and 16

Shapes with a closed-form W1:

* ``shift``: N(0, I_d) against N(v, I_d), |v| = 1: W1 = 1 (the optimal critic is linear).
* ``scale``: N(0, I_d) against N(0, s^2 I_d), s = 1.5: W1 = |s - 1| E|x|, E|x| = sqrt(2) Gamma((d+1)/2) /
  Gamma(d/2).  The means coincide, so a linear critic sees nothing; the optimal critic is -|x|.
* ``mixture``: (N(c, I) + N(-c, I)) / 2 with |c| = 2 against its copy shifted by v, |v| = 1: W1 = |v| = 1.

Each row prints the estimate / W1 per seed with its standard error, the value the unit (uncorrected) linear
critics would have given on the same folds where a linear critic was selected (the default before
``correct_linear``: each corrected fold value divided by its correction), the certified lower bound on the
empirical W1 between the samples (also / W1), the families selected in the folds and the seconds per fit.
``--threads`` sets torch's intra-op threads (default 1: on a shared machine two spinning threads per
process are far slower than one).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from otdist.neural import KRDualEstimator

N = 4096
SCALE = 1.5
MIXTURE_CENTRE = 2.0
DIMENSIONS = (2, 16, 64, 128)


def expected_norm(d: int) -> float:
    return math.sqrt(2) * math.exp(math.lgamma((d + 1) / 2) - math.lgamma(d / 2))


def sample(shape: str, d: int, seed: int, n: int = N):
    """(x, y, true W1) for one draw."""
    rng = np.random.default_rng([seed, d])
    v = rng.normal(size=d)
    v /= np.linalg.norm(v)
    if shape == "shift":
        return rng.normal(size=(n, d)), rng.normal(size=(n, d)) + v, 1.0
    if shape == "scale":
        return rng.normal(size=(n, d)), SCALE * rng.normal(size=(n, d)), abs(SCALE - 1) * expected_norm(d)
    centre = np.zeros(d)
    centre[0] = MIXTURE_CENTRE
    mixture = lambda: rng.normal(size=(n, d)) + np.where(rng.random((n, 1)) < 0.5, centre, -centre)  # noqa: E731
    return mixture(), mixture() + v, 1.0


def uncorrected(res) -> float:
    """The estimate with every linear critic's correction divided out (the unit critic on the same folds)."""
    return float(np.mean([v / (float(c.direction.double().norm()) if c.kind == "linear" else 1.0)
                          for v, c in zip(res.fold_values, res.critics)]))


def run(shape: str, seeds: int, dimensions=DIMENSIONS, device: str = "cpu", first_seed: int = 0) -> None:
    print(f"\n{shape}: estimate / W1 per seed (± s.e. / W1); unit linear critics instead; certified lower bound on "
          "the empirical W1 / W1")
    print("| d | W1 | mean | spread (min–max) | per seed ± s.e. | within 5% + 2 s.e. | unit linear: mean (per seed) | "
          "lower bound | families | s / fit |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for d in dimensions:
        ratios, errors, units, lowers, kinds, times = [], [], [], [], set(), []
        for seed in range(first_seed, first_seed + seeds):
            x, y, truth = sample(shape, d, seed)
            start = time.perf_counter()
            res = KRDualEstimator(progress=False, seed=seed, device=device).fit(x, y)
            times.append(time.perf_counter() - start)
            ratios.append(res.value / truth)
            errors.append(res.standard_error / truth)
            units.append(uncorrected(res) / truth)
            lowers.append(res.lower_bound / truth)
            kinds.update(res.families)
        ratios, errors = np.array(ratios), np.array(errors)
        ok = bool(np.all(np.abs(ratios - 1) <= 0.05 + 2 * errors)) and abs(ratios.mean() - 1) <= 0.05
        per_seed = ", ".join(f"{r:.3f} ± {e:.3f}" for r, e in zip(ratios, errors))
        unit = f"{np.mean(units):.3f} ({', '.join(f'{u:.3f}' for u in units)})"
        print(f"| {d} | {truth:.3f} | {ratios.mean():.3f} | {ratios.min():.3f}–{ratios.max():.3f} | {per_seed} | "
              f"{'yes' if ok else 'NO'} | {unit} | {min(lowers):.3f}–{max(lowers):.3f} | {'+'.join(sorted(kinds))} | "
              f"{np.mean(times):.1f} (max {max(times):.1f}) |", flush=True)


def coverage(seeds: int, dimensions=(2, 16), device: str = "cpu") -> None:
    """How often value ± 2 s.e. covers W1 = 1 on translations, where the estimator is unbiased (small d)."""
    print(f"\ncoverage of W1 = 1 by value ± 2 s.e., translations, seeds 0–{seeds - 1}")
    print("| d | covered | mean estimate | s.d. over seeds | mean reported s.e. |")
    print("| --- | --- | --- | --- | --- |")
    for d in dimensions:
        values, errors = [], []
        for seed in range(seeds):
            x, y, truth = sample("shift", d, seed)
            res = KRDualEstimator(progress=False, seed=seed, device=device).fit(x, y)
            values.append(res.value / truth)
            errors.append(res.standard_error / truth)
        values, errors = np.array(values), np.array(errors)
        covered = int(np.sum(np.abs(values - 1) <= 2 * errors))
        print(f"| {d} | {covered}/{seeds} | {values.mean():.4f} | {values.std(ddof=1):.4f} | {errors.mean():.4f} |",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", action="store_true", help="scaled Gaussians and shifted mixtures instead")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--coverage", type=int, default=0, metavar="SEEDS",
                        help="instead: coverage of W1 by value ± 2 s.e. over SEEDS seeds at d = 2 and 16")
    parser.add_argument("--dims", type=int, nargs="+", default=list(DIMENSIONS))
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--only", choices=("scale", "mixture"), help="with --shapes: one shape")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"n = {N} per side, CPU, torch threads = {args.threads}, {args.seeds} seeds")
    if args.coverage:
        coverage(args.coverage)
        return
    shapes = ((args.only,) if args.only else ("scale", "mixture")) if args.shapes else ("shift",)
    for shape in shapes:
        run(shape, args.seeds, tuple(args.dims), first_seed=args.first_seed)


if __name__ == "__main__":
    main()
