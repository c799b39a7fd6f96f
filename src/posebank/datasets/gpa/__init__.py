"""GPA, Geometric Pose Affordance (Wang et al., WACV 2022): single people moving among boxes, chairs and stairs
in a motion-capture studio, seen by five cameras, with 34 Vicon joints per image.

Raw layout, as posepile ``ds/gpa/main.sh`` arranges it (the archives of the release's Google Drive folder
unpacked, then ``create_directory_structure.py`` run, which moves every image ``<id>.jpg`` of the two image
folders to ``<id[:6]>/<id[6:8]>/``; posebank reads this nested layout only)::

    root/xyz_gpa12_mdp_cntind_crop_cam_c2g.json                         the annotations (COCO-like)
    root/Gaussian_img_jpg_new/<id[:6]>/<id[6:8]>/<id>.jpg               the images (id: 10 digits)
    root/img_jpg_new_resnet101deeplabv3humanmask/<id[:6]>/<id[6:8]>/<id>_mask.jpg   the release's person masks
    root/Sequence_ids/cam_ids_750k.npy                                  the camera of every image, by image id

The annotation file holds ``images`` (``file_name`` ending in ``<id>.<ext>``) and ``annotations``, one per image
in the same order; an annotation's ``joint_cams`` is the pose as 3 rows of 34 numbers (x, y, z in the camera's
frame, mm; posepile transposes it), ``f`` and ``c`` the intrinsics (focal lengths and principal point, pixels; no
distortion) and ``istrains`` the split (train when true, else test). ``cam_ids_750k.npy`` is a 1-D array indexed
by the integer image id (strings or integers: only equality matters). The world frame is the camera's (R = I,
t = 0) and its up direction is -y (posepile ``world_up=(0, -1, 0)``).

Conversion as posepile ``ds/gpa/main.py``: the annotations in file order; per camera id an adaptive pose sampler
keeps an image when some joint moved ``adaptive_sampling_mm`` (100) or more since that camera's last kept one.
The box is the detect stage's: the box of the projected joints x 1.15 matched to a detection with IoU >= 0.3 (the
detection is the box), the person dropped otherwise (``detect.per_dataset.gpa``). The person's mask is the
release's mask image: the pixels whose red channel is above ``mask_threshold`` (10), as posepile reads it.
"""

from __future__ import annotations

import json
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

NAME = "gpa"
INFO = DatasetInfo(
    name=NAME,
    full_name="GPA (Geometric Pose Affordance)",
    homepage="https://www.cs.utexas.edu/~liyanc/projects/gpa-dataset/",
    licence="Research use as stated on the dataset's homepage (unverified); no redistribution.",
    citation=("Z. Wang, L. Chen, S. Rathore, D. Shin, C. Fowlkes. Geometric Pose Affordance: Monocular 3D Human "
              "Pose Estimation with Scene Constraints. WACV 2022 (arXiv:1905.07718)."),
)

ANNOTATIONS = "xyz_gpa12_mdp_cntind_crop_cam_c2g.json"
IMAGES = "Gaussian_img_jpg_new"
MASKS = "img_jpg_new_resnet101deeplabv3humanmask"
CAMERA_IDS = "Sequence_ids/cam_ids_750k.npy"
SPLITS = ("train", "test")
N_JOINTS = 34
WORLD_UP = (0.0, -1.0, 0.0)
# posepile ds/gpa/main.py make_dataset: joint_names and edges
JOINT_INFO = JointInfo(
    "pelv,spin,spi1,spi2,spi3,neck,head,htop,rcla,rsho,relb,rwri,rhan,rfin,rthu,rthu2,lcla,lsho,lelb,lwri,lhan,lfin,"
    "lthu,lthu2,rhip,rkne,rank,rfoo,rtoe,lhip,lkne,lank,lfoo,ltoe",
    "rtoe-rfoo-rank-rkne-rhip-pelv-spin-spi1-spi2-spi3-neck-head-htop,spi3-rcla-rsho-relb-rwri-rhan-rfin,"
    "rwri-rthu-rthu2")
SHARD_KEY = ("camera_name",)

DEFAULT_PARAMS = {
    "splits": list(SPLITS),  # istrains true -> train, false -> test (huge8 takes train)
    "adaptive_sampling_mm": 100.0,  # posepile AdaptivePoseSampler(100), one per camera id; 0 = every image
    "mask_threshold": 10,  # a mask pixel whose red channel is above this is the person (posepile: > 10)
}
FRAME_SOURCE_PARAMS = ("mask_threshold",)

_ID = re.compile(r"^\d{10}$")
BEHIND = "a joint is not in front of the camera (z <= 0 in joint_cams)"


# ------------------------------------------------------------------------------------------- readers
def image_path(image_id: str) -> str:
    """``0000012345`` -> ``Gaussian_img_jpg_new/000001/23/0000012345.jpg`` (create_directory_structure's nesting)."""
    return f"{IMAGES}/{image_id[:6]}/{image_id[6:8]}/{image_id}.jpg"


