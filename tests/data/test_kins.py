"""KINS readers (both formats) and tfds builder on fixture files written in the public formats."""

from __future__ import annotations

import json
import re

import numpy as np
import PIL.Image
import pytest
from helpers.annotation_files import box, box_mask, rle, write_image, write_json
from helpers.kins_files import CATEGORIES, H, W, original_file

import data.kins as kins
from data.loading import load
from data.masks import rle_mask, segmentation_mask
from data.annotations_order import OrderDisagreementWarning
from data.targets import order_labels

def _update(id_, image_id, category, cluster, rank, visible_box, amodal_box):
    return {"id": id_, "image_id": image_id, "category_id": category, "i_segm": [box(*visible_box)],
            "a_segm": [box(*amodal_box)], "i_bbox": [0, 0, 1, 1], "a_bbox": [0, 0, 1, 1], "oco_id": cluster,
            "ico_id": rank, "area": 1, "iscrowd": 0}


def update_file(tmp_path, name="update_train_2020.json", image_dir="training/image_2"):
    """update_*_2020.json: image 31 (annotated order + a touching object of rank 0), image 32 (order the
    masks contradict, and two objects of equal rank ordered by their masks)."""
    images = [{"id": i, "file_name": f"{i:06d}.png", "height": H, "width": W} for i in (31, 32)]
    for k, entry in enumerate(images):
        write_image(tmp_path / image_dir / entry["file_name"], H, W, seed=10 + k)
    annotations = [
        _update(1, 31, 4, 1, 1, (2, 9, 2, 8), (2, 9, 2, 8)),  # P in front of Q
        _update(2, 31, 4, 1, 2, (2, 9, 8, 12), (2, 9, 5, 12)),
        _update(3, 31, 2, 2, 0, (2, 9, 12, 15), (2, 9, 12, 15)),  # T: touches Q, overlaps nothing
        _update(4, 32, 4, 5, 1, (0, 6, 0, 5), (0, 6, 0, 8)),  # R annotated in front, masks say behind S
        _update(5, 32, 7, 5, 2, (0, 6, 5, 10), (0, 6, 5, 10)),
        _update(6, 32, 1, 6, 1, (7, 12, 0, 4), (7, 12, 0, 7)),  # U, V: same rank, V occludes U by masks
        _update(7, 32, 1, 6, 1, (7, 12, 4, 9), (7, 12, 4, 9)),
    ]
    path = tmp_path / name
    write_json(path, {"images": images, "annotations": annotations, "categories": CATEGORIES})
    return path


def test_original_format_order_painting_and_drops(tmp_path):
    out = list(kins.examples(original_file(tmp_path), tmp_path / "training/image_2"))
    assert [e["image_id"] for e in out] == [7, 8, 9]
    first, empty, overlap = out
    assert first["format"] == "original" and first["image"].endswith("000007.png")
    assert first["annotation_ids"].tolist() == [11, 12, 13, 14]  # E (15) painted over by A: dropped
    assert first["classes"].tolist() == [4, 2, 7, 8]
    assert first["edges"].tolist() == [[2, 1]]  # B occludes A; B and C touch without occlusion
    inst = first["instance_map"]
    assert inst.dtype == np.int32 and inst.shape == (H, W)
    assert inst[5, 4] == 1 and inst[5, 9] == 2 and inst[5, 13] == 3 and inst[0, 0] == 0
    assert inst[11, 1] == 4 and (inst[11, 13:] == 4).all()  # both parts of D, clipped at the border
    assert empty["instance_map"].shape == (H, W) and not empty["instance_map"].any()
    assert empty["classes"].shape == (0,) and empty["edges"].shape == (0, 2)
    assert overlap["edges"].tolist() == [[1, 2]]  # 18 vs 12 pixels of evidence
    assert overlap["instance_map"][4, 7] == 1 and overlap["instance_map"][7, 7] == 2
    for example in out:
        order_labels(example["instance_map"], example["edges"])  # acyclic ground truth


def test_update_2020_format_annotated_order_and_cross_check(tmp_path):
    with pytest.warns(OrderDisagreementWarning, match="image 32: the annotation says 4 occludes 5"):
        first, second = kins.examples(update_file(tmp_path), tmp_path / "training/image_2")
    assert first["format"] == "2020"
    assert first["annotation_ids"].tolist() == [1, 2, 3]
    assert first["edges"].tolist() == [[1, 2]]  # Q and T touch but T has rank 0
    assert first["instance_map"][5, 5] == 1 and first["instance_map"][5, 9] == 2
    assert second["edges"].tolist() == [[1, 2], [4, 3]]  # annotation kept; equal ranks ordered by masks


