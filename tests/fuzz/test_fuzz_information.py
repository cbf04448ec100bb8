"""Fuzz: kl, js, js_distance and distance() between histograms, against scipy.

Histograms mix zeros and masses from 1e-20 to 1 (or small integers and booleans), in every
dtype; the oracles are ``scipy.stats.entropy`` (KL, +inf where q_i = 0 < p_i) and
``scipy.spatial.distance.jensenshannon`` (JS = jensenshannon ** 2), on the values as cast.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy
from strategies import (
    KINDS,
    TINY_WEIGHT_EXPONENT,
    as_float64,
    cast,
    check_scalar,
    compute_eps,
    examples,
    output_eps,
    output_tiny,
)

import otdist

BASES = st.sampled_from((None, 2.0, math.e, 10.0))
#: Rounding of a sum of n terms p_i log(p_i / q_i), per unit of sum_i p_i |log(p_i / q_i)| + 1.
ULPS_PER_LOG_TERM = 16


@st.composite
def histogram_pairs(draw):
    container, dtype = draw(st.sampled_from(KINDS))
    n = draw(st.integers(1, 10))

    def one():
        if dtype == "int":
            raw = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
        elif dtype == "bool":
            raw = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        else:
            exps = draw(st.lists(st.one_of(st.none(), st.floats(TINY_WEIGHT_EXPONENT, 0)), min_size=n, max_size=n))
            raw = [0.0 if e is None else 10.0 ** e for e in exps]
        return cast(np.array(raw, dtype=float), container, dtype)

    p = one()
    q = p if draw(st.integers(0, 3)) == 0 else one()  # equal histograms: KL = JS = 0
    return container, dtype, p, q


def _tolerance(container, dtype, p64, q64, value):
    p, q = p64 / p64.sum(), q64 / q64.sum()
    both = (p > 0) & (q > 0)
    spread = float((p[both] * np.abs(np.log(p[both] / q[both]))).sum()) + 1.0
    eps_out = output_eps(container, dtype)
    return ULPS_PER_LOG_TERM * len(p) * compute_eps(container, dtype) * spread + 2 * eps_out * abs(value) + output_tiny(container, dtype)


def _in_base(nats, base):
    return nats if base is None else nats / math.log(base)


def _invalid(p64, q64):
    return p64.sum() <= 0 or q64.sum() <= 0


@settings(max_examples=examples(2))
@given(pair=histogram_pairs(), base=BASES)
def test_kl_agrees_with_scipy_entropy(pair, base):
    container, dtype, p, q = pair
    p64, q64 = as_float64(p), as_float64(q)
    if _invalid(p64, q64):
        with pytest.raises(otdist.InputError):
            otdist.kl(p, q, base=base)
        return
    value = check_scalar(otdist.kl(p, q, base=base), container, dtype, allow_inf=True)
    oracle = float(entropy(p64, q64, base=base))
    if math.isinf(oracle):
        assert value == math.inf
        return
    assert value >= -_tolerance(container, dtype, p64, q64, oracle)
    assert abs(value - oracle) <= _tolerance(container, dtype, p64, q64, oracle), (value, oracle)


@settings(max_examples=examples(2))
@given(pair=histogram_pairs(), base=BASES)
def test_js_and_js_distance_agree_with_scipy_jensenshannon(pair, base):
    container, dtype, p, q = pair
    p64, q64 = as_float64(p), as_float64(q)
    if _invalid(p64, q64):
        for function in (otdist.js, otdist.js_distance):
            with pytest.raises(otdist.InputError):
                function(p, q, base=base)
        return
    js = check_scalar(otdist.js(p, q, base=base), container, dtype)
    distance = check_scalar(otdist.js_distance(p, q, base=base), container, dtype)
    pn, qn = p64 / p64.sum(), q64 / q64.sum()
    m = 0.5 * (pn + qn)
    oracle = _in_base(0.5 * (entropy(pn, m) + entropy(qn, m)), base)
    tol = _tolerance(container, dtype, p64, q64, oracle) + _tolerance(container, dtype, q64, p64, oracle)
    assert -tol <= js <= _in_base(math.log(2), base) + tol
    assert abs(js - oracle) <= tol, (js, oracle)
    assert distance >= 0
    assert abs(distance ** 2 - oracle) <= tol + 2 * output_eps(container, dtype) * abs(oracle)
    if oracle > 1e-6:  # away from 0, where the square root is well conditioned
        reference = float(jensenshannon(p64, q64, base=base))
        assert abs(distance - reference) <= tol / reference + 2 * output_eps(container, dtype) * reference


@settings(max_examples=examples())
@given(pair=histogram_pairs(), metric=st.sampled_from(("kl", "js", "js_distance")))
def test_distance_dispatches_to_the_same_function(pair, metric):
    container, dtype, p, q = pair
    if _invalid(as_float64(p), as_float64(q)):
        with pytest.raises(otdist.InputError):
            otdist.distance(p, q, metric=metric)
        return
    direct = check_scalar(getattr(otdist, metric)(p, q), container, dtype, allow_inf=True)
    dispatched = check_scalar(otdist.distance(p, q, metric=metric), container, dtype, allow_inf=True)
    assert direct == dispatched


@settings(max_examples=examples(0.5))
@given(n=st.integers(1, 6), m=st.integers(1, 6))
def test_histograms_of_different_lengths_raise_input_error(n, m):
    assume(n != m)
    for function in (otdist.kl, otdist.js, otdist.js_distance):
        with pytest.raises(otdist.InputError):
            function(np.ones(n), np.ones(m))
