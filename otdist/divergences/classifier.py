r"""Classifier (variational) estimators of JS and KL from samples.

With equal class priors, the Bayes-optimal probability that a point came from P rather than Q is
D*(z) = p(z) / (p(z) + q(z)), and

.. math:: \mathrm{JS}(P, Q) = \log 2 + \tfrac12 \max_D \big(\mathbb{E}_P \log D + \mathbb{E}_Q \log(1 - D)\big),
          \qquad \mathrm{KL}(P \| Q) = \mathbb{E}_P \log \frac{D^*}{1 - D^*}.

A classifier is trained on one part of each sample (classes balanced) and the objective is
evaluated on the held-out rest, so the estimate is not inflated by over-fitting. For JS any
classifier gives a lower bound in expectation (the objective is a maximum); the KL form is only
as good as the classifier's calibration.  Nothing is clipped: with P = Q the held-out estimate
is negative about half the time, by a few standard errors at most.

``seed`` seeds the split, the models' own randomness and (``"mlp"``) a ``torch.Generator`` for
the initialisation and the shuffling; no global random state is read or changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOG2 = float(np.log(2.0))
MODELS = ("logistic", "boosting", "mlp")
#: Fraction of each sample held out for evaluation.
DEFAULT_TEST_FRACTION = 0.3
#: Probabilities are clipped to [PROB_FLOOR, 1 - PROB_FLOOR] before taking logs.
PROB_FLOOR = 1e-12
#: Gradient boosting: shallow trees and a small learning rate (its defaults over-fit a few thousand
#: samples to probabilities of 0 and 1, whose held-out log-likelihood is very negative).
BOOSTING_REGULARISATION = {"max_depth": 2, "learning_rate": 0.05}
#: The torch MLP: width, maximum full-batch Adam steps, learning rate, weight decay; early
#: stopping on a validation share of the training part, checked every MLP_EVAL_EVERY steps.
MLP_HIDDEN, MLP_STEPS, MLP_LR, MLP_WEIGHT_DECAY = 64, 500, 3e-3, 1e-3
MLP_VALIDATION, MLP_EVAL_EVERY = 0.2, 10


@dataclass(frozen=True)
class ClassifierEstimate:
    """Held-out and training values of a classifier estimate, with the held-out standard error."""

    value: float
    train_value: float
    standard_error: float
    model: str


def _sklearn_model(model: str, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if model == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced"))
    return HistGradientBoostingClassifier(class_weight="balanced", random_state=seed, early_stopping=True,
                                          **BOOSTING_REGULARISATION)


def _initialise(layer, generator) -> None:
    """nn.Linear's default initialisation (uniform, bound 1/sqrt(fan_in)), drawn from ``generator``."""
    import torch

    bound = 1.0 / float(np.sqrt(layer.in_features))
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        layer.bias.uniform_(-bound, bound, generator=generator)


def _mlp_probability(features: np.ndarray, labels: np.ndarray, seed: int):
    import copy

    import torch
    from torch import nn

    generator = torch.Generator().manual_seed(seed)
    mean, std = features.mean(axis=0), features.std(axis=0) + 1e-12
    order = torch.randperm(len(labels), generator=generator)
    inputs = torch.as_tensor((features - mean) / std, dtype=torch.float32)[order]
    target = torch.as_tensor(labels, dtype=torch.float32)[order]
    weight = torch.where(target > 0, 0.5 / target.mean(), 0.5 / (1 - target.mean()))
    cut = max(1, int(len(target) * MLP_VALIDATION))
    with torch.random.fork_rng(devices=[]):  # nn.Linear draws its initial weights from the global generator
        net = nn.Sequential(nn.Linear(features.shape[1], MLP_HIDDEN), nn.ReLU(), nn.Linear(MLP_HIDDEN, MLP_HIDDEN),
                            nn.ReLU(), nn.Linear(MLP_HIDDEN, 1))
    for layer in net:
        if isinstance(layer, nn.Linear):
            _initialise(layer, generator)
    optimizer = torch.optim.Adam(net.parameters(), lr=MLP_LR, weight_decay=MLP_WEIGHT_DECAY)

    def loss(part: slice):
        return nn.functional.binary_cross_entropy_with_logits(net(inputs[part]).squeeze(-1), target[part],
                                                              weight=weight[part])

    best, best_state = float("inf"), copy.deepcopy(net.state_dict())
    for step in range(MLP_STEPS):
        optimizer.zero_grad()
        loss(slice(cut, None)).backward()
        optimizer.step()
        if (step + 1) % MLP_EVAL_EVERY == 0:
            with torch.no_grad():
                validation = float(loss(slice(None, cut)))
            if validation < best:
                best, best_state = validation, copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)

    def probability(points: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            z = torch.as_tensor((points - mean) / std, dtype=torch.float32)
            return torch.sigmoid(net(z).squeeze(-1)).double().numpy()

    return probability


def _train(model: str, x: np.ndarray, y: np.ndarray, seed: int):
    features = np.vstack([x, y])
    labels = np.concatenate([np.ones(len(x)), np.zeros(len(y))])
    if model == "mlp":
        return _mlp_probability(features, labels, seed)
    fitted = _sklearn_model(model, seed).fit(features, labels)
    return lambda points: fitted.predict_proba(points)[:, 1]


def _terms(divergence: str, probability, x: np.ndarray, y: np.ndarray):
    """Per-sample terms on P and on Q whose means (with the constant) give the estimate."""
    dx = np.clip(probability(x), PROB_FLOOR, 1 - PROB_FLOOR)
    if divergence == "kl":
        return np.log(dx) - np.log1p(-dx), np.zeros(0)
    dy = np.clip(probability(y), PROB_FLOOR, 1 - PROB_FLOOR)
    return 0.5 * np.log(dx), 0.5 * np.log1p(-dy)


def _value(divergence: str, tx: np.ndarray, ty: np.ndarray) -> tuple[float, float]:
    if divergence == "kl":
        return float(tx.mean()), float(tx.std(ddof=1) / np.sqrt(len(tx)))
    value = LOG2 + float(tx.mean() + ty.mean())
    se = float(np.sqrt(tx.var(ddof=1) / len(tx) + ty.var(ddof=1) / len(ty)))
    return value, se


def estimate(divergence: str, x: np.ndarray, y: np.ndarray, model: str = "logistic",
             test_fraction: float = DEFAULT_TEST_FRACTION, seed: int = 0) -> ClassifierEstimate:
    """Train on 1 - test_fraction of each sample, report the held-out (and training) estimate.

    ``seed`` is an integer or a ``numpy.random.SeedSequence``.
    """
    sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    split_seed, model_seed = sequence.spawn(2)
    rng = np.random.default_rng(split_seed)
    seed = int(model_seed.generate_state(1)[0])
    px, py = rng.permutation(len(x)), rng.permutation(len(y))
    cut_x, cut_y = int(round(len(x) * test_fraction)), int(round(len(y) * test_fraction))
    x_test, x_train = x[px[:cut_x]], x[px[cut_x:]]
    y_test, y_train = y[py[:cut_y]], y[py[cut_y:]]
    probability = _train(model, x_train, y_train, seed)
    value, se = _value(divergence, *_terms(divergence, probability, x_test, y_test))
    train_value, _ = _value(divergence, *_terms(divergence, probability, x_train, y_train))
    return ClassifierEstimate(value, train_value, se, model)
