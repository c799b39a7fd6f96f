"""Readers of COCO's person-keypoint annotation files (``annotations/person_keypoints_<split><year>.json``).

The format (https://cocodataset.org/#format-data; the files of ``annotations_trainval2017.zip`` and
``annotations_trainval2014.zip``) is one JSON object with

* ``images``: ``{"id", "file_name", "width", "height", ...}`` for every image of the split (also those without a
  person; the 2014 names carry the split, ``COCO_train2014_000000000009.jpg``, the 2017 ones do not,
  ``000000000009.jpg``);
* ``annotations``: one object per person (``category_id`` 1) with ``image_id``, ``id``, ``keypoints`` (17 x
  (x, y, v), integers: v = 0 not labelled (x = y = 0), 1 labelled but not visible, 2 labelled and visible),
  ``num_keypoints`` (the count of v > 0), ``bbox`` (x, y, w, h), ``iscrowd`` (1: a region of several people,
  annotated without keypoints), ``area`` and ``segmentation``: a list of polygons ``[x0, y0, x1, y1, ...]`` for
  single people, run-length encoding ``{"counts": [...], "size": [h, w]}`` (uncompressed) for crowd regions,
  or compressed RLE (``counts`` a string) as pycocotools writes it;
* ``categories``: the person category with its 17 ``keypoints`` names and ``skeleton``.

Coordinates. Segmentations and boxes are continuous image coordinates in which pixel ``i`` covers ``[i, i + 1]``;
keypoints are integer pixel indices (detectron2, ``detectron2/data/datasets/coco.py``: "COCO's segmentation
coordinates are floating points in [0, H or W], but keypoint coordinates are integers in [0, H-1 or W-1]").
posebank puts pixel centres at integer coordinates, so keypoints are used as they are and boxes move by half a
pixel (:func:`posebank_box`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import struct
from pathlib import Path

import numpy as np

from posebank.datasets.base import RawFileError

# the person category's keypoints, in the file's order (the categories entry of every person_keypoints file)
KEYPOINT_NAMES = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                  "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                  "right_knee", "left_ankle", "right_ankle")
N_KEYPOINTS = len(KEYPOINT_NAMES)
PERSON_CATEGORY = 1
UNLABELLED, OCCLUDED, VISIBLE = 0, 1, 2  # the v of a keypoint (posepile ds/coco/main.py names them so)
NOT_JSON = "unreadable annotation file: not valid JSON, truncated or corrupt"


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    id: int
    file_name: str
    width: int
    height: int


@dataclasses.dataclass
class PersonAnnotation:
    """One entry of ``annotations`` (a person or a crowd region), as the file gives it."""

    id: int
    image_id: int
    index: int  # its position among the annotations of its image, in file order (posebank's person_index)
    keypoints: np.ndarray  # (17, 3) float64: x, y, v
    bbox: np.ndarray  # (4,) x, y, w, h in COCO's continuous coordinates
    iscrowd: bool
    num_keypoints: int  # as the file says (the count of v > 0 in every release file)
    segmentation: object = None  # polygons or RLE as in the file; None unless read with segmentation=True
    where: str = ""  # "annotations[i] (id N)", for messages

    @property
    def v(self) -> np.ndarray:
        return self.keypoints[:, 2].astype(np.int64)

    @property
    def n_labelled(self) -> int:
        return int(np.count_nonzero(self.v > 0))

    @property
    def n_visible(self) -> int:
        return int(np.count_nonzero(self.v == VISIBLE))


@dataclasses.dataclass
class KeypointFile:
    """The person annotations of one file as columns, ordered by image (the file's image order), then by their
    order in the file (``index``)."""

    path: Path
    images: dict[int, ImageInfo]  # by image id, in file order
    ids: np.ndarray  # (N,) int64 annotation ids
    image_ids: np.ndarray  # (N,) int64
    index: np.ndarray  # (N,) int64 position among the annotations of the image
    keypoints: np.ndarray  # (N, 17, 3) float64
    bbox: np.ndarray  # (N, 4) float64, COCO coordinates
    iscrowd: np.ndarray  # (N,) bool
    num_keypoints: np.ndarray  # (N,) int64
    entries: np.ndarray  # (N,) int64 position in the file's annotations list (for messages)
    segmentations: list | None = None  # (N,) as in the file, when read with segmentation=True

    def __len__(self) -> int:
        return len(self.ids)

    def where(self, k: int) -> str:
        return f"annotations[{int(self.entries[k])}] (id {int(self.ids[k])})"

    def person(self, k: int) -> PersonAnnotation:
        return PersonAnnotation(int(self.ids[k]), int(self.image_ids[k]), int(self.index[k]), self.keypoints[k],
                                self.bbox[k], bool(self.iscrowd[k]), int(self.num_keypoints[k]),
                                None if self.segmentations is None else self.segmentations[k], self.where(k))

    @functools.cached_property
    def persons(self) -> list[PersonAnnotation]:
        return [self.person(k) for k in range(len(self))]

    def groups(self) -> list[tuple[int, slice]]:
        """(image id, rows) of every image with annotations, in order (an image's rows are contiguous)."""
        if not len(self):
            return []
        starts = np.flatnonzero(np.diff(self.image_ids) != 0) + 1
        bounds = [0, *starts.tolist(), len(self)]
        return [(int(self.image_ids[a]), slice(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]

    def by_image(self) -> dict[int, list[PersonAnnotation]]:
        people = self.persons
        return {image_id: people[rows] for image_id, rows in self.groups()}


# ------------------------------------------------------------------------------------------- values
def keypoints2d_array(keypoints: np.ndarray) -> np.ndarray:
    """(..., 17, 3) keypoints -> (..., 17, 2) float64 pixels (pixel centres at integers), NaN where the keypoint is
    not labelled (v = 0)."""
    keypoints = np.asarray(keypoints, np.float64)
    return np.where((keypoints[..., 2:] == UNLABELLED), np.nan, keypoints[..., :2])


def visibility_array(keypoints: np.ndarray) -> np.ndarray:
    """(..., 17, 3) keypoints -> (..., 17) uint8 in posebank's coding: 1 visible (v = 2), 0 labelled but occluded
    (v = 1), 255 not labelled (v = 0: unknown)."""
    v = np.asarray(keypoints)[..., 2]
    return np.where(v == VISIBLE, 1, np.where(v == OCCLUDED, 0, 255)).astype(np.uint8)


def posebank_boxes(bbox: np.ndarray) -> np.ndarray:
    """COCO boxes [x, y, w, h] (..., 4) in posebank's pixel convention (centres at integers): COCO's box edges are
    continuous coordinates, half a pixel to the right of and below posebank's."""
    return np.asarray(bbox, np.float64) - np.array([0.5, 0.5, 0.0, 0.0])


def keypoints2d(person: PersonAnnotation) -> np.ndarray:
    return keypoints2d_array(person.keypoints)


def visibility(person: PersonAnnotation) -> np.ndarray:
    return visibility_array(person.keypoints)


def posebank_box(person: PersonAnnotation) -> np.ndarray:
    return posebank_boxes(person.bbox)


# ------------------------------------------------------------------------------------------- reading
def _load_json(path: Path):
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RawFileError(path, f"unreadable ({e.strerror or e})") from None
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RawFileError(path, f"{NOT_JSON} ({e})") from None


def _int(value, path, where: str, key: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise RawFileError(path, f"{where}: {key!r} is {value!r}, expected an integer")
    if minimum is not None and value < minimum:
        raise RawFileError(path, f"{where}: {key!r} is {value!r}, expected at least {minimum}")
    return int(value)


def _numbers(value, path, where: str, key: str, size: int) -> np.ndarray:
    if not isinstance(value, list) or len(value) != size or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
        shown = f"{len(value)} values" if isinstance(value, list) else repr(value)[:60]
        raise RawFileError(path, f"{where}: {key!r} has {shown}, expected a list of {size} numbers")
    arr = np.asarray(value, np.float64)
    if not np.all(np.isfinite(arr)):
        raise RawFileError(path, f"{where}: {key!r} holds non-finite values")
    return arr


def _column(anns: list, rows: list[int], key: str, size: int | None, path: Path, default=None) -> np.ndarray:
    """``ann[key]`` of the rows as one float64 array (n,) or (n, size); the entry at fault named when it fails."""
    values = [anns[i].get(key, default) for i in rows]
    try:
        arr = np.asarray(values, np.float64)
        ok = arr.shape == ((len(rows),) if size is None else (len(rows), size)) and bool(np.all(np.isfinite(arr)))
        if size is None:  # integers (ids, flags)
            ok = ok and bool(np.all(arr == np.round(arr))) and not any(type(v) is bool for v in values)
    except (TypeError, ValueError):
        ok = False
    if ok:
        return arr
    for i in rows:  # find the first entry at fault, for the message
        where = f"annotations[{i}]" + (f" (id {anns[i]['id']})" if "id" in anns[i] else "")
        if size is None:
            _int(anns[i].get(key, default), path, where, key)
        else:
            _numbers(anns[i].get(key, default), path, where, key, size)
    raise RawFileError(path, f"{key!r} values do not form an array")  # (not reached)


def _check_segmentation(seg, path, where: str) -> None:
    if isinstance(seg, list):
        return  # the polygons are checked where they are decoded (decode_segmentation)
    if isinstance(seg, dict):
        if "counts" not in seg or "size" not in seg:
            raise RawFileError(path, f"{where}: RLE 'segmentation' without 'counts' and 'size' (has {sorted(seg)})")
    else:
        raise RawFileError(path, f"{where}: 'segmentation' is {type(seg).__name__}, expected polygons or RLE")


def _person_category(data: dict, path: Path) -> int:
    categories = data.get("categories")
    if categories is None:
        return PERSON_CATEGORY
    if not isinstance(categories, list):
        raise RawFileError(path, "'categories' is not a list")
    for c in categories:
        if isinstance(c, dict) and c.get("name") == "person":
            names = c.get("keypoints")
            if names is not None and tuple(names) != KEYPOINT_NAMES:
                raise RawFileError(path, f"the person category's keypoints are {names}, expected COCO's 17 "
                                         f"({', '.join(KEYPOINT_NAMES)})")
            return _int(c.get("id"), path, "categories[person]", "id")
    raise RawFileError(path, "'categories' has no 'person' category: not a person_keypoints file")


_REQUIRED = frozenset({"id", "image_id", "keypoints", "bbox"})


def read_keypoint_file(path, segmentation: bool = False) -> KeypointFile:
    """Read and check one ``person_keypoints_*.json``. ``segmentation``: keep each annotation's segmentation
    (its form is checked either way); without it the (large) polygons are not kept in memory.
    Errors name the file and the entry (``annotations[i] (id N)``)."""
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict):
        raise RawFileError(path, f"the file holds a JSON {type(data).__name__}, expected an object with 'images' "
                                 "and 'annotations'")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise RawFileError(path, f"no {key!r} list (keys: {sorted(data)})")
    person_category = _person_category(data, path)
    images: dict[int, ImageInfo] = {}
    for i, im in enumerate(data["images"]):
        where = f"images[{i}]"
        if not isinstance(im, dict):
            raise RawFileError(path, f"{where} is not an object")
        for key in ("id", "file_name", "width", "height"):
            if key not in im:
                raise RawFileError(path, f"{where} has no {key!r}")
        image_id = _int(im["id"], path, where, "id")
        name = im["file_name"]
        if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
            raise RawFileError(path, f"{where}: 'file_name' {name!r} is not a plain file name")
        if image_id in images:
            raise RawFileError(path, f"{where}: image id {image_id} listed twice")
        images[image_id] = ImageInfo(image_id, name, _int(im["width"], path, where, "width", 1),
                                     _int(im["height"], path, where, "height", 1))
    anns = data["annotations"]
    rows = []
    for i, ann in enumerate(anns):  # the structure, entry by entry; the values below, column by column
        if not isinstance(ann, dict):
            raise RawFileError(path, f"annotations[{i}] is not an object")
        if not _REQUIRED <= ann.keys():
            where = f"annotations[{i}]" + (f" (id {ann['id']})" if "id" in ann else "")
            raise RawFileError(path, f"{where} has no {sorted(_REQUIRED - ann.keys())[0]!r}")
        category = ann.get("category_id", person_category)
        if category != person_category:
            _int(category, path, f"annotations[{i}] (id {ann['id']})", "category_id")
            continue  # not a person (person_keypoints files hold persons only)
        seg = ann.get("segmentation")
        if seg is not None and not isinstance(seg, list):
            _check_segmentation(seg, path, f"annotations[{i}] (id {ann['id']})")
        rows.append(i)
    n = len(rows)
    ids = _column(anns, rows, "id", None, path).astype(np.int64)
    image_ids = _column(anns, rows, "image_id", None, path).astype(np.int64)
    keypoints = _column(anns, rows, "keypoints", 3 * N_KEYPOINTS, path).reshape(n, N_KEYPOINTS, 3)
    bbox = _column(anns, rows, "bbox", 4, path).reshape(n, 4)
    crowd = _column(anns, rows, "iscrowd", None, path, default=0)
    entries = np.asarray(rows, np.int64)

    def fail(k: int, problem: str):
        raise RawFileError(path, f"annotations[{rows[k]}] (id {int(ids[k])}): {problem}")

    unique, first, counts = np.unique(ids, return_index=True, return_counts=True)
    if np.any(counts > 1):
        k = int(np.flatnonzero(np.isin(ids, unique[counts > 1]))[1])
        fail(k, f"annotation id {int(ids[k])} listed twice")
    known = np.isin(image_ids, np.fromiter(images, np.int64, len(images)))
    if not known.all():
        k = int(np.flatnonzero(~known)[0])
        fail(k, f"'image_id' {int(image_ids[k])} is not in 'images'")
    v = keypoints[:, :, 2]
    bad = ~np.isin(v, (UNLABELLED, OCCLUDED, VISIBLE)).all(axis=1)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        shown = sorted({int(x) if float(x).is_integer() else x for x in v[k].tolist()})
        fail(k, f"keypoint visibilities {shown}, expected 0, 1 or 2")
    bad = (bbox[:, 2] < 0) | (bbox[:, 3] < 0)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        fail(k, f"'bbox' {bbox[k].tolist()} has a negative width or height")
    bad = ~np.isin(crowd, (0, 1))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        fail(k, f"'iscrowd' is {crowd[k]:g}, expected 0 or 1")
    labelled = np.count_nonzero(v > 0, axis=1)
    num = np.asarray([anns[i].get("num_keypoints", int(c)) for i, c in zip(rows, labelled)], dtype=object)
    if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in num):
        k = next(k for k, x in enumerate(num) if not (isinstance(x, int) and not isinstance(x, bool) and x >= 0))
        fail(k, f"'num_keypoints' is {num[k]!r}, expected a non-negative integer")
    # the position of each annotation among its image's, in file order; then rows by image order and position
    by_image = np.argsort(image_ids, kind="stable")
    sorted_ids = image_ids[by_image]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_ids)) + 1] if n else np.zeros(0, np.int64)
    group_start = np.repeat(starts, np.diff(np.r_[starts, n])) if n else np.zeros(0, np.int64)
    index = np.empty(n, np.int64)
    index[by_image] = np.arange(n) - group_start
    image_order = {image_id: k for k, image_id in enumerate(images)}
    rank = np.fromiter((image_order[i] for i in image_ids.tolist()), np.int64, n)
    order = np.lexsort((index, rank))
    segs = [anns[rows[k]].get("segmentation") for k in order.tolist()] if segmentation else None
    return KeypointFile(path, images, ids[order], image_ids[order], index[order], keypoints[order], bbox[order],
                        crowd[order].astype(bool), num.astype(np.int64)[order], entries[order], segs)


