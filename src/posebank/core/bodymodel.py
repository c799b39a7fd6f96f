"""Body-model parameters (SMPL / SMPL-X) of a person, and their change of frame (world -> a camera).

A fit is stored in the dataset's world frame: ``pose`` is axis-angle per body-model joint (the first three values
the global orientation), ``betas`` the shape coefficients, ``trans`` the model's translation, all in the model's
own units (metres, as SMPL and SMPL-X are defined; posebank's joints are in mm). ``root`` is the model's root
joint (pelvis) in the model's rest frame for these betas (``J_regressor[0] @ v_shaped``), in metres, when known:
the model rotates about that joint, so moving a fit into a camera's frame needs it for the translation
(:func:`to_camera`). It is known when the dataset gives the posed root joint (then ``root = joint - trans``) or a
body-model folder is configured; otherwise the camera-frame translation is unknown (NaN) while the camera-frame
orientation is always exact.
"""

from __future__ import annotations

import dataclasses

import numpy as np

MODELS = ("smpl", "smplx")
GENDERS = ("neutral", "male", "female")
POSE_SIZE = {"smpl": 72, "smplx": 165}  # 24 x 3; 55 x 3 (global, 21 body, jaw, 2 eyes, 2 x 15 hand joints)
MAX_POSE = max(POSE_SIZE.values())
MAX_BETAS = 16  # BEDLAM's SMPL-X fits have 16 (10 or 11 elsewhere); fewer are zero-padded, the count is kept


@dataclasses.dataclass
class BodyModelFit:
    model: str  # smpl / smplx
    gender: str  # neutral / male / female
    pose: np.ndarray  # (POSE_SIZE[model],) axis-angle, world frame
    betas: np.ndarray  # (B,) B <= MAX_BETAS
    trans: np.ndarray  # (3,) metres, world frame
    root: np.ndarray | None = None  # (3,) metres: the root joint of the shaped model at rest, when known

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"unknown body model {self.model!r}; known: {MODELS}")
        if self.gender not in GENDERS:
            raise ValueError(f"unknown gender {self.gender!r}; known: {GENDERS}")
        self.pose = np.asarray(self.pose, np.float64).reshape(-1)
        if self.pose.size != POSE_SIZE[self.model]:
            raise ValueError(f"{self.model} pose has {self.pose.size} values, expected {POSE_SIZE[self.model]}")
        self.betas = np.asarray(self.betas, np.float64).reshape(-1)
        if self.betas.size > MAX_BETAS:
            raise ValueError(f"{self.betas.size} betas; at most {MAX_BETAS}")
        self.trans = np.asarray(self.trans, np.float64).reshape(3)
        if self.root is not None:
            self.root = np.asarray(self.root, np.float64).reshape(3)


def gender_name(value) -> str:
    """A dataset's gender label ('m', 'f', 'male', b'female', 'n', 0/1 ...) as one of :data:`GENDERS`; SPIN's
    ``str(g) == 'm'`` turned bytes and anything else into female, this refuses what it does not know."""
    if isinstance(value, bytes):
        value = value.decode()
    text = str(value).strip().lower()
    for name in GENDERS:
        if text in (name, name[0]):
            return name
    raise ValueError(f"unknown gender label {value!r}")


def rodrigues(v: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrices."""
    v = np.asarray(v, np.float64)
    theta = np.linalg.norm(v, axis=-1, keepdims=True)
    k = np.divide(v, theta, out=np.zeros_like(v), where=theta > 1e-12)
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    zero = np.zeros_like(kx)
    K = np.stack([zero, -kz, ky, kz, zero, -kx, -ky, kx, zero], axis=-1).reshape(*v.shape[:-1], 3, 3)
    s, c = np.sin(theta)[..., None], np.cos(theta)[..., None]
    eye = np.broadcast_to(np.eye(3), K.shape)
    return eye + s * K + (1 - c) * (K @ K)


def axis_angle(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle (angle in [0, pi])."""
    R = np.asarray(R, np.float64)
    cos = np.clip((np.trace(R, axis1=-2, axis2=-1) - 1) / 2, -1.0, 1.0)
    theta = np.arccos(cos)
    w = np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1)
    s = np.sin(theta)
    out = np.where((s > 1e-6)[..., None], w * (theta / np.where(s > 1e-6, 2 * s, 1))[..., None], w / 2)
    near_pi = theta > np.pi - 1e-4
    if np.any(near_pi):  # sin ~ 0 at pi: the axis from the symmetric part (R + I) / 2 = k k^T
        B = (R[near_pi] + np.eye(3)) / 2
        col = np.argmax(np.diagonal(B, axis1=-2, axis2=-1), axis=-1)
        k = B[np.arange(len(B)), :, col]
        k /= np.linalg.norm(k, axis=-1, keepdims=True)
        out[near_pi] = k * theta[near_pi][..., None]
    return out


def to_camera(fit: BodyModelFit, R: np.ndarray, center_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fit's global orientation (axis-angle) and translation (metres) in the frame of a camera with world ->
    camera rotation ``R`` and centre ``center_m`` (metres, world). The translation is NaN when ``fit.root`` is not
    known. The body pose (every joint after the root) does not change with the frame."""
    R = np.asarray(R, np.float64)
    orient = axis_angle(R @ rodrigues(fit.pose[:3]))
    if fit.root is None:
        return orient, np.full(3, np.nan)
    trans = R @ (fit.root + fit.trans - np.asarray(center_m, np.float64)) - fit.root
    return orient, trans
