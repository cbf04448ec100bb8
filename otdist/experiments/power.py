"""Power of the permutation two-sample test of each metric, against the sample size and the dimension.

Three differences between P and Q, each along the first coordinate of R^d; the other d - 1 coordinates are
independent standard normals under both, so a larger d only adds noise:

* ``mean shift``: N(0, I) against N(SHIFT e1, I);
* ``scale change``: N(0, I) against the first coordinate scaled by SCALE;
* ``mixture weight``: ½ N(-a e1, I) + ½ N(a e1, I) against the same modes weighted 1 - WEIGHT and WEIGHT.

For each difference the rejection rate at level ALPHA of :func:`otdist.two_sample.two_sample_test` (B
permutations) over ``replications`` pairs of samples, first against n per side (at d = DIM), then against
d (at ``n`` per side); each pair of samples is tested by every metric. Under P = Q the rate would be at
most ALPHA; a rate near 1 means the test detects that difference at that size.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from .. import _validation as V
from .. import registry, two_sample
from .._io import figure
from ..exceptions import InputError, InputTypeError
from ._common import ExperimentResult

DEFAULT_METRICS = ("energy", "mmd", "sliced")
DEFAULT_SIZES = (20, 40, 80)
DEFAULT_DIMS = (1, 4, 16)
#: Samples per side of the sweep over dimensions, and the dimension of the sweep over sizes.
DEFAULT_N = 40
DIM = 2
DEFAULT_REPLICATIONS = 20
DEFAULT_PERMUTATIONS = 200
ALPHA = 0.05
#: The differences: mean shift, scale of the first coordinate, half the distance between the modes and
#: the weight of the second mode under Q.
SHIFT, SCALE, HALF_GAP, WEIGHT = 0.6, 1.6, 1.5, 0.75
SCENARIOS = ("mean shift", "scale change", "mixture weight")
#: One row of two panels per difference.
FIGSIZE = (9.0, 10.0)


def sample(scenario: str, n: int, d: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n points of P and n of Q in R^d for one of SCENARIOS."""
    x, y = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    if scenario == "mean shift":
        y[:, 0] += SHIFT
    elif scenario == "scale change":
        y[:, 0] *= SCALE
    else:
        x[:, 0] += HALF_GAP * rng.choice([-1.0, 1.0], size=n)
        y[:, 0] += HALF_GAP * np.where(rng.random(n) < WEIGHT, 1.0, -1.0)
    return x, y


def _settings(sizes, dims, n: int) -> list[tuple[int, int, int, int]]:
    """(scenario index, sweep: 0 over n / 1 over d, n, d) for every point of every curve."""
    rows = []
    for k in range(len(SCENARIOS)):
        rows += [(k, 0, int(size), DIM) for size in sizes]
        rows += [(k, 1, int(n), int(d)) for d in dims]
    return rows


def _check_metrics(metrics) -> tuple[str, ...]:
    """Distinct names of registered sample metrics, at least one (a single name is a tuple of one)."""
    metrics = (metrics,) if isinstance(metrics, str) else metrics
    if not isinstance(metrics, (tuple, list)):
        raise InputTypeError(f"metrics must be a metric name or a tuple of names; got {type(metrics).__name__}. "
                             f"Pass e.g. metrics={DEFAULT_METRICS!r}.")
    if not metrics:
        raise InputError(f"metrics must name at least one metric; got an empty sequence. Pass e.g. "
                         f"metrics={DEFAULT_METRICS!r}.")
    for name in metrics:
        registry.sample_metric(name, "the power experiment")
    repeated = sorted({name for name in metrics if metrics.count(name) > 1})
    if repeated:
        raise InputError(f"metrics must be distinct; got {', '.join(repeated)} more than once. Name each metric once.")
    return tuple(metrics)


