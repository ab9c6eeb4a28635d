"""The model card written by ``experiments.export_model`` states where the weights came from and for how long."""

import dataclasses
import json
import shlex

import pytest
from helpers.cli import usage_error

from experiments import export_model
from oosis_jax.inference.augment import Augmentation
from oosis_jax.inference.robustness import Robustness
from oosis_jax.training.configs import get_config


def test_card_of_a_run_from_scratch_and_of_a_continued_one():
    config = get_config("synthetic_long")
    facts = {"steps": 3000, "minutes": 63.2}
    text = export_model.card("demo", config, facts, "a CPU", "| table |", Robustness(min_area=30), 40.0)
    assert reproduced(text).hardware == "a CPU" and reproduced(text).history == ""
    assert "trained from scratch" in text and "63 minutes on a CPU" in text and "3000 of 3000 steps" in text
    assert '"min_area": 30' in text and "lambda 40" in text and "| table |" in text
    assert "**Instance scores**: the paper's ad-hoc score" in text and "**Instances**: the paper's connected" in text
    assert "--fit-joins" not in text and "--joins learned" not in text
    assert "test-time views `none`" in text and "--augmentation none" in text
    assert "4000 training scenes (120, 160)" in text and "computing in float32 (parameters float32)" in text
    assert "--scenes" not in text and "--fit-scenes" not in text  # the defaults
    built = config.replace(data_dir="/builds", dataset_config=(("num_train", 1000),))
    text = export_model.card("demo", built, facts, "a CPU", "", Robustness(), 40.0)
    assert "the tfds build of its `data_dir` with settings {'num_train': 1000}" in text and "4000" not in text
    short = config.replace(model=dataclasses.replace(config.model, dtype="bfloat16"))
    text = export_model.card("demo", short, {"steps": 6, "minutes": 0.96}, "a CPU", "", Robustness(), 40.0, scenes=2,
                             scores="learned", fit_scenes=8)
    assert "1.0 minutes on a CPU" in text and "computing in bfloat16 (parameters float32)" in text
    assert (reproduced(text).scenes, reproduced(text).fit_scenes, reproduced(text).fit_scores) == (2, 8, True)
    tuned = config.replace(pretrained="runs/earlier/weights.npz", num_steps=1000)
    text = export_model.card("demo", tuned, {"steps": 1000, "minutes": 17.0}, "a CPU", "", Robustness(), 20.0,
                             history="three runs", prior_minutes=156.0, scores="learned on 40 scenes",
                             augmentation=Augmentation(scales=(1.25,), flip=True), joins="pieces joined")
    assert "initialised from `runs/earlier/weights.npz`" in text and "trained from scratch" not in text
    assert "173 minutes (17 in this run, 156 in the earlier runs it continues)" in text
    assert "**Training history**: three runs" in text and "**Instance scores**: learned on 40 scenes." in text
    assert "test-time views `scales=1.25,flip`" in text and "**Instances**: pieces joined." in text
    assert "--fit-joins --fit-scores" in text
    assert "--augmentation scales=1.25,flip --joins learned --scores learned" in text
    # the card's command reproduces it: every option it names parses, with the card's facts
    args = reproduced(text)
    assert (args.hardware, args.prior_minutes, args.lam, args.fit_joins, args.fit_scores) == ("a CPU", 156.0, 20.0,
                                                                                              True, True)
    assert args.history and args.augmentation == Augmentation(scales=(1.25,), flip=True)


def reproduced(card: str):
    """The arguments of the card's "Reproduce" command as `export_model`'s command line reads them."""
    prefix = "Reproduce: `python -m experiments.export_model "
    start = card.index(prefix) + len(prefix)
    return export_model.parser().parse_args(shlex.split(card[start:card.index("`", start)]))


def test_the_shipped_card_s_command_parses():
    card = (export_model.predictor.model_folder("synthetic") / "MODEL_CARD.md").read_text()
    args = reproduced(card)
    assert args.name == "synthetic" and args.fit_joins and args.fit_scores and args.prior_minutes == 627.0
    options = export_model.predictor.exported_options(export_model.predictor.model_folder("synthetic"))
    assert args.augmentation == options["augmentation"]  # the card's views are the folder's


