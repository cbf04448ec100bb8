"""WGAN runs at the default budgets, with their metrics, in one table.

    python benchmarks/wgan_runs.py [--out DIR] [--only NAME ...]

Each row is ``otdist wgan train --data DATA --lipschitz CRITIC`` with the default steps and seed 0,
on the CPU. Figures and logs go to DIR/DATA-CRITIC/.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from otdist import wgan

RUNS = (
    ("8gaussians", "gp"),
    ("8gaussians", "clip"),
    ("8gaussians", "spectral"),
    ("8gaussians", "groupsort"),
    ("25gaussians", "gp"),
    ("swissroll", "gp"),
    ("digits", "gp"),
    ("flags", "gp"),
)


def _fmt(value) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="wgan-benchmark")
    parser.add_argument("--only", nargs="*", help="names like 8gaussians-gp")
    args = parser.parse_args()
    print("| data | critic | steps | seconds | modes / classes covered | high-quality | distance to real (initial) | Spearman(critic, distance) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for data, critic in RUNS:
        name = f"{data}-{critic}"
        if args.only and name not in args.only:
            continue
        run = wgan.train(wgan.Config(data=data, lipschitz=critic, out=str(Path(args.out) / name), progress=False))
        m = run.metrics
        covered = (f"{m['modes_covered']}/{m['modes_total']}" if "modes_covered" in m
                   else f"{m['classes_covered']}/{m['classes_total']}" if "classes_covered" in m else "—")
        distance = m.get("exact_w1_to_real", m.get("sliced_w1_to_real"))
        print(f"| {data} | {critic} | {m['steps']} | {m['seconds']:.0f} | {covered} | "
              f"{_fmt(m.get('high_quality_fraction', m.get('classifier_confidence')))} | "
              f"{m['distance']} {_fmt(distance)} ({_fmt(m.get('initial_distance'))}) | "
              f"{_fmt(m['spearman_critic_vs_distance'])} |", flush=True)


if __name__ == "__main__":
    main()
