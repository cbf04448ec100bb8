"""One registry: every method and metric is registered the same way, and every entry point reads it."""

import ast
import re
from pathlib import Path

import numpy as np
import pytest

import otdist
from otdist import registry
from otdist.cli import main

ROOT = Path(__file__).resolve().parents[1]
#: Options that keep the expensive sample metrics fast in these checks.
FAST = {"neural": {"epochs": 5, "seed": 0}, "js_classifier": {"seed": 0}, "sliced": {"seed": 1}}


def _samples(seed=0, n=60, d=2):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(0.7, 1.0, size=(n + 7, d))


def test_api_imports_no_solver_module():
    tree = ast.parse((ROOT / "otdist" / "api.py").read_text())
    imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not [name for name in imported if "solvers" in name or "methods" in name or "entropic" in name]


def test_names_are_unique_and_specs_valid():
    names = [spec.name for spec in otdist.metrics()]
    assert len(names) == len(set(names)) and names == list(registry.metric_names())
    for spec in otdist.metrics():
        assert set(spec.inputs) <= set(registry.INPUT_KINDS) and spec.kind in registry.VALUE_KINDS
        assert spec.permutation in registry.PERMUTATION_KINDS and spec.description and spec.memory
    methods = [spec.name for spec in registry.methods()]
    assert {"1d", "exact", "primal", "dual", "sliced", "neural", "sinkhorn"} <= set(methods)


def test_unknown_names_are_refused_with_the_list():
    with pytest.raises(otdist.InputError, match="metric must be one of .*'w1'"):
        otdist.distance([0.0], [1.0], metric="wasserstien")
    with pytest.raises(otdist.InputError, match="method must be one of .*'exact'"):
        otdist.wasserstein([0.0], [1.0], method="exactt")
    with pytest.raises(otdist.InputError, match="kl_knn"):
        otdist.compare([0.0, 1.0], [1.0, 2.0], metrics=("kl",))


@pytest.mark.parametrize("name", [s.name for s in otdist.metrics() if "samples" in s.inputs and s.name != "neural"])
def test_distance_and_compare_give_the_registered_value(name):
    x, y = _samples()
    options = FAST.get(name, {})
    direct = registry.metric(name).function(x, y, **options)
    assert otdist.distance(x, y, metric=name, **options) == direct
    assert otdist.compare(x, y, metrics=(name,), options={name: options} if options else None)[name] == float(direct)


def test_registered_values_match_the_functions_they_name():
    x, y = _samples(1)
    assert otdist.distance(x, y, metric="w1") == otdist.wasserstein(x, y)
    assert otdist.distance(x, y, metric="w2") == otdist.wasserstein(x, y, p=2)
    assert otdist.distance(x, y, metric="sinkhorn") == otdist.sinkhorn_divergence(x, y)
    assert otdist.distance(x, y, metric="kl_knn") == otdist.kl(x, y, method="knn")
    p, q = np.array([0.2, 0.3, 0.5]), np.array([0.5, 0.25, 0.25])
    assert otdist.distance(p, q, metric="kl") == otdist.kl(p, q)
    assert otdist.distance(p, q, metric="js_distance") == otdist.js_distance(p, q)


@pytest.mark.parametrize("name", ["wasserstein", "w1", "sinkhorn"])
def test_transport_metrics_take_the_ground_metric_as_ground_metric(name):
    x, y = _samples(2)
    city = otdist.distance(x, y, metric=name, ground_metric="cityblock")
    assert city != otdist.distance(x, y, metric=name)
    reference = (otdist.sinkhorn_divergence(x, y, metric="cityblock") if name == "sinkhorn"
                 else otdist.wasserstein(x, y, metric="cityblock"))
    assert city == reference
    with pytest.raises(otdist.InputError, match="ground_metric="):
        registry.metric(name).function(x, y, metric="cityblock")


def test_fixed_options_are_refused():
    x, y = _samples(3)
    with pytest.raises(otdist.InputError, match="sets p itself"):
        otdist.distance(x, y, metric="w1", p=2)


def test_symmetry_flags_hold_on_samples():
    x, y = _samples(4)
    for spec in otdist.metrics():
        if "samples" not in spec.inputs or spec.permutation == "refit" or spec.name == "wasserstein":
            continue
        options = FAST.get(spec.name, {})
        forward, backward = spec.function(x, y, **options), spec.function(y, x, **options)
        if spec.symmetric:
            assert float(forward) == pytest.approx(float(backward), rel=1e-9, abs=1e-12), spec.name
        if spec.zero_on_identical:
            assert abs(float(spec.function(x, x, **options))) <= 1e-6 * max(1.0, float(forward)), spec.name


def test_cli_lists_every_metric(capsys):
    assert main(["metrics"]) == 0
    out = capsys.readouterr().out
    for spec in otdist.metrics():
        assert re.search(rf"^{re.escape(spec.name)}\s", out, re.M), spec.name


def test_the_published_table_names_every_metric():
    page = (ROOT / "docs" / "metrics.md").read_text()
    rows = set(re.findall(r"^\| `([a-z0-9_]+)` \|", page, re.M))
    assert rows == set(registry.metric_names())


def test_sample_metric_is_the_one_check_of_compare_pairwise_and_the_two_sample_test():
    """One registry function refuses a metric that does not take samples, with the same remedy everywhere."""
    import numpy as np

    import otdist
    from otdist import registry
    from otdist.pairwise import pairwise
    from otdist.two_sample import confidence_interval, two_sample_test

    assert registry.sample_metric_names() == tuple(s.name for s in registry.metrics() if "samples" in s.inputs)
    assert registry.sample_metric("energy", "x") is registry.metric("energy")
    x, y = np.zeros((4, 1)), np.ones((4, 1))
    remedy = r"takes point samples.*Pick a sample metric.*otdist\.distance\(p, q, metric='js'\) on histograms"
    for call in (lambda: otdist.compare(x, y, metrics=("js",)), lambda: pairwise([x, y], metric="js"),
                 lambda: two_sample_test(x, y, metric="js"), lambda: confidence_interval(x, y, metric="js")):
        with pytest.raises(otdist.InputError, match=remedy):
            call()
