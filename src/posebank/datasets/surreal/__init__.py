"""SURREAL (Varol et al., CVPR 2017): SMPL bodies driven by CMU motion capture, rendered with Blender.

Raw layout, as the release unpacks (``root`` is the folder holding ``cmu/``; a root that holds ``train/ val/
test/`` directly, as posepile arranges it, is accepted too)::

    root/cmu/{train,val,test}/run{0,1,2}/<sequence>/<sequence>_c<k>.mp4        320x240 video, frame i = annotation i
    root/cmu/.../<sequence>/<sequence>_c<k>_info.mat    MATLAB v5 annotations of the clip (T frames, mostly 100)
    root/cmu/.../<sequence>/<sequence>_c<k>_segm.mat    segm_1 .. segm_T: (240, 320) uint8, 0 = background,
                                                        1..24 = SMPL body part
    root/cmu/.../<sequence>/<sequence>_c<k>_depth.mat   depth_1 .. depth_T (not used)

``_info.mat`` holds, among others, ``joints3D`` (3, 24, T) float32 in metres (the 24 SMPL joints in the
Blender world), ``joints2D`` (2, 24, T) float32 pixels, ``camLoc`` (3, 1) the camera location in metres and
``camDist``, ``zrot``, ``pose``, ``shape``, ``gender``. A clip of a single frame may store (3, 24).

Camera. All clips are rendered by one Blender camera that only moves: its ``matrix_world`` has the fixed
rotation part ``BLENDER_CAMERA_MATRIX`` and the translation ``camLoc``; lens 60 mm on a 32 mm wide sensor
imaged onto 320 px gives f = 600 px, and the principal point is the image centre (160, 120), no distortion.
World to OpenCV camera is therefore ``R = diag(1, -1, -1) @ BLENDER_CAMERA_MATRIX.T`` (Blender cameras look
along their -z with y up) and the optical centre is ``camLoc`` (as the release's ``getExtrinsicBlender.m``).
``joints2D`` is exactly ``round(600 X/Z + 160), round(600 Y/Z + 120)`` of ``joints3D`` in this camera: on the
real sample every consistent principal point lies within 0.001 px of (160, 120), so the values are 0-based
pixel coordinates rounded to integers (not 1-based; posepile's 159 is the value after its horizontal flip,
319 - 160). As Blender puts the image borders at 0 and 320, the true pixel-centre principal point could be
half a pixel lower (159.5, 119.5); the integer ``joints2D`` cannot tell, and posebank follows the dataset's
own tooling (160, 120).

Handedness. ``BLENDER_CAMERA_MATRIX`` has determinant -1, so the camera that maps ``joints3D`` onto the frames
is a reflection: the frames are a mirror image of the world in which ``joints3D`` is given. ``joints3D``
itself is a correct body (in every frame of the real sample the left hip and shoulder lie on the body's left,
taking up from pelvis to neck and forward from ankle to toe in a right-handed frame), so it is the videos that
are mirrored; the release's own visualisation script (``smpl_relations.py``) notes that left and right are
swapped on the frames. posebank does what posepile does: it flips every frame horizontally (and its mask)
and uses the camera of the flipped image, ``flipped_camera``: the first row of R negated (now a proper
rotation) and cx = 319 - 160 = 159. World coordinates stay the released ``joints3D`` (in mm) with their own
left/right labels; no joints are swapped, because the flip alone makes picture, labels and 3D agree.
(Keeping the frames unflipped would either store a reflection as the camera, which downstream code treating
R as a rotation does not expect, or need the world mirrored with left and right joints relabelled.)
``read_info`` returns the camera of the frames as stored (determinant -1).

Selection as posepile: every clip of the selected splits and runs, every frame, adaptive pose sampling
(100 mm) per clip, the person box from the segmentation mask and frames whose mask is empty skipped (reported as
dropped, as are frames without any joint and clips without frames).
posepile takes its joints from the SMPL model posed with ``pose``/``shape``/``zrot`` (placed with a fixed
pelvis offset) instead; posebank keeps the released ``joints3D``, which reproduce ``joints2D`` to within its
rounding and need no body model.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from posebank.core.camera import Camera
from posebank.core.errors import ParamsError
from posebank.core.settings import check_dataset_params
from posebank.core.skeleton import JointInfo
from posebank.datasets.base import (
    DatasetInfo,
    Dropped,
    Frame,
    RawFileError,
    RawInstance,
    RawLayoutError,
    check_finite_camera,
)
from posebank.datasets.matlab import load_mat
from posebank.datasets.sampling import AdaptivePoseSampler, drop_missing_poses, record_drop

log = logging.getLogger(__name__)

NAME = "surreal"
INFO = DatasetInfo(
    name=NAME,
    full_name="SURREAL",
    homepage="https://www.di.ens.fr/willow/research/surreal/",
    licence=("SURREAL Code and Data License: non-commercial scientific research only; accept the terms on the "
             "homepage to obtain download credentials (no redistribution)."),
    citation=("G. Varol, J. Romero, X. Martin, N. Mahmood, M. J. Black, I. Laptev, C. Schmid. Learning from "
              "Synthetic Humans. CVPR 2017."),
)

IMAGE_SIZE = (320, 240)  # width, height of every video
FOCAL_PX = 600.0  # 60 mm lens, 32 mm sensor width, 320 px
PRINCIPAL_POINT = (160.0, 120.0)
# rotation part (rows) of the Blender camera's matrix_world, the same for every clip; determinant -1
BLENDER_CAMERA_MATRIX = np.array([[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [-1.0, 0.0, 0.0]])
BLENDER_TO_OPENCV = np.diag([1.0, -1.0, -1.0])
WORLD_UP = (0.0, -1.0, 0.0)  # the bodies stand on y = 0 with their heads towards -y

N_RAW_JOINTS = 24
SMPL_JOINT_NAMES = (
    "pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,lelb,relb,"
    "lwri,rwri,lhan,rhan").split(",")
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
# posepile's order: the 23 non-root joints, then the pelvis
SELECTED_JOINTS = (*range(1, N_RAW_JOINTS), 0)
JOINT_INFO = JointInfo(
    [SMPL_JOINT_NAMES[i] for i in SELECTED_JOINTS],
    "head-neck-thor-rcla-rsho-relb-rwri-rhan,thor-spin-bell-pelv-rhip-rkne-rank-rtoe")

SPLITS = ("train", "val", "test")
RUNS = (0, 1, 2)  # clip overlaps of 50 %, 30 % and 70 %
STRIDES = {0: 50, 1: 30, 2: 70}

DEFAULT_PARAMS = {
    "splits": list(SPLITS),
    "runs": list(RUNS),
    "frame_step": 1,
    "adaptive_sampling_mm": 100.0,
    "box_from_mask": True,
}
NO_PERSON_PIXELS = "no person pixels in _segm.mat: the person is out of view"
NO_FRAMES = "joints3D holds no frames: the clip is not converted"

_CLIP_FILE = re.compile(r"(.+_c\d{4})(\.mp4|_info\.mat|_segm\.mat|_depth\.mat|_gtflow\.mat)")


# ------------------------------------------------------------------------------------------- cameras
def blender_camera(cam_loc_m) -> Camera:
    """The camera of the stored frames for a clip's ``camLoc`` (metres); its R has determinant -1."""
    k = [[FOCAL_PX, 0, PRINCIPAL_POINT[0]], [0, FOCAL_PX, PRINCIPAL_POINT[1]], [0, 0, 1]]
    rot = BLENDER_TO_OPENCV @ BLENDER_CAMERA_MATRIX.T
    return Camera(intrinsic_matrix=k, R=rot, t=np.asarray(cam_loc_m, np.float64).reshape(3) * 1000.0,
                  world_up=WORLD_UP)


