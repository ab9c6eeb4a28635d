"""Head probabilities ``dict(s, b, e)`` built from ground truth: degraded to look like a network's (Tab. 6
without a model), or mixed into a network's to show which head limits the instances (Tab. 4 rows)."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from oosis_jax.inference.instances import ground_truth_heads

HEADS = ("s", "b", "e")


def noisy_heads(example: dict, n_classes: int, noise: float, seed: int = 0) -> dict:
    """Ground-truth heads degraded to look like a network's: ``dict(s, b, e)`` float32 (Tab. 6 without a model).

    s: softmax of the log of the blurred (Gaussian, 1 px) one-hot semantic map, floored at 2 %, plus
    i.i.d. Gaussian logit noise of std ``noise``. b: the blurred boundary target rescaled to peak near 1,
    times ``1 + noise / 2 * N(0, 1)``. e: the target orientation (uniform where it has none) plus uniform
    noise of size ``noise``, renormalised. ``noise = 0`` gives blurred ground truth.
    """
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be finite and >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    gt = ground_truth_heads(example["instance_map"], example["classes"], example["edges"], n_classes)
    logits = np.log(gaussian_filter(gt["s"], sigma=(1, 1, 0)) + 0.02) + noise * rng.standard_normal(gt["s"].shape)
    s = np.exp(logits - logits.max(-1, keepdims=True))
    b = gaussian_filter(gt["b"], sigma=1) * 2.5 * (1 + noise / 2 * rng.standard_normal(gt["b"].shape))
    e = np.where(gt["e"].sum(-1, keepdims=True) > 0, gt["e"], 0.25) + noise * rng.random(gt["e"].shape)
    return {"s": (s / s.sum(-1, keepdims=True)).astype(np.float32), "b": np.clip(b, 0, 1).astype(np.float32),
            "e": (e / e.sum(-1, keepdims=True)).astype(np.float32)}


def mixed_heads(predicted: dict, ground_truth: dict, replaced) -> dict:
    """``predicted`` head probabilities (``dict(s, b, e)``) with the heads named in ``replaced`` taken from
    ``ground_truth`` (`ground_truth_heads`)."""
    unknown = set(replaced) - set(HEADS)
    if unknown:
        raise ValueError(f"unknown heads {sorted(unknown)}; choose among s, b, e")
    return {k: ground_truth[k] if k in replaced else predicted[k] for k in HEADS}


def mixed_heads_each(predicted: list[dict], ground_truth: list[dict], replaced) -> list[dict]:
    """`mixed_heads` of each example: ``predicted[i]`` with the heads in ``replaced`` from ``ground_truth[i]``
    (`ground_truth_heads_of` the same examples). With nothing in ``replaced`` the predicted heads come back as
    they are and ``ground_truth`` is not read (it may be None). Otherwise raises ValueError, naming the example,
    for lists of different lengths or heads that do not lie on their example's grid (e.g. labelled on test-time
    views' grid)."""
    if not replaced:
        return list(predicted)
    if len(predicted) != len(ground_truth):
        raise ValueError(f"{len(predicted)} predicted heads for {len(ground_truth)} ground truths")
    for i, (p, t) in enumerate(zip(predicted, ground_truth)):
        if p["b"].shape != t["b"].shape:
            raise ValueError(f"the heads of example {i} lie on a {p['b'].shape} grid, its ground truth on "
                             f"{t['b'].shape}")
    return [mixed_heads(p, t, replaced) for p, t in zip(predicted, ground_truth)]
