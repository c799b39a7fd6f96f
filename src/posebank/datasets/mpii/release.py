"""Reading the MPII Human Pose release annotations, ``mpii_human_pose_v1_u12_1.mat`` (MATLAB v5, variable RELEASE).

What the file holds, as the public readers of it access it (princeton-vl/pose-hg-train ``src/misc/mpii.py`` and
``src/misc/convert_annot.py``, isarandi/posepile ``src/posepile/ds/mpii/main.py``, tensorflow-datasets' port of
pose-hg-train's reader) with scipy's default ``loadmat`` (``struct_as_record=True``, nothing squeezed)::

    RELEASE                      1x1 struct
      .annolist                  1xN struct, one per image: .image (1x1 struct, .name char), .annorect,
                                 .frame_sec, .vididx
        .annorect                1xP struct (or [] when the image has no person): per person
          .x1 .y1 .x2 .y2        the head box (training images only)
          .annopoints            1x1 struct with .point (1xK struct: .id (0..15), .x, .y, .is_visible) or []
          .scale                 person height / 200 px
          .objpos                1x1 struct .x .y: the rough person centre
      .img_train                 1xN, 1 = training image (the test images have no joints: .annorect holds only
                                 .scale and .objpos)
      .single_person             Nx1 cell: 1-based indices of the sufficiently separated persons of each image
      .act                       Nx1 struct .cat_name .act_name .act_id (-1: no activity)
      .video_list                1xV cell of YouTube ids (``annolist.vididx`` is 1-based into it)

Details the readers cope with: a training image may lack the ``annopoints`` field altogether or hold ``[]`` for a
person that was not annotated (pose-hg-train's ``istrain``; posepile skips ``len(rect.annopoints) == 0``);
``is_visible`` is a number, a one-character string ('0'/'1') or empty (pose-hg-train ``partinfo``: ``v[0][0] if
len(v) > 0``, ``int(v)`` for a string); scipy returns each number in the type it was stored with (MATLAB writes
integer-valued doubles as uint8/uint16/int16, hence uint16 head boxes and coordinates, double fractional head-top
and upper-neck points), so every value is converted to float64 before any arithmetic.

Coordinates are returned as stored, in MATLAB's 1-based pixels (HRNet ``lib/dataset/mpii.py:63-71`` and mmpose
0.x's ``topdown_mpii_dataset.py`` subtract 1; posepile does not): the converter applies the offset.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from posebank.datasets.base import RawFileError
from posebank.datasets.matlab import load_mat, mat_version

N_JOINTS = 16
VIS_UNKNOWN = 255


@dataclasses.dataclass
class Person:
    """One annotated person (an ``annorect`` of the release or an entry of the json conversion), as stored."""

    image: str  # the image's file name (``images/<image>``)
    rect: int  # 0-based index of the person among the image's annorect (json: among the image's entries)
    keypoints: np.ndarray  # (16, 2) float64, the file's pixels (1-based), NaN = not labelled
    visibility: np.ndarray | None  # (16,) uint8 1 visible, 0 occluded, 255 unknown; None: the file has none
    objpos: np.ndarray  # (2,) float64 rough person centre as stored, NaN when absent
    scale: float  # person height / 200 px, NaN when absent
    head_box: np.ndarray  # (4,) x1 y1 x2 y2 as stored, NaN when absent (the json conversion has none)
    problem: str = ""  # why the person cannot be converted ("" = usable)

    @property
    def n_labelled(self) -> int:
        return int(np.isfinite(self.keypoints).all(axis=1).sum())


@dataclasses.dataclass
class Image:
    """One ``annolist`` entry with the per-image fields of RELEASE."""

    index: int  # 0-based position in annolist
    name: str
    train: bool  # img_train
    people: list[Person]
    single_person: tuple[int, ...]  # 0-based rect indices listed in single_person
    activity: str  # act.act_name ("" when none)
    category: str  # act.cat_name
    video: str  # the YouTube id of video_list(vididx), "" when none


@dataclasses.dataclass
class Release:
    images: list[Image]
    version: str


class _Bad(Exception):
    """A structural problem at a MATLAB path (turned into RawFileError naming the file)."""


# ------------------------------------------------------------------------------------------- MATLAB values
def _names(value) -> tuple[str, ...]:
    names = getattr(getattr(value, "dtype", None), "names", None)
    return tuple(names) if names else ()


def _records(value, where: str) -> list:
    """The elements of a struct array in MATLAB's linear order ([] -> none)."""
    if isinstance(value, np.ndarray) and value.dtype.names:
        return list(value.reshape(-1, order="F"))
    if isinstance(value, np.void) and value.dtype.names:
        return [value]
    if isinstance(value, np.ndarray) and value.size == 0:
        return []
    raise _Bad(f"{where} is not a struct array ({type(value).__name__} {getattr(value, 'dtype', '')})")


