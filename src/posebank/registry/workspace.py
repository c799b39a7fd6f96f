"""What a name stands for in a posebank DVC workspace: the paths DVC tracks for it and dvc.lock's record of them.

A merge (``merges:`` of params.yaml) is its merged file ``<pipeline.merged>/<name>.h5`` plus the source caches
the file references (read from the file itself, so a partial merge asks for the caches it holds and no more); a
dataset or a subset is its cache folder ``<pipeline.cache>/<name>``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import yaml

from posebank.core.errors import UsageError
from posebank.core.settings import Params


@dataclasses.dataclass(frozen=True)
class Target:
    """One DVC-tracked path of the workspace (relative to its root) and the stage that writes it."""

    path: str
    stage: str
    md5: str | None = None  # dvc.lock's hash of the output (a ``.dir`` hash for a folder); None: not in dvc.lock
    size: int | None = None
    nfiles: int | None = None


def find_root(start=".") -> Path:
    """The DVC workspace holding ``start`` (the folder with ``.dvc/``), else a UsageError."""
    here = Path(start).resolve()
    for folder in (here, *here.parents):
        if (folder / ".dvc").is_dir() and (folder / "dvc.yaml").is_file():
            return folder
    raise UsageError(Path(start), "not inside a posebank DVC workspace (no .dvc/ and dvc.yaml above it)")


def load_workspace_params(root: Path, params_file: str | None = None) -> Params:
    """The workspace's params.yaml (or ``params_file``), checked whole."""
    from posebank.entry import load_checked

    return load_checked(Path(params_file) if params_file else root / "params.yaml", require_family=False)[0]


def lock_outs(root: Path, lock_text: str | None = None) -> dict[str, Target]:
    """Every output dvc.lock records, by path: its stage, md5, size and file count."""
    text = lock_text if lock_text is not None else (
        (root / "dvc.lock").read_text() if (root / "dvc.lock").is_file() else "")
    lock = yaml.safe_load(text) or {}
    out = {}
    for stage, entry in (lock.get("stages") or {}).items():
        for o in entry.get("outs") or []:
            out[o["path"]] = Target(o["path"], stage, o.get("md5"), o.get("size"), o.get("nfiles"))
    return out


def kind_of(params: Params, name: str) -> str:
    if name in params.merges:
        return "merge"
    if name in params.datasets or name in params.subsets:
        return "cache"
    names = sorted({*params.merges, *params.datasets, *params.subsets})
    raise UsageError(name, f"not a merge, dataset or subset of params.yaml; known: {', '.join(names)}")


def merged_rel(params: Params, name: str) -> str:
    return os.path.normpath(Path(params.pipeline.merged) / f"{name}.h5")


def cache_rel(params: Params, name: str) -> str:
    return os.path.normpath(Path(params.pipeline.cache) / name)


def merge_source_paths(root: Path, merged_file: Path) -> list[tuple[str, str]]:
    """``(dataset, cache path relative to the workspace root)`` for every source cache the merged file references
    (its ``cache`` attribute is relative to the merged file's folder)."""
    from posebank.merging.reader import Merge

    with Merge(merged_file, verify=False) as m:
        sources = [(s["dataset"], s["cache"]) for s in m.sources]
    out = []
    for dataset, rel in sources:
        path = os.path.normpath(merged_file.parent / rel)
        out.append((dataset, os.path.relpath(path, root)))
    return out


def target(root: Path, path: str, outs: dict[str, Target] | None = None) -> Target:
    outs = lock_outs(root) if outs is None else outs
    found = outs.get(path)
    if found is None:
        raise UsageError(root / "dvc.lock", f"records no output {path}: it was never built here (dvc repro) or "
                         "dvc.lock was not committed")
    return found
