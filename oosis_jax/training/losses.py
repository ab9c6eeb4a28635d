"""Training losses of the s, b, e heads: Eq. (4), supplement Theorem 1, and the Tab. 3b boundary losses.

Every term returns ``(sum, count)`` over the batch, so a caller can average over one step, over many steps,
or over devices without re-weighting: the loss is ``sum / count``. Targets (all per pixel):

- ``semantic``: int32 ``(B, H, W)`` class ids 0..C, ``IGNORE_LABEL`` where unlabelled (crop padding, and
  where shrinking made two instances of unknown order touch: `input_pipeline.closed_gaps`);
- ``boundary``: float32 ``(B, H, W)`` in {0, 1}, B_p of supplement Sec. 1.3;
- ``orientation``: float32 ``(B, H, W, 4)``, E_p (rows sum to 1 where B_p = 1, zero elsewhere).

Pixels whose semantic label is ``IGNORE_LABEL`` are excluded from every term.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from oosis_jax.models.config import check_types

IGNORE_LABEL = 255
BOUNDARY_LOSSES = ("wce", "dice++", "tversky++", "combo")


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Weights of the loss terms.

    ``boundary_loss``: "wce" (Eq. 4, the paper's choice), "dice++", "tversky++" or "combo" (Tab. 3b).
    ``boundary_weight``: w of CE_w on boundary pixels (1 - w on the others), 0.9 in the paper.
    ``gamma``, ``tversky_alpha``, ``tversky_beta``: Dice++/Tversky++ parameters (2, 0.8, 0.2 in Sec. 5.6).
    ``combo_alpha``: weight of the weighted CE inside Combo (0.1 in Sec. 5.6); ``aux_weight``: the weight of the
    CE of PSPNet's auxiliary semantic head on stage 3, a term the PSPNet reference implementation adds to its
    loss (0.4 there; the paper trains that implementation's PSPNet, Eq. (4) lists only s, b and e; 0 drops it).
    ``orientation_band``: 0 trains e on the boundary pixels only (Eq. 4); r > 0 (beyond the paper) also on
    the pixels within Chebyshev distance r of one, towards the mean E of the boundary pixels in reach
    (`band_orientation`), because NMS often keeps a pixel next to the true boundary and reads e there.
    ``contact_weight``: kappa >= 0 (beyond the paper); a boundary pixel counts ``1 + kappa * C_p`` times in
    the b loss, C_p = `contact_share`, the share of its occluded neighbours that are objects, not background:
    the boundaries between touching objects are the ones whose gaps merge instances. 0 is Eq. (4).
    ``small_weight``: kappa >= 0 (beyond the paper); a pixel of an instance of area a < A_0 = ``small_area`` (px),
    or of the 3x3 ring around it (`smallness`), counts ``1 + kappa (1 - a / A_0)`` times: every such pixel in the
    s term, the boundary pixels among them in the b term (as ``contact_weight``; the others' b term is
    unweighted) and the pixels e is trained on in the e term. 0 is Eq. (4). ``gamma`` must be >= 1: below, the
    Dice++ / Tversky++ powers have an infinite slope at 0 and the gradients are NaN.
    """

    boundary_loss: str = "wce"
    boundary_weight: float = 0.9
    gamma: float = 2.0
    tversky_alpha: float = 0.8
    tversky_beta: float = 0.2
    combo_alpha: float = 0.1
    aux_weight: float = 0.4
    orientation_band: int = 0
    contact_weight: float = 0.0
    small_weight: float = 0.0
    small_area: float = 100.0

    # options added after configurations were first saved; off by default, as in runs written before them
    # (`oosis_jax.models.config.check_fields`)
    ADDED_LATER = ("orientation_band", "contact_weight", "small_weight", "small_area")

    def __post_init__(self):
        check_types(self)
        if self.boundary_loss not in BOUNDARY_LOSSES:
            raise ValueError(f"boundary_loss must be one of {BOUNDARY_LOSSES}, got {self.boundary_loss!r}")
        if not 0.0 < self.boundary_weight < 1.0:
            raise ValueError(f"boundary_weight must lie in (0, 1), got {self.boundary_weight}")
        if self.orientation_band < 0:
            raise ValueError(f"orientation_band must be >= 0, got {self.orientation_band}")
        if not self.gamma >= 1.0:  # (p (1 - y)) ** gamma has an infinite slope at 0 below 1: NaN gradients
            raise ValueError(f"gamma must be >= 1 (Dice++ / Tversky++ exponent), got {self.gamma}")
        for name in ("tversky_alpha", "tversky_beta", "combo_alpha", "aux_weight", "contact_weight",
                     "small_weight"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.small_area > 0.0:
            raise ValueError(f"small_area must be > 0, got {self.small_area}")


def valid_mask(semantic: jax.Array) -> jax.Array:
    """float32 ``(B, H, W)``: 1 where the pixel is labelled."""
    return (semantic != IGNORE_LABEL).astype(jnp.float32)


def semantic_ce(logits: jax.Array, semantic: jax.Array, weight=1.0) -> tuple[jax.Array, jax.Array]:
    """Sum_p CE(S_p | s_p) over labelled pixels (first term of Eq. 4); count = labelled pixels. ``weight``:
    float32 ``(B, H, W)`` (or 1.0), a factor on each pixel's term (`LossConfig.small_weight`)."""
    valid = valid_mask(semantic)
    labels = jnp.where(semantic == IGNORE_LABEL, 0, semantic)
    log_p = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(log_p, labels[..., None], axis=-1)[..., 0]
    return (nll * weight * valid).sum(), valid.sum()


def boundary_bce(logits: jax.Array, boundary: jax.Array, valid: jax.Array, weight: float | None = None,
                 positive=1.0):
    """Sum_p CE_w(B_p | b_p) (second term of Eq. 4); count = labelled pixels.

    ``weight=None`` is plain binary CE (as in Theorem 1); ``weight=w`` scales boundary pixels by w and the
    others by 1 - w (the weighted binary CE the paper cites [40], w = 0.9 in the paper). ``positive``: float32
    ``(B, H, W)`` (or 1.0), a further factor on the boundary pixels' term (`LossConfig.contact_weight`).
    """
    log_b, log_not_b = jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits)
    w_pos, w_neg = (1.0, 1.0) if weight is None else (weight, 1.0 - weight)
    nll = -(w_pos * positive * boundary * log_b + w_neg * (1.0 - boundary) * log_not_b)
    return (nll * valid).sum(), valid.sum()


