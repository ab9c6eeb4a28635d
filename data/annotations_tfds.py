"""tfds builder base for datasets read from a folder the user downloaded (KINS, COCOA).

A subclass names, per split, the annotation file(s) and image folder inside the user's folder
(``manual_dir``) and a reader yielding the dicts of ``data.kins.examples`` / ``data.cocoa.examples``.
This base checks that the files are there (one message listing every missing file and the expected layout),
maps the dataset's category ids to contiguous training ids, checks each image file against the size
recorded in the annotation file (an image that fails any check is left out with a warning naming it, and
the build goes on: `ManualFolderBuilder.skipped`), and writes the shared schema of ``data/features.py``
(``depths`` NaN: these datasets have no depth) as ``array_record`` files, read back with ``as_data_source``.

Image bytes are stored as they are (PNG for KITTI, JPEG for COCO) after one full decoding that checks them;
an image that is neither RGB nor grayscale (palette, CMYK, RGBA, 16-bit greyscale scaled to 8 bits:
`data.pixels.rgb8`) is converted to RGB and re-encoded once (a JPEG at quality 95 without chroma
subsampling). Grayscale images are decoded to three equal channels by tfds.
"""

from __future__ import annotations

import abc
import io
import json
import os
import signal
import warnings
from collections.abc import Iterator, Mapping

import PIL.Image
import tensorflow_datasets as tfds

from data import annotations as ann
from data.features import encode_example, features
from data.pixels import rgb8
from data.tfds_quiet import silence

silence()  # tfds' two notes on our own choices


def _stored_as_is(data: bytes, image: PIL.Image.Image) -> bool:
    """Whether a file decodes the same with every decoder tfds may use (PIL, OpenCV): an 8-bit RGB or grey JPEG,
    or PNG of 8 bits per channel. A 16-bit RGB PNG (which PIL reads as 8-bit RGB and OpenCV as uint16), a palette,
    alpha or CMYK file, TIFF, BMP and the like are not: they are decoded here and encoded again."""
    if image.mode not in ("RGB", "L"):
        return False
    if image.format == "PNG":
        return data[24] == 8  # the IHDR bit depth (8 bytes signature, 4 length, 4 type, 4 width, 4 height)
    return image.format == "JPEG"


