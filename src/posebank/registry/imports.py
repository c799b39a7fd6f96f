"""``posebank import URL MERGE --rev TAG``: a released merge and the source caches it references, brought into a
training project (a DVC repository) with ``dvc import``, laid out as in the registry so that the merged file finds
its caches: ``<out>/merged/<merge>.h5`` and, for a source cache at ``../cache/<dataset>`` from the merged file,
``<out>/cache/<dataset>``. Each import is a ``.dvc`` file recording URL, rev and md5 (``dvc update`` moves it to
another rev); the data comes from the registry's DVC remote, as its ``.dvc/config`` names it."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import yaml

from posebank.core.errors import UsageError

log = logging.getLogger(__name__)


def registry_paths(url: str, rev: str | None) -> tuple[str, str]:
    """``(pipeline.merged, pipeline.cache)`` of the registry's params.yaml at ``rev``."""
    import dvc.api
    from dvc.exceptions import DvcException

    try:
        text = dvc.api.read("params.yaml", repo=url, rev=rev)
    except (DvcException, FileNotFoundError) as e:
        raise UsageError(f"{url}@{rev or 'HEAD'}", f"cannot read its params.yaml: {e}") from None
    pipeline = (yaml.safe_load(text) or {}).get("pipeline") or {}
    return str(pipeline.get("merged", "data/merged")), str(pipeline.get("cache", "data/cache"))


def import_merge(url: str, name: str, rev: str | None = None, out="posebank", project=".",
                 sources: bool = True) -> list[Path]:
    """``dvc import`` the merge ``name`` (and, with ``sources``, each source cache it references) from the
    registry at ``url`` into ``out`` of the DVC project holding ``project``; returns the imported paths."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    from posebank.merging.reader import Merge

    try:
        repo = Repo(str(project))
    except DvcException:
        raise UsageError(Path(project), "not a DVC project: run `git init && dvc init` there first") from None
    merged_dir, _cache_dir = registry_paths(url, rev)
    out = Path(repo.root_dir) / out
    merged = out / "merged" / f"{name}.h5"
    done = []
    try:
        with repo:
            merged.parent.mkdir(parents=True, exist_ok=True)
            repo.imp(url, f"{merged_dir}/{name}.h5", out=str(merged), rev=rev)
            done.append(merged)
            if sources:
                with Merge(merged, verify=False) as m:
                    refs = [(s["dataset"], s["cache"]) for s in m.sources]
                for _dataset, rel in refs:
                    src = os.path.normpath(Path(merged_dir) / rel)
                    dst = Path(os.path.normpath(merged.parent / rel))
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    repo.imp(url, Path(src).as_posix(), out=str(dst), rev=rev)
                    done.append(dst)
    except DvcException as e:
        raise UsageError(f"dvc import {url}", f"{e} (rev {rev or 'HEAD'})") from None
    log.info("imported %s from %s@%s: %s", name, url, rev or "HEAD",
             ", ".join(os.path.relpath(p, repo.root_dir) for p in done))
    return done
