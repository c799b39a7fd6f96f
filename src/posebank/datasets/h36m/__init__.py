"""Human3.6M (Ionescu et al., TPAMI 2014).

Raw layout, as the release unpacks (``root`` is the folder holding the subject folders)::

    root/metadata.xml                              (or root/Release-v1.2/metadata.xml)
    root/S1/MyPoseFeatures/D3_Positions/<Action>.cdf   variable Pose: 1 record of (T, 96), 32 joints x (x, y, z) mm
    root/S1/Videos/<Action>.<camera id>.mp4           camera ids 54138969 55011271 58860488 60457274
    root/S1/MySegmentsMat/ground_truth_bb/<Action>.<camera id>.mat   optional: the release's person boxes

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
subtracted, as posepile does. The release's boxes of these sequences carry the same error and are moved by the
same shift (posepile's ``correct_boxes``).

Boxes: the release's ``ground_truth_bb`` files (MATLAB v7.3: ``Masks``, a cell array with one logical image per
frame, 1 inside the person's box) give each frame's box as the bounding rectangle of its mask (posepile's
``extract_frames_and_boxes.py``). Where a video has no such file, or a frame has no mask or an empty one, the
box comes from the projected joints (``RawInstance.bbox`` None); each case is logged once per conversion.

Image sizes: the frame size is never taken from a table (per camera the release has 1000 x 1002 and 1000 x
1000 videos, but S7's 55011271 videos are 1000 x 1002); where it is needed it is read from the video's header
(:func:`video_size`).

The ``h36m_alljoints`` variant (:mod:`posebank.datasets.h36m.alljoints`) converts the same frames with every
distinct joint of the release's 32; this module provides the shared machinery (:func:`collect_instances`).
"""

from __future__ import annotations

import dataclasses
import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
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

NAME = "h36m"
INFO = DatasetInfo(
    name=NAME,
    full_name="Human3.6M",
    homepage="http://vision.imar.ro/human3.6m/",
    licence="Academic use only; register and download from the homepage (no redistribution).",
    citation=("C. Ionescu, D. Papava, V. Olaru, C. Sminchisescu. Human3.6M: Large Scale Datasets and Predictive "
              "Methods for 3D Human Sensing in Natural Environments. TPAMI 36(7), 2014."),
)

CAMERA_IDS = ("54138969", "55011271", "58860488", "60457274")
N_RAW_JOINTS = 32
# posepile's 17-joint selection of the 32 release joints (ds/h36m/main.py, get_examples)
SELECTED_JOINTS = (1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27, 0)
JOINT_INFO = JointInfo(
    "rhip,rkne,rank,lhip,lkne,lank,tors,neck,head,htop,lsho,lelb,lwri,rsho,relb,rwri,pelv",
    "htop-head-neck-rsho-relb-rwri,neck-tors-pelv-rhip-rkne-rank")
S9_SHIFTED = ("SittingDown 1", "Waiting 1", "Greeting")
S9_SHIFT_MM = 200.0
BOX_MASK_FOLDER = "MySegmentsMat/ground_truth_bb"

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


def check_h36m_params(name: str, params: dict | None) -> dict:
    """The checks of :func:`check_params` for the dataset registered as ``name`` (h36m or a variant with the same
    settings); errors name ``datasets.<name>.<key>``."""
    p = check_dataset_params(name, params, DEFAULT_PARAMS)
    seen: dict[int, str] = {}
    for _split, key in SPLIT_KEYS:
        if not isinstance(p[key], list):  # (an empty default list does not fix the type for the settings check)
            raise ParamsError(f"datasets.{name}.{key}", f"{p[key]!r} is not a list of subject numbers")
        bad = [s for s in p[key] if isinstance(s, bool) or not isinstance(s, int) or s not in SUBJECTS]
        if bad:
            raise ParamsError(f"datasets.{name}.{key}", f"{bad} are not subject numbers 1..11")
        for s in p[key]:
            if s in seen:
                raise ParamsError(f"datasets.{name}.{key}", f"subject {s} is also in {seen[s]}")
            seen[s] = key
    if not seen:
        raise ParamsError(f"datasets.{name}.train_subjects", "no subjects selected in any split")
    for key in ("train_frame_step", "test_frame_step"):
        if p[key] < 1:
            raise ParamsError(f"datasets.{name}.{key}", f"must be at least 1, got {p[key]}")
    if p["adaptive_sampling_mm"] < 0:
        raise ParamsError(f"datasets.{name}.adaptive_sampling_mm", f"must be >= 0, got {p['adaptive_sampling_mm']}")
    bad = [c for c in p["cameras"] if c not in CAMERA_IDS]
    if bad or not p["cameras"] or len(set(p["cameras"])) != len(p["cameras"]):
        raise ParamsError(f"datasets.{name}.cameras", f"{p['cameras']} is not a list of distinct camera ids of "
                                                      f"{', '.join(CAMERA_IDS)}")
    return p


