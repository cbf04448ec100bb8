"""The ``otdist`` command line: thin wrappers around the Python API."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def _demo(args: argparse.Namespace) -> int:
    from .experiments import seeds

    print("Seed examples (W1 by three exact solvers; KL and JS on the shared support, in nats)\n")
    print(seeds.format_table(seeds.seed_rows()))
    curves = seeds.parallel_lines_curves(np.linspace(-1.0, 1.0, 41))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    seeds.plot_parallel_lines(curves, out)
    print(f"\nwrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otdist", description="Optimal-transport distances and divergences.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="compare W1 (exact, LP primal, LP dual), KL and JS on the seed examples")
    demo.add_argument("--out", default="otdist-demo.png", help="where to write the figure (PNG)")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
