"""MPII Human Pose (Andriluka et al., CVPR 2014): 2D joints of people in YouTube frames; a 2D-only dataset.

Raw layout (``root`` is the folder holding ``images/``)::

    root/images/<name>.jpg                         mpii_human_pose_v1.tar.gz (24987 images)
    root/mpii_human_pose_v1_u12_1.mat              the release's annotations (mpii_human_pose_v1_u12_2.zip;
                                                   posepile unzips it flat, ``unzip -j``; the zip's own folder
                                                   mpii_human_pose_v1_u12_2/ is accepted too)
    root/annot/{train,valid}.json                  the json conversion as HRNet lays it out, or
    root/annotations/mpii_{train,val}.json         as mmpose lays it out (the same files)

Annotations (``annotations`` param): ``mat`` reads the release (:mod:`.release`), ``json`` the conversion
(:mod:`.converted`), ``auto`` the .mat when it is there, else the json files (:func:`check_layout` returns which,
and the cache's provenance records it). Both give the same persons, joints, centres and scales; only the .mat has
per-joint visibility (``is_visible``), head boxes, activities and video ids.

Joints: the release's 16 (ids 0..15) in its order, with posepile's names (``src/posepile/ds/mpii/main.py``:
``rank,rkne,rhip,lhip,lkne,lank,pelv,thor,neck,head,rwri,relb,rsho,lsho,lelb,lwri``; ``neck`` is the upper neck,
``head`` the head top) and its edges. ``keypoints2d`` (16, 2) are the annotated pixels, NaN where a joint is not
labelled; ``world_coords`` are all NaN. With ``matlab_pixels`` (default) 1 is subtracted from every coordinate: the
release's pixels are 1-based (HRNet ``lib/dataset/mpii.py:63-71``, mmpose 0.x ``topdown_mpii_dataset.py``: "MPII
uses matlab format, index is 1-based"), posebank's are 0-based; posepile uses the values as they are.
``visibility``: ``is_visible`` 1 -> 1, 0 -> 0, empty -> 255; unlabelled joints 255; none from the json (its
``joints_vis`` means labelled, not visible).

Camera: intrinsics only (R = I, t = 0, up = -y). ``focal: diagonal`` is ReFit's default for images without
intrinsics (``lib/datasets/base_dataset.py`` ``est_focal``/``est_center``): f = sqrt(w^2 + h^2), principal point
(w/2, h/2). posepile gives 2D examples ``cameravision.Camera.create2D()`` (f = 1 px, principal point (-0.5, -0.5))
and crops them without turning the camera (``util/preproc_for_efficiency.py``): an axis-aligned scaled crop.
posebank's crop turns the camera towards the box, which at f = 1 px would tilt it by nearly 90 degrees; ``focal:
affine`` reproduces posepile's axis-aligned crop with f = 1000 x the image diagonal (the turn is then below a
milliradian: the crop is a scaled cut-out to well under a pixel), principal point (w/2, h/2).

Persons and splits: the training images (``img_train``) hold the annotated persons; the test images have no joints
and are never converted. ``val_persons: json`` makes the persons of the conversion's val file (the validation
persons HRNet and mmpose validate on; pose-hg-train's ``data/mpii/annot/valid.h5`` holds 2958, its first five are
mmpose's sample of the file) the ``val`` split and all other annotated persons ``train``; with the .mat they are
matched by image and ``objpos``/``scale`` (the json's ``center``/``scale``). ``val_persons: none`` has no val split:
every annotated person is ``train``, as posepile's ``make_dataset`` (it converts training images only). ``persons:
single`` keeps only the ``single_person`` rects (posepile's ``make_dataset``); ``all`` every annotated rect
(posepile's ``make_mpii_yolo``, the json files). Left out and counted in ``dropped`` (``<annotation file>#<image>``,
reason naming the person): rects without ``annopoints``, persons without any labelled joint or with fewer than
``min_joints``, joints breaking the format's rules (an id outside 0..15 or twice, non-finite coordinates), persons
without a box (no objpos/scale for the objpos box, labelled joints spanning no area for the keypoint box), and val-
file entries that match no person of the .mat.

Boxes (``box``): ``objpos`` is posepile's ``make_dataset`` rule and mmpose's (``mpii_dataset.py``): the centre is
``objpos`` moved down by ``objpos_shift`` x 200 x scale (0.075: posepile "like [Sun et al. 2018]"; mmpose and HRNet
add 15 px x scale, the same), the box a square of side ``objpos_box_factor`` x 200 x scale (1.0: posepile and
mmpose's dataset, which pads by 1.25 later in ``GetBBoxCenterScale``; HRNet multiplies the scale by 1.25 on
reading). ``keypoints`` is posepile's ``make_mpii_yolo`` ground-truth box: the labelled joints' bounding box grown
by ``keypoint_box_factor`` (1.25) about its centre (``boxlib.expand(boxlib.bb_of_points(coords), 1.25)``); posepile
then replaces it by a matched YOLO detection (IoU > 0.1) and drops persons without one, which the detect stage's
per-dataset rule reproduces when a detector runs.

Head boxes (``x1 y1 x2 y2``, the PCKh normaliser) are read (:class:`.release.Person`) but the cache has no column
for them. Optional EFT pseudo ground truth (``eft``): :mod:`.eft`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from posebank.core.camera import Camera
from posebank.core.errors import DataError, ParamsError
from posebank.core.jpeg import jpeg_size
from posebank.core.settings import check_dataset_params
from posebank.core.skeleton import JointInfo
from posebank.core.store import sha256_file as sha256
from posebank.datasets.base import (
    DatasetInfo,
    Dropped,
    RawFileError,
    RawInstance,
    RawLayoutError,
    check_finite_camera,
)
from posebank.datasets.mpii.converted import read_converted
from posebank.datasets.mpii.eft import HOURGLASS_SHIFT, match, read_eft
from posebank.datasets.mpii.release import N_JOINTS, Person, read_release
from posebank.fetching.resources import Resource

log = logging.getLogger(__name__)

NAME = "mpii"
INFO = DatasetInfo(
    name=NAME,
    full_name="MPII Human Pose",
    homepage="http://human-pose.mpi-inf.mpg.de/",
    licence=("Annotations and code freely available for research purposes under the Simplified BSD licence "
             "(homepage); commercial use is not allowed since the authors do not hold the copyright of the images "
             "(YouTube frames). Download images and annotations from the homepage; no redistribution."),
    citation=("M. Andriluka, L. Pishchulin, P. Gehler, B. Schiele. 2D Human Pose Estimation: New Benchmark and "
              "State of the Art Analysis. CVPR 2014."),
)

# posepile src/posepile/ds/mpii/main.py make_mpii_yolo: the release's joint ids 0..15 in order, and its edges
JOINT_NAMES = "rank,rkne,rhip,lhip,lkne,lank,pelv,thor,neck,head,rwri,relb,rsho,lsho,lelb,lwri"
JOINT_INFO = JointInfo(JOINT_NAMES, "lsho-lelb-lwri,rsho-relb-rwri,lhip-lkne-lank,rhip-rkne-rank,neck-head,pelv-thor")
assert JOINT_INFO.n_joints == N_JOINTS

MAT_FILE = "mpii_human_pose_v1_u12_1.mat"
MAT_PATHS = (MAT_FILE, f"mpii_human_pose_v1_u12_2/{MAT_FILE}")
TRAIN_JSON = ("annot/train.json", "annotations/mpii_train.json")  # HRNet's layout, mmpose's
VAL_JSON = ("annot/valid.json", "annotations/mpii_val.json")
IMAGES = "images"
PIXEL_STD = 200.0  # MPII's scale is the person's height / 200 px
AFFINE_FOCAL_FACTOR = 1000.0
WORLD_UP = (0.0, -1.0, 0.0)
SPLITS = ("train", "val")
# two splits, each cut into equal consecutive parts when large (MPII has no subjects or sequences to cut at)
SHARD_KEY = ("split",)

DEFAULT_PARAMS = {
    "annotations": "auto",
    "splits": list(SPLITS),
    "val_persons": "json",
    "persons": "all",
    "min_joints": 1,
    "box": "objpos",
    "objpos_shift": 0.075,
    "objpos_box_factor": 1.0,
    "keypoint_box_factor": 1.25,
    "matlab_pixels": True,
    "focal": "diagonal",
    "eft": "",
}
CHOICES = {"annotations": ("auto", "mat", "json"), "val_persons": ("json", "none"), "persons": ("all", "single"),
           "box": ("objpos", "keypoints"), "focal": ("diagonal", "affine")}


def check_params(params: dict | None) -> dict:
    """``params`` over DEFAULT_PARAMS, checked; ParamsError names the key. ``eft: null`` reads as ``""`` (none)."""
    if isinstance(params, Mapping) and "eft" in params and params["eft"] is None:
        params = {**params, "eft": ""}
    p = check_dataset_params(NAME, params, DEFAULT_PARAMS)
    for key, allowed in CHOICES.items():
        if p[key] not in allowed:
            raise ParamsError(f"datasets.{NAME}.{key}", f"must be one of {', '.join(allowed)}, got {p[key]!r}")
    bad = [s for s in p["splits"] if s not in SPLITS]
    if bad or not p["splits"] or len(set(p["splits"])) != len(p["splits"]):
        raise ParamsError(f"datasets.{NAME}.splits", f"must be distinct splits of {', '.join(SPLITS)} (MPII's test "
                                                    f"images have no released joints), got {p['splits']}")
    if "val" in p["splits"] and p["val_persons"] == "none":
        raise ParamsError(f"datasets.{NAME}.splits", "val needs val_persons: json (the json conversion's val "
                                                    "persons); with val_persons: none every person is train")
    if not 1 <= p["min_joints"] <= N_JOINTS:
        raise ParamsError(f"datasets.{NAME}.min_joints", f"must be 1..{N_JOINTS}, got {p['min_joints']}")
    for key in ("objpos_box_factor", "keypoint_box_factor"):
        if p[key] <= 0:
            raise ParamsError(f"datasets.{NAME}.{key}", f"must be positive, got {p[key]}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    """The selected splits, train before val."""
    p = check_params(params)
    return tuple(s for s in SPLITS if s in p["splits"])


# ------------------------------------------------------------------------------------------- layout
@dataclasses.dataclass(frozen=True)
class Layout:
    format: str  # "mat" or "json": the annotations read
    mat: str | None  # raw-relative paths of the files read (None: not read)
    train_json: str | None
    val_json: str | None

    @property
    def files(self) -> list[str]:
        return [f for f in (self.mat, self.train_json, self.val_json) if f]


def _first(root: Path, candidates) -> str | None:
    return next((c for c in candidates if (root / c).is_file()), None)


def check_layout(root, params: dict | None = None) -> Layout:
    """Which annotations are read and that the files they need are there (the images each selected person needs
    are checked by :func:`instances`)."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    mat, train_json, val_json = _first(root, MAT_PATHS), _first(root, TRAIN_JSON), _first(root, VAL_JSON)
    fmt = p["annotations"]
    if fmt == "auto":
        if not mat and not train_json and not val_json:
            raise RawLayoutError(NAME, root, f"{MAT_FILE} (or the json conversion {TRAIN_JSON[0]}, "
                                             f"{VAL_JSON[0]})")
        fmt = "mat" if mat else "json"
    missing = []
    if not (root / IMAGES).is_dir():
        missing.append(f"{IMAGES}/")
    if fmt == "mat" and not mat:
        missing.append(f"{MAT_FILE} (annotations: mat)")
    if fmt == "json" and "train" in p["splits"] and not train_json:
        missing.append(f"{TRAIN_JSON[0]} (or {TRAIN_JSON[1]})")
    need_val = p["val_persons"] == "json" and (fmt == "mat" or "val" in p["splits"])
    if need_val and not val_json:
        missing.append(f"{VAL_JSON[0]} (or {VAL_JSON[1]}): the val persons (val_persons: json; none makes every "
                       "person train)")
    if missing:
        raise RawLayoutError(NAME, root, missing)
    if fmt == "json" and p["persons"] == "single":
        raise ParamsError(f"datasets.{NAME}.persons", "'single' needs the release's .mat (single_person): the json "
                                                     "conversion has no such flag")
    return Layout(fmt, mat if fmt == "mat" else None,
                  train_json if fmt == "json" and "train" in p["splits"] else None, val_json if need_val else None)


