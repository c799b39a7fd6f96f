"""3DPW, 3D Poses in the Wild (von Marcard et al., ECCV 2018): SMPL fits from IMUs and a moving phone camera.

Raw layout, as ``sequenceFiles.zip`` and ``imageFiles.zip`` unpack (posepile ``ds/tdpw/main.sh``)::

    root/sequenceFiles/{train,validation,test}/<sequence>.pkl   one Python 2 pickle (protocol 2) per sequence
    root/imageFiles/<sequence>/image_%05d.jpg                   frame i of the sequence, 1920x1080 or 1080x1920

A sequence file is a dict (the release's README, mirrored e.g. in zhyjiang/mmhuman3d tools/depth_generate/readme.txt;
the keys read by posepile ``ds/tdpw/main.py``, nkolot/SPIN ``datasets/preprocess/pw3d.py`` and open-mmlab/mmhuman3d
``mmhuman3d/data/data_converters/pw3d.py``): ``sequence`` (str), ``genders`` (list of 'm'/'f'),
``cam_intrinsics`` (3, 3), ``cam_poses`` (F, 4, 4) world -> camera extrinsics, and per person (lists of one or two
entries): ``jointPositions`` (F, 72) the 24 SMPL joints in metres (world frame), ``poses2d`` (F, 3, 18) OpenPose
COCO-18 detections (rows x, y, confidence; all zero where the person was not detected), ``poses`` (F, 72) SMPL
axis-angle, ``trans`` (F, 3) metres, ``betas`` (10,) or (300,) (entries 10: are zero), ``campose_valid`` (F,)
0/1, plus ``poses_60Hz``, ``trans_60Hz``, ``betas_clothed``, ``v_template_clothed``, ``texture_maps`` and
``img_frame_ids``, which posebank does not use.

Loading. The files are pickles, and unpickling runs whatever classes a file names; they are read only through
:func:`posebank.core.safe_pickle.load` (latin-1 for the Python 2 strings), admitting numpy's array and dtype
rebuild functions and plain builtins and nothing else. That is what the public readers find in them: posepile
``ds/tdpw/main.py``, SPIN ``datasets/preprocess/pw3d.py`` and mmhuman3d ``data_converters/pw3d.py`` use every value
as a numpy array, a list or a str and import nothing for the files (no chumpy; ``v_template_clothed``, unused here,
is a plain array too by those accounts). No real sequence file was at hand to confirm it (none is in a public
repository): a file naming any other class is refused with a :class:`RawFileError` naming the file and the class,
and the class would have to be added here knowingly.

Joints and units: the 24 SMPL joints of ``jointPositions`` in mm in the sequence's world frame (y up, posepile's
``world_up=(0, 1, 0)``), in posepile's order (``ds/tdpw/main.py``: the 23 non-root joints, then the pelvis) and
with its joint names and edges.

Camera, per frame: ``cam_intrinsics`` and the extrinsic ``cam_poses[i]`` = [[R, T], [0, 1]] with
``x_cam = R x_world + T`` (metres), as posepile's ``cameravision.Camera(extrinsic_matrix=...)``: posebank's R is
that R and its ``t`` the optical centre ``-R^-1 T`` in mm. No lens distortion. (posepile ``main.py`` then moves
the joints into that camera's frame and keeps an intrinsics-only camera; posebank keeps the world frame and the
per-frame camera.)

Selection as posepile (``ds/tdpw/main.py``): every frame (``frame_step`` 1) of every person, except where
``campose_valid`` is 0 or ``poses2d`` is all zero (``if not campose_valid or np.all(coords2d == 0): continue``);
posebank reports those, per sequence file and person, as dropped. posepile's ``main.py`` pools the three folders
into its test set (3DPW's "All-Test-mode"); posebank keeps the folders as train / val / test ("Train-Test-mode")
unless ``all_test_mode``. The person box is posepile's: the box of the projected 24 joints, expanded 1.15 times
(``boxlib.expand(boxlib.bb_of_points(imcoords), 1.15)``; posebank leaves ``bbox`` None and the detect stage's
``projected`` box does exactly that), or with ``box: poses2d`` SPIN's box of the detected OpenPose joints
(confidence > 0) expanded 1.2 times (SPIN ``datasets/preprocess/pw3d.py`` ``scaleFactor``). The OpenPose-18
joints are no SMPL joints, so they give neither the stored 2D joints (``keypoints2d`` None: projected from 3D)
nor a per-joint visibility (posepile uses none either).

Body model: 3DPW's own SMPL fit of each person in each frame, in the world frame: ``pose = poses[i]``,
``betas = betas[:10]`` (posepile ``ds/tdpw/eval.py``, SPIN, mmhuman3d: ``[:10]``), ``trans = trans[i]``, the gender
from ``genders``; ``root`` (the rest-pose root joint of the shaped model) is the posed root joint minus the
translation, ``jointPositions[i][0] - trans[i]`` (SMPL rotates about its root joint, so the posed root is the rest
root plus ``trans``).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from posebank.core import safe_pickle
from posebank.core.bodymodel import BodyModelFit, gender_name
from posebank.core.camera import Camera
from posebank.core.errors import DataError, ParamsError
from posebank.core.jpeg import jpeg_size
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
from posebank.datasets.sampling import record_drop

log = logging.getLogger(__name__)

NAME = "tdpw"
INFO = DatasetInfo(
    name=NAME,
    full_name="3DPW (3D Poses in the Wild)",
    homepage="https://virtualhumans.mpi-inf.mpg.de/3DPW/",
    licence=("3DPW licence: non-commercial scientific research only; accept the terms on the homepage "
             "(https://virtualhumans.mpi-inf.mpg.de/3DPW/license.html) to download it; no redistribution."),
    citation=("T. von Marcard, R. Henschel, M. J. Black, B. Rosenhahn, G. Pons-Moll. Recovering Accurate 3D Human "
              "Pose in The Wild Using IMUs and a Moving Camera. ECCV 2018."),
)

SEQUENCE_DIR = "sequenceFiles"
IMAGE_DIR = "imageFiles"
# posebank split -> the release's folder of sequenceFiles
SPLIT_FOLDERS = {"train": "train", "val": "validation", "test": "test"}
SPLITS = tuple(SPLIT_FOLDERS)
FRAME_SIZES = ((1920, 1080), (1080, 1920))  # (width, height): landscape and portrait phone videos
WORLD_UP = (0.0, 1.0, 0.0)  # posepile ds/tdpw/main.py: Camera(extrinsic_matrix=..., world_up=(0, 1, 0))

N_RAW_JOINTS = 24
SMPL_JOINT_NAMES = (
    "pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,lelb,relb,"
    "lwri,rwri,lhan,rhan").split(",")  # posepile ds/tdpw/main.py body_joint_names
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
SELECTED_JOINTS = (*range(1, N_RAW_JOINTS), 0)  # posepile: selected_joints = [*range(1, 24), 0]
JOINT_INFO = JointInfo(
    [SMPL_JOINT_NAMES[i] for i in SELECTED_JOINTS],
    "head-neck-thor-rcla-rsho-relb-rwri-rhan,thor-spin-bell-pelv-rhip-rkne-rank-rtoe")
# OpenPose COCO-18, the order of ``poses2d``'s 18 columns
OPENPOSE18_NAMES = ("nose,neck,rsho,relb,rwri,lsho,lelb,lwri,rhip,rkne,rank,lhip,lkne,lank,reye,leye,rear,"
                    "lear").split(",")
N_POSES2D_JOINTS = 18
N_BETAS = 10  # posepile ds/tdpw/eval.py, SPIN and mmhuman3d keep betas[:10]
POSES2D_BOX_SCALE = 1.2  # SPIN datasets/preprocess/pw3d.py: scaleFactor = 1.2
BOXES = ("projected", "poses2d")
# a frame shows one or two people (subject "<sequence>/person<k>"): cut by sequence so a frame stays in one shard
SHARD_KEY = ("sequence",)

DEFAULT_PARAMS = {
    "splits": list(SPLITS),
    "all_test_mode": False,
    "frame_step": 1,
    "box": "projected",
}
REQUIRED_KEYS = ("sequence", "genders", "cam_intrinsics", "cam_poses", "jointPositions", "poses2d", "trans",
                 "poses", "betas", "campose_valid")
BODY_MODEL_SOURCE = "3DPW's own SMPL fits (VIBE-style sequenceFiles)"

CAMPOSE_INVALID = "campose_valid is 0 (the camera pose is not aligned to the image)"
NOT_DETECTED = "poses2d is all zero (no 2D detection of the person; posepile leaves these frames out)"
NO_JOINTS = "jointPositions is not finite"


def image_name(frame: int) -> str:
    return f"image_{frame:05d}.jpg"


def activity_of(sequence: str) -> str:
    """A sequence name without its take number (``courtyard_hug_00`` -> ``courtyard_hug``)."""
    head, _, tail = sequence.rpartition("_")
    return head if head and tail.isdigit() else sequence


# ------------------------------------------------------------------------------------------- reading
@dataclasses.dataclass
class Sequence:
    """One sequence file's contents that posebank uses, checked; P people, F frames."""

    name: str  # the ``sequence`` key (the image folder's name)
    genders: list[str]  # per person, as :func:`gender_name` names them (male / female)
    intrinsics: np.ndarray  # (3, 3)
    extrinsics: np.ndarray  # (F, 4, 4) world -> camera, metres
    joints: np.ndarray  # (P, F, 24, 3) metres, SMPL order
    poses2d: np.ndarray  # (P, F, 3, 18) x, y, confidence rows over the OpenPose-18 joints
    poses: np.ndarray  # (P, F, 72)
    trans: np.ndarray  # (P, F, 3)
    betas: list[np.ndarray]  # per person (B,), B = 10 or 300
    campose_valid: np.ndarray  # (P, F) bool

    @property
    def n_people(self) -> int:
        return len(self.genders)

    @property
    def n_frames(self) -> int:
        return len(self.extrinsics)


