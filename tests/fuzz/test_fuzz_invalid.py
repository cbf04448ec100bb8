"""Fuzz: invalid input to every public function raises otdist's own InputError, never a raw exception.

Non-finite values, negative or mis-sized weights, empty or 3-D arrays, strings, complex numbers,
ragged lists, orders p < 1, non-positive epsilon and unknown method names, in NumPy and torch.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import examples

import otdist

GOOD_X = np.array([[0.0, 1.0], [1.0, 0.5], [2.0, 2.0]])
GOOD_Y = np.array([[0.5, 0.5], [1.5, 1.0]])
GOOD_P = np.array([0.2, 0.3, 0.5])
GOOD_Q = np.array([0.4, 0.4, 0.2])


def _bad_values(draw):
    kind = draw(st.sampled_from(("nan", "inf", "-inf", "empty", "3d", "string", "complex", "ragged", "none", "object")))
    x = GOOD_X.copy()
    if kind in ("nan", "inf", "-inf"):
        x[draw(st.integers(0, 2)), draw(st.integers(0, 1))] = float(kind)
        return x
    return {
        "empty": np.zeros((0, 2)),
        "3d": np.zeros((2, 3, 2, 1)),
        "string": "abc",
        "complex": x + 1j,
        "ragged": [[0.0, 1.0], [1.0]],
        "none": None,
        "object": np.array([{"a": 1}, None], dtype=object),
    }[kind]


def _bad_weights(draw, n):
    kind = draw(st.sampled_from(("negative", "nan", "inf", "length", "zeros", "2d", "string")))
    w = np.full(n, 1.0 / n)
    if kind == "negative":
        w[draw(st.integers(0, n - 1))] = -draw(st.floats(1e-20, 1e3))
    elif kind in ("nan", "inf"):
        w[draw(st.integers(0, n - 1))] = float(kind)
    elif kind == "length":
        w = np.full(n + draw(st.sampled_from((-1, 1, 5))), 1.0)
    elif kind == "zeros":
        w = np.zeros(n)
    elif kind == "2d":
        w = np.ones((n, 2))
    else:
        w = "uniform"
    return w


def _maybe_torch(draw, value):
    if isinstance(value, np.ndarray) and value.dtype.kind in "fc" and draw(st.booleans()):
        return torch.as_tensor(value)
    return value


POINT_FUNCTIONS = {
    "wasserstein": lambda x, y, a, b: otdist.wasserstein(x, y, a, b),
    "wasserstein_exact": lambda x, y, a, b: otdist.wasserstein(x, y, a, b, method="exact"),
    "wasserstein_primal": lambda x, y, a, b: otdist.wasserstein(x, y, a, b, method="primal"),
    "wasserstein_dual": lambda x, y, a, b: otdist.wasserstein(x, y, a, b, method="dual"),
    "wasserstein_sliced": lambda x, y, a, b: otdist.wasserstein(x, y, a, b, method="sliced"),
    "transport": lambda x, y, a, b: otdist.transport(x, y, a, b),
    "sinkhorn": lambda x, y, a, b: otdist.sinkhorn(x, y, a, b, epsilon=0.1),
    "sinkhorn_divergence": lambda x, y, a, b: otdist.sinkhorn_divergence(x, y, a, b, epsilon=0.1),
    "wasserstein_sinkhorn": lambda x, y, a, b: otdist.wasserstein(x, y, a, b, method="sinkhorn", epsilon=0.1),
}
SAMPLE_FUNCTIONS = {
    "kl_knn": lambda x, y: otdist.kl(x, y, method="knn", k=1),
    "js_knn": lambda x, y: otdist.js(x, y, method="knn", k=1),
    "estimate": lambda x, y: otdist.estimate(x, y, "kl", "knn", k=1, n_resamples=2),
    "compare": lambda x, y: otdist.compare(x, y, metrics=("w1", "sinkhorn")),
}
HISTOGRAM_FUNCTIONS = {
    "kl": otdist.kl,
    "js": otdist.js,
    "js_distance": otdist.js_distance,
    "distance_kl": lambda p, q: otdist.distance(p, q, metric="kl"),
}


def _raises_own_error(call):
    try:
        call()
    except otdist.InputError:
        return
    except Exception as err:  # noqa: BLE001 - the assertion is on the exception's type
        raise AssertionError(f"raised {type(err).__module__}.{type(err).__name__} instead of otdist.InputError: {err}")
    raise AssertionError("invalid input was accepted")


@pytest.mark.parametrize("name", POINT_FUNCTIONS)
@settings(max_examples=examples(0.6))
@given(data=st.data(), side=st.sampled_from(("x", "y", "a", "b")))
def test_point_cloud_functions_refuse_invalid_input(name, data, side):
    args = {"x": GOOD_X, "y": GOOD_Y, "a": None, "b": None}
    if side in ("x", "y"):
        args[side] = _maybe_torch(data.draw, _bad_values(data.draw))
    else:
        n = len(GOOD_X) if side == "a" else len(GOOD_Y)
        args[side] = _maybe_torch(data.draw, _bad_weights(data.draw, n))
    _raises_own_error(lambda: POINT_FUNCTIONS[name](args["x"], args["y"], args["a"], args["b"]))


@pytest.mark.parametrize("name", SAMPLE_FUNCTIONS)
@settings(max_examples=examples(0.4))
@given(data=st.data(), side=st.sampled_from(("x", "y")))
def test_sample_functions_refuse_invalid_input(name, data, side):
    args = {"x": GOOD_X, "y": GOOD_Y}
    args[side] = _maybe_torch(data.draw, _bad_values(data.draw))
    _raises_own_error(lambda: SAMPLE_FUNCTIONS[name](args["x"], args["y"]))


@pytest.mark.parametrize("name", HISTOGRAM_FUNCTIONS)
@settings(max_examples=examples(0.6))
@given(data=st.data(), side=st.sampled_from(("p", "q")))
def test_histogram_functions_refuse_invalid_input(name, data, side):
    args = {"p": GOOD_P, "q": GOOD_Q}
    bad = _bad_weights(data.draw, 3) if data.draw(st.booleans()) else _bad_values(data.draw)
    if isinstance(bad, np.ndarray) and bad.ndim == 1 and bad.shape[0] == 3 and np.all(np.isfinite(bad)) and bad.sum() > 0 and bad.min() >= 0:
        return  # a valid histogram after all
    args[side] = _maybe_torch(data.draw, bad)
    _raises_own_error(lambda: HISTOGRAM_FUNCTIONS[name](args["p"], args["q"]))


BAD_ORDERS = (0, 0.5, -1, math.nan, math.inf, "2", True, None, 1 + 1j)
BAD_EPSILONS = (0, -1.0, math.nan, math.inf, "0.1", True, 1 + 1j)


@pytest.mark.parametrize("p", BAD_ORDERS)
@pytest.mark.parametrize("function", ("wasserstein", "transport", "sinkhorn", "sinkhorn_divergence"))
def test_invalid_orders_are_refused(function, p):
    _raises_own_error(lambda: getattr(otdist, function)(GOOD_X, GOOD_Y, p=p))


@pytest.mark.parametrize("epsilon", BAD_EPSILONS)
@pytest.mark.parametrize("function", ("sinkhorn", "sinkhorn_divergence"))
def test_invalid_epsilons_are_refused(function, epsilon):
    _raises_own_error(lambda: getattr(otdist, function)(GOOD_X, GOOD_Y, epsilon=epsilon))
    _raises_own_error(lambda: otdist.wasserstein(GOOD_X, GOOD_Y, method="sinkhorn", epsilon=epsilon))


@pytest.mark.parametrize("call", (
    lambda: otdist.wasserstein(GOOD_X, GOOD_Y, method="emd"),
    lambda: otdist.transport(GOOD_X, GOOD_Y, method=None),
    lambda: otdist.distance(GOOD_P, GOOD_Q, metric="cosine"),
    lambda: otdist.kl(GOOD_P, GOOD_Q, method="nope"),
    lambda: otdist.estimate(GOOD_X, GOOD_Y, "tv"),
    lambda: otdist.compare(GOOD_X, GOOD_Y, metrics=("w3",)),
    lambda: otdist.sinkhorn(GOOD_X, GOOD_Y, epsilon=0.1, backend="gpu"),
    lambda: otdist.wasserstein(GOOD_X, GOOD_Y, metric="cosine"),
    lambda: otdist.wasserstein(GOOD_X, GOOD_Y, method="exact", max_iter=0),
    lambda: otdist.wasserstein(GOOD_X, GOOD_Y, method="sliced", n_projections=0),
    lambda: otdist.wasserstein(GOOD_X, GOOD_Y, method="exact", unknown_option=1),
), ids=("method", "method_none", "metric", "kl_method", "divergence", "compare_metric", "backend",
        "ground_metric", "max_iter", "n_projections", "unknown_option"))
def test_unknown_choices_and_options_are_refused(call):
    _raises_own_error(call)