# ------------------------------------------------------------------------------------------- instances
@dataclasses.dataclass
class _Candidate:
    split: str
    person: Person
    where: str  # the annotation file (raw-relative)
    index: int  # person_index: the rect (json: rank among the image's entries over both files)
    video: str = ""
    activity: str = ""


def _match_val(images, entries: list[Person]) -> tuple[set, list[Person]]:
    """Keys (image index, rect) of the .mat persons that the val file lists, and the entries matching none."""
    by_name = {}
    for img in images:
        if img.train:
            by_name.setdefault(img.name, []).append(img)
    keys, unmatched = set(), []
    for e in entries:
        best = None
        for img in by_name.get(e.image, []):
            for person in img.people:
                key = (img.index, person.rect)
                if key in keys or not np.isfinite(person.objpos).all():
                    continue
                d = float(np.abs(person.objpos - e.objpos).max())
                if d <= 0.5 and abs(person.scale - e.scale) <= 1e-5 * max(1.0, e.scale) and (
                        best is None or d < best[0]):
                    best = (d, key)
        if best is None:
            unmatched.append(e)
        else:
            keys.add(best[1])
    return keys, unmatched


def _candidates(root: Path, p: dict, layout: Layout, dropped: list | None) -> list[_Candidate]:
    out = []
    if layout.format == "mat":
        release = read_release(root / layout.mat)
        val_keys = set()
        if layout.val_json:
            val_keys, unmatched = _match_val(release.images, read_converted(root / layout.val_json))
            for e in unmatched:
                _drop(dropped, layout.val_json, e.image, f"val entry (centre {e.objpos.tolist()}, scale "
                                                         f"{e.scale:g}) matches no person of {layout.mat}")
        for img in release.images:
            if not img.train:
                continue
            for person in img.people:
                if p["persons"] == "single" and person.rect not in img.single_person:
                    continue
                split = "val" if (img.index, person.rect) in val_keys else "train"
                if split in p["splits"]:
                    out.append(_Candidate(split, person, layout.mat, person.rect, img.video, img.activity))
        return out
    seen: dict[str, int] = {}
    for split, rel in (("train", layout.train_json), ("val", layout.val_json)):
        if rel is None or split not in p["splits"]:
            continue
        for person in read_converted(root / rel):
            index = seen.get(person.image, 0)
            seen[person.image] = index + 1
            out.append(_Candidate(split, person, rel, index))
    return out