def flipped_camera(camera: Camera, width: int = IMAGE_SIZE[0]) -> Camera:
    """The camera of the horizontally flipped image (column x becomes ``width - 1 - x``)."""
    c = camera.copy()
    c.R = np.diag([-1.0, 1.0, 1.0]) @ c.R
    c.intrinsic_matrix[0, 1] *= -1
    c.intrinsic_matrix[0, 2] = width - 1 - c.intrinsic_matrix[0, 2]
    c.distortion_coeffs[3] *= -1  # p2 changes sign under x -> -x (both distortion models)
    return c


# ------------------------------------------------------------------------------------------- readers
def read_info(path) -> tuple[np.ndarray, Camera]:
    """A clip's ``_info.mat``: ``joints3D`` as (T, 24, 3) float64 mm in SMPL order, and the camera of the
    frames as stored in the video (before the flip ``instances`` applies)."""
    path = Path(path)
    mat = load_mat(path, ["joints3D", "camLoc"], what="annotation file")
    joints = np.asarray(mat["joints3D"])
    if joints.shape == (3, N_RAW_JOINTS):  # a clip of one frame
        joints = joints[..., np.newaxis]
    if joints.ndim != 3 or joints.shape[:2] != (3, N_RAW_JOINTS) or not np.issubdtype(joints.dtype, np.number):
        raise RawFileError(path, f"'joints3D' has shape {joints.shape} ({joints.dtype}), expected (3, "
                                 f"{N_RAW_JOINTS}, T) numbers")
    loc = np.asarray(mat["camLoc"])
    if loc.size != 3 or not np.issubdtype(loc.dtype, np.number):
        raise RawFileError(path, f"'camLoc' has shape {loc.shape} ({loc.dtype}), expected (3, 1) numbers")
    camera = blender_camera(loc.astype(np.float64))
    check_finite_camera(camera, path)
    return joints.transpose(2, 1, 0).astype(np.float64) * 1000.0, camera


