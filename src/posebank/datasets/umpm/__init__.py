"""UMPM, the Utrecht Multi-Person Motion benchmark (van der Aa et al., HICV 2011): one to four people filmed by four
calibrated cameras, with Vicon motion capture of (at most) two of them.

Raw layout, as posepile ``ds/umpm/main.sh`` unpacks the release (the per-sequence zips and ``umpm_camcalib1.zip``
into one folder), with the videos' frames extracted to JPEG::

    root/<seq>.json                             the sequence's settings: ``id``, ``calib`` (and bg, *_dir)
    root/Calib/<calib>_<cam>.ini                the calibration of camera f, s, r or l
    root/Groundtruth/<seq>_vm.c3d               the virtual markers (joints) of the captured people
    root/Video/<seq>_<cam>/frame_%06d.jpg       the video's frames, numbered from 0

The release ships ``Video/<seq>_<cam>.avi.xz``: decompress each and extract its frames in order to
``Video/<seq>_<cam>/frame_000000.jpg, frame_000001.jpg, ...`` (posepile ``ds/umpm/extract_frames.py`` writes them
with imageio at JPEG quality 95); posebank reads the JPEG files, not the videos.

Formats (posepile ``ds/umpm/main.py``; jutanke/pak ``pak/datasets/UMPM.py`` reads the same files):

* ``<seq>.json``: a JSON object; some release files end with a trailing comma before the closing brace, which
  posepile removes with ``sed`` (main.sh) and posebank's reader accepts. posepile replaces ``p2_free_1.json`` and
  ``p3_circle_2.json`` by objects of its own (the release's are broken); posebank uses those objects
  (:data:`JSON_REPLACEMENTS`) in place of the files. posepile moves ``p2_free_2.json`` aside without a replacement,
  so that sequence is not converted (the ``exclude_sequences`` setting).
* ``<calib>_<cam>.ini``: six lines of space-separated numbers: the three rows of K, four distortion coefficients
  (OpenCV ``k1 k2 p1 p2``; posepile appends ``k3 = 0``), the Rodrigues rotation vector and the translation ``t`` in
  mm, with ``x_cam = R x_world + t`` (world -> camera). World up is +z (posepile ``load_camera``).
* ``<seq>_vm.c3d``: a C3D file of 15 points per person in mm (30 points: two people, the first 15 the first
  person), :mod:`posebank.datasets.c3d`; a point whose residual marks it invalid is NaN. The capture runs at twice
  the video's rate: every 2nd C3D frame (0, 2, 4, ...) is video frame 0, 1, 2, ... (posepile ``coords[::2]``).
  The 15 joints, in file order, are posepile's ``pelv,neck,head,rsho,relb,rwri,lsho,lelb,lwri,rhip,lhip,rkne,lkne,
  rank,lank``.

Selection (posepile ``make_stage1`` / ``make_dataset``): every camera of every sequence; per person, a frame is kept
by posepile's ``AdaptivePoseSampler2(100, check_validity=True, assume_nan_unchanged=True, buffer_size=300)`` on the
root-relative pose (the pose minus its mean joint): kept when some joint is newly valid, or when for every one of
the last 300 kept poses some joint moved >= 100 mm. Then posepile's plausibility filter with its stricter UMPM
thresholds (``filter_dataset_by_plausibility(relsmall_thresh=0.5, relbig_thresh=1.25, absbig_thresh=80,
set_to_nan_instead_of_removal=True)``): a bone is implausible when its length is below 0.5x or above 1.25x the
dataset's mean length of that bone and more than 80 mm off it; both joints of an implausible bone are set to NaN,
and an instance with fewer than 4 joints left inside its box is removed. The box is the projected joints' box x
1.15, replaced by the detect stage with a Hungarian-matched detection of IoU >= 0.5, the person dropped without
one (``detect.per_dataset.umpm``). Everything is train.
"""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
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
    RawFileError,
    RawInstance,
    RawLayoutError,
    check_finite_camera,
)
from posebank.datasets.sampling import drop_missing_poses, record_drop

NAME = "umpm"
INFO = DatasetInfo(
    name=NAME,
    full_name="UMPM (Utrecht Multi-Person Motion benchmark)",
    homepage="https://www2.projects.science.uu.nl/umpm/",
    licence=("Research use after registration on the homepage (unverified): the data are downloaded with the login "
             "the authors send, no redistribution."),
    citation=("N. P. van der Aa, X. Luo, G. J. Giezeman, R. T. Tan, R. C. Veltkamp. Utrecht Multi-Person Motion "
              "(UMPM) benchmark: a multi-person dataset with synchronized video and motion capture data for "
              "evaluation of articulated human motion and interaction. Workshop on Human Interaction in Computer "
              "Vision (HICV), ICCV 2011."),
)

