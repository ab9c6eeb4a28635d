"""The one-line API: image in, ordered instances out.

    from oosis_jax import Predictor
    predictor = Predictor.from_pretrained("synthetic")    # the model shipped in the repository
    prediction = predictor(image)                          # uint8 (H, W, 3), any size (>= 1x1)
    prediction.instance_map, prediction.classes, prediction.scores, prediction.edges
    predictions = predictor.predict_many(images)           # batched network, CRF on every core
    for prediction in predictor.predict_iter(images):      # any number of images, a chunk in memory

``from_pretrained`` takes a shipped name (`SHIPPED`), an exported model folder (``config.json`` +
``weights.npz``, written by `export`) or a training run's work directory (its latest orbax checkpoint).
A `Prediction` follows the array conventions of docs/contracts.md (``instance_map`` int32 (H, W), ``classes``
int32 (N,), ``scores`` float64 (N,), ``edges`` int32 (M, 2) with (a, b) = a occludes b).
"""

from __future__ import annotations

import collections
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence, Sized

import crf
import jax
import numpy as np
from flax import nnx
from tqdm.auto import tqdm

from crf.batch import METHODS
from crf.move_graph import check_weights
from oosis_jax.inference import network
from oosis_jax.inference.augment import Augmentation, augmented_heads
from oosis_jax.inference.exported import (CONFIG_FILE, EXPORT_KEYS, SHIPPED, WEIGHTS_DIR, WEIGHTS_FILE, export,
                                          exported_options, load_exported, model_folder, model_names)
from oosis_jax.inference.files import check_image, checked_images, refuse_one_image
from oosis_jax.inference.instances import (LAMBDA, MU, BadItem, ImageFailure, Prediction, failure_reason,
                                          in_chunks, label_heads)
from oosis_jax.inference.joining import JoinModel, fit_join_model, join
from oosis_jax.inference.robustness import Robustness
from oosis_jax.inference.scoring import ScoreModel, fit_score_model, rescore
from oosis_jax.models import PSPNet
from oosis_jax.models.outputs import PAD_COLOR
from oosis_jax.training.configs import TrainConfig

# the exported-folder format lives in `oosis_jax.inference.exported`; its names are part of this module's API too
__all__ = ["CONFIG_FILE", "EXPORT_KEYS", "SHIPPED", "WEIGHTS_DIR", "WEIGHTS_FILE", "Predictor", "export",
           "exported_options", "finish", "load_exported", "model_folder"]


BATCH_SIZE = 8  # images per network call, by default


def _all_or_batch_error(done: dict[int, object], failures: dict[int, Exception], count: int, source: str) -> list:
    """The ``count`` results in index order when nothing failed; else a ``crf.BatchError`` carrying them (None
    at the failed indices)."""
    results = [done.get(i) for i in range(count)]
    if failures:
        raise crf.BatchError(results, dict(sorted(failures.items())), source=source)
    return results


def finish(prediction: Prediction, image: np.ndarray | None, join_model: JoinModel | None,
           score_model: ScoreModel | None) -> Prediction:
    """A fresh CRF result with the pieces of occluded objects joined by ``join_model`` (which needs the uint8
    ``image``) and scored by ``score_model``, each if not None: `Predictor.finish` with explicit models, for
    callers that label cached heads without loading a network (``experiments.held_out``)."""
    if join_model is not None:
        if image is None:
            raise ValueError("a predictor with a join_model needs the image to finish a prediction")
        prediction = join(prediction, check_image(image), join_model)
    return prediction if score_model is None else rescore(prediction, score_model)