def test_malformed_json_names_the_file(tmp_path):
    path = tmp_path / "instances_train.json"
    path.write_text('{"images": [')
    with pytest.raises(ValueError, match="instances_train.json: malformed JSON"):
        next(kins.examples(path, tmp_path))


def _mutated(tmp_path, mutate):
    path = original_file(tmp_path)
    content = json.loads(path.read_text())
    mutate(content)
    path.write_text(json.dumps(content))
    return path


@pytest.mark.parametrize(
    "mutate, error, match",
    [
        (lambda c: c["annotations"][2].pop("inmodal_seg"), ValueError, r"missing key\(s\) \['inmodal_seg'\]"),
        (lambda c: c["annotations"][2].update(category_id=42), ValueError, "unknown category_id 42"),
        (lambda c: c["annotations"][2].update(image_id=5), ValueError, "image_id 5 is not in the file's images"),
        (lambda c: c["annotations"][2].update(segmentation=[[1, 2, 3, 4, 5]]), ValueError, "an even number of"),
        (lambda c: c["annotations"][2].update(segmentation=[[1, 2, "a", 4, 5, 6]]), ValueError, "non-numeric"),
        (lambda c: c["annotations"][2]["inmodal_seg"].update(size=[H, W + 1]), ValueError, "differs from the image"),
        (lambda c: c["annotations"][2]["inmodal_seg"].update(counts="0Y" + "~" * 9), ValueError, "RLE"),
        (lambda c: c["annotations"][2]["inmodal_seg"].update(counts=[3, 4]), ValueError, "RLE runs cover 7 pixels"),
        (lambda c: c["images"][0].update(width=0), ValueError, "empty image"),
        (lambda c: c["images"][0].update(width=10**6, height=10**6), ValueError, "larger than any decodable"),
        (lambda c: c["annotations"][2].update(segmentation=[[-1.7e308, 0, 1.7e308, 5, 0, 9]]), ValueError,
         r"beyond \+-1e\+300 px"),
        (lambda c: c["images"][0].update(file_name=None), ValueError, "file_name must be a non-empty string"),
        (lambda c: c["annotations"][1].update(id=c["annotations"][0]["id"], image_id=c["annotations"][0]["image_id"]),
         ValueError, "duplicate annotation id"),
        (lambda c: [a.clear() for a in c["annotations"]], ValueError, "not a KINS annotation file"),
        (lambda c: c["annotations"][0].pop("id"), ValueError, r"image \d+ annotation \(\w+ format\): missing key"),
        (lambda c: c["annotations"][2].pop("category_id"), ValueError, r"annotation \d+ \(\w+ format\): missing key"),
        (lambda c: c["images"][1].update(file_name="missing.png"), FileNotFoundError, "missing.png not found"),
        (lambda c: c["annotations"][2].update(id=2**63), ValueError, "annotation id: 9223372036854775808 is outside"),
        (lambda c: c["images"][0].update(id=-2**63 - 1), ValueError, r"images\[0\]\.id: .* outside the 64-bit"),
    ],
)
def test_invalid_inputs_raise_clear_errors(tmp_path, mutate, error, match):
    path = _mutated(tmp_path, mutate)
    with pytest.raises(error, match=match):
        list(kins.examples(path, tmp_path / "training/image_2"))


def test_a_negative_rank_names_its_annotation(tmp_path):
    path = update_file(tmp_path)
    content = json.loads(path.read_text())
    content["annotations"][1]["ico_id"] = -1
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match="image 31 annotation 2 ico_id: must be >= 0, got -1"):
        list(kins.examples(path, tmp_path / "training/image_2"))


def test_with_skipped_a_bad_image_is_left_out_and_named_and_the_others_follow(tmp_path):
    def mutate(content):
        content["annotations"][2].update(segmentation=[[1, 2, 3, 4, 5]])  # image 7
        content["images"][1].update(file_name="missing.png")  # image 8

    path = _mutated(tmp_path, mutate)
    skipped = []
    with pytest.warns(UserWarning, match="left out of the dataset: .*image 7.*even number"):
        kept = list(kins.examples(path, tmp_path / "training/image_2", skipped=skipped))
    assert [e["image_id"] for e in kept] == [9]
    assert [i for i, _ in skipped] == [7, 8] and "missing.png not found" in skipped[1][1]
    with pytest.raises(ValueError, match="not a KINS annotation file"):  # a whole-file problem raises at the call
        kins.examples(_mutated(tmp_path, lambda c: [a.clear() for a in c["annotations"]]), tmp_path, skipped=[])


