"""``posebank push [TARGETS]``: ``dvc push`` that a killed push cannot turn into a success with objects missing.

DVC caches two things between pushes in its site cache (``/var/tmp/dvc/repo/<repo digest>/index/``): the push's
collection of what to send, in the data index (``index/data/db.db``, under a key made of the pushed trees' hashes,
reused by the next push of the same trees), and per remote an index of the objects it believes the remote holds
(``index/<remote digest>``). Both are written in several steps and DVC drops the first only at the end of a push
that uploaded something: a push killed while collecting leaves a partial collection that the next ``dvc push``
takes as the whole one, sends none or some of the objects and exits 0 ("Everything is up to date") with the remote
incomplete; a push killed while clearing the remote index leaves file hashes DVC then trusts. posebank's push drops
both caches first (DVC rebuilds them from the workspace and the remote), runs DVC's push, then asks the remote
itself for every object of the pushed outputs (each ``.dir`` listing's files included): a missing one is an error
naming the file and its md5, never a silent success."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from pathlib import Path

from posebank.core.errors import UsageError

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Pushed:
    targets: list[str]
    uploaded: int  # objects DVC uploaded
    verified: int  # objects checked present in the remote afterwards
    remote: str | None
    index_dropped: bool  # DVC's remote index existed and was dropped


def drop_remote_index(odb) -> bool:
    """Remove DVC's index of what the remote behind ``odb`` holds; True if there was one."""
    from dvc_data.hashfile.db import get_index

    index = get_index(odb)
    where = getattr(index, "index_dir", None)
    index.close()
    if not where or not Path(where).is_dir():
        return False
    shutil.rmtree(where)
    return True


def _objects(repo, targets: list[str] | None, remote: str | None) -> dict[str, str]:
    """md5 -> a workspace path, for every object the push of ``targets`` sends (each ``.dir`` listing and its
    files, as the local cache lists them)."""
    from dvc_data.hashfile.tree import Tree

    cache = repo.cache.local
    named: dict[str, str] = {}

    def listing(hi, where: str) -> None:
        named.setdefault(hi.value, where)
        if hi.isdir and cache.exists(hi.value):
            for key, _meta, file_hi in Tree.load(cache, hi):
                if file_hi and file_hi.value:
                    named.setdefault(file_hi.value, f"{where}/{'/'.join(key)}")

    for out in repo.index.outs:
        if out.hash_info and out.hash_info.value:
            listing(out.hash_info, os.path.relpath(out.fs_path, repo.root_dir))
    found: dict[str, str] = {}
    for hash_infos in repo.used_objs(targets=targets or None, remote=remote, push=True).values():
        for hi in hash_infos:
            if hi and hi.value:
                listing(hi, named.get(hi.value, hi.value))
                found[hi.value] = named[hi.value]
                if hi.isdir and cache.exists(hi.value):
                    for _key, _meta, file_hi in Tree.load(cache, hi):
                        if file_hi and file_hi.value:
                            found[file_hi.value] = named[file_hi.value]
    return found


def missing_in_remote(repo, targets: list[str] | None, remote: str | None) -> tuple[dict[str, str], set[str]]:
    """(md5 -> path of every object of ``targets``, the md5s the remote does not hold), asked of the remote itself,
    not of DVC's index of it."""
    objects = _objects(repo, targets, remote)
    odb = repo.cloud.get_remote_odb(remote, "push")
    return objects, set(objects) - set(odb.oids_exist(list(objects)))


def _complete(repo, objects: dict[str, str], missing: set[str], remote: str | None, jobs: int | None) -> int:
    """Upload the ``missing`` objects the local cache holds, one by one by name (DVC's push skips the files of a
    listing whose ``.dir`` object the remote holds, even when one of them is gone); the number uploaded."""
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.transfer import transfer

    cache = repo.cache.local
    have = {HashInfo("md5", oid) for oid in missing if not oid.endswith(".dir") and cache.exists(oid)}
    if not have:
        return 0
    log.warning("the remote lacks %d objects DVC's push did not send (e.g. %s): uploading them", len(have),
                objects[next(iter(have)).value])
    result = transfer(cache, repo.cloud.get_remote_odb(remote, "push"), have, jobs=jobs)
    return len(result.transferred)


def push(targets: list[str] | None = None, start=".", remote: str | None = None, jobs: int | None = None,
         wait_for_lock: bool = False) -> Pushed:
    """Push ``targets`` (DVC targets: stage names like ``merge@small5`` or tracked paths; all outputs when none) to
    ``remote`` (default: the workspace's default remote); then every object of them the remote lacks is uploaded
    from the local cache, and one neither holds is an error naming its file. ``wait_for_lock``: wait while another
    DVC process holds the repository lock (``dvc --wait-for-lock``) instead of failing."""
    from dvc.exceptions import DvcException, NotDvcRepoError
    from dvc.repo import Repo

    try:
        root = Repo.find_root(str(start))
    except NotDvcRepoError:
        raise UsageError(Path(start).resolve(), "not inside a DVC repository (no .dvc/ above it)") from None
    where = f"posebank push {' '.join(targets or [])}".strip()
    try:
        with Repo(str(root), _wait_for_lock=wait_for_lock) as repo:
            name = remote or repo.config["core"].get("remote")
            repo.drop_data_index()  # DVC's cached collection of what a push sends (see the module docstring)
            dropped = drop_remote_index(repo.cloud.get_remote_odb(remote, "push"))
            uploaded = int(repo.push(targets=targets or None, remote=remote, jobs=jobs) or 0)
            objects, missing = missing_in_remote(repo, targets, remote)
            if missing:
                uploaded += _complete(repo, objects, missing, remote, jobs)
                objects, missing = missing_in_remote(repo, targets, remote)
    except DvcException as e:
        raise UsageError(where, f"{' '.join(str(e).split())} (remote {remote or 'the default remote'}; the "
                         "objects that landed are whole: rerun the push to send the rest)") from None
    if missing:
        cache = repo.cache.local
        bad = [f"{objects[oid]} (md5 {oid}{'' if cache.exists(oid) else ', not in the local cache either'})"
               for oid in sorted(missing, key=objects.get)]
        shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise UsageError(where, f"the remote {name} lacks {len(missing)} of {len(objects)} objects after the push: "
                         f"{shown}")
    return Pushed(list(targets or []), uploaded, len(objects), name, dropped)
