import numpy as np
import pytest
import torch

import otdist


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(0)
    return rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + [1.5, 0.0]


def test_values_equal_the_individual_functions(samples):
    x, y = samples
    table = otdist.compare(x, y, metrics=("w1", "w2", "sliced", "sinkhorn", "kl_knn", "js_knn", "js_classifier"),
                           options={"sliced": {"seed": 3}, "kl_knn": {"k": 7}})
    assert list(table.to_dict()) == ["w1", "w2", "sliced", "sinkhorn", "kl_knn", "js_knn", "js_classifier"]
    assert table["w1"] == otdist.wasserstein(x, y, method="exact")
    assert table["w2"] == otdist.wasserstein(x, y, p=2)
    assert table["sliced"] == otdist.wasserstein(x, y, method="sliced", seed=3)
    assert table["sinkhorn"] == pytest.approx(otdist.sinkhorn_divergence(x, y), rel=1e-12)
    assert table["kl_knn"] == otdist.kl(x, y, method="knn", k=7)
    assert table["js_knn"] == otdist.js(x, y, method="knn")
    assert table["js_classifier"] == otdist.js(x, y, method="classifier")
    assert table.n_x == 300 and table.dim == 2


def test_repr_and_pandas(samples):
    table = otdist.compare(*samples, metrics="w1")
    text = repr(table)
    assert "w1" in text and f"{table['w1']:.6g}" in text and "(300, 2)" in text
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install pandas"):
            table.to_pandas()
    else:
        frame = table.to_pandas()
        assert list(frame["metric"]) == ["w1"] and frame["value"][0] == table["w1"]


def test_errors(samples):
    x, y = samples
    with pytest.raises(ValueError, match="metric must be one of"):
        otdist.compare(x, y, metrics=("w1", "tv"))
    with pytest.raises(ValueError, match="options given for metrics not being computed: kl_knn"):
        otdist.compare(x, y, metrics=("w1",), options={"kl_knn": {"k": 3}})
    with pytest.raises(KeyError, match="'js_knn' is not in this comparison"):
        otdist.compare(x, y, metrics=("w1",))["js_knn"]
    with pytest.raises(ValueError, match="same dimension|dimension"):
        otdist.compare(x, y[:, :1])


def test_every_default_metric_takes_samples_of_different_sizes(samples):
    x, y = samples
    table = otdist.compare(x[:200], y)
    assert list(table.to_dict()) == list(otdist.comparison.DEFAULT_METRICS)
    assert table.n_x == 200 and table.n_y == 300
    assert table["w1"] == otdist.wasserstein(x[:200], y, method="exact")
    assert table["kl_knn"] == otdist.kl(x[:200], y, method="knn")
    assert table["js_knn"] == otdist.js(x[:200], y, method="knn")
    assert table["sinkhorn"] == pytest.approx(otdist.sinkhorn_divergence(x[:200], y), rel=1e-12)


class _Spy:
    def __init__(self, monkeypatch):
        self.calls = []
        original = otdist.api.wasserstein

        def spy(*args, **kwargs):
            self.calls.append(kwargs)
            return original(*args, **kwargs)

        monkeypatch.setattr(otdist.api, "wasserstein", spy)


@pytest.mark.parametrize("metrics, options, error, match", [
    ((), None, otdist.InputError, "at least one metric"),
    (("w1", "w1"), None, otdist.InputError, "distinct"),
    (("w1", "kl_knn"), {"kl_knn": {"k": "five"}}, otdist.InputTypeError, "k must be an integer"),
    (("w1", "js_knn"), {"js_knn": {"k": 400}}, otdist.InputError, "more than k=400"),
    (("w1", "js_classifier"), {"js_classifier": {"model": "svm"}}, otdist.InputError, "model must be one of"),
    (("w1", "neural"), {"neural": {"critic": "lipschitz"}}, otdist.InputError, "critic must be one of"),
    (("w1", "neural"), {"neural": {"n_folds": 200}}, otdist.InputError, "cross-fitting"),
    (("w1", "sinkhorn"), {"sinkhorn": {"epsilonn": 0.1}}, otdist.InputTypeError, "sinkhorn_divergence"),
    (("w1", "w2"), {"w2": {"p": 3}}, otdist.InputError, "sets p itself"),
    (("w1", "kl_knn"), {"kl_knn": 5}, otdist.InputTypeError, "must be a dict"),
])
def test_everything_is_checked_before_any_metric_is_computed(samples, monkeypatch, metrics, options, error, match):
    spy = _Spy(monkeypatch)
    with pytest.raises(error, match=match):
        otdist.compare(*samples, metrics=metrics, options=options)
    assert spy.calls == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_without_cuda_is_refused_up_front(samples, monkeypatch):
    spy = _Spy(monkeypatch)
    with pytest.raises(otdist.InputError, match="needs CUDA"):
        otdist.compare(*samples, metrics=("w1", "neural"), options={"neural": {"device": "cuda"}})
    assert spy.calls == []


def test_points_shared_by_the_samples_are_refused_up_front(samples, monkeypatch):
    x, _ = samples
    spy = _Spy(monkeypatch)
    with pytest.raises(otdist.InputError, match="also appear in y"):
        otdist.compare(x, x.copy())
    assert spy.calls == []
