"""MPI-INF-3DHP test set (tdhp_test): what is specific to it (the contract is checked for every dataset in
test_conformance.py)."""

import logging
import pickle
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from conftest import sample
from helpers import assert_no_output, copy_raw
from marks import mark_errors
from posebank.core.errors import ParamsError
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError
from posebank.datasets.base import Dropped
from posebank.datasets.matlab import load_mat
from posebank.datasets.sampling import MISSING_POSE
from posebank.datasets.tdhp import common as tdhp
from posebank.datasets.tdhp import test as tdhp_test
from posebank.datasets.tdhp import testset_fixture
from posebank.imaging.video import read_image
from posebank.pipeline.run import convert

# each kind of sequence: TS1 (studio), TS2 (its own intrinsics), TS3 (one extra image), TS5 (outdoor camera)
SUBJECTS = [1, 2, 3, 5]
N_FRAMES = 12
PARAMS = {"test_subjects": SUBJECTS}


@pytest.fixture(scope="module")
def ts_raw(tmp_path_factory) -> Path:
    return tdhp_test.make_fixture(tmp_path_factory.mktemp("tdhp_test_raw"), seed=2, subjects=SUBJECTS,
                                  n_frames=N_FRAMES)


@pytest.fixture(scope="module")
def ts_cache(ts_raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tdhp_test_cache") / "tdhp_test"
    convert("tdhp_test", ts_raw, out, PARAMS, progress=False)
    return out


def test_cameras_follow_the_calibration_files():
    studio, outdoor = tdhp_test.calibration_camera(1), tdhp_test.calibration_camera(6)
    assert tdhp_test.calibration_camera(4).allclose(studio) and tdhp_test.calibration_camera(5).allclose(outdoor)
    k = studio.intrinsic_matrix
    # focal 7.32506 mm on a 10 mm, 2048 px sensor; centre offset (-0.0322884, 0.0929296) mm
    assert k[0, 0] == pytest.approx(1500.1723, abs=1e-3) and k[1, 1] == pytest.approx(1500.8324, abs=1e-3)
    assert k[0, 2] == pytest.approx(1017.3873, abs=1e-3) and k[1, 2] == pytest.approx(1043.0320, abs=1e-3)
    assert not studio.has_distortion
    k = outdoor.intrinsic_matrix
    assert k[0, 0] == pytest.approx(1683.9835, abs=1e-3) and k[1, 1] == pytest.approx(1672.5930, abs=1e-3)
    assert k[0, 2] == pytest.approx(939.8575, abs=1e-3) and k[1, 2] == pytest.approx(560.1407, abs=1e-3)
    np.testing.assert_allclose(outdoor.distortion_coeffs, [-0.276859611, 0.131125256, -0.000360494,
                                                           -0.001149441, -0.049318332])
    for cam, origin in ((studio, [3427.28, 1387.86, 309.42]), (outdoor, [-2104.3074, 1038.6707, -4596.6367])):
        np.testing.assert_allclose(cam.t, origin)
        np.testing.assert_allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-5)
        assert np.linalg.det(cam.R) > 0
        assert cam.R[1] @ [0, 1, 0] < -0.97  # image y points down, world y up
    assert tdhp_test.sequence_image_size(2) == (2048, 2048) and tdhp_test.sequence_image_size(6) == (1920, 1080)
    assert [tdhp_test.scene(i) for i in range(1, 7)] == ["green-screen"] * 2 + ["no-green-screen"] * 2 + ["outdoor"] * 2


def test_annotation_file_is_matlab_73(ts_raw):
    path = ts_raw / "TS1/annot_data.mat"
    assert path.read_bytes()[:19] == b"MATLAB 7.3 MAT-file"
    with pytest.raises(NotImplementedError):  # scipy recognises a v7.3 file and refers to HDF5 readers
        scipy.io.loadmat(str(path))
    with h5py.File(path, "r") as f:
        assert f["annot2"].shape == (N_FRAMES, 1, 17, 2) and f["annot3"].shape == (N_FRAMES, 1, 17, 3)
        assert f["univ_annot3"].shape == (N_FRAMES, 1, 17, 3) and f["valid_frame"].shape == (N_FRAMES, 1)
        assert f["activity_annotation"].shape == (N_FRAMES, 1) and f["annot3"].attrs["MATLAB_class"] == b"double"
    mat = load_mat(path)  # in MATLAB's own shapes
    assert mat["annot2"].shape == (2, 17, 1, N_FRAMES) and mat["valid_frame"].shape == (1, N_FRAMES)
    annot = tdhp_test.read_test_annot(path)
    assert annot["annot3"].shape == (N_FRAMES, 17, 3) and annot["valid_frame"].dtype == bool
    assert set(annot["activity"]) <= set(range(1, 8))
    # the test joints reordered are the training joints
    assert [tdhp_test.TEST_JOINT_NAMES[i] for i in tdhp_test.TEST_TO_JOINT_INFO] == list(tdhp.JOINT_INFO.names)


