"""Benchmark of the cache layouts under DVC: one HDF5 file versus a folder of shards, after a change to one sequence.

Usage::

    .venv/bin/python bench/cache.py [--size-gb 20] [--sequences 40] [--work DIR] [--quick]
                                    [--out bench/results/cache.json] [--allow-dirty]

A synthetic cache of about ``--size-gb`` GiB is built as ``--sequences`` sequences of equal size (subject /
sequence / camera as in a real cache: 8 sequences per subject, 4 cameras per sequence). Its rows are about 100 KB
each: the image is 75-125 kB of random bytes (incompressible, from a numpy Generator seeded by sequence and version),
no mask, a small random pose, box and crop camera. The same rows are written in two layouts with
:class:`posebank.core.store.CacheWriter`:

* ``single``: one file ``cache/bench.h5`` (one writer, the sequences in order);
* ``folder``: ``cache/bench/``, one self-contained shard per sequence (``<subject>_<sequence>.h5``, attrs ``digest``
  and ``shard``) and ``index.json`` written last by :func:`posebank.core.store.write_index`, with its ``state`` file
  outside the tracked folder (``interim/index-state.json``, as the crop stage's), so that only a changed shard is
  hashed again (``params.index_state``: whether this write_index takes one).

Each layout lives in its own fresh workspace (``git init``, ``dvc init``, a local-folder default remote, analytics
off, DVC's site cache in the work folder), measured one after the other; the first layout's workspace, DVC cache and
remote are deleted before the second starts, so the disk holds one layout at a time. In a workspace:

1. ``initial``: the build (write), ``dvc add``, ``dvc push``, ``dvc status`` (clean);
2. ``changed``: one sequence (the middle one) is regenerated with another seed, then: the rebuild's write (single:
   the whole file rewritten, as the old crop stage's re-assembly did; folder: the one shard rewritten +
   ``write_index``), ``dvc status``, ``dvc add`` (re-add: hash + commit into the DVC cache), ``dvc push``, and a
   last ``dvc status`` that must be clean.

Every step is timed by wall clock (DVC steps: the ``dvc`` command as a subprocess, startup included); each is
followed by ``os.sync()``, timed apart (``sync_seconds``: the write-back of what the step left in the page cache;
``seconds_with_sync`` is their sum), so no step pays for the previous one's dirty pages. The rebuild's time includes
generating its rows (``generate_seconds``, the same generator for both layouts). A push's upload is measured by
listing the remote folder before and after it (new files, their bytes, files changed or removed); what ``dvc add``
put into the DVC cache likewise, and which workspace files it rewrote (``workspace_files_rewritten``: a new inode
or modification time: DVC replaced the file by a copy from its cache). The caches are read back with
:class:`posebank.core.store.Cache` (rows, shards, the changed sequence's digest).

Disk: a layout needs about 3x its size at peak (workspace + DVC cache + remote). For the single file a change
would need up to 5x (the old and the new version in both the DVC cache and the remote), so in that layout the
benchmark deletes the superseded object from the remote before the rebuild and from the DVC cache after the
changed state's ``dvc status`` and before ``dvc add`` (recorded under ``pruned``). Neither is read by what follows:
``dvc status`` (not ``-c``) compares the workspace with the ``.dvc`` file and checks that the cache holds the
*recorded* object (the old one, still there then); ``dvc add`` and ``dvc push`` transfer only the new object, which
is absent either way. The folder layout's superseded shard is small and left in place. The run refuses (exit
status 2) when the free space is below 3.3 x size + 2 GiB, naming the largest size that fits.

The machine's limits, measured in the same run on a probe file (``--probe-gb``, default 2 GiB, written and deleted
before the layouts): md5 and sha256 of bytes in memory (CPU), the probe's sequential write + fsync, its read + md5
cold (evicted from the page cache with ``posix_fadvise(DONTNEED)``) and warm (read again), and its copy as DVC's
local copy does it (``shutil.copyfileobj``, 1 MiB chunks; reflink is not available on ext4) plus fsync, and as
``shutil.copyfile`` (``sendfile``). So a ratio can be judged: ``dvc add`` of N GiB needs at least N / md5-rate (when
not hashed before) + N / copy-rate. MiB = 2**20 bytes, GiB = 2**30 bytes throughout.

The JSON (written atomically) records the per-layout figures, the ratios single / folder of every changed-state
step, the limits, the parameters, the machine, the timestamps and the code measured (the git commit and the
uncommitted changes of the posebank modules the run loaded and this script: ``code.clean``). As with the other
benchmarks, the default output is not written from uncommitted code unless ``--allow-dirty`` is given, and a
``--quick`` run (0.3 GiB, 6 sequences, 0.25 GiB probe: well under a minute) needs ``--out``.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from posebank.core.atomic import write_json

os.environ["GX_ANALYTICS_ENABLED"] = "false"
os.environ["DVC_NO_ANALYTICS"] = "1"

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))  # bench/provenance.py, also when this file is imported by path
from provenance import code_state  # noqa: E402

DEFAULT_OUT = REPO / "bench" / "results" / "cache.json"
DVC = str(Path(sys.executable).parent / "dvc")
GIB, MIB = 1 << 30, 1 << 20
JOINTS = "rhip,rkne,rank,lhip,lkne,lank,tors,neck,head,htop,lsho,lelb,lwri,rsho,relb,rwri,pelv"
IMAGE_BYTES = (75_000, 125_000)  # uniform: 100 kB per row on average
ROW_BYTES = sum(IMAGE_BYTES) / 2
SEQUENCES_PER_SUBJECT = 8
CAMERAS = ("c0", "c1", "c2", "c3")
BLOCK_ROWS = 256  # rows generated at a time
DISK_FACTOR, DISK_SLACK_GIB = 3.3, 2.0
STEPS = ("write", "dvc_status", "dvc_add", "dvc_push")


# ----------------------------------------------------------------------------------------------- the rows
class Plan:
    """The synthetic cache: ``n_sequences`` sequences of ``rows`` rows each; sequence k has a version (its seed)."""

    def __init__(self, size_bytes: float, n_sequences: int, seed: int):
        from posebank.core.skeleton import JointInfo

        self.n_sequences = n_sequences
        self.rows = max(1, round(size_bytes / n_sequences / ROW_BYTES))
        self.seed = seed
        self.joint_info = JointInfo(JOINTS)
        self.generate_seconds = 0.0  # time spent generating rows (accumulated by rows())

    def subject(self, k: int) -> str:
        return f"S{k // SEQUENCES_PER_SUBJECT + 1}"

    def sequence(self, k: int) -> str:
        return f"Seq{k % SEQUENCES_PER_SUBJECT + 1:02d}"

    def shard_name(self, k: int) -> str:
        return f"{self.subject(k)}_{self.sequence(k)}"

    def split(self, k: int) -> str:
        n_subjects = math.ceil(self.n_sequences / SEQUENCES_PER_SUBJECT)
        return "val" if n_subjects > 1 and k // SEQUENCES_PER_SUBJECT == n_subjects - 1 else "train"

    def digest(self, k: int, version: int) -> str:
        text = f"bench.cache:{self.seed}:{k}:{version}:{self.rows}:{IMAGE_BYTES}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def rows_of(self, k: int, version: int) -> Iterator:
        """The rows of sequence ``k`` at ``version`` as Examples (deterministic)."""
        from posebank.core.camera import Camera
        from posebank.core.store import Example

        rng = np.random.default_rng([self.seed, k, version])
        subject, sequence, split = self.subject(k), self.sequence(k), self.split(k)
        for start in range(0, self.rows, BLOCK_ROWS):
            t0 = time.perf_counter()
            m = min(BLOCK_ROWS, self.rows - start)
            sizes = rng.integers(IMAGE_BYTES[0], IMAGE_BYTES[1] + 1, m)
            blob = rng.bytes(int(sizes.sum()))
            ends = np.cumsum(sizes).tolist()
            starts = [0, *ends[:-1]]
            world = (rng.normal(0, 300, (m, 17, 3)) + rng.uniform(-2000, 2000, (m, 1, 3))).astype(np.float32)
            yaw = rng.uniform(-np.pi, np.pi, m)
            f = rng.uniform(800, 1200, m)
            eye = rng.uniform(-5000, 5000, (m, 3))
            box = rng.uniform(20, 200, (m, 4)).astype(np.float32)
            examples = []
            for j in range(m):
                c, s = math.cos(yaw[j]), math.sin(yaw[j])
                K = np.array([[f[j], 0, 127.5], [0, f[j], 127.5], [0, 0, 1]])
                R = np.array([[c, -s, 0], [0, 0, -1], [s, c, 0]])
                row = start + j
                camera_name = CAMERAS[row % len(CAMERAS)]
                frame = row // len(CAMERAS)
                examples.append(Example(
                    world_coords=world[j], camera=Camera(K, R, eye[j]), bbox=box[j], split=split,
                    image=blob[starts[j]:ends[j]], image_size=(256, 256), subject=subject, sequence=sequence,
                    camera_name=camera_name, frame_index=frame,
                    source_path=f"{subject}/{sequence}/{camera_name}/{frame:06d}.jpg", mask=b""))
            self.generate_seconds += time.perf_counter() - t0
            yield from examples


def write_single(path: Path, plan: Plan, versions: list[int]) -> None:
    """The whole cache as one file (one writer, the sequences in order)."""
    from posebank.core.store import CacheWriter

    digest = hashlib.sha256(":".join(plan.digest(k, v) for k, v in enumerate(versions)).encode()).hexdigest()[:32]
    with CacheWriter(path, "bench", plan.joint_info, {"digest": digest, "shard": "bench"}) as w:
        for k, v in enumerate(versions):
            for example in plan.rows_of(k, v):
                w.add(example)


def write_shard(folder: Path, plan: Plan, k: int, version: int) -> Path:
    from posebank.core.store import CacheWriter

    path = folder / f"{plan.shard_name(k)}.h5"
    with CacheWriter(path, "bench", plan.joint_info, {"digest": plan.digest(k, version),
                                                      "shard": plan.shard_name(k)}) as w:
        for example in plan.rows_of(k, version):
            w.add(example)
    return path


def index_state_supported() -> bool:
    import inspect

    from posebank.core.store import write_index

    return "state" in inspect.signature(write_index).parameters


def write_folder_index(folder: Path, plan: Plan, state: Path) -> None:
    """index.json over the shards in order; ``state`` (outside the cache folder, as the crop stage's
    ``<interim>/index-state.json``) remembers the shards' SHA-256, so only a changed shard is hashed."""
    from posebank.core.store import write_index

    shards = [folder / f"{plan.shard_name(k)}.h5" for k in range(plan.n_sequences)]
    if index_state_supported():
        state.parent.mkdir(parents=True, exist_ok=True)
        write_index(folder, "bench", plan.joint_info, shards, {"benchmark": "cache"}, [], state=state)
    else:  # an index that keeps the shards' SHA-256 itself
        write_index(folder, "bench", plan.joint_info, shards, {"benchmark": "cache"}, [])


