"""BEHAVE: the release's JSON calibrations (Azure Kinect rational distortion, camera-to-world poses), SMPL-H fits
through the restricted unpickler posed with a gendered SMPL model, OpenPose joints, undistorted frames and masks,
posepile's selection and box."""

import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import copy_raw
from marks import mark_errors
from posebank.core import safe_pickle
from posebank.core.errors import ParamsError
from posebank.core.smpl_model import random_model
from posebank.datasets import RawFileError, RawLayoutError, behave, humbi, surreal
from posebank.datasets.behave.fixture import (
    KINECTS,
    MISSING_FIT,
    MISSING_IMAGE,
    MISSING_MASK,
    MODEL_SEEDS,
    N_FRAMES,
    REPEATED_FRAME,
    SEQUENCES,
    ZERO_SCORE,
    fixture_kinects,
    forward,
    frame_name,
    project,
)

SEED = 3
J = {n: i for i, n in enumerate(behave.JOINT_NAMES)}
TRAIN, TEST, UNSPLIT = (s[0] for s in SEQUENCES)


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return behave.make_fixture(tmp_path_factory.mktemp("behave_raw"), seed=SEED)


@pytest.fixture(scope="module")
def converted(raw):
    dropped = []
    return behave.instances(raw, None, dropped), dropped


@pytest.fixture
def broken(raw, tmp_path) -> Path:
    return copy_raw(raw, tmp_path)


def kinect(raw, seq: str, k: int) -> behave.Kinect:
    info = behave.read_info(raw, raw / "sequences" / seq)
    return behave.read_kinect(info.intrinsic / str(k) / "calibration.json", info.config / str(k) / "config.json")


def test_fixture_files_have_the_release_formats(raw):
    split = json.loads((raw / "split.json").read_text())
    assert split == {"train": [TRAIN], "test": [TEST]}
    info = json.loads((raw / "sequences" / TRAIN / "info.json").read_text())
    assert {"config", "intrinsic", "gender", "kinects", "cat"} <= set(info) and info["kinects"] == list(KINECTS)
    for k in KINECTS:
        cal = json.loads((raw / f"calibs/intrinsics/{k}/calibration.json").read_text())
        assert {"color", "depth", "color_to_depth", "depth_to_color"} <= set(cal)
        c = cal["color"]
        # the release's KinectCalib hands opencv[4:] to cv2.projectPoints: OpenCV's order, which posepile's
        # reordering of the named coefficients (k1 k2 p1 p2 k3 k4 k5 k6) reproduces
        _, dist, size = behave.read_intrinsics(raw / f"calibs/intrinsics/{k}/calibration.json")
        np.testing.assert_array_equal(dist, c["opencv"][4:])
        assert size == (c["width"], c["height"])
        conf = json.loads((raw / f"calibs/Date01/config/{k}/config.json").read_text())
        assert len(conf["rotation"]) == 9 and len(conf["translation"]) == 3
    fit = safe_pickle.load(raw / f"sequences/{TRAIN}/t0000.000/person/fit02/person_fit.pkl")  # numpy arrays only
    assert {k: v.shape for k, v in fit.items()} == {"pose": (156,), "betas": (10,), "trans": (3,)}
    j3d = json.loads((raw / f"sequences/{TRAIN}/t0000.000/person/person_J3d.json").read_text())
    assert len(j3d["body_joints3d"]) == 100
    image = cv2.imread(str(raw / f"sequences/{TRAIN}/t0000.000/k0.color.jpg"))
    assert image.shape == (480, 640, 3)


