"""Convert a PyTorch ResNet-50 state dict (torchvision, or the PSPNet reference's deep-stem ResNet) to the
npz that ``oosis_jax.models.load_pretrained`` reads.

    python -m experiments.convert_torch_resnet resnet50_v2.pth backbone.npz

PyTorch is imported only to read a ``.pth`` file; without it, an ``.npz`` of the state dict's arrays under their
torch names (e.g. written elsewhere by ``np.savez(f, **{k: v.numpy() for k, v in sd.items()})``) is read
instead. ``convert_state_dict`` is a pure function of numpy arrays. Torch names map as
``conv1.weight -> backbone/conv1/kernel`` (OIHW -> HWIO),
``layer2.0.downsample.0.weight -> backbone/layer2/0/downsample_conv/kernel``, BatchNorm
``weight/bias/running_mean/running_var -> scale/bias/mean/var``; ``fc.*`` and ``num_batches_tracked`` are
dropped. A torchvision checkpoint has a 7x7 stem: load it into a model with ``ModelConfig(deep_stem=False)``.
"""

from __future__ import annotations

import argparse
import os
import re
import zipfile

import numpy as np

BN_FIELDS = {"weight": "scale", "bias": "bias", "running_mean": "mean", "running_var": "var"}
SKIPPED = re.compile(r"^fc\.|num_batches_tracked$")
STEM = re.compile(r"^(conv[123]|bn[123])\.(\w+)$")
BLOCK = re.compile(r"^(layer[1-4])\.(\d+)\.(conv[123]|bn[123]|downsample\.[01])\.(\w+)$")


def _leaf(module: str, field: str, array: np.ndarray, torch_name: str) -> tuple[str, np.ndarray]:
    if module.startswith("conv") or module == "downsample_conv":
        if field != "weight" or array.ndim != 4:
            raise ValueError(f"{torch_name}: expected a 4-D convolution weight, got {field} {array.shape}")
        return f"{module}/kernel", np.transpose(array, (2, 3, 1, 0))
    if field not in BN_FIELDS or array.ndim != 1:
        raise ValueError(f"{torch_name}: expected a 1-D BatchNorm {sorted(BN_FIELDS)}, got {field} {array.shape}")
    return f"{module}/{BN_FIELDS[field]}", array


def convert_state_dict(state_dict: dict[str, np.ndarray], prefix: str = "backbone") -> dict[str, np.ndarray]:
    """Map a ResNet state dict (numpy arrays, optional ``module.`` prefix) to ``{prefix}/...`` model names.

    Raises ``ValueError`` naming any tensor that is not part of a ResNet backbone.
    """
    out = {}
    for torch_name, array in state_dict.items():
        name = torch_name.removeprefix("module.")
        if SKIPPED.search(name):
            continue
        array = np.asarray(array)
        if array.dtype.kind != "f":
            raise ValueError(f"{torch_name!r} is {array.dtype}, not a floating-point tensor")
        array = array.astype(np.float32)
        if match := STEM.match(name):
            module, field = match.groups()
            leaf, value = _leaf(module, field, array, torch_name)
        elif match := BLOCK.match(name):
            layer, index, module, field = match.groups()
            module = {"downsample.0": "downsample_conv", "downsample.1": "downsample_bn"}.get(module, module)
            leaf, value = _leaf(module, field, array, torch_name)
            leaf = f"{layer}/{index}/{leaf}"
        else:
            raise ValueError(f"{torch_name!r} is not a ResNet backbone tensor")
        out[f"{prefix}/{leaf}"] = value
    if not out:
        raise ValueError("the state dict holds no ResNet backbone tensors")
    if not any(re.match(rf"{re.escape(prefix)}/layer\d/\d+/conv3/", name) for name in out):
        raise ValueError("the state dict's blocks have no conv3: basic blocks (ResNet-18/34), but the model's "
                         "stages are bottleneck blocks (ResNet-50 and deeper)")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.convert_torch_resnet",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a ResNet state dict: a PyTorch .pth (needs torch) or an .npz of its arrays")
    parser.add_argument("output", help="npz file to write")
    args = parser.parse_args(argv)
    output = os.path.expanduser(args.output)
    output = output if output.endswith(".npz") else output + ".npz"  # np.savez would add it
    if os.path.isdir(output) or os.path.isdir(os.path.expanduser(args.output)):
        parser.error(f"output {args.output} is a folder: name the npz file to write")
    if not os.path.isdir(os.path.dirname(os.path.abspath(output))):
        parser.error(f"output {args.output}: the folder {os.path.dirname(os.path.abspath(output))} does not exist")
    try:
        arrays = convert_state_dict(read_state_dict(os.path.expanduser(args.checkpoint)))
        np.savez(output, **arrays)
    except (OSError, ValueError, ModuleNotFoundError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    print(f"wrote {len(arrays)} arrays to {output}")


def _npz_by_another_name(path: str) -> bool:
    """Whether a file not named ``.npz`` is one: a zip archive of ``.npy`` entries only (``torch.save`` writes zip
    archives too, since PyTorch 1.6, of ``data.pkl`` and raw storages)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    return bool(names) and all(name.endswith(".npy") for name in names)


def read_state_dict(path: str) -> dict[str, np.ndarray]:
    """The tensors of a ``.pth`` checkpoint (its ``state_dict`` entry when it has one; as float32) or the arrays
    of an ``.npz`` (as stored; `convert_state_dict` casts them); ``FileNotFoundError``, ``ValueError`` for an
    unreadable archive or an entry that is not a tensor, and ``ModuleNotFoundError`` saying what to install for a
    ``.pth`` without PyTorch."""
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a folder: give the checkpoint file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    from oosis_jax.models.pretrained import read_npz

    if path.endswith(".npz") or _npz_by_another_name(path):
        return read_npz(path)
    try:
        import torch  # only needed to unpickle the checkpoint
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(f"{path}: reading a .pth file needs PyTorch (pip install torch), or give an .npz "
                                  "of its state dict's arrays", name="torch") from err
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state)
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise ValueError(f"{path}: entries that are not tensors: {not_tensors[:5]}")
    return {k: v.detach().float().numpy() for k, v in state.items()}


if __name__ == "__main__":
    main()
