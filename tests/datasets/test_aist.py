"""AIST++: what is specific to it (the contract is checked for every dataset in test_conformance.py)."""

import json
import math
import os
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import assert_no_output, copy_raw
from marks import mark_errors
from posebank.core import safe_pickle
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError, aist
from posebank.datasets.aist.fixture import IGNORED, REPEATED_FRAME, SEQUENCES, fixture_poses
from posebank.imaging.video import write_video
from posebank.pipeline.run import convert

N_FRAMES = 4
SEED = 3
TRAIN, VAL, TEST = (s for s, (split, _) in SEQUENCES.items() if s not in IGNORED)
# the keys of an aniposelib Camera.get_dict() (AIST++ API processing/run_estimate_camera.py)
CAMERA_KEYS = {"name", "size", "matrix", "distortions", "rotation", "translation"}


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


@pytest.fixture(scope="module")
def aist_raw(tmp_path_factory) -> Path:
    return aist.make_fixture(tmp_path_factory.mktemp("aist_raw"), seed=SEED, n_frames=N_FRAMES)


@pytest.fixture
def broken_raw(aist_raw, tmp_path) -> Path:
    return copy_raw(aist_raw, tmp_path)


def plain(path: Path):
    with open(path, "rb") as f:
        return pickle.load(f)


def test_fixture_files_have_the_release_formats(aist_raw):
    for seq in SEQUENCES:
        path = aist_raw / aist.KEYPOINTS_DIR / f"{seq}.pkl"
        data = plain(path)
        assert set(data) == {"keypoints3d", "keypoints3d_optim"}
        assert data["keypoints3d_optim"].shape == (N_FRAMES, 17, 3)
        # the restricted unpickler reads the same arrays (protocol 4 and 5 files alike)
        np.testing.assert_array_equal(safe_pickle.load(path)["keypoints3d_optim"], data["keypoints3d_optim"])
        np.testing.assert_array_equal(aist.read_keypoints(path), data["keypoints3d_optim"])
    for setting in ("setting1", "setting2"):
        cams = json.loads((aist_raw / aist.CAMERA_DIR / f"{setting}.json").read_text())
        assert [c["name"] for c in cams] == list(aist.VIEWS) and all(set(c) == CAMERA_KEYS for c in cams)
        assert all(c["size"] == [1920, 1080] and len(c["distortions"]) == 5 for c in cams)
    assert aist.read_mapping(aist_raw / aist.MAPPING) == {s: setting for s, (_, setting) in SEQUENCES.items()}
    assert aist.read_lines(aist_raw / aist.IGNORE_LIST) == list(IGNORED)


def test_joints_are_millimetres_with_neck_and_pelvis_and_y_up(aist_raw):
    poses = fixture_poses(SEED, N_FRAMES)
    insts = aist.instances(aist_raw)
    assert insts
    ids = aist.JOINT_INFO.ids
    for inst in insts:
        cm = poses[inst.sequence][inst.frame_index]
        wc = inst.world_coords
        np.testing.assert_allclose(wc[:17], cm * 10, atol=1e-9)
        np.testing.assert_allclose(wc[ids["neck"]], (wc[ids["lsho"]] + wc[ids["rsho"]]) / 2, atol=1e-9)
        np.testing.assert_allclose(wc[ids["pelv"]], (wc[ids["lhip"]] + wc[ids["rhip"]]) / 2, atol=1e-9)
        # bone lengths of an adult in mm
        for a, b, lo, hi in (("lsho", "lelb", 150, 400), ("lhip", "lkne", 350, 550), ("lkne", "lank", 350, 550),
                             ("lsho", "rsho", 300, 450)):
            assert lo < np.linalg.norm(wc[ids[a]] - wc[ids[b]]) < hi, (a, b)
        # world up is +y: the nose is 1.4-1.7 m above the ankles along the camera's world_up
        np.testing.assert_array_equal(inst.camera.world_up, [0, 1, 0])
        height = (wc[ids["nose"]] - (wc[ids["lank"]] + wc[ids["rank"]]) / 2) @ inst.camera.world_up
        assert 1400 < height < 1700
        # the cameras look down on the stage from about 1.7-1.8 m (3.2 m for c09)
        assert 1600 < inst.camera.t[1] < 3400


