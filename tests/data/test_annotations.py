"""The checks of ``data.annotations`` that every COCO-style reader (KINS, COCOA) and the prediction files share."""

import pytest

from data.annotations import group_by_image, image_entries, integer, is_finite_number
from data.masks import segmentation_mask


@pytest.mark.parametrize("value", [10**400, -(10**30), 2**63])
def test_an_integer_beyond_int64_is_named_not_overflowing(value):
    """A JSON integer too large for a float raised a raw OverflowError from the finiteness check."""
    with pytest.raises(ValueError, match=r"images\[0\]\.id: .* is outside the 64-bit integers"):
        integer(value, "images[0].id")
    assert integer(2**63 - 1, "id") == 2**63 - 1 and integer(4.0, "id") == 4


def test_finite_numbers_and_a_coordinate_beyond_the_floats():
    import numpy as np

    assert all(is_finite_number(v) for v in (0, -3, 2.5, np.float32(1), np.int64(7), 10**300))
    assert not any(is_finite_number(v) for v in (10**400, float("nan"), float("inf"), True, "1", None))
    with pytest.raises(ValueError, match="polygon 0 holds non-finite coordinates"):  # was an OverflowError
        segmentation_mask([[0, 0, 10**400, 0, 5, 5]], 8, 8, "annotations[0]")


@pytest.mark.parametrize("image_id", ["\u00b2", "9" * 5000, "1.5", True])
def test_an_image_id_that_names_no_image_as_text_is_ignored_in_a_lenient_read(image_id):
    """Only plain ASCII digits of an int64 name an image: "²" passed isdigit() and 5000 digits int()'s limit,
    and either raised out of the lenient read, sinking the whole file."""
    content = {"images": [{"id": 1, "file_name": "a.png", "height": 4, "width": 4}]}
    images = image_entries(content, "f.json", [])
    with pytest.warns(UserWarning, match="ignored \\(it belongs to no image\\)"):
        grouped = group_by_image([{"id": 5, "image_id": image_id}], images, "f.json", "annotations", [])
    assert grouped == {1: []}


def test_two_image_entries_of_one_file_are_kept_with_a_warning():
    content = {"images": [{"id": i, "file_name": name, "height": 4, "width": 4}
                          for i, name in ((1, "a.png"), (2, "b.png"), (3, "a.png"))]}
    with pytest.warns(UserWarning, match=r"f\.json: images 1, 3 all name the file a\.png"):
        assert [e.image_id for e in image_entries(content, "f.json", [])] == [1, 2, 3]
