"""BEHAVE (Bhatnagar et al., CVPR 2022): people interacting with 20 objects, filmed by four Azure Kinects, with
SMPL-H registrations (``fit02``) and triangulated OpenPose joints per frame.

Raw layout, as the release's zips unpack (``Date0{1..7}.zip`` into ``sequences/``, ``calibs.zip``, ``split.json``;
posepile ``ds/behave/main.sh``) and as the release's ``data/seq_utils.py`` and ``data/frame_data.py`` read it::

    root/split.json                                            {"train": [sequence, ...], "test": [...]}
    root/calibs/intrinsics/<k>/calibration.json               each Kinect's colour intrinsics
    root/calibs/Date<xx>/config/<k>/config.json               each Kinect's pose on that date
    root/sequences/<seq>/info.json                             gender, kinects, the calibration folders
    root/sequences/<seq>/t<time>/k<k>.color.jpg                the colour frames (2048 x 1536)
    root/sequences/<seq>/t<time>/k<k>.person_mask.jpg          the person's mask (> 127 = person)
    root/sequences/<seq>/t<time>/person/person_J3d.json       25 OpenPose joints (``body_joints3d``, 25 x 4, m)
    root/sequences/<seq>/t<time>/person/fit02/person_fit.pkl  the SMPL-H fit: pose (156), betas (10), trans (3)

Formats:

* ``info.json``: ``{"config": <folder>, "intrinsic": <folder>, "gender": "male"|"female", "kinects": [0, 1, 2, 3],
  "cat": <object>, ...}``; the folders are relative to the sequence folder (``seq_utils.SeqInfo``: "all paths are
  relative to the sequence path"); a path holding a ``calibs`` component is read below ``root/calibs`` (the
  release's own machines wrote absolute paths into some tools' copies).
* ``calibration.json``: the Azure Kinect SDK's, ``color``: ``fx, fy, cx, cy, k1..k6, p1, p2, width, height``
  (``kinect_calib.KinectCalib``); the distortion is OpenCV's rational model, here reordered to OpenCV's
  ``k1, k2, p1, p2, k3, k4, k5, k6`` (posepile ``load_camera``; also the order of the file's ``opencv[4:]``, which
  ``KinectCalib`` hands to ``cv2.projectPoints``).
* ``config.json``: ``rotation`` (9, row-major) and ``translation`` (3, m): the Kinect's colour frame to the world,
  ``x_world = R x_cam + t`` (``utils.load_kinect_poses``). The world is Kinect 1's colour frame (y down): world up
  is ``(0, -1, 0)`` (posepile). Camera: world->camera rotation ``Rᵀ``, optical centre ``1000 t`` (mm).
* ``person_fit.pkl``: a pickle of numpy arrays, read through :func:`posebank.core.safe_pickle.load` (numpy only).
  The 24 SMPL joints are posed with a gendered SMPL model (posepile: ``smpl.numpy.SMPL``, ``gender`` of info.json,
  male or else female) from ``pose[:66]`` (SMPL-H's root and 21 body joints, the same as SMPL's) and zero rotations
  for SMPL's two hand joints (their rotation moves no joint), ``betas`` and ``trans``, x 1000 (mm).
* ``person_J3d.json``: ``{"body_joints3d": [x, y, z, score] x 25}`` in m (``frame_data.get_body_j3d``), named
  ``<name>_coco`` as posepile (merging with HUMBI's, Panoptic's and AIST's); a joint with score 0 is missing.

Joints: posepile's order, the 23 non-root SMPL joints then the pelvis (suffix '': they merge with SURREAL's and
AGORA's), then the 25 OpenPose joints with MidHip last.

Frames: the cameras have the 8-coefficient rational distortion, which :class:`posebank.core.camera.Camera` (five
coefficients) cannot hold; the frame source (:func:`frame_source`) undistorts every colour frame and its mask with
OpenCV's exact rational model onto the same intrinsic matrix, and the instances carry that undistorted pinhole
camera (posepile keeps the distorted camera and undistorts when it crops: the same crops).

Selection (posepile ``make_dataset``): per sequence, every frame folder in time order, kept by
``AdaptivePoseSampler2(100, True, True, 100)`` on the 49 joints; every Kinect of ``kinects`` of a kept frame. The
ground-truth box is the projected joints' box x 1.05, clipped to the image (a person whose box is empty is left
out); the detect stage replaces it by a detection with IoU > 0.5 (``detect.per_dataset.behave``). Splits from
``split.json``.

The SMPL model is licensed and never bundled: ``body_model_dir`` names the folder with ``smpl/SMPL_MALE.npz`` and
``smpl/SMPL_FEMALE.npz`` (see :mod:`posebank.core.smpl_model`; relative paths: to the raw folder).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from posebank.core import safe_pickle
from posebank.core.bodymodel import BodyModelFit
from posebank.core.camera import Camera
from posebank.core.errors import DataError, ParamsError
from posebank.core.jpeg import decode_jpeg
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
from posebank.datasets.sampling import AdaptivePoseSampler2

NAME = "behave"
INFO = DatasetInfo(
    name=NAME,
    full_name="BEHAVE (human-object interactions)",
    homepage="https://virtualhumans.mpi-inf.mpg.de/behave/",
    licence=("BEHAVE licence (xiexh20/behave-dataset README): non-commercial scientific research, education or "
             "artistic use only; faces must be blurred in publications and presentations; the SMPL model has its "
             "own licence."),
    citation=("B. L. Bhatnagar, X. Xie, I. A. Petrov, C. Sminchisescu, C. Theobalt, G. Pons-Moll. BEHAVE: Dataset "
              "and Method for Tracking Human Object Interactions. CVPR 2022, pp. 15935-15946."),
)

SPLITS = ("train", "test")
SPLIT_FILE = "split.json"
SEQUENCES = "sequences"
CALIBS = "calibs"
INFO_FILE = "info.json"
J3D = "person/person_J3d.json"
FIT = "person/fit02/person_fit.pkl"
M_TO_MM = 1000.0
WORLD_UP = (0.0, -1.0, 0.0)  # posepile load_camera: Kinect 1's colour frame, y down
SMPLH_BODY_POSE = 66  # SMPL-H's root + 21 body joints (axis-angle): SMPL's first 22
N_SMPL = 24
N_OPENPOSE = 25
# posepile make_joint_info: SMPL's 24 in posepile's names, the pelvis moved last
SMPL_NAMES = ("pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,lelb,"
              "relb,lwri,rwri,lhan,rhan").split(",")
SMPL_ORDER = (*range(1, N_SMPL), 0)
# OpenPose BODY_25 in posepile's names, MidHip (pelv) moved last, suffix _coco
OPENPOSE_NAMES = ("nose,neck,rsho,relb,rwri,lsho,lelb,lwri,pelv,rhip,rkne,rank,lhip,lkne,lank,reye,leye,rear,lear,"
                  "lfoo,ltoe,lhee,rfoo,rtoe,rhee").split(",")
OPENPOSE_ORDER = (*range(8), *range(9, N_OPENPOSE), 8)
SUFFIX = "_coco"
JOINT_NAMES = [SMPL_NAMES[i] for i in SMPL_ORDER] + [OPENPOSE_NAMES[i] + SUFFIX for i in OPENPOSE_ORDER]
N_JOINTS = len(JOINT_NAMES)
_OPENPOSE_EDGES = ",".join("-".join(n + SUFFIX for n in chain.split("-")) for chain in (
    "nose-neck-pelv-rhip-rkne-rank-rfoo-rtoe", "rank-rhee", "nose-reye-rear", "neck-rsho-relb-rwri"))
JOINT_INFO = JointInfo(JOINT_NAMES, "head-neck-thor-rcla-rsho-relb-rwri-rhan,spin-bell-pelv-rhip-rkne-rank-rtoe,"
                       + _OPENPOSE_EDGES)  # posepile's edges

DEFAULT_PARAMS = {
    "splits": list(SPLITS),  # split.json's lists (huge8: train)
    "body_model_dir": "body_models",  # holds smpl/SMPL_{MALE,FEMALE}.npz (licensed); relative: to the raw folder
    "adaptive_sampling_mm": 100.0,  # posepile AdaptivePoseSampler2(100, True, True, 100), per sequence; 0 = off
    "sampler_memory": 100,  # ... against this many last kept poses (posepile: buffer 100)
    "box_expansion": 1.05,  # posepile get_bbox: projected joints' box x 1.05, clipped to the image
}

_FRAME_DIR = re.compile(r"^t(\d+(?:\.\d+)?)$")
_SOURCE = re.compile(r"^sequences/([^/]+)/([^/]+)/k(\d+)\.color\.jpg$")
NO_FIT = "no person/fit02/person_fit.pkl (no SMPL-H registration of this frame)"
NO_J3D = "no person/person_J3d.json (no OpenPose joints of this frame)"
NO_IMAGE = "no k<k>.color.jpg of this Kinect in the frame folder"
OUTSIDE = "box (projected joints x 1.05, clipped to the image) is empty: the person is outside the image"
NOT_IN_SPLIT = "sequence not listed in split.json (neither train nor test)"


# ------------------------------------------------------------------------------------------- readers
def read_json(path, what: str):
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RawFileError(path, f"unreadable {what}: not valid JSON, truncated or corrupt ({e})") from None
    except OSError as e:
        raise RawFileError(path, f"unreadable {what}: {e.strerror or e}") from None


def _numbers(path, data, key: str, size: int, what: str) -> np.ndarray:
    if not isinstance(data, dict) or key not in data:
        raise RawFileError(path, f"not {what}: no {key!r}")
    try:
        a = np.asarray(data[key], np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise RawFileError(path, f"{key!r} is not a list of numbers") from None
    if a.size != size or not np.isfinite(a).all():
        raise RawFileError(path, f"{key!r} must be {size} finite numbers, got {a.size}")
    return a


def read_split(path) -> dict[str, list[str]]:
    """``split.json`` -> {"train": [...], "test": [...]}."""
    data = read_json(path, "split file")
    if not isinstance(data, dict) or not all(isinstance(data.get(s), list) for s in SPLITS):
        raise RawFileError(path, "not BEHAVE's split file: expected {\"train\": [sequence, ...], \"test\": [...]}")
    return {s: [str(n) for n in data[s]] for s in SPLITS}


@dataclasses.dataclass(frozen=True)
class SeqInfo:
    gender: str  # male | female (posepile: 'male' -> male, anything else female)
    kinects: tuple[int, ...]
    intrinsic: Path  # the folder holding <k>/calibration.json
    config: Path  # the folder holding <k>/config.json
    category: str


def _calib_folder(root: Path, seq_dir: Path, value, path, key: str) -> Path:
    if not isinstance(value, str) or not value:
        raise RawFileError(path, f"{key!r} must be a folder path, got {value!r}")
    parts = PurePosixPath(value.replace("\\", "/")).parts
    if CALIBS in parts:  # below the release's calibs folder, wherever the writer's machine had it
        i = len(parts) - 1 - parts[::-1].index(CALIBS)
        return root.joinpath(CALIBS, *parts[i + 1:])
    return seq_dir / value


def read_info(root: Path, seq_dir: Path) -> SeqInfo:
    path = seq_dir / INFO_FILE
    data = read_json(path, "sequence info")
    if not isinstance(data, dict):
        raise RawFileError(path, "not a BEHAVE info.json: expected an object")
    for key in ("gender", "kinects", "intrinsic", "config"):
        if key not in data:
            raise RawFileError(path, f"no {key!r} (has {sorted(data)})")
    kinects = data["kinects"]
    if not isinstance(kinects, list) or not kinects or not all(isinstance(k, int) and k >= 0 for k in kinects):
        raise RawFileError(path, f"'kinects' must be a list of Kinect ids, got {kinects!r}")
    gender = "male" if data["gender"] == "male" else "female"
    return SeqInfo(gender, tuple(kinects), _calib_folder(root, seq_dir, data["intrinsic"], path, "intrinsic"),
                   _calib_folder(root, seq_dir, data["config"], path, "config"), str(data.get("cat", "")))


@dataclasses.dataclass
class Kinect:
    """A Kinect's colour camera: the raw distorted one (``K``, OpenCV-order rational ``dist`` of 8), the image
    size, and the undistorted pinhole camera of the frame source's frames."""

    K: np.ndarray
    dist: np.ndarray  # k1, k2, p1, p2, k3, k4, k5, k6
    size: tuple[int, int]  # width, height
    camera: Camera  # K, R, optical centre (mm), no distortion: the undistorted frames' camera

    def project_raw(self, world: np.ndarray) -> np.ndarray:
        """(N, 2) pixels of world points (mm) in the raw, distorted image (OpenCV's rational model)."""
        cam = self.camera.world_to_camera(np.asarray(world, np.float64))
        out, _ = cv2.projectPoints(cam.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), self.K, self.dist)
        return out.reshape(-1, 2)