def check_params(params: dict | None = None) -> dict:
    """``params`` (a params.yaml entry, or already merged) over DEFAULT_PARAMS, checked; ParamsError names the key."""
    return check_h36m_params(NAME, params)


def splits(params: dict | None = None) -> tuple[str, ...]:
    """The splits the params select: those with subjects."""
    p = check_params(params)
    return tuple(split for split, key in SPLIT_KEYS if p[key])


# ------------------------------------------------------------------------------------------- readers
def find_metadata(root, name: str = NAME) -> Path:
    root = Path(root)
    for candidate in (root / "metadata.xml", root / "Release-v1.2" / "metadata.xml"):
        if candidate.is_file():
            return candidate
    raise RawLayoutError(name, root, "metadata.xml (looked in the root and in Release-v1.2/)")


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


def video_size(path) -> tuple[int, int]:
    """(width, height) of a video's frames, from its header (OpenCV's CAP_PROP_FRAME_WIDTH/HEIGHT); RawFileError
    naming the video when it cannot be opened or its header gives no size."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise RawFileError(path, "video file not found")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise RawFileError(path, "cannot open video (unsupported codec or corrupt file), so its frame size is "
                                     "unknown")
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        cap.release()
    if w <= 0 or h <= 0:
        raise RawFileError(path, f"the video's header gives no frame size ({w} x {h})")
    return w, h


def box_mask_relpath(subject: int, action: str, camera_id: str) -> str:
    """Raw-root relative path of the release's ground-truth box masks of one video."""
    return f"S{subject}/{BOX_MASK_FOLDER}/{action}.{camera_id}.mat"


def mask_rectangle(mask) -> np.ndarray | None:
    """[x, y, w, h] of the nonzero pixels of a (H, W) mask in posebank's pixel convention (pixel centres at integer
    coordinates: pixel columns x0..x1 span [x0 - 0.5, x1 + 0.5]); None for an empty mask."""
    mask = np.asarray(mask)
    cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    if not len(cols):
        return None
    return np.array([cols[0] - 0.5, rows[0] - 0.5, cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1], np.float64)


@dataclasses.dataclass
class MaskBoxes:
    """The boxes of one ``ground_truth_bb`` file at the requested frames."""

    boxes: dict[int, np.ndarray | None]  # frame -> [x, y, w, h], None: no mask for the frame or an empty mask
    n_masks: int  # masks in the file
    shape: tuple[int, int] | None  # (height, width) of the first mask read (MATLAB's orientation)
    beyond: list[int]  # requested frames past the file's last mask
    empty: list[int]  # requested frames whose mask has no nonzero pixel


def read_mask_boxes(path, frames: Sequence[int]) -> MaskBoxes:
    """Boxes of the selected ``frames`` from a ``ground_truth_bb`` file: ``Masks``, a cell array of one logical
    (H, W) image per frame (MATLAB v7.3, as the release ships it; a v5 file is read too). Only the requested masks
    are decoded. RawFileError names the file when it is unreadable or holds no ``Masks``."""
    from posebank.datasets.matlab import load_mat, mat_version

    path = Path(path)
    frames = sorted({int(i) for i in frames})
    out = MaskBoxes({}, 0, None, [], [])

    def add(i: int, mask: np.ndarray) -> None:  # mask in MATLAB's (H, W) orientation
        if out.shape is None:
            out.shape = tuple(int(n) for n in mask.shape[:2])
        box = mask_rectangle(mask) if mask.ndim == 2 and mask.size else None
        out.boxes[i] = box
        if box is None:
            out.empty.append(i)

    if mat_version(path) == "7.3":
        import h5py

        try:
            with h5py.File(path, "r") as f:
                if "Masks" not in f:
                    names = sorted(k for k in f.keys() if not k.startswith("#"))
                    raise RawFileError(path, f"no 'Masks' variable (has {names})")
                refs = np.asarray(f["Masks"][()]).reshape(-1)  # MATLAB (1, T) cells; h5py shows (T, 1)
                if refs.dtype != object:
                    raise RawFileError(path, f"'Masks' is not a cell array (HDF5 dtype {refs.dtype})")
                out.n_masks = len(refs)
                for i in frames:
                    if i >= len(refs):
                        continue
                    node = f[refs[i]]
                    if node.attrs.get("MATLAB_empty", 0):
                        add(i, np.zeros((0, 0), np.uint8))
                    else:
                        add(i, np.asarray(node[()]).T)  # HDF5 holds MATLAB's (H, W) as (W, H)
        except RawFileError:
            raise
        except (OSError, KeyError, ValueError, RuntimeError, TypeError) as e:  # h5py: truncated files, bad refs
            raise RawFileError(path, f"unreadable ground_truth_bb mask file, truncated or corrupt "
                                     f"({type(e).__name__}: {e})") from e
    else:
        cells = np.asarray(load_mat(path, ["Masks"], what="ground_truth_bb mask file")["Masks"], dtype=object)
        cells = cells.reshape(-1)
        out.n_masks = len(cells)
        for i in frames:
            if i < len(cells):
                add(i, np.asarray(cells[i]))
    out.beyond = [i for i in frames if i >= out.n_masks]
    return out


