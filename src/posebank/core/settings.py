"""Typed settings: the one definition of every knob of params.yaml outside ``datasets:``.

Each section of params.yaml is a frozen dataclass here: the field's type and default, its allowed values
(``Literal``) and its range checks (``check()``). ``section(cls, mapping, key)`` turns a mapping into the
dataclass, naming the key of anything unknown, wrongly typed or out of range (:class:`ParamsError`).
:func:`check_params` checks a whole params.yaml; :func:`check_dataset_params` checks a dataset's entry against
its module's ``DEFAULT_PARAMS`` (types follow the defaults). Stage code reads settings, never raw dicts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from posebank.core.errors import ParamsError

# params.yaml keys of a dataset entry that belong to the pipeline, not to the dataset's converter
PIPELINE_DATASET_KEYS = ("raw", "family")


# ------------------------------------------------------------------------------------------- checking
def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        plural = {int: "integers", float: "numbers", str: "strings", bool: "true/false values"}
        return f"a list of {plural.get(args[0], _type_name(args[0]))}" if args else "a list"
    if tp is list:
        return "a list"
    if origin is dict:
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            type(None): "null"}.get(tp, str(tp))


def _coerce(value, tp, key: str):
    """``value`` as type ``tp`` (the field's annotation); ParamsError naming ``key`` if it is not one."""
    origin = typing.get_origin(tp)
    bad = ParamsError(key, f"{value!r} is not {_type_name(tp)}")
    if origin is Literal:
        if value not in typing.get_args(tp) or isinstance(value, bool) != isinstance(typing.get_args(tp)[0], bool):
            raise bad
        return value
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg, key)
            except ParamsError:
                continue
        raise bad
    if tp is type(None):
        if value is not None:
            raise bad
        return None
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise bad
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ParamsError(key, f"{value!r} is not a list of {len(args)} values")
            return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else typing.Any
        out = [v if item is typing.Any else _coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, Mapping):
            raise bad
        kt, vt = typing.get_args(tp) or (typing.Any, typing.Any)
        return {(_coerce(k, kt, key) if kt is not typing.Any else k):
                (_coerce(v, vt, f"{key}.{k}") if vt is not typing.Any else v) for k, v in value.items()}
    return value


def section(cls, mapping, key: str):
    """The settings dataclass ``cls`` from the params.yaml section ``key`` (``mapping``; None = all defaults)."""
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, Mapping):
        raise ParamsError(key, f"must be a mapping of settings, got {mapping!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        raise ParamsError(f"{key}.{unknown[0]}", f"unknown setting; known: {', '.join(fields)}")
    values = {name: _coerce(v, hints[name], f"{key}.{name}") for name, v in mapping.items()}
    try:
        return cls(**values)
    except ParamsError as e:
        if e.where and not e.where.startswith(key + "."):
            raise ParamsError(f"{key}.{e.where}", e.problem) from None
        raise


class Section:
    """Base of the settings dataclasses: every field is type-checked (and coerced: ints to floats, lists to
    tuples) on construction, then ``check()`` tests ranges and combinations."""

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _coerce(getattr(self, f.name), hints[f.name], f.name))
        self.check()

    def check(self) -> None:
        pass

    @classmethod
    def from_dict(cls, d: Mapping | None):
        return section(cls, d, SECTION_KEYS[cls])


def require(cond: bool, name: str, problem: str) -> None:
    """For ``check()`` range checks: ParamsError on field ``name`` (the section is prefixed by section())."""
    if not cond:
        raise ParamsError(name, problem)


def _infer_type(default):
    if isinstance(default, bool):
        return bool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    if isinstance(default, str):
        return str
    if isinstance(default, (list, tuple)):
        kinds = {_infer_type(v) for v in default}
        if len(kinds) == 1:
            return list[kinds.pop()]
        return list
    if isinstance(default, Mapping):
        return dict
    return typing.Any


def check_dataset_params(dataset: str, given: Mapping | None, defaults: Mapping) -> dict:
    """A dataset's params.yaml entry (without its pipeline keys) over the module's ``DEFAULT_PARAMS``; unknown keys
    and values of another type than the default's are a ParamsError naming ``datasets.<dataset>.<key>``."""
    if given is not None and not isinstance(given, Mapping):
        raise ParamsError(f"datasets.{dataset}", f"must be a mapping of settings, got {given!r}")
    given = {k: v for k, v in dict(given or {}).items() if k not in PIPELINE_DATASET_KEYS}
    out = dict(defaults)
    for k, v in given.items():
        where = f"datasets.{dataset}.{k}"
        if k not in defaults:
            raise ParamsError(where, f"unknown setting; known: {', '.join(defaults)}")
        tp = _infer_type(defaults[k])
        if tp is list:
            if not isinstance(v, (list, tuple)):
                raise ParamsError(where, f"{v!r} is not a list")
            out[k] = list(v)
        elif tp is typing.Any or (defaults[k] is None):
            out[k] = v
        else:
            out[k] = _coerce(v, tp, where)
    return out


