"""3DPeople (Pumarola et al., ICCV 2019): 80 synthetic dressed people (40 women, 40 men) performing 70 CMU-MoCap
actions, each rendered from 4 cameras at 640 x 480.

Raw layout, as the release's ``*.tar.gz`` archives unpack (posepile ``ds/tdpeople/main.sh``; the release's
``vis_dataset.ipynb`` reads the same folders)::

    root/rgb/<subject>/<action>/camera0N/<subdir>/<frame>.jpg      the renders (<subdir>: skin, clothes, background)
    root/skeleton/<subject>/<action>/camera0N/<frame>.txt          67 rows: 2D pixels first, 3D last
    root/segmentation_clothes/<subject>/<action>/camera0N/<frame>.png   background grey (153, 153, 153)

A skeleton file has one row per joint of the release's 67-joint rig (``skeleton_joints_ids_order.txt``); its first
two columns are the joint in the image (pixels), its last three the joint in the world frame in decimetres (x 100
-> mm; the floor is z = 0, world up +z). The skeleton and segmentation files of an image are found by dropping the
``<subdir>`` level and swapping the top folder and the suffix (posepile ``get_coords_for_image_path``); only the
skeleton files of images are read (the notebook's ``read_skeleton`` drops a ``0000.txt`` when there is one, which
suggests that the skeleton folders hold one more file than the image folders).

Cameras are not released: as posepile does (``calibrate_camera``), each image's camera has the fixed intrinsics
f = 700 px, principal point (320, 240), no distortion, and its rotation and position fitted to the file's 67
2D-3D pairs with ``cv2.calibrateCamera`` (focal length and principal point fixed). posebank's camera stores R and
the optical centre ``-Rᵀ t`` in world mm.

Joints: the 29 posepile selects (raw rows 0-13, 33-36, 53, 57-66), with posepile's names
``pelv,spin,spi1,spi2,neck,head,reye,leye,htop,lcla,lsho,lelb,lwri,lhan,rcla,rsho,relb,rwri,rhan,lhip,lkne,lank,
lfoo,ltoe,rhip,rkne,rank,rfoo,rtoe``. The names follow the geometry of the release's own sample frame, not the
labels of ``skeleton_joints_ids_order.txt`` (see docs/datasets.md).

Frame selection (posepile ``make_dataset``): one adaptive pose sampler over all selected image paths in sorted
order keeps an image when some joint moved ``adaptive_sampling_mm`` (100) or more since the last kept one. The
person's mask is every pixel of the clothes segmentation that differs from the background grey by more than
``mask_tolerance`` in some channel; the box is the mask's box. Everything is train (posepile; the release's README
names woman/man 34-40 as its test subjects).
"""

from __future__ import annotations

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
from posebank.datasets.sampling import AdaptivePoseSampler, record_drop

NAME = "tdpeople"
INFO = DatasetInfo(
    name=NAME,
    full_name="3DPeople",
    homepage="https://www.albertpumarola.com/research/3DPeople/index.html",
    licence=("Research use under the terms of the dataset website (https://cv.iri.upc-csic.es/), obtained through "
             "its request form (unverified); the 3D meshes are not shared. No redistribution."),
    citation=("A. Pumarola, J. Sanchez, G. Choi, A. Sanfeliu, F. Moreno-Noguer. 3DPeople: Modeling the Geometry of "
              "Dressed Humans. ICCV 2019."),
)

N_RAW_JOINTS = 67
# posepile ds/tdpeople/main.py make_dataset: joint_selection and joint_names
SELECTED_JOINTS = (*range(14), *range(33, 37), 53, *range(57, 67))
JOINT_INFO = JointInfo(
    "pelv,spin,spi1,spi2,neck,head,reye,leye,htop,lcla,lsho,lelb,lwri,lhan,rcla,rsho,relb,rwri,rhan,lhip,lkne,lank,"
    "lfoo,ltoe,rhip,rkne,rank,rfoo,rtoe",
    "pelv-spin-spi1-spi2-neck-head-htop,pelv-rhip-rkne-rank-rfoo-rtoe,spi2-rcla-rsho-relb-rwri-rhan,leye-reye")
DM_TO_MM = 100.0
WORLD_UP = (0.0, 0.0, 1.0)
IMAGE_SIZE = (640, 480)
FOCAL_PX = 700.0  # posepile calibrate_camera
CAMERAS = ("camera01", "camera02", "camera03", "camera04")
RGB, SKELETON, SEGMENTATION = "rgb", "skeleton", "segmentation_clothes"
SHARD_KEY = ("subject", "sequence", "camera_name")
CAMERA_RE = re.compile(r"camera\d\d")

