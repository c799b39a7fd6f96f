"""Reading the widely used json conversion of the MPII annotations (HRNet's ``annot/{train,valid}.json``, mmpose's
``annotations/mpii_{train,val}.json``).

Each file is one list of persons::

    {"joints_vis": [16 x 0/1], "joints": [16 x [x, y]], "image": "005808361.jpg", "scale": 4.718488,
     "center": [966.0, 340.0]}

``center`` and ``scale`` are the release's ``objpos`` and ``scale`` (pose-hg-train's valid.h5 holds the same
persons with ``center + (0, 15 scale)`` and ``1.25 scale``, the adjustment HRNet ``lib/dataset/mpii.py:58-61``
applies on reading). ``joints`` are the release's 1-based pixels; ``joints_vis`` is 1 for a labelled joint and 0 for
an unlabelled one, whose ``joints`` entry is ``[-1, -1]``: it is *not* the release's ``is_visible`` (the converter's
author, microsoft/human-pose-estimation.pytorch issue #7: "we will set all labeled joints as 1, and not labeled
joints as 0"), so the conversion carries no visibility. ``center`` is ``[-1, -1]`` for a person without ``objpos``
(HRNet tests ``c[0] != -1``). mmpose reads these files in ``mmpose/datasets/datasets/body/mpii_dataset.py``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from posebank.datasets.base import RawFileError
from posebank.datasets.mpii.release import N_JOINTS, Person

KEYS = ("image", "center", "scale", "joints", "joints_vis")


def _numbers(value, shape, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} is not numeric") from None
    if arr.shape != shape:
        raise ValueError(f"{what} has shape {arr.shape}, expected {shape}")
    return arr


def read_converted(path) -> list[Person]:
    """Every entry of one json conversion file, in file order (``rect`` is the entry's rank among the file's
    entries for the same image). A file that is not such a list, or an entry lacking a key or of the wrong shape,
    raises RawFileError naming the file and the entry; an entry without any labelled joint, or with non-finite
    labelled coordinates, gets a ``problem`` for the converter to drop."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise RawFileError(path, f"unreadable annotation file ({e.strerror or e})") from None
    try:
        entries = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RawFileError(path, f"unreadable annotation file: not JSON, or truncated ({e})") from None
    if not isinstance(entries, list):
        raise RawFileError(path, f"expected a list of persons, got a JSON {type(entries).__name__}")
    out, per_image = [], {}
    for i, e in enumerate(entries):
        where = f"entry {i}"
        if not isinstance(e, dict):
            raise RawFileError(path, f"{where} is not an object")
        missing = [k for k in KEYS if k not in e]
        if missing:
            raise RawFileError(path, f"{where} has no {missing[0]!r} (keys {sorted(e)})")
        image = e["image"]
        if not isinstance(image, str) or not image or "/" in image or "\\" in image:
            raise RawFileError(path, f"{where}: 'image' must be a file name, got {image!r}")
        try:
            joints = _numbers(e["joints"], (N_JOINTS, 2), "'joints'")
            vis = _numbers(e["joints_vis"], (N_JOINTS,), "'joints_vis'")
            center = _numbers(e["center"], (2,), "'center'")
            scale = float(e["scale"]) if isinstance(e["scale"], (int, float)) and not isinstance(
                e["scale"], bool) else None
        except ValueError as err:
            raise RawFileError(path, f"{where}: {err}") from None
        if scale is None:
            raise RawFileError(path, f"{where}: 'scale' is not a number ({e['scale']!r})")
        if not np.isin(vis, (0, 1)).all():
            raise RawFileError(path, f"{where}: 'joints_vis' holds values other than 0 and 1")
        labelled = vis == 1
        keypoints = np.where(labelled[:, None], joints, np.nan)
        problem = ""
        if not labelled.any():
            problem = "no labelled joint (joints_vis all 0)"
        elif not np.isfinite(joints[labelled]).all():
            problem = "a labelled joint has non-finite coordinates"
        has_pos = np.isfinite(center).all() and not (center[0] == -1 and center[1] == -1)
        rect = per_image.get(image, 0)
        per_image[image] = rect + 1
        out.append(Person(
            image=image, rect=rect, keypoints=keypoints, visibility=None,
            objpos=center if has_pos else np.full(2, np.nan),
            scale=scale if math.isfinite(scale) and scale > 0 else np.nan, head_box=np.full(4, np.nan),
            problem=problem))
    return out
