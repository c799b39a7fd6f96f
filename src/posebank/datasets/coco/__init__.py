"""COCO person keypoints (Lin et al., ECCV 2014): 2D keypoints of people in Flickr photographs, no 3D.

Raw layout, as the release's zips unpack (``annotations_trainval2017.zip``, ``train2017.zip``, ``val2017.zip``;
``year: 2014`` for the 2014 files)::

    root/annotations/person_keypoints_train2017.json   the person annotations of a split (annotations.py)
    root/annotations/person_keypoints_val2017.json
    root/train2017/000000000009.jpg ...                 the images, named as the json's file_name
    root/val2017/000000000139.jpg ...
    root/annotations/person_keypoints_{train,val}2014.json, root/{train,val}2014/COCO_train2014_%012d.jpg  (2014)

Joints: COCO's 17 keypoints in the file's order with posepile's names and edges (posepile
``src/posepile/ds/coco/main.py``). Each selected person becomes one instance of its image (``source`` the image,
``frame_index`` the image id, ``person_index`` the annotation's position among its image's annotations):

* ``keypoints2d`` (17, 2) pixels as annotated (integer pixel indices = posebank's pixel centres), NaN where the
  keypoint is not labelled (v = 0); ``world_coords`` all NaN (no 3D);
* ``visibility``: 1 for v = 2 (labelled, visible), 0 for v = 1 (labelled, not visible), 255 for v = 0 (not
  labelled: unknown);
* ``bbox``: the annotation's box moved by -0.5 px into posebank's pixel convention (COCO's box edges are
  continuous coordinates, its keypoints pixel indices: see annotations.py);
* the person mask: the annotation's segmentation (polygons or RLE, decoded with pycocotools) handed per person
  by :func:`frame_source`;
* ``camera``: intrinsics only (``intrinsics_only``; R = I, t = 0, so the world frame is the camera frame, up -y),
  no distortion. COCO has no calibration. posepile gives its 2D examples an identity-intrinsics "2D camera"
  (``cameravision.Camera.create2D()`` in ``src/posepile/util/preproc_for_efficiency.py``: focal 1 px, principal
  point (-0.5, -0.5)), which carries no perspective; posebank assumes instead ReFit's default focal length
  ``sqrt(w^2 + h^2)`` (yufu-wang/ReFit ``lib/datasets/base_dataset.py`` ``est_focal``), or ``focal_px`` when
  given, and the image centre ``((w - 1) / 2, (h - 1) / 2)`` in posebank's pixel convention
  (``principal_point: pixel_centre``; ``half_size`` gives ReFit's ``est_center`` (w / 2, h / 2));
* ``body_model``: an EFT SMPL fit when ``eft`` names an EFT file (eft.py).

Selection (selection.py): crowd regions are always left out; then ``rule`` ``posepile`` (default: >= 17/3 visible
and >= 17/2 labelled keypoints, a keypoint box of >= 200 px after 1.25x expansion, no other such person
overlapping it by IoU >= 0.1), ``spin`` (all 12 body keypoints labelled) or ``min_keypoints`` (at least
``min_keypoints`` labelled). Every person left out is counted in ``dropped``, one entry per annotation file and
reason. Splits are the annotation files (train, val); COCO's test images have no annotations. Unlike posepile
posebank does not downscale or pre-crop the images here (the crop stage does).
"""

from __future__ import annotations

import logging
from collections import Counter
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
    RawFileError,
    RawInstance,
    RawLayoutError,
    check_finite_camera,
)
from posebank.datasets.coco import eft as eft_io
from posebank.datasets.coco.annotations import (
    N_KEYPOINTS,
    ImageInfo,
    decode_segmentation,
    jpeg_size,
    keypoints2d_array,
    posebank_boxes,
    read_keypoint_file,
    visibility_array,
)
from posebank.datasets.coco.selection import RULES, select_rows
from posebank.fetching.resources import Resource

log = logging.getLogger(__name__)

