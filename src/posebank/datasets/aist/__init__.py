"""AIST++ (Li et al., ICCV 2021): 3D keypoints and cameras for the multi-view videos of the AIST Dance Video DB.

Raw layout, as posepile ``ds/aist/main.sh`` arranges it (the videos of ``refined_10M_all_video_url.csv`` in
``videos/``, the annotations' ``fullset.zip`` unpacked, its ``aist_plusplus_final`` renamed ``annotations``)::

    root/videos/<genre>_<situation>_c<01..09>_<dancer>_<music>_<choreo>.mp4    1920x1080 multi-view videos
    root/annotations/keypoints3d/<genre>_<situation>_cAll_<dancer>_<music>_<choreo>.pkl
    root/annotations/cameras/<setting>.json      9 cameras of one environment setting
    root/annotations/cameras/mapping.txt         "<sequence> <setting>" per line
    root/annotations/ignore_list.txt             sequences with poor reconstructions, one a line
    root/annotations/splits/pose_{train,val,test}.txt   the sequences of each pose split, one a line

Formats (google/aistplusplus_api ``aist_plusplus/loader.py`` and ``processing/``; the dataset site's
``download.html``): a keypoints3d file is a pickle of ``{'keypoints3d': (N, 17, 3), 'keypoints3d_optim':
(N, 17, 3)}`` (``run_estimate_keypoints.py``: numpy arrays, ``pickle.HIGHEST_PROTOCOL``), COCO-17 joints in
centimetres, one row per frame at exactly 60 fps; posebank reads them only through
:func:`posebank.core.safe_pickle.load` (numpy arrays and builtins, nothing else). A setting json is the list of
aniposelib ``Camera.get_dict()`` of its 9 cameras: ``name`` (``c01`` ...), ``size`` [width, height],
``matrix`` (3x3), ``distortions`` (OpenCV k1 k2 p1 p2 k3), ``rotation`` (Rodrigues vector, world -> camera) and
``translation`` (cm, world -> camera), so that ``x_cam = R x_world + T``.

Conversion as posepile ``ds/aist/main.py``: ``keypoints3d_optim`` x 10 (mm), the neck and pelvis appended as the
means of the shoulders and of the hips (19 joints, posepile's names, order and edges); posebank's camera R =
Rodrigues(rotation), optical centre ``-R^T T`` x 10 mm, K = ``matrix``, OpenCV distortion, world up +y. Sequences
of ``ignore_list.txt`` are skipped; every frame, then per sequence posepile's adaptive pose sampling (a frame is
kept when some joint moved >= 100 mm since the last kept one; posepile runs one sampler per video over the same
world poses, so every view keeps the same frames); box = projected joints x 1.15 (the detect stage's projected
box). Splits from ``splits/pose_*.txt``.

Frames: the annotations are on an exact 60 fps grid, and some AIST videos have a slightly different frame rate; the
API and posepile decode through FFmpeg's ``fps=60`` filter (``round=up``). :func:`frame_source` does the same
resampling from the decoded frames' timestamps (:func:`resample_60fps`), so annotation row ``i`` is matched with
the video frame FFmpeg's filter would output as frame ``i``.

Views excluded as the API's own reconstruction excludes them (``run_estimate_keypoints.py``,
``run_estimate_camera.py``): ``c05`` of ``gBR_sBM_cAll_d04_mBR0_ch01`` ("not synced view") and ``c07`` of
``gJB_sBM_cAll_d07_mJB3_ch05`` ("size 640x480"); posepile converts both.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from posebank.core import safe_pickle
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
from posebank.datasets.sampling import AdaptivePoseSampler, drop_missing_poses, record_drop

log = logging.getLogger(__name__)

NAME = "aist"
INFO = DatasetInfo(
    name=NAME,
    full_name="AIST++ (on the AIST Dance Video Database)",
    homepage="https://google.github.io/aistplusplus_dataset/",
    licence=("AIST++ annotations: CC BY 4.0 (unverified); the videos: the AIST Dance Video Database Terms of Use "
             "(https://aistdancedb.ongaaccel.jp/), research use, no redistribution."),
    citation=("R. Li, S. Yang, D. A. Ross, A. Kanazawa. AI Choreographer: Music Conditioned 3D Dance Generation "
              "with AIST++. ICCV 2021. S. Tsuchida, S. Fukayama, M. Hamasaki, M. Goto. AIST Dance Video "
              "Database: Multi-genre, Multi-dancer, and Multi-camera Database for Dance Information Processing. "
              "ISMIR 2019."),
)

ANNOTATIONS = "annotations"
VIDEO_DIR = "videos"
KEYPOINTS_DIR = f"{ANNOTATIONS}/keypoints3d"
CAMERA_DIR = f"{ANNOTATIONS}/cameras"
MAPPING = f"{CAMERA_DIR}/mapping.txt"
IGNORE_LIST = f"{ANNOTATIONS}/ignore_list.txt"
SPLITS = ("train", "val", "test")
SPLIT_FILES = {s: f"{ANNOTATIONS}/splits/pose_{s}.txt" for s in SPLITS}
VIEWS = tuple(f"c{i:02d}" for i in range(1, 10))  # aist_plusplus/loader.py AISTDataset.VIEWS
KEYPOINTS_KEY = "keypoints3d_optim"
N_RAW_JOINTS = 17
CM_TO_MM = 10.0
FPS = 60  # the annotations' frame rate (download.html "Timestamps")
FRAME_SIZE = (1920, 1080)  # download.html: size "is [1920, 1080] for all AIST 1080P video"
WORLD_UP = (0.0, 1.0, 0.0)  # posepile ds/aist/main.py load_aist_cameras
# views the API's reconstruction sets to NaN (processing/run_estimate_keypoints.py, run_estimate_camera.py)
EXCLUDED_VIEWS = {("gBR_sBM_cAll_d04_mBR0_ch01", "c05"): "not a synchronised view (AIST++ API: 'not synced view')",
                  ("gJB_sBM_cAll_d07_mJB3_ch05", "c07"): "a 640x480 video (AIST++ API: 'size 640x480')"}

JOINT_NAMES = "nose,leye,reye,lear,rear,lsho,rsho,lelb,relb,lwri,rwri,lhip,rhip,lkne,rkne,lank,rank,neck,pelv"
JOINT_INFO = JointInfo(JOINT_NAMES, "nose-neck-pelv-lhip-lkne-lank,rwri-relb-rsho-neck-lsho-lelb-lwri,"
                                    "lear-leye-reye-rear,pelv-rhip-rkne-rank")  # posepile make_dataset
_IDS = {n: i for i, n in enumerate(JOINT_NAMES.split(","))}

DEFAULT_PARAMS = {
    "splits": list(SPLITS),
    "cameras": list(VIEWS),
    "frame_step": 1,  # posepile: every frame ...
    "adaptive_sampling_mm": 100.0,  # ... then per sequence keep a frame when some joint moved >= this; 0 = off
    "use_ignore_list": True,  # skip the sequences of ignore_list.txt (posepile; the API recommends it)
}
FRAME_SOURCE_PARAMS = ()  # the frames depend on no setting

_SEQUENCE = re.compile(r"^(g[A-Z]{2})_(s[A-Z]{2})_cAll_(d\d{2})_(m[A-Z]{2}\d)_(ch\d{2})$")

VIDEO_MISSING = "video missing"
IN_NO_SPLIT = "in none of the splits/pose_*.txt files"


# ------------------------------------------------------------------------------------------- reading
def read_lines(path) -> list[str]:
    """The non-empty lines of a text file, stripped; RawFileError when unreadable."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise RawFileError(path, f"unreadable ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise RawFileError(path, "not a text file") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_mapping(path) -> dict[str, str]:
    """``mapping.txt``: sequence -> setting name (the loader reads it with ``np.loadtxt(dtype=str)``: two
    whitespace-separated columns)."""
    out = {}
    for n, line in enumerate(read_lines(path), 1):
        parts = line.split()
        if len(parts) != 2:
            raise RawFileError(path, f"line {n} is {line!r}, expected '<sequence> <setting>'")
        out[parts[0]] = parts[1]
    return out