def test_run_facts_of_an_exported_folder(tmp_path):
    # re-exporting a shipped folder with other options keeps the facts of the run that trained it
    folder = tmp_path / "exported"
    folder.mkdir()
    (folder / "weights.npz").write_bytes(b"")  # not read for the facts
    (folder / "config.json").write_text(json.dumps({"export": {"run": {"steps": 3000, "minutes": 51.0}}}))
    assert export_model.run_facts(folder) == {"steps": 3000, "minutes": 51.0}
    (folder / "config.json").write_text(json.dumps({"export": {}}))
    with pytest.raises(ValueError, match="records no steps and minutes of the run its weights come from"):
        export_model.run_facts(folder)
    (folder / "weights.npz").unlink()
    with pytest.raises(ValueError, match="neither a training work directory"):
        export_model.run_facts(folder)
    assert export_model.run_facts(export_model.predictor.model_folder("synthetic"))["steps"] == 3000


def test_run_facts_of_a_run_stop_at_the_exported_step(tmp_path):
    # a damaged newest checkpoint makes the exported weights an older step's: the card states that step and the
    # minutes up to it (gaps over 10 minutes, pauses between sessions, not counted)
    (tmp_path / "metrics.jsonl").write_text("".join(
        json.dumps({"step": step, "time": time, "loss": 1.0}) + "\n"
        for step, time in ((100, 0.0), (200, 60.0), (300, 4000.0), (400, 4090.0), (500, 4210.0))))
    assert export_model.run_facts(tmp_path, 400) == {"steps": 400, "minutes": 2.5}
    assert export_model.run_facts(tmp_path, 200) == {"steps": 200, "minutes": 1.0}
    with open(tmp_path / "metrics.jsonl", "a") as f:  # what a kill while logging leaves: it was refused
        f.write('{"step": 600, "ti')
    assert export_model.run_facts(tmp_path, 400) == {"steps": 400, "minutes": 2.5}
    with pytest.raises(ValueError, match="say which checkpoint step"):
        export_model.run_facts(tmp_path)


def test_a_re_exported_folder_drops_its_old_learned_score_and_joins(tmp_path):
    # fit_score_model reads the ad-hoc score as a feature: predictions already ranked by the folder's learned
    # score would fit a model that ranks nothing at prediction time (mask mAP 43 -> 20 on the shipped model);
    # and a join model of an earlier version's features cannot be loaded, yet the folder must be refittable
    from helpers.networks import quick_pspnet
    from oosis_jax.inference.joining import JOIN_FEATURES
    from oosis_jax.inference.predictor import export
    from oosis_jax.inference.scoring import FEATURES, ScoreModel

    config = get_config("smoke")
    k, f = len(FEATURES), len(JOIN_FEATURES)
    score = ScoreModel(mean=(0.0,) * k, scale=(1.0,) * k, weights=(1.0,) * k, bias=0.0)
    products = f + f * (f + 1) // 2
    old_joins = {"mean": [0.0] * products, "scale": [1.0] * products, "weights": [0.0] * products, "bias": 0.0,
                 "threshold": 0.5}  # as exported before the features were named
    folder = export(quick_pspnet(config.model), config, tmp_path / "shipped",
                    extra={"score_model": score.to_dict(), "run": {"steps": 10, "minutes": 1.0}})
    assert export_model.predictor.Predictor.from_pretrained(folder).score_model is not None
    values = json.loads((folder / "config.json").read_text())
    values["export"]["join_model"] = old_joins
    (folder / "config.json").write_text(json.dumps(values))
    with pytest.raises(ValueError, match="other features"):
        export_model.predictor.Predictor.from_pretrained(folder)
    assert export_model.predictor.Predictor.from_pretrained(folder, join_model=None).join_model is None
    pred, facts = export_model.loaded_for_export(folder, Robustness(min_area=5), 30.0, Augmentation(flip=True))
    assert facts == {"steps": 10, "minutes": 1.0}
    assert pred.score_model is None and pred.join_model is None
    assert pred.lam == 30.0 and pred.augmentation == Augmentation(flip=True)


