"""Miniature raw trees of the IMAR datasets (Fit3D, CHI3D, HumanSC3D) in the release's layout, for tests and demos
(see :func:`make_fixture`)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from posebank.core.camera import look_at
from posebank.datasets.imar import CAMERAS, JOINT_NAMES, MOCAP_PER_VIDEO_FRAME

FIXTURE_MARKER = ".posebank-fixture"
FRAME_SIZE = (720, 720)  # the release's videos are 900 x 900
FPS = 50
MARK_RADIUS = 5.0
N_FRAMES = 5  # video frames per sequence
# per dataset: training subject -> its actions (subj_to_act), and a test subject listed in the info file without
# training files (posepile and posebank read the training subjects only)
SEQUENCES = {
    "fit3d": {"s03": ("squat",), "s04": ("deadlift",)},
    "chi3d": {"s02": ("Grab 4",), "s03": ("Hug 1",)},
    "humansc3d": {"s02": ("001",), "s06": ("170",)},
}
TEST_SUBJECT = "s01"
PEOPLE = {"fit3d": 1, "chi3d": 2, "humansc3d": 1}
REPEATED_FRAME = 2  # video frame 2 shows the pose of video frame 1 (the adaptive sampler leaves it out)
# mocap frames of each dataset's first and second sequence: the first runs 2 mocap frames past the video's end (its
# video frame 5 is recorded as dropped), the second ends one video frame early (video frame 4 dropped)
MOCAP_FRAMES = (MOCAP_PER_VIDEO_FRAME * N_FRAMES + 2, MOCAP_PER_VIDEO_FRAME * (N_FRAMES - 1))
PERSON_OFFSET_MM = 650.0  # CHI3D's two people stand 1.3 m apart (x = -650 and +650)
# posepile's 25 joints of a standing person, mm, in the person's frame (x to its left, y forward, z up)
_TEMPLATE = {
    "pelv": (0, 0, 950), "lhip": (100, 0, 930), "lkne": (110, 20, 500), "lank": (115, -20, 80),
    "rhip": (-100, 0, 930), "rkne": (-110, 20, 500), "rank": (-115, -20, 80), "spin": (0, -10, 1200),
    "neck": (0, 0, 1500), "head": (0, 30, 1620), "htop": (0, 0, 1760), "lsho": (180, 0, 1430),
    "lelb": (200, 10, 1160), "lwri": (210, 40, 910), "rsho": (-180, 0, 1430), "relb": (-200, 10, 1160),
    "rwri": (-210, 40, 910), "lfoo": (118, 70, 30), "ltoe": (120, 170, 20), "rfoo": (-118, 70, 30),
    "rtoe": (-120, 170, 20), "lthu": (180, 110, 850), "lfin": (225, 60, 800), "rthu": (-180, 110, 850),
    "rfin": (-225, 60, 800)}
_NAMES = JOINT_NAMES.split(",")
_T = np.array([_TEMPLATE[n] for n in _NAMES], np.float64)
_I = {n: i for i, n in enumerate(_NAMES)}
_LIMBS = (("rsho", ("relb", "rwri", "rthu", "rfin"), 0.7, 0.0),
          ("lsho", ("lelb", "lwri", "lthu", "lfin"), 0.7, 1.7),
          ("rhip", ("rkne", "rank", "rfoo", "rtoe"), 0.35, 0.0),
          ("lhip", ("lkne", "lank", "lfoo", "ltoe"), 0.35, np.pi))


def _pose_mm(g: float, heading0: float, start: np.ndarray, phase: float) -> np.ndarray:
    """(25, 3) mm, world z up, at video time ``g``: a person turning and stepping, swinging arms and legs."""
    local = _T.copy()
    for root, limb, amplitude, offset in _LIMBS:
        a = amplitude * np.sin(0.9 * g + offset + phase)
        c, s = np.cos(a), np.sin(a)
        swing = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])  # about the person's x axis (forward and back)
        ids = [_I[n] for n in limb]
        local[ids] = (local[ids] - local[_I[root]]) @ swing.T + local[_I[root]]
    heading = heading0 + 0.25 * g
    c, s = np.cos(heading), np.sin(heading)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    return local @ rot.T + np.array([start[0] + 40 * g, start[1] - 30 * g, 0.0])


def fixture_joints(name: str, seed: int = 0) -> dict[tuple[str, str], np.ndarray]:
    """Each sequence's ``joints3d_25`` in mm: (people, mocap frames, 25, 3). Mocap frame m is video time m / 4, so
    the mocap frames between two video frames hold poses in between (a 1:1 pairing would be visibly wrong); the
    video frame :data:`REPEATED_FRAME` repeats the one before it."""
    rng = np.random.default_rng(seed)
    out = {}
    sequences = [(s, a) for s, actions in SEQUENCES[name].items() for a in actions]
    for k, key in enumerate(sequences):
        n = MOCAP_FRAMES[k % 2]
        poses = np.zeros((PEOPLE[name], n, len(_NAMES), 3))
        for person in range(PEOPLE[name]):
            heading0 = rng.uniform(0, 2 * np.pi)
            start = rng.uniform(-150, 150, size=2)
            if PEOPLE[name] == 2:
                start[0] += PERSON_OFFSET_MM * (2 * person - 1)
            for m in range(n):
                t = m / MOCAP_PER_VIDEO_FRAME
                g = t if t < REPEATED_FRAME else t - 1
                poses[person, m] = _pose_mm(g, heading0, start, 0.8 * person)
        out[key] = np.round(poses, 3)
    return out


def calibration(name: str, seed: int, subject: str, camera: int) -> dict:
    """A ``camera_parameters`` JSON: four cameras around the capture area (45, 135, 225 and 315 degrees), 3.6-4.4 m
    away and 1.4-2.0 m high, looking at its centre (world z up); ``T`` the centre in metres; Human3.6M-like
    distortion (k 3 values, p 2 values)."""
    rng = np.random.default_rng([seed, len(name), int(subject.strip("s")), camera])
    w, h = FRAME_SIZE
    angle = np.pi / 4 + camera * np.pi / 2 + rng.uniform(-0.1, 0.1)
    radius = rng.uniform(3600, 4400)
    eye = np.array([radius * np.cos(angle), radius * np.sin(angle), rng.uniform(1400, 2000)])
    rot = look_at(eye, np.array([0.0, 0.0, 1000.0]), world_up=(0, 0, 1))
    fx = rng.uniform(620, 680)
    f = [fx, fx * rng.uniform(0.998, 1.002)]
    c = [(w - 1) / 2 + rng.uniform(-10, 10), (h - 1) / 2 + rng.uniform(-10, 10)]
    k = [rng.uniform(-0.22, -0.18), rng.uniform(0.15, 0.25), rng.uniform(-0.01, 0.01)]
    p = [rng.uniform(2e-3, 4e-3) * rng.choice([-1, 1]), rng.uniform(2e-3, 4e-3) * rng.choice([-1, 1])]
    return {"extrinsics": {"R": rot.tolist(), "T": [(eye / 1000).tolist()]},
            "intrinsics_w_distortion": {"f": [f], "c": [c], "k": [k], "p": [p]},
            "intrinsics_wo_distortion": {"f": [f], "c": [c]}}


def toolkit_projection(calib: dict, points_m) -> np.ndarray:
    """The toolkit's projection of world points (metres): camera coordinates ``(X - T) Rᵀ`` (the notebook), then
    ``project_3d_to_2d(..., 'w_distortion')``: with ``q = (p2, p1)`` (the stored ``p`` swapped), ``x' = x (1 + k·(r²,
    r⁴, r⁶) + x q1 + y q2) + r² q`` per axis, pixel ``f x' + c``."""
    ext, intr = calib["extrinsics"], calib["intrinsics_w_distortion"]
    rot, centre = np.asarray(ext["R"], float), np.asarray(ext["T"], float).reshape(1, 3)
    cam = (np.asarray(points_m, np.float64).reshape(-1, 3) - centre) @ rot.T
    xy = cam[:, :2] / cam[:, 2:3]
    k = np.asarray(intr["k"], float).reshape(3)
    q = np.asarray(intr["p"], float).reshape(2)[::-1]
    r2 = (xy ** 2).sum(axis=1, keepdims=True)
    radial = 1 + k[0] * r2 + k[1] * r2 ** 2 + k[2] * r2 ** 3
    tangential = xy @ q[:, None]
    distorted = xy * (radial + tangential) + r2 * q
    return np.asarray(intr["f"], float).reshape(1, 2) * distorted + np.asarray(intr["c"], float).reshape(1, 2)


