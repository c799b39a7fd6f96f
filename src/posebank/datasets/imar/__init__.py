"""The IMAR lab datasets (Fieraru, Zanfir, Sminchisescu et al.): Fit3D, CHI3D and HumanSC3D, motion-captured people
filmed by four calibrated cameras, released in one layout and read by one converter.

* ``fit3d`` (:mod:`posebank.datasets.imar.fit3d`): fitness exercises, one person;
* ``chi3d`` (:mod:`posebank.datasets.imar.chi3d`): close interactions of two people (both converted per frame);
* ``humansc3d`` (:mod:`posebank.datasets.imar.humansc3d`): self-contact poses, one person.

Raw layout (per dataset, as ``<name>_train.tar.gz`` unpacks next to the info file; the toolkit
``sminchisescu-research/imar_vision_datasets_tools`` ``util/dataset_util.py read_data``, posepile
``ds/imar/main.py``)::

    root/info.json  (or <name>_info.json)                      train_subj_names, subj_to_act, all_camera_names
    root/train/<subj>/joints3d_25/<action>.json                ``joints3d_25``: the 25 joints per mocap frame, m
    root/train/<subj>/videos/<cam>/<action>.mp4                one video per camera 50591643, 58860488, 60457274,
    root/train/<subj>/camera_parameters/<cam>/<action>.json    65906101, and its calibration
    root/test/...                                              the test subjects (no 3D ground truth: not used)

Formats:

* info file: the toolkit's README names it ``info.json``, posepile's converter ``<name>_info.json``; either is
  read (``info.json`` first). ``train_subj_names`` lists the training subjects, ``subj_to_act`` maps a subject to its
  action names (the file names of its ``joints3d_25/``, videos and calibrations, spaces included, e.g. ``Grab 4``).
* ``joints3d_25/<action>.json``: ``{"joints3d_25": ...}`` in metres (posebank and posepile x 1000 to mm), world
  frame, z up; shape ``(frames, 25, 3)`` for Fit3D and HumanSC3D, ``(2, frames, 25, 3)`` for CHI3D (both people:
  the toolkit takes ``j3ds[0]`` for the subject with markers, ``j3ds[1]`` for the other). The joints are the 17 of
  Human3.6M plus feet, toes, thumbs and fingers, in posepile's order and names (see :data:`JOINT_NAMES`).
* ``camera_parameters/<cam>/<action>.json``: ``extrinsics.R`` (3 x 3, world -> camera) and ``extrinsics.T``
  (1 x 3, metres), which is the **camera centre** in the world: the toolkit maps ``x_cam = (X - T) Rᵀ``, i.e.
  ``R (X - T)``, posebank's convention with ``t = 1000 T``; ``intrinsics_w_distortion``: ``f`` (1 x 2), ``c`` (1 x 2),
  ``k`` (1 x 3 radial) and ``p`` (1 x 2 tangential). The toolkit projects (``project_3d_to_2d``, 'w_distortion')
  with the Human3.6M formula on ``p`` swapped: ``x' = x (radial + p1 y + p2 x) + p2 r²``, ``y' = y (radial + p1 y +
  p2 x) + p1 r²`` (``p = (p1, p2)`` as stored), which is exactly posebank's ``"h36m"`` distortion model with the
  coefficients ``(k1, k2, p1, p2, k3)`` in the file's order; OpenCV's model differs from it by up to several
  pixels and no OpenCV coefficients reproduce it exactly. World up is +z (posepile ``world_up=(0, 0, 1)``).
* Timing: the mocap has 4 frames per video frame (the toolkit's notebook pairs ``j3ds[frame * 4]`` with
  ``frames[frame]``); posebank reads each video at its own rate and pairs video frame ``i`` with mocap frame
  ``4 i`` (``mocap_per_video_frame``).

Selection (posepile ``make_stage1``): the info file's training subjects, every action of ``subj_to_act``, the four
cameras; per video, AdaptivePoseSampler2 (100 mm, validity check, missing joints carried over, a buffer of 10000
kept poses). For CHI3D the sampler sees both people of a frame (a frame is kept with both people when either moved
enough). The box is the detect stage's rule ``detect.per_dataset.<name>`` (posepile: the YOLOv4 detection of
best IoU with the projected joints' box x 1.2, the frame skipped when that IoU is below 0.5). Everything is train.

The fixture (miniature raw trees in the real layout) is :mod:`posebank.datasets.imar.fixture`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np

from posebank.core.camera import Camera
from posebank.core.errors import ParamsError
from posebank.core.settings import check_dataset_params
from posebank.core.skeleton import JointInfo
from posebank.datasets.base import (
    Dropped,
    RawFileError,
    RawInstance,
    RawLayoutError,
    check_finite_camera,
)
from posebank.datasets.sampling import AdaptivePoseSampler2, record_drop

HOMEPAGES = {"fit3d": "https://fit3d.imar.ro/", "chi3d": "https://ci3d.imar.ro/chi3d",
             "humansc3d": "https://sc3d.imar.ro/humansc3d"}
LICENCE = ("Research use (unverified): each dataset is released by IMAR (Institute of Mathematics of the Romanian "
           "Academy) after a registration and licence request on its homepage, no redistribution; the toolkit "
           "imar_vision_datasets_tools is MIT (its LICENSE), which does not cover the data.")
CAMERAS = ("50591643", "58860488", "60457274", "65906101")  # posepile cam_ids
SPLITS = ("train",)
TRAIN = "train"
INFO_FILES = ("info.json", "{name}_info.json")  # the toolkit's README, posepile main.sh
WORLD_UP = (0.0, 0.0, 1.0)  # posepile load_camera
MOCAP_PER_VIDEO_FRAME = 4  # the toolkit's j3ds[frame * 4]
# posepile's names and edges (ds/imar/main.py make_stage1); the names are h36m_alljoints' so the merge's *_h36m
# joints line up
JOINT_NAMES = ("pelv,lhip,lkne,lank,rhip,rkne,rank,spin,neck,head,htop,lsho,lelb,lwri,rsho,relb,rwri,lfoo,ltoe,rfoo,"
               "rtoe,lthu,lfin,rthu,rfin")
JOINT_INFO = JointInfo(
    JOINT_NAMES,
    "htop-head-neck-spin-pelv-lhip-lkne-lank-lfoo-ltoe,lthu-lwri-lelb-lsho-neck-rsho-relb-rwri-rthu,rwri-rfin,"
    "lwri-lfin,pelv-rhip-rkne-rank-rfoo-rtoe")
N_JOINTS = 25

DEFAULT_PARAMS = {
    "subjects": [],  # of the info file's train_subj_names (e.g. s03); [] = every training subject (posepile)
    "actions": [],  # action names of subj_to_act; [] = every action of a subject (posepile)
    "cameras": list(CAMERAS),  # posepile: all four
    "mocap_per_video_frame": MOCAP_PER_VIDEO_FRAME,  # video frame i shows mocap frame i * this (the toolkit's 4)
    "frame_step": 1,  # posepile: every video frame ...
    "adaptive_sampling_mm": 100.0,  # ... then per video kept when some joint moved >= this vs each of ...
    "sampling_buffer": 10000,  # ... the last kept poses (AdaptivePoseSampler2(100, True, True, 10000)); 0 mm = off
}

PAST_VIDEO_END = "mocap frames past the end of the video"
PAST_MOCAP_END = "video frames past the end of the mocap (no joints for them)"
MISSING_POSE = "every joint is missing (NaN) in the annotation"


# ------------------------------------------------------------------------------------------- paths
def joints_relpath(subject: str, action: str) -> str:
    return f"{TRAIN}/{subject}/joints3d_25/{action}.json"


def video_relpath(subject: str, action: str, camera: str) -> str:
    return f"{TRAIN}/{subject}/videos/{camera}/{action}.mp4"


def camera_relpath(subject: str, action: str, camera: str) -> str:
    return f"{TRAIN}/{subject}/camera_parameters/{camera}/{action}.json"


def info_path(name: str, root) -> Path | None:
    """The raw tree's info file: ``info.json`` (the toolkit) or ``<name>_info.json`` (posepile); None if neither."""
    for pattern in INFO_FILES:
        path = Path(root) / pattern.format(name=name)
        if path.is_file():
            return path
    return None


