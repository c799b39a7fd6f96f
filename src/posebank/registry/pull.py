"""``posebank pull NAME``: exactly a merge (its file, then the source caches it references) or one cache, from the
workspace's DVC remote, through DVC's own pull (its progress bars, its checksums: DVC verifies every object's md5
against dvc.lock as it checks it out)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from posebank.core.errors import UsageError
from posebank.registry.workspace import (
    cache_rel,
    find_root,
    kind_of,
    load_workspace_params,
    lock_outs,
    merge_source_paths,
    merged_rel,
    target,
)

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Pulled:
    name: str
    kind: str  # merge / cache
    paths: list[str]  # workspace-relative, in pull order (a merge's file first)
    fetched: int  # objects downloaded from the remote (0: all were in the local DVC cache)
    bytes: int  # bytes of the pulled paths in the workspace
    remote: str | None


def dvc_pull(root: Path, paths: list[str], remote: str | None = None, jobs: int | None = None) -> int:
    """``dvc pull PATHS``; DVC's failures (an object missing from the remote, a corrupted object, an unreachable
    remote) become one UsageError naming the remote and the paths."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            result = repo.pull(targets=paths, remote=remote, jobs=jobs)
    except DvcException as e:
        raise UsageError(f"dvc pull {' '.join(paths)}", f"{e} (remote {remote or 'the default remote'}; "
                         "`dvc remote list` shows the remotes, docs/operations.md how to configure one)") from None
    return int(((result or {}).get("stats") or {}).get("fetched", 0))


def _bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def pull(name: str, start=".", remote: str | None = None, jobs: int | None = None,
         params_file: str | None = None) -> Pulled:
    """Pull ``name`` (a merge, a dataset's or a subset's cache) into the workspace holding ``start``."""
    root = find_root(start)
    params = load_workspace_params(root, params_file)
    kind = kind_of(params, name)
    outs = lock_outs(root)
    first = merged_rel(params, name) if kind == "merge" else cache_rel(params, name)
    target(root, first, outs)  # recorded in dvc.lock, else the error saying so
    fetched = dvc_pull(root, [first], remote, jobs)
    paths = [first]
    if kind == "merge":
        sources = merge_source_paths(root, root / first)
        missing = [p for _d, p in sources if p not in outs]
        if missing:
            raise UsageError(root / "dvc.lock", f"merge {name} references caches dvc.lock does not record: "
                             f"{', '.join(missing)}")
        srcs = [p for _d, p in sources]
        fetched += dvc_pull(root, srcs, remote, jobs)
        paths += srcs
    total = sum(_bytes(root / p) for p in paths)
    log.info("pulled %s %s: %s (%d objects fetched, %.1f MB)", kind, name, ", ".join(paths), fetched, total / 1e6)
    return Pulled(name, kind, paths, fetched, total, remote)
