"""MADS (Zhang et al., 2017): Martial Arts, Dancing and Sports, motion-captured actors filmed by three calibrated
cameras.

Raw layout, as ``MADS_multiview.zip`` (a split zip, rejoined with ``zip -s 0``) unpacks, the one posepile
``ds/mads/main.py`` globs (``multi_view_data/*/*.avi``)::

    root/multi_view_data/<action>/<name>_C<c>.avi     one video per camera c (the digit before ``.avi``)
    root/multi_view_data/<action>/<name>_GT.mat       the sequence's 3D joints (the video path minus ``C<c>.avi``)
    root/multi_view_data/<action>/Calib_Cam<c>.mat    the calibration of camera c, shared by the folder's videos

Formats (posepile ``make_stage1`` and ``load_camera``):

* ``<name>_GT.mat``: ``GTpose2``, a 1 x N cell array, one cell per video frame: the 19 joints ``neck, pelv, lhip,
  lkne, lank, ltoe, rhip, rkne, rank, rtoe, lsho, lelb, lwri, lhan, rsho, relb, rwri, rhan, head`` x (x, y, z) in
  mm, world frame; some files hold 15 joints per frame (no toes and hands: ``neck, pelv, lhip, lkne, lank, rhip,
  rkne, rank, lsho, lelb, lwri, rsho, relb, rwri, head``), which are put in their slots of the 19 (the others
  missing). A frame whose joints are all NaN (or an empty cell) has no pose and is left out.
* ``Calib_Cam<c>.mat``: the output of Bouguet's Camera Calibration Toolbox for MATLAB: ``om_ext`` (the world ->
  camera rotation as a Rodrigues vector), ``T_ext`` (mm), ``x_cam = R x_world + T_ext``; ``KK`` the intrinsic
  matrix (``fc``, ``cc``, skew ``alpha_c``); ``kc`` the distortion ``[k1 k2 p1 p2 k3]`` of the toolbox's model
  ``x_d = (1 + k1 r² + k2 r⁴ + k3 r⁶) x + [2 p1 x y + p2 (r² + 2x²); p1 (r² + 2y²) + 2 p2 x y]`` (its kc(1..5)),
  which is OpenCV's model in OpenCV's order, so posebank keeps ``kc`` as ``distortion_coeffs``. The toolbox's
  pixel (0, 0) is the centre of the top-left pixel, as posebank's. Optical centre ``-Rᵀ T_ext``; world up +y
  (posepile).
* The videos have one frame per cell of ``GTpose2``; posepile zips the two, so the shorter ends a video (posebank
  records the cells past a video's end as dropped).

Selection (posepile ``make_stage1``): every video; per video, frames without a pose are left out, then adaptive pose
sampling with posepile's validity check (``AdaptivePoseSampler(100, check_validity=True)``: a frame is kept when a
joint missing in the last kept pose is present, or when some joint moved >= 100 mm). The box is the detect stage's
rule ``detect.per_dataset.mads`` (posepile: the best-IoU YOLOv4 detection, else the projected joints' box x 1.2).
Everything is train.
"""

from __future__ import annotations

import dataclasses
import re
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
from posebank.datasets.sampling import ValidatingPoseSampler, drop_missing_poses, record_drop

NAME = "mads"
INFO = DatasetInfo(
    name=NAME,
    full_name="MADS (Martial Arts, Dancing and Sports)",
    homepage="http://visal.cs.cityu.edu.hk/research/mads/",
    licence=("Research use (unverified): released by the VISAL group of City University of Hong Kong after a request "
             "on the homepage, no redistribution."),
    citation=("W. Zhang, Z. Liu, L. Zhou, H. Leung, A. B. Chan. Martial Arts, Dancing and Sports dataset: a "
              "Challenging Stereo and Multi-View Dataset for 3D Human Pose Estimation. Image and Vision Computing "
              "61, 2017."),
)

DATA_DIR = "multi_view_data"
CAMERAS = (0, 1, 2)
SPLITS = ("train",)
WORLD_UP = (0.0, 1.0, 0.0)  # posepile load_camera

# posepile's joint order of GTpose2's 19 rows, and of the files with 15
JOINT_NAMES = ("neck,pelv,lhip,lkne,lank,ltoe,rhip,rkne,rank,rtoe,lsho,lelb,lwri,lhan,rsho,relb,rwri,rhan,"
               "head").split(",")
