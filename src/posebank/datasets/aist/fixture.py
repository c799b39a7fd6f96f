"""A miniature AIST++ raw tree in the release's layout, for tests and demos (see :func:`make_fixture`)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np

from posebank.core.camera import look_at
from posebank.datasets.aist import (
    CAMERA_DIR,
    FPS,
    FRAME_SIZE,
    IGNORE_LIST,
    KEYPOINTS_DIR,
    MAPPING,
    SPLIT_FILES,
    VIDEO_DIR,
    VIEWS,
    video_name,
)

FIXTURE_MARKER = ".posebank-fixture"
MARK_RADIUS = 5.0
# sequence -> (split, setting); the last is on the release's ignore list (its videos are not written)
SEQUENCES = {
    "gBR_sBM_cAll_d04_mBR1_ch02": ("train", "setting1"),
    "gLO_sFM_cAll_d13_mLO2_ch04": ("val", "setting2"),
    "gHO_sBM_cAll_d19_mHO0_ch01": ("test", "setting2"),
    "gWA_sBM_cAll_d27_mWA2_ch08": ("train", "setting1"),
}
IGNORED = ("gWA_sBM_cAll_d27_mWA2_ch08",)
REPEATED_FRAME = 2  # the pose of frame 2 repeats frame 1 (the adaptive sampler leaves it out)
# COCO-17 of a standing dancer, cm, in the person's frame (x right, y up, z forward)
_TEMPLATE = np.array([
    (0, 160, 8), (-3, 164, 6), (3, 164, 6), (-8, 162, 0), (8, 162, 0), (-19, 142, 0), (19, 142, 0),
    (-25, 115, 2), (25, 115, 2), (-27, 90, 6), (27, 90, 6), (-11, 95, 0), (11, 95, 0), (-12, 52, 3),
    (12, 52, 3), (-13, 8, -2), (13, 8, -2)], np.float64)
_WRISTS, _ELBOWS, _ANKLES = (9, 10), (7, 8), (15, 16)


def _setting_cameras(radius_cm: float, height_cm: float, focal: float, k1: float) -> list[dict]:
    """Nine cameras as an AIST setting json holds them (aniposelib ``Camera.get_dict()``): c01..c08 on a ring about
    the stage, c09 above the front one; world y up, centimetres."""
    out = []
    w, h = FRAME_SIZE
    for i, view in enumerate(VIEWS):
        angle = 2 * np.pi * i / 8
        eye = np.array([radius_cm * np.sin(angle), height_cm, radius_cm * np.cos(angle)])
        if view == "c09":
            eye = np.array([0.0, height_cm + 150.0, radius_cm * 0.9])
        rot = look_at(eye, np.array([0.0, 95.0, 0.0]), world_up=(0, 1, 0))
        rvec = cv2.Rodrigues(rot)[0].reshape(3)
        tvec = -rot @ eye
        matrix = [[focal + 3 * i, 0.0, w / 2 + 4.5 - i], [0.0, focal + 3 * i, h / 2 - 2.25 + i], [0.0, 0.0, 1.0]]
        out.append({"name": view, "size": [w, h], "matrix": matrix,
                    "distortions": [k1 * (1 + 0.1 * i), 0.0, 0.0, 0.0, 0.0],
                    "rotation": rvec.tolist(), "translation": tvec.tolist()})
    return out


def _poses(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """(n_frames, 17, 3) cm: a dancer turning and stepping on the stage, arms and feet moving > 10 cm per frame."""
    heading0 = rng.uniform(0, 2 * np.pi)
    start = rng.uniform(-30, 30, size=2)
    out = np.zeros((n_frames, 17, 3))
    for f in range(n_frames):
        g = f if f < REPEATED_FRAME else f - 1  # frame 2 repeats frame 1
        local = _TEMPLATE * rng.uniform(0.999, 1.001)
        local[list(_WRISTS), 1] += 25 * np.sin(0.9 * g + np.array([0.0, 1.7]))
        local[list(_ELBOWS), 1] += 10 * np.sin(0.9 * g + np.array([0.0, 1.7]))
        local[list(_ANKLES), 2] += 12 * np.sin(0.7 * g + np.array([0.0, np.pi]))
        heading = heading0 + 0.25 * g
        c, s = np.cos(heading), np.sin(heading)
        rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
        out[f] = local @ rot.T + np.array([start[0] + 4 * g, 0.0, start[1] - 3 * g])
    return out


def _draw(cam: dict, pose_cm: np.ndarray) -> np.ndarray:
    """A 1920x1080 frame with white marks at the joints, projected with OpenCV from the json's own values."""
    w, h = cam["size"]
    img = np.full((h, w, 3), 35, np.uint8)
    pts = cv2.projectPoints(pose_cm.reshape(-1, 1, 3), np.array(cam["rotation"]), np.array(cam["translation"]),
                            np.array(cam["matrix"]), np.array(cam["distortions"]))[0].reshape(-1, 2)
    for pt in pts:
        cv2.circle(img, tuple(np.round(pt * 16).astype(int)), int(MARK_RADIUS * 16), (255, 255, 255), -1,
                   cv2.LINE_AA, shift=4)
    return img


