"""ASPset-510: what is specific to it (the contract is checked for every dataset in test_conformance.py)."""

import ast
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import sample
from helpers import copy_raw
from marks import mark_errors
from posebank.core.errors import ParamsError
from posebank.datasets import RawFileError, RawLayoutError
from posebank.datasets import aspset as asp
from posebank.datasets.aspset.fixture import (
    BOX_HEADER,
    CLIPS,
    EXTRA_POSE_ROWS,
    INVALID,
    MARK_RADIUS,
    REPEATED_FRAME,
    fixture_cameras,
    fixture_poses,
    toolkit_projection,
)
from posebank.datasets.c3d import read_points, write_points

SEED = 1
N_FRAMES = 4
J = {n: i for i, n in enumerate(asp.JOINT_INFO.names)}
UP = np.array(asp.WORLD_UP)


def toolkit_fixtures() -> dict[str, np.ndarray]:
    """The arrays of the toolkit's tests/conftest.py (real values of subject 04ac: the right camera, the joints of a
    frame of clip 0026 and their projection into the right view), read from the file's source."""
    tree = ast.parse(sample("aspset/toolkit_tests_conftest.py.txt").read_text())
    out = {}
    for fn in tree.body:
        if isinstance(fn, ast.FunctionDef):
            for node in ast.walk(fn):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "asarray":
                    out.setdefault(fn.name, []).append(np.array(ast.literal_eval(node.args[0]), np.float64))
    return {k: v[0] if len(v) == 1 else v for k, v in out.items()}


def bone_lengths(pose: np.ndarray) -> dict[tuple[str, str], float]:
    names = asp.JOINT_INFO.names
    return {(names[a], names[b]): float(np.linalg.norm(pose[a] - pose[b])) for a, b in asp.JOINT_INFO.edges}


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return asp.make_fixture(tmp_path_factory.mktemp("aspset_raw"), seed=SEED, n_frames=N_FRAMES)


@pytest.fixture(scope="module")
def converted(raw):
    dropped = []
    return asp.instances(raw, None, dropped), dropped


# ------------------------------------------------------------------------------------------- real values
def test_real_camera_projects_the_real_joints_as_the_toolkit(tmp_path):
    """The toolkit's own test data (04ac-right camera, 04ac-0026 joints and their 2D projection): the converted
    camera projects the converted joints onto the toolkit's 2D joints; bones are in mm; up is -y."""
    real = toolkit_fixtures()
    intr, extr = real["camera"]
    path = tmp_path / "04ac-right.json"
    path.write_text(json.dumps({"intrinsic_matrix": intr.tolist(), "extrinsic_matrix": extr.tolist()}))
    camera = asp.read_camera(path)
    np.testing.assert_array_equal(camera.intrinsic_matrix, intr[:, :3])
    np.testing.assert_array_equal(camera.R, extr[:3, :3])
    np.testing.assert_allclose(camera.world_to_camera(np.zeros((1, 3)))[0], extr[:3, 3], atol=1e-6)
    joints = real["joints_3d"]
    assert joints.shape == (17, 3) and real["joints_2d"].shape == (17, 2)
    projected = camera.project(joints)
    np.testing.assert_allclose(projected, real["joints_2d"], rtol=0, atol=1e-3)
    np.testing.assert_allclose(toolkit_projection({"intrinsic_matrix": intr, "extrinsic_matrix": extr}, joints),
                               real["joints_2d"], rtol=0, atol=1e-6)
    # millimetres: a person about 18.6 m in front of the subject's left camera, with human bone lengths
    assert 18000 < joints[:, 2].mean() < 19000
    bones = bone_lengths(joints)
    assert 300 < bones["rhip", "rkne"] < 550 and 300 < bones["rkne", "rank"] < 550
    assert 200 < bones["rsho", "relb"] < 400 and 200 < bones["relb", "rwri"] < 350
    # world up (0, -1, 0): the head top is 1.5-1.9 m above the ankles, the neck above the pelvis
    ankles = joints[[J["rank"], J["lank"]]].mean(axis=0)
    assert 1500 < (joints[J["htop"]] - ankles) @ UP < 1900
    assert (joints[J["neck"]] - joints[J["pelv"]]) @ UP > 300
    # posepile's order is the toolkit's: the right-side joints have the right image side in the right view...
    # (the person faces the camera: its right shoulder appears at smaller x than its left one)
    assert projected[J["rsho"], 0] < projected[J["lsho"], 0]


def test_real_left_camera_is_the_world_frame_as_the_fixture_has_it():
    """The toolkit's tests state that 04ac's left camera has the identity extrinsics (the world frame); the
    fixture's left cameras do too."""
    for (_, view), data in fixture_cameras(SEED).items():
        if view == "left":
            np.testing.assert_array_equal(np.asarray(data["extrinsic_matrix"]), np.eye(4))


