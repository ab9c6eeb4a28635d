"""Predict ordered instances for a folder of images (or a dataset split in ground-truth mode).

    python -m experiments.predict --checkpoint WORKDIR --images DIR --out DIR
    python -m experiments.predict --gt --dataset synthetic --split test --data-dir DIR --out DIR

Writes per image ``STEM.json`` (COCO RLE masks, classes, scores, occlusion edges) and the PNGs
``STEM_depth.png`` (relative depth map), ``STEM_boundaries.png`` (oriented boundaries after NMS) and
``STEM_overlay.png``. The CRF labels all images in parallel on every core (``crf.solve_many``).
"""

from __future__ import annotations

import argparse

from tqdm.auto import tqdm

from data import loading
from experiments import flags as cli
from data import examples as eval_data
from oosis_jax.inference import instances as prediction
from oosis_jax.inference import files as prediction_io


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_source_arguments(parser)
    parser.add_argument("--images", help="folder of images (with --checkpoint)")
    parser.add_argument("--dataset", default="synthetic", help="dataset of --gt (a checkpoint knows its own)")
    parser.add_argument("--limit", type=int, default=None, help="first N examples of the split (--gt)")
    cli.add_crf_arguments(parser)
    args = parser.parse_args(argv)
    if args.checkpoint and not args.images:
        parser.error("--checkpoint needs --images")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.gt:
        class_names = loading.dataset_module(args.dataset).CLASS_NAMES
        examples = eval_data.load_examples(args.dataset, args.split, args.data_dir, args.limit,
                                           **eval_data.parse_config(args.dataset_config))
        stems = [f"{int(x['image_id']):06d}" for x in examples]
        images = [x["image"] for x in examples]
        predictions = prediction.label_ground_truth(examples, len(class_names), method=args.method,
                                                    processes=args.processes)
    else:
        from oosis_jax.inference import network as predict
        from oosis_jax.training import loop as train

        model, config = train.restore_model(args.checkpoint)
        class_names = loading.dataset_module(config.dataset).CLASS_NAMES
        stems, images = zip(*eval_data.read_images(args.images))
        print(f"network on {predict.device_summary()}")
        predictions = predict.predict_images(model, images, method=args.method, processes=args.processes,
                                             tile_size=args.tile_size, overlap=args.tile_overlap)
    for stem, image, pred in tqdm(list(zip(stems, images, predictions)), desc="writing"):
        prediction_io.write_prediction(pred, image, args.out, stem, class_names)
    print(f"wrote {len(predictions)} predictions to {args.out}")


if __name__ == "__main__":
    main()
