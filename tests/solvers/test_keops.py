"""``otdist.solvers.keops``: the KeOps c-transforms and plan statistics against dense torch sums.

The reference sums the dense cost of :func:`otdist.cost.ground_cost`, computed in float64 from the
same points, with ``torch.logsumexp``.  Both sides round each cost entry (d + 2 operations) and
sum at most n + m terms, so they differ by at most ~(n + m + d) unit roundoffs of the scale of the
terms: ROUNDOFFS * (n + m + d) * finfo.eps relative to max |f| + max C (1e-13 in float64 here,
6e-5 in float32).  Every formula compiles once (g++, tens of seconds) into KeOps's cache, so the
tests use few of them: the softmin for p = 1, 2 in float64 and p = 2 in float32, the plan
statistics for p = 2 in float64.

Through ``otdist.sinkhorn(..., backend="keops")`` both solvers stop on an L1 marginal error <= tol
= 1e-12, so the values agree with the tensorized solver to about tol * max C: AGREEMENT = 1e-10, as
for the online backend (tests/solvers/test_online_backend.py).
"""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import torch

import otdist
from otdist.cost import ground_cost
from otdist.exceptions import InputError
from tests.conftest import assert_same_entropic_solution

pytestmark = [pytest.mark.keops,
              pytest.mark.skipif(importlib.util.find_spec("pykeops") is None, reason="pykeops is not installed")]

#: Unit roundoffs per term allowed between two orders of summation (worst case: 1 per addition,
#: a few per cost entry and exponent).
ROUNDOFFS = 4
B, N, M, D = 2, 70, 50, 3
EPS = 0.05
SEEDS = (0, 1, 2)
AGREEMENT = 1e-10


def _problem(seed, dtype):
    """Batched points in the unit cube, weights with zeros (first rows/columns, where KeOps's sums start)."""
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.rand(B, N, D, generator=gen, dtype=dtype), torch.rand(B, M, D, generator=gen, dtype=dtype)
    a, b = torch.rand(B, N, generator=gen, dtype=dtype) + 0.05, torch.rand(B, M, generator=gen, dtype=dtype) + 0.05
    a[:, 0], b[:, 0], b[1, 7] = 0.0, 0.0, 0.0
    a, b = a / a.sum(dim=1, keepdim=True), b / b.sum(dim=1, keepdim=True)
    f = 0.1 * torch.randn(B, N, generator=gen, dtype=dtype)
    g = 0.1 * torch.randn(B, M, generator=gen, dtype=dtype)
    return x, y, a.log(), b.log(), f, g


def _bound(dtype, scale):
    return ROUNDOFFS * (N + M + D) * torch.finfo(dtype).eps * scale


@pytest.mark.parametrize("p, dtype", [(1, torch.float64), (2, torch.float64), (2, torch.float32)])
def test_rows_and_columns_equal_dense_logsumexp(p, dtype):
    from otdist.solvers.keops import KeOpsSoftmin

    for seed in SEEDS:
        x, y, log_a, log_b, f, g = _problem(seed, dtype)
        cost = ground_cost(x.double(), y.double(), p)
        softmin = KeOpsSoftmin(x, y, p, "euclidean")
        assert softmin.shape == (N, M)
        rows, columns = softmin.rows(g, log_b, EPS), softmin.columns(f, log_a, EPS)
        assert rows.dtype == columns.dtype == dtype and rows.shape == (B, N) and columns.shape == (B, M)
        row_ref = -EPS * torch.logsumexp((log_b + g / EPS).double()[:, None, :] - cost / EPS, dim=2)
        col_ref = -EPS * torch.logsumexp((log_a + f / EPS).double()[:, :, None] - cost / EPS, dim=1)
        for got, ref in ((rows, row_ref), (columns, col_ref)):
            scale = float(ref.abs().max() + cost.max())
            assert float((got.double() - ref).abs().max()) <= _bound(dtype, scale)


def test_plan_statistics_equal_dense_plan():
    from otdist.solvers.keops import KeOpsSoftmin

    dtype = torch.float64
    for seed in SEEDS:
        x, y, log_a, log_b, f, g = _problem(seed, dtype)
        cost = ground_cost(x, y, 2)
        plan = (log_a[:, :, None] + log_b[:, None, :] + (f[:, :, None] + g[:, None, :] - cost) / EPS).exp()
        transport, columns = KeOpsSoftmin(x, y, 2, "euclidean").plan_statistics(f, g, log_a, log_b, EPS)
        assert transport.shape == (B,) and columns.shape == (B, M)
        assert torch.all((transport - (plan * cost).sum(dim=(1, 2))).abs()
                         <= _bound(dtype, float((plan * cost).sum(dim=(1, 2)).max())))
        assert torch.all((columns - plan.sum(dim=1)).abs() <= _bound(dtype, float(plan.sum(dim=1).max())))
        assert torch.all(columns[log_b == -torch.inf] == 0)


@pytest.mark.parametrize("metric, p, minkowski_p", [(lambda u, v: torch.cdist(u, v), 1, None),
                                                      ("sqeuclidean", 2, None), ("minkowski", 1, None),
                                                      ("hamming", 1, None)])
def test_unsupported_metric_is_an_input_error(metric, p, minkowski_p):
    from otdist.solvers.keops import KeOpsSoftmin

    x = torch.zeros(1, 3, 2, dtype=torch.float64)
    with pytest.raises(InputError):
        KeOpsSoftmin(x, x, p, metric, minkowski_p)


def test_callable_metric_error_names_the_online_backend():
    from otdist.solvers.keops import check_supported

    with pytest.raises(InputError, match='backend="online"'):
        check_supported(1, lambda u, v: torch.cdist(u, v), None)


def test_availability_check_keeps_keops_notices_off_stdout():
    code = "from otdist.solvers.keops import keops_available; assert keops_available()"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout == ""


def test_sinkhorn_keops_backend_equals_tensorized():
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        x, y = rng.random((60, 3)), rng.random((45, 3)) + 0.2
        a, b = rng.random(60) + 0.05, rng.random(45) + 0.05
        a[3] = 0.0
        kw = dict(p=2, epsilon=0.05, tol=1e-12)
        dense = otdist.sinkhorn(x, y, a, b, backend="tensorized", **kw)
        keops = otdist.sinkhorn(x, y, a, b, backend="keops", **kw)
        assert keops.converged and keops.marginal_error <= 1e-12
        assert_same_entropic_solution(keops, dense, a, AGREEMENT)


def test_keops_backend_computes_the_transport_cost_in_keops(monkeypatch):
    """<P, C> of a keops solve comes from the KeOps plan statistics, not a torch pass over row blocks
    (which costs ~10 ns per entry on a CPU: 100 s at n = 10^5)."""
    from otdist.solvers import online

    rng = np.random.default_rng(3)
    x, y = rng.random((60, 3)), rng.random((45, 3))
    kw = dict(p=2, epsilon=0.05, tol=1e-12)
    dense = otdist.sinkhorn(x, y, backend="tensorized", **kw)

    def refused(*args, **kwargs):
        raise AssertionError("a torch pass over the row blocks")

    monkeypatch.setattr(online, "plan_statistics", refused)
    keops = otdist.sinkhorn(x, y, backend="keops", **kw)
    assert keops.transport_cost == pytest.approx(dense.transport_cost, rel=AGREEMENT)