def read_intrinsics(path) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """``calibration.json`` -> (K, dist in OpenCV's order k1 k2 p1 p2 k3 k4 k5 k6, (width, height))."""
    data = read_json(path, "calibration file")
    if not isinstance(data, dict) or not isinstance(data.get("color"), dict):
        raise RawFileError(path, "not an Azure Kinect calibration: no 'color' intrinsics")
    c = data["color"]
    keys = ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6", "width", "height")
    missing = [k for k in keys if k not in c]
    if missing:
        raise RawFileError(path, f"'color' has no {', '.join(missing)}")
    try:
        v = {k: float(c[k]) for k in keys}
    except (TypeError, ValueError):
        raise RawFileError(path, "'color' intrinsics are not numbers") from None
    if not all(np.isfinite(list(v.values()))):
        raise RawFileError(path, "'color' intrinsics are not finite")
    size = (int(v["width"]), int(v["height"]))
    if size[0] <= 0 or size[1] <= 0 or size != (v["width"], v["height"]):
        raise RawFileError(path, f"'color' width and height must be positive integers, got {size}")
    K = np.array([[v["fx"], 0, v["cx"]], [0, v["fy"], v["cy"]], [0, 0, 1]])
    dist = np.array([v[k] for k in ("k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6")])
    return K, dist, size


