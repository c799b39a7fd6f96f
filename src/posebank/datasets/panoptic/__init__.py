"""CMU Panoptic Studio (Joo et al., ICCV 2015 / TPAMI 2017): multi-person 3D poses triangulated in a dome of 31
HD cameras (and 480 VGA cameras, not used).

Raw layout, as the panoptic-toolbox's ``scripts/getData.sh <seq> 0 31`` downloads it and posepile unpacks the pose
archive (``tar -xf hdPose3d_stage1_coco19.tar``)::

    root/<seq>/calibration_<seq>.json                          every camera: name, type, resolution, K, distCoef, R, t
    root/<seq>/hdPose3d_stage1_coco19/body3DScene_<8 digits>.json   (or .../hd/body3DScene_...: both are read)
    root/<seq>/hdVideos/hd_00_<XX>.mp4                        1920 x 1080 HD videos; the file number is the frame

``body3DScene_<n>.json`` holds ``bodies``: per person ``id`` and ``joints19``, 19 x (x, y, z, confidence) with x y z
in centimetres in the dome's world frame (y points down); a joint not reconstructed has confidence -1. Its number
is the frame index of every HD video of the sequence (the toolbox's ``demo_3Dkeypoints_reprojection_hd``).

Cameras (the toolbox's ``panutils.projectPoints``): ``x = K distort((R X + t) / z)`` with OpenCV's five
coefficients ``distCoef`` = k1 k2 p1 p2 k3; R and t map world centimetres to camera centimetres. posebank's camera
keeps K, R and the distortion and stores the optical centre ``-Rᵀ t`` x 10 in mm; world up is -y (posepile
``ds/panoptic/main.py parse_camera``).

Joints: the 19 of ``joints19`` in posepile's order (BodyCenter, the release's joint 2, moved last as ``pelv``):
``neck,nose,lsho,lelb,lwri,lhip,lkne,lank,rsho,relb,rwri,rhip,rkne,rank,leye,lear,reye,rear,pelv``, in mm; a
joint with confidence <= ``min_confidence`` (0.1) is missing (NaN), and a body with fewer than
``min_valid_joints`` (6) valid joints is left out (posepile ``make_stage1``).

Frame selection (posepile ``make_stage1``): per sequence, the bodies of consecutive scene files are tracked by a
Hungarian assignment on the mean joint distance to the last kept pose of each track; a body is kept when at least
``min_moved_joints`` (3) joints moved by ``motion_mm`` (100) mm or more since its track's last kept pose (a new
track always), and then, per HD camera, when at least ``min_visible_joints`` (6) joints project inside the image
in front of the camera. Everything is train. The box (posepile: the projected joints' box x 1.25, replaced by a
Hungarian-matched YOLO detection with IoU > 0.1 and less than twice its area, people without one dropped) is the
detect stage's rule ``detect.per_dataset.panoptic`` in params.yaml.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import scipy.optimize

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
from posebank.datasets.sampling import record_drop

log = logging.getLogger(__name__)

NAME = "panoptic"
INFO = DatasetInfo(
    name=NAME,
    full_name="CMU Panoptic Studio",
    homepage="http://domedb.perception.cs.cmu.edu/",
    licence=("Non-commercial research use under the terms on the homepage (unverified); downloaded without "
             "registration by the panoptic-toolbox's scripts/getData.sh, no redistribution."),
    citation=("H. Joo, T. Simon, X. Li, H. Liu, L. Tan, L. Gui, S. Banerjee, T. Godisart, B. Nabbe, I. Matthews, "
              "T. Kanade, S. Nobuhara, Y. Sheikh. Panoptic Studio: A Massively Multiview System for Social "
              "Interaction Capture. TPAMI 2017."),
)

# the release's joints19 order (panoptic-toolbox README.md: 0 Neck, 1 Nose, 2 BodyCenter, 3 lShoulder, ...)
RAW_JOINT_NAMES = ("neck,nose,pelv,lsho,lelb,lwri,lhip,lkne,lank,rsho,relb,rwri,rhip,rkne,rank,leye,lear,reye,"
                   "rear")
N_RAW_JOINTS = 19
# posepile's order: BodyCenter (release joint 2) moved last (ds/panoptic/main.py make_stage1 `selection`)
SELECTED_JOINTS = (0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 2)
JOINT_INFO = JointInfo(
    "neck,nose,lsho,lelb,lwri,lhip,lkne,lank,rsho,relb,rwri,rhip,rkne,rank,leye,lear,reye,rear,pelv",
    "nose-neck-pelv,rwri-relb-rsho-neck,rank-rkne-rhip-pelv,nose-reye-rear")
WORLD_UP = (0.0, -1.0, 0.0)
CM_TO_MM = 10.0
POSE_FOLDER = "hdPose3d_stage1_coco19"
VIDEO_FOLDER = "hdVideos"
SCENE_RE = re.compile(r"body3DScene_(\d{8})\.json")
VIDEO_RE = re.compile(r"hd_(\d\d_\d\d)\.mp4")
SHARD_KEY = ("sequence", "camera_name")  # one video per group
# the videos posepile leaves out as missing or broken (ds/panoptic/main.py make_stage2)
BROKEN_VIDEOS = ["171204_pose3/hd_00_20", "171204_pose4/hd_00_20", "171204_pose5/hd_00_20",
                 "160422_haggling1/hd_00_20", "160906_band3/hd_00_03"]

DEFAULT_PARAMS = {
    "sequences": [],  # [] = every <seq>/calibration_<seq>.json folder of the raw root
    "cameras": [],  # HD camera names ("00_03"); [] = every hdVideos/hd_00_XX.mp4 of the sequence (posepile)
    "skip_videos": list(BROKEN_VIDEOS),  # "<seq>/hd_00_XX" left out
    "frame_step": 1,  # posepile: every scene file
    "min_confidence": 0.1,  # a joint with confidence <= this is missing
    "min_valid_joints": 6,  # bodies with fewer valid joints are left out
    "motion_mm": 100.0,  # a body is kept when >= min_moved_joints joints moved this far since its last kept pose
    "min_moved_joints": 3,  # 0 = no motion sampling
    "min_visible_joints": 6,  # per camera: joints in front of it and inside its image
}


# ------------------------------------------------------------------------------------------- readers
def _load_json(path: Path, what: str):
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RawFileError(path, f"unreadable {what}: not valid JSON, truncated or corrupt ({e})") from None
    except OSError as e:
        raise RawFileError(path, f"unreadable {what}: {e.strerror or e}") from None


def parse_camera(entry: dict, where) -> Camera:
    """One calibration entry (K, distCoef, R, t in cm, world to camera) as a posebank camera in mm."""
    try:
        k = np.asarray(entry["K"], np.float64).reshape(3, 3)
        r = np.asarray(entry["R"], np.float64).reshape(3, 3)
        t_cm = np.asarray(entry["t"], np.float64).reshape(3)
        dist = np.asarray(entry["distCoef"], np.float64).reshape(-1)
    except KeyError as e:
        raise RawFileError(where, f"camera {entry.get('name')!r} has no {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        raise RawFileError(where, f"camera {entry.get('name')!r}: K, R, t or distCoef malformed ({e})") from None
    if dist.size != 5:
        raise RawFileError(where, f"camera {entry.get('name')!r}: distCoef has {dist.size} values, expected 5")
    camera = Camera(intrinsic_matrix=k, R=r, t=-r.T @ (t_cm * CM_TO_MM), distortion_coeffs=dist,
                    world_up=WORLD_UP)
    check_finite_camera(camera, where)
    return camera


def read_calibration(path) -> dict[str, tuple[Camera, tuple[int, int]]]:
    """The HD cameras (``type`` "hd") of ``calibration_<seq>.json``: ``{name: (camera, (width, height))}``."""
    path = Path(path)
    data = _load_json(path, "calibration file")
    cams = data.get("cameras") if isinstance(data, dict) else None
    if not isinstance(cams, list):
        raise RawFileError(path, "no 'cameras' list")
    out = {}
    for entry in cams:
        if not isinstance(entry, dict) or "name" not in entry:
            raise RawFileError(path, "a camera entry without 'name'")
        if entry.get("type") != "hd":
            continue
        size = entry.get("resolution", [1920, 1080])
        out[str(entry["name"])] = (parse_camera(entry, path), (int(size[0]), int(size[1])))
    if not out:
        raise RawFileError(path, "no HD camera (type 'hd') in the calibration")
    return out


def read_scene(path) -> list[tuple[int, np.ndarray]]:
    """The bodies of one ``body3DScene_<n>.json``: ``[(id, (19, 4) x y z cm, confidence)]`` in the release's
    joint order."""
    path = Path(path)
    data = _load_json(path, "scene file")
    bodies = data.get("bodies") if isinstance(data, dict) else None
    if not isinstance(bodies, list):
        raise RawFileError(path, "no 'bodies' list")
    out = []
    for i, body in enumerate(bodies):
        try:
            arr = np.asarray(body["joints19"], np.float64).reshape(N_RAW_JOINTS, 4)
        except (KeyError, TypeError, ValueError) as e:
            raise RawFileError(path, f"bodies[{i}].joints19 is not 19 x 4 numbers ({e})") from None
        out.append((int(body.get("id", i)), arr))
    return out


def world_joints(raw: np.ndarray, min_confidence: float = 0.1) -> np.ndarray:
    """(19, 3) mm in posepile's order from one body's (19, 4) ``joints19``; confidence <= min_confidence -> NaN."""
    coords = raw[list(SELECTED_JOINTS), :3] * CM_TO_MM
    coords[raw[list(SELECTED_JOINTS), 3] <= min_confidence] = np.nan
    return coords


# ------------------------------------------------------------------------------------------- selection
def _moved_enough(prev: np.ndarray, cur: np.ndarray, motion_mm: float, min_moved: int) -> bool:
    d = np.linalg.norm(prev - cur, axis=-1)
    return np.count_nonzero(d[np.isfinite(d)] >= motion_mm) >= min_moved


class MotionTracker:
    """posepile's ``are_changes_sufficient_and_update``: tracks bodies across the scene files of a sequence."""

    def __init__(self, motion_mm: float = 100.0, min_moved: int = 3):
        self.motion_mm, self.min_moved = motion_mm, min_moved
        self.tracks: list[np.ndarray] = []  # the last kept pose of each track

    def update(self, poses: list[np.ndarray]) -> list[bool]:
        result = [True] * len(poses)
        if self.min_moved <= 0:
            return result
        if not self.tracks:
            self.tracks.extend(poses)
            return result
        if not poses:
            return result
        with np.errstate(invalid="ignore"):
            d = np.array([[np.nanmean(np.linalg.norm(t - p, axis=-1)) if np.isfinite(
                np.linalg.norm(t - p, axis=-1)).any() else np.inf for p in poses] for t in self.tracks])
        big = 1e12  # no joint in common: match only when nothing else is left
        rows, cols = scipy.optimize.linear_sum_assignment(np.where(np.isfinite(d), d, big))
        for r, c in zip(rows, cols):
            result[c] = _moved_enough(self.tracks[r], poses[c], self.motion_mm, self.min_moved)
            if result[c]:
                self.tracks[r] = poses[c]
        matched = set(int(c) for c in cols)
        self.tracks.extend(p for i, p in enumerate(poses) if i not in matched)
        return result


