"""The model shipped in the repository (``Predictor.from_pretrained("synthetic")``): it loads without a
download, its card and files are complete, and its held-out quality does not silently regress.

The floors are a few points under what the shipped model measured on these 6 held-out scenes when it was
last exported (WC 94.4, boundary AP 94.4, oriented AP 91.9, mask mAP 65.6 with its joins and learned scores,
OAIR recall@0.5 77.4 %, 91 instances for 48 in the ground truth; its card gives the 40 + 40 scene table); an
untrained or broken network, or a regression of the views, the CRF, the joins or the scoring options it is used
with, falls far below them.
"""

import dataclasses
import json

import numpy as np
import pytest

from data.examples import synthetic_scenes
from oosis_jax import Predictor
from oosis_jax.evaluation import evaluate
from oosis_jax.inference import predictor as predictor_lib
from oosis_jax.inference.joining import JoinModel
from oosis_jax.inference.scoring import ScoreModel

SCENES = 6


@pytest.fixture(scope="module")
def shipped():
    return Predictor.from_pretrained("synthetic", processes=1)


def test_the_shipped_folder_is_complete_and_small():
    folder = predictor_lib.WEIGHTS_DIR / "synthetic"
    sizes = {p.name: p.stat().st_size for p in folder.iterdir()}
    assert set(sizes) == {"weights.npz", "config.json", "MODEL_CARD.md"}
    assert sum(sizes.values()) < 20 * 2**20
    config = json.loads((folder / "config.json").read_text())
    card = (folder / "MODEL_CARD.md").read_text()
    assert config["name"] in card and f"{config['num_steps']} of {config['num_steps']} steps" in card
    assert config["model"]["decoder"] == "unet"


def test_the_shipped_model_is_what_its_preset_trains():
    from oosis_jax.training.configs import TrainConfig, get_config

    # The shipped run is the synthetic_band preset fine-tuning the synthetic_long run continued to 9000 steps,
    # in a chain (the card's training history); the last runs use the Dice++ b loss and a backbone grown to
    # (3, 4, 6, 3) blocks per stage, the last four on zoomed scenes (the last two scaled 1.25-1.75x): only the
    # run's name, length, start, learning rate, that loss, the number of blocks and the scale range differ.
    values = json.loads((predictor_lib.WEIGHTS_DIR / "synthetic" / "config.json").read_text())
    values.pop("export")
    config = TrainConfig.from_dict(values)
    band = get_config("synthetic_band")
    assert config.loss.orientation_band == 1 and config.loss.boundary_loss == "dice++"
    assert config.model.stage_blocks == (3, 4, 6, 3) and config.augment.scale_range == (1.25, 1.75)
    grown = dataclasses.replace(band.model, stage_blocks=config.model.stage_blocks)
    zoomed = dataclasses.replace(band.augment, scale_range=config.augment.scale_range)
    assert config == band.replace(name=config.name, num_steps=config.num_steps, pretrained=config.pretrained,
                                  base_lr=config.base_lr, eval_every=config.eval_every, model=grown, augment=zoomed,
                                  loss=dataclasses.replace(band.loss, boundary_loss="dice++"))
    first = get_config("synthetic_long")
    assert config.replace(loss=first.loss, name=first.name, num_steps=first.num_steps, pretrained=None,
                          base_lr=first.base_lr, eval_every=first.eval_every, model=first.model,
                          augment=first.augment) == first


def test_the_card_options_are_the_predictor_defaults(shipped):
    export = json.loads((predictor_lib.WEIGHTS_DIR / "synthetic" / "config.json").read_text())["export"]
    assert shipped.lam == export["lam"]
    assert shipped.robustness == predictor_lib.Robustness(**export["robustness"])
    assert shipped.augmentation == predictor_lib.Augmentation(**export["augmentation"])  # the test-time views
    assert shipped.score_model == ScoreModel.from_dict(export["score_model"])  # the learned instance score
    assert shipped.join_model == JoinModel.from_dict(export["join_model"])  # pieces of cut objects joined
    assert Predictor.from_pretrained("synthetic", lam=20.0).lam == 20.0  # explicit options win


def test_held_out_quality_does_not_regress(shipped):
    scenes = synthetic_scenes("test", SCENES, (120, 160))
    predictions = shipped.predict_many([x["image"] for x in scenes], progress=False)
    results = evaluate(predictions, scenes, progress=False)
    assert results["boundaries"]["plain"]["AP"] >= 0.92
    assert results["boundaries"]["oriented"]["AP"] >= 0.89
    assert results["weighted_coverage"] >= 0.91
    assert results["mask"]["mAP"] >= 0.60
    oair = results["oair_iou"]  # recall at IoU 0.5: both instances of a true pair recovered
    assert oair["recall"][oair["iou_threshold"].index(0.5)] >= 0.74
    assert results["num_pred_instances"] <= 110  # the paper's CRF options alone give hundreds of fragments
    assert results["cycle_percent"] == 0.0
    for p, x in zip(predictions, scenes):
        assert p.instance_map.shape == x["instance_map"].shape and p.instance_map.dtype == np.int32


def test_fit_finish_fits_joins_then_score_on_the_network_s_own_predictions(shipped):
    # what export_model --fit-joins --fit-scores and the demo's trained network use; the models a predictor
    # already has are not read, the network and CRF options are kept
    scenes = synthetic_scenes("validation", 8, (120, 160))
    plain = shipped.replace(augmentation=predictor_lib.Augmentation())  # one pass: fast
    fitted = plain.fit_finish(scenes, progress=False)
    bare = plain.replace(join_model=None, score_model=None).fit_finish(scenes, progress=False)
    assert fitted.join_model == bare.join_model and fitted.score_model == bare.score_model
    assert fitted.join_model not in (None, shipped.join_model) and fitted.score_model not in (None, shipped.score_model)
    assert fitted.model is shipped.model and (fitted.lam, fitted.robustness) == (shipped.lam, shipped.robustness)
    scores_only = plain.fit_finish(scenes, joins=False, progress=False)
    assert scores_only.join_model is None and scores_only.score_model not in (None, fitted.score_model)
    assert plain.fit_finish(scenes, scores=False, progress=False).score_model is None
    # one scene without a candidate pair of pieces of one object: the join fit fails, or is left out with a
    # warning while the score is still fitted
    with pytest.raises(ValueError, match="both kinds"):
        plain.fit_finish(scenes[:1], scores=False, progress=False)
    with pytest.warns(UserWarning, match="no join model fitted"):
        skipped = plain.fit_finish(scenes[:1], progress=False, skip_unfittable=True)
    assert skipped.join_model is None and skipped.score_model is not None