# ------------------------------------------------------------------------------------------- sections
@dataclasses.dataclass(frozen=True)
class PipelineParams(Section):
    """Where products go and how work is split."""

    shard_frames: int = 4096  # at most this many frames per shard (also the work lost when a stage is killed)
    shard_mb: float = 1024.0  # target size of a cache shard (MB), estimated as instances x example_kb
    example_kb: float = 100.0  # estimated size of one example in the cache (KB): the crop JPEG dominates
    interim: str = "data/interim"  # <interim>/<dataset>/: records, frame/box/mask shards
    cache: str = "data/cache"  # <cache>/<dataset>/: the final caches (shards + index.json)
    reports: str = "reports"  # <reports>/validation/<dataset>.json, contact/, data_docs/
    expectations: str = "expectations"  # the Great Expectations project (committed suites)
    merged: str = "data/merged"  # <merged>/<merge>.h5: the merged datasets (huge8, medium3, small5)
    exports: str = "data/exports"  # <exports>/<export>/: exports for training code (params.yaml exports:)
    # an instance the converter cannot keep as it is (infinite joints, a camera with a non-positive focal length or
    # a non-orthonormal rotation, a second instance of one person in one frame): error (stop, naming its file) or
    # quarantine (drop it with the reason, counted); infinite joints are always dropped
    bad_instances: Literal["error", "quarantine"] = "error"

    def check(self) -> None:
        require(self.shard_frames >= 1, "shard_frames", f"must be at least 1, got {self.shard_frames}")
        require(self.shard_mb > 0, "shard_mb", f"must be positive, got {self.shard_mb}")
        require(self.example_kb > 0, "example_kb", f"must be positive, got {self.example_kb}")
        for name in ("interim", "cache", "reports", "expectations", "merged", "exports"):
            require(bool(getattr(self, name)), name, "must be a non-empty path")


@dataclasses.dataclass(frozen=True)
class FetchParams(Section):
    """fetch@<dataset>: where downloads go and how they are retried and unpacked (docs/fetching.md)."""

    downloads: str = "data/downloads"  # <downloads>/<family>/<file>: the downloaded files (.part while incomplete)
    retries: int = 3  # retries of a download after a connection error, a timeout or a 5xx answer (backoff 2, 4, 8 s)
    timeout_s: float = 60.0  # seconds without an answer or a byte before a connection counts as failed
    max_extract_gb: float = 2000.0  # an archive unpacking to more than this many GB (10^9 bytes) is refused
    max_members: int = 5_000_000  # an archive with more members (files and folders) than this is refused

    def check(self) -> None:
        require(bool(self.downloads), "downloads", "must be a non-empty path")
        require(self.retries >= 0, "retries", f"must be at least 0, got {self.retries}")
        require(self.timeout_s > 0, "timeout_s", f"must be positive, got {self.timeout_s}")
        require(self.max_extract_gb > 0, "max_extract_gb", f"must be positive, got {self.max_extract_gb}")
        require(self.max_members >= 1, "max_members", f"must be at least 1, got {self.max_members}")

    @property
    def max_extract_bytes(self) -> int:
        return int(self.max_extract_gb * 1e9)


@dataclasses.dataclass(frozen=True)
class FramesParams(Section):
    jpeg_quality: int = 95  # quality of the stored full frames

    def check(self) -> None:
        require(1 <= self.jpeg_quality <= 100, "jpeg_quality", f"must be in 1..100, got {self.jpeg_quality}")


DETECT_MODELS = {  # torchvision builder name -> number of classes of its COCO checkpoints (person is class 1)
    "fasterrcnn_resnet50_fpn": 91,
    "fasterrcnn_mobilenet_v3_large_fpn": 91,
    "fasterrcnn_mobilenet_v3_large_320_fpn": 91,
    "keypointrcnn_resnet50_fpn": 2,
}


