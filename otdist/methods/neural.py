"""``method="neural"``: W1 from a Lipschitz critic trained on the Kantorovich-Rubinstein dual.

``value`` is the cross-fitted held-out estimate of the population W1 (with ``standard_error``);
``bounds`` are certified on the W1 between the given samples (see :mod:`otdist.neural.certificate`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .._results import TransportResult
from ..exceptions import InputError, InputTypeError
from ..problem import Problem, is_uniform, transport_result
from .. import registry
from ..registry import MethodSpec, register_method


def _solve_neural(problem: Problem, need_plan: bool, **options) -> TransportResult:
    if problem.x is None or problem.cost is not None or problem.metric != "euclidean" or problem.p != 1:
        raise InputError(
            'method="neural" estimates W1 with the euclidean ground metric from samples (the Kantorovich-Rubinstein '
            "dual); it needs point clouds, p=1 and metric='euclidean'. Use method=\"exact\" or \"sinkhorn\" otherwise."
        )
    if not is_uniform(problem):
        raise InputError(
            'method="neural" treats its inputs as i.i.d. samples and does not take weights; got u_weights/v_weights. '
            "Resample the points according to their weights, or use a weighted method such as \"exact\"."
        )
    from ..neural import KRDualEstimator

    fit = _estimator(KRDualEstimator, options).fit(problem.x, problem.y)
    result = transport_result(problem, fit.value, None, None, None, "neural", n_iter=int((~np.isnan(fit.history)).sum()))
    # Certified on the W1 between the given samples: the fold-averaged critic's objective over its Lipschitz
    # bound below, the cost of a coupling of the samples above (see otdist.neural.certificate).
    bounds = (max(fit.lower_bound, 0.0), fit.upper_bound)
    return dataclasses.replace(result, standard_error=fit.standard_error, bounds=bounds, extra={"fit": fit})


register_method(MethodSpec("neural", _solve_neural, "W1 from a 1-Lipschitz critic (Kantorovich-Rubinstein dual)",
                           exact=False, gradients="values (the trained critic's gradient)", memory="O((n + m) d)"))


def _neural_metric(x, y, **options):
    from ..api import wasserstein

    return wasserstein(x, y, method="neural", **{"progress": False, **options})


def _neural_preflight(x, y, options: dict) -> None:
    from .. import _validation as V
    from ..neural import KRDualEstimator

    _estimator(KRDualEstimator, {"progress": False, **options}).check_sizes(V.as_points(x, "x").shape[0],
                                                                            V.as_points(y, "y").shape[0])


def _estimator(cls, options: dict):
    """``cls(**options)``, an unknown option refused as otdist's error rather than Python's TypeError."""
    import inspect

    unknown = sorted(set(options) - set(inspect.signature(cls).parameters))
    if unknown:
        raise InputTypeError(f'method="neural" got unexpected option(s): {", ".join(unknown)}; it takes '
                             f'{", ".join(inspect.signature(cls).parameters)}. Drop or rename them.')
    return cls(**options)


registry.register_metric(registry.MetricSpec(
    "neural", _neural_metric, "Wasserstein-1, neural Kantorovich-Rubinstein dual (held-out estimate)",
    symmetric=False, zero_on_identical=False, gradients="none (an estimate)", memory="O((n + m) d)", fixed=("method", "p"),
    permutation="refit", preflight=_neural_preflight))
