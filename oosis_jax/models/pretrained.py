"""Initialise a model from a user's weight file (npz of flat names -> arrays); nothing is downloaded.

Names are the model's state paths joined by ``/``, e.g. ``backbone/layer1/0/conv1/kernel`` or
``backbone/bn1/mean`` (see ``flat_state``). ``experiments/convert_torch_resnet.py`` writes such a file from
a PyTorch ResNet-50 state dict.
"""

from __future__ import annotations

import os
import re
import warnings
from fractions import Fraction

import jax.numpy as jnp
import numpy as np
from flax import nnx


def flat_state(model: nnx.Module) -> dict[str, nnx.Variable]:
    """Every parameter and batch statistic of ``model`` by its ``/``-joined path."""
    flat = nnx.to_flat_state(nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat)))
    return {"/".join(str(k) for k in path): variable for path, variable in flat}


STEM_KERNEL = "backbone/conv1/kernel"  # 7x7 in torchvision's ResNet, 3x3 in the deep stem
# The arrays of a bottleneck block's inside (``ModelConfig.width`` with ``bottleneck_expansion``) and the axes
# along which a wider model may hold more channels than the file: conv1's outputs, conv2's inputs and
# outputs, conv3's inputs, and the two BatchNorms between them.
_INNER = re.compile(r"^backbone/layer[1-4]/\d+/(conv[123]/kernel|bn[12]/(scale|bias|mean|var))$")
_GROWING_AXES = {"conv1": (3,), "conv2": (2, 3), "conv3": (2,), "bn1": (0,), "bn2": (0,)}


def starts_as_zip(path: str) -> bool:
    """Whether the file at ``path`` begins as a zip archive (an npz) does, even one cut short or empty."""
    with open(path, "rb") as f:
        return f.read(4) in (b"PK\x03\x04", b"PK\x05\x06")


def read_npz(path: str) -> dict[str, np.ndarray]:
    """The arrays of the npz file at ``path`` by name; ``ValueError`` for an unreadable archive (numpy's zip, CRC
    and EOF errors alike) or an entry that is an object array (e.g. a nested dict saved as one)."""
    if os.path.isfile(path) and not starts_as_zip(path):  # else numpy would try it as a pickle
        raise ValueError(f"{path} is not a readable npz archive of arrays: not a zip file (an npz is a zip of .npy "
                         "files, as np.savez writes)")
    try:
        with np.load(path) as archive:
            return {name: _array(archive, name, path) for name in archive.files}
    except _ObjectArray:
        raise
    except Exception as err:  # noqa: BLE001 - the file is unreadable, whatever numpy's reason
        raise ValueError(f"{path} is not a readable npz archive of arrays: {type(err).__name__}: {err}") from err


class _ObjectArray(ValueError):
    """An npz entry that is an object array: named by `_array`, not taken for an unreadable file."""


def _array(archive, name: str, path: str) -> np.ndarray:
    """Entry ``name`` of an open npz; ``ValueError`` naming it when it is an object array (a nested dict)."""
    try:
        return archive[name]
    except ValueError as err:  # numpy refuses pickled objects without allow_pickle
        raise _ObjectArray(f"{path}: entry {name!r} is an object array, not a tensor (e.g. a nested dict saved as "
                         "np.savez(f, state_dict=sd)); save the tensors themselves: "
                         "np.savez(f, **{k: v.numpy() for k, v in sd.items()})") from err


def _unknown_hint(unknown: list[str], variables: dict) -> str:
    """What a file whose names ``unknown`` are not in the model most likely is, as a hint (or "")."""
    if all("/" not in name for name in unknown):
        return "; these are PyTorch names: convert the state dict with experiments/convert_torch_resnet.py"
    if any(name.startswith(("backbone/conv2/", "backbone/bn2/")) for name in unknown) and \
            "backbone/conv2/kernel" not in variables:
        return ("; a deep stem (conv1-conv3, e.g. the PSPNet reference's resnet50_v2) loads into a model with "
                "model.deep_stem=True")
    return ""


def _grown(name: str, file_array: np.ndarray, model_array: np.ndarray) -> np.ndarray | None:
    """``model_array`` with ``file_array`` in its leading channels where ``name`` is a bottleneck's inside and
    the model is wider there, else None. A kernel's weights from the added input channels to the file's
    output channels are zeroed (the added channels start unread), the rest keeps the model's initialisation
    (BatchNorm: scale 1, bias 0, mean 0, var 1), so the wider block computes the file's function."""
    match = _INNER.match(name)
    if match is None or file_array.ndim != model_array.ndim:
        return None
    axes = _GROWING_AXES[match.group(1).split("/")[0]]
    if any(f != m for k, (f, m) in enumerate(zip(file_array.shape, model_array.shape)) if k not in axes) or \
            any(f > m for f, m in zip(file_array.shape, model_array.shape)):
        return None
    out = np.array(model_array, copy=True)
    if out.ndim == 4:
        out[:, :, file_array.shape[2]:, :file_array.shape[3]] = 0.0
    out[tuple(slice(0, n) for n in file_array.shape)] = file_array
    return out


