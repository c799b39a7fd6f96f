"""A miniature BEHAVE raw tree in the release's layout, and small random gendered SMPL model files.

Three sequences: ``Date01_Sub01_backpack_back`` (train, male), ``Date02_Sub02_boxlarge_hand`` (test, female) and
``Date03_Sub03_toolbox`` (listed in neither split of split.json: left out), 5 frame folders ``t0000.000`` ...
each, three Kinects (0, 1, 2; Kinect 1 is the world, as in the release). Fits are dicts of float32 numpy arrays of
the release's keys and shapes (SMPL-H: pose 156, betas 10, trans 3), pickled; the hand pose values are random (they
move no SMPL joint). Frame 3 repeats frame 2 (the pose sampler leaves it out); in the train sequence frame 4 has no
fit, in the test sequence frame 1 has no Kinect 2 image and frame 0's Kinect 0 no mask. The OpenPose joints
(``person_J3d.json``, m, score) are the SMPL joints moved by a few cm; frame 1's left ear has score 0 (zeros).

Calibrations: ``calibs/intrinsics/<k>/calibration.json`` in the Azure Kinect SDK's keys (``color``: fx, fy, cx, cy,
k1..k6, p1, p2, width, height, and ``opencv`` = fx, fy, cx, cy, then the eight coefficients in OpenCV's order, the
ones ``KinectCalib`` passes to OpenCV; the first four of ``opencv`` are this fixture's guess),
``calibs/Date0x/config/<k>/config.json`` (rotation, translation: camera to world, m). Frames are 640 x 480 JPEGs
(the real ones 2048 x 1536, the size every calibration.json gives) with a dark background and a white mark at each
of the 49 joints, projected with an independent numpy rational distortion model (:func:`project`); masks are thick
white limbs along SMPL's tree (one connected blob).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np

from posebank.core.bodymodel import rodrigues
from posebank.core.smpl_model import random_model, write_random_model

FIXTURE_MARKER = ".posebank-fixture"
SIZE = (640, 480)
MARK_RADIUS = 2.0
MASK_RADIUS = 14
N_FRAMES = 5
KINECTS = (0, 1, 2)
# name, split (None: not in split.json), gender, date
SEQUENCES = (("Date01_Sub01_backpack_back", "train", "male", "Date01"),
             ("Date02_Sub02_boxlarge_hand", "test", "female", "Date02"),
             ("Date03_Sub03_toolbox", None, "male", "Date01"))
MODEL_SEEDS = {"male": 21, "female": 22}
REPEATED_FRAME = 3
MISSING_FIT = ("Date01_Sub01_backpack_back", 4)
MISSING_IMAGE = ("Date02_Sub02_boxlarge_hand", 1, 2)
MISSING_MASK = ("Date02_Sub02_boxlarge_hand", 0, 0)
ZERO_SCORE = (1, 18)  # frame, raw OpenPose joint (LEar)
# BODY_25 -> the SMPL joint it is placed near
OPENPOSE_AT = (15, 12, 17, 19, 21, 16, 18, 20, 0, 2, 5, 8, 1, 4, 7, 15, 15, 15, 15, 10, 10, 7, 11, 11, 8)
PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)


def frame_name(i: int) -> str:
    return f"t{i:04d}.000"


def forward(model: dict, pose: np.ndarray, betas: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """(24, 3) m: SMPL's joints in plain numpy (SMPL-H pose: only the first 66 values move SMPL's joints)."""
    rest = model["J_regressor"] @ (model["v_template"] + model["shapedirs"][:, :, :len(betas)] @ betas)
    rot = rodrigues(np.concatenate([pose[:66], np.zeros(6)]).reshape(24, 3))
    glob, out = [rot[0]], [rest[0]]
    for k in range(1, 24):
        par = PARENTS[k]
        out.append(out[par] + glob[par] @ (rest[k] - rest[par]))
        glob.append(glob[par] @ rot[k])
    return np.array(out) + trans


def _look_at(centre, target) -> np.ndarray:
    """World -> camera rotation of a camera at ``centre`` looking at ``target`` (world y down)."""
    z = np.asarray(target, float) - centre
    z /= np.linalg.norm(z)
    x = np.cross((0, 1.0, 0), z)
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


def fixture_kinects(date: str) -> dict[int, dict]:
    """k -> {R (world -> camera), C (centre, m), K, dist (k1 k2 p1 p2 k3 k4 k5 k6)}; Kinect 1 is the world."""
    side = 1.0 if date == "Date01" else 0.8
    out = {}
    for k in KINECTS:
        centre = np.array([(k - 1) * 2.0 * side, -0.2 * (k != 1), 0.4 * (k != 1)])
        R = np.eye(3) if k == 1 else _look_at(centre, (0, 0.1, 3.0))
        f = 500.0 + 7 * k
        K = np.array([[f, 0, 319.5 + 3 * k], [0, f + 1.5, 239.5 - 2 * k], [0, 0, 1]])
        dist = np.array([0.52 + 0.01 * k, -2.6, 0.0008, -0.0003, 1.5, 0.40, -2.45, 1.42])
        out[k] = {"R": R, "C": centre, "K": K, "dist": dist}
    return out


def project(points_m: np.ndarray, cam: dict) -> np.ndarray:
    """(N, 2) pixels: world points (m) through a fixture Kinect, OpenCV's rational model written out."""
    p = (points_m - cam["C"]) @ cam["R"].T
    x, y = p[:, 0] / p[:, 2], p[:, 1] / p[:, 2]
    k1, k2, p1, p2, k3, k4, k5, k6 = cam["dist"]
    r2 = x * x + y * y
    radial = (1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3) / (1 + k4 * r2 + k5 * r2 ** 2 + k6 * r2 ** 3)
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    K = cam["K"]
    return np.stack([K[0, 0] * xd + K[0, 2], K[1, 1] * yd + K[1, 2]], axis=1)


