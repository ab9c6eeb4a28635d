"""The prediction and evaluation command lines, end to end in ground-truth mode on a tiny synthetic build."""

import dataclasses
import json
import re

import pytest
from helpers.cli import usage_error

from experiments import evaluate, flags, predict
from oosis_jax.inference import files as prediction_io

TINY = ["--dataset", "synthetic", "--dataset-config", "num_train=0", "num_validation=0", "num_test=2",
        "min_height=48", "max_height=48", "min_width=64", "max_width=64", "--limit", "2", "--processes", "1"]


def test_evaluate_gt_writes_results_with_perfect_crf_scores(tmp_path):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "boundary_pr.png").write_bytes(b"an earlier run's plot of a model's boundaries")
    evaluate.main(["--gt", "--data-dir", str(tmp_path / "tfds"), "--out", str(out), *TINY])
    assert not (out / "boundary_pr.png").exists()  # --gt has no boundary maps: the old plot must not stay
    results = json.loads((out / "results.json").read_text())
    assert results["method"] == "solve" and results["model"].startswith("Joint-Labeling (GT")
    assert results["checkpoint"] is None and results["limit"] == 2 and results["dataset_config"]["num_test"] == 2
    with usage_error(r"^evaluate: .*has no split 'bogus'"):  # one line, not a traceback
        evaluate.main(["--gt", "--data-dir", str(tmp_path / "tfds"), "--out", str(out), "--split", "bogus", *TINY])
    with usage_error(r"^evaluate: --dataset-config: "):
        evaluate.main(["--gt", "--data-dir", str(tmp_path / "tfds"), "--out", str(out), *TINY, "--dataset-config",
                       "num_test"])
    for key in ("name", "split", "data_dir", "limit"):  # the loaders' own parameter names: a TypeError traceback
        with usage_error(rf"unknown synthetic config keys \['{key}'\]|has no setting '{key}'"):
            evaluate.main(["--gt", "--data-dir", str(tmp_path / "tfds"), "--out", str(out), *TINY,
                           "--dataset-config", "num_test=2", f"{key}=x"])
    with usage_error(r"synthetic images of at most 16,777,216 pixels, got 100000x100000"):
        evaluate.main(["--gt", "--data-dir", str(tmp_path / "tfds"), "--out", str(out), *TINY, "--dataset-config",
                       "num_test=1", "min_height=8", "max_height=100000", "min_width=8", "max_width=100000"])
    assert results["num_images"] == 2 and results["num_gt_instances"] > 0
    # Ground-truth sigma and O: the CRF recovers the instances up to the ones an occluder cuts in two.
    assert results["weighted_coverage"] > 0.85 and results["cycle_percent"] == 0.0
    assert (out / "results.md").read_text().startswith("# synthetic test")
    assert list(out.glob("*.png")), "no plots written"


def test_predict_gt_writes_one_prediction_per_image(tmp_path, capsys):
    out = tmp_path / "pred"
    predict.main(["--gt", "--data-dir", str(tmp_path / "tfds"), "--out", str(out), "--method", "jump", *TINY])
    from oosis_jax import visualize

    printed = capsys.readouterr().out  # the pictures' keys, which their PNG metadata alone hid from most viewers
    assert f"STEM_depth.png: {visualize.DEPTH_KEY}" in printed and "STEM_overlay.png: instances" in printed
    written = sorted(out.glob("*.json"))
    assert len(written) == 2
    for path in written:
        pred = prediction_io.read_prediction_json(path)
        assert pred["instance_map"].shape == (48, 64)
        count = int(pred["instance_map"].max())
        assert len(pred["classes"]) == len(pred["scores"]) == count
        assert pred["edges"].size == 0 or 1 <= pred["edges"].min() <= pred["edges"].max() <= count
    assert len(list(out.glob("*_depth.png"))) == 2