def _drop(dropped: list | None, where: str, image: str, reason: str) -> None:
    if dropped is not None:
        dropped.append(Dropped(f"{where}#{image}", reason, 1))


def person_box(person: Person, p: dict) -> tuple[np.ndarray | None, str]:
    """The person's box [x, y, w, h] in posebank's pixels (``box`` param), or None and why there is none."""
    off = 1.0 if p["matlab_pixels"] else 0.0
    if p["box"] == "objpos":
        if not (np.isfinite(person.objpos).all() and math.isfinite(person.scale) and person.scale > 0):
            return None, "no objpos/scale (the rough person position): no objpos box"
        size = PIXEL_STD * person.scale
        centre = person.objpos - off + (0.0, p["objpos_shift"] * size)
        side = p["objpos_box_factor"] * size
        return np.array([centre[0] - side / 2, centre[1] - side / 2, side, side]), ""
    pts = person.keypoints[np.isfinite(person.keypoints).all(axis=1)] - off
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    wh = (hi - lo) * p["keypoint_box_factor"]
    if not (wh > 0).all():
        return None, "the labelled joints span no area: no keypoint box"
    centre = (lo + hi) / 2
    return np.concatenate([centre - wh / 2, wh]), ""


def _match_centre(person: Person) -> tuple[np.ndarray, float]:
    """Where EFT's (pose-hg-train's) centre of the person lies, in the file's pixels, and the person's size."""
    if np.isfinite(person.objpos).all() and math.isfinite(person.scale) and person.scale > 0:
        return person.objpos + (0.0, HOURGLASS_SHIFT * person.scale), PIXEL_STD * person.scale
    pts = person.keypoints[np.isfinite(person.keypoints).all(axis=1)]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    return (lo + hi) / 2, float(max((hi - lo).max(), 1.0))