# ------------------------------------------------------------------------------------------- fixture files
def test_fixture_files_have_the_release_formats(raw):
    rows = [line.split(",") for line in (raw / asp.SPLITS_FILE).read_text().splitlines()]
    assert rows == [list(c) for c in CLIPS]
    clips = asp.read_splits(raw / asp.SPLITS_FILE)
    assert [c.views for c in clips] == [asp.VIEWS, ("mid",), ("right",), asp.VIEWS]
    for (subject, clip), poses in fixture_poses(SEED, N_FRAMES).items():
        c3d = read_points(raw / asp.joints_relpath(subject, clip))
        assert c3d.labels == list(asp.TOOLKIT_JOINTS) and c3d.rate == 50.0 and c3d.units == "mm"
        assert c3d.points.shape == (N_FRAMES + EXTRA_POSE_ROWS.get((subject, clip), 0), 17, 3)
        np.testing.assert_array_equal(c3d.points, poses)
    (subject, clip), frame, joint = INVALID
    assert np.isnan(asp.read_joints(raw / asp.joints_relpath(subject, clip))[frame, joint]).all()
    text = (raw / asp.boxes_relpath("04ac", "0026", "left")).read_text().splitlines()
    assert text[0] == BOX_HEADER and len(text) == 1 + N_FRAMES
    data = json.loads((raw / asp.camera_relpath("04ac", "mid")).read_text())
    assert np.asarray(data["intrinsic_matrix"]).shape == (3, 4) and np.asarray(data["extrinsic_matrix"]).shape == (4, 4)
    cap = cv2.VideoCapture(str(raw / asp.video_relpath("04ac", "0026", "right")))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (3840, 2160)
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == N_FRAMES
    cap.release()


# ------------------------------------------------------------------------------------------- conversion
def test_selection_splits_and_drops(converted):
    insts, dropped = converted
    keys = [(i.subject, i.sequence, i.camera_name, i.split) for i in insts]
    # train clips first (the split file's order), then val; the test clip is not read
    assert list(dict.fromkeys(keys)) == [("04ac", "0026", v, "train") for v in asp.VIEWS] + [
        ("1e28", "0001", "right", "train"), ("04ac", "0031", "mid", "val")]
    # the repeated pose (frame 2) is left out by the 100 mm sampler, every other frame kept
    assert all(sorted(i.frame_index for i in insts if (i.subject, i.sequence, i.camera_name) == k[:3])
               == [f for f in range(N_FRAMES) if f != REPEATED_FRAME] for k in keys)
    # the c3d's extra frame past the video's end is recorded
    assert [(d.where, d.reason) for d in dropped] == [(asp.video_relpath("04ac", "0031", "mid") + f"#{N_FRAMES}",
                                                       asp.PAST_END)]
    assert asp.splits() == ("train", "val") and asp.splits({"splits": ["val"]}) == ("val",)


def test_params_select_subjects_views_and_splits(raw):
    insts = asp.instances(raw, {"subjects": ["04ac"], "views": ["mid"], "splits": ["val"]})
    assert {(i.subject, i.sequence, i.camera_name, i.split) for i in insts} == {("04ac", "0031", "mid", "val")}
    with pytest.raises(ParamsError, match=r"datasets\.aspset\.subjects"):
        asp.instances(raw, {"subjects": ["ffff"]})
    with pytest.raises(ParamsError, match=r"datasets\.aspset\.views"):
        asp.check_params({"views": ["top"]})


def test_projection_lands_on_the_drawn_marks_bones_in_mm_and_up(raw, converted):
    """The converted joints through the converted camera land on the marks the fixture drew (within 1 px) and on
    the toolkit's projection of the raw files; bone lengths are in mm; up is (0, -1, 0)."""
    insts, _ = converted
    cameras = fixture_cameras(SEED)
    errors = []
    for inst in insts:
        projected = inst.camera.project(inst.world_coords)
        ok = np.isfinite(projected).all(axis=1)
        np.testing.assert_allclose(projected[ok], toolkit_projection(cameras[inst.subject, inst.camera_name],
                                                                     inst.world_coords[ok]), atol=1e-6)
        cap = cv2.VideoCapture(str(raw / inst.source))
        cap.set(cv2.CAP_PROP_POS_FRAMES, inst.frame_index)
        good, image = cap.read()
        cap.release()
        assert good
        errors += list(mark_errors(image, projected[ok], radius=int(MARK_RADIUS) + 4,
                                   min_distance=3 * MARK_RADIUS))
        np.testing.assert_array_equal(inst.camera.world_up, UP)
        pose = inst.world_coords
        if np.isfinite(pose).all():
            bones = bone_lengths(pose)
            assert 380 < bones["rhip", "rkne"] < 460 and 380 < bones["rkne", "rank"] < 460
            ankles = pose[[J["rank"], J["lank"]]].mean(axis=0)
            assert 1600 < (pose[J["htop"]] - ankles) @ UP < 1700
    assert len(errors) > 50 and np.max(errors) < 1.0, np.max(errors)


