"""The one command-line module of the experiment scripts: flags (one spelling, ``--data-dir`` style), the
run ``Setup`` they describe, and the one KEY=VALUE parser (``--set``, typed by the ``TrainConfig`` fields, and
``--dataset-config``).

Every table script is ``python -m experiments.NAME [--dataset synthetic|kins|cocoa] [--split SPLIT] [--smoke]
[--out DIR]``: synthetic by default (scenes rendered on the fly, no build), KINS/COCOA read through
``data.loading`` from ``--data-dir``. ``evaluate`` and ``predict --gt`` (`add_source_arguments`) read every
dataset, synthetic too, through its tfds build in ``--data-dir`` (synthetic: built there on first use, of the
``--dataset-config`` settings). ``--split`` defaults to the dataset's held-out split of the registry
(``data.registry``: "test" for synthetic and KINS, "validation" for COCOA). ``--smoke`` shrinks everything to
a seconds-long run (the tests use it).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import math
import os
import sys
import tempfile
import warnings
from pathlib import Path

from data.registry import DATASETS, check_synthetic_split, info

DATA_DIR = "~/tensorflow_datasets"


@dataclasses.dataclass(frozen=True)
class Setup:
    """What one experiment run works on: the dataset and split, how many of its images, the output folder."""

    dataset: str
    smoke: bool
    out: Path
    data_dir: str
    limit: int
    processes: int | None
    split: str
    program: str = "experiments"  # the script's module name, for its errors

    @property
    def progress(self) -> bool:
        """Whether long work shows bars: not in a smoke run on the synthetic scenes (seconds, CI's logs), but in
        one on KINS or COCOA, whose few images at full size take an early network's fragments minutes to label."""
        return not self.smoke or self.dataset != "synthetic"


class UsageError(SystemExit):
    """Ends a command for a mistake of the user's found before its work starts (a model, dataset, folder or
    option it cannot use): ``PROGRAM: MESSAGE`` on stderr, written when the error is made, and exit status 2 as
    argparse's own errors; a run that started and lost some images ends with status 1 instead."""

    def __init__(self, program: str, message: str):
        super().__init__(f"{program}: {message}")
        self.code = 2
        print(self.args[0], file=sys.stderr, flush=True)


def parse_key_values(pairs, fields: dict[str, str] | None = None) -> dict:
    """``["num_steps=20", "data_dir=/x"]`` -> ``{"num_steps": 20, "data_dir": "/x"}`` (Python literals, else str).

    With ``fields`` (field name -> type annotation, as ``dataclasses.fields`` gives them, e.g. ``"int | None"``)
    each key must be one of the fields and each value is checked against its type (`typed_value`); the
    ``ValueError`` names the pair. A key given twice takes its last value, with a warning (a script may add a
    default that a later pair overrides).
    """
    out = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"expected KEY=VALUE, got {pair!r}")
        if key in out:
            warnings.warn(f"{key} is given twice: {pair} replaces {key}={out[key]!r}", stacklevel=2)
        if fields is None:
            out[key] = _literal(value)
        elif key not in fields:
            raise ValueError(f"{pair}: unknown config field {key!r}; fields: {', '.join(sorted(fields))}")
        else:
            out[key] = typed_value(key, value, fields[key])
    return out


def _literal(raw: str):
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


