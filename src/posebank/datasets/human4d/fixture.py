"""A miniature HUMAN4D raw tree in the release's layout, for tests and demos (see :func:`make_fixture`)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from posebank.core.camera import look_at
from posebank.datasets.human4d import (
    COLOR_DIR,
    DEVICES,
    GPOSES_DIR,
    IMAGE_SIZE,
    OFFSETS,
    POSE_DIR,
    RAW_JOINT_NAMES,
    RESOLUTION,
    SELECTED,
    SUBJECTS,
)

FIXTURE_MARKER = ".posebank-fixture"
CAMERAS = ("M72e", "M72h", "M72i", "M72j")  # the four D415 sensors' names in the release
SEQUENCES = {"S1": "19-07-12-07-32-22", "S2": "19-07-12-09-09-06", "S3": "19-07-12-10-01-38",
             "S4": "19-07-12-13-07-06"}
N_FRAMES = 8  # group frames 0..7 per sequence
OFFSET1 = 3  # offsets.txt: pose index = frame - (3 - 1) (posepile): frames 0, 1 are before the mocap
N_POSES = 5  # gposes3d/0..4.npy: frame 7 (index 5) has no pose file
REPEATED_INDEX = 2  # repeats index 1's pose: the sampler leaves frame 4 out
COPIED = ("S3", 0, "S1", 0)  # S3's index 0 is S1's index 0: the sampler pooled across subjects leaves it out
TWO_PEOPLE = "S4"  # its gposes3d files hold two people
FLOOR_Z = -820.0  # the calibration structure's top (the origin) is 820 mm above the floor; z is up
MARK_RADIUS = 5.0
# the 33 joints of a standing person, mm, in its own frame (x to its left, y forward, z up from the floor)
_TEMPLATE = {
    "pelv": (0, 0, 950), "spin0": (0, -10, 1040), "spin1": (0, -15, 1130), "spin2": (0, -15, 1220),
    "spin3": (0, -10, 1310), "neck": (0, 0, 1480), "neck2": (0, 15, 1560), "head": (0, 35, 1650),
    "htop": (0, 10, 1760), "neck3": (0, -5, 1395), "rsho": (-185, 0, 1410), "relb": (-205, 10, 1130),
    "rwri": (-215, 40, 885), "rpinkie": (-225, 55, 795), "rthu": (-185, 85, 815), "neck4_del": (0, -30, 1400),
    "lsho": (185, 0, 1410), "lelb": (205, 10, 1130), "lwri": (215, 40, 885), "lpinkie": (225, 55, 795),
    "lthu": (185, 85, 815), "rhip": (-100, 0, 930), "rkne": (-110, 25, 505), "rank": (-115, -20, 90),
    "rfoo": (-118, 60, 45), "rtoe": (-118, 165, 25), "rtoe2": (-70, 175, 25), "lhip": (100, 0, 930),
    "lkne": (110, 25, 505), "lank": (115, -20, 90), "lfoo": (118, 60, 45), "ltoe": (118, 165, 25),
    "ltoe2": (70, 175, 25)}
_T = np.array([_TEMPLATE[n] for n in RAW_JOINT_NAMES], np.float64)
_I = {n: i for i, n in enumerate(RAW_JOINT_NAMES)}


def person_pose(heading: float, start: np.ndarray, g: int) -> np.ndarray:
    """(33, 3) mm in the global frame (z up, floor at FLOOR_Z): the person stepping sideways, turning, arms and legs
    swinging."""
    local = _T.copy()
    for root, limb, angle in (("rsho", ("relb", "rwri", "rpinkie", "rthu"), 0.6 * np.sin(0.9 * g)),
                              ("lsho", ("lelb", "lwri", "lpinkie", "lthu"), 0.6 * np.sin(0.9 * g + 1.7)),
                              ("rhip", ("rkne", "rank", "rfoo", "rtoe", "rtoe2"), 0.3 * np.sin(0.7 * g)),
                              ("lhip", ("lkne", "lank", "lfoo", "ltoe", "ltoe2"), 0.3 * np.sin(0.7 * g + np.pi))):
        c, s = np.cos(angle), np.sin(angle)
        swing = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
        ids = [_I[n] for n in limb]
        local[ids] = (local[ids] - local[_I[root]]) @ swing.T + local[_I[root]]
    h = heading + 0.3 * g
    c, s = np.cos(h), np.sin(h)
    x = c * local[:, 0] - s * local[:, 1]
    y = s * local[:, 0] + c * local[:, 1]
    return np.stack([x + start[0] + 150.0 * g, y + start[1], local[:, 2] + FLOOR_Z], axis=1)


def fixture_poses(seed: int = 0) -> dict[str, dict[int, np.ndarray]]:
    """Per subject, pose index -> (people, 33, 3) mm in the global frame, as ``gposes3d/<index>.npy`` holds it."""
    rng = np.random.default_rng(seed)
    out = {}
    for subj in SUBJECTS:
        people = 2 if subj == TWO_PEOPLE else 1
        starts = [(rng.uniform(0, 2 * np.pi), np.array([rng.uniform(-500, -300), rng.uniform(-300, 300)]))
                  for _ in range(people)]
        if people == 2:
            starts[1] = (starts[1][0], starts[0][1] + [300.0, 900.0])
        poses = {}
        for i in range(N_POSES):
            g = i - 1 if i == REPEATED_INDEX else i
            poses[i] = np.stack([person_pose(h, st, g) for h, st in starts])
        out[subj] = poses
    subj, i, src, j = COPIED
    out[subj][i] = out[src][j].copy()
    return out


def devices(seed: int, subject: str) -> list[dict]:
    """``device_repository.json``: per sensor the colour (and depth) intrinsics at several resolutions, the
    colour-depth rotation and translation (m)."""
    rng = np.random.default_rng(seed * 10 + int(subject[1:]))
    out = []
    w, h = IMAGE_SIZE
    for cam in CAMERAS:
        f = rng.uniform(900, 940)
        k = [f, 0.0, (w - 1) / 2 + rng.uniform(-8, 8), 0.0, f * rng.uniform(0.999, 1.001),
             (h - 1) / 2 + rng.uniform(-6, 6), 0.0, 0.0, 1.0]
        kd = [f * 0.7, 0.0, 640.0, 0.0, f * 0.7, 360.0, 0.0, 0.0, 1.0]
        a = rng.uniform(-0.01, 0.01, 3)  # a small colour-depth rotation (radians)
        rot, _ = cv2.Rodrigues(a)
        out.append({"Device": cam,
                    "Color Intrinsics": [{"1920x1080": [v * 1.5 for v in k[:6]] + k[6:], RESOLUTION: k}],
                    "Depth Intrinsics": [{RESOLUTION: kd}],
                    "Color Depth Rotation": rot.reshape(-1).tolist(),
                    "Color Depth Translation": [0.0148 + rng.uniform(-5e-4, 5e-4), rng.uniform(-3e-4, 3e-4),
                                                rng.uniform(-3e-4, 3e-4)]})
    return out


def extrinsics(seed: int, subject: str) -> dict[str, np.ndarray]:
    """Per sensor the 4 x 3 ``.extrinsics`` rows: the depth sensor's rotation to the world (rows 0-2) and position
    (row 3, mm). The sensors stand on their side around the capture area (image x pointing down, the person lying
    with the head to the left)."""
    rng = np.random.default_rng(seed * 10 + int(subject[1:]) + 100)
    out = {}
    target = np.array([0.0, 0.0, FLOOR_Z + 950.0])
    for k, cam in enumerate(CAMERAS):
        angle = k * np.pi / 2 + np.pi / 4 + rng.uniform(-0.2, 0.2)
        eye = np.array([3000 * np.cos(angle), 3000 * np.sin(angle), FLOOR_Z + 1000 + rng.uniform(-100, 200)])
        upright = look_at(eye, target, world_up=(0, 0, 1))  # world -> camera, image y down
        sideways = np.stack([upright[1], -upright[0], upright[2]])  # rolled 90 degrees: image x down
        out[cam] = np.vstack([sideways.T, eye])
    return out


def color_camera(device: dict, extr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K, R world -> colour, t) as the release projects: ``x_d = Mᵀ (X - c)``, ``x_c = Rcd⁻¹ (x_d - 1000 tcd)``."""
    m, c = extr[:3], extr[3]
    rcd = np.array(device["Color Depth Rotation"]).reshape(3, 3)
    tcd = np.array(device["Color Depth Translation"]) * 1000
    r = np.linalg.inv(rcd) @ m.T
    t = -np.linalg.inv(rcd) @ (m.T @ c + tcd)
    return np.array(device["Color Intrinsics"][0][RESOLUTION]).reshape(3, 3), r, t


