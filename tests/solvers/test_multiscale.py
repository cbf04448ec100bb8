"""Multiscale Sinkhorn (otdist.solvers.multiscale) against the dense tensorized solver.

Tolerances.  The multiscale run stops when its L1 column error on the kept pairs is <= TOL and the
dropped pairs carry at most delta (``Truncation.dropped``) of the full plan; the dense run stops at
DENSE_TOL.  Both pairs are then near-optimal for OT_eps with marginal errors e1 <= TOL + 2 delta and
e2 <= DENSE_TOL, and the semi-dual value of such a pair is within (e1 + e2) max|f, g| (first order)
+ eps delta of OT_eps; we allow 10x that, scaled by the cost spread, for both values.
"""

import numpy as np
import pytest
import torch

from otdist.exceptions import InputError
from otdist.solvers import multiscale
from otdist.solvers import sinkhorn as core
from otdist.solvers import sinkhorn_ops as ops

TOL = 1e-9
DENSE_TOL = 1e-11
SAFETY = 10.0


def _problem(n, m, d, seed, weighted=False):
    rng = np.random.default_rng(seed)
    x = torch.as_tensor(rng.random((1, n, d)))
    y = torch.as_tensor(rng.random((1, m, d)) * 0.8 + 0.1)
    if weighted:
        a, b = torch.as_tensor(rng.random((1, n)) + 0.1), torch.as_tensor(rng.random((1, m)) + 0.1)
    else:
        a, b = torch.ones(1, n, dtype=torch.float64), torch.ones(1, m, dtype=torch.float64)
    return x, y, a / a.sum(), b / b.sum()


@pytest.mark.parametrize("d, p, eps", [(1, 2, 1e-3), (2, 2, 2e-3), (3, 2, 5e-3), (2, 1, 1e-2), (3, 1, 2e-2)])
@pytest.mark.parametrize("seed", [0, 1])
def test_agrees_with_dense_solver(d, p, eps, seed):
    x, y, a, b = _problem(300, 250, d, seed, weighted=seed == 1)
    pot, trunc = multiscale.solve(x, y, a, b, eps, p=p, tol=TOL, max_iter=5000, scaling=0.5)
    assert pot.converged and pot.f.shape == (1, 300) and pot.g.shape == (1, 250)
    cost = torch.cdist(x, y) ** p
    dense = core.solve(cost, a, b, eps, scaling=0.5, eps_start=float(cost.max()), tol=DENSE_TOL, max_iter=20000)
    assert dense.converged
    mass, dropped_cost = trunc.dropped(pot)
    spread = float(cost.max())
    allowed = SAFETY * ((TOL + 2 * mass + DENSE_TOL) * spread + eps * mass)
    assert abs(float(trunc.entropic_cost(pot, a, b)) - float(ops.entropic_cost(dense, cost, a, b))) <= allowed
    assert abs(float(trunc.transport_cost(pot, a, b)) - float(ops.transport_cost(dense, cost, a, b))) <= \
        allowed + dropped_cost
    # the potentials are those of the dense solution up to a constant, within the same margin over eps
    shift = float((pot.f - dense.f).mean())
    assert float((pot.f - dense.f - shift).abs().max()) <= 1e-3 * spread
    assert float(trunc.marginal_error(pot, a, b)) <= 2 * TOL


@pytest.mark.parametrize("seed", [0, 1])
def test_dropped_pairs_have_small_kernel(seed):
    """The guarantee of the docstring, checked on every pair: kernel <= exp(-tau) off the kept set."""
    x, y, a, b = _problem(400, 400, 2, seed)
    eps = 2e-3
    pot, trunc = multiscale.solve(x, y, a, b, eps, p=2, tol=1e-8, max_iter=5000, scaling=0.5)
    cost = torch.cdist(x, y)[0] ** 2
    exponent = (pot.f[0, :, None] + pot.g[0, None, :] - cost) / eps
    kept = trunc.kept_mask()
    assert trunc.kept_fraction < 1.0
    assert float(exponent[~kept].max()) <= -trunc.truncation
    plan = a[0, :, None] * b[0, None, :] * exponent.exp()
    mass, _ = trunc.dropped(pot)
    assert float(plan[~kept].sum()) <= mass


def test_kept_fraction_decreases_with_epsilon():
    x, y, a, b = _problem(800, 800, 3, 3)
    fractions = []
    for eps in (0.05, 0.01, 0.002):
        pot, trunc = multiscale.solve(x, y, a, b, eps, p=2, tol=1e-6, max_iter=3000, scaling=0.5)
        assert pot.converged
        fractions.append(trunc.kept_fraction)
    assert fractions[0] > fractions[1] > fractions[2]


def test_float32_points():
    x, y, a, b = (t.float() for t in _problem(400, 400, 3, 4))
    pot, trunc = multiscale.solve(x, y, a, b, 5e-3, p=2, tol=1e-4, max_iter=3000, scaling=0.5)
    assert pot.converged and pot.f.dtype == torch.float32
    cost = torch.cdist(x.double(), y.double()) ** 2
    dense = core.solve(cost, a.double(), b.double(), 5e-3, scaling=0.5, eps_start=3.0, tol=1e-10, max_iter=20000)
    reference = float(ops.entropic_cost(dense, cost, a.double(), b.double()))
    # float32: the semi-dual of an error-1e-4 pair is within 1e-4 * spread of the optimum (to first order)
    assert abs(float(trunc.entropic_cost(pot, a, b)) - reference) <= SAFETY * 1e-4 * float(cost.max())


@pytest.mark.parametrize("shape, metric, p, match", [
    ((1, 10, 4), "euclidean", 2, "d <= 3"),
    ((2, 10, 2), "euclidean", 2, "one problem"),
    ((1, 10, 2), "cityblock", 1, "Euclidean"),
    ((1, 10, 2), lambda u, v: u, 1, "Euclidean"),
])
def test_unsupported_problems_name_the_online_backend(shape, metric, p, match):
    x = torch.zeros(shape)
    with pytest.raises(InputError, match=match) as info:
        multiscale.check_supported(x, x, p, metric)
    assert 'backend="online"' in str(info.value)
