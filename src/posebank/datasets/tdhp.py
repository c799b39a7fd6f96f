"""MPI-INF-3DHP training set (Mehta et al., 3DV 2017).

Raw layout, as the authors' ``get_dataset.sh`` unpacks it (``root`` is the folder holding ``S1`` ... ``S8``)::

    root/S<s>/Seq<q>/annot.mat                     MATLAB v5, s = 1..8, q = 1..2
    root/S<s>/Seq<q>/camera.calibration            text, 14 cameras
    root/S<s>/Seq<q>/imageSequence/video_<c>.avi   c = 0..13, 2048 x 2048
    root/S<s>/Seq<q>/FGmasks/video_<c>.avi         person (foreground) mask in the red channel
    root/S<s>/Seq<q>/ChairMasks/video_<c>.avi      chair mask in the red channel

``annot.mat`` holds cell arrays of shape (14, 1), one cell per camera (the camera index of cell ``j`` is
``cameras[0, j]``, 0..13): ``annot2`` (T, 56) = 28 joints x (x, y) pixels, ``annot3`` (T, 84) = 28 joints x
(x, y, z) mm in that camera's frame, ``univ_annot3`` (T, 84) the same for the height-normalised "universal"
skeleton; ``frames`` (T, 1) numbers the frames 0..T-1.

``camera.calibration`` ("Skeletool Camera Calibration File V1.0") has one block per camera::

    name          0
      sensor      10 10                  sensor width height, mm
      size        2048 2048              image width height, pixels
      animated    0
      intrinsic   <16 numbers>           4 x 4 row-major; K is the top-left 3 x 3
      extrinsic   <16 numbers>           4 x 4 row-major world->camera [R | T], T in mm
      radial      0

The world frame has y pointing up. The world joints are ``annot3`` taken back to the world through the camera's
extrinsics (as posepile does), so projecting them through the parsed camera reproduces ``annot2``.

Frame selection follows posepile: cameras 0 1 2 4 5 6 7 8 (chest height), every 5th frame, only frames where all
17 joints project inside the image, then adaptive pose sampling (100 mm) per camera; S1..S7 train, S8 validation.
The video of camera 2 in S6/Seq2 is shorter than its annotations (3911 frames, as posepile notes).

For composites (MuCo-3DHP), :func:`load_sequence` gives a :class:`TrainSequence` whose ``read_frames`` yields
:class:`PersonFrame` records: the frame, the FGmasks/ChairMasks frames, world and 2D joints and the Camera.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import scipy.io

from posebank.camera import Camera, look_at
from posebank.datasets.base import (
    DatasetInfo,
    RawFileError,
    RawInstance,
    RawLayoutError,
    check_finite_camera,
)
from posebank.sampling import AdaptivePoseSampler
from posebank.skeleton import JointInfo

log = logging.getLogger(__name__)

INFO = DatasetInfo(
    name="tdhp",
    full_name="MPI-INF-3DHP",
    homepage="http://gvv.mpi-inf.mpg.de/3dhp-dataset/",
    licence=("Non-commercial research use only, under the licence accepted in the download script's conf.ig; "
             "no redistribution."),
    citation=("D. Mehta, H. Rhodin, D. Casas, P. Fua, O. Sotnychenko, W. Xu, C. Theobalt. Monocular 3D Human Pose "
              "Estimation In The Wild Using Improved CNN Supervision. 3DV 2017."),
)

N_CAMERAS = 14
N_RAW_JOINTS = 28
# the 28 joints of annot2/annot3 in release order (mpii_get_joint_set.m), as short codes
RAW_JOINT_NAMES = (
    "spi3,spi4,spi2,spin,pelv,neck,head,htop,lcla,lsho,lelb,lwri,lhan,rcla,rsho,relb,rwri,rhan,"
    "lhip,lkne,lank,lfoo,ltoe,rhip,rkne,rank,rfoo,rtoe").split(",")
# posepile's 17-joint selection (the test set's joints, in its training order)
SELECTED_JOINTS = (7, 5, 14, 15, 16, 9, 10, 11, 23, 24, 25, 18, 19, 20, 3, 6, 4)
JOINT_INFO = JointInfo([RAW_JOINT_NAMES[i] for i in SELECTED_JOINTS],
                       "htop-head-neck-rsho-relb-rwri,neck-spin-pelv-rhip-rkne-rank")
# all 28 joints in posepile's order for the full variant and MuCo-3DHP (joint 0 named "thor" there)
FULL_SELECTED_JOINTS = (0, 1, 2, 8, 12, 13, 17, 21, 22, 26, 27, 7, 5, 14, 15, 16, 9, 10, 11, 23, 24, 25, 18, 19,
                        20, 3, 6, 4)
FULL_JOINT_INFO = JointInfo(
    [("thor" if i == 0 else RAW_JOINT_NAMES[i]) for i in FULL_SELECTED_JOINTS],
    "htop-head-neck-rcla-rsho-relb-rwri-rhan,neck-spi4-thor-spi2-spin-pelv-rhip-rkne-rank-rfoo-rtoe")

CHEST_CAMERAS = (0, 1, 2, 4, 5, 6, 7, 8)
# videos shorter than their annotations: (subject, sequence, camera) -> frames in the video (posepile)
SHORT_VIDEOS = {(6, 2, 2): 3911}
MASK_THRESHOLD = 32  # a mask video pixel is set when its red channel exceeds this (posepile)
WORLD_UP = (0.0, 1.0, 0.0)
ANNOT_KEYS = ("annot2", "annot3", "univ_annot3")
CALIBRATION_HEADER = "Skeletool Camera Calibration File V1.0"

DEFAULT_PARAMS = {
    "train_subjects": [1, 2, 3, 4, 5, 6, 7],
    "val_subjects": [8],
    "sequences": [1, 2],
    "cameras": list(CHEST_CAMERAS),
    "frame_step": 5,
    "adaptive_sampling_mm": 100,
    "min_visible_joints": 17,
}


# ------------------------------------------------------------------------------------------- paths
def sequence_dir(subject: int, sequence: int) -> str:
    return f"S{subject}/Seq{sequence}"


def video_path(subject: int, sequence: int, camera: int, kind: str = "imageSequence") -> str:
    """Raw-root relative path of a camera's video; ``kind`` is imageSequence, FGmasks or ChairMasks."""
    return f"{sequence_dir(subject, sequence)}/{kind}/video_{camera}.avi"