def corrected_box(box, camera: Camera, pelvis_world) -> np.ndarray | None:
    """A box of the S9 sequences whose annotations are shifted, moved as posepile's ``correct_boxes`` does: its
    top-left and bottom-right corners are lifted to 3D at the camera depth of the (corrected) pelvis, moved by
    -200 mm along world x and projected again. None when the pelvis is missing."""
    x, y, w, h = np.asarray(box, np.float64)
    depth = camera.world_to_camera(np.asarray(pelvis_world, np.float64))[2]
    if not np.isfinite(depth) or depth <= 0:
        return None
    corners = camera.image_to_world(np.array([[x, y], [x + w, y + h]]), depth)
    corners[:, 0] -= S9_SHIFT_MM
    (x0, y0), (x1, y1) = camera.project(corners)
    out = np.array([x0, y0, x1 - x0, y1 - y0])
    return out if np.all(np.isfinite(out)) else None


def list_actions(root, subject: int) -> list[str]:
    folder = Path(root) / f"S{subject}" / "MyPoseFeatures" / "D3_Positions"
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.cdf") if not p.stem.startswith("_ALL"))


def layout_actions(root, p: dict, name: str = NAME) -> dict[int, list[str]]:
    """The actions per selected subject, verifying that the raw tree holds what the conversion needs (checked
    params ``p``; RawLayoutError for dataset ``name``)."""
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(name, root, "the folder itself")
    find_metadata(root, name)
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
        raise RawLayoutError(name, root, missing)
    return actions


def check_layout(root, params: dict | None = None) -> dict[int, list[str]]:
    """Verify that the raw tree holds what the conversion needs; returns the actions per subject (the optional
    ground_truth_bb files are not required)."""
    return layout_actions(root, check_params(params))


def subject_split(subject: int, p: dict) -> str:
    if subject in p["train_subjects"]:
        return "train"
    if subject in p["val_subjects"]:
        return "val"
    return "test"


def is_shifted(subject: int, action: str) -> bool:
    """One of the S9 sequences whose released poses (and boxes) are shifted by +200 mm along world x."""
    return subject == 9 and action in S9_SHIFTED


def corrected_poses(poses: np.ndarray, subject: int, action: str, correct_s9: bool) -> np.ndarray:
    if correct_s9 and is_shifted(subject, action):
        poses = poses.copy()
        poses[..., 0] -= S9_SHIFT_MM
    return poses


@dataclasses.dataclass
class _BoxLog:
    """What the ground_truth_bb files did not provide in one conversion, logged once at its end."""

    videos: int = 0
    absent: list[str] = dataclasses.field(default_factory=list)
    beyond: list[str] = dataclasses.field(default_factory=list)  # "<mask file>#<frame>"
    empty: list[str] = dataclasses.field(default_factory=list)
    other_size: list[str] = dataclasses.field(default_factory=list)

    def report(self, name: str) -> None:
        if self.absent:
            log.warning("%s: %d of %d videos have no %s file (e.g. %s); their boxes come from the projected joints",
                        name, len(self.absent), self.videos, BOX_MASK_FOLDER, self.absent[0])
        for what, items in (("past the last mask of their file", self.beyond), ("with an empty mask", self.empty)):
            if items:
                log.warning("%s: %d selected frames %s (e.g. %s); their boxes come from the projected joints",
                            name, len(items), what, items[0])
        if self.other_size:
            log.warning("%s: %d %s files hold masks of another size than their video's frames (e.g. %s); their "
                        "boxes are used as they are", name, len(self.other_size), BOX_MASK_FOLDER, self.other_size[0])


