"""``experiments.held_out``: one row per model, CRF option and scene set, with either instance score."""

import json

import pytest
from helpers.cli import usage_error

from experiments import held_out
from oosis_jax.evaluation import failures


def test_rows_for_each_option_and_score(tmp_path, capsys):
    common = ["--checkpoint", "shipped=synthetic", "--scenes", "2", "--sets", "test", "--processes", "1",
              "--lam", "50", "--out", str(tmp_path)]
    held_out.main(common + ["--robustness", "paper", "--robustness", "min_area=30"])
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("set | model | robustness | lam | ") and "| WC | OAIR recall@0.5 |" in printed[0]
    assert printed[1].startswith("test | shipped | paper | 50.0 | ") and printed[2].startswith("test | shipped | min")
    held_out.main(common + ["--robustness", "paper", "--scores", "learned", "--failures"])
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert [(r["robustness"], r["scores"]) for r in rows] == [("paper", "adhoc"), ("min_area=30", "adhoc"),
                                                              ("paper", "learned")]
    assert (tmp_path / "heads_shipped_test.npz").exists()  # the second call reused the cached heads
    first, learned = rows[0], rows[2]
    assert first["WC"] == learned["WC"]  # scores rank instances, they never change them
    assert "instances matched" not in first  # the outcomes only with --failures
    shares = [learned[f"instances {k}"] for k in failures.INSTANCE_OUTCOMES]
    assert sum(shares) == pytest.approx(100.0) and learned["pairs correct"] >= 0


def test_learned_options_need_a_model_that_has_them(tmp_path):
    from oosis_jax import Predictor
    from oosis_jax.inference.predictor import export

    plain = Predictor.from_pretrained("synthetic")
    folder = export(plain.model, plain.config, tmp_path / "plain")
    for key in ("score_model", "join_model"):
        with usage_error(f"no learned {key}"):
            held_out.learned_option(str(folder), key)
        with usage_error(f"no learned {key}"):  # e.g. a training run's folder
            held_out.learned_option(str(tmp_path), key)
    assert held_out.learned_option("synthetic", "score_model") == plain.score_model
    with usage_error("neither a model name nor an existing"):
        held_out.learned_option(str(tmp_path / "typo"), "score_model")


def test_bad_models_and_sets_are_refused_before_any_row_and_a_later_failure_keeps_the_rows(tmp_path, capsys):
    base = ["--scenes", "1", "--processes", "1", "--out", str(tmp_path)]
    with usage_error(r"--checkpoint '/nonexistent' is neither a model name"):  # was a traceback after a row
        held_out.main(["--checkpoint", "synthetic", "--checkpoint", "bad=/nonexistent", "--sets", "test", *base])
    for sets in ("bogus", "test,"):
        with pytest.raises(SystemExit) as stop:
            held_out.main(["--checkpoint", "synthetic", "--sets", sets, *base])
        assert stop.value.code == 2 and "synthetic scenes have no split" in capsys.readouterr().err
    assert not (tmp_path / "rows.jsonl").exists()  # nothing was computed
    from oosis_jax.inference.predictor import model_folder

    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "config.json").write_text((model_folder("synthetic") / "config.json").read_text())
    (damaged / "weights.npz").write_bytes(b"PK\x03\x04 cut short")
    with usage_error(r"cannot load --checkpoint .*damaged: .*weights.npz is not a readable npz"):
        held_out.main(["--checkpoint", "synthetic", "--checkpoint", str(damaged), "--sets", "test", *base])
    (row,) = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert row["model"] == "synthetic"  # the first model's row, written before the second failed


def test_augmentation_gets_its_own_heads_and_rows(tmp_path):
    held_out.main(["--checkpoint", "shipped=synthetic", "--scenes", "2", "--sets", "test", "--processes", "1",
                   "--out", str(tmp_path), "--augmentation", "scales=1.25,flip",
                   "--robustness", "min_area=30,class_split=60"])
    (row,) = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert row["augmentation"] == "scales=1.25,flip" and row["robustness"] == "min_area=30,class_split=60"
    assert (tmp_path / "heads_shipped_test_scales=1.25,flip.npz").exists()


def test_joins_learned_applies_the_model_join_model_to_every_scene(tmp_path, monkeypatch):
    from oosis_jax.inference import predictor

    seen = []
    monkeypatch.setattr(predictor, "join", lambda p, image, model: seen.append(model) or p)
    args = ["--checkpoint", "shipped=synthetic", "--scenes", "2", "--sets", "test", "--processes", "1",
            "--out", str(tmp_path), "--robustness", "min_area=30"]
    held_out.main(args)
    assert seen == []  # the paper's connected components by default
    held_out.main(args + ["--joins", "learned"])
    assert seen == [held_out.learned_option("synthetic", "join_model")] * 2
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert [r["joins"] for r in rows] == ["none", "learned"]


