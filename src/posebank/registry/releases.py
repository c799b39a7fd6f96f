"""Versions of a merge: a release is an annotated git tag ``<merge>-v<N>`` on a commit whose dvc.lock records the
merge, made only when the merge is current, validated and in the remote.

The tag's message is JSON (``posebank_release: 1``): the merge's path, its md5 and size as dvc.lock records them,
examples per split, union joints, whether it is partial, its validation result, and each source cache's path, md5
(DVC's ``.dir`` hash) and examples. ``git checkout <tag>`` then ``posebank pull <merge>`` gives exactly those bytes;
another project imports the version with ``dvc import <repo> <path> --rev <tag>`` (:mod:`posebank.registry.imports`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import subprocess
from pathlib import Path

from posebank.core.errors import UsageError
from posebank.registry.push import missing_in_remote
from posebank.registry.push import push as push_outputs
from posebank.registry.workspace import find_root, load_workspace_params, lock_outs, merge_source_paths, merged_rel

log = logging.getLogger(__name__)
MARKER = "posebank_release"
TAG = re.compile(r"^(?P<name>[A-Za-z0-9_.]+)-v(?P<version>[0-9]+)$")
FALLBACK_IDENTITY = ["-c", "user.name=posebank release", "-c", "user.email=release@posebank.invalid"]


def git(root: Path, *args: str, check: bool = True) -> str:
    r = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if check and r.returncode:
        raise UsageError(f"git {' '.join(args[:2])}", (r.stderr or r.stdout).strip() or f"exit status {r.returncode}")
    return r.stdout


@dataclasses.dataclass
class Release:
    tag: str
    name: str
    version: int
    commit: str
    date: str
    meta: dict

    @property
    def examples(self) -> int:
        return sum(self.meta.get("examples", {}).values())


def releases(start=".", name: str | None = None) -> list[Release]:
    """Every release tag of the repository (of ``name`` only, if given), oldest version first."""
    root = find_root(start)
    out = []
    fmt = "%(refname:strip=2)%00%(*objectname)%00%(creatordate:iso-strict)%00%(objecttype)"
    for line in git(root, "for-each-ref", f"--format={fmt}", "refs/tags").splitlines():
        tag, commit, date, kind = line.split("\0")
        m = TAG.match(tag)
        if not m or kind != "tag" or (name is not None and m["name"] != name):
            continue
        try:
            meta = json.loads(git(root, "tag", "-l", "--format=%(contents)", tag))
        except json.JSONDecodeError:
            continue
        if meta.get(MARKER) != 1:
            continue
        out.append(Release(tag, m["name"], int(m["version"]), commit, date, meta))
    return sorted(out, key=lambda r: (r.name, r.version))


def _validation(root: Path, params, name: str) -> dict:
    path = root / params.pipeline.reports / "validation" / f"{name}.json"
    if not path.is_file():
        raise UsageError(path, f"no validation report: run dvc repro validate_merge@{name} first")
    report = json.loads(path.read_text())
    if not report.get("success"):
        raise UsageError(path, f"merge {name} failed validation ({report.get('expectations_passed')}/"
                         f"{report.get('expectations')} expectations passed): not released")
    return {"expectations_passed": report.get("expectations_passed"), "expectations": report.get("expectations")}


def metadata(start, name: str, params_file: str | None = None) -> dict:
    """What a release of merge ``name`` records (see the module docstring), from the workspace as it is."""
    from posebank.core.store import Cache
    from posebank.merging.reader import Merge

    root = find_root(start)
    params = load_workspace_params(root, params_file)
    params.merge(name)
    outs = lock_outs(root)
    path = merged_rel(params, name)
    if path not in outs:
        raise UsageError(root / "dvc.lock", f"records no {path}: build the merge (dvc repro merge@{name})")
    with Merge(root / path) as m:
        summary = m.summary()
    sources = []
    for dataset, cache in merge_source_paths(root, root / path):
        rec = outs.get(cache)
        if rec is None:
            raise UsageError(root / "dvc.lock", f"records no {cache} (a source of {name})")
        with Cache(root / cache) as c:
            n = len(c)
        sources.append({"dataset": dataset, "path": cache, "md5": rec.md5, "examples": n})
    lock = outs[path]
    return {MARKER: 1, "name": name, "kind": "merge", "path": path, "md5": lock.md5, "size": lock.size,
            "examples": {s: int(summary["examples_per_split"].get(s, 0)) for s in ("train", "val", "test")},
            "union_joints": int(summary["joints"]), "partial": bool(summary["partial"]),
            "sources": sources, "validation": _validation(root, params, name)}


def _check_current(root: Path, name: str, paths: list[str], remote: str | None) -> None:
    """The merge and its validation are up to date with their deps, dvc.lock / dvc.yaml / params.yaml are
    committed, and the remote holds every object of the merge and its source caches."""
    from dvc.repo import Repo

    dirty = git(root, "status", "--porcelain", "--", "dvc.lock", "dvc.yaml", "params.yaml").strip()
    if dirty:
        raise UsageError(root / "dvc.lock", f"uncommitted changes ({dirty.splitlines()[0].strip()} ...): commit "
                         "dvc.lock, dvc.yaml and params.yaml first, so that the tag records this build")
    with Repo(str(root)) as repo:
        stale = repo.status(targets=[f"merge@{name}", f"validate_merge@{name}"])
        if stale:
            raise UsageError(f"merge@{name}", f"not up to date ({', '.join(sorted(stale))} changed): "
                             f"dvc repro validate_merge@{name} and commit dvc.lock first")
        objects, absent = missing_in_remote(repo, paths, remote)  # the remote itself, not DVC's index of it
    if absent:
        shown = ", ".join(sorted(objects[oid] for oid in absent)[:3])
        raise UsageError(f"remote {remote or '(default)'}", f"{len(absent)} of the release's {len(objects)} objects "
                         f"are not in the remote ({shown}): posebank push first (or posebank release --push)")


def release(name: str, start=".", remote: str | None = None, push: bool = False,
            params_file: str | None = None) -> tuple[Release, bool]:
    """Tag the next version of merge ``name``; returns (the release, whether a new tag was made: False when the
    latest release already holds these bytes)."""
    root = find_root(start)
    meta = metadata(root, name, params_file)
    paths = [meta["path"], *(s["path"] for s in meta["sources"])]
    if push:
        push_outputs(paths, root, remote)
    _check_current(root, name, paths, remote)
    earlier = releases(root, name)
    if earlier and earlier[-1].meta.get("md5") == meta["md5"] and [
            s["md5"] for s in earlier[-1].meta.get("sources", [])] == [s["md5"] for s in meta["sources"]]:
        log.info("%s already releases these bytes (md5 %s)", earlier[-1].tag, meta["md5"])
        return earlier[-1], False
    version = (earlier[-1].version + 1) if earlier else 1
    tag = f"{name}-v{version}"
    meta = {**meta, "version": version}
    identity = [] if git(root, "config", "user.name", check=False).strip() else FALLBACK_IDENTITY
    git(root, *identity, "tag", "-a", tag, "-m", json.dumps(meta, indent=1))
    made = releases(root, name)[-1]
    log.info("released %s: %s (md5 %s, %d examples) at %s", tag, meta["path"], meta["md5"],
             sum(meta["examples"].values()), made.commit[:10])
    return made, True


def format_releases(found: list[Release]) -> str:
    if not found:
        return "no releases (posebank release MERGE tags one)"
    rows = [("tag", "commit", "date", "examples (train/val/test)", "union joints", "md5", "sources")]
    for r in found:
        ex = r.meta.get("examples", {})
        rows.append((r.tag, r.commit[:10], r.date[:10],
                     f"{r.examples} ({ex.get('train', 0)}/{ex.get('val', 0)}/{ex.get('test', 0)})",
                     str(r.meta.get("union_joints")), str(r.meta.get("md5")),
                     f"{len(r.meta.get('sources', []))}{' (partial)' if r.meta.get('partial') else ''}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)
