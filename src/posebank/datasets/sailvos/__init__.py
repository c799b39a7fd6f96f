"""SAIL-VOS (Hu et al., CVPR 2019): synthetic GTA-V cutscene videos with amodal instance masks; its human-pose
part (GTA-V bone points of every pedestrian) is handed out by the maintainers on request only.

Raw layout, as posepile ``ds/sailvos/main.sh`` unpacks ``sailvos_pose_training.tar`` and ``sailvos_pose_val.tar``
(their zips) into one folder::

    root/<seq>/images/<frame:06d>.bmp             1280 x 800 frames (posepile's converted tree: .jpg, also read)
    root/<seq>/visible/<frame:06d>.npy            per-pixel id of the visible object (posepile's: .npz, key
                                                  ``visible_ids``, also read)
    root/<seq>/<objid>_Ped_<model>/<frame:06d>_2d.txt   one row per GTA-V bone point: x y in pixels
    root/<seq>/<objid>_Ped_<model>/<frame:06d>_3d.txt   the same points: x y z in metres, GTA-V world frame
    root/<seq>/<objid>_Ped_<model>/<frame:06d>.png      the pedestrian's amodal mask (255 = inside)

A 3D row of zeros is a point without a value (NaN); a 2D point at x = -1280 or y = -800 is not on the screen.
The 26 joints are ``nanmean`` over posepile's groups of raw rows (:data:`INTERESTING_JOINTS`, ``ds/sailvos/
main.py``), x 1000 to mm.

Cameras are not in the release: as posepile's ``calibrate_cameras.py``, one pinhole camera is fitted per
pedestrian and frame to its valid 2D-3D point pairs (at least ``min_calib_points``, 6) with OpenCV's
``calibrateCamera``: principal point fixed at the image centre (640, 400), no distortion, the focal length
initialised from a bounded 1-D search over the horizontal field of view (30 - 100 degrees) that minimises the
reprojection error (:func:`fit_camera`). A frame whose fit fails is left out and listed in the quarantine. The
GTA-V world is kilometres wide: per sequence, the mean optical centre of the selected instances is subtracted
from cameras and joints (posepile does the same); world up is +z (GTA-V's height axis).

Selection (posepile ``process_sequence`` and ``make_dataset``): per pedestrian, a frame is kept when some joint
moved >= ``motion_mm`` (100) mm since its last kept frame; the ground-truth box is the box of the modal mask
(``visible == objid``); a person is left out when that box's shorter side is <= ``min_box_side`` (50) px, when
more than ``max_occlusion`` (0.75) of the amodal mask is hidden, with fewer than ``min_valid_joints`` (6) valid
joints, and when the RMS distance of the joints from their mean is outside 100 - 3000 mm (only the frames the
motion rule keeps are fitted). The detection match (Hungarian on IoU, IoU > 0.1, detection area below 2 x the
box's, people without one dropped) is the detect stage's rule ``detect.per_dataset.sailvos`` in params.yaml.
Each person's mask is the union of the visible pixels of every pedestrian of the frame (posepile's
``all_people_mask``, :func:`frame_source`). Everything is train.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import scipy.optimize

from posebank.core.camera import Camera
from posebank.core.errors import FrameReadError, ParamsError
from posebank.core.settings import check_dataset_params
from posebank.core.skeleton import JointInfo
from posebank.datasets.base import (
    DatasetInfo,
    Dropped,
    Frame,
    FrameSource,
    RawFileError,
    RawInstance,
    RawLayoutError,
    check_finite_camera,
)
from posebank.datasets.sampling import record_drop

NAME = "sailvos"
INFO = DatasetInfo(
    name=NAME,
    full_name="SAIL-VOS (Semantic Amodal Instance Level Video Object Segmentation, GTA-V)",
    homepage="https://sailvos.web.illinois.edu/_site/index.html",
    licence=("Research use under the terms on the homepage (unverified); the videos and masks are downloaded with "
             "the homepage's download_sailvos.sh, the human-pose part only on request from the maintainers, not "
             "public; no redistribution."),
    citation=("Y.-T. Hu, H.-S. Chen, K. Hui, J.-B. Huang, A. G. Schwing. SAIL-VOS: Semantic Amodal Instance Level "
              "Video Object Segmentation - A Synthetic Dataset and Baselines. CVPR 2019."),
)

JOINT_INFO = JointInfo(
    "htop,neck,rsho,relb,rwri,lsho,lelb,lwri,rhip,rkne,rank,lhip,lkne,lank,spin,head,pelv,rtoe,ltoe,nose,reye,leye,"
    "rear,lear,rhan,lhan",
    "htop-head-neck-spin-pelv-rhip-rkne-rank-rtoe,neck-rsho-relb-rwri-rhan,pelv,nose-reye-rear")
# posepile ds/sailvos/main.py INTERESTING_JOINTS: the raw rows averaged into each of the 26 joints
INTERESTING_JOINTS = (
    (341, 8), (61,), (216, 234), (171,), (164, 309), (255, 39), (330,), (108,), (45, 294),
    (215, 131, 253), (295,), (144, 315), (147, 342, 27), (85,), (152,), (206, 128, 102), (307, 312),
    (130,), (11,), (167, 188, 191, 310), (194, 193, 236, 78), (227, 304, 58, 229), (37, 260, 195),
    (47, 148, 232),
    (323,), (160,),
)
MIN_RAW_POINTS = 1 + max(max(g) for g in INTERESTING_JOINTS)  # 343
IMAGE_SIZE = (1280, 800)
INVALID_2D = (-1280.0, -800.0)  # x, y of a point not on the screen
WORLD_UP = (0.0, 0.0, 1.0)
M_TO_MM = 1000.0
PED_RE = re.compile(r"(\d+)_Ped_.*")
POSE_RE = re.compile(r"(\d{6})_2d\.txt")
IMAGE_SUFFIXES = (".bmp", ".jpg")  # the release's, posepile's convert_to_jpeg.py
SHARD_KEY = ("sequence",)  # the people of one frame stay together (the detections are matched per frame)

DEFAULT_PARAMS = {
    "sequences": [],  # [] = every folder of the raw root holding images/
    "frame_step": 1,  # posepile: every annotated frame
    "motion_mm": 100.0,  # per pedestrian: kept when some joint moved this far since its last kept frame; 0 = off
    "min_calib_points": 6,  # camera fit: at least this many valid 2D-3D pairs (posepile, for the DLT)
    "min_hfov_deg": 30.0,  # camera fit: the search range of the horizontal field of view (posepile)
    "max_hfov_deg": 100.0,
    "min_box_side": 50.0,  # the modal mask's box: shorter side must exceed this (px)
    "max_occlusion": 0.75,  # 1 - modal area / amodal area must not exceed this
    "min_valid_joints": 6,  # at least this many of the 26 joints (posepile: > 5)
    "min_spread_mm": 100.0,  # RMS distance of the joints from their mean: strictly between these
    "max_spread_mm": 3000.0,
}


# ------------------------------------------------------------------------------------------- readers
def read_points(path, n_columns: int) -> np.ndarray:
    """A ``_2d.txt`` (``n_columns`` 2) or ``_3d.txt`` (3) file as a float64 array (N, n_columns), N >= 343."""
    path = Path(path)
    what = "2D points file" if n_columns == 2 else "3D points file"
    try:
        a = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except OSError as e:
        raise RawFileError(path, f"unreadable {what}: {e.strerror or e}") from None
    except ValueError as e:
        raise RawFileError(path, f"unreadable {what}: not rows of {n_columns} numbers, truncated or corrupt "
                                 f"({e})") from None
    if a.shape[1] != n_columns or len(a) < MIN_RAW_POINTS:
        raise RawFileError(path, f"unreadable {what}: {a.shape[0]} rows of {a.shape[1]} numbers, expected at least "
                                 f"{MIN_RAW_POINTS} rows of {n_columns} (truncated?)")
    return a


def raw_points3d(coords3d_m: np.ndarray) -> np.ndarray:
    """(N, 3) mm with the rows of zeros (no value) as NaN."""
    out = np.asarray(coords3d_m, np.float64) * M_TO_MM
    out[np.all(coords3d_m == 0, axis=1)] = np.nan
    return out


def joints_from_raw(points_mm: np.ndarray) -> np.ndarray:
    """(26, 3) mm: ``nanmean`` over each group of :data:`INTERESTING_JOINTS` (NaN where every member is NaN)."""
    out = np.full((len(INTERESTING_JOINTS), points_mm.shape[1]), np.nan)
    for j, group in enumerate(INTERESTING_JOINTS):
        g = points_mm[list(group)]
        ok = np.isfinite(g).all(1)
        if ok.any():
            out[j] = g[ok].mean(0)
    return out


def joints2d_from_raw(coords2d: np.ndarray) -> np.ndarray:
    """(26, 2) px: the mean of each group's on-screen 2D points (NaN when none is)."""
    pts = np.asarray(coords2d, np.float64).copy()
    pts[~valid_2d(pts)] = np.nan
    return joints_from_raw(pts)


