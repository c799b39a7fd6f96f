"""RICH's SMPL-X fits posed as posepile and the RICH toolkit pose them: the 42 joints of posepile's ``smplx_42``.

posepile (isarandi/posepile ``ds/rich/main.py``, ``load_smplx_models``, ``get_smplx_joints``) and the toolkit
(paulchhuang/rich_toolkit ``smplx2images.py``) call ``smplx`` with the subject's gendered model, 10 betas,
10 expression coefficients, 12 PCA hand components and the model's mean hand (``flat_hand_mean=False``), no face
contour, and take ``output.joints`` x 1000; ``make_rich_body`` keeps 42 of its 127 joints. Those are 27 skeleton
joints (pelvis ... right wrist, jaw, both eyeballs, both middle-finger bases) and 15 of the joints smplx reads off
posed vertices (``smplx.vertex_ids['smplx']``: nose, eyes, ears, big and small toes, heels, thumb and
middle-finger tips).

What is computed is exactly that part of ``smplx.SMPLX.forward``, in float64: the hands' PCA coefficients times
the model's first 12 ``hands_components`` plus ``hands_mean``; rest joints ``J_regressor @ (v_template +
shapedirs @ [betas, expression])`` (through :class:`posebank.core.smplx_model.SmplxJoints`, which reads and
checks the model file without unpickling it); ``smplx.lbs.batch_rodrigues`` and ``batch_rigid_transform``; the 15
vertices with their shape and pose blend shapes (``posedirs``) skinned by the model's ``weights``; plus
``transl``. Only the 15 vertices are posed, not all 10475: the same numbers for those joints.
"""

from __future__ import annotations

import numpy as np

from posebank.core.errors import ParamsError, RawFileError
from posebank.core.smplx_model import N_JOINTS, SHAPE_SPACE_DIM, SmplxJoints, load_arrays

N_BETAS = 10  # posepile and the toolkit: num_betas=10 (smplx's default)
N_EXPRESSION = 10  # num_expression_coeffs=10
N_PCA = 12  # num_pca_comps=12
EXPRESSION_SPACE_DIM = 100  # smplx SMPLX.EXPRESSION_SPACE_DIM
# smplx.vertex_ids['smplx'] in VertexJointSelector's order (face, feet, then l/r tips thumb index middle ring pinky)
VERTEX_JOINTS = (("nose", 9120), ("reye", 9929), ("leye", 9448), ("rear", 616), ("lear", 6),
                 ("LBigToe", 5770), ("LSmallToe", 5780), ("LHeel", 8846), ("RBigToe", 8463), ("RSmallToe", 8474),
                 ("RHeel", 8635), ("lthumb", 5361), ("lindex", 4933), ("lmiddle", 5058), ("lring", 5169),
                 ("lpinky", 5286), ("rthumb", 8079), ("rindex", 7669), ("rmiddle", 7794), ("rring", 7905),
                 ("rpinky", 8022))
# posepile make_rich_body: i_sel = [*range(25), 28, 43, *range(55, 67), 68, 71, 73] of smplx's 127 joints
SELECTION = (*range(25), 28, 43, *range(55, 67), 68, 71, 73)
SKELETON_SEL = tuple(i for i in SELECTION if i < N_JOINTS)
VERTEX_SEL = tuple(i - N_JOINTS for i in SELECTION if i >= N_JOINTS)  # positions in VERTEX_JOINTS
VERTEX_IDS = tuple(VERTEX_JOINTS[k][1] for k in VERTEX_SEL)
EXTRA = ("posedirs", "weights", "hands_componentsl", "hands_componentsr", "hands_meanl", "hands_meanr",
         "J_regressor")
# a fit's keys (smplx.SMPLX.forward arguments) and their sizes; absent ones are zero, as smplx's defaults
FIT_KEYS = {"betas": N_BETAS, "global_orient": 3, "body_pose": 63, "left_hand_pose": N_PCA,
            "right_hand_pose": N_PCA, "jaw_pose": 3, "leye_pose": 3, "reye_pose": 3, "expression": N_EXPRESSION,
            "transl": 3}
REQUIRED_KEYS = ("betas", "global_orient", "body_pose", "transl")


