"""The ``otdist`` command line: thin wrappers around the Python API.

A user error (bad option, missing or corrupt file, an output that exists or cannot be written)
is reported as one line on stderr with exit status 2; anything else is a bug and keeps its
traceback. Every file is written atomically (:mod:`otdist._io`), and an existing output is only
replaced with ``--force`` (or continued with ``wgan train --resume``).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
from pathlib import Path

import numpy as np

from .exceptions import InputError, OTDistError

#: Exit status of a user error (as argparse uses for usage errors); 130 after Ctrl-C in training.
USAGE_ERROR = 2
INTERRUPTED = 130
#: Samples per side of the Gaussian comparison printed by ``otdist demo``.
DEMO_SAMPLES = 1000
#: Metrics of ``compare`` whose solver takes ``progress`` (its own bar, under the bar over metrics).
PROGRESS_METRICS = ("sliced", "neural", "sinkhorn")


class UsageError(Exception):
    """A command-line mistake (argparse's errors included): reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def metric_option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` of ``--option``: the value parsed as JSON (numbers, true/false, lists), else kept as text."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def seed_argument(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer seed, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer seed, got {value}")
    return value


def _output(path: str, option: str, *, force: bool, suffixes: tuple[str, ...] = ()) -> Path:
    """``path`` checked before any work: suffix, not existing (unless ``force``), parent writable."""
    out = Path(path)
    if suffixes and out.suffix.lower() not in suffixes:
        raise UsageError(f"{option} must end in {', '.join(suffixes)}; got {path!r}. Change the file name's suffix.")
    if out.exists() and not force:
        raise UsageError(f"{option} {path} already exists. Pass --force to overwrite it, or choose another path.")
    if out.is_dir():
        raise UsageError(f"{option} {path} is a directory; a file is written there. Choose a file path.")
    writable_directory(out.parent, option)
    return out


def writable_directory(directory: Path, option: str) -> None:
    blocking = next((p for p in (directory, *directory.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise UsageError(f"{option}: {blocking} is a file, not a directory. "
                         "Choose a path in a writable directory.")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{option}: cannot create the directory {directory} ({err.strerror or err}). "
                         "Choose a path in a writable directory.") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"{option}: the directory {directory} is not writable. Choose a path in a writable directory.")


def _demo(args: argparse.Namespace) -> int:
    from . import compare
    from .experiments import seeds

    out = _output(args.out, "--out", force=args.force, suffixes=_figure_formats())
    print("Seed examples (W1 by three exact solvers; KL and JS on the shared support, in nats)\n")
    print(seeds.format_table(seeds.seed_rows()))
    rng = np.random.default_rng(0)
    print(f"\nSamples: {DEMO_SAMPLES} points of N(0, 1) against N(1, 1) (true W1 = 1, KL = 0.5, JS = 0.1114)\n")
    print(compare(rng.normal(size=DEMO_SAMPLES), rng.normal(1.0, 1.0, size=DEMO_SAMPLES),
                  metrics=("w1", "kl_knn", "js_knn", "js_classifier")))
    curves = seeds.parallel_lines_curves(np.linspace(-1.0, 1.0, 41))
    seeds.plot_parallel_lines(curves, out)
    print(f"\nwrote {out}")
    return 0


def _figure_formats() -> tuple[str, ...]:
    from ._io import FIGURE_FORMATS

    return FIGURE_FORMATS


def load_samples(path: str) -> np.ndarray:
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{path}: no such file. Pass .npy files of samples, shape (n,) or (n, d).")
    try:
        return np.load(file, allow_pickle=False)
    except (ValueError, EOFError) as err:
        reason = " ".join(str(err).split())
        raise InputError(f"{path} is not a NumPy .npy array of numbers ({reason}). Save samples with numpy.save.") from None


def _compare(args: argparse.Namespace) -> int:
    from . import compare

    metrics = tuple(m.strip() for m in args.metrics.split(","))
    x, y = load_samples(args.x), load_samples(args.y)
    progress = not args.quiet
    options = {m: {"progress": True} for m in metrics if m in PROGRESS_METRICS and progress}
    print(compare(x, y, metrics=metrics, options=options, progress=progress))
    return 0


def _metrics(args: argparse.Namespace) -> int:
    from . import registry

    print(registry.format_table())
    return 0


def _experiment(args: argparse.Namespace) -> int:
    from . import experiments

    module = experiments.get(args.name)
    out = _output(args.out, "--out", force=args.force, suffixes=_figure_formats())
    json_out = _output(args.json, "--json", force=args.force, suffixes=(".json",)) if args.json else None
    accepted = inspect.signature(module.run).parameters
    options = {"seed": args.seed, "progress": not args.quiet}
    if args.n is not None:
        if "n" not in accepted:
            raise UsageError(f"experiment {args.name} takes no --n (it uses fixed examples). Drop --n.")
        options["n"] = args.n
    result = module.run(**options)
    print(result.table())
    written = [module.plot(result, out)]
    if json_out is not None:
        written.append(result.save_json(json_out))
    for path in written:
        print(f"wrote {path}")
    return 0


def _wgan_out(args: argparse.Namespace) -> None:
    """A new run refuses a non-empty --out unless --force; --resume needs the directory."""
    out = Path(args.out)
    if args.resume:
        return  # train() checks the checkpoint and its configuration
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out} is a file; a run writes a directory. Choose another path.")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise UsageError(f"--out {args.out} already holds files. Pass --resume to continue that run, --force to "
                         "overwrite it, or choose another directory.")
    writable_directory(out, "--out")


