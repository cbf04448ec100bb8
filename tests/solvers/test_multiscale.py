"""Multiscale Sinkhorn (otdist.solvers.multiscale) against the dense tensorized solver.

Tolerances.  The multiscale run stops when its L1 column error on the kept pairs is <= TOL and the
dropped pairs carry at most delta (``Truncation.dropped``) of the full plan; the dense run stops at
DENSE_TOL.  Both pairs are then near-optimal for OT_eps with marginal errors e1 <= TOL + 2 delta and
e2 <= DENSE_TOL, and the semi-dual value of such a pair is within (e1 + e2) max|f, g| (first order)
+ eps delta of OT_eps; we allow 10x that, scaled by the cost spread, for both values.
"""

import math

import numpy as np
import pytest
import torch

from otdist.exceptions import InputError
from otdist.solvers import _clusters, log_sinkhorn, multiscale, online
from otdist.solvers._clusters import TileSoftmin, tree_clusters
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


def _tiled(seed, d, n=240, m=200, most=8):
    """Points, weights and their Morton-tree tiles (x) and groups (y) of at most ``most`` points."""
    x, y, a, b = _problem(n, m, d, seed, weighted=True)
    low = torch.minimum(x[0].min(dim=0).values, y[0].min(dim=0).values)
    scale = float((torch.maximum(x[0].max(dim=0).values, y[0].max(dim=0).values) - low).max())
    return tree_clusters(x[0], a[0], low, scale, most), tree_clusters(y[0], b[0], low, scale, most)


def _potentials(tiles, groups, seed):
    """Potentials (sorted orders) that vary over the clouds: a smooth part and noise."""
    gen = torch.Generator().manual_seed(seed)
    f = 0.3 * tiles.points[:, 0] + 0.02 * torch.rand(tiles.points.shape[0], generator=gen, dtype=torch.float64)
    g = -0.3 * groups.points[:, 0] + 0.02 * torch.rand(groups.points.shape[0], generator=gen, dtype=torch.float64)
    return f, g


def _dense_test(tiles, groups, f, g, eps, p, tau):
    """(T, m) bool: the truncation test on every pair (tile, point), from each tile's own points."""
    required = torch.zeros(tiles.count, groups.points.shape[0], dtype=torch.bool)
    y = groups.points.numpy()
    for t, (s, e) in enumerate(zip(tiles.starts.tolist(), tiles.ends.tolist())):
        pts = tiles.points[s:e].numpy()
        gap = np.maximum(np.maximum(pts.min(axis=0) - y, y - pts.max(axis=0)), 0.0)
        lower = np.sqrt((gap**2).sum(axis=1)) ** p
        required[t] = torch.as_tensor((float(f[s:e].max()) + g.numpy() - lower) / eps > -tau)
    return required


def _kept_matrix(offsets, index, tiles_count, m):
    kept = torch.zeros(tiles_count, m, dtype=torch.bool)
    rows = torch.repeat_interleave(torch.arange(tiles_count), offsets[1:] - offsets[:-1])
    kept[rows, index.long()] = True
    return kept