def valid_2d(coords2d: np.ndarray) -> np.ndarray:
    return (coords2d[:, 0] != INVALID_2D[0]) & (coords2d[:, 1] != INVALID_2D[1])


def read_mask_png(path) -> np.ndarray:
    """An amodal ``<frame>.png`` as a grey uint8 array (255 = inside)."""
    data = None
    try:
        data = cv2.imdecode(np.frombuffer(Path(path).read_bytes(), np.uint8), cv2.IMREAD_GRAYSCALE)
    except OSError as e:
        raise RawFileError(path, f"unreadable mask image: {e.strerror or e}") from None
    except cv2.error:
        data = None
    if data is None:
        raise RawFileError(path, "unreadable mask image: not a PNG, truncated or corrupt")
    return data


def visible_path(seq_dir: Path, frame: int) -> Path | None:
    for name in (f"{frame:06d}.npy", f"{frame:06d}.npz"):
        if (seq_dir / "visible" / name).is_file():
            return seq_dir / "visible" / name
    return None


def image_path(seq_dir: Path, frame: int) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        if (seq_dir / "images" / f"{frame:06d}{suffix}").is_file():
            return seq_dir / "images" / f"{frame:06d}{suffix}"
    return None


def read_visible(path) -> np.ndarray:
    """The visible object-id map (H, W) of ``visible/<frame>.npy`` or posepile's ``.npz`` (``visible_ids``)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            if path.suffix == ".npz":
                with np.load(f, allow_pickle=False) as z:
                    if "visible_ids" not in z:
                        raise RawFileError(path, "no 'visible_ids' array in the visibility archive")
                    a = z["visible_ids"]
            else:
                a = np.load(f, allow_pickle=False)
    except RawFileError:
        raise
    except (OSError, ValueError, EOFError) as e:
        raise RawFileError(path, f"unreadable visibility map: not a numpy array, truncated or corrupt ({e})") from None
    if a.ndim != 2:
        raise RawFileError(path, f"visibility map has shape {a.shape}, expected (height, width)")
    return a


# ------------------------------------------------------------------------------------------- cameras
CALIB_FLAGS = (cv2.CALIB_FIX_PRINCIPAL_POINT | cv2.CALIB_USE_INTRINSIC_GUESS
               | cv2.CALIB_FIX_K1 | cv2.CALIB_FIX_K2 | cv2.CALIB_FIX_K3 | cv2.CALIB_FIX_K4
               | cv2.CALIB_FIX_K5 | cv2.CALIB_FIX_K6 | cv2.CALIB_FIX_TANGENT_DIST)


@dataclasses.dataclass(frozen=True)
class CameraFit:
    intrinsic_matrix: np.ndarray  # 3x3
    R: np.ndarray  # world -> camera
    t_m: np.ndarray  # world -> camera translation, metres (x_cam = R x + t)
    rms_px: float  # OpenCV's RMS reprojection error
    n_points: int


def fit_camera(coords2d, coords3d_m, imsize=IMAGE_SIZE, min_points: int = 6,
               hfov_range=(30.0, 100.0)) -> CameraFit | None:
    """posepile ``calibrate_cameras.calibrate_camera``: the camera of one pedestrian's frame from its valid 2D-3D
    pairs (3D not all zero, 2D on the screen), None with fewer than ``min_points``."""
    coords2d = np.asarray(coords2d, np.float64)
    coords3d = np.asarray(coords3d_m, np.float64)
    ok = np.any(coords3d != 0, axis=1) & valid_2d(coords2d) & np.isfinite(coords2d).all(1) & np.isfinite(
        coords3d).all(1)
    if np.count_nonzero(ok) < min_points:
        return None
    pts2d = coords2d[np.newaxis, ok].astype(np.float32)
    mean3d = coords3d[ok].mean(0)
    pts3d = (coords3d[np.newaxis, ok] - mean3d).astype(np.float32)  # centred: numerical stability (posepile)

    def estimate(hfov_deg: float):
        focal = imsize[0] / (2 * np.tan(np.deg2rad(hfov_deg) / 2))
        k = np.array([[focal, 0, imsize[0] / 2], [0, focal, imsize[1] / 2], [0, 0, 1]], np.float64)
        return cv2.calibrateCamera(pts3d, pts2d, tuple(int(v) for v in imsize), k, None, flags=CALIB_FLAGS)

    try:
        best = scipy.optimize.minimize_scalar(lambda h: estimate(h)[0], bounds=tuple(hfov_range),
                                              method="bounded").x
        rms, k, _, rvecs, tvecs = estimate(best)
    except cv2.error:
        return None
    r = cv2.Rodrigues(rvecs[0])[0]
    t = tvecs[0].reshape(3) - r @ mean3d
    if not (np.isfinite(k).all() and np.isfinite(r).all() and np.isfinite(t).all()):
        return None
    return CameraFit(np.asarray(k, np.float64), r, t, float(rms), int(np.count_nonzero(ok)))


def camera_from_fit(fit: CameraFit, origin_mm=(0.0, 0.0, 0.0)) -> Camera:
    """posebank's camera: K, R and the optical centre ``-R^T t`` x 1000 mm minus ``origin_mm``; world up +z."""
    centre = -fit.R.T @ fit.t_m * M_TO_MM - np.asarray(origin_mm, np.float64)
    return Camera(intrinsic_matrix=fit.intrinsic_matrix, R=fit.R, t=centre, world_up=WORLD_UP)


