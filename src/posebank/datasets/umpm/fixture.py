"""A miniature UMPM raw tree in the release's layout and formats (see the package docstring).

Two sequences: ``p2_chair_1`` (two captured people, a 30-point C3D file) and ``p1_grab_3`` (one person, 15
points; its C3D file runs :data:`EXTRA_VIDEO_FRAMES` video frames past the extracted frames, and camera ``l`` has no
extracted frames), plus ``p2_free_2.json``, which posepile moves aside (no C3D file: converting it would fail). The
sequence files end with the release's trailing comma. Four cameras around the capture area (z up, mm, lens
distortion), frames of 644 x 486 px (the release's video size) with a white mark drawn at each joint projected by
OpenCV's ``projectPoints`` from the .ini values. The C3D files run at 100 Hz, twice the video's rate: the odd C3D
frames lie between two video frames. Planted cases: video frame :data:`REPEATED_FRAME` repeats the previous pose
(the adaptive sampler skips it), one marker is invalid (:data:`INVALID_MARKER`: residual -1, NaN), and one right
wrist is thrown 300 mm off (:data:`IMPLAUSIBLE_WRIST`: the plausibility filter sets rwri and relb to NaN).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

FIXTURE_MARKER = ".posebank-fixture"
SIZE = (644, 486)  # width, height
MARK_RADIUS = 3
N_FRAMES = 6  # extracted video frames per camera
EXTRA_VIDEO_FRAMES = {"p1_grab_3": 2}  # C3D rows (in video frames) past the last extracted frame
MISSING_CAMERA = ("p1_grab_3", "l")  # no extracted frames
SEQUENCES = {"p2_chair_1": ("calib_l06", 2), "p1_grab_3": ("calib_l02", 1)}
EXCLUDED = "p2_free_2"
REPEATED_FRAME = ("p2_chair_1", 3)  # video frame 3 repeats frame 2 (both people)
INVALID_MARKER = ("p2_chair_1", 4, 0, "lank")  # (sequence, video frame, person, joint)
IMPLAUSIBLE_WRIST = ("p1_grab_3", 2, 0)  # (sequence, video frame, person): rwri 300 mm off
CAMERAS = ("f", "s", "r", "l")
NAMES = ("pelv", "neck", "head", "rsho", "relb", "rwri", "lsho", "lelb", "lwri", "rhip", "lhip", "rkne", "lkne",
         "rank", "lank")
# a standing person facing -y, mm, z up, feet at z = 0
TEMPLATE = np.array([
    [0, 0, 950], [0, 0, 1450], [0, 0, 1650], [-180, 0, 1420], [-200, 0, 1130], [-210, 0, 880], [180, 0, 1420],
    [200, 0, 1130], [210, 0, 880], [-100, 0, 930], [100, 0, 930], [-110, 0, 500], [110, 0, 500], [-110, 0, 80],
    [110, 0, 80]], np.float64)


def fixture_cameras(calib: str) -> dict[str, dict]:
    """Per camera, the .ini values: K, distortion (k1 k2 p1 p2), Rodrigues vector and t (world -> camera, mm)."""
    shift = 0.0 if calib.endswith("06") else 300.0
    out = {}
    for k, (cam, angle) in enumerate(zip(CAMERAS, (-90.0, 20.0, 65.0, 150.0))):
        a = np.radians(angle)
        centre = np.array([5500 * np.cos(a) + shift, 5500 * np.sin(a), 1600.0 + 100 * k])
        forward = np.array([shift, 0.0, 1000.0]) - centre
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        rot = np.stack([right, down, forward])
        out[cam] = {"K": np.array([[520.0 + 10 * k, 0, 321.5 + k], [0, 518.0 + 10 * k, 242.0 - k], [0, 0, 1]]),
                    "dist": np.array([-0.21 + 0.01 * k, 0.05, 0.0008, -0.0005]),
                    "rvec": cv2.Rodrigues(rot)[0].ravel(), "t": -rot @ centre}
    return out


def ini_text(cam: dict) -> str:
    rows = [*cam["K"], cam["dist"], cam["rvec"], cam["t"]]
    return "".join(" ".join(f"{v:.10g}" for v in row) + " \n" for row in rows)


def project(points: np.ndarray, cam: dict) -> np.ndarray:
    """(N, 2) pixels of world points (mm) by OpenCV with the .ini values (NaN rows stay NaN)."""
    out = np.full((len(points), 2), np.nan)
    ok = np.isfinite(points).all(axis=1)
    if ok.any():
        px, _ = cv2.projectPoints(points[ok].reshape(-1, 1, 3), cam["rvec"], cam["t"], cam["K"],
                                  np.concatenate([cam["dist"], [0.0]]))
        out[ok] = px.reshape(-1, 2)
    return out


def fixture_poses(seed: int) -> dict[str, np.ndarray]:
    """Per sequence, (C3D frames, 15 x people, 3) mm: what the C3D file holds (NaN = the invalid marker)."""
    rng = np.random.default_rng(seed)
    out = {}
    for seq, (_, n_people) in SEQUENCES.items():
        n_video = N_FRAMES + EXTRA_VIDEO_FRAMES.get(seq, 0)
        people = []
        for k in range(n_people):
            start = np.array([-700.0 + 1400 * k, 200.0 * k, 0.0])
            step = np.array([120.0, -60.0 + 120 * k, 0.0])
            turn = rng.uniform(-0.1, 0.1)
            poses = []
            for f in range(2 * n_video):  # C3D frames, two per video frame
                v = f / 2
                a = turn * v
                rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
                pose = TEMPLATE * rng.uniform(0.999, 1.001)
                for elbow, wrist, sign in ((4, 5, 1.0), (7, 8, -1.0)):  # the forearms swing about the elbows
                    theta = sign * (0.6 * (f // 2) + 0.3 * k)
                    pose[wrist] = pose[elbow] + 250.0 * np.array([0.0, -np.sin(theta), -np.cos(theta)])
                poses.append(pose @ rot.T + start + step * v)
            poses = np.array(poses)
            if seq == REPEATED_FRAME[0]:
                poses[2 * REPEATED_FRAME[1]] = poses[2 * (REPEATED_FRAME[1] - 1)]
            people.append(poses)
        points = np.concatenate(people, axis=1)
        if seq == INVALID_MARKER[0]:
            points[2 * INVALID_MARKER[1], INVALID_MARKER[2] * 15 + NAMES.index(INVALID_MARKER[3])] = np.nan
        if seq == IMPLAUSIBLE_WRIST[0]:
            points[2 * IMPLAUSIBLE_WRIST[1], IMPLAUSIBLE_WRIST[2] * 15 + NAMES.index("rwri")] += [0.0, -300.0, 0.0]
        out[seq] = points
    return out


def draw(points_2d: np.ndarray) -> np.ndarray:
    image = np.full((SIZE[1], SIZE[0], 3), 40, np.uint8)
    for x, y in points_2d:
        if np.isfinite(x) and np.isfinite(y):
            cv2.circle(image, (int(round(x * 16)), int(round(y * 16))), MARK_RADIUS * 16, (255, 255, 255), -1,
                       cv2.LINE_AA, shift=4)
    return image


def sequence_json(seq: str, calib: str) -> str:
    """The release's sequence file, with its trailing comma."""
    return (f'{{\n  "id":"{seq}",\n  "bg":"backgr_{calib[6:]}_1",\n  "calib":"{calib}",\n  "video_dir":"Video",\n'
            f'  "gt_dir":"Groundtruth",\n  "bg_dir":"Background",\n  "calib_dir":"Calib",\n}}\n')


