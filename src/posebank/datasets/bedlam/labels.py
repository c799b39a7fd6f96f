"""BEDLAM's per-scene label files (``all_npz_12_training/<scene>_<fps>fps.npz``).

Written by pixelite1201/BEDLAM, data_processing/df_full_body.py:496-513 with ``np.savez`` of per-row Python lists,
one row per person and frame (rows grouped by sequence, then person, then frame, lines 463-492 and 322-404):

=============  ==============  =====================================================================================
key            shape, dtype     content
=============  ==============  =====================================================================================
imgname        (N,) <U          ``seq_000000/seq_000000_0000.png``: sequence folder and file (line 390)
center         (N, 2) float     box centre, px: from ``gtkps[:22]`` inside the image (lines 23-44, 374)
scale          (N,) float       box side / 200, x 1.2 (``SCALE_FACTOR_BBOX``)
pose_cam       (N, 165) f8      SMPL-X full pose, axis-angle (global, 21 body, jaw, 2 eyes, 2 x 15 hand joints),
                                global orientation in the camera frame (line 362)
pose_world     (N, 165) f8      the same with the global orientation in the world frame (line 365)
shape          (N, 11) f8       betas of the neutral SMPL-X model (``num_betas=11``, line 100; 16 in the
                                BEDLAM2-compatible labels, df_full_body_bedlam1_compatible.py:312)
trans_cam      (N, 3) f8        translation with the body in the camera frame, minus the camera's (line 312)
trans_world    (N, 3) f8        translation, world frame (line 309)
gtkps          (N, 127, 3) f4   the 127 joints of ``smplx.SMPLX`` projected: x, y, 1 (lines 143-150, 368-369)
cam_int        (N, 3, 3) f8     intrinsics: f = focal mm / sensor mm x image size, principal point at the image
                                centre (lines 72-79, 349)
cam_ext        (N, 4, 4) f8     world -> camera: [R | T] with p_cam = R p_world + T, metres (lines 357-360)
gender         (N,) <U          the subject's gender (``gender_sub``: male / female, line 391)
proj_verts     (N, 437, 3) f4   437 downsampled vertices projected (line 372)
motion_info    (N, ...)         AMASS motion and BABEL label (HEAD only; not read)
sub            (N,) <U          the subject (body) name (HEAD only, line 404)
=============  ==============  =====================================================================================

The fits belong to the *neutral* SMPL-X model: ``gender`` names the rendered subject, but the parameters (from
``neutral_ground_truth_motioninfo``, line 411) are posed with ``smplx_model_neutral`` (lines 128-137, 341, 368);
posepile poses them with the neutral model too (src/posepile/ds/bedlam/main.py:34-35, 128-130).

Only the keys the conversion needs are read (numpy's npz loads keys lazily), with ``allow_pickle=False``.
"""

from __future__ import annotations

import dataclasses
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from posebank.datasets.base import RawFileError

REQUIRED = ("imgname", "pose_world", "shape", "trans_world", "cam_int", "cam_ext", "gtkps")
POSE_SIZE = 165
MAX_BETAS = 16
N_SKELETON = 55  # gtkps[:55] are the SMPL-X skeleton joints (smplx's joint order)
IMGNAME = re.compile(r"(?P<seq>seq_(?P<seq_no>\d+))/(?P=seq)_(?P<frame>\d+)\.png")


@dataclasses.dataclass
class Labels:
    path: Path
    imgname: list[str]
    sequence: list[str]  # seq_000000
    frame: np.ndarray  # (N,) int: the frame number in the file name (the 30 fps frame index)
    pose_world: np.ndarray  # (N, 165) float64
    shape: np.ndarray  # (N, B) float64
    trans_world: np.ndarray  # (N, 3) float64, metres
    cam_int: np.ndarray  # (N, 3, 3) float64
    cam_ext: np.ndarray  # (N, 4, 4) float64
    gtkps: np.ndarray  # (N, K, 2) float64, K >= 55
    sub: list[str] | None  # subject names, when the file has them

    def __len__(self) -> int:
        return len(self.imgname)

    def finite_rows(self) -> np.ndarray:
        """(N,) bool: the rows whose parameters, camera and skeleton keypoints are all finite."""
        ok = np.ones(len(self), bool)
        for a in (self.pose_world, self.shape, self.trans_world, self.cam_int, self.cam_ext,
                  self.gtkps[:, :N_SKELETON]):
            ok &= np.isfinite(a.reshape(len(self), -1)).all(axis=1)
        return ok


def _read(npz, path: Path, key: str) -> np.ndarray:
    try:
        return np.asarray(npz[key])
    except ValueError:
        raise RawFileError(path, f"'{key}' holds Python objects (a pickle), which posebank does not load") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise RawFileError(path, f"'{key}' cannot be read: truncated or corrupt ({type(e).__name__})") from None