def read_pose(path) -> tuple[np.ndarray, np.ndarray]:
    """``config.json`` -> (R, t): the Kinect's colour frame to the world, ``x_world = R x + t`` (t in m)."""
    data = read_json(path, "camera pose file")
    rot = _numbers(path, data, "rotation", 9, "a Kinect pose file").reshape(3, 3)
    t = _numbers(path, data, "translation", 3, "a Kinect pose file")
    if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-4) or np.linalg.det(rot) < 0:
        raise RawFileError(path, "'rotation' is not a rotation matrix")
    return rot, t


def read_kinect(intrinsics_path, pose_path) -> Kinect:
    K, dist, size = read_intrinsics(intrinsics_path)
    rot, t = read_pose(pose_path)
    camera = Camera(intrinsic_matrix=K, R=rot.T, t=t * M_TO_MM, world_up=WORLD_UP)
    check_finite_camera(camera, intrinsics_path)
    return Kinect(K, dist, size, camera)


def read_openpose(path) -> np.ndarray:
    """(25, 3) mm from ``person_J3d.json`` (m x 1000); a joint with score 0 is NaN."""
    data = read_json(path, "joints file")
    rows = _numbers(path, data, "body_joints3d", N_OPENPOSE * 4, "a BEHAVE joints file").reshape(N_OPENPOSE, 4)
    out = rows[:, :3] * M_TO_MM
    out[rows[:, 3] <= 0] = np.nan
    return out


