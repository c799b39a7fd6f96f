"""BMLmovi / MoVi (Ghorbani et al., PLOS ONE 2021): 90 subjects in optical motion capture (67 markers, 120 Hz),
filmed by two calibrated 800 x 600 computer-vision cameras (PG1, PG2, 30 fps) and two uncalibrated hand-held
cameras (CP1, CP2).

Raw layout, as posepile ``ds/bml_movi/main.sh`` unpacks the Dataverse release (doi 10.5683/SP2/JRHDRN) into one
folder::

    root/{F|S1|S2}_{PG1|PG2}_Subject_<n>_L.avi          the calibrated cameras' videos, one per round
    root/{F|S1|S2}_{CP1|CP2}_Subject_<n>.mp4             the hand-held cameras' videos (not converted, see below)
    root/F_Subjects_1_45/F_v3d_Subject_<n>.mat           the F round's motion capture (subjects 1-45) ...
    root/F_Subjects_46_90/F_v3d_Subject_<n>.mat          ... and subjects 46-90
    root/S/S_v3d_Subject_<n>.mat                         the S1 and S2 rounds' motion capture
    root/Calib/Extrinsics_PG{1,2}.npz                    rotationMatrix, translationVector (MATLAB convention)
    root/Calib/cameraParams_PG{1,2}.npz                  IntrinsicMatrix, RadialDistortion (MATLAB convention)

Formats (saeed1262/MoVi-Toolbox ``MoCap/utils.py mat2dict``, ``MoCap/worldToVideo.m``; posepile
``ds/bml_movi/main.py``):

* ``*_v3d_Subject_<n>.mat``: a MATLAB v5 file (the toolbox and posepile read it with ``scipy.io.loadmat``; a v7.3
  file is read as well) with one struct ``Subject_<n>_F`` (``Subject_<n>_S``) whose ``move`` is a cell of one
  struct (two for S: S1, S2); its ``markerLocation`` is (T, 87, 3) for F -- 67 markers then 20 virtual joints --
  and (T, 17, 3) for S (a marker subset that posepile places in 15 of the 87 slots), mm, 120 Hz, world z up. Gaps
  are zeros.
* ``Extrinsics_PG<c>.npz`` / ``cameraParams_PG<c>.npz``: MATLAB's row-vector convention, ``[x y z] R + t`` and
  ``[u v 1] ~ [x y 1] K``: posebank's ``R = rotationMatrixᵀ``, ``K = IntrinsicMatrixᵀ``, optical centre
  ``-R^T t``; ``RadialDistortion`` (k1, k2) are OpenCV's k1, k2 (MATLAB's radial model is OpenCV's). Read with
  ``allow_pickle=False``.
* Video frame ``i`` of a PG video is mocap row ``i / fps x 120`` (offset 0 for the PG cameras), linearly
  interpolated between rows; a frame at or past the last row ends the video's use (posepile).

Selection (posepile ``make_stage1``): per video, frames whose camera rolls by more than 7 degrees about its axis
are left out (never for the fixed PG cameras), then ``AdaptivePoseSampler2(100, check_validity=True,
assume_nan_unchanged=True, buffer_size=500)`` on all 87 points. The box is the best-IoU detection, else the
projected points' box x 1.05 (``detect.per_dataset.bml_movi``). Everything is train.

CP1/CP2 have no calibration in the release: posepile fits their cameras with a learned 3D pose estimator (its
``main.sh`` leaves the model path ``TODO``) and external skeleton-conversion matrices, so posebank converts the PG
views only (``views``; see docs/datasets.md, "differences from posepile").
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from posebank.core.camera import Camera
from posebank.core.errors import ParamsError
from posebank.core.settings import check_dataset_params
from posebank.core.skeleton import JointInfo
from posebank.datasets.base import (
    DatasetInfo,
    Dropped,
    RawFileError,
    RawInstance,
    RawLayoutError,
    check_finite_camera,
)
from posebank.datasets.matlab import load_mat
from posebank.datasets.sampling import AdaptivePoseSampler2, drop_missing_poses, record_drop

NAME = "bml_movi"
INFO = DatasetInfo(
    name=NAME,
    full_name="BMLmovi (MoVi: A Large Multipurpose Motion and Video Dataset)",
    homepage="https://www.biomotionlab.ca/movi/",
    licence=("Non-commercial scientific research only (MoVi licence, saeed1262/MoVi-Toolbox README); the data are "
             "released on Scholars Portal Dataverse (doi 10.5683/SP2/JRHDRN) after an access request."),
    citation=("S. Ghorbani, K. Mahdaviani, A. Thaler, K. Kording, D. J. Cook, G. Blohm, N. F. Troje. MoVi: A large "
              "multi-purpose human motion and video dataset. PLOS ONE 16(6): e0253157, 2021."),
)

CALIB_DIR = "Calib"
ROUNDS = ("F", "S1", "S2")
VIEWS = ("PG1", "PG2")  # the calibrated cameras
UNCALIBRATED_VIEWS = ("CP1", "CP2")
SUBJECTS = tuple(range(1, 91))
SPLITS = ("train",)
MOCAP_HZ = 120.0
ZERO_MM = 1e-3  # a point whose coordinates are all within this of zero is a gap
WORLD_UP = (0.0, 0.0, 1.0)  # the mocap frame's vertical (the PG cameras' image down is world -z)

# posepile's names: the 67 markers, then the 20 virtual joints
JOINT_NAMES = (
    "backneck,upperback,clavicle,sternum,umbilicus,lfronthead,lbackhead,lback,lshom,"
    "lupperarm,lelbm,lforearm,lwrithumbside,lwripinkieside,lfin,lasis,lpsis,lfrontthigh,"
    "lthigh,lknem,lankm,lhee,lfifthmetatarsal,ltoe,lcheek,lbreast,lelbinner,lwaist,lthumb,"
    "lfrontinnerthigh,linnerknee,lshin,lfirstmetatarsal,lfourthtoe,lscapula,lbum,rfronthead,"
    "rbackhead,rback,rshom,rupperarm,relbm,rforearm,rwrithumbside,rwripinkieside,rfin,"
    "rasis,rpsis,rfrontthigh,rthigh,rknem,rankm,rhee,rfifthmetatarsal,rtoe,rcheek,rbreast,"
    "relbinner,rwaist,rthumb,rfrontinnerthigh,rinnerknee,rshin,rfirstmetatarsal,rfourthtoe,"
    "rscapula,rbum,head,mhip,pelv,thor,lank,lelb,lhip,lhan,lkne,lsho,lwri,lfoo,rank,relb,"
    "rhip,rhan,rkne,rsho,rwri,rfoo")
# posepile's edges (the left side mirrored by JointInfo)
JOINT_INFO = JointInfo(JOINT_NAMES, "head-thor-pelv-mhip,thor-rsho-relb-rwri-rhan,mhip-rhip-rkne-rank-rfoo")
N_POINTS = JOINT_INFO.n_joints  # 87
N_MARKERS = 67
N_S_MARKERS = 17  # the S rounds' markerLocation columns
# posepile load_gt_poses: S-round column i_in -> slot i_out of the 87 (columns 5 and 11 unused)
S_COLUMNS = tuple(i for i in range(N_S_MARKERS) if i not in (5, 11))
S_SLOTS = (5, 6, 12, 13, 20, 36, 37, 43, 44, 51, 67, 71, 77, 79, 85)

DEFAULT_PARAMS = {
    "subjects": [],  # subject numbers 1..90; [] = every subject with a mocap file (posepile)
    "rounds": list(ROUNDS),  # F (full markers), S1, S2 (sparse markers)
    "views": list(VIEWS),  # the calibrated PG cameras (CP1/CP2 have no calibration in the release)
    "max_roll_deg": 7.0,  # posepile: frames whose camera rolls more than this about its axis are left out
    "adaptive_sampling_mm": 100.0,  # posepile AdaptivePoseSampler2(100, ...) per video; 0 = off ...
    "sampler_buffer": 500,  # ... comparing with the 500 last kept poses
    "box_expansion": 1.05,  # the projected points' box x this (posepile's box when no detection matches)
}

_VIDEO = re.compile(r"^(F|S[12])_((?:CP|PG)[12])_Subject_(\d+)(_L)?\.(mp4|avi)$")
PAST_MOCAP_END = "video frames past the end of the motion capture"
ROLLED = "the camera rolls more than max_roll_deg about its axis"


# ------------------------------------------------------------------------------------------- paths
def mocap_relpath(round_: str, subject: int) -> str:
    if round_.startswith("S"):
        return f"S/S_v3d_Subject_{subject}.mat"
    folder = "F_Subjects_1_45" if subject <= 45 else "F_Subjects_46_90"
    return f"{folder}/F_v3d_Subject_{subject}.mat"


def extrinsics_relpath(view: str) -> str:
    return f"{CALIB_DIR}/Extrinsics_{view}.npz"


def intrinsics_relpath(view: str) -> str:
    return f"{CALIB_DIR}/cameraParams_{view}.npz"


def video_name(round_: str, view: str, subject: int) -> str:
    """The release's name of a video (the PG videos are ``..._L.avi``, the CP videos ``.mp4``)."""
    return f"{round_}_{view}_Subject_{subject}_L.avi" if view.startswith("PG") else \
        f"{round_}_{view}_Subject_{subject}.mp4"