@dataclasses.dataclass(frozen=True)
class DetectParams(Section):
    backend: Literal["projected", "hog", "torchvision"] = "projected"
    expansion: float = 1.15  # projected box = tight box of the projected joints scaled by this about its centre
    weights: str | None = None  # torchvision checkpoint (state_dict, or a dict holding it under model/state_dict)
    model: Literal["fasterrcnn_resnet50_fpn", "fasterrcnn_mobilenet_v3_large_fpn",
                   "fasterrcnn_mobilenet_v3_large_320_fpn", "keypointrcnn_resnet50_fpn"] = "fasterrcnn_resnet50_fpn"
    score_threshold: float = 0.2  # only detections scoring above this are kept (posepile: 0.2)
    nms_iou: float = 0.7  # non-maximum suppression IoU (posepile: 0.7)
    max_detections: int = 100  # per image, before the person filter (torchvision's default)
    batch_size: int = 8  # images per forward pass (torchvision)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    rule: Literal["match", "hull"] = "match"  # match: Hungarian matching; hull: best detection united with GT box
    min_match_iou: float = 0.1  # match: a matched detection is used only when IoU > this
    max_area_ratio: float | None = 2.0  # match: ... and its area < this x the projected box's (null: no limit)
    min_detection_side: float = 0.0  # match: ... and its longer side > this many px (posepile jta: 100)
    hull_min_iou: float = 0.5  # hull: the hull is used only when its IoU with the projected box > this
    # no detection accepted: keep the projected box | drop the person | drop it unless the frame has no detection
    # at all (then the projected box, as posepile's ikea)
    fallback: Literal["projected", "drop", "undetected"] = "projected"
    hog_win_stride: int = 8  # hog: window step in pixels
    hog_scale: float = 1.05  # hog: image pyramid factor
    hog_box_scale: tuple[float, float] = (0.5, 0.75)  # hog: person part (w, h) of the 64x128 window; 1 1 = raw
    # per-dataset overrides of the settings above, as posepile's converters use different box rules per dataset
    per_dataset: dict[str, dict] = dataclasses.field(default_factory=dict)

    def for_dataset(self, name: str) -> DetectParams:
        """The settings that apply to dataset ``name`` (its ``per_dataset`` overrides applied)."""
        return dataclasses.replace(self, per_dataset={}, **self.per_dataset.get(name, {}))

    def check(self) -> None:
        for name, over in self.per_dataset.items():
            if not isinstance(over, Mapping):
                raise ParamsError(f"per_dataset.{name}", f"must be a mapping of detect settings, got {over!r}")
            fields = [f.name for f in dataclasses.fields(self) if f.name != "per_dataset"]
            unknown = sorted(set(over) - set(fields))
            if unknown:
                raise ParamsError(f"per_dataset.{name}.{unknown[0]}", f"unknown setting; known: {', '.join(fields)}")
            try:
                section(DetectParams, {**{f: getattr(self, f) for f in fields}, **over}, "x")
            except ParamsError as e:
                raise ParamsError(f"per_dataset.{name}.{e.where.split('.', 1)[1]}", e.problem) from None
        require(self.backend != "torchvision" or bool(self.weights), "weights",
                f"the torchvision backend needs `weights`, the path of a {self.model} checkpoint "
                "(posebank never downloads one; docs/models.md)")
        require(self.expansion > 0, "expansion", f"must be positive, got {self.expansion}")
        require(self.min_detection_side >= 0, "min_detection_side",
                f"must not be negative, got {self.min_detection_side}")
        require(0 <= self.score_threshold <= 1, "score_threshold", f"must be in [0, 1], got {self.score_threshold}")
        require(0 < self.nms_iou <= 1, "nms_iou", f"must be in (0, 1], got {self.nms_iou}")
        for name in ("batch_size", "max_detections", "hog_win_stride"):
            require(getattr(self, name) >= 1, name, f"must be at least 1, got {getattr(self, name)}")
        require(0 <= self.min_match_iou < 1, "min_match_iou", f"must be in [0, 1), got {self.min_match_iou}")
        require(self.max_area_ratio is None or self.max_area_ratio > 0, "max_area_ratio",
                f"must be positive or null, got {self.max_area_ratio}")
        require(0 <= self.hull_min_iou < 1, "hull_min_iou", f"must be in [0, 1), got {self.hull_min_iou}")
        require(all(0 < s <= 1 for s in self.hog_box_scale), "hog_box_scale",
                f"must be in (0, 1], got {list(self.hog_box_scale)}")
        require(self.hog_scale > 1, "hog_scale", f"must be > 1, got {self.hog_scale}")
        require(_is_device(self.device), "device", f"{self.device!r} is not one of auto, cpu, cuda, cuda:N")


def _is_device(d: str) -> bool:
    return d in ("auto", "cpu", "cuda") or (d.startswith("cuda:") and d[5:].isdigit())


@dataclasses.dataclass(frozen=True)
class SegmentParams(Section):
    backend: Literal["grabcut", "sam", "none"] = "grabcut"  # none: only the datasets' own masks
    checkpoint: str | None = None  # SAM state dict, e.g. models/sam_vit_b_01ec64.pth (backend sam)
    model_type: Literal["auto", "vit_b", "vit_l", "vit_h"] = "auto"  # auto: from the checkpoint's tensors
    device: str = "auto"  # auto = CUDA when available, else CPU | cpu | cuda | cuda:N
    batch_size: int = 16  # SAM: boxes decoded together
    use_joint_points: bool = True  # projected joints inside the box as positive prompts / sure foreground
    multimask: bool = False  # SAM: predict 3 masks per box and keep the one with the highest score
    grabcut_iterations: int = 5
    grabcut_max_side: int = 160  # GrabCut runs on the box region reduced to at most this many pixels a side
    box_margin: float = 0.1  # each box grows by this fraction of its width/height on every side
    seed: int = 0  # GrabCut's random initialisation is seeded per box from this and the box's position

    def check(self) -> None:
        require(self.backend != "sam" or bool(self.checkpoint), "checkpoint",
                "segment backend 'sam' needs `checkpoint`, the path of a SAM checkpoint "
                "(e.g. models/sam_vit_b_01ec64.pth, see docs/models.md)")
        require(self.batch_size >= 1, "batch_size", f"must be at least 1, got {self.batch_size}")
        require(self.grabcut_max_side >= 16, "grabcut_max_side", f"must be at least 16, got {self.grabcut_max_side}")
        require(self.grabcut_iterations >= 1, "grabcut_iterations",
                f"must be at least 1, got {self.grabcut_iterations}")
        require(self.box_margin >= 0, "box_margin", f"must be non-negative, got {self.box_margin}")
        require(_is_device(self.device), "device", f"{self.device!r} is not one of auto, cpu, cuda, cuda:N")



