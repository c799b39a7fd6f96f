"""A miniature SAIL-VOS raw tree in the release's layout, for tests and demos (see :func:`make_fixture`)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from posebank.core.camera import look_at
from posebank.datasets.sailvos import IMAGE_SIZE, INTERESTING_JOINTS, INVALID_2D, JOINT_INFO, MIN_RAW_POINTS

FIXTURE_MARKER = ".posebank-fixture"
MARK_RADIUS = 3.0
SEQUENCES = ("tonya_mcs_1", "fbi_4_mcs_2")
# the GTA-V world position (metres) each sequence takes place at: kilometres from the origin, as in the game
ORIGINS = ((-1620.4, 250.8, 30.2), (412.0, -1880.5, 12.7))
PEDESTRIANS = ((12, "12_Ped_a_m_y_hipster_01"), (31, "31_Ped_a_f_y_tourist_02"))
OCCLUDER_ID = 7  # a non-pedestrian object of the visible map (a car door) ...
OCCLUDER_FOLDER = "7_Car_emperor"  # ... with its own object folder (amodal masks only), as every object has
N_RAW = MIN_RAW_POINTS
# ten rows no joint uses, written off screen (-1280, -800) in every 2D file
OFF_SCREEN = tuple(r for r in range(280, N_RAW) if not any(r in g for g in INTERESTING_JOINTS))[:10]
# (left, forward, up) metres in the person's own frame, posepile's 26 joints
TEMPLATE = np.array([
    (0, 0, 1.75), (0, 0, 1.50), (-0.18, 0, 1.45), (-0.30, 0.02, 1.18), (-0.33, 0.06, 0.94), (0.18, 0, 1.45),
    (0.30, 0.02, 1.18), (0.33, 0.06, 0.94), (-0.10, 0, 0.95), (-0.11, 0.02, 0.52), (-0.12, -0.02, 0.09),
    (0.10, 0, 0.95), (0.11, 0.02, 0.52), (0.12, -0.02, 0.09), (0, -0.02, 1.22), (0, 0.02, 1.62), (0, 0, 0.97),
    (-0.12, 0.14, 0.02), (0.12, 0.14, 0.02), (0, 0.10, 1.62), (-0.035, 0.08, 1.66), (0.035, 0.08, 1.66),
    (-0.075, 0, 1.64), (0.075, 0, 1.64), (-0.34, 0.08, 0.86), (0.34, 0.08, 0.86)], np.float64)
# x = left: the person's right side is -x


def _person_joints(start, heading: float, speed: float, still_until: int, n_frames: int) -> np.ndarray:
    """(n_frames, 26, 3) world metres (z up) of a person walking on the ground z = 0 (relative to the origin)."""
    forward = np.array([np.cos(heading), np.sin(heading), 0.0])
    up = np.array([0.0, 0.0, 1.0])
    left = np.cross(up, forward)
    pos = np.array([start[0], start[1], 0.0])
    out = np.zeros((n_frames, len(TEMPLATE), 3))
    ids = JOINT_INFO.ids
    for f in range(n_frames):
        if f > still_until:
            pos = pos + speed * forward
        local = TEMPLATE.copy()
        swing = 0.0 if f <= still_until else 0.12 * np.sin(1.3 * f)
        for j in ("lelb", "lwri", "lhan", "rkne", "rank", "rtoe"):
            local[ids[j], 1] += swing
        for j in ("relb", "rwri", "rhan", "lkne", "lank", "ltoe"):
            local[ids[j], 1] -= swing
        out[f] = pos + local[:, :1] * left + local[:, 1:2] * forward + local[:, 2:3] * up
    return out


def _raw_points(joints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N_RAW, 3): each group member of INTERESTING_JOINTS within 2 mm of its joint, the other rows (bones
    posepile does not use) scattered within 4 cm of random joints."""
    out = np.zeros((N_RAW, 3))
    member = np.zeros(N_RAW, bool)
    for j, group in enumerate(INTERESTING_JOINTS):
        for r in group:
            out[r] = joints[j] + rng.uniform(-0.002, 0.002, 3)
            member[r] = True
    others = np.flatnonzero(~member)
    out[others] = joints[rng.integers(0, len(joints), len(others))] + rng.uniform(-0.04, 0.04, (len(others), 3))
    return out


