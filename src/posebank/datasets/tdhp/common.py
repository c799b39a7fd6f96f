"""MPI-INF-3DHP (Mehta et al., 3DV 2017): the training tree's readers, shared by the family's datasets.

The family: ``tdhp`` (:mod:`.train`, posepile's 17-joint training set), ``tdhp_full`` (:mod:`.full`, all cameras
and 28 joints), ``tdhp_test`` (:mod:`.test`, the test set TS1..TS6) and ``muco_3dhp`` (:mod:`.muco`, multi-person
composites of training frames). The first, second and fourth read the training tree described here.

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

Frame numbers: row ``i`` of the annotations is frame ``i`` of the videos (decoded from 0), as every public reader
pairs them (posepile's ``tdhp/main.py`` indexes ``annot3`` and names the image with the same ``i_frame``; mmpose's
``preprocess_mpi_inf_3dhp.py`` pairs row ``i`` with the ``i``-th decoded frame; SPIN with ffmpeg's 1-based
``frame_%06d`` number ``i + 1``). The ``frames`` variable is read and checked (it holds 0..T-1 in the release), but
never used as the frame number; a file whose ``frames`` is not 0..T-1 is reported with a warning.

The video of camera 2 in S6/Seq2 is shorter than its annotations (3911 frames, as posepile notes): the frames
beyond its end are reported as dropped.

Masks (:func:`person_component`, :func:`chair_component`), as posepile reads the release's mask videos: the FGmasks red
channel is bright where the frame is not green screen (the person, but also the chair, the ceiling and markers: the
release README calls it the green-screen mask; its green and blue channels carry upper- and lower-body masks where
the sequence has them); the person is the 4-connected component of ``red > threshold`` whose bounding box overlaps
the person's box (the projected joints' box, 1.05 x) most. The ChairMasks red channel is *dark* on the chair: the chair
is the largest component of ``red < 32`` (posepile ``ds/muco/postprocess.py`` get_chair_mask; its patched MATLAB
composition pastes the person's frame where the chair mask is 0). :func:`training_frame_source` gives tdhp and
tdhp_full these person masks, so the segment stage keeps them.

For composites (MuCo-3DHP), :func:`load_sequence` gives a :class:`TrainSequence` whose ``read_frames`` yields
:class:`PersonFrame` records: the frame, the FGmasks/ChairMasks frames, world and 2D joints and the Camera.

The test set's cameras are fitted to its annotations by :func:`estimate_intrinsics` (see :mod:`.test`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from posebank.core.camera import Camera
from posebank.core.errors import FrameReadError, ParamsError
from posebank.core.skeleton import JointInfo
from posebank.datasets.base import Dropped, Frame, RawFileError, RawInstance, RawLayoutError, check_finite_camera
from posebank.datasets.matlab import load_mat
from posebank.datasets.sampling import AdaptivePoseSampler, drop_missing_poses, record_drop

log = logging.getLogger(__name__)

HOMEPAGE = "http://gvv.mpi-inf.mpg.de/3dhp-dataset/"
LICENCE = ("Non-commercial research use only, under the licence accepted in the download script's conf.ig; "
           "no redistribution.")
CITATION = ("D. Mehta, H. Rhodin, D. Casas, P. Fua, O. Sotnychenko, W. Xu, C. Theobalt. Monocular 3D Human Pose "
            "Estimation In The Wild Using Improved CNN Supervision. 3DV 2017.")

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
# mask videos (red channel, 0..255), posepile's thresholds
MASK_THRESHOLD = 32  # FGmasks: person where red > 32 (tdhp, tdhp_full; posepile util/preproc_for_efficiency.py:177)
MUCO_MASK_THRESHOLD = 100  # FGmasks for composites: red > 100 (posepile ds/muco/postprocess.py:156)
CHAIR_THRESHOLD = 32  # ChairMasks: the chair is where red < 32 (posepile ds/muco/postprocess.py:175)
PERSON_BOX_EXPANSION = 1.05  # the person's box: the projected joints' box, 1.05 x (posepile get_bbox / get_box)
WORLD_UP = (0.0, 1.0, 0.0)
ANNOT_KEYS = ("annot2", "annot3", "univ_annot3")
CALIBRATION_HEADER = "Skeletool Camera Calibration File V1.0"
SUBJECTS = tuple(range(1, 9))
SEQUENCES = (1, 2)
VIDEO_KINDS = ("imageSequence", "FGmasks", "ChairMasks")
MASK_KINDS = ("imageSequence", "FGmasks")  # what tdhp and tdhp_full read (the person masks come from FGmasks)


# ------------------------------------------------------------------------------------------- paths
def sequence_dir(subject: int, sequence: int) -> str:
    return f"S{subject}/Seq{sequence}"


def video_path(subject: int, sequence: int, camera: int, kind: str = "imageSequence") -> str:
    """Raw-root relative path of a camera's video; ``kind`` is imageSequence, FGmasks or ChairMasks."""
    return f"{sequence_dir(subject, sequence)}/{kind}/video_{camera}.avi"


