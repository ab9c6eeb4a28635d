"""One way to read every dataset: ``load(name, split, data_dir, **config)``.

Dataset ``NAME`` is the module ``data.NAME`` of the registry (``data.registry``); its
``builder(data_dir, **config)`` returns a tensorflow-datasets builder that writes array_record files. ``load``
returns the builder's ``as_data_source`` random-access source (`NamedSource`: its read errors name the dataset,
split, folder and example), whose items are the decoded dicts of ``data/features.py``.
"""

from __future__ import annotations

import logging
import os
import re
from types import ModuleType

from data.registry import info
from data.tfds_quiet import silence

log = logging.getLogger(__name__)
silence()  # tfds' two notes on our own choices


def dataset_module(name: str) -> ModuleType:
    """The module ``data.<name>`` of a dataset; ``ValueError`` listing the choices for an unknown name."""
    return info(name).module


def _builder(name: str, data_dir, config: dict):
    if data_dir is None or not isinstance(data_dir, (str, os.PathLike)):
        raise ValueError(f"data_dir must be a folder path, got {data_dir!r}")
    if "data_dir" in config:  # a setting named like the folder argument (e.g. --dataset-config data_dir=...)
        raise ValueError(f"dataset {name!r} has no setting 'data_dir': the tfds folder is the data_dir argument "
                         "(--data-dir)")
    try:
        return dataset_module(name).builder(os.path.expanduser(os.fspath(data_dir)), **config)
    except ModuleNotFoundError as e:
        if e.name not in ("tensorflow_datasets", "array_record", "grain"):
            raise
        raise ModuleNotFoundError(f"dataset {name!r}: its tfds build needs {e.name}, which the base install "
                                  "leaves out; pip install 'oosis[network]'", name=e.name) from e
    except TypeError as e:
        unexpected = re.search(r"unexpected keyword argument '(\w+)'", str(e))
        if unexpected is None:
            raise
        doc = " ".join(info(name).module.builder.__doc__.split())
        raise ValueError(f"dataset {name!r} has no setting {unexpected.group(1)!r}. {doc}") from e
    except Exception as e:  # a damaged dataset_info.json fails protobuf's parser while the builder reads it
        if not type(e).__module__.startswith("google.protobuf"):
            raise
        damaged = _unreadable_infos(os.path.expanduser(os.fspath(data_dir)))
        where = ", ".join(damaged) if damaged else f"a dataset_info.json under {data_dir}"
        raise ValueError(f"dataset {name!r}: {where} cannot be read ({e}); delete the folder holding it to build "
                         "it again") from e


def _unreadable_infos(data_dir: str) -> list[str]:
    """The ``dataset_info.json`` files under ``data_dir`` that are not valid JSON."""
    import glob
    import json

    found = []
    for path in sorted(glob.glob(os.path.join(glob.escape(data_dir), "**", "dataset_info.json"), recursive=True)):
        try:
            with open(path) as f:
                json.load(f)
        except (OSError, ValueError):
            found.append(path)
    return found


def build(name: str, data_dir, /, **config):
    """Generate dataset ``name`` (with builder ``config``) into ``data_dir`` if needed; return its builder."""
    builder = _builder(name, data_dir, config)
    builder.download_and_prepare()
    return builder


def load(name: str, split: str, data_dir, /, **config):
    """Random-access source of one split (``builder.as_data_source(split)``); ``len(source)`` examples,
    ``source[i]`` a decoded dict (``data/features.py``).

    A dataset that is not yet in ``data_dir`` is built first (logged, since it can take minutes); KINS and COCOA
    are built only with ``manual_dir=`` (the downloaded files), else ``ValueError`` naming the folder, the configs
    built there and the build command. ``split`` may carry a tfds slice, e.g.
    ``"train[:100]"``; an unknown split raises ``ValueError`` listing the available ones.
    """
    builder = _builder(name, data_dir, config)
    if not builder.is_prepared():
        if not getattr(builder, "can_build", True):  # KINS, COCOA without their download: say where to build
            raise ValueError(_not_built(name, builder, os.path.expanduser(os.fspath(data_dir))))
        log.warning("dataset %r is not prepared in %s; building it now (once)", name, builder.data_dir)
        builder.download_and_prepare()
    available = list(builder.info.splits)
    if not available:
        raise ValueError(f"dataset {name!r}: the build in {builder.data_dir} lists no split (its dataset_info.json "
                         "is missing or the build is incomplete); delete that folder to build it again")
    if not isinstance(split, str) or split.split("[")[0] not in available:
        raise ValueError(f"dataset {name!r} has no split {split!r}; available splits: {', '.join(available)}")
    if builder.info.splits[split].num_examples == 0:
        raise ValueError(f"split {split!r} of dataset {name!r} selects no example (the whole split has "
                         f"{builder.info.splits[split.split('[')[0]].num_examples})")
    where = f"dataset {name!r} split {split!r} in {builder.data_dir}"
    try:
        return NamedSource(builder.as_data_source(split=split), where)
    except (RuntimeError, OSError) as err:  # e.g. a truncated array_record file
        raise ValueError(f"{where} cannot be opened ({err}); delete that folder to build it again") from err


def _not_built(name: str, builder, data_dir: str) -> str:
    """The message for a dataset that needs the user's download and has no build of ``builder``'s config in
    ``data_dir``, naming the configs built there."""
    import glob

    folder = os.path.join(data_dir, builder.name)
    built = sorted({os.path.basename(os.path.dirname(os.path.dirname(info))) for info in
                    glob.glob(os.path.join(glob.escape(folder), "*", "*", "dataset_info.json"))})
    config = builder.builder_config.name
    there = (f"; {data_dir} holds the config(s) {', '.join(built)} (choose one with the builder setting config=NAME: "
             "--dataset-config config=NAME, or train's --set 'dataset_config=((\"config\",\"NAME\"),)')"
             if built else "")
    return (f"dataset {name!r} (config {config!r}) is not built in {data_dir}{there}; build it once from your "
            f"download with: python -m data.{name} --manual-dir DOWNLOAD --data-dir {data_dir} --config {config}")


class NamedSource:
    """A random-access source whose read errors (a damaged array_record file) name the dataset, split, folder and
    example, instead of only the storage library's message."""

    def __init__(self, source, where: str):
        self.source, self.where = source, where

    def __len__(self) -> int:
        return len(self.source)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __getattr__(self, name):  # anything else of the tfds source (e.g. dataset_info)
        if name == "source":  # not yet set (a copy being made): no recursion
            raise AttributeError(name)
        return getattr(self.source, name)

    def __getitem__(self, index):
        try:
            return self.source[index]
        except (RuntimeError, OSError) as err:
            raise ValueError(f"{self.where}: example {index} cannot be read ({err}); delete that folder to build "
                             "it again") from err