def _number_array(path, where: str, value, shape: tuple) -> np.ndarray:
    try:
        arr = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        raise RawFileError(path, f"{where} is not numeric: {value!r}") from None
    if arr.shape != shape:
        raise RawFileError(path, f"{where} has shape {arr.shape}, expected {shape}")
    return arr


def camera_from_dict(cam: dict, path, world_up=WORLD_UP) -> Camera:
    """posebank's camera for one entry of a setting json (aniposelib ``Camera.get_dict()``; centimetres)."""
    name = cam.get("name", "?") if isinstance(cam, dict) else "?"
    where = f"camera {name!r}"
    if not isinstance(cam, dict):
        raise RawFileError(path, f"an entry is a {type(cam).__name__}, expected a camera object")
    missing = [k for k in ("name", "matrix", "rotation", "translation", "distortions") if k not in cam]
    if missing:
        raise RawFileError(path, f"{where} has no {', '.join(repr(k) for k in missing)}")
    matrix = _number_array(path, f"{where} 'matrix'", cam["matrix"], (3, 3))
    rvec = _number_array(path, f"{where} 'rotation'", cam["rotation"], (3,))
    tvec = _number_array(path, f"{where} 'translation'", cam["translation"], (3,))
    dist = np.asarray(cam["distortions"], np.float64).reshape(-1) if isinstance(
        cam["distortions"], (list, tuple)) else None
    if dist is None or len(dist) > 5 and np.any(dist[5:] != 0):
        raise RawFileError(path, f"{where} 'distortions' must be up to 5 OpenCV coefficients (k1 k2 p1 p2 k3), "
                                 f"got {cam['distortions']!r}")
    coeffs = np.zeros(5)
    coeffs[:min(5, len(dist))] = dist[:5]
    rot = cv2.Rodrigues(rvec.reshape(3, 1))[0]
    camera = Camera(intrinsic_matrix=matrix, R=rot, t=-rot.T @ tvec * CM_TO_MM, distortion_coeffs=coeffs,
                    world_up=world_up)
    check_finite_camera(camera, path)
    return camera


