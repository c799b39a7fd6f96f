"""A miniature COCO person-keypoints raw tree in the release's layout, for tests and demos (see
:func:`make_fixture`)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np

from posebank.core.bodymodel import rodrigues
from posebank.datasets.coco import annotation_file, image_folder
from posebank.datasets.coco.annotations import KEYPOINT_NAMES, N_KEYPOINTS

MARK_RADIUS = 2.0
FIXTURE_MARKER = ".posebank-fixture"
EFT_FILE = "eft/COCO2014-All-ver01.json"  # the name ReFit's eft2spin.py reads (the release's EFT files are apart)
# a standing person facing the camera, (x, y) in units of its height from the top of the head, y down; the
# person's left is the image's right
_TEMPLATE = np.array([
    (0.0, 0.06), (0.02, 0.045), (-0.02, 0.045), (0.045, 0.055), (-0.045, 0.055), (0.11, 0.18), (-0.11, 0.18),
    (0.15, 0.34), (-0.15, 0.34), (0.17, 0.48), (-0.17, 0.48), (0.07, 0.52), (-0.07, 0.52), (0.08, 0.73),
    (-0.08, 0.73), (0.08, 0.95), (-0.08, 0.95)])
_HEAD_TOP = (0.0, 0.0)
# COCO keypoint -> SPIN's 24 joints (nkolot/SPIN datasets/preprocess/coco.py joints_idx)
_SPIN_JOINTS_IDX = (19, 20, 21, 22, 23, 9, 8, 10, 7, 11, 6, 3, 2, 4, 1, 5, 0)
# SPIN's 24 -> OpenPose 18 (facebookresearch/eft eft/cores/jointorders.py JOINT_MAP_SPIN24_TO_OPENPOSE18)
_SPIN24_TO_OPENPOSE18 = (19, 12, 8, 7, 6, 9, 10, 11, 2, 1, 0, 3, 4, 5, 21, 20, 23, 22)
_SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9], [8, 10],
             [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]


@dataclasses.dataclass(frozen=True)
class PersonSpec:
    name: str  # the test's handle (P_a ...); not written
    centre_x: float
    top: float
    height: float
    hidden: tuple[int, ...] = ()  # keypoints not labelled (v = 0)
    occluded: tuple[int, ...] = ()  # labelled, not visible (v = 1)
    only: tuple[int, ...] | None = None  # label only these keypoints (v = 2)
    eft: str | None = None  # "id": an EFT fit naming the annotation; "centre": one matched by box centre


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    width: int
    height: int
    persons: tuple[PersonSpec, ...] = ()
    crowd: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1 pixels of a crowd region
    tiny: tuple[float, float, float, float] | None = None  # bbox of a person annotated without keypoints


# the fixture's scene (test_coco.py asserts the counts of each rule from it):
#   posepile keeps a b c | i j k; spin keeps a b d f g | i k; min_keypoints 1 keeps a b c d f g h | i j k
SCENE = {
    "train": (
        ImageSpec(640, 480, (PersonSpec("a", 170, 60, 380, eft="id"),
                             PersonSpec("b", 470, 80, 360, hidden=(3, 4), occluded=(9, 15), eft="centre")),
                  crowd=(560, 380, 630, 470)),
        ImageSpec(480, 640, (PersonSpec("c", 240, 100, 420, hidden=(0, 1, 2, 3, 4, 13, 15), eft="id"),
                             PersonSpec("d", 420, 40, 90, eft="id")),
                  tiny=(20.3, 30.6, 11.2, 40.1)),
        ImageSpec(640, 427, (PersonSpec("f", 250, 40, 370, eft="centre"),
                             PersonSpec("g", 350, 50, 360, occluded=(5, 7, 9), eft="id"),
                             PersonSpec("h", 590, 200, 200, only=(5, 6, 11, 12)))),
        ImageSpec(640, 480),  # an image without people (the files list every image of the split)
    ),
    "val": (
        ImageSpec(640, 480, (PersonSpec("i", 320, 50, 400, occluded=(10,)),)),
        ImageSpec(500, 375, (PersonSpec("j", 150, 20, 330, hidden=(15, 16)),
                             PersonSpec("k", 380, 40, 300, hidden=(0, 1, 2, 3, 4)))),
    ),
}


def _file_name(split: str, year: int, image_id: int) -> str:
    return f"COCO_{split}2014_{image_id:012d}.jpg" if year == 2014 else f"{image_id:012d}.jpg"


def _keypoints(spec: PersonSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(17, 2) integer pixel positions of the body and (17,) v."""
    jitter = rng.normal(0, 0.006, (N_KEYPOINTS, 2))
    xy = np.array([spec.centre_x, spec.top]) + spec.height * (_TEMPLATE + jitter)
    xy = np.round(xy)
    v = np.full(N_KEYPOINTS, 2)
    if spec.only is not None:
        v[:] = 0
        v[list(spec.only)] = 2
    v[list(spec.hidden)] = 0
    v[list(spec.occluded)] = 1
    return xy, v