def load_pickle(path):
    """A sequence file's dict, through the restricted unpickler (numpy arrays and builtins only, see the module
    docstring); RawFileError for anything else."""
    path = Path(path)
    data = safe_pickle.load(path, encoding="latin1")
    if not isinstance(data, dict):
        raise RawFileError(path, f"holds a {type(data).__name__}, expected the sequence dict")
    return data


def _describe(value) -> str:
    if isinstance(value, (list, tuple)):
        return f"an empty {type(value).__name__}"
    return f"a {type(value).__name__}"


def _numeric(path: Path, key: str, value, shape: tuple, person: int | None = None) -> np.ndarray:
    """``value`` as a float64 array of ``shape`` (None = any length, the same as given); RawFileError otherwise."""
    where = key if person is None else f"{key}[{person}]"
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise RawFileError(path, f"'{where}' is not an array ({e})") from None
    if arr.dtype.kind not in "biuf" or arr.ndim != len(shape) or any(
            s is not None and a != s for a, s in zip(arr.shape, shape)):
        wanted = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise RawFileError(path, f"'{where}' has shape {arr.shape} ({arr.dtype}), expected {wanted} numbers")
    return arr.astype(np.float64)


def read_sequence(path) -> Sequence:
    """Read and check one ``sequenceFiles/<split>/<sequence>.pkl``."""
    path = Path(path)
    data = load_pickle(path)
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise RawFileError(path, f"no {', '.join(repr(k) for k in missing)} (has {sorted(map(str, data))})")
    name = data["sequence"]
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise RawFileError(path, f"'sequence' is {name!r}, expected the sequence name")
    intrinsics = _numeric(path, "cam_intrinsics", data["cam_intrinsics"], (3, 3))
    extrinsics = _numeric(path, "cam_poses", data["cam_poses"], (None, 4, 4))
    n_frames = len(extrinsics)
    per_person = {}
    lengths = {}
    for key in ("genders", "jointPositions", "poses2d", "trans", "poses", "betas", "campose_valid"):
        value = data[key]
        if not isinstance(value, (list, tuple)) or not len(value):
            raise RawFileError(path, f"'{key}' is {_describe(value)}, expected a non-empty list with one entry per "
                                     "person")
        per_person[key] = value
        lengths[key] = len(value)
    if len(set(lengths.values())) != 1:
        raise RawFileError(path, f"the per-person lists differ in length: {lengths}")
    genders = []
    for p, g in enumerate(per_person["genders"]):
        try:
            genders.append(gender_name(g))
        except ValueError:
            raise RawFileError(path, f"'genders[{p}]' is {g!r}, expected 'm' or 'f'") from None
    joints = np.stack([_numeric(path, "jointPositions", v, (n_frames, 72), p)
                       for p, v in enumerate(per_person["jointPositions"])]).reshape(-1, n_frames, N_RAW_JOINTS, 3)
    poses2d = np.stack([_numeric(path, "poses2d", v, (n_frames, 3, N_POSES2D_JOINTS), p)
                        for p, v in enumerate(per_person["poses2d"])])
    poses = np.stack([_numeric(path, "poses", v, (n_frames, 72), p) for p, v in enumerate(per_person["poses"])])
    trans = np.stack([_numeric(path, "trans", v, (n_frames, 3), p) for p, v in enumerate(per_person["trans"])])
    valid = np.stack([_numeric(path, "campose_valid", v, (n_frames,), p)
                      for p, v in enumerate(per_person["campose_valid"])]) != 0
    betas = []
    for p, v in enumerate(per_person["betas"]):
        if isinstance(v, np.ndarray) and v.ndim == 2 and 1 in v.shape:  # a column, as the README's "10x1" reads
            v = np.asarray(v).reshape(-1)
        b = _numeric(path, "betas", v, (None,), p)
        if len(b) < N_BETAS:
            raise RawFileError(path, f"'betas[{p}]' has {len(b)} values, expected at least {N_BETAS}")
        betas.append(b)
    return Sequence(name, genders, intrinsics, extrinsics, joints, poses2d, poses, trans, betas, valid)