def _check_counts(values, name: str) -> tuple[int, ...]:
    """A non-empty sequence of positive integers (the points of one sweep)."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise InputTypeError(f"{name} must be a sequence of positive integers; got {type(values).__name__}. "
                             f"Pass e.g. {name}=(20, 40).")
    if len(values) == 0:
        raise InputError(f"{name} must hold at least one value; got an empty sequence. Pass e.g. {name}=(20, 40).")
    return tuple(V.check_positive(value, f"{name}[{k}]", integer=True) for k, value in enumerate(values))


def run(metrics=DEFAULT_METRICS, sizes=DEFAULT_SIZES, dims=DEFAULT_DIMS, n: int = DEFAULT_N,
        replications: int = DEFAULT_REPLICATIONS, n_permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0,
        progress: bool = True) -> ExperimentResult:
    """Rejection rates (and their binomial standard errors) of each metric's test, per difference, n and d.

    Every argument is checked before the first test runs.
    """
    metrics = _check_metrics(metrics)
    sizes, dims = _check_counts(sizes, "sizes"), _check_counts(dims, "dims")
    n = V.check_positive(n, "n", integer=True)
    replications = V.check_positive(replications, "replications", integer=True)
    n_permutations = V.check_positive(n_permutations, "n_permutations", integer=True)
    seed = V.check_seed(seed)
    progress = V.check_flag(progress, "progress")
    rng = np.random.default_rng(seed)
    settings = _settings(sizes, dims, n)
    rejections = {name: np.zeros(len(settings)) for name in metrics}
    for row, (k, _, size, d) in enumerate(tqdm(settings, desc="power", disable=not progress, leave=False)):
        for _ in range(replications):
            x, y = sample(SCENARIOS[k], size, d, rng)
            test_seed = int(rng.integers(2**32))
            for name in metrics:
                result = two_sample.two_sample_test(x, y, metric=name, n_permutations=n_permutations, seed=test_seed)
                rejections[name][row] += result.p_value <= ALPHA
    table = np.array(settings, dtype=float)
    columns = {"scenario": table[:, 0], "sweep": table[:, 1], "n": table[:, 2], "d": table[:, 3]}
    for name in metrics:
        rate = rejections[name] / replications
        columns[f"power_{name}"] = rate
        columns[f"se_{name}"] = np.sqrt(rate * (1 - rate) / replications)
    info = {"scenarios": list(SCENARIOS), "metrics": list(metrics), "alpha": ALPHA, "replications": replications,
            "n_permutations": n_permutations, "seed": seed, "n": n, "dim": DIM, "shift": SHIFT, "scale": SCALE,
            "half_gap": HALF_GAP, "weight": WEIGHT}
    return ExperimentResult("power", columns, info)


def _draw(fig, result: ExperimentResult) -> None:
    c, info = result.columns, result.info
    axes = fig.subplots(len(info["scenarios"]), 2, sharey=True, squeeze=False)
    for k, scenario in enumerate(info["scenarios"]):
        for sweep, (axis, label) in enumerate((("n", f"samples per side n (d = {info['dim']})"),
                                               ("d", f"dimension d (n = {info['n']})"))):
            ax = axes[k][sweep]
            rows = (c["scenario"] == k) & (c["sweep"] == sweep)
            for j, name in enumerate(info["metrics"]):
                ax.errorbar(c[axis][rows], c[f"power_{name}"][rows], yerr=2 * c[f"se_{name}"][rows], fmt="o-",
                            color=f"C{j}", ms=4, capsize=2, label=name)
            ax.axhline(info["alpha"], color="grey", ls=":", lw=1)
            ax.set_xscale("log", base=2)
            ax.set_xticks(c[axis][rows], [str(int(v)) for v in c[axis][rows]])
            ax.set_ylim(-0.03, 1.03)
            ax.set_title(scenario, fontsize=10)
            ax.set_xlabel(label)
            if sweep == 0:
                ax.set_ylabel(f"rejection rate at α = {info['alpha']}")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"Power of the permutation test ({info['replications']} replications, "
                 f"{info['n_permutations']} permutations; bars ±2 s.e.)")


def plot(result: ExperimentResult, path):
    """Write the power curves to ``path`` (PNG, PDF or SVG)."""
    return figure(path, _draw, result, figsize=FIGSIZE)
