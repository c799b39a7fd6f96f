"""A miniature MADS raw tree in the release's layout, for tests and demos (see :func:`make_fixture`)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from posebank.core.camera import look_at
from posebank.datasets.mads import CAMERAS, DATA_DIR, INDICES15, JOINT_NAMES

FIXTURE_MARKER = ".posebank-fixture"
FRAME_SIZE = (1024, 768)
FPS = 15
MARK_RADIUS = 5.0
# (action folder, sequence name) -> joints per GTpose2 cell; Kata's file holds 15 joints (no toes, no hands)
SEQUENCES = {("HipHop", "HipHop_HipHop1"): 19, ("Kata", "Kata_Kata1"): 15}
EMPTY_FRAME = 0  # GTpose2's first cell is all NaN (no pose: left out)
REPEATED_FRAME = 2  # the pose of frame 2 repeats frame 1 (the adaptive sampler leaves it out)
EXTRA_CELLS = {("Kata", "Kata_Kata1"): 1}  # the GT file runs one frame past the videos (recorded as dropped)
# posepile's 19 joints of a standing person, mm, in the person's frame (x to its left, y up, z forward)
_TEMPLATE = {
    "neck": (0, 1500, 0), "pelv": (0, 950, 0), "head": (0, 1680, 20),
    "lhip": (100, 920, 0), "lkne": (110, 500, 20), "lank": (115, 80, -20), "ltoe": (120, 20, 130),
    "rhip": (-100, 920, 0), "rkne": (-110, 500, 20), "rank": (-115, 80, -20), "rtoe": (-120, 20, 130),
    "lsho": (180, 1420, 0), "lelb": (200, 1150, 10), "lwri": (210, 900, 40), "lhan": (212, 820, 50),
    "rsho": (-180, 1420, 0), "relb": (-200, 1150, 10), "rwri": (-210, 900, 40), "rhan": (-212, 820, 50)}
_T = np.array([_TEMPLATE[n] for n in JOINT_NAMES], np.float64)
_I = {n: i for i, n in enumerate(JOINT_NAMES)}


def _poses_mm(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """(n_frames, 19, 3) mm, world y up: a person turning and stepping, swinging arms and legs (hands and feet move
    > 10 cm per frame)."""
    heading0 = rng.uniform(0, 2 * np.pi)
    start = rng.uniform(-200, 200, size=2)
    out = np.zeros((n_frames, len(JOINT_NAMES), 3))
    for f in range(n_frames):
        g = f if f < REPEATED_FRAME else f - 1
        local = _T.copy()
        for root, limb, angle in (("rsho", ("relb", "rwri", "rhan"), 0.7 * np.sin(0.9 * g)),
                                  ("lsho", ("lelb", "lwri", "lhan"), 0.7 * np.sin(0.9 * g + 1.7)),
                                  ("rhip", ("rkne", "rank", "rtoe"), 0.35 * np.sin(0.7 * g)),
                                  ("lhip", ("lkne", "lank", "ltoe"), 0.35 * np.sin(0.7 * g + np.pi))):
            c, s = np.cos(angle), np.sin(angle)
            swing = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
            ids = [_I[n] for n in limb]
            local[ids] = (local[ids] - local[_I[root]]) @ swing.T + local[_I[root]]
        heading = heading0 + 0.25 * g
        c, s = np.cos(heading), np.sin(heading)
        rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
        out[f] = local @ rot.T + np.array([start[0] + 40 * g, 0.0, start[1] - 30 * g])
    return out


def fixture_poses(seed: int = 0, n_frames: int = 5) -> dict[tuple[str, str], np.ndarray]:
    """The fixture's GTpose2 per sequence: (cells, 19, 3) mm in the 19 slots (NaN where the file has no joint)."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, n_joints in SEQUENCES.items():
        poses = _poses_mm(rng, n_frames + EXTRA_CELLS.get(key, 0))
        poses[EMPTY_FRAME] = np.nan
        if n_joints == 15:
            keep = np.zeros(len(JOINT_NAMES), bool)
            keep[INDICES15] = True
            poses[:, ~keep] = np.nan
        out[key] = np.round(poses, 4)
    return out