def orientation_ce(logits: jax.Array, orientation: jax.Array, boundary: jax.Array, valid: jax.Array):
    """Sum_p B_p * CE(E_p | e_p) (third term of Eq. 4, soft targets E_p); count = labelled pixels, so that
    the three terms of Eq. (4) share one normalisation as in Theorem 1."""
    nll = -(orientation * jax.nn.log_softmax(logits, axis=-1)).sum(-1)
    return (nll * boundary * valid).sum(), valid.sum()


def band_orientation(boundary: jax.Array, orientation: jax.Array, radius: int) -> tuple[jax.Array, jax.Array]:
    """``(mask, target)``: float32 ``(B, H, W)`` 1 within Chebyshev distance ``radius`` of a boundary pixel,
    and float32 ``(B, H, W, 4)``: E on boundary pixels, elsewhere in the band the normalised sum of E over
    the boundary pixels of the ``(2 radius + 1)``-square around the pixel (``boundary`` and ``orientation``
    as in `orientation_ce`)."""
    window = (1, 2 * radius + 1, 2 * radius + 1)
    near = jax.lax.reduce_window(boundary, 0.0, jax.lax.add, window, (1, 1, 1), "SAME")
    summed = jax.lax.reduce_window(orientation * boundary[..., None], 0.0, jax.lax.add, window + (1,),
                                   (1, 1, 1, 1), "SAME")
    spread = summed / jnp.maximum(summed.sum(-1, keepdims=True), 1e-6)
    target = jnp.where(boundary[..., None] > 0, orientation, spread)
    return (near > 0).astype(jnp.float32), target


