"""SIGKILL of the later long stages (validate, merge, export, push) at a random point of their run, then a rerun.

tests/pipeline/test_resume.py kills the image stages (frames, detect, segment, crop) at a random shard; this file
covers the stages after them. Each stage first runs uninterrupted in a scratch workspace (over a copy of the
``reference`` H36M cache): its outputs are the expected bytes and its wall time T bounds the kill point. Then, per
seed, the outputs are removed, the stage is started again in its own process group and killed with SIGKILL after
a delay drawn from ``random.Random`` in [0, T]; while it runs, every output path is polled every few milliseconds
and whatever file is visible there must already be byte-identical to the uninterrupted run's (a partial file at
an output path fails the test). The rerun must succeed, leave no temporary file of posebank's behind and give
the uninterrupted bytes again. A kill that comes after the run has finished is recorded as no fault.

``push`` is ``dvc push`` of the cache folder to the repository's own default remote (a local folder, as
.dvc/config configures it); a separate test checks that this remote is configured to write every object under a
temporary name (see test_push_writes_no_object_before_its_content for the failure otherwise).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from reliability.conftest import SOAK, seeds
from staging import IMAGE_STAGES, kill_and_rerun

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # dvc and the stages from the test environment


SEEDS = seeds(ci=1, soak=5)
POLL_S = 0.003
DVC_TEMP = re.compile(r"^\.[A-Za-z0-9_-]{22}\.tmp$")
MERGE = {"filter": "none", "sources": [{"dataset": "h36m", "suffix": "h36m",
                                        "splits": {"train": "train", "test": "test"}}]}


@pytest.fixture(scope="module")
def workspace(reference, tmp_path_factory) -> Path:
    """A scratch folder holding a copy of the reference H36M cache and a params.yaml whose stages read it: the
    repository's ``refit_h36m_train`` export (SPIN npz of the training split) and a one-source merge of it."""
    ref_params, ref = reference
    ws = tmp_path_factory.mktemp("interrupt")
    shutil.copytree(ref.cache, ws / "cache" / "h36m")
    params = yaml.safe_load(yaml.safe_dump(ref_params))
    params["pipeline"].update(interim=str(ws / "interim"), cache=str(ws / "cache"), reports=str(ws / "reports"),
                              merged=str(ws / "merged"), exports=str(ws / "exports"),
                              expectations=str(REPO / "expectations"))
    repo_params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["exports"] = {"refit_h36m_train": repo_params["exports"]["refit_h36m_train"]}
    params["merges"] = {"h36m_only": MERGE}
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return ws


# ------------------------------------------------------------------------------------------ outputs
def _files(paths: list[Path], ignore=None) -> dict[str, Path]:
    """Every file at or under the output paths, by path (but those ``ignore(name)`` says are not outputs)."""
    out = {}
    for p in paths:
        if p.is_file():
            out[str(p)] = p
        elif p.is_dir():
            out.update({str(f): f for f in sorted(p.rglob("*")) if f.is_file()})
    return {k: p for k, p in out.items() if ignore is None or not ignore(p.name)}


def dvc_temporary(name: str) -> bool:
    """A file DVC's local remote writes before renaming it to its object path (dvc_objects' ``tmp_fname``:
    ``.<token_urlsafe(16)>.tmp``): never an object path, so never read as an object."""
    return DVC_TEMP.match(name) is not None


def _snapshot(paths: list[Path], ignore=None) -> dict[str, bytes]:
    return {k: p.read_bytes() for k, p in _files(paths, ignore).items()}


def _temporaries(outputs: list[Path]) -> list[Path]:
    """Temporary files and folders of posebank's atomic writes (``.<name>.pid<N>.<random>.tmp[dir]``) and DVC's
    (``.<random>.tmp``) left beside the outputs (the folder an output is written in) or inside an output folder."""
    def temporary(p: Path) -> bool:
        return p.name.startswith(".") and (".pid" in p.name or p.name.endswith(".tmp"))

    found = []
    for out in outputs:
        found += [p for p in out.parent.iterdir() if temporary(p)] if out.parent.is_dir() else []
        found += [p for p in out.rglob("*") if temporary(p)] if out.is_dir() else []
    return sorted(set(found))


