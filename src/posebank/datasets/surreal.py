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
(100 mm) per clip, the person box from the segmentation mask and frames whose mask is empty skipped.
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

import cv2
import numpy as np
import scipy.io

from posebank.camera import Camera
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
    name="surreal",
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
    "adaptive_sampling_mm": 100,
    "box_from_mask": True,
}

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
def _loadmat(path: Path, what: str, variable_names=None) -> dict:
    if not path.is_file():
        raise RawFileError(path, f"{what} not found")
    try:
        return scipy.io.loadmat(str(path), variable_names=variable_names)
    except Exception as e:  # scipy raises assorted errors on truncated or foreign files
        raise RawFileError(path, f"unreadable MATLAB file, truncated or corrupt ({type(e).__name__}: {e})") from e


def read_info(path) -> tuple[np.ndarray, Camera]:
    """A clip's ``_info.mat``: ``joints3D`` as (T, 24, 3) float64 mm in SMPL order, and the camera of the
    frames as stored in the video (before the flip ``instances`` applies)."""
    path = Path(path)
    mat = _loadmat(path, "annotation file", ["joints3D", "camLoc"])
    for name in ("joints3D", "camLoc"):
        if name not in mat:
            raise RawFileError(path, f"no {name!r} variable")
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
    mat = _loadmat(path, "segmentation file", names)
    out = {}
    for i, name in zip(frames, names):
        if name not in mat:
            raise RawFileError(path, f"no {name!r} variable (segmentation of frame {i} missing)")
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


def check_params(p: dict) -> None:
    bad = [s for s in p["splits"] if s not in SPLITS]
    if bad or not p["splits"]:
        raise ValueError(f"surreal: splits must be a non-empty subset of {list(SPLITS)}, got {p['splits']}")
    if not p["runs"] or any(not isinstance(r, int) or r < 0 for r in p["runs"]):
        raise ValueError(f"surreal: runs must be non-negative integers (the runN folders), got {p['runs']}")
    if not isinstance(p["frame_step"], int) or p["frame_step"] < 1:
        raise ValueError(f"surreal: frame_step must be a positive integer, got {p['frame_step']}")
    if p["adaptive_sampling_mm"] < 0:
        raise ValueError(f"surreal: adaptive_sampling_mm must be >= 0, got {p['adaptive_sampling_mm']}")


def data_prefix(root) -> str:
    """``"cmu/"`` when the root holds the release's ``cmu`` folder, ``""`` when it holds the splits itself."""
    root = Path(root)
    if (root / "cmu").is_dir():
        return "cmu/"
    if any((root / s).is_dir() for s in SPLITS):
        return ""
    raise RawLayoutError("surreal", root, "cmu/ (the folder holding train/ val/ test/)")


def check_layout(root, params: dict | None = None) -> list[Clip]:
    """Verify that the raw tree holds what the conversion needs; returns the clips, in a deterministic order."""
    p = {**DEFAULT_PARAMS, **(params or {})}
    check_params(p)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError("surreal", root, "the folder itself")
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
        raise RawLayoutError("surreal", root, missing)
    return clips


# ------------------------------------------------------------------------------------------- instances
def instances(root, params: dict | None = None) -> list[RawInstance]:
    """Every selected person instance of the raw tree, in a deterministic order.

    Coordinates refer to the horizontally flipped frames that ``frame_source`` delivers.
    """
    p = {**DEFAULT_PARAMS, **(params or {})}
    root = Path(root)
    out = []
    for clip in check_layout(root, p):
        world, camera = read_info(root / clip.info)
        if not len(world):
            log.warning("surreal: %s has no frames; skipped", clip.info)
            continue
        camera = flipped_camera(camera)
        poses = world[:, SELECTED_JOINTS]
        frames = list(range(0, len(poses), p["frame_step"]))
        if p["adaptive_sampling_mm"]:
            sampler = AdaptivePoseSampler(p["adaptive_sampling_mm"])
            frames = [i for i in frames if sampler.should_keep(poses[i])]
        boxes = {}
        if p["box_from_mask"]:
            boxes = {i: mask_box(m[:, ::-1]) for i, m in read_segm(root / clip.segm, frames).items()}
            empty = [i for i in frames if boxes[i] is None]  # the person is not in view
            if empty:
                log.info("surreal: %s: %d of %d selected frames show no person pixels in _segm.mat; "
                         "not converted", clip.video, len(empty), len(frames))
            frames = [i for i in frames if boxes[i] is not None]
        for i in frames:
            out.append(RawInstance(
                source=clip.video, frame_index=i, world_coords=poses[i], camera=camera, split=clip.split,
                subject=clip.subject, sequence=f"run{clip.run}/{clip.name}", bbox=boxes.get(i)))
    return out