# posepile's expansion of the rotated box (util/preproc_for_efficiency.py get_expanded_crop_box): padding 1/0.85,
# shift 1.1, scale-down 1/0.85
POSEPILE_MARGIN = 1 / 0.85 * 1.1 * 1 / 0.85


@dataclasses.dataclass(frozen=True)
class CropParams(Section):
    # posepile: the crop covers the box rotated by +-max_rotation_deg, times margin, clipped to the image (variable
    # size; the training-time augmentation margin); fixed: a square of context x the box's long side
    geometry: Literal["posepile", "fixed"] = "posepile"
    target_box_px: float = 384.0  # the box's long side in the crop (posepile: 256 x 1.5) ...
    max_upscale: float = 1.2  # ... but small people are never enlarged more than this
    max_rotation_deg: float = 30.0  # posepile: the crop holds the box rotated by up to this
    margin: float = POSEPILE_MARGIN  # posepile: the rotated box's side x this
    clip_to_image: bool = True  # posepile: the crop ends at the (reprojected) image border
    context: float = 1.5  # fixed: crop side = box long side x context
    upright: bool = True  # the crop camera has zero roll about the world's up direction (posepile)
    jpeg_quality: int = 95
    interpolation: Literal["cubic", "linear", "nearest"] = "cubic"
    # frames are decoded at 1/2, 1/4 or 1/8 when the crop then enlarges the decoded image at most this much
    max_decode_upsample: float = 1.25
    workers: int = 2  # threads cropping frames in parallel (OpenCV releases the GIL); output order is fixed

    def check(self) -> None:
        require(self.workers >= 1, "workers", f"must be at least 1, got {self.workers}")
        require(1 <= self.max_decode_upsample <= 2, "max_decode_upsample",
                f"must be in [1, 2], got {self.max_decode_upsample}")
        require(self.target_box_px > 0, "target_box_px", f"must be positive, got {self.target_box_px}")
        require(self.context >= 1, "context", f"must be at least 1, got {self.context}")
        require(self.margin >= 1, "margin", f"must be at least 1, got {self.margin}")
        require(0 <= self.max_rotation_deg < 90, "max_rotation_deg",
                f"must be in [0, 90), got {self.max_rotation_deg}")
        require(self.max_upscale > 0, "max_upscale", f"must be positive, got {self.max_upscale}")
        require(1 <= self.jpeg_quality <= 100, "jpeg_quality", f"must be in 1..100, got {self.jpeg_quality}")


@dataclasses.dataclass(frozen=True)
class ValidateParams(Section):
    chunk_rows: int = 200_000  # examples per block: validation memory stays bounded
    min_valid_joints: int = 4
    focal_range: tuple[float, float] = (100.0, 10_000.0)  # px, crop intrinsics
    distance_range_mm: tuple[float, float] = (300.0, 30_000.0)  # optical centre -> root joint (or valid mean)
    max_distortion: float = 1.0  # max |k1 k2 p1 p2 k3|
    max_rot_orth_err: float = 1.0e-4  # max |R R^T - I|
    rot_det_tolerance: float = 1.0e-4  # |det R - 1|
    world_up_tolerance: float = 1.0e-3
    min_bbox_visible_frac: float = 0.1  # the part of the person's box inside the crop (truncated people: less than 1)
    max_keypoint_reproj_px: float = 1.0  # stored 2D joints of a 3D example vs its 3D joints projected (px)
    max_abs_beta: float = 10.0  # body-model shape coefficients
    image_sample_size: int = 500  # images decoded per cache (seeded sample)
    seed: int = 0
    expected_counts: dict[str, int] = dataclasses.field(default_factory=dict)  # {h36m: 123456}; absent: no check

    def check(self) -> None:
        require(self.chunk_rows >= 1, "chunk_rows", f"must be at least 1, got {self.chunk_rows}")
        require(0 < self.min_bbox_visible_frac <= 1, "min_bbox_visible_frac",
                f"must be in (0, 1], got {self.min_bbox_visible_frac}")
        require(self.image_sample_size >= 0, "image_sample_size", f"must be >= 0, got {self.image_sample_size}")
        for name in ("focal_range", "distance_range_mm"):
            lo, hi = getattr(self, name)
            require(0 <= lo < hi, name, f"must be [low, high] with 0 <= low < high, got {[lo, hi]}")



# ------------------------------------------------------------------------------------------- merges
MERGE_SPLITS = ("train", "val", "test")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_SUFFIX = re.compile(r"^[a-z0-9]*$")


