"""IKEA ASM (Ben-Shabat et al., WACV 2021): people assembling IKEA furniture, filmed by three Kinect v2 colour
cameras, with 17 COCO joints triangulated from the three views on about 1 % of the frames (pseudo ground truth).

Raw layout, as the release's Google Drive zips unpack (RGB videos, camera parameters, pose annotations) and as
posepile ``ds/ikea/main.py`` globs it (``**/images/scan_video.avi``, ``**/pose3d/*.json``)::

    root/Calibration/camera_parameters.pkl                      every calibration's three cameras
    root/<furniture>/<sequence>/<dev>/images/scan_video.avi     one video per camera dev1, dev2, dev3
    root/<furniture>/<sequence>/<dev>/pose3d/<frame:06d>.json   the 3D joints of an annotated frame

``<sequence>`` is e.g. ``0001_black_table_02_01_2019_08_16_14_00``; its fourth ``_`` field (``02``) is the
calibration id (the release's ``human_pose/triangulate.py``: ``scene = label.split('_')[3]``). posepile leaves out
the sequences named ``special_test`` (``skip_sequences``). posepile first extracts the annotated frames of each
video to ``images/<frame:06d>.jpg``; posebank decodes them from ``scan_video.avi`` directly (the same frames).

Formats (the release's ``human_pose/triangulate.py`` and ``calibration.py``, which wrote them):

* ``pose3d/<frame>.json``: ``{"format": "ikea", "pose_keypoints_3d": [X1, Y1, Z1, C1, ..., X17, Y17, Z17,
  C17]}``, the joints in that camera's frame in **centimetres** (the calibration chessboard's 4 cm squares);
  a joint the triangulation rejected is all zeros. Joints are COCO's 17 (``joint_ids.get_ikea_joint_names``).
  posepile: ``reshape(-1, 4)[:, :3] * 10`` (mm), zeros -> NaN; here a joint is missing when its confidence is 0
  or one of its coordinates is exactly 0 (posepile's NaN).
* ``camera_parameters.pkl``: a pickle of plain dicts and numpy arrays (read through
  :func:`posebank.core.safe_pickle.load`, numpy arrays only): ``{calib_id: {"dev1"|"dev2"|"dev3": {"K": 3 x 3,
  "dist_coefs": zeros (the calibration fixes every distortion term at 0), "R": 3 x 3, "T": 3 x 1 (cm), "P":
  K [R|T]}}}``, with ``x_dev = R x + T`` for a point x in dev2's frame (dev2: R = I, T = 0). The joints were
  triangulated with ``P`` (no distortion) and written per camera as ``R X + T``.

World frame: dev2's camera frame of the sequence's calibration, in mm; a camera is ``R`` with optical centre
``-Rᵀ 10 T`` (mm), so the three views of a frame share one world, ``X = Rᵀ (x_dev - 10 T)``. posepile drops ``T``
(world = ``Rᵀ x_dev``, every camera at the origin), see docs/datasets.md. World up is ``(0, -1, 0)`` (posepile:
"not given in the dataset, we set it to one camera's vertical axis"), dev2's image up.

Selection (posepile ``make_stage1``): per video (sequence and camera) the annotated frames in order, then
``AdaptivePoseSampler(100, check_validity=True)`` on the pose, then at least ``min_visible_joints`` (4) joints in
front of the camera and inside the 1920 x 1080 image. The box is the detect stage's rule
``detect.per_dataset.ikea`` (posepile: the best-IoU YOLOv4 detection, else the projected joints' box x 1.2, and
the frame left out when that box's IoU with the projected box x 1.2 is below 0.3). Everything is train.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import cv2
import numpy as np

from posebank.core import safe_pickle
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
from posebank.datasets.sampling import MISSING_POSE, ValidatingPoseSampler, record_drop

NAME = "ikea"
INFO = DatasetInfo(
    name=NAME,
    full_name="IKEA ASM (IKEA assembly)",
    homepage="https://ikeaasm.github.io/",
    licence=("Code MIT (IkeaASM/IKEA_ASM_Dataset); the data for research use as stated on the homepage "
             "(unverified), downloaded from the release's Google Drive, no redistribution."),
    citation=("Y. Ben-Shabat, X. Yu, F. Saleh, D. Campbell, C. Rodriguez-Opazo, H. Li, S. Gould. The IKEA ASM "
              "Dataset: Understanding People Assembling Furniture through Actions, Objects and Pose. WACV 2021, "
              "pp. 847-859."),
)

CALIBRATION = "Calibration/camera_parameters.pkl"
CALIBRATION_DIR = "Calibration"
VIDEO = "images/scan_video.avi"
POSES = "pose3d"
CAMERAS = ("dev1", "dev2", "dev3")
SPLITS = ("train",)
IMAGE_SIZE = (1920, 1080)  # posepile: is_visible(imsize=[1920, 1080]), the Kinect v2 colour frames
WORLD_UP = (0.0, -1.0, 0.0)  # posepile load_cameras
CM_TO_MM = 10.0
# posepile's joint names (the release's COCO order) and edges
JOINT_NAMES = "nose,leye,reye,lear,rear,lsho,rsho,lelb,relb,lwri,rwri,lhip,rhip,lkne,rkne,lank,rank".split(",")
N_JOINTS = len(JOINT_NAMES)
JOINT_INFO = JointInfo(",".join(JOINT_NAMES), "rank-rkne-rhip-lhip,rhip-rsho-relb-rwri,rsho-lsho,rear-reye-nose")

DEFAULT_PARAMS = {
    "furniture": [],  # folders of the raw root (e.g. Lack_Side_Table); [] = every folder but Calibration (posepile)
    "cameras": list(CAMERAS),  # the views (posepile: all three)
    "skip_sequences": ["special_test"],  # sequence folders left out (posepile: parts[-4] == 'special_test')
    "adaptive_sampling_mm": 100.0,  # posepile: per video AdaptivePoseSampler(100, check_validity=True); 0 = off
    "min_visible_joints": 4,  # posepile: >= 4 joints in front of the camera inside the 1920 x 1080 image
}

_POSE_FILE = re.compile(r"^(\d+)\.json$")
PAST_VIDEO_END = "pose3d annotation past the end of the video"
NO_POSES = "no pose3d/<frame>.json annotations for this video"
TOO_FEW_VISIBLE = "fewer than min_visible_joints joints inside the 1920 x 1080 image"


# ------------------------------------------------------------------------------------------- readers
def read_pose(path) -> np.ndarray:
    """(17, 3) mm in the camera's frame from a ``pose3d/<frame>.json`` (cm x 10); a joint with confidence 0 or a
    zero coordinate is NaN."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RawFileError(path, f"unreadable pose file: not valid JSON, truncated or corrupt ({e})") from None
    except OSError as e:
        raise RawFileError(path, f"unreadable pose file: {e.strerror or e}") from None
    if not isinstance(data, dict) or "pose_keypoints_3d" not in data:
        raise RawFileError(path, "not a pose3d file: no 'pose_keypoints_3d' list")
    try:
        flat = np.asarray(data["pose_keypoints_3d"], np.float64)
    except (TypeError, ValueError):
        raise RawFileError(path, "pose_keypoints_3d is not a list of numbers") from None
    if flat.shape != (N_JOINTS * 4,) or not np.isfinite(flat).all():
        raise RawFileError(path, f"pose_keypoints_3d must be {N_JOINTS} x 4 = {N_JOINTS * 4} finite numbers "
                                 f"(X, Y, Z, C per joint), got shape {flat.shape}")
    rows = flat.reshape(N_JOINTS, 4)
    pose = rows[:, :3] * CM_TO_MM
    pose[(rows[:, 3] == 0) | (rows[:, :3] == 0).any(axis=1)] = np.nan
    return pose