def test_fixture_round_trip_on_marks(ts_raw, ts_cache):
    raw_err, crop_err, annot_err = [], [], []
    annots = {ts: tdhp_test.read_test_annot(ts_raw / f"TS{ts}/annot_data.mat") for ts in SUBJECTS}
    cams = {ts: tdhp_test.fit_sequence_camera(ts, annots[ts])[0] for ts in SUBJECTS}
    with Cache(ts_cache) as cache:
        for i in range(len(cache)):
            ex = cache[i]
            source, frame_number = cache.blob("source_path", i).decode().split("#")
            ts = int(ex.subject[2:])
            assert source == f"TS{ts}/imageSequence/img_{int(frame_number):06d}.jpg"
            projected = cams[ts].project(ex.world_coords)
            annot2 = annots[ts]["annot2"][ex.frame_index - 1][list(tdhp_test.TEST_TO_JOINT_INFO)]
            annot_err.extend(np.linalg.norm(projected - annot2, axis=-1))
            raw_err.extend(mark_errors(read_image(ts_raw / source), projected, radius=9, min_distance=22))
            crop_err.extend(mark_errors(ex.decode_image(), ex.camera.project(ex.world_coords), 5, 13))
    assert len(raw_err) > 200 and len(crop_err) > 70
    # the world joints reproduce annot2 through the fitted camera, up to the fixture's 0.1 px annot2 noise
    assert np.median(annot_err) < 0.2 and max(annot_err) < 0.6, max(annot_err)
    assert max(raw_err) < 1.0, max(raw_err)
    assert max(crop_err) < 1.5, max(crop_err)


def test_cameras_are_fitted_per_sequence(ts_raw, ts_cache, caplog):
    """Each sequence's intrinsics are fitted to its own annotations (TS2's differ from the calibration's, as in the
    release); the rotation and optical centre are the calibration's, and no lens distortion is stored."""
    with caplog.at_level(logging.INFO, logger="posebank.datasets.tdhp.test"):
        fits = tdhp_test.camera_fits(ts_raw, PARAMS)
    assert sorted(fits) == SUBJECTS
    for ts, fit in fits.items():
        fx, fy, cx, cy = testset_fixture.FIXTURE_INTRINSICS[ts]
        k = fit.intrinsic_matrix
        # (one small person per sequence leaves the focal lengths less determined than the projections)
        np.testing.assert_allclose([k[0, 0], k[1, 1], k[0, 2], k[1, 2]], [fx, fy, cx, cy], atol=3)
        annot = tdhp_test.read_test_annot(ts_raw / f"TS{ts}/annot_data.mat")
        annot3 = annot["annot3"][annot["valid_frame"]]
        true = testset_fixture.true_camera(ts).intrinsic_matrix
        noise_free = (annot3[..., :2] / annot3[..., 2:]) @ true[:2, :2].T + true[:2, 2]
        assert np.median(tdhp.reprojection_errors(k, annot3, noise_free)) < 0.05  # the fit sees through the noise
        assert fit.n_joints == 9 * 17 and fit.median_px < 0.2 and fit.max_px < 0.6
        assert (fit.calibration_median_px > 3) == (ts == 2), (ts, fit.calibration_median_px)  # TS2 misfits
        assert fit.summary() in caplog.text
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("TS2: "))
    assert line.startswith("TS2: intrinsics fitted to 153 joints of the valid frames: f=(150")
    assert " c=(1015.2" in line and "; reprojection error median 0.1" in line
    assert line.endswith("(the ts1-4 calibration: median 4.89 px)")
    with Cache(ts_cache) as cache:
        cols = cache.read()
        for ts in SUBJECTS:
            ex = cache[int(np.flatnonzero(cols["subject"] == f"TS{ts}")[0])]
            assert not ex.camera.has_distortion
            calib = tdhp_test.calibration_camera(ts)
            # the stored crop camera looks from the calibration's optical centre
            np.testing.assert_allclose(ex.camera.t, calib.t, atol=1e-3)