_VIDEO_PATH = re.compile(r"S(\d+)/Seq(\d+)/imageSequence/video_(\d+)\.avi")


def parse_video_path(source: str) -> tuple[int, int, int]:
    """(subject, sequence, camera) of an ``imageSequence`` video path made by :func:`video_path`."""
    m = _VIDEO_PATH.fullmatch(source)
    if not m:
        raise ValueError(f"not a training video path (S<s>/Seq<q>/imageSequence/video_<c>.avi): {source!r}")
    return int(m[1]), int(m[2]), int(m[3])


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


# ------------------------------------------------------------------------------------------- annotations
def read_annot(path, keys: Sequence[str] = ANNOT_KEYS) -> dict:
    """The annotations of one sequence's ``annot.mat``.

    Returns ``{"annot2": {camera: (T, 28, 2)}, "annot3": {camera: (T, 28, 3)}, "univ_annot3": {...},
    "frames": (T,) int}`` (only the requested ``keys``), float64 pixels and millimetres.
    """
    path = Path(path)
    mat = load_mat(path, keys, what="annotation file", optional=("cameras", "frames"))
    out: dict = {}
    n_frames = None
    camera_ids = None
    for key in keys:
        dims = int(key[-1])
        arr = mat[key]
        if not (isinstance(arr, np.ndarray) and arr.dtype == object and arr.ndim == 2 and 1 in arr.shape):
            shape = getattr(arr, "shape", None)
            raise RawFileError(path, f"'{key}' is not a cell array with one cell per camera (got shape {shape})")
        cells = list(arr.ravel())
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
        if not np.array_equal(out["frames"], np.arange(n_frames)):
            log.warning("%s: 'frames' is not 0..%d; ignored: annotation row i is video frame i, as the public "
                        "readers (posepile, SPIN, mmpose) pair them", path, n_frames - 1)
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
                  min_visible_joints: int, sample_first: bool = False, candidates: Sequence[int] | None = None
                  ) -> tuple[list[int], list[int]]:
    """The frames posepile keeps among poses (T, J, 3) of one camera, and those left out as not visible.

    Candidates are every ``frame_step``-th frame (or ``candidates``). ``sample_first`` False (tdhp): frames with
    fewer than ``min_visible_joints`` joints inside the image are left out, then the adaptive pose sampler sees the
    rest; True (tdhp_full): the sampler sees every candidate, then the visibility filter applies. Returns
    (kept, not visible).
    """
    candidates = np.arange(0, len(world), frame_step) if candidates is None else np.asarray(candidates, np.int64)
    if not len(candidates):
        return [], []
    visible = visible_joint_counts(camera, world[candidates], image_size) >= min_visible_joints
    sampler = AdaptivePoseSampler(adaptive_sampling_mm) if adaptive_sampling_mm else None
    kept, not_visible = [], []
    for i, vis in zip(candidates, visible):
        if not sample_first and not vis:
            not_visible.append(int(i))
            continue
        if sampler is not None and not sampler.should_keep(world[i]):
            continue
        if sample_first and not vis:
            not_visible.append(int(i))
            continue
        kept.append(int(i))
    return kept, not_visible


def not_visible_reason(min_visible_joints: int, n_joints: int) -> str:
    which = (f"not all {n_joints} joints" if min_visible_joints == n_joints
             else f"fewer than {min_visible_joints} of the {n_joints} joints")
    return f"{which} inside the image (the person is truncated or out of view)"


