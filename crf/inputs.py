"""Validation of the CRF inputs (paper Sec. 3.2): background probability, occlusion pairs, labelings.

Every public function of ``crf`` checks its arguments here, so that bad input raises ``ValueError`` with
a message naming the problem instead of producing a silent wrong labeling.
"""

import numpy as np


def as_array(name, value):
    """``np.asarray(value)``, with numpy's error on ragged nested lists turned into a ``ValueError`` naming
    ``name``; a masked array is refused (its hidden values would be used as they are)."""
    if isinstance(value, np.ma.MaskedArray):
        raise ValueError(f"{name} is a masked array: fill it first (e.g. {name}.filled(value)), its masked values "
                         "would be used as they are")
    try:
        return np.asarray(value)
    except ValueError as err:
        raise ValueError(f"{name} is not an array: {err}") from None


def check_sigma_occ(sigma, occ):
    """Validate the unary and occlusion inputs of Eq. (8).

    Args:
      sigma: ``float (H, W)`` in [0, 1], probability that a pixel is background (Eq. 5).
      occ: ``bool (H, W, 4)``; ``occ[y, x, d]`` True when pixel (y, x) occludes its neighbour in direction
        ``d`` (left, right, up, down), i.e. the ordered pair is in the set O of Eq. (7). Pairs pointing
        outside the image must be False.

    Returns:
      ``(sigma, occ)`` as C-contiguous ``float64 (H, W)`` and ``bool (H, W, 4)``.
    """
    sigma, occ = as_array("sigma", sigma), as_array("occ", occ)
    if sigma.ndim != 2 or sigma.shape[0] == 0 or sigma.shape[1] == 0:
        raise ValueError(f"sigma must have shape (H, W) with H, W >= 1, got {sigma.shape}")
    if sigma.dtype.kind not in "fiu":  # not timedelta64, which numpy counts as an integer
        raise ValueError(f"sigma must be a real-valued array, got dtype {sigma.dtype}")
    sigma = np.ascontiguousarray(sigma, dtype=np.float64)
    if not np.isfinite(sigma).all():
        raise ValueError("sigma contains NaN or inf")
    if sigma.min() < 0.0 or sigma.max() > 1.0:
        raise ValueError(f"sigma must lie in [0, 1], got range [{sigma.min()}, {sigma.max()}]")
    if occ.ndim == 3 and occ.shape[2] == 4 and occ.shape[:2] != sigma.shape:
        raise ValueError(f"sigma has shape {sigma.shape} (H, W) but occ has {occ.shape} (H, W, 4): "
                         "they must share H and W")
    if occ.shape != sigma.shape + (4,):
        raise ValueError(f"occ must have shape {sigma.shape + (4,)} (H, W, 4), got {occ.shape}")
    if occ.dtype != np.bool_:
        raise ValueError(f"occ must be a bool array, got dtype {occ.dtype}")
    outside = {"occ[:, 0, 0] (left of the first column)": occ[:, 0, 0], "occ[:, -1, 1] (right of the last column)":
               occ[:, -1, 1], "occ[0, :, 2] (above the first row)": occ[0, :, 2],
               "occ[-1, :, 3] (below the last row)": occ[-1, :, 3]}
    named = [f"{int(pairs.sum())} in {where}" for where, pairs in outside.items() if pairs.any()]
    if named:
        raise ValueError(f"occ has occlusion pairs pointing outside the image: {', '.join(named)}; they must be "
                         "False (e.g. after cropping occ, clear its border)")
    return sigma, np.ascontiguousarray(occ)


def check_labels(labels, shape=None):
    """Validate an occlusion-order labeling: ``int (H, W)``, labels >= 0. Returns it as C ``int64``."""
    labels = as_array("labels", labels)
    if labels.ndim != 2 or labels.shape[0] == 0 or labels.shape[1] == 0:
        raise ValueError(f"labels must have shape (H, W) with H, W >= 1, got {labels.shape}")
    if shape is not None and labels.shape != tuple(shape):
        raise ValueError(f"labels must have shape {tuple(shape)}, got {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be an integer array, got dtype {labels.dtype}")
    if labels.min() < 0:
        raise ValueError(f"labels must be >= 0, got minimum {labels.min()}")
    if labels.dtype == np.uint64 and labels.max() > np.iinfo(np.int64).max:
        raise ValueError(f"labels must be < 2**63, got maximum {labels.max()}")
    return np.ascontiguousarray(labels, dtype=np.int64)


def all_background_is_optimal(sigma, occ):
    """True when the all-zero labeling is a global minimum of Eq. (8) for any lam, mu >= 0, found exactly.

    That holds when no pixel prefers a label > 0 (``sigma >= 0.5``, Eq. 5) and O is empty: every term of Eq. (8)
    is then at its minimum at label 0. Every minimiser starting from all zeros only takes strictly improving
    moves, so it returns all zeros on such inputs; checking this first skips their graph cuts.
    ``sigma``, ``occ``: validated as by ``check_sigma_occ``.
    """
    return not occ.any() and bool(sigma.min() >= 0.5)
