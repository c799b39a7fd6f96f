"""Pinhole cameras with lens distortion, in posepile's naming.

Conventions
-----------
* World frame: millimetres. Each dataset keeps its own world axes; ``world_up`` names the up direction
  (a unit vector in world coordinates, ``(0, 0, 1)`` for Human3.6M).
* Camera frame: OpenCV, x right, y down, z forward (into the scene), millimetres.
* ``R`` rotates world directions into camera directions (world to camera); ``t`` is the optical centre
  expressed in world coordinates. Hence ``p_cam = R @ (p_world - t)``.
* ``intrinsic_matrix`` maps normalised image coordinates (x/z, y/z, 1) of the *distorted* point to pixels;
  pixel centres lie at integer coordinates, (0, 0) being the centre of the top-left pixel.
* ``distortion_coeffs`` are five numbers (k1, k2, p1, p2, k3) interpreted by ``distortion_model``:

  ``"opencv"``  Brown-Conrady as in OpenCV::

      r2 = x^2 + y^2;  radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3
      x' = x radial + 2 p1 x y + p2 (r2 + 2 x^2)
      y' = y radial + p1 (r2 + 2 y^2) + 2 p2 x y

  ``"h36m"``    the formula of the Human3.6M release code (``ProjectPointRadial``), whose tangential terms
                differ from OpenCV's and cannot be converted to them exactly::

      tan = p1 y + p2 x
      x' = x (radial + tan) + p2 r2
      y' = y (radial + tan) + p1 r2

  A camera whose coefficients are all zero has no distortion whatever the model.
"""

from __future__ import annotations

import dataclasses

import numpy as np

DISTORTION_MODELS = ("opencv", "h36m")


def distortion_codes(model) -> np.ndarray:
    """``model`` as int codes (indices into :data:`DISTORTION_MODELS`): a name or a code, or an array of either."""
    arr = np.asarray(model)
    if arr.dtype.kind in "US":
        unknown = sorted(set(arr.reshape(-1).tolist()) - set(DISTORTION_MODELS))
        if unknown:
            raise ValueError(f"unknown distortion model {unknown[0]!r}; known: {DISTORTION_MODELS}")
        return np.array([DISTORTION_MODELS.index(m) for m in arr.reshape(-1).tolist()], np.int64).reshape(arr.shape)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"distortion models must be names or integer codes, got {arr.dtype} values")
    codes = arr.astype(np.int64)
    bad = codes[(codes < 0) | (codes >= len(DISTORTION_MODELS))]
    if bad.size:
        raise ValueError(f"unknown distortion model code {int(bad[0])}; known: 0..{len(DISTORTION_MODELS) - 1} "
                         f"({', '.join(DISTORTION_MODELS)})")
    return codes


def distort_normalized(xy, coeffs, model="opencv") -> np.ndarray:
    """Lens distortion of normalised coordinates: the one implementation of both models (module docstring).

    ``xy`` (..., 2) = (x/z, y/z); ``coeffs`` (5,) = (k1, k2, p1, p2, k3) for every point, or (..., 5) one row per
    point; ``model`` a name or code (:data:`DISTORTION_MODELS`) for every point, or an array (...) of them, one per
    point. Returns the distorted coordinates (..., 2), float64. Non-finite inputs give non-finite outputs: unlike
    :meth:`Camera.distort` there is no shortcut for all-zero coefficients.
    """
    xy = np.asarray(xy, np.float64)
    d = np.asarray(coeffs, np.float64)
    if xy.shape[-1:] != (2,):
        raise ValueError(f"expected normalised coordinates of shape (..., 2), got {xy.shape}")
    if d.shape[-1:] != (5,):
        raise ValueError(f"expected distortion coefficients of shape (5,) or (..., 5), got {d.shape}")
    one_model = isinstance(model, str) and d.ndim == 1  # one camera's coefficients and model: no broadcasting
    if one_model:
        if model not in DISTORTION_MODELS:
            raise ValueError(f"unknown distortion model {model!r}; known: {DISTORTION_MODELS}")
        h36m = np.bool_(model == "h36m")
        k1, k2, p1, p2, k3 = d.tolist()
    else:
        h36m = distortion_codes(model) == DISTORTION_MODELS.index("h36m")
        k1, k2, p1, p2, k3 = (d[..., i] for i in range(5))
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))

    def opencv():
        return x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x), y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y

    def release():  # Human3.6M's ProjectPointRadial
        tan = p1 * y + p2 * x
        return x * (radial + tan) + p2 * r2, y * (radial + tan) + p1 * r2

    if not h36m.any():
        xd, yd = opencv()
    elif h36m.all():
        xd, yd = release()
    else:
        (xo, yo), (xh, yh) = opencv(), release()
        xd, yd = np.where(h36m, xh, xo), np.where(h36m, yh, yo)
    if one_model:
        return np.stack([xd, yd], axis=-1)
    shape = np.broadcast_shapes(x.shape, k1.shape, h36m.shape)
    return np.stack([np.broadcast_to(xd, shape), np.broadcast_to(yd, shape)], axis=-1)


