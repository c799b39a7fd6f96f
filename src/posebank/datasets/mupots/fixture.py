"""A miniature MuPoTS-3D raw tree in the release's layout, for tests and demos (see :func:`make_fixture`)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import scipy.io

from posebank.core.skeleton import JointInfo
from posebank.datasets.mupots import (
    INDOOR_SEQUENCES,
    N_RAW_JOINTS,
    RAW_JOINT_NAMES,
    SEQUENCES,
    SUBFOLDER,
    WORLD_UP,
    image_name,
    image_size,
)

MARK_RADIUS = 5.0
FIXTURE_MARKER = ".posebank-fixture"

# a standing person in the release's joint order: (right, forward, up) mm in the person's own frame
_TEMPLATE = np.array([
    (0, 10, 1760), (0, 0, 1480), (180, 0, 1440), (320, 0, 1170), (350, 50, 930), (-180, 0, 1440),
    (-320, 0, 1170), (-350, 50, 930), (130, 0, 940), (140, 20, 520), (150, -10, 90), (-130, 0, 940),
    (-140, 20, 520), (-150, -10, 90), (0, 0, 950), (0, 0, 1210), (0, 30, 1620)], np.float64)
_ARMS = {2: (3, 4), 5: (6, 7)}  # shoulder -> elbow, wrist
_LEGS = {8: (9, 10), 11: (12, 13)}  # hip -> knee, ankle


def _rotate_about_lateral(points, pivot, angle):
    """Swing limb points forward/backward about the lateral axis through ``pivot`` (person frame)."""
    c, s = np.cos(angle), np.sin(angle)
    rel = points - pivot
    fwd, up = rel[:, 1] * c - rel[:, 2] * s, rel[:, 1] * s + rel[:, 2] * c
    return pivot + np.stack([rel[:, 0], fwd, up], axis=1)


def _person_track(rng: np.random.Generator, n_frames: int, x0: float, ground_y: float) -> np.ndarray:
    """(n_frames, 17, 3) camera-frame poses of a person walking slowly and turning, arms and legs swinging."""
    scale = rng.uniform(0.92, 1.08)
    heading0, turn = rng.uniform(0, 2 * np.pi), rng.uniform(-0.08, 0.08)
    start = np.array([x0, rng.uniform(4300, 6200)])
    direction = rng.uniform(0, 2 * np.pi)
    phase = rng.uniform(0, 2 * np.pi)
    up = np.asarray(WORLD_UP)
    out = np.zeros((n_frames, N_RAW_JOINTS, 3))
    for i in range(n_frames):
        local = _TEMPLATE * scale
        swing = 0.45 * np.sin(0.6 * i + phase)
        for sign, limbs in ((1, _ARMS), (-1, _LEGS)):
            for root_joint, chain in limbs.items():
                side = 1 if local[root_joint, 0] > 0 else -1
                local[list(chain)] = _rotate_about_lateral(local[list(chain)], local[root_joint],
                                                           sign * side * swing)
        heading = heading0 + turn * i
        forward = np.array([np.cos(heading), 0.0, np.sin(heading)])
        right = np.cross(forward, up)
        centre = start + 25.0 * i * np.array([np.cos(direction), np.sin(direction)])
        position = np.array([centre[0], ground_y, centre[1]])
        out[i] = position + local[:, :1] * right + local[:, 1:2] * forward + local[:, 2:3] * up
    return out


def _fixture_intrinsics(rng: np.random.Generator, seq: int) -> np.ndarray:
    w, h = image_size(seq)
    f = rng.uniform(1450, 1550) if seq in INDOOR_SEQUENCES else rng.uniform(1350, 1450)
    fx, fy = f, f * rng.uniform(0.997, 1.003)
    cx, cy = (w - 1) / 2 + rng.uniform(-15, 15), (h - 1) / 2 + rng.uniform(-10, 10)
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])


def _project(k: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points[..., :2] / points[..., 2:3] @ k[:2, :2].T + k[:2, 2]


def _draw_frame(size, people2d, edges) -> np.ndarray:
    w, h = size
    img = np.full((h, w, 3), 40, np.uint8)
    for pts in people2d:
        for a, b in edges:
            pa, pb = np.round(pts[[a, b]] * 16).astype(int)
            cv2.line(img, tuple(pa), tuple(pb), (110, 110, 110), 10, cv2.LINE_AA, shift=4)
    for pts in people2d:
        for pt in pts:
            cv2.circle(img, tuple(np.round(pt * 16).astype(int)), int(MARK_RADIUS * 16), (255, 255, 255), -1,
                       cv2.LINE_AA, shift=4)
    return img


def make_fixture(root, seed: int = 0, sequences=SEQUENCES, n_frames: int = 8,
                 annot2_noise_px: float = 0.2) -> Path:
    """Write a miniature MuPoTS-3D raw tree in the release's layout.

    Real MATLAB v5 ``annot.mat`` and ``occlusion.mat`` files (cell arrays of 1x1 structs / 1x17 flags, as in the
    release) for every sequence (all 20 by default, so that the default parameters convert it) and full-size
    JPEG frames in which 2-3 people appear as grey stick figures with white marks at their
    projected joints. Each sequence has its own true intrinsics, which the converter must estimate: ``annot2`` are
    the true projections plus Gaussian noise of ``annot2_noise_px`` pixels, stored to 1/100 px. One person of each
    sequence leaves the annotated area for a few frames (``isValidFrame`` 0, zeros stored, not drawn) and the last
    frame of the first sequence has no valid person. The true intrinsics are written as JSON into the
    ``.posebank-fixture`` marker file.
    """
    from posebank.core.jpeg import encode_jpeg

    root = Path(root)
    rng = np.random.default_rng(seed)
    raw_edges = JointInfo(RAW_JOINT_NAMES, "htop-head-neck-spin-pelv-rhip-rkne-rank,neck-rsho-relb-rwri").edges
    truth = {}
    for i_seq, seq in enumerate(sorted(sequences)):
        folder = root / SUBFOLDER / f"TS{seq}"
        folder.mkdir(parents=True, exist_ok=True)
        k = _fixture_intrinsics(rng, seq)
        truth[f"TS{seq}"] = k.tolist()
        n_people = 3 if i_seq % 2 == 0 else 2
        ground_y = rng.uniform(1150, 1400)
        xs = (np.arange(n_people) - (n_people - 1) / 2) * 1500 + rng.uniform(-150, 150, n_people)
        poses = np.stack([_person_track(rng, n_frames, x, ground_y) for x in xs], axis=1)  # (F, P, 17, 3)
        valid = np.ones((n_frames, n_people), bool)
        gap = n_frames // 2
        valid[gap:gap + 2, n_people - 1] = False
        if i_seq == 0:
            valid[-1] = False
        true2d = _project(k, poses)
        annot2 = np.round(true2d + rng.normal(0, annot2_noise_px, true2d.shape), 2)
        pelvis = poses[:, :, 14:15]
        univ = pelvis + (poses - pelvis) * rng.uniform(0.9, 1.1, (1, n_people, 1, 1))
        cells = np.empty((n_frames, n_people), object)
        occlusion = np.empty((n_frames, n_people), object)
        for f in range(n_frames):
            for j in range(n_people):
                keep = float(valid[f, j])
                cells[f, j] = {"annot2": annot2[f, j].T * keep, "annot3": poses[f, j].T * keep,
                               "univ_annot3": univ[f, j].T * keep, "isValidFrame": np.array([[valid[f, j]]])}
                nearer = [o for o in range(n_people)
                          if o != j and valid[f, o] and poses[f, o, 14, 2] < poses[f, j, 14, 2]]
                flags = np.zeros((1, N_RAW_JOINTS), bool)
                for o in nearer:
                    d = np.linalg.norm(true2d[f, j][:, None] - true2d[f, o][None], axis=-1)
                    flags[0] |= d.min(axis=1) < 40
                occlusion[f, j] = flags
        scipy.io.savemat(str(folder / "annot.mat"), {"annotations": cells}, format="5")
        scipy.io.savemat(str(folder / "occlusion.mat"), {"occlusion_labels": occlusion}, format="5")
        for f in range(n_frames):
            img = _draw_frame(image_size(seq), [true2d[f, j] for j in range(n_people) if valid[f, j]], raw_edges)
            (folder / image_name(f)).write_bytes(encode_jpeg(img, 95))
    marker = {"dataset": "mupots", "seed": seed, "true_intrinsics": truth}
    (root / FIXTURE_MARKER).write_text(json.dumps(marker, indent=1) + "\n")
    return root


def fixture_intrinsics(root) -> dict[int, np.ndarray]:
    """The true intrinsics a fixture was drawn with: ``{sequence: 3x3 matrix}``."""
    marker = json.loads((Path(root) / FIXTURE_MARKER).read_text())
    return {int(name[2:]): np.array(k) for name, k in marker["true_intrinsics"].items()}