def image_size(path) -> tuple[int, int]:
    """(width, height) of a JPEG from its frame header (read in growing blocks)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 16)
            while True:
                try:
                    return jpeg_size(data, str(path))
                except DataError:
                    more = f.read(len(data))
                    if not more:
                        raise
                    data += more
    except OSError as e:
        raise RawFileError(path, f"unreadable image ({e.strerror or e})") from None
    except DataError as e:
        raise RawFileError(path, e.problem) from None


def image_camera(width: int, height: int, focal: str = "diagonal") -> Camera:
    """The intrinsics-only camera of an image (see the module docstring)."""
    f = math.hypot(width, height) * (AFFINE_FOCAL_FACTOR if focal == "affine" else 1.0)
    k = [[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]]
    return Camera(intrinsic_matrix=k, R=np.eye(3), t=np.zeros(3), world_up=WORLD_UP)


def eft_path(root, value: str) -> Path:
    """The EFT file a param names: absolute, or relative to the raw root."""
    path = Path(value)
    return path if path.is_absolute() else Path(root) / path


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected person, ordered by image name and person index; see the module docstring for what is
    selected, dropped and how boxes, cameras and visibilities are made."""
    p = check_params(params)
    root = Path(root)
    layout = check_layout(root, p)
    log.info("%s: reading the %s annotations (%s)", NAME, layout.format, ", ".join(layout.files))
    off = 1.0 if p["matlab_pixels"] else 0.0
    kept = []
    for c in sorted(_candidates(root, p, layout, dropped), key=lambda c: (c.person.image, c.index, c.split)):
        person = c.person
        problem = person.problem
        if not problem and person.n_labelled == 0:
            problem = "no labelled joint"
        if not problem and person.n_labelled < p["min_joints"]:
            problem = f"{person.n_labelled} labelled joints, fewer than min_joints ({p['min_joints']})"
        box = None
        if not problem:
            box, problem = person_box(person, p)
        if problem:
            _drop(dropped, c.where, person.image, f"person {c.index}: {problem}")
            continue
        kept.append((c, box))
    missing = sorted({f"{IMAGES}/{c.person.image}" for c, _ in kept if not (root / IMAGES / c.person.image).is_file()})
    if missing:
        raise RawLayoutError(NAME, root, missing)
    fits = {}
    if p["eft"]:
        fits = _attach_eft(root, p["eft"], [c.person for c, _ in kept])
    cameras: dict[str, Camera] = {}
    out = []
    for i, (c, box) in enumerate(kept):
        name = c.person.image
        if name not in cameras:
            cameras[name] = image_camera(*image_size(root / IMAGES / name), p["focal"])
            check_finite_camera(cameras[name], root / IMAGES / name)
        stem = Path(name).stem
        out.append(RawInstance(
            source=f"{IMAGES}/{name}", frame_index=int(stem) if stem.isdigit() else -1,
            world_coords=np.full((N_JOINTS, 3), np.nan, np.float32), camera=cameras[name], split=c.split,
            sequence=c.video, activity=c.activity, bbox=box, visibility=c.person.visibility,
            person_index=c.index, keypoints2d=c.person.keypoints - off, intrinsics_only=True,
            body_model=None if i not in fits else fits[i].body_model()))
    return out