# ------------------------------------------------------------------------------------------- calibration
@dataclasses.dataclass
class CalibratedCamera:
    """One block of a camera.calibration file."""

    name: int
    camera: Camera
    image_size: tuple[int, int]  # width, height
    sensor_mm: tuple[float, float]
    radial: float


def _numbers(path, cam, key, tokens, count) -> np.ndarray:
    if len(tokens) != count:
        raise RawFileError(path, f"camera {cam}: '{key}' has {len(tokens)} numbers, expected {count}")
    try:
        return np.array([float(t) for t in tokens], np.float64)
    except ValueError as e:
        raise RawFileError(path, f"camera {cam}: '{key}' holds something other than numbers ({e})") from e


def _camera_from_block(path, name: int, fields: dict) -> CalibratedCamera:
    for key in ("size", "intrinsic", "extrinsic"):
        if key not in fields:
            raise RawFileError(path, f"camera {name}: no '{key}' line")
    if fields.get("animated", ["0"]) != ["0"]:
        raise RawFileError(path, f"camera {name}: animated cameras are not supported (3DHP's are static)")
    size = _numbers(path, name, "size", fields["size"], 2)
    sensor = _numbers(path, name, "sensor", fields.get("sensor", ["nan", "nan"]), 2)
    intrinsic = _numbers(path, name, "intrinsic", fields["intrinsic"], 16).reshape(4, 4)
    extrinsic = _numbers(path, name, "extrinsic", fields["extrinsic"], 16).reshape(4, 4)
    radial = _numbers(path, name, "radial", fields.get("radial", ["0"]), 1)[0]
    for key, arr in (("size", size), ("intrinsic", intrinsic), ("extrinsic", extrinsic)):
        if not np.all(np.isfinite(arr)):
            raise RawFileError(path, f"camera {name}: non-finite numbers in '{key}'")
    if np.any(size <= 0) or np.any(size != np.round(size)):
        raise RawFileError(path, f"camera {name}: invalid image size {size.tolist()}")
    rot = extrinsic[:3, :3]
    if not (np.allclose(rot @ rot.T, np.eye(3), atol=1e-3) and np.linalg.det(rot) > 0):
        raise RawFileError(path, f"camera {name}: the extrinsic's 3 x 3 block is not a rotation")
    if radial != 0:
        log.warning("%s: camera %d has radial %g, which is ignored (as posepile does)", path, name, radial)
    camera = Camera(intrinsic_matrix=intrinsic[:3, :3], R=rot, t=-rot.T @ extrinsic[:3, 3], world_up=WORLD_UP)
    check_finite_camera(camera, path)
    return CalibratedCamera(name, camera, (int(size[0]), int(size[1])), (float(sensor[0]), float(sensor[1])),
                            float(radial))