def short_video_reason(n_video: int, n_annotated: int) -> str:
    return (f"beyond the end of the video: it has {n_video} frames, the annotations {n_annotated} "
            "(a known short video, as posepile notes)")


def n_video_frames(subject: int, sequence: int, camera: int, n_annotated: int) -> int:
    """Frames usable in a camera's video: the annotated ones, minus the known short videos."""
    return min(n_annotated, SHORT_VIDEOS.get((subject, sequence, camera), n_annotated))


def record_short_video(dropped, subject: int, sequence: int, camera: int, n_annotated: int, frame_step: int) -> int:
    """Record the candidate frames past the end of a known short video; returns the usable frame count."""
    n = n_video_frames(subject, sequence, camera, n_annotated)
    record_drop(dropped, video_path(subject, sequence, camera), range(n + (-n) % frame_step, n_annotated, frame_step),
                short_video_reason(n, n_annotated))
    return n


# ------------------------------------------------------------------------------------------- params + layout
def _int_list(dataset: str, p: dict, key: str, allowed: Sequence[int], what: str, empty_ok: bool = False):
    values = p[key]
    if not isinstance(values, list):  # (an empty default list does not fix the type for the settings check)
        raise ParamsError(f"datasets.{dataset}.{key}", f"{values!r} is not a list of {what}")
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int) or v not in allowed]
    if bad:
        raise ParamsError(f"datasets.{dataset}.{key}", f"must be {what} {allowed[0]}..{allowed[-1]}, got {bad}")
    if len(set(values)) != len(values):
        raise ParamsError(f"datasets.{dataset}.{key}", f"lists a value twice: {values}")
    if not values and not empty_ok:
        raise ParamsError(f"datasets.{dataset}.{key}", "must not be empty")


def check_subject_params(dataset: str, p: dict, subject_keys: Sequence[str]) -> None:
    """Subjects (1..8, no subject in two splits, some selected), sequences (1, 2) and cameras (0..13) of a
    training-tree dataset; ParamsError naming ``datasets.<dataset>.<key>``."""
    seen: dict[int, str] = {}
    for key in subject_keys:
        _int_list(dataset, p, key, SUBJECTS, "subject numbers", empty_ok=True)
        for s in p[key]:
            if s in seen:
                raise ParamsError(f"datasets.{dataset}.{key}", f"subject {s} is also in {seen[s]} (splits overlap)")
            seen[s] = key
    if not seen:
        raise ParamsError(f"datasets.{dataset}.{subject_keys[0]}", "no subjects selected")
    _int_list(dataset, p, "sequences", SEQUENCES, "sequence numbers")
    _int_list(dataset, p, "cameras", tuple(range(N_CAMERAS)), "camera indices")
    if p["frame_step"] < 1:
        raise ParamsError(f"datasets.{dataset}.frame_step", f"must be at least 1, got {p['frame_step']}")
    if p.get("adaptive_sampling_mm", 0) < 0:
        raise ParamsError(f"datasets.{dataset}.adaptive_sampling_mm",
                          f"must be >= 0, got {p['adaptive_sampling_mm']}")


def check_layout(root, dataset: str, subjects: Sequence[int], sequences: Sequence[int], cameras: Sequence[int],
                 kinds: Sequence[str] = ("imageSequence",)) -> list[tuple[int, int]]:
    """Verify that the training tree holds what a conversion needs (annotations, calibration and the ``kinds``
    of videos of the cameras); returns the (subject, sequence) pairs."""
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(dataset, root, "the folder itself")
    missing, pairs = [], []
    for subj in subjects:
        for seq in sequences:
            pairs.append((subj, seq))
            folder = sequence_dir(subj, seq)
            for name in ("annot.mat", "camera.calibration"):
                if not (root / folder / name).is_file():
                    missing.append(f"{folder}/{name}")
            for cam in cameras:
                for kind in kinds:
                    if not (root / video_path(subj, seq, cam, kind)).is_file():
                        missing.append(video_path(subj, seq, cam, kind))
    if missing:
        raise RawLayoutError(dataset, root, missing)
    return pairs


