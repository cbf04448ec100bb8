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


def _wgan_train(args: argparse.Namespace) -> int:
    from . import wgan
    from .neural import distributed

    distributed.init_from_env()  # under torchrun: DDP across the ranks
    config = wgan.Config(data=args.data, lipschitz=args.lipschitz, steps=args.steps, n_critic=args.n_critic,
                         batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device, out=args.out,
                         resume=args.resume, progress=not args.quiet)
    try:
        run = wgan.train(config)
    except wgan.TrainingInterrupted as stop:
        print(f"otdist wgan: {stop}. Continue with the same command and --resume.", file=sys.stderr)
        return 130
    except (FileNotFoundError, TypeError, ValueError) as err:
        raise SystemExit(f"otdist wgan train: {err}") from err
    if distributed.world()[0] == 0:
        for key, value in run.metrics.items():
            print(f"{key}: {value}")
        for name, path in run.files.items():
            print(f"wrote {name}: {path}")
    return 0


def _wgan_sample(args: argparse.Namespace) -> int:
    from . import wgan

    try:
        sample = wgan.load_generator(args.checkpoint)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"otdist wgan sample: {err}") from err
    samples = sample(args.n, seed=args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, samples)
    print(f"wrote {out}: {samples.shape}")
    return 0


def _add_wgan(sub) -> None:
    from .neural.critics import CRITICS
    from .wgan.data import DATASETS

    wgan = sub.add_parser("wgan", help="train a WGAN whose critic is the KR critic, or sample from one")
    commands = wgan.add_subparsers(dest="wgan_command", required=True)
    train = commands.add_parser("train", help="train (or --resume) a WGAN; writes log, checkpoint, figures, metrics")
    train.add_argument("--data", choices=DATASETS, default="8gaussians")
    train.add_argument("--lipschitz", choices=CRITICS, default="gp", help="how the critic is kept 1-Lipschitz")
    train.add_argument("--steps", type=int, help="generator steps (default: per dataset)")
    train.add_argument("--n-critic", type=int, default=5, help="critic steps per generator step")
    train.add_argument("--batch-size", type=int, default=256)
    train.add_argument("--lr", type=float, help="learning rate (default: per critic, as in the WGAN papers)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    train.add_argument("--out", default="wgan-run", help="output directory")
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=_wgan_train)
    sample = commands.add_parser("sample", help="draw samples from a trained generator into a .npy file")
    sample.add_argument("--checkpoint", required=True)
    sample.add_argument("--n", type=int, default=1000)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", required=True, help=".npy file to write")
    sample.set_defaults(func=_wgan_sample)


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
    _add_wgan(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