def typed_value(key: str, raw: str, annotation: str):
    """``raw`` as a value of a field annotated ``annotation``: ``bool`` (True/False), ``int``, ``float``
    (finite), ``str``, ``None`` and ``tuple[...]`` alternatives joined by ``|``. ``ValueError`` naming
    ``key=raw`` for a value of another type, NaN or infinity, or a nested config (a class-typed field such as
    ``ModelConfig``)."""
    kinds = [part.strip() for part in annotation.split("|")]
    if len(kinds) == 1 and kinds[0][:1].isupper():
        raise ValueError(f"{key}={raw}: {key} is a nested {annotation} and cannot be set as KEY=VALUE")
    value = _literal(raw)
    if value is None and "None" in kinds:
        return None
    if "str" in kinds:
        return raw
    if "bool" in kinds and isinstance(value, bool):
        return value
    if "int" in kinds and isinstance(value, int) and not isinstance(value, bool):
        return value
    if "float" in kinds and isinstance(value, str) and not math.isfinite(_float_or_zero(raw)):  # nan, inf
        raise ValueError(f"{key}={raw}: {key} must be a finite number")
    if "float" in kinds and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"{key}={raw}: {key} must be a finite number")
        return float(value)
    if "tuple[int, int]" in kinds and isinstance(value, (tuple, list)):
        if len(value) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in value):
            return tuple(value)
    elif any(kind.startswith("tuple") for kind in kinds) and isinstance(value, (tuple, list)):
        return tuple(tuple(x) if isinstance(x, list) else x for x in value)
    raise ValueError(f"{key}={raw}: {key} expects {annotation}, got {raw!r}")


def _float_or_zero(raw: str) -> float:
    """``float(raw)``, which reads ``nan`` and ``inf`` (no Python literals), else 0."""
    try:
        return float(raw)
    except ValueError:
        return 0.0


def add_dataset_arguments(parser: argparse.ArgumentParser, default: str | None = "synthetic") -> None:
    """``--dataset``, ``--split`` (default: the registry's held-out split) and ``--data-dir``."""
    parser.add_argument("--dataset", default=default, choices=DATASETS)
    parser.add_argument("--split", default=None, help="dataset split (default: the dataset's held-out split)")
    parser.add_argument("--data-dir", default=DATA_DIR, help="tfds folder of the dataset")


def split_of(args: argparse.Namespace) -> str:
    """``--split``, or the dataset's held-out split of the registry."""
    return args.split or info(args.dataset).held_out_split


def parser(description: str, name: str, default_limit: int = 50) -> argparse.ArgumentParser:
    """The common command line of the experiments; scripts add their own flags before calling ``setup``. ``name``
    is the script's module in ``experiments`` (its usage line reads ``python -m experiments.NAME``, how it runs)
    and its default output folder under ``runs``."""
    p = argparse.ArgumentParser(prog=f"python -m experiments.{name}", description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_arguments(p)
    p.add_argument("--smoke", action="store_true",
                   help="tiny run (CI): at most 4 images, the CRF in this process; seconds on the synthetic scenes, "
                        "minutes on KINS or COCOA images at full size")
    p.add_argument("--out", type=folder, default=os.path.join("runs", name), help="output folder")
    p.add_argument("--limit", type=positive_int, default=default_limit, help="images of --split to evaluate")
    p.add_argument("--processes", type=positive_int, default=None,
                   help="CRF worker processes (default: every core this process may use)")
    p.set_defaults(program=name)  # `setup` names the script in its errors
    return p


def setup(args: argparse.Namespace) -> Setup:
    """The run's settings (of a `parser`'s arguments). ``--smoke`` caps ``--limit`` at 4 images and runs the CRF in
    this process unless ``--processes`` is given. The split is checked first (a synthetic split's name; a
    KINS/COCOA build and split opened): a `UsageError`, before any training or output folder."""
    limit = min(args.limit, 4) if args.smoke else args.limit
    processes = 1 if args.smoke and args.processes is None else args.processes
    split = split_of(args)
    try:
        if args.dataset == "synthetic":
            check_synthetic_split(split)
        else:
            from data import loading

            loading.load(args.dataset, split, args.data_dir)
    except (ValueError, FileNotFoundError) as err:
        raise UsageError(args.program, str(err)) from None
    out = Path(args.out)
    unusable = folder_problem(out)
    if unusable:
        raise UsageError(args.program, f"--out {args.out}: {unusable}")
    return Setup(args.dataset, args.smoke, out, args.data_dir, limit, processes, split, args.program)


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint`` | ``--gt`` (exactly one), and the dataset split they read (``data.loading``)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="the network: a training workdir, an exported model folder or a "
                                             "shipped model name (synthetic)")
    source.add_argument("--gt", action="store_true", help="feed the CRF with ground truth (Tab. 4 / Fig. 10)")
    parser.add_argument("--dataset-config", nargs="*", default=[], metavar="KEY=VALUE",
                        help="builder config, e.g. num_train=0 num_validation=0 num_test=50")
    parser.add_argument("--out", type=folder, required=True, help="output folder")