@dataclasses.dataclass(frozen=True)
class MergeSource(Section):
    """One source of a merge: a dataset's cache, its joint-name suffix and which of its splits go where."""

    dataset: str  # registry name of the source's cache (<pipeline.cache>/<dataset>)
    splits: dict[str, str]  # source split -> merged split, e.g. {train: train, val: train}
    suffix: str = ""  # joint names become <name>_<suffix> ('' keeps them)
    joints_as: str | None = None  # map onto this dataset's joint set by name first (absent joints: missing)
    joints: str | None = None  # keep only the joints whose names match this glob (e.g. '*_coco')

    def check(self) -> None:
        require(bool(_NAME.match(self.dataset)), "dataset", f"{self.dataset!r} is not a dataset name")
        require(bool(_SUFFIX.match(self.suffix)), "suffix", f"{self.suffix!r}: lower-case letters and digits only")
        require(bool(self.splits), "splits", "must map at least one source split to a merged split")
        for src, dst in self.splits.items():
            require(src in MERGE_SPLITS, f"splits.{src}", f"not a split; splits: {', '.join(MERGE_SPLITS)}")
            require(dst in MERGE_SPLITS, f"splits.{src}", f"{dst!r} is not a split; splits: "
                    f"{', '.join(MERGE_SPLITS)}")
        if self.joints_as is not None:
            require(bool(_NAME.match(self.joints_as)), "joints_as", f"{self.joints_as!r} is not a dataset name")


@dataclasses.dataclass(frozen=True)
class PlausibilityParams(Section):
    """posepile's filter_dataset_by_plausibility (datasets3d.py), applied to the merged training split."""

    rel_small: float = 0.1  # a bone shorter than this x its mean training length ...
    rel_big: float = 3.0  # ... or longer than this x ...
    abs_big_mm: float = 150.0  # ... and more than this off the mean is implausible
    min_joints_in_box: int = 4  # fewer valid joints projecting into the box: dropped
    exempt: list[str] = dataclasses.field(default_factory=lambda: ["surreal"])  # posepile: surreal_always_plausible

    def check(self) -> None:
        require(0 <= self.rel_small < 1, "rel_small", f"must be in [0, 1), got {self.rel_small}")
        require(self.rel_big > 1, "rel_big", f"must be above 1, got {self.rel_big}")
        require(self.abs_big_mm >= 0, "abs_big_mm", f"must be >= 0, got {self.abs_big_mm}")
        require(self.min_joints_in_box >= 0, "min_joints_in_box", f"must be >= 0, got {self.min_joints_in_box}")


@dataclasses.dataclass(frozen=True)
class SamplerParams(Section):
    """How training code draws the merged training split: posepile's per-dataset round robin (``counts``
    examples of each source per batch), ReFit's partitions (each example from a source with probability
    ``fractions``) or uniform over all examples. Deterministic given ``seed`` and the epoch."""

    kind: Literal["uniform", "round_robin", "partition"] = "uniform"
    counts: dict[str, int] = dataclasses.field(default_factory=dict)  # round_robin: dataset -> examples per batch
    fractions: dict[str, float] = dataclasses.field(default_factory=dict)  # partition: dataset -> share
    seed: int = 0

    def check(self) -> None:
        require(self.kind != "round_robin" or bool(self.counts), "counts", "round_robin needs counts per dataset")
        require(self.kind != "partition" or bool(self.fractions), "fractions", "partition needs fractions")
        for k, v in self.counts.items():
            require(v >= 1, f"counts.{k}", f"must be at least 1, got {v}")
        for k, v in self.fractions.items():
            require(v > 0, f"fractions.{k}", f"must be positive, got {v}")


@dataclasses.dataclass(frozen=True)
class MergeParams(Section):
    """One entry of ``merges:``: its sources in order (the union skeleton keeps first occurrences)."""

    sources: tuple[MergeSource, ...]
    filter: Literal["none", "plausibility"] = "none"
    plausibility: PlausibilityParams = dataclasses.field(default_factory=PlausibilityParams)
    allow_missing: bool = False  # build from the sources that are built, saying which are missing
    sampler: SamplerParams = dataclasses.field(default_factory=SamplerParams)

    def check(self) -> None:
        require(bool(self.sources), "sources", "must list at least one source")
        seen = set()
        for i, s in enumerate(self.sources):
            require(s.dataset not in seen, f"sources[{i}].dataset", f"{s.dataset!r} is listed twice")
            seen.add(s.dataset)
        for key in ("counts", "fractions"):
            for name in getattr(self.sampler, key):
                require(name in seen, f"sampler.{key}.{name}", f"not a source of this merge; sources: "
                        f"{', '.join(s.dataset for s in self.sources)}")

    @property
    def datasets(self) -> list[str]:
        return [s.dataset for s in self.sources]