CALIB_DIR = "Calib"
GT_DIR = "Groundtruth"
VIDEO_DIR = "Video"
CAMERAS = ("f", "s", "r", "l")  # posepile's loop order
SPLITS = ("train",)
WORLD_UP = (0.0, 0.0, 1.0)  # posepile load_camera
JOINT_NAMES = "pelv,neck,head,rsho,relb,rwri,lsho,lelb,lwri,rhip,lhip,rkne,lkne,rank,lank"
# posepile make_dataset's edges (the left side mirrored, as posepile's JointInfo does)
JOINT_INFO = JointInfo(JOINT_NAMES, "rank-rkne-rhip-pelv-neck-head,rwri-relb-rsho-neck")
N_JOINTS = 15
# posepile main.sh: the objects it writes in place of the release's broken JSON files
JSON_REPLACEMENTS = {
    "p2_free_1": {"id": "p2_free_1", "bg": "backgr_n27_1", "calib": "calib_n27", "video_dir": "Video",
                  "gt_dir": "Groundtruth", "bg_dir": "Background", "calib_dir": "Calib"},
    "p3_circle_2": {"id": "p3_circle_2", "bg": "backgr_l06_7", "calib": "calib_l06", "video_dir": "Video",
                    "gt_dir": "Groundtruth", "bg_dir": "Background", "calib_dir": "Calib"},
}
C3D_UNITS = {"mm": 1.0, "": 1.0, "cm": 10.0, "m": 1000.0}  # the C3D POINT:UNITS -> mm ('' taken as mm)

DEFAULT_PARAMS = {
    "cameras": list(CAMERAS),
    "exclude_sequences": ["p2_free_2"],  # posepile main.sh moves its JSON aside (no replacement)
    "c3d_step": 2,  # every 2nd C3D frame is a video frame (posepile coords[::2])
    "frame_step": 1,  # then every video frame ...
    "adaptive_sampling_mm": 100.0,  # ... per person, kept when some joint moved >= this vs each of ...
    "sampling_buffer": 300,  # ... the last this many kept poses (posepile AdaptivePoseSampler2); 0 mm = off
    "plausibility": True,  # posepile's per-dataset plausibility filter (set implausible bones' joints to NaN)
    "rel_small": 0.5,  # a bone shorter than this x its mean length ...
    "rel_big": 1.25,  # ... or longer than this x ...
    "abs_big_mm": 80.0,  # ... and more than this off the mean is implausible
    "min_joints_in_box": 4,  # an instance with fewer joints inside its box is removed
}

SEQUENCE_JSON = re.compile(r"^(p\d+_[A-Za-z0-9_]+)\.json$")
PAST_LAST_FRAME = "pose rows past the last extracted video frame"
IMPLAUSIBLE = "fewer than min_joints_in_box joints left after the plausibility filter"


# ------------------------------------------------------------------------------------------- paths
def calib_relpath(calib: str, camera: str) -> str:
    return f"{CALIB_DIR}/{calib}_{camera}.ini"


def c3d_relpath(seq: str) -> str:
    return f"{GT_DIR}/{seq}_vm.c3d"


def frames_relpath(seq: str, camera: str) -> str:
    return f"{VIDEO_DIR}/{seq}_{camera}"


def frame_relpath(seq: str, camera: str, i: int) -> str:
    return f"{frames_relpath(seq, camera)}/frame_{i:06d}.jpg"


