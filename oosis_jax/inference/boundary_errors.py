"""Which errors of the predicted set O limit the instances: pixel categories and oracle CRF inputs.

A diagnosis beyond the paper (issue 14). The CRF of Sec. 3.2 sees the network only through sigma (Eq. 5) and
O (Eq. 7), built from the thinned b head and the e head (`crf_inputs.predicted_crf_inputs`). Against the
ground truth B, E of supplement Sec. 1.3, every predicted boundary pixel is

* ``exact``: on a ground-truth boundary pixel;
* ``off_by_one``: not on one, but within ``NEAR`` pixels (1.5: the 8 neighbours) of one;
* ``spurious``: farther (texture, part edges, background clutter);

and a ground-truth boundary pixel with no predicted one within ``NEAR`` is ``missed``. The orientation of a
predicted pixel is a hit when the argmax of its e names a direction its nearest ground-truth pixel occludes.

`oracle_inputs` then repairs one kind of error at a time with the ground truth, keeping everything else
predicted, so that the CRF result of each repair measures what that error costs.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from oosis_jax.inference.crf_inputs import occlusion_set

NEAR = 1.5
CATEGORIES = ("exact", "off_by_one", "spurious")
# Each oracle repair: (drop spurious pixels, orientation from the ground truth, ground-truth locations,
# fill the gaps: add the missed ground-truth pixels with their true orientation).
REPAIRS = {
    "none": (False, False, False, False),
    "spurious": (True, False, False, False),
    "orientation": (False, True, False, False),
    "spurious+orientation": (True, True, False, False),
    "missed": (False, False, False, True),
    "locations": (False, False, True, False),
    "locations+orientation": (False, True, True, False),
}


def _check(boundary, e, gt_boundary, gt_e):
    boundary, gt_boundary = np.asarray(boundary), np.asarray(gt_boundary)
    if boundary.dtype != bool or gt_boundary.dtype != bool or boundary.ndim != 2:
        raise ValueError(f"boundary and gt_boundary must be bool (H, W), got {boundary.dtype} {boundary.shape}"
                         f" and {gt_boundary.dtype} {gt_boundary.shape}")
    shape = boundary.shape
    if gt_boundary.shape != shape or np.shape(e) != (*shape, 4) or np.shape(gt_e) != (*shape, 4):
        raise ValueError(f"shapes differ: boundary {shape}, gt_boundary {gt_boundary.shape}, e {np.shape(e)}, "
                         f"gt_e {np.shape(gt_e)} (expected (H, W) and (H, W, 4))")
    return boundary, np.asarray(e), gt_boundary, np.asarray(gt_e)


def _nearest_ground_truth(gt_boundary):
    """(distance float (H, W), rows, cols int (H, W)) to/of the nearest ground-truth boundary pixel."""
    if not gt_boundary.any():
        inf = np.full(gt_boundary.shape, np.inf)
        rows, cols = np.indices(gt_boundary.shape)
        return inf, rows, cols
    distance, (rows, cols) = ndimage.distance_transform_edt(~gt_boundary, return_indices=True)
    return distance, rows, cols


def pixel_categories(boundary, gt_boundary) -> dict[str, np.ndarray]:
    """bool (H, W) masks ``exact``, ``off_by_one``, ``spurious`` (predicted pixels) and ``missed`` (ground-truth
    pixels) of the module docstring, for a predicted and a ground-truth boundary, both bool (H, W)."""
    boundary, gt_boundary = np.asarray(boundary, bool), np.asarray(gt_boundary, bool)
    return _categories(boundary, gt_boundary, _nearest_ground_truth(gt_boundary)[0])


def _categories(boundary, gt_boundary, distance):
    """`pixel_categories` given ``distance`` (float (H, W)) to the nearest ground-truth boundary pixel."""
    if boundary.any():
        to_predicted = ndimage.distance_transform_edt(~boundary)
    else:
        to_predicted = np.full(boundary.shape, np.inf)
    return {"exact": boundary & (distance == 0),
            "off_by_one": boundary & (distance > 0) & (distance <= NEAR),
            "spurious": boundary & (distance > NEAR),
            "missed": gt_boundary & (to_predicted > NEAR)}


def pixel_errors(boundary, b, e, gt_boundary, gt_e) -> dict:
    """One image's counts: pixels per category (and ``missed``, ``gt``), orientation hits of the ``exact`` and
    ``off_by_one`` pixels (``hits_<category>``), and the b values of each category (``b_<category>``, float
    arrays) for percentiles. ``boundary``/``gt_boundary`` bool (H, W); ``b`` float (H, W); ``e``/``gt_e``
    float (H, W, 4)."""
    boundary, e, gt_boundary, gt_e = _check(boundary, e, gt_boundary, gt_e)
    distance, rows, cols = _nearest_ground_truth(gt_boundary)
    masks = _categories(boundary, gt_boundary, distance)
    out = {"gt": int(gt_boundary.sum()), "missed": int(masks["missed"].sum())}
    for name in CATEGORIES:
        mask = masks[name]
        out[name] = int(mask.sum())
        out[f"b_{name}"] = np.asarray(b)[mask].astype(np.float64)
        if name != "spurious":
            guess = np.argmax(e[mask], axis=-1)
            truth = gt_e[rows[mask], cols[mask]]
            out[f"hits_{name}"] = int((truth[np.arange(len(guess)), guess] > 0).sum())
    return out


def oracle_inputs(boundary, e, gt_boundary, gt_e, repair: str) -> np.ndarray:
    """occ bool (H, W, 4) of O after the oracle ``repair`` (a key of `REPAIRS`):

    ``spurious`` drops the spurious pixels; ``orientation`` gives the exact and off-by-one pixels the ground-truth
    directions of their nearest ground-truth pixel; ``locations`` replaces the predicted pixels by the
    ground-truth ones (their e stays predicted unless ``orientation`` too); ``missed`` adds the missed
    ground-truth pixels (`pixel_categories`) with their true directions, i.e. closes the gaps of the predicted
    boundary and changes nothing else; ``none`` is the prediction itself.
    """
    if repair not in REPAIRS:
        raise ValueError(f"unknown repair {repair!r}; choose one of {sorted(REPAIRS)}")
    boundary, e, gt_boundary, gt_e = _check(boundary, e, gt_boundary, gt_e)
    drop_spurious, true_orientation, true_locations, fill_missed = REPAIRS[repair]
    distance, rows, cols = _nearest_ground_truth(gt_boundary)
    if fill_missed:
        missed = _categories(boundary, gt_boundary, distance)["missed"]
        boundary, e = boundary | missed, np.where(missed[..., None], gt_e, e)
    if true_locations:
        boundary = gt_boundary
    elif drop_spurious:
        boundary = boundary & (distance <= NEAR)
    if true_orientation:
        e = np.where((boundary & (distance <= NEAR))[..., None], gt_e[rows, cols], e)
    return occlusion_set(boundary, e)