def merge_params(name: str, entry, where: str = "merges") -> MergeParams:
    """The ``merges.<name>`` entry as MergeParams; ParamsError naming the key."""
    key = f"{where}.{name}"
    require(bool(_NAME.match(str(name))), key, "a merge name is lower-case letters, digits and _")
    if not isinstance(entry, Mapping):
        raise ParamsError(key, f"must be a mapping (sources, filter, ...), got {entry!r}")
    entry = dict(entry)
    raw_sources = entry.pop("sources", None)
    if not isinstance(raw_sources, (list, tuple)) or not raw_sources:
        raise ParamsError(f"{key}.sources", "must be a non-empty list of sources")
    sources = tuple(section(MergeSource, s, f"{key}.sources[{i}]") for i, s in enumerate(raw_sources))
    nested = {"plausibility": PlausibilityParams, "sampler": SamplerParams}
    for k, cls in nested.items():
        if k in entry:
            entry[k] = section(cls, entry[k], f"{key}.{k}")
    try:
        return section(MergeParams, {**entry, "sources": sources}, key)
    except ParamsError as e:
        raise e from None


def check_merges(entries) -> dict[str, MergeParams]:
    if entries is None:
        return {}
    if not isinstance(entries, Mapping):
        raise ParamsError("merges", "must be a mapping of merge name -> composition")
    return {str(name): merge_params(str(name), entry) for name, entry in entries.items()}


# ------------------------------------------------------------------------------------------- subsets
@dataclasses.dataclass(frozen=True)
class SubsetParams(Section):
    """One entry of ``subsets:``: a fixed-seed sample of one split of a cache, re-cropped square (ReFit's
    scripts/subsample_3dpw.py: ``np.random.seed(seed)``, ``permutation(N)[:size]``, sorted; 256 x 256 crops of the
    box's centre and 1.2 x its long side)."""

    source: str = "tdpw"  # the dataset whose cache is sampled
    split: str = "test"
    size: int = 3000  # examples: min(size, N)
    seed: int = 0
    crop_px: int = 256  # output side
    box_scale: float = 1.2  # crop side = this x the box's long side (SPIN / ReFit scale = this x max(w, h) / 200)
    jpeg_quality: int = 95

    def check(self) -> None:
        require(self.split in MERGE_SPLITS, "split", f"must be one of {', '.join(MERGE_SPLITS)}, got {self.split!r}")
        require(self.size >= 1, "size", f"must be at least 1, got {self.size}")
        require(16 <= self.crop_px <= 4096, "crop_px", f"must be in [16, 4096], got {self.crop_px}")
        require(self.box_scale > 0, "box_scale", f"must be > 0, got {self.box_scale}")
        require(1 <= self.jpeg_quality <= 100, "jpeg_quality", f"must be in [1, 100], got {self.jpeg_quality}")


def check_subsets(entries) -> dict[str, SubsetParams]:
    if entries is None:
        return {}
    if not isinstance(entries, Mapping):
        raise ParamsError("subsets", "must be a mapping of subset name -> settings")
    out = {}
    for name, entry in entries.items():
        if not _NAME.match(str(name)):
            raise ParamsError(f"subsets.{name}", "a name of lower-case letters, digits and _ (a cache folder)")
        out[str(name)] = section(SubsetParams, entry, f"subsets.{name}")
    return out


# ------------------------------------------------------------------------------------------- exports
EXPORT_FORMATS = ("spin", "humandata", "barecat")


@dataclasses.dataclass(frozen=True)
class ExportParams(Section):
    """One entry of ``exports:`` (a dataset's or a subset's cache) or ``merge_exports:`` (a merged file): a format
    that a consumer's training code reads (:mod:`posebank.exporting`)."""

    format: str = "spin"  # spin (SPIN / ReFit npz), humandata (mmhuman3d), barecat (posepile / NLF)
    source: str = ""  # the dataset, subset or merge exported
    split: str = ""  # train / val / test; "" = every split
    file: str = ""  # the output file name ("" = the format's default for the source)
    cropped: bool = False  # spin: ReFit's pre-cropped layout (crop_px square crops, with orig_shape)
    crop_px: int = 256

    def check(self) -> None:
        require(self.format in EXPORT_FORMATS, "format", f"must be one of {', '.join(EXPORT_FORMATS)}, got "
                f"{self.format!r}")
        require(bool(self.source), "source", "must name the dataset, subset or merge to export")
        require(self.split in ("", *MERGE_SPLITS), "split", f"must be one of {', '.join(MERGE_SPLITS)} or \"\" "
                f"(every split), got {self.split!r}")
        require("/" not in self.file and self.file not in (".", ".."), "file", f"a file name, got {self.file!r}")
        require(16 <= self.crop_px <= 4096, "crop_px", f"must be in [16, 4096], got {self.crop_px}")

    def options(self) -> dict:
        """The exporter's options: only those set (each format checks its own and refuses the others)."""
        out: dict = {}
        if self.split:
            out["split"] = self.split
        if self.file:
            out["file"] = self.file
        if self.cropped:
            out["cropped"], out["crop_size"] = True, self.crop_px
        return out