def make_instances(dataset: str, root, p: dict, joints: Sequence[int], sample_first: bool,
                   dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Instances of the training tree for a joint selection (shared by tdhp and tdhp_full); ``p`` is checked.

    Left out and recorded in ``dropped``: frames past the end of a known short video, frames without any
    annotated joint, and frames with fewer than ``min_visible_joints`` joints inside the image.
    """
    root = Path(root)
    pairs = check_layout(root, dataset, [*p["train_subjects"], *p["val_subjects"]], p["sequences"], p["cameras"],
                         MASK_KINDS)
    joints = list(joints)
    reason = not_visible_reason(p["min_visible_joints"], len(joints))
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
            video = video_path(subj, seq, cam)
            n = record_short_video(dropped, subj, seq, cam, len(annot["frames"]), p["frame_step"])
            world = world_coords_from_camera(c.camera, annot["annot3"][cam][:n, joints])
            # (the sampler never keeps a pose without joints: leaving those out first changes no selection)
            candidates = drop_missing_poses(world, range(0, n, p["frame_step"]), video, dropped)
            frames, not_visible = select_frames(world, c.camera, c.image_size, p["frame_step"],
                                                p["adaptive_sampling_mm"], p["min_visible_joints"], sample_first,
                                                candidates)
            record_drop(dropped, video, not_visible, reason)
            for i in frames:
                out.append(RawInstance(
                    source=video, frame_index=i,  # annotation row i = video frame i
                    world_coords=world[i].copy(), camera=c.camera, split=split, subject=f"S{subj}",
                    sequence=f"Seq{seq}", activity="", camera_name=str(cam)))
    return out


# ------------------------------------------------------------------------------------------- masks
def joint_box(points, image_size, expansion: float = PERSON_BOX_EXPANSION) -> np.ndarray | None:
    """[x, y, w, h] of the finite 2D ``points`` expanded about its centre by ``expansion`` and clipped to the image
    (``image_size`` = width, height); None when no point is finite or the box lies outside the image."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if not len(pts):
        return None
    lo, hi = pts.min(0), pts.max(0)
    centre, half = (lo + hi) / 2, (hi - lo) / 2 * expansion
    lo = np.maximum(centre - half, 0)
    hi = np.minimum(centre + half, np.asarray(image_size, np.float64))
    if np.any(hi <= lo):
        return None
    return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]])


