"""otdist.pairwise in this process: each entry equals the metric on its pair, each solve runs once, the
checkpoint resumes and refuses other inputs, bad datasets are named before any solve."""

import argparse
import dataclasses
import json
import subprocess
import sys
import threading

import numpy as np
import pytest
from scipy.spatial.distance import cdist

import otdist
from otdist import entropic, registry
from otdist._cli_pairwise import add_parser
from otdist.cli import UsageError
from otdist.pairwise import PairwiseResult, pairwise

SEEDS = (0, 1, 2)
#: Exact metrics (w1, sliced with a fixed seed) computed twice from the same arrays agree to rounding.
EXACT_TOL = 1e-12
#: The divergence's own accuracy: its three terms solved to tol 1e-10 (L1 marginal error) on costs of order 1.
DIVERGENCE_TOL = 1e-10


def clouds(seed, k=4, d=2):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(int(rng.integers(15, 30)), d)) * rng.uniform(0.5, 2.0) + rng.normal(size=d)
            for _ in range(k)]


@pytest.fixture
def counted(monkeypatch):
    """Replace a registered metric by a copy that counts its calls (spec fields overridable)."""

    def install(name, **fields):
        spec = registry.metric(name)
        calls = []
        lock = threading.Lock()

        def function(x, y, **options):
            with lock:
                calls.append((len(x), len(y)))
            return spec.function(x, y, **options)

        monkeypatch.setitem(registry._METRICS, name, dataclasses.replace(spec, function=function, **fields))
        return calls

    return install


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("metric,options", [("w1", {}), ("sliced", {"seed": 3, "n_projections": 20}), ("energy", {}),
                                            ("mmd", {})])
def test_entries_equal_the_metric_on_each_pair(seed, metric, options):
    data = clouds(seed)
    result = pairwise(data, metric=metric, **options)
    assert isinstance(result, PairwiseResult) and result.names == ("0", "1", "2", "3")
    for i, x in enumerate(data):
        for j, y in enumerate(data):
            expected = 0.0 if i == j else otdist.distance(x, y, metric=metric, **options)
            assert result.matrix[i, j] == pytest.approx(expected, abs=EXACT_TOL)
    np.testing.assert_array_equal(np.asarray(result), result.matrix)
    assert result.converged.all()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("p", [1, 2])
