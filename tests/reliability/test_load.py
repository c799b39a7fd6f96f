"""Load (issue 15 point 6): the training loader with four persistent workers over small5, epoch after epoch for a
bounded time, with no error, every batch well-formed and memory that does not grow; and, under ``make soak``, many
dataset DAG runs at once on one real Airflow scheduler whose ``gpu`` pool has one slot.

In CI the DAG runs at once are those of tests/dags/test_dag_runs.py (the H36M and SURREAL dataset DAGs started
together, ``dag.test()`` and ``airflow dags test``, each with its own metadata DB) and the mapped GPU shards of
tests/dags/test_airflow_service.py (one real scheduler); the soak test here adds several dataset DAGs sharing one
scheduler and so one ``gpu`` pool, which neither of those does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import script
from reliability.conftest import SOAK, scaled

REPO = Path(__file__).resolve().parents[2]
WARMUP_EPOCHS = 1


def shared_helper(name: str):
    """The tests/ helper module ``name`` (e.g. ``workspaces``), which reads tests/conftest.py as ``conftest``: this
    folder's conftest.py may hold that module name, so the top-level one is put in place while it is imported."""
    import importlib
    import importlib.util

    if name in sys.modules:
        return sys.modules[name]
    here = sys.modules.get("conftest")
    if here is not None and not hasattr(here, "REPO"):
        spec = importlib.util.spec_from_file_location("conftest", REPO / "tests" / "conftest.py")
        top = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(top)
        sys.modules["conftest"] = top
    try:
        return importlib.import_module(name)
    finally:
        if here is not None:
            sys.modules["conftest"] = here


def tree_rss_mb(proc) -> float:
    """RSS of ``proc`` and all its descendants (the DataLoader's workers), in MiB."""
    import psutil

    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:  # a worker that ended between listing and reading
            pass
    return total / 2**20


class RssSampler:
    """Samples :func:`tree_rss_mb` of this process every ``period_s`` in a thread, from ``start()`` to ``stop()``."""

    def __init__(self, period_s: float = 1.0):
        import psutil

        self.proc, self.period_s = psutil.Process(), period_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(tree_rss_mb(self.proc))
            self._stop.wait(self.period_s)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> list[float]:
        self._stop.set()
        self._thread.join()
        self.samples.append(tree_rss_mb(self.proc))
        return self.samples


def check_batch(b: dict, counts: dict[str, int], size: int, n_joints: int, n: int) -> None:
    """One round-robin batch as training code gets it: shapes and dtypes, each source's share, joints NaN exactly
    where invalid, finite cameras with a rotation for R, indices inside the split."""
    batch = sum(counts.values())
    assert tuple(b["image"].shape) == (batch, size, size, 3) and str(b["image"].dtype) == "torch.uint8"
    assert tuple(b["mask"].shape) == (batch, size, size)
    X, valid = b["world_coords"].numpy(), b["joint_valid"].numpy()
    assert X.shape == (batch, n_joints, 3) and X.dtype == np.float32 and valid.dtype == bool
    assert np.array_equal(valid, np.isfinite(X).all(-1)) and valid.any(1).all()
    assert {s: b["source"].count(s) for s in set(b["source"])} == counts
    for key in ("intrinsic_matrix", "R", "t", "bbox"):
        assert np.isfinite(b[key].numpy()).all(), key
    R = b["R"].numpy().astype(np.float64)
    assert np.abs(R @ R.transpose(0, 2, 1) - np.eye(3)).max() < 1e-4
    index = b["index"].numpy()
    assert index.min() >= 0 and index.max() < n