def frame_camera(intrinsics: np.ndarray, extrinsic: np.ndarray) -> Camera:
    """posebank's camera for one ``cam_poses`` entry (world -> camera, metres): R as given, the optical centre
    ``-R^-1 T`` in mm."""
    rot, shift = extrinsic[:3, :3], extrinsic[:3, 3]
    try:
        center = -np.linalg.solve(rot, shift)
    except np.linalg.LinAlgError:
        center = np.full(3, np.nan)
    return Camera(intrinsic_matrix=intrinsics, R=rot, t=center * 1000.0, world_up=WORLD_UP)


def poses2d_box(poses2d_frame: np.ndarray, scale: float = POSES2D_BOX_SCALE) -> np.ndarray | None:
    """SPIN's box of one frame's ``poses2d`` (3, 18): the tight box of the joints with confidence > 0, scaled by
    ``scale`` about its centre, as [x, y, w, h]; None when no joint is detected."""
    pts = np.asarray(poses2d_frame, np.float64)
    pts = pts[:2, pts[2] > 0].T
    if not len(pts):
        return None
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    center, size = (lo + hi) / 2, (hi - lo) * scale
    return np.concatenate([center - size / 2, size])


def frame_size(path) -> tuple[int, int]:
    """(width, height) of a frame from its JPEG header."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 18)
            try:
                return jpeg_size(head, where=str(path))
            except DataError:  # the frame header after large metadata segments, or none
                return jpeg_size(head + f.read(), where=str(path))
    except OSError as e:
        raise RawFileError(path, f"unreadable ({e.strerror or e})") from None
    except DataError:
        raise RawFileError(path, "not a JPEG frame, or truncated (no frame header)") from None


def check_frame(path, intrinsics: np.ndarray) -> tuple[int, int]:
    """A frame must have one of 3DPW's sizes, with the principal point in the middle half of it (a resized or
    rotated frame would not fit ``cam_intrinsics``)."""
    w, h = frame_size(path)
    if (w, h) not in FRAME_SIZES:
        raise RawFileError(path, f"frame is {w}x{h}, but 3DPW frames are 1920x1080 or 1080x1920 (resized frames do "
                                 "not fit cam_intrinsics)")
    cx, cy = intrinsics[0, 2], intrinsics[1, 2]
    if not (abs(cx - w / 2) < w / 4 and abs(cy - h / 2) < h / 4):  # 3DPW's is near the centre
        raise RawFileError(path, f"cam_intrinsics' principal point ({cx:.1f}, {cy:.1f}) is far from the centre of "
                                 f"the {w}x{h} frame (a rotated frame, or another sequence's?)")
    return w, h


# ------------------------------------------------------------------------------------------- layout
@dataclasses.dataclass(frozen=True)
class SequenceFile:
    split: str  # posebank's split
    path: str  # relative to the raw root: sequenceFiles/<folder>/<name>.pkl

    @property
    def stem(self) -> str:
        return Path(self.path).stem


def check_params(params: dict | None) -> dict:
    """``params`` over DEFAULT_PARAMS, checked; ParamsError names the key."""
    p = check_dataset_params(NAME, params, DEFAULT_PARAMS)
    bad = [s for s in p["splits"] if s not in SPLITS]
    if bad or not p["splits"] or len(set(p["splits"])) != len(p["splits"]):
        raise ParamsError(f"datasets.{NAME}.splits", f"must be distinct splits of {', '.join(SPLITS)} (val = the "
                                                    f"release's validation/ folder), got {p['splits']}")
    if p["frame_step"] < 1:
        raise ParamsError(f"datasets.{NAME}.frame_step", f"must be a positive integer, got {p['frame_step']}")
    if p["box"] not in BOXES:
        raise ParamsError(f"datasets.{NAME}.box", f"must be one of {', '.join(BOXES)}, got {p['box']!r}")
    return p


def _split_of(p: dict, split: str) -> str:
    return "test" if p["all_test_mode"] else split


def splits(params: dict | None = None) -> tuple[str, ...]:
    """The splits the examples go to: the selected folders' (train, val, test order), or test alone in
    ``all_test_mode``."""
    p = check_params(params)
    chosen = {_split_of(p, s) for s in p["splits"]}
    return tuple(s for s in SPLITS if s in chosen)


def check_layout(root, params: dict | None = None) -> list[SequenceFile]:
    """Verify the raw tree: per selected split a ``sequenceFiles/<folder>/`` with sequence files, and per sequence
    file its ``imageFiles/<sequence>/`` folder. Returns the sequence files in a deterministic order (split, name)."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    missing, files = [], []
    if not (root / IMAGE_DIR).is_dir():
        missing.append(f"{IMAGE_DIR}/")
    for split in (s for s in SPLITS if s in p["splits"]):
        rel = f"{SEQUENCE_DIR}/{SPLIT_FOLDERS[split]}"
        if not (root / rel).is_dir():
            missing.append(f"{rel}/")
            continue
        found = sorted(f.name for f in (root / rel).iterdir() if f.suffix == ".pkl" and f.is_file())
        if not found:
            missing.append(f"{rel}/<sequence>.pkl (no sequence files)")
        for name in found:
            seq = SequenceFile(split, f"{rel}/{name}")
            if (root / IMAGE_DIR).is_dir() and not (root / IMAGE_DIR / seq.stem).is_dir():
                missing.append(f"{IMAGE_DIR}/{seq.stem}/")
            files.append(seq)
    if missing:
        raise RawLayoutError(NAME, root, missing)
    return files


