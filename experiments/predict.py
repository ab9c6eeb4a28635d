"""Predict ordered instances for a folder of images (or a dataset split in ground-truth mode).

    python -m experiments.predict --checkpoint synthetic --images DIR --out DIR     # the shipped model
    python -m experiments.predict --checkpoint WORKDIR --images DIR --out DIR       # a training run
    python -m experiments.predict --gt --dataset synthetic --split test --data-dir DIR --out DIR

Writes per image ``STEM.json`` (COCO RLE masks, classes, scores, occlusion edges) and the PNGs
``STEM_depth.png`` (relative depth map), ``STEM_boundaries.png`` (oriented boundaries after NMS) and
``STEM_overlay.png``. The CRF labels all images in parallel on every core (``crf.solve_many``).
A file that cannot be read (empty, truncated, corrupt, under 2 pixels high or wide, or sharing its stem with
another file) or whose prediction fails is reported by name with the reason; every other image is still
predicted and written, and the exit status is then 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm.auto import tqdm

from data import examples as eval_data
from data.registry import info
from experiments import flags
from oosis_jax.inference import files as prediction_io
from oosis_jax.inference import instances as prediction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    flags.add_source_arguments(parser)
    parser.add_argument("--images", help="folder of images (with --checkpoint)")
    flags.add_dataset_arguments(parser)  # of --gt (a checkpoint knows its own dataset)
    parser.add_argument("--limit", type=int, default=None, help="first N examples of the split (--gt)")
    flags.add_crf_arguments(parser)
    args = parser.parse_args(argv)
    if args.checkpoint and not args.images:
        parser.error("--checkpoint needs --images")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        parser.error(f"--out {args.out} is a file, not a folder")
    if args.images and not Path(args.images).is_dir():
        parser.error(f"--images {args.images} is not a folder")
    args.split = flags.split_of(args)
    return args


def _network_heads(predictor, named, failures) -> list[tuple[str, object, dict]]:
    """``(stem, image, heads)`` of every image the network could run on (heads on the grid stage 2 labels
    at): batched (`Predictor.heads`); if
    that fails, image by image, so that a failing one is appended to ``failures`` and the others are kept."""
    try:
        heads = predictor.heads([i for _, i in named], label_grid=True)
        return [(stem, image, h) for (stem, image), h in zip(named, heads)]
    except Exception:  # noqa: BLE001 - find the failing image(s) below, one image never sinks the run
        heads = []
        for stem, image in tqdm(named, desc="network, image by image"):
            try:
                heads.append((stem, image, predictor.heads([image], progress=False, label_grid=True)[0]))
            except Exception as err:  # noqa: BLE001
                failures.append((stem, f"network failed: {type(err).__name__}: {err}"))
        return heads


def _network_predictions(args, failures):
    """``(stems, images, predictions, class_names)`` of the readable images of ``args.images``; a file that
    cannot be read, or whose network or CRF step fails, is appended to ``failures`` as (name, reason)."""
    import crf
    from oosis_jax import Predictor
    from oosis_jax.inference import network as predict

    try:  # no readable image at all: one line, before the model loads
        named = prediction_io.read_images(args.images, failures)
    except ValueError as err:
        raise SystemExit(f"predict: {err}") from None
    predictor = Predictor.from_pretrained(args.checkpoint, tile_size=args.tile_size, tile_overlap=args.tile_overlap)
    class_names = info(predictor.config.dataset).class_names
    print(f"network on {predict.device_summary()}")
    heads = _network_heads(predictor, named, failures)
    try:
        labelled = predictor.replace(method=args.method, processes=args.processes).label(
            [h for _, _, h in heads], shapes=[image.shape[:2] for _, image, _ in heads],
            images=[image for _, image, _ in heads])
    except crf.BatchError as err:  # keep the images the CRF labelled
        for i, failure in err.failures.items():
            failures.append((heads[i][0], f"CRF failed: {type(failure).__name__}: {failure}"))
        labelled = err.results  # finished (joined, scored) by label
    kept = [(stem, image, pred) for (stem, image, _), pred in zip(heads, labelled) if pred is not None]
    return [x[0] for x in kept], [x[1] for x in kept], [x[2] for x in kept], class_names


def main(argv=None):
    """Predict and write every readable image; each failure is reported by name, and the exit status is 1
    when any image failed (``SystemExit``)."""
    args = parse_args(argv)
    failures = []  # (image name, reason)
    if args.gt:
        class_names = info(args.dataset).class_names
        examples = eval_data.load_examples(args.dataset, args.split, args.data_dir, args.limit,
                                           **flags.parse_key_values(args.dataset_config))
        stems = [f"{int(x['image_id']):06d}" for x in examples]
        images = [x["image"] for x in examples]
        predictions = prediction.label_ground_truth(examples, len(class_names), method=args.method,
                                                    processes=args.processes)
    else:
        stems, images, predictions, class_names = _network_predictions(args, failures)
    written = 0
    for stem, image, pred in tqdm(list(zip(stems, images, predictions)), desc="writing"):
        try:
            prediction_io.write_prediction(pred, image, args.out, stem, class_names)
            written += 1
        except Exception as err:  # noqa: BLE001 - one image never sinks the run
            failures.append((stem, f"writing failed: {type(err).__name__}: {err}"))
    print(f"wrote {written} predictions to {args.out}")
    if failures:
        for name, reason in failures:
            print(f"FAILED {name}: {reason}", file=sys.stderr)
        print(f"{len(failures)} image(s) failed, see above", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
