"""TotalCapture: what is specific to it (the contract is checked for every dataset in test_conformance.py)."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import assert_no_output, copy_raw
from marks import mark_errors
from posebank.core.masks import decode
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError
from posebank.datasets import totalcapture as tc
from posebank.datasets.totalcapture.fixture import (
    EXTRA_POSE_ROWS,
    REPEATED_FRAME,
    calibration_text,
    fixture_poses,
    toolbox_projection,
)
from posebank.imaging.video import write_video
from posebank.pipeline.run import convert

SEED = 2
N_FRAMES = 4
# the release's header (zhezh/TotalCapture-Toolbox tools/data_tools.py vicon_joints)
VICON_JOINTS = ("Hips", "Spine", "Spine1", "Spine2", "Spine3", "Neck", "Head", "RightShoulder", "RightArm",
                "RightForeArm", "RightHand", "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand", "RightUpLeg",
                "RightLeg", "RightFoot", "LeftUpLeg", "LeftLeg", "LeftFoot")
TRAIN = {(1, "acting1"), (2, "rom1"), (3, "freestyle1")}


@pytest.fixture(scope="module")
def tc_raw(tmp_path_factory) -> Path:
    return tc.make_fixture(tmp_path_factory.mktemp("totalcapture_raw"), seed=SEED, n_frames=N_FRAMES)


@pytest.fixture(scope="module")
def tc_instances(tc_raw):
    dropped = []
    return tc.instances(tc_raw, None, dropped), dropped


@pytest.fixture
def broken_raw(tc_raw, tmp_path) -> Path:
    return copy_raw(tc_raw, tmp_path)


def test_fixture_files_have_the_release_formats(tc_raw):
    lines = (tc_raw / tc.CALIBRATION).read_text().splitlines()
    assert lines[0] == "8 1" and len(lines) == 1 + 7 * 8
    assert all(lines[1 + 7 * c] == "0 1079 0 1919" and len(lines[3 + 7 * c].split()) == 1 for c in range(8))
    poses = fixture_poses(SEED, N_FRAMES)
    for (subject, seq), inches in poses.items():
        text = (tc_raw / tc.positions_relpath(subject, seq)).read_text().splitlines()
        assert tuple(text[0].split("\t")) == VICON_JOINTS  # tab-separated, as the release's readers split it
        assert len(text) == 1 + N_FRAMES + EXTRA_POSE_ROWS.get((subject, seq), 0)
        # posepile's load_joints: joints split at tabs, coordinates at spaces
        parsed = [[[float(c) for c in point.split(" ")] for point in line.split("\t") if point] for line in text[1:]]
        np.testing.assert_array_equal(parsed, inches)
        np.testing.assert_array_equal(tc.read_positions(tc_raw / tc.positions_relpath(subject, seq)),
                                      inches * 25.4)
    cams = tc.read_calibration(tc_raw / tc.CALIBRATION)
    assert len(cams) == 8 and all(c.bounds == (0, 1079, 0, 1919) for c in cams)
    for rel in ("video/s1/TC_S1_acting1_cam1.mp4", "mattes/s1/TC_S1_acting1_cam1.mp4",
                "video/s4/TC_S4_acting3_cam1.mp4", "video/s1/TC_S1_walking2_cam1.mp4"):
        assert tc.video_info(tc_raw / rel) == (N_FRAMES, (1920, 1080)), rel


def test_cameras_project_as_the_toolbox_and_opencv_with_k1_alone(tc_raw):
    text = (tc_raw / tc.CALIBRATION).read_text()
    lines = text.splitlines()
    rng = np.random.default_rng(0)
    for c, entry in enumerate(tc.read_calibration(tc_raw / tc.CALIBRATION), 1):
        cam = entry.camera
        block = lines[1 + 7 * (c - 1): 8 + 7 * (c - 1)]
        k1 = float(block[2])
        rot = np.array([[float(v) for v in row.split()] for row in block[3:6]])
        t_m = np.array([float(v) for v in block[6].split()])
        # world points all over the camera's view (normalised coordinates up to the image's corners), 2-6 m away
        depth = rng.uniform(2, 6, size=(60, 1))
        in_cam = np.concatenate([rng.uniform([-0.85, -0.48], [0.85, 0.48], size=(60, 2)) * depth, depth], axis=1)
        points_m = (in_cam - t_m) @ rot
        np.testing.assert_array_equal(cam.distortion_coeffs, [k1, 0, 0, 0, 0])
        assert cam.distortion_model == "opencv" and k1 < 0
        np.testing.assert_allclose(cam.R, rot)
        np.testing.assert_allclose(cam.optical_center, -rot.T @ t_m * 1000, atol=1e-9)  # metres -> mm
        np.testing.assert_array_equal(cam.world_up, [0, 1, 0])
        ours = cam.project(points_m * 1000)
        np.testing.assert_allclose(ours, toolbox_projection(text, c, points_m), atol=1e-6)
        opencv = cv2.projectPoints(points_m.reshape(-1, 1, 3), cv2.Rodrigues(rot)[0], t_m, cam.intrinsic_matrix,
                                   np.array([k1, 0, 0, 0, 0]))[0].reshape(-1, 2)
        np.testing.assert_allclose(ours, opencv, atol=1e-6)
        # the radial term matters: without it the points land pixels away
        plain = cv2.projectPoints(points_m.reshape(-1, 1, 3), cv2.Rodrigues(rot)[0], t_m, cam.intrinsic_matrix,
                                  np.zeros(5))[0].reshape(-1, 2)
        assert np.abs(ours - plain).max() > 10


def test_a_radial_model_that_folds_inside_the_image_is_reported(broken_raw, caplog):
    """With k1 = -0.2 and f ~ 1080 px, r_d = r (1 + k1 r²) peaks at 0.86 < the corners' 1.02: they have no ray."""
    cams = tc.read_calibration(broken_raw / tc.CALIBRATION)
    assert not any(tc.folds_inside_image(c) for c in cams)  # the fixture's k1 of -0.02 .. -0.06
    lines = (broken_raw / tc.CALIBRATION).read_text().splitlines()
    lines[3] = "-0.2"  # camera 1's k1
    (broken_raw / tc.CALIBRATION).write_text("\n".join(lines) + "\n")
    assert tc.folds_inside_image(tc.read_calibration(broken_raw / tc.CALIBRATION)[0])
    with caplog.at_level("WARNING"):
        tc.instances(broken_raw, {"cameras": [1, 2], "subjects": [1]})
    assert [r.getMessage().split(": ", 1)[1][:60] for r in caplog.records] == [
        "camera 1's radial distortion (k1 = -0.2) folds back inside i"]


