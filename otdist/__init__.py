"""otdist: optimal-transport distances and divergences behind one API.

>>> import otdist
>>> otdist.wasserstein([0.0, 1.0, 3.0], [5.0, 6.0, 8.0])
5.0
"""

from __future__ import annotations

import importlib

from ._results import TransportResult
from . import methods, registry
from .api import distance, js, js_distance, kl, transport, wasserstein
from .comparison import Comparison, compare
from .divergences.estimators import DivergenceEstimate, estimate
from .entropic import SinkhornResult, sinkhorn, sinkhorn_divergence
from .gaussian import gaussian_w2
from .kernels import energy_distance, mmd
from .pairwise import PairwiseResult, pairwise
from .two_sample import Interval, TestResult, confidence_interval, two_sample_test
from .registry import metrics
from .exceptions import (
    ConvergenceError,
    ConvergenceWarning,
    EstimateWarning,
    InputError,
    InputTypeError,
    MemoryGuardError,
    OTDistError,
    SolverError,
    UnverifiedFileWarning,
)

__version__ = "0.1.0"

# Sub-packages that import torch are loaded on first attribute access.
_LAZY_SUBMODULES = ("neural", "wgan", "experiments", "cost", "solvers", "divergences")
# ``methods`` and ``registry`` are imported eagerly: importing them registers every method and metric.

__all__ = [
    "Comparison",
    "ConvergenceError",
    "ConvergenceWarning",
    "InputError",
    "Interval",
    "InputTypeError",
    "MemoryGuardError",
    "PairwiseResult",
    "OTDistError",
    "SolverError",
    "UnverifiedFileWarning",
    "DivergenceEstimate",
    "EstimateWarning",
    "SinkhornResult",
    "TestResult",
    "TransportResult",
    "__version__",
    "compare",
    "confidence_interval",
    "distance",
    "energy_distance",
    "estimate",
    "gaussian_w2",
    "js",
    "js_distance",
    "kl",
    "metrics",
    "mmd",
    "pairwise",
    "sinkhorn",
    "sinkhorn_divergence",
    "transport",
    "two_sample_test",
    "wasserstein",
]


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'otdist' has no attribute {name!r}")