def test_real_ts2_misfits_the_shared_camera():
    """mmpose's real test frames: TS1 row 2000 fits the TS1-4 camera, TS2 row 1849 misses it by 6.2 px (median of its
    17 joints); TS2's own least-squares intrinsics (mmpose's fit over the real sequence) reproduce it to 0.15 px."""
    data = np.load(sample("tdhp/test_3dhp_test.npz"))
    with sample("tdhp/cameras_test.pkl").open("rb") as f:
        fits = pickle.load(f)
    assert list(data["imgname"]) == ["TS1_002001.jpg", "TS2_001850.jpg"]
    shared = tdhp_test.calibration_camera(1).intrinsic_matrix
    medians = {}
    for name, part, s in zip(data["imgname"], data["part"], data["S"]):
        ts = name.split("_")[0]
        annot3, annot2 = s[:, :3] * 1000, part[:, :2]  # camera frame, mm; pixels
        own = np.array([[fits[ts]["f"][0, 0], 0, fits[ts]["c"][0, 0]], [0, fits[ts]["f"][1, 0], fits[ts]["c"][1, 0]],
                        [0, 0, 1]])
        medians[ts] = (np.median(tdhp.reprojection_errors(shared, annot3, annot2)),
                       np.median(tdhp.reprojection_errors(own, annot3, annot2)))
        # posebank's fit on this one frame lands within 1 px of mmpose's fit over the whole sequence
        k = tdhp.estimate_intrinsics(annot3, annot2)
        np.testing.assert_allclose(k, own, atol=1.0)
        assert np.median(tdhp.reprojection_errors(k, annot3, annot2)) < 0.15
    assert medians["TS1"][0] < 0.01 and medians["TS1"][1] < 0.1
    assert 6.1 < medians["TS2"][0] < 6.3 and medians["TS2"][1] < 0.15, medians
    # the fitted TS1, TS3, TS4 intrinsics agree with the calibration's within 0.25 px, TS2's are 3.6 px (fx) and
    # 4.4 px (cy) away
    for ts in (1, 3, 4):
        assert np.abs(np.r_[fits[f"TS{ts}"]["f"].ravel(), fits[f"TS{ts}"]["c"].ravel()]
                      - shared[[0, 1, 0, 1], [0, 1, 2, 2]]).max() < 0.25
    ts2 = np.r_[fits["TS2"]["f"].ravel(), fits["TS2"]["c"].ravel()] - shared[[0, 1, 0, 1], [0, 1, 2, 2]]
    np.testing.assert_allclose(ts2, [3.61, 0.44, -2.15, -4.35], atol=0.01)


def test_real_ts5_ts6_annotations_carry_no_lens_distortion():
    """The outdoor calibration lists a strong distortion (k1 = -0.277), but the real TS5/TS6 annot2 is a pinhole
    projection: pinhole fits over the real sequences (mmpose's) land on the calibration's pinhole intrinsics, where
    points carrying the distortion would pull the focal lengths down by 10 px or more."""
    with sample("tdhp/cameras_test.pkl").open("rb") as f:
        fits = pickle.load(f)
    outdoor = tdhp_test.calibration_camera(5)
    k = outdoor.intrinsic_matrix
    for ts, tolerance in (("TS5", 0.7), ("TS6", 0.1)):
        fitted = np.r_[fits[ts]["f"].ravel(), fits[ts]["c"].ravel()]
        assert np.abs(fitted - k[[0, 1, 0, 1], [0, 1, 2, 2]]).max() < tolerance, ts
    # what the same fit makes of distorted points: people anywhere in the central 30 % of the image
    rng = np.random.default_rng(0)
    pixels = rng.uniform([960 - 288, 540 - 162], [960 + 288, 540 + 162], (2000, 2))
    rays = outdoor.undistorted().image_to_camera(pixels)
    points = rays / rays[:, 2:] * rng.uniform(3000, 7000, (2000, 1))
    distorted = tdhp.estimate_intrinsics(points, outdoor.camera_to_image(points))
    assert k[0, 0] - distorted[0, 0] > 9 and k[1, 1] - distorted[1, 1] > 6
    assert np.abs(outdoor.camera_to_image(points) - pixels).max() > 3