class Watcher:
    """Polls output paths while a run goes on: any file visible there must equal the expected bytes. A file is
    read again only when its (inode, size, mtime) changes, so polling costs little while nothing is written."""

    def __init__(self, outputs: list[Path], expected: dict[str, bytes], whole: list[Path] = (), ignore=None):
        self.outputs, self.expected, self.whole, self.ignore = outputs, expected, list(whole), ignore
        self.seen: dict[str, tuple] = {}
        self.partial: list[str] = []
        self.checked = 0
        self.bytes_compared = 0

    def poll(self) -> None:
        for key, p in _files(self.outputs, self.ignore).items():
            try:
                st = p.stat()
                stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
                if self.seen.get(key) == stamp:
                    continue
                data = p.read_bytes()
            except FileNotFoundError:  # replaced or removed between the listing and the read
                continue
            self.seen[key] = stamp
            self.checked += 1
            self.bytes_compared += len(data)
            if key not in self.expected or data != self.expected[key]:
                self.partial.append(f"{key} ({len(data)} bytes)")
        for folder in self.whole:  # an output folder appears whole: every expected file of it, or none
            if folder.is_dir():
                want = {k for k in self.expected if k.startswith(str(folder) + os.sep)}
                have = set(_files([folder]))
                if have and want - have:
                    self.partial.append(f"{folder} without {sorted(want - have)[:3]}")


def _env() -> dict:
    return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}


def _run(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True)
    assert r.returncode == 0, f"{cmd} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return time.perf_counter() - t0


def _killed_run(cmd: list[str], cwd: Path, delay: float, watcher: Watcher) -> bool:
    """Start ``cmd`` in its own process group, poll the outputs until ``delay`` seconds have passed, SIGKILL the
    group; True when the run was still going (a real interruption), False when it had finished by then."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=_env(), start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.perf_counter() + delay
    while time.perf_counter() < deadline and proc.poll() is None:
        watcher.poll()
        time.sleep(POLL_S)
    alive = proc.poll() is None
    if alive:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    watcher.poll()  # what the kill left
    return alive


def _interrupt(stage: str, cmd: list[str], cwd: Path, outputs: list[Path], record, whole: list[Path] = (),
               ignore=None) -> None:
    """The whole experiment for one stage: an uninterrupted run, then per seed a killed run and a rerun.
    ``whole``: output folders that must appear complete; ``ignore``: names under the outputs that are another
    program's temporary files (DVC's), not outputs."""
    t_ref = _run(cmd, cwd)
    expected = _snapshot(outputs, ignore)
    assert expected, f"{stage} wrote none of {outputs}"
    for seed in SEEDS:
        for p in outputs:
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        delay = random.Random(f"{stage}-{seed}").uniform(0, t_ref)
        watcher = Watcher(outputs, expected, whole, ignore)
        killed = _killed_run(cmd, cwd, delay, watcher)
        assert not watcher.partial, f"{stage} killed after {delay:.2f} s: partial files visible: {watcher.partial}"
        _run(cmd, cwd)
        got = _snapshot(outputs, ignore)
        assert got.keys() == expected.keys(), (stage, sorted(got.keys() ^ expected.keys()))
        for key, data in expected.items():
            assert got[key] == data, f"{stage} rerun after a kill at {delay:.2f} s: {key} differs"
        left = _temporaries(outputs)
        assert all(ignore is not None and ignore(p.name) for p in left), left
        record("interruption", stage=stage, seed=seed, faults=int(killed), recovered=int(killed),
               leftover_temps=len(left), kill_at_s=round(delay, 3), run_s=round(t_ref, 3),
               polls_checked=watcher.checked,
               bytes_compared=sum(len(v) for v in expected.values()) + watcher.bytes_compared)


# ------------------------------------------------------------------------------------------ the stages
def test_validate(workspace, record):
    """validate@h36m: the report, the statistics, the box histogram and the contact sheet."""
    reports = workspace / "reports"
    outputs = [reports / "validation" / "h36m.json", reports / "stats" / "h36m.json",
               reports / "stats" / "h36m_boxes.csv", reports / "contact" / "h36m.png"]
    cmd = [sys.executable, str(REPO / "stages" / "validate.py"), "h36m", "-q"]
    _interrupt("validate", cmd, workspace, outputs, record)


def test_merge(workspace, record):
    """merge@h36m_only: the merged HDF5 file."""
    cmd = [sys.executable, str(REPO / "stages" / "merge.py"), "h36m_only", "-q"]
    _interrupt("merge", cmd, workspace, [workspace / "merged" / "h36m_only.h5"], record)


def test_export(workspace, record):
    """export@refit_h36m_train: the export folder (SPIN npz + manifest) appears whole or not at all."""
    out = workspace / "exports" / "refit_h36m_train"
    cmd = [sys.executable, str(REPO / "stages" / "export.py"), "refit_h36m_train", "-q"]
    _interrupt("export", cmd, workspace, [out], record, whole=[out])


def _push_repo(workspace: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A DVC project with the repository's own .dvc/config (its default remote ``local``, pointed at a scratch
    folder) tracking a copy of the cache folder; (project, remote folder)."""
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    shutil.copytree(workspace / "cache" / "h36m", repo / "data" / "h36m")
    remote = tmp_path / "remote"
    _run(["git", "init", "-q"], repo)  # the project's config stages what dvc adds in git (core.autostage)
    _run(["dvc", "init", "-q"], repo)
    shutil.copy2(REPO / ".dvc" / "config", repo / ".dvc" / "config")
    _run(["dvc", "remote", "modify", "--local", "local", "url", str(remote)], repo)
    _run(["dvc", "add", "-q", "data/h36m"], repo)
    return repo, remote


