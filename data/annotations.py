"""COCO-style annotation files: validated reading for the KINS and COCOA readers (masks: ``data.masks``).

Everything a reader takes from a JSON file goes through these functions first, so a malformed file fails
here with a message naming the file, the image and the key, never deep inside a library.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

MAX_PIXELS = 2 * 89_478_485  # the size PIL refuses to decode (DecompressionBombError): an entry beyond is corrupt


@dataclasses.dataclass(frozen=True)
class ImageEntry:
    """One entry of a COCO ``images`` list: the image's id, file name and size in pixels."""

    image_id: int
    file_name: str
    height: int
    width: int


def read_json(path: str | os.PathLike) -> dict:
    """The top-level JSON object of ``path``; ``FileNotFoundError``/``ValueError`` naming the file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"annotation file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            content = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: malformed JSON ({e})") from e
    except OSError as e:  # e.g. no permission to read it
        raise ValueError(f"{path} cannot be read ({type(e).__name__}: {e})") from e
    if not isinstance(content, dict):
        raise ValueError(f"{path}: expected a JSON object at the top level, got {type(content).__name__}")
    return content


def require(record: object, keys: Iterable[str], where: str) -> None:
    """Raise ``ValueError`` when ``record`` is not a JSON object holding every key of ``keys``."""
    if not isinstance(record, Mapping):
        raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
    missing = [k for k in keys if k not in record]
    if missing:
        raise ValueError(f"{where}: missing key(s) {missing}")


def require_list(record: Mapping, key: str, where: str) -> list:
    """``record[key]``, which must exist and be a JSON list."""
    require(record, [key], where)
    value = record[key]
    if not isinstance(value, list):
        raise ValueError(f"{where}: {key!r} must be a list, got {type(value).__name__}")
    return value


def is_finite_number(value: object) -> bool:
    """Whether ``value`` is a real number, not a boolean, that a float holds finitely (an int beyond the floats,
    such as a JSON ``1e400`` written as digits, is not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def integer(value: object, where: str) -> int:
    """``value`` as an ``int``; booleans, fractions, non-numbers and values outside int64 raise ``ValueError``."""
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not numeric or (isinstance(value, float) and not value.is_integer()):  # inf and NaN are not integers
        raise ValueError(f"{where}: expected an integer, got {value!r}")
    if not -2**63 <= int(value) < 2**63:  # ids are stored as int64
        raise ValueError(f"{where}: {value!r} is outside the 64-bit integers")
    return int(value)


def image_entries(content: Mapping, path: str, skipped: list | None = None) -> list[ImageEntry]:
    """The ``images`` list of a COCO-style file, in file order, validated (unique ids, sizes >= 1).

    A bad entry (a missing or mistyped key, an empty size, an id used twice) raises ``ValueError`` naming it,
    unless ``skipped`` is a list: the entry is then left out (`note_skipped`), and every entry of an id used
    twice, whose annotations cannot be told apart, too. Entries of different ids naming one image file are kept
    with a warning: each becomes an example of that image with only its own annotations.
    """
    entries, bad_ids = [], []
    for k, record in enumerate(require_list(content, "images", path)):
        try:
            entries.append(_image_entry(record, f"{path}: images[{k}]"))
        except ValueError as error:
            if skipped is None:
                raise
            raw_id = record.get("id") if isinstance(record, Mapping) else None
            raw_id = raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) else None
            note_skipped(skipped, raw_id, error)
            bad_ids += [] if raw_id is None else [raw_id]
    counts = Counter([entry.image_id for entry in entries] + bad_ids)  # a bad entry's id counts too
    duplicates = sorted(i for i, n in counts.items() if n > 1)
    for image_id in duplicates:
        error = ValueError(f"{path}: duplicate image id {image_id} in the images list")
        if skipped is None:
            raise error
        note_skipped(skipped, image_id, error)
    left_out = set(duplicates)
    kept = [entry for entry in entries if entry.image_id not in left_out]
    by_file: dict[str, list[int]] = {}
    for entry in kept:
        by_file.setdefault(entry.file_name, []).append(entry.image_id)
    for file_name, ids in by_file.items():
        if len(ids) > 1:
            warnings.warn(f"{path}: images {', '.join(map(str, ids))} all name the file {file_name}: each is an "
                          "example of it with only its own annotations", stacklevel=2)
    return kept


def _image_entry(record: object, where: str) -> ImageEntry:
    require(record, ["id", "file_name", "height", "width"], where)
    if not isinstance(record["file_name"], str) or not record["file_name"]:
        raise ValueError(f"{where}: file_name must be a non-empty string, got {record['file_name']!r}")
    entry = ImageEntry(
        image_id=integer(record["id"], f"{where}.id"),
        file_name=record["file_name"],
        height=integer(record["height"], f"{where}.height"),
        width=integer(record["width"], f"{where}.width"),
    )
    if entry.height < 1 or entry.width < 1:
        raise ValueError(f"{where}: empty image (height={entry.height}, width={entry.width})")
    if entry.height * entry.width > MAX_PIXELS:
        raise ValueError(f"{where}: image of {entry.height}x{entry.width} pixels is larger than any decodable "
                         f"image ({MAX_PIXELS} pixels); a corrupt size?")
    return entry