def test_joints_are_millimetres_of_the_inches_and_y_is_up(tc_raw, tc_instances):
    insts, _ = tc_instances
    poses = fixture_poses(SEED, N_FRAMES)
    ids = tc.JOINT_INFO.ids
    assert list(tc.JOINT_INFO.names) == ["pelv", "spin", "spin1", "spin2", "spin3", "neck", "head", "rcla", "rsho",
                                   "relb", "rwri", "lcla", "lsho", "lelb", "lwri", "rhip", "rkne", "rank", "lhip",
                                   "lkne", "lank"]
    for inst in insts:
        wc = inst.world_coords
        np.testing.assert_array_equal(wc, poses[int(inst.subject[1:]), inst.sequence][inst.frame_index] * 25.4)
        for a, b, lo, hi in (("lsho", "lelb", 200, 400), ("lhip", "lkne", 350, 500), ("rkne", "rank", 350, 500),
                             ("lsho", "rsho", 300, 400), ("neck", "head", 80, 200)):
            assert lo < np.linalg.norm(wc[ids[a]] - wc[ids[b]]) < hi, (a, b)
        np.testing.assert_array_equal(inst.camera.world_up, [0, 1, 0])
        height = (wc[ids["head"]] - (wc[ids["lank"]] + wc[ids["rank"]]) / 2) @ inst.camera.world_up
        assert 1400 < height < 1700
        assert 1700 < inst.camera.optical_center[1] < 2500  # the cameras hang 1.8-2.4 m above the floor


