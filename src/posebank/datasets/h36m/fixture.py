"""A miniature Human3.6M raw tree in the release's layout, for tests and demos (see :func:`make_fixture`)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from posebank.core.camera import Camera, euler_rxyz_from_rotation, look_at
from posebank.datasets.h36m import (
    CAMERA_IDS,
    IMAGE_SIZES,
    JOINT_INFO,
    N_RAW_JOINTS,
    S9_SHIFT_MM,
    S9_SHIFTED,
    SELECTED_JOINTS,
    read_cameras,
)

FIXTURE_ACTIONS = {1: ["Directions 1"], 5: ["Discussion 2"], 6: ["Eating 1"], 7: ["Greeting 1"],
                   8: ["Phoning 1"], 9: ["Waiting 1", "Posing 1"], 11: ["Directions 1"]}
MARK_RADIUS = 4.0


def _template_pose() -> np.ndarray:
    """A standing person in the 32-joint release order, local frame (x right of the person, y forward, z up)."""
    j = np.zeros((N_RAW_JOINTS, 3))
    named = {
        0: (0, 0, 950), 1: (-130, 0, 940), 2: (-140, 10, 520), 3: (-150, -10, 90), 4: (-150, 90, 30),
        5: (-150, 160, 20), 6: (130, 0, 940), 7: (140, 10, 520), 8: (150, -10, 90), 9: (150, 90, 30),
        10: (150, 160, 20), 11: (0, 0, 1180), 12: (0, 0, 1430), 13: (0, 20, 1560), 14: (0, 40, 1650),
        15: (0, 30, 1770), 16: (0, 0, 1430), 17: (180, 0, 1420), 18: (330, 0, 1170), 19: (360, 40, 930),
        20: (370, 70, 900), 21: (370, 90, 880), 22: (360, 60, 880), 23: (360, 70, 860), 24: (0, 0, 1430),
        25: (-180, 0, 1420), 26: (-330, 0, 1170), 27: (-360, 40, 930), 28: (-370, 70, 900),
        29: (-370, 90, 880), 30: (-360, 60, 880), 31: (-360, 70, 860)}
    for i, v in named.items():
        j[i] = v
    return j


def _fixture_poses(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """A person walking on a circle in the capture area, turning and swinging the arms."""
    base = _template_pose()
    t = np.arange(n_frames)
    start = rng.uniform(-300, 300, 2)
    heading0 = rng.uniform(0, 2 * np.pi)
    out = np.zeros((n_frames, N_RAW_JOINTS, 3))
    for i in t:
        heading = heading0 + 0.02 * i
        swing = 0.5 * np.sin(0.25 * i)
        local = base.copy()
        for shoulder, arm in ((17, (18, 19, 20, 21, 22, 23)), (25, (26, 27, 28, 29, 30, 31))):
            sign = 1 if shoulder == 17 else -1
            c, s = np.cos(sign * swing), np.sin(sign * swing)
            rel = local[list(arm)] - local[shoulder]
            local[list(arm)] = local[shoulder] + rel @ np.array([[1, 0, 0], [0, c, s], [0, -s, c]])
        c, s = np.cos(heading), np.sin(heading)
        rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
        # a circle of 700 mm radius at 35 mm per frame: the person stays inside every camera's view
        phase = heading0 + 0.05 * i
        pos = start + 700.0 * np.array([np.cos(phase), np.sin(phase)])
        out[i] = local @ rot.T + [pos[0], pos[1], 0]
    return out


def _fixture_cameras(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Plausible H36M-like cameras in the ``w0`` layout: extrinsics (4, 11, 6) and intrinsics (4, 9)."""
    extrinsics = np.zeros((4, 11, 6))
    intrinsics = np.zeros((4, 9))
    for i_cam, cam_id in enumerate(CAMERA_IDS):
        w, h = IMAGE_SIZES[cam_id]
        f = rng.uniform(1140, 1150, 2)
        c = np.array([w / 2, h / 2]) + rng.uniform(-12, 12, 2)
        k = np.array([-0.2, 0.24, -0.002]) + rng.uniform(-0.01, 0.01, 3)
        p = rng.uniform(-0.003, 0.003, 2)
        intrinsics[i_cam] = [*f, *c, *k, *p]
        for i_subj in range(11):
            angle = np.deg2rad(45 + 90 * i_cam) + rng.uniform(-0.1, 0.1)
            radius = rng.uniform(4500, 5500)
            eye = np.array([radius * np.cos(angle), radius * np.sin(angle), rng.uniform(1400, 1700)])
            target = np.array([0.0, 0.0, 900.0]) + rng.uniform(-200, 200, 3)
            rot = look_at(eye, target)
            extrinsics[i_cam, i_subj] = [*euler_rxyz_from_rotation(rot), *eye]
    return extrinsics, intrinsics