def fit_arrays(fit, where) -> dict[str, np.ndarray]:
    """One fit pickle's dict as float64 vectors of :data:`FIT_KEYS`' sizes (absent optional keys: zeros)."""
    if not isinstance(fit, dict):
        raise RawFileError(where, f"holds a {type(fit).__name__}, expected a dict of SMPL-X parameters")
    missing = [k for k in REQUIRED_KEYS if k not in fit]
    if missing:
        raise RawFileError(where, f"no {', '.join(missing)} (has {', '.join(sorted(map(str, fit)))})")
    out = {}
    for key, size in FIT_KEYS.items():
        if key not in fit:
            out[key] = np.zeros(size)
            continue
        try:
            value = np.asarray(fit[key], np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise RawFileError(where, f"'{key}' is not numeric") from None
        if value.size != size:
            raise RawFileError(where, f"'{key}' has {value.size} values, expected {size}")
        if not np.all(np.isfinite(value)):
            raise RawFileError(where, f"'{key}' has non-finite values")
        out[key] = value
    return out


class RichBody:
    """The 42 posed joints of one gendered SMPL-X model file (module docstring)."""

    def __init__(self, folder, gender: str, param: str):
        self.skeleton = SmplxJoints(folder, gender, max_betas=N_BETAS, param=param)
        self.path = self.skeleton.path
        torch = self.skeleton._torch
        a = load_arrays(self.path, ("v_template", "shapedirs", *EXTRA))
        n_verts = a["v_template"].shape[0]
        if n_verts <= max(VERTEX_IDS):
            raise RawFileError(self.path, f"has {n_verts} vertices; SMPL-X's vertex joints need {max(VERTEX_IDS) + 1}"
                                          " or more (10475 in SMPL-X)")
        shapedirs = a["shapedirs"]
        if shapedirs.shape[-1] < SHAPE_SPACE_DIM + EXPRESSION_SPACE_DIM:  # as smplx: 10 shape + 10 expression
            cols = [*range(N_BETAS), *range(10, 10 + N_EXPRESSION)]
        else:
            cols = [*range(N_BETAS), *range(SHAPE_SPACE_DIM, SHAPE_SPACE_DIM + N_EXPRESSION)]
        if shapedirs.shape[-1] < max(cols) + 1:
            raise RawFileError(self.path, f"shapedirs has {shapedirs.shape[-1]} components; 10 shape and 10 "
                                          "expression components are needed")
        bad = []
        for key, shape in (("posedirs", (n_verts, 3, 9 * (N_JOINTS - 1))), ("weights", (n_verts, N_JOINTS)),
                           ("hands_componentsl", (45, 45)), ("hands_componentsr", (45, 45)),
                           ("hands_meanl", (45,)), ("hands_meanr", (45,))):
            if a[key].shape != shape:
                bad.append(f"{key} {a[key].shape} (expected {shape})")
        if bad:
            raise RawFileError(self.path, f"not an SMPL-X model: {'; '.join(bad)}")
        f64 = torch.float64
        ids = list(VERTEX_IDS)
        jr = torch.as_tensor(np.asarray(a["J_regressor"], np.float64), dtype=f64)
        expr = torch.as_tensor(np.asarray(shapedirs[:, :, cols[N_BETAS:]], np.float64), dtype=f64)
        self.j_exprdirs = self.skeleton._lbs.vertices2joints(jr, expr.permute(2, 0, 1)).permute(1, 2, 0)
        self.v_template = np.asarray(a["v_template"][ids], np.float64)
        self.v_shapedirs = np.asarray(shapedirs[ids][:, :, cols], np.float64)  # (15, 3, 20)
        self.v_posedirs = np.asarray(a["posedirs"][ids], np.float64)  # (15, 3, 486)
        self.v_weights = np.asarray(a["weights"][ids], np.float64)  # (15, 55)
        self.hand_components = [np.asarray(a[f"hands_components{s}"][:N_PCA], np.float64) for s in "lr"]
        self.hand_mean = [np.asarray(a[f"hands_mean{s}"], np.float64) for s in "lr"]

    def full_pose(self, fits: list[dict]) -> np.ndarray:
        """(N, 165) axis-angle: global, 21 body, jaw, eyes, then the hands from their PCA plus the mean hand."""
        out = []
        for f in fits:
            hands = [f[f"{s}_hand_pose"] @ c + m for s, c, m in
                     zip(("left", "right"), self.hand_components, self.hand_mean)]
            out.append(np.concatenate([f["global_orient"], f["body_pose"], f["jaw_pose"], f["leye_pose"],
                                       f["reye_pose"], *hands]))
        return np.asarray(out, np.float64).reshape(len(fits), 3 * N_JOINTS)

    def rest_root(self, fits: list[dict]) -> np.ndarray:
        """(N, 3) metres: the shaped model's root joint at rest (betas and expression)."""
        return self._rest_joints(fits)[:, 0].numpy()

    def _rest_joints(self, fits: list[dict]):
        torch = self.skeleton._torch
        betas = np.stack([f["betas"] for f in fits])
        expression = torch.as_tensor(np.stack([f["expression"] for f in fits]), dtype=torch.float64)
        return self.skeleton._rest(betas) + torch.einsum("jcs,ns->njc", self.j_exprdirs, expression)

    def joints(self, fits: list[dict]) -> np.ndarray:
        """(N, 42, 3) metres, world frame: posepile's ``smplx_42`` joints of the fits (``fit_arrays`` dicts)."""
        if not fits:
            return np.zeros((0, len(SELECTION), 3))
        torch, lbs = self.skeleton._torch, self.skeleton._lbs
        n = len(fits)
        pose = self.full_pose(fits)
        rest = self._rest_joints(fits)
        rot = lbs.batch_rodrigues(torch.as_tensor(pose.reshape(-1, 3))).reshape(n, N_JOINTS, 3, 3)
        posed, transforms = lbs.batch_rigid_transform(rot, rest, self.skeleton.parents, dtype=torch.float64)
        shape = np.stack([np.concatenate([f["betas"], f["expression"]]) for f in fits])
        v_shaped = self.v_template + np.einsum("vcs,ns->nvc", self.v_shapedirs, shape)
        pose_feature = (rot[:, 1:].numpy() - np.eye(3)).reshape(n, -1)
        v_posed = v_shaped + np.einsum("np,vcp->nvc", pose_feature, self.v_posedirs)
        t = np.einsum("vk,nkij->nvij", self.v_weights, transforms.numpy())
        verts = np.einsum("nvij,nvj->nvi", t[..., :3, :3], v_posed) + t[..., :3, 3]
        transl = np.stack([f["transl"] for f in fits])[:, None]
        return np.concatenate([posed.numpy()[:, list(SKELETON_SEL)], verts], axis=1) + transl


def missing_model(param: str, folder, gender: str, path) -> ParamsError:
    return ParamsError(param, f"no {path}: RICH's 3D joints are posed from its SMPL-X fits and need the licensed "
                              f"SMPL-X model (https://smpl-x.is.tue.mpg.de, models_smplx_v1_1.zip), the folder "
                              f"{folder} holding smplx/SMPLX_{gender.upper()}.npz")