# ------------------------------------------------------------------------------------------- readers
def _json(path: Path, what: str):
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise RawFileError(path, f"unreadable {what} ({e.strerror or e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RawFileError(path, f"unreadable {what}: not valid JSON, truncated or corrupt") from None


@dataclasses.dataclass(frozen=True)
class Info:
    train_subjects: tuple[str, ...]
    actions: dict[str, tuple[str, ...]]  # subject -> action names (subj_to_act)


def read_info(path) -> Info:
    """``train_subj_names`` and ``subj_to_act`` of an info file."""
    path = Path(path)
    data = _json(path, "info file")
    if not isinstance(data, dict) or not {"train_subj_names", "subj_to_act"} <= set(data):
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise RawFileError(path, f"malformed info file: expected train_subj_names and subj_to_act (has {keys})")
    subjects, acts = data["train_subj_names"], data["subj_to_act"]
    if not isinstance(subjects, list) or not all(isinstance(s, str) and s for s in subjects):
        raise RawFileError(path, f"train_subj_names must be a list of subject names, got {subjects!r}")
    if not isinstance(acts, dict) or not all(
            isinstance(v, list) and all(isinstance(a, str) and a and "/" not in a for a in v) for v in acts.values()):
        raise RawFileError(path, "subj_to_act must map each subject to a list of action names")
    return Info(tuple(subjects), {s: tuple(v) for s, v in acts.items()})


def _array(path: Path, block: dict, key: str, n: int, what: str) -> np.ndarray:
    try:
        a = np.asarray(block[key], np.float64).reshape(-1)
    except KeyError:
        raise RawFileError(path, f"malformed camera file: no {what}.{key}") from None
    except (TypeError, ValueError):
        raise RawFileError(path, f"malformed camera file: {what}.{key} is not numeric") from None
    if a.size != n:
        raise RawFileError(path, f"{what}.{key} has {a.size} values, expected {n}")
    return a


def read_camera(path) -> Camera:
    """The camera of a ``camera_parameters/<cam>/<action>.json``: ``R`` world -> camera, the centre ``1000 T`` (mm),
    ``f``, ``c`` and the distortion ``(k1, k2, p1, p2, k3)`` of the toolkit's formula (posebank's ``"h36m"``
    model, see the module docstring); world up +z."""
    path = Path(path)
    data = _json(path, "camera file")
    blocks = {}
    for key in ("extrinsics", "intrinsics_w_distortion"):
        if not isinstance(data, dict) or not isinstance(data.get(key), dict):
            raise RawFileError(path, f"malformed camera file: no {key} object")
        blocks[key] = data[key]
    ext, intr = blocks["extrinsics"], blocks["intrinsics_w_distortion"]
    rot = _array(path, ext, "R", 9, "extrinsics").reshape(3, 3)
    centre = _array(path, ext, "T", 3, "extrinsics") * 1000.0
    f, c = (_array(path, intr, k, 2, "intrinsics_w_distortion") for k in ("f", "c"))
    k = _array(path, intr, "k", 3, "intrinsics_w_distortion")
    p = _array(path, intr, "p", 2, "intrinsics_w_distortion")
    if not (np.all(np.isfinite(rot)) and np.all(np.isfinite(centre))):
        raise RawFileError(path, "camera has non-finite extrinsics")
    if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-4) or np.linalg.det(rot) <= 0:
        raise RawFileError(path, "extrinsics.R is not a rotation matrix")
    camera = Camera(intrinsic_matrix=[[f[0], 0, c[0]], [0, f[1], c[1]], [0, 0, 1]], R=rot, t=centre,
                    distortion_coeffs=[k[0], k[1], p[0], p[1], k[2]], world_up=WORLD_UP, distortion_model="h36m")
    check_finite_camera(camera, path)
    return camera


