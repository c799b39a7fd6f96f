"""``posebank import URL MERGE --rev TAG``: a released merge and the source caches it references, brought into a
training project (a DVC repository) with ``dvc import``, laid out as in the registry so that the merged file finds
its caches: ``<out>/merged/<merge>.h5`` and, for a source cache at ``../cache/<dataset>`` from the merged file,
``<out>/cache/<dataset>``. Each import is a ``.dvc`` file recording URL, rev and md5 (``dvc update`` moves it to
another rev, and a rerun replaces the imports it made); the data comes from the registry's DVC remote, as its
``.dvc/config`` names it. DVC's import trusts the remote's bytes (its ``verify`` option does not reach the objects an
import fetches: an object overwritten in the remote is checked out as it is), so posebank checks every imported byte
itself: the merged file's md5 against the one its ``.dvc`` file records, each source cache's index against the
digest the merge recorded for it (the cache it was built from), and every shard against the SHA-256 its index
lists. A file that fails is removed from the project and from its DVC cache (so a rerun fetches it again) and named
in the error; nothing wrong is left checked out."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
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
    where = f"dvc import {url}"
    try:
        with repo:
            merged.parent.mkdir(parents=True, exist_ok=True)
            _import(repo, url, f"{merged_dir}/{name}.h5", merged, rev)
            done.append(merged)
            check_file(repo, merged)
            if sources:
                with Merge(merged, verify=False) as m:
                    refs = [(s["dataset"], s["cache"], s["cache_digest"]) for s in m.sources]
                for dataset, rel, digest in refs:
                    src = Path(os.path.normpath(Path(merged_dir) / rel)).as_posix()
                    dst = Path(os.path.normpath(merged.parent / rel))
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    _import(repo, url, src, dst, rev)
                    done.append(dst)
                    check_cache(repo, dst, digest, f"{name!r}'s source {dataset}")
    except DvcException as e:
        raise UsageError(where, f"{' '.join(str(e).split())} (rev {rev or 'HEAD'})") from None
    log.info("imported %s from %s@%s: %s", name, url, rev or "HEAD",
             ", ".join(os.path.relpath(p, repo.root_dir) for p in done))
    return done



def _import(repo, url: str, path: str, out: Path, rev: str | None) -> None:
    """``dvc import URL PATH -o OUT --rev REV --force``: a rerun replaces an earlier import of the same path (its
    checked-out copy is removed first, as DVC would import into an existing folder); anything else at ``out`` is
    refused."""
    if out.exists() or out.is_symlink():
        if not Path(f"{out}.dvc").is_file():
            raise UsageError(out, "exists and is not a DVC import: move it away, or import with another --out")
        if out.is_dir() and not out.is_symlink():
            shutil.rmtree(out)
        else:
            out.unlink()
    repo.imp(url, path, out=str(out), rev=rev, force=True)


def _recorded(out: Path) -> str:
    """The md5 the import's ``.dvc`` file records for ``out`` ('' if none)."""
    try:
        outs = (yaml.safe_load(Path(f"{out}.dvc").read_text()) or {}).get("outs") or [{}]
        return str(outs[0].get("md5") or "")
    except (OSError, yaml.YAMLError, AttributeError, IndexError):
        return ""


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _discard(repo, files: list[tuple[Path, str]], what: str) -> None:
    """Remove each (workspace file, md5 DVC named its object by) from the project and its DVC cache, then raise a
    UsageError naming them."""
    cache = repo.cache.local
    for path, md5 in files:
        path.unlink(missing_ok=True)
        if md5:
            with contextlib.suppress(OSError):
                Path(cache.oid_to_path(md5)).unlink(missing_ok=True)
    names = "; ".join(f"{os.path.relpath(p, repo.root_dir)} (md5 {m or '?'})" for p, m in files[:5])
    more = f"; and {len(files) - 5} more" if len(files) > 5 else ""
    raise UsageError(what, f"{names}{more}: the bytes the registry's remote returned are not the released ones "
                     "(an object corrupted in the remote); removed, not imported: rerun once the registry's remote "
                     "is repaired (`posebank push` there uploads its good copies)")


def check_file(repo, path: Path) -> None:
    """The imported file ``path`` has the md5 its ``.dvc`` file records; otherwise it is discarded (UsageError)."""
    want = _recorded(path)
    if want and _md5(path) != want:
        _discard(repo, [(path, want)], f"dvc import {os.path.relpath(path, repo.root_dir)}")


def check_cache(repo, folder: Path, digest: str, what: str) -> None:
    """The imported cache ``folder`` is the one the merge was built from (its index's SHA-256 is ``digest``) and
    every shard has the SHA-256 the index lists; the files that are not are discarded (UsageError)."""
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.tree import Tree

    from posebank.core.store import INDEX_NAME, read_index, sha256_file
    from posebank.merging.store import cache_digest

    listing = _recorded(folder)
    md5s: dict[str, str] = {}
    if listing.endswith(".dir"):
        with contextlib.suppress(Exception):  # no listing: the files are still removed, by path only
            md5s = {"/".join(key): hi.value for key, _meta, hi in Tree.load(repo.cache.local, HashInfo("md5", listing))
                    if hi and hi.value}
    where = f"dvc import {os.path.relpath(folder, repo.root_dir)}"
    if folder.is_file():  # a one-file cache: its SHA-256 is the digest
        if cache_digest(folder) != digest:
            _discard(repo, [(folder, listing)], f"{where} ({what})")
        return
    if cache_digest(folder) != digest:
        _discard(repo, [(folder / INDEX_NAME, md5s.get(INDEX_NAME, ""))], f"{where} ({what})")
    bad = [(folder / s["file"], md5s.get(s["file"], "")) for s in read_index(folder)["shards"]
           if not (folder / s["file"]).is_file() or sha256_file(folder / s["file"]) != s["sha256"]]
    if bad:
        _discard(repo, bad, f"{where} ({what})")