def test_rows_are_strict_json_with_null_for_nan():
    line = held_out.json_line({"set": "test", "accuracy": float("nan"), "WC": 84.1, "pairs correct": float("inf")})
    assert json.loads(line) == {"set": "test", "accuracy": None, "WC": 84.1, "pairs correct": None}
    assert line.endswith("\n") and "NaN" not in line


def test_cached_heads_read_each_array_once(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    stacked = {k: rng.random((3, 4, 5, c), dtype=np.float32) for k, c in (("s", 6), ("e", 4))}
    stacked["b"] = rng.random((3, 4, 5), dtype=np.float32)
    model = tmp_path / "model"  # not a loadable model: the heads must come from the file, never from a network
    model.mkdir()
    (model / "weights.npz").write_bytes(b"weights")
    np.savez_compressed(tmp_path / "heads_m_test.npz", model=held_out.model_stamp(str(model)), **stacked)
    heads = held_out.cached_heads(str(model), "m_test", [{}] * 3, tmp_path)
    for i, h in enumerate(heads):
        for k in ("s", "b", "e"):
            np.testing.assert_array_equal(h[k], stacked[k][i])
    # every scene's arrays are views of one decompressed array per key (not one whole copy per scene)
    assert all(h["s"].base is heads[0]["s"].base for h in heads)


def test_true_heads_replace_the_named_heads_with_the_ground_truth(tmp_path):
    args = ["--checkpoint", "shipped=synthetic", "--scenes", "2", "--sets", "test", "--processes", "1",
            "--out", str(tmp_path), "--augmentation", "scales=1", "--robustness", "min_area=30"]
    held_out.main(args + ["--true-heads", "none", "--true-heads", "b,e"])
    own, true_be = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert (own["true_heads"], true_be["true_heads"]) == ("none", "b,e")
    # the true b is binary: one point on the curve, which P2ORM's AP scores 0 (its ODS would be 1)
    assert true_be["boundary AP"] == 0.0 and own["boundary AP"] > 10.0
    assert true_be["WC"] != own["WC"]


def test_true_heads_refuse_heads_off_the_image_grid_and_unknown_heads(tmp_path):
    args = ["--checkpoint", "shipped=synthetic", "--scenes", "1", "--sets", "test", "--processes", "1",
            "--out", str(tmp_path)]
    with usage_error("without view_grid"):  # the shipped model's own views label on a 2x grid
        held_out.main(args + ["--true-heads", "b"])
    for bad in ("x", "b,b", "b,"):
        with usage_error("distinct heads among s, b, e"):
            held_out.parse_true_heads(bad)
    assert held_out.parse_true_heads("none") == () and held_out.parse_true_heads("s,e") == ("s", "e")


def test_cached_heads_of_other_weights_are_computed_again(tmp_path, capsys):
    # the cache is named by NAME and split only: another model (or a retrained one) under the same NAME used to get
    # the old model's heads, and so its rows
    import os
    import shutil

    from oosis_jax.inference.predictor import model_folder

    model = shutil.copytree(model_folder("synthetic"), tmp_path / "copy")
    args = ["--scenes", "1", "--sets", "test", "--processes", "1", "--robustness", "min_area=30", "--out",
            str(tmp_path)]
    held_out.main(["--checkpoint", f"m={model}"] + args)
    with usage_error("neither a model name"):  # before any work
        held_out.main(["--checkpoint", "m=" + str(tmp_path / "no-such-model")] + args)
    stamp = held_out.model_stamp(str(model))
    os.utime(model / "weights.npz", ns=(1, 1))  # the same folder, exported again
    assert held_out.model_stamp(str(model)) != stamp
    capsys.readouterr()
    held_out.main(["--checkpoint", f"m={model}"] + args)
    assert "made by other weights or for other scenes" in capsys.readouterr().out
    held_out.main(["--checkpoint", str(model)] + args)  # a bare WHAT is named by its last path component
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert [r["model"] for r in rows] == ["m", "m", "copy"] and rows[0]["WC"] == rows[1]["WC"] == rows[2]["WC"]


def test_two_models_of_one_name_are_refused(tmp_path, capsys):
    # two bare paths ending in the same folder name shared one cache file and one row label
    with pytest.raises(SystemExit):
        held_out.main(["--checkpoint", str(tmp_path / "a" / "export"), "--checkpoint", str(tmp_path / "b" / "export"),
                       "--out", str(tmp_path)])
    assert "--checkpoint names ['export'] more than once" in capsys.readouterr().err
    assert held_out.named("m=synthetic") == ("m", "synthetic") and held_out.named("/x/run/") == ("run", "/x/run/")


@pytest.mark.parametrize("option", [["--lam", "nan"], ["--lam", "-5"], ["--robustness", "foo=1"],
                                    ["--augmentation", "bogus"]])
def test_bad_options_are_usage_errors_before_any_work(option, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        held_out.main(["--checkpoint", "synthetic", "--out", str(tmp_path / "out"), *option])
    assert stop.value.code == 2 and option[0] in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
