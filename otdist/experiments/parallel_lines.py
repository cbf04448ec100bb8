"""Parallel lines: P uniform on {0} x [0, 1], Q uniform on {theta} x [0, 1].

For theta != 0 the supports are disjoint: W1 = |theta| while JS = log 2 and KL = +inf whatever
theta -- no signal about how far apart the lines are.  Columns: the closed forms, the exact
divergences of the discretised lines (histograms on the union of the supports, as in
``otdist demo``), and estimates from ``n`` random points per line (exact OT between the samples,
k-NN and classifier JS, k-NN KL).
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from .. import api
from .._io import figure
from ._common import ExperimentResult
from .closed_forms import LOG2
from .seeds import parallel_lines

DEFAULT_THETAS = tuple(np.linspace(-1.0, 1.0, 21))
DEFAULT_N = 500


def run(thetas=DEFAULT_THETAS, n: int = DEFAULT_N, seed: int = 0, progress: bool = True) -> ExperimentResult:
    thetas = np.asarray(thetas, dtype=float)
    rng = np.random.default_rng(seed)
    disjoint = thetas != 0
    columns = {
        "theta": thetas,
        "w1_true": np.abs(thetas),
        "js_true": np.where(disjoint, LOG2, 0.0),
        "kl_true": np.where(disjoint, np.inf, 0.0),
    }
    rows = {k: [] for k in ("w1_discrete", "js_discrete", "kl_discrete", "w1_samples", "js_knn", "js_classifier", "kl_knn")}
    for theta in tqdm(thetas, desc="parallel-lines", disable=not progress, leave=False):
        x, y, p_hist, q_hist = parallel_lines(theta)
        rows["w1_discrete"].append(api.wasserstein(x, y))
        rows["js_discrete"].append(api.js(p_hist, q_hist))
        rows["kl_discrete"].append(api.kl(p_hist, q_hist))
        xs = np.column_stack([np.zeros(n), rng.random(n)])
        ys = np.column_stack([np.full(n, theta), rng.random(n)])
        rows["w1_samples"].append(api.wasserstein(xs, ys))
        rows["js_knn"].append(api.js(xs, ys, method="knn"))
        rows["js_classifier"].append(api.js(xs, ys, method="classifier", seed=seed))
        rows["kl_knn"].append(api.kl(xs, ys, method="knn"))
    columns.update({k: np.array(v) for k, v in rows.items()})
    return ExperimentResult("parallel-lines", columns, {"n": n, "seed": seed, "log2": LOG2})


def _draw(fig, result: ExperimentResult) -> None:
    c = result.columns
    theta = c["theta"]
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(theta, c["w1_true"], color="C0", lw=2, label="W1 = |θ| (exact)")
    ax.plot(theta, c["w1_samples"], "o", color="C0", ms=4, label="W1 between samples")
    for side in (theta < 0, theta > 0):  # JS jumps from 0 at theta = 0 to log 2 elsewhere
        ax.plot(theta[side], c["js_true"][side], color="C1", lw=2, label="JS = log 2 for θ ≠ 0 (exact)" if side[0] else None)
    ax.plot(theta[theta == 0], c["js_true"][theta == 0], "o", color="C1", ms=5)
    ax.plot(theta, c["js_knn"], "^", color="C1", ms=4, label="JS, k-NN estimate")
    ax.plot(theta, c["js_classifier"], "v", color="C3", ms=4, label="JS, classifier estimate")
    top = max(float(c["w1_true"].max()), LOG2) * 1.25
    ax.plot(theta[theta != 0], np.full(int((theta != 0).sum()), top * 0.95), "s", color="C2", ms=3,
            label="KL = +∞ for θ ≠ 0")
    ax.set_ylim(0, top)
    ax.set_xlabel("θ (distance between the lines)")
    ax.set_ylabel("value (nats for JS)")
    ax.set_title("Parallel lines: only W1 says how far apart they are")
    ax.legend(fontsize=8, loc="lower right")


def plot(result: ExperimentResult, path):
    return figure(path, _draw, result)