def annotation_where(record: object, where: str) -> str:
    """``where`` extended by the annotation's id when the record has one (for messages)."""
    has_id = isinstance(record, Mapping) and "id" in record
    return f"{where} annotation {record['id']!r}" if has_id else f"{where} annotation"


BAD_IMAGE_ERRORS = (ValueError, FileNotFoundError)  # what a bad annotation or image file of one image raises


def note_skipped(skipped: list, image_id: int | None, error: Exception) -> None:
    """Record that image ``image_id`` (None: an ``images`` entry without a valid id) is left out because of
    ``error``: ``(image_id, message)`` appended to ``skipped`` and a warning naming the image and the problem."""
    message = str(error) if image_id is None or f"image {image_id}" in str(error) else f"image {image_id}: {error}"
    skipped.append((image_id, message))
    warnings.warn(f"left out of the dataset: {message}", stacklevel=2)


def each_image(entries: Sequence[ImageEntry], build: Callable[[ImageEntry], dict],
               skipped: list | None) -> Iterator[dict]:
    """``build(entry)`` for every image entry, in order. With ``skipped`` None the first bad image raises its
    error (`BAD_IMAGE_ERRORS`, naming the file, image and annotation); with a list, a bad image is left out
    instead (`note_skipped`) and the others follow: one bad image does not sink a dataset build."""
    for entry in entries:
        try:
            example = build(entry)
        except BAD_IMAGE_ERRORS as error:
            if skipped is None:
                raise
            note_skipped(skipped, entry.image_id, error)
            continue
        yield example


@dataclasses.dataclass(frozen=True)
class MalformedRecord:
    """Stands in `group_by_image`'s lists for a record whose ``image_id`` is malformed but names a listed image
    as text (``"12"``): `records_of` that image raises ``error``, so the image is left out rather than built
    without the record's object."""

    error: ValueError


def records_of(grouped: Mapping[int, list], image_id: int) -> list:
    """``grouped[image_id]`` (`group_by_image`); ``ValueError`` when one of them is a `MalformedRecord`."""
    records = grouped[image_id]
    for record in records:
        if isinstance(record, MalformedRecord):
            raise record.error
    return records


def _named_image(record: object, grouped: Mapping[int, list]) -> int | None:
    """The listed image a malformed ``image_id`` (a string, a bool, a fraction) names as text, if any."""
    text = str(record.get("image_id")).strip() if isinstance(record, Mapping) else ""
    plain = text.isascii() and text.isdigit() and len(text) <= 19  # "²" is a digit too; ids are int64
    return int(text) if plain and int(text) in grouped else None


def group_by_image(records: Sequence, images: Sequence[ImageEntry], path: str, what: str,
                   skipped: list | None = None) -> dict[int, list]:
    """Map every image id to its records (file order). A record without a valid ``image_id`` of the images
    list raises ``ValueError`` naming it, unless ``skipped`` is a list: then a malformed ``image_id`` that names
    a listed image as text (``"12"``) makes that image's records fail (`MalformedRecord`, `records_of`: the
    image is left out, not built without the object), and any other belongs to no image and is ignored, with a
    warning unless its image is already in ``skipped`` (left out by `image_entries`)."""
    grouped: dict[int, list] = {entry.image_id: [] for entry in images}
    left_out = set() if skipped is None else {image_id for image_id, _ in skipped}
    for k, record in enumerate(records):
        where = f"{path}: {what}[{k}]"
        try:
            require(record, ["image_id"], where)
            image_id = integer(record["image_id"], f"{where}.image_id")
            if image_id not in grouped and image_id not in left_out:
                raise ValueError(f"{where}: image_id {image_id} is not in the file's images list")
        except ValueError as error:
            if skipped is None:
                raise
            named = _named_image(record, grouped)
            if named is not None:
                grouped[named].append(MalformedRecord(error))
            else:
                warnings.warn(f"ignored (it belongs to no image): {error}", stacklevel=2)
            continue
        if image_id in grouped:
            grouped[image_id].append(record)
    return grouped


def category_ids(content: Mapping, path: str) -> set[int]:
    """The ids of the file's ``categories`` list."""
    ids = set()
    for k, record in enumerate(require_list(content, "categories", path)):
        require(record, ["id"], f"{path}: categories[{k}]")
        ids.add(integer(record["id"], f"{path}: categories[{k}].id"))
    return ids


def image_path(image_dir: str | os.PathLike, entry: ImageEntry) -> str:
    """Path of the entry's image file under ``image_dir``; ``FileNotFoundError`` when it is missing."""
    path = os.path.join(os.fspath(image_dir), entry.file_name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image {entry.image_id}: file {path} not found")
    return path
