"""JTA, Joint Track Auto (Fabbri et al., ECCV 2018): pedestrians in Grand Theft Auto V, 512 full-HD videos with the
game's own 3D joints.

Raw layout, as the JTA-Dataset repository's ``download_data.py`` unpacks it (fabbrimatteo/JTA-Dataset README)::

    root/videos/{train,val,test}/seq_<n>.mp4          1920 x 1080, 30 fps, 900 frames (256 / 128 / 128 videos)
    root/annotations/{train,val,test}/seq_<n>.json    the annotations of seq_<n>.mp4

An annotation file is a JSON list of rows, one per joint of one person in one frame, 10 numbers each (the README's
"Annotations" table): frame number (counted from 1), person id, joint type (0..21), x2D, y2D (pixels from the
top-left corner of the frame), x3D, y3D, z3D (metres, "the standard camera coordinate system": x right, y down, z
forward), occluded (1 = hidden by something else), self-occluded (1 = hidden by its own body). Frame ``k`` of the
file is frame ``k - 1`` of the video (the repository's ``visualize.py``).

Camera: one fixed pinhole camera for every video, no distortion, no extrinsics (the 3D joints are already in the
camera frame, so the world frame is the camera frame: R = identity, t = 0, millimetres). The annotation tool
(fabbrimatteo/JTA-Mods ``DatasetAnnotator/scenario.cpp``, ``get_2D_from_3D``) projects with a vertical field of
view of 50 degrees, ``f = (H / 2) cot(FOV / 2)`` = 1158.0337 px (the README rounds it to 1158) about the frame centre
(960, 540) in its corner convention, which is (959.5, 539.5) in posebank's pixel-centre convention. ``focal_px``
sets the focal length (posepile uses 1167, which its author found to fit the game's rendered lens distortion
better, JTA-Dataset issue 13; the annotations' 2D joints fit 1158.03). ``world_up`` is set per frame, as posepile
does, to the geometric median of the unit vectors from the ankle midpoint to the neck of the frame's people.

Joints: the 22 joint types in the release's order, posepile's names
``htop,head,neck,rcla,rsho,relb,rwri,lcla,lsho,lelb,lwri,spin0,spin1,spin2,spin3,pelv,rhip,rkne,rank,lhip,lkne,lank``
(``spine4`` is ``pelv``). Occluded joints keep their coordinates (the game knows them); ``visibility`` is 0 for a
joint marked occluded or self-occluded.

Frame selection (posepile ``ds/jta/main.py`` ``make_stage1``): a person in a frame is kept when at least
``min_valid_joints`` (5) joints are valid, i.e. not marked occluded and projected inside the 1920 x 1080 frame in
front of the camera, and then, per person id of a video, when some joint moved ``adaptive_sampling_mm`` (100) mm or
more since that person's last kept pose. The box posepile matches its detections against is the box of the valid
joints' projections (``RawInstance.bbox``); the matching itself (Hungarian on IoU, IoU > 0.1, detection area below
twice the box's, people without one dropped) is the detect stage's rule ``detect.per_dataset.jta``. Splits are the
release's folders: train, val, test (huge8 and medium3 use train and val as training data).
"""

from __future__ import annotations

import json
import logging
import re
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
from posebank.datasets.sampling import AdaptivePoseSampler

log = logging.getLogger(__name__)

NAME = "jta"
INFO = DatasetInfo(
    name=NAME,
    full_name="JTA (Joint Track Auto)",
    homepage="https://github.com/fabbrimatteo/JTA-Dataset",
    licence=("Creative Commons Attribution-NonCommercial 4.0 (CC BY-NC 4.0, the JTA-Dataset README); for research "
             "and educational purposes only, and the download requires agreeing to buy a copy of Grand Theft Auto V."),
    citation=("M. Fabbri, F. Lanzi, S. Calderara, A. Palazzi, R. Vezzani, R. Cucchiara. Learning to Detect and "
              "Track Visible and Occluded Body Joints in a Virtual World. ECCV 2018."),
)

JOINT_NAMES = ("htop,head,neck,rcla,rsho,relb,rwri,lcla,lsho,lelb,lwri,spin0,spin1,spin2,spin3,pelv,rhip,rkne,rank,"
               "lhip,lkne,lank")