def contact_share(semantic: jax.Array, boundary: jax.Array, orientation: jax.Array) -> jax.Array:
    """float32 ``(B, H, W)`` in [0, 1]: for each boundary pixel, the E-weighted share of the neighbours it
    occludes (directions left, right, top, bottom as E) that are labelled objects (class >= 1), not
    background or padding; 0 off the boundary. 1 on a border between two touching objects, 0 on an object's
    border with the background (`LossConfig.contact_weight`). ``semantic``, ``boundary``, ``orientation``
    as in `loss_terms`."""
    objects = ((semantic != 0) & (semantic != IGNORE_LABEL)).astype(jnp.float32)
    padded = jnp.pad(objects, ((0, 0), (1, 1), (1, 1)))
    neighbours = jnp.stack([padded[:, 1:-1, :-2], padded[:, 1:-1, 2:], padded[:, :-2, 1:-1], padded[:, 2:, 1:-1]],
                           axis=-1)
    return boundary * (orientation * neighbours).sum(-1)


def smallness(area: jax.Array, small_area: float) -> jax.Array:
    """float32 ``(B, H, W)`` in [0, 1): ``max(0, 1 - a / A_0)`` for a pixel of an instance of area a > 0
    (``area`` as the batch's, float32 ``(B, H, W)``, 0 off objects), then the maximum over each pixel's 3x3
    window, so that the boundary pixels of a small instance that lie on its occluder count too
    (`LossConfig.small_weight`)."""
    share = jnp.where(area > 0, jnp.maximum(0.0, 1.0 - area / small_area), 0.0)
    return jax.lax.reduce_window(share, -jnp.inf, jax.lax.max, (1, 3, 3), (1, 1, 1), "SAME")


def oriented_ce(logits: jax.Array, boundary: jax.Array, orientation: jax.Array, valid: jax.Array):
    """Sum_p CE(O_p | o_p) with O_p = [B_p E_p, 1 - B_p] (supplement Eq. 2): the entangled 5-way head."""
    target = jnp.concatenate([boundary[..., None] * orientation, 1.0 - boundary[..., None]], axis=-1)
    nll = -(target * jax.nn.log_softmax(logits, axis=-1)).sum(-1)
    return (nll * valid).sum(), valid.sum()


def _soft_counts(probs, boundary, valid, gamma, positive=1.0):
    """Per-image TP, FP^gamma, FN^gamma sums of Dice++/Tversky++ [63]: FP = sum (p (1 - y))^gamma etc.;
    ``positive`` weighs each boundary pixel's share of TP and FN (as in `boundary_bce`)."""
    tp = (probs * boundary * positive * valid).sum((1, 2))
    fp = ((probs * (1.0 - boundary)) ** gamma * valid).sum((1, 2))
    fn = (((1.0 - probs) * boundary) ** gamma * positive * valid).sum((1, 2))
    return tp, fp, fn


def tversky_pp(logits, boundary, valid, alpha: float, beta: float, gamma: float, smooth: float = 1.0,
               positive=1.0):
    """Tversky++ [63]: per image ``1 - (TP + eps) / (TP + alpha FN^gamma + beta FP^gamma + eps)``; returns
    (sum over images, number of images with a labelled pixel: a validation batch's padding is not counted).
    ``alpha = beta = 0.5`` is Dice++ (``1 - 2TP / (2TP + FP + FN)``), alpha > beta penalises missed boundary
    pixels more (Sec. 5.6 uses alpha = 0.8, beta = 0.2)."""
    tp, fp, fn = _soft_counts(jax.nn.sigmoid(logits), boundary, valid, gamma, positive)
    index = (tp + smooth) / (tp + alpha * fn + beta * fp + smooth)
    labelled = _labelled_images(valid)
    return ((1.0 - index) * labelled).sum(), labelled.sum()


