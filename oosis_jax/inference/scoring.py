"""Learned instance confidences: an option beyond the paper's ad-hoc score (Sec. 5.4).

Mask mAP ranks every predicted instance by its score. The paper's score (`instances.adhoc_scores`: border b
minus inside b) grows with size and does not say whether an instance is whole. `ScoreModel` is a logistic
model of eight per-instance features (`FEATURES`) fitted to each instance's best IoU with a ground-truth
instance (the soft target of a cross-entropy, so the score estimates that IoU). It is fitted once per shipped
model on its validation scenes (`experiments.export_model --fit-scores`), stored in the model's
``config.json`` and applied by `Predictor` after the CRF; the instances themselves do not change.
"""

from __future__ import annotations

import dataclasses
import reprlib

import numpy as np

from oosis_jax.inference.instances import Prediction, border_pixels

FEATURES = ("log area", "mean b on the border", "mean b inside", "mean foreground probability",
            "mean probability of its class", "share of its outline on the image frame", "border / sqrt(area)",
            "log(1 + ad-hoc score)")


def check_feature_names(stored, expected: tuple[str, ...], model: str, refit: str) -> None:
    """``ValueError`` unless ``stored`` (the feature names a ``model`` was saved with; None for one saved before
    they were) are ``expected``: an earlier version's features can have the same number of values but other
    meanings, so applying it would be silently wrong. Names the first difference and the ``refit`` command."""
    if isinstance(stored, (list, tuple)) and list(stored) == list(expected):
        return
    names = list(stored) if isinstance(stored, (list, tuple)) else []
    k = next((i for i, (a, b) in enumerate(zip(names, expected)) if a != b),
             min(len(names), len(expected)))  # the first difference, else where the shorter ends
    found, wanted = (reprlib.repr(n[k]) if k < len(n) else "missing" for n in (names, expected))
    raise ValueError(f"this {model} was fitted on other features than this version's (feature {k}: {found}, here "
                     f"{wanted}; stored names: {reprlib.repr(stored)}); fit it again ({refit})")


def instance_features(prediction: Prediction) -> np.ndarray:
    """float64 (N, len(FEATURES)): the features of each instance 1..N of ``prediction`` (its instance_map,
    classes, ad-hoc scores and heads ``s``, ``b``)."""
    instance_map = np.asarray(prediction.instance_map)
    n = len(prediction.classes)
    if n == 0:
        return np.zeros((0, len(FEATURES)))

    def per_instance(weights=None):
        values = None if weights is None else np.asarray(weights, np.float64).ravel()
        return np.bincount(instance_map.ravel(), weights=values, minlength=n + 1)[1:n + 1]

    area = np.maximum(per_instance(), 1.0)
    border = border_pixels(instance_map)
    border_count = np.maximum(per_instance(border), 1.0)
    inside_count = np.maximum(area - per_instance(border), 1.0)
    b = np.asarray(prediction.b, np.float64)
    s = np.asarray(prediction.s, np.float64)
    pixel_class = np.asarray(prediction.classes)[np.maximum(instance_map, 1) - 1]  # background pixels: any class
    class_probability = np.take_along_axis(s, pixel_class[..., None], axis=-1)[..., 0]
    edge = np.zeros(instance_map.shape, bool)
    edge[[0, -1], :] = edge[:, [0, -1]] = True
    return np.stack([
        np.log(area),
        per_instance(np.where(border, b, 0.0)) / border_count,
        per_instance(np.where(border, 0.0, b)) / inside_count,
        per_instance(1.0 - s[..., 0]) / area,
        per_instance(class_probability) / area,
        per_instance(edge) / np.maximum(per_instance(border | edge), 1.0),  # outline: border and frame pixels
        border_count / np.sqrt(area),
        np.log1p(np.maximum(np.asarray(prediction.scores, np.float64), 0.0)),
    ], axis=1)


def best_ious(instance_map, gt_instance_map) -> np.ndarray:
    """float64 (N,): for each predicted instance 1..N of ``instance_map`` (int (H, W)), its largest IoU with
    a ground-truth instance of ``gt_instance_map`` (int (H, W), 0 = background); 0 when it overlaps none."""
    from oosis_jax.evaluation.metrics import iou_matrix  # fitting only: keeps prediction free of the metrics

    pred, gt = np.asarray(instance_map), np.asarray(gt_instance_map)
    n, m = int(pred.max(initial=0)), int(gt.max(initial=0))
    ious = iou_matrix(gt, pred, m, n)  # (m, n); raises ValueError when the shapes differ
    return ious.max(axis=0) if m else np.zeros(n)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, iterations: int = 50):
    """Newton's method on the L2-regularised cross-entropy of sigmoid(w . (x - mean) / scale + bias) against
    the (soft) targets ``y`` (float (N,) in [0, 1]) for features ``x`` (float (N, K)); returns ``(mean, scale,
    w)`` with ``w`` float (K + 1,), the bias last."""
    mean, scale = x.mean(0), np.maximum(x.std(0), 1e-6)
    design = np.c_[(x - mean) / scale, np.ones(len(x))]
    w = np.zeros(design.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-design @ w))
        gradient = design.T @ (p - y) + l2 * w
        hessian = (design * (p * (1 - p))[:, None]).T @ design + l2 * np.eye(len(w))
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return mean, scale, w


