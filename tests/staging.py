"""Shared helpers of the pipeline tests: params for the small H36M fixture, the layout, all stages in order, and
the kill -9 of an image stage with its rerun (tests/pipeline/test_resume.py, the soak suite)."""

import os
import random
import shutil
import signal
import subprocess
import sys
import time

import yaml

from conftest import H36M_SMALL_PARAMS, REPO
from helpers import folder_bytes
from posebank.core.settings import PipelineParams
from posebank.pipeline import STAGES
from posebank.pipeline.layout import Layout
from posebank.pipeline.run import run_stage

BUILD = STAGES[:-1]  # every stage but validate
IMAGE_STAGES = ("frames", "detect", "segment", "crop")


def params_for(raw, tmp, shard_frames=4, **over):
    p = {"datasets": {"h36m": {"raw": str(raw), "family": "h36m", **H36M_SMALL_PARAMS}},
         "pipeline": {"shard_frames": shard_frames, "interim": str(tmp / "interim"), "cache": str(tmp / "cache"),
                      "reports": str(tmp / "reports")},
         "segment": {"backend": "none"}}
    p.update(over)
    return p


def layout_of(params) -> Layout:
    return Layout.from_params("h36m", PipelineParams.from_dict(params["pipeline"]))


def run_all_stages(params):
    for stage in BUILD:
        result = run_stage(stage, "h36m", params)
    return result


def retarget(params, tmp):
    """``params`` with the pipeline's folders under ``tmp``."""
    p = yaml.safe_load(yaml.safe_dump(params))
    p["pipeline"].update(interim=str(tmp / "interim"), cache=str(tmp / "cache"), reports=str(tmp / "reports"))
    return p


def kill_and_rerun(reference, tmp_path, stage: str, seed) -> dict:
    """Kill ``stage`` (in its own process group, SIGKILL) after a shard count drawn from ``seed``, rerun it and the
    later stages; returns what was compared (also the soak suite's, tests/reliability/test_interrupt.py)."""
    ref_params, ref = reference
    params = retarget(ref_params, tmp_path)
    layout = layout_of(params)
    # the stages before `stage` as the reference built them; `stage` and the later ones not yet run
    shutil.copytree(ref.interim, layout.interim)
    for later in BUILD[BUILD.index(stage):]:
        if later != "convert":
            shutil.rmtree(layout.shard_folder(later), ignore_errors=True)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    n_shards = len(list(ref.shard_folder(stage).glob("*.h5")))
    assert n_shards >= 6
    kill_after = random.Random(f"{stage}-{seed}").randint(1, n_shards - 3)

    cmd = [sys.executable, str(REPO / "stages" / f"{stage}.py"), "h36m", "-q"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, start_new_session=True, stderr=subprocess.PIPE, text=True)
    folder = layout.shard_folder(stage)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(folder.glob("*.h5"))) < kill_after and proc.poll() is None:
        time.sleep(0.002)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    done_at_kill = len(list(folder.glob("*.h5")))
    assert kill_after <= done_at_kill < n_shards, (done_at_kill, n_shards)
    assert not layout.index.exists()  # the index is written last: no cache is visible before every shard is
    # a leftover of a killed writer, as the kill can leave one mid-write
    stale = folder / f".S9.Posing_1.shard.h5.pid{4_194_400 + done_at_kill}.killed.tmp"
    stale.write_bytes(b"partial")

    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"{done_at_kill} of {n_shards} shards current, {n_shards - done_at_kill} to build" in r.stderr
    assert not stale.exists() and not [p for p in folder.iterdir() if p.name.startswith(".")]
    for later in BUILD[BUILD.index(stage) + 1:]:
        run_stage(later, "h36m", params)
    compared = 0
    for p in ref.shard_folder(stage).glob("*.h5"):
        assert (folder / p.name).read_bytes() == p.read_bytes(), p.name
        compared += p.stat().st_size
    cache = folder_bytes(ref.cache)
    assert folder_bytes(layout.cache) == cache
    return {"shards": n_shards, "killed_after_shards": done_at_kill,
            "bytes_compared": compared + sum(len(b) for b in cache.values())}