def check_cache(path: Path, plan: Plan, versions: list[int], changed: int) -> dict:
    """Read the cache back: rows, shards, the changed sequence's digest."""
    from posebank.core.store import Cache, CacheFile

    with Cache(path) as cache:
        rows, shards = len(cache), cache.n_shards
        layout = "folder" if cache.index is not None else "file"
        if cache.index is not None:
            entry = cache.index["shards"][changed]
            digest_ok = entry["digest"] == plan.digest(changed, versions[changed])
            part = CacheFile(path / entry["file"])
            try:
                sequence = part.categories("sequence")
            finally:
                part.close()
            digest_ok = digest_ok and sequence == [plan.sequence(changed)]
        else:
            digest_ok = True
    expected_shards = plan.n_sequences if layout == "folder" else 1
    ok = rows == plan.rows * plan.n_sequences and shards == expected_shards and digest_ok
    if not ok:
        raise AssertionError(f"{path}: {rows} rows in {shards} shards (expected {plan.rows * plan.n_sequences} "
                             f"in {expected_shards}), changed shard's digest ok: {digest_ok}")
    return {"layout": layout, "rows": rows, "shards": shards, "ok": ok}


# ------------------------------------------------------------------------------------------ measurement
def timed(fn: Callable[[], object]) -> tuple[object, dict]:
    """Run ``fn``, then ``os.sync()``: its result and {seconds, sync_seconds, seconds_with_sync}."""
    t0 = time.perf_counter()
    result = fn()
    t1 = time.perf_counter()
    os.sync()
    t2 = time.perf_counter()
    return result, {"seconds": round(t1 - t0, 3), "sync_seconds": round(t2 - t1, 3),
                    "seconds_with_sync": round(t2 - t0, 3)}