def test_only_valid_frames_become_test_examples(ts_raw, ts_cache):
    with Cache(ts_cache) as cache:
        cols = cache.read()
        assert cache.split_counts() == {"train": 0, "val": 0, "test": len(cache)}
        assert cache.joint_info.names == tdhp.JOINT_INFO.names
        for ts in SUBJECTS:
            annot = tdhp_test.read_test_annot(ts_raw / f"TS{ts}/annot_data.mat")
            rows = cols["subject"] == f"TS{ts}"
            # frame_index is the image's file number (1-based); frames 3, 7, 11 (0-based) are invalid
            assert sorted(cols["frame_index"][rows]) == [i + 1 for i in np.flatnonzero(annot["valid_frame"])]
            assert sorted(cols["frame_index"][rows]) == [1, 2, 3, 5, 6, 7, 9, 10, 11]
            names = [tdhp_test.ACTIVITIES[annot["activity"][f - 1] - 1] for f in cols["frame_index"][rows]]
            assert list(cols["activity"][rows]) == names
            assert set(cols["camera_name"][rows]) == {"ts1-4" if ts <= 4 else "ts5-6"}
            assert set(cols["sequence"][rows]) == {f"TS{ts}"}
    # the invalid frames are reported as dropped, by their image numbers
    dropped = []
    tdhp_test.instances(ts_raw, PARAMS, dropped)
    assert dropped == [Dropped(f"TS{ts}/annot_data.mat", tdhp_test.INVALID_FRAME, 3) for ts in SUBJECTS]
    dropped = []
    tdhp_test.instances(ts_raw, {"test_subjects": [1], "frame_step": 4}, dropped)  # 0-based frames 0, 4, 8
    assert dropped == []
    tdhp_test.instances(ts_raw, {"test_subjects": [1], "frame_step": 3}, dropped)  # 0, 3, 6, 9: 3 is invalid
    assert dropped == [Dropped("TS1/annot_data.mat#4", tdhp_test.INVALID_FRAME, 1)]
    # TS3 holds one image more than it has annotations, as in the release
    assert (ts_raw / "TS3/imageSequence/img_000013.jpg").is_file()


def test_frame_step_and_nested_folder(ts_raw, tmp_path):
    nested = tmp_path / "raw"
    shutil.copytree(ts_raw / "TS5", nested / "mpi_inf_3dhp_test_set" / "TS5")
    insts = tdhp_test.instances(nested, {"test_subjects": [5], "frame_step": 2})
    assert [r.frame_index for r in insts] == [1, 3, 5, 7, 9, 11]  # valid even 0-based frames 0 2 4 6 8 10
    assert insts[0].source == "mpi_inf_3dhp_test_set/TS5/imageSequence/img_000001.jpg"


# ------------------------------------------------------------------------------------------- malformed trees
@pytest.fixture
def broken_raw(ts_raw, tmp_path):
    return copy_raw(ts_raw, tmp_path)


def test_missing_annotation_is_named(broken_raw, tmp_path):
    (broken_raw / "TS3/annot_data.mat").unlink()
    out = tmp_path / "out" / "t"
    with pytest.raises(RawLayoutError,
                       match=r"tdhp_test: raw dataset incomplete at .*raw: missing TS3/annot_data\.mat"):
        convert("tdhp_test", broken_raw, out, PARAMS, progress=False)
    assert_no_output(out)


def test_missing_image_of_a_valid_frame_is_named(broken_raw, tmp_path):
    (broken_raw / "TS5/imageSequence/img_000006.jpg").unlink()
    (broken_raw / "TS5/imageSequence/img_000004.jpg").unlink()  # frame 3 is invalid: not needed
    out = tmp_path / "t"
    with pytest.raises(RawLayoutError, match=r"missing TS5/imageSequence/img_000006\.jpg$"):
        convert("tdhp_test", broken_raw, out, PARAMS, progress=False)
    assert_no_output(out)


def test_wrong_array_shape_is_named(broken_raw, tmp_path):
    path = broken_raw / "TS1/annot_data.mat"
    with h5py.File(path, "r+") as f:
        data = f["annot3"][:, :, :16]
        del f["annot3"]
        f["annot3"] = data
    out = tmp_path / "t"
    with pytest.raises(RawFileError, match=r"TS1/annot_data\.mat: 'annot3' has shape \(3, 16, 1, 12\), expected "
                                           r"\(3, 17, 1, T\) \(h5py shows \(T, 1, 17, 3\)\)"):
        convert("tdhp_test", broken_raw, out, PARAMS, progress=False)
    assert_no_output(out)