def read_segm(path, frames: Sequence[int]) -> dict[int, np.ndarray]:
    """Body-part label images (240, 320) uint8 of the given 0-based frames of a ``_segm.mat`` file."""
    path = Path(path)
    frames = sorted(set(int(i) for i in frames))
    if not frames:
        return {}
    names = [f"segm_{i + 1}" for i in frames]
    mat = load_mat(path, names, what="segmentation file")
    out = {}
    for i, name in zip(frames, names):
        m = np.asarray(mat[name])
        if m.shape != IMAGE_SIZE[::-1]:
            raise RawFileError(path, f"{name!r} has shape {m.shape}, expected {IMAGE_SIZE[::-1]}")
        out[i] = m
    return out


def mask_box(mask) -> np.ndarray | None:
    """[x, y, w, h] enclosing the nonzero pixels (pixel centres at integers), None for an empty mask."""
    mask = np.asarray(mask) > 0
    cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    if not len(cols):
        return None
    return np.array([cols[0] - 0.5, rows[0] - 0.5, cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1], np.float64)


# ------------------------------------------------------------------------------------------- layout
@dataclasses.dataclass(frozen=True)
class Clip:
    split: str
    run: int
    sequence: str  # the mocap sequence folder, e.g. 01_01
    name: str  # <sequence>_c<k>
    folder: str  # relative to the raw root

    @property
    def video(self) -> str:
        return f"{self.folder}/{self.name}.mp4"

    @property
    def info(self) -> str:
        return f"{self.folder}/{self.name}_info.mat"

    @property
    def segm(self) -> str:
        return f"{self.folder}/{self.name}_segm.mat"

    @property
    def subject(self) -> str:
        """The mocap subject: the sequence name without its trial number (``01_01`` -> ``01``)."""
        return self.sequence.rsplit("_", 1)[0] if "_" in self.sequence else self.sequence


