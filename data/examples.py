"""Held-out examples for inference and evaluation, at the dataset's test resolution (Sec. 5.3).

The split and the resolution come from the registry (``data.registry``); synthetic scenes can also be rendered
on the fly (``synthetic_scenes``) with the registry's per-split seeds, so no build is needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from data import registry


def at_resolution(example: dict, resolution) -> dict:
    """``example`` with image (bilinear) and instance_map (nearest) resized to (height, width); None keeps it.

    Instances that vanish at the new size keep their ids (with no pixels, so ``classes`` still lines up) but
    lose their edges: an id without pixels is no object (as the metrics read it). Instances that a shrink makes
    touch get no edge here (the training pipeline's ``closed_gaps`` orders such pairs); the registry's test
    resolutions only enlarge.
    """
    if resolution is None:
        return example
    height, width = resolution
    if example["image"].shape[:2] == (height, width):
        return example
    ids = np.asarray(example["instance_map"])
    if ids.size and (ids.min() < 0 or ids.max() > np.iinfo(np.int32).max):
        raise ValueError(f"instance_map ids must lie in 0..2**31-1, got {ids.min()}..{ids.max()}")
    image = np.asarray(Image.fromarray(example["image"]).resize((width, height), Image.BILINEAR))
    inst = np.asarray(Image.fromarray(ids.astype(np.int32)).resize((width, height), Image.NEAREST), np.int32)
    edges = np.asarray(example["edges"]).reshape(-1, 2)
    present = np.zeros(int(max(ids.max(initial=0), edges.max(initial=0))) + 1, bool)
    present[np.unique(inst)] = True
    return dict(example, image=image, instance_map=inst, edges=edges[present[edges].all(axis=1)])


class Examples(Sequence):
    """The first ``count`` examples of a split, each decoded and resized (`at_resolution`) only when read, so
    that a whole split (KINS test: 7517 images) can be evaluated in bounded memory: ``len``, indexing and
    iteration as a list of example dicts, without holding them."""

    def __init__(self, source, count: int, resolution):
        self._source, self._count, self._resolution = source, count, resolution

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        if not -self._count <= index < self._count:
            raise IndexError(f"example {index} of {self._count}")
        example = dict(self._source[index % self._count])  # a damaged record: a ValueError naming it
        try:
            return at_resolution(example, self._resolution)
        except ValueError as err:
            raise ValueError(f"example {index % self._count}: {err}") from err


def readable(examples: Sequence[dict], failures: list) -> Iterator[dict]:
    """The examples of ``examples`` that can be read, in order; each one that cannot (a damaged record of a
    build, an instance map the resize refuses: the ``ValueError`` of ``examples[i]``) is appended to
    ``failures`` as ``(i, reason)`` and skipped, so that one bad example does not end a whole split's run."""
    for i in range(len(examples)):
        try:
            example = examples[i]
        except ValueError as err:
            failures.append((i, str(err)))
            continue
        yield example


def progress(items: Iterable, total: int, failures: list, desc: str) -> Iterator:
    """``items`` (one per readable example of a `readable` run) under a tqdm bar of ``total`` examples less those
    `readable` has put in ``failures`` so far, so that the bar ends full when an example could not be read."""
    with tqdm(total=total, desc=desc, unit="image") as bar:
        for item in items:
            bar.total = total - len(failures)
            bar.update()
            yield item
        bar.total = total - len(failures)  # examples after the last readable one
        bar.refresh()


def split_examples(name: str, split: str | None, data_dir, limit: int | None = None, /, **config) -> Examples:
    """The first ``limit`` (all when None) examples of a split (None: the registry's held-out split) at the
    registry's test resolution, decoded on reading (`Examples`; ``data.loading.load(name, split, data_dir,
    **config)``, which builds the dataset on first use; ``ValueError`` for a split that selects no example)."""
    from data import loading

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive number of examples or None (all), got {limit!r}")
    dataset = registry.info(name)
    split = dataset.held_out_split if split is None else split
    source = loading.load(name, split, data_dir, **config)
    count = len(source) if limit is None else min(limit, len(source))
    return Examples(source, count, dataset.test_resolution)


def load_examples(name: str, split: str | None, data_dir, limit: int | None = None, /, **config) -> list[dict]:
    """`split_examples` decoded at once into a list (for the small splits of the experiments)."""
    return list(split_examples(name, split, data_dir, limit, **config))


def synthetic_scenes(split: str, count: int, size: tuple[int, int]) -> list[dict]:
    """``count`` synthetic scenes of ``size`` (height, width) rendered with the seeds of ``split``
    (``data.registry.SYNTHETIC_SEEDS[split] + i``); no build needed."""
    from data.synthetic import make_scene

    registry.check_synthetic_split(split)
    registry.check_synthetic_count(count)
    return [make_scene(registry.SYNTHETIC_SEEDS[split] + i, *size) for i in range(count)]
