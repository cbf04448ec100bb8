"""``otdist pairwise``: the matrix of a metric between many .npy datasets, written with its heat map and timings.

``OUT`` receives ``matrix.npy``, ``matrix.csv`` (names in the first row and column), ``heatmap.png``,
``timings.json`` and the checkpoint of :func:`otdist.pairwise` (``pairwise.json``, ``solves/``), so
an interrupted run continues with the same command and ``--resume``.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path


from . import _io
from .cli import UsageError, metric_option, positive_int, writable_directory

OUTPUTS = ("matrix.npy", "matrix.csv", "heatmap.png", "timings.json")
#: Largest number of datasets whose names label the heat map's axes (beyond it the labels overlap).
MAX_TICK_LABELS = 40
FIGURE_SIZE = (6.4, 5.4)


def add_parser(sub) -> argparse.ArgumentParser:
    """Register ``otdist pairwise`` on the sub-parsers ``sub`` of ``otdist``'s parser."""
    from .comparison import sample_metrics

    parser = sub.add_parser("pairwise", help="the matrix of a metric between many .npy datasets (threads or Dask)")
    parser.add_argument("datasets", nargs="+", help=".npy files of samples, shape (n,) or (n, d); named by their stems")
    parser.add_argument("--metric", default="sinkhorn", help=f"one of {', '.join(sample_metrics())} (default: %(default)s)")
    parser.add_argument("--option", action="append", type=metric_option, default=[], metavar="KEY=VALUE",
                        help="a metric option (JSON value, else text), e.g. --option epsilon=0.05; repeatable")
    parser.add_argument("--out", required=True, help="directory for the matrix, figure, timings and checkpoint")
    parser.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786), or 'local' for a LocalCluster")
    parser.add_argument("--workers", type=positive_int, help="threads, or processes with --scheduler local "
                                                          "(default: one per CPU core)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue the run whose checkpoint is in OUT")
    mode.add_argument("--force", action="store_true", help="discard the results in OUT and start again")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def _prepare(out: Path, args: argparse.Namespace) -> None:
    """A new run refuses a non-empty OUT unless --force; --resume needs the directory (pairwise checks it)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; the command writes a directory. Choose another path.")
    if args.resume:
        return
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise UsageError(f"--out {out} already holds files. Pass --resume to continue that run, --force to start "
                         "again there, or choose another directory.")
    writable_directory(out, "--out")


def _csv(result) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["", *result.column_names])
    for name, row in zip(result.names, result.matrix):
        writer.writerow([name, *(repr(float(v)) for v in row)])
    return buffer.getvalue()


def _heatmap(fig, result) -> None:
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(result.matrix, cmap="viridis")
    fig.colorbar(image, ax=ax, label=result.metric)
    rows, cols = result.matrix.shape
    if max(rows, cols) <= MAX_TICK_LABELS:
        ax.set_xticks(range(cols), result.column_names, rotation=90)
        ax.set_yticks(range(rows), result.names)
    ax.set_title(f"pairwise {result.metric}")


def _timings(result, engine: str) -> dict:
    return {"metric": result.metric, "epsilon": result.epsilon, "engine": engine,
            "total_seconds": result.total_seconds, "solved": result.solved, "cached": result.cached,
            "names": list(result.names), "seconds": result.seconds.tolist(),
            "self_seconds": None if result.self_seconds is None else result.self_seconds.tolist(),
            "converged": result.converged.tolist()}


def run(args: argparse.Namespace) -> int:
    from .pairwise import pairwise

    out = Path(args.out)
    options = dict(args.option)
    _prepare(out, args)
    result = pairwise(args.datasets, metric=args.metric, client=args.scheduler, out=out, progress=not args.quiet,
                      max_workers=args.workers, force=args.force, resume=True if args.resume else None, **options)
    _io.save_npy(out / "matrix.npy", result.matrix)
    _io.write_text(out / "matrix.csv", _csv(result))
    _io.figure(out / "heatmap.png", _heatmap, result, figsize=FIGURE_SIZE)
    _io.write_json(out / "timings.json", _timings(result, "threads" if args.scheduler is None else "dask"))
    print(f"{result.matrix.shape[0]} x {result.matrix.shape[1]} {result.metric} matrix: {result.solved} solves run, "
          f"{result.cached} read from the checkpoint, {result.total_seconds:.2f} s")
    for name in OUTPUTS:
        print(f"wrote {out / name}")
    return 0
