"""HSPACE (Bazavan et al., 2021): synthetic GHUM humans animated in rendered indoor and outdoor scenes.

Raw layout, as ``gsutil cp -r gs://hspace_public/2021_01`` fetches it (posepile ``ds/hspace/main.sh``; only the
training part is read, as posepile reads it)::

    root/2021_01/train/<name>.tfrecord      TFRecord files of tf.train.Example records, one record per frame

Record fields (those posepile ``ds/hspace/main.py`` reads; the release documents them only in its data card and
notebook, which are not public): ``image/rgb`` (bytes: the encoded frame), ``camera_intrinsics`` (float: fx, fy,
cx, cy), ``number_of_rigged_characters`` (int64), per character ``i``: ``RIGGED_<i>/joints_3d`` (float: the 63
GHUM joints x, y, z in metres in the camera frame) and ``RIGGED_<i>/mask_id`` (int64), and ``character_masks``
(bytes: a PNG of per-pixel character labels, 0 = no character). The files are read without TensorFlow
(:mod:`posebank.datasets.hspace.tfrecord`: the TFRecord framing with both CRC-32C checks, the protobuf wire format
of ``tf.train.Example``); a corrupt record is a :class:`RawFileError` naming the file and the record's index.

Conversion as posepile: the joints x 1000 (mm), 35 of the 63 (``ghum_35``: posepile's selection, names and
edges); the camera is intrinsics only (world = camera frame, R = I, t = 0, no distortion), world up -y. Per
TFRecord file one pose sampler (posepile's ``AdaptivePoseSampler2(100, True, True, 20)``,
:class:`~posebank.datasets.sampling.AdaptivePoseSampler2`) is shared by all characters of all its records, in
record then character order; a character's pose is kept
when it moved >= 100 mm relative to each of the 20 last kept poses (of any character). A kept character's box is
the bounding rectangle of its label mask (the pixels labelled ``mask_id`` or ``mask_id - 1``) after an erosion
(once) and a dilation (twice) with a 4 x 4 rectangle, as posepile; characters whose box has a side below 100 px
are left out (recorded in ``dropped``). The mask handed with each example is the union of all characters
(``labels > 0``, the same erosion and dilation), as posepile's; ``mask: person`` gives the character's own.
Every example is TRAIN.

Frames: :func:`frame_source` reads ``image/rgb`` of the wanted records from the TFRecord file and decodes it to
BGR (posebank's frame convention), with the masks.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from posebank.core.camera import Camera
from posebank.core.errors import ParamsError
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
from posebank.datasets.hspace.tfrecord import WireError, parse_example, read_records
from posebank.datasets.sampling import AdaptivePoseSampler2, record_drop

NAME = "hspace"
INFO = DatasetInfo(
    name=NAME,
    full_name="HSPACE (Human-SPACE: synthetic GHUM humans in complex environments)",
    homepage="https://github.com/google-research/google-research/tree/master/hspace",
    licence=("Research use in accordance with the Google AI Principles (https://ai.google/principles/); access "
             "by request form (see the homepage), data at https://storage.cloud.google.com/hspace_public."),
    citation=("E. G. Bazavan, A. Zanfir, M. Zanfir, W. T. Freeman, R. Sukthankar, C. Sminchisescu. HSPACE: "
              "Synthetic Parametric Humans Animated in Complex Environments. arXiv:2112.12867, 2021."),
)

RELEASE = "2021_01"
TRAIN_DIR = f"{RELEASE}/train"
SPLITS = ("train",)
M_TO_MM = 1000.0
WORLD_UP = (0.0, -1.0, 0.0)  # posepile get_camera
N_GHUM_JOINTS = 63

# posepile make_joint_info: the 63 GHUM joints of joints_3d, in the record's order
GHUM_JOINTS = (
    "pelv,spin1,spin2,spin3,neck,head,head2,lbrow1,lbrow2,rbrow1,rbrow2,lbrow3,rbrow3,lcla,lsho,lelb,lwri,lindex1,"
    "lindex2,lindex3,lmiddle1,lmiddle2,lmiddle3,lring1,lring2,lring3,lpinkie1,lpinkie2,lpinkie3,lthu1,lthu2,lthu,"
    "rcla,rsho,relb,rwri,rindex1,rindex2,rindex3,rmiddle1,rmiddle2,rmiddle3,rring1,rring2,rring3,rpinkie1,"
    "rpinkie2,rpinkie3,rthu1,rthu2,rthu,lhip,lkne,lank,lhee,lfoo,ltoe,rhip,rkne,rank,rhee,rfoo,rtoe").split(",")
# posepile's selection (ghum_35), in its order
JOINT_NAMES = ("pelv,spin1,spin2,spin3,neck,head,head2,lbrow1,rbrow1,lcla,lsho,lelb,lwri,lmiddle1,lmiddle3,lthu,"
               "rcla,rsho,relb,rwri,rmiddle1,rmiddle3,rthu,lhip,lkne,lank,lhee,lfoo,ltoe,rhip,rkne,rank,rhee,rfoo,"
               "rtoe")
SELECTED_JOINTS = tuple(GHUM_JOINTS.index(n) for n in JOINT_NAMES.split(","))
# posepile's edges ("rthu-rwri-relb-rsho-rcla-spin3,leye1-nose-head-neck-...-rtoe", mirrored) restricted to the
# selected joints, as its select_joints leaves them (leye1 and nose are not GHUM joint names)
JOINT_INFO = JointInfo(JOINT_NAMES, "rthu-rwri-relb-rsho-rcla-spin3,"
                                    "head-neck-spin3-spin2-spin1-pelv-rhip-rkne-rank-rhee-rfoo-rtoe")

MASKS = ("all", "person")
DEFAULT_PARAMS = {
    "splits": list(SPLITS),
    "files": [],  # TFRecord file stems of 2021_01/train; [] = every *.tfrecord there (posepile)
    "adaptive_sampling_mm": 100.0,  # posepile AdaptivePoseSampler2(100, ...) per file; 0 = off
    "sampler_buffer": 20,  # ... compared with the 20 last kept poses
    "morphology_px": 4,  # erode once, dilate twice with a square of this side (posepile 4 x 4)
    "min_box_side_px": 100.0,  # characters whose mask box has a shorter side are left out (posepile 100)
    "mask": "all",  # the mask stored with each example: all characters (posepile) or the character's own
}
FRAME_SOURCE_PARAMS = ("morphology_px", "mask")
SHARD_KEY = ("sequence",)

SMALL_BOX = "mask box side below min_box_side_px"
MISSING_POSE = "every joint is missing (NaN) in the annotation"


# ------------------------------------------------------------------------------------------- params, layout
def check_params(params: dict | None) -> dict:
    p = check_dataset_params(NAME, params, DEFAULT_PARAMS)
    if p["splits"] != ["train"]:
        raise ParamsError(f"datasets.{NAME}.splits", f"HSPACE is converted as train only, got {p['splits']}")
    if len(set(p["files"])) != len(p["files"]) or not all(isinstance(f, str) and f for f in p["files"]):
        raise ParamsError(f"datasets.{NAME}.files", f"must be distinct non-empty file stems, got {p['files']}")
    if p["adaptive_sampling_mm"] < 0:
        raise ParamsError(f"datasets.{NAME}.adaptive_sampling_mm",
                          f"must be >= 0 (0 = off), got {p['adaptive_sampling_mm']}")
    if p["sampler_buffer"] < 1:
        raise ParamsError(f"datasets.{NAME}.sampler_buffer", f"must be >= 1, got {p['sampler_buffer']}")
    if p["morphology_px"] < 1:
        raise ParamsError(f"datasets.{NAME}.morphology_px", f"must be >= 1, got {p['morphology_px']}")
    if p["min_box_side_px"] < 0:
        raise ParamsError(f"datasets.{NAME}.min_box_side_px", f"must be >= 0, got {p['min_box_side_px']}")
    if p["mask"] not in MASKS:
        raise ParamsError(f"datasets.{NAME}.mask", f"must be one of {', '.join(MASKS)}, got {p['mask']!r}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    check_params(params)
    return SPLITS


def check_layout(root, params: dict | None = None) -> list[str]:
    """The selected TFRecord files (relative paths, sorted); RawLayoutError naming what is missing."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    if not (root / TRAIN_DIR).is_dir():
        raise RawLayoutError(NAME, root, [f"{TRAIN_DIR}/"])
    if p["files"]:
        missing = [f"{TRAIN_DIR}/{s}.tfrecord" for s in p["files"]
                   if not (root / TRAIN_DIR / f"{s}.tfrecord").is_file()]
        if missing:
            raise RawLayoutError(NAME, root, missing)
        return sorted(f"{TRAIN_DIR}/{s}.tfrecord" for s in p["files"])
    files = sorted(f"{TRAIN_DIR}/{f.name}" for f in (root / TRAIN_DIR).iterdir() if f.suffix == ".tfrecord")
    if not files:
        raise RawLayoutError(NAME, root, [f"{TRAIN_DIR}/<name>.tfrecord (no TFRecord files)"])
    return files


