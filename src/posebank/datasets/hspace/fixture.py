"""A miniature HSPACE raw tree in the release's layout, for tests and demos (see :func:`make_fixture`)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from posebank.datasets.hspace import GHUM_JOINTS, JOINT_INFO, SELECTED_JOINTS, TRAIN_DIR
from posebank.datasets.hspace.tfrecord import encode_example, write_records

FIXTURE_MARKER = ".posebank-fixture"
IMAGE_SIZE = (1280, 720)  # the fixture's frame size
# file stem -> number of records; the last one's people all stand still in record 1
FILES = {"hspace_fixture_000": 4, "hspace_fixture_001": 3}
FOCAL = (1000.0, 1001.5)
CENTRE = (641.25, 358.75)
CAMERA_HEIGHT_M = 1.0  # the floor is y = +1 m in the camera frame (y down)
BODY_COLOUR = (40, 40, 200)  # BGR: a red body, to check the channel order
MARK_RADIUS = 4.0

# a standing person, the 35 selected joints: (left, forward, up) metres in the person's own frame
_SELECTED = {
    "pelv": (0, 0, 0.95), "spin1": (0, -0.01, 1.05), "spin2": (0, -0.015, 1.17), "spin3": (0, 0, 1.30),
    "neck": (0, 0.01, 1.48), "head": (0, 0.03, 1.58), "head2": (0, 0.05, 1.70), "lbrow1": (0.03, 0.10, 1.67),
    "rbrow1": (-0.03, 0.10, 1.67), "lcla": (0.08, 0.02, 1.42), "lsho": (0.18, 0, 1.40), "lelb": (0.30, 0.02, 1.12),
    "lwri": (0.33, 0.06, 0.88), "lmiddle1": (0.34, 0.07, 0.80), "lmiddle3": (0.345, 0.08, 0.74),
    "lthu": (0.30, 0.12, 0.83), "lhip": (0.10, 0, 0.92), "lkne": (0.11, 0.02, 0.50), "lank": (0.12, -0.02, 0.09),
    "lhee": (0.12, -0.07, 0.04), "lfoo": (0.12, 0.08, 0.03), "ltoe": (0.12, 0.16, 0.02)}
for _n, (_l, _f, _u) in list(_SELECTED.items()):
    if _n.startswith("l"):
        _SELECTED["r" + _n[1:]] = (-_l, _f, _u)


def template() -> np.ndarray:
    """(63, 3) the GHUM joints of the standing person (left, forward, up) m; the joints posepile does not select
    sit a few cm from a selected neighbour (so a wrong selection shows)."""
    out = np.zeros((len(GHUM_JOINTS), 3))
    for i, name in enumerate(GHUM_JOINTS):
        if name in _SELECTED:
            out[i] = _SELECTED[name]
        else:
            side = name[0] if name[0] in "lr" else ""
            base = f"{side}brow1" if "brow" in name else f"{side}wri"
            out[i] = np.array(_SELECTED[base]) + [0.02 * (i % 3) * (1 if side == "l" else -1), 0.03, -0.04]
    return out


def _person(n_records: int, start, heading: float, speed_m: float, still: set) -> np.ndarray:
    """(n, 63, 3) camera-frame metres of a person walking on the floor; in the records of ``still`` it does not
    move."""
    direction = np.array([np.cos(heading), 0.0, np.sin(heading)])
    up = np.array([0.0, -1.0, 0.0])
    left = np.cross(up, direction)
    names = {n: i for i, n in enumerate(GHUM_JOINTS)}
    pos = np.array([start[0], CAMERA_HEIGHT_M, start[1]])
    out = np.zeros((n_records, len(GHUM_JOINTS), 3))
    for r in range(n_records):
        local = template()
        if r > 0 and r not in still:
            pos = pos + speed_m * direction
            swing = 0.12 * np.sin(1.3 * r)
            local[[names[n] for n in ("lelb", "lwri", "rkne", "rank")], 1] += swing
            local[[names[n] for n in ("relb", "rwri", "lkne", "lank")], 1] -= swing
        elif r in still and r > 0:
            out[r] = out[r - 1]
            continue
        out[r] = pos + local[:, :1] * left + local[:, 1:2] * direction + local[:, 2:3] * up
    return out


def project(points_m, intrinsics) -> np.ndarray:
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    p = np.asarray(points_m, np.float64)
    return np.stack([fx * p[:, 0] / p[:, 2] + cx, fy * p[:, 1] / p[:, 2] + cy], axis=1)


def _draw(people, intrinsics, size):
    """The frame (BGR) and the label image: each person's limbs labelled ``mask_id``, its head ``mask_id - 1``."""
    w, h = size
    image = np.full((h, w, 3), 30, np.uint8)
    labels = np.zeros((h, w), np.uint8)
    marks = []
    for joints_m, mask_id in people:
        sel = joints_m[list(SELECTED_JOINTS)]
        pts = project(sel, intrinsics)
        depth = float(np.mean(sel[:, 2]))
        thick = max(2, int(round(intrinsics[0] * 0.09 / depth)))
        for a, b in JOINT_INFO.edges:
            pa, pb = np.round(pts[[a, b]] * 16).astype(int)
            cv2.line(labels, tuple(pa), tuple(pb), int(mask_id), thick, cv2.LINE_8, shift=4)
            cv2.line(image, tuple(pa), tuple(pb), BODY_COLOUR, thick, cv2.LINE_AA, shift=4)
        head = np.round(pts[JOINT_INFO.ids["head2"]] * 16).astype(int)
        cv2.circle(labels, tuple(head), int(intrinsics[0] * 0.11 / depth * 16), int(mask_id) - 1, -1, cv2.LINE_8,
                   shift=4)
        marks.append(pts)
    for pts in marks:
        for pt in pts:
            cv2.circle(image, tuple(np.round(pt * 16).astype(int)), int(MARK_RADIUS * 16), (255, 255, 255), -1,
                       cv2.LINE_AA, shift=4)
    return image, labels, marks


