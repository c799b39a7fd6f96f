"""``posebank pull NAME``: exactly a merge (its file, then the source caches it references) or one cache, from the
workspace's DVC remote, through DVC's own pull (its progress bars, its transfers), always with the remote's
``verify`` option on: DVC then hashes every downloaded object and drops one whose bytes do not match its name, so an
object corrupted in the remote is an error naming the file and its md5, never a checkout with wrong bytes (without
``verify``, DVC's default for every remote, ``dvc pull`` trusts the remote's bytes)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from posebank.core.errors import UsageError
from posebank.registry.workspace import (
    Target,
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


def _remote_name(repo, remote: str | None) -> str | None:
    """The remote a pull uses (``remote``, else the default one), if the config defines it."""
    name = remote or repo.config["core"].get("remote")
    return name if name and name in repo.config["remote"] else None


def unverified_files(repo, paths: list[str], outs: dict[str, Target], remote: str | None) -> list[str]:
    """After a failed verified pull: ``<file> (md5 <hash>): <why>`` for every file of ``paths`` whose object did not
    reach the local cache, where ``why`` says whether the remote holds an object of that name (its bytes did not
    hash to it: corrupted in the remote) or not (missing from the remote)."""
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.tree import Tree

    cache = repo.cache.local
    try:
        remote_odb = repo.cloud.get_remote_odb(remote, "pull")
    except Exception:  # noqa: BLE001 - the remote is unreachable: nothing more to say than DVC's own error
        return []

    def why(oid: str) -> str:
        try:
            held = remote_odb.exists(oid)
        except Exception:  # noqa: BLE001 - the remote went away while we asked
            return "not fetched"
        return "corrupted in the remote (its bytes do not match the md5)" if held else "missing from the remote"

    found = []
    for path in paths:
        rec = outs.get(path)
        if rec is None or not rec.md5:
            continue
        if not cache.exists(rec.md5):
            found.append(f"{path} (md5 {rec.md5}{', its file listing' if rec.md5.endswith('.dir') else ''}): "
                         f"{why(rec.md5)}")
            continue
        if not rec.md5.endswith(".dir"):
            continue
        try:
            tree = Tree.load(cache, HashInfo("md5", rec.md5))
        except Exception:  # noqa: BLE001 - an unreadable listing is reported as such
            found.append(f"{path} (md5 {rec.md5}): its file listing is unreadable")
            continue
        for key, _meta, hi in tree:
            if hi and hi.value and not cache.exists(hi.value):
                found.append(f"{path}/{'/'.join(key)} (md5 {hi.value}): {why(hi.value)}")
    return found


def dvc_pull(root: Path, paths: list[str], remote: str | None = None, jobs: int | None = None,
             outs: dict[str, Target] | None = None) -> int:
    """``dvc pull PATHS`` with the remote's ``verify`` on; DVC's failures (an object missing from the remote, a
    corrupted object, an unreachable remote) become one UsageError naming the remote, the paths and, when DVC
    dropped objects, each file whose object is corrupted in or missing from the remote."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    where = f"dvc pull {' '.join(paths)}"
    try:
        with Repo(str(root)) as probe:
            name = _remote_name(probe, remote)
        # the override holds for this pull only: the workspace's config files stay as they are
        overrides = {"remote": name, "remote_config": {"verify": True}} if name else {}
        with Repo(str(root), **overrides) as repo:
            try:
                result = repo.pull(targets=paths, remote=remote, jobs=jobs)
            except DvcException as e:
                bad = unverified_files(repo, paths, outs if outs is not None else lock_outs(root), remote)
                if not bad:
                    raise
                shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
                raise UsageError(where, f"{shown}; refused, not checked out (DVC: {' '.join(str(e).split())}; "
                                 f"remote {remote or name})") from None
    except DvcException as e:
        raise UsageError(where, f"{' '.join(str(e).split())} (remote {remote or 'the default remote'}; "
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
    fetched = dvc_pull(root, [first], remote, jobs, outs)
    paths = [first]
    if kind == "merge":
        sources = merge_source_paths(root, root / first)
        missing = [p for _d, p in sources if p not in outs]
        if missing:
            raise UsageError(root / "dvc.lock", f"merge {name} references caches dvc.lock does not record: "
                             f"{', '.join(missing)}")
        srcs = [p for _d, p in sources]
        fetched += dvc_pull(root, srcs, remote, jobs, outs)
        paths += srcs
    total = sum(_bytes(root / p) for p in paths)
    log.info("pulled %s %s: %s (%d objects fetched, %.1f MB)", kind, name, ", ".join(paths), fetched, total / 1e6)
    return Pulled(name, kind, paths, fetched, total, remote)