def parse_calibration(path) -> dict[int, CalibratedCamera]:
    """Every camera block of a ``camera.calibration`` file, keyed by its ``name`` (the camera index)."""
    path = Path(path)
    if not path.is_file():
        raise RawFileError(path, "calibration file not found")
    try:
        text = path.read_text(encoding="utf-8-sig", errors="strict")
    except (OSError, UnicodeDecodeError) as e:
        raise RawFileError(path, f"unreadable calibration file ({e})") from e
    lines = [line.split() for line in text.splitlines()]
    lines = [tokens for tokens in lines if tokens]
    if not lines or " ".join(lines[0]) != CALIBRATION_HEADER:
        raise RawFileError(path, f"does not start with '{CALIBRATION_HEADER}'")
    blocks: list[tuple[int, dict]] = []
    for tokens in lines[1:]:
        key, values = tokens[0], tokens[1:]
        if key == "name":
            if len(values) != 1 or not values[0].isdigit():
                raise RawFileError(path, f"camera name {' '.join(values)!r} is not a camera index")
            blocks.append((int(values[0]), {}))
        elif not blocks:
            raise RawFileError(path, f"'{key}' line before the first 'name' line")
        elif key in blocks[-1][1]:
            raise RawFileError(path, f"camera {blocks[-1][0]}: '{key}' given twice")
        else:
            blocks[-1][1][key] = values
    if not blocks:
        raise RawFileError(path, "no camera blocks")
    out = {}
    for name, fields in blocks:
        if name in out:
            raise RawFileError(path, f"camera {name} defined twice")
        out[name] = _camera_from_block(path, name, fields)
    return out


def read_calibration(path) -> dict[int, Camera]:
    """Cameras of a ``camera.calibration`` file: ``{camera index: Camera}`` (world y up, mm)."""
    return {name: c.camera for name, c in parse_calibration(path).items()}


def format_calibration(cameras: dict[int, CalibratedCamera]) -> str:
    """The text of a ``camera.calibration`` file holding these cameras (the Skeletool writer's layout)."""
    def nums(a):
        return " ".join(f"{float(v):.10g}" for v in np.asarray(a).ravel()) + " "

    out = [CALIBRATION_HEADER]
    for name in sorted(cameras):
        c = cameras[name]
        intrinsic = np.eye(4)
        intrinsic[:3, :3] = c.camera.intrinsic_matrix
        extrinsic = np.eye(4)
        extrinsic[:3, :3] = c.camera.R
        extrinsic[:3, 3] = -c.camera.R @ c.camera.t
        out += [f"name          {name}",
                f"  sensor      {c.sensor_mm[0]:g} {c.sensor_mm[1]:g}",
                f"  size        {c.image_size[0]} {c.image_size[1]}",
                "  animated    0",
                f"  intrinsic   {nums(intrinsic)}",
                f"  extrinsic   {nums(extrinsic)}",
                f"  radial      {c.radial:g}"]
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------- annotations
def _cells(path, mat: dict, key: str) -> list[np.ndarray]:
    if key not in mat:
        have = sorted(k for k in mat if not k.startswith("__"))
        raise RawFileError(path, f"no '{key}' variable (has {have})")
    arr = mat[key]
    if not (isinstance(arr, np.ndarray) and arr.dtype == object and arr.ndim == 2 and 1 in arr.shape):
        shape = getattr(arr, "shape", None)
        raise RawFileError(path, f"'{key}' is not a cell array with one cell per camera (got shape {shape})")
    return list(arr.ravel())