# posepile's edges (ds/jta/main.py), the left side mirrored by JointInfo
JOINT_INFO = JointInfo(JOINT_NAMES,
                       "rank-rkne-rhip-pelv-spin3-spin2-spin1-spin0-neck-head-htop,neck-rcla-rsho-relb-rwri")
N_JOINTS = 22
N_COLUMNS = 10
IMAGE_SIZE = (1920, 1080)
FOV_DEGREES = 50.0  # JTA-Mods scenario.cpp: this->fov = 50 (vertical)
TOOL_FOCAL_PX = 1158.0337  # (1080 / 2) * cot(25 deg), the annotation tool's get_2D_from_3D
M_TO_MM = 1000.0
SPLIT_FOLDERS = ("train", "val", "test")
SEQ_RE = re.compile(r"seq_(\d+)\.json")
SHARD_KEY = ("sequence",)  # one video per group
CAMERA_UP = (0.0, -1.0, 0.0)  # a frame without a person whose neck and ankles are known

DEFAULT_PARAMS = {
    "splits": list(SPLIT_FOLDERS),  # the release's folders to convert
    "sequences": [],  # "seq_<n>" names; [] = every annotations/<split>/seq_<n>.json
    "frame_step": 1,  # posepile: every frame
    "focal_px": TOOL_FOCAL_PX,  # posepile: 1167 (fits the rendered lens distortion better; the annotations: 1158.03)
    "min_valid_joints": 5,  # posepile: joints not occluded and inside the frame
    "adaptive_sampling_mm": 100.0,  # per person id: keep when some joint moved this far since its last kept pose
}


# ------------------------------------------------------------------------------------------- readers
def read_annotations(path) -> np.ndarray:
    """The rows of one ``seq_<n>.json`` as an (N, 10) float64 array, checked: frame >= 1, integer ids, joint types
    0..21, flags 0 or 1."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RawFileError(path, f"unreadable annotation file: not valid JSON, truncated or corrupt ({e})") from None
    except OSError as e:
        raise RawFileError(path, f"unreadable annotation file: {e.strerror or e}") from None
    if not isinstance(data, list):
        raise RawFileError(path, f"not a list of rows (a JSON {type(data).__name__})")
    if not data:
        return np.zeros((0, N_COLUMNS))
    try:
        rows = np.asarray(data, np.float64)
    except (TypeError, ValueError):
        lengths = sorted({len(r) if isinstance(r, list) else -1 for r in data})
        raise RawFileError(path, f"rows are not lists of {N_COLUMNS} numbers (row lengths {lengths})") from None
    if rows.ndim != 2 or rows.shape[1] != N_COLUMNS:
        raise RawFileError(path, f"rows have shape {rows.shape[1:]}, expected {N_COLUMNS} numbers each")
    ids = rows[:, :3]
    if not np.isfinite(rows).all():
        raise RawFileError(path, f"row {int(np.argmin(np.isfinite(rows).all(1)))} holds a non-finite number")
    bad = np.flatnonzero((ids != np.round(ids)).any(1) | (rows[:, 0] < 1) | (rows[:, 2] < 0)
                         | (rows[:, 2] >= N_JOINTS) | ~np.isin(rows[:, 8], (0, 1)) | ~np.isin(rows[:, 9], (0, 1)))
    if bad.size:
        raise RawFileError(path, f"row {bad[0]} is not (frame >= 1, person id, joint type 0..{N_JOINTS - 1}, x2D, "
                           f"y2D, x3D, y3D, z3D, occluded 0/1, self-occluded 0/1): {rows[bad[0]].tolist()}")
    return rows


def people_by_frame(rows: np.ndarray) -> dict[int, dict[int, np.ndarray]]:
    """``{frame (1-based): {person id: (22, 7) x2D y2D x3D y3D z3D(mm) occluded self-occluded}}`` in increasing
    frame and person order; a joint without a row is NaN."""
    if not len(rows):
        return {}
    keys = rows[:, :2].astype(np.int64)
    pairs, inverse = np.unique(keys, axis=0, return_inverse=True)
    table = np.full((len(pairs), N_JOINTS, 7), np.nan)
    values = rows[:, 3:].copy()
    values[:, 2:5] *= M_TO_MM
    table[inverse.reshape(-1), rows[:, 2].astype(np.int64)] = values
    out: dict[int, dict[int, np.ndarray]] = {}
    for (frame, person), person_rows in zip(pairs.tolist(), table):
        out.setdefault(frame, {})[person] = person_rows
    return out


def geometric_median(points: np.ndarray, eps: float = 0.01) -> np.ndarray:
    """Weiszfeld's iteration with Vardi and Zhang's step at a data point (posepile ``util/geom3d.geometric_median``)."""
    x = np.asarray(points, np.float64)
    y = x.mean(axis=0)
    for _ in range(1000):
        d = np.linalg.norm(x - y, axis=1)
        nz = d != 0
        if not nz.any():
            return y
        inv = 1 / d[nz]
        t = (inv[:, None] * x[nz]).sum(0) / inv.sum()
        zeros = len(x) - int(nz.sum())
        if zeros == 0:
            y1 = t
        else:
            r = np.linalg.norm((t - y) * inv.sum())
            rinv = 0.0 if r == 0 else zeros / r
            y1 = max(0.0, 1 - rinv) * t + min(1.0, rinv) * y
        if np.linalg.norm(y - y1) < eps:
            return y1
        y = y1
    return y


def frame_up(people: list[np.ndarray]) -> np.ndarray:
    """posepile's ``get_up_vector``: the unit geometric median of the unit ankle-midpoint-to-neck vectors of the
    frame's people ((22, 3) camera mm each); -y (camera up) when no person has a neck and both ankles."""
    j = JOINT_INFO.ids
    dirs = []
    for coords in people:
        v = coords[j["neck"]] - (coords[j["rank"]] + coords[j["lank"]]) / 2
        n = np.linalg.norm(v)
        if np.isfinite(n) and n > 0:
            dirs.append(v / n)
    if not dirs:
        return np.array(CAMERA_UP)
    m = geometric_median(np.array(dirs))
    n = np.linalg.norm(m)
    return m / n if n > 0 else np.array(CAMERA_UP)