def test_checkpoint_and_gt_are_exclusive(tmp_path, capsys):
    with pytest.raises(SystemExit):
        evaluate.main(["--gt", "--checkpoint", "x", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):  # it used to be accepted and ignored
        evaluate.main(["--gt", "--max-dist", "0.01", "--out", str(tmp_path)])
    assert "--max-dist sets the boundary metric, which --gt does not compute" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        predict.main(["--checkpoint", str(tmp_path), "--out", str(tmp_path)])  # --images missing


@pytest.mark.parametrize("flag, value, message", [
    ("--limit", "0", "must be >= 1, got 0"), ("--processes", "0", "must be >= 1, got 0"),
    ("--out", "FILE", "is a file, not a folder"), ("--out", "FILE/sub", "FILE, which is a file, not a folder")])
def test_the_common_flags_refuse_bad_values_before_any_work(tmp_path, capsys, flag, value, message):
    (tmp_path / "FILE").write_text("results")
    value = str(tmp_path / value) if value.startswith("FILE") else value
    args = ["--out", str(tmp_path / "out"), flag, value]
    with pytest.raises(SystemExit):
        flags.parser("", "x").parse_args(args)
    assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the CLIs with --checkpoint | --gt
        evaluate.main(["--gt"] + args)
    assert message in capsys.readouterr().err


def test_one_key_value_parser_reads_python_literals_else_strings():
    assert flags.parse_key_values(["num_test=5", "scale=0.5", "name=x", "size=(2, 3)"]) == {
        "num_test": 5, "scale": 0.5, "name": "x", "size": (2, 3)}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        flags.parse_key_values(["num_test"])
    with pytest.warns(UserWarning, match=r"num_test is given twice: num_test=3 replaces num_test=2"):
        assert flags.parse_key_values(["num_test=2", "num_test=3"]) == {"num_test": 3}


def test_evaluate_streams_a_checkpoint_in_chunks_and_names_each_failed_image(tmp_path, monkeypatch, capsys):
    """The network path, one image per chunk: an image whose prediction fails is left out of the results and
    named there and on stderr (exit status 1); the others are evaluated."""
    from helpers.networks import PixelNet

    from oosis_jax import ImageFailure
    from oosis_jax.inference.predictor import Predictor
    from oosis_jax.training.configs import get_config

    config = get_config("smoke")
    monkeypatch.setattr(Predictor, "from_pretrained", classmethod(
        lambda cls, name, **options: cls(PixelNet(config.model.num_classes), config, **options)))
    real = Predictor.predict_iter
    chunk_sizes = []

    def failing_second(self, images, chunk_size=16, progress=True, chunk_progress=None):
        chunk_sizes.append(chunk_size)
        for k, item in enumerate(real(self, images, chunk_size, progress, chunk_progress)):
            yield ImageFailure(k, "CRF failed: ValueError: injected") if k == 1 else item

    monkeypatch.setattr(Predictor, "predict_iter", failing_second)
    out = tmp_path / "eval"
    with pytest.raises(SystemExit, match="1 of 2 images failed"):
        evaluate.main(["--checkpoint", "unused", "--data-dir", str(tmp_path / "tfds"), "--out", str(out),
                       "--chunk-size", "1", *TINY])
    results = json.loads((out / "results.json").read_text())
    assert chunk_sizes == [1] and results["num_images"] == 1 and results["boundaries"] is not None
    assert len(results["failed_images"]) == 1 and "CRF failed: ValueError: injected" in results["failed_images"][0]
    assert "FAILED image " in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate.main(["--gt", "--data-dir", str(tmp_path / "tfds"), "--out", str(out), "--chunk-size", "0", *TINY])
    monkeypatch.setattr(Predictor, "from_pretrained", classmethod(  # a network of another dataset
        lambda cls, name, **options: cls(PixelNet(config.model.num_classes),
                                         config.replace(dataset="kins", data_dir=str(tmp_path)))))
    with usage_error("was trained on 'kins', not on --dataset 'synthetic'"):
        evaluate.main(["--checkpoint", "unused", "--data-dir", str(tmp_path / "tfds"), "--out", str(out), *TINY])
    kins = config.replace(dataset="kins", data_dir=str(tmp_path),
                          model=dataclasses.replace(config.model, num_classes=7))
    monkeypatch.setattr(Predictor, "from_pretrained", classmethod(lambda cls, name, **options: cls(PixelNet(7), kins)))
    with usage_error(r"dataset 'kins' \(config '\w+'\) is not built in"):  # its own, by default
        evaluate.main(["--checkpoint", "unused", "--data-dir", str(tmp_path / "tfds"), "--out", str(out)])
    other = config.replace(model=dataclasses.replace(config.model, num_classes=2))  # trained on a user's own data
    monkeypatch.setattr(Predictor, "from_pretrained", classmethod(
        lambda cls, name, **options: cls(PixelNet(2), other)))
    with usage_error("predicts 2 classes, --dataset 'synthetic' has 5"):
        evaluate.main(["--checkpoint", "unused", "--data-dir", str(tmp_path / "tfds"), "--out", str(out), *TINY])


def test_evaluate_names_an_image_whose_evaluation_fails_and_goes_on(tmp_path, monkeypatch, capsys):
    """A prediction the metrics refuse (here a map of another shape than its ground truth) is left out and named
    like a failed prediction, by the dataset's image id; the other images are evaluated."""
    from helpers.networks import PixelNet

    from oosis_jax.inference.predictor import Predictor
    from oosis_jax.training.configs import get_config

    config = get_config("smoke")
    monkeypatch.setattr(Predictor, "from_pretrained", classmethod(
        lambda cls, name, **options: cls(PixelNet(config.model.num_classes), config, **options)))
    real = Predictor.predict_iter

    def cropping_first(self, images, chunk_size=16, progress=True, chunk_progress=None):
        for k, item in enumerate(real(self, images, chunk_size, progress, chunk_progress)):
            yield dataclasses.replace(item, instance_map=item.instance_map[:-1]) if k == 0 else item

    monkeypatch.setattr(Predictor, "predict_iter", cropping_first)
    out = tmp_path / "eval"
    with pytest.raises(SystemExit, match="1 of 2 images failed"):
        evaluate.main(["--checkpoint", "unused", "--data-dir", str(tmp_path / "tfds"), "--out", str(out), *TINY])
    results = json.loads((out / "results.json").read_text())
    assert results["num_images"] == 1 and len(results["failed_images"]) == 1
    assert re.fullmatch(r"image \d+: evaluation: predicted map \(\d+, \d+\) and ground truth .* differ in shape",
                        results["failed_images"][0]), results["failed_images"]
    assert "FAILED image " in capsys.readouterr().err


@pytest.mark.parametrize("argv, limit, processes", [
    (["--smoke"], 4, 1), (["--smoke", "--processes", "2"], 4, 2), (["--smoke", "--limit", "2"], 2, 1),
    ([], 50, None), (["--limit", "7", "--processes", "3"], 7, 3)])
def test_smoke_caps_the_limit_and_keeps_an_explicit_processes(tmp_path, argv, limit, processes):
    s = flags.setup(flags.parser("", "x").parse_args(["--out", str(tmp_path)] + argv))
    assert (s.limit, s.processes, s.out) == (limit, processes, tmp_path)


@pytest.mark.parametrize("argv, message", [
    (["--checkpoint", "synthetic", "--images", "IN", "--limit", "3"], "--limit does not apply with --checkpoint"),
    (["--checkpoint", "synthetic", "--images", "IN", "--dataset", "synthetic"], "--dataset does not apply with"),
    (["--checkpoint", "synthetic", "--images", "IN", "--data-dir", "x"], "--data-dir does not apply with"),
    (["--gt", "--images", "IN"], "--images does not apply with --gt"),
    (["--gt", "--tile-size", "512"], "--tile-size does not apply with --gt")])
def test_predict_refuses_the_options_of_the_other_mode(tmp_path, capsys, argv, message):
    # they used to be ignored: --limit 3 with --images predicted the whole folder
    (tmp_path / "IN").mkdir()
    argv = [str(tmp_path / x) if x == "IN" else x for x in argv]
    with pytest.raises(SystemExit) as exit_:
        predict.parse_args([*argv, "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


@pytest.fixture
def no_examples(monkeypatch):
    """``evaluate`` fails the test if it reads the dataset: each error below comes before any work."""
    def read(*args, **kwargs):
        raise AssertionError("the dataset was read")

    from data import examples

    monkeypatch.setattr(examples, "split_examples", read)


@pytest.mark.parametrize("argv, message", [
    (["--checkpoint", "synthetic", "--max-dist", "-1"], "argument --max-dist: must be a number > 0, got -1"),
    (["--checkpoint", "synthetic", "--max-dist", "nan"], "must be a number > 0, got nan"),
    (["--checkpoint", "synthetic", "--out", "FILE/sub"], "FILE, which is a file, not a folder"),
    (["--checkpoint", "synthetic", "--tile-size", "8"], "tile size 8 must be >= 64"),
    (["--gt", "--tile-overlap", "3"], "--tile-overlap does not apply with --gt")])
def test_evaluate_refuses_bad_options_at_parse_time(tmp_path, capsys, no_examples, argv, message):
    (tmp_path / "FILE").write_text("not a folder")
    argv = [str(tmp_path / x) if x.startswith("FILE") else x for x in ["--out", str(tmp_path / "out"), *argv]]
    with pytest.raises(SystemExit) as exit_:
        evaluate.main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_evaluate_names_a_checkpoint_it_cannot_load_before_reading_the_dataset(tmp_path, no_examples):
    with usage_error(r"^evaluate: cannot load --checkpoint .*nowhere: .*nowhere"):
        evaluate.main(["--checkpoint", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")])


def test_an_output_folder_is_checked_and_returned_with_home_expanded(tmp_path, monkeypatch):
    """A quoted ``~`` reaches Python unexpanded: the folder checked must be the folder created and written."""
    monkeypatch.setenv("HOME", str(tmp_path))
    assert flags.folder("~/new/sub") == str(tmp_path / "new" / "sub")
    (tmp_path / "file").write_text("x")
    with pytest.raises(Exception, match="lies under .*file, which is a file"):
        flags.folder("~/file/sub")


@pytest.mark.parametrize("refused", ["by permissions", "by the file system"])
def test_an_output_folder_that_cannot_be_written_is_refused_before_any_work(tmp_path, capsys, monkeypatch,
                                                                           no_examples, refused):
    """An immutable or read-only --out (which root's permission checks pass) was found only at the end: evaluate
    computed every image, then lost every number in a results.json traceback."""
    if refused == "by permissions":
        monkeypatch.setattr(flags.os, "access", lambda path, mode: False)
        reason = "permission denied"
    else:
        def no_file(**kwargs):
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(flags.tempfile, "NamedTemporaryFile", no_file)
        reason = "Operation not permitted"
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        evaluate.main(["--checkpoint", "synthetic", "--out", str(out)])
    assert exit_.value.code == 2 and f"--out {out}: cannot write to the folder: {reason}" in capsys.readouterr().err
    with usage_error(f"^boundary_models: --out {out}: cannot write to the folder: {reason}$"):
        flags.setup(flags.parser("x", "boundary_models").parse_args(["--out", str(out)]))


def test_a_writable_output_folder_keeps_no_trace_of_its_check(tmp_path):
    out = tmp_path / "new" / "out"
    assert flags.folder_problem(out) is None and out.is_dir() and list(out.iterdir()) == []


def test_evaluate_defaults_to_the_cores_this_process_may_use(tmp_path, monkeypatch):
    """Without --processes the boundary counts get one worker per core of the process's CPU affinity (as under
    `taskset` or a batch scheduler's binding), not one per core of the machine."""
    seen = []
    real = evaluate.evaluation.Evaluator

    def recording(*args, **kwargs):
        seen.append(kwargs["processes"])
        return real(*args, **{**kwargs, "processes": 1})

    monkeypatch.setattr(evaluate, "usable_cores", lambda: 3)
    monkeypatch.setattr(evaluate.evaluation, "Evaluator", recording)
    tiny = TINY[:TINY.index("--processes")]
    evaluate.main(["--gt", "--data-dir", str(tmp_path / "tfds"), "--out", str(tmp_path / "eval"), *tiny])
    assert seen == [3]


def test_an_unreadable_example_is_named_and_the_others_are_evaluated_and_predicted(tmp_path, capsys):
    """A build with one damaged record (bytes zeroed inside it): evaluate and predict --gt name that example by
    its position, evaluate and write the others, and exit 1; before, the read error ended both runs (evaluate
    wrote no results at all)."""
    from data import loading

    three = ["num_train=0", "num_validation=0", "num_test=3", "min_height=48", "max_height=48", "min_width=64",
             "max_width=64"]
    data_dir = tmp_path / "tfds"
    loading.build("synthetic", data_dir, **{key: int(value) for key, value in (p.split("=") for p in three)})
    (path,) = data_dir.glob("**/*test.array_record*")
    content = bytearray(path.read_bytes())
    starts = [m.start() for m in re.finditer(rb"\x89PNG", content)]  # each record's image
    middle = (starts[1] + starts[2]) // 2
    content[middle:middle + 64] = bytes(64)
    path.write_bytes(bytes(content))
    argv = ["--gt", "--data-dir", str(data_dir), "--dataset", "synthetic", "--dataset-config", *three,
            "--processes", "1"]
    with pytest.raises(SystemExit, match="1 of 3 images failed"):
        evaluate.main([*argv, "--out", str(tmp_path / "eval")])
    assert "CRF on ground truth: 100%" in capsys.readouterr().err  # the bar's total leaves the unreadable one out
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["num_images"] == 2
    (failure,) = results["failed_images"]
    assert re.search(r"example \d cannot be read", failure), failure
    with pytest.raises(SystemExit):
        predict.main([*argv, "--out", str(tmp_path / "pred")])
    assert len(list((tmp_path / "pred").glob("*.json"))) == 2
    err = capsys.readouterr().err
    assert re.search(r"FAILED example \d: .*example \d cannot be read", err) and "CRF on ground truth: 100%" in err