def check_exports(entries, key: str) -> dict[str, ExportParams]:
    if entries is None:
        return {}
    if not isinstance(entries, Mapping):
        raise ParamsError(key, "must be a mapping of export name -> settings")
    out = {}
    for name, entry in entries.items():
        if not _NAME.match(str(name)):
            raise ParamsError(f"{key}.{name}", "a name of lower-case letters, digits and _ (an export folder)")
        out[str(name)] = section(ExportParams, entry, f"{key}.{name}")
    return out


# ------------------------------------------------------------------------------------------- airflow
@dataclasses.dataclass(frozen=True)
class AirflowParams(Section):
    """airflow: how the DAGs of dags/ schedule and retry the stages (docs/airflow.md). The DAG files read this
    section with yaml alone (they must stay cheap to parse); their defaults are these."""

    schedule: str | None = "@weekly"  # each dataset DAG's schedule (a cron preset or expression); null: manual only
    gpu_slots: int = 1  # slots of the pool "gpu" (detect and segment tasks running at once)
    gpu_shards: int = 1  # > 1: detect and segment each run as this many mapped tasks (--shard i/n), then assemble
    gpu_queue: str = "default"  # executor queue of the GPU tasks (Celery: the workers started with -q this queue)
    dvc_slots: int = 1  # slots of the pool "dvc" (tasks taking DVC's repository lock: commit, push, git)
    retries: int = 2  # retries of a failed task (validation tasks: none, a failed validation is not transient)
    retry_delay_s: float = 60.0  # seconds before the first retry ...
    retry_exponential_backoff: float = 2.0  # ... each next delay this many times longer (0: constant)
    max_retry_delay_s: float = 1800.0  # ... and at most this long
    tags: list[str] = dataclasses.field(default_factory=lambda: ["posebank"])  # tags of every posebank DAG
    release: bool = False  # a merge DAG ends with `posebank release <merge>` (an annotated tag per version)

    def check(self) -> None:
        require(self.schedule is None or bool(self.schedule.strip()), "schedule",
                "must be a cron preset or expression (e.g. @weekly), or null for manual runs only")
        require(self.gpu_slots >= 1, "gpu_slots", f"must be at least 1, got {self.gpu_slots}")
        require(self.gpu_shards >= 1, "gpu_shards", f"must be at least 1, got {self.gpu_shards}")
        require(bool(self.gpu_queue.strip()), "gpu_queue", "must be a non-empty queue name (Airflow's: default)")
        require(self.dvc_slots >= 1, "dvc_slots", f"must be at least 1, got {self.dvc_slots}")
        require(self.retries >= 0, "retries", f"must be at least 0, got {self.retries}")
        require(self.retry_delay_s >= 0, "retry_delay_s", f"must be at least 0, got {self.retry_delay_s}")
        require(self.retry_exponential_backoff == 0 or self.retry_exponential_backoff >= 1,
                "retry_exponential_backoff", f"must be 0 (constant delay) or at least 1, got "
                f"{self.retry_exponential_backoff}")
        require(self.max_retry_delay_s >= self.retry_delay_s, "max_retry_delay_s",
                f"must be at least retry_delay_s ({self.retry_delay_s}), got {self.max_retry_delay_s}")
        for i, t in enumerate(self.tags):
            require(bool(t.strip()), f"tags[{i}]", "must be a non-empty tag")


SECTIONS = {"pipeline": PipelineParams, "fetch": FetchParams, "frames": FramesParams, "detect": DetectParams,
            "segment": SegmentParams, "crop": CropParams, "validate": ValidateParams, "airflow": AirflowParams}
SECTION_KEYS = {cls: key for key, cls in SECTIONS.items()}


# ------------------------------------------------------------------------------------------- whole file
@dataclasses.dataclass(frozen=True)
class Params:
    """A checked params.yaml: every section as its settings, and the raw ``datasets:`` entries."""

    pipeline: PipelineParams
    frames: FramesParams
    detect: DetectParams
    segment: SegmentParams
    crop: CropParams
    validate: ValidateParams
    datasets: dict
    merges: dict = dataclasses.field(default_factory=dict)  # name -> MergeParams
    source: str = "params.yaml"
    subsets: dict = dataclasses.field(default_factory=dict)  # name -> SubsetParams
    exports: dict = dataclasses.field(default_factory=dict)  # name -> ExportParams (of caches)
    merge_exports: dict = dataclasses.field(default_factory=dict)  # name -> ExportParams (of merges)
    fetch: FetchParams = dataclasses.field(default_factory=FetchParams)
    airflow: AirflowParams = dataclasses.field(default_factory=AirflowParams)

    def export(self, name: str) -> tuple[str, ExportParams]:
        """(``exports`` or ``merge_exports``, its settings) of the export ``name``."""
        for key in ("exports", "merge_exports"):
            if name in getattr(self, key):
                return key, getattr(self, key)[name]
        raise ParamsError(f"{self.source}: exports", f"no export named {name!r}; exports: "
                          f"{', '.join([*self.exports, *self.merge_exports]) or 'none'}")

    def subset(self, name: str) -> SubsetParams:
        if name not in self.subsets:
            raise ParamsError(f"{self.source}: subsets", f"no subset named {name!r}; subsets: "
                              f"{', '.join(self.subsets) or 'none'}")
        return self.subsets[name]

    def merge(self, name: str) -> MergeParams:
        if name not in self.merges:
            raise ParamsError(f"{self.source}: merges", f"no merge named {name!r}; merges: "
                              f"{', '.join(self.merges) or 'none'} (the compositions are params.yaml's merges: "
                              "section; pass --params FILE outside the workspace)")
        return self.merges[name]

    def dataset_entry(self, name: str) -> dict:
        if name not in self.datasets:
            raise ParamsError(f"{self.source}: datasets", f"no entry for dataset {name!r}; entries: "
                              f"{', '.join(self.datasets) or 'none'}")
        return dict(self.datasets[name] or {})


