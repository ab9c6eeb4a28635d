"""data.loading: registry lookup, build-on-first-load, round trip of the synthetic dataset."""

import logging

import numpy as np
import pytest

from data import features, loading, registry
from data.synthetic import make_scene

TINY = dict(num_train=2, num_validation=3, num_test=1, min_height=16, max_height=24, min_width=16, max_width=32)


def test_load_builds_once_and_round_trips(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="data.loading"):
        source = loading.load("synthetic", "validation", tmp_path, **TINY)
    assert "building it now" in caplog.text
    assert len(source) == 3
    for i in range(3):
        example = source[i]
        features.validate_example(example)
        expected = make_scene(int(example["image_id"]), *example["image"].shape[:2])
        np.testing.assert_array_equal(example["instance_map"], expected["instance_map"])
        np.testing.assert_array_equal(example["edges"], expected["edges"])

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="data.loading"):
        again = loading.load("synthetic", "train[:1]", tmp_path, **TINY)  # already prepared: no rebuild
    assert "building" not in caplog.text
    assert len(again) == 1


def test_build_returns_prepared_builder(tmp_path):
    builder = loading.build("synthetic", str(tmp_path), **TINY)
    assert builder.is_prepared()
    assert set(builder.info.splits) == {"train", "validation", "test"}
    assert builder.info.splits["train"].num_examples == 2


def test_unknown_names_and_splits(tmp_path):
    with pytest.raises(ValueError, match="synthetic, kins, cocoa"):
        loading.load("kitti", "train", tmp_path)
    with pytest.raises(ValueError, match="available splits: train, validation, test"):
        loading.load("synthetic", "val", tmp_path, **TINY)
    with pytest.raises(ValueError, match=r"split 'test\[:10%\]' of dataset 'synthetic' selects no example"):
        loading.load("synthetic", "test[:10%]", tmp_path, **TINY)
    with pytest.raises(ValueError, match="data_dir"):
        loading.load("synthetic", "train", None, **TINY)
    for name in ("kins", "cocoa"):  # an unknown setting is named, with the ones there are
        with pytest.raises(ValueError, match=rf"dataset '{name}' has no setting 'bogus'\. .*Settings: ``manual_dir``"):
            loading.load(name, "train", tmp_path, manual_dir=tmp_path, bogus=1)


@pytest.mark.parametrize("name", registry.DATASETS)
def test_registry_convention(name):
    entry = registry.info(name)
    module = loading.dataset_module(name)
    assert isinstance(module.CLASS_NAMES, tuple) and entry.class_names == module.CLASS_NAMES
    assert all(isinstance(c, str) and c for c in entry.class_names) and entry.num_classes == len(entry.class_names)
    res = entry.test_resolution
    assert res is None or (len(res) == 2 and all(isinstance(v, int) and v > 0 for v in res))
    assert {entry.train_split, entry.validation_split, entry.held_out_split} <= {"train", "validation", "test"}
    assert callable(module.builder)


def test_registry_rejects_unknown_dataset():
    with pytest.raises(ValueError, match="choose from synthetic, kins, cocoa"):
        registry.info("coco")


def test_registry_docstring_example_runs():
    import doctest

    result = doctest.testmod(registry)
    assert result.attempted > 0 and result.failed == 0


def test_tfds_noise_is_silenced_and_other_messages_pass(caplog):
    """Issue 13: "Using custom data configuration" and "OpenCV is not installed" describe our own choices and
    were printed in every run; importing data.loading (as every dataset read does) filters them."""
    from absl import logging as absl_logging

    with caplog.at_level(logging.INFO):
        absl_logging.warning("Using custom data configuration: %s", "synthetic/num_train=4")
        absl_logging.warning("OpenCV is not installed. We recommend using OpenCV because it is faster.")
        absl_logging.warning("Variant folder %s has no %s", "/data/kins/update2020/1.0.0", "dataset_info.json")
        absl_logging.warning("a real problem")
        absl_logging.warning("Variant folder %s has no %s", "/data/kins/update2020/1.0.0", "features.json")
        absl_logging.warning("Variant folder %s has invalid version %s", "/data/kins/x", "x")
    assert [r.getMessage() for r in caplog.records] == [  # tfds's other lines about a folder are not ours to hide
        "a real problem", "Variant folder /data/kins/update2020/1.0.0 has no features.json",
        "Variant folder /data/kins/x has invalid version x"]


def test_a_damaged_build_is_named_with_the_folder_to_delete(tmp_path):
    loading.build("synthetic", tmp_path, **TINY)
    (path,) = tmp_path.glob("**/*validation.array_record*")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"dataset 'synthetic' split 'validation' in .*: (example \d+ cannot be read|"
                                         r"cannot be opened).*delete that folder to build it again"):
        source = loading.load("synthetic", "validation", tmp_path, **TINY)
        [source[i] for i in range(len(source))]


def test_a_damaged_or_missing_dataset_info_is_named_with_the_folder_to_delete(tmp_path):
    # a truncated dataset_info.json gave protobuf's ParseError; a missing one an empty list of splits
    import shutil

    loading.build("synthetic", tmp_path / "good", **TINY)
    for damage, message in (("truncate", r"/truncate/oosis_synthetic/.*/dataset_info.json cannot be read"),
                            ("delete", r"the build in .*/delete/oosis_synthetic/\S+ lists no split")):
        shutil.copytree(tmp_path / "good", tmp_path / damage)
        (info_file,) = (tmp_path / damage).glob("**/dataset_info.json")
        if damage == "truncate":
            info_file.write_text(info_file.read_text()[:200])
        else:
            info_file.unlink()
        with pytest.raises(ValueError, match=rf"dataset 'synthetic': .*{message}.*delete (the|that) folder"):
            loading.load("synthetic", "validation", tmp_path / damage, **TINY)


def test_encode_example_checks_the_annotations_before_casting_them_whatever_the_image():
    from data.features import encode_example

    inst = np.ones((4, 6), np.int64)
    inst[:, 3:] = 2**32 + 2  # cast to int32 first, it became id 2 and merged into instance 2
    example = dict(image_id=1, image=np.zeros((4, 6, 3), np.uint8), instance_map=inst, classes=[1, 1],
                   edges=np.array([[1, 2]]))
    with pytest.raises(ValueError, match=r"ids must lie in 0..2"):
        encode_example(example)
    good = dict(example, instance_map=np.minimum(inst, 2))
    for bad, message in ((dict(good, edges=np.array([[1, 40]])), "edges name instances outside 1..2"),
                         (dict(good, edges=np.array([[1, 2, 1], [2, 1, 2]])), r"edges must be an integer \(M, 2\)"),
                         (dict(good, instance_map=good["instance_map"] + 0.7), "must be an integer"),
                         (dict(good, depths=[1.0]), r"depths must have shape \(2,\)")):
        for image in (good["image"], b"encoded bytes: the KINS/COCOA path"):
            with pytest.raises(ValueError, match=message):
                encode_example(dict(bad, image=image))
    assert encode_example(good)["edges"].tolist() == [[1, 2]]


@pytest.mark.parametrize("name, configs", [("kins", "update2020, original"), ("cocoa", "classes, classes_mask_order")])
def test_an_unknown_builder_config_names_the_choices(tmp_path, name, configs):
    """tfds said "Here are 10 BuilderConfigs whose name closely match:" followed by none."""
    with pytest.raises(ValueError, match=f"dataset '{name}' has no config 'bogus'; choose {configs}"):
        loading.load(name, "train", tmp_path, config="bogus")