# ------------------------------------------------------------------------------------------- readers
def _npz(path: Path, keys: Sequence[str], what: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise RawFileError(path, f"{what} not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise RawFileError(path, f"no {missing[0]!r} array (has {sorted(z.files)})")
            return {k: np.asarray(z[k], np.float64) for k in keys}
    except RawFileError:
        raise
    except Exception as e:  # zipfile / numpy raise assorted errors on truncated or foreign files
        raise RawFileError(path, f"unreadable {what}: not an npz archive, or truncated or corrupt "
                                 f"({type(e).__name__}: {e})") from None


def read_camera(root, view: str) -> Camera:
    """The camera of view PG1/PG2 from ``Calib/Extrinsics_<view>.npz`` and ``Calib/cameraParams_<view>.npz``
    (MATLAB's row-vector convention transposed to posebank's, posepile ``load_pg_camera``)."""
    root = Path(root)
    ext_path, int_path = root / extrinsics_relpath(view), root / intrinsics_relpath(view)
    ext = _npz(ext_path, ("rotationMatrix", "translationVector"), "extrinsics file")
    intr = _npz(int_path, ("IntrinsicMatrix", "RadialDistortion"), "camera parameters file")
    rot_m, t = ext["rotationMatrix"], ext["translationVector"].reshape(-1)
    if rot_m.shape != (3, 3) or t.shape != (3,):
        raise RawFileError(ext_path, f"rotationMatrix {rot_m.shape} and translationVector {t.shape}, expected "
                                     "(3, 3) and 3 values")
    rot = rot_m.T
    if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-5) or np.linalg.det(rot) < 0:
        raise RawFileError(ext_path, "rotationMatrix is not a rotation matrix")
    k_m, radial = intr["IntrinsicMatrix"], intr["RadialDistortion"].reshape(-1)
    if k_m.shape != (3, 3) or not 1 <= radial.size <= 3:
        raise RawFileError(int_path, f"IntrinsicMatrix {k_m.shape} and RadialDistortion {radial.shape}, expected "
                                     "(3, 3) and 2 (or 3) values")
    coeffs = np.zeros(5)
    coeffs[[0, 1, 4][:radial.size]] = radial  # MATLAB's radial r², r⁴, r⁶ terms are OpenCV's k1, k2, k3
    camera = Camera(intrinsic_matrix=k_m.T, R=rot, t=-rot.T @ t, distortion_coeffs=coeffs, world_up=WORLD_UP)
    check_finite_camera(camera, int_path)
    return camera


def camera_roll_degrees(camera: Camera) -> float:
    """posepile ``camera_roll_degrees``: the angle between the camera's x axis and the horizontal right of its
    viewing direction."""
    forward, right = camera.R[2], camera.R[0]
    expected = np.cross(forward, np.asarray(camera.world_up, np.float64))
    expected /= np.linalg.norm(expected)
    return float(np.degrees(np.arccos(np.clip(expected @ right, -1, 1))))


def _one(value, path: Path, what: str):
    """The single element of a 1 x 1 MATLAB struct or cell (v5: numpy arrays; v7.3: the value itself)."""
    while isinstance(value, np.ndarray) and value.dtype == object or (
            isinstance(value, np.ndarray) and value.dtype.names is not None):
        if value.size != 1:
            raise RawFileError(path, f"{what} holds {value.size} elements, expected one")
        value = value.reshape(-1)[0]
    return value


def _field(struct, name: str, path: Path, what: str):
    struct = _one(struct, path, what)
    if isinstance(struct, dict):
        names = list(struct)
        value = struct.get(name)
    elif isinstance(struct, np.void) and struct.dtype.names:
        names = list(struct.dtype.names)
        value = struct[name] if name in names else None
    else:
        raise RawFileError(path, f"{what} is not a MATLAB struct")
    if value is None:
        raise RawFileError(path, f"{what} has no field {name!r} (has {names})")
    return value


def _cells(value) -> list:
    """The elements of a MATLAB cell array (or struct array) in MATLAB's linear order; a lone struct is one."""
    if isinstance(value, np.ndarray) and (value.dtype == object or value.dtype.names is not None):
        return list(value.reshape(-1, order="F"))
    return [value]


def read_mocap(path, round_: str, subject: int) -> np.ndarray:
    """(T, 87, 3) mm of one round (F, S1, S2) of a ``*_v3d_Subject_<n>.mat`` file; gaps (all coordinates within
    1e-3 of zero) and NaN are missing; for S rounds, the 15 slots posepile fills from the 17 markers, the rest NaN."""
    path = Path(path)
    var = f"Subject_{subject}_{round_[0]}"
    mat = load_mat(path, [var], what="annotation file")
    moves = _cells(_field(mat[var], "move", path, var))
    index = 0 if round_ == "F" else int(round_[1]) - 1
    if index >= len(moves):
        raise RawFileError(path, f"{var}.move holds {len(moves)} motion(s), round {round_} needs {index + 1}")
    coords = np.asarray(_field(moves[index], "markerLocation", path, f"{var}.move{{{index + 1}}}"))
    if not np.issubdtype(coords.dtype, np.number):
        raise RawFileError(path, f"{var} markerLocation is not numeric")
    coords = coords.astype(np.float64)
    n_expected = N_POINTS if round_ == "F" else N_S_MARKERS
    if coords.ndim != 3 or coords.shape[1:] != (n_expected, 3):
        raise RawFileError(path, f"{var} markerLocation is {coords.shape}, expected (frames, {n_expected}, 3)")
    if round_ != "F":
        full = np.full((len(coords), N_POINTS, 3), np.nan)
        full[:, list(S_SLOTS)] = coords[:, list(S_COLUMNS)]
        coords = full
    gap = np.all(np.abs(coords) < ZERO_MM, axis=-1) | np.isnan(coords).any(axis=-1)
    coords[gap] = np.nan
    return coords


def interpolate(coords: np.ndarray, index: float) -> np.ndarray:
    """posepile ``interpolate``: row ``index`` of ``coords``, linear between the two neighbouring rows (a point
    missing in either is missing)."""
    lo = int(np.floor(index))
    if lo == index:
        return coords[lo].copy()
    w = index - lo
    return coords[lo] * (1 - w) + coords[lo + 1] * w


def video_info(path) -> tuple[int, float, tuple[int, int]]:
    """(frame count, fps, (width, height)) of a video file."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise RawFileError(path, "cannot open video (unsupported codec or corrupt file)")
        n, fps = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), float(cap.get(cv2.CAP_PROP_FPS))
        size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        cap.release()
    if not fps > 0:
        raise RawFileError(path, "the video has no frame rate")
    return n, fps, size


def video_poses(coords: np.ndarray, n_frames: int, fps: float, offset_s: float = 0.0) -> np.ndarray:
    """(N, 87, 3): the mocap at video frames ``0..N-1`` (``index = (i / fps - offset) x 120``; NaN before the
    mocap starts; N stops at the first frame at or past the last mocap row, as posepile)."""
    out = []
    for i in range(n_frames):
        index = (i / fps - offset_s) * MOCAP_HZ
        if index < 0:
            out.append(np.full((N_POINTS, 3), np.nan))
            continue
        if index >= len(coords) - 1:
            break
        out.append(interpolate(coords, index))
    return np.array(out, np.float64).reshape(-1, N_POINTS, 3)


def person_box(points2d: np.ndarray, expansion: float) -> np.ndarray:
    """posepile's box: the box [x, y, w, h] of the finite points, scaled by ``expansion`` about its centre."""
    pts = points2d[np.isfinite(points2d).all(axis=1)]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre, size = (lo + hi) / 2, (hi - lo) * expansion
    return np.concatenate([centre - size / 2, size])


# ------------------------------------------------------------------------------------------- params, layout
def check_params(params: dict | None) -> dict:
    p = check_dataset_params(NAME, params, DEFAULT_PARAMS)
    if len(set(p["subjects"])) != len(p["subjects"]) or set(p["subjects"]) - set(SUBJECTS):
        raise ParamsError(f"datasets.{NAME}.subjects", f"must be distinct subject numbers 1..90, got {p['subjects']}")
    if not p["rounds"] or len(set(p["rounds"])) != len(p["rounds"]) or set(p["rounds"]) - set(ROUNDS):
        raise ParamsError(f"datasets.{NAME}.rounds", f"must be distinct values of {', '.join(ROUNDS)}, got "
                                                     f"{p['rounds']}")
    uncalibrated = [v for v in p["views"] if v in UNCALIBRATED_VIEWS]
    if uncalibrated:
        raise ParamsError(f"datasets.{NAME}.views", f"{uncalibrated[0]} has no calibration in the release "
                                                    f"(posepile estimates it with a pose model); use PG1, PG2")
    if not p["views"] or len(set(p["views"])) != len(p["views"]) or set(p["views"]) - set(VIEWS):
        raise ParamsError(f"datasets.{NAME}.views", f"must be distinct values of {', '.join(VIEWS)}, got "
                                                    f"{p['views']}")
    if not 0 < p["max_roll_deg"] <= 180:
        raise ParamsError(f"datasets.{NAME}.max_roll_deg", f"must be in (0, 180], got {p['max_roll_deg']}")
    if p["adaptive_sampling_mm"] < 0:
        raise ParamsError(f"datasets.{NAME}.adaptive_sampling_mm", "must be >= 0 (0 = off), got "
                                                                   f"{p['adaptive_sampling_mm']}")
    if p["sampler_buffer"] < 1:
        raise ParamsError(f"datasets.{NAME}.sampler_buffer", f"must be >= 1, got {p['sampler_buffer']}")
    if p["box_expansion"] <= 0:
        raise ParamsError(f"datasets.{NAME}.box_expansion", f"must be > 0, got {p['box_expansion']}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    check_params(params)
    return SPLITS


@dataclasses.dataclass(frozen=True)
class Video:
    round: str
    view: str
    subject: int
    source: str  # relative to the raw root

    @property
    def mocap(self) -> str:
        return mocap_relpath(self.round, self.subject)


def check_layout(root, params: dict | None = None) -> list[Video]:
    """Verify the raw tree; the selected videos (round, view, subject) whose subject has the round's mocap file,
    sorted by subject, round and view. Names every missing file or folder."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    missing = [rel for v in sorted(p["views"]) for rel in (extrinsics_relpath(v), intrinsics_relpath(v))
               if not (root / rel).is_file()]
    videos = {}
    for f in root.iterdir():
        m = _VIDEO.match(f.name)
        if m and m[1] in p["rounds"] and m[2] in p["views"]:
            subject = int(m[3])
            if not p["subjects"] or subject in p["subjects"]:
                videos[subject, ROUNDS.index(m[1]), m[2]] = Video(m[1], m[2], subject, f.name)
    if not videos:
        missing.append(f"{{{'|'.join(p['rounds'])}}}_{{{'|'.join(p['views'])}}}_Subject_<n>_L.avi")
    out = []
    for key in sorted(videos):
        video = videos[key]
        if not (root / video.mocap).is_file():
            missing.append(video.mocap)
            continue
        out.append(video)
    if missing:
        raise RawLayoutError(NAME, root, sorted(set(missing), key=missing.index))
    return out


# ------------------------------------------------------------------------------------------- instances
def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected person instance, ordered by subject, round, view and frame."""
    p = check_params(params)
    root = Path(root)
    videos = check_layout(root, p)
    cameras = {v: read_camera(root, v) for v in sorted(p["views"])}
    mocap: dict[tuple[str, int], np.ndarray] = {}
    out = []
    for video in videos:
        key = (video.round, video.subject)
        if key not in mocap:
            mocap[key] = read_mocap(root / video.mocap, video.round, video.subject)
        camera = cameras[video.view]
        n_video, fps, _size = video_info(root / video.source)
        poses = video_poses(mocap[key], n_video, fps)  # offset 0: the PG videos start with the mocap
        record_drop(dropped, video.source, range(len(poses), n_video), PAST_MOCAP_END)
        if camera_roll_degrees(camera) > p["max_roll_deg"]:
            record_drop(dropped, video.source, range(len(poses)), ROLLED)
            continue
        frames = drop_missing_poses(poses, range(len(poses)), video.source, dropped)
        if p["adaptive_sampling_mm"] > 0:
            sampler = AdaptivePoseSampler2(p["adaptive_sampling_mm"], p["sampler_buffer"])
            frames = [i for i in frames if sampler.should_keep(poses[i])]
        for i in frames:
            out.append(RawInstance(
                source=video.source, frame_index=i, world_coords=poses[i].copy(), camera=camera, split="train",
                subject=f"Subject_{video.subject}", sequence=f"{video.round}_Subject_{video.subject}",
                activity=video.round, camera_name=video.view,
                bbox=person_box(camera.project(poses[i]), p["box_expansion"])))
    return out


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.bml_movi.fixture.make_fixture`,
    which takes the ``options``)."""
    from posebank.datasets.bml_movi.fixture import make_fixture as write

    return write(root, seed, **options)


RAW_INSTRUCTIONS = """
    BMLmovi (MoVi): request access on the Scholars Portal Dataverse (https://doi.org/10.5683/SP2/JRHDRN; homepage
    https://www.biomotionlab.ca/movi/), download the release's files (posepile: all 1057) into one folder and
    unpack every .tar and .zip there, so that it holds
        F_PG1_Subject_1_L.avi ... S2_PG2_Subject_90_L.avi   (and the CP1/CP2 .mp4 videos, not converted)
        F_Subjects_1_45/F_v3d_Subject_1.mat ...   F_Subjects_46_90/...   S/S_v3d_Subject_1.mat ...
        Calib/Extrinsics_PG1.npz  Calib/Extrinsics_PG2.npz  Calib/cameraParams_PG1.npz  Calib/cameraParams_PG2.npz
    (the Calib files are also in saeed1262/MoVi-Toolbox, folder Camera_patameters/).
"""