NAME = "coco"
INFO = DatasetInfo(
    name=NAME,
    full_name="COCO person keypoints",
    homepage="https://cocodataset.org/#keypoints-2017",
    licence=("Annotations: Creative Commons Attribution 4.0 (COCO Consortium terms of use, "
             "https://cocodataset.org/#termsofuse); images: Flickr terms of use, each under its own licence as "
             "listed in the annotation files. EFT fits (optional): CC BY-NC 4.0 (facebookresearch/eft)."),
    citation=("T.-Y. Lin, M. Maire, S. Belongie, J. Hays, P. Perona, D. Ramanan, P. Dollar, C. L. Zitnick. "
              "Microsoft COCO: Common Objects in Context. ECCV 2014."),
)

JOINT_INFO = JointInfo(
    "nose,leye,reye,lear,rear,lsho,rsho,lelb,relb,lwri,rwri,lhip,rhip,lkne,rkne,lank,rank",
    "rsho-relb-rwri,rhip-rkne-rank,nose-reye-rear")
YEARS = (2014, 2017)
SPLITS = ("train", "val")
PRINCIPAL_POINTS = ("pixel_centre", "half_size")
WORLD_UP = (0.0, -1.0, 0.0)  # the camera frame: y points down the image
ANNOTATIONS = "annotations"
# a frame (one image) may show several people: no sequences, cut by split, then into equal parts
SHARD_KEY = ("split",)

DEFAULT_PARAMS = {
    "year": 2017,
    "splits": list(SPLITS),
    "rule": "posepile",
    "min_keypoints": 1,
    "focal_px": 0.0,
    "principal_point": "pixel_centre",
    "eft": "",
    "eft_trans": "perspective",
}
# what the frame source reads: where the images and segmentations are (the masks do not depend on the rule)
FRAME_SOURCE_PARAMS = ("year", "splits")

assert JOINT_INFO.n_joints == N_KEYPOINTS


def annotation_file(split: str, year: int) -> str:
    return f"{ANNOTATIONS}/person_keypoints_{split}{year}.json"


def image_folder(split: str, year: int) -> str:
    return f"{split}{year}"


