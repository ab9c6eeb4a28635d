"""COCOA readers (regions format, _with_classes variant, their join) and tfds builder on fixture files."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import PIL.Image
import pytest
from helpers.annotation_files import box, write_image
from helpers.cocoa_files import IMAGE_IDS, H, W, classes_file, prepare, regions_file

import data.cocoa as cocoa
from data.annotations_order import OcclusionCycleWarning, OrderDisagreementWarning
from data.targets import order_labels

def _with_warnings(function):
    """``function()`` and the set of warning categories it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = function()
    return result, {w.category for w in caught}


def test_regions_format_stuff_cycles_and_disagreement(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = list(cocoa.examples(regions_file(tmp_path), tmp_path / "train2014"))
    messages = [(w.category, str(w.message)) for w in caught]
    assert (OrderDisagreementWarning, "image 100: the annotation says 3 occludes 1, the masks say the opposite "
            "(12 vs 0 pixels); keeping the annotated order") in messages
    assert any(c is OcclusionCycleWarning and "image 100: occlusion cycle 1 -> 2 -> 3 -> 1" in m
               and "dropping the weakest relation 3 occludes 1" in m for c, m in messages)
    assert [e["image_id"] for e in out] == list(IMAGE_IDS)
    pinwheel, empty, pair = out
    assert pinwheel["format"] == "regions" and pinwheel["region_numbers"].tolist() == [1, 2, 3]
    assert pinwheel["classes"].tolist() == [cocoa.UNLABELLED] * 3
    assert pinwheel["edges"].tolist() == [[1, 2], [2, 3]]
    inst = pinwheel["instance_map"]
    assert inst[2, 2] == 1 and inst[2, 8] == 2 and inst[7, 5] == 3
    assert (inst[:5, 10:] == 0).all()  # only the stuff region covers it: background
    assert not empty["instance_map"].any() and empty["edges"].shape == (0, 2)
    assert pair["edges"].shape == (0, 2) and set(np.unique(pair["instance_map"])) == {1, 2}
    order_labels(inst, pinwheel["edges"])


def test_classes_variant_orders_from_masks(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the masks alone raise no cycle and no disagreement here
        out = list(cocoa.examples(classes_file(tmp_path), tmp_path / "train2014"))
    scene = out[0]
    assert scene["format"] == "classes" and scene["annotation_ids"].tolist() == [1003, 1001, 1002, 1004]
    assert scene["classes"].tolist() == [67, 1, 62, 18]
    # 1001 | 1002 touch without amodal overlap; 1001 and 1002 cover part of the table's amodal box.
    assert scene["edges"].tolist() == [[2, 1], [3, 1], [3, 4]]
    assert scene["instance_map"][1, 11] == 4 and scene["instance_map"][1, 8] == 3
    assert not out[1]["instance_map"].any() and out[2]["edges"].shape == (0, 2)


def test_classes_variant_joined_with_regions(tmp_path):
    scene, caught = _with_warnings(
        lambda: next(cocoa.examples(classes_file(tmp_path), tmp_path / "train2014", regions_file(tmp_path))))
    assert caught == {OcclusionCycleWarning, OrderDisagreementWarning}
    # Matched pairs take the regions' constraints (cycle broken as above), the dog keeps its mask order.
    assert scene["edges"].tolist() == [[2, 3], [3, 1], [3, 4]]
    order_labels(scene["instance_map"], scene["edges"])


def test_join_leaves_objects_below_the_iou_threshold_to_their_masks(tmp_path):
    regions, classes = regions_file(tmp_path), classes_file(tmp_path)
    content = json.loads(regions.read_text())
    content["annotations"][1]["regions"][1]["segmentation"] = box(0, 3, 6, 10)  # chair region: IoU 0.6
    regions.write_text(json.dumps(content))
    with pytest.warns(OrderDisagreementWarning, match="image 100: the annotation says 1003 occludes 1001"):
        joined = next(cocoa.examples(classes, tmp_path / "train2014", regions, min_iou=0.9))
    # Only cat and table match: their pair takes the annotated 3-1; the chair's pairs come from masks.
    assert joined["edges"].tolist() == [[1, 2], [3, 1], [3, 4]]
    rejoined, caught = _with_warnings(
        lambda: next(cocoa.examples(classes, tmp_path / "train2014", regions, min_iou=0.5)))
    assert caught == {OcclusionCycleWarning, OrderDisagreementWarning}
    assert rejoined["edges"].tolist() == [[2, 3], [3, 1], [3, 4]]
    for bad in (0.0, "0.5", True):
        with pytest.raises(ValueError, match="min_iou must be a number in"):
            next(cocoa.examples(classes, tmp_path / "train2014", regions, min_iou=bad))


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda c: c["annotations"][1].update(depth_constraint="1-9"), "names a region outside 1..4"),
        (lambda c: c["annotations"][1].update(depth_constraint="1>2"), "malformed depth_constraint entry '1>2'"),
        (lambda c: c["annotations"][1].update(depth_constraint="1-\u00b2"), "malformed depth_constraint entry"),
        (lambda c: c["annotations"][1]["regions"][0].update(isStuff="false"), "region 1: isStuff must be 0, 1"),
        (lambda c: c["annotations"][1]["regions"][0].pop("segmentation"), r"region 1: missing key\(s\)"),
        (lambda c: c["annotations"][1]["regions"][2]["visible_mask"].update(size=[W, H]), "differs from the image"),
        (lambda c: c["annotations"][1]["regions"][0].update(segmentation=[0, 0, 1, float("nan"), 2, 2]), "non-finite"),
        (lambda c: c["annotations"][0].update(image_id=7), "image_id 7 is not in the file's images"),
        (lambda c: [a.pop("regions") for a in c["annotations"]], "not a COCOA annotation file"),
        (lambda c: c["annotations"][0].pop("regions"), r"missing key\(s\) \['regions'\]"),
    ],
)
def test_invalid_regions_raise_clear_errors(tmp_path, mutate, match):
    path = regions_file(tmp_path)
    content = json.loads(path.read_text())
    mutate(content)
    path.write_text(json.dumps(content, allow_nan=True))
    with pytest.raises(ValueError, match=match):
        list(cocoa.examples(path, tmp_path / "train2014"))


