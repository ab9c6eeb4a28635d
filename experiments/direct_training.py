r"""Sec. 5.1 / Fig. 7: train the network directly on occlusion-order labels (the baseline the paper rejects).

    python -m experiments.direct_training [--smoke] [--steps N] [--train-minutes M] \
        [--checkpoint WORKDIR|FOLDER|synthetic]

The semantic head is trained with cross-entropy on the labels of Sec. 5.1 (background 0; an instance gets
1 + the largest label among the instances it occludes, ``data.targets.order_labels``), clipped at
``MAX_LABEL``; the b and e heads keep their usual targets. At test time the argmax label map is read the way
the CRF's labels are (``crf.instances``): instances are the 4-connected components of equal non-zero labels,
and a larger label occludes a smaller one. Order labels have no class, so the comparison is class-agnostic;
with ``--checkpoint`` (e.g. the demo's ``runs/demo/train_cpu``) Joint-Labeling (network + CRF) is scored
the same way. Writes ``runs/direct_training/results.md`` and ``depth_maps.png`` (Fig. 7).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from experiments import common, flags, variants
from oosis_jax.evaluation import tables

MAX_LABEL = 8
DIRECT_ROW = "Direct training on order labels (Sec. 5.1)"
JOINT_ROW = "Joint-Labeling (network + CRF)"


class OrderLabelExamples:
    """Random-access source whose ``classes`` are each instance's Sec. 5.1 order label, clipped at
    ``max_label``: the semantic target ``targets.semantic_map(instance_map, classes)`` of the training
    pipeline then is the order-label map of the whole scene."""

    def __init__(self, source, max_label: int = MAX_LABEL):
        if max_label < 1:
            raise ValueError(f"max_label must be >= 1, got {max_label}")
        self.source, self.max_label = source, max_label

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict:
        example = dict(self.source[index])
        example["classes"] = instance_order_labels(example["instance_map"], example["edges"], self.max_label)
        return example


def instance_order_labels(instance_map, edges, max_label: int = MAX_LABEL) -> np.ndarray:
    """``int32 (N,)``: the Sec. 5.1 label of instances 1..N (``targets.order_labels``), clipped at max_label."""
    from data import targets

    instance_map = np.asarray(instance_map)
    labels = targets.order_labels(instance_map, edges)
    per_instance = np.zeros(int(instance_map.max()) + 1, dtype=np.int32)
    per_instance[instance_map.ravel()] = labels.ravel()
    return np.minimum(per_instance[1:], max_label)


def labels_to_prediction(s_prob: np.ndarray):
    """A class-agnostic ``Prediction`` from the order-label probabilities ``float (H, W, MAX_LABEL + 1)``:
    argmax labels, their components as instances (class 1), the mean winning probability as score."""
    import crf
    from oosis_jax.inference.instances import Prediction

    labels = s_prob.argmax(-1).astype(np.int32)
    instance_map, edges = crf.instances(labels)
    count = int(instance_map.max())
    confidence = s_prob.max(-1)
    sums = np.bincount(instance_map.ravel(), weights=confidence.ravel(), minlength=count + 1)[1:]
    sizes = np.bincount(instance_map.ravel(), minlength=count + 1)[1:]
    height, width = labels.shape
    return Prediction(instance_map=instance_map, classes=np.ones(count, np.int32), scores=sums / sizes,
                      edges=edges, labels=labels, b=np.zeros((height, width), np.float32),
                      e=np.full((height, width, 4), 0.25, np.float32), s=s_prob.astype(np.float32))


def class_agnostic(items: list) -> list:
    """Copies of ground-truth dicts or ``Prediction``s with every instance of class 1."""
    if items and isinstance(items[0], dict):
        return [{**x, "classes": np.ones(len(x["classes"]), np.int32)} for x in items]
    return [dataclasses.replace(p, classes=np.ones(len(p.classes), np.int32)) for p in items]


def train_direct(s: flags.Setup, args):
    """Train (or resume) the direct model in ``s.out/train``; returns ``(model, seconds, steps, config)``."""
    from oosis_jax.training import loop as train

    config = common.train_config(s)
    config = config.replace(name="direct_training", model=dataclasses.replace(config.model, num_classes=MAX_LABEL),
                            num_steps=2 if s.smoke else (args.steps or config.num_steps),
                            checkpoint_every=1 if s.smoke else 50, eval_every=10**9)
    train_source, val_source = train.open_sources(config)
    sources = (OrderLabelExamples(train_source), OrderLabelExamples(val_source))
    budget = None if s.smoke else 60 * args.train_minutes
    model, seconds, steps = common.train_model(config, s.out / "train", budget, sources=sources, program=s.program)
    return model, seconds, steps, config


def run(s: flags.Setup, args, network=None) -> dict:
    """Rows of the table (evaluation results keyed by row name) plus the Fig. 7 panel's path; ``network``
    (anything `common.predictor` takes): the Joint-Labeling model compared with, if any."""
    from oosis_jax import evaluation, visualize
    from oosis_jax.inference import network as predict

    examples = common.held_out_examples(s)
    ground_truth = class_agnostic(examples)
    model, seconds, steps, config = train_direct(s, args)
    heads = [predict.head_probabilities(model, x["image"]) for x in examples]
    direct = [labels_to_prediction(h["s"]) for h in heads]
    results = {DIRECT_ROW: evaluation.evaluate(direct, ground_truth, boundaries=False, progress=False)}
    if network is not None:
        joint = class_agnostic(common.predict(network, examples, s))
        results[JOINT_ROW] = evaluation.evaluate(joint, ground_truth, boundaries=False, progress=False)
    panels, titles = [], []
    for x, p in list(zip(examples, direct))[:3]:
        depths = visualize.relative_depth_maps([(p.instance_map, p.edges), (x["instance_map"], x["edges"])])
        panels += [x["image"], visualize.depth_map_rgb(depths[0], instance_map=p.instance_map),
                   visualize.depth_map_rgb(depths[1], instance_map=x["instance_map"])]
        titles += ["input", f"direct training ({int(p.instance_map.max())} inst.)",
                   f"ground truth ({len(x['classes'])} inst.)"]
    figure = visualize.save_panel(s.out / "depth_maps.png", panels, titles, ncols=3, caption=visualize.DEPTH_KEY)
    training = {"steps": steps, "seconds": seconds, "config": config.to_dict()}
    return {"results": results, "training": training, "figure": figure}


def main(argv=None):
    p = variants.add_training_args(flags.parser(__doc__, "direct_training"))
    p.add_argument("--checkpoint", default=None,
                   help="Joint-Labeling network to compare with (workdir, exported folder or shipped name)")
    args = variants.parse_training_args(p, argv)
    s = flags.setup(args)
    out = run(s, args, common.checkpoint_predictor(args.checkpoint, s))
    table = tables.markdown(tables.SUMMARY_HEADERS, [tables.summary_row(n, r) for n, r in out["results"].items()])
    m, t = out["training"]["config"]["model"], out["training"]
    notes = (f"Class-agnostic (order labels have no class). Direct model: PSPNet blocks {tuple(m['stage_blocks'])} "
             f"width {m['width']}, {t['steps']} steps, {t['seconds'] / 60:.1f} min in this call; "
             f"{common.hardware()}.")
    common.report(s, "Sec. 5.1: direct training on occlusion-order labels", table, notes, data=out,
                  plots=[out["figure"]], images=out["results"][DIRECT_ROW]["num_images"])
    return out


if __name__ == "__main__":
    main()
