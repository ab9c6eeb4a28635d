"""The validation of a training run: its losses and boundary ODS/AP (Sec. 5.3), data-parallel as training is.

Each validation batch is padded to a multiple of the device count with examples whose pixels are all unlabelled
(``losses.IGNORE_LABEL``: no loss term counts them) and split over the ``data`` mesh, so every device computes
the network on its share of the batch, as in training, rather than every device on the whole batch. Each process
then matches the boundaries of the images its devices computed (the costly host part: about 0.3 s per KINS image)
and the per-image counts are gathered. Batch norm is in inference mode, so an image's outputs do not depend on
the others in its batch: the padding changes no real image's numbers.
"""

from __future__ import annotations

import math

import numpy as np
import jax
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from oosis_jax.evaluation import boundaries as boundary_eval
from oosis_jax.training import input_pipeline
from oosis_jax.training.global_batch import to_global
from oosis_jax.training.losses import IGNORE_LABEL
from oosis_jax.training.metrics_log import mean_metrics

EVAL_THRESHOLDS = np.linspace(0.05, 0.95, 19)


def batches(config, source):
    """The validation batches of a run (``TrainConfig`` ``config``) from ``source``: ``eval_batch_size`` examples
    each (the last may be short), resized to ``eval_resolution`` if set, the first ``eval_examples`` examples
    rounded up to whole batches (every one when None)."""
    out = input_pipeline.eval_dataset(source, batch_size=config.eval_batch_size, resize_to=config.eval_resolution,
                                      num_classes=config.model.num_classes)
    if config.eval_examples is not None:
        out = out[:math.ceil(config.eval_examples / config.eval_batch_size)]
    return out


def evaluate(eval_step, state, host_batches, mesh, keys=None) -> dict[str, float]:
    """Validation losses (``val_<term>``) and boundary ODS/AP (``val_boundary_ods``/``_ap``: plain ``b``;
    ``val_oriented_ods``/``_ap``: ``b`` with ``e``; `boundary_eval`), with a bar. ``eval_step(state, batch) ->
    (terms, b (B, H, W), e (B, H, W, 4))`` as `loop.make_eval_step` builds it; ``host_batches``: batches that
    every process iterates alike (``batch["boundary"]`` and ``batch["orientation"]`` are the matched ground
    truth; `batches` makes them); ``keys``: the entries the step reads (every entry when None)."""
    sums, counts, images = {}, {}, 0
    devices = mesh.devices.size
    for batch in tqdm(host_batches, desc="validation", leave=False, disable=jax.process_index() != 0):
        size = len(batch["boundary"])
        padded = -(-size // devices) * devices
        lo, hi = process_rows(mesh, padded)
        sent = {k: _padded(k, np.asarray(v), padded)[lo:hi] for k, v in batch.items() if keys is None or k in keys}
        terms, b, e = eval_step(state, to_global(sent, mesh, keys))
        for name, value in terms.items():
            sums[name] = sums.get(name, 0.0) + np.asarray(value, np.float64)
        b, e = _local(b, lo, hi), _local(e, lo, hi)
        for row in range(lo, min(hi, size)):
            counts[images + row] = boundary_eval.image_counts(
                np.asarray(b[row - lo], np.float64), np.asarray(e[row - lo], np.float64),
                batch["boundary"][row] > 0.5, batch["orientation"][row], thresholds=EVAL_THRESHOLDS)
        images += size
    every = _gathered(counts, images)
    plain = boundary_eval.summarize(every, oriented=False)
    oriented = boundary_eval.summarize(every, oriented=True)
    result = {f"val_{k}": v for k, v in mean_metrics(sums).items()}
    result.update(val_boundary_ods=plain["ODS"], val_boundary_ap=plain["AP"],
                  val_oriented_ods=oriented["ODS"], val_oriented_ap=oriented["AP"])
    return result


def process_rows(mesh, rows: int) -> tuple[int, int]:
    """``(lo, hi)``: the rows of a ``rows``-long batch split over the ``data`` mesh that this process's devices
    hold (what it passes to ``jax.make_array_from_process_local_data``)."""
    index = NamedSharding(mesh, P("data")).addressable_devices_indices_map((rows,))
    spans = [where[0].indices(rows)[:2] for where in index.values()]
    lo, hi = min(s for s, _ in spans), max(s for _, s in spans)
    if sum(stop - start for start, stop in spans) != hi - lo:
        raise ValueError(f"this process's devices hold rows {sorted(spans)} of the batch, not one block: the mesh "
                         "must give each process a contiguous share")
    return lo, hi


def _padded(key: str, value: np.ndarray, rows: int) -> np.ndarray:
    """``value`` with rows added up to ``rows``: unlabelled (``semantic``) or zero (everything else)."""
    extra = np.full((rows - len(value),) + value.shape[1:], IGNORE_LABEL if key == "semantic" else 0, value.dtype)
    return np.concatenate([value, extra])


def _local(x, lo: int, hi: int) -> np.ndarray:
    """This process's rows ``lo..hi-1`` of a global array, from its shards of it (split by rows or replicated)."""
    out = [None] * (hi - lo)
    for shard in x.addressable_shards:
        start, stop = shard.index[0].indices(x.shape[0])[:2] if shard.index else (0, x.shape[0])
        data = None
        for row in range(max(start, lo), min(stop, hi)):
            if out[row - lo] is None:
                data = np.asarray(shard.data) if data is None else data
                out[row - lo] = data[row - start]
    return np.stack(out)


def _gathered(mine: dict[int, np.ndarray], images: int) -> list[np.ndarray]:
    """Every image's (T, 5) counts in image order, from each process's own images ``mine`` (image -> counts)."""
    every = np.zeros((images, len(EVAL_THRESHOLDS), len(boundary_eval.COUNT_FIELDS)), np.int64)
    for image, counts in mine.items():
        every[image] = counts
    if jax.process_count() > 1:  # each image is one process's: the others' rows are zeros
        every = np.asarray(multihost_utils.process_allgather(every.astype(np.int32)), np.int64).sum(axis=0)
    return list(every)