def read_joints(path, n_people: int) -> np.ndarray:
    """(people, mocap frames, 25, 3) mm of a ``joints3d_25/<action>.json``: a file of one person holds (frames, 25,
    3), CHI3D's (2, frames, 25, 3); non-numbers (``null``) are NaN."""
    path = Path(path)
    data = _json(path, "joints file")
    if not isinstance(data, dict) or "joints3d_25" not in data:
        raise RawFileError(path, "malformed joints file: no joints3d_25")
    try:
        a = np.array(data["joints3d_25"], np.float64)
    except (TypeError, ValueError):
        raise RawFileError(path, "joints3d_25 is not a numeric array of equal-length rows") from None
    if n_people == 1 and a.ndim == 3 and a.shape[1:] == (N_JOINTS, 3):
        a = a[None]
    elif not (n_people > 1 and a.ndim == 4 and a.shape[0] == n_people and a.shape[2:] == (N_JOINTS, 3)):
        expected = f"(frames, {N_JOINTS}, 3)" if n_people == 1 else f"({n_people}, frames, {N_JOINTS}, 3)"
        raise RawFileError(path, f"joints3d_25 has shape {a.shape}, expected {expected}")
    if not a.shape[1]:
        raise RawFileError(path, "joints3d_25 holds no frames")
    return a * 1000.0


