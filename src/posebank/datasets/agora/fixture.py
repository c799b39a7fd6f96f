"""A miniature AGORA raw tree in the release's layout, for tests and demos (see :func:`make_fixture`).

The joints are projected the way AGORA's own tool does it (pixelite1201/agora_evaluation,
agora_evaluation/projection.py ``project2d``), step by step and independently of the converter's
:func:`posebank.datasets.agora.make_camera`: ``smpl2opencv``, the scan's yaw (Rodrigues(0, Yaw - 90, 0)) and
location, the camera position, ``Rodrigues(0, -camYaw, 0)``, ``Rodrigues(pitch, 0, 0)``, then ``K [I | 0]``.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np

from posebank.datasets.agora import (
    N_SMPL_JOINTS,
    N_SMPLX_JOINTS,
    SMPL_NAMES,
    SMPLX_NAMES,
    SMPLX_SELECTED,
    image_name,
    mask_name,
)

FIXTURE_MARKER = ".posebank-fixture"
TRUTH_FILE = ".posebank-fixture-truth.pkl"  # what the fixture generated (not part of the release)
MARK_RADIUS = 2.0
N_SMPL_VERTS, N_SMPLX_VERTS = 6890, 10475
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
SMPLX_OFFSET = np.array([0.10, 0.07, 0.0])  # the SMPL-X skeleton sits beside the SMPL one (separate marks)

# (section, image, [person kinds]); kinds: ok, invalid, occluded, kid, far (box < 100 px), outside (out of view),
# partly (occlusion 60 %: kept)
ROWS = (
    ("train_0", "ag_trainset_renderpeople_bfh_archviz_5_10_cam02_00001.png", ("ok", "ok", "invalid")),
    ("train_0", "ag_trainset_renderpeople_body_hdri_50mm_5_10_00012.png", ("kid", "occluded", "far", "ok")),
    ("train_1", "ag_trainset_3dpeople_bfh_brushifyforest_5_15_00007.png", ("ok", "partly", "ok")),
    ("validation_0", "ag_validationset_renderpeople_bfh_flowers_5_15_00002.png", ("ok", "outside", "ok")),
    ("validation_1", "ag_validationset_3dpeople_body_archviz_5_10_cam00_00005.png", ("ok", "ok")),
)
# the camera of each image as agora_evaluation's project_2d sets it: (focal mm, position cm, yaw, pitch, ground)
SCENES = {
    "cam02": (18.0, (-490.0, 170.0, 265.0), -45.0, 30.0, (0.0, 0.0, 0.0)),
    "cam00": (18.0, (400.0, -275.0, 265.0), 135.0, 30.0, (0.0, 0.0, 0.0)),
    "hdri": (50.0, (0.0, 0.0, 170.0), 0.0, 0.0, (0.0, 0.0, 0.0)),
}


# ------------------------------------------------------------------------------------------- AGORA's projection
def unreal2cv2(points):
    points = np.roll(points, 2, 1)  # x --> y, y --> z, z --> x
    return points * np.array([1.0, -1.0, 1.0])


def agora_project(j3d_local, yaw_smpl, trans_cm, cam_pos_cm, cam_yaw, cam_pitch, focal_mm, ground, width=3840,
                  height=2160):
    """projection.py ``project2d`` for one person: (2D pixels at width x height, 3D camera frame metres)."""
    cx, cy = width / 2, height / 2
    fx = focal_mm / 36 * cx * 2
    fy = focal_mm / 20.25 * cy * 2
    cam_mat = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    trans3d = unreal2cv2(np.reshape(np.array(trans_cm) / 100, (1, 3)))
    cam_pos = unreal2cv2(np.reshape(np.array(cam_pos_cm) / 100, (1, 3))) + np.array(ground)
    j3d = np.asarray(j3d_local, np.float64) * np.array([1, -1, -1])
    rot, _ = cv2.Rodrigues(np.array([[0, ((yaw_smpl - 90) / 180) * np.pi, 0]], dtype=float))
    j3d = np.matmul(rot, j3d.T).T + trans3d
    cam_rot, _ = cv2.Rodrigues(np.array([0, ((-cam_yaw) / 180) * np.pi, 0]).reshape(3, 1))
    cam_rot2, _ = cv2.Rodrigues(np.array([cam_pitch / 180 * np.pi, 0, 0]).reshape(3, 1))
    j3d_new = np.matmul(cam_rot, j3d.T - cam_pos.T).T
    j3d_new = np.matmul(cam_rot2, j3d_new.T).T
    rt = np.concatenate((np.diag([1.0, 1.0, 1.0]), np.zeros((3, 1))), axis=1)
    p = cam_mat @ rt @ np.concatenate([j3d_new, np.ones((len(j3d_new), 1))], axis=1).T
    return (p[:2] / p[2]).T, j3d_new


def _camera_frame(cam_pos_cm, cam_yaw, cam_pitch, ground):
    """(R world -> camera, centre) of the same camera, for placing people in view."""
    rot = cv2.Rodrigues(np.array([cam_pitch / 180 * np.pi, 0, 0]))[0] @ cv2.Rodrigues(
        np.array([0, -cam_yaw / 180 * np.pi, 0]))[0]
    center = unreal2cv2(np.reshape(np.array(cam_pos_cm) / 100, (1, 3)))[0] + np.array(ground)
    return rot, center


# ------------------------------------------------------------------------------------------- bodies
def _template_smpl() -> np.ndarray:
    """The 45 joints of a standing SMPL body at rest, metres, SMPL's frame (y up, z forward, x to its left)."""
    named = {
        "pelv": (0, 0.93, 0), "lhip": (0.09, 0.85, 0), "rhip": (-0.09, 0.85, 0), "bell": (0, 1.05, -0.01),
        "lkne": (0.11, 0.49, 0.03), "rkne": (-0.11, 0.49, 0.03), "spin": (0, 1.18, 0), "lank": (0.12, 0.08, -0.02),
        "rank": (-0.12, 0.08, -0.02), "thor": (0, 1.25, 0.01), "ltoe": (0.14, 0.02, 0.13),
        "rtoe": (-0.14, 0.02, 0.13), "neck": (0, 1.45, -0.01), "lcla": (0.08, 1.38, 0), "rcla": (-0.08, 1.38, 0),
        "head": (0, 1.60, 0.04), "lsho": (0.19, 1.40, -0.02), "rsho": (-0.19, 1.40, -0.02),
        "lelb": (0.36, 1.16, -0.03), "relb": (-0.36, 1.16, -0.03), "lwri": (0.52, 0.95, 0.0),
        "rwri": (-0.52, 0.95, 0.0), "lhan": (0.58, 0.87, 0.02), "rhan": (-0.58, 0.87, 0.02)}
    j = np.zeros((N_SMPL_JOINTS, 3))
    for name, v in named.items():
        j[SMPL_NAMES.index(name)] = v
    j[24:] = j[15] + np.linspace(-0.05, 0.05, N_SMPL_JOINTS - 24)[:, None] * [1, 0.2, 0.3]  # extra joints
    return j - [0, 1.15, 0]  # SMPL's rest pelvis lies about 0.22 m below its origin