def test_joints_project_onto_the_marks(tc_raw, tc_instances):
    insts, _ = tc_instances
    frames = tc.frame_source(tc_raw)
    by_source = {}
    for inst in insts:
        by_source.setdefault(inst.source, []).append(inst)
    errors = []
    for source, group in by_source.items():
        images = dict(frames(source, [i.frame_index for i in group]))
        for inst in group:
            image = images[inst.frame_index].image
            assert image.shape == (1080, 1920, 3)
            errors.extend(mark_errors(image, inst.camera.project(inst.world_coords), radius=7, min_distance=16))
    assert len(insts) == 3 * 8 * (N_FRAMES - 1) and len(errors) > 500, (len(insts), len(errors))
    assert max(errors) < 1.0, max(errors)


def test_box_is_the_joints_box_within_the_matte_and_the_mask_is_the_matte(tc_raw, tc_instances):
    insts, _ = tc_instances
    frames = tc.frame_source(tc_raw)
    narrower_than_joints = narrower_than_matte = 0
    for inst in insts[::5]:
        cap = cv2.VideoCapture(str(tc_raw / tc.matte_of(inst.source)))
        for _ in range(inst.frame_index + 1):
            ok, matte = cap.read()
        cap.release()
        person = matte[..., 2] >= 128
        ys, xs = np.nonzero(person)
        matte_box = np.array([xs.min() - 0.5, ys.min() - 0.5, xs.max() + 0.5, ys.max() + 0.5])
        pts = inst.camera.project(inst.world_coords)
        centre, half = (pts.min(0) + pts.max(0)) / 2, (pts.max(0) - pts.min(0)) * 1.25 / 2
        joints_box = np.concatenate([centre - half, centre + half])
        x1, y1 = np.maximum(matte_box[:2], joints_box[:2])
        x2, y2 = np.minimum(matte_box[2:], joints_box[2:])
        np.testing.assert_allclose(inst.bbox, [x1, y1, x2 - x1, y2 - y1], atol=1e-9)
        narrower_than_joints += x1 > joints_box[0] or y1 > joints_box[1] or x2 < joints_box[2] or y2 < joints_box[3]
        narrower_than_matte += x1 > matte_box[0] or y1 > matte_box[1] or x2 < matte_box[2] or y2 < matte_box[3]
        ((_, frame),) = frames(inst.source, [inst.frame_index])
        np.testing.assert_array_equal(frame.masks[0], person)
    assert narrower_than_joints and narrower_than_matte  # both boxes bound it


def test_selection_subjects_test_sequences_visibility_and_sampling(tc_raw, tc_instances, tmp_path):
    insts, dropped = tc_instances
    assert {(int(i.subject[1:]), i.sequence) for i in insts} == TRAIN  # not S1 walking2, not S4
    assert {i.split for i in insts} == {"train"} and tc.splits() == ("train",)
    assert sorted({i.frame_index for i in insts}) == [f for f in range(N_FRAMES) if f != REPEATED_FRAME]
    first = insts[0]
    assert (first.source, first.subject, first.sequence, first.activity, first.camera_name) == (
        "video/s1/TC_S1_acting1_cam1.mp4", "S1", "acting1", "acting", "cam1")
    # the Vicon file of S2 rom1 runs one row past its videos: that row is dropped, per video
    assert sorted((d.where, d.reason) for d in dropped) == [
        (f"video/s2/TC_S2_rom1_cam{c}.mp4#{N_FRAMES}", tc.PAST_VIDEO_END) for c in range(1, 9)]
    assert len(tc.instances(tc_raw, {"adaptive_sampling_mm": 0})) == 3 * 8 * N_FRAMES
    # subject 4 and the test sequences are there: only the settings leave them out
    some = tc.instances(tc_raw, {"subjects": [1, 4], "test_sequences": [], "cameras": [1]})
    assert {(i.subject, i.sequence) for i in some} == {("S1", "acting1"), ("S1", "walking2"), ("S4", "acting3")}
    # a camera that sees fewer than min_visible_joints joints leaves the frames out (recorded)
    lines = (tc_raw / tc.CALIBRATION).read_text().splitlines()
    fx, fy, cx, cy = lines[2].split()
    lines[2] = f"{fx} {fy} {float(cx) + 1200} {cy}"
    raw = copy_raw(tc_raw, tmp_path)
    (raw / tc.CALIBRATION).write_text("\n".join(lines) + "\n")
    dropped = []
    insts = tc.instances(raw, {"cameras": [1, 2], "subjects": [1]}, dropped)
    assert {i.camera_name for i in insts} == {"cam2"}
    assert [(d.where, d.reason, d.count) for d in dropped] == [
        ("video/s1/TC_S1_acting1_cam1.mp4", tc.TOO_FEW_VISIBLE, N_FRAMES)]