# ------------------------------------------------------------------------------------------- selection
def rms_spread(coords: np.ndarray) -> float:
    """posepile ``multidim_stdev``: RMS distance of the valid joints from their mean (mm)."""
    ok = np.isfinite(coords).all(1)
    if not ok.any():
        return float("nan")
    c = coords[ok]
    return float(np.sqrt(np.mean(np.sum((c - c.mean(0)) ** 2, axis=1))))


def moved_enough(prev: np.ndarray | None, cur: np.ndarray, motion_mm: float) -> bool:
    """posepile ``sufficient_pose_change``: some joint valid in both poses moved >= ``motion_mm``."""
    if prev is None or motion_mm <= 0:
        return True
    d = np.linalg.norm(prev - cur, axis=-1)
    return bool(np.any(d[np.isfinite(d)] >= motion_mm))


def mask_box(mask) -> np.ndarray | None:
    """[x, y, w, h] enclosing the nonzero pixels (pixel centres at integers), None for an empty mask."""
    cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    if not len(cols):
        return None
    return np.array([cols[0] - 0.5, rows[0] - 0.5, cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1], np.float64)


# ------------------------------------------------------------------------------------------- layout
def check_params(params: dict | None) -> dict:
    p = check_dataset_params(NAME, params, DEFAULT_PARAMS)
    bad = [v for v in p["sequences"] if not isinstance(v, str) or not v or "/" in v]
    if bad:
        raise ParamsError(f"datasets.{NAME}.sequences", f"must be a list of sequence folder names, got {bad}")
    if p["frame_step"] < 1:
        raise ParamsError(f"datasets.{NAME}.frame_step", f"must be a positive integer, got {p['frame_step']}")
    if p["min_calib_points"] < 6:
        raise ParamsError(f"datasets.{NAME}.min_calib_points",
                          f"the camera fit needs at least 6 points, got {p['min_calib_points']}")
    if not 0 < p["min_hfov_deg"] < p["max_hfov_deg"] < 180:
        raise ParamsError(f"datasets.{NAME}.min_hfov_deg", f"need 0 < min_hfov_deg < max_hfov_deg < 180, got "
                                                           f"{p['min_hfov_deg']}, {p['max_hfov_deg']}")
    if not 0 <= p["min_valid_joints"] <= JOINT_INFO.n_joints:
        raise ParamsError(f"datasets.{NAME}.min_valid_joints", f"must be in 0..{JOINT_INFO.n_joints}")
    if not 0 <= p["max_occlusion"] <= 1:
        raise ParamsError(f"datasets.{NAME}.max_occlusion", f"must be in [0, 1], got {p['max_occlusion']}")
    for key in ("motion_mm", "min_box_side", "min_spread_mm"):
        if p[key] < 0:
            raise ParamsError(f"datasets.{NAME}.{key}", f"must not be negative, got {p[key]}")
    if p["max_spread_mm"] <= p["min_spread_mm"]:
        raise ParamsError(f"datasets.{NAME}.max_spread_mm", "must exceed min_spread_mm")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    check_params(params)
    return ("train",)


