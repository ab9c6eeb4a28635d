"""CRF-side robustness to imperfect predicted boundaries: options beyond the paper (off by default).

The energy of Eq. (8) trusts every pair of O completely: an activated pair earns ``mu = 100`` while a label
change costs ``lam = 20`` per neighbour pair, so a single spurious boundary pixel inside an object already
pays for a one-pixel instance (4 * 20 < 100), and every short spurious segment becomes a fragment. Six
options make the predicted input and output less brittle; each is measured in RESULTS.md:

- `hysteresis_boundaries`: Canny-style linking of the NMS output. Pixels >= ``high`` seed boundaries;
  pixels >= ``low`` (the paper's threshold 0.1 unless set) are kept only when 8-connected (through kept
  pixels) to a seed.
- ``min_foreground``: an occluder is an instance, so a pair of O whose occluding pixel the semantic head
  calls background (foreground probability ``1 - sigma_p`` below ``min_foreground``) is dropped: boundaries
  the network draws around background clutter then do not cut the background into instances.
- `drop_short_segments`: 8-connected pieces of the thinned boundary with fewer than ``min_pixels`` pixels
  are removed (texture specks, isolated responses).
- `merge_unsupported_instances`: after the CRF, an instance must be enclosed by occlusion boundaries: a
  component whose border pairs (4-neighbour pairs leaving it, image border excluded) are in O in either
  direction for less than a fraction ``min_support`` of them was cut out along texture or noise, not along
  its own occlusion boundary, and joins the neighbour it shares the most unsupported pairs with.
- `merge_small_instances`: after the CRF, a 4-connected component of equal labels smaller than
  ``min_area`` pixels takes the label of the neighbour (background included) it shares the longest border
  with, smallest first, so fragments join the instance or background around them.
- ``class_split`` (`oosis_jax.inference.class_split`): after the CRF, an instance is cut where the semantic
  head's class changes, so touching objects of different classes whose boundary has a gap come apart.
- ``link_gap`` (``crf.instances``' ``gap``): the occlusion graph of Sec. 3.2 joins only 4-neighbouring instances, so a
  seam of a pixel or two (a thin instance the CRF cut along a doubled boundary) leaves two touching objects
  without an edge or path. With ``link_gap = k`` instances at most k pixels apart are neighbours too, the one
  of larger label occluding the other, so the graph stays acyclic.
"""

from __future__ import annotations

import dataclasses
import typing

import numpy as np
from scipy import ndimage

import crf
from oosis_jax.inference.nms import BOUNDARY_THRESHOLD
from oosis_jax.models.config import check_types

EIGHT = np.ones((3, 3), bool)