def calibration(seed: int, camera: int) -> dict[str, np.ndarray]:
    """The fields of a Bouguet-toolbox ``Calib_Cam<c>.mat``: three cameras on an arc in front of the capture area,
    2.0-2.6 m high, 3.5-4.5 m away, looking at its centre (world y up, mm); five distortion coefficients."""
    rng = np.random.default_rng(seed * 10 + camera + 3)
    w, h = FRAME_SIZE
    angle = (camera - 1) * 0.8 + rng.uniform(-0.1, 0.1)
    radius = rng.uniform(3500, 4500)
    eye = np.array([radius * np.sin(angle), rng.uniform(2000, 2600), radius * np.cos(angle)])
    rot = look_at(eye, np.array([0.0, 1000.0, 0.0]), world_up=(0, 1, 0))
    fc = np.array([rng.uniform(900, 1000), 0.0])
    fc[1] = fc[0] * rng.uniform(0.998, 1.002)
    cc = np.array([(w - 1) / 2 + rng.uniform(-12, 12), (h - 1) / 2 + rng.uniform(-8, 8)])
    alpha_c = 0.0  # the toolbox's default (no skew estimated)
    kc = np.array([rng.uniform(-0.25, -0.15), rng.uniform(0.05, 0.15), rng.uniform(-2e-3, 2e-3),
                   rng.uniform(-2e-3, 2e-3), rng.uniform(-0.02, 0.02)])
    kk = np.array([[fc[0], alpha_c * fc[0], cc[0]], [0, fc[1], cc[1]], [0, 0, 1]])
    return {"kc": kc.reshape(5, 1), "KK": kk, "alpha_c": np.array([[alpha_c]]), "cc": cc.reshape(2, 1),
            "fc": fc.reshape(2, 1), "om_ext": cv2.Rodrigues(rot)[0].reshape(3, 1),
            "T_ext": (-rot @ eye).reshape(3, 1)}


def toolbox_projection(calib: dict, points_world) -> np.ndarray:
    """The Bouguet toolbox's ``project_points2`` of world points (mm) through a calibration's fields: ``x_cam =
    rodrigues(om) X + T``, ``x_d = (1 + kc1 r² + kc2 r⁴ + kc5 r⁶) x + [2 kc3 x y + kc4 (r² + 2x²); kc3 (r² + 2y²)
    + 2 kc4 x y]``, pixel ``[fc1 (x_d1 + alpha_c x_d2) + cc1; fc2 x_d2 + cc2]``."""
    om, t = np.asarray(calib["om_ext"], float).ravel(), np.asarray(calib["T_ext"], float).ravel()
    kc, fc, cc = (np.asarray(calib[k], float).ravel() for k in ("kc", "fc", "cc"))
    alpha = float(np.asarray(calib["alpha_c"]).ravel()[0])
    theta = np.linalg.norm(om)
    k = om / theta
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    rot = np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * kx @ kx  # rodrigues.m
    cam = np.asarray(points_world, np.float64) @ rot.T + t
    x, y = cam[..., 0] / cam[..., 2], cam[..., 1] / cam[..., 2]
    r2 = x * x + y * y
    radial = 1 + kc[0] * r2 + kc[1] * r2 ** 2 + kc[4] * r2 ** 3
    xd = x * radial + 2 * kc[2] * x * y + kc[3] * (r2 + 2 * x * x)
    yd = y * radial + kc[2] * (r2 + 2 * y * y) + 2 * kc[3] * x * y
    return np.stack([fc[0] * (xd + alpha * yd) + cc[0], fc[1] * yd + cc[1]], axis=-1)


def _frame(points: np.ndarray) -> np.ndarray:
    """A dark frame with white marks at the projected joints (none where a joint is missing)."""
    w, h = FRAME_SIZE
    img = np.full((h, w, 3), 35, np.uint8)
    for pt in points:
        if np.all(np.isfinite(pt)):
            cv2.circle(img, tuple(np.round(pt * 16).astype(int)), int(MARK_RADIUS * 16), (255, 255, 255), -1,
                       cv2.LINE_AA, shift=4)
    return img


def write_gt(path, poses: np.ndarray, n_joints: int) -> None:
    """``<name>_GT.mat`` as the release has it: ``GTpose2``, a 1 x N cell array of n_joints x 3 (mm)."""
    import scipy.io

    cells = np.empty((1, len(poses)), object)
    for i, pose in enumerate(poses):
        cells[0, i] = pose if n_joints == len(JOINT_NAMES) else pose[INDICES15]
    scipy.io.savemat(str(path), {"GTpose2": cells})


def make_fixture(root, seed: int = 0, n_frames: int = 5, cameras=CAMERAS) -> Path:
    """Write the MADS layout: per sequence of :data:`SEQUENCES`, ``multi_view_data/<action>/<name>_GT.mat``
    (GTpose2 cells of 19 or 15 joints, the first all NaN), the ``Calib_Cam<c>.mat`` of the folder (Bouguet fields
    om_ext, T_ext, KK, kc, fc, cc, alpha_c) and the XVID ``<name>_C<c>.avi`` videos (1024 x 768, 15 fps, white
    marks at the joints projected with the toolbox's formula) of ``cameras``."""
    import scipy.io

    from posebank.imaging.video import write_video

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for (action, name), poses in fixture_poses(seed, n_frames).items():
        folder = root / DATA_DIR / action
        folder.mkdir(parents=True, exist_ok=True)
        write_gt(folder / f"{name}_GT.mat", poses, SEQUENCES[action, name])
        for c in cameras:
            calib = calibration(seed + len(action), c)
            scipy.io.savemat(str(folder / f"Calib_Cam{c}.mat"), calib)
            projected = [toolbox_projection(calib, pose) for pose in poses[:n_frames]]
            write_video(folder / f"{name}_C{c}.avi", (_frame(p) for p in projected), fps=FPS)
    (root / FIXTURE_MARKER).write_text(f"mads fixture, seed {seed}\n")
    return root
