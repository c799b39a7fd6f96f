"""MADS: the Bouguet-toolbox calibration, GTpose2 (19 or 15 joints), posepile's selection and box rule."""

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

from helpers import assert_no_output, copy_raw
from marks import mark_errors
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError, mads
from posebank.datasets.frames import file_frame_source
from posebank.datasets.mads.fixture import (
    EMPTY_FRAME,
    EXTRA_CELLS,
    FRAME_SIZE,
    REPEATED_FRAME,
    SEQUENCES,
    fixture_poses,
    toolbox_projection,
)
from posebank.datasets.sampling import ValidatingPoseSampler
from posebank.pipeline.run import convert

SEED = 3
N_FRAMES = 5
HIPHOP = "multi_view_data/HipHop/HipHop_HipHop1"
KATA = "multi_view_data/Kata/Kata_Kata1"


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return mads.make_fixture(tmp_path_factory.mktemp("mads_raw"), seed=SEED, n_frames=N_FRAMES)


@pytest.fixture(scope="module")
def converted(raw):
    dropped = []
    return mads.instances(raw, None, dropped), dropped


@pytest.fixture
def broken(raw, tmp_path) -> Path:
    return copy_raw(raw, tmp_path)


def test_fixture_files_have_the_release_formats(raw):
    for (action, name), n_joints in SEQUENCES.items():
        gt = scipy.io.loadmat(str(raw / f"multi_view_data/{action}/{name}_GT.mat"))["GTpose2"]
        assert gt.dtype == object and gt.shape == (1, N_FRAMES + EXTRA_CELLS.get((action, name), 0))
        assert {cell.shape for cell in gt[0]} == {(n_joints, 3)} and np.isnan(gt[0, EMPTY_FRAME]).all()
        for c in mads.CAMERAS:
            video = f"multi_view_data/{action}/{name}_C{c}.avi"
            assert int(str(raw / video)[-5]) == c  # posepile's camera digit
            assert mads.gt_relpath(video) == str(Path(video).parent / f"{name}_GT.mat")  # video_path[:-6] + 'GT.mat'
            cap = cv2.VideoCapture(str(raw / video))
            assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == FRAME_SIZE
            assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == N_FRAMES
            cap.release()
            cal = scipy.io.loadmat(str(raw / f"multi_view_data/{action}/Calib_Cam{c}.mat"))
            assert {"om_ext", "T_ext", "KK", "kc", "fc", "cc", "alpha_c"} <= set(cal)
            assert cal["kc"].shape == (5, 1) and cal["om_ext"].shape == (3, 1) and cal["KK"].shape == (3, 3)


def test_cameras_project_as_the_bouguet_toolbox_and_opencv(raw):
    rng = np.random.default_rng(0)
    for action in ("HipHop", "Kata"):
        for c in mads.CAMERAS:
            path = raw / f"multi_view_data/{action}/Calib_Cam{c}.mat"
            cal = scipy.io.loadmat(str(path))
            cam = mads.read_camera(path)
            np.testing.assert_array_equal(cam.distortion_coeffs, cal["kc"].ravel())  # k1 k2 p1 p2 k3, as OpenCV
            assert cam.distortion_model == "opencv" and np.all(cal["kc"] != 0)
            np.testing.assert_array_equal(cam.intrinsic_matrix, cal["KK"])
            rot = cv2.Rodrigues(cal["om_ext"])[0]
            np.testing.assert_allclose(cam.R, rot, atol=1e-12)
            np.testing.assert_allclose(cam.optical_center, -rot.T @ cal["T_ext"].ravel(), atol=1e-9)
            np.testing.assert_array_equal(cam.world_up, [0, 1, 0])
            # world points all over the view (normalised coordinates up to the corners), 2-6 m away
            depth = rng.uniform(2000, 6000, size=(80, 1))
            in_cam = np.concatenate([rng.uniform([-0.5, -0.38], [0.5, 0.38], size=(80, 2)) * depth, depth], axis=1)
            world = (in_cam - cal["T_ext"].ravel()) @ rot
            ours = cam.project(world)
            np.testing.assert_allclose(ours, toolbox_projection(cal, world), atol=1e-6)
            opencv = cv2.projectPoints(world.reshape(-1, 1, 3), cal["om_ext"], cal["T_ext"], cal["KK"],
                                       cal["kc"])[0].reshape(-1, 2)
            np.testing.assert_allclose(ours, opencv, atol=1e-6)
            # the order matters: p1 and p2 swapped, or k2 read as p1, the points land elsewhere
            swapped = dict(cal, kc=cal["kc"][[0, 1, 3, 2, 4]])
            assert np.abs(toolbox_projection(swapped, world) - ours).max() > 0.3
            shifted = dict(cal, kc=np.roll(cal["kc"], 1))
            assert np.abs(toolbox_projection(shifted, world) - ours).max() > 10


