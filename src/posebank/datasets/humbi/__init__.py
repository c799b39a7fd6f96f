"""HUMBI (Yu et al., CVPR 2020), body session: one person per capture, seen by up to 107 GoPro HD cameras, with
OpenPose BODY_25 keypoints triangulated in 3D and SMPL fits per frame.

Raw layout, as the release's per-subject-range zips (``subj*.zip``) unpack (the toolkit zhixuany/HUMBI
``body/config.m``: ``subject_%d``, frame folders ``%08d``, images ``image%07d.jpg``)::

    root/subject_<n>/body/intrinsic.txt     3 header lines, then per camera: "0 <camera id>", the 3x3 K
    root/subject_<n>/body/extrinsic.txt     3 header lines, then per camera: "0 <camera id>", the optical
                                            centre C (1x3, metres), the 3x3 rotation R (world to camera)
    root/subject_<n>/body/project.txt       the 3x4 projection matrices (not read: K R [I | -C])
    root/subject_<n>/body/<8 digits>/image/image<7 digits>.jpg         1920 x 1080; the number is the camera id
    root/subject_<n>/body/<8 digits>/reconstruction/keypoints.txt     25 lines "x y z", OpenPose BODY_25, metres
    root/subject_<n>/body/<8 digits>/reconstruction/smpl_parameter.txt  86 values (not read, see below)
    root/ignore_images.txt                  optional: images (relative to root) known to be broken JPEGs

The header (toolkit README "Camera Calibration") is ``Numcam:``, ``numframes:`` and ``numP:``, the last two being
the number of cameras; the toolkit's ``extractCameraParameters.m`` reads the blocks from line 4 and projects with
``M = K R [I | -C]``, pixel = ``M X`` dehomogenised (``reproject.m``), without lens distortion. posebank's camera
is K, R, the optical centre C x 1000 (mm), no distortion, world up -y (posepile ``ds/humbi/main.py
load_cameras``); a file whose number of blocks differs from ``numP`` (truncated) is an error naming it.

Joints: the 25 OpenPose keypoints of ``keypoints.txt`` x 1000 (mm), in posepile's order (MidHip, OpenPose's
joint 8, moved last as ``pelv``) and with posepile's names ``<name>_coco``, so that with the merge suffix ''
they are the same union joints as Panoptic's and AIST++'s ``<name>`` with suffix ``coco``. posepile also
computes the 24 SMPL joints of ``smpl_parameter.txt`` (scale, translation, pose, shape through the SMPL model);
huge8 and medium3 keep only the ``*_coco`` joints, so posebank does not convert the SMPL joints and needs no
body model.

Selection as posepile's ``make_stage1``: every image of every frame (no pose sampling); images listed in
``ignore_images.txt`` are skipped (posepile's ``tools/find_broken_jpegs``; posebank's frames stage also
quarantines any other unreadable JPEG); images of a camera missing from the subject's calibration are skipped and
counted. The box: the projected joints' box x ``box_expansion`` (1.05) clipped to the 1920 x 1080 image, an
image where that box is empty left out; the detect stage's rule ``detect.per_dataset.humbi`` (hull with the
detection when IoU > 0.5) applies when a detector runs. Everything is train.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

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
from posebank.datasets.sampling import record_drop

log = logging.getLogger(__name__)

NAME = "humbi"
INFO = DatasetInfo(
    name=NAME,
    full_name="HUMBI (body session)",
    homepage="https://humbi-data.net/",
    licence=("Non-commercial research use under the HUMBI terms of use, download after registration on the "
             "homepage (unverified); no redistribution."),
    citation=("Z. Yu, J. S. Yoon, I. K. Lee, P. Venkatesh, J. Park, J. Yu, H. S. Park. HUMBI: A Large Multiview "
              "Dataset of Human Body Expressions. CVPR 2020."),
)

# OpenPose BODY_25 (keypoints.txt rows) in posepile's names: Nose Neck RShoulder RElbow RWrist LShoulder LElbow
# LWrist MidHip RHip RKnee RAnkle LHip LKnee LAnkle REye LEye REar LEar LBigToe LSmallToe LHeel RBigToe RSmallToe
# RHeel (posepile ds/humbi/main.py make_joint_info)
RAW_JOINT_NAMES = ("nose,neck,rsho,relb,rwri,lsho,lelb,lwri,pelv,rhip,rkne,rank,lhip,lkne,lank,reye,leye,rear,lear,"
                   "lfoo,ltoe,lhee,rfoo,rtoe,rhee").split(",")
N_RAW_JOINTS = 25
SELECTED_JOINTS = (*range(8), *range(9, 25), 8)  # posepile's openpose_reordering: MidHip last
SUFFIX = "_coco"
JOINT_INFO = JointInfo(
    [RAW_JOINT_NAMES[i] + SUFFIX for i in SELECTED_JOINTS],
    ",".join("-".join(n + SUFFIX for n in chain.split("-")) for chain in (
        "nose-neck-pelv-rhip-rkne-rank-rfoo-rtoe", "rank-rhee", "nose-reye-rear", "neck-rsho-relb-rwri")))
WORLD_UP = (0.0, -1.0, 0.0)
M_TO_MM = 1000.0
IMAGE_SIZE = (1920, 1080)
N_CAMERAS = 107  # camera ids 0 .. 106
IGNORE_LIST = "ignore_images.txt"
SUBJECT_RE = re.compile(r"subject_(\d+)")
FRAME_RE = re.compile(r"\d{8}")
IMAGE_RE = re.compile(r"image(\d+)\.jpg")
HEADER_LINES = 3

DEFAULT_PARAMS = {
    "subjects": [],  # subject numbers (subject_<n>); [] = every subject_<n>/body folder of the raw root
    "cameras": [],  # camera ids 0 .. 106; [] = every image of a frame (posepile)
    "frame_step": 1,  # keep frame numbers that are multiples of this (posepile: every frame)
    "use_ignore_list": True,  # skip the images of ignore_images.txt (posepile)
    "box_expansion": 1.05,  # box = projected joints' box x this, clipped to the image (posepile get_bbox)
}


# ------------------------------------------------------------------------------------------- readers
def _read_lines(path: Path, what: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except UnicodeDecodeError as e:
        raise RawFileError(path, f"unreadable {what}: not text ({e})") from None
    except OSError as e:
        raise RawFileError(path, f"unreadable {what}: {e.strerror or e}") from None


def _numbers(line: str, n: int, path: Path, lineno: int) -> list[float]:
    parts = line.split()
    try:
        values = [float(v) for v in parts]
    except ValueError:
        values = []
    if len(values) != n:
        raise RawFileError(path, f"malformed calibration file: line {lineno} is {line.strip()!r}, expected {n} "
                                 "numbers (truncated or corrupt)")
    return values


def read_calibration_blocks(path, rows: int) -> dict[int, np.ndarray]:
    """The camera blocks of an ``intrinsic.txt`` (``rows`` 3: K) or ``extrinsic.txt`` (``rows`` 4: C, then R):
    ``{camera id: (rows, 3) array}``, as the toolkit's ``extractCameraParameters.m`` reads them (3 header lines,
    then per camera an id line ``0 <id>`` and the rows)."""
    path = Path(path)
    lines = _read_lines(path, "calibration file")
    if len(lines) < HEADER_LINES:
        raise RawFileError(path, f"malformed calibration file: {len(lines)} lines, expected {HEADER_LINES} header "
                                 "lines (Numcam, numframes, numP) first")
    m = re.fullmatch(r"\s*numP:\s*(\d+)\s*", lines[2])
    declared = int(m.group(1)) if m else None
    body = [(i + 1, s) for i, s in enumerate(lines) if i >= HEADER_LINES and s.strip()]
    size = rows + 1
    if len(body) % size:
        raise RawFileError(path, f"malformed calibration file: {len(body)} lines after the header are not whole "
                                 f"blocks of {size} (truncated or corrupt)")
    out: dict[int, np.ndarray] = {}
    for b in range(0, len(body), size):
        lineno, id_line = body[b]
        head = _numbers(id_line, 2, path, lineno)
        if head[0] != 0 or head[1] != int(head[1]) or not 0 <= head[1] < N_CAMERAS:
            raise RawFileError(path, f"malformed calibration file: line {lineno} is {id_line.strip()!r}, expected "
                                     f"'0 <camera id 0..{N_CAMERAS - 1}>'")
        cam = int(head[1])
        if cam in out:
            raise RawFileError(path, f"malformed calibration file: camera {cam} appears twice")
        out[cam] = np.array([_numbers(s, 3, path, n) for n, s in body[b + 1:b + size]], np.float64)
    if declared is not None and declared != len(out):
        raise RawFileError(path, f"malformed calibration file: {len(out)} cameras, the header says numP: {declared} "
                                 "(truncated or corrupt)")
    if not out:
        raise RawFileError(path, "malformed calibration file: no camera")
    return out


def read_cameras(body_dir) -> dict[int, Camera]:
    """``{camera id: Camera}`` of one subject's ``body/intrinsic.txt`` and ``body/extrinsic.txt`` (mm, world up
    -y, no distortion)."""
    body_dir = Path(body_dir)
    intrinsic = read_calibration_blocks(body_dir / "intrinsic.txt", 3)
    extrinsic = read_calibration_blocks(body_dir / "extrinsic.txt", 4)
    for a, b, name in ((intrinsic, extrinsic, "extrinsic.txt"), (extrinsic, intrinsic, "intrinsic.txt")):
        lone = sorted(set(a) - set(b))
        if lone:
            raise RawFileError(body_dir / name, f"no camera {', '.join(map(str, lone))} (calibrated in the other "
                                                "file)")
    out = {}
    for cam in sorted(extrinsic):
        block = extrinsic[cam]
        camera = Camera(intrinsic_matrix=intrinsic[cam], R=block[1:4], t=block[0] * M_TO_MM, world_up=WORLD_UP)
        check_finite_camera(camera, body_dir / "extrinsic.txt")
        if abs(np.linalg.det(camera.R) - 1) > 1e-3:
            raise RawFileError(body_dir / "extrinsic.txt", f"camera {cam}: R is not a rotation (det "
                                                           f"{np.linalg.det(camera.R):.4f})")
        out[cam] = camera
    return out


def read_keypoints(path) -> np.ndarray:
    """(25, 3) mm in posepile's joint order from one ``reconstruction/keypoints.txt`` (25 rows, metres)."""
    path = Path(path)
    rows = [s.split() for s in _read_lines(path, "keypoints file") if s.strip()]
    try:
        raw = np.array(rows, np.float64)
    except ValueError:
        raise RawFileError(path, "malformed keypoints file: not 25 rows of 3 numbers (truncated or corrupt)") from None
    if raw.shape != (N_RAW_JOINTS, 3):
        raise RawFileError(path, f"malformed keypoints file: {len(rows)} rows, expected {N_RAW_JOINTS} rows of 3 "
                                 "numbers (truncated or corrupt)")
    if not np.isfinite(raw).all():
        raise RawFileError(path, "malformed keypoints file: non-finite coordinates")
    return raw[list(SELECTED_JOINTS)] * M_TO_MM