def test_cameras_are_the_json_files_in_mm_with_the_rational_model(raw):
    rng = np.random.default_rng(0)
    for seq, _, _, date in SEQUENCES[:2]:
        for k, cam in fixture_kinects(date).items():
            kin = kinect(raw, seq, k)
            conf = json.loads((raw / f"calibs/{date}/config/{k}/config.json").read_text())
            rot = np.array(conf["rotation"]).reshape(3, 3)
            np.testing.assert_allclose(kin.camera.R, rot.T)  # posepile: rotation^T is world -> camera
            np.testing.assert_allclose(kin.camera.optical_center, np.array(conf["translation"]) * 1000)
            assert not kin.camera.has_distortion and np.array_equal(kin.camera.world_up, [0, -1, 0])
            world_m = rng.uniform([-1.0, -1.2, 2.2], [1.0, 1.0, 3.8], size=(60, 3))
            intr = fixture_kinects("Date01")[k]
            want = project(world_m, {**cam, "K": intr["K"], "dist": intr["dist"]})
            np.testing.assert_allclose(kin.project_raw(world_m * 1000), want, atol=1e-4)
            # the rational distortion is not negligible: the undistorted (pinhole) camera differs by pixels
            assert np.abs(kin.camera.project(world_m * 1000) - want).max() > 2.0
    # Kinect 1 is the world (R = I, at the origin)
    kin = kinect(raw, TRAIN, 1)
    np.testing.assert_allclose(kin.camera.R, np.eye(3))
    np.testing.assert_allclose(kin.camera.optical_center, 0, atol=1e-9)


def test_joints_are_the_fit_posed_with_smpl_and_the_openpose_file_in_mm(raw, converted):
    insts, _ = converted
    models = {g: random_model(s) for g, s in MODEL_SEEDS.items()}
    genders = {name: g for name, _, g, _ in SEQUENCES}
    assert behave.JOINT_NAMES[23] == "pelv" and behave.JOINT_NAMES[-1] == "pelv_coco" and behave.N_JOINTS == 49
    for inst in insts:
        folder = Path(raw) / Path(inst.source).parent
        fit = safe_pickle.load(folder / "person/fit02/person_fit.pkl")
        smpl = forward(models[genders[inst.sequence]], *(fit[k].astype(np.float64) for k in ("pose", "betas",
                                                                                              "trans"))) * 1000
        wc = inst.world_coords
        np.testing.assert_allclose(wc[:24], smpl[[*range(1, 24), 0]], atol=1e-4)  # pelvis last (posepile)
        rows = np.array(json.loads((folder / "person/person_J3d.json").read_text())["body_joints3d"]).reshape(25, 4)
        op = np.where(rows[:, 3:] > 0, rows[:, :3] * 1000, np.nan)
        np.testing.assert_allclose(wc[24:], op[[*range(8), *range(9, 25), 8]], atol=1e-9, equal_nan=True)
        is_zero_frame = folder.name == frame_name(ZERO_SCORE[0])
        assert np.isnan(wc).any() == is_zero_frame and np.isnan(wc[J["lear_coco"]]).all() == is_zero_frame
        for a, b, lo, hi in (("lhip", "lkne", 330, 480), ("rkne", "rank", 330, 480), ("lsho", "lelb", 200, 330),
                             ("lsho", "rsho", 280, 420)):
            assert lo < np.linalg.norm(wc[J[a]] - wc[J[b]]) < hi, (a, b)  # mm, an adult's bones
        up = inst.camera.world_up
        assert 1200 < (wc[J["head"]] - wc[[J["lank"], J["rank"]]].mean(0)) @ up < 1700  # -y is up
        assert inst.body_model.model == "smpl" and inst.body_model.gender == genders[inst.sequence]
        np.testing.assert_allclose(inst.body_model.pose[:66], fit["pose"][:66], atol=1e-6)
        assert not inst.body_model.pose[66:].any()


def test_the_hand_pose_moves_no_smpl_joint(raw, broken):
    """SMPL-H's 90 hand values are dropped: SMPL's 24 joints are set by the root and 21 body joints only."""
    path = broken / f"sequences/{TRAIN}/t0000.000/person/fit02/person_fit.pkl"
    fit = pickle.loads(path.read_bytes())
    a = behave.instances(broken)[0].world_coords
    path.write_bytes(pickle.dumps({**fit, "pose": np.concatenate([fit["pose"][:66], np.zeros(90, np.float32)])}))
    np.testing.assert_allclose(behave.instances(broken)[0].world_coords, a, atol=1e-9)