def _build(tmp_path, config):
    builder = kins.builder(tmp_path / "tfds", manual_dir=tmp_path, config=config)
    builder.download_and_prepare()
    return builder


def test_builder_round_trip_original(tmp_path):
    original_file(tmp_path)
    original_file(tmp_path, "instances_val.json", "testing/image_2")
    source = load("kins", "test", tmp_path / "tfds", manual_dir=tmp_path, config="original")  # registry entry
    expected = {e["image_id"]: e for e in kins.examples(tmp_path / "instances_val.json", tmp_path / "testing/image_2")}
    assert len(source) == 3 and len(load("kins", "train", tmp_path / "tfds", config="original")) == 3
    for example in source:
        want = expected[int(example["image_id"])]
        assert example["image"].shape == (H, W, 3) and example["image"].dtype == np.uint8
        np.testing.assert_array_equal(example["instance_map"], want["instance_map"])
        np.testing.assert_array_equal(example["edges"], want["edges"].reshape(-1, 2))
        assert example["classes"].tolist() == [kins.CATEGORY_TO_CLASS[c] for c in want["classes"]]
        assert np.isnan(example["depths"]).all() and example["depths"].shape == want["classes"].shape
    assert {int(e["image_id"]) for e in source} == {7, 8, 9}


def test_builder_round_trip_update2020_images(tmp_path):
    update_file(tmp_path)
    update_file(tmp_path, "update_test_2020.json", "testing/image_2")
    with pytest.warns(OrderDisagreementWarning):
        builder = _build(tmp_path, "update2020")
    pixels = write_image(tmp_path / "expected.png", H, W, seed=10)  # the generator of image 31
    first = next(e for e in builder.as_data_source("train") if e["image_id"] == 31)
    np.testing.assert_array_equal(first["image"], pixels)
    assert first["classes"].tolist() == [3, 3, 2]  # car, car, pedestrian as training ids


def test_a_polygon_part_of_no_area_is_left_out_and_named(tmp_path):
    path = original_file(tmp_path)
    reference = {e["image_id"]: e for e in kins.examples(path, tmp_path / "training/image_2")}
    content = json.loads(path.read_text())
    content["annotations"][2]["segmentation"].append([1, 2, 3, 4])  # a part of two points among good ones
    path.write_text(json.dumps(content))
    with pytest.warns(UserWarning, match=rf"image \d+ annotation {content['annotations'][2]['id']} segmentation: "
                                         r"polygon 1 has 2 point\(s\), no area; left out of the mask"):
        examples = {e["image_id"]: e for e in kins.examples(path, tmp_path / "training/image_2")}
    for image_id, example in examples.items():  # the object keeps its other part
        np.testing.assert_array_equal(example["instance_map"], reference[image_id]["instance_map"])


def test_builder_names_missing_files(tmp_path):
    original_file(tmp_path)  # instances_val.json and testing/image_2 are missing
    with pytest.raises(FileNotFoundError, match=r"instances_val\.json.*testing/image_2"):
        _build(tmp_path, "original")
    write_json(tmp_path / "instances_val.json", {"images": [], "annotations": [], "categories": CATEGORIES})
    (tmp_path / "testing/image_2").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"kins test: .*instances_val\.json lists no images"):
        _build(tmp_path, "original")


def test_a_broken_test_split_file_is_refused_before_the_train_split_is_built(tmp_path, monkeypatch):
    original_file(tmp_path)
    original_file(tmp_path, "instances_val.json", "testing/image_2")
    (tmp_path / "instances_val.json").write_text('{"images": [')  # a download cut short
    built = []
    real = kins.reader._example
    monkeypatch.setattr(kins.reader, "_example", lambda *args: built.append(args) or real(*args))
    with pytest.raises(ValueError, match=r"instances_val\.json"):
        _build(tmp_path, "original")
    assert built == []  # no image of the train split was decoded first