def mask_path(image_id: str) -> str:
    return f"{MASKS}/{image_id[:6]}/{image_id[6:8]}/{image_id}_mask.jpg"


def read_annotations(path) -> list[tuple[str, dict]]:
    """The (image id, annotation) pairs of the annotation file, in file order; RawFileError names the file when it
    is not JSON or an entry is malformed."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RawFileError(path, f"unreadable annotation file: not valid JSON, truncated or corrupt ({e})") from None
    except OSError as e:
        raise RawFileError(path, f"unreadable annotation file: {e.strerror or e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise RawFileError(path, "not a COCO-like annotation file (no 'images' and 'annotations' lists)")
    images, annotations = data["images"], data["annotations"]
    if len(images) != len(annotations):
        raise RawFileError(path, f"{len(images)} images but {len(annotations)} annotations (one per image)")
    out = []
    for k, (image, anno) in enumerate(zip(images, annotations)):
        name = image.get("file_name") if isinstance(image, dict) else None
        image_id = name[-14:-4] if isinstance(name, str) else ""
        if not _ID.match(image_id):
            raise RawFileError(path, f"images[{k}]: file_name {name!r} does not end in a 10-digit id and a suffix")
        if not isinstance(anno, dict) or any(key not in anno for key in ("joint_cams", "f", "c", "istrains")):
            raise RawFileError(path, f"annotations[{k}]: needs joint_cams, f, c and istrains")
        out.append((image_id, anno))
    return out


def joints(anno: dict, path, k: int) -> np.ndarray:
    """(34, 3) camera-frame mm from an annotation's ``joint_cams`` (3 rows of 34); ``path``, ``k``: the file and
    the annotation's index, for the error."""
    try:
        rows = np.asarray(anno["joint_cams"], np.float64)
    except (TypeError, ValueError):
        raise RawFileError(path, f"annotations[{k}]: joint_cams is not a 3 x {N_JOINTS} array of numbers") from None
    if rows.shape != (3, N_JOINTS) or not np.isfinite(rows).all():
        raise RawFileError(path, f"annotations[{k}]: joint_cams must be 3 x {N_JOINTS} finite numbers, got shape "
                                 f"{rows.shape}")
    return rows.T.copy()


def camera(anno: dict, path, k: int) -> Camera:
    """posepile ``get_camera``: intrinsics from ``f`` and ``c``, world = camera frame, up -y."""
    try:
        f, c = np.asarray(anno["f"], np.float64).reshape(2), np.asarray(anno["c"], np.float64).reshape(2)
    except (TypeError, ValueError):
        raise RawFileError(path, f"annotations[{k}]: f and c must be two numbers each") from None
    intr = np.array([[f[0], 0, c[0]], [0, f[1], c[1]], [0, 0, 1]], np.float64)
    cam = Camera(intrinsic_matrix=intr, R=np.eye(3), t=np.zeros(3), world_up=WORLD_UP)
    try:
        check_finite_camera(cam, path)
    except RawFileError as e:
        raise RawFileError(path, f"annotations[{k}]: {e.problem}") from None
    return cam


def read_camera_ids(path) -> np.ndarray:
    """``cam_ids_750k.npy``: a 1-D array (strings or integers), one camera id per image id."""
    path = Path(path)
    try:
        ids = np.load(path, allow_pickle=False)
    except OSError as e:
        raise RawFileError(path, f"unreadable camera id file: {e.strerror or e}") from None
    except ValueError as e:
        raise RawFileError(path, f"unreadable camera id file: not a plain .npy array, truncated or corrupt ({e})") \
            from None
    if ids.ndim != 1 or ids.dtype.kind not in "iuUS":
        raise RawFileError(path, f"must be a 1-D array of camera ids, got {ids.dtype} of shape {ids.shape}")
    return ids


