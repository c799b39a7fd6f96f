"""A miniature RICH raw tree in the release's layout, and tiny gendered SMPL-X model files, for tests and demos.

Two sequences: ``train/ParkingLot1_002_burpee3`` (subject 2, male) and ``val/LectureHall_009_021_reparingprojector1``
(subjects 9 and 21, female; posepile's hard-coded gender lists do not know them, the toolkit's gender.json does),
5 frames each, three cameras per scene: ``000`` the reference (R = I, as RICH's calibrated multi-camera frame),
``001`` to the side, and ``002`` a moving camera with images but no calibration XML. Fits are dicts of float32
numpy arrays of the release's keys and shapes, pickled; frame 3 repeats frame 2 (the pose sampler leaves it out),
subject 21 has no fit in frame 1. Calibrations are OpenCV FileStorage XML files (``CameraMatrix`` 3x4 in metres,
``Intrinsics``, ``Distortion``), what the toolkit's parser reads. Frames are 960x720 JPEGs (quality 85, as
posepile's downloader writes them) with a dark background and a white mark at each of the 42 joints of every
person, projected here with an independent numpy SMPL-X forward and OpenCV distortion model (:func:`forward`,
:func:`project`).

The tiny SMPL-X files (``body_models/smplx/SMPLX_{MALE,FEMALE}.npz``, the default ``body_model_dir``) stand in
for the licensed model: SMPL-X's 10475 vertices and the arrays smplx loads, with 10 shape and 10 expression
components, every vertex zero except two per skeleton joint (its J_regressor) and the 21 vertices smplx reads
joints from (stored compressed).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np

from posebank.core.bodymodel import rodrigues
from posebank.datasets.rich.body import N_PCA, SELECTION, VERTEX_JOINTS

FIXTURE_MARKER = ".posebank-fixture"
N_VERTS = 10475
REG_BASE = 1000  # joint k is regressed from vertices REG_BASE + k and REG_BASE + 55 + k
SIZE = (960, 720)
MARK_RADIUS = 2.0
N_FRAMES = 5
# SMPL-X's kintree parents (55 joints)
PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15, 20, 25, 26, 20, 28,
           29, 20, 31, 32, 20, 34, 35, 20, 37, 38, 21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53)
SEQUENCES = (("train", "ParkingLot1_002_burpee3"), ("val", "LectureHall_009_021_reparingprojector1"))
MODEL_SEEDS = {"male": 11, "female": 12}
GENDER = {2: "male", 9: "female", 21: "female"}
MISSING_FIT = ("LectureHall_009_021_reparingprojector1", 1, 21)
REPEATED_FRAME = 3  # a copy of frame 2


def _template_joints() -> np.ndarray:
    """(55, 3) metres, y up, facing +z, left = +x."""
    left = {0: (0, 0.93, 0), 1: (0.09, 0.85, 0), 3: (0, 1.05, -0.01), 4: (0.11, 0.49, 0.03), 6: (0, 1.18, 0),
            7: (0.12, 0.08, -0.02), 9: (0, 1.25, 0.01), 10: (0.14, 0.02, 0.13), 12: (0, 1.45, -0.01),
            13: (0.08, 1.38, 0), 15: (0, 1.57, 0.04), 16: (0.18, 1.40, -0.02), 18: (0.32, 1.17, -0.03),
            20: (0.46, 0.96, 0.0), 22: (0, 1.52, 0.09), 23: (0.03, 1.62, 0.10)}
    mirror = {2: 1, 5: 4, 8: 7, 11: 10, 14: 13, 17: 16, 19: 18, 21: 20, 24: 23}
    j = np.zeros((55, 3))
    for k, v in left.items():
        j[k] = v
    for k, src in mirror.items():
        j[k] = j[src] * [-1, 1, 1]
    for wrist, elbow, first in ((20, 18, 25), (21, 19, 40)):
        d = (j[wrist] - j[elbow]) / np.linalg.norm(j[wrist] - j[elbow])
        for f, lateral in enumerate((0.025, 0.008, -0.03, -0.012, 0.045)):  # index, middle, pinky, ring, thumb
            for s in range(3):
                j[first + 3 * f + s] = j[wrist] + d * (0.07 + 0.025 * s) + (0, 0, lateral)
    return j


def _vertex_joint_places(j: np.ndarray) -> dict[str, tuple[np.ndarray, int]]:
    """Where the tiny model puts smplx's 21 joint vertices (rest position, the joint that skins it)."""
    tip = {"index": 27, "middle": 30, "pinky": 33, "ring": 36, "thumb": 39}
    out = {"nose": (j[15] + (0, 0.0, 0.11), 15), "reye": (j[24] + (0, 0, 0.01), 24),
           "leye": (j[23] + (0, 0, 0.01), 23), "rear": (j[15] + (-0.08, 0.0, -0.02), 15),
           "lear": (j[15] + (0.08, 0.0, -0.02), 15),
           "LBigToe": (j[10] + (0.02, -0.02, 0.06), 10), "LSmallToe": (j[10] + (0.06, -0.02, 0.03), 10),
           "LHeel": (j[7] + (0, -0.07, -0.06), 7), "RBigToe": (j[11] + (-0.02, -0.02, 0.06), 11),
           "RSmallToe": (j[11] + (-0.06, -0.02, 0.03), 11), "RHeel": (j[8] + (0, -0.07, -0.06), 8)}
    for side, offset, sign in (("l", 0, 1), ("r", 15, -1)):
        for name, last in tip.items():
            k = last + offset
            out[f"{side}{name}"] = (j[k] + (0.025 * sign, -0.01, 0), k)
    return out


