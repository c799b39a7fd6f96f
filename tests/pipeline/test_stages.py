"""The pipeline stages (convert -> frames -> detect -> segment -> crop) on the H36M fixture: the staged run equals
the one-call converter, reruns do nothing, stale inputs are refused, masks and models end to end."""

import os
import shutil
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import torch
import yaml

from conftest import REPO
from helpers import cache_content, folder_bytes
from posebank.core.errors import StageError
from posebank.core.masks import decode as decode_mask
from posebank.core.store import Cache
from posebank.core.tables import Table
from posebank.pipeline.records import read_records
from posebank.pipeline.run import run_stage
from staging import layout_of, params_for, run_all_stages


def plan_of(params, records):
    from posebank.core.settings import PipelineParams
    from posebank.pipeline.plan import shard_plan

    return shard_plan(records, PipelineParams.from_dict(params["pipeline"]))


def test_stages_match_the_one_call_converter(h36m_raw, h36m_cache, tmp_path):
    params = params_for(h36m_raw, tmp_path)
    counts = run_all_stages(params)
    layout = layout_of(params)
    records = read_records(layout.records)
    assert len(records.instances) == counts["train"] + counts["test"]
    assert records.attrs["expected_splits"] == ["train", "test"]
    # 4-frame shards within each subject / sequence / camera: as many as the groups' parts
    groups = Counter((records.instances[rows[0]].subject, records.instances[rows[0]].sequence,
                      records.instances[rows[0]].camera_name) for rows in records.instances_by_frame().values())
    names = [s.name for s in plan_of(params, records)]
    assert len(names) == sum(-(-n // 4) for n in groups.values()) == len(set(names))
    for stage in ("frames", "detect", "segment", "crop"):
        assert sorted(p.stem for p in layout.shard_folder(stage).glob("*.h5")) == sorted(names), stage
    with Table(layout.shard("detect", names[0])) as t:
        assert set(t.column("box_source")) == {2}  # the release's own boxes (ground_truth_bb), no detector
    # the staged pipeline and `convert` (one shard: the fixture is small) hold the same rows: sharding is invisible
    with Cache(layout.cache) as c, Cache(h36m_cache) as one:
        assert c.n_shards == len(names) and one.n_shards == 1
        assert c.attrs["expected_splits"] == '["train", "test"]'
        assert c.summary() | {"file": None, "shards": 0, "size_bytes": 0} == \
            one.summary() | {"file": None, "shards": 0, "size_bytes": 0}
    assert cache_content(layout.cache) == cache_content(h36m_cache)
    # a rerun finds every shard done and leaves every shard file and the index as they were
    shard_files = lambda: [*layout.interim.glob("*/*.h5"), *layout.cache.iterdir()]  # noqa: E731
    before = {p: p.stat().st_mtime_ns for p in shard_files()}
    records_bytes = layout.records.read_bytes()
    run_all_stages(params)
    assert {p: p.stat().st_mtime_ns for p in shard_files()} == before
    assert layout.records.read_bytes() == records_bytes


def test_stale_shards_are_refused_not_half_used(h36m_raw, tmp_path):
    """frames rebuilt with another shard size while detect was not rerun: segment refuses, naming the shards."""
    params = params_for(h36m_raw, tmp_path, shard_frames=4)
    run_all_stages(params)
    params["pipeline"]["shard_frames"] = 3
    run_stage("frames", "h36m", params)
    with pytest.raises(StageError, match=r"detect shards are missing or stale.*rerun the detect stage") as e:
        run_stage("segment", "h36m", params)
    assert "boxes" in str(e.value)
    # through the entry script: exit 2, one line
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    r = subprocess.run([sys.executable, str(REPO / "stages" / "crop.py"), "h36m", "-q"], cwd=tmp_path,
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr
    # after detect and segment are rerun, crop goes through and matches a build made at that shard size
    for stage in ("detect", "segment", "crop"):
        run_stage(stage, "h36m", params)
    fresh = params_for(h36m_raw, tmp_path / "fresh", shard_frames=3)
    run_all_stages(fresh)
    assert folder_bytes(layout_of(params).cache) == folder_bytes(layout_of(fresh).cache)


def test_changed_parameters_rebuild_the_shards(h36m_raw, tmp_path):
    params = params_for(h36m_raw, tmp_path)
    run_all_stages(params)
    layout = layout_of(params)
    before = {p.name: p.read_bytes() for p in layout.cache.glob("*.h5")}
    stamps = {p: p.stat().st_mtime_ns for p in layout.cache.iterdir()}
    params["crop"] = {"workers": 1}  # the thread count cannot change the output: nothing is rebuilt
    run_stage("crop", "h36m", params)
    assert {p: p.stat().st_mtime_ns for p in layout.cache.iterdir()} == stamps
    params["crop"] = {"target_box_px": 128.0}
    run_stage("crop", "h36m", params)
    with Cache(layout.cache) as c:
        assert max(max(c[i].image_size) for i in range(len(c))) <= 128 * 1.8  # 384-px boxes give 600+ px crops
    after = {p.name: p.read_bytes() for p in layout.cache.glob("*.h5")}
    assert after.keys() == before.keys() and all(after[n] != before[n] for n in after)


@pytest.mark.parametrize("stage", ["frames", "detect", "segment", "crop"])
def test_stage_before_its_inputs_is_a_clear_error(h36m_raw, tmp_path, stage):
    params = params_for(h36m_raw, tmp_path)
    with pytest.raises(StageError, match="convert"):
        run_stage(stage, "h36m", params)
    run_stage("convert", "h36m", params)
    if stage != "frames":
        with pytest.raises(StageError, match="frames shards are missing"):
            run_stage(stage, "h36m", params)


def test_grabcut_masks_cover_the_person(h36m_raw, tmp_path):
    params = params_for(h36m_raw, tmp_path, segment={"backend": "grabcut"})
    run_all_stages(params)
    with Cache(layout_of(params).cache) as cache:
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

    from tiny_models import tiny_sam

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
    layout = layout_of(params)
    with Table(next(layout.shard_folder("detect").glob("*.h5"))) as t:
        assert len(t.blobs("detections")) == len(t.column("frame_pos"))
        dets = [np.frombuffer(b, np.float32).reshape(-1, 5) for b in t.blobs("detections")]
        assert all(np.isfinite(d).all() and ((d[:, 4] >= 0) & (d[:, 4] <= 1)).all() for d in dets)
    n = 0
    with Table(next(layout.shard_folder("segment").glob("*.h5"))) as t:
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


def test_a_changed_raw_video_rebuilds_exactly_its_shards(h36m_raw, tmp_path):
    """DVC reruns the stages when the raw tree changes: the shards of the changed sequence's camera are rebuilt in
    every stage, down to the cache; every other shard file, of every stage, stays byte-identical."""
    from posebank.datasets import h36m
    from posebank.imaging.video import read_video_frames, write_video

    raw = tmp_path / "raw"
    shutil.copytree(h36m_raw, raw)
    params = params_for(raw, tmp_path)
    run_all_stages(params)
    layout = layout_of(params)
    records = read_records(layout.records)
    folders = [layout.shard_folder(s) for s in ("frames", "detect", "segment", "crop")]
    before = {p: p.read_bytes() for f in folders for p in f.iterdir()}
    changed = f"S9/Videos/Posing 1.{h36m.CAMERA_IDS[0]}.mp4"
    other = raw / f"S9/Videos/Waiting 1.{h36m.CAMERA_IDS[0]}.mp4"
    write_video(raw / changed, [f for _, f in read_video_frames(other, range(70))])
    run_all_stages(params)
    after = {p: p.read_bytes() for f in folders for p in f.iterdir()}
    assert after.keys() == before.keys()
    reading = {s.name for s in plan_of(params, records) if any(records.frames[f][0] == changed for f in s.frame_ids)}
    assert reading
    expected = {f / f"{name}.h5" for f in folders for name in reading} | {layout.index}
    assert {p for p in after if after[p] != before[p]} == expected


def test_changed_stage_code_rebuilds_its_shards(h36m_raw, tmp_path):
    """DVC reruns detect when its code changes: the shards are rebuilt, not found done; frames' are kept."""
    params = params_for(h36m_raw, tmp_path)
    for stage in ("convert", "frames", "detect"):
        run_stage(stage, "h36m", params)
    layout = layout_of(params)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    src = tmp_path / "src"
    shutil.copytree(REPO / "src" / "posebank", src / "posebank", ignore=shutil.ignore_patterns("__pycache__"))
    with open(src / "posebank" / "pipeline" / "detect.py", "a") as f:
        f.write("\n# an edit\n")
    frames_before = {p: p.read_bytes() for p in layout.shard_folder("frames").glob("*.h5")}
    detect_before = {p: p.stat().st_mtime_ns for p in layout.shard_folder("detect").glob("*.h5")}
    cmd = [sys.executable, str(REPO / "stages" / "detect.py"), "h36m", "-q"]
    same = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert same.returncode == 0 and "all" in same.stderr and "already done" in same.stderr, same.stderr
    edited = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(src)})
    assert edited.returncode == 0, edited.stderr
    assert "already done" not in edited.stderr
    assert all(p.stat().st_mtime_ns != t for p, t in detect_before.items())
    assert {p: p.read_bytes() for p in layout.shard_folder("frames").glob("*.h5")} == frames_before


def test_kept_shards_stay_right_when_frames_before_them_change(h36m_raw, tmp_path):
    """More training frames (S1) shift every later frame's records-wide number: S9's shards are kept (their own
    records did not change) and must still be read as S9's, by the crop stage rerun with other settings too."""
    params = params_for(h36m_raw, tmp_path)
    run_all_stages(params)
    layout = layout_of(params)
    s9 = {p.name: p.read_bytes() for p in layout.shard_folder("frames").glob("S9*.h5")}
    assert s9
    params["datasets"]["h36m"]["train_frame_step"] = 3
    run_all_stages(params)
    assert {p.name: p.read_bytes() for p in layout.shard_folder("frames").glob("S9*.h5")} == s9  # kept
    params["crop"] = {"jpeg_quality": 80}
    run_stage("crop", "h36m", params)
    fresh = params_for(h36m_raw, tmp_path / "fresh", crop={"jpeg_quality": 80})
    fresh["datasets"]["h36m"]["train_frame_step"] = 3
    run_all_stages(fresh)
    assert folder_bytes(layout.cache) == folder_bytes(layout_of(fresh).cache)
