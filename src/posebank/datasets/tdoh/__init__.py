"""3DOH50K (Zhang, Huang, Wang, CVPR 2020): about 51k images of people occluded by objects, from a six-camera
studio, each with an SMPL fit, its 14 LSP joints in 2D and 3D, the camera and a box.

Raw layout, as the release's ``trainset.zip`` and ``testset.zip`` unpack (posepile ``ds/tdoh/main.sh``)::

    root/trainset/annots.json          {"<image id>": annotation, ...}
    root/trainset/images/<id>.jpg
    root/trainset/masks/<id>.png       the person's mask (train only; posepile reads its first channel)
    root/testset/annots.json
    root/testset/images/<id>.jpg

An annotation (the fields mmhuman3d's ``oh50k3d.py`` converter reads): ``extri`` (4 x 4, world -> camera),
``intri`` (3 x 3), ``img_path``, ``bbox`` ((x1, y1), (x2, y2)), ``betas`` (1 x 10), ``pose`` (1 x 72), ``trans``
(1 x 3), ``scale`` (1), ``smpl_joints_2d`` (24 x 2), ``smpl_joints_3d`` (24 x 3), ``lsp_joints_2d`` (14 x 2) and
``lsp_joints_3d`` (14 x 3, the camera frame), ``mask_path``.

Units: the release's 3D values are in the units of its calibration, not metres: the SMPL fit carries a ``scale``,
and the dataset's authors' answer (boycehbz/MvSMPLfitting issue 3) is to divide by it to get metres. posebank
takes ``lsp_joints_3d / scale`` as metres, and the extrinsic translation likewise (x 1000 / scale -> mm), so the
joints and the camera share one world frame in mm. posepile instead multiplies the joints by 1000 / 7 whatever the
annotation's scale and the translation by 1000 (docs/datasets.md, differences from posepile).

Camera: R and t of ``extri`` (t in mm as above) and ``intri``, no distortion; the world frame is the calibration's
(posepile: ``camera_to_world`` of the camera-frame joints), world up is the camera's up, ``-R[1]`` (posepile).
Joints: posepile's 14 LSP names ``rank,rkne,rhip,lhip,lkne,lank,rwri,relb,rsho,lsho,lelb,lwri,neck,head`` (head =
the LSP head top). Every image of the selected splits is an example (no sampling); the box is the annotation's
``bbox``; the train images carry their mask. Splits: ``trainset`` -> train, ``testset`` -> test (huge8: train).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from posebank.core.camera import Camera
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
from posebank.datasets.sampling import record_drop

NAME = "tdoh"
INFO = DatasetInfo(
    name=NAME,
    full_name="3DOH50K (Object-Occluded Human)",
    homepage="https://www.yangangwang.com/papers/ZHANG-OOH-2020-03.html",
    licence=("Research use only, per the dataset's download page of the authors (Southeast University, "
             "yangangwang.com) (unverified); no redistribution."),
    citation=("T. Zhang, B. Huang, Y. Wang. Object-Occluded Human Shape and Pose Estimation From a Single Color "
              "Image. CVPR 2020."),
)

# posepile ds/tdoh/main.py make_dataset: joint_names, edges (LSP order)
JOINT_INFO = JointInfo("rank,rkne,rhip,lhip,lkne,lank,rwri,relb,rsho,lsho,lelb,lwri,neck,head",
                       "rsho-relb-rwri,rhip-rkne-rank,neck-head")
N_JOINTS = 14
SPLIT_FOLDERS = {"train": "trainset", "test": "testset"}
ANNOTATIONS, IMAGES, MASKS = "annots.json", "images", "masks"
FIELDS = ("extri", "intri", "bbox", "scale", "lsp_joints_3d")
SHARD_KEY = ()  # one flat folder of images per split: the frame order is cut into equal parts
M_TO_MM = 1000.0

DEFAULT_PARAMS = {
    "splits": ["train", "test"],  # the release's trainset / testset folders
    "masks": True,  # attach trainset/masks/<id>.png to the train images (posepile: use_masks for train only)
}

BEHIND = "a joint is not in front of the camera"
BAD_SCALE = "the annotation's scale is not a positive number"


# ------------------------------------------------------------------------------------------- readers
def read_annotations(path) -> dict[str, dict]:
    """An ``annots.json`` as {image id: annotation}; RawFileError names the file when it is not valid JSON or not
    an object of annotation objects."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes())
    except OSError as e:
        raise RawFileError(path, f"unreadable annotation file: {e.strerror or e}") from None
    except (ValueError, UnicodeDecodeError):
        raise RawFileError(path, "unreadable annotation file: not valid JSON, truncated or corrupt") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise RawFileError(path, "unreadable annotation file: expected an object of image id -> annotation")
    return data


