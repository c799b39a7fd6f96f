"""Which COCO persons are converted: the selection rules of posepile, SPIN and a plain keypoint count.

Every rule first leaves out crowd regions (``iscrowd`` 1: several people under one mask, annotated without
keypoints); neither posepile nor SPIN tests ``iscrowd``, but their keypoint counts reject every crowd entry
(``num_keypoints`` 0), so the result is the same. Then:

* ``posepile`` (posepile ``src/posepile/ds/coco/main.py``, ``make_dataset(single_person=True)``): at least 17/3
  keypoints visible (v = 2) and at least 17/2 labelled (v > 0); the box of the labelled keypoints expanded 1.25x
  about its centre at least 200 px on its longer side; and that box overlapping the expanded box of every other
  person of the image that passes the keypoint test by an IoU below 0.1 (posepile keeps only people standing
  apart; boxes as ``boxlib.bb_of_points`` / ``boxlib.expand`` / ``boxlib.iou`` compute them).
* ``spin`` (nkolot/SPIN ``datasets/preprocess/coco.py``): at least 12 of the 12 body keypoints
  (``keypoints[5:]``, shoulders to ankles) labelled, i.e. all of them.
* ``min_keypoints``: at least ``min_keypoints`` keypoints labelled.
"""

from __future__ import annotations

import numpy as np

from posebank.datasets.coco.annotations import N_KEYPOINTS, PersonAnnotation

RULES = ("posepile", "spin", "min_keypoints")
CROWD = "iscrowd 1: a crowd region (several people, no keypoints), not one person"
POSEPILE_BOX_EXPANSION = 1.25
POSEPILE_MIN_BOX_PX = 200.0
POSEPILE_MAX_IOU = 0.1  # single_person=True (0.5 with single_person=False, not used by posepile's datasets)
SPIN_MIN_BODY_KEYPOINTS = 12


def _reasons() -> dict[str, str]:
    return {
        "posepile_counts": (f"posepile rule: fewer than {N_KEYPOINTS}/3 keypoints visible (v = 2) or fewer than "
                            f"{N_KEYPOINTS}/2 labelled (v > 0)"),
        "posepile_small": (f"posepile rule: the box of the labelled keypoints x{POSEPILE_BOX_EXPANSION} is under "
                           f"{POSEPILE_MIN_BOX_PX:.0f} px on its longer side"),
        "posepile_overlap": (f"posepile rule: its keypoint box overlaps another person's (IoU >= "
                             f"{POSEPILE_MAX_IOU}; posepile keeps only people standing apart)"),
        "spin": f"SPIN rule: fewer than {SPIN_MIN_BODY_KEYPOINTS} of the 12 body keypoints (keypoints[5:]) labelled",
    }


REASONS = _reasons()


def min_keypoints_reason(n: int) -> str:
    return f"fewer than {n} labelled keypoints (v > 0)"


def keypoint_boxes(keypoints: np.ndarray) -> np.ndarray:
    """(N, 17, 3) keypoints -> (N, 4) [x, y, w, h] of the labelled keypoints (zeros when none is), as
    ``boxlib.bb_of_points``."""
    keypoints = np.asarray(keypoints, np.float64).reshape(-1, N_KEYPOINTS, 3)
    labelled = keypoints[..., 2] > 0
    xy = keypoints[..., :2]
    lo = np.where(labelled[..., None], xy, np.inf).min(axis=1)
    hi = np.where(labelled[..., None], xy, -np.inf).max(axis=1)
    box = np.concatenate([lo, hi - lo], axis=1)
    box[~labelled.any(axis=1)] = 0
    return box


def keypoint_box(person: PersonAnnotation) -> np.ndarray:
    return keypoint_boxes(person.keypoints)[0]


def expand(box: np.ndarray, factor: float) -> np.ndarray:
    """[x, y, w, h] boxes (..., 4) scaled about their centres (boxlib.expand)."""
    box = np.asarray(box, np.float64)
    centre = box[..., :2] + box[..., 2:] / 2
    size = box[..., 2:] * factor
    return np.concatenate([centre - size / 2, size], axis=-1)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """Intersection over union of [x, y, w, h] boxes (broadcasting); 0 where both are empty (boxlib.iou gives NaN
    there, which posepile's ``ious < threshold`` then rejects: such boxes fail the size test first anyway)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    lo = np.maximum(a[..., :2], b[..., :2])
    hi = np.minimum(a[..., :2] + a[..., 2:], b[..., :2] + b[..., 2:])
    inter = np.prod(np.maximum(0.0, hi - lo), axis=-1)
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    out = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return float(out) if out.ndim == 0 else out


def select_rows(keypoints: np.ndarray, iscrowd: np.ndarray, groups: list[slice], rule: str,
                min_keypoints: int = 1) -> list[str | None]:
    """For N annotations (``keypoints`` (N, 17, 3), ``iscrowd`` (N,)), ``groups`` the rows of each image: None for
    each person the rule keeps, else the reason it is left out."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; known: {RULES}")
    keypoints = np.asarray(keypoints, np.float64).reshape(-1, N_KEYPOINTS, 3)
    n = len(keypoints)
    v = keypoints[..., 2]
    crowd = np.asarray(iscrowd, bool).reshape(n)
    labelled = np.count_nonzero(v > 0, axis=1)
    out = np.full(n, None, object)
    if rule == "min_keypoints":
        out[labelled < min_keypoints] = min_keypoints_reason(min_keypoints)
    elif rule == "spin":
        out[np.count_nonzero(v[:, 5:] > 0, axis=1) < SPIN_MIN_BODY_KEYPOINTS] = REASONS["spin"]
    else:  # posepile: the keypoint test, then size and overlap among those that pass it
        visible = np.count_nonzero(v == 2, axis=1)
        passing = ~crowd & (visible >= N_KEYPOINTS / 3) & (labelled >= N_KEYPOINTS / 2)
        out[~passing] = REASONS["posepile_counts"]
        boxes = expand(keypoint_boxes(keypoints), POSEPILE_BOX_EXPANSION)
        small = passing & (boxes[:, 2:].max(axis=1) < POSEPILE_MIN_BOX_PX)
        overlap = np.zeros(n, bool)
        for rows in groups:
            members = np.flatnonzero(passing[rows]) + rows.start
            if len(members) < 2:
                continue
            b = boxes[members]
            ious = iou(b[:, None], b[None])
            np.fill_diagonal(ious, 0)
            overlap[members] = (ious >= POSEPILE_MAX_IOU).any(axis=1)
        out[small] = REASONS["posepile_small"]
        out[passing & ~small & overlap] = REASONS["posepile_overlap"]
    out[crowd] = CROWD
    return out.tolist()


def select(persons: list[PersonAnnotation], rule: str, min_keypoints: int = 1) -> list[str | None]:
    """For the annotations of one image: None for each person the rule keeps, else the reason it is left out."""
    if not persons:
        return []
    keypoints = np.stack([p.keypoints for p in persons])
    return select_rows(keypoints, [p.iscrowd for p in persons], [slice(0, len(persons))], rule, min_keypoints)
