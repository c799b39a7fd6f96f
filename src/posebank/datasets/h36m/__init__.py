"""Human3.6M (Ionescu et al., TPAMI 2014).

Raw layout, as the release unpacks (``root`` is the folder holding the subject folders)::

    root/metadata.xml                              (or root/Release-v1.2/metadata.xml)
    root/S1/MyPoseFeatures/D3_Positions/<Action>.cdf   variable Pose: 1 record of (T, 96), 32 joints x (x, y, z) mm
    root/S1/Videos/<Action>.<camera id>.mp4           camera ids 54138969 55011271 58860488 60457274

Cameras come from ``<w0>`` of metadata.xml: 300 numbers, first 4 x 11 x 6 extrinsics (camera-major, then
subject S1..S11: rotation as intrinsic x-y-z Euler angles, then the optical centre in world mm), then 4 x 9
intrinsics (fx fy cx cy k1 k2 k3 p1 p2). The release projects with its own tangential-distortion formula
(``ProjectPointRadial``), kept here as the camera's ``"h36m"`` distortion model.

Frame selection follows posepile: training subjects S1 S5 S6 S7 S8 every 5th frame (then adaptive pose
sampling, 100 mm), test subjects S9 S11 every 64th frame. Files whose name starts with ``_ALL`` are the
release's concatenations of all actions, not actions, and are not converted.

Frames whose every joint is missing (NaN) are left out and reported as dropped (the release has none).

S9 correction: in three S9 sequences (``SittingDown 1``, ``Waiting 1``, ``Greeting``) the released 3D poses
are shifted by +200 mm along world x relative to the videos; with ``correct_s9`` (default) 200 mm are
subtracted, as posepile does.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import cdflib
import numpy as np

from posebank.core.camera import Camera, rotation_from_euler_rxyz
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
from posebank.datasets.sampling import AdaptivePoseSampler, drop_missing_poses

log = logging.getLogger(__name__)

INFO = DatasetInfo(
    name="h36m",
    full_name="Human3.6M",
    homepage="http://vision.imar.ro/human3.6m/",
    licence="Academic use only; register and download from the homepage (no redistribution).",
    citation=("C. Ionescu, D. Papava, V. Olaru, C. Sminchisescu. Human3.6M: Large Scale Datasets and Predictive "
              "Methods for 3D Human Sensing in Natural Environments. TPAMI 36(7), 2014."),
)

CAMERA_IDS = ("54138969", "55011271", "58860488", "60457274")
# image size (width, height) of each camera's videos
IMAGE_SIZES = {"54138969": (1000, 1002), "55011271": (1000, 1000), "58860488": (1000, 1000),
               "60457274": (1000, 1002)}
N_RAW_JOINTS = 32
# posepile's 17-joint selection of the 32 release joints
SELECTED_JOINTS = (1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27, 0)
JOINT_INFO = JointInfo(
    "rhip,rkne,rank,lhip,lkne,lank,tors,neck,head,htop,lsho,lelb,lwri,rsho,relb,rwri,pelv",
    "htop-head-neck-rsho-relb-rwri,neck-tors-pelv-rhip-rkne-rank")
S9_SHIFTED = ("SittingDown 1", "Waiting 1", "Greeting")
S9_SHIFT_MM = 200.0

DEFAULT_PARAMS = {
    "train_subjects": [1, 5, 6, 7, 8],
    "val_subjects": [],
    "test_subjects": [9, 11],
    "train_frame_step": 5,
    "test_frame_step": 64,
    "adaptive_sampling_mm": 100.0,
    "correct_s9": True,
    "cameras": list(CAMERA_IDS),
}


SPLIT_KEYS = (("train", "train_subjects"), ("val", "val_subjects"), ("test", "test_subjects"))
SUBJECTS = tuple(range(1, 12))  # the <w0> block has cameras for S1..S11


def check_params(params: dict | None) -> dict:
    """``params`` (a params.yaml entry, or already merged) over DEFAULT_PARAMS, checked; ParamsError names the key."""
    p = check_dataset_params("h36m", params, DEFAULT_PARAMS)
    seen: dict[int, str] = {}
    for _split, key in SPLIT_KEYS:
        if not isinstance(p[key], list):  # (an empty default list does not fix the type for the settings check)
            raise ParamsError(f"datasets.h36m.{key}", f"{p[key]!r} is not a list of subject numbers")
        bad = [s for s in p[key] if isinstance(s, bool) or not isinstance(s, int) or s not in SUBJECTS]
        if bad:
            raise ParamsError(f"datasets.h36m.{key}", f"{bad} are not subject numbers 1..11")
        for s in p[key]:
            if s in seen:
                raise ParamsError(f"datasets.h36m.{key}", f"subject {s} is also in {seen[s]}")
            seen[s] = key
    if not seen:
        raise ParamsError("datasets.h36m.train_subjects", "no subjects selected in any split")
    for key in ("train_frame_step", "test_frame_step"):
        if p[key] < 1:
            raise ParamsError(f"datasets.h36m.{key}", f"must be at least 1, got {p[key]}")
    if p["adaptive_sampling_mm"] < 0:
        raise ParamsError("datasets.h36m.adaptive_sampling_mm", f"must be >= 0, got {p['adaptive_sampling_mm']}")
    bad = [c for c in p["cameras"] if c not in CAMERA_IDS]
    if bad or not p["cameras"] or len(set(p["cameras"])) != len(p["cameras"]):
        raise ParamsError("datasets.h36m.cameras", f"{p['cameras']} is not a list of distinct camera ids of "
                                                  f"{', '.join(CAMERA_IDS)}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    """The splits the params select: those with subjects."""
    p = check_params(params)
    return tuple(split for split, key in SPLIT_KEYS if p[key])


# ------------------------------------------------------------------------------------------- readers
def find_metadata(root) -> Path:
    root = Path(root)
    for candidate in (root / "metadata.xml", root / "Release-v1.2" / "metadata.xml"):
        if candidate.is_file():
            return candidate
    raise RawLayoutError("h36m", root, "metadata.xml (looked in the root and in Release-v1.2/)")


def read_cameras(path) -> dict[tuple[int, str], Camera]:
    """Cameras of the release ``metadata.xml``: ``{(subject, camera_id): Camera}`` for S1..S11."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        raise RawFileError(path, f"cannot parse as XML ({e})") from e
    w0 = root.find("w0")
    if w0 is None or not (w0.text or "").strip():
        raise RawFileError(path, "no <w0> element: the camera parameters are missing")
    try:
        numbers = np.array([float(x) for x in w0.text.strip().strip("[]").split()], np.float64)
    except ValueError as e:
        raise RawFileError(path, f"<w0> holds something other than numbers ({e})") from e
    if numbers.size != 4 * 11 * 6 + 4 * 9:
        raise RawFileError(path, f"<w0> has {numbers.size} numbers, expected 300 (4x11x6 extrinsics + 4x9 intrinsics)")
    if not np.all(np.isfinite(numbers)):
        raise RawFileError(path, "<w0> contains non-finite camera parameters")
    extrinsics = numbers[:264].reshape(4, 11, 6)
    intrinsics = numbers[264:].reshape(4, 9)
    cameras = {}
    for i_cam, cam_id in enumerate(CAMERA_IDS):
        f, c, k, p = np.split(intrinsics[i_cam], (2, 4, 7))
        for i_subj in range(11):
            ext = extrinsics[i_cam, i_subj]
            cam = Camera(
                intrinsic_matrix=[[f[0], 0, c[0]], [0, f[1], c[1]], [0, 0, 1]],
                R=rotation_from_euler_rxyz(ext[:3]), t=ext[3:6],
                distortion_coeffs=[k[0], k[1], p[0], p[1], k[2]], world_up=(0, 0, 1), distortion_model="h36m")
            check_finite_camera(cam, path)
            cameras[(i_subj + 1, cam_id)] = cam
    return cameras