def test_invalid_point_stays_missing(converted):
    insts, _ = converted
    (subject, clip), frame, joint = INVALID
    hits = [i for i in insts if (i.subject, i.sequence, i.frame_index) == (subject, clip, frame)]
    assert len(hits) == 3
    for inst in hits:
        assert np.isnan(inst.world_coords[joint]).all() and np.isfinite(np.delete(inst.world_coords, joint, 0)).all()


def test_box_is_the_release_box_expanded_about_its_centre(raw, converted):
    insts, _ = converted
    for inst in insts:
        rows = (raw / asp.boxes_relpath(inst.subject, inst.sequence, inst.camera_name)).read_text().splitlines()
        l, t, r, b = map(float, rows[1 + inst.frame_index].split(","))
        w, h = (r - l) * 1.1, (b - t) * 1.1
        np.testing.assert_allclose(inst.bbox, [(l + r) / 2 - w / 2, (t + b) / 2 - h / 2, w, h], atol=1e-9)
    wider = asp.instances(raw, {"box_expansion": 1.5})[0]
    np.testing.assert_allclose(wider.bbox[2:], insts[0].bbox[2:] / 1.1 * 1.5)


# ------------------------------------------------------------------------------------------- broken trees
def test_missing_files_are_named(raw, tmp_path):
    broken = copy_raw(raw, tmp_path)
    (broken / asp.camera_relpath("1e28", "right")).unlink()
    (broken / asp.video_relpath("04ac", "0026", "mid")).unlink()
    with pytest.raises(RawLayoutError) as e:
        asp.check_layout(broken)
    assert e.value.missing == [asp.video_relpath("04ac", "0026", "mid"), asp.camera_relpath("1e28", "right")]
    (broken / asp.SPLITS_FILE).unlink()
    with pytest.raises(RawLayoutError, match="missing splits.csv"):
        asp.check_layout(broken)


@pytest.mark.parametrize("rel, content, problem", [
    (asp.SPLITS_FILE, "04ac,0026,train\n", "line 1 has 3 fields"),
    (asp.SPLITS_FILE, "04ac,0026,holdout,all\n", "line 1 is '04ac,0026,holdout,all'"),
    (asp.camera_relpath("04ac", "left"), '{"intrinsic_matrix": [1, 2, 3]', "not valid JSON"),
    (asp.camera_relpath("04ac", "left"), '{"intrinsic_matrix": [1, 2, 3], "extrinsic_matrix": []}',
     "malformed camera file"),
    (asp.boxes_relpath("04ac", "0026", "left"), "left,top,right,bottom\n1,2,x,4\n", "line 2 is not numeric"),
    (asp.boxes_relpath("04ac", "0026", "left"), "left,top,right,bottom\n1,2,3\n", "line 2 has 3 fields"),
])
def test_bad_files_are_named(raw, tmp_path, rel, content, problem):
    broken = copy_raw(raw, tmp_path)
    (broken / rel).write_text(content)
    with pytest.raises(RawFileError) as e:
        asp.instances(broken)
    assert e.value.where == str(broken / rel) and problem in e.value.problem


def test_c3d_with_other_points_or_units_is_named(raw, tmp_path):
    broken = copy_raw(raw, tmp_path)
    path = broken / asp.joints_relpath("04ac", "0026")
    write_points(path, np.zeros((4, 16, 3)), [f"p{i}" for i in range(16)], rate=50.0)
    with pytest.raises(RawFileError, match="16 points per frame, expected the 17 joints"):
        asp.instances(broken)
    write_points(path, np.zeros((4, 17, 3)), list(asp.TOOLKIT_JOINTS), rate=50.0, units="m")
    with pytest.raises(RawFileError, match="point units 'm', expected mm"):
        asp.instances(broken)


def test_camera_that_is_not_k_zero_is_named(tmp_path):
    path = tmp_path / "x-left.json"
    path.write_text(json.dumps({"intrinsic_matrix": [[1000, 0, 960, 5], [0, 1000, 540, 0], [0, 0, 1, 0]],
                                "extrinsic_matrix": np.eye(4).tolist()}))
    with pytest.raises(RawFileError, match="nonzero fourth column"):
        asp.read_camera(path)