# ------------------------------------------------------------------------------------------- params
def check_params(params: dict | None) -> dict:
    """``params`` over DEFAULT_PARAMS, checked; ParamsError names the key. ``eft: null`` is read as none."""
    if isinstance(params, dict) and "eft" in params and params["eft"] is None:
        params = {**params, "eft": ""}
    p = check_dataset_params(NAME, params, DEFAULT_PARAMS)
    key = f"datasets.{NAME}"
    if p["year"] not in YEARS:
        raise ParamsError(f"{key}.year", f"must be one of {', '.join(map(str, YEARS))}, got {p['year']}")
    if not p["splits"] or any(s not in SPLITS for s in p["splits"]) or len(set(p["splits"])) != len(p["splits"]):
        raise ParamsError(f"{key}.splits", f"must be distinct splits of {', '.join(SPLITS)} (COCO's test images "
                                           f"have no annotations), got {p['splits']}")
    if p["rule"] not in RULES:
        raise ParamsError(f"{key}.rule", f"must be one of {', '.join(RULES)}, got {p['rule']!r}")
    if p["min_keypoints"] < 1 or p["min_keypoints"] > N_KEYPOINTS:
        raise ParamsError(f"{key}.min_keypoints", f"must be in 1..{N_KEYPOINTS}, got {p['min_keypoints']}")
    if p["focal_px"] < 0:
        raise ParamsError(f"{key}.focal_px", f"must be >= 0 (0: sqrt(w^2 + h^2) per image), got {p['focal_px']}")
    if p["principal_point"] not in PRINCIPAL_POINTS:
        raise ParamsError(f"{key}.principal_point", f"must be one of {', '.join(PRINCIPAL_POINTS)}, got "
                                                    f"{p['principal_point']!r}")
    if p["eft_trans"] not in eft_io.TRANS_MODES:
        raise ParamsError(f"{key}.eft_trans", f"must be one of {', '.join(eft_io.TRANS_MODES)}, got "
                                              f"{p['eft_trans']!r}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    """The selected splits, train before val."""
    p = check_params(params)
    return tuple(s for s in SPLITS if s in p["splits"])


def eft_path(root, p: dict) -> Path | None:
    """The EFT file the params name (a relative path is relative to the raw root), or None."""
    if not p["eft"]:
        return None
    path = Path(p["eft"])
    return path if path.is_absolute() else Path(root) / path


def _shown(path: Path, root: Path) -> str:
    """``path`` relative to the raw root when it lies inside it (as Dropped entries name files)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


# ------------------------------------------------------------------------------------------- layout
def check_layout(root, params: dict | None = None) -> dict[str, tuple[str, str]]:
    """Verify the raw tree: per selected split the annotation file and the image folder (and the EFT file when
    one is named). Returns ``{split: (annotation file, image folder)}`` relative to the root."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    missing, out = [], {}
    for split in splits(p):
        ann, folder = annotation_file(split, p["year"]), image_folder(split, p["year"])
        missing += [f"{ann}"] if not (root / ann).is_file() else []
        missing += [f"{folder}/"] if not (root / folder).is_dir() else []
        out[split] = (ann, folder)
    eft = eft_path(root, p)
    if eft is not None and not eft.is_file():
        missing.append(f"{_shown(eft, root)} (the EFT file named by datasets.{NAME}.eft)")
    if missing:
        raise RawLayoutError(NAME, root, missing)
    return out


# ------------------------------------------------------------------------------------------- cameras
def intrinsics(width: int, height: int, focal_px: float = 0.0, principal_point: str = "pixel_centre") -> np.ndarray:
    """The assumed intrinsic matrix of a ``width`` x ``height`` image (module docstring)."""
    f = float(focal_px) if focal_px > 0 else float(np.hypot(width, height))
    if principal_point == "pixel_centre":
        c = ((width - 1) / 2, (height - 1) / 2)
    elif principal_point == "half_size":
        c = (width / 2, height / 2)
    else:
        raise ValueError(f"unknown principal point rule {principal_point!r}; known: {PRINCIPAL_POINTS}")
    return np.array([[f, 0.0, c[0]], [0.0, f, c[1]], [0.0, 0.0, 1.0]])


def image_camera(image: ImageInfo, p: dict) -> Camera:
    k = intrinsics(image.width, image.height, p["focal_px"], p["principal_point"])
    return Camera(intrinsic_matrix=k, R=np.eye(3), t=np.zeros(3), world_up=WORLD_UP)


# ------------------------------------------------------------------------------------------- instances
def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected person, by split, image file name and annotation order. Persons left out (crowd regions,
    the rule) are appended to ``dropped`` one entry per annotation file and reason, and so are EFT fits that
    match no person (named by the EFT file)."""
    p = check_params(params)
    root = Path(root)
    layout = check_layout(root, p)
    files = {split: read_keypoint_file(root / ann) for split, (ann, _) in layout.items()}
    fits: dict[int, eft_io.EftFit] = {}
    eft = eft_path(root, p)
    if eft is not None:
        eft_file = eft_io.read_eft(eft)
        by_image = {}
        for f in files.values():
            by_image.update(f.by_image())
            by_image.update({i: [] for i in f.images if i not in by_image})
        fits, unmatched = eft_io.match(eft_file.fits, by_image)
        reasons = Counter(reason for _, reason in unmatched)
        off_split = reasons.pop(eft_io.NO_IMAGE, 0)
        if off_split:
            log.info("%s: %d of %d fits are of images outside the selected splits", eft, off_split,
                     len(eft_file.fits))
        for reason, n in sorted(reasons.items()):
            if dropped is not None:
                dropped.append(Dropped(_shown(eft, root), reason, n))
        log.info("%s: %d fits attached", eft, len(fits))
    out, missing = [], []
    for split, f in files.items():
        ann, folder = layout[split]
        groups = dict(f.groups())
        verdicts = select_rows(f.keypoints, f.iscrowd, list(groups.values()), p["rule"], p["min_keypoints"])
        if dropped is not None:
            for reason, n in sorted(Counter(r for r in verdicts if r is not None).items()):
                dropped.append(Dropped(ann, reason, n))
        kp2d, vis, boxes = keypoints2d_array(f.keypoints), visibility_array(f.keypoints), posebank_boxes(f.bbox)
        checked_size = False
        for image in sorted(f.images.values(), key=lambda im: im.file_name):
            rows = groups.get(image.id)
            kept = [] if rows is None else [k for k in range(rows.start, rows.stop) if verdicts[k] is None]
            if not kept:
                continue
            source = f"{folder}/{image.file_name}"
            if not (root / source).is_file():
                missing.append(source)
                continue
            if not checked_size:  # one image per split: resized images would not fit the annotations
                size = jpeg_size(root / source)
                if size != (image.width, image.height):
                    raise RawFileError(root / source, f"image is {size[0]}x{size[1]} but {ann} says "
                                                      f"{image.width}x{image.height} (resized images do not fit "
                                                      "the annotations)")
                checked_size = True
            camera = image_camera(image, p)
            check_finite_camera(camera, root / ann)
            for k in kept:
                fit = fits.get(int(f.ids[k]))
                out.append(RawInstance(
                    source=source, frame_index=image.id, world_coords=np.full((N_KEYPOINTS, 3), np.nan),
                    camera=camera, split=split, bbox=boxes[k], visibility=vis[k], person_index=int(f.index[k]),
                    keypoints2d=kp2d[k], intrinsics_only=True,
                    body_model=None if fit is None else eft_io.body_model_fit(
                        fit, camera.intrinsic_matrix, p["eft_trans"])))
    if missing:
        raise RawLayoutError(NAME, root, missing)
    return out


def provenance(root, params: dict | None = None) -> dict:
    """Where the body-model fits come from, when an EFT file is attached (else nothing)."""
    p = check_params(params)
    path = eft_path(root, p)
    if path is None:
        return {}
    if not path.is_file():
        raise RawLayoutError(NAME, root, f"{_shown(path, Path(root))} (the EFT file named by datasets.{NAME}.eft)")
    eft = eft_io.read_eft(path)
    trans = ("perspective translation equivalent to EFT's weak-perspective camera under the assumed focal length "
             "(approximate)" if p["eft_trans"] == "perspective" else "zeros: camera-frame orientation only")
    return {"body_model": {"model": "smpl", "gender": "neutral", "source": eft.source, "trans": trans},
            "attached": [{"kind": "eft", "path": p["eft"], "sha256": eft_io.sha256(path)}]}


# ------------------------------------------------------------------------------------------- frames
class _Segmentations:
    """The segmentations of the images of the selected annotation files, read on first use."""

    def __init__(self, root: Path, p: dict):
        self.root, self.p = root, p
        self.files: dict[str, dict] = {}  # image folder -> {file name: (image, {index: segmentation}, file)}

    def get(self, source: str):
        folder, _, name = source.partition("/")
        if folder not in self.files:
            for split in splits(self.p):
                if image_folder(split, self.p["year"]) == folder:
                    path = self.root / annotation_file(split, self.p["year"])
                    f = read_keypoint_file(path, segmentation=True)
                    table = {im.file_name: (im, {}, path) for im in f.images.values()}
                    names = {im.id: im.file_name for im in f.images.values()}
                    for k in range(len(f)):
                        if not f.iscrowd[k] and f.segmentations[k] is not None:
                            people = table[names[int(f.image_ids[k])]][1]
                            people[int(f.index[k])] = (f.segmentations[k], f.where(k))
                    self.files[folder] = table
                    break
            else:
                raise RawFileError(self.root / source, f"not an image of the selected splits ({self.p['splits']})")
        entry = self.files[folder].get(name)
        if entry is None:
            raise RawFileError(self.root / source, "not listed in its split's annotation file")
        return entry


def frame_source(raw_root, params: dict | None = None):
    """The images, each with the decoded segmentation of every (non-crowd) person annotated in it, keyed by
    ``person_index``. An image that cannot be read or whose size is not the annotated one is a quarantined
    frame."""
    from posebank.imaging.video import read_image

    raw_root = Path(raw_root)
    segmentations = _Segmentations(raw_root, check_params(params))

    def frames(source: str, indices: Sequence[int]) -> Iterator[tuple[int, Frame]]:
        image_info, people, ann_path = segmentations.get(source)
        wanted = sorted(set(int(i) for i in indices))
        try:
            image = read_image(raw_root / source)
        except FrameReadError as e:
            for i in wanted:
                yield i, Frame(None, problem=e.problem)
            return
        if image.shape[1::-1] != (image_info.width, image_info.height):
            problem = (f"image is {image.shape[1]}x{image.shape[0]}, the annotations say {image_info.width}x"
                       f"{image_info.height}")
            for i in wanted:
                yield i, Frame(None, problem=problem)
            return
        masks = {}
        for index, (seg, where) in people.items():
            m = decode_segmentation(seg, image_info.height, image_info.width, ann_path, where)
            if m is not None:
                masks[index] = m
        for i in wanted:
            yield i, Frame(image, masks=masks)

    return frames


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.coco.fixture.make_fixture`, which
    takes the ``options``)."""
    from posebank.datasets.coco.fixture import make_fixture as write

    return write(root, seed, **options)


# ------------------------------------------------------------------------------------------- downloads
# The release's zips (images.cocodataset.org), with the sizes and sha256 digests that tensorflow/datasets publishes:
# tensorflow_datasets/url_checksums/coco2017.txt (commit 2282548bab4888cabcdca563e3ed01370e7a9bdc; the 2017 files)
# and tensorflow_datasets/url_checksums/coco.txt (commit 333639b37af6c6fedf3610a4a2d42f1c6ef6f7d5; the 2014 files,
# and the same 2017 values). Each zip unpacks into the raw layout as it is: annotations/, train<year>/, val<year>/.
_ZIPS = {
    ("annotations", 2017): Resource(
        url="http://images.cocodataset.org/annotations/annotations_trainval2017.zip",
        filename="annotations_trainval2017.zip", size=252907541,
        sha256="113a836d90195ee1f884e704da6304dfaaecff1f023f49b6ca93c4aaae470268"),
    ("train", 2017): Resource(
        url="http://images.cocodataset.org/zips/train2017.zip", filename="train2017.zip", size=19336861798,
        sha256="69a8bb58ea5f8f99d24875f21416de2e9ded3178e903f1f7603e283b9e06d929"),
    ("val", 2017): Resource(
        url="http://images.cocodataset.org/zips/val2017.zip", filename="val2017.zip", size=815585330,
        sha256="4f7e2ccb2866ec5041993c9cf2a952bbed69647b115d0f74da7ce8f4bef82f05"),
    ("annotations", 2014): Resource(
        url="http://images.cocodataset.org/annotations/annotations_trainval2014.zip",
        filename="annotations_trainval2014.zip", size=252872794,
        sha256="031296bbc80c45a1d1f76bf9a90ead27e94e99ec629208449507a4917a3bf009"),
    ("train", 2014): Resource(
        url="http://images.cocodataset.org/zips/train2014.zip", filename="train2014.zip", size=13510573713,
        sha256="ede4087e640bddba550e090eae701092534b554b42b05ac33f0300b984b31775"),
    ("val", 2014): Resource(
        url="http://images.cocodataset.org/zips/val2014.zip", filename="val2014.zip", size=6645013297,
        sha256="fe9be816052049c34717e077d9e34aa60814a55679f804cd043e3cbee3b9fde0"),
}


def _resources(params: dict | None) -> tuple[Resource, ...]:
    """The zips the params need: the year's annotations and the image zip of each selected split."""
    p = check_params(params)
    return (_ZIPS["annotations", p["year"]], *(_ZIPS[split, p["year"]] for split in splits(p)))


RESOURCES = _resources  # the fetch stage's direct downloads (posebank.fetching.resources)
RAW_INSTRUCTIONS = """
    The fetch stage downloads COCO's zips itself (annotations_trainval<year>.zip and the image zips of the
    selected splits, <split><year>.zip, from images.cocodataset.org) and unpacks them into the raw folder:
        annotations/person_keypoints_{train,val}<year>.json
        train<year>/*.jpg, val<year>/*.jpg
    The optional EFT fits (datasets.coco.eft, e.g. eft/COCO2014-All-ver01.json) are not part of the release: get
    them from facebookresearch/eft (its download script for the fitting data) and put the file where eft names it
    (relative to the raw folder, or an absolute path).
"""