@dataclasses.dataclass(frozen=True)
class Setting:
    cameras: dict  # view name (c01 ...) -> Camera
    sizes: dict  # view name -> (width, height)


def read_setting(path) -> Setting:
    """One ``cameras/<setting>.json``: its cameras by name."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes())
    except OSError as e:
        raise RawFileError(path, f"unreadable ({e.strerror or e})") from None
    except (ValueError, UnicodeDecodeError):
        raise RawFileError(path, "unreadable camera file: not valid JSON, truncated or corrupt") from None
    if not isinstance(data, list) or not data:
        raise RawFileError(path, "expected a non-empty list of cameras")
    cameras, sizes = {}, {}
    for cam in data:
        camera = camera_from_dict(cam, path)
        name = str(cam["name"])
        if name in cameras:
            raise RawFileError(path, f"camera {name!r} appears twice")
        cameras[name] = camera
        size = cam.get("size", FRAME_SIZE)
        try:
            sizes[name] = (int(size[0]), int(size[1]))
        except (TypeError, ValueError, IndexError):
            raise RawFileError(path, f"camera {name!r} 'size' is {size!r}, expected [width, height]") from None
    return Setting(cameras, sizes)


def read_keypoints(path) -> np.ndarray:
    """(N, 17, 3) ``keypoints3d_optim`` of one keypoints3d pickle, in cm (as stored)."""
    path = Path(path)
    data = safe_pickle.load(path)
    if not isinstance(data, dict):
        raise RawFileError(path, f"holds a {type(data).__name__}, expected a dict with {KEYPOINTS_KEY!r}")
    if KEYPOINTS_KEY not in data:
        raise RawFileError(path, f"no {KEYPOINTS_KEY!r} (has {sorted(map(str, data))})")
    try:
        arr = np.asarray(data[KEYPOINTS_KEY], np.float64)
    except (TypeError, ValueError):
        raise RawFileError(path, f"{KEYPOINTS_KEY!r} is not numeric") from None
    if arr.ndim != 3 or arr.shape[1:] != (N_RAW_JOINTS, 3) or not len(arr):
        raise RawFileError(path, f"{KEYPOINTS_KEY!r} has shape {arr.shape}, expected (N, 17, 3)")
    return arr


def world_joints(keypoints_cm: np.ndarray) -> np.ndarray:
    """(N, 19, 3) mm: the 17 COCO joints x 10, then the neck (shoulder mean) and pelvis (hip mean), as posepile."""
    coords = np.asarray(keypoints_cm, np.float64) * CM_TO_MM
    neck = coords[:, [_IDS["lsho"], _IDS["rsho"]]].mean(axis=1, keepdims=True)
    pelv = coords[:, [_IDS["lhip"], _IDS["rhip"]]].mean(axis=1, keepdims=True)
    return np.concatenate([coords, neck, pelv], axis=1)


def video_name(sequence: str, view: str) -> str:
    """AIST video name of one view of an AIST++ sequence (loader ``get_video_name``)."""
    return sequence.replace("cAll", view)


def video_size(path) -> tuple[int, int]:
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise RawFileError(path, "cannot open video (unsupported codec or corrupt file)")
        return int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        cap.release()


# ------------------------------------------------------------------------------------------- params, layout
def check_params(params: dict | None) -> dict:
    p = check_dataset_params(NAME, params, DEFAULT_PARAMS)
    if not p["splits"] or len(set(p["splits"])) != len(p["splits"]) or set(p["splits"]) - set(SPLITS):
        raise ParamsError(f"datasets.{NAME}.splits", f"must be distinct splits of {', '.join(SPLITS)}, "
                                                    f"got {p['splits']}")
    if not p["cameras"] or len(set(p["cameras"])) != len(p["cameras"]) or set(p["cameras"]) - set(VIEWS):
        raise ParamsError(f"datasets.{NAME}.cameras", f"must be distinct views of {', '.join(VIEWS)}, "
                                                     f"got {p['cameras']}")
    if p["frame_step"] < 1:
        raise ParamsError(f"datasets.{NAME}.frame_step", f"must be a positive integer, got {p['frame_step']}")
    if p["adaptive_sampling_mm"] < 0:
        raise ParamsError(f"datasets.{NAME}.adaptive_sampling_mm", "must be >= 0 (0 = off), got "
                                                                   f"{p['adaptive_sampling_mm']}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    p = check_params(params)
    return tuple(s for s in SPLITS if s in p["splits"])


@dataclasses.dataclass(frozen=True)
class Layout:
    sequences: list  # keypoints3d file stems, sorted
    mapping: dict  # sequence -> setting
    ignored: frozenset
    split_of: dict  # sequence -> split


def check_layout(root, params: dict | None = None) -> Layout:
    """Verify the annotation files of the raw tree and read its lists; names every missing file."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    missing = []
    for rel in (f"{VIDEO_DIR}/", f"{KEYPOINTS_DIR}/", MAPPING, IGNORE_LIST, *SPLIT_FILES.values()):
        if not (root / rel).exists():
            missing.append(rel)
    if not missing:
        sequences = sorted(f.stem for f in (root / KEYPOINTS_DIR).iterdir() if f.suffix == ".pkl")
        if not sequences:
            missing.append(f"{KEYPOINTS_DIR}/<sequence>.pkl (no keypoints3d files)")
    if missing:
        raise RawLayoutError(NAME, root, missing)
    mapping = read_mapping(root / MAPPING)
    ignored = frozenset(read_lines(root / IGNORE_LIST)) if p["use_ignore_list"] else frozenset()
    split_of = {}
    for split, rel in SPLIT_FILES.items():
        for seq in read_lines(root / rel):
            split_of.setdefault(seq, split)
    for setting in sorted({mapping[s] for s in sequences if s in mapping and s not in ignored}):
        if not (root / CAMERA_DIR / f"{setting}.json").is_file():
            missing.append(f"{CAMERA_DIR}/{setting}.json")
    unmapped = [s for s in sequences if s not in mapping and s not in ignored]
    if unmapped:
        raise RawFileError(root / MAPPING, f"has no setting for {', '.join(unmapped[:5])}"
                                           f"{' ...' if len(unmapped) > 5 else ''}")
    if missing:
        raise RawLayoutError(NAME, root, missing)
    return Layout(sequences, mapping, ignored, split_of)


