"""KL and JS between histograms against scipy, and their planted values."""

import math
import warnings

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.spatial.distance import jensenshannon

import otdist

LOG2 = math.log(2)
masses = st.floats(0.0, 100.0, allow_nan=False, allow_infinity=False)


@st.composite
def histogram_pair(draw, min_size=1, max_size=20):
    n = draw(st.integers(min_size, max_size))
    p = draw(hnp.arrays(np.float64, n, elements=masses).filter(lambda a: a.sum() > 0))
    q = draw(hnp.arrays(np.float64, n, elements=masses).filter(lambda a: a.sum() > 0))
    return p, q


@given(histogram_pair(), st.sampled_from([None, 2.0, 10.0]))
def test_kl_matches_scipy_entropy(pq, base):
    p, q = pq
    expected = scipy.stats.entropy(p, q, base=base)
    value = otdist.kl(p, q, base=base)
    if np.isinf(expected):
        assert value == math.inf
    else:
        assert value == pytest.approx(expected, rel=1e-10, abs=1e-13)


@given(histogram_pair(), st.sampled_from([None, 2.0]))
def test_js_bounded_symmetric_and_matches_scipy_squared(pq, base):
    p, q = pq
    value = otdist.js(p, q, base=base)
    bound = LOG2 if base is None else 1.0
    assert 0.0 <= value <= bound
    assert value == pytest.approx(otdist.js(q, p, base=base), abs=1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's sqrt of a rounded-negative radicand
        expected = jensenshannon(p, q, base=base) ** 2
    if np.isfinite(expected):  # scipy returns NaN when rounding makes its radicand negative
        assert value == pytest.approx(expected, rel=1e-8, abs=1e-12)
    assert otdist.js_distance(p, q, base=base) == pytest.approx(math.sqrt(value), abs=1e-15)


@given(histogram_pair(min_size=2))
def test_js_is_exactly_log2_on_disjoint_supports(pq):
    p, q = pq
    p, q = np.concatenate([p, np.zeros_like(q)]), np.concatenate([np.zeros_like(p), q])
    assert otdist.js(p, q) == LOG2
    assert otdist.kl(p, q) == math.inf
    assert otdist.js(p, q, base=2) == pytest.approx(1.0, abs=1e-15)


def test_p_versus_scaled_p_is_zero_not_nan():
    p = np.array([1.0, 2.0, 3.0, 0.0, 7.5])
    for scale in [3.0, 1e-8, 1e8]:
        assert otdist.js(p, scale * p) == 0.0 or otdist.js(p, scale * p) < 1e-15
        assert otdist.js_distance(p, scale * p) < 1e-7
        assert otdist.kl(p, scale * p) == pytest.approx(0.0, abs=1e-15)


def test_scaled_uniform_histograms_where_scipy_returns_nan():
    p, q = np.ones(6), np.full(6, 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert np.isnan(jensenshannon(p, q))
    assert 0.0 <= otdist.js(p, q) < 1e-15
    assert np.isfinite(otdist.js_distance(p, q))


def test_closed_forms():
    assert otdist.kl([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3), rel=1e-14)
    # JS between Bernoulli(0) and Bernoulli(1/2): 1/2 KL((1,0)||(3/4,1/4)) + 1/2 KL((1/2,1/2)||(3/4,1/4))
    expected = 0.5 * math.log(4 / 3) + 0.5 * (0.5 * math.log(2 / 3) + 0.5 * math.log(2))
    assert otdist.js([1, 0], [0.5, 0.5]) == pytest.approx(expected, rel=1e-14)


def test_torch_in_torch_out_and_gradients():
    p = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64, requires_grad=True)
    q = torch.tensor([0.4, 0.4, 0.2], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: otdist.js(a, b), (p, q))
    assert torch.autograd.gradcheck(lambda a, b: otdist.kl(a, b), (p, q))
    value = otdist.kl(p, q)
    assert isinstance(value, torch.Tensor)
    assert float(value.detach()) == pytest.approx(scipy.stats.entropy(p.detach().numpy(), q.detach().numpy()), rel=1e-12)


def test_samples_are_refused_with_a_pointer_to_estimators():
    with pytest.raises(ValueError, match="method='knn'"):
        otdist.kl(np.random.default_rng(0).normal(size=(10, 2)), np.ones((10, 2)))
    with pytest.raises(ValueError, match="raw samples"):
        otdist.js([-0.3, 1.2, 0.4], [0.1, 0.2, 0.3])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_half_precision_histograms_are_computed_in_float32(dtype, seed):
    # Counts summing past float16's largest value (65504) must not overflow; the result comes back in
    # the input dtype, equal to scipy on the same (rounded) inputs up to one rounding of the output.
    rng = np.random.default_rng(seed)
    p = torch.tensor(rng.integers(0, 100, 2000).astype(float)).to(dtype)
    q = torch.tensor(rng.integers(1, 100, 2000).astype(float)).to(dtype)
    p64, q64 = p.double().numpy(), q.double().numpy()
    eps = torch.finfo(dtype).eps
    kl, js, distance = otdist.kl(p, q), otdist.js(p, q, base=2), otdist.js_distance(p, q, base=2)
    assert kl.dtype == js.dtype == distance.dtype == dtype
    assert float(kl) == pytest.approx(scipy.stats.entropy(p64, q64), rel=eps)
    assert float(js) == pytest.approx(jensenshannon(p64, q64, base=2) ** 2, rel=eps)
    assert float(distance) == pytest.approx(jensenshannon(p64, q64, base=2), rel=eps)


@pytest.mark.parametrize("make", [lambda a: np.asarray(a, dtype=np.int64), lambda a: torch.tensor(a, dtype=torch.int64),
                                  lambda a: np.asarray(a, dtype=np.float32), lambda a: torch.tensor(a, dtype=torch.float32)])
def test_integer_and_float32_histograms(make):
    p, q = [3, 0, 5, 2], [1, 4, 4, 1]
    value, distance = otdist.kl(make(p), make(q)), otdist.js_distance(make(p), make(q))
    if isinstance(value, torch.Tensor):
        assert value.dtype == distance.dtype == torch.float32  # int64 -> torch's default float dtype
    else:
        assert type(value) is float and type(distance) is float
    assert float(value) == pytest.approx(scipy.stats.entropy(p, q), rel=1e-6)
    assert float(distance) == pytest.approx(jensenshannon(p, q), rel=1e-6)


def test_base_is_checked_before_anything_is_computed():
    with pytest.raises(otdist.InputError, match="base must be"):
        otdist.kl(np.random.default_rng(0).normal(size=(20, 1)), np.ones((20, 1)), method="knn", base=1)