def test_poses_are_the_files_millimetres_and_y_is_up(raw, converted):
    insts, _ = converted
    poses = fixture_poses(SEED, N_FRAMES)
    gt = {name: scipy.io.loadmat(str(raw / f"multi_view_data/{action}/{name}_GT.mat"))["GTpose2"][0]
          for action, name in SEQUENCES}
    assert {i.sequence for i in insts} == {"HipHop_HipHop1", "Kata_Kata1"}
    j = {n: k for k, n in enumerate(mads.JOINT_NAMES)}
    for inst in insts:
        wc = inst.world_coords
        cell = gt[inst.sequence][inst.frame_index]
        if inst.sequence == "Kata_Kata1":  # 15 joints, in their slots of the 19 (posepile's indices15)
            np.testing.assert_array_equal(wc[mads.INDICES15], cell)
            assert np.isnan(wc[[j["ltoe"], j["rtoe"], j["lhan"], j["rhan"]]]).all()
        else:
            np.testing.assert_array_equal(wc, cell)
        np.testing.assert_allclose(wc, poses[inst.activity, inst.sequence][inst.frame_index], equal_nan=True)
        for a, b, lo, hi in (("lhip", "lkne", 380, 460), ("rkne", "rank", 380, 460), ("lsho", "lelb", 240, 310),
                             ("relb", "rwri", 220, 290), ("pelv", "neck", 500, 600)):
            assert lo < np.linalg.norm(wc[j[a]] - wc[j[b]]) < hi, (a, b)  # mm, an adult's bones
        up = inst.camera.world_up
        assert 1450 < (wc[j["head"]] - wc[[j["lank"], j["rank"]]].mean(0)) @ up < 1750
        assert 1900 < inst.camera.optical_center @ up < 2700  # the cameras hang 2.0-2.6 m above the floor


def test_joints_project_onto_the_marks(raw, converted):
    insts, _ = converted
    frames = file_frame_source(raw)
    errors = []
    for source in sorted({i.source for i in insts}):
        group = [i for i in insts if i.source == source]
        images = dict(frames(source, [i.frame_index for i in group]))
        for inst in group:
            image = images[inst.frame_index].image
            assert image.shape == (FRAME_SIZE[1], FRAME_SIZE[0], 3)
            errors.extend(mark_errors(image, inst.camera.project(inst.world_coords), radius=7, min_distance=16))
    assert len(errors) > 100 and max(errors) < 1.0, (len(errors), max(errors))


def test_selection_drops_and_sampling(raw, converted):
    insts, dropped = converted
    kept = [f for f in range(N_FRAMES) if f not in (EMPTY_FRAME, REPEATED_FRAME)]
    assert [(i.source, i.frame_index) for i in insts] == [
        (f"{seq}_C{c}.avi", f) for seq in (HIPHOP, KATA) for c in mads.CAMERAS for f in kept]
    assert {i.split for i in insts} == {"train"} and {i.camera_name for i in insts} == {"C0", "C1", "C2"}
    assert all(i.bbox is None for i in insts)  # the detect stage's box (detect.per_dataset.mads)
    assert sorted((d.where, d.reason) for d in dropped) == sorted(
        [(f"{seq}_C{c}.avi#{EMPTY_FRAME}", "every joint is missing (NaN) in the annotation")
         for seq in (HIPHOP, KATA) for c in mads.CAMERAS]
        + [(f"{KATA}_C{c}.avi#{N_FRAMES}", mads.PAST_VIDEO_END) for c in mads.CAMERAS])
    # no sampling: the repeated pose too; one action, one camera
    every = mads.instances(raw, {"adaptive_sampling_mm": 0, "actions": ["Kata"], "cameras": [2]})
    assert [(i.source, i.frame_index) for i in every] == [(f"{KATA}_C2.avi", f) for f in range(1, N_FRAMES)]


def test_pose_sampler_is_posepiles_with_the_validity_check():
    s = ValidatingPoseSampler(100)
    pose = np.zeros((19, 3))
    moved_a_bit = pose + [0, 50, 0]
    partial = moved_a_bit.copy()
    partial[5] = np.nan
    back = partial.copy()
    back[5] = moved_a_bit[5]  # joint 5 valid again, but the last kept pose had it: only motion counts
    far = back.copy()
    far[0, 0] += 150
    assert [s.should_keep(p) for p in (pose, moved_a_bit, partial, back, far)] == [True, False, False, False, True]
    s = ValidatingPoseSampler(100)
    assert s.should_keep(pose) and not s.should_keep(np.full((19, 3), np.nan))
    nan_kept = pose.copy()
    nan_kept[3] = np.nan
    s = ValidatingPoseSampler(100)
    # a kept pose with a missing joint: the joint reappearing keeps the next pose, even without motion
    assert [s.should_keep(p) for p in (nan_kept, pose, pose)] == [True, True, False]