def read_annot(path, keys: Sequence[str] = ANNOT_KEYS) -> dict:
    """The annotations of one sequence's ``annot.mat``.

    Returns ``{"annot2": {camera: (T, 28, 2)}, "annot3": {camera: (T, 28, 3)}, "univ_annot3": {...},
    "frames": (T,) int}`` (only the requested ``keys``), float64 pixels and millimetres.
    """
    path = Path(path)
    if not path.is_file():
        raise RawFileError(path, "annotation file not found")
    try:
        mat = scipy.io.loadmat(str(path), variable_names=[*keys, "cameras", "frames"])
    except Exception as e:  # scipy raises assorted errors on truncated or foreign files
        raise RawFileError(path, f"unreadable MATLAB v5 file, truncated or corrupt ({type(e).__name__}: {e})") from e
    out: dict = {}
    n_frames = None
    camera_ids = None
    for key in keys:
        dims = int(key[-1])
        cells = _cells(path, mat, key)
        if camera_ids is None:
            if "cameras" in mat:
                camera_ids = np.asarray(mat["cameras"]).ravel()
                if camera_ids.size != len(cells) or not np.all(camera_ids == np.round(camera_ids)):
                    raise RawFileError(path, f"'cameras' has {camera_ids.size} entries for {len(cells)} cells")
                camera_ids = camera_ids.astype(int)
            else:
                camera_ids = np.arange(len(cells))
        if len(cells) != len(camera_ids):
            raise RawFileError(path, f"'{key}' has {len(cells)} cells, expected {len(camera_ids)} (one per camera)")
        per_camera = {}
        for cam, cell in zip(camera_ids, cells):
            a = np.asarray(cell)
            if a.dtype == object or a.ndim != 2 or a.shape[1] != N_RAW_JOINTS * dims:
                raise RawFileError(path, f"'{key}' of camera {cam} has shape {a.shape}, expected (T, "
                                         f"{N_RAW_JOINTS * dims}) ({N_RAW_JOINTS} joints x {dims})")
            if n_frames is None:
                n_frames = a.shape[0]
            if a.shape[0] != n_frames:
                raise RawFileError(path, f"'{key}' of camera {cam} has {a.shape[0]} frames, others {n_frames}")
            per_camera[int(cam)] = a.astype(np.float64).reshape(n_frames, N_RAW_JOINTS, dims)
        out[key] = per_camera
    if n_frames is None:
        raise RawFileError(path, "no annotation variables requested")
    if "frames" in mat:
        frames = np.asarray(mat["frames"], np.float64).ravel()
        if frames.size != n_frames or not np.all(frames == np.round(frames)):
            raise RawFileError(path, f"'frames' has {frames.size} entries for {n_frames} annotated frames")
        out["frames"] = frames.astype(np.int64)
    else:
        out["frames"] = np.arange(n_frames)
    return out


def world_coords_from_camera(camera: Camera, camera_coords: np.ndarray) -> np.ndarray:
    """Camera-frame joints (annot3) in the world frame, through the camera's extrinsics."""
    return camera.camera_to_world(camera_coords)


# ------------------------------------------------------------------------------------------- selection
def visible_joint_counts(camera: Camera, world: np.ndarray, image_size) -> np.ndarray:
    """For poses (T, J, 3): how many joints lie in front of the camera and project inside the image."""
    cam = camera.world_to_camera(world)
    with np.errstate(invalid="ignore", divide="ignore"):
        img = camera.camera_to_image(cam)
        inside = ((cam[..., 2] > 0) & (img[..., 0] >= 0) & (img[..., 1] >= 0)
                  & (img[..., 0] < image_size[0]) & (img[..., 1] < image_size[1]))
    return inside.sum(axis=-1)


def select_frames(world: np.ndarray, camera: Camera, image_size, frame_step: int, adaptive_sampling_mm: float,
                  min_visible_joints: int, sample_first: bool = False) -> list[int]:
    """Indices of the frames posepile keeps among poses (T, J, 3) of one camera.

    Candidates are every ``frame_step``-th frame. ``sample_first`` False (tdhp): frames with fewer than
    ``min_visible_joints`` joints inside the image are dropped, then the adaptive pose sampler sees the rest;
    True (tdhp_full): the sampler sees every candidate, then the visibility filter applies.
    """
    if frame_step < 1:
        raise ValueError(f"frame_step must be >= 1, got {frame_step}")
    candidates = np.arange(0, len(world), frame_step)
    visible = visible_joint_counts(camera, world[candidates], image_size) >= min_visible_joints
    sampler = AdaptivePoseSampler(adaptive_sampling_mm) if adaptive_sampling_mm else None
    kept = []
    for i, vis in zip(candidates, visible):
        if not sample_first and not vis:
            continue
        if sampler is not None and not sampler.should_keep(world[i]):
            continue
        if sample_first and not vis:
            continue
        kept.append(int(i))
    return kept


def check_layout(root, params: dict | None = None, dataset: str = "tdhp") -> list[tuple[int, int]]:
    """Verify that the raw tree holds what the conversion needs; returns the (subject, sequence) pairs."""
    p = {**DEFAULT_PARAMS, **(params or {})}
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(dataset, root, "the folder itself")
    missing, pairs = [], []
    for subj in [*p["train_subjects"], *p["val_subjects"]]:
        for seq in p["sequences"]:
            pairs.append((subj, seq))
            folder = sequence_dir(subj, seq)
            for name in ("annot.mat", "camera.calibration"):
                if not (root / folder / name).is_file():
                    missing.append(f"{folder}/{name}")
            for cam in p["cameras"]:
                if not (root / video_path(subj, seq, cam)).is_file():
                    missing.append(video_path(subj, seq, cam))
    if missing:
        raise RawLayoutError(dataset, root, missing)
    return pairs