def video_frame_count(path) -> int:
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise RawFileError(path, "cannot open video (unsupported codec or corrupt file)")
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()


# ------------------------------------------------------------------------------------------- params, layout
def check_params(name: str, params: dict | None) -> dict:
    p = check_dataset_params(name, params, DEFAULT_PARAMS)
    for key in ("subjects", "actions"):
        if not all(isinstance(v, str) and v and "/" not in v for v in p[key]):
            raise ParamsError(f"datasets.{name}.{key}", f"must be names (strings without '/'), got {p[key]}")
    c = p["cameras"]
    if not c or len(set(c)) != len(c) or set(c) - set(CAMERAS):
        raise ParamsError(f"datasets.{name}.cameras", f"must be distinct values of {', '.join(CAMERAS)}, got {c}")
    for key in ("mocap_per_video_frame", "frame_step", "sampling_buffer"):
        if p[key] < 1:
            raise ParamsError(f"datasets.{name}.{key}", f"must be a positive integer, got {p[key]}")
    if p["adaptive_sampling_mm"] < 0:
        raise ParamsError(f"datasets.{name}.adaptive_sampling_mm", "must be >= 0 (0 = off), got "
                                                                   f"{p['adaptive_sampling_mm']}")
    return p


@dataclasses.dataclass(frozen=True)
class Sequence:
    subject: str
    action: str
    cameras: tuple[str, ...]


def check_layout(name: str, root, p: dict) -> list[Sequence]:
    """Verify the raw tree for the checked params ``p``; the selected sequences in the info file's order (posepile:
    ``subj_to_act`` of the training subjects). Names every missing file."""
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(name, root, "the folder itself")
    path = info_path(name, root)
    if path is None:
        raise RawLayoutError(name, root, " or ".join(f.format(name=name) for f in INFO_FILES))
    info = read_info(path)
    unknown = sorted(set(p["subjects"]) - set(info.train_subjects))
    if unknown:
        raise ParamsError(f"datasets.{name}.subjects", f"{unknown} are not training subjects of {path} "
                                                       f"({', '.join(info.train_subjects)})")
    subjects = [s for s in info.actions if s in info.train_subjects and (not p["subjects"] or s in p["subjects"])]
    subjects += [s for s in info.train_subjects if s not in info.actions and (not p["subjects"] or s in p["subjects"])]
    missing, out = [], []
    if not (root / TRAIN).is_dir():
        missing.append(f"{TRAIN}/")
    for subject in subjects:
        actions = [a for a in info.actions.get(subject, ()) if not p["actions"] or a in p["actions"]]
        for action in actions:
            needed = [joints_relpath(subject, action)]
            for cam in p["cameras"]:
                needed += [video_relpath(subject, action, cam), camera_relpath(subject, action, cam)]
            missing += [rel for rel in needed if not (root / rel).is_file()]
            out.append(Sequence(subject, action, tuple(p["cameras"])))
    if missing:
        raise RawLayoutError(name, root, list(dict.fromkeys(missing)))
    if not out:
        raise RawLayoutError(name, root, f"{TRAIN}/<subject>/joints3d_25/<action>.json of the selected subjects "
                                         f"and actions (subj_to_act of {path.name})")
    return out