def folder(text: str) -> str:
    """argparse type: an output folder, which may not exist yet but may not be a file, nor lie under one; the
    text with ``~`` expanded (a quoted ``~`` reaches Python unexpanded), the path every later step uses."""
    text = os.path.expanduser(text)
    path = above = Path(text).absolute()
    while not os.path.exists(above):  # the path, else its nearest existing parent (at least "/"); never raises
        above = above.parent
    if not above.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder" if above == path else
                                         f"{text} lies under {above}, which is a file, not a folder")
    return text


def folder_problem(path: Path) -> str | None:
    """Create the output folder ``path`` (and its parents) and check that this process can write files there;
    None when it can, else why not. Checked by creating and removing a file, since permissions alone miss a
    read-only mount or an immutable folder and root passes every permission check (a run then lost all its
    work at its first write, e.g. ``evaluate``'s results.json)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return f"cannot create the folder: {err.strerror or err}"
    if not os.access(path, os.W_OK | os.X_OK):
        return "cannot write to the folder: permission denied"
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write_check_"):
            pass
    except OSError as err:
        return f"cannot write to the folder: {err.strerror or err}"
    return None


def make_folder(parser: argparse.ArgumentParser, flag: str, text: str) -> None:
    """Create the output folder ``text`` of ``flag`` now (before any work) and check that it can be written
    (`folder_problem`), or ``parser.error`` naming it."""
    problem = folder_problem(Path(text))
    if problem:
        parser.error(f"{flag} {text}: {problem}")


def parsed_by(parse):
    """argparse type of the text form ``parse`` reads (e.g. ``Robustness.parse``): its ``ValueError`` becomes the
    one-line usage error ``argument FLAG: MESSAGE`` (argparse itself would drop the message)."""
    def parsed(text: str):
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return parsed


def positive_float(text: str) -> float:
    """argparse type: a finite float > 0."""
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite float >= 0."""
    value = float(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def output_file(text: str) -> str:
    """argparse type: a file to write at the end of a run, checked now: its folder must exist and it must not be
    a folder (else the run's minutes end in a traceback); ``~`` expanded."""
    path = Path(os.path.expanduser(text)).absolute()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder: name the file to write")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: the folder {path.parent} does not exist")
    return str(path)


MIN_SIDE = 8  # the smallest synthetic scene side (`data.synthetic.make_scene`)