def fixture_poses(seed: int = 0, n_frames: int = 5) -> dict[str, np.ndarray]:
    """The fixture's ``keypoints3d_optim`` per sequence (cm), as :func:`make_fixture` writes them."""
    rng = np.random.default_rng(seed)
    return {seq: _poses(rng, n_frames) for seq in SEQUENCES}


def make_fixture(root, seed: int = 0, n_frames: int = 5, views=VIEWS) -> Path:
    """Write the AIST++ layout: two setting jsons (9 cameras each) and mapping.txt, ignore_list.txt, the three
    pose split files, one keypoints3d pickle per sequence (``keypoints3d`` and ``keypoints3d_optim``, numpy arrays,
    as the API's ``run_estimate_keypoints.py`` dumps them) and, per sequence not ignored, the 1920x1080 60 fps
    mp4 videos of ``views`` with white marks at the projected joints."""
    from posebank.imaging.video import write_video

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    settings = {"setting1": _setting_cameras(520.0, 180.0, 1620.0, -0.02),
                "setting2": _setting_cameras(460.0, 170.0, 1540.0, -0.03)}
    (root / CAMERA_DIR).mkdir(parents=True, exist_ok=True)
    for name, cams in settings.items():
        (root / CAMERA_DIR / f"{name}.json").write_text(json.dumps(cams))
    (root / MAPPING).write_text("".join(f"{seq} {setting}\n" for seq, (_, setting) in SEQUENCES.items()))
    (root / IGNORE_LIST).write_text("".join(f"{seq}\n" for seq in IGNORED))
    for split, rel in SPLIT_FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("".join(f"{seq}\n" for seq, (s, _) in SEQUENCES.items() if s == split))
    (root / KEYPOINTS_DIR).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 1)
    for k, (seq, poses) in enumerate(fixture_poses(seed, n_frames).items()):
        data = {"keypoints3d": poses + rng.normal(0, 0.5, poses.shape), "keypoints3d_optim": poses}
        with open(root / KEYPOINTS_DIR / f"{seq}.pkl", "wb") as f:
            pickle.dump(data, f, protocol=4 if k % 2 else pickle.HIGHEST_PROTOCOL)
        if seq in IGNORED:
            continue
        cams = {c["name"]: c for c in settings[SEQUENCES[seq][1]]}
        for view in views:
            write_video(root / VIDEO_DIR / f"{video_name(seq, view)}.mp4",
                        (_draw(cams[view], pose) for pose in poses), fps=FPS)
    (root / FIXTURE_MARKER).write_text(f"aist fixture, seed {seed}\n")
    return root
