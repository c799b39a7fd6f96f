"""BMLmovi: what is specific to it (the contract is checked for every dataset in test_conformance.py)."""

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

from conftest import sample
from helpers import copy_raw
from marks import mark_errors
from posebank.core.camera import Camera
from posebank.core.errors import ParamsError
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError
from posebank.datasets import bml_movi as bm
from posebank.datasets.bml_movi.fixture import (
    EMPTY_FRAME_46,
    GAP_FRAME,
    N_VIDEO_FRAMES,
    PG_CALIBRATION,
    REPEATED_FRAME,
    VIDEOS,
    fixture_mocap,
    toolbox_projection,
)
from posebank.datasets.sampling import MISSING_POSE, AdaptivePoseSampler2
from posebank.pipeline.run import convert

SEED = 3
VIRTUAL = slice(bm.N_MARKERS, None)
J = {n: i for i, n in enumerate(bm.JOINT_INFO.names)}


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return bm.make_fixture(tmp_path_factory.mktemp("bml_movi_raw"), seed=SEED)


@pytest.fixture(scope="module")
def converted(raw):
    dropped = []
    return bm.instances(raw, None, dropped), dropped


def test_fixture_files_have_the_release_formats(raw):
    # posepile's reader: scipy.io.loadmat(struct_as_record=False, squeeze_me=True), then .move(.markerLocation)
    f1 = scipy.io.loadmat(raw / "F_Subjects_1_45/F_v3d_Subject_1.mat", struct_as_record=False, squeeze_me=True)
    move = f1["Subject_1_F"].move
    assert move.markerLocation.shape == (4 * (N_VIDEO_FRAMES - 1) + 2, 87, 3)
    np.testing.assert_array_equal(move.virtualMarkerLocation, move.markerLocation[:, 67:])
    s1 = scipy.io.loadmat(raw / "S/S_v3d_Subject_1.mat", struct_as_record=False, squeeze_me=True)
    assert [m.markerLocation.shape[1:] for m in s1["Subject_1_S"].move] == [(17, 3), (17, 3)]
    assert (raw / "F_Subjects_46_90/F_v3d_Subject_46.mat").is_file()
    for view in ("PG1", "PG2"):
        with np.load(raw / f"Calib/Extrinsics_{view}.npz", allow_pickle=False) as z:
            assert sorted(z.files) == ["rotationMatrix", "translationVector"]
        with np.load(raw / f"Calib/cameraParams_{view}.npz", allow_pickle=False) as z:
            assert sorted(z.files) == ["IntrinsicMatrix", "RadialDistortion"] and z["RadialDistortion"].shape == (2,)
    for (round_, subject), views in VIDEOS.items():
        for view, n in views.items():
            n_read, fps, size = bm.video_info(raw / bm.video_name(round_, view, subject))
            assert (n_read, fps, size) == (n, 30.0, (1920, 1080) if view.startswith("CP") else (800, 600))


def test_camera_is_matlabs_worldtoimage(raw):
    """posebank's camera (R = rotationMatrixᵀ, K = IntrinsicMatrixᵀ, OpenCV k1 k2) projects as MATLAB's formula."""
    rng = np.random.default_rng(0)
    points = np.column_stack([rng.uniform(-800, 1200, 200), rng.uniform(-800, 900, 200), rng.uniform(0, 1900, 200)])
    for view in ("PG1", "PG2"):
        cam = bm.read_camera(raw, view)
        np.testing.assert_allclose(cam.project(points), toolbox_projection(view, points), atol=1e-4)
        rvec = cv2.Rodrigues(cam.R)[0]
        cv, _ = cv2.projectPoints(points, rvec, -cam.R @ cam.t, cam.intrinsic_matrix, cam.distortion_coeffs)
        np.testing.assert_allclose(cam.project(points), cv[:, 0], atol=1e-4)


