"""IKEA ASM: camera_parameters.pkl through the restricted unpickler, pose3d JSON (cm, camera frame), the shared
dev2 world frame, posepile's selection and box rule."""

import dataclasses
import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import assert_no_output, copy_raw
from marks import mark_errors
from posebank.core import safe_pickle
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError, ikea
from posebank.datasets.frames import file_frame_source
from posebank.datasets.ikea.fixture import (
    ANNOTATED,
    EMPTY_FRAME,
    FEW_JOINTS_FRAME,
    MISSING_EAR_FRAMES,
    N_VIDEO_FRAMES,
    PAST_END,
    REPEATED_FRAME,
    SEQUENCES,
    camera_parameters,
    fixture_poses,
    project,
)
from posebank.datasets.sampling import ValidatingPoseSampler
from posebank.pipeline.run import convert

SEED = 2
KEPT = [f for f in ANNOTATED if f not in (REPEATED_FRAME, EMPTY_FRAME, FEW_JOINTS_FRAME)]
J = {n: i for i, n in enumerate(ikea.JOINT_NAMES)}


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return ikea.make_fixture(tmp_path_factory.mktemp("ikea_raw"), seed=SEED)


@pytest.fixture(scope="module")
def converted(raw):
    dropped = []
    return ikea.instances(raw, None, dropped), dropped


@pytest.fixture
def broken(raw, tmp_path) -> Path:
    return copy_raw(raw, tmp_path)


def seq_folder(k: int) -> str:
    return "/".join(SEQUENCES[k])


def test_fixture_files_have_the_release_formats(raw):
    params = safe_pickle.load(raw / ikea.CALIBRATION)  # plain dicts and numpy arrays only
    assert sorted(params) == ["02", "05"] and all(sorted(v) == list(ikea.CAMERAS) for v in params.values())
    for devs in params.values():
        for entry in devs.values():
            assert sorted(entry) == ["K", "P", "R", "T", "dist_coefs"]
            assert entry["K"].shape == (3, 3) and entry["R"].shape == (3, 3) and entry["T"].shape == (3, 1)
            np.testing.assert_allclose(entry["P"], entry["K"] @ np.hstack([entry["R"], entry["T"]]))
            assert not entry["dist_coefs"].any()
        np.testing.assert_array_equal(devs["dev2"]["R"], np.eye(3))  # calibration.py: dev2 is the reference
        assert not devs["dev2"]["T"].any()
    for furniture, seq in SEQUENCES:
        assert ikea.calibration_id(seq) == seq.split("_")[3] in params
        for dev in ikea.CAMERAS:
            folder = raw / furniture / seq / dev
            files = sorted(p.name for p in (folder / "pose3d").iterdir())
            extra = [f"{PAST_END[2]:06d}.json"] if ((furniture, seq), dev) == PAST_END[:2] else []
            assert files == [f"{f:06d}.json" for f in ANNOTATED] + extra
            data = json.loads((folder / "pose3d/000000.json").read_text())
            assert data["format"] == "ikea" and len(data["pose_keypoints_3d"]) == 17 * 4
            empty = json.loads((folder / f"pose3d/{EMPTY_FRAME:06d}.json").read_text())
            assert not any(empty["pose_keypoints_3d"])
            cap = cv2.VideoCapture(str(folder / "images/scan_video.avi"))
            assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (1920, 1080)
            assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == N_VIDEO_FRAMES
            cap.release()
    assert (raw / "Kallax_Shelf_Drawer/special_test/dev1/pose3d/000000.json").is_file()


def test_cameras_are_the_pickles_k_r_and_t_in_mm(raw):
    params = camera_parameters(SEED)
    cams = ikea.read_cameras(raw / ikea.CALIBRATION)
    rng = np.random.default_rng(0)
    for calib, devs in params.items():
        for dev, entry in devs.items():
            cam = cams[calib][dev]
            np.testing.assert_array_equal(cam.intrinsic_matrix, entry["K"])
            np.testing.assert_array_equal(cam.R, entry["R"])
            np.testing.assert_allclose(cam.optical_center, -entry["R"].T @ entry["T"].ravel() * 10, atol=1e-9)
            assert not cam.has_distortion and np.array_equal(cam.world_up, [0, -1, 0])
            # world points (dev2's frame, mm) project as the release's P = K [R|T] on cm
            world = rng.uniform([-1500, -500, 1500], [1500, 1200, 4000], size=(50, 3))
            np.testing.assert_allclose(cam.project(world), project(entry, world), atol=1e-6)
            # a point given in this camera's frame (cm, as pose3d holds it) returns to the world point
            in_cam_cm = world / 10 @ entry["R"].T + entry["T"].ravel()
            np.testing.assert_allclose(cam.camera_to_world(in_cam_cm * 10), world, atol=1e-6)