def _frame(points: np.ndarray) -> np.ndarray:
    """A dark frame with white marks at the projected joints."""
    w, h = FRAME_SIZE
    img = np.full((h, w, 3), 35, np.uint8)
    for pt in points:
        if np.all(np.isfinite(pt)):
            cv2.circle(img, tuple(np.round(pt * 16).astype(int)), int(MARK_RADIUS * 16), (255, 255, 255), -1,
                       cv2.LINE_AA, shift=4)
    return img


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def make_fixture(root, name: str, seed: int = 0, cameras=CAMERAS) -> Path:
    """Write dataset ``name``'s layout: ``info.json`` (train_subj_names, test_subj_names, subj_to_act with a test
    subject, all_camera_names), and per training sequence of :data:`SEQUENCES`
    ``train/<subj>/joints3d_25/<action>.json`` (metres; CHI3D (2, frames, 25, 3)), per camera of ``cameras`` its
    ``camera_parameters`` JSON and an mp4v ``videos/<cam>/<action>.mp4`` (720 x 720, white marks at the joints of
    mocap frame 4 i, both people, projected with the toolkit's formula)."""
    from posebank.imaging.video import write_video

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    subjects = SEQUENCES[name]
    write_json(root / "info.json", {
        "all_camera_names": list(CAMERAS), "train_subj_names": list(subjects), "test_subj_names": [TEST_SUBJECT],
        "subj_to_act": {TEST_SUBJECT: ["unused"], **{s: list(a) for s, a in subjects.items()}}})
    for (subject, action), poses in fixture_joints(name, seed).items():
        folder = root / "train" / subject
        joints = poses[0] if PEOPLE[name] == 1 else poses
        write_json(folder / "joints3d_25" / f"{action}.json", {"joints3d_25": (joints / 1000).tolist()})
        n_video = N_FRAMES
        for cam in cameras:
            calib = calibration(name, seed, subject, CAMERAS.index(cam))
            write_json(folder / "camera_parameters" / cam / f"{action}.json", calib)
            marks = [np.concatenate([toolkit_projection(calib, poses[person, i * MOCAP_PER_VIDEO_FRAME] / 1000)
                                     for person in range(len(poses))])
                     if i * MOCAP_PER_VIDEO_FRAME < poses.shape[1] else np.zeros((0, 2)) for i in range(n_video)]
            video = folder / "videos" / cam / f"{action}.mp4"
            video.parent.mkdir(parents=True, exist_ok=True)
            write_video(video, (_frame(m) for m in marks), fps=FPS)
    (root / FIXTURE_MARKER).write_text(f"{name} fixture, seed {seed}\n")
    return root