def test_joints_project_onto_the_video_marks_within_a_pixel(raw, converted):
    instances, _ = converted
    errors = []
    by_video = {}
    for inst in instances:
        by_video.setdefault(inst.source, []).append(inst)
        # the converted camera and joints give the toolbox's projection of the file's rows
        np.testing.assert_allclose(inst.camera.project(inst.world_coords[VIRTUAL]),
                                   toolbox_projection(inst.camera_name, inst.world_coords[VIRTUAL]), atol=1e-4)
    from posebank.imaging.video import read_video_frames

    for source, items in by_video.items():
        frames = dict(read_video_frames(raw / source, [i.frame_index for i in items]))
        for inst in items:
            pts = inst.camera.project(inst.world_coords[VIRTUAL])
            errors.extend(mark_errors(frames[inst.frame_index], pts, radius=8, min_distance=18))
    assert len(errors) > 60 and max(errors) < 1.0, (len(errors), max(errors))


def test_cache_crops_show_the_marks(raw, tmp_path):
    out = tmp_path / "bml_movi"
    counts = convert("bml_movi", raw, out, {"rounds": ["F"], "views": ["PG2"]}, progress=False)
    assert counts == {"train": N_VIDEO_FRAMES - 1, "quarantined": 1}
    errors = []
    with Cache(out) as cache:
        assert cache.joint_info.names == bm.JOINT_INFO.names
        for i in range(len(cache)):
            ex = cache[i]
            errors.extend(mark_errors(ex.decode_image(), ex.camera.project(ex.world_coords[VIRTUAL]), radius=5,
                                      min_distance=14))
    assert len(errors) > 20 and max(errors) < 1.0, (len(errors), max(errors))


def test_units_are_mm_and_world_up_is_z(converted):
    instances, _ = converted
    for inst in instances:
        w = inst.world_coords
        if not np.isfinite(w[J["lkne"]]).all():  # the S rounds fill 15 of the 87 slots
            continue
        assert 380 < np.linalg.norm(w[J["lkne"]] - w[J["lank"]]) < 480  # shin
        assert 350 < np.linalg.norm(w[J["rhip"]] - w[J["rkne"]]) < 500  # thigh
        assert 1400 < w[J["head"], 2] - w[J["lank"], 2] < 1700  # standing, along +z
        assert inst.camera.world_up == pytest.approx((0, 0, 1))
        assert inst.camera.R[1] @ [0, 0, 1] < -0.95  # image down is world down


def test_selection_follows_posepile(raw, converted):
    instances, dropped = converted
    frames = {}
    for inst in instances:
        frames.setdefault(inst.source, []).append(inst.frame_index)
        assert inst.split == "train" and inst.camera_name in ("PG1", "PG2")
    kept = [i for i in range(N_VIDEO_FRAMES) if i != REPEATED_FRAME]  # the repeated pose is not kept
    assert frames == {
        "F_PG1_Subject_1_L.avi": kept, "F_PG2_Subject_1_L.avi": kept,  # the 6th PG2 frame is past the mocap
        "S1_PG1_Subject_1_L.avi": [0, 1, 3], "S2_PG2_Subject_1_L.avi": [0, 1, 3],
        "F_PG1_Subject_46_L.avi": [1, 3]}  # frame 0: every point zero
    assert [(d.where, d.reason, d.count) for d in dropped] == [
        ("F_PG2_Subject_1_L.avi#5", bm.PAST_MOCAP_END, 1),
        (f"F_PG1_Subject_46_L.avi#{EMPTY_FRAME_46}", MISSING_POSE, 1)]
    # the values: mocap row 4 i of the file; a gap (zeros) is missing; negative coordinates are kept
    rows = fixture_mocap(SEED, "F", 1)
    for inst in (i for i in instances if i.source == "F_PG1_Subject_1_L.avi"):
        expected = rows[4 * inst.frame_index].copy()
        if inst.frame_index == GAP_FRAME:
            assert np.isnan(inst.world_coords[J["lfin"]]).all()
            expected[J["lfin"]] = np.nan
        np.testing.assert_array_equal(inst.world_coords, expected)
    assert any((i.world_coords[:, :2] < 0).any() for i in instances)
    # S rounds: posepile's 15 slots of the 17 markers, the others missing
    s2 = fixture_mocap(SEED, "S2", 1)
    for inst in (i for i in instances if i.source.startswith("S2_")):
        finite = np.flatnonzero(np.isfinite(inst.world_coords).all(axis=1))
        assert tuple(finite) == bm.S_SLOTS
        np.testing.assert_array_equal(inst.world_coords[finite], s2[4 * inst.frame_index, finite])
        assert inst.sequence == "S2_Subject_1" and inst.subject == "Subject_1"
    # the box: the projected points' box x 1.05
    inst = instances[0]
    pts = inst.camera.project(inst.world_coords)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    np.testing.assert_allclose(inst.bbox, [*((lo + hi) / 2 - (hi - lo) * 1.05 / 2), *((hi - lo) * 1.05)])