def test_poses_are_the_files_in_mm_in_one_world_and_minus_y_is_up(raw, converted):
    insts, _ = converted
    poses = fixture_poses(SEED)
    params = camera_parameters(SEED)
    assert {i.sequence for i in insts} == {seq_folder(0), seq_folder(1)}
    by_frame = {}
    for inst in insts:
        furniture, seq = inst.sequence.split("/")
        wc = inst.world_coords
        np.testing.assert_allclose(wc, poses[furniture, seq][inst.frame_index], atol=1e-6, equal_nan=True)
        # the file: cm in this camera's frame, x 10, then into dev2's frame
        rows = np.array(json.loads((Path(raw) / inst.sequence / inst.camera_name / f"pose3d/{inst.frame_index:06d}"
                                    ".json").read_text())["pose_keypoints_3d"]).reshape(17, 4)
        entry = params[seq.split("_")[3]][inst.camera_name]
        ok = rows[:, 3] > 0
        np.testing.assert_allclose(wc[ok], (rows[ok, :3] - entry["T"].ravel()) @ entry["R"] * 10, atol=1e-6)
        assert np.isnan(wc[~ok]).all() and (inst.frame_index in MISSING_EAR_FRAMES) == bool((~ok).any())
        by_frame.setdefault((inst.sequence, inst.frame_index), []).append(wc)
        for a, b, lo, hi in (("lhip", "lkne", 390, 450), ("rkne", "rank", 390, 450), ("lsho", "lelb", 240, 300),
                             ("relb", "rwri", 220, 280), ("lsho", "rsho", 340, 380)):
            assert lo < np.linalg.norm(wc[J[a]] - wc[J[b]]) < hi, (a, b)  # mm, an adult's bones
        up = inst.camera.world_up
        assert 1450 < (wc[J["nose"]] - wc[[J["lank"], J["rank"]]].mean(0)) @ up < 1600
    # the three views of a frame give the same world joints (posepile's R^T x_cam would differ by each T)
    for views in by_frame.values():
        assert len(views) == 3
        np.testing.assert_allclose(views[0], views[1], atol=1e-6)
        np.testing.assert_allclose(views[0], views[2], atol=1e-6)


def test_joints_project_onto_the_marks(raw, converted):
    insts, _ = converted
    frames = file_frame_source(raw)
    errors = []
    for source in sorted({i.source for i in insts}):
        group = [i for i in insts if i.source == source]
        images = dict(frames(source, [i.frame_index for i in group]))
        for inst in group:
            image = images[inst.frame_index].image
            assert image.shape == (1080, 1920, 3)
            errors.extend(mark_errors(image, inst.camera.project(inst.world_coords), radius=8, min_distance=20))
    assert len(errors) > 150 and max(errors) < 1.0, (len(errors), max(errors))


def test_selection_drops_and_sampling(raw, converted):
    insts, dropped = converted
    video = "{}/{}/images/scan_video.avi"
    assert [(i.source, i.frame_index) for i in insts] == [
        (video.format(seq_folder(k), dev), f) for k in (0, 1) for dev in ikea.CAMERAS for f in KEPT]
    assert {i.split for i in insts} == {"train"} and {i.activity for i in insts} == {s[0] for s in SEQUENCES}
    assert all(i.bbox is None for i in insts)  # the detect stage's box (detect.per_dataset.ikea)
    assert "special_test" not in {i.sequence.split("/")[1] for i in insts}
    expected = [(video.format(seq_folder(k), dev) + f"#{f}", why) for k in (0, 1) for dev in ikea.CAMERAS
                for f, why in ((EMPTY_FRAME, "every joint is missing (NaN) in the annotation"),
                               (FEW_JOINTS_FRAME, ikea.TOO_FEW_VISIBLE))]
    expected.append((video.format("/".join(PAST_END[0]), PAST_END[1]) + f"#{PAST_END[2]}", ikea.PAST_VIDEO_END))
    assert sorted((d.where, d.reason) for d in dropped) == sorted(expected)
    # no sampling, no visibility rule: the repeated pose and the 3-joint pose too; one furniture, one camera
    every = ikea.instances(raw, {"adaptive_sampling_mm": 0, "min_visible_joints": 0, "furniture": ["Lack_Side_Table"],
                                 "cameras": ["dev3"]})
    assert [i.frame_index for i in every] == [f for f in ANNOTATED if f != EMPTY_FRAME]
    assert [i.frame_index for i in ikea.instances(raw, {"min_visible_joints": 3, "cameras": ["dev1"],
                                                        "furniture": ["Lack_Side_Table"]})] == [0, 2, 8, 10]


def test_pose_sampler_is_posepiles_with_the_validity_check():
    s = ValidatingPoseSampler(100)
    pose = np.zeros((17, 3))
    moved_a_bit = pose + [0, 50, 0]
    partial = moved_a_bit.copy()
    partial[5] = np.nan
    far = partial.copy()
    far[0, 0] += 150
    back = far.copy()
    back[5] = 0  # joint 5 valid again, missing in the last kept pose: kept without motion
    assert [s.should_keep(p) for p in (pose, moved_a_bit, partial, far, back, back)] == [
        True, False, False, True, True, False]


