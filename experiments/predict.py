"""Predict ordered instances for a folder of images (or a dataset split in ground-truth mode).

    python -m experiments.predict --checkpoint synthetic --images IMAGES --out OUT  # the shipped model
    python -m experiments.predict --checkpoint WORKDIR --images IMAGES --out OUT    # a training run
    python -m experiments.predict --gt --dataset synthetic --split test --data-dir DIR --out DIR

Writes per image ``STEM.json`` (COCO RLE masks, classes, scores, occlusion edges) and the PNGs
``STEM_depth.png`` (relative depth map), ``STEM_boundaries.png`` (oriented boundaries after NMS) and
``STEM_overlay.png``. Images are read, predicted and written ``--chunk-size`` at a time, so a folder of any
size runs in the memory of one chunk; the CRF labels each chunk's images in parallel on every core
(``crf.solve_many``).
A file that cannot be read (empty, truncated, corrupt, without pixels, or sharing its stem with
another file) or whose prediction or writing fails is reported by its file name with the reason, and its
outputs of an earlier run into ``--out`` are removed (they would pass for this run's); every other image is
still predicted and written, and the exit status is then 1. Each ``STEM.json`` is written after its pictures,
so a JSON is never there without them. Options of the other mode (``--dataset``, ``--split``, ``--data-dir``,
``--dataset-config`` and ``--limit`` with ``--checkpoint``; ``--images``, ``--tile-size`` and ``--tile-overlap``
with ``--gt``) are refused rather than ignored, and ``--out`` is created before any work.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from data.examples import progress, readable
from data.registry import info
from experiments import flags
from oosis_jax.inference import files as prediction_io
from oosis_jax.inference import instances as prediction


# options that only one mode reads (dest -> flag)
NETWORK_ONLY = {"images": "--images", **flags.TILE_OPTIONS}
GROUND_TRUTH_ONLY = {"dataset": "--dataset", "split": "--split", "data_dir": "--data-dir",
                     "dataset_config": "--dataset-config", "limit": "--limit"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.predict",
                                     description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    flags.add_source_arguments(parser)
    parser.add_argument("--images", help="folder of images (with --checkpoint)")
    flags.add_dataset_arguments(parser)  # of --gt (a checkpoint knows its own dataset)
    parser.add_argument("--limit", type=flags.positive_int, default=None,
                        help="first N examples of the split, in its build's file order (--gt)")
    flags.add_crf_arguments(parser)
    args, given = flags.parse_noting_given(parser, argv, [*NETWORK_ONLY, *GROUND_TRUTH_ONLY])
    if args.gt:
        flags.refuse_unused(parser, given, NETWORK_ONLY, "--gt (the CRF labels the dataset split's ground truth; "
                                                         "no network, no image folder)")
        args.split = flags.split_of(args)
    else:
        flags.refuse_unused(parser, given, GROUND_TRUTH_ONLY, "--checkpoint (it predicts the --images folder; "
                                                              "the dataset options are for --gt)")
        if not args.images:
            parser.error("--checkpoint needs --images")
        args.images = os.path.expanduser(args.images)  # as --out's
        if not Path(args.images).is_dir():
            parser.error(f"--images {args.images} is not a folder")
        if Path(args.out).resolve() == Path(args.images).resolve():
            parser.error("--out must differ from --images: the outputs (NAME_overlay.png ...) would overwrite or "
                         "join the input images")
        flags.check_tile_arguments(parser, args)
    flags.make_folder(parser, "--out", args.out)
    return args


# what the modes yield for each image written: (name in reports, stem of the outputs, image, prediction)
Predicted = Iterator[tuple[str, str, np.ndarray, object]]


def _network_predictions(args, failures) -> tuple[list[str] | None, Predicted]:
    """The model's class names (None when it predicts another number of classes than its dataset has) and an
    iterator of ``(file name, stem, image, prediction)`` over the readable images of ``args.images`` in name order,
    read and predicted ``args.chunk_size`` at a time (`Predictor.predict_keyed`); a file that cannot be read, or
    whose network or CRF step fails, is appended to ``failures`` as (file name, stem, reason)."""
    from oosis_jax.inference import network as predict

    twins = []  # (file name, reason) of files sharing a stem
    try:  # no image file at all: one line, before the model loads
        files = prediction_io.image_files(args.images, twins)
    except ValueError as err:
        raise flags.UsageError("predict", str(err)) from None
    failures.extend((name, Path(name).stem, reason) for name, reason in twins)
    others = sorted(p.name for p in Path(args.images).iterdir() if p.is_file() and p.suffix.lower() not in
                    prediction_io.IMAGE_SUFFIXES)
    folders = sorted(p.name for p in Path(args.images).iterdir() if p.is_dir())
    if folders:
        print(f"predict: {len(folders)} subfolder(s) left alone (the folder is not read recursively), e.g. "
              f"{', '.join(folders[:3])}")
    if others:
        print(f"predict: {len(others)} file(s) without an image suffix ({', '.join(prediction_io.IMAGE_SUFFIXES)}) "
              f"left alone, e.g. {', '.join(others[:3])}")
    predictor = flags.load_predictor("predict", args.checkpoint, tile_size=args.tile_size,
                                     tile_overlap=args.tile_overlap)
    predictor = predictor.replace(method=args.method, processes=args.processes)
    print(f"network on {predict.device_summary()}")
    bar = tqdm(total=len(files), desc="predict", unit="image")

    def readable():  # ((path, image), image) of each file that can be read
        for path in files:
            try:
                image = prediction_io.read_image(path)
            except ValueError as err:
                failures.append((path.name, path.stem, str(err)))
                bar.update()  # an unreadable file is done too
                continue
            yield (path, image), image

    def predicted():
        with bar:
            for (path, image), item in predictor.predict_keyed(readable(), args.chunk_size, progress=False,
                                                                 chunk_progress=True):
                bar.update()
                if isinstance(item, prediction.ImageFailure):
                    failures.append((path.name, path.stem, item.reason))
                else:
                    yield path.name, path.stem, image, item

    names = info(predictor.config.dataset).class_names
    # a model trained on other data (`loop.train(..., sources=...)`) with another class count: its ids are not
    # that dataset's classes, so the files name none
    return (names if len(names) == predictor.config.model.num_classes else None), predicted()


def _ground_truth_predictions(args, failures) -> tuple[list[str], Predicted]:
    """The dataset's class names and an iterator of ``(stem, stem, image, prediction)`` of the CRF on each
    example's ground truth (stem: its image id, zero-padded to at least 6 digits), ``args.chunk_size`` examples
    at a time, in the split's file order; an example the CRF fails on is appended to ``failures`` as (stem, stem,
    reason), one that cannot be read as ("example I", None, reason)."""
    examples = flags.split_examples("predict", args, flags.dataset_config("predict", args))
    dataset = info(args.dataset)

    def predicted():
        unreadable = []
        pairs = prediction.label_ground_truth_iter(readable(examples, unreadable), dataset.num_classes,
                                                   args.chunk_size, method=args.method, processes=args.processes,
                                                   progress=False)
        for x, item in progress(pairs, len(examples), unreadable, "CRF on ground truth"):
            stem = f"{int(x['image_id']):06d}"
            if isinstance(item, prediction.ImageFailure):
                failures.append((stem, stem, item.reason))
            else:
                yield stem, stem, x["image"], item
        failures.extend((f"example {i}", None, f"{reason} (its image id is unknown: outputs an earlier run wrote "
                                                f"for it, if any, are not removed)") for i, reason in unreadable)

    return dataset.class_names, predicted()


def main(argv=None):
    """Predict and write every readable image as soon as it is labelled; each failure is reported by name and
    its earlier outputs are removed, and the exit status is 1 when any image failed (``SystemExit``)."""
    args = parse_args(argv)
    failures = []  # (image name, stem of its outputs, reason)
    class_names, predicted = (_ground_truth_predictions if args.gt else _network_predictions)(args, failures)
    written = 0
    for name, stem, image, pred in predicted:
        try:  # on failure it leaves none of the stem's outputs
            prediction_io.write_prediction(pred, image, args.out, stem, class_names)
            written += 1
        except Exception as err:  # noqa: BLE001 - one image never sinks the run
            failures.append((name, stem, f"writing failed: {type(err).__name__}: {err}"))
    print(f"wrote {written} predictions to {args.out}")
    if written:  # the pictures carry their keys as PNG metadata, which few viewers show
        print("\n".join(f"  STEM_{name}.png: {key}" for name, key in prediction_io.picture_keys().items()))
    if failures:
        for name, stem, reason in failures:
            try:
                if stem is not None:  # an example that could not be read has no known id: no outputs to find
                    prediction_io.remove_prediction(args.out, stem)
            except OSError as err:
                reason += f" (its earlier outputs {stem}.json etc. remain: {err})"
            print(f"FAILED {name}: {reason}", file=sys.stderr)
        print(f"{len(failures)} image(s) failed, see above", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