@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")  # 4 workers on a 2-core runner
def test_the_loader_with_four_persistent_workers_keeps_going_without_errors_or_growth(small5, record):
    """A DataLoader of 4 persistent workers over small5's training split with its own round-robin sampler, one
    epoch after another for scaled(10 s, 120 s) after a warm-up epoch: every batch is well-formed, and the RSS of
    this process and its workers (sampled every second) does not grow: the last third's mean is within 10 % (or
    30 MB) of the first third's. Each source's examples are reached as its shuffled order promises (no repeat
    before the source is used up)."""
    from torch.utils.data import DataLoader

    from posebank.loader import PoseDataset, RoundRobinBatchSampler, collate, sampler_for

    size = 64
    ds = PoseDataset(small5, split="train", output_size=size)
    batches = sampler_for(ds)
    assert isinstance(batches, RoundRobinBatchSampler)
    loader = DataLoader(ds, batch_sampler=batches, num_workers=4, persistent_workers=True, collate_fn=collate,
                        prefetch_factor=2)
    n_joints, seconds = len(ds.joint_names), scaled(10.0, 120.0)
    seen, epochs, n_batches = set(), 0, 0
    sampler = RssSampler()

    def epoch() -> None:
        nonlocal epochs, n_batches
        batches.set_epoch(epochs)
        for b in loader:
            check_batch(b, batches.counts, size, n_joints, len(ds))
            seen.update(b["index"].tolist())
            n_batches += 1
        epochs += 1

    for _ in range(WARMUP_EPOCHS):  # the workers start, open their files and fill their caches
        epoch()
    sampler.start()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        epoch()
    elapsed = time.perf_counter() - t0
    samples = sampler.stop()
    workers = len(sampler.proc.children(recursive=True))
    loader = None  # its last reference: the persistent workers shut down
    ds.close()
    assert workers >= 4
    assert epochs - WARMUP_EPOCHS >= 2, f"only {epochs - WARMUP_EPOCHS} epochs in {elapsed:.1f} s"
    assert elapsed < seconds * 3, f"{elapsed:.1f} s for a bound of {seconds} s: an epoch hung"
    # each source walks a permutation of its examples per epoch: at least one epoch's draws are distinct
    for name, idx in ds.source_indices().items():
        if name in batches.counts:
            reached = len(seen & set(idx.tolist()))
            assert reached >= min(len(idx), batches.counts[name] * len(batches)), (name, reached, len(idx))
    third = max(1, len(samples) // 3)
    first, last = float(np.mean(samples[:third])), float(np.mean(samples[-third:]))
    growth = last - first
    print(f"\nloader: {epochs} epochs, {n_batches} batches in {elapsed:.1f} s (+warm-up); "
          f"RSS {first:.0f} -> {last:.0f} MB ({len(samples)} samples)")
    assert growth <= max(0.10 * first, 30.0), f"RSS grew from {first:.0f} to {last:.0f} MB: {samples}"
    record("load", runs=epochs, seconds=round(elapsed, 2), rss_growth_mb=round(growth, 1), batches=n_batches)


# ------------------------------------------------------------------------------------------------ DAG runs at once
# the datasets whose DAGs run at once (small fixtures; their trees as tests/conftest.py's small5 sources)
DAG_DATASETS = {"h36m": ("h36m", {}), "surreal": ("surreal", {"n_frames": 6}),
                "tdhp_test": ("tdhp_test", {"n_frames": 6}), "mupots": ("mupots", {"n_frames": 4})}
STAGES = ("fetch", "convert", "frames", "detect", "segment", "crop", "validate")
RUNS_TIMEOUT_S = 2400


def api(url: str, method: str = "GET", body=None, token: str | None = None):
    """One REST API request, as the service script makes them (an HTTP error raises urllib's HTTPError)."""
    return script("airflow_service").http_json(url, method, body, token, timeout=30)


def overlapping(intervals: list[tuple[float, float, str]]) -> list[tuple[str, str]]:
    """Pairs of (start, end, name) intervals that overlap in time."""
    out, ordered = [], sorted(intervals)
    for (_s1, e1, a), (s2, _e2, b) in zip(ordered, ordered[1:]):
        if s2 < e1:
            out.append((a, b))
    return out


@pytest.mark.skipif(not SOAK, reason="a real Airflow scheduler and four dataset DAG runs (a few minutes, 2-3 GB): "
                    "make soak; in CI tests/dags/test_dag_runs.py runs two dataset DAGs at once")
def test_many_dataset_dag_runs_at_once_share_a_one_slot_gpu_pool_and_all_succeed(h36m_raw, tmp_path, record):
    """One ``make airflow`` service (scripts/airflow_service.py, LocalExecutor) over a scratch workspace with
    H36M, SURREAL, MPI-INF-3DHP test and MuPoTS (fixtures, segmentation off), ``airflow.gpu_slots`` 1: the four
    dataset DAGs triggered at once through the REST API all succeed; the runs overlap in time, yet no two tasks
    of the ``gpu`` pool (detect, segment) ever ran at the same time; every cache is built and validated and
    dvc.lock records every stage of every dataset (the ``dvc`` pool serialised the commits)."""
    import datetime
    import socket

    import yaml

    from posebank import datasets

    workspaces = shared_helper("workspaces")
    repo = workspaces.copy_repo(tmp_path / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["datasets"] = {ds: dict(params["datasets"][ds]) for ds in DAG_DATASETS}
    params["datasets"]["h36m"].update(train_subjects=[1], test_subjects=[9])  # the small fixture's subjects
    params["segment"]["backend"] = "none"
    params["merges"], params["subsets"], params["exports"], params["merge_exports"] = {}, {}, {}, {}
    params["airflow"].update(schedule=None, retries=1, retry_delay_s=1, max_retry_delay_s=2, gpu_slots=1,
                             gpu_shards=1)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc = yaml.safe_load((repo / "dvc.yaml").read_text())
    del dvc["stages"]["refit_config"]  # over ReFit's exports, not in this workspace
    (repo / "dvc.yaml").write_text(yaml.safe_dump(dvc, sort_keys=False))
    workspaces.commit(repo, f"{len(DAG_DATASETS)} datasets")
    shutil.copytree(h36m_raw, repo / "data/raw/h36m")
    for ds, (writer, options) in DAG_DATASETS.items():
        if ds != "h36m":
            datasets.get(writer).make_fixture(repo / params["datasets"][ds]["raw"], 0, **options)

    service_py, home = REPO / "scripts" / "airflow_service.py", tmp_path / "home"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("AIRFLOW_HOME", None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def service(*args: str, timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(service_py), *args, "--home", str(home)], capture_output=True,
                              text=True, timeout=timeout, env=env, cwd=REPO)

    dags = [f"posebank_{ds}" for ds in DAG_DATASETS]
    try:
        r = service("start", "--workspace", str(repo), "--port", str(port), timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        password = next(line.split(None, 1)[1] for line in r.stdout.splitlines()
                        if line.strip().startswith("password"))
        url = f"http://127.0.0.1:{port}"
        token = api(f"{url}/auth/token", "POST", {"username": "admin", "password": password.strip()})["access_token"]
        pools = {p["name"]: p["slots"] for p in api(f"{url}/api/v2/pools", token=token)["pools"]}
        assert pools["gpu"] == 1, pools
        t0 = time.perf_counter()
        runs = {}
        for dag in dags:
            api(f"{url}/api/v2/dags/{dag}", "PATCH", {"is_paused": False}, token)
            runs[dag] = api(f"{url}/api/v2/dags/{dag}/dagRuns", "POST", {"logical_date": None}, token)["dag_run_id"]
        states = {}
        deadline = time.monotonic() + RUNS_TIMEOUT_S
        while time.monotonic() < deadline:
            states = {dag: api(f"{url}/api/v2/dags/{dag}/dagRuns/{run}", token=token) for dag, run in runs.items()}
            if all(s["state"] in ("success", "failed") for s in states.values()):
                break
            time.sleep(5)
        seconds = time.perf_counter() - t0
        tis = {dag: api(f"{url}/api/v2/dags/{dag}/dagRuns/{run}/taskInstances?limit=1000", token=token)[
            "task_instances"] for dag, run in runs.items()}
    finally:
        service("stop", timeout=180)
    failed = {dag: {ti["task_id"]: ti["state"] for ti in tis[dag] if ti["state"] != "success"} for dag in dags}
    assert {dag: s["state"] for dag, s in states.items()} == dict.fromkeys(dags, "success"), failed

    def when(text: str) -> float:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    spans = {dag: (when(states[dag]["start_date"]), when(states[dag]["end_date"])) for dag in dags}
    assert max(s for s, _ in spans.values()) < min(e for _, e in spans.values()), spans  # all ran at once
    gpu = [(when(ti["start_date"]), when(ti["end_date"]), f"{dag}.{ti['task_id']}") for dag in dags
           for ti in tis[dag] if ti["pool"] == "gpu"]
    assert len(gpu) == 2 * len(dags), gpu  # detect and segment of each
    assert overlapping(gpu) == [], "tasks of the one-slot gpu pool ran at the same time"
    for ds in DAG_DATASETS:
        assert (repo / f"data/cache/{ds}/index.json").is_file(), ds
        assert json.loads((repo / f"reports/validation/{ds}.json").read_text())["success"] is True, ds
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    assert {f"{s}@{ds}" for s in STAGES for ds in DAG_DATASETS} <= set(lock)
    print(f"\n{len(dags)} DAG runs at once: {seconds:.0f} s; gpu tasks {len(gpu)}, none overlapping")
    record("load", runs=len(dags), seconds=round(seconds, 1), gpu_tasks=len(gpu))  # no RSS series: not sampled
