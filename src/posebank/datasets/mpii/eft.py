"""Optional pseudo ground truth: EFT's SMPL fits of MPII (Joo et al., 3DV 2021; facebookresearch/eft, the file
``MPII_ver01.json``), attached to the converted persons.

The file (``docs/README_dataformat.md`` of facebookresearch/eft; the fields ReFit's
``lib/datasets/preprocess/eft2spin.py`` reads)::

    {"ver": ..., "meta": {"dbname": "MPII", ...}, "data": [
        {"imageName": "015601864.jpg", "bbox_center": [x, y], "bbox_scale": s, "parm_pose": 24 x 3 x 3 rotation
         matrices, "parm_shape": 10 betas, "parm_cam": [s, tx, ty] (weak perspective), "gt_keypoint_2d": 49 x 3,
         ...}, ...]}

The fits are of the neutral SMPL model (EFT's README: ``basicModel_neutral_lbs_10_207_0_v1.0.0.pkl``). EFT fitted the
persons of SPIN's ``mpii_train.npz`` (facebookresearch/eft ``eft/db_processing/mpii.py``, SPIN
``datasets/preprocess/mpii.py``), whose ``center``/``scale`` are pose-hg-train's ``train.h5`` values: the release's
``objpos`` moved down by 15 x scale px and 1.25 x its ``scale`` (the same adjustment shows in pose-hg-train's
``valid.h5``). A fit is therefore attached to the person of the same image whose ``objpos + (0, 15 scale)`` lies
nearest to ``bbox_center``, one fit per person and one person per fit, when that distance is below
:data:`MAX_OFFSET` x 200 x the person's scale.

``parm_pose`` becomes axis-angle (as eft2spin.py does); the global orientation is in EFT's crop camera, whose axes
are the image camera's (a weak-perspective camera does not rotate), hence in the frame of posebank's intrinsics-only
camera. The translation is not known in metres (the weak-perspective ``parm_cam`` has no depth): ``trans`` is zero
and ``root`` unknown, so the cache's camera-frame translation is NaN while the orientation is exact.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path, PurePosixPath

import numpy as np

from posebank.core.bodymodel import BodyModelFit, axis_angle
from posebank.datasets.base import RawFileError

MAX_OFFSET = 0.25  # a fit's centre may lie at most this x 200 x scale px from the person's (hourglass) centre
HOURGLASS_SHIFT = 15.0  # px per unit scale: pose-hg-train's centre is objpos + (0, 15 scale)
N_SMPL_JOINTS = 24
N_BETAS = 10


@dataclasses.dataclass
class Fit:
    index: int  # position in the file's data list
    image: str  # basename
    center: np.ndarray  # (2,) bbox_center, the file's pixels
    scale: float
    pose: np.ndarray  # (72,) axis-angle
    betas: np.ndarray  # (10,)

    def body_model(self) -> BodyModelFit:
        return BodyModelFit("smpl", "neutral", self.pose, self.betas, np.zeros(3))




def read_eft(path) -> list[Fit]:
    """The fits of an EFT json file; RawFileError naming the file (and entry) when it is not one, is EFT's file of
    another dataset, or holds an entry without the fields or shapes above or with non-rotation matrices."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise RawFileError(path, f"unreadable EFT file ({e.strerror or e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RawFileError(path, f"unreadable EFT file: not JSON, or truncated ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise RawFileError(path, "not an EFT fitting file (a JSON object with a 'data' list)")
    meta = doc.get("meta")
    db = meta.get("dbname") if isinstance(meta, dict) else None
    if db is not None and db != "MPII":
        raise RawFileError(path, f"EFT fits of {db!r}, not of MPII (meta.dbname)")
    fits = []
    for i, d in enumerate(doc["data"]):
        where = f"data[{i}]"
        if not isinstance(d, dict):
            raise RawFileError(path, f"{where} is not an object")
        missing = [k for k in ("imageName", "bbox_center", "bbox_scale", "parm_pose", "parm_shape") if k not in d]
        if missing:
            raise RawFileError(path, f"{where} has no {missing[0]!r}")
        try:
            center = np.asarray(d["bbox_center"], np.float64).reshape(2)
            scale = float(d["bbox_scale"])
            rot = np.asarray(d["parm_pose"], np.float64).reshape(N_SMPL_JOINTS, 3, 3)
            betas = np.asarray(d["parm_shape"], np.float64).reshape(N_BETAS)
        except (TypeError, ValueError) as e:
            raise RawFileError(path, f"{where}: bbox_center (2), bbox_scale, parm_pose (24x3x3) or parm_shape (10) "
                                     f"of another shape or not numeric ({e})") from None
        if not all(np.isfinite(a).all() for a in (center, scale, rot, betas)):
            raise RawFileError(path, f"{where} holds non-finite values")
        err = np.abs(rot @ rot.transpose(0, 2, 1) - np.eye(3)).max()
        if err > 1e-3 or (np.linalg.det(rot) < 0).any():
            raise RawFileError(path, f"{where}: parm_pose holds matrices that are not rotations (|R R^T - I| = "
                                     f"{err:.2g})")
        name = d["imageName"]
        if not isinstance(name, str) or not name:
            raise RawFileError(path, f"{where}: imageName must be a file name, got {name!r}")
        fits.append(Fit(i, PurePosixPath(name.replace("\\", "/")).name, center, scale,
                        axis_angle(rot).reshape(-1), betas))
    return fits


def match(fits: list[Fit], people: dict[str, list[tuple[int, np.ndarray, float]]]) -> tuple[dict[int, Fit], int]:
    """Attach fits to persons. ``people``: image name -> [(key, hourglass centre (2,), size px)]. Returns
    ``{key: fit}`` and the number of fits left unattached (no person of their image near enough, or a nearer fit
    took the person). Greedy by distance, ties by file order: deterministic."""
    by_image: dict[str, list[Fit]] = {}
    for f in fits:
        by_image.setdefault(f.image, []).append(f)
    out, used = {}, 0
    for image, candidates in by_image.items():
        persons = people.get(image, [])
        pairs = []
        for f in candidates:
            for key, centre, size in persons:
                d = float(np.linalg.norm(f.center - centre))
                if d <= MAX_OFFSET * size:
                    pairs.append((d, f.index, key, f))
        taken_fits, taken_people = set(), set()
        for _d, index, key, f in sorted(pairs, key=lambda p: (p[0], p[1], p[2])):
            if index in taken_fits or key in taken_people:
                continue
            taken_fits.add(index)
            taken_people.add(key)
            out[key] = f
        used += len(taken_fits)
    return out, len(fits) - used
