"""A miniature SURREAL raw tree in the release's layout, for tests and demos (see :func:`make_fixture`)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import scipy.io

from posebank.core.camera import Camera
from posebank.datasets.surreal import (
    FOCAL_PX,
    IMAGE_SIZE,
    N_RAW_JOINTS,
    RUNS,
    SMPL_JOINT_NAMES,
    SMPL_PARENTS,
    SPLITS,
    STRIDES,
    blender_camera,
)

MARK_RADIUS = 2.0
FIXTURE_MARKER = ".posebank-fixture"
_FIXTURE_SUBJECTS = {"train": (1, 5, 7, 9), "val": (104, 107), "test": (122, 143)}


def _template() -> np.ndarray:
    """A standing SMPL-like body, metres, in its own frame: x to the person's left, y up, z forward."""
    j = np.zeros((N_RAW_JOINTS, 3))
    named = {
        "pelv": (0, 0.93, 0), "lhip": (0.09, 0.85, 0), "rhip": (-0.09, 0.85, 0), "bell": (0, 1.05, -0.01),
        "lkne": (0.11, 0.49, 0.03), "rkne": (-0.11, 0.49, 0.03), "spin": (0, 1.18, 0), "lank": (0.12, 0.08, -0.02),
        "rank": (-0.12, 0.08, -0.02), "thor": (0, 1.25, 0.01), "ltoe": (0.14, 0.02, 0.13),
        "rtoe": (-0.14, 0.02, 0.13), "neck": (0, 1.45, -0.01), "lcla": (0.08, 1.38, 0), "rcla": (-0.08, 1.38, 0),
        "head": (0, 1.57, 0.04), "lsho": (0.18, 1.40, -0.02), "rsho": (-0.18, 1.40, -0.02),
        "lelb": (0.32, 1.17, -0.03), "relb": (-0.32, 1.17, -0.03), "lwri": (0.46, 0.96, 0.0),
        "rwri": (-0.46, 0.96, 0.0), "lhan": (0.52, 0.89, 0.02), "rhan": (-0.52, 0.89, 0.02)}
    for name, v in named.items():
        j[SMPL_JOINT_NAMES.index(name)] = v
    return j


def _descendants(joint: int) -> list[int]:
    out = [joint]
    for child, parent in enumerate(SMPL_PARENTS):
        if parent == joint:
            out += _descendants(child)
    return out


def _swing(points: np.ndarray, joint: int, angle: float) -> None:
    """Rotate the subtree below ``joint`` about the body's left-right axis through it (in place)."""
    idx = _descendants(joint)[1:]
    c, s = np.cos(angle), np.sin(angle)
    rel = points[idx] - points[joint]
    points[idx] = points[joint] + rel @ np.array([[1, 0, 0], [0, c, s], [0, -s, c]])


