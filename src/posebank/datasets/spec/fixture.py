"""A miniature SPEC-SYN raw tree in the release's layout, for tests and demos (see :func:`make_fixture`)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from posebank.core.smpl_model import SmplJoints, write_random_model
from posebank.datasets.spec import ANNOTATIONS, COMMON, I_2D, I_3D, JOINT_INFO, S_SELECTOR

FIXTURE_MARKER = ".posebank-fixture"
BODY_MODELS = "body_models"  # the default body_model_dir, inside the raw folder
IMAGE_SIZE = (960, 540)  # w, h
IDS = JOINT_INFO.ids
# SPIN's J24 rows 12-23 after the 12 limb joints: neck, head top, pelvis, thorax, spine, jaw, head, nose, leye,
# reye, lear, rear, as points of the SMPL skeleton (k: SMPL joint, or (a, b, t): a + t (b - a))
J24_EXTRA = (12, (12, 15, 2.2), 0, 9, 6, (12, 15, 1.3), 15, (12, 15, 1.6), (15, 16, 0.15), (15, 17, 0.15),
             (15, 16, 0.3), (15, 17, 0.3))
# the OpenPose joints SMPL lacks, likewise: nose (0), eyes (15, 16), ears (17, 18), toes and heels (19-24)
OPENPOSE_EXTRA = {0: (12, 15, 1.6), 15: (15, 17, 0.15), 16: (15, 16, 0.15), 17: (15, 17, 0.3), 18: (15, 16, 0.3),
                  19: 10, 20: (7, 10, 0.8), 21: (10, 7, 1.4), 22: 11, 23: (8, 11, 0.8), 24: (11, 8, 1.4)}
# (split, images: (name, people: (pelvis pixel (u, v), depth m))); one far person (25 m) is under 100 px
SPLITS = (
    ("train", (("scene0/spec_train_scene0_cam00_000003.png", (((300, 290), 4.5), ((660, 280), 5.0))),
               ("scene0/spec_train_scene0_cam01_000007.png", (((480, 300), 4.0),)),
               ("scene1/spec_train_scene1_cam00_000012.png", (((420, 280), 5.5), ((800, 200), 25.0))))),
    ("test", (("scene2/spec_test_scene2_cam00_000001.png", (((470, 290), 4.2),)),
              ("scene2/spec_test_scene2_cam01_000002.png", (((500, 280), 4.8),)))),
)
_LIMBS = ((15, 12, 9, 6, 3, 0), (0, 1, 4, 7, 10), (0, 2, 5, 8, 11), (9, 13, 16, 18, 20, 22),
          (9, 14, 17, 19, 21, 23))


def _point(joints: np.ndarray, spec) -> np.ndarray:
    if isinstance(spec, int):
        return joints[spec]
    a, b, t = spec
    return joints[a] + t * (joints[b] - joints[a])


def _rot_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rot_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _draw(uv: np.ndarray, image: np.ndarray, colour) -> np.ndarray:
    for chain in _LIMBS:
        for a, b in zip(chain[:-1], chain[1:]):
            pa, pb = np.round(uv[[a, b]] * 16).astype(int)
            cv2.line(image, tuple(pa), tuple(pb), colour, 10, cv2.LINE_AA, shift=4)
    for pt in uv:  # white marks at the 24 SMPL joints (tests/marks.py)
        cv2.circle(image, tuple(np.round(pt * 16).astype(int)), 3 * 16, (255, 255, 255), -1, cv2.LINE_AA, shift=4)
    return image


def make_fixture(root, seed: int = 0, splits=SPLITS) -> Path:
    """Write a miniature SPEC-SYN raw tree in the release's layout.

    ``annotations/{train,test}.npz`` with one row per person and the release's fields (``imgname``, ``pose`` (72),
    ``shape`` (10), ``openpose_gt`` and ``openpose`` (25 x 3), ``S`` (24 x 4), ``cam_rotmat``, ``cam_int``, and
    ``center``, ``scale``, ``focal_length``, ``cam_pitch``, ``cam_roll``, ``cam_trans``, which posebank does not
    read); the images ``<imgname>`` (960 x 540 PNG, a textured background, the people as limbs, white marks at their
    24 SMPL joints; the names are invented, the release's naming is not public); and a random neutral SMPL model
    (:func:`posebank.core.smpl_model.write_random_model`) in ``body_models/smpl/SMPL_NEUTRAL.npz``.

    Each person is the random model posed with a random ``pose`` (upright in SPEC's world, y down, at a random
    heading, facing the camera or away) and ``shape``, scaled by a true size factor (0.9-1.1) and placed at a pelvis
    pixel and depth of
    :data:`SPLITS` in a camera pitched down 5-25 degrees and rolled up to 4 degrees (``cam_rotmat``, one per image),
    f 700-950 px. ``openpose_gt`` is that placed person projected (the 14 joints shared with SMPL exactly, the
    others at points of the skeleton), ``S`` its J24 joints in metres (the first 12 the SMPL limb joints x the size
    factor, pelvis-centred, world axes), so that posepile's PnP and spread ratio recover the placement exactly. The
    truth (camera-frame joints in mm, size factors) is written to ``truth.json`` beside the marker, for the tests.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    write_random_model(root / BODY_MODELS, "neutral", seed=seed)
    smpl = SmplJoints(root / BODY_MODELS, "neutral")
    w, h = IMAGE_SIZE
    yy, xx = np.mgrid[0:h, 0:w]
    truth: dict[str, dict] = {}
    for s_index, (split, images) in enumerate(splits):
        rows: dict[str, list] = {k: [] for k in (
            "imgname", "pose", "shape", "openpose_gt", "openpose", "S", "cam_rotmat", "cam_int", "center", "scale",
            "focal_length", "cam_pitch", "cam_roll", "cam_trans")}
        for n, (name, people) in enumerate(images):
            pitch, roll = np.radians(rng.uniform(5, 25)), np.radians(rng.uniform(-4, 4))
            rot = _rot_z(roll) @ _rot_x(-pitch)  # world (gravity-aligned, y down) -> camera
            f = rng.uniform(700, 950)
            k = np.array([[f, 0.0, w / 2], [0.0, f, h / 2], [0.0, 0.0, 1.0]])
            image = np.stack([(xx * (2 + s_index) + yy + 30 * n) % 190 + 20, (yy * 2 + xx) % 170 + 40,
                              (xx + 3 * yy) % 150 + 60], -1).astype(np.uint8)
            for person, ((u, v), depth) in enumerate(people):
                heading = rng.choice([0.0, np.pi]) + rng.uniform(-0.5, 0.5)  # facing the camera or away, roughly
                orient = _rot_x(np.pi) @ _rot_y(heading)  # SMPL's y up -> the world's y down
                pose = np.concatenate([cv2.Rodrigues(orient)[0].ravel(), rng.normal(0, 0.12, 69)])
                betas = rng.normal(0, 1, 10)
                size = rng.uniform(0.9, 1.1)
                joints = smpl.joints(pose[None], betas[None], np.zeros((1, 3)))[0]  # metres, no translation
                pelvis_cam = depth * np.linalg.solve(k, [u, v, 1.0])
                world = size * (joints - joints[0]) + rot.T @ pelvis_cam  # metres, SPEC's world
                cam = world @ rot.T
                uv = cam[:, :2] / cam[:, 2:] @ k[:2, :2].T + k[:2, 2]
                op = np.zeros((25, 3))
                op[I_2D, :2] = uv[I_3D]
                for i, spec in OPENPOSE_EXTRA.items():
                    c = _point(cam, spec)
                    op[i, :2] = c[:2] / c[2] * f + k[:2, 2]
                op[:, 2] = 1.0
                centred = world - world[0]
                s_j24 = np.concatenate([centred[S_SELECTOR], [_point(centred, e) for e in J24_EXTRA]])
                rows["imgname"].append(name)
                rows["pose"].append(pose)
                rows["shape"].append(betas)
                rows["openpose_gt"].append(op)
                rows["openpose"].append(op + np.concatenate([rng.normal(0, 2, (25, 2)), np.zeros((25, 1))], 1))
                rows["S"].append(np.concatenate([s_j24, np.ones((24, 1))], 1))
                rows["cam_rotmat"].append(rot)
                rows["cam_int"].append(k)
                lo, hi = uv.min(axis=0), uv.max(axis=0)
                rows["center"].append((lo + hi) / 2)
                rows["scale"].append(max(hi - lo) * 1.2 / 200)  # SPIN: box side / 200
                rows["focal_length"].append(f)
                rows["cam_pitch"].append(pitch)
                rows["cam_roll"].append(roll)
                rows["cam_trans"].append(np.zeros(3))  # the same for every person (mkocabas/SPEC issue 11)
                truth[f"{split}/{len(rows['imgname']) - 1}"] = {
                    "camera_mm": (cam * 1000).tolist(), "size": size, "image": name}
                image = _draw(uv, image, (40 + 60 * person, 90, 200))
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / name), image)
        path = root / ANNOTATIONS.format(split=split)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {k: np.asarray(v, np.float64) for k, v in rows.items() if k != "imgname"}
        arrays["imgname"] = np.asarray(rows["imgname"], dtype=str)
        np.savez(path, **arrays)
    (root / "truth.json").write_text(json.dumps(truth))
    (root / FIXTURE_MARKER).write_text(json.dumps({"dataset": "spec", "seed": seed}) + "\n")
    return root


__all__ = ["COMMON", "make_fixture"]