def _widened(arrays: dict[str, np.ndarray], variables: dict) -> dict[str, np.ndarray]:
    """The bottleneck insides of a narrower file grown into the model (`_grown`), only when the file is narrower
    alike everywhere: every inside array of each of its blocks is in the file, and each is narrower along its
    growing axes by one and the same factor (a larger ``ModelConfig.width``). Else ``{}``: a single narrower
    array (a mistake) is then a shape mismatch, never zero-padded in silently."""
    inside = {n for n in variables if _INNER.match(n)}
    given = inside & set(arrays)
    narrower = sorted(n for n in given if arrays[n].shape != variables[n].shape)
    if not narrower:
        return {}
    blocks = {n.rsplit("/", 2)[0] for n in given}
    if any(n.rsplit("/", 2)[0] in blocks and n not in arrays for n in inside):
        return {}
    factors = set()
    for name in given:
        axes = _GROWING_AXES[_INNER.match(name).group(1).split("/")[0]]
        file_shape, model_shape = arrays[name].shape, variables[name].shape
        if len(file_shape) != len(model_shape) or 0 in file_shape:
            return {}
        factors |= {Fraction(model_shape[k], file_shape[k]) for k in axes}
    if len(factors) != 1 or factors.pop() <= 1:
        return {}
    grown = {n: _grown(n, arrays[n], np.asarray(variables[n].get_value())) for n in narrower}
    return {} if any(g is None for g in grown.values()) else grown


def load_pretrained(model: nnx.Module, path: str | os.PathLike, warn_unloaded: bool = True) -> list[str]:
    """Copy the arrays of the npz file at ``path`` into ``model`` in place; returns the names loaded.

    Every name in the file must exist in the model with the same shape (``ValueError`` otherwise, naming
    the offending entries); model variables absent from the file keep their initialisation, so a backbone-
    only file initialises the backbone and leaves the new layers alone (with ``warn_unloaded`` a warning counts
    the backbone arrays that the file leaves so). The same holds for a model with more
    blocks per stage (``ModelConfig.stage_blocks``) or more decoder blocks (``ModelConfig.decoder_blocks``)
    than the file's: the added blocks start as identities (their last BatchNorm scale is 0), so the grown
    model computes the file's function until it trains. Wider bottlenecks (a larger ``ModelConfig.width`` with
    the same ``width * bottleneck_expansion``) grow the same way: the file fills the leading channels of each
    block's inside and the added channels start unread (`_grown`), when the whole file is narrower alike
    (`_widened`). Arrays must be floating-point (integers, e.g. labels saved by mistake, are refused).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"pretrained weight file {path!r} does not exist")
    variables = flat_state(model)
    try:
        arrays = read_npz(path)
    except ValueError as err:
        if path.endswith((".pth", ".pt", ".ckpt")):
            raise ValueError(f"{err}; a PyTorch checkpoint: convert it with experiments/convert_torch_resnet.py"
                             ) from err
        raise
    unknown = sorted(set(arrays) - set(variables))
    if unknown:
        raise ValueError(f"{path}: {len(unknown)} names are not in the model, e.g. {unknown[:5]}"
                         f"{_unknown_hint(unknown, variables)}")
    not_floats = [f"{n} ({a.dtype})" for n, a in sorted(arrays.items()) if a.dtype.kind != "f"]
    if not_floats:
        raise ValueError(f"{path}: arrays that are not floating-point weights: {not_floats[:5]}")
    arrays.update(_widened(arrays, variables))
    wrong = [f"{n}: file {arrays[n].shape} vs model {variables[n].shape}" for n in sorted(arrays)
             if arrays[n].shape != variables[n].shape]
    if wrong:
        stem, ours = arrays.get(STEM_KERNEL), variables.get(STEM_KERNEL)
        hint = ("; a 7x7 stem (torchvision's ResNet) loads into a model with model.deep_stem=False"
                if stem is not None and ours is not None and stem.shape[:2] == (7, 7) and ours.shape[:2] != (7, 7)
                else "")
        raise ValueError(f"{path}: shape mismatch for {len(wrong)} arrays, e.g. {wrong[:5]}{hint}")
    if not arrays:
        raise ValueError(f"{path} holds no array: nothing would be loaded")
    # checked as they will be stored: float64 numbers beyond float32's range would become inf
    with np.errstate(over="ignore"):  # an overflow is reported below, by name
        arrays = {n: np.asarray(a).astype(variables[n].dtype) for n, a in arrays.items()}
    bad = [n for n, a in arrays.items() if not np.all(np.isfinite(a))]
    if bad:
        raise ValueError(f"{path}: non-finite values (or beyond {np.dtype(variables[bad[0]].dtype).name}'s range) "
                         f"in {bad[:5]}")
    negative = [n for n, a in sorted(arrays.items()) if n.endswith("/var") and (a < 0).any()]
    if negative:  # a BatchNorm variance below 0 makes every output NaN
        raise ValueError(f"{path}: negative BatchNorm variances in {negative[:5]}")
    for name, array in arrays.items():
        variables[name].set_value(jnp.asarray(array, variables[name].dtype))
    kept = sorted(n for n in variables if n.startswith("backbone/") and n not in arrays)
    if kept and warn_unloaded:
        backbone = sum(n.startswith("backbone/") for n in variables)
        warnings.warn(f"{path} set {backbone - len(kept)} of the model's {backbone} backbone arrays; {len(kept)} keep "
                      f"their initialisation, e.g. {kept[:3]} (intended where the model has more blocks than the "
                      "file; otherwise the file lacks them, e.g. the BatchNorm statistics of a state dict saved from "
                      "named_parameters())", stacklevel=2)
    return sorted(arrays)
