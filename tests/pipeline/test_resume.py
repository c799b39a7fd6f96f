"""kill -9 of any image stage at a random shard, then a rerun: every shard and the cache folder are byte-identical
to an uninterrupted build (GrabCut on, so segmentation's randomness is covered), and the killed run's temporary
files are gone."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

from conftest import REPO
from posebank.core.store import Cache, CacheFormatError
from posebank.pipeline.run import run_stage
from staging import IMAGE_STAGES, kill_and_rerun, layout_of, retarget


@pytest.mark.parametrize("stage", IMAGE_STAGES)
def test_kill_and_rerun_gives_the_uninterrupted_bytes(reference, tmp_path, stage):
    kill_and_rerun(reference, tmp_path, stage, seed=7)


def test_a_killed_rebuild_leaves_no_index_over_mixed_shards(reference, tmp_path):
    """The crop stage removes the cache's index before it rewrites the first shard: a rebuild killed half-way
    leaves a folder that no reader takes for a cache; the rerun completes it."""
    ref_params, ref = reference
    params = retarget(ref_params, tmp_path)
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