def visible_count(camera: Camera, coords: np.ndarray, size: tuple[int, int]) -> int:
    """Joints in front of the camera whose projection lies inside the image ([-0.5, W - 0.5] x [-0.5, H - 0.5])."""
    ok = np.isfinite(coords).all(1)
    if not ok.any():
        return 0
    pts = coords[ok]
    z = camera.world_to_camera(pts)[:, 2]
    im = camera.project(pts)
    inside = (z > 0) & (im[:, 0] >= -0.5) & (im[:, 0] <= size[0] - 0.5) & (im[:, 1] >= -0.5) & (
        im[:, 1] <= size[1] - 0.5)
    return int(np.count_nonzero(inside))


# ------------------------------------------------------------------------------------------- layout
def check_params(params: dict | None) -> dict:
    p = check_dataset_params(NAME, params, DEFAULT_PARAMS)
    for key in ("sequences", "cameras", "skip_videos"):
        bad = [v for v in p[key] if not isinstance(v, str) or not v]
        if bad:
            raise ParamsError(f"datasets.{NAME}.{key}", f"must be a list of names, got {bad}")
    bad = [c for c in p["cameras"] if not re.fullmatch(r"00_\d\d", c)]
    if bad:
        raise ParamsError(f"datasets.{NAME}.cameras", f"HD camera names are 00_00 .. 00_30, got {bad}")
    if p["frame_step"] < 1:
        raise ParamsError(f"datasets.{NAME}.frame_step", f"must be a positive integer, got {p['frame_step']}")
    for key in ("min_valid_joints", "min_visible_joints", "min_moved_joints"):
        if not 0 <= p[key] <= N_RAW_JOINTS:
            raise ParamsError(f"datasets.{NAME}.{key}", f"must be in 0..{N_RAW_JOINTS}, got {p[key]}")
    if p["motion_mm"] < 0:
        raise ParamsError(f"datasets.{NAME}.motion_mm", f"must not be negative, got {p['motion_mm']}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    check_params(params)
    return ("train",)


def _scene_files(seq_dir: Path) -> dict[int, Path]:
    out = {}
    for folder in (seq_dir / POSE_FOLDER, seq_dir / POSE_FOLDER / "hd"):
        if folder.is_dir():
            for f in folder.iterdir():
                m = SCENE_RE.fullmatch(f.name)
                if m and f.is_file():
                    out.setdefault(int(m.group(1)), f)
    return dict(sorted(out.items()))


def _sequences(root: Path, p: dict) -> list[str]:
    if p["sequences"]:
        return list(p["sequences"])
    return sorted(d.name for d in root.iterdir() if d.is_dir() and (d / f"calibration_{d.name}.json").is_file())


def _videos(seq_dir: Path, p: dict) -> dict[str, str]:
    """{camera name: video file name} of the selected HD cameras of one sequence."""
    if p["cameras"]:
        names = list(p["cameras"])
    else:
        folder = seq_dir / VIDEO_FOLDER
        names = sorted(m.group(1) for f in (folder.iterdir() if folder.is_dir() else [])
                       if (m := VIDEO_RE.fullmatch(f.name)))
    return {c: f"hd_{c}.mp4" for c in names if f"{seq_dir.name}/hd_{c}" not in p["skip_videos"]}


def check_layout(root, params: dict | None = None) -> dict[str, dict]:
    """Verify the raw tree: per selected sequence its calibration, at least one scene file and the selected (or
    at least one) HD video. Returns ``{sequence: {"calibration", "scenes", "videos"}}``."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    seqs = _sequences(root, p)
    if not seqs:
        raise RawLayoutError(NAME, root, "<seq>/calibration_<seq>.json (no sequence folder)")
    missing, out = [], {}
    for seq in seqs:
        d = root / seq
        calib = d / f"calibration_{seq}.json"
        if not calib.is_file():
            missing.append(f"{seq}/calibration_{seq}.json")
        scenes = _scene_files(d)
        if not scenes:
            missing.append(f"{seq}/{POSE_FOLDER}/body3DScene_*.json")
        videos = _videos(d, p)
        if not videos:
            missing.append(f"{seq}/{VIDEO_FOLDER}/hd_00_*.mp4")
        missing += [f"{seq}/{VIDEO_FOLDER}/{v}" for v in videos.values() if not (d / VIDEO_FOLDER / v).is_file()]
        out[seq] = {"calibration": calib, "scenes": scenes, "videos": videos}
    if missing:
        raise RawLayoutError(NAME, root, missing)
    return out


def activity(sequence: str) -> str:
    """``160906_band1`` -> ``band``, ``170221_haggling_b1`` -> ``haggling``."""
    name = sequence.split("_", 1)[-1]
    return re.sub(r"(_[a-z])?\d*$", "", name) or name


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected body in every selected HD video, ordered by sequence, camera, frame and body; unreadable
    scene files (posepile skips them) and bodies with too few valid joints go to ``dropped``."""
    p = check_params(params)
    root = Path(root)
    layout = check_layout(root, p)
    out = []
    for seq, entry in layout.items():
        cameras = read_calibration(entry["calibration"])
        unknown = [c for c in entry["videos"] if c not in cameras]
        if unknown:
            raise RawFileError(entry["calibration"], f"no HD camera {', '.join(unknown)} (for its video)")
        tracker = MotionTracker(p["motion_mm"], p["min_moved_joints"])
        kept: list[tuple[int, int, int, np.ndarray]] = []  # (frame, body index, body id, coords)
        for frame, path in entry["scenes"].items():
            if frame % p["frame_step"]:
                continue
            where = path.relative_to(root).as_posix()
            try:
                bodies = read_scene(path)
            except RawFileError as e:
                if not e.problem.startswith("unreadable"):
                    raise
                log.warning("%s", e)
                record_drop(dropped, where, [frame], f"unreadable scene file ({e.problem})")
                continue
            poses, ids = [], []
            for i, (body_id, raw) in enumerate(bodies):
                coords = world_joints(raw, p["min_confidence"])
                if np.count_nonzero(np.isfinite(coords[:, 0])) >= p["min_valid_joints"]:
                    poses.append(coords)
                    ids.append((i, body_id))
                else:
                    record_drop(dropped, where, [frame], f"body {body_id}: fewer than {p['min_valid_joints']} "
                                f"joints with confidence > {p['min_confidence']}")
            for (i, body_id), coords, moved in zip(ids, poses, tracker.update(poses)):
                if moved:
                    kept.append((frame, i, body_id, coords))
        for cam_name, video in entry["videos"].items():
            camera, size = cameras[cam_name]
            source = f"{seq}/{VIDEO_FOLDER}/{video}"
            for frame, i, body_id, coords in kept:
                if visible_count(camera, coords, size) < p["min_visible_joints"]:
                    continue
                out.append(RawInstance(
                    source=source, frame_index=frame, world_coords=coords.astype(np.float32), camera=camera,
                    split="train", subject=f"{seq}/body{body_id}", sequence=seq, activity=activity(seq),
                    camera_name=cam_name, person_index=i))
    return out


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.panoptic.fixture.make_fixture`)."""
    from posebank.datasets.panoptic.fixture import make_fixture as write

    return write(root, seed, **options)


# No published checksums: the toolbox downloads over plain URLs; posebank leaves the download to it.
RAW_INSTRUCTIONS = """
    CMU Panoptic: the data is on its homepage (http://domedb.perception.cs.cmu.edu), for non-commercial research
    only; with the panoptic-toolbox (github.com/CMU-Perceptual-Computing-Lab/panoptic-toolbox), run
    `scripts/getData.sh <seq> 0 31` in the raw folder for each sequence (posepile's 66: its ds/panoptic/seq_names),
    then `tar -xf hdPose3d_stage1_coco19.tar` in each sequence folder, so that it holds
        <seq>/calibration_<seq>.json
        <seq>/hdPose3d_stage1_coco19/body3DScene_<8 digits>.json ...
        <seq>/hdVideos/hd_00_<XX>.mp4
"""
