"""Shared helpers of the converter tests."""

import shutil
from pathlib import Path


def copy_raw(raw: Path, tmp_path: Path) -> Path:
    """A private copy of a fixture raw tree that a test may break."""
    dst = tmp_path / "raw"
    shutil.copytree(raw, dst)
    return dst


def assert_no_output(out: Path):
    """A failed conversion leaves neither the output nor a temporary file beside it."""
    assert not out.exists()
    assert not out.parent.exists() or [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")] == []


def folder_bytes(folder: Path) -> dict[str, bytes]:
    """Every file of a cache folder (index and shards) by name: two builds are byte-identical when these are equal."""
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}


def cache_content(path: Path) -> tuple[list, list]:
    """A cache's rows (every field of every example, in order) and quarantine, whatever its layout and sharding:
    two caches hold the same data when these are equal."""
    import numpy as np

    from posebank.core.store import Cache

    rows = []
    with Cache(path) as cache:
        for ex in cache.examples():
            c = ex.camera
            rows.append((np.asarray(ex.world_coords).tobytes(), np.asarray(ex.bbox).tobytes(), ex.split, ex.image,
                         ex.image_size, ex.subject, ex.sequence, ex.activity, ex.camera_name, ex.frame_index,
                         ex.source_path, ex.mask, np.asarray(ex.visibility).tobytes(),
                         *(np.asarray(a).tobytes() for a in (c.intrinsic_matrix, c.R, c.t, c.distortion_coeffs,
                                                            c.world_up)), c.distortion_model))
        return rows, cache.quarantine


def script(name: str):
    """``scripts/<name>.py`` as a module (loaded once): tests use the functions of the project's scripts."""
    import importlib.util
    import sys

    key = f"posebank_script_{name}"
    if key not in sys.modules:
        path = Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(key, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]
