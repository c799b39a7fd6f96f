"""kill -9 of any image stage at a random shard, then a rerun: every shard and the cache folder are byte-identical
to an uninterrupted build (GrabCut on, so segmentation's randomness is covered), and the killed run's temporary
files are gone."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

from conftest import REPO
from helpers import folder_bytes
from posebank.core.store import Cache, CacheFormatError
from posebank.pipeline.run import run_stage
from staging import BUILD, layout_of


def _retarget(params, tmp):
    p = yaml.safe_load(yaml.safe_dump(params))
    p["pipeline"].update(interim=str(tmp / "interim"), cache=str(tmp / "cache"), reports=str(tmp / "reports"))
    return p


@pytest.mark.parametrize("stage", ["frames", "detect", "segment", "crop"])
def test_kill_and_rerun_gives_the_uninterrupted_bytes(reference, tmp_path, stage):
    ref_params, ref = reference
    params = _retarget(ref_params, tmp_path)
    layout = layout_of(params)
    # the stages before `stage` as the reference built them; `stage` and the later ones not yet run
    shutil.copytree(ref.interim, layout.interim)
    for later in BUILD[BUILD.index(stage):]:
        if later != "convert":
            shutil.rmtree(layout.shard_folder(later), ignore_errors=True)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    n_shards = len(list(ref.shard_folder(stage).glob("*.h5")))
    assert n_shards >= 6
    kill_after = random.Random(f"{stage}-7").randint(1, n_shards - 3)

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
    for p in ref.shard_folder(stage).glob("*.h5"):
        assert (folder / p.name).read_bytes() == p.read_bytes(), p.name
    assert folder_bytes(layout.cache) == folder_bytes(ref.cache)


def test_a_killed_rebuild_leaves_no_index_over_mixed_shards(reference, tmp_path):
    """The crop stage removes the cache's index before it rewrites the first shard: a rebuild killed half-way
    leaves a folder that no reader takes for a cache; the rerun completes it."""
    ref_params, ref = reference
    params = _retarget(ref_params, tmp_path)
    layout = layout_of(params)
    shutil.copytree(ref.interim, layout.interim)
    shutil.copytree(ref.cache, layout.cache)
    params["crop"] = {"jpeg_quality": 70}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    cmd = [sys.executable, str(REPO / "stages" / "crop.py"), "h36m", "-q"]
    before = {p.name: p.stat().st_mtime_ns for p in ref.cache.glob("*.h5")}
    proc = subprocess.Popen(cmd, cwd=tmp_path, start_new_session=True, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and sum(
            (layout.cache / n).stat().st_mtime_ns != t for n, t in before.items() if (layout.cache / n).exists()) < 2:
        time.sleep(0.002)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert not layout.index.exists()
    with pytest.raises(CacheFormatError, match="no index.json"):
        Cache(layout.cache)
    run_stage("crop", "h36m", params)
    with Cache(layout.cache) as c:
        assert json.loads(c.attrs["crop_params"])["jpeg_quality"] == 70 and len(c) == len(Cache(ref.cache))