def box_iou(boxes, box) -> np.ndarray:
    """IoU of each [x, y, w, h] of ``boxes`` (N, 4) with ``box``."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    box = np.asarray(box, np.float64)
    lo = np.maximum(boxes[:, :2], box[:2])
    hi = np.minimum(boxes[:, :2] + boxes[:, 2:], box[:2] + box[2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    union = np.prod(boxes[:, 2:], axis=1) + np.prod(box[2:]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def person_component(red: np.ndarray, box, threshold: int = MASK_THRESHOLD) -> np.ndarray | None:
    """The person in an FGmasks frame's red channel: of the 4-connected components of ``red > threshold`` (which
    also hold the chair, the ceiling and markers), the one whose bounding box has the highest IoU with the person's
    ``box`` [x, y, w, h] (posepile's get_connected_component_with_highest_iou). None when no component overlaps it."""
    if box is None:
        return None
    n, labels, stats, _ = cv2.connectedComponentsWithStats((red > threshold).view(np.uint8), connectivity=4)
    if n <= 1:
        return None
    ious = box_iou(stats[1:, :4], box)
    best = int(np.argmax(ious))  # the first of equals: the component met first in row-major order
    if ious[best] <= 0:
        return None
    return labels == best + 1


def chair_component(red: np.ndarray) -> np.ndarray:
    """The chair in a ChairMasks frame's red channel: the largest 4-connected component of ``red < 32`` (the chair is
    dark, the rest bright; posepile's get_chair_mask). All False when there is none."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats((red < CHAIR_THRESHOLD).view(np.uint8), connectivity=4)
    if n <= 1:
        return np.zeros(red.shape, bool)
    return labels == int(np.argmax(stats[1:, cv2.CC_STAT_AREA])) + 1


def box_region(box, shape) -> np.ndarray:
    """(H, W) bool: the pixels of box [x, y, w, h] (truncated to whole pixels, as posepile's ``astype(int)``)."""
    out = np.zeros(shape, bool)
    x, y, w, h = (int(v) for v in box)
    out[max(y, 0):max(y + h, 0), max(x, 0):max(x + w, 0)] = True
    return out


def expanded_box(box, factor: float, image_size) -> np.ndarray:
    """``box`` [x, y, w, h] expanded about its centre by ``factor`` and clipped to the image."""
    box = np.asarray(box, np.float64)
    centre, half = box[:2] + box[2:] / 2, box[2:] / 2 * factor
    lo = np.maximum(centre - half, 0)
    hi = np.minimum(centre + half, np.asarray(image_size, np.float64))
    return np.concatenate([lo, np.maximum(hi - lo, 0)])


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
    box: np.ndarray | None = None  # [x, y, w, h]: the 17 joints' box, 1.05 x, clipped to the image (posepile)

    @property
    def fg_mask(self) -> np.ndarray | None:
        """Not-green-screen pixels, (H, W) bool: red channel > 32 (the person, and the chair, ceiling, markers)."""
        return None if self.fg_alpha is None else self.fg_alpha > MASK_THRESHOLD

    def person_mask(self, threshold: int = MASK_THRESHOLD) -> np.ndarray | None:
        """The person alone: the component of ``red > threshold`` that best overlaps :attr:`box`."""
        return None if self.fg_alpha is None else person_component(self.fg_alpha, self.box, threshold)

    @property
    def chair_mask(self) -> np.ndarray | None:
        """The chair, (H, W) bool: the largest component of ChairMasks red < 32 (the chair is dark)."""
        return None if self.chair_alpha is None else chair_component(self.chair_alpha)


class TrainSequence:
    """Cameras and annotations of one ``S<s>/Seq<q>`` folder; reads frames with masks on demand."""

    def __init__(self, root, subject: int, sequence: int, dataset: str = "tdhp"):
        self.root, self.subject, self.sequence = Path(root), subject, sequence
        folder = self.root / sequence_dir(subject, sequence)
        if not folder.is_dir():
            raise RawLayoutError(dataset, self.root, sequence_dir(subject, sequence))
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
        from posebank.imaging.video import read_video_frames

        wanted = sorted(set(int(i) for i in frame_indices))
        n = self.n_frames(camera)
        beyond = [i for i in wanted if not 0 <= i < n]
        if beyond:
            raise FrameReadError(video_path(self.subject, self.sequence, camera),
                                 f"frames {beyond[:5]} outside 0..{n - 1}")
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
                    raise FrameReadError(video_path(self.subject, self.sequence, camera, kind),
                                         f"frame {i} beyond the end of the video")
            alphas = [f[..., 2].copy() for f in frames[1:]] if masks else [None, None]
            h, w = frames[0].shape[:2]
            yield PersonFrame(self.subject, self.sequence, camera, i, frames[0], alphas[0], alphas[1], world[i],
                              univ[i], image2d[i], self.camera(camera),
                              joint_box(self.annot["annot2"][camera][i, list(SELECTED_JOINTS)], (w, h)))


def load_sequence(root, subject: int, sequence: int, dataset: str = "tdhp") -> TrainSequence:
    """Cameras and annotations of ``S<subject>/Seq<sequence>`` (see :class:`TrainSequence`)."""
    return TrainSequence(root, subject, sequence, dataset)


def read_person_frames(root, subject: int, sequence: int, camera: int, frame_indices: Iterable[int],
                       joints: Sequence[int] = FULL_SELECTED_JOINTS, masks: bool = True) -> Iterator[PersonFrame]:
    """Frames of one camera of one training sequence with image, foreground/chair masks, world joints, 2D joints
    and Camera. Loads the sequence's annotations each call: to read many cameras, use :func:`load_sequence`."""
    yield from load_sequence(root, subject, sequence).read_frames(camera, frame_indices, joints, masks)


def training_frame_source(raw_root, joints: Sequence[int]):
    """Frames of the training videos with the person's mask from the FGmasks video (for tdhp and tdhp_full).

    The mask is :func:`person_component` of the FGmasks frame's red channel (> 32) for the box of the dataset's
    ``joints`` (annot2, 1.05 x, clipped to the image), as posepile's ``tdhp/main.py`` and its
    ``make_efficient_example`` read it. A person whose FGmasks frame is missing (past the end of a shorter mask video)
    or has no component overlapping the box gets no dataset mask: the segment stage computes one.
    """
    from posebank.imaging.video import read_video_frames

    raw_root = Path(raw_root)
    joints = list(joints)

    @functools.lru_cache(maxsize=2)
    def annot2(subject: int, sequence: int) -> dict[int, np.ndarray]:
        return read_annot(raw_root / sequence_dir(subject, sequence) / "annot.mat", keys=("annot2",))["annot2"]

    def frames(source: str, indices: Sequence[int]) -> Iterator[tuple[int, Frame]]:
        try:
            subject, sequence, camera = parse_video_path(source)
        except ValueError as e:
            raise RawFileError(raw_root / source, str(e)) from None
        points = annot2(subject, sequence)
        if camera not in points:
            raise RawFileError(raw_root / sequence_dir(subject, sequence) / "annot.mat",
                               f"no annotations of camera {camera}")
        points = points[camera]
        mask_video = video_path(subject, sequence, camera, "FGmasks")
        wanted = sorted(set(int(i) for i in indices))
        no_mask = []
        for (i, image), (_, fg) in zip(read_video_frames(raw_root / source, wanted),
                                       read_video_frames(raw_root / mask_video, wanted)):
            if image is None:
                yield i, Frame(None)
                continue
            h, w = image.shape[:2]
            mask = None
            if fg is not None:
                if fg.shape[:2] != (h, w):
                    raise RawFileError(raw_root / mask_video, f"frames are {fg.shape[1]}x{fg.shape[0]}, the "
                                                              f"video's {w}x{h}")
                box = joint_box(points[i, joints], (w, h)) if 0 <= i < len(points) else None
                mask = person_component(fg[..., 2], box)
            if mask is None:
                no_mask.append(i)
            yield i, Frame(image, masks={} if mask is None else {0: mask})
        if no_mask:
            log.warning("%s: %d frames (first %d) without a person in the FGmasks frame (missing, or no component "
                        "overlaps the person's box): the segment stage masks them", mask_video, len(no_mask),
                        no_mask[0])

    return frames


# ------------------------------------------------------------------------------------------- intrinsics
def estimate_intrinsics(points3d_cam, points2d) -> np.ndarray:
    """Intrinsic matrix of a distortion-free camera from 2D-3D correspondences in its own frame.

    ``x = fx X/Z + cx`` and ``y = fy Y/Z + cy`` are linear in (fx, cx) and (fy, cy): each pair is a least-squares fit
    over every finite correspondence in front of the camera (as posepile's ``mupots/calibrate_intrinsics.py`` and
    mmpose's ``preprocess_mpi_inf_3dhp.py`` fit the test cameras). ValueError for too few or degenerate points.
    """
    p3 = np.asarray(points3d_cam, np.float64).reshape(-1, 3)
    p2 = np.asarray(points2d, np.float64).reshape(-1, 2)
    if len(p3) != len(p2):
        raise ValueError(f"{len(p3)} 3D points but {len(p2)} 2D points")
    ok = np.all(np.isfinite(p3), axis=1) & np.all(np.isfinite(p2), axis=1) & (p3[:, 2] > 0)
    ratio, p2 = p3[ok, :2] / p3[ok, 2:3], p2[ok]
    if len(p2) < 3 or np.ptp(ratio[:, 0]) < 1e-6 or np.ptp(ratio[:, 1]) < 1e-6:
        raise ValueError(f"too few or degenerate correspondences ({len(p2)} usable points)")
    k = np.eye(3)
    for axis in (0, 1):
        a = np.stack([ratio[:, axis], np.ones(len(ratio))], axis=1)
        (k[axis, axis], k[axis, 2]), *_ = np.linalg.lstsq(a, p2[:, axis], rcond=None)
    return k


def reprojection_errors(intrinsic_matrix, points3d_cam, points2d) -> np.ndarray:
    """Pixel distance between ``points2d`` and the pinhole projection of ``points3d_cam`` (NaN where not finite)."""
    p3 = np.asarray(points3d_cam, np.float64).reshape(-1, 3)
    k = np.asarray(intrinsic_matrix, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        projected = p3[:, :2] / p3[:, 2:3] @ k[:2, :2].T + k[:2, 2]
    return np.linalg.norm(projected - np.asarray(points2d, np.float64).reshape(-1, 2), axis=1)