def _check_params(p: dict, dataset: str) -> None:
    groups = [p["train_subjects"], p["val_subjects"]]
    subjects = [s for g in groups for s in g]
    if len(set(subjects)) != len(subjects):
        raise ValueError(f"{dataset}: train/val subjects overlap: {groups}")
    bad = [c for c in p["cameras"] if not (isinstance(c, int) and 0 <= c < N_CAMERAS)]
    if bad:
        raise ValueError(f"{dataset}: cameras must be indices 0..{N_CAMERAS - 1}, got {bad}")


def n_video_frames(subject: int, sequence: int, camera: int, n_annotated: int) -> int:
    """Frames usable in a camera's video: the annotated ones, minus the known short videos."""
    return min(n_annotated, SHORT_VIDEOS.get((subject, sequence, camera), n_annotated))


def make_instances(dataset: str, root, p: dict, joints: Sequence[int], sample_first: bool) -> list[RawInstance]:
    """Instances of the training tree for a joint selection (shared by tdhp and tdhp_full)."""
    _check_params(p, dataset)
    root = Path(root)
    pairs = check_layout(root, p, dataset)
    joints = list(joints)
    out = []
    for subj, seq in sorted(pairs):
        folder = root / sequence_dir(subj, seq)
        split = "train" if subj in p["train_subjects"] else "val"
        calib = parse_calibration(folder / "camera.calibration")
        annot = read_annot(folder / "annot.mat", keys=("annot3",))
        for cam in sorted(p["cameras"]):
            if cam not in calib:
                raise RawFileError(folder / "camera.calibration", f"no camera {cam} (has {sorted(calib)})")
            if cam not in annot["annot3"]:
                raise RawFileError(folder / "annot.mat", f"no annotations of camera {cam}")
            c = calib[cam]
            n = n_video_frames(subj, seq, cam, len(annot["frames"]))
            world = world_coords_from_camera(c.camera, annot["annot3"][cam][:n, joints])
            frames = select_frames(world, c.camera, c.image_size, p["frame_step"], p["adaptive_sampling_mm"],
                                   p["min_visible_joints"], sample_first)
            for i in frames:
                out.append(RawInstance(
                    source=video_path(subj, seq, cam), frame_index=int(annot["frames"][i]),
                    world_coords=world[i].copy(), camera=c.camera, split=split, subject=f"S{subj}",
                    sequence=f"Seq{seq}", activity="", camera_name=str(cam)))
    return out


def instances(root, params: dict | None = None) -> list[RawInstance]:
    """Every selected person instance of the raw tree, in a deterministic order."""
    p = {**DEFAULT_PARAMS, **(params or {})}
    return make_instances("tdhp", root, p, SELECTED_JOINTS, sample_first=False)


# ------------------------------------------------------------------------------------------- frames + masks
@dataclasses.dataclass
class PersonFrame:
    """One frame of one camera of a training sequence, with its masks and annotations."""

    subject: int
    sequence: int
    camera_index: int
    frame_index: int
    image: np.ndarray  # (H, W, 3) BGR uint8
    fg_alpha: np.ndarray | None  # (H, W) uint8, red channel of the FGmasks video; None when not read
    chair_alpha: np.ndarray | None  # (H, W) uint8, red channel of the ChairMasks video; None when not read
    world_coords: np.ndarray  # (J, 3) mm, world frame
    univ_world_coords: np.ndarray  # (J, 3) mm, universal skeleton, world frame
    image_coords: np.ndarray  # (J, 2) pixels, annot2
    camera: Camera

    @property
    def fg_mask(self) -> np.ndarray | None:
        """Person foreground, (H, W) bool (red channel > 32, as posepile reads it)."""
        return None if self.fg_alpha is None else self.fg_alpha > MASK_THRESHOLD

    @property
    def chair_mask(self) -> np.ndarray | None:
        return None if self.chair_alpha is None else self.chair_alpha > MASK_THRESHOLD