def _attach_eft(root: Path, value: str, people: list[Person]) -> dict:
    path = eft_path(root, value)
    if not path.is_file():
        raise RawFileError(path, f"EFT file not found (datasets.{NAME}.eft)")
    fits = read_eft(path)
    by_image: dict[str, list] = {}
    for i, person in enumerate(people):
        centre, size = _match_centre(person)
        by_image.setdefault(person.image, []).append((i, centre, size))
    attached, unmatched = match(fits, by_image)
    log.info("%s: %d of %d EFT fits attached from %s (%d match no converted person)", NAME, len(attached),
             len(fits), path, unmatched)
    return attached


def provenance(root, params: dict | None = None) -> dict:
    """Which annotations were read (format, files and their sha256) and, with ``eft``, the attached fits."""
    p = check_params(params)
    root = Path(root)
    layout = check_layout(root, p)
    out = {"annotations": {"format": layout.format, "files": {f: sha256(root / f) for f in layout.files}}}
    if p["eft"]:
        path = eft_path(root, p["eft"])
        if not path.is_file():
            raise RawFileError(path, f"EFT file not found (datasets.{NAME}.eft)")
        out["body_model"] = {"model": "smpl", "gender": "neutral",
                             "source": "EFT pseudo ground truth (Joo et al. 2021, facebookresearch/eft), matched to "
                                       "persons by centre; translation unknown (zeros)"}
        out["attached"] = [{"kind": "eft", "path": p["eft"], "sha256": sha256(path)}]
    return out


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.mpii.fixture.make_fixture`, which
    takes the ``options``)."""
    from posebank.datasets.mpii.fixture import make_fixture as write

    return write(root, seed, **options)


# ------------------------------------------------------------------------------------------- downloads
# The release's images and annotations (datasets.d2.mpi-inf.mpg.de), with the sizes and sha256 digests that
# tensorflow/datasets publishes in tensorflow_datasets/url_checksums/mpii_human_pose.txt (commit
# dbbaa39761c52e3963440d70954a4f972a70aace). The tar unpacks to images/, the zip to mpii_human_pose_v1_u12_2/
# holding mpii_human_pose_v1_u12_1.mat (check_layout reads it there too).
RESOURCES = (
    Resource(url="https://datasets.d2.mpi-inf.mpg.de/andriluka14cvpr/mpii_human_pose_v1.tar.gz",
             filename="mpii_human_pose_v1.tar.gz", size=12088943206,
             sha256="6d26fbf89f49a7aeff4aa5f98123763f334693806b98eb15630f57a0b50998ce"),
    Resource(url="https://datasets.d2.mpi-inf.mpg.de/andriluka14cvpr/mpii_human_pose_v1_u12_2.zip",
             filename="mpii_human_pose_v1_u12_2.zip", size=12340483,
             sha256="3e8bd6b61d39bc2e2bc5cd33a17b0bd08cd2d06c302f24f552042e53a35bcb76"),
)
RAW_INSTRUCTIONS = """
    The fetch stage downloads MPII's release itself: the images (mpii_human_pose_v1.tar.gz -> images/) and the
    annotations (mpii_human_pose_v1_u12_2.zip -> mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat).
    The val split (val_persons: json, the default) also needs the json conversion's val file, which is not part of
    the release: annot/valid.json as HRNet lays it out (leoxiaobin/deep-high-resolution-net.pytorch, its data
    preparation instructions) or annotations/mpii_val.json as mmpose lays it out (the same persons). Put it into
    the raw folder, or set datasets.mpii.val_persons: none and splits: [train] (every person train, as posepile).
    The optional EFT fits (datasets.mpii.eft, e.g. eft_fit/MPII_ver01.json) come from facebookresearch/eft.
"""
