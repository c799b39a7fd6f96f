"""A miniature CMU Panoptic raw tree in the release's layout, for tests and demos (see :func:`make_fixture`)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from posebank.datasets.panoptic import JOINT_INFO, N_RAW_JOINTS, POSE_FOLDER, SELECTED_JOINTS, VIDEO_FOLDER

FIXTURE_MARKER = ".posebank-fixture"
MARK_RADIUS = 4.0
SEQUENCES = ("160906_band1", "171204_pose1")
VIDEO_CAMERAS = ("00_03", "00_16")
IMAGE_SIZE = (1920, 1080)
N_HD = 31
# a standing person, posepile's joint order (neck nose lsho lelb lwri lhip lkne lank rsho relb rwri rhip rkne rank
# leye lear reye rear pelv): (left, forward, up) cm in the person's own frame
_TEMPLATE = np.array([
    (0, 0, 148), (0, 8, 162), (18, 0, 144), (30, 2, 118), (33, 6, 94), (11, 0, 94), (12, 2, 52), (13, -2, 9),
    (-18, 0, 144), (-30, 2, 118), (-33, 6, 94), (-11, 0, 94), (-12, 2, 52), (-13, -2, 9), (3.5, 7, 166),
    (7.5, 0, 164), (-3.5, 7, 166), (-7.5, 0, 164), (0, 0, 96)], np.float64)


def project_toolbox(points_cm, k, r, t_cm, dist) -> np.ndarray:
    """panoptic-toolbox ``panutils.projectPoints`` (3 x N world cm -> N x 2 px), written out as the toolbox has it."""
    x = r @ np.asarray(points_cm, np.float64).T + np.asarray(t_cm, np.float64).reshape(3, 1)
    x[0:2] = x[0:2] / x[2]
    rr = x[0] * x[0] + x[1] * x[1]
    radial = 1 + dist[0] * rr + dist[1] * rr * rr + dist[4] * rr * rr * rr
    x0 = x[0] * radial + 2 * dist[2] * x[0] * x[1] + dist[3] * (rr + 2 * x[0] * x[0])
    x1 = x[1] * radial + 2 * dist[3] * x[0] * x[1] + dist[2] * (rr + 2 * x[1] * x[1])
    u = k[0, 0] * x0 + k[0, 1] * x1 + k[0, 2]
    v = k[1, 0] * x0 + k[1, 1] * x1 + k[1, 2]
    return np.stack([u, v], axis=1)


def _dome_cameras(rng: np.random.Generator) -> list[dict]:
    """31 HD cameras on a dome of radius ~3 m around the origin, looking at a point 1 m above the floor (y down)."""
    out = []
    target = np.array([0.0, -100.0, 0.0])
    for i in range(N_HD):
        azimuth = 2 * np.pi * i / N_HD + rng.uniform(-0.05, 0.05)
        height = -rng.uniform(60, 230)
        eye = np.array([290 * np.cos(azimuth), height, 290 * np.sin(azimuth)])
        z = target - eye
        z /= np.linalg.norm(z)
        x = np.cross(z, [0.0, -1.0, 0.0])
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        r = np.stack([x, y, z])
        t = -r @ eye
        f = rng.uniform(1380, 1420)
        k = [[round(f, 2), 0, round(960 + rng.uniform(-20, 20), 3)],
             [0, round(f * rng.uniform(0.997, 1.003), 2), round(540 + rng.uniform(-15, 15), 3)], [0, 0, 1]]
        dist = [round(rng.uniform(-0.25, -0.2), 6), round(rng.uniform(0.15, 0.22), 6),
                round(rng.uniform(-5e-4, 5e-4), 8), round(rng.uniform(-1e-3, 1e-3), 8),
                round(rng.uniform(0.0, 0.03), 6)]
        out.append({"name": f"00_{i:02d}", "type": "hd", "resolution": list(IMAGE_SIZE), "panel": 0, "node": i,
                    "K": k, "distCoef": dist, "R": r.tolist(), "t": [[float(v)] for v in t]})
    return out


def _vga_camera(panel: int, node: int) -> dict:
    return {"name": f"{panel:02d}_{node:02d}", "type": "vga", "resolution": [640, 480], "panel": panel,
            "node": node, "K": [[745.0, 0, 320.0], [0, 745.0, 240.0], [0, 0, 1]],
            "distCoef": [-0.32, 0.14, 0.0, 0.0, -0.03],
            "R": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "t": [[0.0], [0.0], [300.0]]}


def _person(rng, n_frames: int, start, speed_cm: float, still_until: int) -> np.ndarray:
    """(n_frames, 19, 3) world cm (y down) of a person walking on the floor y = 0, posepile's joint order."""
    heading = rng.uniform(0, 2 * np.pi)
    direction = np.array([np.cos(heading), 0.0, np.sin(heading)])
    up = np.array([0.0, -1.0, 0.0])
    left = np.cross(up, direction)
    out = np.zeros((n_frames, N_RAW_JOINTS, 3))
    pos = np.array([start[0], 0.0, start[1]])
    for f in range(n_frames):
        if f > still_until:
            pos = pos + speed_cm * direction
        local = _TEMPLATE.copy()
        swing = 0.0 if f <= still_until else 12 * np.sin(1.3 * f)
        local[[3, 4, 12, 13], 1] += swing
        local[[9, 10, 6, 7], 1] -= swing
        out[f] = pos + local[:, :1] * left + local[:, 1:2] * direction + local[:, 2:3] * up
    return out