def test_joints_and_cameras_project_onto_the_marks(aist_raw):
    insts = aist.instances(aist_raw)
    settings = {s: json.loads((aist_raw / aist.CAMERA_DIR / f"{s}.json").read_text()) for s in ("setting1",
                                                                                              "setting2")}
    frames = aist.frame_source(aist_raw)
    by_source = {}
    for inst in insts:
        by_source.setdefault(inst.source, []).append(inst)
    errors = []
    for source, group in by_source.items():
        images = dict(frames(source, [i.frame_index for i in group]))
        for inst in group:
            # posebank's camera projects as OpenCV does with the json's own Rodrigues vector and translation (cm)
            cam = {c["name"]: c for c in settings[SEQUENCES[inst.sequence][1]]}[inst.camera_name]
            cv = cv2.projectPoints(inst.world_coords.reshape(-1, 1, 3) / 10, np.array(cam["rotation"]),
                                   np.array(cam["translation"]), np.array(cam["matrix"]),
                                   np.array(cam["distortions"]))[0].reshape(-1, 2)
            np.testing.assert_allclose(inst.camera.project(inst.world_coords), cv, atol=1e-6)
            image = images[inst.frame_index].image
            assert image.shape == (1080, 1920, 3)
            errors.extend(mark_errors(image, inst.camera.project(inst.world_coords[:17]), radius=8,
                                      min_distance=20))
    assert len(insts) == 3 * 9 * (N_FRAMES - 1) and len(errors) > 700, (len(insts), len(errors))
    assert max(errors) < 1.0, max(errors)


def test_selection_ignore_list_splits_views_and_sampling(aist_raw):
    insts = aist.instances(aist_raw)
    assert {i.sequence for i in insts} == {TRAIN, VAL, TEST} and IGNORED[0] not in {i.sequence for i in insts}
    assert {(i.sequence, i.split) for i in insts} == {(TRAIN, "train"), (VAL, "val"), (TEST, "test")}
    # the repeated pose is left out by the adaptive sampler (selection, not a drop); 0 turns the sampler off
    assert sorted({i.frame_index for i in insts}) == [f for f in range(N_FRAMES) if f != REPEATED_FRAME]
    assert len(aist.instances(aist_raw, {"adaptive_sampling_mm": 0})) == 3 * 9 * N_FRAMES
    first = insts[0]
    assert (first.subject, first.activity, first.camera_name) == ("d04", "gBR_sBM", "c01")
    assert first.source == "videos/gBR_sBM_c01_d04_mBR1_ch02.mp4" and first.bbox is None  # projected box x 1.15
    some = aist.instances(aist_raw, {"splits": ["val"], "cameras": ["c03", "c09"]})
    assert {(i.split, i.camera_name) for i in some} == {("val", "c03"), ("val", "c09")}
    assert aist.splits({"splits": ["test", "train"]}) == ("train", "test")
    # without the ignore list the ignored sequence is read; its videos are not there, and each is named
    dropped = []
    assert len(aist.instances(aist_raw, {"use_ignore_list": False}, dropped)) == len(insts)
    assert len(dropped) == 9 and all(d.where == f"{aist.KEYPOINTS_DIR}/{IGNORED[0]}.pkl" for d in dropped)
    assert dropped[0].reason == f"c01: video missing (videos/{IGNORED[0].replace('cAll', 'c01')}.mp4)"


def test_the_apis_excluded_views_are_dropped(broken_raw):
    """The API's reconstruction leaves out c05 of gBR_sBM_cAll_d04_mBR0_ch01 (not synchronised); so does posebank."""
    new = "gBR_sBM_cAll_d04_mBR0_ch01"
    for rel in (aist.MAPPING, aist.SPLIT_FILES["train"]):
        (broken_raw / rel).write_text((broken_raw / rel).read_text().replace(TRAIN, new))
    (broken_raw / aist.KEYPOINTS_DIR / f"{TRAIN}.pkl").rename(broken_raw / aist.KEYPOINTS_DIR / f"{new}.pkl")
    for view in aist.VIEWS:
        old = broken_raw / aist.VIDEO_DIR / f"{aist.video_name(TRAIN, view)}.mp4"
        old.rename(broken_raw / aist.VIDEO_DIR / f"{aist.video_name(new, view)}.mp4")
    dropped = []
    insts = aist.instances(broken_raw, {"splits": ["train"]}, dropped)
    assert {i.camera_name for i in insts} == set(aist.VIEWS) - {"c05"}
    assert [d.reason for d in dropped] == ["c05: not a synchronised view (AIST++ API: 'not synced view')"]