NAMES15 = "neck,pelv,lhip,lkne,lank,rhip,rkne,rank,lsho,lelb,lwri,rsho,relb,rwri,head".split(",")
INDICES15 = [JOINT_NAMES.index(n) for n in NAMES15]
N_JOINTS = len(JOINT_NAMES)
# posepile's edges (the left side is mirrored by JointInfo)
JOINT_INFO = JointInfo(",".join(JOINT_NAMES), "head-neck-pelv-rhip-rkne-rank-rtoe,neck-rsho-relb-rwri-rhan")

DEFAULT_PARAMS = {
    "actions": [],  # folders of multi_view_data/ (e.g. HipHop); [] = every folder (posepile)
    "cameras": list(CAMERAS),  # the _C<c>.avi videos (posepile: all)
    "frame_step": 1,  # posepile: every frame ...
    "adaptive_sampling_mm": 100.0,  # ... then per video keep a frame when some joint moved >= this; 0 = off
}

_VIDEO = re.compile(r"^(.+)_C(\d)\.avi$")
PAST_VIDEO_END = "poses past the end of the video"


# ------------------------------------------------------------------------------------------- paths
def gt_relpath(video: str) -> str:
    """The annotation file of a video (posepile: ``video_path[:-6] + 'GT.mat'``)."""
    return video[:-6] + "GT.mat"


def calib_relpath(video: str, camera: int) -> str:
    return f"{video.rsplit('/', 1)[0]}/Calib_Cam{camera}.mat"


# ------------------------------------------------------------------------------------------- readers
def _vector(path: Path, data: dict, key: str, n: int) -> np.ndarray:
    v = np.asarray(data[key], np.float64).reshape(-1)
    if v.size != n:
        raise RawFileError(path, f"{key} has {v.size} values, expected {n}")
    return v


def read_camera(path) -> Camera:
    """The camera of a Bouguet-toolbox ``Calib_Cam<c>.mat`` (``om_ext``, ``T_ext``, ``KK``, ``kc``)."""
    path = Path(path)
    data = load_mat(path, ["om_ext", "T_ext", "KK", "kc"], what="calibration file")
    om = _vector(path, data, "om_ext", 3)
    t_ext = _vector(path, data, "T_ext", 3)
    kk = np.asarray(data["KK"], np.float64)
    if kk.shape != (3, 3):
        raise RawFileError(path, f"KK has shape {kk.shape}, expected (3, 3)")
    kc = np.asarray(data["kc"], np.float64).reshape(-1)
    if not 1 <= kc.size <= 5:
        raise RawFileError(path, f"kc has {kc.size} values, expected at most 5 (k1 k2 p1 p2 k3)")
    if not (np.all(np.isfinite(om)) and np.all(np.isfinite(t_ext))):
        raise RawFileError(path, "om_ext or T_ext is not finite")
    rot = cv2.Rodrigues(om)[0]  # posepile: transforms3d axangle2mat(om, |om|), the same rotation
    camera = Camera(intrinsic_matrix=kk, R=rot, t=-rot.T @ t_ext, distortion_coeffs=kc, world_up=WORLD_UP)
    check_finite_camera(camera, path)
    return camera


def read_poses(path) -> np.ndarray:
    """(N, 19, 3) mm of ``GTpose2``, one row per video frame; a 15-joint frame in its slots (the others NaN), a
    frame without a pose (empty cell) all NaN."""
    path = Path(path)
    cells = load_mat(path, ["GTpose2"], what="annotation file")["GTpose2"]
    cells = cells.reshape(-1) if isinstance(cells, np.ndarray) and cells.dtype == object else [cells]
    out = np.full((len(cells), N_JOINTS, 3), np.nan)
    for i, cell in enumerate(cells):
        a = np.asarray(cell, np.float64)
        if a.size == 0:
            continue
        if a.shape == (N_JOINTS, 3):
            out[i] = a
        elif a.shape == (len(NAMES15), 3):
            out[i, INDICES15] = a
        else:
            raise RawFileError(path, f"GTpose2 cell {i + 1} has shape {a.shape}, expected 19 x 3 or 15 x 3")
    if not len(out):
        raise RawFileError(path, "GTpose2 holds no frames")
    return out


def video_frame_count(path) -> int:
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise RawFileError(path, "cannot open video (unsupported codec or corrupt file)")
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()


