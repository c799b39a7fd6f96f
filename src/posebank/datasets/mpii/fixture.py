"""A miniature MPII raw tree in the release's layout, for tests and demos (see :func:`make_fixture`).

The .mat is written with scipy.io.savemat in the release's struct layout (:mod:`posebank.datasets.mpii.release`
lists it): a 1x1 RELEASE struct whose ``annolist`` is a 1xN struct array of ``image``/``annorect``/``frame_sec``/
``vididx``, persons as 1xP ``annorect`` struct arrays with ``x1 y1 x2 y2 annopoints scale objpos``, joints as 1xK
``point`` struct arrays. Values carry the storage types scipy reads back from the release (MATLAB compresses
integer-valued doubles in the smallest integer type): uint8/uint16 head boxes, objpos and integer coordinates,
float64 fractional head-top / upper-neck coordinates and scales, uint8 joint ids, and ``is_visible`` as '0'/'1'
strings, uint8 numbers or empty.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import scipy.io

from posebank.core.bodymodel import rodrigues
from posebank.core.jpeg import encode_jpeg
from posebank.datasets.mpii import IMAGES, JOINT_INFO, MAT_FILE, TRAIN_JSON, VAL_JSON
from posebank.datasets.mpii.eft import HOURGLASS_SHIFT

MARK_RADIUS = 3.0
FIXTURE_MARKER = ".posebank-fixture"
EFT_FILE = "eft_fit/MPII_ver01.json"
LAYOUTS = {"hrnet": (TRAIN_JSON[0], VAL_JSON[0]), "mmpose": (TRAIN_JSON[1], VAL_JSON[1])}
SIZES = ((400, 300), (360, 480), (480, 360))
VIDEOS = ("aAOusnrSsHI", "8wCsnaD9oSk", "Lq-l3IrGcbk")

# a standing person facing the camera, MPII order, in units of its height: (x right of centre, y down from the top)
_TEMPLATE = np.array([
    (-0.08, 0.97), (-0.07, 0.72), (-0.07, 0.48), (0.07, 0.48), (0.07, 0.72), (0.08, 0.97), (0.0, 0.48),
    (0.0, 0.22), (0.01, 0.17), (-0.01, 0.0), (-0.23, 0.47), (-0.2, 0.33), (-0.12, 0.21), (0.12, 0.21),
    (0.2, 0.33), (0.23, 0.47)])
HEAD, NECK = 9, 8
ANKLES = (0, 5)
LEGS = (0, 1, 2, 3, 4, 5)

# the images in annolist order: (img_train, person kinds, single_person (1-based), activity (cat, act, id))
#   full: 16 joints; no_ankles: 14; upper: 10 (no leg joints) and no is_visible field; one_joint: the head top only;
#   unannotated: annopoints []; no_points: annopoints without a point; duplicate_id / bad_id: rule violations;
#   test: a test image's rect (scale and objpos only); "val" marks a person of the val file
RECIPES = (
    (True, ("full:val",), (1,), ("sports", "curling", 1)),
    (True, ("full", "no_ankles", "unannotated"), (2,), ("occupation", "carpentry", 4)),
    (False, ("test", "test"), (1, 2), ("", "", -1)),
    (True, ("duplicate_id", "full:val"), (1, 2), ("dancing", "ballet", 7)),
    (True, ("test", "test"), (), ("", "", -1)),  # a training image whose annorect has no annopoints field
    (True, ("no_points",), (1,), ("sports", "rock climbing", 2)),
    (True, ("bad_id", "full"), (2,), ("sports", "curling", 1)),
    (False, (), (), ("", "", -1)),
    (True, ("full", "upper"), (1, 2), ("home activities", "vacuuming", 9)),
    (True, ("one_joint",), (1,), ("", "", -1)),
)
EFT_PEOPLE = ((1, 0), (6, 1), (8, 0), (8, 1))  # (image, rect) of the training persons EFT fitted


def _cell(*values) -> np.ndarray:
    out = np.empty((len(values), 1), object)
    for i, v in enumerate(values):
        out[i, 0] = v
    return out


def _struct(shape, fields, records) -> np.ndarray:
    """A MATLAB struct array: ``records`` (dicts) in MATLAB's column-major order."""
    arr = np.empty(shape, dtype=[(f, object) for f in fields])
    for k, rec in enumerate(records):
        idx = np.unravel_index(k, shape, order="F")
        for f in fields:
            arr[f][idx] = rec[f]
    return arr