def test_mocap_is_interpolated_between_rows():
    coords = np.arange(10 * 87 * 3, dtype=float).reshape(10, 87, 3)
    poses = bm.video_poses(coords, n_frames=100, fps=25.0)
    # frame i is row i / 25 x 120 = 4.8 i; the last usable frame has row < 9
    assert len(poses) == 2
    np.testing.assert_allclose(poses[1], 0.2 * coords[4] + 0.8 * coords[5])
    with_gap = coords.copy()
    with_gap[5, 3] = np.nan
    assert np.isnan(bm.video_poses(with_gap, 2, 25.0)[1, 3]).all()
    assert np.isnan(bm.video_poses(coords, 2, 30.0, offset_s=0.02)[0]).all()  # before the mocap starts


def test_sampler_compares_with_the_buffer():
    def run(buffer_size):
        s = AdaptivePoseSampler2(100, buffer_size)
        poses = [np.zeros((4, 3)), np.full((4, 3), 50.0), np.tile([150.0, 0, 0], (4, 1)), np.tile([10.0, 0, 0], (4, 1))]
        return [s.should_keep(p) for p in poses]

    # the last pose moved 140 mm from the last kept one but only 10 mm from the one before: left out with a buffer
    assert run(3) == [True, False, True, False]
    assert run(1) == [True, False, True, True]
    s = AdaptivePoseSampler2(100, 3)
    assert s.should_keep(np.where(np.arange(4)[:, None] < 2, 0.0, np.nan))
    assert s.should_keep(np.zeros((4, 3)))  # a joint valid now was missing in the last kept pose


def test_real_calibration_files_read_as_the_release(tmp_path):
    root = tmp_path / "raw"
    (root / "Calib").mkdir(parents=True)
    for name in ("Extrinsics_PG1.npz", "Extrinsics_PG2.npz", "cameraParams_PG1.npz", "cameraParams_PG2.npz"):
        shutil.copy(sample(f"bml_movi/{name}"), root / "Calib" / name)
    cams = {}
    for view in ("PG1", "PG2"):
        cam = bm.read_camera(root, view)
        cams[view] = cam
        ext = np.load(sample(f"bml_movi/Extrinsics_{view}.npz"), allow_pickle=False)
        intr = np.load(sample(f"bml_movi/cameraParams_{view}.npz"), allow_pickle=False)
        np.testing.assert_array_equal(cam.R, ext["rotationMatrix"].T)
        np.testing.assert_allclose(cam.t, -ext["rotationMatrix"] @ ext["translationVector"])
        np.testing.assert_array_equal(cam.intrinsic_matrix, intr["IntrinsicMatrix"].T)
        np.testing.assert_array_equal(cam.distortion_coeffs, [*intr["RadialDistortion"], 0, 0, 0])
        # the MATLAB-saved extrinsics are the same numbers
        mat = scipy.io.loadmat(sample(f"bml_movi/Extrinsics_{view}.mat"))
        np.testing.assert_array_equal(mat["rotationMatrix"], ext["rotationMatrix"])
        np.testing.assert_array_equal(mat["translationVector"].ravel(), ext["translationVector"])
        # the fixture writes the release's values
        np.testing.assert_allclose(ext["rotationMatrix"], PG_CALIBRATION[view]["rotationMatrix"], atol=1e-8)
        np.testing.assert_allclose(intr["IntrinsicMatrix"], PG_CALIBRATION[view]["IntrinsicMatrix"], atol=1e-8)
        # 800 x 600 frames, z up, cameras about 1.35 m high, 4-5 m away, hardly rolled
        k = cam.intrinsic_matrix
        assert 350 < k[0, 2] < 450 and 250 < k[1, 2] < 350 and 950 < k[0, 0] < 1000
        assert cam.R[1] @ [0, 0, 1] < -0.95 and 1300 < cam.t[2] < 1400
        assert bm.camera_roll_degrees(cam) < 2
    assert cams["PG1"].t[0] == pytest.approx(4927.29, abs=0.01) and cams["PG2"].t[1] == pytest.approx(-3850.48,
                                                                                                       abs=0.01)
    # both optical axes pass within 0.5 m of each other, at waist-to-chest height near the world origin
    c1, d1, c2, d2 = cams["PG1"].t, cams["PG1"].R[2], cams["PG2"].t, cams["PG2"].R[2]
    s, u = np.linalg.lstsq(np.column_stack([d1, -d2]), c2 - c1, rcond=None)[0]
    p1, p2 = c1 + s * d1, c2 + u * d2
    assert np.linalg.norm(p1 - p2) < 500 and 500 < (p1[2] + p2[2]) / 2 < 1200
    assert np.linalg.norm(((p1 + p2) / 2)[:2]) < 600