def _project(k, r, t, points) -> tuple[np.ndarray, np.ndarray]:
    cam = points @ r.T + t
    uv = cam[:, :2] / cam[:, 2:3] * [k[0, 0], k[1, 1]] + k[:2, 2]
    return uv, cam[:, 2]


def _silhouette(points2d: np.ndarray, depth: float, f: float) -> np.ndarray:
    """The amodal mask of a person whose joints project to ``points2d`` (26 x 2), limbs 12 cm thick."""
    w, h = IMAGE_SIZE
    mask = np.zeros((h, w), np.uint8)
    thick = max(2, int(round(0.12 * f / depth)))
    for a, b in JOINT_INFO.edges:
        pa, pb = np.round(points2d[[a, b]] * 16).astype(int)
        cv2.line(mask, tuple(pa), tuple(pb), 255, thick, cv2.LINE_8, shift=4)
    head = np.round(points2d[JOINT_INFO.ids["head"]] * 16).astype(int)
    cv2.circle(mask, tuple(head), int(0.11 * f / depth * 16), 255, -1, cv2.LINE_8, shift=4)
    return mask


def make_fixture(root, seed: int = 0, sequences=SEQUENCES, n_frames: int = 4) -> Path:
    """Write a miniature SAIL-VOS raw tree in the release's layout (``.bmp`` frames, ``.npy`` visibility maps).

    Per sequence, frames 0 .. ``n_frames`` - 1: ``images/<frame>.bmp`` (1280 x 800), ``visible/<frame>.npy``
    (uint16 object ids, 0 = background) and two pedestrian folders ``<objid>_Ped_<model>/`` with
    ``<frame>_2d.txt`` (343 rows "x y", pixels), ``<frame>_3d.txt`` (343 rows "x y z", metres in a GTA-V world
    frame kilometres from its origin, z up) and the amodal ``<frame>.png``. The 2D points are the 3D points seen by
    a pinhole camera (principal point at the image centre, square pixels, a field of view of 50 - 65 degrees, the
    camera drifting per frame); ten rows that no joint uses are off screen (-1280, -800, :data:`OFF_SCREEN`) and
    rows 0 - 3 are zeros in 3D. Pedestrian 12 walks 15 cm per frame; pedestrian 31 stands still in frames 0 - 1 (kept
    once), then walks. In frame 2 of the first sequence a car door (object 7) hides most of pedestrian 31 (left
    out as occluded; the door has its object folder ``7_Car_emperor/`` with its mask, not read); in frame 2 of the
    second, pedestrian 12 has only 5 points with 3D values (its camera fit fails). The frames show the visible
    pixels of the people and white marks at the mean 2D position of each joint's points. The true cameras and the
    marks are written as JSON into the ``.posebank-fixture`` file.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    w, h = IMAGE_SIZE
    info: dict = {"dataset": "sailvos", "seed": seed, "cameras": {}, "marks": {}}
    for s, seq in enumerate(sequences):
        d = root / seq
        (d / "images").mkdir(parents=True, exist_ok=True)
        (d / "visible").mkdir(parents=True, exist_ok=True)
        origin = np.array(ORIGINS[s % len(ORIGINS)])
        cam_dir = rng.uniform(0, 2 * np.pi)  # the camera stands 7.5 m from the origin in this direction
        toward, lateral = np.array([np.cos(cam_dir), np.sin(cam_dir)]), np.array([-np.sin(cam_dir), np.cos(cam_dir)])
        # both people roughly face the camera and walk towards it, side by side
        people = [_person_joints(-1.3 * lateral + rng.uniform(-0.3, 0.3) * toward, cam_dir + rng.uniform(-0.4, 0.4),
                                 0.15, -1, n_frames),
                  _person_joints(1.2 * lateral + rng.uniform(-0.3, 0.3) * toward, cam_dir + rng.uniform(-0.4, 0.4),
                                 0.14, 1, n_frames)]
        hfov = np.deg2rad(rng.uniform(50, 65))
        focal = w / (2 * np.tan(hfov / 2))
        k = np.array([[focal, 0, w / 2], [0, focal, h / 2], [0, 0, 1]])
        for f in range(n_frames):
            eye = origin + [7.5 * np.cos(cam_dir) + 0.05 * f, 7.5 * np.sin(cam_dir), 1.7 + 0.02 * f]
            r = look_at(eye, origin + [0.0, 0.0, 1.0], (0, 0, 1))
            t = -r @ eye
            info["cameras"].setdefault(seq, {})[str(f)] = {"K": k.tolist(), "R": r.tolist(), "t": t.tolist()}
            layers = []
            for (objid, folder), track in zip(PEDESTRIANS, people):
                joints = track[f] + origin
                raw = _raw_points(joints, rng)
                raw[0:4] = 0.0  # bones without a value
                if s == 1 and f == 2 and objid == 12:
                    raw[9:] = 0.0  # only rows 4 .. 8 have 3D values: too few for the camera fit
                uv, depth = _project(k, r, t, np.where(raw == 0, np.nan, raw))
                uv[~np.isfinite(uv).all(1)] = INVALID_2D
                uv[list(OFF_SCREEN)] = INVALID_2D
                uv = np.round(uv, 4)  # as written
                p = d / folder
                p.mkdir(exist_ok=True)
                np.savetxt(p / f"{f:06d}_3d.txt", raw, fmt="%.6f")
                np.savetxt(p / f"{f:06d}_2d.txt", uv, fmt="%.4f")
                joints2d, zj = _project(k, r, t, joints)
                amodal = _silhouette(joints2d, float(np.mean(zj)), focal)
                cv2.imwrite(str(p / f"{f:06d}.png"), amodal)
                layers.append((float(np.mean(zj)), objid, amodal > 0))
                ok = np.isfinite(np.where(raw == 0, np.nan, raw)).all(1) & (uv[:, 0] != INVALID_2D[0])
                pts = np.where(ok[:, None], uv, np.nan)
                marks = np.array([np.nanmean(pts[list(g)], 0) if ok[list(g)].any() else [np.nan, np.nan]
                                  for g in INTERESTING_JOINTS])
                info["marks"].setdefault(seq, {}).setdefault(str(f), {})[folder] = [
                    [None if not np.isfinite(v) else float(v) for v in m] for m in marks]
            visible = np.zeros((h, w), np.uint16)
            for _, objid, m in sorted(layers, reverse=True):  # far to near
                visible[m] = objid
            if s == 0 and f == 2:  # a car door in front of pedestrian 31 up to its shoulders
                ys, xs = np.nonzero(visible == 31)
                top = ys.min() + (ys.max() - ys.min()) // 5
                visible[top:ys.max() + 1, xs.min() - 5:xs.max() + 6] = OCCLUDER_ID
                (d / OCCLUDER_FOLDER).mkdir(exist_ok=True)
                cv2.imwrite(str(d / OCCLUDER_FOLDER / f"{f:06d}.png"), (visible == OCCLUDER_ID).astype(np.uint8) * 255)
            np.save(d / "visible" / f"{f:06d}.npy", visible)
            img = np.full((h, w, 3), 60, np.uint8)
            img[:, :, 0] = np.linspace(40, 120, w, dtype=np.uint8)[None]
            img[visible == OCCLUDER_ID] = (30, 30, 160)
            img[visible == 12] = (120, 90, 70)
            img[visible == 31] = (70, 120, 90)
            for folder_marks in info["marks"][seq][str(f)].values():
                for m in folder_marks:
                    if m[0] is not None:
                        cv2.circle(img, tuple(np.round(np.array(m) * 16).astype(int)), int(MARK_RADIUS * 16),
                                   (255, 255, 255), -1, cv2.LINE_AA, shift=4)
            cv2.imwrite(str(d / "images" / f"{f:06d}.bmp"), img)
    (root / FIXTURE_MARKER).write_text(json.dumps(info) + "\n")
    return root


def fixture_truth(root) -> tuple[dict, dict]:
    """The true cameras ``{seq: {frame: (K, R, t)}}`` (world metres) and the marks ``{seq: {frame: {folder:
    (26, 2) px}}}`` (NaN where not drawn)."""
    info = json.loads((Path(root) / FIXTURE_MARKER).read_text())
    cams = {seq: {int(f): tuple(np.array(c[key]) for key in ("K", "R", "t")) for f, c in frames.items()}
            for seq, frames in info["cameras"].items()}
    marks = {seq: {int(f): {p: np.array([[np.nan if v is None else v for v in m] for m in ms])
                            for p, ms in people.items()} for f, people in frames.items()}
             for seq, frames in info["marks"].items()}
    return cams, marks
