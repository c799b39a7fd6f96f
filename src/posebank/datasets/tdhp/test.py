"""MPI-INF-3DHP test set (Mehta et al., 3DV 2017): six sequences TS1..TS6 filmed by one camera each.

Raw layout, as ``get_testset.sh`` unpacks it (``root`` holds the ``TS*`` folders, or holds
``mpi_inf_3dhp_test_set/`` which holds them)::

    root/TS<n>/annot_data.mat                  MATLAB v7.3 (an HDF5 file), n = 1..6
    root/TS<n>/imageSequence/img_000001.jpg    frame i (0-based) is img_<i+1, 6 digits>.jpg

``annot_data.mat`` in MATLAB's shapes (h5py shows them reversed, (T, 1, 17, 2) for (2, 17, 1, T);
:func:`posebank.datasets.matlab.load_mat` gives MATLAB's, and reads a v5 copy alike): ``annot2`` (2, 17, 1, T)
pixels, ``annot3`` (3, 17, 1, T) mm in the camera frame, ``univ_annot3`` (3, 17, 1, T) the universal skeleton,
``valid_frame`` (1, T) 0/1 and ``activity_annotation`` (1, T) 1..7. The 17 joints are
``htop neck rsho relb rwri lsho lelb lwri rhip rkne rank lhip lkne lank pelv spin head``; posebank reorders them
to the training set's joint order (``tdhp``'s ``JOINT_INFO``), as posepile does.

Cameras: TS1-TS4 (studio, 2048 x 2048) were filmed by one camera, TS5-TS6 (outdoor, 1920 x 1080) by another. The
test set's ``test_util/camera_calibration`` files (Captury's "tc camera calibration" format: sensor size, focal
length and centre offset in mm, pixel aspect, OpenCV distortion, origin/up/right) describe the two; posepile and the
benchmark code hard-code the same numbers, as does this module (:func:`calibration_camera`, read as the format's own
reader does; posepile also scales the principal point's y by the pixel aspect, 0.46 px and -3.8 px away).

The annotations do not all follow those two cameras: TS2's annot2 misses the pinhole projection of its annot3
through the TS1-4 camera by 6.2 px (median over the 17 joints of a real TS2 frame, mmpose's test data), while a fit
to TS2 alone reproduces it to 0.15 px. So, as the MuPoTS-3D module does (and mmpose for this test set), each
sequence's fx, fy, cx, cy are fitted by linear least squares to ``x = fx X/Z + cx``, ``y = fy Y/Z + cy`` over the 17
joints of all its valid frames (:func:`fit_sequence_camera`; the fit, its residuals and the calibration's residuals
are logged per sequence); the rotation and optical centre stay the calibration's.

Lens distortion: none is stored, TS5-TS6 included. Their annot2 is an undistorted pinhole projection: mmpose's
pinhole fits over the real TS5/TS6 annotations land within 0.7 px (TS5) and 0.1 px (TS6) of the calibration's
pinhole intrinsics, where points carrying the listed distortion (k1 = -0.277) would pull a pinhole fit's focal lengths
down by 7-10 px (points in the central 30 % of the image) to 47-64 px (central 80 %). No TS5/TS6 frame is available to
check the images themselves; posebank takes the authors' annot2 (what the benchmark and the public readers use in 2D)
to match the frames, and so treats the frames as undistorted. Keeping the listed coefficients would move projected
joints off annot2 by 4 px within the central 30 %, 69 px at the middle of the left and right borders and over 100 px
in the corners (posepile keeps them and undistorts its crops).

Only frames whose ``valid_frame`` is set are converted (posepile, and the official evaluation), all of them by
default; the others, and valid frames without any annotated joint, are reported as dropped. The world joints are
``annot3`` taken back to the world through the camera.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from posebank.core.camera import Camera
from posebank.core.errors import ParamsError
from posebank.core.settings import check_dataset_params
from posebank.datasets.base import (
    DatasetInfo,
    Dropped,
    RawFileError,
    RawInstance,
    RawLayoutError,
    check_finite_camera,
)
from posebank.datasets.matlab import load_mat
from posebank.datasets.sampling import MISSING_POSE, drop_missing_poses, record_drop
from posebank.datasets.tdhp import common

log = logging.getLogger(__name__)

NAME = "tdhp_test"
INFO = DatasetInfo(
    name=NAME,
    full_name="MPI-INF-3DHP test set",
    homepage=common.HOMEPAGE,
    licence=common.LICENCE,
    citation=common.CITATION,
)
JOINT_INFO = common.JOINT_INFO
N_TEST_JOINTS = 17
TEST_JOINT_NAMES = "htop,neck,rsho,relb,rwri,lsho,lelb,lwri,rhip,rkne,rank,lhip,lkne,lank,pelv,spin,head".split(",")
# annot_data.mat joint order -> JOINT_INFO order (posepile's test_set_selected_joints)
TEST_TO_JOINT_INFO = (*range(14), 15, 16, 14)
# the 28 training joints that the test joints correspond to, in the test order (for the fixture)
TEST_RAW_JOINTS = tuple(common.RAW_JOINT_NAMES.index(n) for n in TEST_JOINT_NAMES)
ACTIVITIES = ("Stand/Walk", "Exercise", "Sit on Chair", "Reach/Crouch", "On Floor", "Sports", "Misc.")
SCENES = ("green-screen", "no-green-screen", "outdoor")  # TS1-2, TS3-4, TS5-6
NESTED_FOLDER = "mpi_inf_3dhp_test_set"
SEQUENCES = tuple(range(1, 7))
INVALID_FRAME = "valid_frame is 0: no valid annotation (the official evaluation skips the frame too)"

# the test cameras in the calibration files' terms (Captury "tc camera calibration v0.3")
TEST_CALIBRATIONS = {
    "ts1-4": {
        "image_size": (2048, 2048), "sensor_size": (10.0, 10.0), "focal_length": 7.32506, "pixel_aspect": 1.00044,
        "center_offset": (-0.0322884, 0.0929296), "distortion": (0.0, 0.0, 0.0, 0.0, 0.0),
        "origin": (3427.28, 1387.86, 309.42), "up": (-0.208215, 0.976233, 0.06014),
        "right": (0.000575281, 0.0616098, -0.9981)},
    "ts5-6": {
        "image_size": (1920, 1080), "sensor_size": (10.0, 5.625), "focal_length": 8.770747185,
        "pixel_aspect": 0.993236423, "center_offset": (-0.104908645, 0.104899704),
        "distortion": (-0.276859611, 0.131125256, -0.000360494, -0.001149441, -0.049318332),
        "origin": (-2104.3074, 1038.6707, -4596.6367), "up": (0.025272345, 0.995038509, 0.096227370),
        "right": (-0.939647257, -0.009210289, 0.342020929)},
}

DEFAULT_PARAMS = {
    "test_subjects": [1, 2, 3, 4, 5, 6],
    "frame_step": 1,
}


def check_params(params: dict | None) -> dict:
    """``params`` over DEFAULT_PARAMS, checked; ParamsError names the key."""
    p = check_dataset_params(NAME, params, DEFAULT_PARAMS)
    ts = p["test_subjects"]
    bad = [s for s in ts if isinstance(s, bool) or not isinstance(s, int) or s not in SEQUENCES]
    if bad or not ts:
        raise ParamsError(f"datasets.{NAME}.test_subjects", f"must name test sequences TS1..TS6 (as 1..6), got {ts}")
    if len(set(ts)) != len(ts):
        raise ParamsError(f"datasets.{NAME}.test_subjects", f"lists a sequence twice: {ts}")
    if p["frame_step"] < 1:
        raise ParamsError(f"datasets.{NAME}.frame_step", f"must be at least 1, got {p['frame_step']}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    """Always ``test``."""
    check_params(params)
    return ("test",)


# ------------------------------------------------------------------------------------------- cameras
def camera_from_tc_calibration(image_size, sensor_size, focal_length, pixel_aspect, center_offset, distortion,
                               origin, up, right) -> Camera:
    """A camera from the quantities of a "tc camera calibration" block, read as the format's own reader does.

    fx = focal (mm) x width / sensor width, fy = focal x height / sensor height x pixel aspect; the principal point
    is the image centre plus the centre offset (mm) converted to pixels; the rotation's rows are ``right``,
    ``-up`` and their cross product (image y points down).
    """
    w, h = image_size
    sw, sh = sensor_size
    fx = focal_length * w / sw
    fy = focal_length * h / sh * pixel_aspect
    cx = w / 2 + center_offset[0] * w / sw
    cy = h / 2 + center_offset[1] * h / sh
    right = np.asarray(right, np.float64) / np.linalg.norm(right)
    down = -np.asarray(up, np.float64) / np.linalg.norm(up)
    rot = np.stack([right, down, np.cross(right, down)])
    return Camera([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], rot, origin, distortion, world_up=common.WORLD_UP)


def camera_key(ts: int) -> str:
    if ts not in range(1, 7):
        raise ValueError(f"tdhp_test: test sequences are TS1..TS6, got TS{ts}")
    return "ts1-4" if ts <= 4 else "ts5-6"


def calibration_camera(ts: int) -> Camera:
    """The calibration files' camera of test sequence TS<ts> (world y up, mm), its listed distortion included."""
    return camera_from_tc_calibration(**TEST_CALIBRATIONS[camera_key(ts)])


