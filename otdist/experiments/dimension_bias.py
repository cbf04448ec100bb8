"""Dimension bias: how each estimator's error grows with the dimension d, on mixtures.

P = ½ N(-a e1, I_d) + ½ N(a e1, I_d) and Q = P translated by s e1.  The other d - 1 coordinates
are the same standard normal under P and Q, so the true values do not depend on d:
W1 = s (a translation), and KL, JS are those of the 1-D mixtures (quadrature).  Each estimator
works on ``n`` samples per side in d dimensions; plug-in exact W1 between the samples is biased
upwards (roughly like n^(-1/d) of the sample spacing), the k-NN estimators degrade, the held-out
classifier and neural estimates stay near the truth longer.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from .. import api
from .._io import figure
from ._common import ExperimentResult
from .closed_forms import js_1d, kl_1d, mixture_logpdf

DEFAULT_DIMS = (1, 2, 4, 8, 16, 32)
DEFAULT_N = 1000
#: Half the distance between the two modes, and the translation.
HALF_GAP, SHIFT = 2.0, 1.0


def truths() -> dict[str, float]:
    centres_p, centres_q = (-HALF_GAP, HALF_GAP), (SHIFT - HALF_GAP, SHIFT + HALF_GAP)
    log_p = lambda t: mixture_logpdf(t, centres_p)  # noqa: E731
    log_q = lambda t: mixture_logpdf(t, centres_q)  # noqa: E731
    lo, hi = -HALF_GAP - 15.0, SHIFT + HALF_GAP + 15.0
    return {"w1": SHIFT, "kl": kl_1d(log_p, log_q, lo, hi), "js": js_1d(log_p, log_q, lo, hi)}


def sample(n: int, d: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x, y = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    x[:, 0] += HALF_GAP * rng.choice([-1.0, 1.0], size=n)
    y[:, 0] += HALF_GAP * rng.choice([-1.0, 1.0], size=n) + SHIFT
    return x, y


def run(dims=DEFAULT_DIMS, n: int = DEFAULT_N, seed: int = 0, neural: bool = False,
        progress: bool = True) -> ExperimentResult:
    """Estimates per dimension; ``neural=True`` adds the neural KR estimate (slower)."""
    dims = np.asarray(dims, dtype=int)
    rng = np.random.default_rng(seed)
    truth = truths()
    estimators = {
        "w1_exact": ("w1", lambda x, y: api.wasserstein(x, y)),
        "kl_knn": ("kl", lambda x, y: api.kl(x, y, method="knn")),
        "js_knn": ("js", lambda x, y: api.js(x, y, method="knn")),
        "js_classifier": ("js", lambda x, y: api.js(x, y, method="classifier", model="boosting", seed=seed)),
    }
    if neural:
        estimators["w1_neural"] = ("w1", lambda x, y: api.wasserstein(x, y, method="neural", seed=seed, progress=False))
    values = {name: [] for name in estimators}
    for d in tqdm(dims, desc="dimension-bias", disable=not progress, leave=False):
        x, y = sample(n, int(d), rng)
        for name, (_, function) in estimators.items():
            values[name].append(function(x, y))
    columns = {"d": dims}
    for name, (target, _) in estimators.items():
        columns[name] = np.array(values[name])
        columns[f"{name}_ratio"] = columns[name] / truth[target]
    return ExperimentResult("dimension-bias", columns, {"truth": truth, "n": n, "seed": seed,
                                                        "half_gap": HALF_GAP, "shift": SHIFT})


def _draw(fig, result: ExperimentResult) -> None:
    c = result.columns
    ax = fig.add_subplot(1, 1, 1)
    labels = {"w1_exact": "W1, plug-in exact OT", "w1_neural": "W1, neural KR (held-out)", "kl_knn": "KL, k-NN",
              "js_knn": "JS, k-NN", "js_classifier": "JS, classifier (held-out)"}
    for k, (name, label) in enumerate(labels.items()):
        if name in c:
            ax.plot(c["d"], c[f"{name}_ratio"], "o-", color=f"C{k}", label=label)
    ax.axhline(1.0, color="k", lw=1, ls=":")
    ax.set_xscale("log", base=2)
    ax.set_xticks(c["d"], [str(int(d)) for d in c["d"]])
    ax.set_xlabel("dimension d")
    ax.set_ylabel("estimate / true value")
    ax.set_title(f"Bias of estimators from {result.info['n']} samples per side (mixtures; truth is d-free)")
    ax.legend(fontsize=8)


def plot(result: ExperimentResult, path):
    return figure(path, _draw, result)