DEFAULT_PARAMS = {
    "subjects": [],  # e.g. "woman17"; [] = every rgb/<subject> folder
    "cameras": list(CAMERAS),
    "adaptive_sampling_mm": 100.0,  # one sampler over the sorted image paths (posepile); 0 = every image
    "mask_background": 153,  # the clothes segmentation's background grey
    "mask_tolerance": 10,  # a pixel differing from it by more than this in a channel is the person
}

EMPTY_MASK = "no person pixel in the clothes segmentation"
BAD_FIT = "the camera fit to the skeleton's 2D-3D pairs failed (non-finite, or joints behind the camera)"


# ------------------------------------------------------------------------------------------- readers
def read_skeleton(path) -> np.ndarray:
    """One skeleton file as a (67, C) float64 array (C >= 5: 2D pixels in the first two columns, 3D decimetres in
    the last three); RawFileError names the file when it is unreadable or not 67 rows of numbers."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise RawFileError(path, f"unreadable skeleton file: {getattr(e, 'strerror', None) or e}") from None
    rows = [line.split() for line in text.splitlines() if line.strip()]
    if len(rows) != N_RAW_JOINTS or len({len(r) for r in rows}) != 1 or len(rows[0]) < 5:
        raise RawFileError(path, f"unreadable skeleton file: expected {N_RAW_JOINTS} rows of at least 5 numbers, "
                                 f"got {len(rows)} rows (truncated or corrupt)")
    try:
        coords = np.array(rows, np.float64)
    except ValueError:
        raise RawFileError(path, "unreadable skeleton file: a value is not a number") from None
    if not np.isfinite(coords).all():
        raise RawFileError(path, "unreadable skeleton file: non-finite values")
    return coords


def world_joints(coords: np.ndarray) -> np.ndarray:
    """(29, 3) mm in posepile's order from a skeleton file's (67, C) rows (the last three columns, x 100)."""
    return coords[list(SELECTED_JOINTS), -3:] * DM_TO_MM


def intrinsic_matrix() -> np.ndarray:
    return np.array([[FOCAL_PX, 0, IMAGE_SIZE[0] / 2], [0, FOCAL_PX, IMAGE_SIZE[1] / 2], [0, 0, 1]], np.float64)


def calibrate_camera(points2d, points3d_mm) -> tuple[Camera, float]:
    """posepile's ``calibrate_camera``: R and t fitted with ``cv2.calibrateCamera`` to the 2D-3D pairs (3D
    centred on their mean first), f = 700 px and principal point (320, 240) fixed, no distortion. Returns the
    posebank camera (world mm, up +z) and the RMS reprojection error in pixels."""
    p3 = np.asarray(points3d_mm, np.float64)
    mean = p3.mean(axis=0, keepdims=True)
    flags = (cv2.CALIB_FIX_PRINCIPAL_POINT | cv2.CALIB_FIX_FOCAL_LENGTH | cv2.CALIB_USE_INTRINSIC_GUESS
             | cv2.CALIB_FIX_K1 | cv2.CALIB_FIX_K2 | cv2.CALIB_FIX_K3 | cv2.CALIB_FIX_K4 | cv2.CALIB_FIX_K5
             | cv2.CALIB_FIX_K6 | cv2.CALIB_FIX_TANGENT_DIST)
    k = intrinsic_matrix()
    rms, _, _, rvecs, tvecs = cv2.calibrateCamera(
        [(p3 - mean).astype(np.float32)], [np.asarray(points2d, np.float32)], IMAGE_SIZE, k.copy(), None,
        flags=flags)
    r = cv2.Rodrigues(rvecs[0])[0]
    t = tvecs[0].reshape(3) - r @ mean.reshape(3)
    return Camera(intrinsic_matrix=k, R=r, t=-r.T @ t, world_up=WORLD_UP), float(rms)


def person_mask(segmentation: np.ndarray, background: int = 153, tolerance: int = 10) -> np.ndarray:
    """(H, W) bool: pixels of a clothes segmentation (H, W, 3) that differ from the background grey by more than
    ``tolerance`` in some channel (posepile ``load_mask``)."""
    return np.any(np.abs(segmentation[..., :3].astype(np.int32) - background) > tolerance, axis=-1)


def read_segmentation(path) -> np.ndarray:
    """A clothes segmentation PNG as (H, W, 3) uint8 (BGR); RawFileError names the file when it does not decode."""
    path = Path(path)
    try:
        data = np.frombuffer(path.read_bytes(), np.uint8)
    except OSError as e:
        raise RawFileError(path, f"unreadable segmentation image: {e.strerror or e}") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise RawFileError(path, "unreadable segmentation image: not a PNG, or truncated or corrupt")
    return image


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    """[x, y, w, h] of a mask's pixels (pixel centres at integer coordinates); None for an empty mask."""
    cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    if not len(cols):
        return None
    return np.array([cols[0] - 0.5, rows[0] - 0.5, cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1], np.float64)


