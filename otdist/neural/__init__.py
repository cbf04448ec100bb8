"""Neural Kantorovich-Rubinstein dual estimation of W1 (imports torch)."""

from .critics import CRITICS, Critic, GroupSort, gradient_norms, gradient_penalty
from .kr_dual import KRDualEstimator, KRResult, estimate

__all__ = ["CRITICS", "Critic", "GroupSort", "KRDualEstimator", "KRResult", "estimate", "gradient_norms", "gradient_penalty"]