# ------------------------------------------------------------------------------------------- readers
def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except OSError as e:
        raise RawFileError(path, f"unreadable {what} ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise RawFileError(path, f"unreadable {what}: not a text file") from None


def read_sequence_json(path) -> dict:
    """The sequence settings of ``<seq>.json`` (a trailing comma before a closing brace or bracket accepted, the
    release's defect that posepile's main.sh removes); posepile's replacement object for its broken files."""
    path = Path(path)
    stem = path.name[:-len(".json")] if path.name.endswith(".json") else path.name
    if stem in JSON_REPLACEMENTS:
        return dict(JSON_REPLACEMENTS[stem])
    text = _read_text(path, "sequence file")
    try:
        value = json.loads(re.sub(r",(\s*[}\]])", r"\1", text))
    except json.JSONDecodeError:
        raise RawFileError(path, "unreadable sequence file: not valid JSON, truncated or corrupt") from None
    if not isinstance(value, dict) or not all(isinstance(value.get(k), str) and value.get(k) for k in ("id", "calib")):
        raise RawFileError(path, "the sequence file is not an object with the strings 'id' and 'calib'")
    return value


def read_camera(path) -> Camera:
    """The camera of a ``<calib>_<cam>.ini`` file (module docstring)."""
    path = Path(path)
    lines = [line for line in _read_text(path, "calibration file").splitlines() if line.strip()]
    if len(lines) != 6:
        raise RawFileError(path, f"{len(lines)} non-empty lines, expected 6 (3 rows of K, distortion, rotation "
                                 f"vector, translation): truncated or not a UMPM calibration file")
    rows = []
    for n, (line, size) in enumerate(zip(lines, (3, 3, 3, 4, 3, 3)), 1):
        try:
            values = [float(v) for v in line.split()]
        except ValueError:
            raise RawFileError(path, f"line {n} is not numeric: {line.strip()!r}") from None
        if len(values) != size:
            raise RawFileError(path, f"line {n} has {len(values)} values, expected {size}")
        rows.append(values)
    rot = cv2.Rodrigues(np.asarray(rows[4], np.float64))[0]
    t = np.asarray(rows[5], np.float64)
    camera = Camera(intrinsic_matrix=np.asarray(rows[:3]), R=rot, t=-rot.T @ t,
                    distortion_coeffs=[*rows[3], 0.0], world_up=WORLD_UP)
    check_finite_camera(camera, path)
    return camera


def read_poses(path, c3d_step: int = 2) -> list[np.ndarray]:
    """Per captured person, (N, 15, 3) mm of ``<seq>_vm.c3d``: every ``c3d_step``-th C3D frame (one per video frame),
    NaN where the marker is invalid."""
    from posebank.datasets.c3d import read_points

    path = Path(path)
    c3d = read_points(path)
    unit = c3d.units.strip().lower()
    if unit not in C3D_UNITS:
        raise RawFileError(path, f"point units {c3d.units!r}; expected mm (or m, cm)")
    points = np.asarray(c3d.points, np.float64)[::c3d_step] * C3D_UNITS[unit]
    if points.ndim != 3 or points.shape[1] not in (N_JOINTS, 2 * N_JOINTS):
        raise RawFileError(path, f"{points.shape[1] if points.ndim == 3 else '?'} points per frame, expected 15 "
                                 f"(one person) or 30 (two people)")
    return list(np.split(points, points.shape[1] // N_JOINTS, axis=1))


def frame_count(folder: Path) -> int:
    """The number of consecutive frames ``frame_000000.jpg, frame_000001.jpg, ...`` in an extracted frame folder."""
    names = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    n = 0
    while f"frame_{n:06d}.jpg" in names:
        n += 1
    return n


# ------------------------------------------------------------------------------------------- selection
class AdaptivePoseSampler2:
    """posepile ``AdaptivePoseSampler2(thresh, check_validity=True, assume_nan_unchanged=True, buffer_size)``: keep
    a pose when a joint invalid in the last kept pose is valid now, or when, against every pose of the ring buffer
    of the last ``buffer_size`` kept poses, some valid joint moved >= ``thresh`` mm. A kept pose enters the buffer
    with its NaN joints filled from the previous entry."""

    def __init__(self, thresh: float, buffer_size: int):
        self.thresh = float(thresh)
        self.size = int(buffer_size)
        self.array: np.ndarray | None = None
        self.i = 0

    def _last(self) -> np.ndarray:
        return self.array[(self.i - 1) % self.size]

    def _add(self, pose: np.ndarray) -> None:
        if self.array is None:
            self.array = np.full((self.size, *pose.shape), np.nan, np.float32)
        entry = self._last().copy()
        ok = ~np.isnan(pose)
        entry[ok] = pose[ok]
        self.array[self.i] = entry
        self.i = (self.i + 1) % self.size

    def should_keep(self, pose) -> bool:
        pose = np.asarray(pose, np.float64)
        valid = ~np.isnan(pose).any(axis=-1)
        if self.array is None:
            self._add(pose)
            return bool(valid.any())
        if np.any(valid & np.isnan(self._last()).any(axis=-1)):
            self._add(pose)
            return True
        change = np.linalg.norm(pose[valid] - self.array[:, valid], axis=-1)
        if change.size == 0:
            return False
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.filterwarnings("ignore", "All-NaN slice encountered")
            minmax = np.nanmin(np.nanmax(change, axis=1), axis=0)
        if minmax >= self.thresh:
            self._add(pose)
            return True
        return False


def bone_lengths(coords: np.ndarray, edges) -> np.ndarray:
    """(..., B) lengths of the bones ``edges`` (NaN where a joint is missing)."""
    a, b = np.asarray(edges).T
    return np.linalg.norm(coords[..., a, :] - coords[..., b, :], axis=-1)


def mean_bones(poses: np.ndarray, edges) -> np.ndarray:
    """(B,) mean length of each bone over the poses where both its joints are valid (posepile compute_mean_bones)."""
    lengths = bone_lengths(poses, edges)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Mean of empty slice")
        return np.nanmean(lengths, axis=0) if len(poses) else np.full(len(edges), np.nan)


def implausible_bones(pose: np.ndarray, means: np.ndarray, edges, p: dict) -> np.ndarray:
    """(B,) bool: posepile's rule, (length < rel_small x mean or > rel_big x mean) and |length - mean| > abs_big_mm."""
    lengths = bone_lengths(pose, edges)
    rel = lengths / (means + 1e-8)
    with np.errstate(invalid="ignore"):
        return ((rel < p["rel_small"]) | (rel > p["rel_big"])) & (np.abs(lengths - means) > p["abs_big_mm"])


def apply_plausibility(out: list[RawInstance], p: dict, dropped: list | None) -> list[RawInstance]:
    """posepile's ``filter_dataset_by_plausibility(..., set_to_nan_instead_of_removal=True)`` over all instances:
    the joints of implausible bones set to NaN, instances with fewer than ``min_joints_in_box`` joints in their box
    left out. The box is the projected joints' box (the detection is matched later), so the count is that of the
    joints left valid and in front of the camera."""
    if not out:
        return out
    edges = JOINT_INFO.edges
    means = mean_bones(np.stack([inst.world_coords for inst in out]), edges)
    kept, few = [], {}
    for inst in out:
        bad = implausible_bones(inst.world_coords, means, edges, p)
        if bad.any():
            joints = sorted({j for (a, b), k in zip(edges, bad) if k for j in (a, b)})
            inst.world_coords[joints] = np.nan
        valid = np.isfinite(inst.world_coords).all(axis=1)
        n_in = 0
        if valid.any():
            n_in = int(np.count_nonzero(inst.camera.world_to_camera(inst.world_coords[valid])[:, 2] > 0))
        if n_in < p["min_joints_in_box"]:
            few.setdefault(inst.source.rsplit("/", 1)[0], []).append(inst.frame_index)
            continue
        kept.append(inst)
    for where, frames in few.items():
        record_drop(dropped, where, frames, IMPLAUSIBLE)
    return kept


# ------------------------------------------------------------------------------------------- params, layout
def check_params(params: dict | None = None) -> dict:
    p = check_dataset_params(NAME, params, DEFAULT_PARAMS)
    cams = p["cameras"]
    if not cams or len(set(cams)) != len(cams) or set(cams) - set(CAMERAS):
        raise ParamsError(f"datasets.{NAME}.cameras", f"must be distinct values of {', '.join(CAMERAS)}, got {cams}")
    if not all(isinstance(s, str) and s for s in p["exclude_sequences"]):
        raise ParamsError(f"datasets.{NAME}.exclude_sequences", f"must be sequence names, got "
                                                                f"{p['exclude_sequences']}")
    for key in ("c3d_step", "frame_step", "sampling_buffer"):
        if p[key] < 1:
            raise ParamsError(f"datasets.{NAME}.{key}", f"must be a positive integer, got {p[key]}")
    if p["adaptive_sampling_mm"] < 0:
        raise ParamsError(f"datasets.{NAME}.adaptive_sampling_mm", f"must be >= 0 (0 = off), got "
                                                                   f"{p['adaptive_sampling_mm']}")
    if not 0 <= p["rel_small"] < 1 < p["rel_big"]:
        raise ParamsError(f"datasets.{NAME}.rel_small", f"rel_small must be in [0, 1) and rel_big > 1, got "
                                                        f"{p['rel_small']} and {p['rel_big']}")
    if p["abs_big_mm"] < 0:
        raise ParamsError(f"datasets.{NAME}.abs_big_mm", f"must be >= 0, got {p['abs_big_mm']}")
    if not 0 <= p["min_joints_in_box"] <= N_JOINTS:
        raise ParamsError(f"datasets.{NAME}.min_joints_in_box", f"must be 0..{N_JOINTS}, got "
                                                                f"{p['min_joints_in_box']}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    check_params(params)
    return SPLITS


@dataclasses.dataclass(frozen=True)
class Sequence:
    name: str  # the id, e.g. p2_chair_1
    calib: str  # e.g. calib_l06
    json: str  # relative path of its settings file


def check_layout(root, params: dict | None = None) -> list[Sequence]:
    """Verify the raw tree; the sequences (their settings read), sorted by name. Names every missing file or
    folder: the calibration of each selected camera and the C3D file of each sequence."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    missing = [f"{d}/" for d in (CALIB_DIR, GT_DIR, VIDEO_DIR) if not (root / d).is_dir()]
    jsons = sorted(f.name for f in root.iterdir() if f.is_file() and SEQUENCE_JSON.match(f.name))
    jsons = [j for j in jsons if j[:-len(".json")] not in p["exclude_sequences"]]
    if not jsons:
        missing.append("<seq>.json (the sequence files, e.g. p2_chair_1.json)")
    if missing:
        raise RawLayoutError(NAME, root, missing)
    out = []
    for j in jsons:
        info = read_sequence_json(root / j)
        seq = Sequence(info["id"], info["calib"], j)
        missing += [rel for rel in [c3d_relpath(seq.name), *(calib_relpath(seq.calib, c) for c in p["cameras"])]
                    if not (root / rel).is_file() and rel not in missing]
        out.append(seq)
    if missing:
        raise RawLayoutError(NAME, root, missing)
    return sorted(out, key=lambda s: s.name)


# ------------------------------------------------------------------------------------------- instances
def _select(poses: np.ndarray, n: int, p: dict, where: str, dropped) -> list[int]:
    """The frames of one person's poses kept by the frame step and posepile's sampler on the root-relative pose."""
    frames = drop_missing_poses(poses, range(0, n, p["frame_step"]), where, dropped)
    if p["adaptive_sampling_mm"] <= 0:
        return frames
    sampler = AdaptivePoseSampler2(p["adaptive_sampling_mm"], p["sampling_buffer"])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Mean of empty slice")
        return [i for i in frames if sampler.should_keep(poses[i] - np.nanmean(poses[i], axis=0))]


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected person instance, ordered by sequence, camera, frame and person."""
    p = check_params(params)
    root = Path(root)
    out = []
    for seq in check_layout(root, p):
        people = read_poses(root / c3d_relpath(seq.name), p["c3d_step"])
        cams = {c: read_camera(root / calib_relpath(seq.calib, c)) for c in p["cameras"]}
        counts = {c: frame_count(root / frames_relpath(seq.name, c)) for c in cams}
        for c, n in counts.items():
            if n == 0 and dropped is not None:
                dropped.append(Dropped(c3d_relpath(seq.name), f"camera {c}: no extracted frames "
                                       f"({frames_relpath(seq.name, c)}/frame_000000.jpg)", len(people[0])))
        n_frames = max(counts.values())
        if n_frames:  # (a sequence without any frames is recorded per camera above)
            record_drop(dropped, c3d_relpath(seq.name), range(n_frames, len(people[0])), PAST_LAST_FRAME)
        selected = [set(_select(poses, min(n_frames, len(poses)), p, c3d_relpath(seq.name), dropped))
                    for poses in people]
        for c, camera in cams.items():
            if 0 < counts[c] < n_frames:
                record_drop(dropped, frames_relpath(seq.name, c),
                            [i for i in range(counts[c], n_frames) if any(i in s for s in selected)],
                            PAST_LAST_FRAME)
            for i in range(counts[c]):
                for k, (poses, keep) in enumerate(zip(people, selected)):
                    if i not in keep:
                        continue
                    out.append(RawInstance(
                        source=frame_relpath(seq.name, c, i), frame_index=i, world_coords=poses[i].copy(),
                        camera=camera, split="train", sequence=seq.name,
                        activity=seq.name.split("_")[1], camera_name=c, person_index=k))
    if p["plausibility"]:
        out = apply_plausibility(out, p, dropped)
    return out


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.umpm.fixture.make_fixture`, which
    takes the ``options``)."""
    from posebank.datasets.umpm.fixture import make_fixture as write

    return write(root, seed, **options)


RAW_INSTRUCTIONS = """
    UMPM: register on its homepage, https://www2.projects.science.uu.nl/umpm/ ; with the login you get, download
    (HTTP basic authentication) every zip listed in https://www2.projects.science.uu.nl/umpm/data/urls.txt and unpack
    them into the raw folder; decompress each Video/<seq>_<cam>.avi.xz and extract its frames in order to
    Video/<seq>_<cam>/frame_000000.jpg, frame_000001.jpg, ... (the .avi files are then no longer needed), so that
    the raw folder holds
        p2_chair_1.json ...    Calib/calib_l06_f.ini ...    Groundtruth/p2_chair_1_vm.c3d ...
        Video/p2_chair_1_f/frame_000000.jpg ...
"""
