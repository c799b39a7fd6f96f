import cv2
import numpy as np
import pytest

from posebank.core.camera import Camera, euler_rxyz_from_rotation, look_at, rotation_from_euler_rxyz


def random_camera(rng, model="opencv", distortion=True) -> Camera:
    eye = rng.uniform(-3000, 3000, 3) + [0, 0, 1500]
    r = look_at(eye, rng.uniform(-300, 300, 3))
    d = [rng.uniform(-0.3, 0.3), rng.uniform(-0.2, 0.2), rng.uniform(-0.01, 0.01), rng.uniform(-0.01, 0.01),
         rng.uniform(-0.05, 0.05)] if distortion else [0] * 5
    k = [[rng.uniform(800, 1500), 0, rng.uniform(400, 600)], [0, rng.uniform(800, 1500), rng.uniform(400, 600)],
         [0, 0, 1]]
    return Camera(k, r, eye, d, distortion_model=model)


def points_in_view(cam: Camera, rng, n=200) -> np.ndarray:
    # points within +-0.6 normalised units of the optical axis, 2-6 m away
    n_xy = rng.uniform(-0.6, 0.6, (n, 2))
    depth = rng.uniform(2000, 6000, (n, 1))
    return cam.camera_to_world(np.concatenate([n_xy, np.ones((n, 1))], 1) * depth)


def test_opencv_model_matches_cv2_project_points():
    rng = np.random.default_rng(0)
    for _ in range(5):
        cam = random_camera(rng)
        pts = points_in_view(cam, rng)
        rvec, _ = cv2.Rodrigues(cam.R)
        tvec = -cam.R @ cam.t
        expected, _ = cv2.projectPoints(pts, rvec, tvec, cam.intrinsic_matrix, cam.distortion_coeffs)
        np.testing.assert_allclose(cam.project(pts), expected[:, 0], atol=1e-6)


def h36m_release_projection(P, R, T, f, c, k, p):
    """Transcription of the Human3.6M release's ProjectPointRadial (points as rows)."""
    X = R @ (P.T - T[:, None])
    XX = X[:2] / X[2]
    r2 = XX[0] ** 2 + XX[1] ** 2
    radial = 1 + k[0] * r2 + k[1] * r2 ** 2 + k[2] * r2 ** 3
    tan = p[0] * XX[1] + p[1] * XX[0]
    XXX = XX * (radial + tan) + np.outer([p[1], p[0]], r2)
    return (f[:, None] * XXX + c[:, None]).T


def test_h36m_model_matches_release_formula_and_differs_from_opencv():
    rng = np.random.default_rng(1)
    cam = random_camera(rng, model="h36m")
    k1, k2, p1, p2, k3 = cam.distortion_coeffs
    pts = points_in_view(cam, rng)
    kk = cam.intrinsic_matrix
    expected = h36m_release_projection(pts, cam.R, cam.t, np.array([kk[0, 0], kk[1, 1]]),
                                       np.array([kk[0, 2], kk[1, 2]]), [k1, k2, k3], [p1, p2])
    np.testing.assert_allclose(cam.project(pts), expected, atol=1e-6)
    as_opencv = cam.copy()
    as_opencv.distortion_model = "opencv"
    assert np.abs(as_opencv.project(pts) - expected).max() > 0.5  # the two tangential models really differ


@pytest.mark.parametrize("model", ["opencv", "h36m"])
def test_undistort_inverts_distort(model):
    rng = np.random.default_rng(2)
    cam = random_camera(rng, model=model)
    pts = points_in_view(cam, rng)
    pix = cam.project(pts)
    cam_pts = cam.world_to_camera(pts)
    np.testing.assert_allclose(cam.image_to_normalized(pix), cam_pts[:, :2] / cam_pts[:, 2:], atol=1e-9)
    back = cam.image_to_world(pix, depth=cam_pts[:, 2])
    np.testing.assert_allclose(back, pts, atol=1e-5)
    ideal = cam.undistorted().project(pts)
    np.testing.assert_allclose(cam.undistort_points(pix), ideal, atol=1e-6)


def test_world_camera_round_trip_and_convention():
    cam = Camera(np.diag([1000.0, 1000, 1]), look_at([0, -5000, 1000], [0, 0, 1000]), [0, -5000, 1000])
    # the look-at target is on the optical axis: straight ahead at 5 m
    np.testing.assert_allclose(cam.world_to_camera([0, 0, 1000]), [0, 0, 5000], atol=1e-9)
    # world up is image up (negative y), world +x is image right
    assert cam.world_to_camera([0, 0, 2000])[1] < 0
    assert cam.world_to_camera([500, 0, 1000])[0] > 0
    p = np.random.default_rng(3).normal(size=(10, 3)) * 1000
    np.testing.assert_allclose(cam.camera_to_world(cam.world_to_camera(p)), p, atol=1e-9)


def test_turned_towards_puts_target_on_principal_point_and_keeps_centre():
    rng = np.random.default_rng(4)
    cam = random_camera(rng)
    target = points_in_view(cam, rng, 1)[0]
    turned = cam.turned_towards(target_world_point=target)
    np.testing.assert_allclose(turned.project(target), turned.intrinsic_matrix[:2, 2], atol=1e-6)
    np.testing.assert_allclose(turned.t, cam.t)
    np.testing.assert_allclose(turned.R @ turned.R.T, np.eye(3), atol=1e-12)
    pix = cam.project(target)
    by_pixel = cam.turned_towards(target_image_point=pix)
    np.testing.assert_allclose(by_pixel.R, turned.R, atol=1e-9)


def test_zoom_shift_and_scaled_output():
    rng = np.random.default_rng(5)
    cam = random_camera(rng, distortion=False)
    pts = points_in_view(cam, rng)
    pix = cam.project(pts)
    np.testing.assert_allclose(cam.zoomed(0.5).project(pts), (pix + 0.5) * 0.5 - 0.5, atol=1e-9)
    np.testing.assert_allclose(cam.shifted([100, 50]).project(pts), pix - [100, 50], atol=1e-9)
    out = cam.scaled_output(center_xy=pix[0], scale=2.0, output_size_wh=(385, 385))
    np.testing.assert_allclose(out.project(pts[0]), [192, 192], atol=1e-9)


def test_euler_rxyz_round_trip():
    rng = np.random.default_rng(6)
    for _ in range(20):
        angles = rng.uniform(-np.pi, np.pi, 3)
        r = rotation_from_euler_rxyz(angles)
        np.testing.assert_allclose(rotation_from_euler_rxyz(euler_rxyz_from_rotation(r)), r, atol=1e-12)


def test_invalid_camera_arguments():
    with pytest.raises(ValueError, match="3x3"):
        Camera(np.eye(2), np.eye(3), np.zeros(3))
    with pytest.raises(ValueError, match="distortion model"):
        Camera(np.eye(3), np.eye(3), np.zeros(3), distortion_model="fisheye")