def test_builder_leaves_out_bad_images_and_names_them(tmp_path):
    update_file(tmp_path)
    update_file(tmp_path, "update_test_2020.json", "testing/image_2")
    write_image(tmp_path / "training/image_2/000031.png", H + 1, W, seed=0)
    path = tmp_path / "update_test_2020.json"
    content = json.loads(path.read_text())
    content["annotations"][3]["category_id"] = 3  # image 32's rider: listed by KINS, no training id
    path.write_text(json.dumps(content))
    with pytest.warns(UserWarning, match="left out of the dataset: image 31"):
        builder = _build(tmp_path, "update2020")
    assert [e["image_id"] for e in builder.as_data_source("train")] == [32]
    assert [e["image_id"] for e in builder.as_data_source("test")] == [31]
    ((train_id, train_problem),), ((test_id, test_problem),) = builder.skipped["train"], builder.skipped["test"]
    assert train_id == 31 and re.search(r"image 31: .* is 16x13 .* says 16x12", train_problem)
    assert test_id == 32 and re.search(
        r"json: image 32: category id\(s\) \[3\] of annotation\(s\) \[4\] have no training class", test_problem)
    for name in ("000031.png", "000032.png"):  # every image of a split bad: the build fails
        write_image(tmp_path / "training/image_2" / name, H + 1, W, seed=0)
    with pytest.raises(ValueError, match="train: all 2 images are bad"):
        kins.builder(tmp_path / "tfds2", manual_dir=tmp_path, config="update2020").download_and_prepare()
    reused = _build(tmp_path, "update2020")  # the first build, reused: its left-out images are still reported
    assert reused.skipped == builder.skipped


def test_bad_image_entries_and_orphan_annotations_cost_only_their_images(tmp_path):
    def mutate(content):
        content["images"][1]["height"] = "12"  # image 8
        content["images"].append(dict(content["images"][2]))  # image 9 listed twice
        content["images"].append(dict(content["images"][0], height=0))  # image 7 too, the second entry bad
        content["annotations"].append(dict(content["annotations"][0], id=99, image_id=5))  # no such image
    path = _mutated(tmp_path, mutate)
    with pytest.raises(ValueError, match=r"images\[1\]\.height: expected an integer"):  # strict without skipped
        list(kins.examples(path, tmp_path / "training/image_2"))
    skipped = []
    with pytest.warns(UserWarning) as caught:
        kept = list(kins.examples(path, tmp_path / "training/image_2", skipped=skipped))
    assert kept == []
    assert [i for i, _ in skipped] == [8, 7, 7, 9]  # image 8: its id still reads, its height does not
    assert "images[1].height" in skipped[0][1] and "images[4]: empty image" in skipped[1][1]
    assert "duplicate image id 7" in skipped[2][1] and "duplicate image id 9" in skipped[3][1]
    assert any("annotations[7]: image_id 5 is not in the file's images list" in str(w.message) for w in caught)


def test_builder_leaves_out_truncated_images_and_scales_16_bit_grey(tmp_path):
    original_file(tmp_path)
    original_file(tmp_path, "instances_val.json", "testing/image_2")
    png = tmp_path / "training/image_2/000009.png"
    png.write_bytes(png.read_bytes()[:-30])  # cut off before its end: the header still reads
    grey = np.arange(H * W, dtype=np.uint16).reshape(H, W) * 300
    PIL.Image.fromarray(grey).save(tmp_path / "testing/image_2/000007.png")  # 16-bit greyscale
    with pytest.warns(UserWarning, match=r"left out of the dataset: image 9: .*000009\.png is not a readable image"):
        builder = _build(tmp_path, "original")
    assert sorted(int(e["image_id"]) for e in builder.as_data_source("train")) == [7, 8]
    stored = next(e for e in builder.as_data_source("test") if e["image_id"] == 7)["image"]
    np.testing.assert_array_equal(stored, np.repeat(np.round(grey / 257.0).astype(np.uint8)[..., None], 3, -1))


def test_an_empty_visible_mask_is_reported():
    from data.annotations_order import EmptyMaskWarning, compose

    visible = [box_mask((H, W), 0, 4, 0, 4), np.zeros((H, W), bool)]
    with pytest.warns(EmptyMaskWarning, match=r"image 3: object\(s\) \[52\] have an empty visible mask"):
        instance_map, kept, _ = compose((H, W), visible, {}, [51, 52], 3)
    assert kept.tolist() == [0] and instance_map.max() == 1


def test_segmentation_forms_decode_to_the_same_mask():
    mask = box_mask((H, W), 2, 5, 3, 9) | box_mask((H, W), 7, 9, 0, 2)
    forms = [rle(mask), [rle(box_mask((H, W), 2, 5, 3, 9)), rle(box_mask((H, W), 7, 9, 0, 2))],
             [box(2, 5, 3, 9), box(7, 9, 0, 2)]]
    for form in forms:
        np.testing.assert_array_equal(segmentation_mask(form, H, W, "test"), mask)
    with pytest.raises(ValueError, match="test: segmentation must be an RLE object or polygon list, got str"):
        segmentation_mask("0123", H, W, "test")