def project(device: dict, extr: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The release's projection of world points (mm) into the colour image."""
    k, r, t = color_camera(device, extr)
    x = points @ r.T + t
    uv = (x / x[:, 2:]) @ k.T
    return uv[:, :2]


def _frame(points: list[np.ndarray]) -> np.ndarray:
    w, h = IMAGE_SIZE
    img = np.full((h, w, 3), 35, np.uint8)
    for pts in points:
        for pt in pts:
            if np.all(np.isfinite(pt)) and -50 < pt[0] < w + 50 and -50 < pt[1] < h + 50:
                cv2.circle(img, tuple(np.round(pt * 16).astype(int)), int(MARK_RADIUS * 16), (255, 255, 255), -1,
                           cv2.LINE_AA, shift=4)
    return img


def color_name(frame: int, cam: str) -> str:
    return f"{frame}_{cam}_color_{13519 + 7 * CAMERAS.index(cam) + frame}.png"


def make_fixture(root, seed: int = 0, cameras=CAMERAS) -> Path:
    """Write the HUMAN4D layout for S1..S4: ``device_repository.json``, ``offsets.txt`` (one line per sequence plus
    one of a sequence not downloaded), ``pose/<cam>.extrinsics``, one sequence each with ``Dump/gposes3d/0..4.npy``
    (1 x 33 x 3; 2 x 33 x 3 in S4) and the colour PNGs of group frames 0..7 of ``cameras`` (1280 x 720, white marks at
    the projected joints of the frames with a pose, neck4_del left unmarked)."""
    root = Path(root)
    poses = fixture_poses(seed)
    for subj in SUBJECTS:
        folder = root / subj
        seq = SEQUENCES[subj]
        (folder / POSE_DIR).mkdir(parents=True, exist_ok=True)
        devs = devices(seed, subj)
        (folder / DEVICES).write_text(json.dumps(devs, indent=1))
        (folder / OFFSETS).write_text(f"{seq}\t{OFFSET1}\t{OFFSET1 + 250}\n19-07-12-14-00-00\t7\t300\n")
        extr = extrinsics(seed, subj)
        for cam, rows in extr.items():
            np.savetxt(folder / POSE_DIR / f"{cam}.extrinsics", rows)
        (folder / seq / GPOSES_DIR).mkdir(parents=True, exist_ok=True)
        for i, pose in poses[subj].items():
            np.save(folder / seq / GPOSES_DIR / f"{i}.npy", pose.astype(np.float64))
        (folder / seq / COLOR_DIR).mkdir(parents=True, exist_ok=True)
        by_name = {d["Device"]: d for d in devs}
        for cam in cameras:
            for f in range(N_FRAMES):
                index = f - (OFFSET1 - 1)
                pose = poses[subj].get(index)
                marks = [] if pose is None else [project(by_name[cam], extr[cam], p[SELECTED]) for p in pose]
                cv2.imwrite(str(folder / seq / COLOR_DIR / color_name(f, cam)), _frame(marks))
    (root / FIXTURE_MARKER).write_text(f"human4d fixture, seed {seed}\n")
    return root
