"""Reading input images (``oosis_jax.inference.files.read_image``/``image_files``, issue 13): EXIF
orientation, 16-bit greyscale, bad files named, tiny images and stem clashes refused up front."""

import numpy as np
import pytest
from helpers.image_files import write_png, write_truncated_png
from PIL import Image

from oosis_jax.inference import files as prediction_io


def test_16_bit_greyscale_is_scaled_not_saturated(tmp_path):
    values = np.array([[0, 257 * 64, 32768, 65535]] * 3, np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    image = prediction_io.read_image(tmp_path / "deep.png")
    assert image.dtype == np.uint8 and image.shape == (3, 4, 3)
    np.testing.assert_array_equal(image[0, :, 0], [0, 64, 128, 255])
    np.testing.assert_array_equal(image[..., 0], image[..., 2])


def test_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((40, 80, 3), np.uint8)
    stored[:20, :20] = (255, 0, 0)  # red block at the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(stored).save(tmp_path / "photo.jpg", exif=exif, quality=95)
    image = prediction_io.read_image(tmp_path / "photo.jpg")
    assert image.shape == (80, 40, 3)  # displayed upright: portrait
    assert image[5:15, 25:35, 0].min() > 200 and image[5:15, 5:15, 0].max() < 50  # now top-right


@pytest.mark.parametrize("content, reason", [(b"", "cannot identify"), (None, "truncated"),
                                             (b"not an image at all", "cannot identify")])
def test_bad_files_are_named_in_the_error(tmp_path, content, reason):
    path = tmp_path / "bad.png"
    if content is None:
        write_truncated_png(path)
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=f"bad.png.*{reason}"):
        prediction_io.read_image(path)


def test_an_image_of_one_row_is_an_image(tmp_path):
    write_png(tmp_path / "line.png", shape=(1, 9, 3))
    assert prediction_io.read_image(tmp_path / "line.png").shape == (1, 9, 3)


def test_image_files_raise_or_collect_twins_by_file_name(tmp_path):
    write_png(tmp_path / "a.png")
    write_png(tmp_path / "x.png")
    write_png(tmp_path / "x.jpg")
    (tmp_path / "z.png").write_bytes(b"")
    with pytest.raises(ValueError, match="x.jpg and x.png would write the same outputs"):
        prediction_io.image_files(tmp_path)
    failures = []
    assert [path.name for path in prediction_io.image_files(tmp_path, failures)] == ["a.png", "z.png"]
    assert [name for name, _ in failures] == ["x.jpg", "x.png"] and "rename one" in failures[0][1]
    with pytest.raises(ValueError, match="cannot read image"):
        prediction_io.read_image(tmp_path / "z.png")
