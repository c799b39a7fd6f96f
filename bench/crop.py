"""Benchmark of the per-person crop path: crops per CPU-second (per core), JPEG frame in, cache row out.

Usage::

    .venv/bin/python bench/crop.py [--quick] [--out bench/results/crop.json] [--allow-dirty]

Frames: the real frames of the repository (``tests/realframes.py``: four Human3.6M frames, 1000x1002 (one
1000x1000), and two MPI-INF-3DHP frames, 2048x2048, with their cameras, 3D joints and person boxes), as the bytes of
their JPEG files. Each frame gives several crop tasks: the person's box and shifted / scaled variants of it (a
detector's spread), 16 tasks per size, each with the person's mask as COCO RLE (the convex hull of the projected
joints, dilated, plus a detached blob that the component selection must drop). Every path crops the same tasks with
the same geometry, :func:`posebank.imaging.crop.crop_camera` with the default :class:`CropParams` (posepile's: box
long side 384 px, the box rotated by up to 30 degrees, x 1.5225, clipped to the image), so all of them produce crops
of the same size and camera. In one run, interleaved over the same tasks, it measures:

* ``posebank``: exactly what the crop stage does per frame: :func:`crop_frame_people` (one decode at the reduction
  the crop allows, image and mask warp, best connected component, JPEG encode), then each result appended as an
  :class:`Example` to a :class:`CacheWriter` (a temporary file);
* ``posepile``: posepile-style, as ``preproc_for_efficiency.make_efficient_example`` does it with its default
  arguments: full-resolution decode, float32 linear light ``(x / 255) ** 2.2`` of the whole frame, a source map
  computed for every pixel (no grid interpolation; float32, lens distortion applied per pixel) at antialias factor 2
  (render at twice the crop size, then ``INTER_AREA`` down), cubic interpolation, clip, back to gamma and uint8,
  JPEG encode; its mask: full RLE decode, warped with the same map (linear, x2, area down; posepile would compute
  the map a second time), threshold at 128, the 4-connected component whose box has the highest IoU with the
  person's box, RLE encode; appended to a :class:`CacheWriter` in the same way, so both pay the same storage cost;
* ``lower_bound``: what this machine needs at least for a crop: the decode at the factor the crop allows
  (:func:`choose_decode_factor` of :func:`crop_scale`), ONE ``cv2.remap`` (with posebank's interpolation,
  ``crop.interpolation``: cubic by default) with a map computed beforehand (its computation is excluded from the
  timing and reported apart), one JPEG encode; no mask, no cache.

Everything runs on one thread (``cv2.setNumThreads(1)``, BLAS / OpenMP pools at one thread). A path's time per crop
is the median over repeats of the CPU time (``time.process_time``) of its loop over all tasks (``CacheWriter.add``
included) divided by the number of tasks, plus its storage cost per row: its rows written into a cache as the crop
stage writes them, ``ROWS_PER_CHUNK`` rows per flush (opening and closing the file, once per shard, left out); so
crops/s is per core. Reported per frame size: crops/s of each path, posebank / posepile-style (target >= 2),
posebank / lower bound (target >= 0.7), the mean absolute difference of posebank's and the lower bound's crops (as
stored, JPEG) from the posepile-style crops (grey levels) and the IoU of posebank's and the posepile-style masks
(quality), and where each path's time goes: profile passes apart from the timed ones, in which posebank's functions
are wrapped by timers in place (so the split follows what ``crop_frame_people`` really calls; time in none of the
wrapped functions is ``other``). The JSON (written atomically) records the machine, the library versions, the
parameters and the code measured: the git commit and the uncommitted changes of the files the run used
(``code.clean``). Committed results come from committed code: the default output is not written from uncommitted
code unless ``--allow-dirty`` is given (and then says ``clean: false``).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import posebank  # noqa: E402
import posebank.core.jpeg as pb_jpeg  # noqa: E402
import posebank.core.masks as pb_masks  # noqa: E402
import posebank.imaging.crop as pb_crop  # noqa: E402
from posebank.core.atomic import write_json  # noqa: E402
from posebank.core.camera import Camera  # noqa: E402
from posebank.core.jpeg import decode_jpeg, decode_jpeg_reduced, encode_jpeg  # noqa: E402
from posebank.core.masks import decode as decode_rle  # noqa: E402
from posebank.core.masks import encode as encode_rle  # noqa: E402
from posebank.core.skeleton import JointInfo  # noqa: E402
from posebank.core.store import ROWS_PER_CHUNK, CacheWriter, Example  # noqa: E402
from posebank.imaging.crop import (  # noqa: E402
    CropParams,
    Person,
    choose_decode_factor,
    crop_camera,
    crop_frame_people,
    crop_scale,
    reproject_box,
)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))  # bench/provenance.py, also when this file is imported by path
from provenance import code_state  # noqa: E402

DEFAULT_OUT = REPO / "bench" / "results" / "crop.json"
TARGETS = {"vs_posepile": 2.0, "vs_lower_bound": 0.7}
SIZES = {"h36m": (1000, 1002), "3dhp": (2048, 2048)}  # frame (width, height) of each benchmarked size
DATASET_SIZE = {"h36m": "h36m", "tdhp": "3dhp"}  # realframes' dataset -> size
FRAME_FILES: list[str] = []  # the frame files read
METHODS = ("posebank", "posepile", "lower_bound")
LB_INTERP = {"cubic": cv2.INTER_CUBIC, "linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}


# ------------------------------------------------------------------------------------------------ inputs
@dataclasses.dataclass
class Frame:
    size_name: str
    name: str
    jpeg: bytes
    size: tuple[int, int]  # (width, height)
    camera: Camera
    world_coords: np.ndarray  # (J, 3) mm
    box: np.ndarray  # x, y, w, h (pixels of the frame)


@dataclasses.dataclass
class Task:
    frame: Frame
    box: np.ndarray
    mask: bytes  # the person's full-frame mask, COCO RLE
    crop_camera: Camera
    crop_size: tuple[int, int]
    factor: int  # decode reduction the crop allows
    lb_map: np.ndarray  # the lower bound's precomputed source map (in the reduced frame)
    lb_map_cpu_s: float  # CPU time to compute it


def load_frames(n_per_size: int | None = None) -> dict[str, list[Frame]]:
    """The repository's real frames (tests/realframes.py) by size, each as the bytes of its real JPEG file."""
    sys.path.insert(0, str(REPO / "tests"))
    try:
        import realframes
    finally:
        sys.path.pop(0)
    by_size: dict[str, list[Frame]] = {name: [] for name in SIZES}
    for rf in realframes.real_frames():
        name = DATASET_SIZE[rf.dataset]
        if n_per_size is not None and len(by_size[name]) >= n_per_size:
            continue
        jpeg = Path(rf.image_path).read_bytes()
        FRAME_FILES.append(str(rf.image_path))
        size = pb_jpeg.jpeg_size(jpeg)
        by_size[name].append(Frame(name, rf.name, jpeg, size, rf.camera, np.asarray(rf.world_coords, np.float64),
                                   np.asarray(rf.box, np.float64)))
    missing = [n for n, frames in by_size.items() if not frames]
    if missing:
        raise SystemExit(f"error: tests/realframes.py: no real frames for {', '.join(missing)}")
    return by_size