class TrainSequence:
    """Cameras and annotations of one ``S<s>/Seq<q>`` folder; reads frames with masks on demand."""

    def __init__(self, root, subject: int, sequence: int):
        self.root, self.subject, self.sequence = Path(root), subject, sequence
        folder = self.root / sequence_dir(subject, sequence)
        if not folder.is_dir():
            raise RawLayoutError("tdhp", self.root, sequence_dir(subject, sequence))
        self.calibration = parse_calibration(folder / "camera.calibration")
        self.annot = read_annot(folder / "annot.mat")

    def camera(self, camera: int) -> Camera:
        return self.calibration[camera].camera

    def n_frames(self, camera: int) -> int:
        return n_video_frames(self.subject, self.sequence, camera, len(self.annot["frames"]))

    def world_coords(self, camera: int, joints: Sequence[int] = FULL_SELECTED_JOINTS, key="annot3") -> np.ndarray:
        """(T, J, 3) world joints from ``annot3`` (or ``univ_annot3``) of one camera."""
        return world_coords_from_camera(self.camera(camera), self.annot[key][camera][:, list(joints)])

    def image_coords(self, camera: int, joints: Sequence[int] = FULL_SELECTED_JOINTS) -> np.ndarray:
        return self.annot["annot2"][camera][:, list(joints)]

    def read_frames(self, camera: int, frame_indices: Iterable[int], joints: Sequence[int] = FULL_SELECTED_JOINTS,
                    masks: bool = True) -> Iterator[PersonFrame]:
        """Decode the requested frames (increasing order) with their FGmasks/ChairMasks frames.

        Raises ``FrameReadError`` when a video is missing or a frame lies past its end.
        """
        from posebank.imaging.video import FrameReadError, read_video_frames

        wanted = sorted(set(int(i) for i in frame_indices))
        n = self.n_frames(camera)
        beyond = [i for i in wanted if not 0 <= i < n]
        if beyond:
            raise FrameReadError(f"{video_path(self.subject, self.sequence, camera)}: frames {beyond[:5]} outside "
                                 f"0..{n - 1}")
        world = self.world_coords(camera, joints)
        univ = self.world_coords(camera, joints, key="univ_annot3")
        image2d = self.image_coords(camera, joints)
        kinds = ["imageSequence", *(["FGmasks", "ChairMasks"] if masks else [])]
        readers = [read_video_frames(self.root / video_path(self.subject, self.sequence, camera, k), wanted)
                   for k in kinds]
        for items in zip(*readers):
            i = items[0][0]
            frames = [f for _, f in items]
            for kind, f in zip(kinds, frames):
                if f is None:
                    raise FrameReadError(f"{video_path(self.subject, self.sequence, camera, kind)}: frame {i} "
                                         "beyond the end of the video")
            alphas = [f[..., 2].copy() for f in frames[1:]] if masks else [None, None]
            yield PersonFrame(self.subject, self.sequence, camera, i, frames[0], alphas[0], alphas[1], world[i],
                              univ[i], image2d[i], self.camera(camera))


def load_sequence(root, subject: int, sequence: int) -> TrainSequence:
    """Cameras and annotations of ``S<subject>/Seq<sequence>`` (see :class:`TrainSequence`)."""
    return TrainSequence(root, subject, sequence)


def read_person_frames(root, subject: int, sequence: int, camera: int, frame_indices: Iterable[int],
                       joints: Sequence[int] = FULL_SELECTED_JOINTS, masks: bool = True) -> Iterator[PersonFrame]:
    """Frames of one camera of one training sequence with image, foreground/chair masks, world joints, 2D joints
    and Camera. Loads the sequence's annotations each call: to read many cameras, use :func:`load_sequence`."""
    yield from load_sequence(root, subject, sequence).read_frames(camera, frame_indices, joints, masks)


# ------------------------------------------------------------------------------------------- fixture
MARK_RADIUS = 4.0
FIXTURE_IMAGE_SIZE = 512
FIXTURE_STILL_FRAMES = 12  # the person stands (moving < 100 mm) before walking off
FIXTURE_WALK_MM_PER_FRAME = 60.0
TELEPHOTO_CAMERA = 2  # the fixture gives this camera a long lens so the walking person leaves its view
CEILING_CAMERAS = (3, 11, 12, 13)
LOW_CAMERAS = (9, 10)


def template_pose() -> np.ndarray:
    """A standing person in the 28-joint release order, local frame (x the person's left, y up, z forward)."""
    right = {
        0: (0, 1300, 0), 1: (0, 1420, 0), 2: (0, 1180, 0), 3: (0, 1060, 0), 4: (0, 950, 0), 5: (0, 1500, 10),
        6: (0, 1620, 30), 7: (0, 1760, 10), 8: (60, 1450, 0), 9: (180, 1420, 0), 10: (330, 1170, 0),
        11: (360, 930, 40), 12: (370, 860, 60), 18: (130, 940, 0), 19: (140, 520, 10), 20: (150, 90, -10),
        21: (150, 30, 90), 22: (150, 20, 160)}
    j = np.zeros((N_RAW_JOINTS, 3))
    for i, v in right.items():
        j[i] = v
    # the right side mirrors the left: lcla..lhan (8..12) -> rcla..rhan (13..17), lhip..ltoe (18..22) -> 23..27
    for left, rgt in [*zip(range(8, 13), range(13, 18)), *zip(range(18, 23), range(23, 28))]:
        j[rgt] = j[left] * [-1, 1, 1]
    return j