def test_frames_are_resampled_to_60fps_as_ffmpeg_does(tmp_path):
    """posepile and the API decode through FFmpeg's fps=60:round=up; a 30 fps video gives each frame twice, a 50 fps
    one repeats every fifth output."""
    for fps, expected in ((60, list(range(12))), (30, [k // 2 for k in range(24)]),
                          (50, [0, 0, 1, 2, 3, 4, 5, 5, 6, 7, 8, 9, 10, 10, 11])):
        n = 12
        write_video(tmp_path / f"v{fps}.mp4", [np.full((64, 96, 3), 20 * k, np.uint8) for k in range(n)], fps=fps)
        cap = cv2.VideoCapture(str(tmp_path / f"v{fps}.mp4"))
        times = []
        while cap.grab():
            times.append(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000)
        cap.release()
        mapping = aist.resample_60fps(times, 1 / fps)
        assert mapping[:len(expected)] == expected and len(mapping) == math.ceil(n * 60 / fps), fps
        wanted = [0, 1, 3, 7, len(mapping) - 1, len(mapping), len(mapping) + 5]
        got = dict(aist.frame_source(tmp_path)(f"v{fps}.mp4", wanted))
        assert list(got) == wanted
        for i in wanted[:-2]:
            assert round(float(got[i].image.mean()) / 20) == mapping[i], (fps, i)
        assert got[wanted[-1]].image is None and got[wanted[-2]].image is None  # past the end


def test_cache_crops_show_the_marks(aist_raw, tmp_path):
    out = tmp_path / "aist"
    counts = convert("aist", aist_raw, out, {"cameras": ["c02"]}, progress=False)
    assert counts == {"train": 3, "val": 3, "test": 3, "quarantined": 0}
    errors = []
    with Cache(out) as cache:
        assert cache.joint_info.names == aist.JOINT_INFO.names
        for i in range(len(cache)):
            ex = cache[i]
            errors.extend(mark_errors(ex.decode_image(), ex.camera.project(ex.world_coords[:17]), radius=4,
                                      min_distance=12))
    assert len(errors) > 60 and max(errors) < 1.5, (len(errors), max(errors))


def test_a_pickle_that_would_run_code_is_refused(broken_raw, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = broken_raw / aist.KEYPOINTS_DIR / f"{VAL}.pkl"
    path.write_bytes(pickle.dumps({"keypoints3d_optim": RunsCode()}))
    out = tmp_path / "out" / "aist"
    with pytest.raises(RawFileError, match=rf"{VAL}\.pkl: refused to unpickle posix\.system"):
        convert("aist", broken_raw, out, progress=False)
    assert not (tmp_path / "pwned").exists()
    assert_no_output(out)


def test_missing_and_bad_files_are_named(broken_raw, tmp_path):
    ann = broken_raw / aist.ANNOTATIONS
    path = ann / "keypoints3d" / f"{TEST}.pkl"
    path.write_bytes(pickle.dumps({"keypoints3d": np.zeros((3, 17, 3))}))
    with pytest.raises(RawFileError, match=r"no 'keypoints3d_optim' \(has \['keypoints3d'\]\)"):
        aist.instances(broken_raw)
    path.write_bytes(pickle.dumps({"keypoints3d_optim": np.zeros((3, 18, 3))}))
    with pytest.raises(RawFileError, match=r"'keypoints3d_optim' has shape \(3, 18, 3\), expected \(N, 17, 3\)"):
        aist.instances(broken_raw)
    setting = ann / "cameras" / "setting2.json"
    cams = json.loads(setting.read_text())
    setting.write_text(json.dumps([{k: v for k, v in c.items() if k != "rotation"} for c in cams]))
    with pytest.raises(RawFileError, match=r"setting2\.json: camera 'c01' has no 'rotation'"):
        aist.instances(broken_raw)
    setting.write_text(json.dumps(cams)[:100])
    with pytest.raises(RawFileError, match=r"setting2\.json: unreadable camera file: not valid JSON"):
        aist.instances(broken_raw)
    mapping = ann / "cameras" / "mapping.txt"
    mapping.write_text(mapping.read_text().replace(f"{VAL} setting2\n", ""))
    with pytest.raises(RawFileError, match=rf"mapping\.txt: has no setting for {VAL}"):
        aist.instances(broken_raw)
    setting.unlink()
    (ann / "splits" / "pose_val.txt").unlink()
    mapping.unlink()
    with pytest.raises(RawLayoutError, match=r"missing annotations/cameras/mapping\.txt, "
                                             r"annotations/splits/pose_val\.txt$"):
        convert("aist", broken_raw, tmp_path / "out", progress=False)
    assert_no_output(tmp_path / "out")


def test_a_video_of_another_size_is_dropped(broken_raw):
    source = f"{aist.VIDEO_DIR}/{aist.video_name(VAL, 'c03')}.mp4"
    write_video(broken_raw / source, [np.zeros((480, 640, 3), np.uint8)] * N_FRAMES, fps=60)
    dropped = []
    insts = aist.instances(broken_raw, {"splits": ["val"]}, dropped)
    assert {i.camera_name for i in insts} == set(aist.VIEWS) - {"c03"}
    assert [(d.where, d.reason) for d in dropped] == [(source, "the video is 640x480, its camera's size "
                                                                      "1920x1080")]
