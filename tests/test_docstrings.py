"""The examples in the public docstrings run and print what they claim."""

import doctest
import importlib

import pytest

MODULES = ["otdist", "otdist.api", "otdist.registry", "otdist.kernels", "otdist.gaussian", "otdist.methods.line", "otdist.pairwise", "otdist.two_sample", "otdist._intervals", "otdist.information", "otdist.entropic", "otdist.comparison", "otdist.divergences.estimators",
           "otdist.neural.kr_dual", "otdist.wgan", "otdist.solvers.sinkhorn",
           "otdist.solvers.over_relaxation"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