def test_sinkhorn_entries_equal_the_divergence_with_one_epsilon(seed, p):
    data = clouds(seed, k=3)
    result = pairwise(data, p=p)
    for i in range(3):
        for j in range(3):
            if i != j:
                expected = otdist.sinkhorn_divergence(data[i], data[j], epsilon=result.epsilon, p=p)
                assert result.matrix[i, j] == pytest.approx(expected, abs=DIVERGENCE_TOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_relative_epsilon_resolved_against_a_bound_of_every_pair_cost_spread(seed):
    data = clouds(seed, k=3)
    relative = 0.05
    result = pairwise(data, epsilon=relative, relative=True, p=2)
    union = np.vstack(data)
    diameter = np.linalg.norm(union.max(axis=0) - union.min(axis=0))
    assert result.epsilon == pytest.approx(relative * diameter**2, rel=1e-12)
    spreads = [np.ptp(cdist(x, y) ** 2) for x in data for y in data]
    assert max(spreads) * relative <= result.epsilon


def test_symmetry_and_zero_diagonal_save_solves(counted):
    k, data = 5, clouds(0, k=5)
    calls = counted("w1")
    full = pairwise(data, metric="w1")
    assert len(calls) == k * (k - 1) // 2 == full.solved
    calls.clear()
    asymmetric = counted("w1", symmetric=False)
    pairwise(data, metric="w1")
    assert len(asymmetric) == k * (k - 1)
    everything = counted("w1", symmetric=False, zero_on_identical=False)
    result = pairwise(data, metric="w1", max_workers=2)
    assert len(everything) == k * k
    np.testing.assert_allclose(result.matrix, full.matrix, rtol=0, atol=EXACT_TOL)


def test_sinkhorn_solves_each_self_term_once(monkeypatch):
    k, data = 4, clouds(1, k=4)
    crosses, selves = [], []
    sinkhorn = entropic.sinkhorn

    def counting_sinkhorn(x, y, *args, **kwargs):
        if len(y) > 1:  # not the one-point check of the options
            (selves if y is x else crosses).append(1)
        return sinkhorn(x, y, *args, **kwargs)

    monkeypatch.setattr(entropic, "sinkhorn", counting_sinkhorn)
    result = pairwise(data, epsilon=0.1)
    assert (len(selves), len(crosses)) == (k, k * (k - 1) // 2)
    assert result.solved == k + k * (k - 1) // 2
    assert result.self_seconds.shape == (k,) and (result.self_seconds > 0).all()


def test_others_gives_the_rectangular_matrix():
    rows, cols = clouds(2, k=3), clouds(3, k=2)
    result = pairwise({"a": rows[0], "b": rows[1], "c": rows[2]}, {"u": cols[0], "v": cols[1]}, metric="w1")
    assert result.matrix.shape == (3, 2) and result.names == ("a", "b", "c") and result.column_names == ("u", "v")
    for i, x in enumerate(rows):
        for j, y in enumerate(cols):
            assert result.matrix[i, j] == pytest.approx(otdist.distance(x, y, metric="w1"), abs=EXACT_TOL)
    sinkhorn = pairwise(rows, cols, epsilon=0.2)
    assert sinkhorn.matrix[2, 1] == pytest.approx(otdist.sinkhorn_divergence(rows[2], cols[1], epsilon=0.2),
                                                   abs=DIVERGENCE_TOL)


def test_npy_paths_are_named_by_their_stems(tmp_path):
    data = clouds(4, k=2)
    for name, x in zip(("left", "right"), data):
        np.save(tmp_path / f"{name}.npy", x)
    result = pairwise([tmp_path / "left.npy", str(tmp_path / "right.npy")], metric="w1")
    assert result.names == ("left", "right")
    assert result.matrix[0, 1] == pytest.approx(otdist.distance(*data, metric="w1"), abs=EXACT_TOL)


def test_checkpoint_resumes_only_the_missing_solves(tmp_path, counted):
    data = clouds(5, k=4)
    calls = counted("w1")
    first = pairwise(data, metric="w1", out=tmp_path)
    assert len(calls) == first.solved == 6
    for name in ("pair-0-1.json", "pair-2-3.json"):
        (tmp_path / "solves" / name).unlink()
    calls.clear()
    second = pairwise(data, metric="w1", out=tmp_path)
    assert len(calls) == second.solved == 2 and second.cached == 4
    np.testing.assert_array_equal(second.matrix, first.matrix)
    calls.clear()
    third = pairwise(data, metric="w1", out=tmp_path, resume=True)
    assert calls == [] and third.cached == 6
    np.testing.assert_array_equal(third.matrix, first.matrix)


def test_an_interrupted_run_continues_where_it_stopped(tmp_path, monkeypatch):
    data = clouds(6, k=4)
    spec = registry.metric("w1")
    calls = []

    def failing_after_three(x, y, **options):
        calls.append(1)
        if len(calls) > 3:
            raise KeyboardInterrupt
        return spec.function(x, y, **options)

    monkeypatch.setitem(registry._METRICS, "w1", dataclasses.replace(spec, function=failing_after_three))
    with pytest.raises(KeyboardInterrupt):
        pairwise(data, metric="w1", out=tmp_path, max_workers=1)
    assert len(list((tmp_path / "solves").glob("*.json"))) == 3
    monkeypatch.setitem(registry._METRICS, "w1", spec)
    resumed = pairwise(data, metric="w1", out=tmp_path)
    assert resumed.solved == 3 and resumed.cached == 3
    np.testing.assert_allclose(resumed.matrix, pairwise(data, metric="w1").matrix, rtol=0, atol=EXACT_TOL)


def test_a_checkpoint_of_other_inputs_is_refused(tmp_path):
    data = clouds(7, k=3)
    pairwise(data, metric="w1", out=tmp_path)
    changed = [data[0], data[1], data[2] + 1.0]
    with pytest.raises(otdist.InputError, match="other inputs .*datasets"):
        pairwise(changed, metric="w1", out=tmp_path)
    with pytest.raises(otdist.InputError, match="other inputs .*metric"):
        pairwise(data, metric="sliced", out=tmp_path)
    with pytest.raises(otdist.InputError, match="resume=False"):
        pairwise(data, metric="w1", out=tmp_path, resume=False)
    forced = pairwise(changed, metric="w1", out=tmp_path, force=True)
    assert forced.solved == 3
    assert forced.matrix[0, 2] == pytest.approx(otdist.distance(data[0], changed[2], metric="w1"), abs=EXACT_TOL)
    with pytest.raises(otdist.InputError, match="holds no pairwise checkpoint"):
        pairwise(data, metric="w1", out=tmp_path / "new", resume=True)


@pytest.mark.parametrize("bad,message", [
    (np.array([[0.0, np.nan]] * 3), r"datasets\['b'\] must be finite"),
    (np.zeros((3, 3)), r"datasets\['b'\] has d = 3"),
    (np.zeros((0, 2)), r"datasets\['b'\] must contain at least one point"),
])
def test_a_bad_dataset_is_named_before_any_solve(bad, message, counted):
    calls = counted("w1")
    with pytest.raises(otdist.InputError, match=message):
        pairwise({"a": np.zeros((3, 2)), "b": bad, "c": np.ones((3, 2))}, metric="w1")
    assert calls == []


def test_bad_others_and_metrics_are_refused():
    data = clouds(8, k=2)
    with pytest.raises(otdist.InputError, match=r"others\[1\] must be finite"):
        pairwise(data, [data[0], np.full((2, 2), np.inf)], metric="w1")
    with pytest.raises(otdist.InputError, match="takes histograms"):
        pairwise(data, metric="kl")
    with pytest.raises(otdist.InputError, match="uniformly weighted"):
        pairwise(data, metric="w1", u_weights=np.ones(3))
    with pytest.raises(otdist.InputError, match="callable ground_metric"):
        pairwise(data, ground_metric=lambda x, y: cdist(x, y))


def test_pairs_above_max_size_go_online_unless_the_tensorized_backend_is_asked_for():
    """The default backend solves a pair whose cost exceeds max_size online; "tensorized" refuses it up front."""
    data = clouds(11, k=2)
    options = dict(metric="sinkhorn", epsilon=0.1, p=2)
    small = pairwise(data, max_size=100, **options)  # at least 15 x 15 = 225 entries per pair
    reference = pairwise(data, **options)
    np.testing.assert_allclose(small.matrix, reference.matrix, rtol=0, atol=1e-9)
    with pytest.raises(otdist.MemoryGuardError, match='leave backend at "auto"'):
        pairwise(data, max_size=100, backend="tensorized", **options)


def test_cli_writes_matrix_csv_figure_and_timings(tmp_path, capsys):
    data = clouds(9, k=3)
    paths = []
    for name, x in zip(("p", "q", "r"), data):
        paths.append(str(tmp_path / f"{name}.npy"))
        np.save(paths[-1], x)
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "run"
    args = parser.parse_args(["pairwise", *paths, "--metric", "w1", "--out", str(out), "--quiet"])
    assert args.func(args) == 0
    matrix = np.load(out / "matrix.npy")
    assert matrix[0, 2] == pytest.approx(otdist.distance(data[0], data[2], metric="w1"), abs=EXACT_TOL)
    lines = (out / "matrix.csv").read_text().splitlines()
    assert lines[0] == ",p,q,r" and lines[2].startswith("q,")
    assert (out / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    timings = json.loads((out / "timings.json").read_text())
    assert timings["solved"] == 3 and timings["names"] == ["p", "q", "r"]
    assert "3 solves run" in capsys.readouterr().out
    with pytest.raises(UsageError, match="--resume"):
        args.func(args)
    resumed = parser.parse_args(["pairwise", *paths, "--metric", "w1", "--out", str(out), "--quiet", "--resume"])
    assert resumed.func(resumed) == 0 and json.loads((out / "timings.json").read_text())["cached"] == 3


def test_a_local_cluster_started_at_a_script_top_level_is_refused(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text("import numpy as np\nfrom otdist.pairwise import pairwise\n"
                      "pairwise([np.zeros((2, 1)), np.ones((2, 1))], metric='w1', client='local', max_workers=1)\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "InputError" in run.stderr and 'if __name__ == "__main__":' in run.stderr
    assert "Nanny" not in run.stderr  # refused before any worker process started


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("metric", ["kl_knn", "js_knn"])
def test_a_pair_sharing_points_is_refused_before_any_solve(seed, metric, counted):
    """Every dataset has the same size, and only the last pair shares a point: a check of one pair per size
    would pass and the k-NN estimator would raise mid-run, after the other pairs were solved."""
    rng = np.random.default_rng(seed)
    data = [rng.normal(size=(30, 2)) for _ in range(4)]
    data[3][7] = data[2][11]
    calls = counted(metric)
    with pytest.raises(otdist.InputError, match="also appear in y"):
        pairwise(data, metric=metric, max_workers=1)
    assert calls == []
    del data[3]  # without the shared point every pair is computed
    assert np.isfinite(pairwise(data, metric=metric, max_workers=1).matrix).all()


def test_shared_point_pairs_against_every_pair_compared():
    """The pairs found from one sort of all the rows, against a set comparison of every pair; -0.0 is 0.0."""
    from otdist.pairwise import shared_point_pairs

    rng = np.random.default_rng(5)
    pool = np.round(rng.normal(size=(12, 2)), 1)
    pool[0] = [-0.0, 0.0]
    data = [pool[rng.choice(12, size=4, replace=False)] for _ in range(6)] + [np.array([[0.0, -0.0]])]
    expected = {(i, j) for i in range(len(data)) for j in range(i + 1, len(data))
                if {tuple(r + 0.0) for r in data[i]} & {tuple(r + 0.0) for r in data[j]}}
    assert expected and shared_point_pairs(data) == expected


def test_a_histogram_metric_is_refused_with_the_registry_error():
    with pytest.raises(otdist.InputError, match=r"pairwise takes point samples.*otdist\.distance\(p, q, metric='kl'\)"):
        pairwise([np.zeros((3, 1)), np.ones((3, 1))], metric="kl")
