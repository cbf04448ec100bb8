"""Permutation two-sample tests and confidence intervals.

Oracles: scipy.stats.permutation_test's exact p-value over every split, the registered metrics themselves
on the same permutations, the binomial law of rejections under the null (exact size for a continuous
statistic when alpha (B + 1) is an integer), closed forms of the energy distance and MMD between Gaussians.
"""

import itertools

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.spatial.distance import cdist

import otdist
from otdist import _cli_stats, kernels
from otdist import two_sample as ts
from otdist._intervals import jackknife_u_statistic
from otdist.cli import UsageError, _Parser
from otdist.exceptions import InputError, InputTypeError

#: Probability that a correct implementation fails one binomial check (two-sided).
FALSE_FAILURE = 1e-4


def binomial_bounds(trials: int, probability: float) -> tuple[int, int]:
    """Counts outside [low, high] have probability <= FALSE_FAILURE under Binomial(trials, probability)."""
    law = stats.binom(trials, probability)
    return int(law.ppf(FALSE_FAILURE / 2)), int(law.isf(FALSE_FAILURE / 2)) + 1


# --------------------------------------------------------------------------- the p-value


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_p_value_against_every_split(seed):
    """n = m = 3: the 20 splits enumerated. Every permuted statistic is one split's energy distance (scipy's),
    the p-value follows the formula exactly, and its count is binomial around scipy's exact p-value."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=3), rng.normal(size=3) + 2.0
    z = np.concatenate([x, y])
    splits = [stats.energy_distance(z[list(c)], z[[i for i in range(6) if i not in c]])
              for c in itertools.combinations(range(6), 3)]
    B = 500
    result = ts.two_sample_test(x, y, metric="energy", n_permutations=B, seed=seed)
    T = stats.energy_distance(x, y)
    assert result.statistic == pytest.approx(T, rel=1e-12)
    nearest = np.min(np.abs(result.null_distribution[:, None] - np.array(splits)[None]), axis=1)
    assert nearest.max() < 1e-12
    count = int(np.sum(result.null_distribution >= T * (1 - 1e-9)))
    assert result.p_value == (1 + count) / (1 + B)
    exact = stats.permutation_test((x, y), lambda a, b: stats.energy_distance(a, b), vectorized=False,
                                   permutation_type="independent", alternative="greater", n_resamples=np.inf).pvalue
    assert exact == pytest.approx(np.mean(np.array(splits) >= T * (1 - 1e-9)))
    low, high = binomial_bounds(B, exact)
    assert low <= count <= high


def test_p_value_formula_and_ties():
    null = np.array([1.0, 2.0, 3.0, 3.0 - 1e-12, 3.0 - 1e-6])
    assert ts.p_value(3.0, null) == 3 / 6  # 3.0 and its rounding-level tie count as >=, 3 - 1e-6 does not
    assert ts.p_value(10.0, null) == 1 / 6
    assert ts.p_value(0.0, null) == 1.0


def test_permutations_are_seeded_without_global_state():
    np.random.seed(0)
    first = np.concatenate(list(ts.permutation_chunks(7, 50, seed=3)))
    np.random.seed(1)
    again = np.concatenate(list(ts.permutation_chunks(7, 50, seed=3)))
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(np.sort(first, axis=1), np.tile(np.arange(7), (50, 1)))
    other = np.concatenate(list(ts.permutation_chunks(7, 50, seed=4)))
    assert not np.array_equal(first, other)


# --------------------------------------------------------------------------- fast paths = the metric itself


FAST_CASES = [
    ("energy", 2, {}, "pooled kernel"),
    ("mmd", 2, {}, "pooled kernel"),
    ("mmd", 3, {"kernel": "laplacian", "bandwidth": 0.7}, "pooled kernel"),
    ("sliced", 3, {}, "projections"),
    ("sliced", 2, {"p": 2, "n_projections": 17}, "projections"),
    ("w1", 1, {}, "projections"),
    ("w2", 1, {}, "projections"),
    ("wasserstein", 1, {"p": 3}, "projections"),
    ("wasserstein", 2, {"p": 1}, "recompute"),
    ("sinkhorn", 2, {"epsilon": 0.5}, "fixed-epsilon sinkhorn"),
    ("sinkhorn", 2, {"epsilon": 0.5, "reach": 2.0}, "fixed-epsilon sinkhorn"),
    ("js_knn", 2, {}, "recompute"),
]


@pytest.mark.parametrize("metric, d, options, engine", FAST_CASES)
@pytest.mark.parametrize("sizes", [(12, 12), (9, 14)])
def test_every_path_computes_the_registered_metric(metric, d, options, engine, sizes):
    n, m = sizes
    rng = np.random.default_rng(n + 10 * d)
    x, y = rng.normal(size=(n, d)), rng.normal(size=(m, d)) + 0.5
    B = 6
    result = ts.two_sample_test(x, y, metric=metric, n_permutations=B, seed=5, **options)
    assert result.engine == engine and result.metric == metric and result.n_permutations == B
    z = np.concatenate([x, y])
    rows = next(ts.permutation_chunks(n + m, B, seed=5))
    expected = [otdist.distance(z[r[:n]], z[r[n:]], metric=metric, **options) for r in rows]
    # Sinkhorn: the divergence is solved to its marginal tolerance 1e-10, so values agree to about that.
    tol = 1e-8 if metric == "sinkhorn" else 1e-12
    np.testing.assert_allclose(result.null_distribution, expected, rtol=tol, atol=tol)
    assert result.statistic == pytest.approx(otdist.distance(x, y, metric=metric, **options), rel=tol, abs=tol)


def test_sinkhorn_relative_epsilon_is_taken_of_the_pooled_spread():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(10, 2)), rng.normal(size=(15, 2)) + 1.0
    z = np.concatenate([x, y])
    epsilon = 0.2 * cdist(z, z).max()
    result = ts.two_sample_test(x, y, metric="sinkhorn", n_permutations=3, seed=0, epsilon=0.2, relative=True)
    direct = otdist.sinkhorn_divergence(x, y, epsilon=epsilon)
    assert result.statistic == pytest.approx(direct, abs=1e-8)


def test_torch_input_gives_the_numpy_result():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(15, 2)), rng.normal(size=(15, 2))
    expected = ts.two_sample_test(x, y, metric="mmd", n_permutations=50, seed=1)
    got = ts.two_sample_test(torch.tensor(x), torch.tensor(y, dtype=torch.float32), metric="mmd", n_permutations=50,
                             seed=1)
    assert isinstance(got.statistic, float) and isinstance(got.p_value, float)
    assert got.p_value == expected.p_value
    assert got.statistic == pytest.approx(expected.statistic, rel=1e-6)  # y went through float32


def test_default_permutations_depend_on_refitting():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 1)), rng.normal(size=(12, 1))
    assert ts.two_sample_test(x, y, seed=0).n_permutations == ts.DEFAULT_PERMUTATIONS == 1000
    refit = ts.two_sample_test(x, y, metric="js_knn", seed=0)
    assert refit.n_permutations == ts.REFIT_PERMUTATIONS == 100 and refit.null_distribution.shape == (100,)


# --------------------------------------------------------------------------- calibration and power


def _rejections(metric, replications, n, d, B, seed, **options):
    rng = np.random.default_rng(seed)
    p_values = np.array([ts.two_sample_test(rng.normal(size=(n, d)), rng.normal(size=(n, d)), metric=metric,
                                            n_permutations=B, seed=int(rng.integers(2**31)), **options).p_value
                         for _ in range(replications)])
    return p_values


@pytest.mark.parametrize("metric, d, options", [("energy", 2, {}), ("mmd", 2, {}),
                                                ("sliced", 2, {"n_projections": 20}), ("w1", 1, {})])
def test_calibrated_under_the_null(metric, d, options):
    """200 replications of n = 20 from one distribution, B = 99: P(p <= alpha) = alpha exactly for alpha =
    0.05 and 0.1 (alpha (B + 1) is an integer and the statistics are continuous), so the rejection count is
    Binomial(200, alpha); a count outside its 1e-4 two-sided bounds fails."""
    p_values = _rejections(metric, 200, 20, d, 99, seed=11, **options)
    for alpha in (0.05, 0.1):
        low, high = binomial_bounds(200, alpha)
        assert low <= np.sum(p_values <= alpha) <= high, (alpha, np.sum(p_values <= alpha))


@pytest.mark.parametrize("metric, options", [
    pytest.param("sinkhorn", {"epsilon": 0.2, "relative": True}, marks=pytest.mark.slow), ("js_knn", {})])
def test_calibrated_under_the_null_recomputed_metrics(metric, options):
    """Fewer replications (60 of n = 12, B = 19) for the metrics recomputed or refitted per permutation."""
    p_values = _rejections(metric, 60, 12, 2, 19, seed=12, **options)
    low, high = binomial_bounds(60, 0.1)
    assert low <= np.sum(p_values <= 0.1) <= high


@pytest.mark.parametrize("metric, options, B", [("energy", {}, 199), ("mmd", {}, 199), ("sliced", {}, 199),
                                                ("sinkhorn", {"epsilon": 0.2, "relative": True}, 9),
                                                ("js_knn", {}, 19)])
def test_a_clear_shift_gets_the_smallest_p_value(metric, options, B):
    """Means 3 apart in 2-D with 40 points per side: no relabelling comes near the observed statistic."""
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(40, 2)), rng.normal(size=(40, 2)) + np.array([3.0, 0.0])
    result = ts.two_sample_test(x, y, metric=metric, n_permutations=B, seed=0, **options)
    assert result.p_value == 1 / (B + 1)
    assert result.statistic > result.null_distribution.max()


# --------------------------------------------------------------------------- confidence intervals


def test_jackknife_u_statistic_against_kernels_and_a_loop():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 2)), rng.normal(size=(9, 2)) + 0.4
    blocks = [kernels.kernel_matrix(a, b, "gaussian", 1.3) for a, b in ((x, x), (y, y), (x, y))]
    u, se = jackknife_u_statistic(*blocks)
    assert u == pytest.approx(kernels.mmd(x, y, "gaussian", 1.3, squared=True, unbiased=True), rel=1e-12)
    drop_x = [kernels.mmd(np.delete(x, i, 0), y, "gaussian", 1.3, squared=True, unbiased=True) for i in range(7)]
    drop_y = [kernels.mmd(x, np.delete(y, j, 0), "gaussian", 1.3, squared=True, unbiased=True) for j in range(9)]
    variance = 6 / 7 * np.sum((drop_x - np.mean(drop_x)) ** 2) + 8 / 9 * np.sum((drop_y - np.mean(drop_y)) ** 2)
    assert se == pytest.approx(np.sqrt(variance), rel=1e-10)


def energy_squared_gaussians(shift: float) -> float:
    """2E|X - Y| - E|X - X'| - E|Y - Y'| for N(0, 1) and N(shift, 1): folded normals of variance 2."""
    scale = np.sqrt(2.0)
    return 2 * stats.foldnorm(abs(shift) / scale, scale=scale).mean() - 2 * stats.foldnorm(0.0, scale=scale).mean()


def mmd_squared_gaussians(shift: np.ndarray, h: float) -> float:
    """MMD² of exp(-|x - y|²/(2h²)) between N(0, I_d) and N(shift, I_d): E k(X, Y) = (h²/(h²+2))^(d/2)
    exp(-|shift|²/(2(h²+2)))."""
    d = shift.size
    scale = (h * h / (h * h + 2)) ** (d / 2)
    return 2 * scale * (1 - np.exp(-shift @ shift / (2 * (h * h + 2))))


def test_gaussian_closed_forms_against_quadrature():
    from scipy.integrate import quad

    density = stats.norm(-1.0, np.sqrt(2.0)).pdf  # of X - Y
    e_xy = quad(lambda t: abs(t) * density(t), -np.inf, np.inf)[0]
    e_xx = quad(lambda t: abs(t) * stats.norm(0, np.sqrt(2.0)).pdf(t), -np.inf, np.inf)[0]
    assert energy_squared_gaussians(1.0) == pytest.approx(2 * e_xy - 2 * e_xx, rel=1e-8)
    kernel = quad(lambda t: np.exp(-t * t / 2) * density(t), -np.inf, np.inf)[0]
    same = quad(lambda t: np.exp(-t * t / 2) * stats.norm(0, np.sqrt(2.0)).pdf(t), -np.inf, np.inf)[0]
    assert mmd_squared_gaussians(np.array([1.0]), 1.0) == pytest.approx(2 * same - 2 * kernel, rel=1e-8)


def _coverage(truth, draw, replications, **interval_options):
    covered = 0
    rng = np.random.default_rng(21)
    for _ in range(replications):
        x, y = draw(rng)
        ci = ts.confidence_interval(x, y, seed=int(rng.integers(2**31)), **interval_options)
        assert ci.lower <= ci.value <= ci.upper
        covered += ci.lower <= truth <= ci.upper
    return covered


@pytest.mark.parametrize("metric, truth, options", [
    ("energy", np.sqrt(energy_squared_gaussians(1.0)), {}),
    ("mmd", np.sqrt(mmd_squared_gaussians(np.array([1.0, 0.0]), 1.0)), {"bandwidth": 1.0}),
])
def test_jackknife_interval_coverage(metric, truth, options):
    """200 replications, 80 points per side, level 0.9: the cover count is binomial around 180 (up to the
    normal approximation of the U-statistic, whose jackknife variance errs on the large side)."""
    d = 1 if metric == "energy" else 2
    shift = np.eye(d)[0]

    def draw(rng):
        return rng.normal(size=(80, d)), rng.normal(size=(80, d)) + shift

    covered = _coverage(truth, draw, 200, metric=metric, level=0.9, **options)
    low, high = binomial_bounds(200, 0.9)
    assert low <= covered <= high


def test_subsampling_interval_coverage_for_w1():
    """W1 between N(0, 1) and N(1, 1) is 1 (a translation). 200 replications of 1000 points per side, level
    0.9: the cover count is binomial around 180 up to subsampling's coverage error, which shrinks with b =
    n^(2/3) (about 0.87 at n = 300 and 0.885 at n = 1000 over 400 replications, inside these bounds)."""
    def draw(rng):
        return rng.normal(size=1000), rng.normal(size=1000) + 1.0

    covered = _coverage(1.0, draw, 200, metric="w1", level=0.9, n_resamples=200)
    low, high = binomial_bounds(200, 0.9)
    assert low <= covered <= high


def test_interval_fields_and_methods():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(60, 2)), rng.normal(size=(50, 2)) + 1.0
    ci = ts.confidence_interval(x, y, metric="sliced", level=0.8, seed=0, n_resamples=50)
    assert ci.method == "subsampling" and ci.level == 0.8 and ci.metric == "sliced"
    assert ci.value == pytest.approx(otdist.distance(x, y, metric="sliced"), rel=1e-12)
    assert ci.lower < ci.value < ci.upper and ci.standard_error > 0
    wide = ts.confidence_interval(x, y, metric="sliced", level=0.99, seed=0, n_resamples=200)
    assert wide.lower <= ci.lower and wide.upper >= ci.upper
    jack = ts.confidence_interval(x, y, metric="energy")
    assert jack.method == "jackknife"
    assert jack.value ** 2 == pytest.approx(kernels.mmd(x, y, "energy", squared=True, unbiased=True), rel=1e-10)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("call, error, match", [
    (lambda x, y: ts.two_sample_test(x, y, metric="nope"), InputError, "metric must be one of"),
    (lambda x, y: ts.two_sample_test(x, y, metric="kl"), InputError, "takes histograms.*Pick a sample metric"),
    (lambda x, y: ts.two_sample_test(x, y, n_permutations=0), InputError, "n_permutations must be an integer > 0"),
    (lambda x, y: ts.two_sample_test(x, y, n_permutations=2.5), InputTypeError, "n_permutations must be an integer"),
    (lambda x, y: ts.two_sample_test(x, y, seed=-1), InputError, "seed must be a non-negative integer"),
    (lambda x, y: ts.two_sample_test(x, y, u_weights=np.ones(8)), InputError, "unweighted samples.*Drop the weights"),
    (lambda x, y: ts.two_sample_test(x, y, metric="sinkhorn", a=np.ones(8)), InputError, "unweighted samples"),
    (lambda x, y: ts.two_sample_test(x, y[:, :1]), InputError, "same number of columns"),
    (lambda x, y: ts.two_sample_test(x[:3], y[:3], metric="kl_knn", k=5), InputError, "needs more than k=5 samples"),
    (lambda x, y: ts.two_sample_test(x, y, metric="mmd", bandwidth=-1.0), InputError, "bandwidth"),
    (lambda x, y: ts.confidence_interval(x, y, level=95), InputError, "level must be in \\(0, 1\\).*not 95"),
    (lambda x, y: ts.confidence_interval(x, y, level="0.9"), InputTypeError, "level must be a number"),
    (lambda x, y: ts.confidence_interval(x, y, metric="w1", method="jackknife"), InputError, "needs a U-statistic"),
    (lambda x, y: ts.confidence_interval(x, y, method="bootstrap"), InputError, "method must be one of"),
    (lambda x, y: ts.confidence_interval(x[:2], y[:2]), InputError, "at least 3 points per sample"),
    (lambda x, y: ts.confidence_interval(x[:2], y, metric="w1"), InputError, "subsampling needs more than 2"),
])
def test_errors_say_what_and_how(call, error, match):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 2)), rng.normal(size=(8, 2))
    with pytest.raises(error, match=match):
        call(x, y)


# --------------------------------------------------------------------------- command line


def _parser():
    parser = _Parser(prog="otdist")
    _cli_stats.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_handler_prints_statistic_and_p_value(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 2)), rng.normal(size=(40, 2)) + 3.0
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    args = _parser().parse_args(["test", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--metric", "mmd",
                                 "--permutations", "99", "--seed", "3"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    expected = ts.two_sample_test(x, y, metric="mmd", n_permutations=99, seed=3)
    assert f"statistic: {expected.statistic:.6g}" in out and "p-value:   0.01 " in out and "99 permutations" in out


def test_cli_user_errors(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((5, 2)))
    with pytest.raises(UsageError, match="positive integer"):
        _parser().parse_args(["test", "x.npy", "y.npy", "--permutations", "0"])
    args = _parser().parse_args(["test", str(tmp_path / "x.npy"), str(tmp_path / "x.npy"), "--metric", "kl"])
    with pytest.raises(InputError, match="takes histograms"):
        args.func(args)
    args = _parser().parse_args(["test", str(tmp_path / "x.npy"), str(tmp_path / "missing.npy")])
    with pytest.raises(InputError, match="no such file"):
        args.func(args)


def test_cli_main(tmp_path, capsys):
    from otdist.cli import main

    np.save(tmp_path / "x.npy", np.arange(10.0))
    assert main(["test", str(tmp_path / "x.npy"), str(tmp_path / "x.npy"), "--permutations", "9"]) == 0
    assert "p-value:   1 " in capsys.readouterr().out
    assert main(["test", str(tmp_path / "x.npy"), str(tmp_path / "x.npy"), "--metric", "kl"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "takes histograms" in err


def test_too_few_subsamples_for_the_level_are_refused():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(40, 1)), rng.normal(size=(40, 1))
    with pytest.raises(otdist.InputError, match="at least 20 subsamples"):
        ts.confidence_interval(x, y, metric="w1", level=0.9, n_resamples=1)


# --------------------------------------------------------------------------- no metric computed only to check options


@pytest.fixture
def full_size_calls(monkeypatch):
    """Install a copy of a registered metric that records the sizes of every call."""
    import dataclasses

    from otdist import registry

    def install(name):
        spec, calls = registry.metric(name), []

        def function(x, y, **options):
            calls.append((len(x), len(y)))
            return spec.function(x, y, **options)

        monkeypatch.setitem(registry._METRICS, name, dataclasses.replace(spec, function=function))
        return calls

    return install


@pytest.mark.parametrize("metric,options", [("energy", {}), ("mmd", {"kernel": "laplacian"})])
def test_jackknife_computes_no_metric_value(full_size_calls, metric, options):
    """The jackknife reads the kernel sums only; its options are checked by the metric's preflight."""
    rng = np.random.default_rng(3)
    calls = full_size_calls(metric)
    ci = ts.confidence_interval(rng.normal(size=(30, 2)), rng.normal(size=(25, 2)), metric=metric, **options)
    assert calls == [] and ci.method == "jackknife"
    with pytest.raises(InputError, match="bandwidth"):
        ts.confidence_interval(rng.normal(size=(30, 2)), rng.normal(size=(25, 2)), metric=metric, bandwidth=1.0,
                               **({"kernel": "energy"} if metric == "mmd" else {}))
    assert calls == []


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("metric,d", [("w1", 2), ("w1", 1), ("sliced", 2)])
def test_subsampling_computes_the_metric_on_the_whole_samples_once(full_size_calls, seed, metric, d):
    """The estimate is the metric's value on the samples, computed once (it also checks the options)."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(30, d)), rng.normal(size=(24, d)) + 0.5
    expected = otdist.distance(x, y, metric=metric)
    calls = full_size_calls(metric)
    ci = ts.confidence_interval(x, y, metric=metric, level=0.9, n_resamples=20, seed=seed)
    assert calls.count((30, 24)) == 1 and ci.value == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------- the jackknife by blocks


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("metric,options", [("energy", {}), ("mmd", {}), ("mmd", {"kernel": "polynomial"}),
                                            ("mmd", {"kernel": "laplacian", "bandwidth": 0.7})])
def test_jackknife_by_blocks_equals_the_whole_kernel_matrices(monkeypatch, seed, metric, options):
    """Blocks of 7 kernel entries (a few rows, or one row at a time) against the whole matrices."""
    from otdist import _kernels_blocks
    from otdist._intervals import _kernel_options

    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(23, 3)), rng.normal(size=(17, 3)) + 0.3
    z = np.concatenate([x, y])
    kernel, h = _kernel_options(metric, options, z)
    u, se = jackknife_u_statistic(*(kernels.kernel_matrix(a, b, kernel, h) for a, b in ((x, x), (y, y), (x, y))))
    whole = ts.confidence_interval(x, y, metric=metric, **options)
    monkeypatch.setattr(_kernels_blocks, "BLOCK_ENTRIES", 7)
    blocked = ts.confidence_interval(x, y, metric=metric, **options)
    for ci in (whole, blocked):
        assert ci.value == pytest.approx(np.sqrt(max(u, 0.0)), rel=1e-12, abs=1e-15)
        half = stats.norm.ppf(0.975) * se
        assert ci.upper == pytest.approx(np.sqrt(u + half), rel=1e-12)
        assert ci.lower == pytest.approx(np.sqrt(max(u - half, 0.0)), rel=1e-12, abs=1e-15)


def energy_u_statistic_1d(x, y):
    """The U-statistic of the squared energy distance on the line from scipy's V-statistic and sorted sums:
    sum_{i<j} |x_(i) - x_(j)| = sum_k (2k - n + 1) x_(k)."""
    def within(a):
        a = np.sort(a)
        return 2 * np.sum((2 * np.arange(a.size) - a.size + 1) * a)  # ordered pairs i != j

    n, m = x.size, y.size
    s_xx, s_yy = within(x), within(y)
    s_xy = (stats.energy_distance(x, y) ** 2 + s_xx / n**2 + s_yy / m**2) * n * m / 2
    return 2 * s_xy / (n * m) - s_xx / (n * (n - 1)) - s_yy / (m * (m - 1))


def test_jackknife_above_the_memory_guard_of_a_kernel_matrix():
    """5001 points per side: a 5001 x 5001 kernel matrix exceeds DEFAULT_MAX_SIZE (25 million entries), the
    blocks never do. The value is the U-statistic computed from scipy's energy distance."""
    from otdist.cost import DEFAULT_MAX_SIZE

    n = 5001
    assert n * n > DEFAULT_MAX_SIZE
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=n), rng.normal(0.1, 1.0, size=n)
    ci = ts.confidence_interval(x, y, metric="energy")
    assert ci.value == pytest.approx(np.sqrt(energy_u_statistic_1d(x, y)), rel=1e-9)
    assert 0 < ci.lower < ci.value < ci.upper