def image_size(text: str) -> tuple[int, int]:
    """argparse type: ``HxW`` -> ``(H, W)``, each side an int >= `MIN_SIDE` (the benchmarks' scene sizes)."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW (e.g. 240x320), got {text!r}") from None
    if min(height, width) < MIN_SIDE:
        raise argparse.ArgumentTypeError(f"each side must be >= {MIN_SIDE}, got {text}")
    return height, width


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an int >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


TILE_OPTIONS = {"tile_size": "--tile-size", "tile_overlap": "--tile-overlap"}  # of add_crf_arguments: dest -> flag


def add_crf_arguments(parser: argparse.ArgumentParser) -> None:
    """The CRF minimiser, its worker processes and the tiling of the forward pass."""
    parser.add_argument("--method", default="solve", choices=("solve", "jump", "expansion"),
                        help="CRF minimiser: solve (default, crf.solve), jump (the paper's jump moves), expansion")
    parser.add_argument("--processes", type=positive_int, default=None,
                        help="CRF worker processes (default: every core this process may use)")
    parser.add_argument("--tile-size", type=positive_int, default=512,
                        help="larger images are predicted in tiles (>= 64, the padding multiple)")
    parser.add_argument("--tile-overlap", type=non_negative_int, default=64,
                        help="pixels shared by neighbouring tiles (at most half a tile)")
    parser.add_argument("--chunk-size", type=positive_int, default=32,
                        help="images read, predicted and labelled at a time (memory holds one chunk)")


def parse_noting_given(parser: argparse.ArgumentParser, argv, dests) -> tuple[argparse.Namespace, set[str]]:
    """``parser.parse_args(argv)`` and which of the options ``dests`` (their ``dest`` names) the command line gave,
    even with their default values, so that a mode can refuse the options it would ignore (`refuse_unused`).
    The others get their defaults as ``parser.get_default`` returns them (not passed through their ``type``)."""
    unset = object()
    args = parser.parse_args(argv, argparse.Namespace(**dict.fromkeys(dests, unset)))
    given = {dest for dest in dests if getattr(args, dest) is not unset}
    for dest in set(dests) - given:
        setattr(args, dest, parser.get_default(dest))
    return args, given


def refuse_unused(parser: argparse.ArgumentParser, given: set[str], unused: dict[str, str], mode: str) -> None:
    """``parser.error`` naming the first option of ``unused`` (dest -> flag) in ``given``: ``mode`` (e.g.
    ``"--gt"``, with why) does not use it, and ignoring it silently would mislead."""
    for dest, flag in unused.items():
        if dest in given:
            parser.error(f"{flag} does not apply with {mode}")


def check_tile_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``parser.error`` unless ``--tile-size`` and ``--tile-overlap`` suit the network
    (`oosis_jax.inference.network.check_tiles`: a tile of at least its padding multiple, 64, and an
    overlap of at most half a tile). Imports JAX: call it only where the network runs."""
    from oosis_jax.inference.network import check_tiles

    try:
        check_tiles(args.tile_size, args.tile_overlap)
    except ValueError as err:
        parser.error(f"--tile-size {args.tile_size} --tile-overlap {args.tile_overlap}: {err}")


@contextlib.contextmanager
def loading(program: str, flag: str, name: str):
    """Around loading the model ``name`` given as ``flag``: a missing, damaged or unknown model becomes
    ``SystemExit`` with one line naming ``flag`` and why (no traceback)."""
    from oosis_jax.training.checkpointing import CheckpointError

    try:
        yield
    except (FileNotFoundError, ValueError, CheckpointError) as err:
        raise UsageError(program, f"cannot load {flag} {name}: {err}") from None


def dataset_config(program: str, args) -> dict:
    """``--dataset-config`` parsed (`parse_key_values`); a malformed pair is one line (``SystemExit``)."""
    try:
        return parse_key_values(args.dataset_config)
    except ValueError as err:
        raise UsageError(program, f"--dataset-config: {err}") from None


def split_examples(program: str, args, config: dict):
    """`data.examples.split_examples` of ``--dataset``, ``--split``, ``--data-dir``, ``--limit`` and the parsed
    ``--dataset-config`` ``config``; a split, setting or data folder that fails is one line (``SystemExit``)."""
    from data import examples

    try:
        return examples.split_examples(args.dataset, args.split, args.data_dir, args.limit, **config)
    except (ValueError, FileNotFoundError) as err:
        raise UsageError(program, str(err)) from None


def load_predictor(program: str, name: str, **options):
    """``Predictor.from_pretrained(name, **options)`` for ``--checkpoint name``, `loading` it; on a CPU-only
    machine JAX first gets one device per core (`oosis_jax.devices.use_cpu_cores`, when it has not computed
    yet), over which the predictor splits each network batch."""
    from oosis_jax import Predictor
    from oosis_jax.devices import use_cpu_cores
    from oosis_jax.inference.predictor import BATCH_SIZE

    use_cpu_cores(options.get("batch_size", BATCH_SIZE))
    with loading(program, "--checkpoint", name):
        return Predictor.from_pretrained(name, **options)