def _numeric(path: Path, key: str, a: np.ndarray, n: int, shapes: tuple[tuple, ...]) -> np.ndarray:
    """``a`` as float64 of shape ``(n, *shape)`` for one of ``shapes`` (-1: any length); a fixed shape may come
    flattened or nested (``(n, 55, 3)`` for ``(165,)``)."""
    if not np.issubdtype(a.dtype, np.number) or a.dtype.kind == "c":
        raise RawFileError(path, f"'{key}' is {a.dtype}, expected numbers")
    for shape in shapes:
        if a.ndim == len(shape) + 1 and a.shape[0] == n and all(s in (-1, t) for s, t in zip(shape, a.shape[1:])):
            return a.astype(np.float64)
        if -1 not in shape and a.shape[:1] == (n,) and a.size == n * int(np.prod(shape)):
            return a.reshape(n, *shape).astype(np.float64)
    wanted = " or ".join(str((n, *s)).replace("-1", "K") for s in shapes)
    raise RawFileError(path, f"'{key}' has shape {a.shape}, expected {wanted}")


def read_labels(path) -> Labels:
    """One scene's label file; RawFileError naming the file and key for anything unexpected."""
    path = Path(path)
    try:
        npz = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise RawFileError(path, "label file not found") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise RawFileError(path, f"unreadable label file: not an npz archive, or truncated or corrupt "
                                 f"({type(e).__name__})") from None
    with npz:
        missing = [k for k in REQUIRED if k not in npz.files]
        if missing:
            raise RawFileError(path, f"no {', '.join(repr(k) for k in missing)} array (a BEDLAM label file holds "
                                     f"{', '.join(REQUIRED)}, ...)")
        raw = {k: _read(npz, path, k) for k in REQUIRED}
        sub = _read(npz, path, "sub") if "sub" in npz.files else None
    names = raw["imgname"]
    if names.ndim != 1 or names.dtype.kind not in "US":
        raise RawFileError(path, f"'imgname' has shape {names.shape} ({names.dtype}), expected (N,) strings")
    imgname = [n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist()]
    n = len(imgname)
    sequence, frame = [], np.empty(n, np.int64)
    for i, name in enumerate(imgname):
        m = IMGNAME.fullmatch(name)
        if m is None:
            raise RawFileError(path, f"imgname[{i}] is {name!r}, expected seq_NNNNNN/seq_NNNNNN_FFFF.png")
        sequence.append(m["seq"])
        frame[i] = int(m["frame"])
    shape = raw["shape"]
    if shape.ndim != 2 or shape.shape[0] != n or not 1 <= shape.shape[1] <= MAX_BETAS:
        raise RawFileError(path, f"'shape' has shape {shape.shape}, expected ({n}, B) betas, B <= {MAX_BETAS}")
    gtkps = _numeric(path, "gtkps", raw["gtkps"], n, ((-1, 3), (-1, 2)))
    if gtkps.shape[1] < N_SKELETON:
        raise RawFileError(path, f"'gtkps' has {gtkps.shape[1]} keypoints, expected at least {N_SKELETON} "
                                 "(the SMPL-X skeleton joints first)")
    cam_ext = _numeric(path, "cam_ext", raw["cam_ext"], n, ((4, 4), (3, 4)))
    if cam_ext.shape[1] == 3:
        cam_ext = np.concatenate([cam_ext, np.broadcast_to([[[0.0, 0, 0, 1]]], (n, 1, 4))], axis=1)
    if sub is not None:
        if sub.shape != (n,) or sub.dtype.kind not in "US":
            raise RawFileError(path, f"'sub' has shape {sub.shape} ({sub.dtype}), expected ({n},) strings")
        sub = [s.decode() if isinstance(s, bytes) else str(s) for s in sub.tolist()]
    return Labels(
        path=path, imgname=imgname, sequence=sequence, frame=frame,
        pose_world=_numeric(path, "pose_world", raw["pose_world"], n, ((POSE_SIZE,),)),
        shape=_numeric(path, "shape", shape, n, ((shape.shape[1],),)),
        trans_world=_numeric(path, "trans_world", raw["trans_world"], n, ((3,),)),
        cam_int=_numeric(path, "cam_int", raw["cam_int"], n, ((3, 3),)),
        cam_ext=cam_ext, gtkps=gtkps[:, :, :2].copy(), sub=sub)


def read_intrinsics(path) -> np.ndarray:
    """(N, 3, 3) ``cam_int`` of a label file only (what the frame source needs to know the images' orientation)."""
    path = Path(path)
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise RawFileError(path, f"unreadable label file: not an npz archive, or truncated or corrupt "
                                 f"({type(e).__name__})") from None
    with npz:
        if "cam_int" not in npz.files:
            raise RawFileError(path, "no 'cam_int' array")
        k = _read(npz, path, "cam_int")
    return _numeric(path, "cam_int", k, len(k), ((3, 3),))
