"""A miniature TotalCapture raw tree in the release's layout, for tests and demos (see :func:`make_fixture`)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from posebank.core.camera import look_at
from posebank.datasets.totalcapture import (
    CALIBRATION,
    CAMERAS,
    INCH_TO_MM,
    RAW_JOINTS,
    matte_relpath,
    positions_relpath,
    video_relpath,
)

FIXTURE_MARKER = ".posebank-fixture"
FRAME_SIZE = (1920, 1080)
FPS = 60
MARK_RADIUS = 5.0
# (subject, sequence) -> cameras whose video and matte are written; walking2 is a standard test sequence and
# subject 4 is not a training subject (both have files, and are left out by the selection)
SEQUENCES = {
    (1, "acting1"): CAMERAS,
    (1, "walking2"): (1,),
    (2, "rom1"): CAMERAS,
    (3, "freestyle1"): CAMERAS,
    (4, "acting3"): (1,),
}
EXTRA_POSE_ROWS = {(2, "rom1"): 1}  # the Vicon file runs one frame past the videos (the converter drops it)
REPEATED_FRAME = 2  # the pose of frame 2 repeats frame 1 (the adaptive sampler leaves it out)
# posepile's 21 joints of a standing person, mm, in the person's frame (x to its left, y up, z forward)
_TEMPLATE = {
    "pelv": (0, 950, 0), "spin": (0, 1050, -10), "spin1": (0, 1150, -15), "spin2": (0, 1250, -15),
    "spin3": (0, 1350, -10), "neck": (0, 1500, 0), "head": (0, 1620, 20),
    "rcla": (-60, 1440, 0), "rsho": (-180, 1420, 0), "relb": (-200, 1150, 10), "rwri": (-210, 900, 40),
    "lcla": (60, 1440, 0), "lsho": (180, 1420, 0), "lelb": (200, 1150, 10), "lwri": (210, 900, 40),
    "rhip": (-100, 920, 0), "rkne": (-110, 500, 20), "rank": (-115, 80, -20),
    "lhip": (100, 920, 0), "lkne": (110, 500, 20), "lank": (115, 80, -20)}
_NAMES = list(RAW_JOINTS.values())
_T = np.array([_TEMPLATE[n] for n in _NAMES], np.float64)
_I = {n: i for i, n in enumerate(_NAMES)}
_BONES = [("pelv", "spin"), ("spin", "spin1"), ("spin1", "spin2"), ("spin2", "spin3"), ("spin3", "neck"),
          ("neck", "head"), ("neck", "rcla"), ("rcla", "rsho"), ("rsho", "relb"), ("relb", "rwri"),
          ("neck", "lcla"), ("lcla", "lsho"), ("lsho", "lelb"), ("lelb", "lwri"), ("pelv", "rhip"),
          ("rhip", "rkne"), ("rkne", "rank"), ("pelv", "lhip"), ("lhip", "lkne"), ("lkne", "lank")]


def _poses_mm(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """(n_frames, 21, 3) mm, world y up: a person turning and stepping, swinging arms and legs (wrists and feet move
    > 10 cm per frame)."""
    heading0 = rng.uniform(0, 2 * np.pi)
    start = rng.uniform(-300, 300, size=2)
    out = np.zeros((n_frames, len(_NAMES), 3))
    for f in range(n_frames):
        g = f if f < REPEATED_FRAME else f - 1
        local = _T * rng.uniform(0.999, 1.001)
        # arms swing about the shoulders and legs about the hips (rigid bones: their lengths stay)
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
        out[f] = local @ rot.T + np.array([start[0] + 40 * g, 0.0, start[1] - 30 * g])
    return out


def fixture_poses(seed: int = 0, n_frames: int = 4) -> dict[tuple[int, str], np.ndarray]:
    """The fixture's joint positions per (subject, sequence), in inches as the position files hold them (the
    rounding of the file included)."""
    rng = np.random.default_rng(seed)
    out = {}
    for key in SEQUENCES:
        inches = _poses_mm(rng, n_frames + EXTRA_POSE_ROWS.get(key, 0)) / INCH_TO_MM
        out[key] = np.array([[[float(f"{v:.6f}") for v in joint] for joint in frame] for frame in inches])
    return out


def calibration_text(seed: int = 0) -> str:
    """``calibration.cal`` of 8 cameras on a ring about the capture volume, looking at its centre (world y up,
    metres), one radial coefficient each."""
    rng = np.random.default_rng(seed + 7)
    w, h = FRAME_SIZE
    lines = [f"{len(CAMERAS)} 1"]
    for i in range(len(CAMERAS)):
        angle = 2 * np.pi * i / len(CAMERAS) + rng.uniform(-0.1, 0.1)
        radius = rng.uniform(4.2, 4.8)
        eye = np.array([radius * np.sin(angle), rng.uniform(1.8, 2.4), radius * np.cos(angle)])
        rot = look_at(eye, np.array([0.0, 1.0, 0.0]), world_up=(0, 1, 0))
        t = -rot @ eye
        f = rng.uniform(1050, 1120)
        lines += [f"0 {h - 1} 0 {w - 1}",
                  f"{f:.6f} {f * rng.uniform(0.998, 1.002):.6f} {w / 2 + rng.uniform(-15, 15):.6f} "
                  f"{h / 2 + rng.uniform(-10, 10):.6f}",
                  f"{rng.uniform(-0.06, -0.02):.6f}",
                  *(" ".join(f"{v:.9f}" for v in row) for row in rot),
                  " ".join(f"{v:.9f}" for v in t)]
    return "\n".join(lines) + "\n"


def toolbox_projection(text: str, camera: int, points_m: np.ndarray) -> np.ndarray:
    """The TotalCapture-Toolbox's projection (``project_pose3d_to_2d``: ``K (x_n (1 + k1 r²))``) of world points
    (metres) through camera ``camera`` (1-based) of a calibration text."""
    lines = [line for line in text.splitlines() if line.strip()]
    block = lines[1 + 7 * (camera - 1): 8 + 7 * (camera - 1)]
    fx, fy, cx, cy = map(float, block[1].split())
    k1 = float(block[2])
    rot = np.array([[float(v) for v in line.split()] for line in block[3:6]])
    t = np.array([float(v) for v in block[6].split()])
    cam = np.asarray(points_m, np.float64) @ rot.T + t
    xn = cam[:, :2] / cam[:, 2:3]
    xd = xn * (1 + k1 * (xn ** 2).sum(axis=1, keepdims=True))
    return xd * [fx, fy] + [cx, cy]


def _frame(points: np.ndarray) -> np.ndarray:
    """A dark 1920x1080 frame with white marks at the projected joints."""
    w, h = FRAME_SIZE
    img = np.full((h, w, 3), 35, np.uint8)
    for pt in points:
        cv2.circle(img, tuple(np.round(pt * 16).astype(int)), int(MARK_RADIUS * 16), (255, 255, 255), -1,
                   cv2.LINE_AA, shift=4)
    return img


def _matte(points: np.ndarray) -> np.ndarray:
    """A black frame with the person white: thick limbs along the bones, discs at the joints, a larger head."""
    w, h = FRAME_SIZE
    img = np.zeros((h, w, 3), np.uint8)
    pts = np.round(points).astype(int)
    for a, b in _BONES:
        cv2.line(img, tuple(pts[_I[a]]), tuple(pts[_I[b]]), (255, 255, 255), 44)
    for p in pts:
        cv2.circle(img, tuple(p), 24, (255, 255, 255), -1)
    cv2.circle(img, tuple(pts[_I["head"]]), 46, (255, 255, 255), -1)
    return img


def make_fixture(root, seed: int = 0, n_frames: int = 4, cameras=CAMERAS) -> Path:
    """Write the TotalCapture layout: ``calibration.cal`` (8 cameras), a ``gt_skel_gbl_pos.txt`` per sequence
    (tab-separated header of the 21 Vicon names, then per frame 21 ``x y z`` in inches) and, per sequence, the
    1920x1080 60 fps videos (white marks at the joints, projected with the toolbox's formula) and matte videos of
    its cameras (those of :data:`SEQUENCES` among ``cameras``)."""
    from posebank.imaging.video import write_video

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    cal = calibration_text(seed)
    (root / CALIBRATION).write_text(cal)
    header = "\t".join(RAW_JOINTS) + "\n"
    for (subject, seq), inches in fixture_poses(seed, n_frames).items():
        path = root / positions_relpath(subject, seq)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + "".join("\t".join(" ".join(f"{v:.6f}" for v in joint) for joint in frame) + "\t\n"
                                         for frame in inches))
        for c in SEQUENCES[subject, seq]:
            if c not in cameras:
                continue
            projected = [toolbox_projection(cal, c, pose * INCH_TO_MM / 1000) for pose in inches[:n_frames]]
            write_video(root / video_relpath(subject, seq, c), (_frame(p) for p in projected), fps=FPS)
            write_video(root / matte_relpath(subject, seq, c), (_matte(p) for p in projected), fps=FPS)
    (root / FIXTURE_MARKER).write_text(f"totalcapture fixture, seed {seed}\n")
    return root