@dataclasses.dataclass(frozen=True)
class Robustness:
    """Which options `oosis_jax.inference.crf_inputs.predicted_crf_inputs` and the labelling
    (`oosis_jax.inference.instances.label_heads`) apply; all off is the paper.

    ``high``: seed threshold of hysteresis (None = plain threshold, no linking); ``low``: the weak threshold
    of hysteresis, or the plain threshold (None = the paper's 0.1);
    ``min_segment``: minimal boundary piece, pixels (0 keeps all); ``min_foreground``: minimal foreground
    probability of an occluding pixel (0 keeps all); ``min_support``: minimal fraction of an instance's
    border pairs that are in O (0 keeps all); ``min_area``: minimal instance, pixels (0 keeps all);
    ``class_split``: minimal piece, pixels, when instances are cut where the semantic class changes
    (`oosis_jax.inference.class_split`; 0 = no split); ``link_gap``: instances at most this many pixels apart
    get an occlusion edge (``crf.instances``' ``gap``; 0 = only touching ones, the paper).

    The sizes ``min_segment``, ``min_area`` and ``class_split`` count pixels of the grid stage 2 labels on:
    with `oosis_jax.inference.augment.Augmentation`'s ``view_grid`` (the shipped model's views, scale 2) that is
    the views' grid, scale**2 cells per image pixel, and the labelling comes back to the image by
    `oosis_jax.inference.augment.resample_labels` (the label covering most of each pixel), after which pieces
    below ``min_area`` cells' worth of image pixels (``ceil(min_area / scale**2)``) are merged again
    (`oosis_jax.inference.instances.finish`). ``link_gap`` counts pixels of the image: the occlusion graph is
    read from the labelling brought back.
    """

    high: float | None = None
    low: float | None = None
    min_segment: int = 0
    min_foreground: float = 0.0
    min_support: float = 0.0
    min_area: int = 0
    class_split: int = 0
    link_gap: int = 0

    def __post_init__(self):
        check_types(self)  # e.g. min_area=10.0 from JSON is stored as 10; True, NaN or a float link_gap are refused
        for name in ("high", "low"):
            value = getattr(self, name)
            if value is not None and not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must lie in (0, 1] or be None, got {value}")
        if self.high is not None and self.low is not None and self.low > self.high:
            raise ValueError(f"low must not exceed high, got low={self.low}, high={self.high}")
        if self.high is not None and self.low is None and self.high < BOUNDARY_THRESHOLD:
            raise ValueError(f"high={self.high} is below the weak threshold, the paper's {BOUNDARY_THRESHOLD} when "
                             "low is None: set low <= high too")
        for name in ("min_foreground", "min_support"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        for name in ("min_segment", "min_area", "class_split", "link_gap"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def to_text(self) -> str:
        """The inverse of `parse`: ``"paper"`` or the ``KEY=VALUE`` pairs of the options that are on."""
        pairs = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)
                 if getattr(self, f.name) != f.default]
        return ",".join(pairs) or "paper"

    @classmethod
    def parse(cls, text: str) -> "Robustness":
        """``"paper"`` (all off) or comma-separated ``KEY=VALUE`` pairs, e.g. ``"min_area=30,high=0.3"``."""
        if text == "paper":
            return cls()
        types = {name: int if hint is int else float for name, hint in typing.get_type_hints(cls).items()}
        fields = {}
        for pair in text.split(","):
            key, sep, value = pair.partition("=")
            if not sep or key not in types:
                raise ValueError(f"robustness option {pair!r}: expected KEY=VALUE with KEY one of {sorted(types)}")
            if key in fields:
                raise ValueError(f"robustness option {key} is given twice in {text!r}")
            try:
                fields[key] = types[key](value)
            except ValueError as err:
                raise ValueError(f"robustness option {pair!r}: {err}") from err
        return cls(**fields)


def hysteresis_boundaries(thinned: np.ndarray, low: float, high: float) -> np.ndarray:
    """bool (H, W): pixels of the NMS output ``thinned`` (float (H, W)) >= ``low`` that are 8-connected,
    through such pixels, to a pixel >= ``high``."""
    if not 0.0 <= low <= high:
        raise ValueError(f"need 0 <= low <= high, got {low}, {high}")
    weak = thinned >= low
    pieces, count = ndimage.label(weak, structure=EIGHT)
    if count == 0:
        return weak
    seeded = np.zeros(count + 1, bool)
    seeded[np.unique(pieces[thinned >= high])] = True
    seeded[0] = False
    return seeded[pieces]


def drop_short_segments(boundary: np.ndarray, min_pixels: int) -> np.ndarray:
    """bool (H, W): ``boundary`` without its 8-connected pieces of fewer than ``min_pixels`` pixels."""
    if min_pixels <= 1:
        return boundary
    pieces, count = ndimage.label(boundary, structure=EIGHT)
    sizes = np.bincount(pieces.ravel(), minlength=count + 1)
    keep = sizes >= min_pixels
    keep[0] = False
    return keep[pieces]