def person_mask(frame: Frame, rng: np.random.Generator) -> bytes:
    """A person-like full-frame mask as COCO RLE: the convex hull of the projected joints dilated by a few percent
    of the person's height, plus a detached blob beside the person (a stray segment to be dropped)."""
    w, h = frame.size
    joints = frame.camera.project(frame.world_coords)
    joints = joints[np.isfinite(joints).all(axis=1)]
    mask = np.zeros((h, w), np.uint8)
    x, y, bw, bh = frame.box
    if len(joints) >= 3:
        hull = cv2.convexHull(np.round(joints).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 1)
        r = max(2, int(0.05 * bh))
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    else:  # no joints: an ellipse in the box
        cv2.ellipse(mask, (int(x + bw / 2), int(y + bh / 2)), (int(bw / 2.2), int(bh / 2.1)), 0, 0, 360, 1, -1)
    side = 1 if rng.random() < 0.5 else -1
    blob_c = (int(x + bw / 2 + side * 0.75 * bw), int(y + bh * rng.uniform(0.3, 0.8)))
    cv2.ellipse(mask, blob_c, (max(2, int(0.12 * bw)), max(2, int(0.08 * bh))), float(rng.uniform(0, 180)), 0, 360,
                1, -1)
    return encode_rle(mask.astype(bool))