def image_bytes(path: str, height: int, width: int, image_id: int, encoding: str) -> bytes:
    """The encoded image at ``path``, decoded in full once (a truncated or corrupt file fails here, naming the
    image, not when the dataset is read) and checked to be ``width x height`` as the annotation file says.
    Stored as it is when every decoder reads it alike (`_stored_as_is`), else as 8-bit RGB in ``encoding``."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image {image_id}: file {path} not found")
    try:
        with open(path, "rb") as f:
            data = f.read()  # read once: decoded here to check it, stored as it is
    except OSError as e:  # unreadable (permissions, I/O error): this image is left out, not the build
        raise ValueError(f"image {image_id}: {path} cannot be read ({type(e).__name__}: {e})") from e
    if not data:
        raise ValueError(f"image {image_id}: {path} is empty (0 bytes)")
    try:
        with PIL.Image.open(io.BytesIO(data)) as image:
            image.load()
            size, pixels = image.size, None if _stored_as_is(data, image) else rgb8(image)
    except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError) as e:
        reason = "not in an image format PIL reads" if isinstance(e, PIL.UnidentifiedImageError) else e
        raise ValueError(f"image {image_id}: {path} is not a readable image ({reason})") from e
    if size != (width, height):
        raise ValueError(f"image {image_id}: {path} is {size[0]}x{size[1]} (width x height) but the annotation file "
                         f"says {width}x{height}")
    if pixels is not None:
        buffer = io.BytesIO()
        # JPEG at quality 95 without chroma subsampling: PIL's default (75, 4:2:0) moved pixels by up to 116 levels
        PIL.Image.fromarray(pixels).save(buffer, format=encoding.upper(), quality=95, subsampling=0)
        return buffer.getvalue()
    return data


def training_classes(categories, category_to_class: Mapping[int, int], image_id: int, annotation_ids=None,
                     where: str = ""):
    """Contiguous training ids of the dataset's category ids; an unmapped id raises ``ValueError`` naming the
    image, the annotations with it (``annotation_ids``, one per category, when given) and ``where`` (the file)."""
    unknown = sorted({int(c) for c in categories} - set(category_to_class))
    if unknown:
        named = "" if annotation_ids is None else " of annotation(s) " + str(
            [int(a) for a, c in zip(annotation_ids, categories) if int(c) in unknown])
        raise ValueError(
            f"{where}{': ' if where else ''}image {image_id}: category id(s) {unknown}{named} have no training class "
            f"(known: {sorted(category_to_class)})"
        )
    return [category_to_class[int(c)] for c in categories]


LEFT_OUT = "left_out.json"  # in a build's folder: split -> [[image id, why it was left out], ...]


class ManualFolderBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the KINS and COCOA builders (see the module docstring).

    Subclasses define ``CATEGORY_TO_CLASS`` (dataset category id -> training id), ``IMAGE_ENCODING``,
    ``LAYOUT`` (the expected folder layout, shown when files are missing), ``split_files()`` (split ->
    named paths relative to ``manual_dir``, all required) and ``read(paths, skipped)`` (the reader's examples).

    A bad image (its annotations, an unmapped category, a missing, unreadable or wrongly sized file) is left
    out with a warning naming it, and the build goes on; ``skipped`` maps each split to its left-out
    ``(image_id, message)`` pairs after `download_and_prepare`, also of a build reused from an earlier run. A
    split that lists no images, or whose images are all bad, raises ``ValueError``. Every split's files are
    checked as wholes (present, valid JSON of the expected structure) before any split is built, so a mistake in
    the test split's file is said before the minutes of the train split, at the cost of reading each annotation
    file once more.
    """

    CATEGORY_TO_CLASS: Mapping[int, int] = {}
    IMAGE_ENCODING = "png"
    LAYOUT = ""
    DESCRIPTION = ""
    HOMEPAGE = ""

    def __init__(self, *, manual_dir: str | os.PathLike | None = None, **kwargs):
        kwargs.setdefault("file_format", "array_record")
        names = [c.name for c in self.BUILDER_CONFIGS]
        if isinstance(kwargs.get("config"), str) and kwargs["config"] not in names:  # tfds's own message names none
            raise ValueError(f"dataset {self.name!r} has no config {kwargs['config']!r}; choose {', '.join(names)}")
        super().__init__(**kwargs)
        self._manual_folder = None if manual_dir is None else os.path.expanduser(os.fspath(manual_dir))
        self.skipped: dict[str, list[tuple[int, str]]] = {}

    @property
    def can_build(self) -> bool:
        """Whether this builder was given the user's download (``manual_dir``), without which it only reads."""
        return self._manual_folder is not None

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.DESCRIPTION,
            features=features(self.IMAGE_ENCODING),
            homepage=self.HOMEPAGE,
        )

    @abc.abstractmethod
    def split_files(self) -> dict[str, dict[str, str]]:
        """Split name -> {role: path relative to ``manual_dir``} for the builder config."""

    @abc.abstractmethod
    def read(self, paths: Mapping[str, str], skipped: list) -> Iterator[dict]:
        """The reader's examples of one split (``paths``: the ``split_files`` entry, made absolute); the images
        it leaves out go to ``skipped`` (`data.annotations.each_image`). A problem of a whole file raises at the
        call, before the first example is asked for."""

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing is downloaded; the user's folder is ``manual_dir``
        if self._manual_folder is None:
            raise ValueError(f"{self.name}: building needs manual_dir, the folder holding:\n{self.LAYOUT}")
        splits, missing = {}, []
        for split, files in self.split_files().items():
            paths = {key: os.path.join(self._manual_folder, rel) for key, rel in files.items()}
            missing += [p for p in paths.values() if not os.path.exists(p)]
            splits[split] = paths
        if missing:
            raise FileNotFoundError(
                f"{self.name} ({self.builder_config.name}): missing in {self._manual_folder}: "
                + ", ".join(missing)
                + f"\nExpected layout:\n{self.LAYOUT}"
            )
        with warnings.catch_warnings():  # the images each split leaves out are said once, when it is built
            warnings.simplefilter("ignore")
            for paths in splits.values():
                self.read(paths, [])  # whole-file checks only: no image is read, the parsed file is let go
        return {split: self._generate_examples(paths, split) for split, paths in splits.items()}

    def _generate_examples(self, paths: Mapping[str, str], split: str):
        skipped = self.skipped[split] = []
        kept = 0
        for example in self.read(paths, skipped):
            image_id = example["image_id"]
            try:
                classes = training_classes(example["classes"], self.CATEGORY_TO_CLASS, image_id,
                                           example.get("annotation_ids"), paths.get("annotations", ""))
                encoded = image_bytes(example["image"], example["height"], example["width"], image_id,
                                      self.IMAGE_ENCODING)
            except ann.BAD_IMAGE_ERRORS as error:
                ann.note_skipped(skipped, image_id, error)
                continue
            kept += 1
            yield image_id, encode_example({**example, "image": encoded, "classes": classes})
        if skipped and not kept:
            raise ValueError(f"{self.name} {split}: all {len(skipped)} images are bad, e.g. {skipped[0][1]}")
        if not kept:
            raise ValueError(f"{self.name} {split}: {paths['annotations']} lists no images")

    def download_and_prepare(self, *args, **kwargs):
        """tfds' build, once; the left-out images are kept in ``LEFT_OUT`` in the build's folder, so a
        reused build still reports them in ``skipped``."""
        built_now = not self.is_prepared()
        super().download_and_prepare(*args, **kwargs)
        path = os.path.join(self.data_dir, LEFT_OUT)
        if built_now:
            with open(path, "w") as f:
                json.dump({split: [[None if i is None else int(i), m] for i, m in left]
                           for split, left in self.skipped.items()}, f)
        elif os.path.isfile(path):
            with open(path) as f:
                self.skipped = {split: [(i, m) for i, m in left] for split, left in json.load(f).items()}



