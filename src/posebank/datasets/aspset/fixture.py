"""A miniature ASPset-510 raw tree in the release's layout, for tests and demos (see :func:`make_fixture`)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from posebank.core.camera import look_at
from posebank.datasets.aspset import (
    JOINT_INFO,
    SPLITS_FILE,
    TOOLKIT_JOINTS,
    VIEWS,
    boxes_relpath,
    camera_relpath,
    joints_relpath,
    video_relpath,
)
from posebank.datasets.c3d import write_points

FIXTURE_MARKER = ".posebank-fixture"
FRAME_SIZE = (3840, 2160)
FPS = 50
MARK_RADIUS = 9.0
BOX_HEADER = "left,top,right,bottom"
# splits.csv rows: (subject, clip, split, camera); the test clip has no files (the converter never reads it)
CLIPS = (("04ac", "0026", "train", "all"), ("04ac", "0031", "val", "mid"), ("1e28", "0001", "train", "right"),
         ("0b2f", "0005", "test", "all"))
EXTRA_POSE_ROWS = {("04ac", "0031"): 1}  # the c3d runs one frame past the video (the converter drops it)
REPEATED_FRAME = 2  # the pose of frame 2 repeats frame 1 (the adaptive sampler leaves it out)
INVALID = (("04ac", "0026"), 3, 3)  # (clip, frame, joint): a point the c3d marks invalid (residual -1)
# the 17 joints of a standing person, mm, in the person's frame (x to its left, y up, z forward)
_TEMPLATE = {
    "rank": (-115, 80, -20), "rkne": (-110, 500, 20), "rhip": (-100, 920, 0), "rwri": (-210, 900, 40),
    "relb": (-200, 1150, 10), "rsho": (-180, 1420, 0), "lank": (115, 80, -20), "lkne": (110, 500, 20),
    "lhip": (100, 920, 0), "lwri": (210, 900, 40), "lelb": (200, 1150, 10), "lsho": (180, 1420, 0),
    "htop": (0, 1740, 10), "head": (0, 1610, 30), "neck": (0, 1500, 0), "spin": (0, 1200, -10),
    "pelv": (0, 960, 0)}
_NAMES = JOINT_INFO.names
_T = np.array([_TEMPLATE[n] for n in _NAMES], np.float64)
_I = {n: i for i, n in enumerate(_NAMES)}


def _poses_mm(rng: np.random.Generator, n_frames: int, centre: np.ndarray) -> np.ndarray:
    """(n_frames, 17, 3) mm in the world frame (the left camera's: y down): a person turning and stepping about
    ``centre`` on the ground, swinging arms and legs (wrists and feet move > 10 cm per frame)."""
    heading0 = rng.uniform(0, 2 * np.pi)
    out = np.zeros((n_frames, len(_NAMES), 3))
    for f in range(n_frames):
        if f == REPEATED_FRAME:
            out[f] = out[f - 1]
            continue
        g = f if f < REPEATED_FRAME else f - 1
        local = _T * rng.uniform(0.999, 1.001)
        for root, limb, angle in (("rsho", ("relb", "rwri"), 0.7 * np.sin(0.9 * g)),
                                  ("lsho", ("lelb", "lwri"), 0.7 * np.sin(0.9 * g + 1.7)),
                                  ("rhip", ("rkne", "rank"), 0.35 * np.sin(0.7 * g)),
                                  ("lhip", ("lkne", "lank"), 0.35 * np.sin(0.7 * g + np.pi))):
            c, s = np.cos(angle), np.sin(angle)
            swing = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
            ids = [_I[n] for n in limb]
            local[ids] = (local[ids] - local[_I[root]]) @ swing.T + local[_I[root]]
        heading = heading0 + 0.25 * g
        c, s = np.cos(heading), np.sin(heading)
        rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
        upright = local @ rot.T + np.array([40.0 * g, 0.0, -30.0 * g])
        out[f] = upright * [1, -1, 1] + centre  # world y points down
    return out


def fixture_poses(seed: int = 0, n_frames: int = 4) -> dict[tuple[str, str], np.ndarray]:
    """The fixture's joints per (subject, clip) in mm as its c3d files hold them (float32, NaN where invalid)."""
    rng = np.random.default_rng(seed)
    out = {}
    for subject, clip, split, _ in CLIPS:
        if split == "test":
            continue
        centre = np.array([rng.uniform(-600, 200), 1150.0, rng.uniform(18000, 19000)])  # the feet on the ground
        poses = _poses_mm(rng, n_frames + EXTRA_POSE_ROWS.get((subject, clip), 0), centre)
        poses = poses.astype(np.float32).astype(np.float64)
        if (subject, clip) == INVALID[0]:
            poses[INVALID[1], INVALID[2]] = np.nan
        out[subject, clip] = poses
    return out


def fixture_cameras(seed: int = 0) -> dict[tuple[str, str], dict]:
    """The camera files' contents per (subject, view): the left camera is the world frame (identity extrinsics), mid
    and right stand 7-16 m to its right, all looking at the pitch about 18.5 m in front of the left camera."""
    rng = np.random.default_rng(seed + 5)
    out = {}
    w, h = FRAME_SIZE
    for subject in sorted({c[0] for c in CLIPS if c[2] != "test"}):
        target = np.array([-300.0, 300.0, 18500.0])
        for view, eye_x in zip(VIEWS, (0.0, 8000.0, 16500.0)):
            if view == "left":
                rot, eye = np.eye(3), np.zeros(3)
            else:
                eye = np.array([eye_x + rng.uniform(-300, 300), rng.uniform(-300, 300), rng.uniform(0, 3000)])
                rot = look_at(eye, target + rng.uniform(-200, 200, 3), world_up=(0, -1, 0))
            rot = np.round(rot, 6)
            t = np.round(-rot @ eye, 6)
            f = rng.uniform(3880, 3920)
            intr = [[round(f, 6), 0.0, round(w / 2 + rng.uniform(-20, 20), 6), 0.0],
                    [0.0, round(f * rng.uniform(0.998, 1.002), 6), round(h / 2 + rng.uniform(-10, 10), 6), 0.0],
                    [0.0, 0.0, 1.0, 0.0]]
            extr = [[*rot[0], t[0]], [*rot[1], t[1]], [*rot[2], t[2]], [0.0, 0.0, 0.0, 1.0]]
            out[subject, view] = {"intrinsic_matrix": intr, "extrinsic_matrix": [[float(v) for v in r] for r in extr]}
    return out


def toolkit_projection(camera_json: dict, points_mm: np.ndarray) -> np.ndarray:
    """The toolkit's projection (``Camera.world_to_image_space``: ``intrinsic @ extrinsic @ [X; 1]``, then the
    division by the third coordinate) of world points through a camera file's matrices."""
    intr = np.asarray(camera_json["intrinsic_matrix"], np.float64).reshape(3, 4)
    extr = np.asarray(camera_json["extrinsic_matrix"], np.float64).reshape(4, 4)
    pts = np.asarray(points_mm, np.float64)
    hom = np.concatenate([pts, np.ones((len(pts), 1))], axis=1) @ (intr @ extr).T
    return hom[:, :2] / hom[:, 2:3]


def fixture_boxes(projected: np.ndarray) -> np.ndarray:
    """An ``l, t, r, b`` box per frame around the projected joints (the release's boxes enclose the person)."""
    lo, hi = np.nanmin(projected, axis=1), np.nanmax(projected, axis=1)
    pad = 0.08 * (hi - lo).max(axis=1, keepdims=True)
    return np.round(np.concatenate([lo - pad, hi + pad], axis=1), 3)


def _frame(points: np.ndarray) -> np.ndarray:
    """A dark 3840x2160 frame with white marks at the projected joints."""
    w, h = FRAME_SIZE
    img = np.full((h, w, 3), 35, np.uint8)
    for pt in points:
        if np.all(np.isfinite(pt)):
            cv2.circle(img, tuple(np.round(pt * 16).astype(int)), int(MARK_RADIUS * 16), (255, 255, 255), -1,
                       cv2.LINE_AA, shift=4)
    return img


def make_fixture(root, seed: int = 0, n_frames: int = 4) -> Path:
    """Write the ASPset-510 layout: ``splits.csv`` (a train clip with all views, a val clip with one, a train clip
    of another subject with one, a test clip), per subject and view a camera ``.json``, per clip a ``.c3d`` of the
    17 joints (50 Hz, mm) and per clip and view a ``.csv`` of boxes and a 3840x2160 50 fps ``.mkv`` with white
    marks at the joints projected with the toolkit's formula."""
    from posebank.imaging.video import write_video

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / SPLITS_FILE).write_text("".join(f"{s},{c},{split},{cam}\n" for s, c, split, cam in CLIPS))
    cameras = fixture_cameras(seed)
    for (subject, view), data in cameras.items():
        path = root / camera_relpath(subject, view)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")
    poses = fixture_poses(seed, n_frames)
    for subject, clip, split, cam in CLIPS:
        if split == "test":
            continue
        path = root / joints_relpath(subject, clip)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_points(path, poses[subject, clip], list(TOOLKIT_JOINTS), rate=FPS, units="mm")
        for view in VIEWS if cam == "all" else (cam,):
            projected = np.stack([toolkit_projection(cameras[subject, view], p) for p in poses[subject, clip]])
            boxes = fixture_boxes(projected)[:n_frames]
            path = root / boxes_relpath(subject, clip, view)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(BOX_HEADER + "\n" + "".join(",".join(f"{v:.3f}" for v in b) + "\n" for b in boxes))
            write_video(root / video_relpath(subject, clip, view), (_frame(p) for p in projected[:n_frames]),
                        fps=FPS)
    (root / FIXTURE_MARKER).write_text(f"aspset fixture, seed {seed}\n")
    return root
