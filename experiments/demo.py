"""The main job end to end (``make demo``): predict held-out scenes with the shipped model, evaluate, draw.

    python -m experiments.demo [--train] [--config cpu|smoke|full] [--out runs/demo]

1. Data: the embedded synthetic occlusion scenes (``data.synthetic``), rendered deterministically from
   seeds (training seeds 0.., validation 10**6.., held-out test scenes 2*10**6..); no download.
2. Model: the pretrained synthetic model shipped in the repository (``Predictor.from_pretrained("synthetic")``,
   its card in ``oosis_jax/weights/synthetic/MODEL_CARD.md``). With ``--train``, also train the config's
   preset from scratch (``oosis_jax.training.loop.train``, Eq. 4; tqdm progress; orbax checkpoints in
   ``OUT/train_<config>``, so an interrupted demo resumes) and evaluate it next to the shipped model.
3. Predict the held-out scenes: network heads, then the CRF (``crf.solve``), instances and their order.
4. Evaluate with ``oosis_jax.evaluation.evaluate`` (OAIR, mask mAP, weighted coverage, % instances in
   cycles, oriented boundary ODS/OIS/AP), next to the CRF on ground-truth inputs (Tab. 4's GT row) and on
   the shipped network's segmentation with ground-truth boundaries (what the boundary head costs).
5. Write ``OUT/results.md``, ``results.json``, the OAIR / boundary PR plots and, for a few scenes, one PNG
   with input | predicted depth | GT depth | predicted oriented boundaries | GT boundaries (+ instances).

Configs: ``cpu`` (default: 40 scenes, about a minute on 2 cores; ``--train`` adds the ``synthetic_unet``
preset: the whole demo then fitted to 13 minutes, the training getting what the rest leaves), ``smoke``
(seconds, CI; ``--train`` trains the ``smoke`` preset) and ``full`` (``--train``: the paper's
PSPNet-ResNet-50 on synthetic scenes; meant for a GPU).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
from pathlib import Path

from data.examples import synthetic_scenes
from data.registry import info
from experiments import common, flags
from oosis_jax.evaluation import tables

SHIPPED = "synthetic"
SHIPPED_ROW = "Joint-Labeling, shipped model"
TRAINED_ROW = "Joint-Labeling, trained by this demo"
MIXED_ROW = "Joint-Labeling, shipped model's segm + GT bndry/orientation"
GT_ROW = "Joint-Labeling on GT bndry/segm"


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """One demo run. ``train`` names the ``oosis_jax.training.configs`` preset that ``--train`` trains;
    ``train_overrides`` replace its fields; ``train_robustness`` (`Robustness.parse` text) and
    ``train_augmentation`` (`Augmentation.parse` text) and ``train_lam`` are the CRF options, test-time views
    and lambda the model trained now is evaluated with (None: the shipped model's); with ``train_fit_scenes``
    > 0 its own join and score models are fitted on that many ``validation`` scenes after training, as the
    shipped model's were (`Predictor.fit_finish`; 0: the paper's connected components and ad-hoc scores).

    With ``train_minutes``, the demo with ``--train`` is fitted to that many minutes on the machine at hand: the
    shipped model's rows first, then the training gets what is left, its number of steps fitted to it (the step
    time measured on the run's first steps, which are kept, `common.fitted_to_budget`; at most the config's
    ``num_steps``), so the poly schedule ends within it; training still stops at the first checkpoint past the
    budget should the machine slow down. The budget also holds the trained model's fits and predictions after
    training: ``train_reserve_steps`` step times are kept for them, or ``train_reserve_shipped`` times what the
    shipped model's rows took if more, so that on a slower machine, where they take longer too, the demo still
    ends in time. None: run the preset's steps.
    ``test_scenes`` held-out scenes of ``test_size`` are evaluated; ``panels`` of them are drawn.
    """

    name: str
    train: str
    train_overrides: tuple = ()
    train_minutes: float | None = None
    train_reserve_steps: int = 0
    train_reserve_shipped: float = 0.0
    train_robustness: str | None = None
    train_augmentation: str | None = None
    train_lam: float | None = None
    train_fit_scenes: int = 0
    test_scenes: int = 40
    test_size: tuple[int, int] = common.SYNTHETIC_SIZE
    panels: int = 4

    def train_config(self, data_dir: Path | None = None):
        """The training config; with ``data_dir``, it reads a synthetic tfds build there (built on first use by
        ``data.loading``) of the preset's scene counts and size, validating on its ``validation`` split."""
        from oosis_jax.training.configs import get_config

        config = get_config(self.train).replace(name=f"demo_{self.name}", **dict(self.train_overrides))
        if data_dir is None:
            return config
        (height, width), build = config.synthetic_size, (("num_train", config.synthetic_scenes),
                                                         ("num_validation", config.synthetic_val_scenes))
        build += (("num_test", 0), ("min_height", height), ("max_height", height), ("min_width", width),
                  ("max_width", width))
        return config.replace(data_dir=str(data_dir), dataset_config=build, eval_split="validation")


