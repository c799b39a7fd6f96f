"""The pipeline stages (frames -> detect -> segment -> crop) on the H36M fixture: resumption, masks, models."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml

from conftest import H36M_SMALL_PARAMS
from posebank.imaging.masks import decode as decode_mask
from posebank.pipeline import STAGES, Layout, read_records, run_stage
from posebank.store import Cache
from posebank.tables import Table


def params_for(raw, tmp, **over):
    p = {"datasets": {"h36m": {"raw": str(raw), **H36M_SMALL_PARAMS}},
         "pipeline": {"shard_frames": 4, "interim": str(tmp / "interim"), "cache": str(tmp / "cache")},
         "segment": {"backend": "none"}}
    for k, v in over.items():
        p[k] = v
    return p


def run_all_stages(params):
    for stage in STAGES:
        result = run_stage(stage, "h36m", params, progress=False)
    return result


def test_stages_match_the_one_call_converter(h36m_raw, h36m_cache, tmp_path):
    params = params_for(h36m_raw, tmp_path)
    counts = run_all_stages(params)
    layout = Layout.from_params("h36m", params)
    records = read_records(layout.records)
    assert len(records.instances) == counts["train"] + counts["test"]
    n_shards = len(list((layout.interim / "frames").glob("shard-*.h5")))
    assert n_shards == -(-len(records.frames) // 4)
    with Table(layout.shard("detect", 0)) as t:
        assert set(t.column("box_source")) == {0}  # projected boxes
    # the staged pipeline and `convert` build the same cache (convert uses 256-frame shards: sharding is invisible)
    assert layout.cache.read_bytes() == h36m_cache.read_bytes()
    # a rerun finds every shard done and rebuilds the same bytes
    before = {p: p.stat().st_mtime_ns for p in layout.interim.rglob("shard-*.h5")}
    run_all_stages(params)
    assert {p: p.stat().st_mtime_ns for p in layout.interim.rglob("shard-*.h5")} == before
    assert layout.cache.read_bytes() == h36m_cache.read_bytes()


def test_killed_crop_stage_resumes_to_identical_bytes(h36m_raw, h36m_cache, tmp_path):
    params = params_for(h36m_raw, tmp_path, pipeline={"shard_frames": 2, "interim": str(tmp_path / "interim"),
                                                      "cache": str(tmp_path / "cache")})
    for stage in STAGES[:-1]:
        run_stage(stage, "h36m", params, progress=False)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    layout = Layout.from_params("h36m", params)
    n_shards = len(list((layout.interim / "frames").glob("shard-*.h5")))
    cmd = [sys.executable, "-m", "posebank.cli", "stage", "crop", "h36m", "--params", "params.yaml", "-q"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, start_new_session=True)
    crops = layout.interim / "crops"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(crops.glob("shard-*.h5"))) < 3:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_at_kill = len(list(crops.glob("shard-*.h5")))
    assert 3 <= done_at_kill < n_shards, (done_at_kill, n_shards)
    assert not layout.cache.exists()
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"{done_at_kill} of {n_shards} shards already done, resuming" in r.stderr
    assert layout.cache.read_bytes() == h36m_cache.read_bytes()


def test_grabcut_masks_cover_the_person(h36m_raw, tmp_path):
    params = params_for(h36m_raw, tmp_path, segment={"backend": "grabcut"})
    run_all_stages(params)
    with Cache(Layout.from_params("h36m", params).cache) as cache:
        inside, checked = [], 0
        for i in range(0, len(cache), 3):
            ex = cache[i]
            mask, grey = ex.decode_mask(), ex.decode_image().mean(-1)
            xy = np.round(ex.camera.project(ex.world_coords)).astype(int)
            ok = (xy[:, 0] >= 0) & (xy[:, 1] >= 0) & (xy[:, 0] < mask.shape[1]) & (xy[:, 1] < mask.shape[0])
            checked += 1
            assert 0 < mask.mean() < 0.5
            inside += list(mask[xy[ok, 1], xy[ok, 0]])
            # the mask is on the drawn figure: bright (limb or mark) pixels dominate inside it
            assert grey[mask].mean() > grey[~mask].mean() + 25
    assert checked > 10
    assert np.mean(inside) > 0.9  # the joints lie on the mask


def test_tiny_sam_and_detector_checkpoints_end_to_end(h36m_raw, tmp_path):
    import torchvision

    from test_segment import tiny_sam

    torch.manual_seed(0)
    sam_path, det_path = tmp_path / "sam_tiny.pth", tmp_path / "det_tiny.pth"
    torch.save(tiny_sam().state_dict(), sam_path)
    detector = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=91)
    torch.save(detector.state_dict(), det_path)
    params = params_for(
        h36m_raw, tmp_path,
        detect={"backend": "torchvision", "model": "fasterrcnn_mobilenet_v3_large_320_fpn", "weights": str(det_path),
                "score_threshold": 0.0},
        segment={"backend": "sam", "checkpoint": str(sam_path)})
    params["datasets"]["h36m"]["test_subjects"] = [9]
    params["datasets"]["h36m"]["train_frame_step"] = 35  # a handful of frames: SAM on a CPU
    counts = run_all_stages(params)
    layout = Layout.from_params("h36m", params)
    with Table(layout.shard("detect", 0)) as t:
        assert len(t.blobs("detections")) == len(t.column("frame_id"))
        dets = [np.frombuffer(b, np.float32).reshape(-1, 5) for b in t.blobs("detections")]
        assert all(np.isfinite(d).all() and ((d[:, 4] >= 0) & (d[:, 4] <= 1)).all() for d in dets)
    n = 0
    with Table(layout.shard("segment", 0)) as t:
        assert set(t.column("method")) == {3}  # sam
    with Cache(layout.cache) as cache:
        assert len(cache) == sum(v for k, v in counts.items() if k != "quarantined")
        for i in range(len(cache)):
            ex = cache[i]
            w, h = ex.image_size
            m = decode_mask(ex.mask, h, w)  # valid COCO RLE of the crop's size
            assert m.shape == (h, w)
            n += 1
    assert n > 0


@pytest.mark.parametrize("stage", ["detect", "segment", "crop"])
def test_stage_before_its_inputs_is_a_clear_error(h36m_raw, tmp_path, stage):
    params = params_for(h36m_raw, tmp_path)
    with pytest.raises((FileNotFoundError, OSError)):
        run_stage(stage, "h36m", params, progress=False)
