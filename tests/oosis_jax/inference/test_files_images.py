"""Reading input images (``oosis_jax.inference.files.read_image``/``image_files``, issue 13): EXIF
orientation, 16-bit greyscale, bad files named, tiny images and stem clashes refused up front; ``check_image``
naming a file name or another non-array object given for an image."""

from pathlib import Path

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


@pytest.mark.parametrize("content, reason", [(b"", r"the file is empty \(0 bytes\)"), (None, "truncated"),
                                             (b"not an image at all", "cannot identify")])
def test_bad_files_are_named_in_the_error(tmp_path, content, reason):
    path = tmp_path / "bad.png"
    if content is None:
        write_truncated_png(path)
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=f"bad.png.*{reason}"):
        prediction_io.read_image(path)


def test_damaged_exif_data_is_named_in_the_error(tmp_path):
    """Two bytes of a JPEG's EXIF block changed (found by fuzzing): PIL's EXIF reader raised struct.error, which
    ended `experiments.predict` with a traceback before the rest of the folder was predicted."""
    stored = np.full((40, 50, 3), 120, np.uint8)
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, "cam" * 10  # orientation, camera maker
    Image.fromarray(stored).save(tmp_path / "bad.jpg", exif=exif.tobytes())
    data = bytearray((tmp_path / "bad.jpg").read_bytes())
    tiff = data.index(b"Exif\x00\x00") + 6  # the EXIF block's TIFF header
    data[tiff + 11], data[tiff + 43] = 9, 128  # the first tag's number, a byte of the maker's text
    (tmp_path / "bad.jpg").write_bytes(data)
    with pytest.raises(ValueError, match="cannot read image .*bad.jpg: required argument is not an integer"):
        prediction_io.read_image(tmp_path / "bad.jpg")


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
    with pytest.raises(ValueError, match=r"^cannot read image .*z.png: the file is empty \(0 bytes\)$"):
        prediction_io.read_image(tmp_path / "z.png")


@pytest.mark.parametrize("image, got", [("x.jpg", r"a str \('x.jpg'\)"),
                                        (Path("x.jpg"), r"a path \(\w*Path\('x.jpg'\)\)")])
def test_a_file_name_given_as_the_image_points_to_read_image(image, got):
    with pytest.raises(ValueError, match=f"^photo is {got}, not an image array: read image files with "
                                         r"oosis_jax\.inference\.files\.read_image$"):
        prediction_io.check_image(image, "photo")


@pytest.mark.parametrize("image, kind", [(None, "NoneType"), (3, "int"), ({"a": 1}, "dict"), (b"\x89PNG", "bytes")])
def test_another_non_array_given_as_the_image_is_named_by_its_type(image, kind):
    with pytest.raises(ValueError, match=rf"^photo must be a uint8 \(H, W, 3\) array, got an object of type {kind}$"):
        prediction_io.check_image(image, "photo")
    with pytest.raises(ValueError, match="photo must be uint8 RGB, got dtype int64"):  # arrays keep their errors
        prediction_io.check_image(np.zeros((2, 2, 3), np.int64), "photo")
    with pytest.raises(ValueError, match=r"photo must have shape \(H, W, 3\), got \(\)"):
        prediction_io.check_image(np.array(3, np.uint8), "photo")