def _array(path: Path, where: str, entry: dict, key: str, shape: tuple) -> np.ndarray:
    if key not in entry:
        raise RawFileError(path, f"{where} has no {key!r} (has {sorted(map(str, entry))})")
    try:
        a = np.asarray(entry[key], np.float64)
    except (TypeError, ValueError):
        raise RawFileError(path, f"{where}[{key!r}] is not a numeric array") from None
    if a.size != int(np.prod(shape)):
        raise RawFileError(path, f"{where}[{key!r}] has shape {a.shape}, expected {shape}")
    return a.reshape(shape)


def read_cameras(path) -> dict[str, dict[str, Camera]]:
    """``camera_parameters.pkl`` -> {calib_id: {dev: Camera}} (restricted unpickler: plain dicts and numpy
    arrays). Camera: ``K``, ``R``, optical centre ``-Rᵀ 10 T`` (mm, dev2's frame), no distortion (the
    triangulation's ``P = K [R|T]``), up ``(0, -1, 0)``."""
    path = Path(path)
    data = safe_pickle.load(path)
    if not isinstance(data, dict) or not data:
        raise RawFileError(path, "not IKEA ASM camera parameters: expected {calibration id: {dev: {K, R, T}}}")
    out: dict[str, dict[str, Camera]] = {}
    for calib_id, devs in data.items():
        if not isinstance(devs, dict):
            raise RawFileError(path, f"calibration {calib_id!r} is not a dict of cameras")
        out[str(calib_id)] = {}
        for dev, entry in devs.items():
            where = f"[{calib_id!r}][{dev!r}]"
            if not isinstance(entry, dict):
                raise RawFileError(path, f"{where} is not a dict of K, R, T")
            k = _array(path, where, entry, "K", (3, 3))
            rot = _array(path, where, entry, "R", (3, 3))
            t_cm = _array(path, where, entry, "T", (3,))
            if not (np.isfinite(rot).all() and np.isfinite(t_cm).all()):
                raise RawFileError(path, f"{where}: R or T is not finite")
            if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-4) or np.linalg.det(rot) < 0:
                raise RawFileError(path, f"{where}: R is not a rotation matrix")
            camera = Camera(intrinsic_matrix=k, R=rot, t=-rot.T @ (CM_TO_MM * t_cm), world_up=WORLD_UP)
            try:
                check_finite_camera(camera, path)
            except RawFileError as e:
                raise RawFileError(path, f"{where}: {e.problem}") from None
            out[str(calib_id)][str(dev)] = camera
    return out