def test_invalid_classes_inputs_raise_clear_errors(tmp_path):
    path = classes_file(tmp_path)
    content = json.loads(path.read_text())
    content["annotations"][1]["category_id"] = 91
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match="annotation 1001: unknown category_id 91"):
        list(cocoa.examples(path, tmp_path / "train2014"))
    with pytest.raises(ValueError, match="is a regions file itself"):  # at the call: a whole-file problem
        cocoa.examples(regions_file(tmp_path), tmp_path / "train2014", regions_file(tmp_path))
    regions = regions_file(tmp_path)
    (tmp_path / "train2014" / "COCO_train2014_000000000101.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="image 101: file .*000000000101.jpg not found"):
        _with_warnings(lambda: list(cocoa.examples(regions, tmp_path / "train2014")))  # 100 is intact


def test_with_skipped_a_bad_image_is_left_out_and_the_others_follow(tmp_path):
    path = classes_file(tmp_path)
    content = json.loads(path.read_text())
    content["annotations"][1]["category_id"] = 91  # an annotation of image 100
    path.write_text(json.dumps(content))
    (tmp_path / "train2014" / "COCO_train2014_000000000101.jpg").unlink()
    skipped = []
    out, caught = _with_warnings(lambda: list(cocoa.examples(path, tmp_path / "train2014", skipped=skipped)))
    assert [e["image_id"] for e in out] == [i for i in IMAGE_IDS if i not in (100, 101)] and UserWarning in caught
    assert [i for i, _ in skipped] == [100, 101] and "unknown category_id 91" in skipped[0][1]


def test_a_duplicate_annotation_or_a_size_the_regions_file_contradicts_costs_only_its_image(tmp_path):
    path, regions = classes_file(tmp_path), regions_file(tmp_path)
    content = json.loads(path.read_text())
    content["annotations"].append(dict(content["annotations"][1]))  # annotation 1001 of image 100 twice
    path.write_text(json.dumps(content))
    region_content = json.loads(regions.read_text())
    region_content["images"][1]["width"] = W + 1  # image 101
    regions.write_text(json.dumps(region_content))
    skipped = []
    out, _ = _with_warnings(lambda: list(cocoa.examples(path, tmp_path / "train2014", regions, skipped=skipped)))
    assert [e["image_id"] for e in out] == [i for i in IMAGE_IDS if i not in (100, 101)]
    assert [i for i, _ in skipped] == [100, 101] and "duplicate annotation id 1001" in skipped[0][1]
    assert f"image 101 is {W + 1}x{H} (width x height) there, {W}x{H} in" in skipped[1][1]
    assert skipped[1][1].endswith(f"000000000101.jpg is {W}x{H}")  # the image file says which file is wrong


def test_a_bad_image_entry_of_the_regions_file_costs_only_its_image(tmp_path):
    """Without its regions an image would silently have no order: it is left out, once, naming the file."""
    path, regions = classes_file(tmp_path), regions_file(tmp_path)
    region_content = json.loads(regions.read_text())
    region_content["images"][0]["height"] = 0  # image 100
    region_content["images"].append(dict(region_content["images"][1]))  # image 101 listed twice
    region_content["annotations"].append({"image_id": 555, "regions": [], "depth_constraint": ""})
    region_content["images"].append(dict(region_content["images"][2], id="102"))  # an id that names no image
    regions.write_text(json.dumps(region_content))
    skipped = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = list(cocoa.examples(path, tmp_path / "train2014", regions, skipped=skipped))
    assert [e["image_id"] for e in out] == [i for i in IMAGE_IDS if i not in (100, 101)]
    assert [i for i, _ in skipped] == [100, 101]
    assert "empty image (height=0" in skipped[0][1] and "duplicate image id 101" in skipped[1][1]
    assert all(str(regions) in message for _, message in skipped)
    left_out = [w for w in caught if "left out of the dataset" in str(w.message)]
    assert len(left_out) == 2 and any("image_id 555" in str(w.message) for w in caught)
    assert any("gets no order from the regions file" in str(w.message) for w in caught)
    with pytest.raises(ValueError, match="empty image"):
        list(cocoa.examples(path, tmp_path / "train2014", regions))


@pytest.mark.parametrize("config, with_regions", [("classes", True), ("classes_mask_order", False)])
def test_builder_round_trip(tmp_path, config, with_regions):
    prepare(tmp_path, with_regions)
    builder = cocoa.builder(tmp_path / "tfds", manual_dir=tmp_path, config=config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OcclusionCycleWarning)
        warnings.simplefilter("ignore", OrderDisagreementWarning)
        builder.download_and_prepare()
        regions = tmp_path / "COCO_amodal_val2014.json" if with_regions else None
        expected = {e["image_id"]: e for e in cocoa.examples(
            tmp_path / "COCO_amodal_val2014_with_classes.json", tmp_path / "val2014", regions)}
    source = builder.as_data_source("validation")
    assert len(source) == len(IMAGE_IDS) and len(builder.as_data_source("train")) == len(IMAGE_IDS)
    for example in source:
        want = expected[int(example["image_id"])]
        np.testing.assert_array_equal(example["image"], write_image(tmp_path / "x.jpg", H, W, seed=IMAGE_IDS.index(
            int(example["image_id"])), fmt="JPEG"))
        np.testing.assert_array_equal(example["instance_map"], want["instance_map"])
        np.testing.assert_array_equal(example["edges"], want["edges"].reshape(-1, 2))
        names = [cocoa.CLASS_NAMES[k - 1] for k in example["classes"]]
        assert names == [{1: "person", 18: "dog", 62: "chair", 67: "dining table"}[c] for c in want["classes"]]
        assert np.isnan(example["depths"]).all()


def test_loading_a_build_that_is_not_there_says_where_and_how_to_build_it(tmp_path):
    """A mistyped --data-dir, or a folder built with another config: one message naming the folder, the
    configs built there and the build command, and nothing written (tfds used to start a build that could
    only fail for want of the download, creating folders in the mistyped path)."""
    from data import loading

    with pytest.raises(ValueError) as empty:
        loading.load("cocoa", "validation", tmp_path / "nothere")
    message = str(empty.value)
    assert f"dataset 'cocoa' (config 'classes') is not built in {tmp_path / 'nothere'}; build it" in message
    assert f"python -m data.cocoa --manual-dir DOWNLOAD --data-dir {tmp_path / 'nothere'} --config classes" in message
    assert not (tmp_path / "nothere").exists()
    prepare(tmp_path, with_regions=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OcclusionCycleWarning)
        cocoa.builder(tmp_path / "tfds", manual_dir=tmp_path, config="classes_mask_order").download_and_prepare()
    (tmp_path / "tfds" / "cocoa" / ".DS_Store").write_text("")  # a stray file beside the config folders
    with pytest.raises(ValueError, match=r"holds the config\(s\) classes_mask_order \(choose one"):
        loading.load("cocoa", "validation", tmp_path / "tfds")
    assert len(loading.load("cocoa", "validation", tmp_path / "tfds", config="classes_mask_order")) == len(IMAGE_IDS)


def test_builder_names_missing_regions_files(tmp_path):
    prepare(tmp_path, with_regions=False)
    with pytest.raises(FileNotFoundError, match=r"COCO_amodal_train2014\.json.*COCO_amodal_val2014\.json"):
        cocoa.builder(tmp_path / "tfds", manual_dir=tmp_path).download_and_prepare()


def test_a_cmyk_jpeg_is_stored_as_rgb_close_to_its_pixels(tmp_path):
    from data.annotations_tfds import image_bytes

    blocks = np.random.default_rng(1).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    pixels = np.kron(blocks, np.ones((4, 4, 1), np.uint8))  # 16x16, flat 4x4 blocks of random colours
    PIL.Image.fromarray(pixels).convert("CMYK").save(tmp_path / "cmyk.jpg", format="JPEG")
    want = np.asarray(PIL.Image.open(tmp_path / "cmyk.jpg").convert("RGB")).astype(int)
    stored = np.asarray(PIL.Image.open(io.BytesIO(image_bytes(str(tmp_path / "cmyk.jpg"), 16, 16, 5, "jpeg"))))
    assert stored.shape == (16, 16, 3) and np.abs(stored - want).max() <= 12  # PIL's default re-encoding: 116


def test_a_regions_file_of_none_of_the_images_is_refused(tmp_path):
    """The other split's regions file shares no image id with the classes file: every image then took its order
    from its masks, with no warning (the annotated order silently unused)."""
    regions = regions_file(tmp_path)
    content = json.loads(regions.read_text())
    for record in content["images"]:
        record["id"] += 10_000
    for record in content["annotations"]:
        record["image_id"] += 10_000
    regions.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=r"lists none of the \d+ images of .*: is it the regions file of another"):
        cocoa.examples(classes_file(tmp_path), tmp_path / "train2014", regions, skipped=[])