def check_params(params: Mapping | None, source: str = "params.yaml", known_datasets=None,
                 families: Mapping[str, str] | None = None, require_family: bool = True) -> Params:
    """Check every section of a params.yaml mapping (the ``datasets:`` entries for their structure: a registered
    name, a ``raw`` path, and ``family`` equal to the dataset's family folder when ``families`` (name -> family)
    is given: dvc.yaml depends on that folder; without ``require_family`` it may be absent); errors name
    ``<source>: <key>``."""
    if families is not None and known_datasets is None:
        known_datasets = list(families)
    params = {} if params is None else params
    if not isinstance(params, Mapping):
        raise ParamsError(source, f"must hold a mapping of sections, got {type(params).__name__}")
    known = {*SECTIONS, "datasets", "merges", "subsets", "exports", "merge_exports"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ParamsError(f"{source}: {unknown[0]}", f"unknown section; known: {', '.join(sorted(known))}")
    try:
        settings = {name: section(cls, params.get(name), name) for name, cls in SECTIONS.items()}
        merges = check_merges(params.get("merges"))
        subsets = check_subsets(params.get("subsets"))
        exports = check_exports(params.get("exports"), "exports")
        merge_exports = check_exports(params.get("merge_exports"), "merge_exports")
    except ParamsError as e:
        raise ParamsError(f"{source}: {e.where}", e.problem) from None
    entries = params.get("datasets") or {}
    if not isinstance(entries, Mapping):
        raise ParamsError(f"{source}: datasets", "must be a mapping of dataset name -> settings")
    for name, entry in entries.items():
        where = f"{source}: datasets.{name}"
        if known_datasets is not None and name not in known_datasets:
            raise ParamsError(where, f"not a registered dataset; registered: {', '.join(known_datasets)}")
        if entry is not None and not isinstance(entry, Mapping):
            raise ParamsError(where, f"must be a mapping of settings, got {entry!r}")
        for k in PIPELINE_DATASET_KEYS:
            v = (entry or {}).get(k)
            if v is not None and not isinstance(v, str):
                raise ParamsError(f"{where}.{k}", f"{v!r} is not a string (a path)")
        family = (entry or {}).get("family")
        if families is not None and family != families[name] and (require_family or family is not None):
            raise ParamsError(f"{where}.family", f"must be {families[name]!r}, the dataset's code folder under "
                              f"src/posebank/datasets/ (its DVC stages depend on it), got "
                              f"{(entry or {}).get('family')!r}")
    for name, sub in subsets.items():
        if known_datasets is not None and sub.source not in known_datasets:
            raise ParamsError(f"{source}: subsets.{name}.source", f"{sub.source!r} is not a registered dataset")
        if name in entries:
            raise ParamsError(f"{source}: subsets.{name}", "a dataset has that name: the subset's cache would be "
                              "the dataset's")
    for name in set(exports) & set(merge_exports):
        raise ParamsError(f"{source}: merge_exports.{name}", "an entry of exports: has that name (one folder)")
    for name, e in exports.items():
        if known_datasets is not None and e.source not in known_datasets and e.source not in subsets:
            raise ParamsError(f"{source}: exports.{name}.source", f"{e.source!r} is neither a registered dataset "
                              "nor a subset")
    for name, e in merge_exports.items():
        if e.source not in merges:
            raise ParamsError(f"{source}: merge_exports.{name}.source", f"{e.source!r} is not a merge; merges: "
                              f"{', '.join(merges) or 'none'}")
    return Params(**settings, datasets={k: dict(v or {}) for k, v in entries.items()}, merges=merges,
                  source=source, subsets=subsets, exports=exports, merge_exports=merge_exports)


def load_params(path, required: bool = True) -> dict:
    """Read a params.yaml; a missing (when ``required``), unreadable or malformed file is a ParamsError."""
    import yaml

    path = Path(path)
    if not path.is_file():
        if required:
            raise ParamsError(path, "params file not found")
        return {}
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ParamsError(path, f"malformed YAML{at}: {getattr(e, 'problem', None) or e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ParamsError(path, f"cannot read ({e})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParamsError(path, f"must hold a mapping of sections, got {type(data).__name__}")
    return data


def params_digest(*parts) -> str:
    """Stable digest of parameter values (stored in caches so that a reader knows what built them)."""
    def plain(v):
        return dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v
    text = json.dumps([plain(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