def test_far_out_polygons_are_clipped_before_rasterising():
    # Unclipped, pycocotools would walk a perimeter of ~1e15 pixels; clipped, the in-image part remains.
    huge = [-1e15, 5.0, 1e15, 5.0, 0.0, 1e15]
    np.testing.assert_array_equal(segmentation_mask([huge], H, W, "test"), box_mask((H, W), 5, H, 0, W))
    near = [[-3.0, -3.0, 30.0, -3.0, 30.0, 4.0, -3.0, 4.0]]  # within reach: passed to pycocotools unchanged
    np.testing.assert_array_equal(segmentation_mask(near, H, W, "test"), box_mask((H, W), 0, 4, 0, W))


def test_compressed_rle_decodes_like_pycocotools_for_random_masks():
    rng = np.random.default_rng(0)
    for trial in range(60):
        height, width = (int(v) for v in rng.integers(1, 40, 2))
        mask = rng.random((height, width)) < rng.uniform(0.05, 0.95)
        if trial % 2:  # long runs: multi-character and negative deltas
            mask = np.zeros((height, width), bool)
            mask[rng.integers(0, height):, rng.integers(0, width):] = True
        np.testing.assert_array_equal(rle_mask(rle(mask), height, width, "test"), mask)


def test_builder_converts_non_rgb_images_and_needs_manual_dir(tmp_path):
    original_file(tmp_path)
    original_file(tmp_path, "instances_val.json", "testing/image_2")
    rgba = np.random.default_rng(3).integers(0, 256, (H, W, 4), dtype=np.uint8)
    PIL.Image.fromarray(rgba, "RGBA").save(tmp_path / "testing/image_2/000008.png")
    with pytest.raises(ValueError, match="building needs manual_dir"):
        kins.builder(tmp_path / "tfds", config="original").download_and_prepare()
    source = _build(tmp_path, "original").as_data_source("test")
    example = next(e for e in source if e["image_id"] == 8)
    np.testing.assert_array_equal(example["image"], rgba[..., :3])


def test_an_image_id_given_as_text_leaves_its_image_out_rather_than_dropping_the_object(tmp_path):
    """An annotation whose image_id is the text "7" names image 7 but is malformed: building image 7 without that
    object would be silently wrong ground truth, so image 7 is left out (named), and the others are built; an
    id that names no listed image is still ignored with a warning."""
    def mutate(content):
        first = content["annotations"][0]
        first["image_id"] = str(first["image_id"])
        content["annotations"].append(dict(first, id=98, image_id="123456"))  # text, but no listed image
    all_ids = [x["image_id"] for x in kins.examples(original_file(tmp_path), tmp_path / "training/image_2")]
    path = _mutated(tmp_path, mutate)
    named = int(json.loads(path.read_text())["annotations"][0]["image_id"])
    skipped = []
    with pytest.warns(UserWarning) as caught:
        kept = [x["image_id"] for x in kins.examples(path, tmp_path / "training/image_2", skipped=skipped)]
    assert kept == [i for i in all_ids if i != named]
    assert [i for i, _ in skipped] == [named]
    assert f"annotations[0].image_id: expected an integer, got '{named}'" in skipped[0][1]
    assert any("ignored (it belongs to no image)" in str(w.message) and "'123456'" in str(w.message) for w in caught)


def test_an_image_that_cannot_be_read_is_left_out_and_the_data_dir_tilde_is_expanded(tmp_path, monkeypatch, capsys):
    """An I/O error on one image (no permission, a failing disk) ended the whole build with a traceback; and
    --data-dir=~/x, which the shell does not expand, built into a folder named '~' under the current one."""
    import builtins

    from data.annotations_tfds import build_main

    original_file(tmp_path)
    original_file(tmp_path, "instances_val.json", "testing/image_2")
    real_open = builtins.open

    def failing(path, *args, **kwargs):
        if str(path).endswith("000008.png"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", failing)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match=r"000008\.png cannot be read \(PermissionError"):
        build_main(kins, ("update2020", "original"), ["--manual-dir", str(tmp_path), "--data-dir=~/tfds",
                                                        "--config", "original"])
    assert "train: left out image 8: " in capsys.readouterr().out
    assert (tmp_path / "home" / "tfds").is_dir() and not (tmp_path / "~").exists()