# ------------------------------------------------------------------------------------------- records
@dataclasses.dataclass
class Record:
    """The fields of one frame's tf.train.Example that the conversion reads."""

    features: dict
    path: Path
    index: int

    def _get(self, key: str, kind: str):
        value = self.features.get(key)
        expected = {"bytes": list, "float": np.ndarray, "int": np.ndarray}[kind]
        ok = isinstance(value, expected) and (kind == "bytes" or value.dtype.kind == kind[0])
        if not ok or not len(value):
            found = "missing" if key not in self.features else "of another type or empty"
            raise RawFileError(self.path, f"record {self.index}: feature {key!r} is {found} (expected a {kind} "
                                          "list)")
        return value

    @property
    def n_people(self) -> int:
        n = int(self._get("number_of_rigged_characters", "int")[0])
        if n < 0:
            raise RawFileError(self.path, f"record {self.index}: number_of_rigged_characters is {n}")
        return n

    def joints(self, person: int) -> np.ndarray:
        """(63, 3) the GHUM joints of character ``person``, mm in the camera frame."""
        values = self._get(f"RIGGED_{person}/joints_3d", "float")
        if values.size != N_GHUM_JOINTS * 3:
            raise RawFileError(self.path, f"record {self.index}: RIGGED_{person}/joints_3d has {values.size} "
                                          f"values, expected {N_GHUM_JOINTS} x 3")
        return values.reshape(N_GHUM_JOINTS, 3).astype(np.float64) * M_TO_MM

    def mask_id(self, person: int) -> int:
        return int(self._get(f"RIGGED_{person}/mask_id", "int")[0])

    def camera(self) -> Camera:
        values = self._get("camera_intrinsics", "float")
        if values.size != 4:
            raise RawFileError(self.path, f"record {self.index}: camera_intrinsics has {values.size} values, "
                                          "expected fx fy cx cy")
        fx, fy, cx, cy = (float(v) for v in values)
        camera = Camera(intrinsic_matrix=[[fx, 0, cx], [0, fy, cy], [0, 0, 1]], R=np.eye(3), t=np.zeros(3),
                        world_up=WORLD_UP)
        check_finite_camera(camera, f"{self.path} record {self.index}")
        return camera

    def labels(self) -> np.ndarray:
        """The character label image (2D integer array)."""
        data = self._get("character_masks", "bytes")[0]
        labels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if labels is None:
            raise RawFileError(self.path, f"record {self.index}: character_masks does not decode")
        if labels.ndim == 3:
            labels = labels[..., 0]
        return labels

    def image(self) -> np.ndarray | None:
        """The frame as BGR uint8 (None when ``image/rgb`` does not decode)."""
        data = self._get("image/rgb", "bytes")[0]
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def records(path) -> Iterator[Record]:
    """The records of one TFRecord file, in order."""
    path = Path(path)
    for index, data in read_records(path):
        try:
            features = parse_example(data)
        except (WireError, UnicodeDecodeError) as e:
            raise RawFileError(path, f"record {index}: not a tf.train.Example ({e})") from None
        yield Record(features, path, index)