# ------------------------------------------------------------------------------------------- params, layout
def check_params(params: dict | None) -> dict:
    p = check_dataset_params(NAME, params, DEFAULT_PARAMS)
    if not all(isinstance(a, str) and a and "/" not in a for a in p["actions"]):
        raise ParamsError(f"datasets.{NAME}.actions", f"must be folder names of {DATA_DIR}/, got {p['actions']}")
    c = p["cameras"]
    if not c or len(set(c)) != len(c) or set(c) - set(CAMERAS):
        raise ParamsError(f"datasets.{NAME}.cameras", f"must be distinct values of {', '.join(map(str, CAMERAS))}, "
                                                      f"got {c}")
    if p["frame_step"] < 1:
        raise ParamsError(f"datasets.{NAME}.frame_step", f"must be a positive integer, got {p['frame_step']}")
    if p["adaptive_sampling_mm"] < 0:
        raise ParamsError(f"datasets.{NAME}.adaptive_sampling_mm", "must be >= 0 (0 = off), got "
                                                                   f"{p['adaptive_sampling_mm']}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    check_params(params)
    return SPLITS


@dataclasses.dataclass(frozen=True)
class Video:
    action: str  # the folder of multi_view_data
    name: str  # <name> of <name>_C<c>.avi
    camera: int

    @property
    def source(self) -> str:
        return f"{DATA_DIR}/{self.action}/{self.name}_C{self.camera}.avi"


def check_layout(root, params: dict | None = None) -> list[Video]:
    """Verify the raw tree; the selected videos, sorted (posepile's ``sorted(glob(...))``). Names every missing
    folder, annotation and calibration file."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    data = root / DATA_DIR
    if not data.is_dir():
        raise RawLayoutError(NAME, root, f"{DATA_DIR}/")
    actions = p["actions"] or sorted(d.name for d in data.iterdir() if d.is_dir())
    missing, out = [], []
    for action in actions:
        folder = data / action
        if not folder.is_dir():
            missing.append(f"{DATA_DIR}/{action}/")
            continue
        videos = [(m[1], int(m[2])) for m in map(_VIDEO.match, sorted(f.name for f in folder.iterdir())) if m]
        if not videos:
            missing.append(f"{DATA_DIR}/{action}/<name>_C<c>.avi")
        for name, c in videos:
            if c not in p["cameras"]:
                continue
            video = Video(action, name, c)
            missing += [rel for rel in (gt_relpath(video.source), calib_relpath(video.source, c))
                        if not (root / rel).is_file() and rel not in missing]
            out.append(video)
    if missing:
        raise RawLayoutError(NAME, root, missing)
    if not out:
        raise RawLayoutError(NAME, root, f"{DATA_DIR}/<action>/<name>_C<c>.avi of cameras {p['cameras']}")
    return sorted(out, key=lambda v: v.source)


# ------------------------------------------------------------------------------------------- instances
def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected person instance, ordered by video (action, name, camera) and frame."""
    p = check_params(params)
    root = Path(root)
    videos = check_layout(root, p)
    cameras: dict[str, Camera] = {}
    poses_of: dict[str, np.ndarray] = {}
    out = []
    for video in videos:
        source = video.source
        calib = calib_relpath(source, video.camera)
        if calib not in cameras:
            cameras[calib] = read_camera(root / calib)
        gt = gt_relpath(source)
        if gt not in poses_of:
            poses_of[gt] = read_poses(root / gt)
        camera, poses = cameras[calib], poses_of[gt]
        n = min(len(poses), video_frame_count(root / source))
        record_drop(dropped, source, [i for i in range(0, len(poses), p["frame_step"]) if i >= n], PAST_VIDEO_END)
        frames = drop_missing_poses(poses, range(0, n, p["frame_step"]), source, dropped)
        if p["adaptive_sampling_mm"] > 0:
            sampler = ValidatingPoseSampler(p["adaptive_sampling_mm"])
            frames = [i for i in frames if sampler.should_keep(poses[i])]
        for i in frames:
            out.append(RawInstance(
                source=source, frame_index=i, world_coords=poses[i].copy(), camera=camera, split="train",
                sequence=video.name, activity=video.action, camera_name=f"C{video.camera}"))
    return out


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.mads.fixture.make_fixture`, which
    takes the ``options``)."""
    from posebank.datasets.mads.fixture import make_fixture as write

    return write(root, seed, **options)


RAW_INSTRUCTIONS = """
    MADS: request the data on its homepage, http://visal.cs.cityu.edu.hk/research/mads/ ; download the parts of the
    split zip MADS_multiview.zip (MADS_multiview.z01 ...) from the Google Drive folder you are given, rejoin them
    with `zip -s 0 MADS_multiview.zip --out joined.zip` and unzip that into the raw folder, so that it holds
        multi_view_data/<action>/<name>_C0.avi ... <name>_C2.avi, <name>_GT.mat, Calib_Cam0.mat ... Calib_Cam2.mat
"""
