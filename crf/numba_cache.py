"""Where this package's numba code is cached: a directory named by a hash of all its source files.

numba's ``cache=True`` keeps a function's compiled code while that function's own file is unchanged, even when a
function it calls from another file has changed (numba's caching notes: changes in symbols defined in another
file are not detected). After a ``git pull`` that changed only ``crf/move_graph.py``, ``crf/move_solver.py``
would go on building moves with the old tables, silently. Keyed by the whole package's source, any change
compiles every function afresh (about 25 s once for `crf.solve` on 2 cores) and a stale cache is never read.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path

import numba

PACKAGE = Path(__file__).resolve().parent
_PREFIX = "numba-"


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


def cache_dir(package: Path = PACKAGE) -> Path | None:
    """The keyed cache directory: under ``NUMBA_CACHE_DIR`` when the user set one, else the package's
    ``__pycache__`` (where the caches of older sources are removed), else ``~/.cache/oosis-crf``; None when none is
    writable (numba then caches as it would by itself)."""
    name = _PREFIX + source_hash(package)
    if numba.config.CACHE_DIR:
        roots = [Path(numba.config.CACHE_DIR)]
    else:
        roots = [package / "__pycache__", Path.home() / ".cache" / "oosis-crf"]
    for root in roots:
        if _writable(root / name):
            if root == package / "__pycache__":  # older sources' caches, and numba's own from before this module
                for old in [*root.glob(_PREFIX + "*"), *root.glob("*.nbi"), *root.glob("*.nbc")]:
                    if old.name != name:
                        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
            return root / name
    return None


@contextlib.contextmanager
def keyed_cache(package: Path = PACKAGE):
    """Within this block, numba functions defined with ``cache=True`` cache in ``cache_dir(package)`` (numba
    picks a function's cache location when the function is defined, i.e. when its module is imported)."""
    target = cache_dir(package)
    saved = numba.config.CACHE_DIR
    if target is not None:
        numba.config.CACHE_DIR = str(target)
    try:
        yield target
    finally:
        numba.config.CACHE_DIR = saved