def _draw(points2d_list, size) -> np.ndarray:
    w, h = size
    img = np.full((h, w, 3), 40, np.uint8)
    for pts in points2d_list:
        for a, b in JOINT_INFO.edges:
            if np.isfinite(pts[[a, b]]).all():
                pa, pb = np.round(pts[[a, b]] * 16).astype(int)
                cv2.line(img, tuple(pa), tuple(pb), (110, 110, 110), 10, cv2.LINE_AA, shift=4)
    for pts in points2d_list:
        for pt in pts[np.isfinite(pts).all(1)]:
            cv2.circle(img, tuple(np.round(pt * 16).astype(int)), int(MARK_RADIUS * 16), (255, 255, 255), -1,
                       cv2.LINE_AA, shift=4)
    return img


def make_fixture(root, seed: int = 0, sequences=SEQUENCES, n_frames: int = 6, cameras=VIDEO_CAMERAS) -> Path:
    """Write a miniature CMU Panoptic raw tree in the release's layout.

    Per sequence: ``calibration_<seq>.json`` with 31 HD cameras on a dome (K, OpenCV distCoef, R, t in cm, world
    y down) and a few VGA entries, as the release has them; ``hdPose3d_stage1_coco19/body3DScene_<n>.json`` for
    frames 1 .. ``n_frames`` (version, univTime, fpsType, bodies with id and joints19 in cm with confidences; an
    unreconstructed joint is 0 0 0 with confidence -1); ``hdVideos/hd_00_XX.mp4`` for ``cameras`` (1920 x 1080,
    ``n_frames`` + 1 frames from 0), with grey stick figures and white marks at the joints projected by the
    toolbox's formula. Person 0 walks 15 cm per frame; person 1 stands still for three frames, then walks; in
    frame 3 of each sequence a third body has only 4 joints above confidence 0.1 (left out), and person 0's
    left ear has confidence 0.05 in every frame (missing). The marks' pixel positions (posepile's joint order)
    are written as JSON into the ``.posebank-fixture`` marker file.
    """
    from posebank.imaging.video import write_video

    root = Path(root)
    rng = np.random.default_rng(seed)
    marks: dict = {}
    inverse = np.argsort(SELECTED_JOINTS)  # posepile's order -> the release's
    for seq in sequences:
        d = root / seq
        (d / POSE_FOLDER).mkdir(parents=True, exist_ok=True)
        cams = _dome_cameras(rng)
        calib = {"calibDataSource": f"{seq}_calib", "cameras": [_vga_camera(1, 1), *cams, _vga_camera(1, 2)]}
        (d / f"calibration_{seq}.json").write_text(json.dumps(calib, indent=1))
        people = [_person(rng, n_frames + 1, (rng.uniform(-110, -80), rng.uniform(-40, 40)), 15.0, -1),
                  _person(rng, n_frames + 1, (rng.uniform(80, 110), rng.uniform(-40, 40)), 14.0, 2)]
        extra = _person(rng, n_frames + 1, (0.0, rng.uniform(60, 80)), 0.0, n_frames)
        drawn: dict[str, list] = {c: [[] for _ in range(n_frames + 1)] for c in cameras}
        for f in range(1, n_frames + 1):
            bodies = []
            for pid, track in enumerate(people):
                conf = np.round(rng.uniform(0.25, 0.8, N_RAW_JOINTS), 6)
                if pid == 0:
                    conf[15] = 0.05  # lear: below the threshold, missing
                bodies.append((pid, track[f], conf))
            if f == 3:
                conf = np.full(N_RAW_JOINTS, -1.0)
                conf[[0, 1, 2, 18]] = 0.3
                bodies.append((2, extra[f], conf))
            out_bodies = []
            for pid, coords, conf in bodies:
                raw = np.zeros((N_RAW_JOINTS, 4))
                raw[:, :3] = np.round(coords[inverse], 4)
                raw[:, 3] = conf[inverse]
                raw[raw[:, 3] < 0, :3] = 0.0
                out_bodies.append({"id": pid, "joints19": [float(v) for v in raw.reshape(-1)]})
                shown = coords.copy()
                shown[conf <= 0.1] = np.nan
                for c in cameras:
                    cam = next(x for x in cams if x["name"] == c)
                    pts = np.full((N_RAW_JOINTS, 2), np.nan)
                    ok = np.isfinite(shown[:, 0])
                    pts[ok] = project_toolbox(np.round(shown[ok], 4), np.array(cam["K"]), np.array(cam["R"]),
                                              np.array(cam["t"]), np.array(cam["distCoef"]))
                    drawn[c][f].append(pts)
                    marks.setdefault(seq, {}).setdefault(c, {}).setdefault(str(f), {})[str(pid)] = [
                        [None if not np.isfinite(v) else float(v) for v in p] for p in pts]
            scene = {"version": 0.7, "univTime": round(47890.0 + f / 29.97, 3), "fpsType": "hd_29_97",
                     "bodies": out_bodies}
            (d / POSE_FOLDER / f"body3DScene_{f:08d}.json").write_text(json.dumps(scene))
        for c in cameras:
            frames = [_draw(drawn[c][f], IMAGE_SIZE) for f in range(n_frames + 1)]
            write_video(d / VIDEO_FOLDER / f"hd_{c}.mp4", frames, fps=29.97)
    (root / FIXTURE_MARKER).write_text(json.dumps({"dataset": "panoptic", "seed": seed, "marks": marks}) + "\n")
    return root


def fixture_marks(root) -> dict:
    """The drawn marks: ``{seq: {camera: {frame: {body id: (19, 2) px}}}}`` (NaN where not drawn)."""
    marker = json.loads((Path(root) / FIXTURE_MARKER).read_text())
    return {seq: {c: {int(f): {int(b): np.array([[np.nan if v is None else v for v in p] for p in pts])
                                for b, pts in bodies.items()} for f, bodies in frames.items()}
                  for c, frames in cams.items()} for seq, cams in marker["marks"].items()}
