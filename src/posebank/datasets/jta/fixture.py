"""A miniature JTA raw tree in the release's layout, for tests and demos (see :func:`make_fixture`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

from posebank.datasets.jta import FOV_DEGREES, IMAGE_SIZE, JOINT_INFO, N_JOINTS

FIXTURE_MARKER = ".posebank-fixture"
MARK_RADIUS = 4.0
FPS = 30.0
# (split, sequence): one per folder, numbered as the release numbers them (train 0-255, val 256-383, test 384-511)
SEQUENCES = (("train", "seq_7"), ("val", "seq_301"), ("test", "seq_430"))
# a standing pedestrian in the release's joint order: (left, forward, up) metres in the person's own frame
_TEMPLATE = np.array([
    (0, 0.03, 1.80), (0, 0.02, 1.66), (0, 0.01, 1.52), (-0.03, 0.04, 1.48), (-0.18, 0, 1.45), (-0.22, 0, 1.17),
    (-0.24, 0.05, 0.92), (0.03, 0.04, 1.48), (0.18, 0, 1.45), (0.22, 0, 1.17), (0.24, 0.05, 0.92), (0, 0, 1.40),
    (0, 0, 1.28), (0, 0, 1.16), (0, 0, 1.05), (0, 0, 0.96), (-0.10, 0, 0.92), (-0.11, 0.02, 0.50),
    (-0.12, -0.02, 0.08), (0.10, 0, 0.92), (0.11, 0.02, 0.50), (0.12, -0.02, 0.08)], np.float64)


def tool_rotation(rot_deg) -> np.ndarray:
    """The rotation of JTA-Mods ``DatasetAnnotator::get_2D_from_3D`` (``cam_rot`` in degrees) as a matrix: rows map a
    game-world offset (z up) to (d.x right, d.y forward, d.z up) of the camera."""
    sx, sy, sz = (math.sin(math.radians(a)) for a in rot_deg)
    cx, cy, cz = (math.cos(math.radians(a)) for a in rot_deg)
    # d.x = cy*(sz*y + cz*x) - sy*z
    # d.y = sx*(cy*z + sy*(sz*y + cz*x)) + cx*(cz*y - sz*x)
    # d.z = cx*(cy*z + sy*(sz*y + cz*x)) - sx*(cz*y - sz*x)
    return np.array([[cy * cz, cy * sz, -sy],
                     [sx * sy * cz - cx * sz, sx * sy * sz + cx * cz, sx * cy],
                     [cx * sy * cz + sx * sz, cx * sy * sz - sx * cz, cx * cy]])


def tool_2d(points_world, cam_pos, cam_rot, fov=FOV_DEGREES) -> np.ndarray:
    """JTA-Mods ``get_2D_from_3D`` times (1920, 1080), as ``update()`` writes x2D, y2D (N x 3 world m -> N x 2)."""
    w, h = IMAGE_SIZE
    d = (np.asarray(points_world, np.float64) - cam_pos) @ tool_rotation(cam_rot).T
    f = (h / 2.0) * math.cos(math.radians(fov) / 2.0) / math.sin(math.radians(fov) / 2.0)
    x = (d[:, 0] * (f / d[:, 1])) / w + 0.5
    y = 0.5 - (d[:, 2] * (f / d[:, 1])) / h
    return np.stack([x * w, y * h], axis=1)


def tool_camera_coords(points_world, cam_pos, cam_rot) -> np.ndarray:
    """The release's 3D joints: the tool's (d.x, d.y, d.z) as the standard camera frame (x right, y down, z
    forward), metres."""
    d = (np.asarray(points_world, np.float64) - cam_pos) @ tool_rotation(cam_rot).T
    return np.stack([d[:, 0], -d[:, 2], d[:, 1]], axis=1)


def _g6(v: float) -> float:
    """A number as C++'s ``ostream <<`` prints it (6 significant digits), as the tool's coords.csv holds them."""
    return float(f"{v:.6g}")


def _draw(points2d_list, size) -> np.ndarray:
    w, h = size
    img = np.full((h, w, 3), 40, np.uint8)
    for pts in points2d_list:
        for a, b in JOINT_INFO.edges:
            pa, pb = np.round(pts[[a, b]] * 16).astype(int)
            cv2.line(img, tuple(pa), tuple(pb), (110, 110, 110), 10, cv2.LINE_AA, shift=4)
    for pts in points2d_list:
        for pt in pts:
            cv2.circle(img, tuple(np.round(pt * 16).astype(int)), int(MARK_RADIUS * 16), (255, 255, 255), -1,
                       cv2.LINE_AA, shift=4)
    return img


def _pose(place, heading: float, swing: float) -> np.ndarray:
    """(22, 3) game-world metres (z up) of the template standing at ``place`` on z = 0 facing ``heading``."""
    forward = np.array([math.cos(heading), math.sin(heading), 0.0])
    up = np.array([0.0, 0.0, 1.0])
    left = np.cross(up, forward)
    local = _TEMPLATE.copy()
    local[[6, 17, 18], 1] += swing  # right wrist, knee, ankle forward; the left ones back
    local[[10, 20, 21], 1] -= swing
    return np.asarray(place) + local[:, :1] * left + local[:, 1:2] * forward + local[:, 2:3] * up


def make_fixture(root, seed: int = 0, sequences=SEQUENCES, n_frames: int = 5) -> Path:
    """Write a miniature JTA raw tree in the release's layout.

    Per (split, sequence): ``annotations/<split>/<seq>.json``, the rows (frame from 1, person id, joint type,
    x2D, y2D, x3D, y3D, z3D in camera metres, occluded, self-occluded) of frames 1 .. ``n_frames``, with the 2D
    joints computed by a transcription of JTA-Mods' ``get_2D_from_3D`` (a camera posed by position and rotation in
    the game world, vertical field of view 50 degrees) and printed with 6 significant digits as the tool prints them;
    ``videos/<split>/<seq>.mp4`` (1920 x 1080, 30 fps, frame k of the video = annotation frame k + 1) with grey
    stick figures and white marks at the annotated 2D joints. The camera is 3 m above the street, pitched down and
    slightly rolled, so that up in the camera frame is not -y. Person 0 walks 15 cm per frame with its right wrist
    occluded and its left knee self-occluded; person 1 stands still for three frames, then walks; person 2 is hidden
    but for four joints (fewer than 5 valid: left out). The marks (posebank's pixel convention) and each sequence's
    true up direction (camera frame) are written as JSON into the ``.posebank-fixture`` marker file.
    """
    from posebank.imaging.video import write_video

    root = Path(root)
    rng = np.random.default_rng(seed)
    marks: dict = {}
    ups: dict = {}
    for split, seq in sequences:
        cam_pos = np.array([rng.uniform(-500, 500), rng.uniform(-500, 500), 3.0])
        cam_rot = (rng.uniform(-14, -10), rng.uniform(-3, 3), rng.uniform(0, 360))  # pitch, roll, yaw (deg)
        forward = tool_rotation(cam_rot)[1]
        ground_fwd = forward - forward[2] * np.array([0, 0, 1.0])
        ground_fwd /= np.linalg.norm(ground_fwd)
        ground_right = np.cross(ground_fwd, [0, 0, 1.0])
        base = cam_pos - np.array([0, 0, cam_pos[2]])
        starts = [base + ground_fwd * rng.uniform(6, 6.5) + ground_right * rng.uniform(-1.8, -1.4),
                  base + ground_fwd * rng.uniform(7, 7.5) + ground_right * rng.uniform(1.4, 1.8),
                  base + ground_fwd * rng.uniform(11, 12) + ground_right * rng.uniform(-0.3, 0.3)]
        ids = [int(v) for v in rng.choice(np.arange(1000, 99999), 3, replace=False)]
        headings = [rng.uniform(0, 2 * np.pi) for _ in range(3)]
        rows: list[list[float]] = []
        drawn = []
        for f in range(1, n_frames + 1):
            people = []
            for k, (pid, start, heading) in enumerate(zip(ids, starts, headings)):
                step = {0: 0.15 * f, 1: 0.2 * max(0, f - 3), 2: 0.0}[k]
                place = start + step * np.array([math.cos(heading), math.sin(heading), 0.0])
                swing = 0.0 if step == 0 else 0.12 * math.sin(1.3 * f)
                world = _pose(place, heading, swing)
                occ, soc = np.zeros(N_JOINTS, int), np.zeros(N_JOINTS, int)
                if k == 0:
                    occ[6], soc[20] = 1, 1
                if k == 2:
                    occ[:] = 1
                    occ[[0, 1, 2, 15]] = 0
                xy = tool_2d(world, cam_pos, cam_rot)
                cam = tool_camera_coords(world, cam_pos, cam_rot)
                for j in range(N_JOINTS):
                    rows.append([float(f), float(pid), float(j), _g6(xy[j, 0]), _g6(xy[j, 1]), _g6(cam[j, 0]),
                                 _g6(cam[j, 1]), _g6(cam[j, 2]), float(occ[j]), float(soc[j])])
                shown = np.array([[_g6(xy[j, 0]) - 0.5, _g6(xy[j, 1]) - 0.5] for j in range(N_JOINTS)])
                people.append(shown)
                marks.setdefault(seq, {}).setdefault(str(f), {})[str(pid)] = shown.tolist()
            drawn.append(_draw(people, IMAGE_SIZE))
        up_cam = tool_rotation(cam_rot) @ np.array([0, 0, 1.0])
        ups[seq] = [float(up_cam[0]), float(-up_cam[2]), float(up_cam[1])]
        (root / "annotations" / split).mkdir(parents=True, exist_ok=True)
        (root / "annotations" / split / f"{seq}.json").write_text(json.dumps(rows))
        write_video(root / "videos" / split / f"{seq}.mp4", drawn, fps=FPS)
    (root / FIXTURE_MARKER).write_text(json.dumps({"dataset": "jta", "seed": seed, "marks": marks, "up": ups}) + "\n")
    return root


def fixture_marks(root) -> dict:
    """The drawn marks: ``{seq: {frame (1-based): {person id: (22, 2) px}}}`` in posebank's pixel convention."""
    marker = json.loads((Path(root) / FIXTURE_MARKER).read_text())
    return {seq: {int(f): {int(p): np.array(pts) for p, pts in people.items()} for f, people in frames.items()}
            for seq, frames in marker["marks"].items()}


def fixture_up(root) -> dict[str, np.ndarray]:
    """Each sequence's true up direction (camera frame)."""
    marker = json.loads((Path(root) / FIXTURE_MARKER).read_text())
    return {seq: np.array(v) for seq, v in marker["up"].items()}