def fixture_poses(rng: np.random.Generator, n_frames: int, direction: np.ndarray) -> np.ndarray:
    """World poses (T, 28, 3): standing still, then walking along ``direction`` (ground plane), arms swinging."""
    base = template_pose()
    start = rng.uniform(-150, 150, 2)  # (x, z) on the floor
    facing = np.arctan2(direction[0], direction[1])
    out = np.zeros((n_frames, N_RAW_JOINTS, 3))
    for i in range(n_frames):
        walking = max(0, i - FIXTURE_STILL_FRAMES + 1)
        local = base.copy()
        swing = 0.5 * np.sin(0.4 * walking) if walking else 0.02 * np.sin(i)
        for shoulder, arm, sign in ((9, (10, 11, 12), 1), (14, (15, 16, 17), -1)):
            c, s = np.cos(sign * swing), np.sin(sign * swing)
            rel = local[list(arm)] - local[shoulder]
            local[list(arm)] = local[shoulder] + rel @ np.array([[1, 0, 0], [0, c, s], [0, -s, c]])
        heading = facing + 0.01 * walking
        c, s = np.cos(heading), np.sin(heading)
        rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])  # about y: local z (forward) -> (sin, 0, cos)
        pos = start + FIXTURE_WALK_MM_PER_FRAME * walking * direction
        out[i] = local @ rot.T + [pos[0], 0, pos[1]]
    return out


def fixture_calibration(rng: np.random.Generator, image_size: int) -> dict[int, CalibratedCamera]:
    """14 plausible cameras around the capture area, in the calibration file's terms."""
    cameras = {}
    f0 = 1500.0 * image_size / 2048
    for cam in range(N_CAMERAS):
        angle = 2 * np.pi * cam / N_CAMERAS + rng.uniform(-0.05, 0.05)
        radius = rng.uniform(3000, 3400)
        height = 2500.0 if cam in CEILING_CAMERAS else 300.0 if cam in LOW_CAMERAS else rng.uniform(800, 1000)
        eye = np.array([radius * np.sin(angle), height, radius * np.cos(angle)])
        target = np.array([0.0, 880.0, 0.0]) + rng.uniform(-50, 50, 3)
        f = f0 * (2.0 if cam == TELEPHOTO_CAMERA else rng.uniform(0.97, 1.03))
        c = image_size / 2 + rng.uniform(-8, 8, 2)
        camera = Camera([[f, 0, c[0]], [0, f * rng.uniform(0.999, 1.001), c[1]], [0, 0, 1]],
                        look_at(eye, target, WORLD_UP), eye, world_up=WORLD_UP)
        cameras[cam] = CalibratedCamera(cam, camera, (image_size, image_size), (10.0, 10.0), 0.0)
    return cameras


def _polyline_pts(points) -> np.ndarray:
    return np.round(np.asarray(points) * 16).astype(np.int32)


def draw_person(image: np.ndarray, points2d: np.ndarray, edges, color, thickness: float) -> None:
    """Thick stick figure through 2D joints (sub-pixel, anti-aliased), in place."""
    pts = np.clip(_polyline_pts(points2d), -(1 << 26), 1 << 26).tolist()
    width = max(1, int(round(thickness)))
    for a, b in edges:
        cv2.line(image, pts[a], pts[b], color, width, cv2.LINE_AA, shift=4)


def draw_marks(image: np.ndarray, points2d: np.ndarray, radius: float = MARK_RADIUS) -> None:
    ok = np.all(np.isfinite(points2d) & (np.abs(points2d) < 1e5), axis=-1)
    for pt in _polyline_pts(np.where(ok[:, None], points2d, 0))[ok].tolist():
        cv2.circle(image, pt, int(radius * 16), (255, 255, 255), -1, cv2.LINE_AA, shift=4)


RAW_EDGES = tuple((RAW_JOINT_NAMES.index(a), RAW_JOINT_NAMES.index(b)) for a, b in (
    ("htop", "head"), ("head", "neck"), ("neck", "spi4"), ("spi4", "spi3"), ("spi3", "spi2"), ("spi2", "spin"),
    ("spin", "pelv"), ("neck", "lcla"), ("lcla", "lsho"), ("lsho", "lelb"), ("lelb", "lwri"), ("lwri", "lhan"),
    ("neck", "rcla"), ("rcla", "rsho"), ("rsho", "relb"), ("relb", "rwri"), ("rwri", "rhan"), ("pelv", "lhip"),
    ("lhip", "lkne"), ("lkne", "lank"), ("lank", "lfoo"), ("lfoo", "ltoe"), ("pelv", "rhip"), ("rhip", "rkne"),
    ("rkne", "rank"), ("rank", "rfoo"), ("rfoo", "rtoe")))


