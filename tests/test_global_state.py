"""No public call changes global state: numpy's, torch's and Python's random generators and the
matplotlib backend are the same after every public function as before it.

Before each call the generators are moved to a state no library code would choose (seeded with
CANARY_SEED) and the backend to CANARY_BACKEND, so a reseed (``torch.manual_seed(0)``), a draw from
a global generator, or a ``matplotlib.use("Agg")`` all show up as a difference.
"""

import dataclasses
import random

import matplotlib
import numpy as np
import pytest
import torch

import otdist
from otdist import cli, experiments, neural, wgan
from otdist.comparison import sample_metrics
from otdist.experiments import seeds

CANARY_SEED = 987_654_321
#: A non-interactive backend that otdist never selects itself.
CANARY_BACKEND = "svg"

_rng = np.random.default_rng(0)
X, Y = _rng.normal(size=(40, 2)), _rng.normal(loc=1.0, size=(40, 2))
X1, Y1 = X[:, 0].copy(), Y[:, 0].copy()
P, Q = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.25, 0.25, 0.25, 0.25])
TINY_NEURAL = {"steps": 10, "n_folds": 2, "batch_size": 16, "progress": False}


def _wgan(tmp_path):
    """Train, sample, load the checkpoint, resume: every WGAN entry point on one tiny run."""
    config = wgan.Config(data="8gaussians", steps=2, batch_size=32, eval_every=2, eval_samples=200, out=str(tmp_path / "run"),
                         progress=False)
    run = wgan.train(config)
    run.sample(5, seed=3)
    wgan.load_generator(run.files["checkpoint"])(5, seed=3)
    wgan.train(dataclasses.replace(config, steps=3, resume=True))


def _kr_plot(tmp_path):
    from matplotlib.figure import Figure

    result = neural.estimate(X, Y, **TINY_NEURAL)
    result.plot_history(ax=Figure().add_subplot(1, 1, 1))
    result.plot_history()


def _gradient_penalty(_):
    """Like torch's own random functions, it draws from the global generator unless given one."""
    with torch.random.fork_rng():  # the test's own module initialisation
        critic = torch.nn.Linear(2, 1)
    neural.gradient_penalty(critic, torch.ones(4, 2), torch.zeros(4, 2), generator=torch.Generator().manual_seed(0))


def _experiment(name, **small):
    def run(tmp_path):
        module = experiments.get(name)
        result = experiments.run(name, progress=False, **small)
        module.plot(result, tmp_path / f"{name}.png")
        result.save_json(tmp_path / f"{name}.json")
    return run


