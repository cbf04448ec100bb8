"""The ``otdist`` command line: thin wrappers around the Python API."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def _demo(args: argparse.Namespace) -> int:
    from . import compare
    from .experiments import seeds

    print("Seed examples (W1 by three exact solvers; KL and JS on the shared support, in nats)\n")
    print(seeds.format_table(seeds.seed_rows()))
    rng = np.random.default_rng(0)
    print("\nSamples: 1000 points of N(0, 1) against N(1, 1) (true W1 = 1, KL = 0.5, JS = 0.1114)\n")
    print(compare(rng.normal(size=1000), rng.normal(1.0, 1.0, size=1000), metrics=("w1", "kl", "js", "js_classifier")))
    curves = seeds.parallel_lines_curves(np.linspace(-1.0, 1.0, 41))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    seeds.plot_parallel_lines(curves, out)
    print(f"\nwrote {out}")
    return 0


def _load_samples(path: str) -> np.ndarray:
    file = Path(path)
    if not file.is_file():
        raise SystemExit(f"otdist: {path}: no such file. Pass .npy files of samples, shape (n,) or (n, d).")
    try:
        return np.load(file, allow_pickle=False)
    except ValueError as err:
        raise SystemExit(f"otdist: {path} is not a NumPy .npy array ({err}). Save samples with numpy.save.") from err


def _compare(args: argparse.Namespace) -> int:
    from . import compare

    x, y = _load_samples(args.x), _load_samples(args.y)
    try:
        table = compare(x, y, metrics=tuple(args.metrics.split(",")), progress=not args.quiet)
    except (TypeError, ValueError) as err:
        raise SystemExit(f"otdist compare: {err}") from err
    print(table)
    return 0


def _experiment(args: argparse.Namespace) -> int:
    from . import experiments

    module = experiments.get(args.name)
    options = {"seed": args.seed, "progress": not args.quiet}
    if args.n is not None:
        options["n"] = args.n
    result = module.run(**options)
    print(result.table())
    written = [module.plot(result, args.out)]
    if args.json:
        written.append(result.save_json(args.json))
    for path in written:
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .comparison import DEFAULT_METRICS, METRICS
    from .experiments import EXPERIMENTS

    parser = argparse.ArgumentParser(prog="otdist", description="Optimal-transport distances and divergences.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="W1, KL and JS on the seed examples and on Gaussian samples, plus a figure")
    demo.add_argument("--out", default="otdist-demo.png", help="where to write the figure (PNG)")
    demo.set_defaults(func=_demo)

    cmp = sub.add_parser("compare", help="distances and divergences between two samples saved with numpy.save")
    cmp.add_argument("x", help="samples of P: .npy, shape (n,) or (n, d)")
    cmp.add_argument("y", help="samples of Q: .npy, shape (m,) or (m, d)")
    cmp.add_argument("--metrics", default=",".join(DEFAULT_METRICS),
                     help=f"comma-separated, from {', '.join(METRICS)} (default: %(default)s)")
    cmp.add_argument("--quiet", action="store_true", help="no progress bar")
    cmp.set_defaults(func=_compare)

    exp = sub.add_parser("experiment", help="run one of the classic experiments; write its figure (and data)")
    exp.add_argument("name", choices=tuple(EXPERIMENTS))
    exp.add_argument("--out", required=True, help="figure to write (PNG)")
    exp.add_argument("--json", help="also write the data as JSON")
    exp.add_argument("--n", type=int, help="samples per side (default: the experiment's)")
    exp.add_argument("--seed", type=int, default=0)
    exp.add_argument("--quiet", action="store_true", help="no progress bar")
    exp.set_defaults(func=_experiment)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