def run(cmd: list[str], cwd: Path, env: dict | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} (in {cwd}) failed with status {proc.returncode}:\n{proc.stdout}"
                           f"{proc.stderr}")
    return proc.stdout


def listing(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every file under ``root``: relative path -> (size, mtime_ns, inode)."""
    out = {}
    if not root.exists():
        return out
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return out


def listing_diff(before: dict, after: dict) -> dict:
    new = [p for p in after if p not in before]
    modified = [p for p in after if p in before and after[p] != before[p]]
    removed = [p for p in before if p not in after]
    return {"new_files": len(new), "new_bytes": sum(after[p][0] for p in new),
            "new_mib": round(sum(after[p][0] for p in new) / MIB, 2), "modified_files": len(modified),
            "removed_files": len(removed), "changed_files": len(new) + len(modified) + len(removed),
            "files_after": len(after), "bytes_after": sum(v[0] for v in after.values())}


def evict(path: Path) -> None:
    """Drop a file's (clean) pages from the page cache."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def md5_file(path: Path, chunk: int = MIB) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def machine_limits(folder: Path, probe_bytes: int, seed: int) -> dict:
    """This machine's hashing, read, write and copy throughput (MiB/s), on a probe file in ``folder``."""
    from dvc_objects.fs.utils import LOCAL_CHUNK_SIZE

    rng = np.random.default_rng([seed, 999])
    buf = rng.bytes(min(256 * MIB, probe_bytes))
    rates = {}
    for name in ("md5", "sha256"):
        t0 = time.perf_counter()
        hashlib.new(name, buf).hexdigest()
        rates[f"{name}_memory_mib_s"] = round(len(buf) / MIB / (time.perf_counter() - t0), 1)
    src, dst, dst2 = folder / "probe.bin", folder / "probe-copy.bin", folder / "probe-copy2.bin"
    chunk = memoryview(rng.bytes(64 * MIB))
    try:
        t0 = time.perf_counter()
        with open(src, "wb") as f:
            left = probe_bytes
            while left > 0:
                left -= f.write(chunk[:min(left, len(chunk))])
            f.flush()
            os.fsync(f.fileno())
        rates["write_fsync_mib_s"] = round(probe_bytes / MIB / (time.perf_counter() - t0), 1)
        evict(src)
        t0 = time.perf_counter()
        md5_file(src)
        rates["read_md5_cold_mib_s"] = round(probe_bytes / MIB / (time.perf_counter() - t0), 1)
        t0 = time.perf_counter()
        md5_file(src)
        rates["read_md5_warm_mib_s"] = round(probe_bytes / MIB / (time.perf_counter() - t0), 1)
        # a copy as DVC's local file system makes it (dvc_objects.fs.utils.copyfile, no reflink on ext4)
        evict(src)
        t0 = time.perf_counter()
        with open(src, "rb") as fsrc, open(dst, "wb") as fdst:
            shutil.copyfileobj(fsrc, fdst, length=LOCAL_CHUNK_SIZE)
            t1 = time.perf_counter()
            fdst.flush()
            os.fsync(fdst.fileno())
        t2 = time.perf_counter()
        rates["copy_cold_mib_s"] = round(probe_bytes / MIB / (t1 - t0), 1)
        rates["copy_cold_fsync_mib_s"] = round(probe_bytes / MIB / (t2 - t0), 1)
        dst.unlink()
        evict(src)
        t0 = time.perf_counter()
        shutil.copyfile(src, dst2)
        fd = os.open(dst2, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        rates["sendfile_copy_cold_fsync_mib_s"] = round(probe_bytes / MIB / (time.perf_counter() - t0), 1)
    finally:
        for p in (src, dst, dst2):
            p.unlink(missing_ok=True)
    return {"probe_gib": round(probe_bytes / GIB, 3), **rates,
            "method": "md5/sha256 of a 256 MiB buffer; the probe file written in 64 MiB writes + fsync; read + md5 "
                      "in 1 MiB reads after posix_fadvise(DONTNEED) (cold) and again (warm); copy as DVC's local "
                      "copy (copyfileobj, 1 MiB chunks) from a cold source, without and with fsync of the copy; "
                      "shutil.copyfile (sendfile) + fsync"}


def md5_of_output(dvc_file: Path) -> str:
    m = re.search(r"md5: ([0-9a-f]{32})", dvc_file.read_text())
    if not m:
        raise RuntimeError(f"no md5 in {dvc_file}")
    return m.group(1)


def object_path(root: Path, md5: str) -> Path:
    return root / "files" / "md5" / md5[:2] / md5[2:]


def du(root: Path) -> int:
    return sum(v[0] for v in listing(root).values())


class Workspace:
    """A fresh git + DVC workspace with a local default remote and its own DVC site cache."""

    def __init__(self, base: Path, layout: str):
        self.root = base / f"ws-{layout}"
        self.remote = base / f"remote-{layout}"
        self.site = base / f"site-{layout}"
        self.cache = self.root / ".dvc" / "cache"
        for p in (self.root, self.remote, self.site):
            p.mkdir(parents=True)
        run(["git", "init", "-q"], self.root)
        self.dvc("init", "-q")
        self.dvc("config", "core.analytics", "false")
        self.dvc("config", "core.site_cache_dir", str(self.site))
        self.dvc("remote", "add", "-d", "local", str(self.remote))

    def dvc(self, *args: str) -> str:
        return run([DVC, *args], self.root, env={**os.environ, "DVC_NO_ANALYTICS": "1"})

    def timed_dvc(self, *args: str) -> tuple[str, dict]:
        out, t = timed(lambda: self.dvc(*args))
        return out, t

    def status(self) -> dict:
        out, t = self.timed_dvc("status", "--json")
        return {**t, "output": json.loads(out or "{}")}

    def add(self, target: str) -> dict:
        """``dvc add``: its time, what it put into the DVC cache, and the workspace files it rewrote (replaced by a
        copy from the cache: a new inode or modification time)."""
        before, ws_before = listing(self.cache), self.outputs(target)
        _, t = self.timed_dvc("add", "-q", target)
        rewritten = listing_diff(ws_before, self.outputs(target))
        return {**t, "dvc_cache": listing_diff(before, listing(self.cache)),
                "workspace_files_rewritten": rewritten["modified_files"] + rewritten["new_files"]}

    def outputs(self, target: str) -> dict:
        path = self.root / target
        if path.is_dir():
            return listing(path)
        st = path.stat()
        return {path.name: (st.st_size, st.st_mtime_ns, st.st_ino)}

    def push(self) -> dict:
        before = listing(self.remote)
        _, t = self.timed_dvc("push", "-q")
        return {**t, "remote": listing_diff(before, listing(self.remote))}

    def remove(self) -> None:
        for p in (self.root, self.remote, self.site):
            shutil.rmtree(p, ignore_errors=True)


def bench_layout(layout: str, base: Path, plan: Plan, changed: int) -> dict:
    """Build, add, push; change one sequence; rebuild, status, add, push (module docstring). Cleans up after."""
    ws = Workspace(base, layout)
    try:
        target = "cache/bench.h5" if layout == "single" else "cache/bench"
        path = ws.root / target
        path.parent.mkdir(parents=True, exist_ok=True)
        versions = [0] * plan.n_sequences
        folder_shard = path / f"{plan.shard_name(changed)}.h5"
        state = ws.root / "interim" / "index-state.json"  # outside the DVC-tracked folder
        result: dict = {"target": target, "pruned": []}
        parts: dict[str, float] = {}
        os.sync()

        # ---- initial state
        def build():
            if layout == "single":
                write_single(path, plan, versions)
            else:
                path.mkdir()
                t0 = time.perf_counter()
                for k in range(plan.n_sequences):
                    write_shard(path, plan, k, versions[k])
                t1 = time.perf_counter()
                write_folder_index(path, plan, state)
                parts.update(shards_seconds=round(t1 - t0, 3), index_seconds=round(time.perf_counter() - t1, 3))

        plan.generate_seconds = 0.0
        _, t = timed(build)
        files = listing(path) if path.is_dir() else {path.name: (path.stat().st_size, 0, 0)}
        initial = {"write": {**t, "generate_seconds": round(plan.generate_seconds, 3), **parts}}
        result["files"] = len(files)
        result["bytes"] = sum(v[0] for v in files.values())
        result["gib"] = round(result["bytes"] / GIB, 3)
        initial["check"] = check_cache(path, plan, versions, changed)
        initial["dvc_add"] = ws.add(target)
        initial["dvc_push"] = ws.push()
        initial["dvc_status"] = ws.status()
        result["initial"] = initial
        print(f"  {layout}: initial: write {initial['write']['seconds_with_sync']:.1f} s, dvc add "
              f"{initial['dvc_add']['seconds_with_sync']:.1f} s, push {initial['dvc_push']['seconds_with_sync']:.1f} "
              f"s, status {initial['dvc_status']['seconds']:.1f} s", flush=True)

        # ---- one sequence changed
        dvc_file = ws.root / f"{target}.dvc"
        old_md5 = md5_of_output(dvc_file)
        if layout == "single":  # the superseded version is not needed by what follows (module docstring)
            old = object_path(ws.remote, old_md5)
            size = old.stat().st_size
            old.unlink()
            result["pruned"].append({"where": "remote", "object": old_md5, "bytes": size,
                                     "when": "before the rebuild"})
        versions[changed] = 1

        def rebuild():
            if layout == "single":
                write_single(path, plan, versions)  # the whole file, as the old re-assembly
            else:
                t0 = time.perf_counter()
                write_shard(path, plan, changed, versions[changed])
                t1 = time.perf_counter()
                write_folder_index(path, plan, state)
                parts.update(shards_seconds=round(t1 - t0, 3), index_seconds=round(time.perf_counter() - t1, 3))

        plan.generate_seconds = 0.0
        parts.clear()
        before = listing(path) if path.is_dir() else {}
        _, t = timed(rebuild)
        changed_state = {"write": {**t, "generate_seconds": round(plan.generate_seconds, 3), **parts}}
        if layout == "folder":
            changed_state["write"]["files"] = listing_diff(before, listing(path))
            changed_state["write"]["bytes_written"] = folder_shard.stat().st_size + (path / "index.json").stat().st_size
        else:
            changed_state["write"]["bytes_written"] = path.stat().st_size
        changed_state["check"] = check_cache(path, plan, versions, changed)
        changed_state["dvc_status"] = ws.status()
        if layout == "single":
            old = object_path(ws.cache, old_md5)
            size = old.stat().st_size
            old.unlink()
            result["pruned"].append({"where": "dvc cache", "object": old_md5, "bytes": size,
                                     "when": "after the changed state's dvc status, before dvc add"})
        changed_state["dvc_add"] = ws.add(target)
        changed_state["dvc_push"] = ws.push()
        changed_state["dvc_status_after"] = ws.status()
        if changed_state["dvc_status_after"]["output"]:
            raise AssertionError(f"{layout}: dvc status not clean after add + push: "
                                 f"{changed_state['dvc_status_after']['output']}")
        result["changed"] = changed_state
        result["disk_after_bytes"] = {"workspace_cache": du(path) if path.is_dir() else path.stat().st_size,
                                      "dvc_cache": du(ws.cache), "remote": du(ws.remote)}
        result["dvc_link_types_available"] = cache_types(ws)
        result["dvc_cache_type"] = configured_cache_type(ws)
        c = changed_state
        print(f"  {layout}: changed: write {c['write']['seconds_with_sync']:.1f} s, status "
              f"{c['dvc_status']['seconds']:.1f} s, add {c['dvc_add']['seconds_with_sync']:.1f} s, push "
              f"{c['dvc_push']['seconds_with_sync']:.1f} s ({c['dvc_push']['remote']['new_mib']:.0f} MiB)", flush=True)
        return result
    finally:
        ws.remove()


def configured_cache_type(ws: Workspace) -> str:
    try:
        configured = ws.dvc("config", "cache.type").strip()
    except RuntimeError:
        configured = ""
    return configured or "not set: DVC's default reflink,copy (copy where reflink is unavailable, as on ext4)"


def cache_types(ws: Workspace) -> str | None:
    """The link types DVC finds available in the workspace (``dvc version``: not what it uses)."""
    try:
        out = ws.dvc("version")
    except RuntimeError:
        return None
    m = re.search(r"^Cache types: (.*)$", out, re.M)
    return m.group(1).strip() if m else None


# ------------------------------------------------------------------------------------------ reporting
def machine_info(work: Path) -> dict:
    import h5py

    import posebank

    meminfo = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, value = line.split(":", 1)
            if key in ("MemTotal", "MemAvailable", "Cached"):
                meminfo[key] = round(int(value.split()[0]) / (1 << 20), 1)
    cpu_model = None
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    fs = None
    with open("/proc/mounts") as f:  # the mount holding the work folder (longest matching mount point)
        best = ""
        for line in f:
            dev, mount, kind = line.split()[:3]
            if (str(work) + "/").startswith(mount.rstrip("/") + "/") and len(mount) >= len(best):
                best, fs = mount, {"device": dev, "mount": mount, "type": kind}
    dvc_version = run([DVC, "--version"], REPO).strip()
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "cpu_model": cpu_model,
            "platform": platform.platform(), "memory_gib": {k.lower(): v for k, v in meminfo.items()},
            "filesystem": fs, "dvc": dvc_version, "h5py": h5py.__version__, "hdf5": h5py.version.hdf5_version,
            "numpy": np.__version__, "posebank": posebank.__version__}


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def ratios(single: dict, folder: dict) -> dict:
    s, f = single["changed"], folder["changed"]
    out = {}
    for step in STEPS:
        out[step] = {"seconds": ratio(s[step]["seconds"], f[step]["seconds"]),
                     "seconds_with_sync": ratio(s[step]["seconds_with_sync"], f[step]["seconds_with_sync"])}
    out["push_bytes"] = ratio(s["dvc_push"]["remote"]["new_bytes"], f["dvc_push"]["remote"]["new_bytes"])
    out["dvc_cache_bytes_added"] = ratio(s["dvc_add"]["dvc_cache"]["new_bytes"], f["dvc_add"]["dvc_cache"]["new_bytes"])
    return out


def expectations(size_bytes: int, limits: dict) -> dict:
    """What the single file's steps should take at this machine's limits (seconds)."""
    def secs(rate: float) -> float:
        return round(size_bytes / MIB / rate, 1)

    return {"md5_whole_file_cold_seconds": secs(limits["read_md5_cold_mib_s"]),
            "md5_whole_file_warm_seconds": secs(limits["read_md5_warm_mib_s"]),
            "copy_whole_file_seconds": secs(limits["copy_cold_mib_s"]),
            "copy_whole_file_fsync_seconds": secs(limits["copy_cold_fsync_mib_s"]),
            "write_whole_file_fsync_seconds": secs(limits["write_fsync_mib_s"]),
            "note": "dvc status of the changed single file >= one md5 of it; dvc add >= a copy of it into the DVC "
                    "cache (plus an md5 when status has not hashed it before), and a second copy when DVC replaces "
                    "the workspace file by a copy from the cache (workspace_files_rewritten); dvc push >= a copy "
                    "into the remote"}


def print_table(results: dict) -> None:
    single, folder = results["layouts"]["single"], results["layouts"]["folder"]
    p = results["params"]
    head = f"{'step':<34}{'single file':>18}{'folder':>18}{'single/folder':>15}"
    print()
    print(f"one of {p['sequences']} sequences changed; {single['gib']:.2f} GiB in {single['files']} file vs "
          f"{folder['files']} files; seconds = command + os.sync() after it")
    print(head)
    print("-" * len(head))

    def cell(step: dict) -> str:
        return f"{step['seconds']:.2f}+{step['sync_seconds']:.2f}"

    labels = {"write": "rebuild write [s]", "dvc_status": "dvc status [s]", "dvc_add": "dvc add [s]",
              "dvc_push": "dvc push [s]"}
    for step in STEPS:
        s, f = single["changed"][step], folder["changed"][step]
        r = results["ratios"][step]["seconds_with_sync"]
        print(f"{labels[step]:<34}{cell(s):>18}{cell(f):>18}{r if r is not None else '-':>15}")
    sp, fp = single["changed"]["dvc_push"]["remote"], folder["changed"]["dvc_push"]["remote"]
    print(f"{'push uploaded [MiB]':<34}{sp['new_mib']:>18.1f}{fp['new_mib']:>18.1f}"
          f"{results['ratios']['push_bytes'] or '-':>15}")
    print(f"{'push: remote files new / changed':<34}{sp['new_files']:>12} / {sp['changed_files']:<3}"
          f"{fp['new_files']:>12} / {fp['changed_files']:<3}")
    sa, fa = single["changed"]["dvc_add"]["dvc_cache"], folder["changed"]["dvc_add"]["dvc_cache"]
    print(f"{'dvc add: into DVC cache [MiB]':<34}{sa['new_mib']:>18.1f}{fa['new_mib']:>18.1f}"
          f"{results['ratios']['dvc_cache_bytes_added'] or '-':>15}")
    sr, fr = (x["changed"]["dvc_add"]["workspace_files_rewritten"] for x in (single, folder))
    print(f"{'dvc add: workspace files rewritten':<34}{sr:>18}{fr:>18}")
    fw = folder["changed"]["write"]
    if "index_seconds" in fw:
        split = f"{fw['shards_seconds']:.2f} + {fw['index_seconds']:.2f}"
        print(f"{'  folder write: shard + index [s]':<34}{'':>18}{split:>18}")
    initial = {"write": "initial: build write [s]", "dvc_add": "initial: dvc add [s]",
               "dvc_push": "initial: dvc push [s]", "dvc_status": "initial: dvc status [s]"}
    for step, label in initial.items():
        s, f = single["initial"][step], folder["initial"][step]
        print(f"{label:<34}{cell(s):>18}{cell(f):>18}{ratio(s['seconds_with_sync'], f['seconds_with_sync']):>15}")
    lim = results["limits"]
    print(f"machine: md5 {lim['md5_memory_mib_s']:.0f} MiB/s in memory, read+md5 {lim['read_md5_cold_mib_s']:.0f} "
          f"cold / {lim['read_md5_warm_mib_s']:.0f} warm, write+fsync {lim['write_fsync_mib_s']:.0f}, copy "
          f"{lim['copy_cold_mib_s']:.0f} ({lim['copy_cold_fsync_mib_s']:.0f} with fsync) MiB/s")
    e = results["expected_single_file"]
    print(f"single file at those rates: md5 {e['md5_whole_file_warm_seconds']}-{e['md5_whole_file_cold_seconds']} s, "
          f"copy {e['copy_whole_file_seconds']} s ({e['copy_whole_file_fsync_seconds']} s with fsync)")
    if not results["code"]["clean"]:
        print(f"note: the measured code differs from commit {results['code']['git_commit']}: "
              f"{', '.join(results['code']['changed_files'])}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-gb", type=float, default=None, help="cache size in GiB (default 20; --quick 0.3)")
    ap.add_argument("--sequences", type=int, default=None, help="sequences of equal size (default 40; --quick 6)")
    ap.add_argument("--probe-gb", type=float, default=None, help="probe file for the limits (default 2; --quick 0.25)")
    ap.add_argument("--work", type=Path, default=None,
                    help=f"where the temporary work folder is made (default {REPO.parent}, the repository's parent; "
                         "always removed at the end)")
    ap.add_argument("--quick", action="store_true", help="a check that the script runs (0.3 GiB, 6 sequences)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--allow-dirty", action="store_true",
                    help=f"write {DEFAULT_OUT.relative_to(REPO)} even when the measured code is not committed")
    args = ap.parse_args(argv)

    size_gib = args.size_gb if args.size_gb is not None else (0.3 if args.quick else 20.0)
    n_sequences = args.sequences if args.sequences is not None else (6 if args.quick else 40)
    probe_gib = args.probe_gb if args.probe_gb is not None else (0.25 if args.quick else 2.0)
    out = args.out.resolve()
    if args.quick and out == DEFAULT_OUT:
        print(f"error: --quick: give --out (a quick run does not replace {DEFAULT_OUT.relative_to(REPO)})",
              file=sys.stderr)
        return 2
    if size_gib <= 0 or n_sequences < 2 or probe_gib <= 0:
        print("error: --size-gb and --probe-gb must be > 0 and --sequences >= 2", file=sys.stderr)
        return 2
    import posebank.core.store  # noqa: F401  (loaded before the code state is taken)

    code = code_state(__file__)
    if out == DEFAULT_OUT and not code["clean"] and not args.allow_dirty:
        print(f"error: {DEFAULT_OUT.relative_to(REPO)}: not measured: the code it would measure differs from commit "
              f"{code['git_commit']} ({', '.join(code['changed_files'])}); commit it and rerun, or pass --allow-dirty "
              "(recorded as code.clean: false) or --out elsewhere", file=sys.stderr)
        return 2

    base = (args.work or REPO.parent).resolve()
    base.mkdir(parents=True, exist_ok=True)
    free_gib = shutil.disk_usage(base).free / GIB
    need_gib = max(DISK_FACTOR * size_gib + DISK_SLACK_GIB, 2 * probe_gib + DISK_SLACK_GIB)
    if free_gib < need_gib:
        fits = math.floor((free_gib - DISK_SLACK_GIB) / DISK_FACTOR)
        print(f"error: {free_gib:.1f} GiB free on {base}; --size-gb {size_gib:g} needs {need_gib:.1f} GiB "
              f"({DISK_FACTOR} x size + {DISK_SLACK_GIB:g} GiB: workspace + DVC cache + remote); "
              + (f"the largest whole size that fits: --size-gb {fits}" if fits >= 1 else
                 "not even 1 GiB fits (give --work on another file system)"), file=sys.stderr)
        return 2

    started_utc = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    started = time.perf_counter()
    plan = Plan(size_gib * GIB, n_sequences, args.seed)
    changed = n_sequences // 2
    work = Path(tempfile.mkdtemp(prefix="posebank-bench-cache-", dir=base))
    try:
        print(f"work folder {work} ({free_gib:.1f} GiB free); {n_sequences} sequences x {plan.rows} rows of ~"
              f"{ROW_BYTES / 1000:.0f} kB = {plan.rows * n_sequences * ROW_BYTES / GIB:.2f} GiB", flush=True)
        machine = machine_info(work)
        limits = machine_limits(work, int(probe_gib * GIB), args.seed)
        print(f"  limits: {json.dumps({k: v for k, v in limits.items() if k != 'method'})}", flush=True)
        layouts = {}
        for layout in ("single", "folder"):  # one after the other: bench_layout deletes its workspace, cache, remote
            layouts[layout] = bench_layout(layout, work, plan, changed)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = {
        "benchmark": "cache",
        "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "started_utc": started_utc,
        "seconds": round(time.perf_counter() - started, 1),
        "code": code,
        "machine": machine,
        "params": {
            "quick": args.quick, "size_gib": size_gib, "sequences": n_sequences, "rows_per_sequence": plan.rows,
            "rows": plan.rows * n_sequences, "image_bytes_range": list(IMAGE_BYTES), "seed": args.seed,
            "changed_sequence": {"index": changed, "shard": plan.shard_name(changed)},
            "probe_gib": probe_gib,
            "index_state": index_state_supported(),
            "disk": {"work_base": str(base), "free_gib_before": round(free_gib, 1), "needed_gib": round(need_gib, 1),
                     "rule": f"free >= {DISK_FACTOR} x size + {DISK_SLACK_GIB:g} GiB"},
            "timing": "wall clock; dvc commands as subprocesses (startup included); each step followed by os.sync(), "
                      "timed apart (sync_seconds); seconds_with_sync = seconds + sync_seconds",
            "rebuild": {"single": "the whole file rewritten (all rows generated again, the changed sequence with "
                                  "another seed), as the old crop stage's re-assembly",
                        "folder": "the changed sequence's shard rewritten + write_index (sha256 of that shard only)"},
        },
        "limits": limits,
        "expected_single_file": expectations(layouts["single"]["bytes"], limits),
        "layouts": layouts,
        "ratios": ratios(layouts["single"], layouts["folder"]),
    }
    print_table(results)
    write_json(out, results)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