def camera_name(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_mask(path, threshold: int) -> np.ndarray:
    """(H, W) bool: the pixels of a mask JPEG whose red channel is above ``threshold`` (posepile reads the image
    as RGB and thresholds channel 0)."""
    path = Path(path)
    try:
        data = np.frombuffer(path.read_bytes(), np.uint8)
    except OSError as e:
        raise RawFileError(path, f"unreadable mask image: {e.strerror or e}") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise RawFileError(path, "unreadable mask image: not a JPEG, or truncated or corrupt")
    return image[..., 2] > threshold


# ------------------------------------------------------------------------------------------- params, layout
def check_params(params: dict | None = None) -> dict:
    p = check_dataset_params(NAME, params, DEFAULT_PARAMS)
    where = f"datasets.{NAME}"
    if not p["splits"] or len(set(p["splits"])) != len(p["splits"]) or set(p["splits"]) - set(SPLITS):
        raise ParamsError(f"{where}.splits", f"must be distinct splits of {', '.join(SPLITS)}, got {p['splits']}")
    if p["adaptive_sampling_mm"] < 0:
        raise ParamsError(f"{where}.adaptive_sampling_mm", f"must be >= 0 (0 = off), got {p['adaptive_sampling_mm']}")
    if not 0 <= p["mask_threshold"] < 255:
        raise ParamsError(f"{where}.mask_threshold", f"must be in 0..254, got {p['mask_threshold']}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    p = check_params(params)
    return tuple(s for s in SPLITS if s in p["splits"])


def check_layout(root, params: dict | None = None) -> None:
    """RawLayoutError naming what is missing of the annotation file, the camera ids and the two image folders (and
    saying so when the images are not nested yet)."""
    check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    missing = [rel for rel in (ANNOTATIONS, CAMERA_IDS) if not (root / rel).is_file()]
    for folder in (IMAGES, MASKS):
        if not (root / folder).is_dir():
            missing.append(f"{folder}/")
        elif not any(d.is_dir() and len(d.name) == 6 for d in (root / folder).iterdir()):
            missing.append(f"{folder}/<id[:6]>/<id[6:8]>/ (the nesting of posepile's create_directory_structure.py:"
                           " run it on the unpacked archives)")
    if missing:
        raise RawLayoutError(NAME, root, missing)


# ------------------------------------------------------------------------------------------- instances
def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """The person of every selected image, in the annotation file's order. A selected image whose image or mask
    file is missing is a RawLayoutError naming them."""
    p = check_params(params)
    root = Path(root)
    check_layout(root, p)
    entries = read_annotations(root / ANNOTATIONS)
    cam_ids = read_camera_ids(root / CAMERA_IDS)
    wanted = set(p["splits"])
    samplers: dict[str, AdaptivePoseSampler] = {}
    out, missing = [], []
    for k, (image_id, anno) in enumerate(entries):
        number = int(image_id)
        if number >= len(cam_ids):
            raise RawFileError(root / CAMERA_IDS, f"has {len(cam_ids)} camera ids, none for image {image_id}")
        cam_name = camera_name(cam_ids[number])
        pose = joints(anno, root / ANNOTATIONS, k)
        sampler = samplers.setdefault(cam_name, AdaptivePoseSampler(p["adaptive_sampling_mm"]))
        if p["adaptive_sampling_mm"] > 0 and not sampler.should_keep(pose):
            continue
        split = "train" if anno["istrains"] else "test"
        if split not in wanted:
            continue
        if not (pose[:, 2] > 0).all():
            record_drop(dropped, image_path(image_id), [number], BEHIND)
            continue
        source = image_path(image_id)
        missing += [rel for rel in (source, mask_path(image_id)) if not (root / rel).is_file()]
        out.append(RawInstance(
            source=source, frame_index=number, world_coords=pose.astype(np.float32),
            camera=camera(anno, root / ANNOTATIONS, k), split=split, camera_name=cam_name,
            mask_source=mask_path(image_id)))
    if missing:
        raise RawLayoutError(NAME, root, missing)
    return out


def frame_source(raw_root, params: dict | None = None) -> FrameSource:
    """The images, each with its person's mask from the release's mask image (red channel > ``mask_threshold``).
    An image that cannot be read, or whose mask has another size, is a quarantined frame."""
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
        image_id = source.rsplit("/", 1)[-1][:-4]
        mask = read_mask(raw_root / mask_path(image_id), p["mask_threshold"])
        if mask.shape != image.shape[:2]:
            problem = f"image is {image.shape[1]}x{image.shape[0]}, its mask {mask.shape[1]}x{mask.shape[0]}"
            for i in wanted:
                yield i, Frame(None, problem=problem)
            return
        for i in wanted:
            yield i, Frame(image, masks={0: mask})

    return frames


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.gpa.fixture.make_fixture`)."""
    from posebank.datasets.gpa.fixture import make_fixture as write

    return write(root, seed, **options)


# No direct URLs or checksums are published: the files are in a Google Drive folder.
RAW_INSTRUCTIONS = """
    GPA: the dataset's homepage, https://www.cs.utexas.edu/~liyanc/projects/gpa-dataset/ , links its Google Drive
    folder (posepile's ds/gpa/main.sh names it: drive.google.com/drive/u/2/folders/14SWrgO3d_Ss2Vw3Q_vWb0b6JEZ5g8UgW).
    Download gaussian_fullimg.tar.gz, img_jpg_new_resnet101deeplabv3humanmask.tar.gz,
    xyz_gpa12_mdp_cntind_crop_cam_c2g.json and Sequence_ids/cam_ids_750k.npy into the raw folder, unpack the two
    archives (`tar xf <name>.tar.gz`) and nest the images as posepile's ds/gpa/create_directory_structure.py does
    (`python -m posepile.ds.gpa.create_directory_structure`; main.sh misspells the module), so that it holds
        xyz_gpa12_mdp_cntind_crop_cam_c2g.json
        Sequence_ids/cam_ids_750k.npy
        Gaussian_img_jpg_new/<id[:6]>/<id[6:8]>/<id>.jpg
        img_jpg_new_resnet101deeplabv3humanmask/<id[:6]>/<id[6:8]>/<id>_mask.jpg
"""
