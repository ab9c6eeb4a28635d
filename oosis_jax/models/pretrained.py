"""Initialise a model from a user's weight file (npz of flat names -> arrays); nothing is downloaded.

Names are the model's state paths joined by ``/``, e.g. ``backbone/layer1/0/conv1/kernel`` or
``backbone/bn1/mean`` (see ``flat_state``). ``experiments/convert_torch_resnet.py`` writes such a file from
a PyTorch ResNet-50 state dict.
"""

from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np
from flax import nnx


def flat_state(model: nnx.Module) -> dict[str, nnx.Variable]:
    """Every parameter and batch statistic of ``model`` by its ``/``-joined path."""
    flat = nnx.to_flat_state(nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat)))
    return {"/".join(str(k) for k in path): variable for path, variable in flat}


def load_pretrained(model: nnx.Module, path: str | os.PathLike) -> list[str]:
    """Copy the arrays of the npz file at ``path`` into ``model`` in place; returns the names loaded.

    Every name in the file must exist in the model with the same shape (``ValueError`` otherwise, naming
    the offending entries); model variables absent from the file keep their initialisation, so a backbone-
    only file initialises the backbone and leaves the new layers alone. The same holds for a model with more
    blocks per stage (``ModelConfig.stage_blocks``) or more decoder blocks (``ModelConfig.decoder_blocks``)
    than the file's: the added blocks start as identities (their last BatchNorm scale is 0), so the grown
    model computes the file's function until it trains.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"pretrained weight file {path!r} does not exist")
    variables = flat_state(model)
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    unknown = sorted(set(arrays) - set(variables))
    if unknown:
        raise ValueError(f"{path}: {len(unknown)} names are not in the model, e.g. {unknown[:5]}")
    wrong = [f"{n}: file {arrays[n].shape} vs model {variables[n].shape}" for n in sorted(arrays)
             if arrays[n].shape != variables[n].shape]
    if wrong:
        raise ValueError(f"{path}: shape mismatch for {len(wrong)} arrays, e.g. {wrong[:5]}")
    bad = [n for n, a in arrays.items() if not np.all(np.isfinite(a))]
    if bad:
        raise ValueError(f"{path}: non-finite values in {bad[:5]}")
    for name, array in arrays.items():
        variables[name].set_value(jnp.asarray(array, variables[name].dtype))
    return sorted(arrays)
