"""Bad input gets a clear error saying what was expected, what was received and what to do."""

import numpy as np
import pytest
import torch

import otdist


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        (([0.0, np.nan], [1.0]), {}, ValueError, r"u_values must be finite; got nan at index 1"),
        (([0.0, 1.0], [np.inf]), {}, ValueError, r"v_values must be finite"),
        (([0.0, 1.0], [1.0], [1.0, -0.5]), {}, ValueError, r"u_weights must be non-negative; got min -0.5 at index 1"),
        (([0.0, 1.0], [1.0], [0.0, 0.0]), {}, ValueError, r"positive sum; got all zeros"),
        (([0.0, 1.0], [1.0], [1.0, 2.0, 3.0]), {}, ValueError, r"length 2\); got shape \(3,\)"),
        (([], [1.0]), {}, ValueError, r"at least one point"),
        ((["a", "b"], [1.0]), {}, TypeError, r"real numbers; got dtype <U1"),
        (([1 + 2j], [1.0]), {}, TypeError, r"real numbers; got dtype complex128"),
        (([[0.0, 1.0], [1.0]], [1.0]), {}, ValueError, r"rectangular array"),
        ((np.zeros((3, 2)), np.zeros((3, 3))), {}, ValueError, r"same number of columns .* got 2 and 3"),
        ((np.zeros((2, 2, 2)), np.zeros((3, 3))), {}, ValueError, r"Reshape it to \(n, d\)"),
        (([0.0], [1.0]), {"p": 0.5}, ValueError, r"p must be a finite number >= 1"),
        (([0.0], [1.0]), {"p": "2"}, TypeError, r"p must be a real number"),
        (([0.0], [1.0]), {"method": "simplex"}, ValueError, r"method must be one of 'auto', '1d'"),
        (([0.0], [1.0]), {"metric": "cosine", "method": "exact"}, ValueError, r"metric must be one of"),
        (([0.0], [1.0]), {"metric": "minkowski", "method": "exact"}, ValueError, r"minkowski_p=3"),
        (([0.0], [1.0]), {"method": "exact", "max_iterations": 3}, TypeError, r"unexpected option\(s\): max_iterations"),
        ((np.zeros((3, 2)), np.zeros((3, 2))), {"method": "1d"}, ValueError, r'method="1d" needs 1-D values'),
        ((None, [1.0]), {}, TypeError, r"u_values must be an array of real numbers; got None"),
    ],
)
def test_wasserstein_errors(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        otdist.wasserstein(*args, **kwargs)


def test_precomputed_cost_of_wrong_shape():
    with pytest.raises(ValueError, match=r"cost must have shape \(2, 3\).*got shape \(3, 2\)"):
        otdist.transport([[0.0], [1.0]], [[0.0], [1.0], [2.0]], cost=np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"cost must be a non-empty 2-D"):
        otdist.transport(cost=np.ones(3))


def test_torch_nan_is_reported():
    with pytest.raises(ValueError, match="u_values must be finite"):
        otdist.wasserstein(torch.tensor([0.0, float("nan")]), torch.tensor([1.0]))


@pytest.mark.parametrize(
    "p, q, match",
    [
        ([0.5, 0.5], [1.0], r"same support \(equal length\); got lengths 2 and 1"),
        ([0.0, 0.0], [0.5, 0.5], r"positive sum"),
        ([0.5, np.nan], [0.5, 0.5], r"p must be finite"),
        (np.ones((3, 2)), np.ones((3, 2)), r"1-D probability vector .* shape \(3, 2\)"),
    ],
)
def test_divergence_errors(p, q, match):
    for function in (otdist.kl, otdist.js):
        with pytest.raises(ValueError, match=match):
            function(p, q)


def test_base_must_be_valid():
    with pytest.raises(ValueError, match="base must be a positive number other than 1"):
        otdist.kl([1.0], [1.0], base=1)
    with pytest.raises(ValueError, match="base must be a real number > 0"):
        otdist.js([1.0], [1.0], base=-2)
