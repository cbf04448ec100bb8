"""Fuzz: the sample estimators (kl/js with method=, estimate), compare, and a light touch of "neural".

Every call returns a number that is never NaN (finite, except the documented +inf of the plug-in
histogram KL) or raises otdist's own error.  Oracles: the k-NN estimators' invariance under a
change of units of both samples (their log distance ratios and the d log(m / (n - 1)) term do not
move), the exact W1/W2 of the same samples for compare's rows, and the 1-Lipschitz bound
|E f(x) - E f(y)| <= max |x - y| for the Kantorovich-Rubinstein critic.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from strategies import KINDS, Case, as_float64, cases, check_scalar, emd_cost, examples, is_own_error

import otdist
from otdist.neural.families import MAX_CORRECTION

SAMPLE_METHODS = ("knn", "hist", "kde")
#: Relative change allowed under an exact change of units: float64 rounding of the final sums.
INVARIANCE_RTOL = 1e-9


def _call(function):
    """The result, or None when otdist raised its own error (anything else propagates).

    otdist's own warnings (an estimate far below zero) are soft and allowed; numpy's and torch's
    warnings stay errors.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=otdist.EstimateWarning)
        try:
            return function()
        except otdist.OTDistError:
            return None


def _may_be_infinite(divergence, method):
    """The plug-in KL on histograms is +inf where Q has an empty bin and P has mass (documented)."""
    return divergence == "kl" and method == "hist"


@pytest.mark.parametrize("divergence", ("kl", "js"))
@pytest.mark.parametrize("method", SAMPLE_METHODS)
@settings(max_examples=examples())
@given(case=cases(max_n=30, dims=(1, 2), weights=False, min_n=2))
def test_sample_estimators_are_finite_or_raise_their_own_error(divergence, method, case):
    value = _call(lambda: getattr(otdist, divergence)(case.x, case.y, method=method))
    if value is None:
        return
    # Sample estimates are not clipped (documented): a JS estimate may fall below 0, but never NaN.
    check_scalar(value, case.container, case.dtype, allow_inf=_may_be_infinite(divergence, method))


#: A coordinate of 7.7e-163 beside others of 7e-4: its square underflows to 0 at these units (a zero
#: distance, refused as a point shared by x and y) but not at 4 times them.
_XU = np.array([[0, 3.5e-4], [7e-4, 0], [0, 3.5e-4], [7e-4, 0], [0, 3.5e-4], [7.73e-163, 0], [0, 3.5e-4], [7e-4, 0]])
_YU = np.zeros((16, 2))
_YU[[4, 6, 9, 10, 11, 15], 1] = 7e-4
UNDERFLOWING_SQUARE = Case("numpy", "float64", _XU, _YU, None, None, _XU, _YU, np.full(8, 1 / 8), np.full(16, 1 / 16))


@pytest.mark.parametrize("divergence", ("kl", "js"))
@settings(max_examples=examples())
@given(case=cases(max_n=30, dims=(1, 2, 3), weights=False, min_n=7, kinds=(("numpy", "float64"),)),
       exponent=st.integers(-12, 12))
@example(case=UNDERFLOWING_SQUARE, exponent=2)
def test_knn_estimators_are_invariant_to_a_change_of_units(divergence, case, exponent):
    # Scaling by a power of two is exact, so every distance ratio is unchanged bit for bit.
    function = getattr(otdist, divergence)
    scale = 2.0 ** exponent
    base = _call(lambda: function(case.x, case.y, method="knn"))
    moved = _call(lambda: function(case.x * scale, case.y * scale, method="knn"))
    if base is None or moved is None:
        assert base is None and moved is None, "an error must not depend on the units"
        return
    assert math.isfinite(base) and math.isfinite(moved)
    assert abs(moved - base) <= INVARIANCE_RTOL * (1 + abs(base)), (base, moved)


@settings(max_examples=examples(0.4))
@given(case=cases(max_n=30, dims=(1, 2), weights=False, min_n=2), divergence=st.sampled_from(("kl", "js")),
       method=st.sampled_from(SAMPLE_METHODS), se=st.sampled_from(("split", "bootstrap")))