def annotation_paths(image_relpath: str) -> tuple[str, str]:
    """``rgb/<s>/<a>/<cam>/<subdir>/<f>.jpg`` -> (``skeleton/<s>/<a>/<cam>/<f>.txt``,
    ``segmentation_clothes/<s>/<a>/<cam>/<f>.png``), relative to the raw root."""
    parts = image_relpath.split("/")
    stem = parts[-1].rsplit(".", 1)[0]
    base = "/".join(parts[1:-2])
    return f"{SKELETON}/{base}/{stem}.txt", f"{SEGMENTATION}/{base}/{stem}.png"


# ------------------------------------------------------------------------------------------- layout
def check_params(params: dict | None) -> dict:
    p = check_dataset_params(NAME, params, DEFAULT_PARAMS)
    bad = [s for s in p["subjects"] if not isinstance(s, str) or not s or "/" in s]
    if bad:
        raise ParamsError(f"datasets.{NAME}.subjects", f"must be a list of subject folder names, got {bad}")
    bad = [c for c in p["cameras"] if c not in CAMERAS]
    if bad or not p["cameras"]:
        raise ParamsError(f"datasets.{NAME}.cameras", f"must be some of {', '.join(CAMERAS)}, got {p['cameras']}")
    if p["adaptive_sampling_mm"] < 0:
        raise ParamsError(f"datasets.{NAME}.adaptive_sampling_mm",
                          f"must not be negative, got {p['adaptive_sampling_mm']}")
    if not 0 <= p["mask_background"] <= 255:
        raise ParamsError(f"datasets.{NAME}.mask_background", f"must be in 0..255, got {p['mask_background']}")
    if not 0 <= p["mask_tolerance"] < 255:
        raise ParamsError(f"datasets.{NAME}.mask_tolerance", f"must be in 0..254, got {p['mask_tolerance']}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    check_params(params)
    return ("train",)


def _subjects(root: Path, p: dict) -> list[str]:
    if p["subjects"]:
        return list(p["subjects"])
    folder = root / RGB
    return sorted(d.name for d in folder.iterdir() if d.is_dir()) if folder.is_dir() else []


def check_layout(root, params: dict | None = None) -> list[str]:
    """Verify the raw tree: ``rgb``, ``skeleton`` and ``segmentation_clothes`` with, per selected subject, its
    folders in all three, and per selected camera of each action its skeleton and segmentation folders, and at
    least one image. Returns the selected images (paths relative to the root), sorted."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    missing = [f"{top}/" for top in (RGB, SKELETON, SEGMENTATION) if not (root / top).is_dir()]
    if missing:
        raise RawLayoutError(NAME, root, missing)
    subjects = _subjects(root, p)
    if not subjects:
        raise RawLayoutError(NAME, root, f"{RGB}/<subject>/ (no subject folder)")
    images: list[str] = []
    for subject in subjects:
        for top in (RGB, SKELETON, SEGMENTATION):
            if not (root / top / subject).is_dir():
                missing.append(f"{top}/{subject}/")
        if missing:
            continue
        for action in sorted(d.name for d in (root / RGB / subject).iterdir() if d.is_dir()):
            for cam in p["cameras"]:
                rel = f"{subject}/{action}/{cam}"
                cam_images = sorted(f.relative_to(root).as_posix() for f in (root / RGB / rel).glob("*/*.jpg"))
                if not cam_images:
                    missing.append(f"{RGB}/{rel}/<subdir>/*.jpg")
                    continue
                missing += [f"{top}/{rel}/" for top in (SKELETON, SEGMENTATION) if not (root / top / rel).is_dir()]
                images += cam_images
    if missing:
        raise RawLayoutError(NAME, root, missing)
    if not images:
        raise RawLayoutError(NAME, root, f"{RGB}/<subject>/<action>/camera0N/<subdir>/*.jpg")
    return sorted(images)


def activity(action: str) -> str:
    """``02_04_jump`` -> ``jump`` (the CMU-MoCap subject and trial numbers dropped)."""
    return re.sub(r"^\d+_\d+_?", "", action) or action


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """The person of every selected image, in sorted path order; images the adaptive sampler keeps whose
    segmentation is empty or whose camera fit fails go to ``dropped``. A missing skeleton or segmentation file
    of a selected image is a RawLayoutError naming them all."""
    p = check_params(params)
    root = Path(root)
    images = check_layout(root, p)
    missing = sorted({s for s, _ in map(annotation_paths, images) if not (root / s).is_file()})
    if missing:
        raise RawLayoutError(NAME, root, missing)
    sampler = AdaptivePoseSampler(p["adaptive_sampling_mm"]) if p["adaptive_sampling_mm"] > 0 else None
    kept = []
    for image in images:
        skeleton, segmentation = annotation_paths(image)
        coords = read_skeleton(root / skeleton)
        if sampler is None or sampler.should_keep(coords[:, -3:] * DM_TO_MM):
            kept.append((image, skeleton, segmentation, coords))
    missing = sorted({seg for _, _, seg, _ in kept if not (root / seg).is_file()})
    if missing:
        raise RawLayoutError(NAME, root, missing)
    out = []
    for image, skeleton, segmentation, coords in kept:
        mask = person_mask(read_segmentation(root / segmentation), p["mask_background"], p["mask_tolerance"])
        box = mask_box(mask)
        if box is None:
            record_drop(dropped, segmentation, [_frame_number(image)], EMPTY_MASK)
            continue
        camera, _ = calibrate_camera(coords[:, :2], coords[:, -3:] * DM_TO_MM)
        try:
            check_finite_camera(camera, root / skeleton)
        except RawFileError:
            record_drop(dropped, skeleton, [_frame_number(image)], BAD_FIT)
            continue
        world = world_joints(coords)
        if not (camera.world_to_camera(world)[:, 2] > 0).all():
            record_drop(dropped, skeleton, [_frame_number(image)], BAD_FIT)
            continue
        subject, action, cam = image.split("/")[1:4]
        out.append(RawInstance(
            source=image, frame_index=_frame_number(image), world_coords=world.astype(np.float32), camera=camera,
            split="train", subject=subject, sequence=f"{subject}/{action}", activity=activity(action),
            camera_name=cam, bbox=box))
    return out


def _frame_number(image_relpath: str) -> int:
    stem = image_relpath.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return int(stem) if stem.isdigit() else -1


def frame_source(raw_root, params: dict | None = None) -> FrameSource:
    """The rendered images, each with its person's mask from the clothes segmentation (``person_index`` 0). An
    image that cannot be read, or whose size is not the segmentation's, is a quarantined frame."""
    from posebank.imaging.video import read_image

    p = check_params(params)
    raw_root = Path(raw_root)

    def frames(source: str, indices: Sequence[int]) -> Iterator[tuple[int, Frame]]:
        wanted = sorted(set(int(i) for i in indices))
        try:
            image = read_image(raw_root / source)
        except FrameReadError as e:
            for i in wanted:
                yield i, Frame(None, problem=e.problem)
            return
        seg = read_segmentation(raw_root / annotation_paths(source)[1])
        if seg.shape[:2] != image.shape[:2]:
            problem = (f"image is {image.shape[1]}x{image.shape[0]}, its segmentation {seg.shape[1]}x"
                       f"{seg.shape[0]}")
            for i in wanted:
                yield i, Frame(None, problem=problem)
            return
        mask = person_mask(seg, p["mask_background"], p["mask_tolerance"])
        for i in wanted:
            yield i, Frame(image, masks={0: mask})

    return frames


FRAME_SOURCE_PARAMS = ("mask_background", "mask_tolerance")


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.tdpeople.fixture.make_fixture`)."""
    from posebank.datasets.tdpeople.fixture import make_fixture as write

    return write(root, seed, **options)


# No direct URLs or checksums are published: the archives come from the dataset website after its request form.
RAW_INSTRUCTIONS = """
    3DPeople: the dataset's homepage (https://www.albertpumarola.com/research/3DPeople/index.html) points to its
    download site, https://cv.iri.upc-csic.es/ (research use, request form); download the archives it lists (rgb,
    skeleton and segmentation_clothes of the women and men batches) into the raw folder and unpack them
    (`tar xf <name>.tar.gz`, as posepile's ds/tdpeople/main.sh), so that it holds
        rgb/<subject>/<action>/camera0N/<subdir>/<frame>.jpg
        skeleton/<subject>/<action>/camera0N/<frame>.txt
        segmentation_clothes/<subject>/<action>/camera0N/<frame>.png
"""