@dataclasses.dataclass(frozen=True)
class IntrinsicsFit:
    """The per-sequence intrinsics and how well they, and the calibration's, reproduce annot2."""

    sequence: int
    intrinsic_matrix: np.ndarray
    n_joints: int  # joint correspondences fitted (17 x valid frames with finite joints)
    median_px: float  # reprojection error of the fit: median, 95th percentile, maximum
    p95_px: float
    max_px: float
    calibration_median_px: float  # the calibration camera's pinhole intrinsics on the same joints

    def summary(self) -> str:
        k = self.intrinsic_matrix
        return (f"TS{self.sequence}: intrinsics fitted to {self.n_joints} joints of the valid frames: "
                f"f=({k[0, 0]:.2f}, {k[1, 1]:.2f}) c=({k[0, 2]:.2f}, {k[1, 2]:.2f}); reprojection error median "
                f"{self.median_px:.3f} px, 95% {self.p95_px:.3f} px, max {self.max_px:.2f} px "
                f"(the {camera_key(self.sequence)} calibration: median {self.calibration_median_px:.2f} px)")


def fit_sequence_camera(ts: int, annot: dict, where=None) -> tuple[Camera, IntrinsicsFit]:
    """The camera of TS<ts>: intrinsics fitted to the valid frames' annot2 and annot3 (all 17 joints,
    :func:`posebank.datasets.tdhp.common.estimate_intrinsics`), the calibration's rotation and optical centre, no
    distortion. RawFileError naming ``where`` when the annotations allow no fit."""
    where = where or f"TS{ts}/annot_data.mat"
    valid = annot["valid_frame"]
    p3, p2 = annot["annot3"][valid].reshape(-1, 3), annot["annot2"][valid].reshape(-1, 2)
    try:
        k = common.estimate_intrinsics(p3, p2)
    except ValueError as e:
        raise RawFileError(where, f"cannot fit the camera intrinsics to the valid frames' annotations: {e}") from e
    calib = calibration_camera(ts)
    camera = Camera(k, calib.R, calib.t, world_up=common.WORLD_UP)
    check_finite_camera(camera, where)
    errors = common.reprojection_errors(k, p3, p2)
    ok = np.isfinite(errors)
    errors, calib_errors = errors[ok], common.reprojection_errors(calib.intrinsic_matrix, p3, p2)[ok]
    fit = IntrinsicsFit(ts, k, int(ok.sum()), float(np.median(errors)), float(np.percentile(errors, 95)),
                        float(errors.max()), float(np.median(calib_errors)))
    log.info("%s", fit.summary())
    if fit.median_px > 1:
        log.warning("%s: annot2 and annot3 disagree by %.2f px (median) under the fitted intrinsics", where,
                    fit.median_px)
    return camera, fit