def read_ignore_list(root) -> set[str]:
    """The image paths (relative to the raw root) of ``ignore_images.txt``; empty when the file is absent."""
    path = Path(root) / IGNORE_LIST
    if not path.is_file():
        return set()
    return {s.strip() for s in _read_lines(path, "ignore list") if s.strip()}


def clipped_box(points2d, expansion: float, size=IMAGE_SIZE) -> np.ndarray:
    """posepile's ``get_bbox`` without the detection: the points' box x ``expansion`` clipped to the image
    ([-0.5, W - 0.5] x [-0.5, H - 0.5] in posebank's pixel convention); zero size when nothing is inside."""
    p = np.asarray(points2d, np.float64).reshape(-1, 2)
    p = p[np.isfinite(p).all(axis=1)]
    if not len(p):
        return np.zeros(4)
    center, half = (p.min(0) + p.max(0)) / 2, (p.max(0) - p.min(0)) * expansion / 2
    lo = np.maximum(center - half, -0.5)
    hi = np.minimum(center + half, np.array(size, np.float64) - 0.5)
    return np.concatenate([lo, np.clip(hi - lo, 0, None)])


# ------------------------------------------------------------------------------------------- layout
def check_params(params: dict | None) -> dict:
    p = check_dataset_params(NAME, params, DEFAULT_PARAMS)
    for key, top in (("subjects", None), ("cameras", N_CAMERAS - 1)):
        bad = [v for v in p[key] if isinstance(v, bool) or not isinstance(v, int) or v < 0
               or (top is not None and v > top)]
        if bad:
            what = "subject numbers (subject_<n>)" if top is None else f"camera ids 0..{top}"
            raise ParamsError(f"datasets.{NAME}.{key}", f"must be a list of {what}, got {bad}")
    if p["frame_step"] < 1:
        raise ParamsError(f"datasets.{NAME}.frame_step", f"must be a positive integer, got {p['frame_step']}")
    if p["box_expansion"] <= 0:
        raise ParamsError(f"datasets.{NAME}.box_expansion", f"must be positive, got {p['box_expansion']}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    check_params(params)
    return ("train",)


def _subjects(root: Path, p: dict) -> list[int]:
    if p["subjects"]:
        return list(p["subjects"])
    return sorted(int(m.group(1)) for d in root.iterdir()
                  if (m := SUBJECT_RE.fullmatch(d.name)) and (d / "body").is_dir())


def _frames(body_dir: Path) -> list[str]:
    return sorted(d.name for d in body_dir.iterdir() if FRAME_RE.fullmatch(d.name) and d.is_dir()) \
        if body_dir.is_dir() else []


def check_layout(root, params: dict | None = None) -> dict[int, list[str]]:
    """Verify the raw tree: per selected subject its ``body/intrinsic.txt``, ``body/extrinsic.txt`` and at least
    one frame folder, each with ``reconstruction/keypoints.txt`` and an ``image`` folder. Returns ``{subject:
    [frame folder names]}``."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    subjects = _subjects(root, p)
    if not subjects:
        raise RawLayoutError(NAME, root, "subject_<n>/body/ (no subject folder)")
    missing, out = [], {}
    for subj in subjects:
        body = f"subject_{subj}/body"
        missing += [f"{body}/{f}" for f in ("intrinsic.txt", "extrinsic.txt") if not (root / body / f).is_file()]
        frames = _frames(root / body)
        if not frames:
            missing.append(f"{body}/<8-digit frame>/ (no frame folder)")
        for frame in frames:
            d = f"{body}/{frame}"
            if not (root / d / "reconstruction/keypoints.txt").is_file():
                missing.append(f"{d}/reconstruction/keypoints.txt")
            if not (root / d / "image").is_dir():
                missing.append(f"{d}/image/")
        out[subj] = frames
    if missing:
        raise RawLayoutError(NAME, root, missing)
    return out


def _images(frame_dir: Path) -> dict[int, str]:
    """{camera id: image file name} of one frame's ``image`` folder."""
    out = {}
    for f in (frame_dir / "image").iterdir():
        m = IMAGE_RE.fullmatch(f.name)
        if m and f.is_file():
            out[int(m.group(1))] = f.name
    return dict(sorted(out.items()))


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected image of every selected frame, ordered by subject, frame and camera. Images listed in
    ``ignore_images.txt``, images of cameras missing from the calibration (counted per camera) and images where
    the person's box is empty are left out and go to ``dropped``."""
    p = check_params(params)
    root = Path(root)
    layout = check_layout(root, p)
    ignored = read_ignore_list(root) if p["use_ignore_list"] else set()
    wanted = set(p["cameras"])
    out = []
    for subj, frames in layout.items():
        body = f"subject_{subj}/body"
        cameras = read_cameras(root / body)
        uncalibrated: dict[int, list[int]] = {}
        for frame in frames:
            number = int(frame)
            if number % p["frame_step"]:
                continue
            coords = read_keypoints(root / body / frame / "reconstruction/keypoints.txt")
            for cam, image in _images(root / body / frame).items():
                if wanted and cam not in wanted:
                    continue
                source = f"{body}/{frame}/image/{image}"
                if source in ignored:
                    record_drop(dropped, source, [number], f"listed in {IGNORE_LIST} (broken JPEG)")
                    continue
                if cam not in cameras:
                    uncalibrated.setdefault(cam, []).append(number)
                    continue
                camera = cameras[cam]
                box = clipped_box(camera.project(coords), p["box_expansion"])
                if box[2] * box[3] <= 0:
                    record_drop(dropped, source, [number], "the person's box is outside the image")
                    continue
                out.append(RawInstance(
                    source=source, frame_index=number, world_coords=coords.astype(np.float32), camera=camera,
                    split="train", subject=f"subject_{subj}", sequence="body", activity="body",
                    camera_name=f"{cam:07d}", bbox=box))
        for cam, numbers in sorted(uncalibrated.items()):
            log.warning("%s: camera %d is not in the calibration: %d images skipped", body, cam, len(numbers))
            record_drop(dropped, f"{body}/extrinsic.txt", numbers,
                        f"camera {cam} is not in the calibration (intrinsic.txt, extrinsic.txt): its images are "
                        "skipped")
    return out


FRAME_SOURCE_PARAMS: tuple[str, ...] = ()  # the frames are the raw image files; no setting changes them


def frame_source(raw_root, params: dict | None = None) -> FrameSource:
    """The raw images; one that cannot be read (a broken JPEG not listed in ``ignore_images.txt``: posepile's
    ``ignore_broken_image=True``) or that is not 1920 x 1080 is a quarantined frame with the reason."""
    from posebank.imaging.video import read_image

    raw_root = Path(raw_root)
    check_params(params)

    def frames(source: str, indices: Sequence[int]) -> Iterator[tuple[int, Frame]]:
        wanted = sorted(set(int(i) for i in indices))
        try:
            image = read_image(raw_root / source)
        except FrameReadError as e:
            image, problem = None, e.problem
        else:
            if image.shape[1::-1] != IMAGE_SIZE:
                image, problem = None, f"image is {image.shape[1]}x{image.shape[0]}, HUMBI's are 1920x1080"
        for i in wanted:
            yield i, (Frame(image) if image is not None else Frame(None, problem=problem))

    return frames


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.humbi.fixture.make_fixture`)."""
    from posebank.datasets.humbi.fixture import make_fixture as write

    return write(root, seed, **options)


# No published checksums or direct URLs: the zips are downloaded after registration.
RAW_INSTRUCTIONS = """
    HUMBI: register on its homepage (https://humbi-data.net), accepting its terms of use (non-commercial
    research), download the body session's per-subject-range zips (subj*.zip) into the raw folder and unzip
    them there, so that it holds
        subject_<n>/body/intrinsic.txt, extrinsic.txt
        subject_<n>/body/<8-digit frame>/image/image<7-digit camera>.jpg
        subject_<n>/body/<8-digit frame>/reconstruction/keypoints.txt
    and optionally ignore_images.txt (the broken JPEGs, one path relative to the raw folder a line, as posepile's
    `python -m posepile.tools.find_broken_jpegs <raw> <raw>/ignore_images.txt` writes it).
"""
