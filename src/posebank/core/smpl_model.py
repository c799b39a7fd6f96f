"""The 24 SMPL skeleton joints of a fit (BEHAVE's, SPEC's), posed with the ``smplx`` package's own kinematics.

Datasets that ship SMPL parameters instead of 3D joints (BEHAVE's ``fit02/person_fit.pkl``, SPEC-SYN's ``pose`` and
``shape``) get their joints the way posepile computes them (isarandi/posepile ``ds/behave/main.py``,
``ds/spec/main.py``: the 24 joints of a gendered or neutral SMPL model): rest joints
``J_regressor @ (v_template + shapedirs @ betas)``, then ``smplx.lbs.batch_rodrigues`` and
``smplx.lbs.batch_rigid_transform`` along the model's ``kintree_table``, plus ``transl`` -- the first 24 joints of
``smplx.SMPL.forward`` (the ones after them are vertices). The kinematics are those of
:class:`posebank.core.smplx_model.SmplxJoints`, over 24 joints.

The SMPL model is licensed (https://smpl.is.tue.mpg.de) and never bundled: the user configures a folder holding
``smpl/SMPL_{NEUTRAL,MALE,FEMALE}.npz`` (smplx's own folder layout, ``smpl/SMPL_<GENDER>.<ext>``, as an npz). The
release ships pickles of chumpy objects (``basicmodel_*_lbs_10_207_0_v1.1.0.pkl``, which ``smplx.SMPL`` unpickles),
and posebank never unpickles a model: convert each once with smplx's ``tools/clean_ch.py`` and ``numpy.savez`` of
its arrays (``v_template``, ``shapedirs``, ``J_regressor`` as a dense array, ``kintree_table``; the others may be
kept). The file is read with ``numpy.load(..., allow_pickle=False)``, only the four arrays the joints need.

:func:`write_random_model` writes a small randomly initialised model of the same layout (2 vertices per joint,
a human-proportioned rest skeleton in metres, y up), for fixtures and tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from posebank.core.smplx_model import SmplxJoints

MODEL_FILE = "smpl/SMPL_{gender}.npz"  # relative to the configured folder (smplx's layout, as an npz)
N_JOINTS = 24
JOINT_NAMES = ("pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
               "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
               "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
               "left_hand", "right_hand")  # smplx.joint_names.JOINT_NAMES[:24]
PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
# a human-proportioned rest skeleton (metres, y up, +x the person's left), close to SMPL's neutral rest joints
REST_JOINTS = np.array([
    (0.0, -0.22, 0.02), (0.06, -0.31, 0.01), (-0.06, -0.31, 0.01), (0.0, -0.11, -0.01), (0.10, -0.69, 0.01),
    (-0.10, -0.69, 0.01), (0.0, 0.03, 0.0), (0.09, -1.09, -0.04), (-0.09, -1.09, -0.04), (0.0, 0.09, 0.02),
    (0.12, -1.15, 0.08), (-0.12, -1.15, 0.08), (0.0, 0.29, -0.01), (0.08, 0.20, 0.0), (-0.08, 0.20, 0.0),
    (0.0, 0.36, 0.04), (0.17, 0.23, -0.02), (-0.17, 0.23, -0.02), (0.43, 0.21, -0.04), (-0.43, 0.21, -0.04),
    (0.68, 0.22, -0.04), (-0.68, 0.22, -0.04), (0.77, 0.21, -0.05), (-0.77, 0.21, -0.05)])
N_BETAS = 10  # the SMPL release's shape components


def model_path(folder, gender: str = "neutral") -> Path:
    return Path(folder) / MODEL_FILE.format(gender=gender.upper())


class SmplJoints(SmplxJoints):
    """The posed 24 skeleton joints of an SMPL model file: ``joints(pose (N, 72), betas (N, B), trans (N, 3))``
    -> (N, 24, 3) metres; ``root(betas)`` the rest pelvis. ``param`` names the params.yaml key in errors."""

    LABEL = "SMPL"
    BETAS_HINT = " (an SMPL model with more shape components is needed)"
    N_JOINTS = N_JOINTS
    MODEL_FILE = MODEL_FILE

    def __init__(self, folder, gender: str = "neutral", max_betas: int = N_BETAS, param: str = "body_model_dir"):
        super().__init__(folder, gender, max_betas=max_betas, param=param)


def random_model(seed: int = 0, n_betas: int = N_BETAS) -> dict[str, np.ndarray]:
    """The arrays of a small SMPL model file with the keys, shapes and dtypes ``smplx.SMPL`` loads (v_template,
    f, shapedirs (V, 3, B), posedirs (V, 3, 207), J_regressor (24, V), weights (V, 24), kintree_table (2, 24)),
    2 vertices per joint, random shape directions, and :data:`REST_JOINTS` as its mean rest skeleton."""
    rng = np.random.default_rng(seed)
    offsets = rng.normal(0, 0.01, (N_JOINTS, 3))
    v_template = np.concatenate([REST_JOINTS + offsets, REST_JOINTS - offsets])  # joint k: vertices k and 24 + k
    n_verts = 2 * N_JOINTS
    j_regressor = np.zeros((N_JOINTS, n_verts))
    j_regressor[np.arange(N_JOINTS), np.arange(N_JOINTS)] = 0.5
    j_regressor[np.arange(N_JOINTS), N_JOINTS + np.arange(N_JOINTS)] = 0.5
    weights = np.zeros((n_verts, N_JOINTS))
    weights[np.arange(n_verts), np.arange(n_verts) % N_JOINTS] = 1.0
    kintree = np.array([[4294967295, *PARENTS[1:]], range(N_JOINTS)], np.int64)
    return {
        "v_template": v_template,
        "f": np.array([[k, N_JOINTS + k, (k + 1) % N_JOINTS] for k in range(N_JOINTS)], np.uint32),
        "shapedirs": rng.normal(0, 0.008, (n_verts, 3, n_betas)),
        "posedirs": rng.normal(0, 0.001, (n_verts, 3, 9 * (N_JOINTS - 1))),
        "J_regressor": j_regressor, "weights": weights, "kintree_table": kintree,
    }


def write_random_model(folder, gender: str = "neutral", seed: int = 0) -> Path:
    """Write :func:`random_model` as ``folder/smpl/SMPL_<GENDER>.npz`` (the layout smplx.create reads) and return
    the file; ``folder`` is then a body-model folder."""
    path = model_path(folder, gender)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **random_model(seed))
    return path


def rest_joints(model: dict, betas) -> np.ndarray:
    """(24, 3) rest joints of a model's arrays for ``betas``: J_regressor @ (v_template + shapedirs @ betas)."""
    betas = np.asarray(betas, np.float64)
    return model["J_regressor"] @ (model["v_template"] + model["shapedirs"][:, :, :len(betas)] @ betas)


def forward_kinematics(pose, rest: np.ndarray) -> np.ndarray:
    """(24, 3) posed joints (no translation) for a 72-value axis-angle pose along SMPL's tree, in plain numpy (an
    independent check of :class:`SmplJoints`)."""
    from posebank.core.bodymodel import rodrigues

    rot = [rodrigues(r) for r in np.asarray(pose, np.float64).reshape(N_JOINTS, 3)]
    glob, out = [rot[0]], [rest[0]]
    for k in range(1, N_JOINTS):
        par = PARENTS[k]
        out.append(out[par] + glob[par] @ (rest[k] - rest[par]))
        glob.append(glob[par] @ rot[k])
    return np.array(out)