# ------------------------------------------------------------------------------------------- instances
def selected_frames(poses: np.ndarray, p: dict, where: str, dropped: list | None) -> list[int]:
    """Frames of one sequence: every ``frame_step``-th with a finite pose, then the adaptive sampler."""
    frames = drop_missing_poses(poses, range(0, len(poses), p["frame_step"]), where, dropped)
    nonfinite = [i for i in frames if not np.isfinite(poses[i]).all()]
    record_drop(dropped, where, nonfinite, "some joints are not finite")
    frames = [i for i in frames if i not in set(nonfinite)]
    if p["adaptive_sampling_mm"] > 0:
        sampler = AdaptivePoseSampler(p["adaptive_sampling_mm"])
        frames = [i for i in frames if sampler.should_keep(poses[i])]
    return frames


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected person instance, ordered by sequence, view and frame."""
    p = check_params(params)
    root = Path(root)
    layout = check_layout(root, p)
    settings: dict[str, Setting] = {}
    out = []
    for seq in layout.sequences:
        if seq in layout.ignored:
            continue
        where = f"{KEYPOINTS_DIR}/{seq}.pkl"
        split = layout.split_of.get(seq)
        if split is None:
            if dropped is not None:
                dropped.append(Dropped(where, IN_NO_SPLIT, len(read_keypoints(root / where))))
            continue
        if split not in p["splits"]:
            continue
        setting_name = layout.mapping[seq]
        if setting_name not in settings:
            settings[setting_name] = read_setting(root / CAMERA_DIR / f"{setting_name}.json")
        setting = settings[setting_name]
        poses = world_joints(read_keypoints(root / where))
        match = _SEQUENCE.match(seq)
        genre, situation, dancer = (match.group(1), match.group(2), match.group(3)) if match else ("", "", "")
        frames = selected_frames(poses, p, where, dropped)

        def drop(at: str, reason: str, count: int = len(frames)) -> None:  # a whole view: its selected frames
            if dropped is not None and count:
                dropped.append(Dropped(at, reason, count))

        for view in p["cameras"]:
            source = f"{VIDEO_DIR}/{video_name(seq, view)}.mp4"
            if (seq, view) in EXCLUDED_VIEWS:
                drop(where, f"{view}: {EXCLUDED_VIEWS[seq, view]}")
                continue
            if not (root / source).is_file():
                drop(where, f"{view}: {VIDEO_MISSING} ({source})")
                continue
            if view not in setting.cameras:
                raise RawFileError(root / CAMERA_DIR / f"{setting_name}.json", f"has no camera {view!r}")
            size = video_size(root / source)
            if size != setting.sizes[view]:
                drop(source, f"the video is {size[0]}x{size[1]}, its camera's size "
                             f"{setting.sizes[view][0]}x{setting.sizes[view][1]}")
                continue
            camera = setting.cameras[view]
            for i in frames:
                out.append(RawInstance(
                    source=source, frame_index=i, world_coords=poses[i].copy(), camera=camera, split=split,
                    subject=dancer or seq, sequence=seq, activity=f"{genre}_{situation}" if match else "",
                    camera_name=view))
    return out


# ------------------------------------------------------------------------------------------- frames
def resample_60fps(timestamps_s: Sequence[float], frame_duration_s: float | None = None) -> list[int]:
    """For FFmpeg's ``fps=60:round=up`` filter (what posepile and the AIST++ API decode through): the input frame
    of each output frame, given the input frames' presentation times (seconds from the stream's start).

    The filter rounds each input time up onto the 1/60 s grid (``r_k = ceil(60 t_k)``), starts at ``r_0`` and gives
    output ``n`` the last input frame with ``r_k <= r_0 + n`` (duplicating or dropping frames); it stops at the end
    of the last frame (its time plus ``frame_duration_s``, by default the mean input frame interval)."""
    t = np.asarray(timestamps_s, np.float64)
    if not len(t):
        return []
    rounded = np.ceil(t * FPS - 1e-6).astype(np.int64)
    if frame_duration_s is None:
        frame_duration_s = float(np.mean(np.diff(t))) if len(t) > 1 else 1.0 / FPS
    end = math.ceil((t[-1] + frame_duration_s) * FPS - 1e-6)
    slots = np.arange(rounded[0], max(end, rounded[0] + 1))
    return (np.searchsorted(np.maximum.accumulate(rounded), slots, side="right") - 1).tolist()


def _read_resampled(path: Path, indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray | None]]:
    """``(i, frame)`` for the wanted output frames of FFmpeg's ``fps=60:round=up`` filter, in increasing order, in
    one sequential pass (the rule of :func:`resample_60fps`; input ``k`` holds the outputs from its rounded time to
    the next input's); None past the end of the video."""
    pending = collections.deque(sorted(set(int(i) for i in indices)))
    if not pending:
        return
    if not path.is_file():
        raise FrameReadError(path, "video file not found")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise FrameReadError(path, "cannot open video (unsupported codec or corrupt file)")
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) or FPS
        span = math.ceil(FPS / fps) + 2  # outputs one input frame can hold, with room for jitter
        first = previous = None  # rounded times (1/60 s slots) of the first and the last grabbed frame
        image = None
        last_time = 0.0
        while pending and cap.grab():
            last_time = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            slot = math.ceil(last_time * FPS - 1e-6)
            first = slot if first is None else first
            slot = slot - first if previous is None else max(slot - first, previous)
            while previous is not None and pending and pending[0] < slot:
                yield pending.popleft(), image
            image = None
            if pending and pending[0] < slot + span:
                ok, frame = cap.retrieve()
                image = frame if ok else None
            previous = slot
        if previous is not None:
            end = math.ceil((last_time + 1.0 / fps) * FPS - 1e-6) - first
            while pending and pending[0] < end:
                yield pending.popleft(), image
        while pending:
            yield pending.popleft(), None
    finally:
        cap.release()


