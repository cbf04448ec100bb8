"""The power experiment: its planted differences (moments against their closed forms), its table, figure and JSON."""

import json

import numpy as np
import pytest

from otdist import experiments
from otdist.experiments import power
from otdist.exceptions import InputError, InputTypeError


@pytest.mark.parametrize("seed", [0, 1])
def test_planted_differences_have_their_moments(seed):
    """First coordinates: mean SHIFT; standard deviation SCALE; mixture mean HALF_GAP (2 WEIGHT - 1) under Q
    and 0 under P. Every other coordinate standard normal. Tolerances: 5 standard errors of the mean."""
    rng = np.random.default_rng(seed)
    n, d = 20_000, 3
    se = 5 / np.sqrt(n)
    x, y = power.sample("mean shift", n, d, rng)
    assert abs(y[:, 0].mean() - x[:, 0].mean() - power.SHIFT) < se * np.sqrt(2)
    x, y = power.sample("scale change", n, d, rng)
    assert abs(y[:, 0].std() / x[:, 0].std() - power.SCALE) < 3 * se * power.SCALE
    x, y = power.sample("mixture weight", n, d, rng)
    spread = np.sqrt(1 + power.HALF_GAP**2)
    assert abs(x[:, 0].mean()) < se * spread
    assert abs(y[:, 0].mean() - power.HALF_GAP * (2 * power.WEIGHT - 1)) < se * spread
    for sample in (x, y):
        assert np.all(np.abs(sample[:, 1:].mean(0)) < se) and np.all(np.abs(sample[:, 1:].std(0) - 1) < se)


def test_tiny_run_table_figure_and_json(tmp_path):
    res = experiments.run("power", metrics=("energy", "sliced"), sizes=(8, 30), dims=(1, 3), n=30, replications=3,
                          n_permutations=19, seed=0, progress=False)
    c = res.columns
    assert len(c["n"]) == len(power.SCENARIOS) * 4
    for name in ("energy", "sliced"):
        rate = c[f"power_{name}"]
        np.testing.assert_array_equal(rate * 3, np.round(rate * 3))  # counts out of 3 replications
        np.testing.assert_allclose(c[f"se_{name}"], np.sqrt(rate * (1 - rate) / 3))
    assert set(c["sweep"]) == {0.0, 1.0} and res.info["metrics"] == ["energy", "sliced"]
    path = power.plot(res, tmp_path / "power.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(res.save_json(tmp_path / "power.json").read_text())
    assert data["name"] == "power" and data["columns"]["power_energy"] == list(c["power_energy"])
    assert "power_sliced" in res.table().splitlines()[0]



@pytest.mark.parametrize("arguments,error,message", [
    ({"replications": 0}, InputError, "replications must be an integer > 0"),
    ({"replications": 2.5}, InputTypeError, "replications must be an integer"),
    ({"seed": -1}, InputError, "seed must be a non-negative integer"),
    ({"seed": "0"}, InputTypeError, "seed must be a non-negative integer"),
    ({"metrics": ()}, InputError, "at least one metric"),
    ({"metrics": ("energy", "kl")}, InputError, "takes point samples"),
    ({"metrics": ("energy", "bogus")}, InputError, "metric must be one of"),
    ({"metrics": ("energy", "energy")}, InputError, "must be distinct"),
    ({"metrics": 3}, InputTypeError, "metrics must be a metric name"),
    ({"sizes": ()}, InputError, "sizes must hold at least one value"),
    ({"dims": (2, 0)}, InputError, r"dims\[1\] must be an integer > 0"),
])
def test_arguments_refused_before_any_test(monkeypatch, arguments, error, message):
    """Three-part errors of otdist, raised before the first two-sample test runs (none is called)."""
    calls = []
    monkeypatch.setattr(power.two_sample, "two_sample_test", lambda *a, **k: calls.append(a))
    with pytest.raises(error, match=message) as info:
        power.run(**{"sizes": (8,), "dims": (1,), "n": 8, "replications": 2, "n_permutations": 9,
                     "progress": False, **arguments})
    assert calls == [] and "." in str(info.value).rstrip(".")  # a remedy follows the diagnosis