def _boxes_of_video(root: Path, subj: int, act: str, cam: str, frames: list[int], camera: Camera,
                    pelvis: np.ndarray, shifted: bool, report: _BoxLog) -> dict[int, np.ndarray | None]:
    """The release's boxes of one video at ``frames`` (S9-corrected when ``shifted``), {} without its mask file.
    ``pelvis``: (T, 3) the corrected world pelvis of every frame of the sequence."""
    rel = box_mask_relpath(subj, act, cam)
    report.videos += 1
    if not (root / rel).is_file():
        report.absent.append(rel)
        return {}
    read = read_mask_boxes(root / rel, frames)
    report.beyond += [f"{rel}#{i}" for i in read.beyond]
    report.empty += [f"{rel}#{i}" for i in read.empty]
    if read.shape is not None:
        w, h = video_size(root / f"S{subj}/Videos/{act}.{cam}.mp4")
        if read.shape != (h, w):
            report.other_size.append(f"{rel}: {read.shape[1]} x {read.shape[0]}, video {w} x {h}")
    boxes = read.boxes
    if shifted:
        boxes = {i: None if b is None else corrected_box(b, camera, pelvis[i]) for i, b in boxes.items()}
    return boxes


def collect_instances(root, p: dict, dropped: list[Dropped] | None, name: str, joints: Sequence[int],
                      poses_seen: Callable[[str, np.ndarray, list[int]], None] | None = None) -> list[RawInstance]:
    """Every selected person instance for dataset ``name`` (h36m or a variant), with the release joints ``joints``.

    The frames are selected on posepile's 17 joints whatever ``joints`` are, so every variant converts the same
    frames; ``poses_seen(cdf, poses, frames)`` (optional) sees each sequence's corrected (T, 32, 3) poses and the
    frames kept of it.
    """
    root = Path(root)
    actions = layout_actions(root, p, name)
    cameras = read_cameras(find_metadata(root, name))
    joints = list(joints)
    pelvis_index = SELECTED_JOINTS.index(0)
    report = _BoxLog()
    out = []
    for subj in sorted(actions):
        split = subject_split(subj, p)
        step = p["train_frame_step"] if split != "test" else p["test_frame_step"]
        for act in actions[subj]:
            cdf = f"S{subj}/MyPoseFeatures/D3_Positions/{act}.cdf"
            raw = corrected_poses(read_poses(root / cdf), subj, act, p["correct_s9"])
            selected = raw[:, SELECTED_JOINTS]
            frames = drop_missing_poses(selected, range(0, len(raw), step), cdf, dropped)
            if split == "train" and p["adaptive_sampling_mm"]:
                sampler = AdaptivePoseSampler(p["adaptive_sampling_mm"])
                frames = [i for i in frames if sampler.should_keep(selected[i])]
            if poses_seen is not None:
                poses_seen(cdf, raw, frames)
            poses = raw[:, joints]
            shifted = p["correct_s9"] and is_shifted(subj, act)
            for cam in p["cameras"]:
                camera = cameras[(subj, cam)]
                boxes = _boxes_of_video(root, subj, act, cam, frames, camera, selected[:, pelvis_index], shifted,
                                        report)
                for i in frames:
                    out.append(RawInstance(
                        source=f"S{subj}/Videos/{act}.{cam}.mp4", frame_index=i, world_coords=poses[i],
                        camera=camera, split=split, subject=f"S{subj}", sequence=act,
                        activity=act.split(" ")[0], camera_name=cam, bbox=boxes.get(i)))
    report.report(name)
    return out


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected person instance of the raw tree, in a deterministic order; frames without any annotated
    joint are appended to ``dropped``."""
    return collect_instances(root, check_params(params), dropped, NAME, SELECTED_JOINTS)


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.h36m.fixture.make_fixture`, which
    takes the ``options``)."""
    from posebank.datasets.h36m.fixture import make_fixture as write

    return write(root, seed, **options)


# ------------------------------------------------------------------------------------------- downloads
# No direct download: the release is handed out after a registration (h36m and h36m_alljoints read this tree).
RAW_INSTRUCTIONS = """
    Human3.6M is handed out after a registration on its homepage (a licence for non-commercial research). From its
    download page get, for every subject params.yaml selects (train_subjects, val_subjects, test_subjects: S1 S5 S6
    S7 S8 S9 S11 by default), the D3 Positions poses and the videos, and optionally the person boxes (Segments,
    ground_truth_bb), plus metadata.xml from the release's code (Release-v1.2). Unpack them so that the raw folder
    holds (h36m and h36m_alljoints read the same tree):
        metadata.xml                                          (or Release-v1.2/metadata.xml)
        S<n>/MyPoseFeatures/D3_Positions/<Action>.cdf
        S<n>/Videos/<Action>.<camera id>.mp4                  the cameras params.yaml selects
        S<n>/MySegmentsMat/ground_truth_bb/<Action>.<camera id>.mat   optional: the release's person boxes
"""