def _sequences(root: Path, p: dict) -> list[str]:
    if p["sequences"]:
        return list(p["sequences"])
    return sorted(d.name for d in root.iterdir() if d.is_dir() and (d / "images").is_dir())


def _people(seq_dir: Path) -> dict[str, dict[int, Path]]:
    """{pedestrian folder: {frame: its _2d.txt}} of one sequence, sorted."""
    out = {}
    for d in sorted(seq_dir.iterdir()):
        if d.is_dir() and PED_RE.fullmatch(d.name):
            frames = {int(m.group(1)): f for f in d.iterdir() if (m := POSE_RE.fullmatch(f.name))}
            out[d.name] = dict(sorted(frames.items()))
    return out


def check_layout(root, params: dict | None = None) -> dict[str, dict[str, dict[int, Path]]]:
    """Verify the raw tree: per selected sequence its images/ and visible/ folders, at least one pedestrian folder
    with ``_2d.txt`` files, and per annotated frame the ``_3d.txt``, the amodal ``.png``, the frame's image and
    its visibility map. Returns ``{sequence: {pedestrian folder: {frame: _2d.txt path}}}``."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    seqs = _sequences(root, p)
    if not seqs:
        raise RawLayoutError(NAME, root, "<seq>/images/ (no sequence folder)")
    missing, out = [], {}
    for seq in seqs:
        d = root / seq
        for sub in ("images", "visible"):
            if not (d / sub).is_dir():
                missing.append(f"{seq}/{sub}/")
        people = _people(d) if d.is_dir() else {}
        if not any(people.values()):
            missing.append(f"{seq}/<objid>_Ped_*/<frame>_2d.txt")
        frames = set()
        for ped, files in people.items():
            for frame in files:
                frames.add(frame)
                for name in (f"{frame:06d}_3d.txt", f"{frame:06d}.png"):
                    if not (d / ped / name).is_file():
                        missing.append(f"{seq}/{ped}/{name}")
        for frame in sorted(frames):
            if image_path(d, frame) is None:
                missing.append(f"{seq}/images/{frame:06d}.bmp (or .jpg)")
            if visible_path(d, frame) is None:
                missing.append(f"{seq}/visible/{frame:06d}.npy (or .npz)")
        out[seq] = people
    if missing:
        raise RawLayoutError(NAME, root, missing)
    return out


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected pedestrian instance, ordered by sequence, frame and pedestrian folder. Frames whose camera
    fit fails and people the box, occlusion, joint-count and spread rules leave out go to ``dropped``."""
    p = check_params(params)
    root = Path(root)
    layout = check_layout(root, p)
    out = []
    for seq, people in layout.items():
        d = root / seq
        kept: list[tuple[int, str, np.ndarray, CameraFit, np.ndarray]] = []
        visible_cache: dict[int, np.ndarray] = {}
        for ped, files in people.items():
            objid = int(PED_RE.fullmatch(ped).group(1))
            prev = None
            for frame, path2d in files.items():
                if frame % p["frame_step"]:
                    continue
                where = f"{seq}/{ped}/{frame:06d}_2d.txt"
                path3d = d / ped / f"{frame:06d}_3d.txt"
                coords3d, n_2d = read_points(path3d, 3), len(read_points(path2d, 2))
                if n_2d != len(coords3d):
                    raise RawFileError(path2d, f"{n_2d} points, but its _3d.txt has {len(coords3d)}")
                coords = joints_from_raw(raw_points3d(coords3d))
                # posepile fits first and skips a frame without a camera before the motion rule; a frame the motion
                # rule skips is skipped either way, so only the frames it keeps are fitted (the same selection)
                if not moved_enough(prev, coords, p["motion_mm"]):
                    continue
                fit = _fit_files(path2d, path3d, _stamp(path2d), _stamp(path3d), p["min_calib_points"],
                                 p["min_hfov_deg"], p["max_hfov_deg"])
                if fit is None:
                    record_drop(dropped, where, [frame], f"camera fit failed: fewer than {p['min_calib_points']} "
                                                         "valid 2D-3D point pairs")
                    continue
                prev = coords
                if frame not in visible_cache:
                    visible_cache.clear()
                    visible_cache[frame] = read_visible(visible_path(d, frame))
                modal = visible_cache[frame] == objid
                amodal = read_mask_png(d / ped / f"{frame:06d}.png").astype(np.float64)  # area = sum / 255
                box = mask_box(modal)
                reason = None
                n_valid = int(np.count_nonzero(np.isfinite(coords[:, 0])))
                spread = rms_spread(coords)
                if box is None:
                    reason = "no visible pixel (visible map)"
                elif min(box[2], box[3]) <= p["min_box_side"]:
                    reason = f"visible box {box[2]:.0f} x {box[3]:.0f} px: a side <= {p['min_box_side']:g}"
                elif amodal.any() and 1 - modal.sum() / (amodal.sum() / 255) > p["max_occlusion"]:
                    reason = f"more than {p['max_occlusion']:g} of the amodal mask hidden"
                elif n_valid < p["min_valid_joints"]:
                    reason = f"{n_valid} valid joints, fewer than {p['min_valid_joints']}"
                elif not p["min_spread_mm"] < spread < p["max_spread_mm"]:
                    reason = (f"joint spread {spread:.0f} mm outside ({p['min_spread_mm']:g}, "
                              f"{p['max_spread_mm']:g})")
                if reason:
                    record_drop(dropped, where, [frame], reason)
                    continue
                kept.append((frame, ped, coords, fit, box))
        if not kept:
            continue
        origin = np.mean([-f.R.T @ f.t_m * M_TO_MM for _, _, _, f, _ in kept], axis=0)
        kept.sort(key=lambda k: (k[0], k[1]))
        for frame, ped, coords, fit, box in kept:
            out.append(RawInstance(
                source=image_path(d, frame).relative_to(root).as_posix(), frame_index=frame,
                world_coords=(coords - origin).astype(np.float32), camera=_checked(camera_from_fit(fit, origin), d,
                                                                                   ped, frame),
                split="train", subject=f"{seq}/{ped}", sequence=seq, bbox=box,
                person_index=int(PED_RE.fullmatch(ped).group(1))))
    return out


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=8192)
def _fit_files(path2d: Path, path3d: Path, stamp2d, stamp3d, min_points: int, min_hfov: float,
               max_hfov: float) -> CameraFit | None:
    """The fitted camera of one pedestrian's frame, remembered per file version (the stamps: modification time
    and size), so that converting the same tree again does not repeat the fits."""
    coords2d, coords3d = read_points(path2d, 2), read_points(path3d, 3)
    return fit_camera(coords2d, coords3d, IMAGE_SIZE, min_points, (min_hfov, max_hfov))