def test_cache_crops_show_the_marks_and_the_matte(tc_raw, tmp_path):
    out = tmp_path / "totalcapture"
    counts = convert("totalcapture", tc_raw, out, {"cameras": [3]}, progress=False)
    assert counts == {"train": 3 * (N_FRAMES - 1), "quarantined": 1}
    errors = []
    with Cache(out) as cache:
        assert cache.joint_info.names == tc.JOINT_INFO.names
        for i in range(len(cache)):
            ex = cache[i]
            image = ex.decode_image()
            errors.extend(mark_errors(image, ex.camera.project(ex.world_coords), radius=7, min_distance=16))
            mask = decode(ex.mask, *image.shape[:2])
            assert 0.05 < mask.mean() < 0.9  # the matte, warped into the crop
    assert len(errors) > 100 and max(errors) < 1.0, (len(errors), max(errors))


def test_missing_and_bad_files_are_named(broken_raw, tmp_path):
    pos = broken_raw / tc.positions_relpath(2, "rom1")
    text = pos.read_text()
    pos.write_text(text.replace("RightFoot", "RightToe", 1))
    with pytest.raises(RawFileError, match=r"rom1/gt_skel_gbl_pos\.txt: the header is not the 21 Vicon joint "
                                          r"names \(unknown: \['RightToe'\], missing: \['RightFoot'\], 21 names\)"):
        tc.instances(broken_raw)
    lines = text.splitlines()
    lines[3] = lines[3].rsplit("\t", 2)[0]
    pos.write_text("\n".join(lines) + "\n")
    with pytest.raises(RawFileError, match=r"line 4 \(joint positions\) has 60 values, expected 63"):
        tc.instances(broken_raw)
    pos.write_text(text)
    cal = broken_raw / tc.CALIBRATION
    good = cal.read_text()
    lines = good.splitlines()
    lines[4] = "1 0 0"  # camera 1's first rotation row
    cal.write_text("\n".join(lines) + "\n")
    with pytest.raises(RawFileError, match=r"calibration\.cal: camera 1: R is not a rotation matrix"):
        tc.instances(broken_raw)
    cal.write_text(good.replace("8 1\n", "8 x\n", 1))
    with pytest.raises(RawFileError, match=r"line 1 is '8 x', expected '<number of cameras> <distortion order>'"):
        tc.instances(broken_raw)
    cal.write_text(good)
    # a missing matte leaves its video out, a matte without person pixels its frames (both recorded)
    (broken_raw / tc.matte_relpath(3, "freestyle1", 5)).unlink()
    empty = tc.matte_relpath(3, "freestyle1", 6)
    write_video(broken_raw / empty, [np.zeros((1080, 1920, 3), np.uint8)] * N_FRAMES, fps=60)
    dropped = []
    insts = tc.instances(broken_raw, {"subjects": [3], "cameras": [5, 6, 7]}, dropped)
    assert {i.camera_name for i in insts} == {"cam7"}
    assert [(d.where, d.reason, d.count) for d in dropped] == [
        ("video/s3/TC_S3_freestyle1_cam5.mp4", "matte video missing (mattes/s3/TC_S3_freestyle1_cam5.mp4)",
         N_FRAMES),
        ("video/s3/TC_S3_freestyle1_cam6.mp4", tc.NO_MATTE_PIXELS, N_FRAMES - 1)]
    # folders and files of the layout
    (broken_raw / tc.CALIBRATION).unlink()
    for rel in ("mattes", "vicon/S2"):
        for p in sorted((broken_raw / rel).rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        (broken_raw / rel).rmdir()
    with pytest.raises(RawLayoutError, match=r"missing calibration\.cal, mattes/$"):
        convert("totalcapture", broken_raw, tmp_path / "out", progress=False)
    assert_no_output(tmp_path / "out")
    (broken_raw / "mattes").mkdir()
    cal.write_text(calibration_text(SEED))
    with pytest.raises(RawLayoutError, match=r"missing vicon/S2/$"):
        tc.check_layout(broken_raw)
