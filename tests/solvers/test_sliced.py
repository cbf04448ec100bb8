"""Sliced Wasserstein against the exact 1-D solver and the closed form for translations."""

import numpy as np
import pytest
import torch

import otdist


def test_equals_exact_1d_when_d_is_1(rng):
    u, v, w = rng.normal(size=(50, 1)), rng.normal(size=(40, 1)), rng.random(50)
    for p in [1, 2]:
        sliced = otdist.transport(u, v, w, p=p, method="sliced", n_projections=3)
        assert sliced.value == pytest.approx(otdist.wasserstein(u[:, 0], v[:, 0], w, p=p), rel=1e-12)


@pytest.mark.parametrize("d", [2, 5])
def test_translation_closed_form(rng, d):
    x = rng.normal(size=(200, d))
    shift = rng.normal(size=d)
    res = otdist.transport(x, x + shift, p=2, method="sliced", n_projections=4000, seed=1)
    expected = np.linalg.norm(shift) / np.sqrt(d)  # SW_2(x, x + v) = |v| / sqrt(d)
    assert abs(res.value - expected) < 4 * res.standard_error
    assert 0 < res.standard_error < 0.05 * expected


def test_seeded_and_differentiable(rng):
    x, y = rng.normal(size=(30, 3)), rng.normal(size=(30, 3)) + 1
    assert otdist.wasserstein(x, y, method="sliced", seed=5) == otdist.wasserstein(x, y, method="sliced", seed=5)
    xt = torch.tensor(x, requires_grad=True)
    value = otdist.wasserstein(xt, torch.tensor(y), method="sliced", p=2)
    value.backward()
    assert isinstance(value, torch.Tensor) and torch.isfinite(xt.grad).all() and xt.grad.abs().sum() > 0


def test_is_a_lower_bound_of_the_exact_distance(rng):
    x, y = rng.normal(size=(60, 3)), rng.normal(size=(60, 3)) * 2 + 0.5
    assert otdist.wasserstein(x, y, p=2, method="sliced", n_projections=500) <= otdist.wasserstein(x, y, p=2, method="exact")
