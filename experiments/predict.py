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
    args.split = flags.split_of(args)
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.gt:
        class_names = info(args.dataset).class_names
        examples = eval_data.load_examples(args.dataset, args.split, args.data_dir, args.limit,
                                           **flags.parse_key_values(args.dataset_config))
        stems = [f"{int(x['image_id']):06d}" for x in examples]
        images = [x["image"] for x in examples]
        predictions = prediction.label_ground_truth(examples, len(class_names), method=args.method,
                                                    processes=args.processes)
    else:
        from oosis_jax.inference import network as predict
        from oosis_jax.training import loop as train

        model, config = train.restore_model(args.checkpoint)
        class_names = info(config.dataset).class_names
        stems, images = zip(*prediction_io.read_images(args.images))
        print(f"network on {predict.device_summary()}")
        predictions = predict.predict_images(model, images, method=args.method, processes=args.processes,
                                             tile_size=args.tile_size, overlap=args.tile_overlap)
    for stem, image, pred in tqdm(list(zip(stems, images, predictions)), desc="writing"):
        prediction_io.write_prediction(pred, image, args.out, stem, class_names)
    print(f"wrote {len(predictions)} predictions to {args.out}")


if __name__ == "__main__":
    main()
