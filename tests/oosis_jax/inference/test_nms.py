"""Non-maximum suppression thins blurred boundaries to 1-pixel lines (Sec. 3.1)."""

import numpy as np
import pytest
from scipy import ndimage

from oosis_jax.inference import nms


def blurred(line_mask, sigma):
    b = ndimage.gaussian_filter(line_mask.astype(np.float64), sigma)
    return b / b.max()


@pytest.mark.parametrize("orientation", ["vertical", "horizontal", "diagonal", "antidiagonal"])
@pytest.mark.parametrize("sigma", [0.8, 2.0])
def test_blurred_line_becomes_the_one_pixel_line(orientation, sigma):
    line = np.zeros((33, 33), bool)
    if orientation == "vertical":
        line[:, 16] = True
    elif orientation == "horizontal":
        line[11, :] = True
    elif orientation == "diagonal":
        np.fill_diagonal(line, True)
    else:
        np.fill_diagonal(line[:, ::-1], True)
    b = blurred(line, sigma)
    assert (b >= nms.BOUNDARY_THRESHOLD).sum() > 2 * line.sum()  # the blur is several pixels wide
    thin = nms.thin_boundaries(b)
    np.testing.assert_array_equal(thin, line)
    kept = nms.boundary_nms(b)
    np.testing.assert_allclose(kept[line], b[line])  # survivors keep their probability


def test_threshold_discards_weak_boundaries_and_binary_outline_survives():
    outline = np.zeros((30, 30), bool)
    outline[5, 5:25] = outline[24, 5:25] = outline[5:25, 5] = outline[5:25, 24] = True
    b = np.where(outline, 0.05, 0.0)
    b[5, 5:25] = 0.9
    assert nms.thin_boundaries(b).sum() == 20  # only the strong side passes 0.1
    assert nms.thin_boundaries(b, threshold=0.9).sum() == 20  # a probability at the threshold passes it
    np.testing.assert_array_equal(nms.boundary_nms(outline.astype(float)) > 0, outline)


@pytest.mark.parametrize("bad, message", [
    (np.full((4, 4), np.nan), "NaN"),
    (np.full((4, 4), 1.5), r"\[0, 1\]"),
    (np.zeros((4, 4, 1)), "float \\(H, W\\)"),
    (np.zeros((4, 4), np.int32), "float \\(H, W\\)"),
    (np.zeros((0, 4)), "empty"),
])
def test_bad_maps_raise(bad, message):
    with pytest.raises(ValueError, match=message):
        nms.boundary_nms(bad)
