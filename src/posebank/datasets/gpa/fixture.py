"""A miniature GPA raw tree in the release's layout, for tests and demos (see :func:`make_fixture`)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from posebank.datasets.gpa import ANNOTATIONS, CAMERA_IDS, IMAGES, JOINT_INFO, image_path, mask_path

FIXTURE_MARKER = ".posebank-fixture"
IMAGE_SIZE = (640, 480)  # (width, height)
# the person's 34 joints standing, in mm in its own frame (right, up, forward; the floor at up = 0), in posepile's
# order: the right side given, the left mirrored
_RIGHT = {"rcla": (70, 1430, 0), "rsho": (180, 1420, -10), "relb": (205, 1140, -20), "rwri": (215, 890, 20),
          "rhan": (220, 810, 30), "rfin": (222, 730, 40), "rthu": (190, 850, 70), "rthu2": (175, 800, 95),
          "rhip": (100, 930, 0), "rkne": (105, 500, 25), "rank": (105, 80, -10), "rfoo": (105, 35, 70),
          "rtoe": (105, 20, 160)}
_MIDDLE = {"pelv": (0, 950, 0), "spin": (0, 1050, -10), "spi1": (0, 1150, -15), "spi2": (0, 1250, -15),
           "spi3": (0, 1350, -10), "neck": (0, 1480, 0), "head": (0, 1590, 25), "htop": (0, 1720, 0)}


def template() -> np.ndarray:
    """(34, 3) mm (right, up, forward) of the standing person."""
    out = np.zeros((JOINT_INFO.n_joints, 3))
    for name, i in JOINT_INFO.ids.items():
        if name in _MIDDLE:
            out[i] = _MIDDLE[name]
        elif name in _RIGHT:
            out[i] = _RIGHT[name]
        else:
            r = _RIGHT["r" + name[1:]]
            out[i] = (-r[0], r[1], r[2])
    return out


# the two cameras' (id in cam_ids_750k.npy, f, c, height of the camera above the floor in mm)
CAMERAS = (("2", (1010.0, 1004.0), (318.5, 243.0), 1000.0), ("4", (930.0, 934.0), (325.0, 236.5), 1100.0))
# the images in the annotation file's order: (image id, camera index, frame of that camera, istrains)
IMAGE_LIST = (
    ("0000001203", 0, 0, 1), ("0000001204", 1, 0, 1), ("0000001205", 0, 1, 1), ("0000001206", 1, 1, 1),
    ("0000001307", 0, 2, 1), ("0000010517", 1, 2, 0), ("0000010518", 0, 3, 1), ("0000010519", 1, 3, 0),
)
# mm moved into each frame of a camera's sequence: camera 0's frame 2 moves 30 mm (sampled out)
STEPS = ((0.0, 150.0, 30.0, 150.0), (0.0, 150.0, 150.0, 150.0))
HALO = 40  # the mask's outer rim: above posepile's threshold 10, below 128


def pose(camera: int, frame: int, rng_heading: float) -> np.ndarray:
    """(34, 3) joints in the camera's frame (x right, y down, z forward; mm): the template walking sideways,
    turned by ``rng_heading`` about the vertical, the arms swinging."""
    _, _, _, height = CAMERAS[camera]
    local = template()
    swing = 80.0 * np.sin(1.3 * frame + camera)
    for name in ("relb", "rwri", "rhan", "rfin", "rthu", "rthu2"):
        local[JOINT_INFO.ids[name], 2] += swing
        local[JOINT_INFO.ids["l" + name[1:]], 2] -= swing
    c, s = np.cos(rng_heading), np.sin(rng_heading)
    right, up, forward = local[:, 0], local[:, 1], local[:, 2]
    # the person faces the camera (its forward is -z) turned by the heading; its right is the image's left
    x = -(c * right + s * forward)
    z = s * right - c * forward
    offset = sum(STEPS[camera][: frame + 1]) - 300.0
    return np.stack([x + offset, height - up, z + 4500.0 + 200.0 * camera], axis=1)


def project(points, camera: int) -> np.ndarray:
    _, f, c, _ = CAMERAS[camera]
    return points[:, :2] / points[:, 2:3] * np.array(f) + np.array(c)


_LIMBS = ("pelv-spin-spi1-spi2-spi3-neck-head-htop", "spi3-rcla-rsho-relb-rwri-rhan-rfin", "rwri-rthu-rthu2",
          "spi3-lcla-lsho-lelb-lwri-lhan-lfin", "lwri-lthu-lthu2", "pelv-rhip-rkne-rank-rfoo-rtoe",
          "pelv-lhip-lkne-lank-lfoo-ltoe")


def _draw(uv: np.ndarray, image: np.ndarray, colour, width_scale: float = 1.0, extra: int = 0) -> None:
    ids = JOINT_INFO.ids
    for chain in _LIMBS:
        names = chain.split("-")
        width = int((18 if chain.startswith("pelv-spin") else 10) * width_scale) + extra
        for a, b in zip(names[:-1], names[1:]):
            pa, pb = np.round(uv[[ids[a], ids[b]]] * 16).astype(int)
            cv2.line(image, tuple(pa), tuple(pb), colour, width, cv2.LINE_AA, shift=4)


def make_fixture(root, seed: int = 0, images=IMAGE_LIST) -> Path:
    """Write a miniature GPA raw tree in the release's layout (after posepile's create_directory_structure).

    ``xyz_gpa12_mdp_cntind_crop_cam_c2g.json`` with one ``images``/``annotations`` entry per image of ``images``
    (``joint_cams`` 3 x 34 mm, ``f``, ``c``, ``istrains``), ``Sequence_ids/cam_ids_750k.npy`` (a string array of
    camera ids, indexed by image id, "" where no fixture image has that id), and per image
    ``Gaussian_img_jpg_new/<id[:6]>/<id[6:8]>/<id>.jpg`` (640 x 480: a textured background, the person as
    limbs, white marks at the 34 joints) and ``img_jpg_new_resnet101deeplabv3humanmask/.../<id>_mask.jpg`` (the
    limbs at 255 inside a rim at 40, on 0). Two cameras: the person walks sideways 150 mm per frame, except
    camera "2"'s frame 2, which moves 30 mm (sampled out); camera "4"'s last two images are test images.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    headings = rng.uniform(-0.5, 0.5, len(CAMERAS))
    yy, xx = np.mgrid[0:IMAGE_SIZE[1], 0:IMAGE_SIZE[0]]
    background = np.stack([(xx * 3 + yy) % 200 + 20, (yy * 2) % 180 + 40, (xx + 2 * yy) % 160 + 60], -1).astype(
        np.uint8)
    n_ids = max(int(i) for i, *_ in images) + 1
    cam_ids = np.full(n_ids, "", dtype="<U2")
    doc = {"images": [], "annotations": []}
    for k, (image_id, cam, frame, istrain) in enumerate(images):
        joints = np.round(pose(cam, frame, headings[cam]), 4)
        _, f, c, _ = CAMERAS[cam]
        cam_ids[int(image_id)] = CAMERAS[cam][0]
        doc["images"].append({"id": k, "file_name": f"{IMAGES}/{image_id}.jpg"})
        doc["annotations"].append({"id": k, "image_id": k, "joint_cams": joints.T.tolist(), "f": list(f),
                                   "c": list(c), "istrains": istrain})
        uv = project(joints, cam)
        image = background.copy()
        _draw(uv, image, (90, 120, 170))
        for pt in uv:
            cv2.circle(image, tuple(np.round(pt * 16).astype(int)), 3 * 16, (255, 255, 255), -1, cv2.LINE_AA,
                       shift=4)
        mask = np.zeros((IMAGE_SIZE[1], IMAGE_SIZE[0]), np.uint8)
        _draw(uv, mask, HALO, extra=8)
        _draw(uv, mask, 255)
        for rel, picture in ((image_path(image_id), image), (mask_path(image_id), mask)):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            ok, jpg = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 92])
            (root / rel).write_bytes(jpg.tobytes())
    (root / ANNOTATIONS).write_text(json.dumps(doc))
    (root / CAMERA_IDS).parent.mkdir(parents=True, exist_ok=True)
    np.save(root / CAMERA_IDS, cam_ids)
    (root / FIXTURE_MARKER).write_text(json.dumps({"dataset": "gpa", "seed": seed}) + "\n")
    return root