def check_params(params: dict | None) -> dict:
    """``params`` over DEFAULT_PARAMS, checked; ParamsError names the key."""
    p = check_dataset_params(NAME, params, DEFAULT_PARAMS)
    bad = [s for s in p["splits"] if s not in SPLITS]
    if bad or not p["splits"] or len(set(p["splits"])) != len(p["splits"]):
        raise ParamsError(f"datasets.{NAME}.splits", f"must be distinct splits of {', '.join(SPLITS)}, got "
                                                    f"{p['splits']}")
    if not p["runs"] or any(r < 0 for r in p["runs"]) or len(set(p["runs"])) != len(p["runs"]):
        raise ParamsError(f"datasets.{NAME}.runs", f"must be distinct non-negative integers (the runN folders), "
                                                  f"got {p['runs']}")
    if p["frame_step"] < 1:
        raise ParamsError(f"datasets.{NAME}.frame_step", f"must be a positive integer, got {p['frame_step']}")
    if p["adaptive_sampling_mm"] < 0:
        raise ParamsError(f"datasets.{NAME}.adaptive_sampling_mm", f"must be >= 0, got {p['adaptive_sampling_mm']}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    """The selected splits, in the order train, val, test."""
    p = check_params(params)
    return tuple(s for s in SPLITS if s in p["splits"])


def data_prefix(root) -> str:
    """``"cmu/"`` when the root holds the release's ``cmu`` folder, ``""`` when it holds the splits itself."""
    root = Path(root)
    if (root / "cmu").is_dir():
        return "cmu/"
    if any((root / s).is_dir() for s in SPLITS):
        return ""
    raise RawLayoutError(NAME, root, "cmu/ (the folder holding train/ val/ test/)")


def check_layout(root, params: dict | None = None) -> list[Clip]:
    """Verify that the raw tree holds what the conversion needs; returns the clips, in a deterministic order."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    prefix = data_prefix(root)
    missing, clips = [], []
    for split in (s for s in SPLITS if s in p["splits"]):
        for run in sorted(set(p["runs"])):
            rel = f"{prefix}{split}/run{run}"
            if not (root / rel).is_dir():
                missing.append(f"{rel}/")
                continue
            n_found = 0
            for seq_dir in sorted(d for d in (root / rel).iterdir() if d.is_dir()):
                names = sorted({m.group(1) for f in seq_dir.iterdir() if (m := _CLIP_FILE.fullmatch(f.name))})
                for name in names:
                    clip = Clip(split, run, seq_dir.name, name, f"{rel}/{seq_dir.name}")
                    lacking = [f for f in (clip.video, clip.info, clip.segm) if not (root / f).is_file()]
                    missing.extend(lacking)
                    if not lacking:
                        clips.append(clip)
                    n_found += 1
            if not n_found:
                missing.append(f"{rel}/<sequence>/<sequence>_c<k>_info.mat (no clips)")
    if missing:
        raise RawLayoutError(NAME, root, missing)
    return clips


# ------------------------------------------------------------------------------------------- instances
def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected person instance of the raw tree, in a deterministic order.

    Coordinates refer to the horizontally flipped frames that ``frame_source`` delivers. Appended to ``dropped``:
    clips without frames, frames without any joint, and (``box_from_mask``) frames whose mask has no person pixel.
    """
    p = check_params(params)
    root = Path(root)
    out = []
    for clip in check_layout(root, p):
        world, camera = read_info(root / clip.info)
        if not len(world):
            if dropped is not None:
                dropped.append(Dropped(clip.info, NO_FRAMES, 0))
            continue
        camera = flipped_camera(camera)
        poses = world[:, SELECTED_JOINTS]
        # (the sampler never keeps a pose without joints: leaving those out first changes no selection)
        frames = drop_missing_poses(poses, range(0, len(poses), p["frame_step"]), clip.info, dropped)
        if p["adaptive_sampling_mm"]:
            sampler = AdaptivePoseSampler(p["adaptive_sampling_mm"])
            frames = [i for i in frames if sampler.should_keep(poses[i])]
        boxes = {}
        if p["box_from_mask"]:
            boxes = {i: mask_box(m[:, ::-1]) for i, m in read_segm(root / clip.segm, frames).items()}
            record_drop(dropped, clip.video, [i for i in frames if boxes[i] is None], NO_PERSON_PIXELS)
            frames = [i for i in frames if boxes[i] is not None]
        for i in frames:
            out.append(RawInstance(
                source=clip.video, frame_index=i, world_coords=poses[i], camera=camera, split=clip.split,
                subject=clip.subject, sequence=f"run{clip.run}/{clip.name}", bbox=boxes.get(i)))
    return out


FRAME_SOURCE_PARAMS: tuple[str, ...] = ()  # the frame source reads no parameter (frames are the raw files')


def frame_source(raw_root, params: dict | None = None):
    """Frames of the clips' videos flipped horizontally, with the flipped person mask of ``_segm.mat``."""
    from posebank.imaging.video import read_video_frames

    raw_root = Path(raw_root)

    def frames(source: str, indices: Sequence[int]) -> Iterator[tuple[int, Frame]]:
        video = raw_root / source
        masks = read_segm(video.with_name(f"{video.stem}_segm.mat"), indices)
        for i, image in read_video_frames(video, indices):
            if image is None:
                yield i, Frame(None)
                continue
            if image.shape[1::-1] != IMAGE_SIZE:
                raise RawFileError(video, f"frames are {image.shape[1]}x{image.shape[0]}, expected "
                                          f"{IMAGE_SIZE[0]}x{IMAGE_SIZE[1]} (the camera is fixed to that size)")
            yield i, Frame(np.ascontiguousarray(image[:, ::-1]), masks={0: np.ascontiguousarray(masks[i][:, ::-1] > 0)})

    return frames


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.surreal.fixture.make_fixture`, which
    takes the ``options``)."""
    from posebank.datasets.surreal.fixture import make_fixture as write

    return write(root, seed, **options)


# ------------------------------------------------------------------------------------------- downloads
# No direct download: the release needs an account (a user name and password for the authors' download script).
RAW_INSTRUCTIONS = """
    SURREAL is handed out after accepting its licence on the homepage, which gives an account for the authors'
    download script. Get the cmu/ part (the splits and runs params.yaml selects: train val test, run0 run1 run2),
    so that the raw folder holds, for every clip:
        cmu/<split>/run<N>/<sequence>/<sequence>_c<k>.mp4
        cmu/<split>/run<N>/<sequence>/<sequence>_c<k>_info.mat
        cmu/<split>/run<N>/<sequence>/<sequence>_c<k>_segm.mat
    (the _depth.mat files are not read; a raw folder holding train/ val/ test/ directly is read too).
"""