def _template_smplx(smpl: np.ndarray) -> np.ndarray:
    """127 SMPL-X joints: the body of ``smpl`` moved by SMPLX_OFFSET, face points about the head, hand points
    about the wrists, feet points about the ankles."""
    j = np.zeros((N_SMPLX_JOINTS, 3))
    j[:22] = smpl[:22]
    near = {"jaw": ("head", (0, -0.08, 0.05)), "leyehf": ("head", (0.03, 0.03, 0.08)),
            "reyehf": ("head", (-0.03, 0.03, 0.08)), "nose": ("head", (0, 0.0, 0.11)),
            "reye": ("head", (-0.035, 0.04, 0.09)), "leye": ("head", (0.035, 0.04, 0.09)),
            "rear": ("head", (-0.08, 0.01, 0.0)), "lear": ("head", (0.08, 0.01, 0.0)),
            "lto2": ("ltoe", (0.02, 0, 0.03)), "lto3": ("ltoe", (0.05, 0, 0.0)), "lhee": ("lank", (0, -0.05, -0.07)),
            "rto2": ("rtoe", (-0.02, 0, 0.03)), "rto3": ("rtoe", (-0.05, 0, 0.0)),
            "rhee": ("rank", (0, -0.05, -0.07)), "lthu": ("lwri", (0.06, -0.08, 0.08)),
            "lmiddle": ("lwri", (0.17, -0.12, 0.0)), "rthu": ("rwri", (-0.06, -0.08, 0.08)),
            "rmiddle": ("rwri", (-0.17, -0.12, 0.0)), "lmiddle1": ("lwri", (0.09, -0.06, 0.0)),
            "rmiddle1": ("rwri", (-0.09, -0.06, 0.0))}
    for name, (parent, offset) in near.items():
        j[SMPLX_NAMES.index(name)] = j[SMPL_NAMES.index(parent)] + offset
    for i, name in enumerate(SMPLX_NAMES):  # the joints posebank does not convert: near their body part
        if i >= 22 and not j[i].any():
            base = "lwri" if name.startswith("l") and "eye" not in name and "ear" not in name else \
                "rwri" if name.startswith("r") and "eye" not in name and "ear" not in name else "head"
            j[i] = j[SMPL_NAMES.index(base)] + 0.01 * ((i * 7919) % 11 - 5)
    return j + SMPLX_OFFSET