def _fixture_joints(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """``joints3D`` of a person walking and turning, (T, 24, 3) metres in SURREAL's world (up = -y)."""
    base = _template()
    start = np.array([rng.uniform(-0.3, 0.3), 0.0, rng.uniform(-2.3, -1.7)])
    heading0, phase = rng.uniform(0, 2 * np.pi), rng.uniform(0, 2 * np.pi)
    upright = np.diag([1.0, -1.0, -1.0])  # body frame to world: a proper rotation turning y up into -y
    out = np.zeros((n_frames, N_RAW_JOINTS, 3))
    for t in range(n_frames):
        body = base.copy()
        swing = 0.4 * np.sin(0.3 * t + phase)
        for joint, sign in (("lhip", 1), ("rhip", -1), ("lsho", -1.3), ("rsho", 1.3)):
            _swing(body, SMPL_JOINT_NAMES.index(joint), sign * swing)
        heading = heading0 + 0.015 * t
        c, s = np.cos(heading), np.sin(heading)
        yaw = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
        forward = yaw @ upright @ [0.0, 0.0, 1.0]
        out[t] = body @ (yaw @ upright).T + start + 0.015 * t * forward
    return out


def _render(camera: Camera, joints_mm: np.ndarray):
    """Frame (BGR), body-part labels and depth (m) of one annotation frame, drawn as the stored camera sees it."""
    w, h = IMAGE_SIZE
    pts = camera.project(joints_mm)
    depth_m = camera.world_to_camera(joints_mm)[:, 2] / 1000
    thickness = max(3, int(round(0.08 * FOCAL_PX / depth_m[0])))
    segm = np.zeros((h, w), np.uint8)
    fixed = np.round(pts * 16).astype(np.int32)
    for child, parent in enumerate(SMPL_PARENTS):
        if parent >= 0:
            cv2.line(segm, tuple(fixed[parent]), tuple(fixed[child]), parent + 1, thickness, cv2.LINE_8, shift=4)
    head = SMPL_JOINT_NAMES.index("head")
    cv2.circle(segm, tuple(fixed[head]), int(round(0.1 * FOCAL_PX / depth_m[head] * 16)), head + 1, -1,
               cv2.LINE_8, shift=4)
    image = np.full((h, w, 3), 40, np.uint8)
    image[segm > 0] = 110
    for pt in fixed:
        cv2.circle(image, tuple(pt), int(MARK_RADIUS * 16), (255, 255, 255), -1, cv2.LINE_AA, shift=4)
    depth = np.full((h, w), 1e10, np.float32)
    depth[segm > 0] = depth_m[0]
    return image, segm, depth


def _info_dict(rng, name: str, clip_no: int, run: int, joints3d: np.ndarray, joints2d: np.ndarray,
               cam_loc: np.ndarray, cam_dist: float) -> dict:
    """The variables of a release ``_info.mat`` with their dtypes and shapes (pose and shape are random and
    do not drive the joints, which come from the fixture's own stick figure)."""
    n = len(joints3d)

    def cell(texts):
        c = np.empty((1, n), object)
        for i, text in enumerate(texts):
            c[0, i] = text
        return c

    bg = f"LSUN/img/kitchen_tr_img/{rng.integers(16 ** 12):012x}.jpg"
    cloth = f"nongrey_male_{rng.integers(1000):04d}.jpg"
    zrot = rng.uniform(0, 2 * np.pi)
    return {
        "sequence": name, "clipNo": np.array([[clip_no]], np.uint8), "source": "cmu",
        "bg": cell([bg] * n), "gender": np.full((n, 1), rng.integers(2), np.uint8),
        "light": np.repeat(rng.uniform(-0.7, 0.7, (9, 1)), n, axis=1).astype(np.float32),
        "stride": np.array([[STRIDES.get(run, 50)]], np.uint8), "camDist": np.array([[cam_dist]], np.float32),
        "camLoc": cam_loc.reshape(3, 1).astype(np.float32),
        "joints2D": joints2d.transpose(2, 1, 0).astype(np.float32),
        "joints3D": joints3d.transpose(2, 1, 0).astype(np.float32),
        "pose": rng.normal(0, 0.2, (72, n)).astype(np.float32),
        "zrot": np.full((n, 1), zrot, np.float32), "cloth": cell([cloth] * n),
        "shape": np.repeat(rng.normal(0, 1, (10, 1)), n, axis=1).astype(np.float32),
    }


def make_fixture(root, seed: int = 0, n_clips: int = 1, n_frames: int = 30, splits=SPLITS, runs=RUNS) -> Path:
    """Write a miniature SURREAL raw tree in the release's layout under ``root/cmu``.

    ``n_clips`` clips of ``n_frames`` frames per split and run: real MATLAB v5 ``_info.mat`` files with the
    release's variables, dtypes and shapes (``joints2D`` rounded as the release does), 320x240 mp4 videos in
    which white marks are drawn at the projected joints over a grey stick figure, ``_segm.mat`` with its body
    part labels and ``_depth.mat``. Like the real renders, the videos are mirror images of the world of
    ``joints3D`` (drawn through ``read_info``'s camera).
    """
    from posebank.imaging.video import write_video

    root = Path(root)
    rng = np.random.default_rng(seed)
    for split in splits:
        for run in runs:
            subject = int(rng.choice(_FIXTURE_SUBJECTS[split]))
            seq = f"{subject:02d}_{int(rng.integers(1, 40)):02d}"
            folder = root / "cmu" / split / f"run{run}" / seq
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(1, n_clips + 1):
                name = f"{seq}_c{k:04d}"
                joints = _fixture_joints(rng, n_frames)
                cam_dist = float(rng.uniform(6.5, 7.5))
                cam_loc = joints[0, 0] + [cam_dist - 1.0, rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05)]
                camera = blender_camera(cam_loc.astype(np.float32))
                joints_mm = joints.astype(np.float32).astype(np.float64) * 1000
                rendered = [_render(camera, joints_mm[t]) for t in range(n_frames)]
                joints2d = np.round(camera.project(joints_mm))
                scipy.io.savemat(folder / f"{name}_info.mat", _info_dict(
                    rng, name, k, run, joints, joints2d, cam_loc, cam_dist), do_compression=True, oned_as="column")
                scipy.io.savemat(folder / f"{name}_segm.mat", {f"segm_{t + 1}": r[1] for t, r in enumerate(rendered)},
                                 do_compression=True)
                scipy.io.savemat(folder / f"{name}_depth.mat",
                                 {f"depth_{t + 1}": r[2] for t, r in enumerate(rendered)}, do_compression=True)
                write_video(folder / f"{name}.mp4", (r[0] for r in rendered), fps=30)
    (root / FIXTURE_MARKER).write_text(f"surreal fixture, seed {seed}\n")
    return root