def _num(value) -> np.ndarray:
    """A scalar stored the way MATLAB stores it: integer values in the smallest integer type, else double."""
    v = float(value)
    if v == round(v):
        if 0 <= v < 256:
            return np.array([[v]], np.uint8)
        if 0 <= v < 65536:
            return np.array([[v]], np.uint16)
        return np.array([[v]], np.int16)
    return np.array([[v]], np.float64)


EMPTY = np.zeros((0, 0))


def _visible(value, as_text: bool) -> np.ndarray:
    if value is None:
        return EMPTY
    return np.array([str(value)]) if as_text else np.array([[value]], np.uint8)


def _person_truth(rng, size, x_centre: float, height: float) -> dict:
    """Joints (0-based truth pixels), objpos, scale and head box of one person."""
    w, h = size
    top = rng.uniform(0.08, 0.92) * (h - height * 1.02)
    pts = np.stack([x_centre + _TEMPLATE[:, 0] * height, top + _TEMPLATE[:, 1] * height], axis=1)
    pts += rng.normal(0, 0.01 * height, pts.shape)
    pts = np.round(pts)
    pts[[HEAD, NECK]] = np.round(pts[[HEAD, NECK]] + rng.uniform(-0.5, 0.5, (2, 2)), 4)
    pts[:, 0] = np.clip(pts[:, 0], 4, w - 5)
    pts[:, 1] = np.clip(pts[:, 1], 4, h - 5)
    scale = 1.5 * height / 200 * rng.uniform(0.97, 1.03)
    objpos = np.round([x_centre + rng.normal(0, 2), top + 0.42 * height + rng.normal(0, 2)])
    mid, side = (pts[HEAD] + pts[NECK]) / 2, 1.2 * np.linalg.norm(pts[HEAD] - pts[NECK])
    head = np.round([mid[0] - side / 2, mid[1] - side / 2, mid[0] + side / 2, mid[1] + side / 2])
    return {"joints": pts, "objpos": objpos, "scale": float(scale), "head": head}


def _points(kind: str, truth: dict, rng, as_text: bool):
    """The ``point`` struct array of one person, the labelled joint ids and their visibilities (None = empty)."""
    ids = list(range(16))
    if kind == "no_ankles":
        ids = [j for j in ids if j not in ANKLES]
    elif kind == "upper":
        ids = [j for j in ids if j not in LEGS]
    elif kind == "one_joint":
        ids = [HEAD]
    elif kind == "no_points":
        ids = []
    vis = {j: (None if j in (HEAD, NECK) and rng.random() < 0.5 else int(rng.random() < 0.8)) for j in ids}
    stored_ids = list(ids)
    if kind == "duplicate_id":
        stored_ids[3] = stored_ids[2]
    elif kind == "bad_id":
        stored_ids[-1] = 16
    order = rng.permutation(len(ids))  # the release does not list the joints in id order
    fields = ("id", "x", "y") if kind == "upper" else ("id", "x", "y", "is_visible")
    recs = []
    for k in order:
        j = ids[k]
        x, y = truth["joints"][j] + 1  # the release's pixels are 1-based
        recs.append({"id": _num(stored_ids[k]), "x": _num(x), "y": _num(y),
                     "is_visible": _visible(vis[j], as_text)})
    if not recs:
        return EMPTY, {}
    return _struct((1, len(recs)), fields, recs), ({} if kind == "upper" else vis)


def _draw(size, people) -> np.ndarray:
    w, h = size
    img = np.full((h, w, 3), 40, np.uint8)
    edges = JOINT_INFO.edges
    for pts in people:
        for a, b in edges:
            if np.isfinite(pts[[a, b]]).all():
                pa, pb = np.round(pts[[a, b]] * 16).astype(int)
                cv2.line(img, tuple(pa), tuple(pb), (110, 110, 110), 3, cv2.LINE_AA, shift=4)
    for pts in people:
        for pt in pts[np.isfinite(pts).all(axis=1)]:
            cv2.circle(img, tuple(np.round(pt * 16).astype(int)), int(MARK_RADIUS * 16), (255, 255, 255), -1,
                       cv2.LINE_AA, shift=4)
    return img