def _place(rng, kind: str, slot: int, n_slots: int, cam: tuple) -> np.ndarray:
    """Where the pelvis goes in the camera frame (metres): spread across the view, at a depth by kind."""
    focal = cam[0]
    depth = {"far": 140.0}.get(kind, rng.uniform(3.5, 4.5) * focal / 18)  # the same size in pixels
    half_fov = np.arctan(18.0 / focal)  # 36 mm sensor
    lateral = (slot + 0.5) / n_slots * 1.4 - 0.7  # in [-0.7, 0.7] of the half view
    if kind == "outside":
        lateral = 2.5
    return np.array([np.tan(half_fov) * lateral * depth, rng.uniform(-0.1, 0.1), depth])


def _fits(rng, kid: bool, go: np.ndarray, transl: np.ndarray):
    """The SMPL fit (torch tensors) and SMPL-X fit (numpy arrays) of a person, with the release's keys."""
    import torch

    n_betas = 11 if kid else 10
    f32 = np.float32
    smplx = {
        "global_orient": go.reshape(1, 3).astype(f32), "body_pose": rng.normal(0, 0.2, (1, 63)).astype(f32),
        "left_hand_pose": rng.normal(0, 0.3, (1, 45)).astype(f32),
        "right_hand_pose": rng.normal(0, 0.3, (1, 45)).astype(f32),
        "jaw_pose": rng.normal(0, 0.05, (1, 3)).astype(f32), "leye_pose": rng.normal(0, 0.05, (1, 3)).astype(f32),
        "reye_pose": rng.normal(0, 0.05, (1, 3)).astype(f32), "expression": rng.normal(0, 0.5, (1, 10)).astype(f32),
        "betas": rng.normal(0, 1, (1, n_betas)).astype(f32), "transl": transl.reshape(1, 3).astype(f32)}
    body = rng.normal(0, 0.2, (1, 69)).astype(f32)
    rotmats = np.stack([cv2.Rodrigues(v)[0] for v in np.concatenate([go, body[0]]).reshape(24, 3)])
    smpl = {
        "root_pose": torch.tensor(go.reshape(1, 3).astype(f32), requires_grad=True),
        "body_pose": torch.tensor(body, requires_grad=True),
        "betas": torch.tensor(rng.normal(0, 1, (1, n_betas)).astype(f32), requires_grad=True),
        "translation": torch.tensor(transl.reshape(1, 3).astype(f32), requires_grad=True),
        "full_pose": torch.tensor(rotmats[None].astype(f32))}
    return smpl, smplx


def _draw(image, masks, joints2d, thickness, k):
    """A grey stick figure of the SMPL joints with white marks at every converted joint (``joints2d`` at the
    image's resolution); the person's amodal mask into ``masks[k]``."""
    fixed = np.round(joints2d * 16).astype(np.int64)
    if np.abs(fixed).max() > 2 ** 28:
        return
    sil = np.zeros(image.shape[:2], np.uint8)
    for child, parent in enumerate(SMPL_PARENTS):
        if parent >= 0:
            cv2.line(sil, tuple(fixed[parent].tolist()), tuple(fixed[child].tolist()), 255, thickness, cv2.LINE_8,
                     shift=4)
    image[sil > 0] = 100 + 10 * k
    masks[k] = sil
    for pt in fixed:
        cv2.circle(image, tuple(pt.tolist()), int(MARK_RADIUS * 16), (255, 255, 255), -1, cv2.LINE_AA, shift=4)