def test_a_16_bit_rgb_png_is_stored_as_8_bit_whatever_decodes_it(tmp_path):
    """PIL reads a 48-bit PNG as 8-bit RGB, OpenCV as uint16: stored as it was, its pixels depended on the
    decoder present where the dataset is read. It is encoded again as an 8-bit PNG now."""
    import struct
    import zlib

    from data.annotations_tfds import image_bytes

    pixels = (np.arange(4 * 5 * 3, dtype=np.uint16).reshape(4, 5, 3) * 1000).astype(">u2")
    rows = b"".join(b"\0" + row.tobytes() for row in pixels)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 5, 4, 16, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    (tmp_path / "deep.png").write_bytes(png)
    stored = image_bytes(str(tmp_path / "deep.png"), 4, 5, 3, "png")
    assert stored != png and stored[24] == 8  # 8 bits per channel
    np.testing.assert_array_equal(np.asarray(PIL.Image.open(io.BytesIO(stored))), (pixels >> 8).astype(np.uint8))
    eight = tmp_path / "eight.png"
    PIL.Image.fromarray((pixels >> 8).astype(np.uint8)).save(eight)
    assert image_bytes(str(eight), 4, 5, 3, "png") == eight.read_bytes()  # an 8-bit PNG is kept byte for byte