def _wgan_train(args: argparse.Namespace) -> int:
    from . import wgan
    from .neural import distributed

    config = wgan.Config(data=args.data, lipschitz=args.lipschitz, steps=args.steps, n_critic=args.n_critic,
                         batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device, out=args.out,
                         resume=args.resume, progress=not args.quiet, eval_samples=args.eval_samples)
    config.validated()  # refuse bad options before touching --out
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun only the first rank writes
        _wgan_out(args)
    distributed.init_from_env()  # under torchrun: DDP across the ranks
    try:
        run = wgan.train(config)
    except wgan.TrainingInterrupted as stop:
        print(f"otdist wgan: {stop}. Continue with the same command and --resume.", file=sys.stderr)
        return INTERRUPTED
    if distributed.world()[0] == 0:
        for key, value in run.metrics.items():
            print(f"{key}: {value}")
        for name, path in run.files.items():
            print(f"wrote {name}: {path}")
    return 0


def _wgan_sample(args: argparse.Namespace) -> int:
    from . import _io, wgan

    out = _output(args.out, "--out", force=args.force, suffixes=(".npy",))
    sample = wgan.load_generator(args.checkpoint)
    samples = sample(args.n, seed=args.seed)
    _io.save_npy(out, samples)
    print(f"wrote {out}: {samples.shape}")
    return 0


def _add_wgan(sub) -> None:
    from .neural.critics import CRITICS
    from .wgan.data import DATASETS
    from .wgan.train import EVAL_SAMPLES

    wgan = sub.add_parser("wgan", help="train a WGAN whose critic is the KR critic, or sample from one")
    commands = wgan.add_subparsers(dest="wgan_command", required=True)
    train = commands.add_parser("train", help="train (or --resume) a WGAN; writes log, checkpoint, figures, metrics")
    train.add_argument("--data", choices=DATASETS, default="8gaussians")
    train.add_argument("--lipschitz", choices=CRITICS, default="gp", help="how the critic is kept 1-Lipschitz")
    train.add_argument("--steps", type=positive_int, help="generator steps (default: per dataset)")
    train.add_argument("--n-critic", type=positive_int, help="critic steps per generator step (default: per dataset)")
    train.add_argument("--batch-size", type=positive_int, help="samples per batch (default: per dataset)")
    train.add_argument("--lr", type=float, help="learning rate (default: per dataset and critic, see otdist.wgan.recipes)")
    train.add_argument("--seed", type=seed_argument, default=0)
    train.add_argument("--eval-samples", type=positive_int, default=EVAL_SAMPLES,
                       help="generated and real points per evaluation and per draw of the W1 ratio (default: %(default)s)")
    train.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    train.add_argument("--out", default="wgan-run", help="output directory")
    mode = train.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    mode.add_argument("--force", action="store_true", help="overwrite the files of an existing OUT")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=_wgan_train)
    sample = commands.add_parser("sample", help="draw samples from a trained generator into a .npy file")
    sample.add_argument("--checkpoint", required=True)
    sample.add_argument("--n", type=positive_int, default=1000)
    sample.add_argument("--seed", type=seed_argument, default=0)
    sample.add_argument("--out", required=True, help=".npy file to write")
    sample.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    sample.set_defaults(func=_wgan_sample)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .comparison import DEFAULT_METRICS, sample_metrics
    from .experiments import EXPERIMENTS

    parser = _Parser(prog="otdist", description="Optimal-transport distances and divergences.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="W1, KL and JS on the seed examples and on Gaussian samples, plus a figure")
    demo.add_argument("--out", default="otdist-demo.png", help="where to write the figure (PNG, PDF or SVG)")
    demo.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    demo.set_defaults(func=_demo)

    cmp = sub.add_parser("compare", help="distances and divergences between two samples saved with numpy.save")
    cmp.add_argument("x", help="samples of P: .npy, shape (n,) or (n, d)")
    cmp.add_argument("y", help="samples of Q: .npy, shape (m,) or (m, d)")
    cmp.add_argument("--metrics", default=",".join(DEFAULT_METRICS),
                     help=f"comma-separated, from {', '.join(sample_metrics())} (default: %(default)s)")
    cmp.add_argument("--quiet", action="store_true", help="no progress bar")
    cmp.set_defaults(func=_compare)

    listing = sub.add_parser("metrics", help="list every metric: what it takes and returns, symmetry, gradients, memory")
    listing.set_defaults(func=_metrics)

    exp = sub.add_parser("experiment", help="run one of the classic experiments; write its figure (and data)")
    exp.add_argument("name", choices=tuple(EXPERIMENTS))
    exp.add_argument("--out", required=True, help="figure to write (PNG, PDF or SVG)")
    exp.add_argument("--json", help="also write the data as JSON")
    exp.add_argument("--n", type=positive_int, help="samples per side (default: the experiment's)")
    exp.add_argument("--seed", type=seed_argument, default=0)
    exp.add_argument("--force", action="store_true", help="overwrite OUT and JSON if they exist")
    exp.add_argument("--quiet", action="store_true", help="no progress bar")
    exp.set_defaults(func=_experiment)
    _add_wgan(sub)
    from ._cli_pairwise import add_parser as add_pairwise_parser

    add_pairwise_parser(sub)
    from ._cli_stats import add_parser as add_test_parser

    add_test_parser(sub)
    return parser


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0, 2 for a user error, 130 after an interrupted run)."""
    os.environ.setdefault("KEOPS_VERBOSE", "0")  # KeOps's import-time notices would mix with the command's output
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except (UsageError, OTDistError, OSError) as err:
        print(f"otdist: error: {_one_line(err)}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