def tiny_smplx(gender: str) -> dict[str, np.ndarray]:
    """The arrays of a tiny SMPLX_<GENDER>.npz (keys, shapes and dtypes smplx.SMPLX loads)."""
    rng = np.random.default_rng(MODEL_SEEDS[gender])
    j = _template_joints() * (1.0 if gender == "male" else 0.93)
    v = np.zeros((N_VERTS, 3))
    weights = np.zeros((N_VERTS, 55))
    weights[:, 0] = 1.0
    offsets = rng.normal(0, 0.01, (55, 3))
    reg = np.arange(55)
    v[REG_BASE + reg], v[REG_BASE + 55 + reg] = j + offsets, j - offsets
    j_regressor = np.zeros((55, N_VERTS))
    j_regressor[reg, REG_BASE + reg] = 0.5
    j_regressor[reg, REG_BASE + 55 + reg] = 0.5
    weights[REG_BASE + reg] = np.eye(55)
    weights[REG_BASE + 55 + reg] = np.eye(55)
    used = [*(REG_BASE + reg), *(REG_BASE + 55 + reg)]
    for name, vid in VERTEX_JOINTS:
        pos, joint = _vertex_joint_places(j)[name]
        v[vid], weights[vid] = pos, 0.0
        weights[vid, joint] = 0.8
        weights[vid, PARENTS[joint]] = 0.2
        used.append(vid)
    shapedirs = np.zeros((N_VERTS, 3, 20), np.float32)
    shapedirs[used] = rng.normal(0, 0.006, (len(used), 3, 20))
    posedirs = np.zeros((N_VERTS, 3, 486), np.float32)
    posedirs[used] = rng.normal(0, 0.002, (len(used), 3, 486))
    faces = np.array([[k, k + 1, k + 2] for k in range(REG_BASE, REG_BASE + 108)], np.int32)
    bary = rng.uniform(0.1, 1, (51, 3))
    dyn_bary = rng.uniform(0.1, 1, (79, 17, 3))
    return {
        "v_template": v, "f": faces, "shapedirs": shapedirs, "posedirs": posedirs,
        "J_regressor": j_regressor, "weights": weights,
        "kintree_table": np.array([[4294967295, *PARENTS[1:]], range(55)], np.int64),
        "hands_componentsl": np.linalg.qr(rng.normal(size=(45, 45)))[0],
        "hands_componentsr": np.linalg.qr(rng.normal(size=(45, 45)))[0],
        "hands_meanl": rng.normal(0, 0.15, 45), "hands_meanr": rng.normal(0, 0.15, 45),
        "lmk_faces_idx": rng.integers(0, len(faces), 51).astype(np.int64),
        "lmk_bary_coords": bary / bary.sum(-1, keepdims=True),
        "dynamic_lmk_faces_idx": rng.integers(0, len(faces), (79, 17)).astype(np.int64),
        "dynamic_lmk_bary_coords": dyn_bary / dyn_bary.sum(-1, keepdims=True),
    }


