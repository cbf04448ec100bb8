import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# KeOps prints a notice (no CUDA) on stdout when POT imports it; it would land in doctest and CLI output.
os.environ.setdefault("KEOPS_VERBOSE", "0")

settings.register_profile("default", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

if os.environ.get("PYTEST_XDIST_WORKER"):  # one torch thread per worker: no oversubscription
    import torch

    torch.set_num_threads(1)

finite_values = st.floats(-100, 100, allow_nan=False, allow_infinity=False, width=64)
positive_weights = st.floats(0.01, 10.0, allow_nan=False, allow_infinity=False)


@st.composite
def weighted_sample(draw, d=None, min_size=1, max_size=30):
    """(values, weights) with values of shape (n,) when d is None, else (n, d)."""
    n = draw(st.integers(min_size, max_size))
    shape = (n,) if d is None else (n, d)
    values = draw(hnp.arrays(np.float64, shape, elements=finite_values))
    weights = draw(hnp.arrays(np.float64, (n,), elements=positive_weights))
    return values, weights


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def assert_same_entropic_solution(result, reference, a, agreement: float, potential_rtol: float = 1e-8) -> None:
    """Two Sinkhorn results of one problem agree: values to ``agreement``, potentials (on a's support) up to
    the constant (f + c, g - c) that leaves the plan unchanged, to ``potential_rtol`` of their scale."""
    for name in ("value", "transport_cost", "entropic_cost"):
        assert getattr(result, name) == pytest.approx(getattr(reference, name), abs=agreement)
    (f1, g1), (f2, g2) = reference.potentials, result.potentials
    active = np.asarray(a) > 0
    shift = np.mean(f2[active] - f1[active])
    scale = max(np.abs(f1[active]).max(), 1.0)
    assert np.abs(f2[active] - f1[active] - shift).max() <= potential_rtol * scale
    assert np.abs(g2 - g1 + shift).max() <= potential_rtol * scale