def test_push_writes_no_object_before_its_content(workspace, tmp_path):
    """DVC's local remote tries a reflink first unless the remote's ``type`` says otherwise, and on Linux that
    creates the object at its final path (O_CREAT | O_TRUNC) before the FICLONE ioctl fails on ext4 and the file is
    removed again: a push killed in between leaves an empty object where the remote's index and every later push
    take it for the real one (the rerun then skips it, and a .dir object so left makes it skip the directory's
    files). Copying writes a temporary file and renames it, so the default remote is configured ``type = copy``."""
    import dvc.repo

    repo, _ = _push_repo(workspace, tmp_path)
    with dvc.repo.Repo(str(repo)) as r:
        types = r.cloud.get_remote_odb("local").cache_types
    assert types == ["copy"], (f"the default remote 'local' of .dvc/config links objects by {types}: set "
                               "`type = copy` in its section (dvc remote modify local type copy)")


def test_push(workspace, tmp_path, record):
    """``posebank push`` of the cache folder (one object per shard, the index and the folder's listing) to the
    repository's default local remote: every object visible in the remote is complete, and the rerun completes
    the remote with the uninterrupted push's objects. (A plain ``dvc push`` rerun does not always: a push killed
    while collecting what to send leaves a partial collection in DVC's data index that the next ``dvc push`` takes
    for the whole, tests/registry/test_push.py.)"""
    repo, remote = _push_repo(workspace, tmp_path)
    # the remote's object paths are the output paths; DVC writes each object under a temporary name and renames
    # it, so a kill can leave such temporaries beside the objects (DVC does not remove them on the next push:
    # counted as leftover_temps), but never a partial object
    _interrupt("push", [str(BIN / "posebank"), "push"], repo, [remote], record, ignore=dvc_temporary)


@pytest.mark.skipif(not SOAK, reason="CI: tests/pipeline/test_resume.py kills each image stage once; make soak: "
                                     "at every seed's shard")
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("stage", IMAGE_STAGES)
def test_image_stages(reference, tmp_path, stage, seed, record):
    """frames, detect, segment, crop killed after a shard drawn from the seed (test_resume's procedure): the rerun
    resumes and every shard and the cache are the uninterrupted bytes."""
    got = kill_and_rerun(reference, tmp_path, stage, seed)
    record("interruption", stage=stage, seed=seed, faults=1, recovered=1, bytes_compared=got["bytes_compared"])