# ------------------------------------------------------------------------------------------- masks
def decode_segmentation(segmentation, height: int, width: int, path, where: str) -> np.ndarray | None:
    """A person's segmentation (polygons, uncompressed or compressed RLE) as an (height, width) bool mask, decoded
    by pycocotools as the COCO API does (``annToRLE``); None when it holds no polygon of at least 3 points."""
    import pycocotools.mask as mask_utils

    try:
        if isinstance(segmentation, list):
            # polygons of fewer than 3 points are not areas (detectron2 leaves them out too)
            polygons = [[float(x) for x in poly] for poly in segmentation if len(poly) >= 6 and len(poly) % 2 == 0]
            if not polygons:
                return None
            rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
        else:
            size = [int(s) for s in segmentation["size"]]
            if size != [height, width]:
                raise RawFileError(path, f"{where}: RLE size {size} differs from the image's {[height, width]}")
            counts = segmentation["counts"]
            if isinstance(counts, list):
                rle = mask_utils.frPyObjects(segmentation, height, width)
            else:
                rle = {"size": size, "counts": counts.encode() if isinstance(counts, str) else counts}
        mask = mask_utils.decode(rle)
    except RawFileError:
        raise
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise RawFileError(path, f"{where}: 'segmentation' does not decode ({type(e).__name__}: {e})") from None
    if mask.ndim == 3:
        mask = mask.any(axis=2)
    return np.ascontiguousarray(mask.astype(bool))


# ------------------------------------------------------------------------------------------- images
def jpeg_size(path) -> tuple[int, int]:
    """(width, height) from a JPEG file's frame header, without decoding it."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            if f.read(2) != b"\xff\xd8":
                raise RawFileError(path, "not a JPEG file")
            while True:
                marker = f.read(2)
                if len(marker) < 2 or marker[0] != 0xFF:
                    break
                code = marker[1]
                if code == 0xFF:  # fill byte
                    f.seek(-1, 1)
                    continue
                if code in (0x01, *range(0xD0, 0xD8)):  # markers without a length
                    continue
                length = f.read(2)
                if len(length) < 2:
                    break
                (n,) = struct.unpack(">H", length)
                if code in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                    header = f.read(5)
                    if len(header) < 5:
                        break
                    height, width = struct.unpack(">HH", header[1:5])
                    return width, height
                f.seek(n - 2, 1)
    except OSError as e:
        raise RawFileError(path, f"unreadable ({e.strerror or e})") from None
    raise RawFileError(path, "JPEG file without a frame header (truncated or corrupt)")