def make_fixture(root, seed: int = 0, files=None) -> Path:
    """Write a miniature HSPACE raw tree: ``2021_01/train/<stem>.tfrecord`` files of tf.train.Example records
    with the fields posepile reads (``image/rgb`` a PNG, ``camera_intrinsics`` fx fy cx cy, ``number_of_rigged_
    characters``, ``RIGGED_<i>/joints_3d`` the 63 GHUM joints in metres in the camera frame, ``RIGGED_<i>/mask_id``,
    ``character_masks`` a label PNG), in TFRecord framing with CRC-32C.

    Three characters per record, drawn as red stick figures with white marks at the 35 selected joints projected
    by the record's intrinsics: character 0 walks 15 cm per record; character 1 stands still until record 2 and
    then walks; character 2 walks 25 m away (its mask box is under 100 px: left out). In the last file every
    character stands still in record 1. Character ``i``'s limbs are labelled ``2 i + 2`` (its ``mask_id``) and its
    head ``2 i + 1``. The marks (pixel positions, posepile's joint order) are written as JSON into the
    ``.posebank-fixture`` marker file."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    files = dict(FILES if files is None else files)
    (root / TRAIN_DIR).mkdir(parents=True, exist_ok=True)
    marks: dict = {}
    last = list(files)[-1]
    for stem, n in files.items():
        all_still = {1} if stem == last else set()
        people = [
            _person(n, (rng.uniform(-0.9, -0.7), rng.uniform(3.8, 4.2)), -np.pi / 2 - 0.3 + rng.uniform(-0.1, 0.1),
                    0.15, all_still),
            _person(n, (rng.uniform(0.7, 0.9), rng.uniform(4.3, 4.7)), -np.pi / 2 + 0.3 + rng.uniform(-0.1, 0.1),
                    0.14, all_still | {1, 2}),
            _person(n, (rng.uniform(-0.5, 0.5), 25.0), -np.pi / 2 + rng.uniform(-0.2, 0.2), 0.15, all_still),
        ]
        records = []
        for r in range(n):
            intrinsics = np.array([FOCAL[0], FOCAL[1], CENTRE[0] + r * 0.5, CENTRE[1]], np.float32)
            joints = [np.round(p[r], 5).astype(np.float32) for p in people]
            image, labels, drawn = _draw([(j.astype(np.float64), 2 * i + 2) for i, j in enumerate(joints)],
                                         intrinsics, IMAGE_SIZE)
            features = {"image/rgb": [cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes()],
                        "camera_intrinsics": intrinsics, "number_of_rigged_characters": np.array([len(joints)]),
                        "character_masks": [cv2.imencode(".png", labels)[1].tobytes()]}
            for i, j in enumerate(joints):
                features[f"RIGGED_{i}/joints_3d"] = j.reshape(-1)
                features[f"RIGGED_{i}/mask_id"] = np.array([2 * i + 2])
            records.append(encode_example(features))
            marks.setdefault(stem, {})[str(r)] = {str(i): pts.tolist() for i, pts in enumerate(drawn)}
        write_records(root / TRAIN_DIR / f"{stem}.tfrecord", records)
    (root / FIXTURE_MARKER).write_text(json.dumps({"dataset": "hspace", "seed": seed, "marks": marks}) + "\n")
    return root


def fixture_marks(root) -> dict:
    """The drawn marks: ``{file stem: {record: {character: (35, 2) px}}}``."""
    marker = json.loads((Path(root) / FIXTURE_MARKER).read_text())
    return {stem: {int(r): {int(i): np.array(p) for i, p in people.items()} for r, people in recs.items()}
            for stem, recs in marker["marks"].items()}