class Predictor:
    """A trained network plus the CRF: ``predictor(image) -> Prediction``.

    ``method``: the CRF minimiser (``"solve"``, ``crf.solve``, by default); ``lam``, ``mu``: Eq. (8);
    ``robustness``: `oosis_jax.inference.robustness` options (the shipped model's card says which it was measured
    with); ``batch_size``: images per network call in `predict_many`; ``processes``: CRF worker processes
    (None = every core this process may use); ``tile_size`` (>= 64, the padding multiple), ``tile_overlap`` (at
    most half a tile): an image whose padded size (multiples of 64) exceeds a tile is predicted in overlapping
    tiles (`oosis_jax.inference.network.head_probabilities`), so a tile size that is a multiple of 64 wastes none;
    ``score_model``: a `oosis_jax.inference.scoring.ScoreModel` that replaces the paper's ad-hoc instance scores
    (None keeps them); ``augmentation``: the test-time views whose heads are averaged
    (`oosis_jax.inference.augment`; the default is one plain pass); ``join_model``: a
    `oosis_jax.inference.joining.JoinModel` that joins the pieces of an object cut by an occluder after the CRF
    (None keeps the paper's connected components).
    """

    def __init__(self, model: PSPNet, config: TrainConfig, *, method: str = "solve", lam: float = LAMBDA,
                 mu: float = MU, robustness: Robustness = Robustness(), batch_size: int = BATCH_SIZE,
                 processes: int | None = None, tile_size: int = network.TILE_SIZE,
                 tile_overlap: int = network.TILE_OVERLAP, score_model: ScoreModel | None = None,
                 augmentation: Augmentation = Augmentation(), join_model: JoinModel | None = None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        network.check_tiles(tile_size, tile_overlap)
        for name, value, kind in (("robustness", robustness, Robustness), ("augmentation", augmentation, Augmentation)):
            if not isinstance(value, kind):
                raise ValueError(f"{name} must be of type {kind.__name__} ({kind.__name__}.parse reads the text form "
                                 f"'key=value,...'), got {type(value).__name__}")
        for name, value, kind in (("score_model", score_model, ScoreModel), ("join_model", join_model, JoinModel)):
            if value is not None and not isinstance(value, kind):
                raise ValueError(f"{name} must be None or a {kind.__name__}, got {type(value).__name__}")
        if not (callable(method) or method in METHODS):
            raise ValueError(f"method must be one of {sorted(METHODS)} or a callable, got {method!r}")
        check_weights(lam, mu)  # real, finite, >= 0: as the CRF would check them, but before the network runs
        if processes is not None and (isinstance(processes, bool) or not isinstance(processes, int) or processes < 1):
            raise ValueError(f"processes must be None (every core) or an int >= 1, got {processes!r}")
        self.model, self.config = model, config
        self.method, self.lam, self.mu, self.robustness = method, lam, mu, robustness
        self.batch_size, self.processes = batch_size, processes
        self.tile_size, self.tile_overlap = tile_size, tile_overlap
        self.score_model, self.augmentation, self.join_model = score_model, augmentation, join_model
        self._replica = None  # (the model's arrays it copies, device ids, the copy): `_model_on`

    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike, **options) -> "Predictor":
        """A predictor for a shipped model name, an exported folder (with the options it was exported with,
        `exported_options`) or a training work directory (the paper's CRF options); ``options`` override, and
        the folder's options they replace are not read (``join_model=None`` loads a folder whose join model was
        fitted on an earlier version's features). Under several processes (``jax.distributed``) a work directory
        is read through orbax, which waits for every process: call it in all of them, or load an exported folder
        (`export`), which each process reads alone."""
        text = os.fspath(name_or_dir)
        path = model_folder(text)
        if (path / WEIGHTS_FILE).exists():
            model, config = load_exported(path)
            saved = exported_options(path, skip=tuple(options))
            try:
                cls(model, config, **saved)
            except ValueError as err:
                raise ValueError(f"{path / CONFIG_FILE}: its export options are not valid: {err}") from err
            return cls(model, config, **{**saved, **options})
        if path.is_dir():
            from oosis_jax.training.loop import restore_model

            if not (path / "checkpoints").is_dir():
                raise ValueError(f"{path} holds neither {WEIGHTS_FILE} (an exported model) nor a checkpoints/ "
                                 f"folder (a training run)")
            return cls(*restore_model(str(path)), **options)
        raise ValueError(f"{text!r} is neither a model name (those of oosis_jax/weights: "
                         f"{', '.join(model_names()) or 'none'}) nor an existing model or run folder")

    def __call__(self, image) -> Prediction:
        image = check_image(image)
        try:
            return self.predict_many([image], progress=False)[0]
        except crf.BatchError as err:  # the CRF, or finishing its result, failed on it: its own error
            failure = err.failures[0]
            raise failure from failure.__cause__

    def heads(self, images: Iterable[np.ndarray], progress: bool = True, label_grid: bool = False) -> list[dict]:
        """Network head probabilities ``dict(s, b, e)`` per image (numpy float32, each image's own size, or
        with ``label_grid`` the size stage 2 labels it at: ``augmentation.label_shape``), averaged over the
        views of ``augmentation``. A bad image (not uint8 (H, W, 3) with at least one pixel) does not stop
        the others: once they are done, a ``crf.BatchError`` names each bad index and carries their heads; one
        image's array in place of the sequence is a ``ValueError`` (`files.refuse_one_image`)."""
        good, failures = checked_images(images)
        heads = self._heads_of_checked(list(good.values()), progress, label_grid)
        return _all_or_batch_error(dict(zip(good, heads)), failures, len(good) + len(failures), "Predictor.heads")

    def _heads_of_checked(self, images: list[np.ndarray], progress: bool, label_grid: bool) -> list[dict]:
        """`heads` of images `check_image` has passed (each view's network pass its own progress bar)."""
        count = len(self.augmentation.views) * len(self.augmentation.shifts)
        passes = iter(range(1, count + 1))

        def heads_of(views):
            return self.forward(views, progress, desc=f"network (view {next(passes)}/{count})" if count > 1 else
                                "network")
        return augmented_heads(heads_of, images, self.augmentation, label_grid)

    def forward(self, images: Sequence[np.ndarray], progress: bool = True, desc: str = "network") -> list[dict]:
        """One network pass per checked uint8 image: ``dict(s, b, e)`` float32, each image's own size (``desc``
        names its progress bar).

        Images that fit in one tile are padded to multiples of ``network.PAD_MULTIPLE`` and run
        ``batch_size`` at a time per padded shape, each batch split over this process's devices
        (`network.local_mesh`; filled up to a multiple of their count, which may exceed ``batch_size``); larger
        images are tiled one by one, on the model's own device. A chunk of fewer images
        is filled with blank images up to `network.padded_batch`, so a padded shape compiles one program per power
        of two below ``batch_size`` (and one for ``batch_size``) rather than one per remainder: about 5 s each on
        2 CPU cores for the shipped model, far more for the paper's ResNet-50.
        """
        out: list[dict | None] = [None] * len(images)
        groups: dict[tuple[int, int], list[int]] = {}
        mesh = network.local_mesh()
        # leave=None: cleared when it runs below another bar; it counts the tiled images too (a 615x2048 KINS
        # image takes about 45 s through a CPU's ResNet-50)
        bar = tqdm(total=len(images), desc=desc, disable=not progress, leave=None)
        for i, image in enumerate(images):
            shape = network.padded_shape(*image.shape[:2])
            if max(shape) > self.tile_size:
                out[i] = network.head_probabilities(self.model, image, self.tile_size, self.tile_overlap)
                bar.update()
            else:
                groups.setdefault(shape, []).append(i)
        model = self.model if mesh is None or not groups else self._model_on(mesh)  # tiles use self.model
        for (height, width), members in groups.items():
            for start in range(0, len(members), self.batch_size):
                chunk = members[start:start + self.batch_size]
                count = network.padded_batch(len(chunk), self.batch_size)
                count = count if mesh is None else -(-count // mesh.size) * mesh.size  # a share per device
                padded = np.broadcast_to(PAD_COLOR, (count, height, width, 3)).copy()
                for k, i in enumerate(chunk):
                    padded[k, :images[i].shape[0], :images[i].shape[1]] = images[i]
                s, b, e = network.batch_heads(model, padded, mesh)
                for k, i in enumerate(chunk):
                    h, w = images[i].shape[:2]
                    # copies: views were read-only and kept the whole padded batch alive in every Prediction
                    out[i] = {"s": s[k, :h, :w].copy(), "b": b[k, :h, :w].copy(), "e": e[k, :h, :w].copy()}
                bar.update(len(chunk))
        bar.close()
        return out

    def predict_many(self, images: Iterable[np.ndarray], progress: bool = True) -> list[Prediction]:
        """One `Prediction` per uint8 (H, W, 3) image, in order; the CRF labels all images on every core.

        One bad item does not stop the others: an image that is not uint8 (H, W, 3) with at least one
        pixel (checked before any work) or that the CRF fails on is left out, and once the others are done a
        ``crf.BatchError`` (a ``ValueError``) names each failed index (the errors of the first five) and carries
        the other images' predictions in ``results`` (None at the failed ones). One image's array in place of the
        sequence is a ``ValueError`` (`files.refuse_one_image`)."""
        good, failures = checked_images(images)
        index, checked, count = list(good), list(good.values()), len(good) + len(failures)
        try:
            done = self.label(self._heads_of_checked(checked, progress, label_grid=True), progress,
                              [image.shape[:2] for image in checked], checked)
        except crf.BatchError as err:  # indices of the checked images
            done = err.results
            failures.update({index[k]: failure for k, failure in err.failures.items()})
        return _all_or_batch_error(dict(zip(index, done)), failures, count, "Predictor.predict_many")

    def predict_iter(self, images: Iterable[np.ndarray], chunk_size: int = 16, progress: bool = True,
                     chunk_progress: bool | None = None) -> Iterator[Prediction | ImageFailure]:
        """`predict_many` chunk by chunk: one item per image of ``images``, in order, reading only ``chunk_size``
        images ahead, so a folder or a dataset split of any length is predicted in the memory of one chunk (the
        heads of one 1242x375 KINS image alone take about 26 MB, and the CRF's workers are kept between chunks).
        One image's array in place of the sequence is a ``ValueError`` at the first item (`files.refuse_one_image`).
        An image that is not uint8 (H, W, 3) with at least one pixel, or that the network or the CRF fails
        on, gives an `ImageFailure` (a ``ValueError`` naming its index and what failed) in place of its
        `Prediction`, and the images after it still come. ``progress``: a bar of the images; ``chunk_progress``
        (None: as ``progress``): the network's and the CRF's bars of each chunk below it, cleared after it (a
        chunk of KINS images takes minutes on a CPU)."""
        refuse_one_image(images)
        total = len(images) if isinstance(images, Sized) else None
        inner = progress if chunk_progress is None else chunk_progress
        with tqdm(total=total, desc="predict", unit="image", disable=not progress) as bar:
            start = 0
            for chunk in in_chunks(images, chunk_size):
                yield from self._predict_chunk(chunk, start, inner)
                start += len(chunk)
                bar.update(len(chunk))

    def predict_keyed(self, keyed: Iterable[tuple], chunk_size: int = 16, progress: bool = True,
                      chunk_progress: bool | None = None) -> Iterator[tuple[object, Prediction | ImageFailure]]:
        """`predict_iter` of ``(key, image)`` pairs: ``(key, its Prediction or ImageFailure)`` in order, so that
        a caller streaming files or examples keeps what belongs to each image (a file name, its ground truth)
        while only a chunk of them is held. An item that is not such a pair gives ``(None, ImageFailure)``."""
        pending = collections.deque()  # the keys of the images read and not yet predicted

        def images():
            for k, pair in enumerate(keyed):
                if isinstance(pair, tuple) and len(pair) == 2:
                    pending.append(pair[0])
                    yield pair[1]
                else:  # failed already: `_predict_chunk` passes it through
                    pending.append(None)
                    yield ImageFailure(k, f"not a (key, image) pair: got {type(pair).__name__}")

        for item in self.predict_iter(images(), chunk_size, progress, chunk_progress):
            yield pending.popleft(), item

    def _predict_chunk(self, chunk: list, start: int, progress: bool = False) -> list[Prediction | ImageFailure]:
        """`predict_iter`'s items for ``chunk``, the images from index ``start`` on; when the network fails on
        the chunk as a whole (e.g. out of memory), image by image. Failures of the CRF on single images
        (``crf.BatchError``) are named; any other error (a dead CRF worker, a bug) propagates. An `ImageFailure`
        in place of an image (`predict_keyed`'s malformed items) is its own item."""
        out, good = {}, {}
        for k, image in enumerate(chunk):
            if isinstance(image, ImageFailure):
                out[k] = image
                continue
            try:
                good[k] = check_image(image, "the image")
            except ValueError as err:
                out[k] = ImageFailure(start + k, f"not a valid image: {err}")
        keys, images = list(good), list(good.values())
        try:
            heads = self._heads_of_checked(images, progress=progress, label_grid=True)
        except Exception as err:  # noqa: BLE001 - the network failed on the chunk: find the image(s) it fails on
            for k in keys:
                out[k] = (self._predict_chunk([good[k]], start + k)[0] if len(keys) > 1 else
                          ImageFailure(start + k, f"network failed: {type(err).__name__}: {err}"))
            return [out[k] for k in range(len(chunk))]
        try:
            out.update(zip(keys, self.label(heads, progress, [image.shape[:2] for image in images], images)))
        except crf.BatchError as err:
            for j, prediction in enumerate(err.results):
                failure = err.failures.get(j)
                out[keys[j]] = prediction if failure is None else ImageFailure(start + keys[j],
                                                                               failure_reason(failure))
        return [out[k] for k in range(len(chunk))]

    def label(self, heads: Sequence[dict], progress: bool = True, shapes: Sequence | None = None,
              images: Sequence[np.ndarray] | None = None) -> list[Prediction]:
        """Stage 2 with this predictor's options: one `Prediction` per head dict ``(s, b, e)`` of `heads`;
        ``shapes``: each image's (H, W) when the heads lie on the views' grid (`heads` with ``label_grid``);
        ``images``: the uint8 images themselves, needed by a ``join_model``. When the CRF fails on some, or
        finishing them does (`finish`), the ``crf.BatchError`` raised carries the others' finished predictions in
        ``results`` (None at the failed)."""
        if images is not None and len(images) != len(heads):
            raise ValueError(f"{len(images)} images for {len(heads)} heads")
        if self.join_model is not None and images is None:
            raise ValueError("a predictor with a join_model needs the images of its heads to label them")
        failures: dict[int, Exception] = {}

        def finished(predictions):  # an item that cannot be finished (e.g. its image has another size) fails alone
            out = []
            for i, p in enumerate(predictions):
                try:
                    out.append(None if p is None else self.finish(p, None if images is None else images[i]))
                except ValueError as err:
                    failures[i] = BadItem(f"finishing failed: {type(err).__name__}: {err}")
                    failures[i].__cause__ = err  # its traceback, for a user who raises it
                    out.append(None)
            return out

        try:
            predictions = label_heads(heads, method=self.method, processes=self.processes, progress=progress,
                                      lam=self.lam, mu=self.mu, robustness=self.robustness, shapes=shapes)
        except crf.BatchError as err:
            err.results = finished(err.results)
            if not failures:
                raise
            raise crf.BatchError(err.results, dict(sorted({**err.failures, **failures}.items())), "labelling") from err
        done = finished(predictions)
        if failures:
            raise crf.BatchError(done, failures, "labelling")
        return done

    def finish(self, prediction: Prediction, image: np.ndarray | None = None) -> Prediction:
        """``prediction``, a fresh CRF result (the labelling's connected components with the ad-hoc scores of
        `instances.assemble`, not one finished already), with the pieces of occluded objects joined by
        ``join_model`` (which needs the uint8 ``image``) and scored by ``score_model``, each if set."""
        return finish(prediction, image, self.join_model, self.score_model)

    def fit_finish(self, examples: Sequence[dict], joins: bool = True, scores: bool = True,
                   progress: bool = True, skip_unfittable: bool = False) -> "Predictor":
        """A copy whose `JoinModel` (``joins``) and `ScoreModel` (``scores``) are fitted on this network's
        predictions of ``examples`` (annotated scenes not used in training: dicts with the uint8 ``image`` and
        its ground-truth ``instance_map``), with this predictor's CRF options and views: the joins first, on
        the unjoined pieces, then the score on the finished instances (it reads the ad-hoc score as a
        feature). The models this predictor already has are not used; one not fitted here is dropped.
        A model the predictions cannot fit (`fit_join_model`: no join candidates of both kinds;
        `fit_score_model`: too few instances) raises its ``ValueError``, or with ``skip_unfittable`` is left
        out (None, with a warning saying why) while the other is still fitted, from one prediction pass."""
        images = [example["image"] for example in examples]
        bare = self.replace(join_model=None, score_model=None)
        fitted = bare.predict_many(images, progress)

        def fit(kind, fitter, *args):
            try:
                return fitter(*args)
            except ValueError as err:
                if not skip_unfittable:
                    raise
                warnings.warn(f"no {kind} model fitted: {err}", stacklevel=3)
                return None

        if joins:
            bare = bare.replace(join_model=fit("join", fit_join_model, fitted, images, examples))
            if bare.join_model is not None:
                fitted = [bare.finish(p, image) for p, image in zip(fitted, images)]
        return bare.replace(score_model=fit("score", fit_score_model, fitted, examples)) if scores else bare

    def _model_on(self, mesh):
        """``self.model`` `network.replicated` on ``mesh``, copied again only when the mesh or one of the model's
        arrays has changed (held, not just their ids, so a replaced array is never taken for its successor)."""
        arrays, devices = jax.tree.leaves(nnx.state(self.model)), tuple(d.id for d in mesh.devices.flat)
        if self._replica is None or self._replica[1] != devices or len(self._replica[0]) != len(arrays) or any(
                a is not b for a, b in zip(self._replica[0], arrays)):
            self._replica = (arrays, devices, network.replicated(self.model, mesh))
        return self._replica[2]

    def replace(self, **changes) -> "Predictor":
        """A copy with some of the constructor's arguments changed: other CRF options (``method``,
        ``robustness``...) on the same network, or another ``model`` and ``config`` with the same options."""
        options = dict(model=self.model, config=self.config, method=self.method, lam=self.lam, mu=self.mu,
                       robustness=self.robustness, batch_size=self.batch_size, processes=self.processes,
                       tile_size=self.tile_size, tile_overlap=self.tile_overlap, score_model=self.score_model,
                       augmentation=self.augmentation, join_model=self.join_model)
        unknown = set(changes) - set(options)
        if unknown:
            raise TypeError(f"Predictor has no option(s) {sorted(unknown)}")
        options.update(changes)
        copy = Predictor(**options)
        if copy.model is self.model:  # the same network: its copies on the devices are shared too
            copy._replica = self._replica
        return copy