def get_config(name: str = "cpu") -> DemoConfig:
    """``cpu``: 40 scenes; ``--train`` trains the ``synthetic_unet`` preset with the shipped model's losses (the
    Dice++ b loss, e also trained one pixel around each boundary pixel; on scenes shrunk to 0.35-1.0x; as many
    steps as fit in the 13 minutes of the whole demo on the machine at hand) and evaluates it with
    the CRF options chosen for it on validation scenes (RESULTS.md, "The demo"); ``smoke``: the seconds-long CI
    preset; ``full``: PSPNet-ResNet-50 (Sec. 5.3) on 1024 synthetic scenes, for a GPU."""
    if name == "cpu":
        from oosis_jax.training.configs import get_config as preset

        base = preset("synthetic_unet")
        loss = dataclasses.replace(base.loss, boundary_loss="dice++", orientation_band=1)
        # scenes shrunk to 0.35-1.0x (the preset's 0.75-1.5x): a 64x64 crop then sees more of its scene; on 40
        # validation scenes recall 7.0 -> 11.5 %, mAP 3.9 -> 6.3, boundary AP 83.8 -> 86.4, WC 60.3 -> 59.6
        # (RESULTS.md, "The demo", fifteenth round)
        augment = dataclasses.replace(base.augment, scale_range=(0.35, 1.0))
        # num_steps is a cap: the steps are fitted to train_minutes on the machine at hand (2900 at 199 ms per
        # step on one device before the demo's rows came first and the batch was split over the cores; RESULTS.md,
        # "The demo")
        overrides = (("loss", loss), ("augment", augment), ("num_steps", 10_000))
        # 13 minutes of the demo with --train (the shipped model's rows, 1-3.5 min, included) and the .venv's
        # setup (1.2 min) stay within the 15 minutes the demo may take
        return DemoConfig(name="cpu", train="synthetic_unet", train_overrides=overrides, train_minutes=13.0,
                          # the trained network's fits on 100 validation scenes and its predictions of the 40
                          # test scenes took 51 s after training on the 2-core machine, about 250 steps of 188-209
                          # ms: 300 leave a margin (RESULTS.md, "The demo")
                          train_reserve_steps=300,
                          # the same work took 2.5-4 min after the shipped model's rows took 2.6 min on a slower
                          # machine (AVX2 only), where 300 step times were 2.0-2.2 min (RESULTS.md, "The demo")
                          train_reserve_shipped=1.6,
                          train_robustness="high=0.4,min_segment=5,min_area=30",
                          # labelling on the views' grid (the shipped model's) costs this far less trained
                          # network WC: 60.2 -> 58.3 on 40 validation scenes; the shifted views help it as
                          # they help the shipped model: 61.3 -> 62.1; trained on shrunk scenes, it is best
                          # seen at 1x (for the 0.5-1.25x network, 1.25x gave recall 10.0 against 11.1 at 1x;
                          # the 0.35-1.0x one at 0.875x: 7.7 against 11.5; RESULTS.md, "The demo")
                          train_augmentation="scales=1,flip,shift=1",
                          # lambda 30 / 40 / 60 / 70 gave WC 57.2 / 58.9 / 56.0 against 60.2 at 50 on 40
                          # validation scenes (RESULTS.md, "The demo"); the shipped model's is 60
                          train_lam=50.0,
                          # its own joins and score: on 40 held-out scenes recall 9.0 -> 10.1, mAP 4.9 -> 7.0,
                          # 45 s (RESULTS.md, "The demo")
                          train_fit_scenes=100)
    if name == "smoke":
        return DemoConfig(name="smoke", train="smoke", test_scenes=3, test_size=common.SMOKE_SIZE, panels=2,
                          train_robustness="min_area=30", train_augmentation="none", train_lam=40.0,
                          train_fit_scenes=2)
    if name == "full":
        from oosis_jax.training.configs import num_classes
        from oosis_jax.models import ModelConfig

        from oosis_jax.training.input_pipeline import AugmentConfig

        # The paper's optimisation (supplement Sec. 4 and the PSPNet reference it trains with): SGD, 10x LR on
        # new layers, 225x225 crops, output stride 8;
        # not the CPU preset's Adam / stride-4 tuning.
        model = ModelConfig.resnet50(num_classes("synthetic"))
        return DemoConfig(name="full", train="synthetic", test_scenes=100, panels=6, train_overrides=(
            ("model", model), ("synthetic_scenes", 1024), ("synthetic_size", (256, 512)), ("num_steps", 6000),
            ("batch_size", 16), ("optimizer", "sgd"), ("base_lr", 0.01), ("new_layer_lr_mult", 10.0),
            ("augment", AugmentConfig(crop_size=(225, 225))), ("checkpoint_every", 500), ("eval_every", 2000),
            ("loader_threads", 8)))
    raise ValueError(f"unknown demo config {name!r}; choose cpu, smoke or full")