def test_joints_project_onto_the_marks_of_the_undistorted_frames(raw, converted):
    insts, _ = converted
    frames = behave.frame_source(raw)
    errors, raw_errors = [], []
    for inst in insts:
        ((_, frame),) = list(frames(inst.source, [inst.frame_index]))
        assert frame.image.shape == (480, 640, 3)
        errors.extend(mark_errors(frame.image, inst.camera.project(inst.world_coords), radius=6, min_distance=12))
        # and the raw frame's marks sit at the distorted projection
        seq, k = inst.sequence, int(inst.camera_name[1:])
        image = cv2.imread(str(Path(raw) / inst.source))
        raw_errors.extend(mark_errors(image, kinect(raw, seq, k).project_raw(inst.world_coords), radius=6,
                                      min_distance=12))
    assert len(errors) > 40 and max(errors) < 1.0, (len(errors), max(errors))
    assert len(raw_errors) > 40 and max(raw_errors) < 1.0, (len(raw_errors), max(raw_errors))


def test_masks_are_the_release_masks_undistorted(raw, converted):
    insts, _ = converted
    frames = behave.frame_source(raw)
    for inst in insts:
        ((_, frame),) = list(frames(inst.source, [-1]))
        folder = Path(inst.source).parent
        if (inst.sequence, int(folder.name[1:5]), int(inst.camera_name[1:])) == MISSING_MASK:
            assert frame.masks == {}  # no mask file: the segment stage makes one
            continue
        mask = frame.masks[0]
        assert mask.dtype == bool and mask.shape == (480, 640)
        pts = np.round(inst.camera.project(inst.world_coords[:24])).astype(int)
        pts = pts[(pts >= 3).all(1) & (pts < [637, 477]).all(1)]
        assert len(pts) > 15 and mask[pts[:, 1], pts[:, 0]].all()  # every SMPL joint inside the person's mask
        assert 0.01 < mask.mean() < 0.2


def test_selection_boxes_and_what_is_left_out(raw, converted):
    insts, dropped = converted
    by_seq = {}
    for inst in insts:
        by_seq.setdefault(inst.sequence, set()).add((Path(inst.source).parent.name, inst.camera_name))
    kept = {TRAIN: [f for f in range(N_FRAMES) if f not in (REPEATED_FRAME, MISSING_FIT[1])],
            TEST: [f for f in range(N_FRAMES) if f != REPEATED_FRAME]}
    for seq, frames in kept.items():
        want = {(frame_name(f), f"k{k}") for f in frames for k in KINECTS} - (
            {(frame_name(MISSING_IMAGE[1]), f"k{MISSING_IMAGE[2]}")} if seq == MISSING_IMAGE[0] else set())
        assert by_seq[seq] == want
    assert UNSPLIT not in by_seq
    assert {i.split for i in insts if i.sequence == TRAIN} == {"train"}
    assert {i.split for i in insts if i.sequence == TEST} == {"test"}
    assert {(d.where, d.reason) for d in dropped} == {
        (f"sequences/{UNSPLIT}", behave.NOT_IN_SPLIT),
        (f"sequences/{TRAIN}/{frame_name(MISSING_FIT[1])}", behave.NO_FIT),
        (f"sequences/{TEST}/{frame_name(MISSING_IMAGE[1])}", f"Kinect {MISSING_IMAGE[2]}: {behave.NO_IMAGE}")}
    for inst in insts:
        assert inst.subject == inst.sequence.split("_")[1] and inst.frame_index == -1
        folder = Path(inst.source).parent
        no_mask = (inst.sequence, int(folder.name[1:5]), int(inst.camera_name[1:])) == MISSING_MASK
        assert inst.mask_source == (None if no_mask else f"{folder}/k{inst.camera_name[1:]}.person_mask.jpg")
        pts = inst.camera.project(inst.world_coords)
        lo, hi = np.nanmin(pts, 0), np.nanmax(pts, 0)
        c, half = (lo + hi) / 2, (hi - lo) * 1.05 / 2
        want_lo, want_hi = np.maximum(c - half, -0.5), np.minimum(c + half, [639.5, 479.5])
        np.testing.assert_allclose(inst.bbox, [*want_lo, *(want_hi - want_lo)], atol=1e-9)
    # the test split only, and no sampling: the repeated frame comes back
    test_only = behave.instances(raw, {"splits": ["test"], "adaptive_sampling_mm": 0})
    assert {i.sequence for i in test_only} == {TEST}
    assert len(test_only) == N_FRAMES * len(KINECTS) - 1