def _draw_frame(camera: Camera, pose17: np.ndarray, size) -> np.ndarray:
    w, h = size
    img = np.full((h, w, 3), 40, np.uint8)
    pts = camera.project(pose17)
    for a, b in JOINT_INFO.edges:
        pa, pb = np.round(pts[[a, b]] * 16).astype(int)
        cv2.line(img, tuple(pa), tuple(pb), (110, 110, 110), 18, cv2.LINE_AA, shift=4)
    for pt in pts:
        cv2.circle(img, tuple(np.round(pt * 16).astype(int)), int(MARK_RADIUS * 16), (255, 255, 255), -1,
                   cv2.LINE_AA, shift=4)
    return img


def make_fixture(root, seed: int = 0, subjects=None, n_frames: int = 70, cameras=CAMERA_IDS) -> Path:
    """Write a miniature Human3.6M raw tree in the release's layout.

    Real CDF pose files and mp4 videos in which white marks are drawn at the projected 17 converted joints
    (over a grey stick figure), and a metadata.xml whose ``<w0>`` block holds plausible cameras. S9's
    ``Waiting 1`` carries the release's +200 mm x shift in its CDF, so the documented correction is exercised.
    """
    from cdflib.cdfwrite import CDF

    from posebank.imaging.video import write_video

    root = Path(root)
    rng = np.random.default_rng(seed)
    subjects = sorted(subjects or FIXTURE_ACTIONS)
    extrinsics, intrinsics = _fixture_cameras(rng)
    root.mkdir(parents=True, exist_ok=True)
    numbers = " ".join(repr(float(x)) for x in [*extrinsics.ravel(), *intrinsics.ravel()])
    subjects_txt = " ".join(str(s) for s in subjects)
    (root / "metadata.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<a>\n'
        f"   <train_subjects>[{subjects_txt}]</train_subjects>\n"
        f"   <w0>[{numbers}]</w0>\n</a>\n")
    cams = read_cameras(root / "metadata.xml")
    for subj in subjects:
        for act in FIXTURE_ACTIONS.get(subj, ["Directions 1"]):
            true_poses = _fixture_poses(rng, n_frames)
            stored = true_poses.copy()
            if subj == 9 and act in S9_SHIFTED:
                stored[..., 0] += S9_SHIFT_MM  # the release's error, undone by the correction
            cdf_path = root / f"S{subj}/MyPoseFeatures/D3_Positions/{act}.cdf"
            cdf_path.parent.mkdir(parents=True, exist_ok=True)
            if cdf_path.exists():
                cdf_path.unlink()
            cdf = CDF(str(cdf_path), cdf_spec={"Majority": "row_major", "Compressed": False})
            cdf.write_var({"Variable": "Pose", "Data_Type": 44, "Num_Elements": 1, "Rec_Vary": True, "Compress": 0,
                           "Dim_Sizes": [n_frames, N_RAW_JOINTS * 3]},
                          var_data=stored.reshape(1, n_frames, -1).astype(np.float32))
            cdf.close()
            for cam_id in cameras:
                camera = cams[(subj, cam_id)]
                frames = (_draw_frame(camera, true_poses[i][list(SELECTED_JOINTS)], IMAGE_SIZES[cam_id])
                          for i in range(n_frames))
                write_video(root / f"S{subj}/Videos/{act}.{cam_id}.mp4", frames, fps=50)
    (root / ".posebank-fixture").write_text(f"h36m fixture, seed {seed}\n")
    return root