def test_detection_rule_is_posepiles():
    import yaml

    from conftest import REPO
    from posebank.core.settings import check_params
    from posebank.imaging.crop import box_from_points
    from posebank.vision.detect import select_boxes

    checked = check_params(yaml.safe_load((REPO / "params.yaml").read_text()), source="params")
    dp = dataclasses.replace(checked.detect.for_dataset("mads"), backend="hog")  # any detector
    assert (dp.rule, dp.expansion, dp.max_area_ratio, dp.fallback) == ("match", 1.2, None, "projected")
    points = np.array([[500.0, 300.0], [540.0, 420.0], [520.0, 360.0]])
    gt = box_from_points(points, dp.expansion)
    np.testing.assert_allclose(gt, [496.0, 288.0, 48.0, 144.0])  # boxlib.expand(bb_of_points, 1.2)
    dets = np.array([[300.0, 280.0, 50.0, 150.0, 0.95],  # elsewhere
                     [490.0, 290.0, 200.0, 400.0, 0.6],  # overlapping, four times too big: still the best IoU
                     [900.0, 100.0, 40.0, 120.0, 0.9]])
    ((box, src),) = select_boxes(gt[None], dets, dp)
    assert src == "detection" and np.array_equal(box, dets[1, :4])
    # no detection touches the person: the projected box x 1.2
    ((box, src),) = select_boxes(gt[None], dets[[0, 2]], dp)
    assert src == "projected" and np.array_equal(box, gt)


def test_cache_crops_show_the_marks(raw, tmp_path):
    out = tmp_path / "mads"
    counts = convert("mads", raw, out, {"cameras": [1]}, progress=False)
    assert counts == {"train": 2 * (N_FRAMES - 2), "quarantined": 3}
    errors = []
    with Cache(out) as cache:
        assert cache.joint_info.names == mads.JOINT_INFO.names
        for i in range(len(cache)):
            ex = cache[i]
            errors.extend(mark_errors(ex.decode_image(), ex.camera.project(ex.world_coords), radius=7,
                                      min_distance=16))
    assert len(errors) > 30 and max(errors) < 1.0, (len(errors), max(errors))


def test_missing_and_bad_files_are_named(broken, tmp_path):
    gt = broken / f"{KATA}_GT.mat"
    good_gt = gt.read_bytes()
    cells = np.empty((1, 2), object)
    cells[0, 0], cells[0, 1] = np.zeros((15, 3)), np.zeros((17, 3))
    scipy.io.savemat(str(gt), {"GTpose2": cells})
    with pytest.raises(RawFileError, match=r"Kata_Kata1_GT\.mat: GTpose2 cell 2 has shape \(17, 3\), expected 19 x 3 "
                                           r"or 15 x 3"):
        mads.instances(broken)
    scipy.io.savemat(str(gt), {"GTpose": cells})
    with pytest.raises(RawFileError, match=r"Kata_Kata1_GT\.mat: no 'GTpose2' variable \(has \['GTpose'\]\)"):
        mads.instances(broken)
    gt.write_bytes(good_gt)
    cal = broken / "multi_view_data/HipHop/Calib_Cam1.mat"
    fields = scipy.io.loadmat(str(cal))
    scipy.io.savemat(str(cal), {k: v for k, v in fields.items() if k != "kc" and not k.startswith("__")})
    with pytest.raises(RawFileError, match=r"Calib_Cam1\.mat: no 'kc' variable"):
        mads.instances(broken)
    scipy.io.savemat(str(cal), {**{k: v for k, v in fields.items() if not k.startswith("__")},
                                "KK": np.zeros((3, 3))})
    with pytest.raises(RawFileError, match=r"Calib_Cam1\.mat: camera has a non-positive focal length"):
        mads.instances(broken)
    cal.write_bytes(b"MATLAB 5.0 MAT-file" + b"\0" * 20)
    with pytest.raises(RawFileError, match=r"Calib_Cam1\.mat: .*not a MATLAB file"):
        mads.instances(broken)
    out = tmp_path / "out" / "mads"
    cal.unlink()
    (broken / f"{KATA}_GT.mat").unlink()
    with pytest.raises(RawLayoutError) as e:
        convert("mads", broken, out, {}, progress=False)
    for rel in ("multi_view_data/HipHop/Calib_Cam1.mat", "multi_view_data/Kata/Kata_Kata1_GT.mat"):
        assert rel in str(e.value)
    assert_no_output(out)
    with pytest.raises(RawLayoutError, match=r"multi_view_data/Jazz/"):
        mads.check_layout(broken, {"actions": ["Jazz"]})
    for p in sorted((broken / "multi_view_data").rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    with pytest.raises(RawLayoutError, match=r"multi_view_data/"):
        mads.check_layout(broken)