@pytest.mark.parametrize("flag, value, message", [
    ("--lam", "nan", "must be a number >= 0, got nan"), ("--lam", "-5", "must be a number >= 0, got -5"),
    ("--prior-minutes", "-1", "must be a number >= 0"),
    ("--robustness", "foo=1", "robustness option 'foo=1': expected KEY=VALUE with KEY one of"),
    ("--robustness", "high=2", "high must lie in (0, 1]"),
    ("--augmentation", "bogus", "augmentation item 'bogus': expected scales="),
    ("--name", "../elsewhere", "'../elsewhere' is not a model name")])
def test_bad_options_are_one_line_usage_errors(capsys, flag, value, message):
    with pytest.raises(SystemExit) as exit_:  # each used to end in a traceback, some after the held-out table
        export_model.main(["--workdir", "synthetic", "--name", "mine", "--hardware", "x", flag, value])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"argument {flag}: {message}" in err and "Traceback" not in err


def test_a_missing_or_damaged_workdir_is_one_line(tmp_path):
    with usage_error(r"^export_model: cannot load --workdir .*nowhere: .*neither a training"):
        export_model.main(["--workdir", str(tmp_path / "nowhere"), "--name", "mine", "--hardware", "x"])
    shipped = export_model.predictor.model_folder("synthetic") / "config.json"
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "config.json").write_text(shipped.read_text())
    (tmp_path / "damaged" / "weights.npz").write_bytes(b"not a zip file")
    with usage_error(r"^export_model: cannot load --workdir .*damaged: .*weights.npz"):
        export_model.main(["--workdir", str(tmp_path / "damaged"), "--name", "mine", "--hardware", "x"])
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)  # a run whose metrics.jsonl is gone
    with usage_error(r"run is a training work directory without its metrics.jsonl, from which the model card's"):
        export_model.main(["--workdir", str(tmp_path / "run"), "--name", "mine", "--hardware", "x"])
    (tmp_path / "bare").mkdir()  # Predictor.export without the run's facts
    for name in ("config.json", "weights.npz"):
        (tmp_path / "bare" / name).write_bytes((shipped.parent / name).read_bytes())
    config = json.loads(shipped.read_text())
    del config["export"]["run"]
    (tmp_path / "bare" / "config.json").write_text(json.dumps(config))
    with usage_error(r"bare/config.json records no steps and minutes of the run its weights come from"):
        export_model.main(["--workdir", str(tmp_path / "bare"), "--name", "mine", "--hardware", "x"])


def test_the_name_is_required_and_an_unwritable_weights_folder_is_one_line_before_any_work(tmp_path, monkeypatch,
                                                                                           capsys):
    """Without --name an export replaced the shipped model (the default was 'synthetic'); a read-only weights
    folder (an installed package) failed with a traceback after the held-out table's minutes."""
    with pytest.raises(SystemExit) as exit_:
        export_model.main(["--workdir", "synthetic", "--hardware", "x"])
    assert exit_.value.code == 2 and "the following arguments are required: --name" in capsys.readouterr().err
    monkeypatch.setattr(export_model.predictor, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(export_model, "loaded_for_export", lambda *args: pytest.fail("worked before the check"))
    (tmp_path / "afile").write_text("")
    with usage_error(r"^export_model: cannot write .*afile \("):
        export_model.main(["--workdir", "synthetic", "--name", "afile", "--hardware", "x"])
    monkeypatch.setattr(export_model.os, "access", lambda path, mode: False)  # as for a user without the rights
    with usage_error(r"^export_model: cannot write .*mine \(an installed package"):
        export_model.main(["--workdir", "synthetic", "--name", "mine", "--hardware", "x"])