@pytest.mark.slow
def test_jackknife_of_20000_points_per_side():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=20_000), rng.normal(0.05, 1.0, size=20_000)
    ci = ts.confidence_interval(x, y, metric="energy")
    assert ci.value == pytest.approx(np.sqrt(energy_u_statistic_1d(x, y)), rel=1e-9)
    assert ts.confidence_interval(x[:, None], y[:, None], metric="mmd").lower >= 0.0


# --------------------------------------------------------------------------- the absolute epsilon of each Sinkhorn


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("p", [1, 2])
def test_absolute_epsilon_is_the_one_the_divergence_uses(seed, p):
    """1% of max C - min C of the x-y cost (scipy's cdist); passing it back reproduces the default value."""
    from otdist.entropic import absolute_epsilon

    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(20, 2)), rng.normal(size=(15, 2)) + 1.0
    cost = cdist(x, y) ** p
    epsilon = absolute_epsilon(x, y, p=p)
    assert epsilon == pytest.approx(0.01 * (cost.max() - cost.min()), rel=1e-12)
    assert absolute_epsilon(x, y, epsilon=0.1, relative=True, p=p) == pytest.approx(0.1 * np.ptp(cost), rel=1e-12)
    assert absolute_epsilon(x, y, epsilon=0.3, p=p) == 0.3
    assert absolute_epsilon(x, y, ground_metric="cityblock") == pytest.approx(0.01 * np.ptp(cdist(x, y, "cityblock")),
                                                                            rel=1e-12)
    default = otdist.distance(x, y, metric="sinkhorn", p=p)
    assert otdist.distance(x, y, metric="sinkhorn", p=p, epsilon=epsilon) == pytest.approx(default, rel=1e-12)
    with pytest.raises(InputError, match="epsilon must be a real number > 0"):
        absolute_epsilon(x, y, epsilon=-1.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_test_and_interval_report_the_epsilon_that_reproduces_their_value(seed):
    """The pooled sample's spread (cdist of z with itself) sets the epsilon; distance() at that absolute
    epsilon gives the statistic and the interval's value. Other metrics report None."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(12, 2)), rng.normal(size=(10, 2)) + 0.7
    z = np.concatenate([x, y])
    pooled = 0.01 * np.ptp(cdist(z, z))
    result = ts.two_sample_test(x, y, metric="sinkhorn", n_permutations=3, seed=seed)
    ci = ts.confidence_interval(x, y, metric="sinkhorn", level=0.8, n_resamples=10, seed=seed)
    for reported, value in ((result.epsilon, result.statistic), (ci.epsilon, ci.value)):
        assert reported == pytest.approx(pooled, rel=1e-12)
        assert otdist.distance(x, y, metric="sinkhorn", epsilon=reported) == pytest.approx(value, rel=1e-9, abs=1e-12)
    assert ts.two_sample_test(x, y, n_permutations=3).epsilon is None
    assert ts.confidence_interval(x, y).epsilon is None
