"""A miniature 3DOH50K raw tree in the release's layout, for tests and demos (see :func:`make_fixture`)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from posebank.datasets.tdoh import ANNOTATIONS, IMAGES, MASKS, SPLIT_FOLDERS

FIXTURE_MARKER = ".posebank-fixture"
IMAGE_SIZE = (640, 480)  # w, h
# one standing person in metres in its own frame (x its right, y forward, z up; the soles at z = 0), LSP order
TEMPLATE_M = np.array([
    [0.10, 0.00, 0.08], [0.10, 0.03, 0.50], [0.10, 0.00, 0.95], [-0.10, 0.00, 0.95], [-0.10, 0.03, 0.50],
    [-0.10, 0.00, 0.08], [0.25, 0.08, 0.86], [0.22, 0.03, 1.13], [0.18, 0.00, 1.43], [-0.18, 0.00, 1.43],
    [-0.22, 0.03, 1.13], [-0.25, 0.08, 0.86], [0.00, 0.00, 1.50], [0.00, 0.03, 1.72]])
_LIMBS = ((0, 1, 2), (5, 4, 3), (2, 3), (6, 7, 8, 12), (11, 10, 9, 12), (2, 12), (3, 12), (12, 13))
# (split, image ids, camera of the studio per image, scale per image)
SPLITS = (("train", ("00000", "00001", "00002", "00003"), (0, 1, 0, 1), (7.0, 7.0, 6.8, 7.3)),
          ("test", ("00000", "00001"), (0, 1), (7.0, 7.1)))


def _rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _studio(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """Two cameras of the studio, 4 m from the middle at 1.3 m height looking at 0.9 m: (R world->cam, t) in m."""
    out = []
    target = np.array([0.0, 0.0, 0.9])
    for azimuth in (rng.uniform(-0.3, 0.3), np.pi / 2 + rng.uniform(-0.3, 0.3)):
        eye = np.array([4.0 * np.cos(azimuth), 4.0 * np.sin(azimuth), 1.3])
        z = (target - eye) / np.linalg.norm(target - eye)
        x = np.cross(z, [0.0, 0.0, 1.0])
        x /= np.linalg.norm(x)
        r = np.stack([x, np.cross(z, x), z])
        out.append((r, -r @ eye))
    return out


def intrinsic_matrix() -> np.ndarray:
    return np.array([[620.0, 0.0, 322.5], [0.0, 618.0, 236.0], [0.0, 0.0, 1.0]])


def _draw(uv: np.ndarray, image: np.ndarray, colour, marks: bool) -> np.ndarray:
    for chain in _LIMBS:
        for a, b in zip(chain[:-1], chain[1:]):
            pa, pb = np.round(uv[[a, b]] * 16).astype(int)
            cv2.line(image, tuple(pa), tuple(pb), colour, 14, cv2.LINE_AA, shift=4)
    cv2.circle(image, tuple(np.round(uv[13] * 16).astype(int)), 16 * 16, colour, -1, cv2.LINE_AA, shift=4)
    if marks:
        for pt in uv:
            cv2.circle(image, tuple(np.round(pt * 16).astype(int)), 3 * 16, (255, 255, 255), -1, cv2.LINE_AA,
                       shift=4)
    return image


def make_fixture(root, seed: int = 0, splits=SPLITS) -> Path:
    """Write a miniature 3DOH50K raw tree in the release's layout.

    ``trainset/`` with four images and ``testset/`` with two: ``images/<id>.jpg`` (640 x 480: a textured
    background, the person as limbs, white marks at its 14 LSP joints), ``masks/<id>.png`` (train only: the limbs in
    white on black, three channels) and ``annots.json`` with the release's fields per image id. The people stand in
    a studio of two cameras (f ~ 620 px) with the world z up, in the calibration's units: metres x the annotation's
    ``scale`` (6.8 to 7.3); ``lsp_joints_3d`` is the person in the camera frame in those units, ``extri`` the camera
    with its translation in them, ``lsp_joints_2d`` the joints projected by ``intri`` (4 decimals), ``bbox`` the
    joints' box grown by 20 px. ``pose``, ``betas``, ``trans``, ``smpl_joints_2d`` and ``smpl_joints_3d`` have the
    release's shapes but no SMPL fit behind them (zeros; posebank does not read them).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    cameras = _studio(rng)
    k = intrinsic_matrix()
    w, h = IMAGE_SIZE
    yy, xx = np.mgrid[0:h, 0:w]
    for s, (split, ids, cams, scales) in enumerate(splits):
        folder = root / SPLIT_FOLDERS[split]
        (folder / IMAGES).mkdir(parents=True, exist_ok=True)
        if split == "train":
            (folder / MASKS).mkdir(parents=True, exist_ok=True)
        annotations = {}
        for n, (image_id, cam, scale) in enumerate(zip(ids, cams, scales)):
            heading = rng.uniform(0, 2 * np.pi)
            pos = np.array([*rng.uniform(-0.4, 0.4, 2), 0.0])
            world_m = TEMPLATE_M @ _rot_z(heading).T + pos
            world_m[6:12] += rng.uniform(-0.05, 0.05, (6, 3))  # the arms moved a little
            r, t = cameras[cam]
            cam_m = world_m @ r.T + t
            uv = cam_m[:, :2] / cam_m[:, 2:] @ k[:2, :2].T + k[:2, 2]
            uv = np.round(uv, 4)
            extri = np.eye(4)
            extri[:3, :3], extri[:3, 3] = r, t * scale
            x1, y1 = np.maximum(uv.min(axis=0) - 20, 0)
            x2, y2 = np.minimum(uv.max(axis=0) + 20, [w - 1, h - 1])
            annotations[image_id] = {
                "extri": extri.tolist(), "intri": k.tolist(),
                "img_path": f"{IMAGES}\\{image_id}.jpg",
                "bbox": [[float(x1), float(y1)], [float(x2), float(y2)]],
                "betas": [[0.0] * 10], "pose": [[0.0] * 72], "trans": [[0.0] * 3], "scale": [float(scale)],
                "smpl_joints_2d": [[0.0, 0.0]] * 24, "smpl_joints_3d": [[0.0, 0.0, 0.0]] * 24,
                "lsp_joints_2d": uv.tolist(), "lsp_joints_3d": (cam_m * scale).tolist(),
                "mask_path": f"{MASKS}\\{image_id}.png" if split == "train" else "",
            }
            background = np.stack([(xx * (3 + s) + yy + 40 * n) % 200 + 20, (yy * 2) % 180 + 40,
                                   (xx + 2 * yy) % 160 + 60], -1).astype(np.uint8)
            image = _draw(uv, background, (40, 90, 200), True)
            ok, jpg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
            (folder / IMAGES / f"{image_id}.jpg").write_bytes(jpg.tobytes())
            if split == "train":
                mask = _draw(uv, np.zeros((h, w, 3), np.uint8), (255, 255, 255), False)
                cv2.imwrite(str(folder / MASKS / f"{image_id}.png"), mask)
        (folder / ANNOTATIONS).write_text(json.dumps(annotations))
    (root / FIXTURE_MARKER).write_text(json.dumps({"dataset": "tdoh", "seed": seed}) + "\n")
    return root