def test_v5_copy_reads_alike_and_foreign_file_is_named(ts_raw, broken_raw, tmp_path):
    path = broken_raw / "TS5/annot_data.mat"
    scipy.io.savemat(str(path), load_mat(path))  # as MATLAB's save -v7 would write it
    assert path.read_bytes()[:10] == b"MATLAB 5.0"
    a, b = tdhp_test.read_test_annot(ts_raw / "TS5/annot_data.mat"), tdhp_test.read_test_annot(path)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    path.write_text("TS5 annotations\n")
    out = tmp_path / "t"
    with pytest.raises(RawFileError, match=r"TS5/annot_data\.mat: not a MATLAB file"):
        convert("tdhp_test", broken_raw, out, PARAMS, progress=False)
    assert_no_output(out)


def test_missing_valid_frame_is_named(broken_raw, tmp_path):
    with h5py.File(broken_raw / "TS3/annot_data.mat", "r+") as f:
        del f["valid_frame"]
    out = tmp_path / "t"
    with pytest.raises(RawFileError, match=r"TS3/annot_data\.mat: no 'valid_frame' variable "
                                           r"\(has \['activity_annotation', "):
        convert("tdhp_test", broken_raw, out, PARAMS, progress=False)
    assert_no_output(out)


def test_bad_params_are_named(tmp_path):
    with pytest.raises(ParamsError, match=r"^datasets\.tdhp_test\.test_subjects: must name test sequences TS1\.\.TS6"):
        convert("tdhp_test", tmp_path, tmp_path / "x", {"test_subjects": [7]}, progress=False)
    with pytest.raises(ParamsError, match=r"^datasets\.tdhp_test\.frame_step: must be at least 1"):
        tdhp_test.instances(tmp_path, {"frame_step": 0})
    assert_no_output(tmp_path / "x")


def test_a_sequence_without_a_fit_is_named_or_dropped(broken_raw, tmp_path):
    path = broken_raw / "TS3/annot_data.mat"
    with h5py.File(path, "r+") as f:
        annot3 = f["annot3"][()]
        annot3[:] = np.nan
        annot3[0, 0, 4] = [100.0, 200.0, 3000.0]  # one joint of frame 0: an instance, but nothing to fit
        f["annot3"][...] = annot3
    out = tmp_path / "t"
    with pytest.raises(RawFileError, match=r"TS3/annot_data\.mat: cannot fit the camera intrinsics to the valid "
                                           r"frames' annotations: too few or degenerate correspondences \(1 usable"):
        convert("tdhp_test", broken_raw, out, PARAMS, progress=False)
    assert_no_output(out)
    with h5py.File(path, "r+") as f:
        f["annot3"][...] = np.nan  # no joint at all: every valid frame is dropped, no camera is needed
    dropped = []
    insts = tdhp_test.instances(broken_raw, {"test_subjects": [3]}, dropped)
    assert insts == [] and {d.reason for d in dropped} == {tdhp_test.INVALID_FRAME, MISSING_POSE}


def test_the_studio_test_camera_is_training_camera_8():
    """mmpose's parse of the real training calibration: camera 8 has the TS1-4 camera's intrinsics and orientation,
    with the principal point posebank reads from the test calibration (posepile's cy, scaled by the pixel aspect,
    is 0.46 px off)."""
    with sample("tdhp/frames/cameras_train.pkl").open("rb") as f:
        cam8 = pickle.load(f)["S1_Seq1_Cam8"]
    studio = tdhp_test.calibration_camera(1)
    k = studio.intrinsic_matrix
    np.testing.assert_allclose([cam8["f"][0, 0], cam8["c"][0, 0], cam8["c"][1, 0]], [k[0, 0], k[0, 2], k[1, 2]],
                               atol=0.002)
    assert abs(cam8["f"][1, 0] - k[1, 1]) < 0.005
    posepile_cy = k[1, 2] * TS14_PIXEL_ASPECT
    assert posepile_cy - cam8["c"][1, 0] > 0.45
    np.testing.assert_allclose(cam8["R"][0], studio.R[0], atol=1e-6)  # the calibration's 'right' vector


TS14_PIXEL_ASPECT = tdhp_test.TEST_CALIBRATIONS["ts1-4"]["pixel_aspect"]
