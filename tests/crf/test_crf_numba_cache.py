"""crf.numba_cache: every numba function of the package caches in a directory keyed by the whole package's
source, so a change in any file (numba only watches a function's own file) never lets stale code run."""

import importlib
import os
import pkgutil
import shutil
from pathlib import Path

import numba
from numba.core.registry import CPUDispatcher

import crf
from crf import numba_cache


def cached_dispatchers():
    """``{qualified name: cache folder}`` of every cached numba function of every ``crf`` module."""
    found = {}
    for info in pkgutil.iter_modules(crf.__path__):
        module = importlib.import_module(f"crf.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, CPUDispatcher) and value.__module__ == module.__name__ and value._cache.cache_path:
                found[f"{module.__name__}.{name}"] = Path(value._cache.cache_path)
    return found


def package_copy(folder: Path) -> Path:
    """``folder`` made with a copy of every source file of ``crf`` in it (its own source hash)."""
    folder.mkdir(parents=True)
    for path in numba_cache.PACKAGE.glob("*.py"):
        shutil.copy(path, folder / path.name)
    return folder


def test_every_cached_function_uses_the_keyed_folder():
    keyed = numba_cache.cache_dir()
    assert keyed is not None and keyed.name == "numba-" + numba_cache.source_hash()
    found = cached_dispatchers()
    assert {"crf.boykov_kolmogorov.boykov_kolmogorov", "crf.hybrid.max_flow", "crf.move_solver._solve",
            "crf.move_graph.pair_table", "crf.region_moves._region_sums"} <= set(found)
    outside = {name: str(path) for name, path in found.items() if keyed not in path.parents}
    assert not outside, f"cached outside {keyed}: {outside}"


def test_every_compiled_function_releases_the_gil():
    """So that ``crf.solve`` runs in parallel from several threads of one process (``bench_crf``'s last table)."""
    holding = []
    for info in pkgutil.iter_modules(crf.__path__):
        module = importlib.import_module(f"crf.{info.name}")
        holding += [f"{module.__name__}.{name}" for name, value in vars(module).items()
                    if isinstance(value, CPUDispatcher) and value.__module__ == module.__name__
                    and not value.targetoptions.get("nogil") and value.targetoptions.get("inline") != "always"]
    assert not holding, holding


def test_any_source_change_moves_the_folder_and_old_folders_go(tmp_path):
    package = package_copy(tmp_path / "copy")
    before = numba_cache.source_hash(package)
    assert before == numba_cache.source_hash()
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "jump.run-9.py311.nbi").write_bytes(b"numba's own cache, before this module")
    first = numba_cache.cache_dir(package)
    assert first == package / "__pycache__" / f"numba-{before}" and first.is_dir()
    assert not (package / "__pycache__" / "jump.run-9.py311.nbi").exists()
    with open(package / "move_graph.py", "a") as f:
        f.write("\n# an edit in one file\n")
    after = numba_cache.source_hash(package)
    assert after != before
    assert numba_cache.cache_dir(package).name == f"numba-{after}"
    assert not first.exists()  # the caches of the old source are removed from the package's __pycache__


def test_a_users_cache_folder_is_kept_and_an_unwritable_one_left_to_numba(tmp_path, monkeypatch):
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path / "mine"))
    with numba_cache.keyed_cache() as target:
        assert target == tmp_path / "mine" / f"numba-{numba_cache.source_hash()}"
        assert numba.config.CACHE_DIR == str(target)
    assert numba.config.CACHE_DIR == str(tmp_path / "mine")  # restored after the imports
    (tmp_path / "a_file").write_text("not a folder")
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path / "a_file"))
    with numba_cache.keyed_cache() as target:
        assert target is None and numba.config.CACHE_DIR == str(tmp_path / "a_file")


def test_the_shared_cache_keeps_the_most_recently_used_versions(tmp_path, monkeypatch):
    # a read-only checkout caches under ~/.cache/oosis-crf, shared by checkouts: older versions are bounded there
    package = package_copy(tmp_path / "copy")
    (package / "__pycache__").write_text("a file, so the package's own cache folder is not writable")
    monkeypatch.setattr(numba.config, "CACHE_DIR", None)
    shared = tmp_path / "home" / ".cache" / "oosis-crf"
    others = [shared / f"numba-old{i}" for i in range(numba_cache.SHARED_KEPT + 2)]
    for age, folder in enumerate(others):
        folder.mkdir(parents=True)
        os.utime(folder, (1e9 - age, 1e9 - age))  # others[0] the most recently used
    target = numba_cache.cache_dir(package, home=tmp_path / "home")
    assert target == shared / f"numba-{numba_cache.source_hash(package)}" and target.is_dir()
    kept = sorted(p.name for p in shared.iterdir())
    assert kept == sorted([target.name] + [f.name for f in others[:numba_cache.SHARED_KEPT - 1]])


def test_without_a_writable_package_or_home_the_cache_is_a_private_temporary_folder(tmp_path, monkeypatch):
    # a read-only install run by a user whose home cannot be written (a container's user): numba's own fallback
    # raised at import ("cannot cache function ...: no locator available")
    package = package_copy(tmp_path / "copy")
    (package / "__pycache__").write_text("a file, so the package's own cache folder is not writable")
    (tmp_path / "home").write_text("a file, so ~/.cache cannot be made")
    monkeypatch.setattr(numba.config, "CACHE_DIR", None)
    (tmp_path / "tmp").mkdir()
    target = numba_cache.cache_dir(package, home=tmp_path / "home", temp=tmp_path / "tmp")
    root = tmp_path / "tmp" / f"oosis-crf-{os.getuid()}"
    assert target == root / f"numba-{numba_cache.source_hash(package)}" and target.is_dir()
    assert root.stat().st_mode & 0o777 == 0o700
    root.chmod(0o777)  # a folder others can write (e.g. made by someone else) is never used: numba loads pickles
    fresh = numba_cache.cache_dir(package, home=tmp_path / "home", temp=tmp_path / "tmp")
    assert fresh.parent.parent == tmp_path / "tmp" and fresh.parent.name.startswith("oosis-crf-")
    assert fresh.parent != root and fresh.parent.stat().st_mode & 0o777 == 0o700  # this process's own


def test_an_installed_package_caches_in_the_users_folder_not_in_site_packages(tmp_path, monkeypatch):
    # pip uninstall removes the files it installed; a cache beside them stayed, and import crf then found an
    # empty namespace package
    package = package_copy(tmp_path / "lib" / "python3.11" / "site-packages" / "crf")
    monkeypatch.setattr(numba.config, "CACHE_DIR", None)
    target = numba_cache.cache_dir(package, home=tmp_path / "home")
    assert target == tmp_path / "home" / ".cache" / "oosis-crf" / f"numba-{numba_cache.source_hash(package)}"
    assert not (package / "__pycache__").exists()


def test_pruning_the_shared_cache_skips_folders_another_process_removed(tmp_path, monkeypatch):
    # two processes pruning at once: one's rmtree between the other's glob and stat raised FileNotFoundError
    shared = tmp_path / "shared"
    shared.mkdir()
    real = [shared / f"numba-old{i}" for i in range(numba_cache.SHARED_KEPT + 2)]
    for folder in real:
        folder.mkdir()
    gone = shared / "numba-removed-meanwhile"
    monkeypatch.setattr(Path, "glob", lambda self, pattern: iter(real + [gone]))
    numba_cache._prune_shared(shared, "numba-current-not-made-yet")
    assert len([f for f in real if f.exists()]) == numba_cache.SHARED_KEPT
