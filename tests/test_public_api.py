import subprocess
import sys

import otdist


def test_all_is_pinned():
    assert sorted(otdist.__all__) == sorted(
        ["Comparison", "ConvergenceError", "ConvergenceWarning", "EstimateWarning", "InputError", "InputTypeError", "MemoryGuardError",
         "OTDistError", "SolverError", "UnverifiedFileWarning", "DivergenceEstimate", "SinkhornResult", "TransportResult", "__version__",
         "compare", "distance", "energy_distance", "estimate", "gaussian_w2", "mmd", "pairwise", "PairwiseResult", "two_sample_test", "TestResult", "confidence_interval", "Interval", "js", "js_distance", "kl", "metrics",
         "sinkhorn", "sinkhorn_divergence", "transport", "wasserstein"]
    )
    for name in otdist.__all__:
        assert hasattr(otdist, name)


def test_import_does_not_load_torch():
    code = "import sys, otdist; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