def _array(path, image_id: str, anno: dict, key: str, shape: tuple) -> np.ndarray:
    """``anno[key]`` as float64 of ``shape`` (-1: any length; a 1-element scale may be nested)."""
    try:
        value = np.array(anno[key], np.float64)
    except KeyError:
        raise RawFileError(path, f"annotation {image_id!r}: no {key!r}") from None
    except (TypeError, ValueError):
        raise RawFileError(path, f"annotation {image_id!r}: {key!r} is not an array of numbers") from None
    if shape == ():
        if value.size != 1:
            raise RawFileError(path, f"annotation {image_id!r}: {key!r} is not one number, shape {value.shape}")
        return value.reshape(())
    if value.ndim != len(shape) or any(n not in (-1, m) for n, m in zip(shape, value.shape)):
        raise RawFileError(path, f"annotation {image_id!r}: {key!r} has shape {value.shape}, expected {shape}")
    if not np.isfinite(value).all():
        raise RawFileError(path, f"annotation {image_id!r}: {key!r} has non-finite values")
    return value


def camera_joints_mm(path, image_id: str, anno: dict) -> np.ndarray:
    """(14, 3) the LSP joints in the camera frame in mm: ``lsp_joints_3d / scale`` metres."""
    scale = float(_array(path, image_id, anno, "scale", ()))
    return _array(path, image_id, anno, "lsp_joints_3d", (N_JOINTS, 3)) * (M_TO_MM / scale)


def read_camera(path, image_id: str, anno: dict) -> Camera:
    """The posebank camera of an annotation: R from ``extri``, its translation x 1000 / ``scale`` (mm), K =
    ``intri``, no distortion, world up ``-R[1]``; posebank's t is the optical centre ``-Rᵀ t``."""
    extri = _array(path, image_id, anno, "extri", (4, 4))
    intri = _array(path, image_id, anno, "intri", (3, 3))
    scale = float(_array(path, image_id, anno, "scale", ()))
    r = extri[:3, :3]
    t_mm = extri[:3, 3] * (M_TO_MM / scale)
    return Camera(intrinsic_matrix=intri, R=r, t=-r.T @ t_mm, world_up=-r[1])


def read_box(path, image_id: str, anno: dict) -> np.ndarray:
    """``bbox`` ((x1, y1), (x2, y2)) -> [x, y, w, h] (posepile)."""
    (x1, y1), (x2, y2) = _array(path, image_id, anno, "bbox", (2, 2))
    if x2 <= x1 or y2 <= y1:
        raise RawFileError(path, f"annotation {image_id!r}: empty bbox {[[x1, y1], [x2, y2]]}")
    return np.array([x1, y1, x2 - x1, y2 - y1], np.float64)