def _polygon(spec: PersonSpec, xy: np.ndarray) -> list[float]:
    """A silhouette polygon (continuous coordinates: pixel centre + 0.5) around the body, as COCO's annotators
    draw them, rounded to 2 decimals as in the release."""
    margin = 0.045 * spec.height
    head = np.array([spec.centre_x, spec.top]) + spec.height * np.array(_HEAD_TOP)
    points = np.concatenate([xy, head[None]])
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    ring = np.stack([np.cos(angles), np.sin(angles)], axis=1) * margin
    cloud = (points[:, None] + ring[None]).reshape(-1, 2).astype(np.float32)
    hull = cv2.convexHull(cloud).reshape(-1, 2).astype(np.float64) + 0.5
    return [round(float(c), 2) for c in hull.reshape(-1)]


def _uncompressed_rle(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE counts: run lengths over the column-major pixels, starting with a run of zeros."""
    flat = np.asarray(mask, np.uint8).reshape(-1, order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    return runs if flat[0] == 0 else [0, *runs]


def _box_of_mask(mask: np.ndarray) -> list[float]:
    cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    return [float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1)]


def _eft_entry(rng, image_id: int, ann: dict, annot_id: int, centre_offset=(0.0, 0.0)) -> dict:
    """One EFT ``data`` entry with the fields and shapes eft/utils/exportDB.py writes (random SMPL parameters)."""
    x, y, w, h = ann["bbox"]
    centre = np.array([x + w / 2, y + h / 2]) + centre_offset
    axis_angles = rng.normal(0, 0.15, (24, 3))
    rot = rodrigues(axis_angles)
    rot[0] = rodrigues(np.array([np.pi, 0, 0])) @ rot[0]  # upright in the camera frame (y down)
    keypoints = np.asarray(ann["keypoints"], np.float64).reshape(N_KEYPOINTS, 3)
    keypoints[keypoints[:, 2] > 0, 2] = 1
    part = np.zeros((24, 3))
    part[list(_SPIN_JOINTS_IDX)] = keypoints
    gt = np.concatenate([np.zeros((25, 3)), part])
    f32 = lambda a: np.asarray(a, np.float32).tolist()  # noqa: E731 - the fits are float32 in EFT's pickles
    return {
        "parm_pose": f32(rot), "parm_shape": f32(rng.normal(0, 0.8, 10)),
        "parm_cam": f32([rng.uniform(0.85, 1.0), rng.normal(0, 0.04), rng.normal(0, 0.04)]),
        "bbox_scale": float(np.float32(1.2 * max(w, h) / 200)), "bbox_center": f32(centre),
        "gt_keypoint_2d": f32(gt), "joint_validity_openpose18": f32(part[list(_SPIN24_TO_OPENPOSE18), 2]),
        "smpltype": "smpl", "annotId": annot_id, "imageName": f"COCO_train2014_{image_id:012d}.jpg",
    }


def _write_split(root: Path, split: str, year: int, rng: np.random.Generator, ids, ann_ids, eft: list) -> dict:
    images, annotations = [], []
    folder = root / image_folder(split, year)
    folder.mkdir(parents=True, exist_ok=True)
    import pycocotools.mask as mask_utils

    for spec, image_id in zip(SCENE[split], ids):
        name = _file_name(split, year, image_id)
        w, h = spec.width, spec.height
        images.append({"license": int(rng.integers(1, 9)), "file_name": name,
                       "coco_url": f"http://images.cocodataset.org/{split}{year}/{name}", "height": h, "width": w,
                       "date_captured": "2013-11-18 02:53:27",
                       "flickr_url": f"http://farm4.staticflickr.com/{int(rng.integers(1000, 9999))}/x_z.jpg",
                       "id": image_id})
        image = np.clip(rng.normal(40, 4, (h, w, 3)), 0, 255).astype(np.uint8)
        marks = []
        if spec.crowd is not None:
            x0, y0, x1, y1 = spec.crowd
            mask = np.zeros((h, w), bool)
            mask[y0:y1, x0:x1] = True
            image[mask] = 90
            annotations.append({
                "segmentation": {"counts": _uncompressed_rle(mask), "size": [h, w]},
                "num_keypoints": 0, "area": int(mask.sum()), "iscrowd": 1, "keypoints": [0] * (3 * N_KEYPOINTS),
                "image_id": image_id, "bbox": _box_of_mask(mask), "category_id": 1, "id": next(ann_ids) + 900100000000})
        for person in spec.persons:
            xy, v = _keypoints(person, rng)
            poly = _polygon(person, xy)
            rle = mask_utils.merge(mask_utils.frPyObjects([poly], h, w))
            image[mask_utils.decode(rle).astype(bool)] = 110
            xs, ys = np.asarray(poly[0::2]), np.asarray(poly[1::2])
            kp = np.concatenate([np.where(v[:, None] > 0, xy, 0), v[:, None]], axis=1).astype(int)
            ann = {"segmentation": [poly], "num_keypoints": int(np.count_nonzero(v)),
                   "area": round(float(mask_utils.area(rle)), 4), "iscrowd": 0, "keypoints": kp.reshape(-1).tolist(),
                   "image_id": image_id,
                   "bbox": [round(float(xs.min()), 2), round(float(ys.min()), 2),
                            round(float(xs.max() - xs.min()), 2), round(float(ys.max() - ys.min()), 2)],
                   "category_id": 1, "id": next(ann_ids)}
            annotations.append(ann)
            marks += [p for p, vis in zip(xy, v) if vis > 0]
            if person.eft is not None:
                eft.append(_eft_entry(rng, image_id, ann, ann["id"] if person.eft == "id" else 0))
        if spec.tiny is not None:
            x, y, bw, bh = spec.tiny
            poly = [x, y, x + bw, y, x + bw, y + bh, x, y + bh]
            rle = mask_utils.merge(mask_utils.frPyObjects([poly], h, w))
            image[mask_utils.decode(rle).astype(bool)] = 100
            annotations.append({
                "segmentation": [poly], "num_keypoints": 0, "area": round(float(mask_utils.area(rle)), 4),
                "iscrowd": 0, "keypoints": [0] * (3 * N_KEYPOINTS), "image_id": image_id, "bbox": list(spec.tiny),
                "category_id": 1, "id": next(ann_ids)})
        for p in marks:  # white marks centred on the keypoints (integer pixel indices = pixel centres)
            centre = tuple(int(round(c * 16)) for c in p)
            cv2.circle(image, centre, int(MARK_RADIUS * 16), (255, 255, 255), -1, cv2.LINE_AA, shift=4)
        cv2.imwrite(str(folder / name), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return {
        "info": {"description": "COCO 2017 Dataset (posebank fixture)", "url": "http://cocodataset.org",
                 "version": "1.0", "year": year, "contributor": "COCO Consortium",
                 "date_created": "2017/09/01"},
        "licenses": [{"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/", "id": i, "name": f"licence {i}"}
                     for i in range(1, 9)],
        "images": images, "annotations": annotations,
        "categories": [{"supercategory": "person", "id": 1, "name": "person", "keypoints": list(KEYPOINT_NAMES),
                        "skeleton": _SKELETON}],
    }


def make_fixture(root, seed: int = 0, years=(2017,), eft: bool = True) -> Path:
    """Write a miniature COCO raw tree: per year in ``years`` the two ``annotations/person_keypoints_*.json``
    files (the release's keys and value types: integer keypoints, polygons rounded to 2 decimals, a crowd region
    in uncompressed RLE, a person without keypoints, an image without people) and JPEG images in which white
    marks sit on every labelled keypoint over grey silhouettes (the segmentations). ``SCENE`` says who is in
    them. With ``eft`` also a tiny EFT file (:data:`EFT_FILE`) with fits of the training people, one of them
    twice, one of no one and one of an image the tree does not have."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    eft_entries: list[dict] = []
    base_ids = {split: sorted(int(i) for i in rng.choice(np.arange(1, 581000), len(SCENE[split]), replace=False))
                for split in SCENE}
    for year in years:
        counter = iter(range(int(rng.integers(180000, 190000)), 10 ** 9))
        for split in SCENE:
            fits: list = []
            content = _write_split(root, split, year, rng, base_ids[split], counter, fits)
            path = root / annotation_file(split, year)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(content))
            if year == years[0] and split == "train":
                eft_entries = fits
    if eft and eft_entries:
        extra = dict(eft_entries[0])  # a second fit of the first person, matched by its centre (loses to the id)
        extra.update(annotId=0, bbox_center=[c + 1.0 for c in extra["bbox_center"]])
        nobody = dict(eft_entries[0])  # a fit whose centre lies where no one is
        nobody.update(annotId=0, bbox_center=[5.0, 5.0])
        elsewhere = dict(eft_entries[-1])  # a fit of an image that is not in the tree
        elsewhere.update(annotId=0, imageName="COCO_train2014_000000581999.jpg")
        path = root / EFT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"ver": 0.1, "data": [*eft_entries, extra, nobody, elsewhere],
                                    "meta": {"dbname": "COCO2014-All", "rawname": "posebank_fixture"}}))
    (root / FIXTURE_MARKER).write_text(f"coco fixture, seed {seed}\n")
    return root