def make_fixture(root, seed: int = 0, dataframes=(0, 1), resolution: str = "1280x720") -> Path:
    """Write a miniature AGORA tree under ``root`` in the release's layout (module docstring of
    :mod:`posebank.datasets.agora`): for each section of ``dataframes`` (train_<i>, validation_<i>) the SMPL and
    SMPL-X ``*_withjv.pkl`` dataframes (pandas ``to_pickle``, the release's columns, per-person lists, 45 / 127
    joints, gt_verts of 6890 / 10475 vertices), the images at ``resolution`` (PNG, white marks at the converted
    joints' gt_joints_2d), the person masks (amodal, white on black; ``_00000`` the label image of all people) and
    the fits: SMPL as a plain pickle of torch tensors, SMPL-X as a plain pickle of numpy arrays.

    The fixture's people cover every drop rule (ROWS); ``fixture_truth(root)`` returns what was generated.
    """
    import pandas as pd

    root = Path(root)
    rng = np.random.default_rng(seed)
    size = {"1280x720": (1280, 720), "3840x2160": (3840, 2160)}[resolution]
    scale = size[0] / 3840
    smpl_rest0 = _template_smpl()
    truth = {}
    frames: dict[str, list[dict]] = {}
    n_scans = 0
    for section, img, kinds in ROWS:
        index = int(section.rsplit("_", 1)[1])
        if index not in dataframes:
            continue
        key = next((k for k in SCENES if k in img), None)
        if key is not None:
            cam = SCENES[key]
            cam_cols = (*cam[1], cam[2])
        else:
            cam_cols = (float(rng.uniform(-400, 400)), float(rng.uniform(-300, 300)), float(rng.uniform(0, 40)),
                        float(rng.uniform(-40, 40)))
            cam = (28.0, cam_cols[:3], cam_cols[3], 0.0, (0.0, -1.7, 0.0))
        rot_c, center = _camera_frame(cam[1], cam[2], cam[3], cam[4])
        row = {k: [] for k in ("X", "Y", "Z", "Yaw", "gender", "kid", "occlusion", "isValid", "age", "ethnicity",
                               "gt_path_smpl", "gt_path_smplx", "j2a", "j3a", "j2b", "j3b")}
        people = []
        for k, kind in enumerate(kinds):
            kid = kind == "kid"
            rest = smpl_rest0 * (0.7 if kid else rng.uniform(0.95, 1.05))
            rest = rest + [rng.normal(0, 0.01), rng.normal(0, 0.02), rng.normal(0, 0.01)]
            rest_x = _template_smplx(rest)
            go = np.array([rng.normal(0, 0.05), rng.uniform(-np.pi, np.pi), rng.normal(0, 0.05)])
            transl = rng.uniform(-0.2, 0.2, 3)
            go, transl = go.astype(np.float32).astype(np.float64), transl.astype(np.float32).astype(np.float64)
            rot_go = cv2.Rodrigues(go)[0]
            posed = (rest - rest[0]) @ rot_go.T + rest[0] + transl  # joint 0 posed = rest pelvis + transl
            posed_x = (rest_x - rest_x[0]) @ rot_go.T + rest_x[0] + transl
            yaw = float(rng.uniform(0, 360))
            m = cv2.Rodrigues(np.array([0, (yaw - 90) / 180 * np.pi, 0]))[0] @ np.diag([1.0, -1.0, -1.0])
            target_w = rot_c.T @ _place(rng, kind, k, len(kinds), cam) + center
            trans3d = target_w - m @ posed[0]
            x_cm, y_cm, z_cm = float(trans3d[2] * 100), float(trans3d[0] * 100), float(-trans3d[1] * 100)
            j2a, j3a = agora_project(posed, yaw, (x_cm, y_cm, z_cm), cam[1], cam[2], cam[3], cam[0], cam[4])
            j2b, j3b = agora_project(posed_x, yaw, (x_cm, y_cm, z_cm), cam[1], cam[2], cam[3], cam[0], cam[4])
            folder = f"{'trainset' if 'train' in section else 'validationset'}_renderpeople_adults_bfh"
            n_scans += 1  # one scan per person (a scan placed in several images would share its fit file)
            scan = f"rp_{['aaron', 'beth', 'carla', 'dennis', 'emma'][k % 5]}_posed_{n_scans:03d}_0_0"
            if kid:
                folder, scan = folder.replace("adults", "kids"), scan.replace("rp_", "rp_kid_")
            smpl_fit, smplx_fit = _fits(rng, kid, go, transl)
            for rel, fit in ((f"smpl_gt/{folder}/{scan}.pkl", smpl_fit), (f"smplx_gt/{folder}/{scan}.pkl", smplx_fit)):
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                with open(root / rel, "wb") as f:
                    pickle.dump(fit, f)
            occlusion = {"invalid": 95.0, "occluded": 80.0, "partly": 60.0}.get(kind, float(rng.uniform(0, 40)))
            for name, value in (("X", x_cm), ("Y", y_cm), ("Z", z_cm), ("Yaw", yaw),
                                ("gender", "female" if k % 2 else "male"), ("kid", kid), ("occlusion", occlusion),
                                ("isValid", kind != "invalid"), ("age", "4-7" if kid else "31-50"),
                                ("ethnicity", "white"), ("gt_path_smpl", f"smpl_gt/{folder}/{scan}.obj"),
                                ("gt_path_smplx", f"smplx_gt/{folder}/{scan}.obj"),
                                ("j2a", j2a), ("j3a", j3a), ("j2b", j2b), ("j3b", j3b)):
                row[name].append(value)
            people.append({"kind": kind, "rest_root_smpl": rest[0], "rest_root_smplx": rest_x[0],
                           "smpl": {k2: v.detach().numpy() for k2, v in smpl_fit.items()}, "smplx": smplx_fit,
                           "depth": float(j3a[0, 2]), "yaw": yaw, "location_cm": (x_cm, y_cm, z_cm)})
        truth[img] = {"section": section, "people": people}
        frames.setdefault(section, []).append({
            "imgPath": img, **{k: row[k] for k in ("X", "Y", "Z", "Yaw")},
            "camX": cam_cols[0], "camY": cam_cols[1], "camZ": cam_cols[2], "camYaw": cam_cols[3],
            **{k: row[k] for k in ("gender", "kid", "occlusion", "isValid", "age", "ethnicity", "gt_path_smpl",
                                   "gt_path_smplx")},
            "_smpl": (row["j2a"], row["j3a"]), "_smplx": (row["j2b"], row["j3b"])})
        # the image, its marks and masks
        w, h = size
        image = np.full((h, w, 3), 40, np.uint8)
        masks: dict[int, np.ndarray] = {}
        for k in sorted(range(len(kinds)), key=lambda i: -people[i]["depth"]):
            pts = np.concatenate([row["j2a"][k][:24], row["j2b"][k][list(SMPLX_SELECTED)]]) * scale
            thickness = max(2, int(round(0.08 * cam[0] / 36 * size[0] / people[k]["depth"])))
            _draw(image, masks, pts, thickness, k)
        folder = section if section.startswith("train") else "validation"
        path = root / folder / image_name(img, resolution)
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), image)
        label = np.zeros((h, w, 3), np.uint8)
        label[:] = (0, 0, 255)  # the label image's background (posepile extract_masks.py: [0, 0, 255] in BGR)
        for k in range(len(kinds)):
            m = masks.get(k, np.zeros((h, w), np.uint8))
            label[m > 0] = (60 * k % 256, 200, 40 * k % 256)
            mask_path = root / mask_name(img, k, resolution, "fixture")
            mask_path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(mask_path), cv2.merge([m, m, m]))
        cv2.imwrite(str(root / mask_name(img, -1, resolution, "fixture")), label)
    for section, rows in frames.items():
        for model, (verts, columns) in (("SMPL", (N_SMPL_VERTS, "_smpl")), ("SMPLX", (N_SMPLX_VERTS, "_smplx"))):
            records = []
            for r in rows:
                j2, j3 = r[columns]
                rec = {k: v for k, v in r.items() if not k.startswith("_")}
                rec["gt_joints_2d"] = list(j2)
                rec["gt_joints_3d"] = list(j3)
                rec["gt_verts"] = [np.repeat(j[:1], verts, axis=0) for j in j3]
                records.append(rec)
            (root / model).mkdir(parents=True, exist_ok=True)
            pd.DataFrame(records).to_pickle(root / model / f"{section}_withjv.pkl")
    with open(root / TRUTH_FILE, "wb") as f:
        pickle.dump(_plain(truth), f)
    (root / FIXTURE_MARKER).write_text(json.dumps({"dataset": "agora", "seed": seed, "resolution": resolution}) + "\n")
    return root


def _plain(obj):
    """``obj`` with numpy scalars as Python numbers (the truth file loads with posebank's safe_pickle)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def fixture_truth(root) -> dict:
    """What :func:`make_fixture` generated, by image: the section and per person its kind, the fits as written
    (numpy), the rest pelvis of each model, yaw and location."""
    from posebank.core import safe_pickle

    return safe_pickle.load(Path(root) / TRUTH_FILE)