def _checked(camera: Camera, seq_dir: Path, ped: str, frame: int) -> Camera:
    check_finite_camera(camera, seq_dir / ped / f"{frame:06d}_2d.txt")
    return camera


# ------------------------------------------------------------------------------------------- frames
FRAME_SOURCE_PARAMS: tuple[str, ...] = ()  # the frames and masks depend on no setting


def people_mask(seq_dir: Path, frame: int) -> tuple[list[int], np.ndarray]:
    """posepile's ``all_people_mask``: the pedestrians with an amodal mask in ``frame`` and the union of their
    visible pixels."""
    ids = sorted(int(m.group(1)) for d in seq_dir.iterdir()
                 if (m := PED_RE.fullmatch(d.name)) and (d / f"{frame:06d}.png").is_file())
    path = visible_path(seq_dir, frame)
    if path is None:
        raise RawFileError(seq_dir / "visible" / f"{frame:06d}.npy", "visibility map missing")
    visible = read_visible(path)
    return ids, np.isin(visible, ids)


def frame_source(raw_root, params: dict | None = None) -> FrameSource:
    """The frame images (.bmp or .jpg), with every pedestrian's mask: the union of the frame's visible
    pedestrians."""
    from posebank.imaging.video import read_image

    raw_root = Path(raw_root)

    def frames(source: str, indices: Sequence[int]) -> Iterator[tuple[int, Frame]]:
        path = raw_root / source
        try:
            image = read_image(path)
        except FrameReadError as e:
            for i in sorted(set(indices)):
                yield i, Frame(None, problem=str(e.problem))
            return
        for i in sorted(set(indices)):
            ids, mask = people_mask(path.parent.parent, i)
            if mask.shape != image.shape[:2]:
                raise RawFileError(visible_path(path.parent.parent, i), f"visibility map is {mask.shape[1]}x"
                                   f"{mask.shape[0]}, the image {image.shape[1]}x{image.shape[0]}")
            yield i, Frame(image, masks={k: mask for k in ids})

    return frames


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.sailvos.fixture.make_fixture`)."""
    from posebank.datasets.sailvos.fixture import make_fixture as write

    return write(root, seed, **options)


# No direct download: the pose part is handed out by the maintainers on request.
RAW_INSTRUCTIONS = """
    SAIL-VOS: the videos and masks come with download_sailvos.sh from the homepage
    (https://sailvos.web.illinois.edu/_site/index.html); the human-pose part (sailvos_pose_training.tar,
    sailvos_pose_val.tar) is not public: request it from the SAIL-VOS maintainers. Unpack both tars and their zips
    into the raw folder, so that it holds, per sequence,
        <seq>/images/000000.bmp ...            (or posepile's converted .jpg)
        <seq>/visible/000000.npy ...           (or posepile's compressed .npz, key visible_ids)
        <seq>/<objid>_Ped_<model>/000000_2d.txt, 000000_3d.txt, 000000.png ...
    No camera files are needed: posebank fits the cameras itself.
"""