def calibration_json(cam: dict) -> dict:
    K, d = cam["K"], cam["dist"]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    k1, k2, p1, p2, k3, k4, k5, k6 = (float(v) for v in d)
    color = {"cx": cx, "cy": cy, "fx": fx, "fy": fy, "k1": k1, "k2": k2, "k3": k3, "k4": k4, "k5": k5, "k6": k6,
             "codx": 0.0, "cody": 0.0, "p2": p2, "p1": p1, "metric_radius": 1.7, "width": SIZE[0],
             "height": SIZE[1], "opencv": [fx, fy, cx, cy, *(float(v) for v in d)]}
    depth = {"cx": 160.0, "cy": 144.0, "fx": 252.0, "fy": 252.0, "k1": 0.5, "k2": 0.1, "k3": 0.0, "k4": 0.8,
             "k5": 0.2, "k6": 0.01, "codx": 0.0, "cody": 0.0, "p2": 0.0, "p1": 0.0, "metric_radius": 1.7,
             "width": 320, "height": 288, "opencv": [252.0, 252.0, 160.0, 144.0, 0.5, 0.1, 0, 0, 0, 0.8, 0.2, 0.01]}
    return {"color": color, "depth": depth,
            "color_to_depth": {"rotation": np.eye(3).ravel().tolist(), "translation": [-0.032, -0.002, 0.004]},
            "depth_to_color": {"rotation": np.eye(3).ravel().tolist(), "translation": [0.032, 0.002, -0.004]}}


def fixture_fit(rng, frame: int, lateral: float) -> dict[str, np.ndarray]:
    """An SMPL-H fit of the release's keys and shapes (float32), standing upright in front of Kinect 1."""
    pose = np.concatenate([[np.pi, 0, 0] + rng.normal(0, 0.05, 3), rng.normal(0, 0.2, 63), rng.normal(0, 0.6, 90)])
    return {"pose": pose.astype(np.float32), "betas": rng.normal(0, 0.8, 10).astype(np.float32),
            "trans": np.array([lateral + 0.12 * frame, -0.1 + rng.normal(0, 0.02), 3.2 + 0.1 * frame], np.float32)}


def openpose_joints(rng, smpl_m: np.ndarray) -> np.ndarray:
    """(25, 3) m: BODY_25 points a few cm from the SMPL joints they stand for."""
    return smpl_m[list(OPENPOSE_AT)] + rng.normal(0, 0.03, (25, 3)) + np.where(
        np.arange(25)[:, None] >= 15, [[0, -0.04, 0]], 0)


def draw(points_2d: np.ndarray) -> np.ndarray:
    image = np.full((SIZE[1], SIZE[0], 3), 30, np.uint8)
    for x, y in points_2d:
        if np.isfinite(x) and np.isfinite(y):
            cv2.circle(image, (int(round(x * 16)), int(round(y * 16))), int(MARK_RADIUS * 16), (255, 255, 255), -1,
                       cv2.LINE_AA, shift=4)
    return image