def _chair_polygon(camera: Camera) -> np.ndarray | None:
    """Image outline of a 450 mm chair cube standing beside the capture area's centre."""
    corners = np.array([[x, y, z] for x in (500, 950) for y in (0, 450) for z in (-700, -250)], np.float64)
    cam = camera.world_to_camera(corners)
    if np.any(cam[:, 2] <= 0):
        return None
    pts = camera.camera_to_image(cam)
    return cv2.convexHull(np.round(pts * 16).astype(np.int32))


def render_frames(camera: Camera, image_coords: np.ndarray, size: tuple[int, int], mark_joints: Sequence[int]):
    """Fixture images for one camera frame: (image, FG mask, chair mask), BGR uint8."""
    w, h = size
    image = np.full((h, w, 3), 40, np.uint8)
    fg = np.zeros((h, w, 3), np.uint8)
    chair = np.zeros((h, w, 3), np.uint8)
    polygon = _chair_polygon(camera)
    if polygon is not None:
        cv2.fillConvexPoly(image, polygon, (50, 60, 90), cv2.LINE_AA, shift=4)
        cv2.fillConvexPoly(chair, polygon, (255, 255, 255), cv2.LINE_AA, shift=4)
    thickness = max(3.0, w / 50)
    draw_person(image, image_coords, RAW_EDGES, (110, 110, 110), thickness)
    draw_person(fg, image_coords, RAW_EDGES, (255, 255, 255), thickness + 2)
    draw_marks(image, image_coords[list(mark_joints)])
    return image, fg, chair


def make_fixture(root, seed: int = 0, subjects=tuple(range(1, 9)), n_frames: int = 30, cameras=tuple(range(N_CAMERAS)),
                 sequences=(1, 2), image_size: int = FIXTURE_IMAGE_SIZE, masks: bool = True) -> Path:
    """Write a miniature MPI-INF-3DHP training tree in the release's layout.

    Real MATLAB v5 ``annot.mat`` files (cell arrays (14, 1) of (T, 56) / (T, 84)), a 14-camera
    ``camera.calibration`` in the Skeletool text format (its ``size`` line states the fixture's smaller image
    size), XVID ``imageSequence/video_<c>.avi`` videos with white marks at the 17 converted joints over a grey stick
    figure, and ``FGmasks``/``ChairMasks`` videos (white person silhouette / chair). The person stands for a few
    frames, then walks across the view of camera 2, which has a long lens, so some of its frames are truncated.
    """
    from posebank.imaging.video import write_video

    root = Path(root)
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for subj in subjects:
        for seq in sequences:
            folder = root / sequence_dir(subj, seq)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "camera.calibration").write_text(format_calibration(fixture_calibration(rng, image_size)))
            calib = parse_calibration(folder / "camera.calibration")  # as the converter will see them
            tele = calib[TELEPHOTO_CAMERA].camera
            across = tele.R[0][[0, 2]] / np.linalg.norm(tele.R[0][[0, 2]])  # image x of camera 2, on the floor
            world = fixture_poses(rng, n_frames, across * rng.choice([-1, 1]))
            pelvis = world[:, 4:5]
            univ_world = pelvis + (world - pelvis) * rng.uniform(0.92, 1.08)
            annot = {k: np.empty((N_CAMERAS, 1), object) for k in ANNOT_KEYS}
            image2d = {}
            for cam in range(N_CAMERAS):
                c = calib[cam].camera
                image2d[cam] = c.project(world)
                annot["annot2"][cam, 0] = image2d[cam].reshape(n_frames, -1)
                annot["annot3"][cam, 0] = c.world_to_camera(world).reshape(n_frames, -1)
                annot["univ_annot3"][cam, 0] = c.world_to_camera(univ_world).reshape(n_frames, -1)
            scipy.io.savemat(str(folder / "annot.mat"), {
                **annot, "cameras": np.arange(N_CAMERAS, dtype=np.float64)[None],
                "frames": np.arange(n_frames, dtype=np.float64)[:, None]})
            for cam in cameras:
                rendered = [render_frames(calib[cam].camera, image2d[cam][i], calib[cam].image_size,
                                          SELECTED_JOINTS) for i in range(n_frames)]
                write_video(root / video_path(subj, seq, cam), (r[0] for r in rendered), fps=25)
                if masks:
                    write_video(root / video_path(subj, seq, cam, "FGmasks"), (r[1] for r in rendered), fps=25)
                    write_video(root / video_path(subj, seq, cam, "ChairMasks"), (r[2] for r in rendered), fps=25)
    (root / ".posebank-fixture").write_text(f"tdhp fixture, seed {seed}\n")
    return root
