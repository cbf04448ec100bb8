"""Experiments behind the classic figures: each module has ``run(...) -> ExperimentResult`` and
``plot(result, path)``.

==================  ==============================================================
``gaussian-shift``  N(0,1) vs N(mu,1): JS saturates at log 2, W1 = |mu| keeps growing
``parallel-lines``  disjoint segments: JS = log 2, KL = inf, W1 = |theta|
``earth-piles``     1-D piles and the optimal plan that moves them
``dimension-bias``  each estimator's bias as the dimension grows (mixtures)
``power``           rejection rate of each metric's two-sample test against n and d
==================  ==============================================================
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ._common import ExperimentResult
from ..exceptions import InputError

EXPERIMENTS = {
    "gaussian-shift": "gaussian_shift",
    "parallel-lines": "parallel_lines",
    "earth-piles": "earth_piles",
    "dimension-bias": "dimension_bias",
    "power": "power",
}


def get(name: str) -> ModuleType:
    """The module of experiment ``name`` (one of ``EXPERIMENTS``)."""
    if name not in EXPERIMENTS:
        raise InputError(f"experiment must be one of {', '.join(EXPERIMENTS)}; got {name!r}.")
    return importlib.import_module(f".{EXPERIMENTS[name]}", __name__)


def run(name: str, **options) -> ExperimentResult:
    """Run experiment ``name`` with its options (``n``, ``seed``, ``progress``, ...)."""
    return get(name).run(**options)


__all__ = ["EXPERIMENTS", "ExperimentResult", "get", "run"]