def make_fixture(root, seed: int = 0) -> Path:
    """Write the miniature raw tree (module docstring) under ``root``; returns ``root``."""
    from posebank.datasets.c3d import write_points

    root = Path(root)
    for d in ("Calib", "Groundtruth", "Video"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / f"{EXCLUDED}.json").write_text(sequence_json(EXCLUDED, "calib_n27"))
    poses = fixture_poses(seed)
    for seq, (calib, n_people) in SEQUENCES.items():
        (root / f"{seq}.json").write_text(sequence_json(seq, calib))
        cams = fixture_cameras(calib)
        for cam, values in cams.items():
            (root / "Calib" / f"{calib}_{cam}.ini").write_text(ini_text(values))
        labels = [f"{'P' + str(k + 1)}:{n}" for k in range(n_people) for n in NAMES]
        write_points(root / "Groundtruth" / f"{seq}_vm.c3d", poses[seq], labels, rate=100.0, units="mm")
        for cam, values in cams.items():
            if (seq, cam) == MISSING_CAMERA:
                continue
            folder = root / "Video" / f"{seq}_{cam}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(N_FRAMES):
                image = draw(project(poses[seq][2 * i], values))
                cv2.imwrite(str(folder / f"frame_{i:06d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    (root / FIXTURE_MARKER).write_text(f"posebank umpm fixture, seed {seed}\n")
    return root
