"""An exported model folder: ``weights.npz`` (every parameter and batch statistic by its ``/`` path) and
``config.json`` (the run's `TrainConfig`, plus under ``"export"`` the prediction options it was measured with);
and where the shipped models live. `oosis_jax.inference.predictor.Predictor.from_pretrained` reads these."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from oosis_jax.inference.augment import Augmentation
from oosis_jax.inference.joining import JoinModel
from oosis_jax.inference.robustness import Robustness
from oosis_jax.inference.scoring import ScoreModel
from oosis_jax.models import PSPNet, flat_state, load_pretrained
from oosis_jax.training.configs import TrainConfig

WEIGHTS_DIR = Path(__file__).parent.parent / "weights"
SHIPPED = ("synthetic",)
CONFIG_FILE, WEIGHTS_FILE, CARD_FILE = "config.json", "weights.npz", "MODEL_CARD.md"
# what an export's ``extra`` may hold: the options `exported_options` reads, and ``run`` (facts for the card)
EXPORT_KEYS = ("lam", "mu", "method", "robustness", "augmentation", "join_model", "score_model", "run")


def export(model: PSPNet, config: TrainConfig, out_dir, extra: dict | None = None) -> Path:
    """Write ``model`` as ``out_dir/weights.npz`` (every parameter and batch statistic by its ``/`` path) and
    ``out_dir/config.json`` (the run's `TrainConfig`, plus ``extra`` under the key ``"export"``).

    ``ValueError`` before anything is written when the model is not ``config.model``'s (an array's shape
    differs), holds inf or NaN, or ``extra`` is not JSON; both files are replaced together (a failure leaves an
    earlier export whole), and an earlier export's ``MODEL_CARD.md``, which describes other weights, is removed.
    """
    unknown = sorted(set(extra or {}) - set(EXPORT_KEYS))
    if unknown:
        raise ValueError(f"export: extra holds {unknown}; it takes the options {list(EXPORT_KEYS)}")
    arrays = {name: np.asarray(variable.get_value()) for name, variable in flat_state(model).items()}
    expected = {name: variable.get_value().shape for name, variable in flat_state(
        nnx.eval_shape(lambda: PSPNet(config.model, rngs=nnx.Rngs(0)))).items()}
    wrong = sorted(set(arrays) ^ set(expected)) + [n for n in sorted(set(arrays) & set(expected))
                                                  if arrays[n].shape != expected[n]]
    if wrong:
        raise ValueError(f"export: the model is not the one config.model describes ({len(wrong)} arrays differ, "
                         f"e.g. {wrong[:3]})")
    bad = [name for name, array in arrays.items() if not np.all(np.isfinite(array))]
    if bad:
        raise ValueError(f"export: the model holds inf or NaN in {bad[:5]}")
    try:
        text = json.dumps({**config.to_dict(), "export": extra or {}}, indent=2)
    except TypeError as err:
        raise ValueError(f"export: extra cannot be written as JSON ({err})") from err
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / (WEIGHTS_FILE + ".tmp"), "wb") as f:
        np.savez_compressed(f, **arrays)
    (out / (CONFIG_FILE + ".tmp")).write_text(text)
    (out / CARD_FILE).unlink(missing_ok=True)
    os.replace(out / (WEIGHTS_FILE + ".tmp"), out / WEIGHTS_FILE)
    os.replace(out / (CONFIG_FILE + ".tmp"), out / CONFIG_FILE)
    return out


def load_exported(folder) -> tuple[PSPNet, TrainConfig]:
    """The model and `TrainConfig` of a folder written by `export` (evaluation mode)."""
    folder = Path(folder)
    try:
        values = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{folder / CONFIG_FILE} is missing or not valid JSON: {err}") from err
    if not isinstance(values, dict):
        raise ValueError(f"{folder / CONFIG_FILE} is not a valid exported configuration: a JSON "
                         f"{type(values).__name__}, not an object of the run's fields")
    try:
        values.pop("export", None)
        config = TrainConfig.from_dict(values)
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{folder / CONFIG_FILE} is not a valid exported configuration: {err!r}") from err
    # Trace the structure without running the initialisers (on a CPU, eager initialisation compiles one small
    # program per kernel shape: tens of seconds), then fill every array from the file.
    model = nnx.eval_shape(lambda: PSPNet(config.model, rngs=nnx.Rngs(0)))
    for _, variable in nnx.to_flat_state(nnx.state(model, nnx.RngState)):
        shape = variable.get_value().shape
        variable.set_value(jax.random.key(0) if isinstance(variable, nnx.RngKey) else jnp.zeros(shape, jnp.uint32))
    # a missing array is this function's error below, not load_pretrained's warning as well
    loaded = set(load_pretrained(model, folder / WEIGHTS_FILE, warn_unloaded=False))
    missing = sorted(set(flat_state(model)) - loaded)
    if missing:
        raise ValueError(f"{folder / WEIGHTS_FILE} lacks {len(missing)} of the model's arrays, e.g. {missing[:3]}")
    return model, config


def model_folder(name_or_dir: str | os.PathLike) -> Path:
    """The folder a model name or path means: ``WEIGHTS_DIR/<name>`` for a shipped name (`SHIPPED`); else
    ``name_or_dir`` as a path (``~`` expanded) when it exists; else ``WEIGHTS_DIR/<name>`` for a plain name (no
    path separator) of a folder there (``experiments.export_model --name NAME`` exports to it); else the path,
    whose absence is the caller's to report. So an existing run folder is never shadowed by an export of the
    same name. An empty name is refused (``ValueError``): as a path it would mean the current folder."""
    text = os.fspath(name_or_dir)
    if not text.strip():
        raise ValueError(f"an empty model name or folder ({text!r}): give a model name (e.g. 'synthetic') or a folder")
    path = Path(os.path.expanduser(text))
    if text in SHIPPED or (not path.exists() and is_model_name(text) and (WEIGHTS_DIR / text).is_dir()):
        return WEIGHTS_DIR / text
    return path


def model_names() -> list[str]:
    """The names of the exported models in ``WEIGHTS_DIR`` (folders holding ``WEIGHTS_FILE``), sorted."""
    if not WEIGHTS_DIR.is_dir():
        return []
    return sorted(p.name for p in WEIGHTS_DIR.iterdir() if (p / WEIGHTS_FILE).is_file())


def is_model_name(text: str) -> bool:
    """Whether ``text`` can name a folder of ``WEIGHTS_DIR``: not empty, ``.`` or ``..``, no path separator."""
    return text not in ("", ".", "..") and os.sep not in text and (os.altsep or os.sep) not in text


def _weight(value) -> float:
    """A CRF weight read from JSON: a number (``true`` is not 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def exported_options(folder, skip=()) -> dict:
    """The prediction options an exported model was measured with (``config.json``'s ``export`` key: ``lam``,
    ``mu``, ``method``, ``robustness``, ``augmentation``, ``join_model``, ``score_model``, and ``run``, facts for
    its card that are not options), as `Predictor` keyword arguments; ``{}`` when it names none; the options
    named in ``skip`` are left out, not even read (those a caller replaces: e.g. a join model fitted on an
    earlier version's features). ``ValueError`` naming the file for an ``export`` that is not an object or holds
    another key, or for an option read that is not valid."""
    path = Path(folder) / CONFIG_FILE
    try:
        export = json.loads(path.read_text()).get("export", {})
    except (ValueError, AttributeError) as err:  # JSONDecodeError is a ValueError; a top level that is no object
        raise ValueError(f"{path} is not a JSON object: {err}") from err
    readers = {"lam": _weight, "mu": _weight, "method": str, "robustness": lambda v: Robustness(**v),
               "augmentation": lambda v: Augmentation(**v), "join_model": JoinModel.from_dict,
               "score_model": ScoreModel.from_dict}
    if not isinstance(export, dict) or set(export) - set(EXPORT_KEYS):
        what = sorted(set(export) - set(EXPORT_KEYS)) if isinstance(export, dict) else type(export).__name__
        raise ValueError(f"{path}: export must be an object of the options {list(EXPORT_KEYS)}, got {what}")
    options = {}
    for key, read in readers.items():
        if export.get(key) is None or key in skip:
            continue
        try:
            options[key] = read(export[key])
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            raise ValueError(f"{path}: export.{key} is not valid: {type(err).__name__}: {err}") from err
    return options
