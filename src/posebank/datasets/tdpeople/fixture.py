"""A miniature 3DPeople raw tree in the release's layout, for tests and demos (see :func:`make_fixture`)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from posebank.datasets.tdpeople import (
    CAMERAS,
    DM_TO_MM,
    IMAGE_SIZE,
    N_RAW_JOINTS,
    RGB,
    SEGMENTATION,
    SELECTED_JOINTS,
    SKELETON,
    intrinsic_matrix,
)

FIXTURE_MARKER = ".posebank-fixture"
# (subject, action, render folder): the folder names of the release
SEQUENCES = (
    ("woman17", "02_04_jump", "wpskin08_bottom70_glasses01_hair13_shoes19_top23_none_none_background1928"),
    ("man03", "07_01_walk", "mpskin02_bottom12_none_hair05_shoes03_top41_none_none_background0311"),
)
BACKGROUND = 153
# the 67 joints of the rig (skeleton_joints_ids_order.txt), one standing pose in mm in the person's own frame
# (left, backward, up), rounded from the 3D sample frame of the release's vis_dataset.ipynb (pelvis at the origin)
_TEMPLATE = np.array([int(v) for v in """
0,0,1000 1,-4,1102 -3,-19,1201 -8,-36,1291 -11,-38,1471 -10,-68,1553 -60,-138,1628 4,-152,1632 -24,-71,1724
37,-40,1417 145,-28,1424 184,8,1176 112,-210,1021 87,-239,1026 61,-269,1023 46,-293,1017 30,-314,1016
90,-296,991 85,-325,968 80,-343,953 76,-362,934 100,-288,971 96,-315,951 89,-338,930 85,-361,911 107,-274,958
104,-296,939 96,-320,917 92,-339,900 110,-255,948 106,-279,926 99,-293,911 98,-309,897 -57,-30,1413
-161,6,1416 -187,37,1165 -159,-182,1000 -159,-226,929 -158,-247,910 -156,-261,896 -157,-278,880 -157,-245,939
-158,-266,921 -155,-289,900 -152,-311,882 -152,-259,951 -152,-285,932 -148,-311,910 -146,-335,893
-142,-269,970 -140,-300,947 -138,-318,932 -136,-338,914 -133,-212,1005 -107,-244,1003 -93,-269,996
-77,-292,992 94,20,930 66,-69,502 57,55,88 67,-65,3 95,-161,-1 -92,31,933 -68,-75,501 -56,35,85 -62,-86,8
-91,-183,4""".replace(",", " ").split()], np.float64).reshape(N_RAW_JOINTS, 3)
# drawn limbs (raw rows) and their segmentation colours (BGR): torso, head, arms, hands, legs
_LIMBS = (
    ((0, 1, 2, 3, 4), (0, 0, 128), 34), ((4, 5, 8), (0, 64, 128), 30), ((3, 9, 10, 11, 12), (128, 0, 128), 16),
    ((3, 33, 34, 35, 36), (255, 0, 0), 16), ((12, 13, 14, 15, 16), (0, 128, 0), 8),
    ((36, 53, 54, 55, 56), (0, 128, 0), 8),
    ((0, 57, 58, 59, 60, 61), (128, 255, 128), 20), ((0, 62, 63, 64, 65, 66), (0, 128, 128), 20),
)


def _rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _person(n_frames: int, start_mm, heading: float, steps_mm) -> np.ndarray:
    """(n_frames + 1, 67, 3) world mm (z up, floor z = 0): the template walking along ``heading``, frame f moved
    ``steps_mm[f]`` past frame f - 1, the arms swinging."""
    forward = np.array([np.cos(heading), np.sin(heading), 0.0])
    # the template's person faces -y with its left at +x: turn it to face ``forward``
    turn = _rot_z(heading + np.pi / 2)
    out = np.zeros((n_frames + 1, N_RAW_JOINTS, 3))
    pos = np.array([start_mm[0], start_mm[1], 0.0])
    for f in range(n_frames + 1):
        pos = pos + steps_mm[f] * forward
        local = _TEMPLATE.copy()
        swing = 60.0 * np.sin(1.1 * f)
        local[11:33, 1] -= swing  # left forearm and hand: backward in the template frame
        local[35:57, 1] += swing
        out[f] = pos + local @ turn.T
    return out


def _cameras(rng: np.random.Generator, centre) -> list[tuple[np.ndarray, np.ndarray]]:
    """Four cameras around ``centre`` (world mm), ~4.5 m away, looking at 0.9 m height: (R world->cam, t cam)."""
    out = []
    target = np.array([centre[0], centre[1], 900.0])
    for i in range(len(CAMERAS)):
        azimuth = np.pi / 2 * i + rng.uniform(-0.3, 0.3)
        eye = target + [4500 * np.cos(azimuth), 4500 * np.sin(azimuth), rng.uniform(100, 600)]
        z = target - eye
        z /= np.linalg.norm(z)
        x = np.cross(z, [0.0, 0.0, 1.0])
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        r = np.stack([x, y, z])
        out.append((r, -r @ eye))
    return out


def _project(points_mm, r, t) -> np.ndarray:
    cam = points_mm @ r.T + t
    uv = cam[:, :2] / cam[:, 2:3] @ intrinsic_matrix()[:2, :2].T + intrinsic_matrix()[:2, 2]
    return uv


def _draw(pts: np.ndarray, background: np.ndarray, colours: bool) -> np.ndarray:
    img = background.copy()
    for chain, colour, width in _LIMBS:
        c = colour if colours else tuple(int(v) for v in np.clip(np.array(colour) * 0.6 + 60, 0, 255))
        for a, b in zip(chain[:-1], chain[1:]):
            pa, pb = np.round(pts[[a, b]] * 16).astype(int)
            cv2.line(img, tuple(pa), tuple(pb), c, width, cv2.LINE_AA if not colours else cv2.LINE_8, shift=4)
    head = np.round(pts[5] * 16).astype(int)
    cv2.circle(img, tuple(head), 14 * 16, (0, 64, 128) if colours else (90, 120, 170), -1,
               cv2.LINE_8 if colours else cv2.LINE_AA, shift=4)
    if not colours:
        for pt in pts[list(SELECTED_JOINTS)]:
            cv2.circle(img, tuple(np.round(pt * 16).astype(int)), 3 * 16, (255, 255, 255), -1, cv2.LINE_AA,
                       shift=4)
    return img


def make_fixture(root, seed: int = 0, sequences=SEQUENCES, n_frames: int = 3, cameras=CAMERAS) -> Path:
    """Write a miniature 3DPeople raw tree in the release's layout.

    Per sequence (subject, action, render folder) and camera: ``rgb/<s>/<a>/<cam>/<render>/<frame>.jpg`` for frames
    0001 .. ``n_frames`` (640 x 480 renders: a textured background, the person as coloured limbs, white marks at
    the 29 joints posepile selects), ``skeleton/<s>/<a>/<cam>/<frame>.txt`` for frames 0000 .. ``n_frames`` (67
    rows "u v x y z": the joint projected by the camera in pixels and the world joint in decimetres, six
    decimals; 0000 has no image, as the notebook suggests) and ``segmentation_clothes/<s>/<a>/<cam>/<frame>.png`` (the
    limbs in flat colours on grey 153). Cameras are f = 700 px, centre (320, 240), four around the person, fixed
    per sequence. The first person walks 150 mm per frame; the second moves 30 mm from frame 1 to 2 (its frame 2
    is sampled out) and 150 mm otherwise. The second sequence's camera04 segmentation of frame 0003 is all
    background (the person left out as having no pixels).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    background = np.zeros((IMAGE_SIZE[1], IMAGE_SIZE[0], 3), np.uint8)
    yy, xx = np.mgrid[0:IMAGE_SIZE[1], 0:IMAGE_SIZE[0]]
    for k, (subject, action, render) in enumerate(sequences):
        heading = rng.uniform(0, 2 * np.pi)
        steps = np.full(n_frames + 1, 150.0)
        steps[0] = 0.0
        if k == 1 and n_frames >= 2:
            steps[2] = 30.0
        start = rng.uniform(-300, 300, 2)
        people = _person(n_frames, start, heading, steps)
        centre = people[:, 0, :2].mean(axis=0)
        base = np.stack([(xx * (3 + k) + yy) % 200 + 20, (yy * 2) % 180 + 40, (xx + 2 * yy) % 160 + 60], -1)
        background[:] = base.astype(np.uint8)
        for cam, (r, t) in zip(cameras, _cameras(rng, centre)):
            rel = f"{subject}/{action}/{cam}"
            for top in (SKELETON, SEGMENTATION):
                (root / top / rel).mkdir(parents=True, exist_ok=True)
            (root / RGB / rel / render).mkdir(parents=True, exist_ok=True)
            for f in range(n_frames + 1):
                world = np.round(people[f] / DM_TO_MM, 6)
                uv = np.round(_project(world * DM_TO_MM, r, t), 6)
                rows = np.concatenate([uv, world], axis=1)
                (root / SKELETON / rel / f"{f:04d}.txt").write_text(
                    "".join(" ".join(f"{v:.6f}" for v in row) + "\n" for row in rows))
                if f == 0:
                    continue
                grey = np.full_like(background, BACKGROUND)
                seg = grey if (k == 1 and cam == "camera04" and f == 3) else _draw(uv, grey, True)
                cv2.imwrite(str(root / SEGMENTATION / rel / f"{f:04d}.png"), seg)
                ok, jpg = cv2.imencode(".jpg", _draw(uv, background, False), [cv2.IMWRITE_JPEG_QUALITY, 90])
                (root / RGB / rel / render / f"{f:04d}.jpg").write_bytes(jpg.tobytes())
    (root / FIXTURE_MARKER).write_text(json.dumps({"dataset": "tdpeople", "seed": seed}) + "\n")
    return root