def frame_source(raw_root, params: dict | None = None) -> FrameSource:
    """The videos' frames on the annotations' 60 fps grid (:func:`resample_60fps`)."""
    raw_root = Path(raw_root)

    def frames(source: str, indices: Sequence[int]) -> Iterator[tuple[int, Frame]]:
        for i, image in _read_resampled(raw_root / source, indices):
            yield i, Frame(image)

    return frames


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.aist.fixture.make_fixture`, which
    takes the ``options``)."""
    from posebank.datasets.aist.fixture import make_fixture as write

    return write(root, seed, **options)


RAW_INSTRUCTIONS = """
    AIST++: download the videos listed in https://aistdancedb.ongaaccel.jp/data/video_refined/10M/
    refined_10M_all_video_url.csv into videos/ (or with the AIST++ API's downloader.py), accepting the AIST Dance
    Video Database Terms of Use (on its homepage, https://aistdancedb.ongaaccel.jp), and the annotations'
    fullset.zip (a Google login: https://storage.cloud.google.com/aist_plusplus_public/20210308/fullset.zip);
    unzip it and rename its aist_plusplus_final folder to annotations/, so that the raw folder holds
        videos/gBR_sBM_c01_d04_mBR0_ch01.mp4 ...
        annotations/keypoints3d/gBR_sBM_cAll_d04_mBR0_ch01.pkl ..., annotations/cameras/setting1.json ...,
        annotations/cameras/mapping.txt, annotations/ignore_list.txt, annotations/splits/pose_train.txt ...
"""
