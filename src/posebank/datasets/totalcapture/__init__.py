"""TotalCapture (Trumble et al., BMVC 2017): Vicon skeletons of five subjects filmed by 8 calibrated HD cameras,
with a foreground matte video per camera.

Raw layout, as posepile ``ds/totalcapture/main.sh`` downloads and unpacks it (the per-sequence tarballs of
``video/``, ``mattes/`` and ``vicon/`` and the single ``calibration.cal``)::

    root/calibration.cal                                      the 8 cameras
    root/video/s<k>/TC_S<k>_<action><rep>_cam<c>.mp4          1920 x 1080 videos, cameras 1..8
    root/mattes/s<k>/TC_S<k>_<action><rep>_cam<c>.mp4         the foreground matte of each video (same name)
    root/vicon/S<k>/<action><rep>/gt_skel_gbl_pos.txt         the Vicon skeleton's global joint positions

Formats (zhezh/TotalCapture-Toolbox ``tools/data_tools.py``, posepile ``ds/totalcapture/main.py``):

* ``gt_skel_gbl_pos.txt``: a header line of the 21 joint names (tab-separated: ``Hips Spine Spine1 Spine2 Spine3
  Neck Head RightShoulder RightArm RightForeArm RightHand LeftShoulder LeftArm LeftForeArm LeftHand RightUpLeg
  RightLeg RightFoot LeftUpLeg LeftLeg LeftFoot``), then one line per frame: per joint ``x y z`` (tab between
  joints), in **inches** in the Vicon world frame (y up). posebank maps the columns by the header's names to
  posepile's names ``pelv,spin,spin1,spin2,spin3,neck,head,rcla,rsho,relb,rwri,lcla,lsho,lelb,lwri,rhip,rkne,rank,
  lhip,lkne,lank`` (the toolbox's ``vicon_joints`` order) and multiplies by 25.4 (mm).
* ``calibration.cal``: a header ``<number of cameras> <distortion order>``, then 7 lines per camera: image bounds
  ``min_row max_row min_col max_col``, ``fx fy cx cy``, the radial coefficient(s) (one for order 1), the three
  rows of R and t in metres, with ``x_cam = R x_world + t`` (world -> camera). The toolbox projects
  ``u = K (x_n (1 + k1 r²))`` with ``x_n`` the normalised camera coordinates and ``r² = |x_n|²``
  (``gendata/gendb.py project_pose3d_to_2d``): exactly OpenCV's model with k1 alone, so posebank's camera holds
  ``distortion_coeffs = (k1, 0, 0, 0, 0)`` (orders 2 and 3 fill k2, k3); optical centre ``-Rᵀ t`` x 1000 mm; world
  up +y (posepile ``load_cameras``).
* The videos and mattes have one frame per Vicon frame (60 Hz); posepile zips video, matte and pose rows, so the
  shortest of the three ends a sequence (posebank records the pose rows past a video's end as dropped).

Selection (posepile ``make_stage1``): the training sequences of subjects 1-3 (every action and repetition but the
standard test sequences walking2, freestyle3, acting3); per video, a frame is kept when at least 6 joints project
inside the frame in front of the camera, then by adaptive pose sampling (some joint moved >= 100 mm since the
frame last kept for that video). The box is the projected joints' box x 1.25 intersected with the matte's box (and
the image); the person mask is the matte. Everything is train. posepile also converts subjects 4 and 5 and removes
them afterwards by a path filter (its in-loop ``subj in ('s4', 's5')`` test never matches); posebank selects the
subjects by the ``subjects`` setting (default 1, 2, 3) before reading anything.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from posebank.core.camera import Camera
from posebank.core.errors import FrameReadError, ParamsError
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
from posebank.datasets.sampling import AdaptivePoseSampler, drop_missing_poses, record_drop

log = logging.getLogger(__name__)

NAME = "totalcapture"
INFO = DatasetInfo(
    name=NAME,
    full_name="TotalCapture",
    homepage="https://cvssp.org/data/totalcapture/",
    licence=("Research use by permission of CVSSP, University of Surrey (unverified): the data are released to "
             "registered users after a request on the homepage, no redistribution."),
    citation=("M. Trumble, A. Gilbert, C. Malleson, A. Hilton, J. Collomosse. Total Capture: 3D Human Pose "
              "Estimation Fusing Video and Inertial Sensors. BMVC 2017."),
)

CALIBRATION = "calibration.cal"
VIDEO_DIR = "video"
MATTE_DIR = "mattes"
VICON_DIR = "vicon"
POSITIONS = "gt_skel_gbl_pos.txt"
SUBJECTS = (1, 2, 3, 4, 5)
CAMERAS = tuple(range(1, 9))
SPLITS = ("train",)
INCH_TO_MM = 25.4
M_TO_MM = 1000.0
WORLD_UP = (0.0, 1.0, 0.0)  # posepile load_cameras
# the standard test sequences (posepile make_stage1 `is_test`; Trumble et al. 2017)
TEST_SEQUENCES = ("walking2", "freestyle3", "acting3")

# the release's names (the header of gt_skel_gbl_pos.txt; the toolbox's vicon_joints) -> posepile's names
RAW_JOINTS = {
    "Hips": "pelv", "Spine": "spin", "Spine1": "spin1", "Spine2": "spin2", "Spine3": "spin3", "Neck": "neck",
    "Head": "head", "RightShoulder": "rcla", "RightArm": "rsho", "RightForeArm": "relb", "RightHand": "rwri",
    "LeftShoulder": "lcla", "LeftArm": "lsho", "LeftForeArm": "lelb", "LeftHand": "lwri", "RightUpLeg": "rhip",
    "RightLeg": "rkne", "RightFoot": "rank", "LeftUpLeg": "lhip", "LeftLeg": "lkne", "LeftFoot": "lank"}
JOINT_NAMES = ",".join(RAW_JOINTS.values())
# posepile's edges without its 'rhan' (not a joint of the skeleton); the left side is mirrored by JointInfo
JOINT_INFO = JointInfo(JOINT_NAMES, "pelv-spin-spin1-spin2-spin3-neck-head,neck-rcla-rsho-relb-rwri,"
                                    "pelv-rhip-rkne-rank")
N_JOINTS = len(RAW_JOINTS)

DEFAULT_PARAMS = {
    "subjects": [1, 2, 3],  # posepile's training subjects (4 and 5 only hold test sequences and two others)
    "test_sequences": list(TEST_SEQUENCES),  # left out of train (the standard protocol)
    "cameras": list(CAMERAS),
    "frame_step": 1,  # posepile: every frame ...
    "min_visible_joints": 6,  # ... with at least this many joints inside the image, in front of the camera ...
    "adaptive_sampling_mm": 100.0,  # ... then per video keep a frame when some joint moved >= this; 0 = off
    "box_expansion": 1.25,  # the projected joints' box x this, intersected with the matte's box
    "matte_threshold": 128,  # matte pixels >= this are the person (posepile: any nonzero value, i.e. 1)
}
FRAME_SOURCE_PARAMS = ("matte_threshold",)

_VIDEO = re.compile(r"^TC_S(\d)_(.+?)(\d)_cam(\d)\.mp4$")
NO_MATTE_PIXELS = "the matte has no person pixels"
NO_OVERLAP = "the projected joints' box and the matte's box do not overlap"
TOO_FEW_VISIBLE = "fewer than min_visible_joints joints inside the image"
PAST_VIDEO_END = "pose rows past the end of the video or its matte"


# ------------------------------------------------------------------------------------------- paths
def video_relpath(subject: int, sequence: str, camera: int) -> str:
    return f"{VIDEO_DIR}/s{subject}/TC_S{subject}_{sequence}_cam{camera}.mp4"


def matte_relpath(subject: int, sequence: str, camera: int) -> str:
    return f"{MATTE_DIR}/s{subject}/TC_S{subject}_{sequence}_cam{camera}.mp4"


def matte_of(video_source: str) -> str:
    """The matte video of a video (``video/...`` -> ``mattes/...``, the same file name)."""
    parts = video_source.split("/")
    return "/".join([MATTE_DIR, *parts[1:]])


def positions_relpath(subject: int, sequence: str) -> str:
    return f"{VICON_DIR}/S{subject}/{sequence}/{POSITIONS}"


# ------------------------------------------------------------------------------------------- readers
def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except OSError as e:
        raise RawFileError(path, f"unreadable {what} ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise RawFileError(path, f"unreadable {what}: not a text file") from None


def _floats(path: Path, line_no: int, text: str, n: int | None, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        raise RawFileError(path, f"line {line_no} ({what}) is not numeric: {text.strip()!r}") from None
    if n is not None and len(values) != n:
        raise RawFileError(path, f"line {line_no} ({what}) has {len(values)} values, expected {n}")
    return values


@dataclasses.dataclass(frozen=True)
class CalibratedCamera:
    camera: Camera
    bounds: tuple[int, int, int, int]  # min_row max_row min_col max_col, as the file gives them


def read_calibration(path) -> list[CalibratedCamera]:
    """The cameras of ``calibration.cal`` in file order (camera ``c`` of the videos is entry ``c - 1``)."""
    path = Path(path)
    lines = [(n, line) for n, line in enumerate(_read_text(path, "calibration file").splitlines(), 1)
             if line.strip()]
    if not lines:
        raise RawFileError(path, "empty calibration file")
    n0, header = lines[0]
    head = header.split()
    if len(head) != 2 or not all(h.isdigit() for h in head):
        raise RawFileError(path, f"line {n0} is {header.strip()!r}, expected '<number of cameras> <distortion "
                                 f"order>'")
    n_cameras, order = int(head[0]), int(head[1])
    if not 1 <= order <= 3:
        raise RawFileError(path, f"distortion order {order}: only radial orders 1-3 (OpenCV k1, k2, k3) exist")
    if n_cameras < 1 or len(lines) != 1 + 7 * n_cameras:
        raise RawFileError(path, f"{len(lines)} non-empty lines, expected 1 + 7 x {n_cameras} cameras "
                                 f"(truncated or not a TotalCapture calibration file)")
    out = []
    for c in range(n_cameras):
        block = lines[1 + 7 * c: 8 + 7 * c]
        bounds = _floats(path, block[0][0], block[0][1], 4, f"camera {c + 1} image bounds")
        fx, fy, cx, cy = _floats(path, block[1][0], block[1][1], 4, f"camera {c + 1} fx fy cx cy")
        radial = _floats(path, block[2][0], block[2][1], order, f"camera {c + 1} radial distortion")
        rot = np.array([_floats(path, n, line, 3, f"camera {c + 1} rotation row") for n, line in block[3:6]])
        t_m = np.array(_floats(path, block[6][0], block[6][1], 3, f"camera {c + 1} translation"))
        if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-4):
            raise RawFileError(path, f"camera {c + 1}: R is not a rotation matrix")
        coeffs = np.zeros(5)
        coeffs[[0, 1, 4][:order]] = radial  # r², r⁴, r⁶ are OpenCV's k1, k2, k3
        camera = Camera(intrinsic_matrix=[[fx, 0, cx], [0, fy, cy], [0, 0, 1]], R=rot,
                        t=-rot.T @ (t_m * M_TO_MM), distortion_coeffs=coeffs, world_up=WORLD_UP)
        check_finite_camera(camera, path)
        out.append(CalibratedCamera(camera, tuple(int(b) for b in bounds)))
    return out


def folds_inside_image(entry: CalibratedCamera) -> bool:
    """Whether the camera's radial model ``r_d = r (1 + k1 r²)`` (k1 < 0) stops growing before the image's corners:
    pixels beyond ``max r_d = 2 / (3 sqrt(-3 k1))`` have no undistorted ray (a calibration fitted on the image
    centre only)."""
    k1 = entry.camera.distortion_coeffs[0]
    if k1 >= 0 or np.any(entry.camera.distortion_coeffs[1:]):
        return False
    min_row, max_row, min_col, max_col = entry.bounds
    k = entry.camera.intrinsic_matrix
    corners = np.array([[min_col, min_row], [max_col, min_row], [min_col, max_row], [max_col, max_row]], float)
    r_d = np.linalg.norm((corners - k[:2, 2]) / [k[0, 0], k[1, 1]], axis=1).max()
    return bool(r_d >= 2 / (3 * np.sqrt(-3 * k1)))


def read_positions(path) -> np.ndarray:
    """(N, 21, 3) mm of ``gt_skel_gbl_pos.txt``, in posebank's joint order (mapped by the header's names)."""
    path = Path(path)
    lines = _read_text(path, "Vicon position file").splitlines()
    if not lines or not lines[0].strip():
        raise RawFileError(path, "no header line of joint names")
    names = lines[0].split()
    unknown = [n for n in names if n not in RAW_JOINTS]
    missing = [n for n in RAW_JOINTS if n not in names]
    if unknown or missing or len(names) != N_JOINTS:
        raise RawFileError(path, f"the header is not the 21 Vicon joint names (unknown: {unknown[:3]}, missing: "
                                 f"{missing[:3]}, {len(names)} names)")
    order = [names.index(n) for n in RAW_JOINTS]
    rows = []
    for n, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        rows.append(_floats(path, n, line, 3 * N_JOINTS, "joint positions"))
    if not rows:
        raise RawFileError(path, "no frames after the header")
    inches = np.asarray(rows, np.float64).reshape(-1, N_JOINTS, 3)[:, order]
    return inches * INCH_TO_MM


def _open(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise RawFileError(path, "cannot open video (unsupported codec or corrupt file)")
    return cap


def video_info(path) -> tuple[int, tuple[int, int]]:
    """(frame count, (width, height)) of a video file."""
    cap = _open(Path(path))
    try:
        return (int(cap.get(cv2.CAP_PROP_FRAME_COUNT)),
                (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))))
    finally:
        cap.release()


def matte_mask(frame: np.ndarray, threshold: int) -> np.ndarray:
    """The person pixels of a decoded matte frame (BGR; its first RGB channel, as posepile's ``mask[..., 0]``)."""
    channel = frame[..., 2] if frame.ndim == 3 else frame
    return channel >= threshold


def read_mattes(path, indices: Sequence[int], threshold: int) -> Iterator[tuple[int, np.ndarray | None]]:
    """``(i, mask)`` of the matte video's frames ``indices`` in increasing order (None past its end)."""
    from posebank.imaging.video import read_video_frames

    try:
        for i, frame in read_video_frames(path, indices):
            yield i, None if frame is None else matte_mask(frame, threshold)
    except FrameReadError as e:
        raise RawFileError(path, e.problem) from None


# ------------------------------------------------------------------------------------------- boxes
def mask_box(mask: np.ndarray) -> np.ndarray | None:
    """[x, y, w, h] enclosing the mask's pixels (pixel centres at integers), None for an empty mask."""
    cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    if not len(cols):
        return None
    return np.array([cols[0] - 0.5, rows[0] - 0.5, cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1], np.float64)


def joint_box(points: np.ndarray, expansion: float) -> np.ndarray:
    """The box of the finite ``points`` scaled by ``expansion`` about its centre (boxlib ``expand(bb_of_points)``)."""
    pts = points[np.isfinite(points).all(axis=1)]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre, size = (lo + hi) / 2, (hi - lo) * expansion
    return np.concatenate([centre - size / 2, size])


def intersect(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """The intersection of two [x, y, w, h] boxes, None when it is empty."""
    lo = np.maximum(a[:2], b[:2])
    hi = np.minimum(a[:2] + a[2:], b[:2] + b[2:])
    if np.any(hi <= lo):
        return None
    return np.concatenate([lo, hi - lo])


def visible_count(camera: Camera, coords: np.ndarray, size: tuple[int, int]) -> int:
    """Joints in front of the camera projecting inside the image, ``0 <= x < W`` and ``0 <= y < H`` (cameralib
    ``Camera.is_visible``, which posepile counts)."""
    ok = np.isfinite(coords).all(axis=1)
    if not ok.any():
        return 0
    z = camera.world_to_camera(coords[ok])[:, 2]
    im = camera.project(coords[ok])
    inside = (z > 0) & (im[:, 0] >= 0) & (im[:, 0] < size[0]) & (im[:, 1] >= 0) & (im[:, 1] < size[1])
    return int(np.count_nonzero(inside))


# ------------------------------------------------------------------------------------------- params, layout
def check_params(params: dict | None) -> dict:
    p = check_dataset_params(NAME, params, DEFAULT_PARAMS)

    def distinct(key: str, allowed) -> None:
        v = p[key]
        if not v or len(set(v)) != len(v) or set(v) - set(allowed):
            raise ParamsError(f"datasets.{NAME}.{key}", f"must be distinct values of {', '.join(map(str, allowed))},"
                                                        f" got {v}")

    distinct("subjects", SUBJECTS)
    distinct("cameras", CAMERAS)
    if not all(isinstance(s, str) and re.fullmatch(r"[a-z]+\d", s) for s in p["test_sequences"]):
        raise ParamsError(f"datasets.{NAME}.test_sequences", f"must be sequence names like 'walking2', got "
                                                             f"{p['test_sequences']}")
    if p["frame_step"] < 1:
        raise ParamsError(f"datasets.{NAME}.frame_step", f"must be a positive integer, got {p['frame_step']}")
    if not 1 <= p["min_visible_joints"] <= N_JOINTS:
        raise ParamsError(f"datasets.{NAME}.min_visible_joints", f"must be 1..{N_JOINTS}, got "
                                                                 f"{p['min_visible_joints']}")
    if p["adaptive_sampling_mm"] < 0:
        raise ParamsError(f"datasets.{NAME}.adaptive_sampling_mm", "must be >= 0 (0 = off), got "
                                                                   f"{p['adaptive_sampling_mm']}")
    if p["box_expansion"] <= 0:
        raise ParamsError(f"datasets.{NAME}.box_expansion", f"must be > 0, got {p['box_expansion']}")
    if not 1 <= p["matte_threshold"] <= 255:
        raise ParamsError(f"datasets.{NAME}.matte_threshold", f"must be 1..255, got {p['matte_threshold']}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    check_params(params)
    return SPLITS


@dataclasses.dataclass(frozen=True)
class Recording:
    subject: int
    name: str  # <action><rep>, e.g. acting1

    @property
    def positions(self) -> str:
        return positions_relpath(self.subject, self.name)


def check_layout(root, params: dict | None = None) -> list[Recording]:
    """Verify the raw tree; the training sequences of the selected subjects (those with a Vicon position file),
    sorted. Names every missing file or folder."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    missing = [rel for rel in (CALIBRATION, f"{VIDEO_DIR}/", f"{MATTE_DIR}/", f"{VICON_DIR}/")
               if not (root / rel).exists()]
    if missing:
        raise RawLayoutError(NAME, root, missing)
    out = []
    for subject in sorted(p["subjects"]):
        folder = root / VICON_DIR / f"S{subject}"
        if not folder.is_dir():
            missing.append(f"{VICON_DIR}/S{subject}/")
            continue
        found = sorted(d.name for d in folder.iterdir() if (d / POSITIONS).is_file())
        if not found:
            missing.append(f"{VICON_DIR}/S{subject}/<sequence>/{POSITIONS}")
        out += [Recording(subject, name) for name in found if name not in p["test_sequences"]]
    if missing:
        raise RawLayoutError(NAME, root, missing)
    return out


# ------------------------------------------------------------------------------------------- instances
def _video_frames(root: Path, source: str, poses: np.ndarray, camera: Camera, p: dict,
                  dropped: list | None) -> list[tuple[int, np.ndarray]]:
    """(frame, box) of one video's selected frames: visible enough, then the adaptive sampler, then the box."""
    matte = matte_of(source)
    n_video, size = video_info(root / source)
    n_matte, matte_size = video_info(root / matte)
    if matte_size != size:
        raise RawFileError(root / matte, f"the matte is {matte_size[0]}x{matte_size[1]}, its video "
                                         f"{size[0]}x{size[1]}")
    n = min(len(poses), n_video, n_matte)
    record_drop(dropped, source, [i for i in range(0, len(poses), p["frame_step"]) if i >= n], PAST_VIDEO_END)
    frames = drop_missing_poses(poses, range(0, n, p["frame_step"]), source, dropped)
    few = [i for i in frames if visible_count(camera, poses[i], size) < p["min_visible_joints"]]
    record_drop(dropped, source, few, TOO_FEW_VISIBLE)
    frames = [i for i in frames if i not in set(few)]
    if p["adaptive_sampling_mm"] > 0:
        sampler = AdaptivePoseSampler(p["adaptive_sampling_mm"])
        frames = [i for i in frames if sampler.should_keep(poses[i])]
    image_box = np.array([-0.5, -0.5, size[0], size[1]], np.float64)
    out, empty, apart, short = [], [], [], []
    for i, mask in read_mattes(root / matte, frames, p["matte_threshold"]):
        if mask is None:
            short.append(i)
            continue
        mbox = mask_box(mask)
        if mbox is None:
            empty.append(i)
            continue
        box = intersect(joint_box(camera.project(poses[i]), p["box_expansion"]), mbox)
        box = None if box is None else intersect(box, image_box)
        if box is None:
            apart.append(i)
            continue
        out.append((i, box))
    record_drop(dropped, source, short, PAST_VIDEO_END)
    record_drop(dropped, source, empty, NO_MATTE_PIXELS)
    record_drop(dropped, source, apart, NO_OVERLAP)
    return out


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected person instance, ordered by subject, sequence, camera and frame."""
    p = check_params(params)
    root = Path(root)
    sequences = check_layout(root, p)
    cameras = read_calibration(root / CALIBRATION)
    if max(p["cameras"]) > len(cameras):
        raise RawFileError(root / CALIBRATION, f"has {len(cameras)} cameras; the params ask for camera "
                                               f"{max(p['cameras'])}")
    for c in sorted(p["cameras"]):
        if folds_inside_image(cameras[c - 1]):
            log.warning("%s: camera %d's radial distortion (k1 = %g) folds back inside its image: the corners have "
                        "no undistorted ray, so crops clipped to the image can be wrong", root / CALIBRATION, c,
                        cameras[c - 1].camera.distortion_coeffs[0])
    out = []
    for seq in sequences:
        poses = read_positions(root / seq.positions)
        for c in sorted(p["cameras"]):
            source = video_relpath(seq.subject, seq.name, c)
            if not (root / source).is_file():
                if dropped is not None:
                    dropped.append(Dropped(seq.positions, f"cam{c}: video missing ({source})", len(poses)))
                continue
            if not (root / matte_of(source)).is_file():
                if dropped is not None:
                    dropped.append(Dropped(source, f"matte video missing ({matte_of(source)})", len(poses)))
                continue
            camera = cameras[c - 1].camera
            action = re.sub(r"\d+$", "", seq.name)
            for i, box in _video_frames(root, source, poses, camera, p, dropped):
                out.append(RawInstance(
                    source=source, frame_index=i, world_coords=poses[i].copy(), camera=camera, split="train",
                    subject=f"S{seq.subject}", sequence=seq.name, activity=action, camera_name=f"cam{c}",
                    bbox=box))
    return out


# ------------------------------------------------------------------------------------------- frames
def frame_source(raw_root, params: dict | None = None) -> FrameSource:
    """The video frames with the matte of the same frame as the person's mask."""
    from posebank.imaging.video import read_video_frames

    p = check_params(params)
    raw_root = Path(raw_root)

    def frames(source: str, indices: Sequence[int]) -> Iterator[tuple[int, Frame]]:
        mattes = dict(read_mattes(raw_root / matte_of(source), indices, p["matte_threshold"]))
        for i, image in read_video_frames(raw_root / source, indices):
            mask = mattes.get(i)
            if image is None or mask is None:
                yield i, Frame(None)
                continue
            yield i, Frame(image, masks={0: mask})

    return frames


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.totalcapture.fixture.make_fixture`,
    which takes the ``options``)."""
    from posebank.datasets.totalcapture.fixture import make_fixture as write

    return write(root, seed, **options)


RAW_INSTRUCTIONS = """
    TotalCapture: request access on its homepage, https://cvssp.org/data/totalcapture/ ; with the login you get,
    download (HTTP basic authentication) from https://cvssp.org/data/totalcapture/data/dataset/ the video/ and
    mattes/ tarballs of s1-s3 (acting, freestyle, rom, walking 1-3), the vicon/s<k>_vicon_pos_ori.tar.gz of each
    subject and calibration.cal, and unpack every tarball in its folder, so that the raw folder holds
        calibration.cal
        video/s1/TC_S1_acting1_cam1.mp4 ...    mattes/s1/TC_S1_acting1_cam1.mp4 ...
        vicon/S1/acting1/gt_skel_gbl_pos.txt ...
"""
