"""A miniature IKEA ASM raw tree in the release's layout, for tests and demos (see :func:`make_fixture`)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np

from posebank.core.camera import look_at
from posebank.datasets.ikea import CALIBRATION, CAMERAS, IMAGE_SIZE, JOINT_NAMES, N_JOINTS, POSES, VIDEO

FIXTURE_MARKER = ".posebank-fixture"
FPS = 15
MARK_RADIUS = 6.0
# (furniture, sequence folder): the fourth '_' field is the calibration id
SEQUENCES = (("Kallax_Shelf_Drawer", "0001_black_table_02_01_2019_08_16_14_00"),
             ("Lack_Side_Table", "0012_oak_floor_05_02_2019_08_19_16_54"))
SPECIAL = ("Kallax_Shelf_Drawer", "special_test")  # left out by name (posepile), its name has no calibration id
N_VIDEO_FRAMES = 12
ANNOTATED = (0, 2, 4, 6, 8, 10)  # the frames with a pose3d file (every second one)
REPEATED_FRAME = 4  # repeats frame 2's pose: the adaptive sampler leaves it out
EMPTY_FRAME = 6  # every joint all zeros (no triangulation): dropped
FEW_JOINTS_FRAME = 8  # only nose and shoulders triangulated: fewer than 4 joints, dropped
MISSING_EAR_FRAMES = (2, 4)  # lear all zeros: NaN, the frame kept
PAST_END = (SEQUENCES[0], "dev1", N_VIDEO_FRAMES)  # a pose3d file one frame past dev1's video end: dropped
FLOOR_MM = 1200.0  # dev2 (the world) hangs 1.2 m above the floor, looking horizontally; world y points down
# the 17 joints of a standing person, mm, in its own frame (x to its left, up, forward)
_TEMPLATE = {
    "nose": (0, 1600, 90), "leye": (35, 1640, 70), "reye": (-35, 1640, 70), "lear": (75, 1615, 0),
    "rear": (-75, 1615, 0), "lsho": (180, 1420, 0), "rsho": (-180, 1420, 0), "lelb": (200, 1150, 10),
    "relb": (-200, 1150, 10), "lwri": (210, 900, 40), "rwri": (-210, 900, 40), "lhip": (100, 920, 0),
    "rhip": (-100, 920, 0), "lkne": (110, 500, 20), "rkne": (-110, 500, 20), "lank": (115, 80, -20),
    "rank": (-115, 80, -20)}
_T = np.array([_TEMPLATE[n] for n in JOINT_NAMES], np.float64)
_I = {n: i for i, n in enumerate(JOINT_NAMES)}


def world_pose(rng_heading: float, start_x: float, g: int) -> np.ndarray:
    """(17, 3) mm in dev2's frame (x right, y down, z forward): the person walking sideways 2.8 m in front of dev2,
    turning, arms and legs swinging, the ankles on the floor (y = FLOOR_MM)."""
    local = _T.copy()
    for root, limb, angle in (("rsho", ("relb", "rwri"), 0.6 * np.sin(0.9 * g)),
                              ("lsho", ("lelb", "lwri"), 0.6 * np.sin(0.9 * g + 1.7)),
                              ("rhip", ("rkne", "rank"), 0.3 * np.sin(0.7 * g)),
                              ("lhip", ("lkne", "lank"), 0.3 * np.sin(0.7 * g + np.pi))):
        c, s = np.cos(angle), np.sin(angle)
        swing = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
        ids = [_I[n] for n in limb]
        local[ids] = (local[ids] - local[_I[root]]) @ swing.T + local[_I[root]]
    heading = rng_heading + 0.3 * g
    c, s = np.cos(heading), np.sin(heading)
    x = c * local[:, 0] + s * local[:, 2]
    z = -s * local[:, 0] + c * local[:, 2]
    return np.stack([x + start_x + 150.0 * g, FLOOR_MM - local[:, 1], z + 2800.0], axis=1)


def fixture_poses(seed: int = 0) -> dict[tuple[str, str], dict[int, np.ndarray]]:
    """Per sequence, annotated frame -> (17, 3) mm in the world (dev2's frame), NaN where the file has zeros."""
    rng = np.random.default_rng(seed)
    out = {}
    for key in (*SEQUENCES, SPECIAL):
        heading, start_x = rng.uniform(0, 2 * np.pi), rng.uniform(-600, -300)
        poses = {}
        for g, f in enumerate(ANNOTATED):
            pose = world_pose(heading, start_x, g if f != REPEATED_FRAME else g - 1)
            if f == EMPTY_FRAME:
                pose[:] = np.nan
            elif f == FEW_JOINTS_FRAME:
                keep = [_I["nose"], _I["lsho"], _I["rsho"]]
                pose[[i for i in range(N_JOINTS) if i not in keep]] = np.nan
            elif f in MISSING_EAR_FRAMES:
                pose[_I["lear"]] = np.nan
            poses[f] = pose
        if key == PAST_END[0]:
            poses[PAST_END[2]] = world_pose(heading, start_x, len(ANNOTATED))
        out[key] = poses
    return out


def calibration(seed: int, calib_id: str) -> dict[str, dict[str, np.ndarray]]:
    """One calibration's cameras as ``calibration.py`` writes them: dev2 the reference (R = I, T = 0), dev1 and dev3
    on either side looking at the assembly area; K of a Kinect v2 colour camera (1920 x 1080), T in cm, no
    distortion (the calibration fixes every term at 0), P = K [R|T]."""
    rng = np.random.default_rng(seed * 100 + int(calib_id))
    w, h = IMAGE_SIZE
    target = np.array([0.0, 600.0, 2800.0])
    eyes = {"dev1": np.array([-2200.0, -300.0, 1300.0]) + rng.uniform(-100, 100, 3),
            "dev2": np.zeros(3),
            "dev3": np.array([2000.0, -800.0, 900.0]) + rng.uniform(-100, 100, 3)}
    out = {}
    for dev in CAMERAS:
        f = rng.uniform(1040, 1070)
        k = np.array([[f, 0, (w - 1) / 2 + rng.uniform(-10, 10)], [0, f, (h - 1) / 2 + rng.uniform(-8, 8)],
                      [0, 0, 1]])
        rot = np.eye(3) if dev == "dev2" else look_at(eyes[dev], target, world_up=(0, -1, 0))
        t_cm = (-rot @ eyes[dev] / 10.0).reshape(3, 1)
        out[dev] = {"K": k, "dist_coefs": np.zeros((1, 5)), "R": rot, "T": t_cm, "P": k @ np.hstack([rot, t_cm])}
    return out


def camera_parameters(seed: int = 0) -> dict:
    """The content of ``Calibration/camera_parameters.pkl``: {calib_id: {dev: {K, dist_coefs, R, T, P}}}."""
    return {seq.split("_")[3]: calibration(seed, seq.split("_")[3]) for _, seq in SEQUENCES}


def pose_json(pose_world_mm: np.ndarray, cam: dict) -> dict:
    """A ``pose3d/<frame>.json`` as ``triangulate.py`` writes it: the joints in the camera's frame, cm, ``R X + T``,
    with a confidence; a joint not triangulated all zeros."""
    rows = np.zeros((N_JOINTS, 4))
    ok = np.isfinite(pose_world_mm).all(axis=1)
    rows[ok, :3] = (pose_world_mm[ok] / 10.0) @ cam["R"].T + cam["T"].reshape(3)
    rows[ok, 3] = 0.9
    return {"format": "ikea", "pose_keypoints_3d": rows.reshape(-1).tolist()}


def project(cam: dict, pose_world_mm: np.ndarray) -> np.ndarray:
    """The release's projection of world points (mm): ``P [X_cm; 1]`` (no distortion)."""
    x = np.concatenate([pose_world_mm / 10.0, np.ones((len(pose_world_mm), 1))], axis=1) @ cam["P"].T
    return x[:, :2] / x[:, 2:]


def _frame(points: np.ndarray | None) -> np.ndarray:
    """A dark 1920 x 1080 frame with white marks at the projected joints (none where a joint is missing)."""
    w, h = IMAGE_SIZE
    img = np.full((h, w, 3), 35, np.uint8)
    for pt in points if points is not None else ():
        if np.all(np.isfinite(pt)) and -50 < pt[0] < w + 50 and -50 < pt[1] < h + 50:
            cv2.circle(img, tuple(np.round(pt * 16).astype(int)), int(MARK_RADIUS * 16), (255, 255, 255), -1,
                       cv2.LINE_AA, shift=4)
    return img


def make_fixture(root, seed: int = 0, cameras=CAMERAS) -> Path:
    """Write the IKEA ASM layout: ``Calibration/camera_parameters.pkl`` (a pickle of plain dicts and numpy arrays,
    as the release's), and per sequence of :data:`SEQUENCES` (and the ``special_test`` folder) and camera of
    ``cameras`` the video ``<dev>/images/scan_video.avi`` (1920 x 1080, 12 frames, white marks at the annotated
    frames' joints) and the ``<dev>/pose3d/<frame:06d>.json`` files of :data:`ANNOTATED`."""
    from posebank.imaging.video import write_video

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    params = camera_parameters(seed)
    (root / CALIBRATION).parent.mkdir(parents=True, exist_ok=True)
    with open(root / CALIBRATION, "wb") as f:
        pickle.dump(params, f)
    for key, poses in fixture_poses(seed).items():
        furniture, seq = key
        calib = params[SEQUENCES[0][1].split("_")[3]] if key == SPECIAL else params[seq.split("_")[3]]
        for dev in cameras:
            folder = root / furniture / seq / dev
            cam = calib[dev]
            (folder / POSES).mkdir(parents=True, exist_ok=True)
            for f, pose in poses.items():
                if f >= N_VIDEO_FRAMES and (key, dev) != PAST_END[:2]:
                    continue
                (folder / POSES / f"{f:06d}.json").write_text(json.dumps(pose_json(pose, cam)))
            marks = {f: project(cam, pose) for f, pose in poses.items()}
            write_video(folder / VIDEO, (_frame(marks.get(i)) for i in range(N_VIDEO_FRAMES)), fps=FPS)
    (root / FIXTURE_MARKER).write_text(f"ikea fixture, seed {seed}\n")
    return root
