"""``progress=True``: a tqdm bar over Sinkhorn's iterations (balanced, unbalanced, divergence, transport)."""

import numpy as np
import pytest

import otdist
from otdist.exceptions import InputTypeError
from otdist.solvers import sinkhorn as core


def _clouds():
    rng = np.random.default_rng(0)
    return rng.random((15, 2)), rng.random((12, 2)) + 0.5


CALLS = {
    "sinkhorn": lambda x, y, **o: otdist.sinkhorn(x, y, epsilon=0.05, **o),
    "unbalanced": lambda x, y, **o: otdist.sinkhorn(x, y, epsilon=0.05, reach=1.0, **o),
    "divergence": lambda x, y, **o: otdist.sinkhorn_divergence(x, y, epsilon=0.05, **o),
    "transport": lambda x, y, **o: otdist.transport(x, y, method="sinkhorn", epsilon=0.05, **o),
    "wasserstein": lambda x, y, **o: otdist.wasserstein(x, y, method="sinkhorn", epsilon=0.05, **o),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_progress_shows_a_bar_only_when_asked(name, monkeypatch, capsys):
    monkeypatch.setattr(core, "PROGRESS_DELAY", 0.0)  # show at once instead of after a second
    x, y = _clouds()
    CALLS[name](x, y)
    assert "Sinkhorn" not in capsys.readouterr().err
    CALLS[name](x, y, progress=True)
    assert "Sinkhorn" in capsys.readouterr().err


def test_default_delay_hides_the_bar_of_a_fast_solve(capsys):
    x, y = _clouds()
    otdist.sinkhorn(x, y, epsilon=0.05, progress=True)
    assert "Sinkhorn" not in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(CALLS))
def test_progress_must_be_a_bool(name):
    x, y = _clouds()
    with pytest.raises(InputTypeError, match="progress must be True or False"):
        CALLS[name](x, y, progress=1)