@pytest.mark.parametrize("d, p", [(2, 2), (3, 2), (2, 1)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kept_pairs_equal_the_dense_truncation_test(d, p, seed):
    """The chunked test (tile x group, then the points of the groups that pass) keeps exactly the pairs
    (tile, point) that the test on every pair keeps, each tile's columns ascending."""
    tiles, groups = _tiled(seed, d)
    f, g = _potentials(tiles, groups, seed)
    eps, tau = 0.01, 5.0 if p == 2 else 20.0  # a reach of about 0.2 either way
    offsets, index = multiscale._kept(tiles, groups, f, g, eps, p, tau)
    required = _dense_test(tiles, groups, f, g, eps, p, tau)
    assert required.any(dim=1).all() and required.any(dim=0).all()  # no partner has to be added
    assert 0 < int(required.sum()) < required.numel()
    assert torch.equal(_kept_matrix(offsets, index, tiles.count, groups.points.shape[0]), required)
    for s, e in zip(offsets[:-1].tolist(), offsets[1:].tolist()):
        assert bool((index[s + 1:e] > index[s:e - 1]).all())


def test_every_point_keeps_a_partner():
    """A point too far from every tile to pass the test is still kept with its best tile (else its
    c-transform would be +inf)."""
    tiles, groups = _tiled(0, 2)
    f, g = _potentials(tiles, groups, 0)
    g[5] -= 10.0  # far below the others: no tile passes the test with it
    eps, tau = 0.01, 5.0
    required = _dense_test(tiles, groups, f, g, eps, p=2, tau=tau)
    assert not required[:, 5].any()
    offsets, index = multiscale._kept(tiles, groups, f, g, eps, 2, tau)
    kept = _kept_matrix(offsets, index, tiles.count, groups.points.shape[0])
    assert int(kept[:, 5].sum()) == 1 and torch.equal(kept[:, :5], required[:, :5])
    softmin = TileSoftmin(tiles, groups.points, offsets, index, 2, torch.float64)
    assert bool(torch.isfinite(softmin.columns(f[None], tiles.weights.log()[None], eps)).all())


@pytest.mark.parametrize("seed", [0, 1])
def test_audit_finds_a_pair_left_out(seed):
    """The certification re-runs the test: a pair that passes it but is missing from the kept set is
    reported, and the dropped-mass bound covers the full plan off the kept set."""
    tiles, groups = _tiled(seed, 2)
    f, g = _potentials(tiles, groups, seed)
    eps, tau, p = 0.01, 5.0, 2
    offsets, index = multiscale._kept(tiles, groups, f, g, eps, p, tau)
    t = int(torch.argmax(offsets[1:] - offsets[:-1]))
    k = int(offsets[t]) + 1
    j = int(index[k])
    wrong = offsets.clone()
    wrong[t + 1:] -= 1
    without = torch.cat([index[:k], index[k + 1:]])
    for kept_offsets, kept_index, expected in [(offsets, index, []), (wrong, without, [(t, j)])]:
        softmin = TileSoftmin(tiles, groups.points, kept_offsets, kept_index, p, torch.float64)
        trunc = multiscale.Truncation(tiles, groups, softmin, eps, tau, p)
        missing, mass, cost = trunc.audit(f[None], g[None])
        assert [tuple(pair) for pair in missing.T.tolist()] == expected
        kept = _kept_matrix(kept_offsets, kept_index, tiles.count, groups.points.shape[0])[tiles.labels]
        c = torch.cdist(tiles.points, groups.points) ** p
        plan = tiles.weights[:, None] * groups.weights[None, :] * ((f[:, None] + g[None, :] - c) / eps).exp()
        assert float(plan[~kept].sum()) <= mass
        assert float((plan * c)[~kept].sum()) <= cost


@pytest.mark.parametrize("p, dtype", [(2, torch.float64), (1, torch.float64), (2, torch.float32)])
@pytest.mark.parametrize("direct", [True, False])
def test_tile_softmin_equals_masked_logsumexp(p, dtype, direct, monkeypatch):
    """Both c-transforms and the plan statistics on the kept pairs equal a dense masked logsumexp, on the
    direct exp-sum path and on the logsumexp path (EXP_HEADROOM = 0 sends every block there)."""
    if not direct:
        monkeypatch.setattr(_clusters, "EXP_HEADROOM", 0.0)
    tiles, groups = _tiled(3, 3)
    f, g = _potentials(tiles, groups, 3)
    eps, tau = 0.01, 5.0
    offsets, index = multiscale._kept(tiles, groups, f, g, eps, p, tau)
    softmin = TileSoftmin(tiles, groups.points.to(dtype), offsets, index, p, dtype)
    kept = _kept_matrix(offsets, index, tiles.count, groups.points.shape[0])[tiles.labels]
    c = torch.cdist(tiles.points, groups.points) ** p
    log_a, log_b = tiles.weights.log(), groups.weights.log()
    inner = torch.where(kept, (f[:, None] + g[None, :] - c) / eps, -math.inf)
    rows = -eps * torch.logsumexp(torch.where(kept, log_b[None, :] + (g[None, :] - c) / eps, -math.inf), dim=1)
    columns = -eps * torch.logsumexp(torch.where(kept, log_a[:, None] + (f[:, None] - c) / eps, -math.inf), dim=0)
    plan = (log_a[:, None] + log_b[None, :] + inner).exp()
    # float64: rounding of exponents of size |f| + |g| + max C over eps; float32: the same at 2^-24
    size = float(f.abs().max() + g.abs().max() + c.max()) / eps
    tol = eps * size * (64 * torch.finfo(dtype).eps)
    assert softmin.rows(g[None].to(dtype), log_b[None].to(dtype), eps)[0].double().sub(rows).abs().max() <= tol
    assert softmin.columns(f[None].to(dtype), log_a[None].to(dtype), eps)[0].double().sub(columns).abs().max() <= tol
    assert any(softmin._direct) == (direct and p == 2)  # p != 2 always takes the logsumexp path
    total, sums = softmin.plan_statistics(f[None].to(dtype), g[None].to(dtype), log_a[None].to(dtype),
                                          log_b[None].to(dtype), eps)
    relative = tol / eps
    assert float((sums - plan.sum(dim=0)).abs().max()) <= relative * float(plan.sum(dim=0).max())
    assert abs(float(total) - float((plan * c).sum())) <= relative * float((plan * c).sum())


def test_tree_clusters_partition():
    """Tree clusters are contiguous ranges of a permutation of the points, of at most ``most`` points
    (except points sharing one code), their boxes hold their points."""
    rng = np.random.default_rng(5)
    points = torch.as_tensor(np.concatenate([rng.random((500, 3)), np.full((40, 3), 0.25)]))
    weights = torch.full((540,), 1.0 / 540, dtype=torch.float64)
    tiles = tree_clusters(points, weights, torch.zeros(3, dtype=torch.float64), 1.0, 16)
    assert sorted(tiles.perm.tolist()) == list(range(540))
    assert torch.equal(tiles.points, points[tiles.perm])
    sizes = tiles.sizes
    assert int(sizes.sum()) == 540 and torch.equal(tiles.starts[1:], tiles.ends[:-1])
    big = (sizes > 16).nonzero()[:, 0]
    assert big.numel() == 1  # the 40 copies
    s, e = int(tiles.starts[big[0]]), int(tiles.ends[big[0]])
    assert e - s >= 40 and bool((tiles.points[s:e] == 0.25).all(dim=1).sum() == 40)
    labels = tiles.labels
    assert bool((tiles.low[labels] <= tiles.points).all() and (tiles.points <= tiles.high[labels]).all())
    mass = torch.zeros(tiles.count, dtype=torch.float64).index_add_(0, labels, tiles.weights)
    assert torch.allclose(tiles.mass, mass)


@pytest.mark.parametrize("chunk", [multiscale.SCAN_ENTRIES, 97])
def test_merge_adds_pairs_in_order(chunk, monkeypatch):
    """The refinement's merge of the kept lists with the missing pairs equals the union of the two sets
    (in one chunk of tiles, and in many)."""
    monkeypatch.setattr(multiscale, "SCAN_ENTRIES", chunk)
    rng = np.random.default_rng(6)
    count, m = 40, 300
    kept = torch.as_tensor(rng.random((count, m)) < 0.2)
    added = torch.as_tensor(rng.random((count, m)) < 0.02) & ~kept
    offsets = torch.zeros(count + 1, dtype=torch.long)
    offsets[1:] = torch.cumsum(kept.sum(dim=1), 0)
    index = kept.nonzero()[:, 1].to(torch.int32)
    merged, out = multiscale._merge(offsets, index, added.nonzero().T, m)
    assert out.dtype == torch.int32
    assert torch.equal(_kept_matrix(merged, out, count, m), kept | added)
    assert all(bool((out[s + 1:e] > out[s:e - 1]).all()) for s, e in zip(merged[:-1].tolist(), merged[1:].tolist()))


def test_a_kept_set_missing_pairs_is_refined(monkeypatch):
    """If a stage's kept set lacks pairs the test requires (here: the last column of every tile dropped), the
    final audit finds them, the kept set grows, and the returned pair is certified: kernel <= exp(-tau) off
    the kept set, and the values of the dense solver."""
    monkeypatch.setattr(multiscale, "TILE_POINTS", 16)
    scan = multiscale._kept

    def lacking(*args):  # each tile's last column, while that column stays kept by another tile
        offsets, index = scan(*args)
        cover = torch.bincount(index.long())
        keep = torch.ones(index.shape[0], dtype=torch.bool)
        for s, e in zip(offsets[:-1].tolist(), offsets[1:].tolist()):
            if e - s > 1 and cover[index[e - 1]] > 1:
                keep[e - 1], cover[index[e - 1]] = False, cover[index[e - 1]] - 1
        counts = (offsets[1:] - offsets[:-1]) - torch.bincount(
            torch.repeat_interleave(torch.arange(offsets.shape[0] - 1), offsets[1:] - offsets[:-1])[~keep],
            minlength=offsets.shape[0] - 1)
        return torch.cat([offsets[:1], torch.cumsum(counts, 0)]), index[keep]

    monkeypatch.setattr(multiscale, "_kept", lacking)
    x, y, a, b = _problem(400, 400, 2, 0)
    eps = 2e-3
    pot, trunc = multiscale.solve(x, y, a, b, eps, p=2, tol=1e-8, max_iter=5000, scaling=0.5)
    assert pot.converged and trunc.refinements >= 1 and 0 < trunc.kept_fraction < 1
    cost = torch.cdist(x, y)[0] ** 2
    exponent = (pot.f[0, :, None] + pot.g[0, None, :] - cost) / eps
    assert float(exponent[~trunc.kept_mask()].max()) <= -trunc.truncation


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_agrees_with_online_solver_at_5000_points(seed):
    """The benchmark's problem (uniform points in the unit cube, d = 3, |x - y|^2, eps = 0.005) at n = 5000:
    the multiscale values equal those of the online solver (every pair, same loop) within the bound of the
    module docstring (errors e1 = e2 = TOL, dropped mass delta, first order in the potentials' range), and
    within the project's 1e-4 relative target."""
    n, eps, tol = 5000, 5e-3, 1e-6
    gen = torch.Generator().manual_seed(seed)
    x, y = (torch.rand(1, n, 3, generator=gen, dtype=torch.float64) for _ in range(2))
    a = torch.full((1, n), 1.0 / n, dtype=torch.float64)
    pot, trunc = multiscale.solve(x, y, a, a, eps, p=2, tol=tol, max_iter=5000, scaling=0.5)
    assert pot.converged and trunc.kept_fraction < 0.5
    centre = x[0].mean(dim=0)
    rows = lambda i0, i1: _clusters.pair_cost(x[0, i0:i1], y[0], 2, centre)[None]  # noqa: E731
    softmin = online.BlockSoftmin(rows, n, n, torch.float64)
    dense = log_sinkhorn.solve(softmin, a, a, eps, scaling=0.5, eps_start=3.0, tol=tol, max_iter=5000)
    assert dense.converged
    f = softmin.rows(dense.g, a.log(), eps)
    entropic = float((a * f).sum() + (a * dense.g).sum())
    transport = float(online.plan_statistics(rows, n, n, a.log(), a.log(), f, dense.g, eps, False)[0])
    mass, dropped_cost = trunc.dropped(pot)
    scale = float(dense.g.max() - dense.g.min() + f.max() - f.min())
    allowed = SAFETY * ((2 * tol + 2 * mass) * scale + eps * mass)
    multi_entropic, multi_transport = float(trunc.entropic_cost(pot, a, a)), float(trunc.transport_cost(pot, a, a))
    assert abs(multi_entropic - entropic) <= min(allowed, 1e-4 * abs(entropic))
    assert abs(multi_transport - transport) <= min(allowed + dropped_cost, 1e-4 * abs(transport))