def test_uncalibrated_views_and_bad_params_are_named():
    with pytest.raises(ParamsError, match="CP1 has no calibration") as e:
        bm.check_params({"views": ["PG1", "CP1"]})
    assert e.value.where == "datasets.bml_movi.views"
    for key, value in (("subjects", [0]), ("rounds", ["F", "F"]), ("views", []), ("max_roll_deg", 0.0),
                       ("sampler_buffer", 0), ("box_expansion", 0.0), ("adaptive_sampling_mm", -1.0)):
        with pytest.raises(ParamsError) as e:
            bm.check_params({key: value})
        assert e.value.where == f"datasets.bml_movi.{key}"


def test_roll_and_subject_selection(raw):
    dropped = []
    only = bm.instances(raw, {"subjects": [46]}, dropped)
    assert {i.subject for i in only} == {"Subject_46"}
    # PG1 rolls 0.86 deg, PG2 0.77 deg: a limit between them leaves PG1's videos out, recorded
    dropped = []
    kept = bm.instances(raw, {"max_roll_deg": 0.8}, dropped)
    assert {i.camera_name for i in kept} == {"PG2"}
    assert {d.where for d in dropped if d.reason == bm.ROLLED} == {
        "F_PG1_Subject_1_L.avi", "S1_PG1_Subject_1_L.avi", "F_PG1_Subject_46_L.avi"}
    rolled = Camera(intrinsic_matrix=np.eye(3), R=cv2.Rodrigues(np.array([0.0, 0.0, np.radians(10)]))[0]
                    @ np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]), t=np.zeros(3), world_up=(0, 0, 1))
    assert bm.camera_roll_degrees(rolled) == pytest.approx(10, abs=1e-6)


def test_missing_and_bad_files_are_named(raw, tmp_path):
    broken = copy_raw(raw, tmp_path)
    (broken / "Calib/cameraParams_PG2.npz").unlink()
    with pytest.raises(RawLayoutError, match=r"missing Calib/cameraParams_PG2\.npz"):
        bm.instances(broken)
    np.savez(broken / "Calib/cameraParams_PG2.npz", IntrinsicMatrix=np.array([object()]),
             RadialDistortion=np.zeros(2))
    with pytest.raises(RawFileError, match=r"cameraParams_PG2\.npz: unreadable camera parameters file"):
        bm.instances(broken)  # object arrays need pickle, which is never allowed
    np.savez(broken / "Calib/cameraParams_PG2.npz", IntrinsicMatrix=np.eye(3))
    with pytest.raises(RawFileError, match=r"no 'RadialDistortion' array"):
        bm.instances(broken)
    shutil.copy(raw / "Calib/cameraParams_PG2.npz", broken / "Calib/cameraParams_PG2.npz")
    (broken / "S/S_v3d_Subject_1.mat").unlink()
    with pytest.raises(RawLayoutError, match=r"missing S/S_v3d_Subject_1\.mat"):
        bm.instances(broken)
    scipy.io.savemat(broken / "S/S_v3d_Subject_1.mat", {"Subject_1_S": {"move": np.zeros((3, 87, 3))}})
    with pytest.raises(RawFileError, match=r"S_v3d_Subject_1\.mat: Subject_1_S\.move"):
        bm.instances(broken)
    (broken / "S/S_v3d_Subject_1.mat").write_bytes(b"not a mat file")
    with pytest.raises(RawFileError, match=r"S_v3d_Subject_1\.mat: not a MATLAB file"):
        bm.instances(broken)
