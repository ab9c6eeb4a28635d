"""Where this package's numba code is cached: a directory named by a hash of all its source files.

numba's ``cache=True`` keeps a function's compiled code while that function's own file is unchanged, even when a
function it calls from another file has changed (numba's caching notes: changes in symbols defined in another
file are not detected). After a ``git pull`` that changed only ``crf/move_graph.py``, ``crf/move_solver.py``
would go on building moves with the old tables, silently. Keyed by the whole package's source, any change
compiles every function afresh (about 25 s once for `crf.solve` on 2 cores) and a stale cache is never read.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

import numba

PACKAGE = Path(__file__).resolve().parent
_PREFIX = "numba-"
SHARED_KEPT = 4  # keyed folders kept in the cache shared by checkouts (one per package version in use)


def source_hash(package: Path = PACKAGE) -> str:
    """16 hex digits of SHA-256 over the names and bytes of the package's ``*.py`` files."""
    digest = hashlib.sha256()
    for path in sorted(package.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)


def _private(root: Path) -> bool:
    """Whether ``root`` (in the shared temporary folder) is, or is now made, this user's alone: numba loads
    pickled code from its cache, so a folder another user made or can write is never used."""
    try:
        root.mkdir(mode=0o700, exist_ok=True)
        info = root.lstat()
    except OSError:
        return False
    mine = not hasattr(os, "getuid") or info.st_uid == os.getuid()
    return stat.S_ISDIR(info.st_mode) and mine and not info.st_mode & 0o022


def _temporary_root(label: str, temp: Path | None = None) -> Path:
    """A fallback for the cache: ``<label>-<uid>`` in the temporary folder (``temp`` in its place)."""
    user = os.getuid() if hasattr(os, "getuid") else "user"
    return (temp or Path(tempfile.gettempdir())) / f"{label}-{user}"


def _fresh_temporary(label: str, name: str, temp: Path | None = None) -> Path | None:
    """The last resort: ``name`` in a new private folder of the temporary folder (its cache is this process's
    alone, but the package imports; removed when the process exits), or None when not even that can be made."""
    try:
        folder = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=temp))
    except OSError:
        return None
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder / name


def _remove(paths) -> None:
    for old in paths:
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)


def _last_used(folder: Path) -> float:
    """``folder``'s modification time; -1 for one another process has just removed."""
    try:
        return folder.stat().st_mtime
    except FileNotFoundError:
        return -1.0


def _prune_shared(root: Path, name: str) -> None:
    """Mark ``root / name`` used now and remove all but the `SHARED_KEPT` most recently used keyed folders of
    ``root``. Processes may prune at once (a pool of CRF workers after a source change): a folder another has
    removed meanwhile is skipped, and a folder removed under a process that still runs its code costs nothing
    (numba has loaded it; it writes again what it needs)."""
    with contextlib.suppress(FileNotFoundError):
        os.utime(root / name)
    by_use = sorted(root.glob(_PREFIX + "*"), key=_last_used, reverse=True)
    _remove(old for old in by_use[SHARED_KEPT:] if old.name != name)


def cache_dir(package: Path = PACKAGE, home: Path | None = None, temp: Path | None = None,
              label: str = "oosis-crf") -> Path | None:
    """The keyed cache directory: under ``NUMBA_CACHE_DIR`` when the user set one (nothing there is removed),
    else the package's ``__pycache__`` (where the caches of older sources are removed; not for an installed
    package, whose folder is pip's: an uninstall would leave the cache behind as an empty ``crf``), else
    ``~/.cache/<label>`` (``home`` in place of ``~``; ``label`` names the package's own folder there), shared by
    every checkout of the package, else (a read-only install with no writable home, e.g. a container's user)
    ``<label>-<uid>`` in the temporary folder (``temp`` in its place), made private to the user; in the last two
    the `SHARED_KEPT` most recently used are kept (each about 4 MB). Where even that is refused (e.g. another
    user made that folder first), a new private folder of the temporary folder, for this process alone. None
    only when none can be written (numba then caches as it would by itself)."""
    name = _PREFIX + source_hash(package)
    try:
        shared = (home or Path.home()) / ".cache" / label
    except RuntimeError:  # no home directory can be determined
        shared = None
    temporary = _temporary_root(label, temp)
    installed = any(parent.name in ("site-packages", "dist-packages") for parent in package.parents)
    roots = ([Path(numba.config.CACHE_DIR)] if numba.config.CACHE_DIR else
             [*([] if installed else [package / "__pycache__"]), *([shared] if shared else []), temporary])
    for root in roots:
        if (root == temporary and not _private(root)) or not _writable(root / name):
            continue
        if root == package / "__pycache__":  # older sources' caches, and numba's own from before this module
            _remove(old for old in [*root.glob(_PREFIX + "*"), *root.glob("*.nbi"), *root.glob("*.nbc")]
                    if old.name != name)
        elif root in (shared, temporary):
            _prune_shared(root, name)
        return root / name
    return None if numba.config.CACHE_DIR else _fresh_temporary(label, name, temp)


@contextlib.contextmanager
def keyed_cache(package: Path = PACKAGE, label: str = "oosis-crf"):
    """Within this block, numba functions defined with ``cache=True`` cache in ``cache_dir(package, label=label)``
    (numba picks a function's cache location when the function is defined, i.e. when its module is imported)."""
    target = cache_dir(package, label=label)
    saved = numba.config.CACHE_DIR
    if target is not None:
        numba.config.CACHE_DIR = str(target)
    try:
        yield target
    finally:
        numba.config.CACHE_DIR = saved