def test_detection_rule_is_posepiles():
    import yaml

    from conftest import REPO
    from posebank.core.settings import check_params
    from posebank.imaging.crop import box_from_points
    from posebank.vision.detect import select_boxes

    checked = check_params(yaml.safe_load((REPO / "params.yaml").read_text()), source="params")
    dp = dataclasses.replace(checked.detect.for_dataset("ikea"), backend="hog")  # any detector
    assert (dp.rule, dp.expansion, dp.min_match_iou, dp.max_area_ratio, dp.fallback) == ("match", 1.2, 0.3, None,
                                                                                          "undetected")
    points = np.array([[500.0, 300.0], [540.0, 420.0], [520.0, 360.0]])
    gt = box_from_points(points, dp.expansion)
    np.testing.assert_allclose(gt, [496.0, 288.0, 48.0, 144.0])  # boxlib.expand(bb_of_points, 1.2)
    dets = np.array([[300.0, 280.0, 50.0, 150.0, 0.95], [494.0, 300.0, 60.0, 150.0, 0.6]])
    ((box, src),) = select_boxes(gt[None], dets, dp)
    assert src == "detection" and np.array_equal(box, dets[1, :4])
    # the best detection overlaps less than 0.3: posepile leaves the frame out
    ((box, src),) = select_boxes(gt[None], np.array([[520.0, 380.0, 60.0, 150.0, 0.9]]), dp)
    assert box is None and src == "dropped"
    # YOLOv4 found no one in the frame: posepile keeps the ground-truth box x 1.2
    ((box, src),) = select_boxes(gt[None], np.zeros((0, 5)), dp)
    assert src == "projected" and np.array_equal(box, gt)


def test_cache_crops_show_the_marks(raw, tmp_path):
    out = tmp_path / "ikea"
    counts = convert("ikea", raw, out, {"cameras": ["dev2"]}, progress=False)
    assert counts == {"train": 2 * len(KEPT), "quarantined": 4}
    errors = []
    with Cache(out) as cache:
        assert cache.joint_info.names == ikea.JOINT_INFO.names
        for i in range(len(cache)):
            ex = cache[i]
            errors.extend(mark_errors(ex.decode_image(), ex.camera.project(ex.world_coords), radius=7,
                                      min_distance=16))
    assert len(errors) > 30 and max(errors) < 1.0, (len(errors), max(errors))


def test_a_pickle_naming_other_classes_is_refused(broken):
    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    (broken / ikea.CALIBRATION).write_bytes(pickle.dumps({"02": {"dev1": Evil()}}))
    with pytest.raises(RawFileError, match=r"camera_parameters\.pkl: refused to unpickle builtins\.print"):
        ikea.instances(broken)


def test_missing_and_bad_files_are_named(broken, tmp_path):
    calib = broken / ikea.CALIBRATION
    params = camera_parameters(SEED)
    bad = {k: dict(v) for k, v in params.items()}
    bad["05"]["dev3"] = {k: v for k, v in params["05"]["dev3"].items() if k != "T"}
    calib.write_bytes(pickle.dumps(bad))
    with pytest.raises(RawFileError, match=r"camera_parameters\.pkl: \['05'\]\['dev3'\] has no 'T'"):
        ikea.instances(broken)
    calib.write_bytes(pickle.dumps({"02": params["02"]}))
    with pytest.raises(RawFileError, match=r"camera_parameters\.pkl: has no camera \['05'\]\['dev1'\] \(sequence "
                                           r"Lack_Side_Table/0012"):
        ikea.instances(broken)
    calib.write_bytes(pickle.dumps(params))
    pose = broken / seq_folder(1) / "dev2/pose3d/000002.json"
    pose.write_text(json.dumps({"format": "ikea", "pose_keypoints_3d": [1.0] * 51}))
    with pytest.raises(RawFileError, match=r"000002\.json: pose_keypoints_3d must be 17 x 4 = 68 finite numbers"):
        ikea.instances(broken)
    pose.write_text(json.dumps({"format": "ikea"}))
    with pytest.raises(RawFileError, match=r"000002\.json: not a pose3d file"):
        ikea.instances(broken)
    (broken / "Lack_Side_Table/misnamed/dev1").mkdir(parents=True)
    with pytest.raises(RawLayoutError, match=r"Lack_Side_Table/misnamed/ named <id>_<colour>"):
        ikea.check_layout(broken)
    assert ikea.check_layout(broken, {"skip_sequences": ["special_test", "misnamed"]})
    out = tmp_path / "out" / "ikea"
    calib.unlink()
    (broken / seq_folder(0) / "dev3/images/scan_video.avi").unlink()
    with pytest.raises(RawLayoutError) as e:
        convert("ikea", broken, out, {"skip_sequences": ["special_test", "misnamed"]}, progress=False)
    for rel in (ikea.CALIBRATION, f"{seq_folder(0)}/dev3/images/scan_video.avi"):
        assert rel in str(e.value)
    assert_no_output(out)
    with pytest.raises(RawLayoutError, match=r"Lack_TV_Bench/"):
        ikea.check_layout(broken, {"furniture": ["Lack_TV_Bench"]})
