"""ASPset-510 (Nibali et al., Image and Vision Computing 2021): 510 outdoor sports clips of 17 subjects filmed by
three 4K cameras (left, mid, right), with motion-capture-derived 3D joints and a person box per video frame.

Raw layout: the toolkit's data folder (``anibali/aspset-510``: ``python -m aspset510.bin.download_data
--data-dir=<raw>``, which unpacks the ``aspset510_v1_{trainval,test}-{boxes,cameras,joints_3d,videos}`` and
``common-splits`` archives of archive.org/details/aspset510)::

    root/splits.csv                                           <subject>,<clip>,<split>,<camera> per clip
    root/trainval/cameras/<subj>/<subj>-<view>.json           one camera per subject and view (left, mid, right)
    root/trainval/joints_3d/<subj>/<subj>-<clip>.c3d          17 joints per frame, mm, world frame
    root/trainval/boxes/<subj>/<subj>-<clip>-<view>.csv       a header row, then one ``l,t,r,b`` row per frame
    root/trainval/videos/<subj>/<subj>-<clip>-<view>.mkv      3840 x 2160, 50 fps, one frame per c3d frame
    root/test/...                                             the same for the test clips (not used)

Formats (the toolkit's ``src/aspset510/__init__.py`` and ``camera.py``, posepile ``ds/aspset/main.py``):

* ``splits.csv``: no header; ``subject, clip, split (train | val | test), camera`` where camera ``all`` means the
  three views and a view name means that view alone.
* camera ``.json``: ``intrinsic_matrix`` (3 x 4, ``[K | 0]``) and ``extrinsic_matrix`` (4 x 4, world -> camera,
  ``[R | t; 0 0 0 1]``); the toolkit projects ``intrinsic @ extrinsic @ [X; 1]``, no distortion. The world frame
  is the left camera's of each subject (its extrinsic matrix is the identity), so image y points down and the world
  up is ``(0, -1, 0)`` (posepile ``load_camera``).
* joints ``.c3d``: a C3D file (:mod:`posebank.datasets.c3d`) of 17 points in mm, in posepile's order
  ``rank,rkne,rhip,rwri,relb,rsho,lank,lkne,lhip,lwri,lelb,lsho,htop,head,neck,spin,pelv`` (the toolkit's
  ``aspset_17j`` skeleton: right_ankle ... pelvis); points invalid in a frame are NaN.
* boxes ``.csv``: posepile turns each ``l,t,r,b`` into ``[l, t, r - l, b - t]`` and expands it about its centre
  by 1.1 (boxlib ``expand``); there is no detector.

Selection (posepile ``make_stage1``): the train and val clips (huge8 takes both as train), every view the split
file names; per video, adaptive pose sampling (a frame is kept when some joint moved >= 100 mm since the frame last
kept for that video). posepile zips the c3d frames, the video frames and the box rows, so the shortest of the
three ends a video (posebank records the rest as dropped).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
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
from posebank.datasets.c3d import read_points
from posebank.datasets.sampling import AdaptivePoseSampler, drop_missing_poses, record_drop

NAME = "aspset"
INFO = DatasetInfo(
    name=NAME,
    full_name="ASPset-510 (Australian Sports Pose Dataset)",
    homepage="https://github.com/anibali/aspset-510",
    licence=("CC0 1.0 Universal (public domain dedication; the toolkit's README and LICENSE): the data on "
             "archive.org/details/aspset510 are free to use, copy and redistribute."),
    citation=("A. Nibali, J. Millward, Z. He, S. Morgan. ASPset: An outdoor sports pose video dataset with 3D "
              "keypoint annotations. Image and Vision Computing 111, 104196, 2021."),
)

SPLITS_FILE = "splits.csv"
TRAINVAL = "trainval"
KINDS = ("boxes", "cameras", "joints_3d", "videos")
VIEWS = ("left", "mid", "right")
RELEASE_SPLITS = ("train", "val", "test")
SPLITS = ("train", "val")  # what posepile converts (the test clips are not used)
WORLD_UP = (0.0, -1.0, 0.0)  # posepile load_camera
# posepile's names, in the order of the c3d points (the toolkit's aspset_17j joint order)
JOINT_NAMES = "rank,rkne,rhip,rwri,relb,rsho,lank,lkne,lhip,lwri,lelb,lsho,htop,head,neck,spin,pelv"
JOINT_INFO = JointInfo(JOINT_NAMES, "htop-head-neck-rsho-relb-rwri,neck-spin-pelv-rhip-rkne-rank")
N_JOINTS = 17
# the toolkit's names of the same joints (posekit's Aspset17jSkeleton), which the fixture gives its c3d points
TOOLKIT_JOINTS = ("right_ankle", "right_knee", "right_hip", "right_wrist", "right_elbow", "right_shoulder",
                  "left_ankle", "left_knee", "left_hip", "left_wrist", "left_elbow", "left_shoulder", "head_top",
                  "head", "neck", "spine", "pelvis")

DEFAULT_PARAMS = {
    "splits": list(SPLITS),  # the release's train and val clips (huge8 takes both as train)
    "subjects": [],  # subject ids such as 04ac; [] = every subject of the split file
    "views": list(VIEWS),  # of the views the split file names for a clip
    "frame_step": 1,  # posepile: every frame ...
    "adaptive_sampling_mm": 100.0,  # ... then per video keep a frame when some joint moved >= this; 0 = off
    "box_expansion": 1.1,  # posepile: the release's box scaled about its centre by this
}

PAST_END = "c3d frames past the end of the video or its box file"
NO_BOX = "the box file has no finite box for the frame"
_ID = re.compile(r"^[0-9a-z]+$")


# ------------------------------------------------------------------------------------------- paths
def camera_relpath(subject: str, view: str, folder: str = TRAINVAL) -> str:
    return f"{folder}/cameras/{subject}/{subject}-{view}.json"


def joints_relpath(subject: str, clip: str, folder: str = TRAINVAL) -> str:
    return f"{folder}/joints_3d/{subject}/{subject}-{clip}.c3d"


def boxes_relpath(subject: str, clip: str, view: str, folder: str = TRAINVAL) -> str:
    return f"{folder}/boxes/{subject}/{subject}-{clip}-{view}.csv"


def video_relpath(subject: str, clip: str, view: str, folder: str = TRAINVAL) -> str:
    return f"{folder}/videos/{subject}/{subject}-{clip}-{view}.mkv"


# ------------------------------------------------------------------------------------------- readers
@dataclasses.dataclass(frozen=True)
class Clip:
    subject: str
    clip: str
    split: str  # train / val / test
    views: tuple[str, ...]  # the views the split file names ('all': the three)


def _text(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except OSError as e:
        raise RawFileError(path, f"unreadable {what} ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise RawFileError(path, f"unreadable {what}: not a text file") from None


def read_splits(path) -> list[Clip]:
    """The clips of ``splits.csv`` in file order (the toolkit's ``Aspset510._read_splits``)."""
    path = Path(path)
    out = []
    for n, row in enumerate(csv.reader(io.StringIO(_text(path, "split file"))), 1):
        if not row or not "".join(row).strip():
            continue
        row = [c.strip() for c in row]
        if len(row) != 4:
            raise RawFileError(path, f"line {n} has {len(row)} fields, expected subject, clip, split, camera")
        subject, clip, split, camera = row
        if split not in RELEASE_SPLITS or camera not in (*VIEWS, "all") or not (_ID.match(subject)
                                                                              and _ID.match(clip)):
            raise RawFileError(path, f"line {n} is {','.join(row)!r}: expected <subject>,<clip>,"
                                     f"{'|'.join(RELEASE_SPLITS)},{'|'.join((*VIEWS, 'all'))}")
        out.append(Clip(subject, clip, split, VIEWS if camera == "all" else (camera,)))
    if not out:
        raise RawFileError(path, "no clips in the split file")
    return out


def read_camera(path) -> Camera:
    """A camera ``.json``: ``intrinsic_matrix`` 3 x 4 ``[K | 0]`` and ``extrinsic_matrix`` 4 x 4 world -> camera
    (mm), nested or flat lists; world up (0, -1, 0)."""
    path = Path(path)
    try:
        data = json.loads(_text(path, "camera file"))
        intr = np.asarray(data["intrinsic_matrix"], np.float64).reshape(3, 4)
        extr = np.asarray(data["extrinsic_matrix"], np.float64).reshape(4, 4)
    except json.JSONDecodeError:
        raise RawFileError(path, "unreadable camera file: not valid JSON, truncated or corrupt") from None
    except (KeyError, TypeError, ValueError):
        raise RawFileError(path, "malformed camera file: expected intrinsic_matrix (3 x 4) and extrinsic_matrix "
                                 "(4 x 4)") from None
    if not np.all(np.isfinite(intr)) or not np.all(np.isfinite(extr)):
        raise RawFileError(path, "camera has non-finite values")
    if np.any(intr[:, 3] != 0):
        raise RawFileError(path, f"intrinsic_matrix has a nonzero fourth column {intr[:, 3].tolist()}: not [K | 0]")
    if not np.allclose(extr[3], [0, 0, 0, 1]):
        raise RawFileError(path, f"extrinsic_matrix's last row is {extr[3].tolist()}, not [0, 0, 0, 1]")
    rot, t = extr[:3, :3], extr[:3, 3]
    if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-4) or np.linalg.det(rot) <= 0:
        raise RawFileError(path, "extrinsic_matrix's R is not a rotation matrix")
    # x_cam = R x + t exactly (also for an R that is orthonormal to the file's precision only): centre -R⁻¹ t
    camera = Camera(intrinsic_matrix=intr[:, :3], R=rot, t=np.linalg.solve(rot, -t), world_up=WORLD_UP)
    check_finite_camera(camera, path)
    return camera


