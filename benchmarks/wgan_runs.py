"""WGAN runs at the default settings of each dataset, over several seeds, with their metrics and targets.

    python benchmarks/wgan_runs.py [--seeds 3] [--out DIR] [--only NAME ...] [--threads N] [--device cpu]

Each row is ``otdist wgan train --data DATA --lipschitz CRITIC --seed S`` with every other option at its
default, on the CPU (``--device cuda``: on a GPU; ``--steps N``: a shorter run, for the throughput).
Figures and logs go to DIR/DATA-CRITIC-sS/. The target column checks the 2-D targets: 8 Gaussians
(gp) 8/8 modes, >= 80% within 3 sigma, W1 ratio <= 1.75; 25 Gaussians 25/25, >= 70%, ratio <= 1.5;
Swiss roll ratio <= 1.5 and a final distance spread <= 0.2; flags confidence >= 0.9 and class KL
<= 0.05; clip and groupsort on 8 Gaussians >= 6/8 modes. ``ms/step`` is the wall-clock time of the
training loop per generator step (evaluations included), so runs on a loaded machine show it;
``samples/s`` counts the real and generated samples the critic and the generator see per second.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from otdist import wgan

RUNS = (
    ("8gaussians", "gp"),
    ("25gaussians", "gp"),
    ("swissroll", "gp"),
    ("flags", "gp"),
    ("digits", "gp"),
    ("8gaussians", "clip"),
    ("8gaussians", "groupsort"),
    ("8gaussians", "spectral"),
)
#: (modes, high-quality share, W1 ratio, final spread, classifier confidence, class KL) bounds per run.
TARGETS = {
    ("8gaussians", "gp"): {"modes": 8, "hq": 0.8, "ratio": 1.75},
    ("25gaussians", "gp"): {"modes": 25, "hq": 0.7, "ratio": 1.5},
    ("swissroll", "gp"): {"ratio": 1.5, "spread": 0.2},
    ("flags", "gp"): {"confidence": 0.9, "kl": 0.05},
    ("digits", "gp"): {"modes": 10, "confidence": 0.85},
    ("8gaussians", "clip"): {"modes": 6},
    ("8gaussians", "groupsort"): {"modes": 6},
}


def _fmt(value) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def meets(key, m) -> str:
    target = TARGETS.get(key)
    if target is None:
        return "—"
    covered = m.get("modes_covered", m.get("classes_covered"))
    checks = {"modes": lambda b: covered is not None and covered >= b,
              "hq": lambda b: m["high_quality_fraction"] >= b,
              "ratio": lambda b: m["w1_ratio"] <= b,
              "spread": lambda b: m["final_distance_spread"] is not None and m["final_distance_spread"] <= b,
              "confidence": lambda b: m["classifier_confidence"] >= b,
              "kl": lambda b: m["class_kl_to_uniform"] <= b}
    failed = [name for name, bound in target.items() if not checks[name](bound)]
    return "yes" if not failed else "no: " + ", ".join(failed)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="wgan-benchmark")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0 .. SEEDS-1 per run")
    parser.add_argument("--only", nargs="*", help="names like 8gaussians-gp")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    parser.add_argument("--steps", type=int, help="generator steps (default: each dataset's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device {args.device}")
    print("| data | critic | seed | steps | seconds | ms/step | samples/s | modes / classes | within 3σ / confidence | "
          "W1 ratio | final spread | class KL | distance (initial) | target met |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for data, critic in RUNS:
        name = f"{data}-{critic}"
        if args.only and name not in args.only:
            continue
        for seed in range(args.seeds):
            run = wgan.train(wgan.Config(data=data, lipschitz=critic, seed=seed, progress=False, device=args.device,
                                         steps=args.steps, out=str(Path(args.out) / f"{name}-s{seed}")))
            m = run.metrics
            covered = (f"{m['modes_covered']}/{m['modes_total']}" if "modes_covered" in m
                       else f"{m['classes_covered']}/{m['classes_total']}" if "classes_covered" in m else "—")
            distance = m.get("exact_w1_to_real", m.get("sliced_w1_to_real"))
            ms_per_step = 1000 * run.log[-1]["seconds"] / m["steps"]
            per_step = run.config.batch_size * (2 * run.config.n_critic + 1)  # critic: real + fake; generator: fake
            samples_per_s = per_step * m["steps"] / run.log[-1]["seconds"]
            print(f"| {data} | {critic} | {seed} | {m['steps']} | {m['seconds']:.0f} | {ms_per_step:.0f} | {samples_per_s:,.0f} | {covered} | "
                  f"{_fmt(m.get('high_quality_fraction', m.get('classifier_confidence')))} | {_fmt(m.get('w1_ratio'))} | "
                  f"{_fmt(m.get('final_distance_spread'))} | {_fmt(m.get('class_kl_to_uniform'))} | "
                  f"{m['distance']} {_fmt(distance)} ({_fmt(m.get('initial_distance'))}) | {meets((data, critic), m)} |",
                  flush=True)


if __name__ == "__main__":
    main()