def read_poses(path) -> np.ndarray:
    """All frames of a D3_Positions CDF file as (T, 32, 3) float32 millimetres."""
    path = Path(path)
    if not path.is_file():
        raise RawFileError(path, "pose file not found")
    try:
        cdf = cdflib.CDF(str(path))
        variables = cdf.cdf_info().zVariables + cdf.cdf_info().rVariables
        if "Pose" not in variables:
            raise RawFileError(path, f"no 'Pose' variable (has {variables})")
        pose = np.asarray(cdf.varget("Pose"), np.float32)
    except RawFileError:
        raise
    except Exception as e:  # cdflib raises assorted errors on truncated files
        raise RawFileError(path, f"unreadable CDF file, truncated or corrupt ({type(e).__name__}: {e})") from e
    if pose.ndim == 3 and pose.shape[0] == 1:
        pose = pose[0]
    if pose.ndim != 2 or pose.shape[1] != N_RAW_JOINTS * 3:
        raise RawFileError(path, f"'Pose' has shape {pose.shape}, expected (T, {N_RAW_JOINTS * 3})")
    if pose.shape[0] == 0:
        raise RawFileError(path, "'Pose' has no frames")
    return pose.reshape(-1, N_RAW_JOINTS, 3)


def list_actions(root, subject: int) -> list[str]:
    folder = Path(root) / f"S{subject}" / "MyPoseFeatures" / "D3_Positions"
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.cdf") if not p.stem.startswith("_ALL"))