def read_joints(path) -> np.ndarray:
    """(frames, 17, 3) mm of a joints ``.c3d`` file, in posepile's joint order (the file's point order)."""
    path = Path(path)
    c3d = read_points(path)
    if c3d.points.shape[1] != N_JOINTS:
        raise RawFileError(path, f"{c3d.points.shape[1]} points per frame, expected the {N_JOINTS} joints")
    if c3d.units not in ("mm", ""):
        raise RawFileError(path, f"point units {c3d.units!r}, expected mm")
    if not len(c3d.points):
        raise RawFileError(path, "no frames")
    return c3d.points


def read_boxes(path) -> np.ndarray:
    """(frames, 4) ``[l, t, r, b]`` of a boxes ``.csv`` (its header row skipped, as the toolkit and posepile do);
    empty fields are NaN."""
    path = Path(path)
    rows = list(csv.reader(io.StringIO(_text(path, "box file"))))
    if not rows:
        raise RawFileError(path, "empty box file (no header row)")
    out = []
    for n, row in enumerate(rows[1:], 2):
        if not row:
            continue
        if len(row) != 4:
            raise RawFileError(path, f"line {n} has {len(row)} fields, expected left, top, right, bottom")
        try:
            out.append([float(v) if v.strip() else np.nan for v in row])
        except ValueError:
            raise RawFileError(path, f"line {n} is not numeric: {','.join(row)!r}") from None
    return np.asarray(out, np.float64).reshape(-1, 4)