def frame_source(raw_root, params: dict | None = None):
    """Frames of the clips' videos flipped horizontally, with the flipped person mask of ``_segm.mat``."""
    from posebank.build import Frame
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


# ------------------------------------------------------------------------------------------- fixture
MARK_RADIUS = 2.0
FIXTURE_MARKER = ".posebank-fixture"
_FIXTURE_SUBJECTS = {"train": (1, 5, 7, 9), "val": (104, 107), "test": (122, 143)}


def _template() -> np.ndarray:
    """A standing SMPL-like body, metres, in its own frame: x to the person's left, y up, z forward."""
    j = np.zeros((N_RAW_JOINTS, 3))
    named = {
        "pelv": (0, 0.93, 0), "lhip": (0.09, 0.85, 0), "rhip": (-0.09, 0.85, 0), "bell": (0, 1.05, -0.01),
        "lkne": (0.11, 0.49, 0.03), "rkne": (-0.11, 0.49, 0.03), "spin": (0, 1.18, 0), "lank": (0.12, 0.08, -0.02),
        "rank": (-0.12, 0.08, -0.02), "thor": (0, 1.25, 0.01), "ltoe": (0.14, 0.02, 0.13),
        "rtoe": (-0.14, 0.02, 0.13), "neck": (0, 1.45, -0.01), "lcla": (0.08, 1.38, 0), "rcla": (-0.08, 1.38, 0),
        "head": (0, 1.57, 0.04), "lsho": (0.18, 1.40, -0.02), "rsho": (-0.18, 1.40, -0.02),
        "lelb": (0.32, 1.17, -0.03), "relb": (-0.32, 1.17, -0.03), "lwri": (0.46, 0.96, 0.0),
        "rwri": (-0.46, 0.96, 0.0), "lhan": (0.52, 0.89, 0.02), "rhan": (-0.52, 0.89, 0.02)}
    for name, v in named.items():
        j[SMPL_JOINT_NAMES.index(name)] = v
    return j


def _descendants(joint: int) -> list[int]:
    out = [joint]
    for child, parent in enumerate(SMPL_PARENTS):
        if parent == joint:
            out += _descendants(child)
    return out


def _swing(points: np.ndarray, joint: int, angle: float) -> None:
    """Rotate the subtree below ``joint`` about the body's left-right axis through it (in place)."""
    idx = _descendants(joint)[1:]
    c, s = np.cos(angle), np.sin(angle)
    rel = points[idx] - points[joint]
    points[idx] = points[joint] + rel @ np.array([[1, 0, 0], [0, c, s], [0, -s, c]])