# ------------------------------------------------------------------------------------------- instances
def _kept_frames(seq: Sequence, person: int, frames: range, where: str, dropped: list | None) -> list[int]:
    """The frames of ``person`` posepile converts; the others are recorded in ``dropped`` per reason."""
    valid = seq.campose_valid[person]
    record_drop(dropped, where, [f for f in frames if not valid[f]], f"person {person}: {CAMPOSE_INVALID}")
    frames = [f for f in frames if valid[f]]
    detected = np.any(seq.poses2d[person] != 0, axis=(1, 2))
    record_drop(dropped, where, [f for f in frames if not detected[f]], f"person {person}: {NOT_DETECTED}")
    frames = [f for f in frames if detected[f]]
    finite = np.isfinite(seq.joints[person]).all(axis=(1, 2))
    record_drop(dropped, where, [f for f in frames if not finite[f]], f"person {person}: {NO_JOINTS}")
    return [f for f in frames if finite[f]]


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected person instance, ordered by split, sequence file, frame and person. Frames of a person whose
    ``campose_valid`` is 0, whose ``poses2d`` is all zero or whose joints are not finite are appended to
    ``dropped``, one entry per sequence file, person and reason."""
    p = check_params(params)
    root = Path(root)
    out, missing = [], []
    for sf in check_layout(root, p):
        seq = read_sequence(root / sf.path)
        split = _split_of(p, sf.split)
        frames = range(0, seq.n_frames, p["frame_step"])
        kept = [set(_kept_frames(seq, person, frames, sf.path, dropped)) for person in range(seq.n_people)]
        folder = f"{IMAGE_DIR}/{seq.name}"
        checked = False
        for frame in frames:
            people = [person for person in range(seq.n_people) if frame in kept[person]]
            if not people:
                continue
            source = f"{folder}/{image_name(frame)}"
            if not (root / source).is_file():
                missing.append(source)
                continue
            if not checked:
                check_frame(root / source, seq.intrinsics)
                checked = True
            camera = frame_camera(seq.intrinsics, seq.extrinsics[frame])
            check_finite_camera(camera, root / sf.path)
            for person in people:
                joints_m = seq.joints[person, frame]
                fit = BodyModelFit(
                    model="smpl", gender=seq.genders[person], pose=seq.poses[person, frame],
                    betas=seq.betas[person][:N_BETAS], trans=seq.trans[person, frame],
                    root=joints_m[0] - seq.trans[person, frame])
                bbox = poses2d_box(seq.poses2d[person, frame]) if p["box"] == "poses2d" else None
                out.append(RawInstance(
                    source=source, frame_index=frame, world_coords=joints_m[list(SELECTED_JOINTS)] * 1000.0,
                    camera=camera, split=split, subject=f"{seq.name}/person{person}", sequence=seq.name,
                    activity=activity_of(seq.name), camera_name=seq.name, bbox=bbox, person_index=person,
                    body_model=fit))
    if missing:
        raise RawLayoutError(NAME, root, missing)
    return out


def provenance(root=None, params: dict | None = None) -> dict:
    """Where the body-model fits come from (stored with the cache)."""
    return {"body_model": {"model": "smpl", "source": BODY_MODEL_SOURCE}}


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.tdpw.fixture.make_fixture`, which
    takes the ``options``)."""
    from posebank.datasets.tdpw.fixture import make_fixture as write

    return write(root, seed, **options)


# ------------------------------------------------------------------------------------------- downloads
# No RESOURCES: the zips have direct URLs, but no public source publishes their checksums, so posebank does not
# download them (it would have nothing to verify them against).
RAW_INSTRUCTIONS = """
    3DPW: accept the licence on the homepage, then download imageFiles.zip and sequenceFiles.zip (the page's
    links) and unzip both into the raw folder, so that it holds
        imageFiles/<sequence>/image_00000.jpg ...
        sequenceFiles/train/<sequence>.pkl, sequenceFiles/validation/..., sequenceFiles/test/...
    (the zips' __MACOSX folders are not read and may be deleted).
"""
