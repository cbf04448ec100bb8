"""Sample-quality metrics of a generator, computed against held-out real data.

* Toy mixtures: modes covered (a mode counts when at least ``MODE_SHARE`` of the samples lie within
  ``WITHIN_SIGMAS`` sigma of its centre), the fraction of high-quality samples (within 3 sigma of
  some centre), and the exact W1 (network simplex) to held-out real samples.
* Images: a classifier trained once on the real training images (digit classes, or flag layouts
  from edge features) labels the generated samples: classes covered, KL of the class histogram to
  uniform, mean confidence; plus sliced W1 and the Sinkhorn divergence to held-out real images.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .. import api, entropic
from .data import Dataset, load

MODE_SHARE = 0.01
WITHIN_SIGMAS = 3.0
#: Samples per side for the distances; projections and epsilon (relative) of the image distances.
DISTANCE_SAMPLES = 1000
SLICED_PROJECTIONS = 200
SINKHORN_EPSILON = 0.05
#: The W1 ratio: mean exact W1 over RATIO_DRAWS generated draws, divided by the mean over FLOOR_DRAWS of
#: exact W1 between two independent real draws of the same size (the sampling-noise floor).
RATIO_DRAWS = 5
FLOOR_DRAWS = 15


def mixture_metrics(samples: np.ndarray, centres: np.ndarray, sigma: float) -> dict[str, float]:
    distances = np.linalg.norm(samples[:, None, :] - centres[None, :, :], axis=-1)
    near = distances <= WITHIN_SIGMAS * sigma
    shares = near.mean(axis=0)
    return {
        "modes_covered": int((shares >= MODE_SHARE).sum()),
        "modes_total": int(len(centres)),
        "high_quality_fraction": float(near.any(axis=1).mean()),
    }


def exact_w1(generated: np.ndarray, real: np.ndarray) -> float:
    return float(api.wasserstein(generated.astype(np.float64), real.astype(np.float64), method="exact"))


def sliced_w1(generated: np.ndarray, real: np.ndarray) -> float:
    return float(api.wasserstein(generated.astype(np.float64), real.astype(np.float64), method="sliced",
                                 n_projections=SLICED_PROJECTIONS, seed=0))


def w1_ratio(generate, draw_real, n: int, seed: int, draws: int = RATIO_DRAWS,
             floor_draws: int = FLOOR_DRAWS) -> dict[str, float]:
    """The W1 ratio of a generator on a 2-D dataset, a measure free of sigma conventions.

    ``generate(n, seed) -> (n, 2)`` draws generated points; ``draw_real(n, rng) -> (n, 2)`` fresh real
    points. Returns ``w1_ratio`` = mean_k W1(generated_k, real_k) / mean_k W1(real_k, real'_k) (exact W1,
    ``draws`` and ``floor_draws`` pairs of ``n`` points each, at most ``2 * DISTANCE_SAMPLES`` as for the
    other distances) with both means: 1 is as close to the data
    as another sample of it.
    """
    n = min(n, DISTANCE_SAMPLES * 2)
    rng = np.random.default_rng([seed, n])
    generated = np.mean([exact_w1(generate(n, seed + k), draw_real(n, rng)) for k in range(draws)])
    floor = np.mean([exact_w1(draw_real(n, rng), draw_real(n, rng)) for _ in range(floor_draws)])
    return {"w1_ratio": float(generated / floor), "w1_generated_mean": float(generated), "w1_floor_mean": float(floor)}


def _edge_features(flat: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Colour-independent layout features: where neighbouring pixels differ."""
    images = flat.reshape(len(flat), *shape)
    if images.ndim == 3:  # grey images
        return flat
    vertical = np.abs(np.diff(images, axis=2)).sum(axis=1)
    horizontal = np.abs(np.diff(images, axis=3)).sum(axis=1)
    return np.concatenate([vertical.reshape(len(flat), -1), horizontal.reshape(len(flat), -1)], axis=1)


@lru_cache(maxsize=4)
def image_classifier(name: str, seed: int):
    """A scikit-learn classifier trained once on the real training images of ``name``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load(name, seed)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=0.5))
    model.fit(_edge_features(data.train, data.shape), data.labels_train)
    return model


def image_metrics(samples: np.ndarray, data: Dataset, seed: int) -> dict[str, float]:
    model = image_classifier(data.name, seed)
    proba = model.predict_proba(_edge_features(samples, data.shape))
    classes = len(model.classes_)
    share = np.bincount(proba.argmax(axis=1), minlength=classes) / len(samples)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_uniform = float(np.sum(np.where(share > 0, share * np.log(share * classes), 0.0)))
    real_accuracy = float((model.predict(_edge_features(data.test, data.shape)) == data.labels_test).mean())
    return {
        "classes_covered": int((share >= MODE_SHARE).sum()),
        "classes_total": classes,
        "class_kl_to_uniform": kl_uniform,
        "classifier_confidence": float(proba.max(axis=1).mean()),
        "classifier_accuracy_on_real": real_accuracy,
    }


def evaluate(samples: np.ndarray, data: Dataset, seed: int = 0) -> dict[str, float]:
    """All metrics of generated ``samples`` (n, dim) for dataset ``data``."""
    real = data.test[:min(DISTANCE_SAMPLES * 2, len(samples))]
    generated = samples[: len(real)]
    if data.is_image:
        out = image_metrics(samples, data, seed)
        out["sliced_w1_to_real"] = sliced_w1(generated, real)
        out["sinkhorn_divergence_to_real"] = float(entropic.sinkhorn_divergence(
            generated[:DISTANCE_SAMPLES].astype(np.float64), real[:DISTANCE_SAMPLES].astype(np.float64),
            epsilon=SINKHORN_EPSILON, relative=True))
        return out
    out = {"exact_w1_to_real": exact_w1(generated, real)}
    if data.centres is not None:
        out.update(mixture_metrics(samples, data.centres, data.sigma))
    return out