def draw_scene(path, example: dict, pred, model: str) -> str:
    """input | predicted depth | GT depth | predicted oriented boundaries | GT boundaries | predicted instances
    of ``model`` (named in the titles), with the keys of the depth and boundary colours (`visualize.DEPTH_KEY`,
    `BOUNDARY_KEY`) as caption; both depth maps on one scale (`visualize.relative_depth_maps`)."""
    from oosis_jax import visualize
    from data import targets
    from oosis_jax.inference.nms import boundary_nms

    gt_b, gt_e = targets.boundary_targets(example["instance_map"], example["edges"])
    depths = visualize.relative_depth_maps([(pred.instance_map, pred.edges),
                                            (example["instance_map"], example["edges"])])
    pictures = [
        example["image"],
        visualize.depth_map_rgb(depths[0], instance_map=pred.instance_map),
        visualize.depth_map_rgb(depths[1], instance_map=example["instance_map"]),
        visualize.oriented_boundary_rgb(boundary_nms(pred.b), pred.e),
        visualize.oriented_boundary_rgb(gt_b, gt_e),
        visualize.instance_overlay(example["image"], pred.instance_map),
    ]
    titles = ["input", f"{model}: relative depth ({len(pred.classes)} inst.)",
              f"ground truth: relative depth ({len(example['classes'])} inst.)",
              f"{model}: oriented boundaries (NMS)", "ground truth: oriented boundaries", f"{model}: instances"]
    return visualize.save_panel(path, pictures, titles, ncols=3, tile_inches=3.5,
                                caption=f"{visualize.DEPTH_KEY}\n{visualize.BOUNDARY_KEY}")


def with_true_boundaries(predictions, examples, predictor, processes, progress) -> list:
    """The CRF on each prediction's own s head with the ground truth's b and e (`MIXED_ROW`), with the CRF
    and scoring options of ``predictor`` (method, lambda, mu, robustness, joins, scores), so that only the heads
    differ from its row."""
    from oosis_jax.inference.heads import mixed_heads_each
    from oosis_jax.inference.instances import ground_truth_heads_of

    heads = mixed_heads_each([{"s": p.s, "b": p.b, "e": p.e} for p in predictions],
                             ground_truth_heads_of(examples, info("synthetic").num_classes), ("b", "e"))
    return predictor.replace(processes=processes).label(heads, progress, images=[x["image"] for x in examples])