def intrinsics(focal_px: float) -> np.ndarray:
    """The JTA camera matrix: ``focal_px`` about the frame centre (959.5, 539.5) in posebank's pixel convention."""
    w, h = IMAGE_SIZE
    return np.array([[focal_px, 0, w / 2 - 0.5], [0, focal_px, h / 2 - 0.5], [0, 0, 1]])


def valid_joints(camera: Camera, coords: np.ndarray, occluded: np.ndarray) -> np.ndarray:
    """posepile's valid joints: not marked occluded, in front of the camera and projected inside the frame."""
    w, h = IMAGE_SIZE
    ok = np.isfinite(coords).all(1)
    out = np.zeros(len(coords), bool)
    if not ok.any():
        return out
    im = camera.project(coords[ok])
    inside = (coords[ok, 2] > 0) & (im[:, 0] >= -0.5) & (im[:, 0] < w - 0.5) & (im[:, 1] >= -0.5) & (
        im[:, 1] < h - 0.5)
    out[ok] = inside
    return out & (occluded != 1)


# ------------------------------------------------------------------------------------------- layout
def check_params(params: dict | None) -> dict:
    p = check_dataset_params(NAME, params, DEFAULT_PARAMS)
    bad = [s for s in p["splits"] if s not in SPLIT_FOLDERS]
    if bad or not p["splits"] or len(set(p["splits"])) != len(p["splits"]):
        raise ParamsError(f"datasets.{NAME}.splits", f"must be distinct names of {', '.join(SPLIT_FOLDERS)}, got "
                          f"{p['splits']}")
    bad = [s for s in p["sequences"] if not isinstance(s, str) or not re.fullmatch(r"seq_\d+", s)]
    if bad:
        raise ParamsError(f"datasets.{NAME}.sequences", f"must be names seq_<n>, got {bad}")
    if p["frame_step"] < 1:
        raise ParamsError(f"datasets.{NAME}.frame_step", f"must be a positive integer, got {p['frame_step']}")
    if not p["focal_px"] > 0:
        raise ParamsError(f"datasets.{NAME}.focal_px", f"must be positive, got {p['focal_px']}")
    if not 0 <= p["min_valid_joints"] <= N_JOINTS:
        raise ParamsError(f"datasets.{NAME}.min_valid_joints", f"must be in 0..{N_JOINTS}, got "
                          f"{p['min_valid_joints']}")
    if p["adaptive_sampling_mm"] < 0:
        raise ParamsError(f"datasets.{NAME}.adaptive_sampling_mm", f"must not be negative, got "
                          f"{p['adaptive_sampling_mm']}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    p = check_params(params)
    return tuple(s for s in SPLIT_FOLDERS if s in p["splits"])


def check_layout(root, params: dict | None = None) -> dict[str, dict[str, tuple[Path, Path]]]:
    """Verify the raw tree: per selected split its annotation folder with the selected (or at least one)
    ``seq_<n>.json``, and each one's video. Returns ``{split: {sequence: (annotation, video)}}``."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    missing, out = [], {}
    for split in splits(p):
        folder = root / "annotations" / split
        found = {f.name[:-5]: f for f in sorted(folder.iterdir(), key=lambda f: f.name)
                 if SEQ_RE.fullmatch(f.name) and f.is_file()} if folder.is_dir() else {}
        found = dict(sorted(found.items(), key=lambda kv: int(kv[0][4:])))
        if p["sequences"]:
            found = {s: f for s, f in found.items() if s in p["sequences"]}
        if not found and not p["sequences"]:
            missing.append(f"annotations/{split}/seq_<n>.json")
        entries = {}
        for seq, ann in found.items():
            video = root / "videos" / split / f"{seq}.mp4"
            if not video.is_file():
                missing.append(f"videos/{split}/{seq}.mp4")
            entries[seq] = (ann, video)
        out[split] = entries
    if p["sequences"]:
        have = {s for entries in out.values() for s in entries}
        missing += [f"annotations/<{'|'.join(splits(p))}>/{s}.json" for s in p["sequences"] if s not in have]
    if missing:
        raise RawLayoutError(NAME, root, missing)
    return out


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected person of every selected frame, ordered by split, sequence number, frame and person id;
    people with too few valid joints are reported in ``dropped`` (one entry per video)."""
    p = check_params(params)
    root = Path(root)
    layout = check_layout(root, p)
    k = intrinsics(p["focal_px"])
    out = []
    for split, entries in layout.items():
        for seq, (ann, video) in entries.items():
            frames = people_by_frame(read_annotations(ann))
            where = ann.relative_to(root).as_posix()
            source = video.relative_to(root).as_posix()
            samplers: dict[int, AdaptivePoseSampler] = {}
            too_few = 0
            for frame, people in frames.items():
                if (frame - 1) % p["frame_step"]:
                    continue
                camera = Camera(intrinsic_matrix=k, R=np.eye(3), t=np.zeros(3),
                                world_up=frame_up([a[:, 2:5] for a in people.values()]))
                check_finite_camera(camera, ann)
                for index, (person, a) in enumerate(people.items()):
                    coords = a[:, 2:5]
                    valid = valid_joints(camera, coords, a[:, 5])
                    if np.count_nonzero(valid) < p["min_valid_joints"]:
                        too_few += 1
                        continue
                    sampler = samplers.setdefault(person, AdaptivePoseSampler(p["adaptive_sampling_mm"]))
                    if p["adaptive_sampling_mm"] > 0 and not sampler.should_keep(coords):
                        continue
                    bbox = None
                    if valid.any():
                        box_points = camera.project(coords[valid])
                        lo, hi = box_points.min(0), box_points.max(0)
                        bbox = np.concatenate([lo, hi - lo])
                    visibility = np.where((a[:, 5] == 1) | (a[:, 6] == 1), 0, 1).astype(np.uint8)
                    visibility[~np.isfinite(a[:, 5])] = 255
                    out.append(RawInstance(
                        source=source, frame_index=frame - 1, world_coords=coords.astype(np.float32),
                        camera=camera, split=split, subject=f"{seq}/person{person}", sequence=seq,
                        activity="pedestrians", bbox=bbox, visibility=visibility,
                        person_index=index))
            if too_few and dropped is not None:
                dropped.append(Dropped(where, f"people with fewer than {p['min_valid_joints']} valid joints (not "
                                              "occluded, inside the frame)", too_few))
    return out


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.jta.fixture.make_fixture`)."""
    from posebank.datasets.jta.fixture import make_fixture as write

    return write(root, seed, **options)


# No published checksums: the videos and annotations are a Google Drive download behind a licence statement.
RAW_INSTRUCTIONS = """
    JTA: agree to the terms on its homepage, https://github.com/fabbrimatteo/JTA-Dataset (research and education
    only; CC BY-NC 4.0), then run that repository's download_data.py in the raw folder, so that it holds
        annotations/{train,val,test}/seq_<n>.json
        videos/{train,val,test}/seq_<n>.mp4
"""
