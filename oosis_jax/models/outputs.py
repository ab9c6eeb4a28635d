"""From logits to the probabilities of Eq. (1)-(3), and the input normalisation shared by all callers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# ImageNet statistics of the torchvision / PSPNet reference backbones, in 0..255 units.
IMAGE_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255.0
IMAGE_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255.0
# uint8 colour closest to the mean: padding with it is zero after normalisation.
PAD_COLOR = np.round(IMAGE_MEAN).astype(np.uint8)


def normalize_images(images) -> np.ndarray:
    """``uint8 (B, H, W, 3)`` RGB (or ``(H, W, 3)``) -> ``float32`` numpy array, same shape, ``(x - mean) / std``.

    Pure numpy, so data-loading threads and processes can call it without touching an accelerator.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {images.dtype}")
    if images.ndim not in (3, 4) or images.shape[-1] != 3 or 0 in images.shape:
        raise ValueError(f"images must be (B, H, W, 3) or (H, W, 3) and non-empty, got {images.shape}")
    return (images.astype(np.float32) - IMAGE_MEAN) / IMAGE_STD


def probabilities(outputs: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Model outputs -> ``s (B,H,W,C+1)``, ``b (B,H,W)``, ``e (B,H,W,4)``, ``o (B,H,W,5)`` (float32).

    Disentangled heads: ``s = softmax``, ``b = sigmoid`` (Pr(B_p = 1)), ``e = softmax`` (Pr(O_p = d | B_p = 1)),
    ``o = [b * e, 1 - b]`` (Eq. 3). Entangled head: ``o = softmax(o_logits)``, ``b = 1 - o[..., 4]`` (Eq. 1)
    and ``e = o[..., :4] / b`` (Eq. 2), uniform where ``b`` underflows to 0.
    """
    probs = {"s": jax.nn.softmax(outputs["s_logits"], axis=-1)}
    if "o_logits" in outputs:
        o = jax.nn.softmax(outputs["o_logits"], axis=-1)
        b = 1.0 - o[..., 4]
        oriented = o[..., :4]
        total = oriented.sum(-1, keepdims=True)
        e = jnp.where(total > 0, oriented / jnp.where(total > 0, total, 1.0), 0.25)
        probs.update(b=b, e=e, o=o)
    elif "b_logits" in outputs and "e_logits" in outputs:
        b = jax.nn.sigmoid(outputs["b_logits"])
        e = jax.nn.softmax(outputs["e_logits"], axis=-1)
        probs.update(b=b, e=e, o=jnp.concatenate([b[..., None] * e, 1.0 - b[..., None]], axis=-1))
    else:
        raise ValueError(f"outputs need o_logits or b_logits and e_logits, got {sorted(outputs)}")
    return probs