def camera_fits(root, params: dict | None = None) -> dict[int, IntrinsicsFit]:
    """The per-sequence intrinsics fits of the selected test sequences (what :func:`instances` logs)."""
    annots = check_layout(root, params)
    base, _ = find_test_root(root)
    return {ts: fit_sequence_camera(ts, annot, base / f"TS{ts}/annot_data.mat")[1]
            for ts, annot in sorted(annots.items())}


def sequence_image_size(ts: int) -> tuple[int, int]:
    return TEST_CALIBRATIONS[camera_key(ts)]["image_size"]


def scene(ts: int) -> str:
    return SCENES[(ts - 1) // 2]


# ------------------------------------------------------------------------------------------- annotations
def read_test_annot(path) -> dict:
    """One ``annot_data.mat`` (v7.3, or a v5 copy): ``annot2`` (T, 17, 2), ``annot3`` and ``univ_annot3``
    (T, 17, 3) in the file's joint order, ``valid_frame`` (T,) bool and ``activity`` (T,) int (1..7; 0 where the
    file has none)."""
    path = Path(path)
    mat = load_mat(path, ("annot2", "annot3", "univ_annot3", "valid_frame"), what="annotation file",
                   optional=("activity_annotation",))
    out = {}
    n_frames = None
    for key, dims in (("annot2", 2), ("annot3", 3), ("univ_annot3", 3)):
        a = mat[key]
        shape = getattr(a, "shape", None)
        if isinstance(a, np.ndarray) and a.ndim == 2 and a.shape == (dims, N_TEST_JOINTS):
            a = a[:, :, None, None]  # one frame: MATLAB drops the trailing singleton dimensions
        if (not isinstance(a, np.ndarray) or a.dtype == object or a.ndim != 4
                or a.shape[:3] != (dims, N_TEST_JOINTS, 1)):
            raise RawFileError(path, f"'{key}' has shape {shape}, expected ({dims}, {N_TEST_JOINTS}, 1, T) "
                                     f"(h5py shows (T, 1, {N_TEST_JOINTS}, {dims}))")
        if n_frames is None:
            n_frames = a.shape[3]
        if a.shape[3] != n_frames:
            raise RawFileError(path, f"'{key}' has {a.shape[3]} frames, 'annot2' {n_frames}")
        try:
            out[key] = np.asarray(a[:, :, 0, :], np.float64).transpose(2, 1, 0)
        except (TypeError, ValueError) as e:
            raise RawFileError(path, f"'{key}' is not numeric ({e})") from e
    for key, name in (("valid_frame", "valid_frame"), ("activity_annotation", "activity")):
        if key not in mat:  # only activity_annotation is optional
            out[name] = np.zeros(n_frames, np.int64)
            continue
        try:
            arr = np.asarray(mat[key], np.float64)
        except (TypeError, ValueError) as e:
            raise RawFileError(path, f"'{key}' is not numeric ({e})") from e
        if arr.size != n_frames or (arr.ndim == 2 and 1 not in arr.shape) or arr.ndim > 2:
            raise RawFileError(path, f"'{key}' has shape {arr.shape}, expected (1, {n_frames})")
        out[name] = arr.ravel()
    valid = out["valid_frame"]
    if not np.all(np.isfinite(valid)):
        raise RawFileError(path, "'valid_frame' contains non-finite values")
    out["valid_frame"] = valid != 0
    activity = out["activity"]
    if not np.all(np.isfinite(activity)) or np.any(activity != np.round(activity)):
        raise RawFileError(path, "'activity_annotation' holds something other than activity numbers")
    out["activity"] = activity.astype(np.int64)
    return out


# ------------------------------------------------------------------------------------------- layout
def find_test_root(root) -> tuple[Path, str]:
    """The folder holding TS1..TS6 and its path relative to ``root`` ('' or 'mpi_inf_3dhp_test_set/')."""
    root = Path(root)
    if not any((root / f"TS{i}").is_dir() for i in range(1, 7)) and (root / NESTED_FOLDER).is_dir():
        return root / NESTED_FOLDER, f"{NESTED_FOLDER}/"
    return root, ""


def image_relpath(ts: int, frame: int) -> str:
    """Path of 0-based frame ``frame`` of TS<ts> relative to the folder holding the TS folders."""
    return f"TS{ts}/imageSequence/img_{frame + 1:06d}.jpg"


def check_layout(root, params: dict | None = None) -> dict[int, dict]:
    """Verify the raw tree and read its annotations; returns ``{ts: read_test_annot(...)}``."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    base, prefix = find_test_root(root)
    missing = [f"{prefix}TS{ts}/annot_data.mat" for ts in p["test_subjects"]
               if not (base / f"TS{ts}/annot_data.mat").is_file()]
    if missing:
        raise RawLayoutError(NAME, root, missing)
    annots = {ts: read_test_annot(base / f"TS{ts}/annot_data.mat") for ts in p["test_subjects"]}
    for ts, annot in annots.items():
        missing += [prefix + image_relpath(ts, i) for i in selected_frames(annot, p["frame_step"])
                    if not (base / image_relpath(ts, i)).is_file()]
    if missing:
        raise RawLayoutError(NAME, root, missing)
    return annots


def selected_frames(annot: dict, frame_step: int = 1) -> np.ndarray:
    """0-based indices of the valid frames (every ``frame_step``-th frame number)."""
    idx = np.flatnonzero(annot["valid_frame"])
    return idx[idx % frame_step == 0]


def invalid_frames(annot: dict, frame_step: int = 1) -> np.ndarray:
    """0-based indices of the frames of the frame step whose ``valid_frame`` is 0."""
    idx = np.flatnonzero(~annot["valid_frame"])
    return idx[idx % frame_step == 0]


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every valid test frame, in a deterministic order; split "test". Invalid frames (``valid_frame`` 0) and
    valid frames without any annotated joint are appended to ``dropped``."""
    p = check_params(params)
    root = Path(root)
    annots = check_layout(root, p)
    base, prefix = find_test_root(root)
    out = []
    for ts in sorted(annots):
        annot = annots[ts]
        where = f"{prefix}TS{ts}/annot_data.mat"
        coords = annot["annot3"][:, list(TEST_TO_JOINT_INFO)]
        # drops name frames by their image number (frame_index, 1-based), as the instances do
        record_drop(dropped, where, invalid_frames(annot, p["frame_step"]) + 1, INVALID_FRAME)
        valid = [int(i) for i in selected_frames(annot, p["frame_step"])]
        annotated = drop_missing_poses(coords, valid, where, None)
        record_drop(dropped, where, [i + 1 for i in sorted(set(valid) - set(annotated))], MISSING_POSE)
        if not annotated:  # nothing to convert (and nothing to fit a camera to)
            continue
        # the camera is fitted to every valid frame of the sequence, whatever the frame step
        camera, _ = fit_sequence_camera(ts, annot, base / f"TS{ts}/annot_data.mat")
        for i in annotated:
            a = int(annot["activity"][i])
            if not 1 <= a <= len(ACTIVITIES):
                raise RawFileError(base / f"TS{ts}/annot_data.mat", f"frame {i}: activity {a} not in 1..7")
            out.append(RawInstance(
                source=prefix + image_relpath(ts, int(i)), frame_index=int(i) + 1,
                world_coords=camera.camera_to_world(coords[i]), camera=camera, split="test", subject=f"TS{ts}",
                sequence=f"TS{ts}", activity=ACTIVITIES[a - 1], camera_name=camera_key(ts)))
    return out


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature test tree in the release's layout (:func:`posebank.datasets.tdhp.testset_fixture.make_fixture`,
    which takes the ``options``)."""
    from posebank.datasets.tdhp.testset_fixture import make_fixture as write

    return write(root, seed, **options)