def calibration_id(sequence: str) -> str | None:
    """The calibration id of a sequence folder name: its fourth ``_`` field (``0001_black_table_02_...`` ->
    ``02``), None when it has fewer fields."""
    parts = sequence.split("_")
    return parts[3] if len(parts) > 3 else None


def video_frame_count(path) -> int:
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise RawFileError(path, "cannot open video (unsupported codec or corrupt file)")
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()


def visible_count(camera: Camera, coords: np.ndarray, size: tuple[int, int] = IMAGE_SIZE) -> int:
    """Joints in front of the camera projecting inside the image, ``0 <= x < W`` and ``0 <= y < H`` (cameralib
    ``Camera.is_visible``, which posepile counts)."""
    ok = np.isfinite(coords).all(axis=1)
    if not ok.any():
        return 0
    z = camera.world_to_camera(coords[ok])[:, 2]
    im = camera.project(coords[ok])
    inside = (z > 0) & (im[:, 0] >= 0) & (im[:, 0] < size[0]) & (im[:, 1] >= 0) & (im[:, 1] < size[1])
    return int(np.count_nonzero(inside))


# ------------------------------------------------------------------------------------------- params, layout
def check_params(params: dict | None = None) -> dict:
    p = check_dataset_params(NAME, params, DEFAULT_PARAMS)
    where = f"datasets.{NAME}"
    for key in ("furniture", "skip_sequences"):
        if not all(isinstance(a, str) and a and "/" not in a for a in p[key]):
            raise ParamsError(f"{where}.{key}", f"must be folder names, got {p[key]}")
    if "Calibration" in p["furniture"]:
        raise ParamsError(f"{where}.furniture", "Calibration holds the cameras, not a furniture's sequences")
    c = p["cameras"]
    if not c or len(set(c)) != len(c) or set(c) - set(CAMERAS):
        raise ParamsError(f"{where}.cameras", f"must be distinct values of {', '.join(CAMERAS)}, got {c}")
    if p["adaptive_sampling_mm"] < 0:
        raise ParamsError(f"{where}.adaptive_sampling_mm", f"must be >= 0 (0 = off), got {p['adaptive_sampling_mm']}")
    if not 0 <= p["min_visible_joints"] <= N_JOINTS:
        raise ParamsError(f"{where}.min_visible_joints", f"must be 0..{N_JOINTS}, got {p['min_visible_joints']}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    check_params(params)
    return SPLITS


@dataclasses.dataclass(frozen=True)
class Video:
    furniture: str
    sequence: str  # the sequence folder, e.g. 0001_black_table_02_01_2019_08_16_14_00
    camera: str  # dev1 | dev2 | dev3

    @property
    def folder(self) -> str:
        return f"{self.furniture}/{self.sequence}/{self.camera}"

    @property
    def source(self) -> str:
        return f"{self.folder}/{VIDEO}"


def check_layout(root, params: dict | None = None) -> list[Video]:
    """Verify the raw tree; the selected videos, sorted. Names the calibration file, every missing furniture or
    camera folder and video, and every sequence whose name has no calibration id."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    missing = [] if (root / CALIBRATION).is_file() else [CALIBRATION]
    furniture = p["furniture"] or sorted(d.name for d in root.iterdir() if d.is_dir() and d.name != CALIBRATION_DIR
                                         and not d.name.startswith("."))
    out = []
    for name in furniture:
        folder = root / name
        if not folder.is_dir():
            missing.append(f"{name}/")
            continue
        sequences = sorted(d.name for d in folder.iterdir() if d.is_dir() and d.name not in p["skip_sequences"])
        if not sequences:
            missing.append(f"{name}/<sequence>/")
        for seq in sequences:
            if calibration_id(seq) is None:
                missing.append(f"{name}/{seq}/ named <id>_<colour>_<surface>_<calibration id>_... (no calibration "
                               "id in its fourth '_' field; list it in skip_sequences to leave it out)")
                continue
            for cam in p["cameras"]:
                video = Video(name, seq, cam)
                if not (root / video.source).is_file():
                    missing.append(video.source)
                out.append(video)
    if missing:
        raise RawLayoutError(NAME, root, missing)
    if not out:
        raise RawLayoutError(NAME, root, f"<furniture>/<sequence>/<dev>/{VIDEO}")
    if not any((root / v.folder / POSES).is_dir() for v in out):
        raise RawLayoutError(NAME, root, f"<furniture>/<sequence>/<dev>/{POSES}/ (the pose annotations zip)")
    return sorted(out, key=lambda v: v.source)


def pose_files(root: Path, video: Video) -> list[tuple[int, str]]:
    """(frame index, relative path) of a video's ``pose3d/<frame>.json`` files, by frame."""
    folder = root / video.folder / POSES
    if not folder.is_dir():
        return []
    found = [(int(m[1]), f"{video.folder}/{POSES}/{m[0]}") for m in map(_POSE_FILE.match, (
        f.name for f in folder.iterdir() if f.is_file())) if m]
    return sorted(found)


# ------------------------------------------------------------------------------------------- instances
def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected person instance, ordered by video (furniture, sequence, camera) and frame."""
    p = check_params(params)
    root = Path(root)
    videos = check_layout(root, p)
    cameras = read_cameras(root / CALIBRATION)
    out = []
    for video in videos:
        source = video.source
        calib = calibration_id(video.sequence)
        if calib not in cameras or video.camera not in cameras[calib]:
            raise RawFileError(root / CALIBRATION, f"has no camera [{calib!r}][{video.camera!r}] (sequence "
                                                   f"{video.furniture}/{video.sequence}); has {sorted(cameras)}")
        camera = cameras[calib][video.camera]
        files = pose_files(root, video)
        if not files:
            if dropped is not None:
                dropped.append(Dropped(f"{video.folder}/{POSES}/", NO_POSES))
            continue
        n_frames = video_frame_count(root / source)
        record_drop(dropped, source, [i for i, _ in files if i >= n_frames], PAST_VIDEO_END)
        files = [(i, rel) for i, rel in files if i < n_frames]
        sampler = ValidatingPoseSampler(p["adaptive_sampling_mm"])
        empty, few = [], []
        for i, rel in files:
            cam_coords = read_pose(root / rel)
            if not np.isfinite(cam_coords).any():
                empty.append(i)
                continue
            if p["adaptive_sampling_mm"] > 0 and not sampler.should_keep(cam_coords):
                continue
            world = camera.camera_to_world(cam_coords)
            if visible_count(camera, world) < p["min_visible_joints"]:
                few.append(i)
                continue
            out.append(RawInstance(
                source=source, frame_index=i, world_coords=world, camera=camera, split="train",
                sequence=f"{video.furniture}/{video.sequence}", activity=video.furniture,
                camera_name=video.camera))
        record_drop(dropped, source, empty, MISSING_POSE)
        record_drop(dropped, source, few, TOO_FEW_VISIBLE)
    return out


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.ikea.fixture.make_fixture`, which
    takes the ``options``)."""
    from posebank.datasets.ikea.fixture import make_fixture as write

    return write(root, seed, **options)


# No direct URLs or checksums are published: the files are in the release's Google Drive folders.
RAW_INSTRUCTIONS = """
    IKEA ASM: follow the homepage, https://ikeaasm.github.io/ (the README of
    github.com/IkeaASM/IKEA_ASM_Dataset links the Google Drive folders). Download the RGB videos of the three
    views (dev1, dev2, dev3), the camera parameters
    and the pose annotations, and unzip them into the raw folder, so that it holds
        Calibration/camera_parameters.pkl
        <furniture>/<sequence>/<dev>/images/scan_video.avi
        <furniture>/<sequence>/<dev>/pose3d/<frame:06d>.json
    (no frame extraction needed: posebank decodes the annotated frames from the videos)
"""