def check_layout(root, params: dict | None = None) -> dict[int, list[str]]:
    """Verify that the raw tree holds what the conversion needs; returns the actions per subject."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError("h36m", root, "the folder itself")
    find_metadata(root)
    missing, actions = [], {}
    for subj in [*p["train_subjects"], *p["val_subjects"], *p["test_subjects"]]:
        acts = list_actions(root, subj)
        if not acts:
            missing.append(f"S{subj}/MyPoseFeatures/D3_Positions/*.cdf")
            continue
        actions[subj] = acts
        for act in acts:
            for cam in p["cameras"]:
                video = f"S{subj}/Videos/{act}.{cam}.mp4"
                if not (root / video).is_file():
                    missing.append(video)
    if missing:
        raise RawLayoutError("h36m", root, missing)
    return actions


def subject_split(subject: int, p: dict) -> str:
    if subject in p["train_subjects"]:
        return "train"
    if subject in p["val_subjects"]:
        return "val"
    return "test"


def corrected_poses(poses: np.ndarray, subject: int, action: str, correct_s9: bool) -> np.ndarray:
    if correct_s9 and subject == 9 and action in S9_SHIFTED:
        poses = poses.copy()
        poses[..., 0] -= S9_SHIFT_MM
    return poses


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected person instance of the raw tree, in a deterministic order; frames without any annotated
    joint are appended to ``dropped``."""
    p = check_params(params)
    root = Path(root)
    actions = check_layout(root, p)
    cameras = read_cameras(find_metadata(root))
    out = []
    for subj in sorted(actions):
        split = subject_split(subj, p)
        step = p["train_frame_step"] if split != "test" else p["test_frame_step"]
        for act in actions[subj]:
            cdf = f"S{subj}/MyPoseFeatures/D3_Positions/{act}.cdf"
            poses = corrected_poses(read_poses(root / cdf), subj, act, p["correct_s9"])[:, SELECTED_JOINTS]
            frames = drop_missing_poses(poses, range(0, len(poses), step), cdf, dropped)
            if split == "train" and p["adaptive_sampling_mm"]:
                sampler = AdaptivePoseSampler(p["adaptive_sampling_mm"])
                frames = [i for i in frames if sampler.should_keep(poses[i])]
            for cam in p["cameras"]:
                camera = cameras[(subj, cam)]
                for i in frames:
                    out.append(RawInstance(
                        source=f"S{subj}/Videos/{act}.{cam}.mp4", frame_index=i, world_coords=poses[i],
                        camera=camera, split=split, subject=f"S{subj}", sequence=act,
                        activity=act.split(" ")[0], camera_name=cam))
    return out


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.h36m.fixture.make_fixture`, which
    takes the ``options``)."""
    from posebank.datasets.h36m.fixture import make_fixture as write

    return write(root, seed, **options)
