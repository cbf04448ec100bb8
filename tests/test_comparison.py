import numpy as np
import pytest

import otdist


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(0)
    return rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + [1.5, 0.0]


def test_values_equal_the_individual_functions(samples):
    x, y = samples
    table = otdist.compare(x, y, metrics=("w1", "w2", "sliced", "sinkhorn", "kl", "js", "js_classifier"),
                           options={"sliced": {"seed": 3}, "kl": {"k": 7}})
    assert list(table.to_dict()) == ["w1", "w2", "sliced", "sinkhorn", "kl", "js", "js_classifier"]
    assert table["w1"] == otdist.wasserstein(x, y, method="exact")
    assert table["w2"] == otdist.wasserstein(x, y, p=2)
    assert table["sliced"] == otdist.wasserstein(x, y, method="sliced", seed=3)
    assert table["sinkhorn"] == pytest.approx(otdist.sinkhorn_divergence(x, y), rel=1e-12)
    assert table["kl"] == otdist.kl(x, y, method="knn", k=7)
    assert table["js"] == otdist.js(x, y, method="knn")
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
    with pytest.raises(ValueError, match="options given for metrics not being computed: kl"):
        otdist.compare(x, y, metrics=("w1",), options={"kl": {"k": 3}})
    with pytest.raises(KeyError, match="'js' is not in this comparison"):
        otdist.compare(x, y, metrics=("w1",))["js"]
    with pytest.raises(ValueError, match="same dimension|dimension"):
        otdist.compare(x, y[:, :1])