class Terminated(BaseException):
    """Raised in the main thread by SIGTERM during `build_main`'s build (unwinding runs tfds' cleanup); a
    ``BaseException``, as ``KeyboardInterrupt``, so that no ``except Exception`` on the way swallows it."""


def _terminate(signum, frame):
    raise Terminated


def warn_leftovers(build_dir: str) -> list[str]:
    """Warn of (and return) the unfinished folders that killed builds of ``build_dir`` left beside it (tfds writes
    a build into ``incomplete.XXXXXX_<version>`` and renames it at the end; SIGKILL or a power cut skips the
    removal). They are not deleted: a build running now in another process writes into one of them."""
    parent, version = os.path.split(os.path.normpath(build_dir))
    prefix = tfds.core.constants.INCOMPLETE_PREFIX  # as tfds names them (`tfds.core.utils.incomplete_dir`)
    left = sorted(os.path.join(parent, name) for name in (os.listdir(parent) if os.path.isdir(parent) else [])
                  if name.startswith(prefix) and name.endswith("_" + version))
    for folder in left:
        size = sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(folder) for f in files)
        warnings.warn(f"{folder} ({size / 2**20:.1f} MiB) is what a killed build left: delete it unless a build "
                      "of this dataset is running now", stacklevel=2)
    return left


def build_main(module, configs: tuple[str, ...], argv: list[str] | None = None) -> None:
    """Command line of ``python -m data.kins`` / ``python -m data.cocoa``: build all splits, print their sizes.

    ``module`` is the dataset package (``data.kins``, ``data.cocoa``); ``configs`` its builder config names
    (the first is the default).
    """
    import argparse

    name = module.__name__.split(".")[-1]
    parser = argparse.ArgumentParser(prog=f"python -m {module.__name__}", description=module.__doc__.splitlines()[0])
    parser.add_argument("--manual-dir", required=True, help="folder holding the downloaded annotation files and images")
    parser.add_argument("--data-dir", default="~/tensorflow_datasets", help="tfds output folder")
    parser.add_argument("--config", default=configs[0], choices=configs, help="builder config")
    args = parser.parse_args(argv)
    if not os.path.isdir(os.path.expanduser(args.manual_dir)):
        parser.error(f"--manual-dir {args.manual_dir} is not a folder")
    data_dir = os.path.expanduser(args.data_dir)  # also when the shell did not expand it (--data-dir=~/x)
    if os.path.exists(data_dir) and not os.path.isdir(data_dir):
        parser.error(f"--data-dir {args.data_dir} is not a folder")
    builder = module.builder(data_dir, manual_dir=args.manual_dir, config=args.config)
    reused = builder.is_prepared()
    if not reused:
        warn_leftovers(builder.data_dir)
    again = "the same command builds the dataset again from the start"
    previous = signal.signal(signal.SIGTERM, _terminate)  # so that tfds' unfinished folder is removed, as on Ctrl-C
    try:
        builder.download_and_prepare()
    except (OSError, ValueError) as error:  # the user's files or folders: one message, no traceback
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"\n{parser.prog}: interrupted; {again}\n")
    except Terminated:
        parser.exit(128 + signal.SIGTERM, f"{parser.prog}: terminated (SIGTERM); {again}\n")
    finally:
        signal.signal(signal.SIGTERM, previous)
    for split, info in builder.info.splits.items():
        print(f"{name}/{args.config} {split}: {info.num_examples} examples in {builder.data_dir}")
    for split, skipped in builder.skipped.items():
        for _, message in skipped:
            print(f"{name}/{args.config} {split}: left out {message}")
    if reused:
        print(f"{name}/{args.config}: this build was made earlier and is reused; delete {builder.data_dir} to build "
              "it again from --manual-dir (e.g. after fixing a left-out image)")
