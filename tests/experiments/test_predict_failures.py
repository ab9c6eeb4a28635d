"""``experiments.predict --images`` (issue 13): every good image is written while each bad one is reported by
name with the reason, and the exit status is then 1."""

import dataclasses
import json

import numpy as np
import pytest
from helpers.crf_problems import fail_solve_on_width
from helpers.image_files import write_png, write_truncated_png
from helpers.networks import PixelNet
from helpers.cli import usage_error
from PIL import Image

from data.registry import info
from experiments import predict as predict_cli
from oosis_jax.inference.predictor import Predictor
from oosis_jax.training.configs import get_config


@pytest.fixture
def fake_checkpoint(monkeypatch):
    """``Predictor.from_pretrained`` wraps a 1x1-convolution network (the real network's speed is not under
    test)."""
    config = get_config("smoke")
    monkeypatch.setattr(Predictor, "from_pretrained", classmethod(
        lambda cls, name, **options: cls(PixelNet(config.model.num_classes), config, **options)))


def _run(tmp_path, capsys):
    args = ["--checkpoint", "unused", "--images", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
            "--processes", "1"]
    try:
        predict_cli.main(args)
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    return status, capsys.readouterr()


def test_two_files_with_one_stem_are_refused_by_name_not_overwritten(tmp_path, capsys, fake_checkpoint):
    (tmp_path / "in").mkdir()
    write_png(tmp_path / "in" / "x.png")
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(tmp_path / "in" / "x.jpg")
    write_png(tmp_path / "in" / "y.png")
    status, out = _run(tmp_path, capsys)
    assert status == 1 and "wrote 1 predictions" in out.out
    assert "FAILED x.jpg: " in out.err and "FAILED x.png: " in out.err and "rename one" in out.err
    assert sorted(p.name for p in (tmp_path / "out").glob("*.json")) == ["y.json"]


def test_one_bad_image_never_sinks_the_run(tmp_path, capsys, fake_checkpoint):
    folder = tmp_path / "in"
    folder.mkdir()
    write_png(folder / "a_good.png")
    write_png(folder / "b_smallest.png", shape=(2, 2, 3))
    (folder / "c_empty.png").write_bytes(b"")
    write_truncated_png(folder / "d_truncated.png")
    write_png(folder / "e_column.png", shape=(7, 1, 3))
    Image.fromarray(np.full((9, 11), 40000, np.uint16)).save(folder / "f_deep.png")
    status, out = _run(tmp_path, capsys)
    assert status == 1 and "wrote 4 predictions" in out.out
    for name in ("c_empty.png", "d_truncated.png"):
        assert f"FAILED {name}: " in out.err
    assert "2 image(s) failed" in out.err
    written = sorted(p.name for p in (tmp_path / "out").glob("*.json"))
    assert written == ["a_good.json", "b_smallest.json", "e_column.json", "f_deep.json"]
    assert json.loads((tmp_path / "out" / "f_deep.json").read_text())["height"] == 9


def test_a_crf_failure_on_one_image_keeps_the_others(tmp_path, capsys, fake_checkpoint, monkeypatch):
    fail_solve_on_width(monkeypatch, 11)
    (tmp_path / "in").mkdir()
    write_png(tmp_path / "in" / "a.png")
    write_png(tmp_path / "in" / "b.png", shape=(9, 11, 3))
    status, out = _run(tmp_path, capsys)
    assert status == 1 and "wrote 1 predictions" in out.out
    assert "FAILED b.png: CRF failed: ValueError: synthetic CRF failure" in out.err  # its file, as read failures
    assert sorted(p.name for p in (tmp_path / "out").glob("*.json")) == ["a.json"]


def test_an_image_that_now_fails_loses_its_earlier_outputs(tmp_path, capsys, fake_checkpoint, monkeypatch):
    (tmp_path / "in").mkdir()
    for name in ("a", "b", "c"):
        write_png(tmp_path / "in" / f"{name}.png")
    assert _run(tmp_path, capsys)[0] == 0 and len(list((tmp_path / "out").iterdir())) == 12
    write_truncated_png(tmp_path / "in" / "b.png")  # now unreadable
    from oosis_jax import visualize

    real = visualize.instance_overlay

    def full_disk_for_c(image, instance_map):
        if image.shape[1] == 11:
            raise OSError("disk full")
        return real(image, instance_map)

    monkeypatch.setattr(visualize, "instance_overlay", full_disk_for_c)
    write_png(tmp_path / "in" / "c.png", shape=(9, 11, 3))  # now its last picture cannot be written
    status, out = _run(tmp_path, capsys)
    assert status == 1 and "FAILED b.png: cannot read image" in out.err
    assert "FAILED c.png: writing failed: OSError: disk full" in out.err
    # an earlier run's b.json and b_*.png would pass for this run's; c.json is not left beside new pictures
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a.json", "a_boundaries.png", "a_depth.png", "a_overlay.png"]