# ------------------------------------------------------------------------------------------- instances
def make_instances(name: str, root, p: dict, n_people: int, dropped: list[Dropped] | None) -> list[RawInstance]:
    """Every selected person instance, ordered by subject and action (the info file's order), camera, frame and
    person; ``n_people`` is 1 (Fit3D, HumanSC3D) or 2 (CHI3D, whose people are sampled together)."""
    root = Path(root)
    step = p["mocap_per_video_frame"]
    out = []
    for seq in check_layout(name, root, p):
        poses = read_joints(root / joints_relpath(seq.subject, seq.action), n_people)  # (people, N, 25, 3)
        n_mocap = poses.shape[1]
        for cam in seq.cameras:
            camera = read_camera(root / camera_relpath(seq.subject, seq.action, cam))
            source = video_relpath(seq.subject, seq.action, cam)
            n_video = video_frame_count(root / source)
            n_annotated = -(-n_mocap // step)  # video frames i whose mocap frame i * step exists
            candidates = range(0, max(n_video, n_annotated), p["frame_step"])
            record_drop(dropped, source, [i for i in candidates if n_video <= i < n_annotated], PAST_VIDEO_END)
            record_drop(dropped, source, [i for i in candidates if n_annotated <= i < n_video], PAST_MOCAP_END)
            frames = [i for i in candidates if i < min(n_video, n_annotated)]
            finite = np.isfinite(poses[:, [i * step for i in frames]]).all(axis=-1).any(axis=(0, 2))
            record_drop(dropped, source, [i for i, ok in zip(frames, finite) if not ok], MISSING_POSE)
            frames = [i for i, ok in zip(frames, finite) if ok]
            if p["adaptive_sampling_mm"] > 0:
                sampler = AdaptivePoseSampler2(p["adaptive_sampling_mm"], p["sampling_buffer"])
                frames = [i for i in frames if sampler.should_keep(poses[:, i * step].reshape(-1, 3))]
            for i in frames:
                for person in range(n_people):
                    pose = poses[person, i * step]
                    if not np.isfinite(pose).all(axis=-1).any():
                        record_drop(dropped, source, [i], f"every joint of person {person} is missing (NaN)")
                        continue
                    out.append(RawInstance(
                        source=source, frame_index=i, world_coords=pose.copy(), camera=camera, split="train",
                        subject=seq.subject, sequence=seq.action, activity=seq.action, camera_name=cam,
                        person_index=person))
    return out


def raw_instructions(name: str) -> str:
    return f"""
    {name}: register and request the data on its homepage, {HOMEPAGES[name]} ; download {name}_train.tar.gz and the
    info JSON into the raw folder and unpack it there (`tar xf {name}_train.tar.gz`), so that it holds
        info.json (or {name}_info.json)
        train/<subj>/joints3d_25/<action>.json
        train/<subj>/videos/<cam>/<action>.mp4              cam: {', '.join(CAMERAS)}
        train/<subj>/camera_parameters/<cam>/<action>.json
    ({name}_test.tar.gz has no 3D ground truth and is not used.)
"""