def _fixture_joints(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """``joints3D`` of a person walking and turning, (T, 24, 3) metres in SURREAL's world (up = -y)."""
    base = _template()
    start = np.array([rng.uniform(-0.3, 0.3), 0.0, rng.uniform(-2.3, -1.7)])
    heading0, phase = rng.uniform(0, 2 * np.pi), rng.uniform(0, 2 * np.pi)
    upright = np.diag([1.0, -1.0, -1.0])  # body frame to world: a proper rotation turning y up into -y
    out = np.zeros((n_frames, N_RAW_JOINTS, 3))
    for t in range(n_frames):
        body = base.copy()
        swing = 0.4 * np.sin(0.3 * t + phase)
        for joint, sign in (("lhip", 1), ("rhip", -1), ("lsho", -1.3), ("rsho", 1.3)):
            _swing(body, SMPL_JOINT_NAMES.index(joint), sign * swing)
        heading = heading0 + 0.015 * t
        c, s = np.cos(heading), np.sin(heading)
        yaw = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
        forward = yaw @ upright @ [0.0, 0.0, 1.0]
        out[t] = body @ (yaw @ upright).T + start + 0.015 * t * forward
    return out


def _render(camera: Camera, joints_mm: np.ndarray):
    """Frame (BGR), body-part labels and depth (m) of one annotation frame, drawn as the stored camera sees it."""
    w, h = IMAGE_SIZE
    pts = camera.project(joints_mm)
    depth_m = camera.world_to_camera(joints_mm)[:, 2] / 1000
    thickness = max(3, int(round(0.08 * FOCAL_PX / depth_m[0])))
    segm = np.zeros((h, w), np.uint8)
    fixed = np.round(pts * 16).astype(np.int32)
    for child, parent in enumerate(SMPL_PARENTS):
        if parent >= 0:
            cv2.line(segm, tuple(fixed[parent]), tuple(fixed[child]), parent + 1, thickness, cv2.LINE_8, shift=4)
    head = SMPL_JOINT_NAMES.index("head")
    cv2.circle(segm, tuple(fixed[head]), int(round(0.1 * FOCAL_PX / depth_m[head] * 16)), head + 1, -1,
               cv2.LINE_8, shift=4)
    image = np.full((h, w, 3), 40, np.uint8)
    image[segm > 0] = 110
    for pt in fixed:
        cv2.circle(image, tuple(pt), int(MARK_RADIUS * 16), (255, 255, 255), -1, cv2.LINE_AA, shift=4)
    depth = np.full((h, w), 1e10, np.float32)
    depth[segm > 0] = depth_m[0]
    return image, segm, depth


def _info_dict(rng, name: str, clip_no: int, run: int, joints3d: np.ndarray, joints2d: np.ndarray,
               cam_loc: np.ndarray, cam_dist: float) -> dict:
    """The variables of a release ``_info.mat`` with their dtypes and shapes (pose and shape are random and
    do not drive the joints, which come from the fixture's own stick figure)."""
    n = len(joints3d)

    def cell(texts):
        c = np.empty((1, n), object)
        for i, text in enumerate(texts):
            c[0, i] = text
        return c

    bg = f"LSUN/img/kitchen_tr_img/{rng.integers(16 ** 12):012x}.jpg"
    cloth = f"nongrey_male_{rng.integers(1000):04d}.jpg"
    zrot = rng.uniform(0, 2 * np.pi)
    return {
        "sequence": name, "clipNo": np.array([[clip_no]], np.uint8), "source": "cmu",
        "bg": cell([bg] * n), "gender": np.full((n, 1), rng.integers(2), np.uint8),
        "light": np.repeat(rng.uniform(-0.7, 0.7, (9, 1)), n, axis=1).astype(np.float32),
        "stride": np.array([[STRIDES.get(run, 50)]], np.uint8), "camDist": np.array([[cam_dist]], np.float32),
        "camLoc": cam_loc.reshape(3, 1).astype(np.float32),
        "joints2D": joints2d.transpose(2, 1, 0).astype(np.float32),
        "joints3D": joints3d.transpose(2, 1, 0).astype(np.float32),
        "pose": rng.normal(0, 0.2, (72, n)).astype(np.float32),
        "zrot": np.full((n, 1), zrot, np.float32), "cloth": cell([cloth] * n),
        "shape": np.repeat(rng.normal(0, 1, (10, 1)), n, axis=1).astype(np.float32),
    }


def make_fixture(root, seed: int = 0, n_clips: int = 1, n_frames: int = 30, splits=SPLITS, runs=RUNS) -> Path:
    """Write a miniature SURREAL raw tree in the release's layout under ``root/cmu``.

    ``n_clips`` clips of ``n_frames`` frames per split and run: real MATLAB v5 ``_info.mat`` files with the
    release's variables, dtypes and shapes (``joints2D`` rounded as the release does), 320x240 mp4 videos in
    which white marks are drawn at the projected joints over a grey stick figure, ``_segm.mat`` with its body
    part labels and ``_depth.mat``. Like the real renders, the videos are mirror images of the world of
    ``joints3D`` (drawn through ``read_info``'s camera).
    """
    from posebank.imaging.video import write_video

    root = Path(root)
    rng = np.random.default_rng(seed)
    for split in splits:
        for run in runs:
            subject = int(rng.choice(_FIXTURE_SUBJECTS[split]))
            seq = f"{subject:02d}_{int(rng.integers(1, 40)):02d}"
            folder = root / "cmu" / split / f"run{run}" / seq
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(1, n_clips + 1):
                name = f"{seq}_c{k:04d}"
                joints = _fixture_joints(rng, n_frames)
                cam_dist = float(rng.uniform(6.5, 7.5))
                cam_loc = joints[0, 0] + [cam_dist - 1.0, rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05)]
                camera = blender_camera(cam_loc.astype(np.float32))
                joints_mm = joints.astype(np.float32).astype(np.float64) * 1000
                rendered = [_render(camera, joints_mm[t]) for t in range(n_frames)]
                joints2d = np.round(camera.project(joints_mm))
                scipy.io.savemat(folder / f"{name}_info.mat", _info_dict(
                    rng, name, k, run, joints, joints2d, cam_loc, cam_dist), do_compression=True, oned_as="column")
                scipy.io.savemat(folder / f"{name}_segm.mat", {f"segm_{t + 1}": r[1] for t, r in enumerate(rendered)},
                                 do_compression=True)
                scipy.io.savemat(folder / f"{name}_depth.mat",
                                 {f"depth_{t + 1}": r[2] for t, r in enumerate(rendered)}, do_compression=True)
                write_video(folder / f"{name}.mp4", (r[0] for r in rendered), fps=30)
    (root / FIXTURE_MARKER).write_text(f"surreal fixture, seed {seed}\n")
    return root