def read_fit(path) -> dict[str, np.ndarray]:
    """``person_fit.pkl`` (restricted unpickler: numpy arrays) -> pose (156 or 72), betas (<= 16), trans (3)."""
    data = safe_pickle.load(path)
    if not isinstance(data, dict):
        raise RawFileError(path, "not a BEHAVE fit: expected a dict of pose, betas, trans")
    out = {}
    for key in ("pose", "betas", "trans"):
        if key not in data:
            raise RawFileError(path, f"no {key!r} (has {sorted(map(str, data))})")
        try:
            out[key] = np.asarray(data[key], np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise RawFileError(path, f"{key!r} is not a numeric array") from None
        if not np.isfinite(out[key]).all():
            raise RawFileError(path, f"{key!r} is not finite")
    if out["pose"].size not in (156, 72):
        raise RawFileError(path, f"'pose' has {out['pose'].size} values: SMPL-H's 156 (or SMPL's 72) expected")
    if out["trans"].size != 3 or not 1 <= out["betas"].size <= 16:
        raise RawFileError(path, f"'trans' must have 3 values and 'betas' 1 to 16, got {out['trans'].size} and "
                                 f"{out['betas'].size}")
    return out


def smpl_pose(pose: np.ndarray) -> np.ndarray:
    """SMPL's 72 values of an SMPL-H pose: root and 21 body joints, zero rotations for SMPL's hand joints."""
    return np.concatenate([pose[:SMPLH_BODY_POSE], np.zeros(72 - SMPLH_BODY_POSE)])


def frame_time(name: str) -> float | None:
    m = _FRAME_DIR.match(name)
    return float(m.group(1)) if m else None


# ------------------------------------------------------------------------------------------- params, layout
def check_params(params: dict | None = None) -> dict:
    given = dict(params or {})
    if "body_model_dir" in given and given["body_model_dir"] is None:
        given["body_model_dir"] = ""  # params.yaml's null
    p = check_dataset_params(NAME, given, DEFAULT_PARAMS)
    where = f"datasets.{NAME}"
    if not p["splits"] or len(set(p["splits"])) != len(p["splits"]) or set(p["splits"]) - set(SPLITS):
        raise ParamsError(f"{where}.splits", f"must be distinct splits of {', '.join(SPLITS)}, got {p['splits']}")
    if p["adaptive_sampling_mm"] < 0:
        raise ParamsError(f"{where}.adaptive_sampling_mm", f"must be >= 0 (0 = off), got {p['adaptive_sampling_mm']}")
    if p["sampler_memory"] < 1:
        raise ParamsError(f"{where}.sampler_memory", f"must be at least 1, got {p['sampler_memory']}")
    if p["box_expansion"] <= 0:
        raise ParamsError(f"{where}.box_expansion", f"must be > 0, got {p['box_expansion']}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    p = check_params(params)
    return tuple(s for s in SPLITS if s in p["splits"])


def model_dir(root, p: dict) -> Path | None:
    if not p["body_model_dir"]:
        return None
    folder = Path(p["body_model_dir"])
    return folder if folder.is_absolute() else Path(root) / folder


@dataclasses.dataclass(frozen=True)
class Seq:
    name: str
    split: str
    info: SeqInfo

    @property
    def folder(self) -> str:
        return f"{SEQUENCES}/{self.name}"

    @property
    def subject(self) -> str:  # Date01_Sub01_backpack_back -> Sub01
        parts = self.name.split("_")
        return parts[1] if len(parts) > 1 else ""


def check_layout(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[Seq]:
    """The sequences of the selected splits, sorted; RawLayoutError names every missing file or folder."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    missing = [rel for rel in (SPLIT_FILE, f"{SEQUENCES}/", f"{CALIBS}/") if not (root / rel).exists()]
    if missing:
        raise RawLayoutError(NAME, root, missing)
    split_of = {}
    for split, names in read_split(root / SPLIT_FILE).items():
        for n in names:
            split_of.setdefault(n, split)
    out = []
    for d in sorted((root / SEQUENCES).iterdir()):
        if not d.is_dir():
            continue
        if d.name not in split_of:
            if dropped is not None:
                dropped.append(Dropped(f"{SEQUENCES}/{d.name}", NOT_IN_SPLIT))
            continue
        if split_of[d.name] not in p["splits"]:
            continue
        if not (d / INFO_FILE).is_file():
            missing.append(f"{SEQUENCES}/{d.name}/{INFO_FILE}")
            continue
        info = read_info(root, d)
        for k in info.kinects:
            for folder, file in ((info.intrinsic, "calibration.json"), (info.config, "config.json")):
                if not (folder / str(k) / file).is_file():
                    rel = folder / str(k) / file
                    missing.append(str(rel.relative_to(root)) if rel.is_relative_to(root) else str(rel))
        out.append(Seq(d.name, split_of[d.name], info))
    if not out and not missing:
        missing.append(f"{SEQUENCES}/<sequence>/ of split.json's {' or '.join(p['splits'])} lists")
    if missing:
        raise RawLayoutError(NAME, root, sorted(set(missing)))
    return out


# ------------------------------------------------------------------------------------------- instances
def load_models(root, p: dict, genders) -> dict:
    """gender -> SmplJoints of the configured folder; ParamsError naming body_model_dir if a model is absent."""
    from posebank.core.smpl_model import SmplJoints, model_path

    param = f"datasets.{NAME}.body_model_dir"
    folder = model_dir(root, p)
    out = {}
    for gender in sorted(set(genders)):
        path = None if folder is None else model_path(folder, gender)
        if path is None or not path.is_file():
            raise ParamsError(param, f"no {path or 'smpl/SMPL_' + gender.upper() + '.npz'}: BEHAVE's SMPL joints "
                                     "are posed from its fits and need the licensed SMPL model "
                                     "(https://smpl.is.tue.mpg.de), a folder holding "
                                     f"smpl/SMPL_{gender.upper()}.npz (docs: posebank.core.smpl_model)")
        out[gender] = SmplJoints(folder, gender, max_betas=16, param=param)
    return out


def read_kinects(root: Path, seq: Seq) -> dict[int, Kinect]:
    return {k: read_kinect(seq.info.intrinsic / str(k) / "calibration.json", seq.info.config / str(k) / "config.json")
            for k in seq.info.kinects}


def clipped_box(points: np.ndarray, expansion: float, size: tuple[int, int]) -> np.ndarray:
    """posepile get_bbox without a detection: ``expand(bb_of_points, expansion)`` intersected with the image
    (posebank's pixel convention: the image spans [-0.5, W - 0.5] x [-0.5, H - 0.5])."""
    p = points[np.isfinite(points).all(axis=1)]
    if not len(p):
        return np.zeros(4)
    lo, hi = p.min(axis=0), p.max(axis=0)
    centre, half = (lo + hi) / 2, (hi - lo) * expansion / 2
    lo = np.maximum(centre - half, -0.5)
    hi = np.minimum(centre + half, np.asarray(size, np.float64) - 0.5)
    return np.concatenate([lo, np.maximum(hi - lo, 0)])


def _sequence_instances(root: Path, seq: Seq, p: dict, models: dict, dropped) -> list[RawInstance]:
    kinects = read_kinects(root, seq)
    folders = sorted((t, d.name) for d in (root / seq.folder).iterdir()
                      if d.is_dir() and (t := frame_time(d.name)) is not None)
    model = models[seq.info.gender]
    sampler = AdaptivePoseSampler2(p["adaptive_sampling_mm"], p["sampler_memory"]) \
        if p["adaptive_sampling_mm"] > 0 else None
    out = []
    for _, name in folders:
        rel = f"{seq.folder}/{name}"
        if not (root / rel / FIT).is_file():
            if dropped is not None:
                dropped.append(Dropped(rel, NO_FIT))
            continue
        if not (root / rel / J3D).is_file():
            if dropped is not None:
                dropped.append(Dropped(rel, NO_J3D))
            continue
        fit = read_fit(root / rel / FIT)
        openpose = read_openpose(root / rel / J3D)
        pose72 = smpl_pose(fit["pose"])
        smpl = model.joints(pose72[None], fit["betas"][None], fit["trans"][None])[0] * M_TO_MM
        world = np.concatenate([smpl[list(SMPL_ORDER)], openpose[list(OPENPOSE_ORDER)]])
        if sampler is not None and not sampler.should_keep(world):
            continue
        body = BodyModelFit("smpl", seq.info.gender, pose72, fit["betas"], fit["trans"],
                            model.root(fit["betas"][None])[0])
        for k, kinect in kinects.items():
            source = f"{rel}/k{k}.color.jpg"
            if not (root / source).is_file():
                if dropped is not None:
                    dropped.append(Dropped(rel, f"Kinect {k}: {NO_IMAGE}"))
                continue
            box = clipped_box(kinect.camera.project(world), p["box_expansion"], kinect.size)
            if box[2] * box[3] <= 0:
                if dropped is not None:
                    dropped.append(Dropped(source, OUTSIDE))
                continue
            mask = f"{rel}/k{k}.person_mask.jpg"  # named so that a changed mask file rebuilds its shard; the frame
            # source hands it over undistorted
            out.append(RawInstance(
                source=source, frame_index=-1, world_coords=world.copy(), camera=kinect.camera, split=seq.split,
                subject=seq.subject, sequence=seq.name, activity=seq.info.category, camera_name=f"k{k}",
                bbox=box, mask_source=mask if (root / mask).is_file() else None, body_model=body))
    return out


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected person instance, ordered by sequence, frame time and Kinect."""
    p = check_params(params)
    root = Path(root)
    seqs = check_layout(root, p, dropped)
    models = load_models(root, p, [s.info.gender for s in seqs])
    out = []
    for seq in seqs:
        out += _sequence_instances(root, seq, p, models, dropped)
    return out


# ------------------------------------------------------------------------------------------- frames
FRAME_SOURCE_PARAMS: tuple[str, ...] = ()  # the undistorted frames depend on the calibration files only (below)
MAX_MAPS = 8  # remap tables kept (one per intrinsics file)


def frame_source_files(raw_root, source: str) -> list[str]:
    """The calibration files (intrinsics and pose of its Kinect) the undistorted frame of ``source`` is rendered
    with, relative to the raw root, so that a changed calibration rebuilds its frames shard."""
    m = _SOURCE.match(source)
    if not m:
        return []
    info = _info_of(str(raw_root), m.group(1))
    k = m.group(3)
    root = Path(raw_root)
    files = [info.intrinsic / k / "calibration.json", info.config / k / "config.json"]
    return [f.relative_to(root).as_posix() if f.is_relative_to(root) else str(f) for f in files]


@functools.lru_cache(maxsize=256)
def _info_of(raw_root: str, seq_name: str) -> SeqInfo:
    return read_info(Path(raw_root), Path(raw_root) / SEQUENCES / seq_name)


def undistort_maps(kinect: Kinect) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's remap tables from the undistorted image (K, no distortion) to the raw one (K, rational model)."""
    return cv2.initUndistortRectifyMap(kinect.K, kinect.dist, None, kinect.K, kinect.size, cv2.CV_32FC1)


def frame_source(raw_root, params: dict | None = None) -> FrameSource:
    """The colour frames undistorted (OpenCV's rational model, onto the same K, bilinear), each with its
    ``k<k>.person_mask.jpg`` undistorted the same way (> 127 = person); a frame without a mask file has none (the
    segment stage then makes one)."""
    check_params(params)
    raw_root = Path(raw_root)
    # the remap tables depend on the intrinsics file only (the release has one per Kinect): a few, 25 MB each
    maps: dict[Path, tuple[Kinect, np.ndarray, np.ndarray]] = {}

    def kinect_of(seq_name: str, k: int):
        info = read_info(raw_root, raw_root / SEQUENCES / seq_name)
        intrinsics = info.intrinsic / str(k) / "calibration.json"
        if intrinsics not in maps:
            if len(maps) >= MAX_MAPS:
                maps.pop(next(iter(maps)))
            kin = read_kinect(intrinsics, info.config / str(k) / "config.json")
            maps[intrinsics] = (kin, *undistort_maps(kin))
        return maps[intrinsics]

    def frames(source: str, indices: Sequence[int]) -> Iterator[tuple[int, Frame]]:
        m = _SOURCE.match(source)
        if not m:
            raise RawFileError(raw_root / source, "not a BEHAVE colour frame (sequences/<seq>/<t>/k<k>.color.jpg)")
        kin, mx, my = kinect_of(m.group(1), int(m.group(3)))
        path = raw_root / source
        try:
            image = decode_jpeg(path.read_bytes(), where=path)
        except (OSError, DataError):
            for i in sorted(set(indices)):
                yield i, Frame(None, problem="colour frame missing or does not decode")
            return
        if (image.shape[1], image.shape[0]) != kin.size:
            raise RawFileError(path, f"is {image.shape[1]}x{image.shape[0]}, its calibration.json says "
                                     f"{kin.size[0]}x{kin.size[1]}")
        image = cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        masks = {}
        mask_path = path.with_name(f"k{m.group(3)}.person_mask.jpg")
        if mask_path.is_file():
            try:
                mask = decode_jpeg(mask_path.read_bytes(), cv2.IMREAD_GRAYSCALE, where=mask_path)
            except (OSError, DataError):
                raise RawFileError(mask_path, "mask image unreadable or does not decode") from None
            if mask.shape[:2] != image.shape[:2]:
                raise RawFileError(mask_path, f"is {mask.shape[1]}x{mask.shape[0]}, the colour frame "
                                              f"{image.shape[1]}x{image.shape[0]}")
            masks[0] = cv2.remap(mask, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT) > 127
        for i in sorted(set(indices)):
            yield i, Frame(image, masks=dict(masks))

    return frames


def provenance(root, params: dict | None = None) -> dict:
    from posebank.core.smpl_model import MODEL_FILE, model_path
    from posebank.core.store import sha256_file

    p = check_params(params)
    folder = model_dir(root, p)
    out = {"body_model": {"model": "smpl", "source": "BEHAVE's own SMPL-H fits (person/fit02/person_fit.pkl): "
                                                     "root and body pose, posed with a gendered SMPL model"},
           "body_model_dir": p["body_model_dir"] or None}
    if folder is not None:
        out["body_model_files"] = [{"path": MODEL_FILE.format(gender=g.upper()),
                                    "sha256": sha256_file(model_path(folder, g))}
                                   for g in ("female", "male") if model_path(folder, g).is_file()]
    return out


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.behave.fixture.make_fixture`)."""
    from posebank.datasets.behave.fixture import make_fixture as write

    return write(root, seed, **options)


# Direct URLs exist (posepile main.sh) but no published checksums, so no RESOURCES: the files are fetched by hand.
RAW_INSTRUCTIONS = """
    BEHAVE: follow the homepage, https://virtualhumans.mpi-inf.mpg.de/behave/ (the release's direct links,
    as posepile's ds/behave/main.sh uses them: https://datasets.d2.mpi-inf.mpg.de/cvpr22behave/Date01.zip ...
    Date07.zip, calibs.zip and split.json). Unzip the Date*.zip files into sequences/ and calibs.zip into the raw
    folder, so that it holds
        split.json
        calibs/intrinsics/<k>/calibration.json, calibs/Date01/config/<k>/config.json ...
        sequences/Date01_Sub01_backpack_back/info.json
        sequences/Date01_Sub01_backpack_back/t0005.000/k1.color.jpg, k1.person_mask.jpg, person/ ...
    The 3D joints need the SMPL model (SMPL_MALE.npz and SMPL_FEMALE.npz converted from the licensed release at
    https://smpl.is.tue.mpg.de, see posebank.core.smpl_model) in <datasets.behave.body_model_dir>/smpl/ (default:
    the raw folder's body_models/smpl/).
"""