def evaluate_predictor(predictor, examples: list[dict], show: bool) -> tuple[list, dict]:
    """``(predictions, evaluate results)`` of a `Predictor` on the examples."""
    from oosis_jax import evaluation

    predictions = predictor.predict_many([x["image"] for x in examples], progress=show)
    return predictions, evaluation.evaluate(predictions, examples, progress=show)


def fitted_finish(trained, config: DemoConfig):
    """``(predictor, words)``: ``trained`` with its own join and score models fitted on
    ``config.train_fit_scenes`` validation scenes (`Predictor.fit_finish`, one prediction pass), without the
    join model where its pieces offer no join candidates of both kinds, or as it is (connected components,
    ad-hoc scores) without fit scenes or when nothing can be fitted; ``words`` say which."""
    if config.train_fit_scenes <= 0:
        return trained, "connected components and ad-hoc scores"
    scenes = synthetic_scenes("validation", config.train_fit_scenes, config.test_size)
    where = f"fitted on {len(scenes)} validation scenes"
    print(f"[train] fitting the trained network's joins and instance score on {len(scenes)} validation scenes")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = trained.fit_finish(scenes, progress=False, skip_unfittable=True)
    for warning in caught:
        print(f"[train] {warning.message}")
    if fitted.score_model is None and fitted.join_model is None:
        return trained, "connected components and ad-hoc scores (nothing could be fitted)"
    instances = "joins" if fitted.join_model is not None else "connected components"
    scores = "learned scores" if fitted.score_model is not None else "ad-hoc scores"
    return fitted, f"{instances} and {scores} {where}"


@dataclasses.dataclass(frozen=True)
class TrainedNow:
    """`train_now`'s predictor, its network's steps, seconds trained in this call (step timing included), the
    run's ``TrainConfig`` and words on how it was finished (`fitted_finish`)."""
    predictor: object
    steps: int
    seconds: float
    config: object
    finishing: str


def train_now(config: DemoConfig, out: Path, shipped, deadline: float | None,
              shipped_seconds: float = 0.0) -> TrainedNow:
    """``--train``: the config's preset trained from scratch in ``out/train_<name>`` (resumable), then made a
    predictor with the config's CRF options and views and its own fitted joins and score (`fitted_finish`).
    With ``deadline`` (a ``time.time()``), the steps are fitted to the seconds left until it
    (`common.fitted_to_budget`, which keeps time for the fits and predictions after training:
    ``train_reserve_steps`` step times, or ``train_reserve_shipped`` times ``shipped_seconds``, what the
    shipped model's rows took, if more)."""
    from oosis_jax.inference import network
    from oosis_jax.inference.augment import Augmentation
    from oosis_jax.inference.robustness import Robustness

    train_config = config.train_config(out / "tfds")
    workdir, budget, train_start = out / f"train_{config.name}", None, time.time()
    if deadline is not None:
        train_config, budget = common.fitted_to_budget(train_config, workdir, deadline - train_start,
                                                       config.train_reserve_steps,
                                                       reserve_seconds=config.train_reserve_shipped * shipped_seconds)
    print(f"[train] {train_config.name}: {train_config.num_steps} steps of batch {train_config.batch_size} "
          f"on {network.device_summary()} in {workdir} (an interrupted run resumes there)")
    model, _, steps = common.train_model(train_config, workdir, budget, program="demo")
    train_seconds = time.time() - train_start  # the step-time measurement included
    # the config's lambda, robustness options and views (default: the shipped ones); a learned join or
    # score model belongs to the network it was fitted on: its own, or none
    options = {} if config.train_lam is None else {"lam": config.train_lam}
    if config.train_robustness is not None:
        options["robustness"] = Robustness.parse(config.train_robustness)
    if config.train_augmentation is not None:
        options["augmentation"] = Augmentation.parse(config.train_augmentation)
    trained = shipped.replace(model=model, config=train_config, score_model=None, join_model=None, **options)
    trained, finishing = fitted_finish(trained, config)
    return TrainedNow(trained, steps, train_seconds, train_config, finishing)