def combo(logits, boundary, valid, alpha: float, weight: float, smooth: float = 1.0, positive=1.0):
    """Combo loss [64]: per image ``alpha * mean_p CE_w(B_p | b_p) + (1 - alpha) * (1 - Dice)``; returns
    (sum over images, number of images with a labelled pixel). ``positive`` as in `boundary_bce`, in both parts."""
    log_b, log_not_b = jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits)
    wce = -(weight * positive * boundary * log_b + (1.0 - weight) * (1.0 - boundary) * log_not_b)
    wce = (wce * valid).sum((1, 2)) / jnp.maximum(valid.sum((1, 2)), 1.0)
    tp, fp, fn = _soft_counts(jax.nn.sigmoid(logits), boundary, valid, 1.0, positive)
    dice = (2.0 * tp + smooth) / (2.0 * tp + fp + fn + smooth)
    labelled = _labelled_images(valid)
    return ((alpha * wce + (1.0 - alpha) * (1.0 - dice)) * labelled).sum(), labelled.sum()


def _labelled_images(valid):
    """float32 (B,): 1 for an image with at least one labelled pixel."""
    return (valid.sum((1, 2)) > 0).astype(jnp.float32)


def batch_keys(config: LossConfig) -> tuple[str, ...]:
    """The batch entries `loss_terms` reads under ``config`` (``area`` only when ``small_weight`` is on), so
    that the training loop sends the device nothing else."""
    return ("semantic", "boundary", "orientation") + (("area",) if config.small_weight else ())


def loss_terms(outputs: dict, batch: dict, config: LossConfig) -> dict[str, tuple[jax.Array, jax.Array]]:
    """All ``(sum, count)`` terms for the model ``outputs`` and a batch with ``semantic``, ``boundary``,
    ``orientation``: keys ``s``, ``aux`` (when present), and ``b`` + ``e`` (disentangled) or ``o`` (entangled)."""
    semantic, boundary, orientation = batch["semantic"], batch["boundary"], batch["orientation"]
    boundary = boundary.astype(jnp.float32)
    valid = valid_mask(semantic)
    weight = 1.0
    if config.small_weight:
        if "area" not in batch:
            raise ValueError("small_weight needs the batch's 'area' (oosis_jax.training.input_pipeline)")
        weight = 1.0 + config.small_weight * smallness(batch["area"], config.small_area)
    terms = {"s": semantic_ce(outputs["s_logits"], semantic, weight)}
    if "aux_logits" in outputs:
        terms["aux"] = semantic_ce(outputs["aux_logits"], semantic)
    if "o_logits" in outputs:
        if config.contact_weight or config.small_weight:
            raise ValueError("contact_weight and small_weight weigh the b and e losses of the disentangled heads; "
                             "the entangled o head has none")
        terms["o"] = oriented_ce(outputs["o_logits"], boundary, orientation, valid)
        return terms
    b_logits = outputs["b_logits"]
    positive = weight
    if config.contact_weight:
        positive = positive * (1.0 + config.contact_weight * contact_share(semantic, boundary, orientation))
    if config.boundary_loss == "wce":
        terms["b"] = boundary_bce(b_logits, boundary, valid, config.boundary_weight, positive)
    elif config.boundary_loss == "dice++":
        terms["b"] = tversky_pp(b_logits, boundary, valid, 0.5, 0.5, config.gamma, positive=positive)
    elif config.boundary_loss == "tversky++":
        terms["b"] = tversky_pp(b_logits, boundary, valid, config.tversky_alpha, config.tversky_beta, config.gamma,
                                positive=positive)
    else:
        terms["b"] = combo(b_logits, boundary, valid, config.combo_alpha, config.boundary_weight, positive=positive)
    trained = boundary  # the pixels e is trained on: B (Eq. 4), or the band around it
    if config.orientation_band:
        trained, orientation = band_orientation(boundary, orientation, config.orientation_band)
    terms["e"] = orientation_ce(outputs["e_logits"], orientation, trained * weight, valid)
    return terms


def total_loss(terms: dict[str, tuple[jax.Array, jax.Array]], config: LossConfig) -> jax.Array:
    """Eq. (4) (or the entangled CE) as means over pixels, plus ``aux_weight`` times the auxiliary CE."""
    loss = jnp.zeros((), jnp.float32)
    for name, (total, count) in terms.items():
        scale = config.aux_weight if name == "aux" else 1.0
        loss = loss + scale * total / jnp.maximum(count, 1.0)
    return loss