def _one(value, where: str):
    recs = _records(value, where)
    if len(recs) != 1:
        raise _Bad(f"{where} is a {len(recs)}-element struct array, expected one struct")
    return recs[0]


def _field(rec, name: str):
    """A field's value, None when the struct has no such field."""
    return rec[name] if name in _names(rec) else None


def _empty(value) -> bool:
    return value is None or (isinstance(value, np.ndarray) and value.size == 0)


def _number(value, where: str) -> float | None:
    """A scalar (1x1 numeric, or a number written as text) as float; None when empty."""
    if _empty(value):
        return None
    arr = np.asarray(value)
    if arr.size != 1:
        raise ValueError(f"{where} holds {arr.size} values, expected one")
    item = arr.reshape(-1)[0]
    if arr.dtype.kind in "US":
        text = item.decode() if isinstance(item, bytes) else str(item)
        try:
            return float(text.strip())
        except ValueError:
            raise ValueError(f"{where} is the text {text!r}, not a number") from None
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{where} is not numeric ({arr.dtype})")
    return float(item)


def _text(value) -> str:
    if _empty(value):
        return ""
    arr = np.asarray(value)
    if arr.dtype.kind in "US":
        return "".join(str(v) for v in arr.reshape(-1))
    if arr.dtype == object and arr.size == 1:
        return _text(arr.reshape(-1)[0])
    return ""


# ------------------------------------------------------------------------------------------- persons
def _read_points(annopoints, where: str):
    """(keypoints, visibility, problem) of one person's ``annopoints`` (never raises for data problems)."""
    keypoints = np.full((N_JOINTS, 2), np.nan)
    visibility = np.full(N_JOINTS, VIS_UNKNOWN, np.uint8)
    ap = _one(annopoints, f"{where}.annopoints")
    points = _field(ap, "point")
    recs = [] if _empty(points) else _records(points, f"{where}.annopoints.point")
    seen = set()
    for k, pt in enumerate(recs):
        at = f"{where}.annopoints.point({k + 1})"
        try:
            jid, x, y = (_number(_field(pt, f), f"{at}.{f}") for f in ("id", "x", "y"))
            vis = _number(_field(pt, "is_visible"), f"{at}.is_visible")
        except ValueError as e:
            return keypoints, visibility, f"unreadable joint: {e}"
        if jid is None or x is None or y is None:
            return keypoints, visibility, f"joint {k + 1} lacks its id, x or y"
        if jid != int(jid) or not 0 <= jid < N_JOINTS:
            return keypoints, visibility, f"joint id {jid:g} is not one of 0..{N_JOINTS - 1}"
        jid = int(jid)
        if jid in seen:
            return keypoints, visibility, f"joint id {jid} is annotated twice"
        seen.add(jid)
        if not (np.isfinite(x) and np.isfinite(y)):
            return keypoints, visibility, f"joint id {jid} has non-finite coordinates"
        if vis is not None and vis not in (0.0, 1.0):
            return keypoints, visibility, f"joint id {jid} has is_visible {vis:g} (not 0 or 1)"
        keypoints[jid] = (x, y)
        visibility[jid] = VIS_UNKNOWN if vis is None else int(vis)
    return keypoints, visibility, ""


