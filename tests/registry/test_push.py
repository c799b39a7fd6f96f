"""``posebank push``: DVC's push, then the remote itself asked for every object of the pushed outputs; what DVC left
out is uploaded from the local cache, what neither holds is an error naming the file.

The state a killed ``dvc push`` can leave behind is made here on purpose: a push stopped after it collected what to
send (DVC caches that collection in its data index and reuses it in the next push of the same trees), with the
collection then cut short as a kill in the middle of writing it leaves it. ``dvc push`` then sends only what the
partial collection names and exits 0; ``posebank push`` completes the remote.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

STOP_AFTER_COLLECTING = """
import os, sys
import dvc_data.index.push as index_push
from dvc.repo import Repo

def stop(*args, **kwargs):  # the process ends here, as a SIGKILL would end it: nothing is cleaned up
    os._exit(9)

index_push.push = stop
with Repo(sys.argv[1]) as repo:
    repo.push()
"""


def run(*cmd, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True)


def ok(*cmd, cwd) -> str:
    r = run(*cmd, cwd=cwd)
    assert r.returncode == 0, f"{cmd}:\n{r.stdout}\n{r.stderr}"
    return r.stdout + r.stderr


@pytest.fixture
def project(h36m_cache, tmp_path):
    """A DVC project with the repository's .dvc/config (default remote ``local`` pointed at a scratch folder)
    tracking a copy of a cache folder; (project, remote folder, objects a complete push holds)."""
    repo, remote = tmp_path / "repo", tmp_path / "remote"
    shutil.copytree(h36m_cache, repo / "data" / "h36m")
    ok("git", "init", "-q", cwd=repo)
    ok("dvc", "init", "-q", cwd=repo)
    shutil.copy2(REPO / ".dvc" / "config", repo / ".dvc" / "config")
    ok("dvc", "remote", "modify", "--local", "local", "url", remote, cwd=repo)
    ok("dvc", "add", "-q", "data/h36m", cwd=repo)
    files = sum(1 for p in (repo / "data" / "h36m").rglob("*") if p.is_file())
    return repo, remote, files + 1  # every file and the folder's listing


def remote_objects(remote: Path) -> dict[str, bytes]:
    """md5 -> bytes of every object in the remote (``files/md5/ab/cdef...``; temporaries excluded)."""
    base = remote / "files" / "md5"
    if not base.is_dir():
        return {}
    return {f"{p.parent.name}{p.name}": p.read_bytes() for p in base.glob("*/*") if not p.name.endswith(".tmp")}


def assert_complete(remote: Path, objects: int) -> None:
    held = remote_objects(remote)
    assert len(held) == objects, (len(held), objects)
    for name, data in held.items():
        assert hashlib.md5(data).hexdigest() == name.removesuffix(".dir"), name


def test_push_uploads_then_verifies_every_object(project):
    repo, remote, objects = project
    out = ok("posebank", "push", cwd=repo)
    assert f"pushed every output to local: {objects} objects uploaded, {objects} objects verified" in out, out
    assert_complete(remote, objects)
    out = ok("posebank", "push", "data/h36m.dvc", cwd=repo)
    assert f"0 objects uploaded, {objects} objects verified" in out, out


def test_a_partial_collection_left_by_a_killed_push_is_completed(project):
    repo, remote, objects = project
    r = subprocess.run([sys.executable, "-c", STOP_AFTER_COLLECTING, str(repo)], capture_output=True, text=True)
    assert r.returncode == 9, r.stderr
    assert not remote_objects(remote)
    # cut the cached collection short, as a push killed while writing it leaves it: the folder's listing and
    # one of its files
    from dvc.repo import Repo

    with Repo(str(repo)) as r:
        index = r.data_index
        entries = [(key, entry) for key, entry in index.iteritems(("push",)) if entry.hash_info]
        files = [key for key, entry in entries if not entry.hash_info.isdir]
        assert len(files) == objects - 1, (len(files), objects)
        for key in files[1:]:
            index.delete_node(key)
        index.commit()

    # DVC trusts it: exit status 0, the remote incomplete
    out = ok("dvc", "push", cwd=repo)
    assert 0 < len(remote_objects(remote)) < objects, (out, sorted(remote_objects(remote)))
    # posebank push drops DVC's cached collection (and its index of the remote) and checks the remote itself
    out = ok("posebank", "push", cwd=repo)
    assert f"{objects} objects verified in the remote" in out, out
    assert_complete(remote, objects)


def test_an_object_deleted_from_the_remote_is_uploaded_again(project):
    """DVC's push takes a folder's listing in the remote for all of its files; posebank push finds the file that
    is gone and uploads it from the local cache."""
    repo, remote, objects = project
    ok("posebank", "push", cwd=repo)
    victim = next(p for p in (remote / "files" / "md5").glob("*/*") if not p.name.endswith(".dir"))
    victim.unlink()
    assert "Everything is up to date" in ok("dvc", "push", cwd=repo)
    assert not victim.exists()
    out = ok("posebank", "push", cwd=repo)
    assert f"1 objects uploaded, {objects} objects verified" in out and "DVC's push did not send" in out, out
    assert_complete(remote, objects)


def test_an_object_in_neither_cache_nor_remote_is_an_error_naming_the_file(project):
    repo, remote, objects = project
    ok("posebank", "push", cwd=repo)
    shard = next(p for p in sorted((repo / "data" / "h36m").iterdir()) if p.suffix == ".h5")
    oid = hashlib.md5(shard.read_bytes()).hexdigest()
    for store in (repo / ".dvc" / "cache", remote):
        (store / "files" / "md5" / oid[:2] / oid[2:]).unlink()
    r = run("posebank", "push", cwd=repo)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert (f"lacks 1 of {objects} objects after the push: data/h36m/{shard.name} (md5 {oid}, not in the local "
            "cache either)") in r.stderr, r.stderr


def test_outside_a_dvc_repository(tmp_path):
    r = run("posebank", "push", cwd=tmp_path)
    assert r.returncode == 2 and "not inside a DVC repository" in r.stderr and "Traceback" not in r.stderr, r.stderr