def expand_box(ltrb: np.ndarray, factor: float) -> np.ndarray:
    """posepile's box: ``[l, t, r - l, b - t]`` scaled by ``factor`` about its centre (boxlib ``expand``)."""
    xywh = np.concatenate([ltrb[:2], ltrb[2:] - ltrb[:2]])
    centre = xywh[:2] + xywh[2:] / 2
    size = xywh[2:] * factor
    return np.concatenate([centre - size / 2, size])


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
    for key, allowed in (("splits", SPLITS), ("views", VIEWS)):
        v = p[key]
        if not v or len(set(v)) != len(v) or set(v) - set(allowed):
            raise ParamsError(f"datasets.{NAME}.{key}", f"must be distinct values of {', '.join(allowed)}, got {v}")
    if not all(isinstance(s, str) and _ID.match(s) for s in p["subjects"]):
        raise ParamsError(f"datasets.{NAME}.subjects", f"must be subject ids such as 04ac, got {p['subjects']}")
    if p["frame_step"] < 1:
        raise ParamsError(f"datasets.{NAME}.frame_step", f"must be a positive integer, got {p['frame_step']}")
    if p["adaptive_sampling_mm"] < 0:
        raise ParamsError(f"datasets.{NAME}.adaptive_sampling_mm", "must be >= 0 (0 = off), got "
                                                                   f"{p['adaptive_sampling_mm']}")
    if p["box_expansion"] <= 0:
        raise ParamsError(f"datasets.{NAME}.box_expansion", f"must be > 0, got {p['box_expansion']}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    p = check_params(params)
    return tuple(s for s in SPLITS if s in p["splits"])


def check_layout(root, params: dict | None = None) -> list[tuple[Clip, tuple[str, ...]]]:
    """Verify the raw tree; the selected clips with their selected views, in the split file's order (train clips
    first, then val, as posepile). Names every missing file."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    missing = [rel for rel in (SPLITS_FILE, *(f"{TRAINVAL}/{k}/" for k in KINDS)) if not (root / rel).exists()]
    if missing:
        raise RawLayoutError(NAME, root, missing)
    clips = read_splits(root / SPLITS_FILE)
    subjects = set(p["subjects"])
    if subjects - {c.subject for c in clips}:
        raise ParamsError(f"datasets.{NAME}.subjects", f"{sorted(subjects - {c.subject for c in clips})} not in "
                                                       f"{root / SPLITS_FILE}")
    out = []
    for split in SPLITS:
        if split not in p["splits"]:
            continue
        for clip in clips:
            if clip.split != split or (subjects and clip.subject not in subjects):
                continue
            views = tuple(v for v in clip.views if v in p["views"])
            if not views:
                continue
            needed = [joints_relpath(clip.subject, clip.clip)]
            for v in views:
                needed += [camera_relpath(clip.subject, v), boxes_relpath(clip.subject, clip.clip, v),
                           video_relpath(clip.subject, clip.clip, v)]
            missing += [rel for rel in needed if not (root / rel).is_file()]
            out.append((clip, views))
    if missing:
        raise RawLayoutError(NAME, root, list(dict.fromkeys(missing)))
    return out


# ------------------------------------------------------------------------------------------- instances
def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected person instance, ordered by split (train, val), the split file's clips, view and frame."""
    p = check_params(params)
    root = Path(root)
    cameras: dict[tuple[str, str], Camera] = {}
    out = []
    for clip, views in check_layout(root, p):
        joints_rel = joints_relpath(clip.subject, clip.clip)
        poses = read_joints(root / joints_rel)
        for view in views:
            key = (clip.subject, view)
            if key not in cameras:
                cameras[key] = read_camera(root / camera_relpath(*key))
            camera = cameras[key]
            source = video_relpath(clip.subject, clip.clip, view)
            boxes = read_boxes(root / boxes_relpath(clip.subject, clip.clip, view))
            n = min(len(poses), len(boxes), video_frame_count(root / source))
            record_drop(dropped, source, [i for i in range(0, len(poses), p["frame_step"]) if i >= n], PAST_END)
            frames = drop_missing_poses(poses, range(0, n, p["frame_step"]), source, dropped)
            if p["adaptive_sampling_mm"] > 0:
                sampler = AdaptivePoseSampler(p["adaptive_sampling_mm"])
                frames = [i for i in frames if sampler.should_keep(poses[i])]
            no_box = [i for i in frames if not (np.all(np.isfinite(boxes[i])) and np.all(boxes[i][2:] > boxes[i][:2]))]
            record_drop(dropped, source, no_box, NO_BOX)
            for i in frames:
                if i in no_box:
                    continue
                out.append(RawInstance(
                    source=source, frame_index=i, world_coords=poses[i].copy(), camera=camera, split=clip.split,
                    subject=clip.subject, sequence=clip.clip, camera_name=view,
                    bbox=expand_box(boxes[i], p["box_expansion"])))
    return out


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.aspset.fixture.make_fixture`, which
    takes the ``options``)."""
    from posebank.datasets.aspset.fixture import make_fixture as write

    return write(root, seed, **options)


RAW_INSTRUCTIONS = """
    ASPset-510: no login; the homepage, https://github.com/anibali/aspset-510 , has the toolkit, whose
    `python -m aspset510.bin.download_data --data-dir=<raw folder>` downloads the archives of
    https://archive.org/details/aspset510 (checked against the toolkit's res/checksum.md5) and unpacks them, so that
    the raw folder holds
        splits.csv
        trainval/cameras/<subj>/<subj>-<view>.json     trainval/joints_3d/<subj>/<subj>-<clip>.c3d
        trainval/boxes/<subj>/<subj>-<clip>-<view>.csv trainval/videos/<subj>/<subj>-<clip>-<view>.mkv
    (the test/ folder is not used).
"""