def _read_person(image: str, rect_index: int, rect, where: str, train: bool) -> Person:
    nan2 = np.full(2, np.nan)
    problem = ""
    try:
        scale = _number(_field(rect, "scale"), f"{where}.scale")
        pos = _field(rect, "objpos")
        objpos = nan2.copy()
        if not _empty(pos):
            rec = _one(pos, f"{where}.objpos")
            px, py = (_number(_field(rec, f), f"{where}.objpos.{f}") for f in ("x", "y"))
            if px is not None and py is not None:
                objpos = np.array([px, py])
        head = [_number(_field(rect, f), f"{where}.{f}") for f in ("x1", "y1", "x2", "y2")]
    except ValueError as e:
        scale, objpos, head, problem = None, nan2.copy(), [None] * 4, f"unreadable box: {e}"
    head_box = np.array([np.nan if v is None else v for v in head])
    keypoints = np.full((N_JOINTS, 2), np.nan)
    visibility = np.full(N_JOINTS, VIS_UNKNOWN, np.uint8)
    annopoints = _field(rect, "annopoints")
    if not problem:
        if _empty(annopoints):
            problem = "not annotated (no annopoints)" if train else "test image (no joints released)"
        else:
            keypoints, visibility, problem = _read_points(annopoints, where)
    return Person(image=image, rect=rect_index, keypoints=keypoints, visibility=visibility, objpos=objpos,
                  scale=np.nan if scale is None else scale, head_box=head_box, problem=problem)


# ------------------------------------------------------------------------------------------- the file
def read_release(path) -> Release:
    """Read ``mpii_human_pose_v1_u12_1.mat``. Structural problems (a field that is not the documented kind of value)
    raise RawFileError naming the file and the MATLAB path; a person whose joints break the format's rules (an id
    outside 0..15, an id twice, non-finite coordinates) gets a ``problem`` instead, for the converter to drop."""
    path = Path(path)
    if mat_version(path) != "5":
        raise RawFileError(path, "not a MATLAB v5 file (the release's mpii_human_pose_v1_u12_1.mat is v5)")
    mat = load_mat(path, ["RELEASE"], what="annotation file")
    try:
        return _read(mat["RELEASE"])
    except _Bad as e:
        raise RawFileError(path, str(e)) from None


def _read(value) -> Release:
    rel = _one(value, "RELEASE")
    for name in ("annolist", "img_train"):
        if name not in _names(rel):
            raise _Bad(f"RELEASE has no field {name!r} (has {list(_names(rel))})")
    annolist = _records(rel["annolist"], "RELEASE.annolist")
    n = len(annolist)
    img_train = np.asarray(rel["img_train"]).reshape(-1)
    if img_train.size != n or img_train.dtype.kind not in "biuf":
        raise _Bad(f"RELEASE.img_train has {img_train.size} {img_train.dtype} values for {n} images")
    single = _cells(_field(rel, "single_person"), n, "RELEASE.single_person")
    acts = _field(rel, "act")
    acts = [None] * n if _empty(acts) else _records(acts, "RELEASE.act")
    if len(acts) != n:
        raise _Bad(f"RELEASE.act has {len(acts)} entries for {n} images")
    videos = _field(rel, "video_list")
    videos = [] if _empty(videos) else [_text(v) for v in np.asarray(videos, object).reshape(-1, order="F")]
    images = []
    for i, anno in enumerate(annolist):
        where = f"RELEASE.annolist({i + 1})"
        name = _text(_field(_one(_field(anno, "image"), f"{where}.image"), "name"))
        if not name:
            raise _Bad(f"{where}.image.name is empty")
        train = bool(img_train[i])
        rects = _field(anno, "annorect")
        rects = [] if _empty(rects) else _records(rects, f"{where}.annorect")
        people = [_read_person(name, j, r, f"{where}.annorect({j + 1})", train) for j, r in enumerate(rects)]
        try:
            ids = [] if single[i] is None else np.asarray(single[i], np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise _Bad(f"RELEASE.single_person{{{i + 1}}} is not a list of numbers") from None
        act = acts[i]
        vid = None
        try:
            vid = _number(_field(anno, "vididx"), f"{where}.vididx")
        except ValueError:
            pass
        video = videos[int(vid) - 1] if vid is not None and 1 <= vid <= len(videos) else ""
        images.append(Image(
            index=i, name=name, train=train, people=people,
            single_person=tuple(int(k) - 1 for k in ids if 1 <= k <= len(people)),
            activity="" if act is None else _text(_field(act, "act_name")),
            category="" if act is None else _text(_field(act, "cat_name")), video=video))
    return Release(images, _text(_field(rel, "version")))


def _cells(value, n: int, where: str) -> list:
    if _empty(value):
        return [None] * n
    if not (isinstance(value, np.ndarray) and value.dtype == object):
        raise _Bad(f"{where} is not a cell array")
    cells = [None if _empty(c) else c for c in value.reshape(-1, order="F")]
    if len(cells) != n:
        raise _Bad(f"{where} has {len(cells)} cells for {n} images")
    return cells