def box_variants(box, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The person's box, then ``n - 1`` shifted and scaled variants of it."""
    x, y, w, h = np.asarray(box, np.float64)
    out = [np.array([x, y, w, h])]
    for _ in range(n - 1):
        s = rng.uniform(0.8, 1.3)
        cx, cy = x + w / 2 + rng.uniform(-0.15, 0.15) * w, y + h / 2 + rng.uniform(-0.1, 0.1) * h
        out.append(np.array([cx - s * w / 2, cy - s * h / 2, s * w, s * h]))
    return out


def make_tasks(frames: list[Frame], n_variants: int, params: CropParams, rng) -> list[Task]:
    tasks = []
    for frame in frames:
        mask = person_mask(frame, rng)
        for box in box_variants(frame.box, n_variants, rng):
            cam, size = crop_camera(frame.camera, box, params, frame.size)
            factor = choose_decode_factor(crop_scale(frame.camera, cam), 8, params.max_decode_upsample)
            source = frame.camera if factor == 1 else frame.camera.zoomed(1.0 / factor)
            t0 = time.process_time()
            lb_map = pixel_map(source, cam, *size)
            tasks.append(Task(frame, box, mask, cam, size, factor, lb_map, time.process_time() - t0))
    return tasks


# ---------------------------------------------------------------------------------------------- methods
def distort32(x: np.ndarray, y: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Lens distortion of normalised coordinates in float32 (both models of posebank.core.camera)."""
    if not camera.has_distortion:
        return x, y
    k1, k2, p1, p2, k3 = (np.float32(v) for v in camera.distortion_coeffs)
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    if camera.distortion_model == "h36m":
        tan = p1 * y + p2 * x
        return x * (radial + tan) + p2 * r2, y * (radial + tan) + p1 * r2
    xy = x * y
    return (x * radial + 2 * p1 * xy + p2 * (r2 + 2 * x * x), y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * xy)


def pixel_map(source: Camera, target: Camera, width: int, height: int) -> np.ndarray:
    """(height, width, 2) float32: for every pixel of ``target``'s image, where ``source`` (same optical centre) sees
    it, lens distortion included; computed for every pixel (no interpolation between grid points)."""
    h = (source.R @ target.R.T @ np.linalg.inv(target.intrinsic_matrix)).astype(np.float32)
    u = np.arange(width, dtype=np.float32)[None, :]
    v = np.arange(height, dtype=np.float32)[:, None]
    z = h[2, 0] * u + (h[2, 1] * v + h[2, 2])
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_z = 1 / z
        x = (h[0, 0] * u + (h[0, 1] * v + h[0, 2])) * inv_z
        y = (h[1, 0] * u + (h[1, 1] * v + h[1, 2])) * inv_z
        xd, yd = distort32(x, y, source)
        k = source.intrinsic_matrix.astype(np.float32)
        out = np.empty((height, width, 2), np.float32)
        out[..., 0] = k[0, 0] * xd + k[0, 1] * yd + k[0, 2]
        out[..., 1] = k[1, 1] * yd + k[1, 2]
    out[z <= 0] = -1e6  # behind the source camera: outside its image
    out[~np.isfinite(out)] = -1e6
    return out


def best_iou_component(mask: np.ndarray, box) -> np.ndarray:
    """The 4-connected component of ``mask`` whose bounding box has the highest IoU with ``box`` (posepile)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=4)
    if n <= 2:
        return mask
    bx, by, bw, bh = box
    best, best_iou = 1, -1.0
    for i in range(1, n):
        x, y, w, h = (float(v) for v in stats[i, :4])
        iw = max(0.0, min(x + w, bx + bw) - max(x, bx))
        ih = max(0.0, min(y + h, by + bh) - max(y, by))
        inter = iw * ih
        iou = inter / (w * h + bw * bh - inter)
        if iou > best_iou:
            best, best_iou = i, iou
    return labels == best


def posebank_crop(task: Task) -> list:
    f = task.frame
    return crop_frame_people(f.jpeg, f.size, [Person(f.camera, task.box, task.mask)], PARAMS)


def posebank_path(task: Task, writer: CacheWriter, i: int) -> None:
    for c in posebank_crop(task):
        writer.add(example(task, i, c.camera, c.box, c.image, c.size, c.mask))


class Clock:
    """Accumulates CPU time per label (the posepile-style path's own split)."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self._t = time.process_time()

    def lap(self, label: str) -> None:
        t = time.process_time()
        self.seconds[label] += t - self._t
        self._t = t


class _NoClock:
    def lap(self, label: str) -> None:
        pass


NO_CLOCK = _NoClock()


def posepile_crop(task: Task, clock=NO_CLOCK):
    """posepile-style crop: returns (JPEG bytes, uint8 crop before encoding, box in the crop, RLE mask)."""
    f = task.frame
    image = decode_jpeg(f.jpeg)
    clock.lap("decode")
    linear = np.power(image.astype(np.float32) / np.float32(255), np.float32(2.2))
    clock.lap("linear_light")
    cam, (w, h) = crop_camera(f.camera, task.box, PARAMS, f.size)
    new_box = reproject_box(task.box, f.camera, cam)
    a = 2  # antialias factor
    clock.lap("geometry")
    source_map = pixel_map(f.camera, cam.zoomed(a), a * w, a * h)
    clock.lap("map")
    big = cv2.remap(linear, source_map, None, cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    small = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
    clock.lap("image_warp")
    crop = (np.clip(small, 0, 1) ** np.float32(1 / 2.2) * 255).astype(np.uint8)
    clock.lap("gamma")
    jpeg = encode_jpeg(crop, PARAMS.jpeg_quality)
    clock.lap("encode")
    full = decode_rle(task.mask, f.size[1], f.size[0]).astype(np.uint8) * np.uint8(255)
    big_mask = cv2.remap(full, source_map, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    mask = cv2.resize(big_mask, (w, h), interpolation=cv2.INTER_AREA) >= 128
    rle = encode_rle(best_iou_component(mask, new_box)) if mask.any() else b""
    clock.lap("mask")
    return jpeg, crop, cam, new_box, rle


def posepile_path(task: Task, writer: CacheWriter, i: int) -> None:
    jpeg, crop, cam, box, rle = posepile_crop(task)
    writer.add(example(task, i, cam, box, jpeg, (crop.shape[1], crop.shape[0]), rle))


def lower_bound_crop(task: Task, clock=NO_CLOCK) -> tuple[bytes, np.ndarray]:
    image = decode_jpeg_reduced(task.frame.jpeg, task.factor)
    clock.lap("decode")
    crop = cv2.remap(image, task.lb_map, None, LB_INTERP[PARAMS.interpolation], borderMode=cv2.BORDER_CONSTANT,
                     borderValue=0)
    clock.lap("remap")
    jpeg = encode_jpeg(crop, PARAMS.jpeg_quality)
    clock.lap("encode")
    return jpeg, crop


def lower_bound_path(task: Task, writer, i: int) -> None:
    lower_bound_crop(task)


PATHS = {"posebank": posebank_path, "posepile": posepile_path, "lower_bound": lower_bound_path}


def example(task: Task, i: int, camera, box, image: bytes, size, mask: bytes) -> Example:
    f = task.frame
    return Example(world_coords=f.world_coords.astype(np.float32), camera=camera, bbox=np.asarray(box, np.float32),
                   split="train", image=image, image_size=tuple(size), subject="S1", sequence=f.name,
                   activity="bench", camera_name="0", frame_index=i, source_path=f"{f.name}#{i}", mask=mask)


# ------------------------------------------------------------------------------------------------- timing
def open_writer(stack: contextlib.ExitStack, folder: Path, method: str, n_joints: int, buffer_rows: int):
    """A cache writer for ``method`` (None for the lower bound) in ``folder``, closed by ``stack``."""
    if method == "lower_bound":
        return None
    joints = JointInfo([f"j{k}" for k in range(n_joints)])
    return stack.enter_context(CacheWriter(folder / f"{method}.h5", "bench", joints, buffer_rows=buffer_rows))


class Recorder:
    """Takes the rows a path appends (to measure their storage cost apart)."""

    def __init__(self):
        self.rows: list[Example] = []

    def add(self, example: Example) -> None:
        self.rows.append(example)


def time_path(method: str, tasks: list[Task], writer) -> float:
    """CPU seconds of one loop of ``method`` over all tasks, the rows' ``CacheWriter.add`` included (the writer's
    buffer does not fill within the loop: the flush into the file is measured by :func:`storage_cost`)."""
    fn = PATHS[method]
    t0 = time.process_time()
    for i, t in enumerate(tasks):
        fn(t, writer, i)
    return time.process_time() - t0


def storage_cost(method: str, tasks: list[Task], folder: Path) -> float:
    """CPU seconds per row of writing ``method``'s rows into the cache as the crop stage does: ``ROWS_PER_CHUNK``
    rows (the path's own rows, cycled) added to a :class:`CacheWriter` with its default buffer, so the loop ends
    with one flush of a full buffer (opening and closing the file, once per shard, are left out)."""
    if method == "lower_bound":
        return 0.0
    recorder = Recorder()
    for i, t in enumerate(tasks):
        PATHS[method](t, recorder, i)
    rows = recorder.rows
    with contextlib.ExitStack() as stack:
        writer = open_writer(stack, folder, f"{method}_storage", len(tasks[0].frame.world_coords), ROWS_PER_CHUNK)
        t0 = time.process_time()
        for k in range(ROWS_PER_CHUNK):
            writer.add(rows[k % len(rows)])
        seconds = time.process_time() - t0
    return seconds / ROWS_PER_CHUNK


class Profiler:
    """Wraps functions in place with CPU timers; a call made inside a timed call is also charged to
    ``outer/inner`` (the top-level labels do not overlap, so they add up)."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[str] = []
        self._undo: list = []

    def wrap(self, owner, attr: str, label) -> bool:
        original = getattr(owner, attr, None)
        if original is None:
            return False

        def timed(*args, **kwargs):
            name = label(*args) if callable(label) else label
            full = f"{self._stack[-1]}/{name}" if self._stack else name
            self._stack.append(full)
            t0 = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[full] += time.process_time() - t0
                self.calls[full] += 1
                self._stack.pop()

        setattr(owner, attr, timed)
        self._undo.append((owner, attr, original))
        return True

    def restore(self) -> None:
        for owner, attr, original in reversed(self._undo):
            setattr(owner, attr, original)
        self._undo.clear()


class _Cv2Proxy:
    """Stands in for ``cv2`` inside posebank.imaging.crop so that its OpenCV calls can be timed."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)


def _image_or_mask(image, *args, **kwargs) -> str:
    return "reproject_image" if np.ndim(image) == 3 else "reproject_mask"


# what posebank's crop path may call, its label in the profile and the group the label counts to (functions that
# the code in its current state does not have are skipped; time in none of them is "other")
POSEBANK_PARTS = [
    (pb_crop, "decode_jpeg_reduced", "decode", "decode"),
    (pb_crop, "source_map", "map", "image_warp"),
    (pb_crop, "_source_map", "map", "image_warp"),
    (pb_crop, "_coarse_map", "map", "image_warp"),
    (pb_crop, "_expand", "map_expand", "image_warp"),
    (pb_crop, "warp", "warp", "image_warp"),
    (pb_crop, "reproject_image", _image_or_mask, None),
    (pb_crop, "warp_mask", "warp_mask", "mask_warp"),
    (pb_crop, "best_component", "component", "mask_warp"),
    (pb_masks, "decode", "rle_decode", "mask_warp"),
    (pb_masks, "decode_fortran", "rle_decode", "mask_warp"),
    (pb_masks, "encode", "rle_encode", "mask_warp"),
    (pb_jpeg, "encode_jpeg", "encode", "encode"),
    (pb_crop, "crop_geometry", "geometry", "geometry"),
    (pb_crop, "crop_camera", "geometry", "geometry"),
    (pb_crop, "reproject_box", "geometry", "geometry"),
]
GROUP_OF = {"reproject_image": "image_warp", "reproject_mask": "mask_warp"}
CV2_PARTS = [("remap", "remap"), ("resize", "resize"), ("connectedComponentsWithStats", "components")]


def profile_posebank(tasks: list[Task], folder: Path, storage_s: float, passes: int) -> dict:
    """``passes`` passes of the posebank path with its parts timed in place (apart from the timed loops)."""
    prof = Profiler()
    proxy = _Cv2Proxy(cv2)
    group_of = dict(GROUP_OF)
    wrapped = []
    for owner, attr, label, group in POSEBANK_PARTS:
        if prof.wrap(owner, attr, label):
            wrapped.append(f"{owner.__name__}.{attr}")
            if group and isinstance(label, str):
                group_of[label] = group
    for attr, label in CV2_PARTS:
        prof.wrap(proxy, attr, label)
    pb_crop.cv2 = proxy
    crop_s = add_s = 0.0
    try:
        with contextlib.ExitStack() as stack:
            writer = open_writer(stack, folder, "posebank_profile", len(tasks[0].frame.world_coords), 1 << 30)
            for i, t in enumerate(tasks * passes):
                t0 = time.process_time()
                crops = posebank_crop(t)
                t1 = time.process_time()
                for c in crops:
                    writer.add(example(t, i, c.camera, c.box, c.image, c.size, c.mask))
                crop_s += t1 - t0
                add_s += time.process_time() - t1
    finally:
        pb_crop.cv2 = cv2
        prof.restore()
    n = len(tasks) * passes
    groups = dict.fromkeys(("decode", "geometry", "image_warp", "mask_warp", "encode"), 0.0)
    for label, sec in prof.seconds.items():
        if "/" not in label and group_of.get(label, "other") != "other":
            groups[group_of[label]] += sec
    groups["other"] = crop_s - sum(groups.values())
    groups["append"] = add_s + n * storage_s
    whole = crop_s + groups["append"]
    return {
        "ms_per_crop": {k: 1000 * v / n for k, v in groups.items()},
        "share": {k: v / whole for k, v in groups.items()},
        "detail_ms_per_crop": {k: 1000 * v / n for k, v in sorted(prof.seconds.items())},
        "calls_per_crop": {k: c / n for k, c in sorted(prof.calls.items())},
        "wrapped": wrapped,
        "whole_ms_per_crop": 1000 * whole / n,
    }


def profile_clocked(fn, tasks: list[Task], passes: int) -> dict:
    clock = Clock()
    for t in tasks * passes:
        clock._t = time.process_time()
        fn(t, clock)
    n = len(tasks) * passes
    whole = sum(clock.seconds.values())
    return {"ms_per_crop": {k: 1000 * v / n for k, v in clock.seconds.items()},
            "share": {k: v / whole for k, v in clock.seconds.items()}, "whole_ms_per_crop": 1000 * whole / n}


def quality(tasks: list[Task]) -> dict:
    """posebank's and the lower bound's crops against the posepile-style crops of the same tasks."""
    diffs, lb_diffs, ious = [], [], []
    for t in tasks:
        (ours,) = posebank_crop(t)
        _, ref, _, _, ref_rle = posepile_crop(t)
        lb, _ = lower_bound_crop(t)
        assert tuple(ours.size) == (ref.shape[1], ref.shape[0]) == tuple(t.crop_size), (ours.size, ref.shape)
        # both as stored (decoded JPEG) against the posepile-style pixels before their encoding
        diffs.append(float(np.abs(decode_jpeg(ours.image).astype(np.float32) - ref).mean()))
        lb_diffs.append(float(np.abs(decode_jpeg(lb).astype(np.float32) - ref).mean()))
        w, h = ours.size
        a = decode_rle(ours.mask, h, w) if ours.mask else np.zeros((h, w), bool)
        b = decode_rle(ref_rle, h, w) if ref_rle else np.zeros((h, w), bool)
        union = np.logical_or(a, b).sum()
        ious.append(float(np.logical_and(a, b).sum() / union) if union else 1.0)
    return {"mean_abs_diff_posebank_vs_posepile": float(np.mean(diffs)),
            "max_abs_diff_posebank_vs_posepile": float(np.max(diffs)),
            "mean_abs_diff_lower_bound_vs_posepile": float(np.mean(lb_diffs)),
            "mask_iou_posebank_vs_posepile_mean": float(np.mean(ious)),
            "mask_iou_posebank_vs_posepile_min": float(np.min(ious))}


def bench_size(name: str, frames: list[Frame], n_tasks: int, repeats: int, rng, folder: Path,
               profile_passes: int) -> dict:
    n_variants = -(-n_tasks // len(frames))
    tasks = make_tasks(frames, n_variants, PARAMS, rng)[:n_tasks]
    n_joints = len(tasks[0].frame.world_coords)
    loop_s: dict[str, list[float]] = {m: [] for m in METHODS}
    with contextlib.ExitStack() as stack:
        writers = {m: open_writer(stack, folder, m, n_joints, 1 << 30) for m in METHODS}
        for m in METHODS:  # warm-up: first calls allocate and load code paths
            PATHS[m](tasks[0], writers[m], 0)
        for r in range(repeats):
            # interleaved, in a rotating order, so drifts of the machine hit every path alike
            for m in METHODS[r % len(METHODS):] + METHODS[:r % len(METHODS)]:
                loop_s[m].append(time_path(m, tasks, writers[m]))
    storage = {m: storage_cost(m, tasks, folder) for m in METHODS}
    n = len(tasks)
    per_crop = {m: statistics.median(v) / n + storage[m] for m, v in loop_s.items()}
    rate = {m: 1.0 / v for m, v in per_crop.items()}
    ratio = {"vs_posepile": rate["posebank"] / rate["posepile"],
             "vs_lower_bound": rate["posebank"] / rate["lower_bound"]}
    factors = [t.factor for t in tasks]
    return {
        "frame_wh": list(SIZES[name]),
        "frames": {f.name: list(f.size) for f in frames},
        "boxes_per_frame": n_variants,
        "frame_jpeg_kib_mean": float(np.mean([len(f.jpeg) for f in frames]) / 1024),
        "n_crops": n,
        "repeats": repeats,
        "crop_wh_mean": [float(np.mean([t.crop_size[k] for t in tasks])) for k in (0, 1)],
        "crop_wh_range": [[int(min(t.crop_size[k] for t in tasks)), int(max(t.crop_size[k] for t in tasks))]
                          for k in (0, 1)],
        "crop_scale_mean": float(np.mean([crop_scale(t.frame.camera, t.crop_camera) for t in tasks])),
        "decode_factor_counts": {str(f): factors.count(f) for f in sorted(set(factors))},
        "crops_per_s": rate,
        "ms_per_crop": {m: 1000 * v for m, v in per_crop.items()},
        "loop_cpu_seconds_per_repeat": loop_s,
        "storage_flush_ms_per_crop": {m: 1000 * v for m, v in storage.items()},
        "ratio": ratio,
        "targets_met": {k: bool(ratio[k] >= TARGETS[k]) for k in TARGETS},
        "lower_bound_map_ms_per_crop": 1000 * float(np.mean([t.lb_map_cpu_s for t in tasks])),
        "quality": quality(tasks),
        "profile": {
            "passes": profile_passes,
            "posebank": profile_posebank(tasks, folder, storage["posebank"], profile_passes),
            "posepile": profile_clocked(posepile_crop, tasks, profile_passes),
            "lower_bound": profile_clocked(lower_bound_crop, tasks, profile_passes),
        },
    }


# ------------------------------------------------------------------------------------------- provenance
def machine_info() -> dict:
    cpu_model = platform.processor()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu_model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu_model)
    jpeg_lib = next((line.split(":", 1)[1].strip() for line in cv2.getBuildInformation().splitlines()
                     if line.strip().startswith("JPEG:")), "unknown")
    import h5py
    import pycocotools

    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "opencv": cv2.__version__,
        "opencv_jpeg": jpeg_lib,
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "pycocotools": getattr(pycocotools, "__version__", "unknown"),
        "posebank": posebank.__version__,
        "opencv_threads": cv2.getNumThreads(),
        "single_threaded": True,
    }


def print_table(results: dict) -> None:
    head = (f"{'frames':<15}{'f':>7}{'crop px':>10}{'posebank/s':>12}{'posepile/s':>12}{'bound/s':>9}"
            f"{'vs posepile':>13}{'vs bound':>10}{'|diff|':>8}{'mask IoU':>10}")
    print(head)
    print("-" * len(head))
    for name, r in results["sizes"].items():
        rate, ratio, q = r["crops_per_s"], r["ratio"], r["quality"]
        met = {k: "ok" if v else "NO" for k, v in r["targets_met"].items()}
        counts = ",".join(f"{f}:{n}" for f, n in r["decode_factor_counts"].items())
        crop = "x".join(f"{v:.0f}" for v in r["crop_wh_mean"])
        print(f"{name + ' ' + 'x'.join(map(str, r['frame_wh'])):<15}{counts:>7}{crop:>10}{rate['posebank']:>12.1f}"
              f"{rate['posepile']:>12.1f}{rate['lower_bound']:>9.1f}"
              f"{ratio['vs_posepile']:>8.2f}x {met['vs_posepile']:<3}"
              f"{ratio['vs_lower_bound']:>6.2f}x {met['vs_lower_bound']:<2}"
              f"{q['mean_abs_diff_posebank_vs_posepile']:>7.2f}{q['mask_iou_posebank_vs_posepile_mean']:>10.3f}")
    print(f"targets: posebank >= {TARGETS['vs_posepile']}x posepile-style and >= {TARGETS['vs_lower_bound']}x the "
          "lower bound, per core, on both sizes")
    for name, r in results["sizes"].items():
        p = r["profile"]["posebank"]
        parts = ", ".join(f"{k} {v:.1f}" for k, v in p["ms_per_crop"].items())
        print(f"{name} posebank ms/crop: {parts} (whole {p['whole_ms_per_crop']:.1f})")
        for m in ("posepile", "lower_bound"):
            p = r["profile"][m]
            parts = ", ".join(f"{k} {v:.1f}" for k, v in p["ms_per_crop"].items())
            print(f"{name} {m} ms/crop: {parts} (map, excluded: {r['lower_bound_map_ms_per_crop']:.1f})"
                  if m == "lower_bound" else f"{name} {m} ms/crop: {parts}")
    m, code = results["machine"], results["code"]
    print(f"single thread; crops/s = crops per CPU-second; OpenCV {m['opencv']} ({m['opencv_jpeg']}), numpy "
          f"{m['numpy']}, {m['cpu_model']}, {m['cpu_count']} CPUs, 1-min load {m['load_average']['before'][0]:.1f} -> "
          f"{m['load_average']['after'][0]:.1f}; f: decode factor: crops; |diff|: mean abs difference (grey levels) "
          "of posebank's crops from the posepile-style ones")
    if not code["clean"]:
        print(f"note: the measured code differs from commit {code['git_commit']}: {', '.join(code['changed_files'])}")


PARAMS = CropParams()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few-second run (one frame of each size, fewer tasks)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--allow-dirty", action="store_true",
                    help=f"write {DEFAULT_OUT.relative_to(REPO)} even when the measured code is not committed")
    args = ap.parse_args(argv)

    if args.quick and args.out.resolve() == DEFAULT_OUT:
        print(f"error: --quick: give --out (a quick run does not replace {DEFAULT_OUT.relative_to(REPO)})",
              file=sys.stderr)
        return 2
    cv2.setNumThreads(1)
    n_frames, n_tasks, repeats, profile_passes = (1, 2, 1, 1) if args.quick else (None, 16, 9, 3)
    rng = np.random.default_rng(args.seed)
    frames = load_frames(n_frames)
    code = code_state(__file__, [REPO / "tests" / "realframes.py", *FRAME_FILES])  # all imported by now
    if args.out.resolve() == DEFAULT_OUT and not code["clean"] and not args.allow_dirty:
        # the committed results come from committed code: commit, then rerun (or --allow-dirty / --out elsewhere)
        print(f"error: {DEFAULT_OUT.relative_to(REPO)}: not measured: the code it would measure differs from commit "
              f"{code['git_commit']} ({', '.join(code['changed_files'])}); commit it and rerun, or pass --allow-dirty "
              "(recorded as code.clean: false) or --out elsewhere", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="posebank-bench-crop-") as tmp:
        sizes = {name: bench_size(name, frames[name], n_tasks, repeats, rng, Path(tmp), profile_passes)
                 for name in SIZES}
    load_after = os.getloadavg()
    results = {
        "benchmark": "crop",
        "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "code": code,
        "machine": {**machine_info(), "load_average": {"before": list(load_before), "after": list(load_after)}},
        "params": {
            "quick": args.quick,
            "seed": args.seed,
            "crops_per_size": n_tasks,
            "repeats": repeats,
            "profile_passes": profile_passes,
            "statistic": "median over repeats of the CPU time (time.process_time) of a path's loop over all tasks "
                         "(CacheWriter.add included), divided by the number of crops, plus the path's storage cost "
                         "per row (its rows flushed into the file as in the crop stage, ROWS_PER_CHUNK rows per "
                         "flush; file open and close excluded); one thread, so crops/s = crops per CPU-second per "
                         "core",
            "rows_per_flush": ROWS_PER_CHUNK,
            "crop_params": dataclasses.asdict(PARAMS),
            "methods": {
                "posebank": "crop_frame_people (decode at the crop's reduction, image + mask warp, best component, "
                            "encode) + CacheWriter.add",
                "posepile": "full decode, (x/255)^2.2 float32, per-pixel map at 2x, cubic remap, INTER_AREA to the "
                            "crop size, clip, gamma, uint8, encode; mask: full RLE decode, same map, linear, area, "
                            ">= 128, best-IoU 4-connected component, RLE encode; + CacheWriter.add",
                "lower_bound": f"decode at the crop's reduction + one cv2.remap ({PARAMS.interpolation}) with a "
                               "precomputed map + encode; no mask, no cache",
            },
            "masks": "convex hull of the projected joints dilated by 5% of the box height, plus a detached blob",
            "boxes": "the frame's person box, then variants scaled by 0.8-1.3 and shifted by up to 15% (x) / 10% (y)",
        },
        "targets": {"posebank_vs_posepile_min": TARGETS["vs_posepile"],
                    "posebank_vs_lower_bound_min": TARGETS["vs_lower_bound"],
                    "met": all(all(r["targets_met"].values()) for r in sizes.values())},
        "sizes": sizes,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print_table(results)
    write_json(args.out, results)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