# ------------------------------------------------------------------------------------------- layout
def check_params(params: dict | None) -> dict:
    p = check_dataset_params(NAME, params, DEFAULT_PARAMS)
    bad = [s for s in p["splits"] if s not in SPLIT_FOLDERS]
    if bad or not p["splits"] or len(set(p["splits"])) != len(p["splits"]):
        raise ParamsError(f"datasets.{NAME}.splits", f"must be some of train, test, got {p['splits']}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    p = check_params(params)
    return tuple(s for s in SPLIT_FOLDERS if s in p["splits"])


def check_layout(root, params: dict | None = None) -> None:
    """Verify the raw tree: per selected split ``<split>set/annots.json`` and ``<split>set/images/``, and
    ``trainset/masks/`` when the train masks are attached."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    missing = []
    for split in splits(p):
        folder = SPLIT_FOLDERS[split]
        if not (root / folder / ANNOTATIONS).is_file():
            missing.append(f"{folder}/{ANNOTATIONS}")
        if not (root / folder / IMAGES).is_dir():
            missing.append(f"{folder}/{IMAGES}/")
        if split == "train" and p["masks"] and not (root / folder / MASKS).is_dir():
            missing.append(f"{folder}/{MASKS}/")
    if missing:
        raise RawLayoutError(NAME, root, missing)


def _frame_number(image_id: str) -> int:
    return int(image_id) if image_id.isdigit() else -1


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """The person of every annotated image of the selected splits, train before test, each in sorted image-id
    order. An image (or, with masks, a train mask) missing for an annotation is a RawLayoutError naming them all;
    annotations whose scale is not positive or whose joints are not all in front of the camera go to
    ``dropped``."""
    p = check_params(params)
    root = Path(root)
    check_layout(root, p)
    out = []
    for split in splits(p):
        folder = SPLIT_FOLDERS[split]
        path = root / folder / ANNOTATIONS
        annotations = read_annotations(path)
        ids = sorted(annotations)
        with_masks = split == "train" and p["masks"]
        missing = [f"{folder}/{IMAGES}/{i}.jpg" for i in ids if not (root / folder / IMAGES / f"{i}.jpg").is_file()]
        if with_masks:
            missing += [f"{folder}/{MASKS}/{i}.png" for i in ids if not (root / folder / MASKS / f"{i}.png").is_file()]
        if missing:
            raise RawLayoutError(NAME, root, sorted(missing))
        where = f"{folder}/{ANNOTATIONS}"
        for image_id in ids:
            anno = annotations[image_id]
            missing_fields = [k for k in FIELDS if k not in anno]
            if missing_fields:
                raise RawFileError(path, f"annotation {image_id!r}: no {', '.join(map(repr, missing_fields))}")
            if not float(_array(path, image_id, anno, "scale", ())) > 0:
                record_drop(dropped, where, [_frame_number(image_id)], BAD_SCALE)
                continue
            cam_mm = camera_joints_mm(path, image_id, anno)
            camera = read_camera(path, image_id, anno)
            check_finite_camera(camera, path)
            if not (cam_mm[:, 2] > 0).all():
                record_drop(dropped, where, [_frame_number(image_id)], BEHIND)
                continue
            out.append(RawInstance(
                source=f"{folder}/{IMAGES}/{image_id}.jpg", frame_index=_frame_number(image_id),
                world_coords=camera.camera_to_world(cam_mm).astype(np.float32), camera=camera, split=split,
                bbox=read_box(path, image_id, anno),
                mask_source=f"{folder}/{MASKS}/{image_id}.png" if with_masks else None))
    return out


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.tdoh.fixture.make_fixture`)."""
    from posebank.datasets.tdoh.fixture import make_fixture as write

    return write(root, seed, **options)


# No direct URLs or checksums are published: the archives are in the authors' OneDrive folder.
RAW_INSTRUCTIONS = """
    3DOH50K: the dataset's homepage (https://www.yangangwang.com/papers/ZHANG-OOH-2020-03.html) links the authors'
    OneDrive folder 3DOH50K (research use; the link is also in posepile's ds/tdoh/main.sh); download trainset.zip
    and testset.zip into the raw folder and unzip them there, so that it holds
        trainset/annots.json, trainset/images/<id>.jpg, trainset/masks/<id>.png
        testset/annots.json, testset/images/<id>.jpg
"""