def make_fixture(root, seed: int = 0, layout: str = "hrnet", mat: bool = True, json_files: bool = True,
                 eft: bool = True) -> Path:
    """Write a miniature MPII raw tree: ``images/`` (JPEGs in which white marks sit at the labelled joints, 0-based
    pixels, over grey stick figures), the release's ``mpii_human_pose_v1_u12_1.mat`` (``mat``) with the images of
    :data:`RECIPES`, the json conversion of the same persons (``json_files``; ``layout`` hrnet: ``annot/train.json``
    and ``annot/valid.json``, mmpose: ``annotations/mpii_{train,val}.json``; center/scale = objpos/scale, joints
    [-1, -1] with joints_vis 0 where not labelled, written as the originals: indent 4, scale to 6 decimals) and, with
    ``eft``, EFT fits of the persons :data:`EFT_PEOPLE` plus two that match no person (``eft_fit/MPII_ver01.json``).
    The truth (joints, visibilities, image sizes, fitted poses) is written as JSON into the ``.posebank-fixture``
    marker."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    (root / IMAGES).mkdir(parents=True, exist_ok=True)
    names = sorted({f"{int(n):09d}.jpg" for n in rng.choice(10 ** 8, 40, replace=False)})
    names = [names[i] for i in rng.permutation(len(names))[:len(RECIPES)]]  # annolist is not sorted by name
    annolist, acts, singles, truth = [], [], [], []
    train_entries, val_entries = [], []
    for i, (train, kinds, single, (cat, act, act_id)) in enumerate(RECIPES):
        size = SIZES[i % len(SIZES)]
        n = len(kinds)
        heights = rng.uniform(0.5, 0.7, n) * size[1] / np.sqrt(max(n, 1))
        xs = (np.arange(n) + 0.5) / max(n, 1) * size[0]
        rects, drawn, people_truth = [], [], []
        for j, kind_spec in enumerate(kinds):
            kind, _, tag = kind_spec.partition(":")
            t = _person_truth(rng, size, xs[j], heights[j])
            objpos = {"x": _num(t["objpos"][0] + 1), "y": _num(t["objpos"][1] + 1)}
            rec = {"scale": np.array([[t["scale"]]]), "objpos": _struct((1, 1), ("x", "y"), [objpos])}
            labelled = np.full((16, 2), np.nan)
            vis = {}
            if kind == "test":
                rect = rec
            else:
                head = t["head"] + 1
                rect = {**rec, **{k: _num(v) for k, v in zip(("x1", "y1", "x2", "y2"), head)}}
                if kind == "unannotated":
                    rect["annopoints"] = EMPTY
                else:
                    points, vis = _points(kind, t, rng, as_text=bool((i + j) % 2))
                    rect["annopoints"] = _struct((1, 1), ("point",), [{"point": points}])
                    ids = list(vis) if kind != "upper" else [k for k in range(16) if k not in LEGS]
                    labelled[ids] = t["joints"][ids]
            rects.append(rect)
            drawn.append(labelled)
            people_truth.append({"kind": kind, "val": tag == "val", "joints": labelled.tolist(),
                                 "visibility": {str(k): v for k, v in vis.items()}, "objpos": t["objpos"].tolist(),
                                 "scale": t["scale"], "head_box": t["head"].tolist()})
            if train and kind not in ("test", "unannotated", "duplicate_id", "bad_id"):
                file_joints = np.where(np.isfinite(labelled), labelled + 1, -1.0)
                (val_entries if tag == "val" else train_entries).append({
                    "joints_vis": np.isfinite(labelled).all(axis=1).astype(int).tolist(),
                    "joints": [[round(float(x), 4), round(float(y), 4)] for x, y in file_joints],
                    "image": names[i], "scale": round(t["scale"], 6),
                    "center": [float(t["objpos"][0] + 1), float(t["objpos"][1] + 1)]})
        if not rects:
            annorect = EMPTY
        else:
            fields = ("scale", "objpos") if "x1" not in rects[0] else (
                "x1", "y1", "x2", "y2", "annopoints", "scale", "objpos")
            annorect = _struct((1, len(rects)), fields, rects)
        vididx = int(rng.integers(1, len(VIDEOS) + 1))
        annolist.append({"image": _struct((1, 1), ("name",), [{"name": np.array([names[i]])}]),
                         "annorect": annorect, "frame_sec": _num(int(rng.integers(1, 200))), "vididx": _num(vididx)})
        acts.append({"cat_name": np.array([cat]) if cat else EMPTY, "act_name": np.array([act]) if act else EMPTY,
                     "act_id": np.array([[act_id]], np.int16)})
        singles.append(np.array(single, np.uint8).reshape(-1, 1) if single else EMPTY)
        img = _draw(size, drawn)
        (root / IMAGES / names[i]).write_bytes(encode_jpeg(img, 95))
        truth.append({"name": names[i], "train": train, "size": list(size), "single_person": list(single),
                      "activity": act, "category": cat, "video": VIDEOS[vididx - 1], "people": people_truth})
    if mat:
        release = _struct((1, 1), ("annolist", "img_train", "version", "single_person", "act", "video_list"), [{
            "annolist": _struct((1, len(annolist)), ("image", "annorect", "frame_sec", "vididx"), annolist),
            "img_train": np.array([[int(r[0]) for r in RECIPES]], np.uint8),
            "version": np.array(["12"]),
            "single_person": _cell(*singles),
            "act": _struct((len(acts), 1), ("cat_name", "act_name", "act_id"), acts),
            "video_list": _cell(*[np.array([v]) for v in VIDEOS]).T}])
        scipy.io.savemat(str(root / MAT_FILE), {"RELEASE": release}, format="5", do_compression=True)
    if json_files:
        for rel, entries in zip(LAYOUTS[layout], (train_entries, val_entries)):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(json.dumps(entries, indent=4))
    fits = _write_eft(root, rng, truth) if eft else []
    marker = {"dataset": "mpii", "seed": seed, "images": truth, "eft": fits}
    (root / FIXTURE_MARKER).write_text(json.dumps(marker, indent=1) + "\n")
    return root


def _write_eft(root: Path, rng, truth: list[dict]) -> list[dict]:
    """EFT fits of :data:`EFT_PEOPLE` (centre and scale as pose-hg-train's train.h5: objpos + (0, 15 s), 1.25 s),
    one 200 px off its person and one of an image that is not in the tree; returns their truth."""
    data, out = [], []
    targets = [(i, j, 0.0) for i, j in EFT_PEOPLE] + [(9, 0, 200.0), (None, None, 0.0)]
    for i, j, offset in targets:
        if i is None:
            name, centre, scale = "099999999.jpg", np.array([100.0, 100.0]), 1.0
        else:
            person = truth[i]["people"][j]
            name, scale = truth[i]["name"], person["scale"]
            centre = np.array(person["objpos"]) + 1 + (offset, HOURGLASS_SHIFT * scale)
        aa = rng.normal(0, 0.3, (24, 3))
        aa[0] = [np.pi * 0.9, 0.1, 0.0]  # upright in the camera frame (y down): a half turn about x
        betas = rng.normal(0, 1, 10)
        data.append({
            "parm_pose": rodrigues(aa).tolist(), "parm_shape": betas.tolist(),
            "parm_cam": [float(rng.uniform(0.8, 1.0)), 0.0, 0.1], "bbox_scale": 1.25 * scale,
            "bbox_center": centre.tolist(), "joint_validity_openpose18": [1] * 18, "smpltype": "smpl",
            "annotId": -1, "imageName": name, "gt_keypoint_2d": np.zeros((49, 3)).tolist()})
        out.append({"image": name, "rect": j, "matches": offset == 0.0 and i is not None, "pose": aa.tolist(),
                    "betas": betas.tolist()})
    path = root / EFT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"ver": "0.1", "meta": {"dbname": "MPII"}, "data": data}))
    return out
