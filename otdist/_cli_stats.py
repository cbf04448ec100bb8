"""``otdist test``: the permutation two-sample test from the command line (see :mod:`otdist.cli`)."""

from __future__ import annotations

import argparse


def _test(args: argparse.Namespace) -> int:
    from .cli import load_samples
    from .two_sample import two_sample_test

    x, y = load_samples(args.x), load_samples(args.y)
    result = two_sample_test(x, y, metric=args.metric, n_permutations=args.permutations, seed=args.seed,
                             **dict(args.option))
    print(f"Permutation test of P = Q, metric {result.metric} ({result.engine}), "
          f"x: {x.shape}, y: {y.shape}")
    if result.epsilon is not None:
        print(f"epsilon:   {result.epsilon!r}  (absolute, for every permutation)")
    print(f"statistic: {result.statistic:.6g}")
    print(f"p-value:   {result.p_value:.6g}  ({result.n_permutations} permutations, seed {args.seed}; "
          f"smallest possible {1 / (result.n_permutations + 1):.3g})")
    return 0


def add_parser(sub) -> None:
    """Add the ``test`` subcommand to the subparsers ``sub`` of ``otdist``'s parser."""
    from .cli import metric_option
    from .cli import positive_int, seed_argument
    from .comparison import sample_metrics

    test = sub.add_parser("test", help="permutation two-sample test of P = Q between two samples saved with numpy.save")
    test.add_argument("x", help="samples of P: .npy, shape (n,) or (n, d)")
    test.add_argument("y", help="samples of Q: .npy, shape (m,) or (m, d)")
    test.add_argument("--metric", default="energy", help=f"one of {', '.join(sample_metrics())} (default: %(default)s)")
    test.add_argument("--option", action="append", type=metric_option, default=[], metavar="KEY=VALUE",
                      help="a metric option (JSON value, else text), e.g. --option kernel=laplacian; repeatable")
    test.add_argument("--permutations", type=positive_int,
                      help="number of permutations (default: 1000; 100 for metrics that refit an estimator)")
    test.add_argument("--seed", type=seed_argument, default=0, help="seed of the permutations (default: %(default)s)")
    test.set_defaults(func=_test)