def test_estimate_reports_the_point_estimate_and_a_finite_standard_error(case, divergence, method, se):
    res = _call(lambda: otdist.estimate(case.x, case.y, divergence, method, se=se))
    if res is None:
        return
    assert type(res.value) is float and not math.isnan(res.value)
    assert not math.isnan(res.standard_error) and res.standard_error >= 0
    if not _may_be_infinite(divergence, method):
        assert math.isfinite(res.value) and math.isfinite(res.standard_error)
    direct = _call(lambda: getattr(otdist, divergence)(case.x, case.y, method=method))
    # The direct call returns the input's float dtype (torch's default float for integer tensors).
    resolution = torch.finfo(direct.dtype).eps if isinstance(direct, torch.Tensor) else 1e-12
    assert res.value == pytest.approx(float(direct), rel=max(resolution, 1e-12), abs=1e-12)


@settings(max_examples=examples(0.6))
@given(case=cases(max_n=12, dims=(1, 2), weights=False, min_n=1, kinds=KINDS))
def test_compare_rows_are_finite_and_match_the_exact_distances(case):
    metrics = ("w1", "w2", "sliced", "sinkhorn", "kl", "js")
    table = _call(lambda: otdist.compare(case.x, case.y, metrics=metrics))
    if table is None:
        # Only an estimator needing more points than given may refuse; each metric alone must say so.
        for metric in metrics:
            _call(lambda: otdist.compare(case.x, case.y, metrics=(metric,)))
        return
    values = table.to_dict()
    assert all(math.isfinite(v) for v in values.values()), values
    for metric, p in (("w1", 1), ("w2", 2)):
        oracle = emd_cost(case, p) ** (1 / p)
        assert abs(values[metric] - oracle) <= 1e-6 * (1 + oracle), (metric, values[metric], oracle)
    assert values["sliced"] <= values["w1"] * (1 + 1e-6) + 1e-9


@settings(max_examples=examples(0.6))
@given(case=cases(max_n=12, dims=(1, 2), weights=False, min_n=1))
def test_compare_single_metrics_fail_only_with_own_errors(case):
    for metric in ("w1", "w2", "sliced", "sinkhorn", "kl", "js"):
        try:
            value = otdist.compare(case.x, case.y, metrics=(metric,))[metric]
        except Exception as err:  # noqa: BLE001 - the assertion is on the exception's type
            assert is_own_error(err), f"compare({metric!r}) raised {type(err).__name__}: {err}"
        else:
            assert math.isfinite(value)


NEURAL_OPTIONS = {"steps": 20, "hidden": 8, "n_folds": 2, "batch_size": 32, "progress": False}


@pytest.mark.parametrize("container", ("numpy", "torch"))
def test_neural_lightly_returns_a_bounded_estimate_and_refuses_what_it_cannot_do(container):
    rng = np.random.default_rng(7)
    x = rng.random((40, 2))
    y = x + np.array([3.0, 0.0])
    if container == "torch":
        x, y = torch.as_tensor(x), torch.as_tensor(y)
    value = check_scalar(otdist.wasserstein(x, y, method="neural", **NEURAL_OPTIONS), container, "float64")
    diameter = float(np.linalg.norm(as_float64(x)[:, None] - as_float64(y)[None], axis=-1).max())
    # A c-Lipschitz critic cannot separate the samples by more than c times their largest distance; the
    # linear critic is rescaled by at most MAX_CORRECTION, every other family is 1-Lipschitz.
    assert abs(value) <= MAX_CORRECTION * diameter * (1 + 1e-6)
    with pytest.raises(otdist.InputError):
        otdist.wasserstein(x, y, rng.random(40), None, method="neural", **NEURAL_OPTIONS)
    with pytest.raises(otdist.InputError):
        otdist.wasserstein(x, y, p=2, method="neural", **NEURAL_OPTIONS)
