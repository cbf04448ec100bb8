"""Bad input gets a clear error saying what was expected, what was received and what to do."""

import numpy as np
import pytest
import torch

import otdist
from otdist import _validation as V
from otdist.exceptions import InputError, InputTypeError


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


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_covariance_checks_live_here_with_their_tolerance(seed):
    """A covariance whose smallest eigenvalue is -rtol ‖C‖_F / 2 passes, one at -2 rtol ‖C‖_F is refused
    (eigenvalues planted through a random rotation); gaussian_w2 refuses it with this module's message."""
    from otdist.gaussian import gaussian_w2, input_rtol

    rng = np.random.default_rng(seed)
    d, rtol = 4, 1e-6
    rotation = np.linalg.qr(rng.normal(size=(d, d)))[0]
    eigenvalues = np.array([0.0, 1.0, 2.0, 3.0])
    norm = np.linalg.norm(eigenvalues)
    for factor, ok in ((0.5, True), (2.0, False)):
        eigenvalues[0] = -factor * rtol * norm
        cov = rotation @ np.diag(eigenvalues) @ rotation.T
        cov = (cov + cov.T) / 2
        if ok:
            V.check_psd(cov, "cov", rtol)
            np.testing.assert_array_equal(V.as_covariance(cov, "cov", d, rtol), cov)
        else:
            with pytest.raises(InputError, match="cov must be positive semi-definite") as info:
                V.as_covariance(cov, "cov", d, rtol)
            cov = rotation @ np.diag([-1.0, 1.0, 2.0, 3.0]) @ rotation.T
            with pytest.raises(InputError) as from_w2:
                gaussian_w2(np.zeros(d), np.eye(d), np.zeros(d), (cov + cov.T) / 2)
            with pytest.raises(InputError) as direct:
                V.as_covariance((cov + cov.T) / 2, "cov2", d, input_rtol(cov))
            assert str(from_w2.value) == str(direct.value) and "clip its eigenvalues" in str(info.value)


def test_mean_and_level_checks_live_here():
    with pytest.raises(InputError, match=r"mean1 must be a non-empty 1-D vector.*got shape \(2, 2\)"):
        V.as_mean(np.zeros((2, 2)), "mean1")
    np.testing.assert_array_equal(V.as_mean([1.0, 2.0], "m"), [1.0, 2.0])
    assert V.check_level(0.9) == 0.9
    for bad, error in ((95, InputError), (0.0, InputError), (True, InputTypeError), ("0.9", InputTypeError)):
        with pytest.raises(error, match="level must be"):
            V.check_level(bad)


def test_no_validation_helpers_outside_the_validation_module():
    """The interval and Gaussian modules keep no input checks of their own."""
    import ast
    from pathlib import Path

    import otdist

    root = Path(otdist.__file__).parent
    for module in ("_intervals.py", "gaussian.py"):
        names = {node.name for node in ast.walk(ast.parse((root / module).read_text()))
                 if isinstance(node, ast.FunctionDef)}
        assert not names & {"check_level", "_as_mean", "_as_covariance", "_check_psd"}, module