def draw_mask(smpl_2d: np.ndarray) -> np.ndarray:
    """One connected blob: thick limbs along SMPL's tree (posebank keeps a crop mask's best component only)."""
    mask = np.zeros((SIZE[1], SIZE[0]), np.uint8)
    p = np.round(smpl_2d).astype(int)
    for k in range(1, len(p)):
        cv2.line(mask, tuple(map(int, p[k])), tuple(map(int, p[PARENTS[k]])), 255, 2 * MASK_RADIUS)
    for x, y in p:
        cv2.circle(mask, (int(x), int(y)), MASK_RADIUS, 255, -1)
    return mask


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


def make_fixture(root, seed: int = 0) -> Path:
    """Write the miniature raw tree (module docstring) under ``root``; returns ``root``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for gender, s in MODEL_SEEDS.items():
        write_random_model(root / "body_models", gender, seed=s)
    models = {g: random_model(s) for g, s in MODEL_SEEDS.items()}
    write_json(root / "split.json", {s: [n for n, split, _, _ in SEQUENCES if split == s] for s in ("train", "test")})
    for k, cam in fixture_kinects("Date01").items():
        write_json(root / "calibs" / "intrinsics" / str(k) / "calibration.json", calibration_json(cam))
    for date in ("Date01", "Date02"):
        for k, cam in fixture_kinects(date).items():
            # camera -> world: x_world = R_wc^T x_cam + C
            write_json(root / "calibs" / date / "config" / str(k) / "config.json",
                       {"rotation": cam["R"].T.ravel().tolist(), "translation": cam["C"].tolist()})
    for name, split, gender, date in SEQUENCES:
        seq = root / "sequences" / name
        write_json(seq / "info.json", {"config": f"../../calibs/{date}/config", "intrinsic": "../../calibs/intrinsics",
                                       "cat": name.split("_")[2], "gender": gender,
                                       "empty": f"../../calibs/{date}/background/background.ply",
                                       "kinects": list(KINECTS), "beta": None})
        if split is None:
            continue
        cams = fixture_kinects(date)
        intr = fixture_kinects("Date01")  # the intrinsics are per Kinect, the same on every date
        fits, ops = {}, {}
        for frame in range(N_FRAMES):
            if frame == REPEATED_FRAME:
                fits[frame], ops[frame] = fits[frame - 1], ops[frame - 1]
                continue
            fits[frame] = fixture_fit(rng, frame, -0.4)
            f = {k: v.astype(np.float64) for k, v in fits[frame].items()}
            smpl = forward(models[gender], f["pose"], f["betas"], f["trans"])
            rows = np.concatenate([openpose_joints(rng, smpl), np.full((25, 1), 0.75)], axis=1)
            if frame == ZERO_SCORE[0]:
                rows[ZERO_SCORE[1]] = 0
            ops[frame] = rows
        for frame in range(N_FRAMES):
            folder = seq / frame_name(frame)
            f = {k: v.astype(np.float64) for k, v in fits[frame].items()}
            smpl = forward(models[gender], f["pose"], f["betas"], f["trans"])
            if (name, frame) != MISSING_FIT:
                (folder / "person" / "fit02").mkdir(parents=True, exist_ok=True)
                (folder / "person" / "fit02" / "person_fit.pkl").write_bytes(pickle.dumps(fits[frame]))
            write_json(folder / "person" / "person_J3d.json", {"body_joints3d": ops[frame].ravel().tolist()})
            points = np.concatenate([smpl, ops[frame][:, :3][ops[frame][:, 3] > 0]])
            for k in KINECTS:
                if (name, frame, k) == MISSING_IMAGE:
                    continue
                cam = {**cams[k], "K": intr[k]["K"], "dist": intr[k]["dist"]}
                cv2.imwrite(str(folder / f"k{k}.color.jpg"), draw(project(points, cam)), [cv2.IMWRITE_JPEG_QUALITY, 92])
                if (name, frame, k) != MISSING_MASK:
                    cv2.imwrite(str(folder / f"k{k}.person_mask.jpg"), draw_mask(project(smpl, cam)))
    (root / FIXTURE_MARKER).write_text("posebank behave fixture\n")
    return root