@functools.lru_cache(maxsize=8)
def _element(side: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_RECT, (side, side))


def clean_mask(mask: np.ndarray, side: int) -> np.ndarray:
    """posepile's process_mask_morphological: erode once, dilate twice (uint8 0/255 in, uint8 out)."""
    element = _element(side)
    return cv2.dilate(cv2.erode(mask, element, iterations=1), element, iterations=2)


def person_mask(labels: np.ndarray, mask_id: int, side: int) -> np.ndarray:
    """uint8 0/255: the pixels labelled ``mask_id`` or ``mask_id - 1`` (posepile), never the background 0."""
    ids = [i for i in (mask_id, mask_id - 1) if i != 0]
    return clean_mask((np.isin(labels, ids)).astype(np.uint8) * 255, side)


def all_mask(labels: np.ndarray, side: int) -> np.ndarray:
    return clean_mask((labels > 0).astype(np.uint8) * 255, side)


def mask_box(mask: np.ndarray) -> np.ndarray:
    """[x, y, w, h] of cv2.boundingRect in posebank's pixel convention (pixel column x spans x - 0.5 .. x + 0.5)."""
    x, y, w, h = cv2.boundingRect(mask)
    return np.array([x - 0.5, y - 0.5, w, h], np.float64)


# ------------------------------------------------------------------------------------------- sampling
def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected character instance, ordered by file, record and character."""
    p = check_params(params)
    root = Path(root)
    out = []
    for rel in check_layout(root, p):
        stem = Path(rel).stem
        sampler = AdaptivePoseSampler2(p["adaptive_sampling_mm"], p["sampler_buffer"])
        small, missing = [], []
        for rec in records(root / rel):
            poses = [rec.joints(i)[list(SELECTED_JOINTS)] for i in range(rec.n_people)]
            if p["adaptive_sampling_mm"] > 0:
                keep = [sampler.should_keep(pose) for pose in poses]  # every character updates the sampler
            else:
                keep = [bool(np.isfinite(pose).all(axis=-1).any()) for pose in poses]
            missing += [rec.index for pose in poses if not np.isfinite(pose).all(axis=-1).any()]
            if not any(keep):
                continue
            labels = rec.labels()
            camera = rec.camera()
            for i, (pose, kept) in enumerate(zip(poses, keep)):
                if not kept:
                    continue
                box = mask_box(person_mask(labels, rec.mask_id(i), p["morphology_px"]))
                if min(box[2], box[3]) < p["min_box_side_px"]:
                    small.append(rec.index)
                    continue
                out.append(RawInstance(
                    source=rel, frame_index=rec.index, world_coords=pose, camera=camera, split="train",
                    subject=f"{stem}/RIGGED_{i}", sequence=stem, bbox=box, person_index=i))
        record_drop(dropped, rel, missing, MISSING_POSE)
        record_drop(dropped, rel, small, SMALL_BOX)
    return out


# ------------------------------------------------------------------------------------------- frames
def frame_source(raw_root, params: dict | None = None) -> FrameSource:
    """The frames of the wanted records of a TFRecord file (``image/rgb`` decoded to BGR), each with the mask of
    every character (``mask: all``: the union of all characters, as posepile; ``person``: its own)."""
    p = check_params(params)
    raw_root = Path(raw_root)

    def frames(source: str, indices: Sequence[int]) -> Iterator[tuple[int, Frame]]:
        wanted = sorted(set(int(i) for i in indices))
        if not wanted:
            return
        pending = set(wanted)
        for rec in records(raw_root / source):
            if rec.index not in pending:
                continue
            pending.discard(rec.index)
            image = rec.image()
            if image is None:
                yield rec.index, Frame(None, problem="image/rgb does not decode")
            else:
                labels = rec.labels()
                if labels.shape != image.shape[:2]:
                    raise RawFileError(raw_root / source, f"record {rec.index}: character_masks is "
                                                          f"{labels.shape[1]}x{labels.shape[0]}, the image "
                                                          f"{image.shape[1]}x{image.shape[0]}")
                if p["mask"] == "all":
                    union = all_mask(labels, p["morphology_px"]) > 0
                    masks = {i: union for i in range(rec.n_people)}
                else:
                    masks = {i: person_mask(labels, rec.mask_id(i), p["morphology_px"]) > 0
                             for i in range(rec.n_people)}
                yield rec.index, Frame(image, masks=masks)
            if not pending:
                return
        for i in sorted(pending):
            yield i, Frame(None, problem="no such record in the TFRecord file")

    return frames


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.hspace.fixture.make_fixture`, which
    takes the ``options``)."""
    from posebank.datasets.hspace.fixture import make_fixture as write

    return write(root, seed, **options)


RAW_INSTRUCTIONS = """
    HSPACE: request access with the form linked from the dataset's homepage,
    https://github.com/google-research/google-research/tree/master/hspace; once granted, copy the release with
    gsutil (gsutil -m cp -r gs://hspace_public/2021_01 .) into the raw folder, so that it holds
        2021_01/train/<name>.tfrecord ...
"""
