"""The 55 SMPL-X skeleton joints of BEDLAM's (and RICH's) fits, posed with the ``smplx`` package's own kinematics.

BEDLAM's labels hold SMPL-X parameters, not 3D joints: BEDLAM computes its ``gtkps`` with
``smplx.create(MODEL_FOLDER, model_type='smplx', gender='neutral', num_betas=11, flat_hand_mean=True,
use_pca=False)`` (pixelite1201/BEDLAM, data_processing/df_full_body.py:96-101, 128-137), posepile poses the same
parameters with its own SMPL-X implementation (isarandi/posepile, src/posepile/ds/bedlam/main.py:34-35, 62-65;
``gender='neutral'``). The body model is licensed (https://smpl-x.is.tue.mpg.de) and never bundled: the user
configures the folder that ``smplx.create`` expects (``<folder>/smplx/SMPLX_NEUTRAL.npz``, the v1.1 release
``models_smplx_v1_1.zip`` that BEDLAM's data_processing/download_utils.sh fetches).

What is computed is exactly the first 55 joints of ``smplx.SMPLX.forward`` (the skeleton joints; the 72 joints
after them are vertices and face landmarks): rest joints ``J_regressor @ (v_template + shapedirs @ betas)``, then
``smplx.lbs.batch_rodrigues`` and ``smplx.lbs.batch_rigid_transform`` along the model's ``kintree_table``, plus
``transl``. With ``flat_hand_mean=True`` the hand pose is used as given (no mean hand added; smplx
body_models.py ``SMPLX.create_mean_pose``); the expression is zero (BEDLAM passes none), and the face expression
only moves vertices. The linear parts are applied to the joints (``J_regressor @ shapedirs``) rather than to all
10475 vertices: the same numbers, a thousand times cheaper.

The model file is read with ``numpy.load(..., allow_pickle=False)`` and only the four arrays the joints need:
``smplx.SMPLX`` itself loads the whole file with ``allow_pickle=True``, which would run any pickled object a file
carries (the real SMPLX_*.npz hold a few, e.g. ``joint2num``).
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from posebank.core.errors import ParamsError, RawFileError

MODEL_FILE = "smplx/SMPLX_{gender}.npz"  # relative to the configured folder, as smplx.create(folder, 'smplx') reads
N_JOINTS = 55  # pelvis, 21 body joints, jaw, 2 eyes, 2 x 15 finger joints
# smplx's SMPL.SHAPE_SPACE_DIM: a file with at least this many shape components has them all (SMPL-X v1.1: 300
# shape + 100 expression); with fewer, smplx uses 10 shape and 10 expression components (body_models.py)
SHAPE_SPACE_DIM = 300
NEEDED = ("v_template", "shapedirs", "J_regressor", "kintree_table")
CHUNK = 4096


def model_path(folder, gender: str = "neutral") -> Path:
    return Path(folder) / MODEL_FILE.format(gender=gender.upper())




def load_arrays(path: Path, needed=NEEDED, label: str = "SMPL-X") -> dict[str, np.ndarray]:
    """The ``needed`` arrays of a body-model file (``label``: SMPL-X, SMPL), read without unpickling; RawFileError
    names the file."""
    try:
        npz = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise RawFileError(path, f"{label} model file not found") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise RawFileError(path, f"unreadable {label} model file: not an npz archive, or truncated or corrupt "
                                 f"({type(e).__name__})") from None
    out = {}
    with npz:
        for key in needed:
            if key not in npz.files:
                raise RawFileError(path, f"no '{key}' array: not an {label} model file (the joints need "
                                         f"{', '.join(needed)})")
            try:
                out[key] = np.asarray(npz[key])
            except ValueError:
                raise RawFileError(path, f"'{key}' holds Python objects (a pickle), which posebank does not load; an "
                                         f"{label} model file stores it as a plain array") from None
            except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
                raise RawFileError(path, f"'{key}' cannot be read: truncated or corrupt ({type(e).__name__})") from None
    return out


class SmplxJoints:
    """The posed skeleton joints of an SMPL-X model file (see the module docstring).

    The class attributes name the model; :class:`posebank.core.smpl_model.SmplJoints` is the same kinematics over an
    SMPL file (24 joints)."""

    LABEL = "SMPL-X"
    BETAS_HINT = " (BEDLAM's need the SMPL-X v1.1 model, models_smplx_v1_1.zip)"
    N_JOINTS = N_JOINTS
    MODEL_FILE = MODEL_FILE

    def __init__(self, folder, gender: str = "neutral", max_betas: int = 16,
                 param: str = "datasets.bedlam.body_model_dir"):
        N_JOINTS, label = self.N_JOINTS, self.LABEL
        try:
            import torch
            from smplx import lbs
        except ImportError:
            raise ParamsError(param, "the 3D joints need the smplx package "
                              "(pip install smplx==0.1.28, and torch)") from None
        self._torch, self._lbs = torch, lbs
        self.path = Path(folder) / self.MODEL_FILE.format(gender=gender.upper())
        a = load_arrays(self.path, label=label)
        v_template, shapedirs, j_regressor, kintree = (a[k] for k in NEEDED)
        bad = []
        if v_template.ndim != 2 or v_template.shape[1] != 3:
            bad.append(f"v_template {v_template.shape} (expected (V, 3))")
        n_verts = v_template.shape[0] if v_template.ndim == 2 else -1
        if shapedirs.ndim != 3 or shapedirs.shape[:2] != (n_verts, 3):
            bad.append(f"shapedirs {shapedirs.shape} (expected ({n_verts}, 3, S))")
        if j_regressor.shape != (N_JOINTS, n_verts):
            bad.append(f"J_regressor {j_regressor.shape} (expected ({N_JOINTS}, {n_verts}))")
        if kintree.ndim != 2 or kintree.shape[0] != 2 or kintree.shape[1] != N_JOINTS:
            bad.append(f"kintree_table {kintree.shape} (expected (2, {N_JOINTS}))")
        for name, arr in (("v_template", v_template), ("shapedirs", shapedirs), ("J_regressor", j_regressor),
                          ("kintree_table", kintree)):
            if not np.issubdtype(arr.dtype, np.number):
                bad.append(f"{name} is {arr.dtype}, not numbers")
        if bad:
            raise RawFileError(self.path, f"not an {label} model of {N_JOINTS} joints: {'; '.join(bad)}")
        # as smplx: a file with fewer than 300 components holds 10 shape (then 10 expression) components
        self.n_shape = min(SHAPE_SPACE_DIM, shapedirs.shape[2]) if shapedirs.shape[2] >= SHAPE_SPACE_DIM else \
            min(10, shapedirs.shape[2])
        used = min(self.n_shape, max_betas)
        parents = np.asarray(kintree[0], np.float32).astype(np.int64)  # smplx: to_np (float32), then .long()
        parents[0] = -1
        if np.any(parents[1:] < 0) or np.any(parents[1:] >= np.arange(1, N_JOINTS)):
            raise RawFileError(self.path, "kintree_table: every joint's parent must come before it")
        f64 = torch.float64
        jr = torch.as_tensor(np.asarray(j_regressor, np.float64), dtype=f64)
        vt = torch.as_tensor(np.asarray(v_template, np.float64), dtype=f64)
        sd = torch.as_tensor(np.asarray(shapedirs[:, :, :used], np.float64), dtype=f64)
        self.j_template = lbs.vertices2joints(jr, vt[None])[0]  # (J, 3)
        self.j_shapedirs = lbs.vertices2joints(jr, sd.permute(2, 0, 1)).permute(1, 2, 0)  # (J, 3, used)
        self.parents = torch.as_tensor(parents)

    def _rest(self, betas: np.ndarray):
        torch = self._torch
        betas = np.asarray(betas, np.float64)
        if betas.shape[-1] > self.j_shapedirs.shape[-1]:
            raise RawFileError(self.path, f"the model has {self.n_shape} shape components, the fits have "
                                          f"{betas.shape[-1]} betas{self.BETAS_HINT}")
        b = torch.as_tensor(betas, dtype=torch.float64)
        return self.j_template + torch.einsum("jcs,ns->njc", self.j_shapedirs[..., :b.shape[-1]], b)

    def root(self, betas: np.ndarray) -> np.ndarray:
        """(N, 3) metres: the root joint (pelvis) of the shaped model at rest, ``J_regressor[0] @ v_shaped``."""
        return self._rest(np.atleast_2d(betas))[:, 0].numpy()

    def joints(self, pose: np.ndarray, betas: np.ndarray, trans: np.ndarray) -> np.ndarray:
        """(N, J, 3) metres: the posed skeleton joints for full poses (N, 3 J), betas (N, B), translations (N, 3);
        J = 55 for SMPL-X, 24 for SMPL."""
        torch, lbs, N_JOINTS = self._torch, self._lbs, self.N_JOINTS
        pose = np.asarray(pose, np.float64).reshape(len(pose), -1)
        if pose.shape[1] != 3 * N_JOINTS:
            raise ValueError(f"{self.LABEL} pose needs {3 * N_JOINTS} values, got {pose.shape[1]}")
        out = np.empty((len(pose), N_JOINTS, 3))
        for s in range(0, len(pose), CHUNK):
            e = min(s + CHUNK, len(pose))
            rest = self._rest(betas[s:e])
            rot = lbs.batch_rodrigues(torch.as_tensor(pose[s:e].reshape(-1, 3))).reshape(e - s, N_JOINTS, 3, 3)
            posed, _ = lbs.batch_rigid_transform(rot, rest, self.parents, dtype=torch.float64)
            out[s:e] = posed.numpy() + np.asarray(trans[s:e], np.float64)[:, None]
        return out