def write_tiny_models(folder) -> Path:
    """``folder/smplx/SMPLX_{MALE,FEMALE}.npz``; returns ``folder`` (a ``body_model_dir``)."""
    folder = Path(folder)
    (folder / "smplx").mkdir(parents=True, exist_ok=True)
    for gender in MODEL_SEEDS:
        np.savez_compressed(folder / "smplx" / f"SMPLX_{gender.upper()}.npz", **tiny_smplx(gender))
    return folder


# ------------------------------------------------------------------------------------------- an independent forward
def forward(model: dict, fit: dict) -> np.ndarray:
    """(42, 3) metres: posepile's smplx_42 joints of one fit, in plain numpy (the SMPL-X definition)."""
    sd = np.asarray(model["shapedirs"], np.float64)
    shape = np.concatenate([fit["betas"].ravel(), fit["expression"].ravel()])
    v_shaped = model["v_template"] + sd @ shape
    rest = model["J_regressor"] @ v_shaped
    hands = [fit[f"{s}_hand_pose"].ravel() @ model[f"hands_components{c}"][:N_PCA] + model[f"hands_mean{c}"]
             for s, c in (("left", "l"), ("right", "r"))]
    pose = np.concatenate([fit["global_orient"].ravel(), fit["body_pose"].ravel(), fit["jaw_pose"].ravel(),
                           fit["leye_pose"].ravel(), fit["reye_pose"].ravel(), *hands]).reshape(55, 3)
    rot = rodrigues(pose)
    world = np.zeros((55, 4, 4))
    for k in range(55):
        local = np.eye(4)
        local[:3, :3] = rot[k]
        local[:3, 3] = rest[k] - (rest[PARENTS[k]] if k else 0)
        world[k] = local if k == 0 else world[PARENTS[k]] @ local
    joints = world[:, :3, 3]
    skin = world.copy()
    skin[:, :3, 3] -= np.einsum("kij,kj->ki", world[:, :3, :3], rest)
    pose_feature = (rot[1:] - np.eye(3)).ravel()
    ids = [vid for _, vid in VERTEX_JOINTS]
    v_posed = v_shaped[ids] + np.asarray(model["posedirs"], np.float64)[ids] @ pose_feature
    t = np.einsum("vk,kij->vij", model["weights"][ids], skin)
    verts = np.einsum("vij,vj->vi", t[:, :3, :3], v_posed) + t[:, :3, 3]
    all_joints = np.concatenate([joints, verts]) + fit["transl"].ravel()
    return all_joints[list(SELECTION)]


def project(points_m: np.ndarray, cam: dict) -> np.ndarray:
    """(N, 2) pixels: world points (metres) through a fixture camera (OpenCV pinhole + k1 k2 p1 p2 k3)."""
    p = points_m @ cam["R"].T + cam["T"]
    x, y = p[:, 0] / p[:, 2], p[:, 1] / p[:, 2]
    k1, k2, p1, p2, k3 = cam["dist"]
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    K = cam["K"]
    return np.stack([K[0, 0] * xd + K[0, 1] * yd + K[0, 2], K[1, 1] * yd + K[1, 2]], axis=1)


def _look_at(centre, target) -> np.ndarray:
    z = np.asarray(target, float) - centre
    z /= np.linalg.norm(z)
    x = np.cross((0, 1.0, 0), z)  # world y is down (the reference camera's frame)
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


def fixture_cameras(scene: str) -> dict[int, dict]:
    """The static cameras of a scene: id -> {R, T (metres), K, dist}; 000 is the reference (R = I, T = 0)."""
    side = 1.0 if scene == "ParkingLot1" else -1.0
    K = np.array([[900.0, 0, 478.5], [0, 902.0, 361.0], [0, 0, 1]])
    centre = np.array([2.2 * side, -0.3, 1.2])
    R1 = _look_at(centre, (0, 0.1, 4.0))
    return {0: {"R": np.eye(3), "T": np.zeros(3), "K": K, "dist": np.array([-0.04, 0.015, 0.0005, -0.0003, 0.0])},
            1: {"R": R1, "T": -R1 @ centre, "K": K * [[1.05], [1.05], [1]],
                "dist": np.array([-0.02, 0.01, 0.0, 0.0, 0.0])}}