def _as3x3(a) -> np.ndarray:
    a = np.asarray(a, np.float64)
    if a.shape != (3, 3):
        raise ValueError(f"expected a 3x3 matrix, got shape {a.shape}")
    return a


@dataclasses.dataclass(eq=False)
class Camera:
    """A camera: intrinsics, extrinsics (world to camera) and lens distortion. Units: mm and pixels."""

    intrinsic_matrix: np.ndarray
    R: np.ndarray
    t: np.ndarray
    distortion_coeffs: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(5))
    world_up: np.ndarray = dataclasses.field(default_factory=lambda: np.array([0.0, 0.0, 1.0]))
    distortion_model: str = "opencv"

    def __post_init__(self):
        self.intrinsic_matrix = _as3x3(self.intrinsic_matrix)
        self.R = _as3x3(self.R)
        self.t = np.asarray(self.t, np.float64).reshape(3)
        d = np.zeros(5)
        given = np.asarray(self.distortion_coeffs, np.float64).reshape(-1)
        if given.size > 5:
            raise ValueError(f"at most 5 distortion coefficients (k1 k2 p1 p2 k3), got {given.size}")
        d[: given.size] = given
        self.distortion_coeffs = d
        self.world_up = np.asarray(self.world_up, np.float64).reshape(3)
        if self.distortion_model not in DISTORTION_MODELS:
            raise ValueError(f"unknown distortion model {self.distortion_model!r}; known: {DISTORTION_MODELS}")

    # ----------------------------------------------------------------------------------------- basics
    def copy(self) -> Camera:
        return Camera(
            self.intrinsic_matrix.copy(), self.R.copy(), self.t.copy(), self.distortion_coeffs.copy(),
            self.world_up.copy(), self.distortion_model)

    @property
    def has_distortion(self) -> bool:
        return bool(np.any(self.distortion_coeffs != 0))

    @property
    def optical_center(self) -> np.ndarray:
        return self.t

    def __repr__(self) -> str:
        k = self.intrinsic_matrix
        return (f"Camera(f=({k[0, 0]:.2f}, {k[1, 1]:.2f}), c=({k[0, 2]:.2f}, {k[1, 2]:.2f}), "
                f"t={np.round(self.t, 2).tolist()}, distortion={self.distortion_model}:"
                f"{np.round(self.distortion_coeffs, 6).tolist()})")

    def allclose(self, other: Camera, rtol=1e-6, atol=1e-6) -> bool:
        return (self.distortion_model == other.distortion_model
                and all(np.allclose(a, b, rtol=rtol, atol=atol) for a, b in [
                    (self.intrinsic_matrix, other.intrinsic_matrix), (self.R, other.R), (self.t, other.t),
                    (self.distortion_coeffs, other.distortion_coeffs), (self.world_up, other.world_up)]))

    # ------------------------------------------------------------------------------------ transforms
    def world_to_camera(self, points_world) -> np.ndarray:
        p = np.asarray(points_world, np.float64)
        return (p - self.t) @ self.R.T

    def camera_to_world(self, points_camera) -> np.ndarray:
        p = np.asarray(points_camera, np.float64)
        return p @ self.R + self.t

    def distort(self, normalized) -> np.ndarray:
        """Apply lens distortion to normalised coordinates (..., 2) = (x/z, y/z) (see :func:`distort_normalized`)."""
        xy = np.asarray(normalized, np.float64)
        if not self.has_distortion:
            return xy.copy()
        return distort_normalized(xy, self.distortion_coeffs, self.distortion_model)

    def undistort_normalized(self, distorted, n_iter: int = 20) -> np.ndarray:
        """Invert :meth:`distort` by Newton iterations with an analytic-free (finite difference) Jacobian."""
        d = np.asarray(distorted, np.float64)
        if not self.has_distortion:
            return d.copy()
        u = d.copy()
        eps = 1e-7
        offsets = np.array([[0, 0], [eps, 0], [-eps, 0], [0, eps], [0, -eps]])
        offsets = offsets.reshape(5, *([1] * (u.ndim - 1)), 2)
        for _ in range(n_iter):
            # the point and its four finite-difference neighbours in one evaluation
            dd = self.distort(u[None] + offsets)
            f = dd[0] - d
            jx = (dd[1] - dd[2]) / (2 * eps)
            jy = (dd[3] - dd[4]) / (2 * eps)
            a, b, c, e = jx[..., 0], jy[..., 0], jx[..., 1], jy[..., 1]
            det = a * e - b * c
            du = (e * f[..., 0] - b * f[..., 1]) / det
            dv = (-c * f[..., 0] + a * f[..., 1]) / det
            u = u - np.stack([du, dv], axis=-1)
            if np.nanmax(np.abs(f)) < 1e-12:
                break
        return u

    def camera_to_image(self, points_camera) -> np.ndarray:
        p = np.asarray(points_camera, np.float64)
        normalized = p[..., :2] / p[..., 2:3]
        distorted = self.distort(normalized)
        k = self.intrinsic_matrix
        return distorted @ k[:2, :2].T + k[:2, 2]

    def project(self, points_world) -> np.ndarray:
        """World points (..., 3) in mm to pixel coordinates (..., 2), with distortion."""
        return self.camera_to_image(self.world_to_camera(points_world))

    world_to_image = project

    def image_to_normalized(self, points_image) -> np.ndarray:
        p = np.asarray(points_image, np.float64)
        kinv = np.linalg.inv(self.intrinsic_matrix)
        distorted = p @ kinv[:2, :2].T + kinv[:2, 2]
        return self.undistort_normalized(distorted)

    def image_to_camera(self, points_image, depth=1.0) -> np.ndarray:
        """Back-project pixels to camera-frame points at the given depth (z, mm)."""
        n = self.image_to_normalized(points_image)
        homogeneous = np.concatenate([n, np.ones_like(n[..., :1])], axis=-1)
        return homogeneous * np.asarray(depth, np.float64)[..., np.newaxis]

    def image_to_world(self, points_image, depth=1.0) -> np.ndarray:
        return self.camera_to_world(self.image_to_camera(points_image, depth))

    def undistort_points(self, points_image) -> np.ndarray:
        """Pixel coordinates as an ideal (distortion-free) camera with the same intrinsics would see them."""
        n = self.image_to_normalized(points_image)
        k = self.intrinsic_matrix
        return n @ k[:2, :2].T + k[:2, 2]

    # ------------------------------------------------------------------------------ derived cameras
    def undistorted(self) -> Camera:
        c = self.copy()
        c.distortion_coeffs = np.zeros(5)
        return c

    def zoomed(self, factor: float) -> Camera:
        """Scale the image by ``factor`` about the pixel grid's origin (pixel centres stay pixel centres)."""
        c = self.copy()
        c.intrinsic_matrix[:2, :2] *= factor
        c.intrinsic_matrix[:2, 2] = (c.intrinsic_matrix[:2, 2] + 0.5) * factor - 0.5
        return c

    def shifted(self, offset_xy) -> Camera:
        """Move the image origin: the pixel at ``offset_xy`` becomes (0, 0) (a crop's top-left corner)."""
        c = self.copy()
        c.intrinsic_matrix[:2, 2] -= np.asarray(offset_xy, np.float64)
        return c

    def turned_towards(self, target_image_point=None, target_world_point=None, upright: bool = True,
                       target_direction=None) -> Camera:
        """Rotate the camera about its optical centre so that its optical axis passes through a target.

        ``upright`` (default): zero roll about the world's up direction, as posepile's crops: the new z axis
        points at the target, x = z x world_up (horizontal in the world), y = z x x (so world_up points up in
        the image). Without it, or when the target lies along world_up, the smallest rotation that turns the
        optical axis onto the target (which keeps the source camera's roll). Intrinsics and distortion are kept.
        """
        given = [t is not None for t in (target_image_point, target_world_point, target_direction)]
        if sum(given) != 1:
            raise ValueError("give exactly one of target_image_point, target_world_point, target_direction")
        if target_direction is not None:  # a ray in this camera's coordinates
            direction_cam = np.asarray(target_direction, np.float64)
        elif target_image_point is not None:
            direction_cam = self.image_to_camera(np.asarray(target_image_point, np.float64), 1.0)
        else:
            direction_cam = self.world_to_camera(np.asarray(target_world_point, np.float64))
        direction_cam = direction_cam / np.linalg.norm(direction_cam)
        c = self.copy()
        if upright:
            z = self.R.T @ direction_cam  # the new optical axis in world coordinates
            up = np.asarray(self.world_up, np.float64)
            up = up / np.linalg.norm(up)
            x = np.cross(z, up)
            if np.linalg.norm(x) > 1e-9:
                x /= np.linalg.norm(x)
                c.R = np.stack([x, np.cross(z, x), z])
                return c
        rot = _rotation_between(np.array([0.0, 0.0, 1.0]), direction_cam)  # old camera axes -> new, old coords
        c.R = rot.T @ self.R
        return c

    def rotated_about_optical_axis(self, angle_rad: float) -> Camera:
        """Roll the image by ``angle_rad`` (positive turns image content clockwise on screen)."""
        cs, sn = np.cos(angle_rad), np.sin(angle_rad)
        roll = np.array([[cs, -sn, 0], [sn, cs, 0], [0, 0, 1]])
        c = self.copy()
        c.R = roll @ self.R
        return c

    def scaled_output(self, *, center_xy, scale: float, output_size_wh) -> Camera:
        """Zoom by ``scale`` and recentre so that pixel ``center_xy`` of this camera maps to the output's centre."""
        c = self.zoomed(scale)
        new_center = (np.asarray(center_xy, np.float64) + 0.5) * scale - 0.5
        out_center = (np.asarray(output_size_wh, np.float64) - 1) / 2
        return c.shifted(new_center - out_center)


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation matrix taking unit vector a to unit vector b (Rodrigues)."""
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    s = np.linalg.norm(v)
    if s < 1e-12:
        if c > 0:
            return np.eye(3)
        # opposite: rotate by pi about any axis orthogonal to a
        axis = np.cross(a, [1.0, 0, 0]) if abs(a[0]) < 0.9 else np.cross(a, [0, 1.0, 0])
        axis /= np.linalg.norm(axis)
        return 2 * np.outer(axis, axis) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx * ((1 - c) / (s * s))


def rotation_from_euler_rxyz(angles) -> np.ndarray:
    """Rotation for intrinsic (rotating-axes) x-y-z Euler angles: Rx(a) @ Ry(b) @ Rz(c)."""
    a, b, c = angles
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rx @ ry @ rz


def euler_rxyz_from_rotation(rot) -> np.ndarray:
    """Inverse of :func:`rotation_from_euler_rxyz` (for |b| < pi/2)."""
    r = np.asarray(rot, np.float64)
    b = np.arcsin(np.clip(r[0, 2], -1, 1))
    a = np.arctan2(-r[1, 2], r[2, 2])
    c = np.arctan2(-r[0, 1], r[0, 0])
    return np.array([a, b, c])


def look_at(eye, target, world_up=(0, 0, 1)) -> np.ndarray:
    """World-to-camera rotation for a camera at ``eye`` looking at ``target``, image y pointing downwards."""
    eye, target, up = (np.asarray(v, np.float64) for v in (eye, target, world_up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)  # image x points right when y points down (x = y cross z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z])