CALLS = {
    **{f"wasserstein-{m}": (lambda m: lambda _: otdist.wasserstein(X, Y, method=m))(m)
       for m in ("exact", "primal", "dual", "sinkhorn", "sliced", "max-sliced")},
    "wasserstein-gaussian": lambda _: otdist.wasserstein(X, Y, p=2, method="gaussian"),
    "wasserstein-along-axis": lambda _: otdist.wasserstein(X, Y, axis=0),
    "wasserstein-1d": lambda _: otdist.wasserstein(X1, Y1, method="1d"),
    "wasserstein-sliced-unseeded": lambda _: otdist.wasserstein(X, Y, method="sliced", seed=None),
    "wasserstein-neural": lambda _: otdist.wasserstein(X, Y, method="neural", **TINY_NEURAL),
    **{f"transport-{m}": (lambda m: lambda _: otdist.transport(X, Y, method=m))(m)
       for m in ("exact", "primal", "dual", "sinkhorn")},
    "sinkhorn": lambda _: otdist.sinkhorn(X, Y, epsilon=0.5),
    "sinkhorn_divergence": lambda _: otdist.sinkhorn_divergence(X, Y, epsilon=0.5),
    "energy_distance": lambda _: otdist.energy_distance(X, Y),
    "mmd": lambda _: otdist.mmd(X, Y),
    "gaussian_w2": lambda _: otdist.gaussian_w2(X.mean(axis=0), np.cov(X.T), Y.mean(axis=0), np.cov(Y.T)),
    "metrics": lambda _: otdist.metrics(),
    "two_sample_test": lambda _: otdist.two_sample_test(X, Y, metric="sliced", n_permutations=20, seed=0),
    "confidence_interval": lambda _: otdist.confidence_interval(X, Y, metric="w1", seed=0),
    "pairwise": lambda tmp_path: otdist.pairwise([X, Y, X[::-1]], metric="sinkhorn", out=str(tmp_path / "pairs"),
                                                 epsilon=0.5),
    "kl-histogram": lambda _: otdist.kl(P, Q),
    "js-histogram": lambda _: otdist.js(P, Q),
    "js_distance": lambda _: otdist.js_distance(P, Q),
    **{f"{d}-knn": (lambda d: lambda _: getattr(otdist, d)(X, Y, method="knn"))(d) for d in ("kl", "js")},
    **{f"{d}-hist": (lambda d: lambda _: getattr(otdist, d)(X1, Y1, method="hist"))(d) for d in ("kl", "js")},
    "kl-kde": lambda _: otdist.kl(X1, Y1, method="kde"),
    **{f"js-classifier-{model}": (lambda model: lambda _: otdist.js(X, Y, method="classifier", model=model))(model)
       for model in ("logistic", "boosting")},
    "js-classifier-mlp": lambda _: otdist.js(X, Y, method="classifier", model="mlp"),
    **{f"distance-{metric}": (lambda metric, a, b: lambda _: otdist.distance(a, b, metric=metric))(metric, a, b)
       for metric, a, b in (("wasserstein", X, Y), ("kl", P, Q), ("js", P, Q), ("js_distance", P, Q),
                            ("sinkhorn", X, Y))},
    "estimate-knn": lambda _: otdist.estimate(X, Y, "kl", "knn"),
    "estimate-classifier-bootstrap": lambda _: otdist.estimate(X, Y, "js", "classifier", se="bootstrap", n_resamples=3),
    "compare-every-metric": lambda _: otdist.compare(X, Y, metrics=sample_metrics(), options={"neural": TINY_NEURAL}),
    "neural.estimate": lambda _: neural.estimate(X, Y, **TINY_NEURAL),
    "neural.KRDualEstimator": lambda _: neural.KRDualEstimator(**TINY_NEURAL).fit(X, Y),
    "neural.KRResult.plot_history": _kr_plot,
    "neural.gradient_penalty": _gradient_penalty,
    "wgan.load": lambda _: wgan.load("8gaussians", seed=1),
    "wgan.evaluate": lambda _: wgan.evaluate(wgan.load("8gaussians").test[:200], wgan.load("8gaussians")),
    "wgan.train.sample.load_generator": _wgan,
    "experiments.gaussian-shift": _experiment("gaussian-shift", mus=(0.0, 2.0), n=100),
    "experiments.parallel-lines": _experiment("parallel-lines", thetas=(0.0, 0.5), n=50),
    "experiments.earth-piles": _experiment("earth-piles"),
    "experiments.dimension-bias": _experiment("dimension-bias", dims=(1, 2), n=100),
    "experiments.power": _experiment("power", metrics=("energy", "sliced"), sizes=(10,), dims=(1,), n=10,
                                     replications=2, n_permutations=9),
    "experiments.seeds": lambda tmp_path: seeds.plot_parallel_lines(seeds.parallel_lines_curves([0.0, 0.5]),
                                                                    tmp_path / "lines.png"),
    "cli.experiment": lambda tmp_path: cli.main(["experiment", "earth-piles", "--out", str(tmp_path / "e.png"), "--quiet"]),
}

#: Calls that train for tens of seconds on a busy CPU (500 full-batch steps of the MLP classifier).
SLOW = {"js-classifier-mlp"}


def _snapshot():
    return np.random.get_state(), torch.get_rng_state(), random.getstate(), matplotlib.get_backend()


def _assert_same(before, after):
    (np_before, torch_before, py_before, backend_before), (np_after, torch_after, py_after, backend_after) = before, after
    assert np_before[0] == np_after[0] and np.array_equal(np_before[1], np_after[1]) and np_before[2:] == np_after[2:], \
        "numpy's global RandomState changed"
    assert torch.equal(torch_before, torch_after), "torch's global generator changed"
    assert py_before == py_after, "Python's random module changed"
    assert backend_before == backend_after, f"the matplotlib backend changed from {backend_before} to {backend_after}"


@pytest.fixture
def canary_state():
    saved = (np.random.get_state(), torch.get_rng_state(), random.getstate())
    backend = matplotlib.get_backend()
    np.random.seed(CANARY_SEED)
    torch.manual_seed(CANARY_SEED)
    random.seed(CANARY_SEED)
    matplotlib.use(CANARY_BACKEND)
    yield
    np.random.set_state(saved[0])
    torch.set_rng_state(saved[1])
    random.setstate(saved[2])
    matplotlib.use(backend)


def test_every_public_function_is_exercised():
    """The list above covers otdist.__all__'s functions and the neural and wgan entry points."""
    called = " ".join(CALLS)
    functions = [name for name in otdist.__all__ if callable(getattr(otdist, name))
                 and not isinstance(getattr(otdist, name), type)]
    assert [f for f in functions if f not in called] == []
    entry_points = ["estimate", "KRDualEstimator", "gradient_penalty"] + [f for f in wgan.__all__ if f[0].islower()]
    assert [f for f in entry_points if f not in called] == []
    assert [e for e in experiments.EXPERIMENTS if f"experiments.{e}" not in CALLS] == []


@pytest.mark.parametrize("call", [pytest.param(call, id=name, marks=[pytest.mark.slow] if name in SLOW else [])
                                  for name, call in CALLS.items()])
def test_public_call_leaves_global_state_unchanged(call, canary_state, tmp_path):
    before = _snapshot()
    call(tmp_path)
    _assert_same(before, _snapshot())