def logistic(x: np.ndarray, mean, scale, weights, bias: float) -> np.ndarray:
    """float64 (N,): sigmoid(w . (x - mean) / scale + bias) for each row of ``x`` (float (N, K)), the model
    `fit_logistic` fits (``mean``, ``scale``, ``weights``: K values each)."""
    z = (np.asarray(x, np.float64) - np.asarray(mean)) / np.asarray(scale)
    return 1.0 / (1.0 + np.exp(-(z @ np.asarray(weights) + bias)))


@dataclasses.dataclass(frozen=True)
class ScoreModel:
    """score = sigmoid(w . (x - mean) / scale + bias) for features x of `instance_features`."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def __post_init__(self):
        k = len(FEATURES)
        if not len(self.mean) == len(self.scale) == len(self.weights) == k:
            raise ValueError(f"a ScoreModel needs {k} means, scales and weights, got {len(self.mean)}, "
                             f"{len(self.scale)}, {len(self.weights)}")
        if not np.all(np.isfinite([*self.mean, *self.scale, *self.weights, self.bias])) or min(self.scale) <= 0:
            raise ValueError("a ScoreModel needs finite values and positive scales")

    def __call__(self, features) -> np.ndarray:
        """float64 (N,) scores in (0, 1) for features float (N, len(FEATURES))."""
        return logistic(features, self.mean, self.scale, self.weights, self.bias)

    @classmethod
    def fit(cls, features, ious, l2: float = 1e-2, iterations: int = 50) -> "ScoreModel":
        """Newton's method on the L2-regularised cross-entropy between the scores and the soft targets
        ``ious`` (float (N,) in [0, 1]) of ``features`` (float (N, len(FEATURES)), N >= 2)."""
        x, y = np.asarray(features, np.float64), np.asarray(ious, np.float64)
        if x.ndim != 2 or x.shape[1] != len(FEATURES) or y.shape != (len(x),) or len(x) < 2:
            raise ValueError(f"need features (N, {len(FEATURES)}) and ious (N,) with N >= 2, got {x.shape}, {y.shape}")
        if not (np.all(np.isfinite(x)) and np.all((y >= 0) & (y <= 1))):
            raise ValueError("features must be finite and ious in [0, 1]")
        mean, scale, w = fit_logistic(x, y, l2, iterations)
        return cls(tuple(mean.tolist()), tuple(scale.tolist()), tuple(w[:-1].tolist()), float(w[-1]))

    def to_dict(self) -> dict:
        """The model's values and the names of the features it was fitted on (`FEATURES`)."""
        return {**dataclasses.asdict(self), "features": list(FEATURES)}

    @classmethod
    def from_dict(cls, values: dict) -> "ScoreModel":
        """The model `to_dict` wrote; ``ValueError`` for one fitted on other features than `FEATURES`."""
        try:
            model = cls(tuple(values["mean"]), tuple(values["scale"]), tuple(values["weights"]), float(values["bias"]))
            stored = values.get("features")
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"not a ScoreModel: {reprlib.repr(values)} ({err!r})") from err
        check_feature_names(stored, FEATURES, "score model", "experiments.export_model --fit-scores")
        return model


def rescore(prediction: Prediction, model: ScoreModel) -> Prediction:
    """``prediction`` with its scores replaced by ``model``'s (everything else unchanged)."""
    return dataclasses.replace(prediction, scores=model(instance_features(prediction)))


def fit_score_model(predictions, ground_truths, l2: float = 1e-2) -> ScoreModel:
    """A `ScoreModel` fitted on ``predictions`` (`Prediction`s with the ad-hoc scores) against the
    ``ground_truths`` (dicts with ``instance_map``) of the same images."""
    if len(predictions) != len(ground_truths):
        raise ValueError(f"{len(predictions)} predictions but {len(ground_truths)} ground truths")
    features = np.concatenate([instance_features(p) for p in predictions])
    ious = np.concatenate([best_ious(p.instance_map, g["instance_map"]) for p, g in zip(predictions, ground_truths)])
    return ScoreModel.fit(features, ious, l2)