def test_unusable_folders_are_one_line_errors_before_any_work(tmp_path, capsys, fake_checkpoint):
    with pytest.raises(SystemExit):  # argparse: usage and the message, status 2
        _run_raising(tmp_path, "--images", str(tmp_path / "missing"))
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("no images here")
    with usage_error("predict: no images .* in .*in"):
        _run_raising(tmp_path)
    write_png(tmp_path / "in" / "a.png")
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(SystemExit):
        _run_raising(tmp_path, "--out", str(tmp_path / "taken"))
    assert "is a file, not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # it used to predict everything, then fail each write
        _run_raising(tmp_path, "--out", str(tmp_path / "taken" / "sub"))
    assert exit_.value.code == 2 and "lies under" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the outputs would overwrite or join the inputs
        _run_raising(tmp_path, "--out", str(tmp_path / "in" / "." ))
    assert "--out must differ from --images" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _run_raising(tmp_path, "--tile-size", "64", "--tile-overlap", "64")
    assert "tile overlap 64 must lie in [0, 32]" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # padded to 64x64, a 1x1 image took 4096 network calls (914 s)
        _run_raising(tmp_path, "--tile-size", "1", "--tile-overlap", "0")
    assert exit_.value.code == 2 and "tile size 1 must be >= 64" in capsys.readouterr().err


def test_every_image_format_pillow_reads_is_predicted_and_other_files_are_counted(tmp_path, capsys, fake_checkpoint):
    (tmp_path / "in").mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (8, 10, 3), np.uint8)
    for suffix in (".tif", ".webp", ".gif", ".png"):
        Image.fromarray(pixels).save(tmp_path / "in" / f"x{suffix[1:]}{suffix}")
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    status, captured = _run(tmp_path, capsys)
    assert status == 0 and "wrote 4 predictions" in captured.out
    assert "1 file(s) without an image suffix" in captured.out and "notes.txt" in captured.out
    assert sorted(p.name for p in (tmp_path / "out").glob("*.json")) == ["xgif.json", "xpng.json", "xtif.json",
                                                                        "xwebp.json"]
    (tmp_path / "in" / "sub").mkdir()
    (tmp_path / "in" / "folder.png").mkdir()  # a folder with an image's name is no image either
    status, captured = _run(tmp_path, capsys)
    assert status == 0 and "wrote 4 predictions" in captured.out and "2 subfolder(s) left alone" in captured.out


def test_the_files_name_the_classes_only_of_a_model_that_predicts_its_dataset_s_classes(tmp_path, capsys,
                                                                                        monkeypatch):
    """A model trained on a user's own data (``loop.train(..., sources=...)``, here 2 classes) keeps its
    config's dataset name; its class ids are not that dataset's, so the JSON names no classes."""
    (tmp_path / "in").mkdir()
    write_png(tmp_path / "in" / "x.png")
    config = get_config("smoke")
    for count, names in ((config.model.num_classes, list(info("synthetic").class_names)), (2, None)):
        model = dataclasses.replace(config.model, num_classes=count)
        monkeypatch.setattr(Predictor, "from_pretrained", classmethod(
            lambda cls, name, **options: cls(PixelNet(count), config.replace(model=model), **options)))
        status, _ = _run(tmp_path, capsys)
        assert status == 0 and json.loads((tmp_path / "out" / "x.json").read_text())["class_names"] == names


def test_outputs_that_cannot_be_removed_are_named_and_the_others_still_go(tmp_path):
    from oosis_jax.inference import files as prediction_io

    paths = prediction_io.prediction_paths(tmp_path, "a")
    for path in paths:
        path.write_text("an earlier run's output")
    paths[1].unlink()
    paths[1].mkdir()  # cannot be unlinked
    with pytest.raises(OSError, match=rf"could not remove {paths[1].name} \("):
        prediction_io.remove_prediction(tmp_path, "a")
    assert [p.exists() for p in paths] == [False, True] + [False] * (len(paths) - 2)


def test_a_checkpoint_that_cannot_be_loaded_is_one_line(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    write_png(tmp_path / "in" / "a.png")
    with usage_error(r"predict: cannot load --checkpoint .*nowhere: .*nowhere"):
        predict_cli.main(["--checkpoint", str(tmp_path / "nowhere"), "--images", str(tmp_path / "in"),
                          "--out", str(tmp_path / "out")])


def _run_raising(tmp_path, *changes):
    """``predict.main`` on ``tmp_path/in`` -> ``tmp_path/out``, with ``changes`` (flag, value) replacing those."""
    args = dict(zip(("--images", "--out"), (str(tmp_path / "in"), str(tmp_path / "out"))))
    args.update(zip(changes[::2], changes[1::2]))
    predict_cli.main(["--checkpoint", "unused", "--processes", "1", *(x for kv in args.items() for x in kv)])
