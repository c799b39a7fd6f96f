"""EFT pseudo-ground-truth SMPL fits of COCO people (Joo et al., "Exemplar Fine-Tuning for 3D Human Model Fitting
Towards In-the-Wild 3D Human Pose Estimation", 3DV 2021), optional.

File format, as facebookresearch/eft writes it (``eft/utils/exportDB.py`` ``pklToJson``; read by
``demo/visEFTFit.py`` and by yufu-wang/ReFit ``lib/datasets/preprocess/eft2spin.py``; documented in
``docs/README_dataformat.md``): one JSON object ``{"ver": 0.1, "data": [...], "meta": {"dbname": "COCO2014-All",
"rawname": ...}}``, each entry of ``data`` one person with

* ``imageName``: the image's base name (``COCO_train2014_000000000036.jpg``; ReFit prefixes ``train2014/``);
* ``bbox_center`` [x, y] and ``bbox_scale`` (the crop side is 200 x scale px; SPIN's convention, from the COCO
  box: centre of ``bbox``, scale = 1.2 max(w, h) / 200);
* ``parm_pose``: 24 x 3 x 3 rotation matrices (SMPL's 24 joints, the first the global orientation),
  ``parm_shape``: 10 betas (neutral SMPL, ``basicModel_neutral_lbs_10_207_0_v1.0.0.pkl`` in visEFTFit.py);
* ``parm_cam`` [s, tx, ty]: a weak-perspective camera of the 224 px crop: the crop's normalised coordinates
  (-1 .. 1) of a model point X are ``s X[:2] + [tx, ty]`` (``eft/utils/geometry.py`` ``weakProjection_gpu``,
  applied to the SMPL output at zero translation in ``eft/train/eftFitter.py``);
* ``gt_keypoint_2d`` (49 x 3, SPIN's 25 OpenPose + 24 joints), ``joint_validity_openpose18``, ``smpltype``,
  ``annotId`` (the COCO annotation id; exportDB.py writes 0 when it did not have one).

Matching to COCO people: by image (the number in ``imageName`` is the COCO image id, the same in the 2014 and 2017
releases), then by ``annotId`` when it names an annotation of that image, else the person whose COCO box centre is
nearest to ``bbox_center`` (within :data:`MATCH_TOLERANCE` of the crop side; the centre is computed from the box,
so the right person lies at distance ~0).

What posebank stores (:func:`body_model_fit`): SMPL, neutral, ``pose`` the 24 rotations as axis-angle, ``betas`` the
10 values. The world frame of an intrinsics-only COCO camera is the camera frame, and EFT's orientation is already
given in it (x right, y down, z forward, as SPIN's). EFT has no depth: with ``trans = "perspective"`` ``trans``
is the translation under which the perspective camera of the image (the assumed focal length ``f``, principal
point ``c``) projects a model point at zero depth exactly where the weak-perspective camera puts it:
``tz = 2 f / (s B)``, ``tx' = tx / s + 2 (bbox_center_x - c_x) / (s B)`` (likewise y), ``B = 200 bbox_scale`` the
crop side in image pixels (SPIN / EFT's own ``pred_cam_t = [tx, ty, 2 f / (224 s)]``, taken from the crop to
the whole image). It is approximate (weak perspective) and as arbitrary as the assumed focal length; with
``trans = "zeros"`` it is 0 (the camera-frame orientation and body pose are the information). ``root`` is not
known without the SMPL model files and is left unset.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from posebank.core.bodymodel import BodyModelFit, axis_angle
from posebank.core.store import sha256_file as sha256
from posebank.datasets.base import RawFileError
from posebank.datasets.coco.annotations import PersonAnnotation, _load_json

N_SMPL_JOINTS = 24
N_BETAS = 10
CROP_SIDE_PER_SCALE = 200.0  # SPIN's box convention: the crop side is 200 x scale pixels
MATCH_TOLERANCE = 0.1  # at most this fraction of the crop side between the EFT and the COCO box centre
TRANS_MODES = ("perspective", "zeros")
_IMAGE_ID = re.compile(r"(\d+)\.(?:jpg|jpeg|png)$", re.IGNORECASE)
NO_IMAGE = "EFT fit of an image that is not in the selected splits' annotation files"
NO_PERSON = (f"EFT fit matching no annotated person of its image (no box centre within {MATCH_TOLERANCE} x the "
             "EFT crop side of bbox_center)")
SECOND_FIT = "a second EFT fit of a person that another, nearer fit already matches"

__all__ = ["EftFile", "EftFit", "body_model_fit", "match", "perspective_translation", "read_eft", "sha256"]


@dataclasses.dataclass
class EftFit:
    index: int  # position in the file's data list
    image_name: str
    image_id: int
    bbox_center: np.ndarray  # (2,) px
    bbox_scale: float
    rotmats: np.ndarray  # (24, 3, 3)
    betas: np.ndarray  # (10,)
    cam: np.ndarray  # (3,) s, tx, ty
    annot_id: int | None  # None when the file has none (or 0)

    @property
    def crop_side(self) -> float:
        return CROP_SIDE_PER_SCALE * self.bbox_scale


@dataclasses.dataclass
class EftFile:
    path: Path
    dbname: str
    fits: list[EftFit]

    @property
    def source(self) -> str:
        return f"EFT ({self.dbname})" if self.dbname else "EFT"




def _array(entry: Mapping, key: str, shape: tuple[int, ...], path: Path, where: str) -> np.ndarray:
    if key not in entry:
        raise RawFileError(path, f"{where} has no {key!r}")
    try:
        arr = np.asarray(entry[key], np.float64)
    except (TypeError, ValueError):
        raise RawFileError(path, f"{where}: {key!r} is not numeric") from None
    if arr.size != int(np.prod(shape)):
        raise RawFileError(path, f"{where}: {key!r} has shape {arr.shape}, expected {shape}")
    arr = arr.reshape(shape)
    if not np.all(np.isfinite(arr)):
        raise RawFileError(path, f"{where}: {key!r} holds non-finite values")
    return arr


def read_eft(path) -> EftFile:
    """Read and check an EFT fitting file (module docstring). Refuses a file of another dataset (``meta.dbname``
    not COCO) and rotations that are not rotations."""
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise RawFileError(path, "not an EFT fitting file: expected a JSON object with a 'data' list")
    meta = data.get("meta") or {}
    dbname = str(meta.get("dbname", "")) if isinstance(meta, dict) else ""
    if dbname and not dbname.upper().startswith("COCO"):
        raise RawFileError(path, f"an EFT file of {dbname!r} (meta.dbname), not of COCO")
    fits = []
    for i, entry in enumerate(data["data"]):
        where = f"data[{i}]"
        if not isinstance(entry, dict):
            raise RawFileError(path, f"{where} is not an object")
        name = entry.get("imageName")
        m = _IMAGE_ID.search(str(name)) if isinstance(name, str) else None
        if m is None:
            raise RawFileError(path, f"{where}: 'imageName' {name!r} holds no COCO image number")
        rot = _array(entry, "parm_pose", (N_SMPL_JOINTS, 3, 3), path, where)
        err = np.abs(np.einsum("jab,jac->jbc", rot, rot) - np.eye(3)).max()
        if err > 1e-3 or np.any(np.linalg.det(rot) <= 0):
            raise RawFileError(path, f"{where}: 'parm_pose' holds matrices that are not rotations "
                                     f"(|R^T R - I| up to {err:.2g})")
        scale = _array(entry, "bbox_scale", (1,), path, where)[0]
        cam = _array(entry, "parm_cam", (3,), path, where)
        if scale <= 0 or cam[0] <= 0:
            raise RawFileError(path, f"{where}: non-positive 'bbox_scale' ({scale}) or camera scale ({cam[0]})")
        annot = entry.get("annotId")
        annot_id = int(annot) if isinstance(annot, (int, float)) and not isinstance(annot, bool) and annot else None
        fits.append(EftFit(i, name, int(m.group(1)), _array(entry, "bbox_center", (2,), path, where), float(scale),
                           rot, _array(entry, "parm_shape", (N_BETAS,), path, where), cam, annot_id))
    return EftFile(path, dbname, fits)


def _centre(person: PersonAnnotation) -> np.ndarray:
    return person.bbox[:2] + person.bbox[2:] / 2  # COCO coordinates, as SPIN / EFT computed bbox_center


def match(fits: Sequence[EftFit], persons_by_image: Mapping[int, Sequence[PersonAnnotation]]
          ) -> tuple[dict[int, EftFit], list[tuple[EftFit, str]]]:
    """The fit of each matched person (by annotation id) and the fits left unmatched with the reason. Crowd
    regions are never matched. When two fits claim one person the nearer (or the one naming its annotId) wins."""
    claims: dict[int, list[tuple[float, EftFit]]] = {}
    unmatched: list[tuple[EftFit, str]] = []
    for fit in fits:
        people = [p for p in persons_by_image.get(fit.image_id, ()) if not p.iscrowd]
        if fit.image_id not in persons_by_image:
            unmatched.append((fit, NO_IMAGE))
            continue
        named = [p for p in people if fit.annot_id is not None and p.id == fit.annot_id]
        if named:
            claims.setdefault(named[0].id, []).append((-1.0, fit))  # an exact id beats any distance
            continue
        if not people:
            unmatched.append((fit, NO_PERSON))
            continue
        dist = [float(np.linalg.norm(_centre(p) - fit.bbox_center)) for p in people]
        k = int(np.argmin(dist))
        if dist[k] > MATCH_TOLERANCE * fit.crop_side:
            unmatched.append((fit, NO_PERSON))
            continue
        claims.setdefault(people[k].id, []).append((dist[k], fit))
    matched = {}
    for ann_id, options in claims.items():
        options.sort(key=lambda o: (o[0], o[1].index))
        matched[ann_id] = options[0][1]
        unmatched += [(fit, SECOND_FIT) for _, fit in options[1:]]
    unmatched.sort(key=lambda u: u[0].index)
    return matched, unmatched


def perspective_translation(fit: EftFit, intrinsic_matrix: np.ndarray) -> np.ndarray:
    """The model translation (metres, camera frame) equivalent to the fit's weak-perspective camera under the
    pinhole camera ``intrinsic_matrix`` (module docstring)."""
    k = np.asarray(intrinsic_matrix, np.float64)
    f = (k[0, 0] + k[1, 1]) / 2
    s, tx, ty = fit.cam.tolist()
    side = fit.crop_side
    tz = 2 * f / (s * side)
    offset = 2 * (fit.bbox_center - k[:2, 2]) / (s * side)
    return np.array([tx / s + offset[0], ty / s + offset[1], tz])


def body_model_fit(fit: EftFit, intrinsic_matrix: np.ndarray, trans: str = "perspective") -> BodyModelFit:
    """posebank's SMPL fit of one EFT entry in the image's camera (= world) frame (module docstring)."""
    if trans not in TRANS_MODES:
        raise ValueError(f"unknown trans mode {trans!r}; known: {TRANS_MODES}")
    # the nearest rotations to the (float32-rounded) matrices: axis-angle of a matrix off by rounding is less
    # accurate near 180 degrees, where the global orientation of an upright person lies
    u, _, vt = np.linalg.svd(fit.rotmats)
    pose = axis_angle(u @ vt).reshape(-1)
    t = perspective_translation(fit, intrinsic_matrix) if trans == "perspective" else np.zeros(3)
    return BodyModelFit("smpl", "neutral", pose, fit.betas, t)