def write_calibration(path: Path, cam: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    fs.write("CameraMatrix", np.concatenate([cam["R"], cam["T"][:, None]], axis=1))
    fs.write("Intrinsics", cam["K"])
    fs.write("Distortion", cam["dist"].reshape(1, -1))
    fs.release()


def fixture_fit(rng, subject: int, frame: int, lateral: float) -> dict[str, np.ndarray]:
    """A fit of the release's keys and shapes (float32), standing upright in the reference camera's frame."""
    f = lambda a: np.asarray(a, np.float32).reshape(1, -1)  # noqa: E731
    return {"betas": f(rng.normal(0, 0.8, 10)), "global_orient": f([np.pi, 0, 0] + rng.normal(0, 0.05, 3)),
            "body_pose": f(rng.normal(0, 0.2, 63)), "left_hand_pose": f(rng.normal(0, 0.5, 12)),
            "right_hand_pose": f(rng.normal(0, 0.5, 12)), "jaw_pose": f(rng.normal(0, 0.1, 3)),
            "leye_pose": f(rng.normal(0, 0.1, 3)), "reye_pose": f(rng.normal(0, 0.1, 3)),
            "expression": f(rng.normal(0, 0.5, 10)),
            "transl": f([lateral + 0.15 * frame, -0.75 + rng.normal(0, 0.02), 4.0 + 0.1 * frame])}


def draw(points_2d: list[np.ndarray]) -> np.ndarray:
    image = np.full((SIZE[1], SIZE[0], 3), 30, np.uint8)
    for pts in points_2d:
        for x, y in pts:
            if np.isfinite(x) and np.isfinite(y):
                cv2.circle(image, (int(round(x * 16)), int(round(y * 16))), int(MARK_RADIUS * 16), (255, 255, 255),
                           -1, cv2.LINE_AA, shift=4)
    return image


def make_fixture(root, seed: int = 0) -> Path:
    """Write the miniature raw tree (module docstring) under ``root``; returns ``root``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    write_tiny_models(root / "body_models")
    models = {g: tiny_smplx(g) for g in MODEL_SEEDS}
    for split, seq in SEQUENCES:
        scene, *ids, _ = seq.split("_")
        subjects = [int(s) for s in ids]
        cams = fixture_cameras(scene)
        for cam_id, cam in cams.items():
            xml = root / "scan_calibration" / scene / "calibration" / f"{cam_id:03d}.xml"
            if not xml.exists():
                write_calibration(xml, cam)
        fits = {}
        for frame in range(N_FRAMES):
            for k, s in enumerate(subjects):
                fits[frame, s] = fits[frame - 1, s] if frame == REPEATED_FRAME else \
                    fixture_fit(rng, s, frame, -0.5 + 1.0 * k - 0.3 * (len(subjects) - 1))
        for (frame, s), fit in fits.items():
            if (seq, frame, s) == MISSING_FIT:
                continue
            path = root / f"{split}_body" / seq / f"{frame:05d}" / f"{s:03d}.pkl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(pickle.dumps(fit, protocol=2))
        moving = {"R": _look_at(np.array([-1.0, -0.5, 0.5]), (0, 0.1, 4.0)), "T": np.zeros(3),
                  "K": cams[0]["K"], "dist": np.zeros(5)}
        moving["T"] = -moving["R"] @ np.array([-1.0, -0.5, 0.5])
        for cam_id, cam in {**cams, 2: moving}.items():
            folder = root / split / seq / f"cam_{cam_id:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            for frame in range(N_FRAMES):
                marks = [project(forward(models[GENDER[s]], {k: v.astype(np.float64) for k, v in
                                                             fits[frame, s].items()}), cam)
                         for s in subjects if (seq, frame, s) != MISSING_FIT]
                cv2.imwrite(str(folder / f"{frame:05d}_{cam_id:02d}.jpg"), draw(marks),
                            [cv2.IMWRITE_JPEG_QUALITY, 85])
    (root / FIXTURE_MARKER).write_text("posebank rich fixture\n")
    return root