def test_joint_names_merge_with_surreal_and_humbi():
    assert behave.JOINT_NAMES[:24] == list(surreal.JOINT_INFO.names)
    assert behave.JOINT_NAMES[24:] == list(humbi.JOINT_INFO.names)


# ------------------------------------------------------------------------------------------- errors
def test_missing_body_model_is_a_params_error(raw, tmp_path):
    with pytest.raises(ParamsError, match="SMPL model") as e:
        behave.instances(raw, {"body_model_dir": str(tmp_path / "none")})
    assert e.value.where == "datasets.behave.body_model_dir"
    with pytest.raises(ParamsError) as e:
        behave.instances(raw, {"body_model_dir": ""})
    assert e.value.where == "datasets.behave.body_model_dir"


def test_missing_files_are_named(broken):
    (broken / "calibs/Date02/config/2/config.json").unlink()
    with pytest.raises(RawLayoutError, match="calibs/Date02/config/2/config.json"):
        behave.check_layout(broken)
    (broken / "split.json").unlink()
    with pytest.raises(RawLayoutError, match="split.json"):
        behave.check_layout(broken)


def test_a_hostile_fit_pickle_is_refused(broken):
    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo hacked",))

    path = broken / f"sequences/{TRAIN}/t0001.000/person/fit02/person_fit.pkl"
    path.write_bytes(pickle.dumps({"pose": Evil()}))
    with pytest.raises(RawFileError, match="refused to unpickle") as e:
        behave.instances(broken)
    assert e.value.path == path


def test_bad_files_are_named(broken):
    info = broken / f"sequences/{TEST}/info.json"
    info.write_text(json.dumps({"gender": "female", "kinects": [0, 1], "intrinsic": "../../calibs/intrinsics"}))
    with pytest.raises(RawFileError, match="no 'config'") as e:
        behave.check_layout(broken)
    assert e.value.path == info
    cal = broken / "calibs/intrinsics/1/calibration.json"
    data = json.loads(cal.read_text())
    del data["color"]["k5"]
    cal.write_text(json.dumps(data))
    with pytest.raises(RawFileError, match="'color' has no k5") as e:
        behave.instances(broken, {"splits": ["train"]})
    assert e.value.path == cal
    fit = broken / f"sequences/{TRAIN}/t0000.000/person/fit02/person_fit.pkl"
    fit.write_bytes(pickle.dumps({"pose": np.zeros(100, np.float32), "betas": np.zeros(10), "trans": np.zeros(3)}))
    data["color"]["k5"] = -2.4
    cal.write_text(json.dumps(data))
    with pytest.raises(RawFileError, match="'pose' has 100 values") as e:
        behave.instances(broken, {"splits": ["train"]})
    assert e.value.path == fit


def test_a_frame_of_another_size_than_its_calibration_is_named(broken):
    image = broken / f"sequences/{TRAIN}/t0000.000/k1.color.jpg"
    cv2.imwrite(str(image), np.zeros((240, 320, 3), np.uint8))
    frames = behave.frame_source(broken)
    with pytest.raises(RawFileError, match="is 320x240, its calibration.json says 640x480"):
        list(frames(f"sequences/{TRAIN}/t0000.000/k1.color.jpg", [-1]))


