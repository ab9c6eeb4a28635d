"""Where a model name leads (``oosis_jax.inference.exported.model_folder``): a model that ``experiments.export_model
--name NAME`` wrote to ``WEIGHTS_DIR/NAME`` loads by that name, as its model card says."""

from pathlib import Path

import pytest
from helpers.networks import quick_pspnet

from oosis_jax.inference import exported
from oosis_jax.inference.predictor import Predictor
from oosis_jax.training.configs import get_config


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    """A temporary ``WEIGHTS_DIR`` (nothing is written into the repository)."""
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setattr(exported, "WEIGHTS_DIR", folder)
    return folder


def test_an_exported_name_loads_from_the_weights_folder(weights_dir, tmp_path, monkeypatch):
    config = get_config("smoke")
    exported.export(quick_pspnet(config.model), config, weights_dir / "audit", extra={"lam": 30.0})
    monkeypatch.chdir(tmp_path)
    assert exported.model_folder("audit") == weights_dir / "audit"
    predictor = Predictor.from_pretrained("audit")
    assert predictor.config == config and predictor.lam == 30.0
    assert exported.model_folder("synthetic") == weights_dir / "synthetic"  # shipped names as before
    assert exported.model_names() == ["audit"]
    (tmp_path / "audit").mkdir()  # a run folder of that name here: never shadowed by the export
    assert exported.model_folder("audit") == Path("audit")


@pytest.mark.parametrize("text", ["missing", "./audit", "sub/audit", ".", ".."])
def test_other_names_are_paths(weights_dir, text):
    (weights_dir / "audit").mkdir()
    (weights_dir / "sub" / "audit").mkdir(parents=True)
    assert exported.model_folder(text) == Path(text)


def test_an_unknown_name_is_still_refused_by_name(weights_dir):
    with pytest.raises(ValueError, match="'audit' is neither a model name"):
        Predictor.from_pretrained("audit")