def merge_small_instances(labels: np.ndarray, min_area: int) -> np.ndarray:
    """int32 (H, W): ``labels`` (occlusion-order labels) where every 4-connected component of equal non-zero
    labels smaller than ``min_area`` pixels has taken the label of the neighbouring region it shares the most
    4-neighbour pairs with (background included; ties go to the lower label), smallest component first.

    A pass merges every small component whose surroundings did not change earlier in the same pass; passes
    repeat until no component is small (a component with no neighbour, i.e. the whole image, is kept).
    """
    labels = np.array(labels, np.int32)
    if min_area <= 1:
        return labels
    cross = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], np.int32)
    while True:
        comp, _ = crf.instances(labels)
        sizes = np.bincount(comp.ravel())
        boxes = ndimage.find_objects(comp)
        small = [c for c in np.argsort(sizes, kind="stable") if c > 0 and sizes[c] < min_area]
        touched = np.zeros(comp.shape, bool)
        merged = 0
        for c in small:
            box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in boxes[c - 1])
            mask = comp[box] == c
            ring = ndimage.binary_dilation(mask) & ~mask
            if not ring.any() or touched[box][ring | mask].any():
                continue
            pairs = ndimage.convolve(mask.astype(np.int32), cross, mode="constant")
            votes = np.bincount(labels[box][ring], weights=pairs[ring])
            labels[box][mask] = int(np.argmax(votes))
            touched[box] |= mask | ring
            merged += 1
        if merged == 0:
            return labels


def _border_pairs(comp: np.ndarray, occ: np.ndarray):
    """Every 4-neighbour pair of pixels in different components: ``(a, b, supported)`` arrays, both
    orientations listed (a pair appears as (a, b) and (b, a)); supported = the pair is in O either way."""
    a_list, b_list, s_list = [], [], []
    for axis, (fwd, back) in ((1, (1, 0)), (0, (3, 2))):  # right/left along columns, bottom/top along rows
        first = comp[:, :-1] if axis == 1 else comp[:-1]
        second = comp[:, 1:] if axis == 1 else comp[1:]
        forward = occ[:, :-1, fwd] if axis == 1 else occ[:-1, :, fwd]
        backward = occ[:, 1:, back] if axis == 1 else occ[1:, :, back]
        differ = first != second
        supported = (forward | backward)[differ]
        a_list += [first[differ], second[differ]]
        b_list += [second[differ], first[differ]]
        s_list += [supported, supported]
    return np.concatenate(a_list), np.concatenate(b_list), np.concatenate(s_list)


def merge_unsupported_instances(labels: np.ndarray, occ: np.ndarray, min_support: float) -> np.ndarray:
    """int32 (H, W): ``labels`` where each 4-connected instance whose border is in O (``occ`` bool
    (H, W, 4), either direction) for less than ``min_support`` of its border pairs took the label of the
    neighbour (background included) it shares the most unsupported pairs with; the least supported
    instance first, one merge per neighbourhood and pass (the background may take several: absorbing an
    instance changes no other instance's border), passes until every instance is supported."""
    labels = np.array(labels, np.int32)
    if min_support <= 0:
        return labels
    while True:
        comp, _ = crf.instances(labels)
        comp = np.where(labels > 0, comp, 0)
        a, b, supported = _border_pairs(comp, occ)
        n = int(comp.max(initial=0)) + 1
        total = np.bincount(a, minlength=n)
        support = np.bincount(a, weights=supported, minlength=n) / np.maximum(total, 1)
        weak = [c for c in np.argsort(support, kind="stable") if c > 0 and total[c] and support[c] < min_support]
        label_of = np.zeros(n, np.int32)
        label_of[comp.ravel()] = labels.ravel()
        new_label, done = label_of.copy(), np.zeros(n, bool)
        merged = 0
        for c in weak:
            mask = (a == c) & ~supported
            neighbours = b[mask] if mask.any() else b[a == c]
            if done[c] or done[neighbours].any():
                continue
            target = np.bincount(neighbours, minlength=n).argmax()
            new_label[c] = label_of[target]  # 0 for the background
            done[c] = True
            done[target] = target > 0
            merged += 1
        labels = new_label[comp]
        if merged == 0:
            return labels