def test_detection_rule_is_posepiles():
    import dataclasses

    import yaml

    from conftest import REPO
    from posebank.core.settings import check_params
    from posebank.vision.detect import select_boxes

    checked = check_params(yaml.safe_load((REPO / "params.yaml").read_text()), source="params")
    dp = dataclasses.replace(checked.detect.for_dataset("behave"), backend="hog")  # any detector
    assert (dp.rule, dp.expansion, dp.min_match_iou, dp.max_area_ratio, dp.fallback) == ("match", 1.05, 0.5, None,
                                                                                          "projected")
    gt = np.array([100.0, 50.0, 100.0, 200.0])  # the converter's box: projected joints x 1.05, clipped
    close, far = [105.0, 55.0, 95.0, 205.0, 0.9], [150.0, 50.0, 100.0, 200.0, 0.95]
    ((box, src),) = select_boxes(gt[None], np.array([far, close]), dp)
    assert src == "detection" and np.array_equal(box, close[:4])  # IoU > 0.5 replaces the box
    ((box, src),) = select_boxes(gt[None], np.array([far]), dp)  # IoU 1/3: the converter's box stays
    assert src == "projected" and np.array_equal(box, gt)


def test_cache_crops_show_the_marks_and_carry_the_release_masks(raw, tmp_path):
    from posebank.core.store import Cache
    from posebank.pipeline.run import convert

    out = tmp_path / "behave"
    counts = convert("behave", raw, out, {"splits": ["train"]}, progress=False)
    assert counts == {"train": 9, "quarantined": 2}
    errors = []
    with Cache(out) as cache:
        assert list(cache.joint_info.names) == behave.JOINT_NAMES
        for i in range(len(cache)):
            ex = cache[i]
            assert not ex.camera.has_distortion
            mask = ex.decode_mask()  # the release's mask (undistorted, cropped): every SMPL joint inside it
            pts = np.round(ex.camera.project(ex.world_coords[:24])).astype(int)
            pts = pts[(pts >= 0).all(1) & (pts < ex.image_size).all(1)]
            assert len(pts) > 15 and mask[pts[:, 1], pts[:, 0]].mean() > 0.95
            errors.extend(mark_errors(ex.decode_image(), ex.camera.project(ex.world_coords), radius=6,
                                      min_distance=12))
    assert len(errors) > 20 and max(errors) < 1.0, (len(errors), max(errors))


def test_a_changed_calibration_rebuilds_the_frames_it_undistorts(raw, tmp_path):
    """The frames are undistorted with the calibration files, which the instances (pinhole cameras) do not show:
    the frames shards' digests cover them, so a change of only one Kinect's distortion coefficients rebuilds the
    frames shards of that Kinect, with other pixels, and leaves the others as they are."""
    from posebank.core.settings import PipelineParams
    from posebank.pipeline.layout import Layout
    from posebank.pipeline.run import run_stage

    raw = copy_raw(raw, tmp_path)
    params = {"datasets": {"behave": {"raw": str(raw), "family": "behave", "splits": ["train"]}},
              "pipeline": {"shard_frames": 2, "interim": str(tmp_path / "interim"), "cache": str(tmp_path / "cache"),
                           "reports": str(tmp_path / "reports")},
              "segment": {"backend": "none"}}
    layout = Layout.from_params("behave", PipelineParams.from_dict(params["pipeline"]))
    run_stage("convert", "behave", params)
    run_stage("frames", "behave", params)
    folder = layout.shard_folder("frames")
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.glob("*.h5")}
    info = behave.read_info(raw, raw / "sequences" / TRAIN)
    calib = info.intrinsic / "1" / "calibration.json"
    assert behave.frame_source_files(raw, f"sequences/{TRAIN}/t0001.000/k1.color.jpg") == [
        calib.relative_to(raw).as_posix(), (info.config / "1" / "config.json").relative_to(raw).as_posix()]

    data = json.loads(calib.read_text())
    data["color"]["k1"] *= 0.5  # Kinect 1's k1 only: K, R, t, hence the instances, are unchanged
    calib.write_text(json.dumps(data))
    run_stage("convert", "behave", params)
    run_stage("frames", "behave", params)
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.glob("*.h5")}
    assert set(after) == set(before) and len(after) >= 2
    rebuilt = {n for n in after if after[n][0] != before[n][0]}
    assert rebuilt and rebuilt != set(after), (sorted(rebuilt), sorted(after))
    assert all(after[n][1] != before[n][1] for n in rebuilt)