def run(config: DemoConfig, out: Path, train: bool = False, processes: int | None = None) -> dict:
    """The whole demo; returns ``dict(results, trained_results, mixed_results, gt_results, steps,
    train_seconds, total_seconds, files)`` (``trained_results`` and ``steps`` are None without ``train``).
    The shipped model's rows come first, so that with ``train`` the training gets what is left of the
    ``train_minutes`` the demo may take (on a slower machine those rows take longer too)."""
    from oosis_jax import Predictor, evaluation
    from oosis_jax.inference import instances as prediction
    from oosis_jax.inference import network

    start = time.time()
    out.mkdir(parents=True, exist_ok=True)
    earlier = [out / name for name in ("results.md", "results.json") if (out / name).exists()]
    if earlier:  # written last: an interrupted run leaves none of an earlier run's beside its own pictures
        print(f"replacing the earlier results in {out}")
        for path in earlier:
            path.unlink()
    show = config.name != "smoke"
    processes = 1 if config.name == "smoke" and processes is None else processes  # smoke: one, unless asked
    shipped = Predictor.from_pretrained(SHIPPED, processes=processes)
    examples = synthetic_scenes("test", config.test_scenes, config.test_size)
    print(f"[1/3] predicting {len(examples)} held-out scenes with the shipped model `{SHIPPED}` "
          f"(CRF: {prediction.method_name(shipped.method)}, {network.device_summary()})")
    predictions, results = evaluate_predictor(shipped, examples, show)
    print("[2/3] the CRF on ground-truth boundaries (with the shipped model's segmentation) and on all ground truth")
    mixed = with_true_boundaries(predictions, examples, shipped, processes, show)
    mixed_results = evaluation.evaluate(mixed, examples, boundaries=False, progress=False)
    gt_predictions = prediction.label_ground_truth(examples, info("synthetic").num_classes, method=shipped.method,
                                                   processes=processes, progress=show)
    gt_results = evaluation.evaluate(gt_predictions, examples, boundaries=False, progress=False)
    names = {SHIPPED_ROW: results}
    now = None
    if train:
        deadline = None if config.train_minutes is None else start + 60 * config.train_minutes
        now = train_now(config, out, shipped, deadline, time.time() - start)
        print(f"[train] predicting the held-out scenes with the model trained now ({now.steps} steps)")
        _, names[TRAINED_ROW] = evaluate_predictor(now.predictor, examples, show)
    names.update({MIXED_ROW: mixed_results, GT_ROW: gt_results})  # the table's order: shipped, trained, GT rows
    print("[3/3] writing tables and pictures")
    files = evaluation.plot_curves(names, out)
    for stale in out.glob("scene_[0-9][0-9].png"):  # an earlier run's panels (e.g. 4 of the default, 2 of smoke)
        stale.unlink()
    files += [Path(draw_scene(out / f"scene_{i:02d}.png", x, p, "shipped model"))
              for i, (x, p) in enumerate(zip(examples[:config.panels], predictions))]
    total = time.time() - start
    table = tables.markdown(tables.SUMMARY_HEADERS, [tables.summary_row(n, r) for n, r in names.items()])
    boundary_rows = [tables.boundary_row(n, r) for n, r in names.items() if r["boundaries"] is not None]
    table += "\n" + tables.markdown(tables.BOUNDARY_HEADERS, boundary_rows)
    text = (f"# OOSIS demo ({config.name})\n\n{len(examples)} held-out synthetic scenes of {config.test_size}, "
            f"CRF {prediction.method_name(shipped.method)} (lambda {shipped.lam:g}, mu {shipped.mu:g}, "
            f"robustness options {shipped.robustness.to_text()}), test-time views {shipped.augmentation.to_text()}, "
            f"{'pieces of objects cut by an occluder joined (learned), ' if shipped.join_model else ''}"
            f"instance scores "
            f"{'learned' if shipped.score_model else 'ad-hoc (Sec. 5.4)'}.\n\n{table}\n"
            f"The shipped model is described in `oosis_jax/weights/{SHIPPED}/MODEL_CARD.md`. The \"segm + GT "
            f"bndry/orientation\" row "
            f"keeps its segmentation, CRF options and joins but takes b and e from the ground truth: the gap to the "
            f"first row is what the boundary head costs. The \"on GT bndry/segm\" row is the paper's CRF (lambda 20, "
            f"no robustness options) on ground-truth sigma and O. The pictures `scene_00.png` to "
            f"`scene_{config.panels - 1:02d}.png` show the shipped model's predictions of the first "
            f"{config.panels} scenes beside their ground truth.\n\n")
    if now is not None:
        run_config, trained = now.config, now.predictor
        text += (f"Trained now: preset `{run_config.name}` (decoder {run_config.model.decoder}, width "
                 f"{run_config.model.width}), {now.steps} of {run_config.num_steps} steps x batch "
                 f"{run_config.batch_size} on {run_config.synthetic_scenes} scenes {run_config.synthetic_size} "
                 f"scaled {run_config.augment.scale_range[0]:g}-{run_config.augment.scale_range[1]:g}x, "
                 f"{run_config.augment.crop_size[0]}x{run_config.augment.crop_size[1]} crops, b loss "
                 f"{run_config.loss.boundary_loss}; training this call {now.seconds / 60:.1f} min; evaluated "
                 f"with lambda {trained.lam:g}, robustness options {trained.robustness.to_text()}, test-time "
                 f"views {trained.augmentation.to_text()}, {now.finishing}.\n")
    text += f"Hardware: {common.hardware()}. Whole demo: {total / 60:.1f} min.\n"
    (out / "results.md").write_text(text)
    summary = {"units": "fractions in [0, 1] (the tables show them in %)",
               "results": results, "trained_results": names.get(TRAINED_ROW), "mixed_results": names[MIXED_ROW],
               "gt_results": names[GT_ROW], "train_seconds": now.seconds if now else 0.0,
               "steps": now.steps if now else None,
               "total_seconds": total, "files": [str(f) for f in files]}
    (out / "results.json").write_text(tables.strict_json(summary, indent=1))
    print(table)
    print(f"results table: {out / 'results.md'}\nall numbers:   {out / 'results.json'}\nplots:")
    for f in files:
        print(f"  {f}")
    print(f"demo took {total / 60:.1f} min")
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="cpu", choices=("cpu", "smoke", "full"),
                        help="cpu (default): 40 held-out scenes, --train in 13 minutes on 2 cores; smoke: 3 small "
                             "scenes (CI); full: 100 scenes, --train the paper's ResNet-50 recipe (a GPU)")
    parser.add_argument("--train", action="store_true",
                        help="also train the config's preset from scratch (the whole demo fitted to 13 minutes; "
                             "in OUT/train_NAME, resumed there when interrupted) and compare it with the shipped "
                             "model")
    parser.add_argument("--out", type=flags.folder, default="runs/demo", help="output folder (default runs/demo)")
    parser.add_argument("--processes", type=flags.positive_int, default=None,
                        help="CRF worker processes (default: every core this process may use; one for --config smoke)")
    args = parser.parse_args(argv)
    flags.make_folder(parser, "--out", args.out)
    config = get_config(args.config)
    # one JAX device per core: 1.5x the training steps in the same minutes on 2 cores, and each batch of the
    # network's predictions split over them (the default demo: 51 s against 61 s here)
    from oosis_jax.devices import use_cpu_cores

    use_cpu_cores(config.train_config().batch_size)
    from oosis_jax.training.preemption import Preempted

    try:
        return run(config, Path(args.out), args.train, args.processes)
    except KeyboardInterrupt:
        print(f"\ndemo: interrupted; {args.out} may hold some of this run's pictures but no results.md "
              "(written last): run it again", file=sys.stderr)
        raise SystemExit(130) from None
    except Preempted as err:  # a SIGTERM during --train: its step is saved, and a rerun resumes the training
        timing = err.workdir.endswith(common.TIMING_SUFFIX)  # `common.fitted_to_budget`'s: timed anew
        print(f"\ndemo: {err}" if not timing else "\ndemo: stopped by a preemption notice (SIGTERM) while timing the "
              "training's first steps; the same command times them again", file=sys.stderr)
        raise SystemExit(Preempted.EXIT_STATUS) from None


if __name__ == "__main__":
    main()
