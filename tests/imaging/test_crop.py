import cv2
import numpy as np

from posebank.core.camera import Camera, look_at
from posebank.imaging.crop import CropParams, crop_person, reproject_image, reproject_points


def camera(model="opencv"):
    return Camera([[1100, 0, 500], [0, 1100, 510], [0, 0, 1]], look_at([0, -4000, 1500], [0, 0, 900]),
                  [0, -4000, 1500], [-0.25, 0.2, 0.002, -0.003, -0.01], distortion_model=model)


def test_crop_camera_maps_world_points_onto_the_crop():
    cam = camera("h36m")
    rng = np.random.default_rng(0)
    world = rng.uniform([-400, -300, 0], [400, 300, 1800], (50, 3))
    pix = cam.project(world)
    image = np.zeros((1002, 1000, 3), np.uint8)
    x0, y0 = pix.min(0)
    x1, y1 = pix.max(0)
    crop, new_cam, new_box = crop_person(image, cam, [x0, y0, x1 - x0, y1 - y0], CropParams())
    assert not new_cam.has_distortion
    # the crop camera shares the optical centre and sees every point where the old image showed it
    np.testing.assert_allclose(new_cam.t, cam.t)
    np.testing.assert_allclose(reproject_points(pix, cam, new_cam), new_cam.project(world), atol=1e-6)
    # posepile's geometry: the box's long side becomes 384 px; the crop holds the box rotated by 30 degrees x margin
    assert abs(max(new_box[2:]) - 384) < 1e-6
    side = max(np.cos(np.pi / 6) * new_box[2] + np.sin(np.pi / 6) * new_box[3],
               np.cos(np.pi / 6) * new_box[3] + np.sin(np.pi / 6) * new_box[2]) * CropParams().margin
    assert abs(crop.shape[0] - side) <= 1 and abs(crop.shape[1] - side) <= 1  # inside the image: square
    # the fixed geometry: a 256-px box in a 384 x 384 crop
    fixed = CropParams(geometry="fixed", target_box_px=256.0)
    crop, new_cam, new_box = crop_person(image, cam, [x0, y0, x1 - x0, y1 - y0], fixed)
    np.testing.assert_allclose(reproject_points(pix, cam, new_cam), new_cam.project(world), atol=1e-6)
    assert abs(max(new_box[2:]) - 256) < 256 * 0.05 and crop.shape[:2] == (384, 384)


def test_image_content_and_mask_follow_the_camera():
    cam = camera()
    image = np.full((1002, 1000, 3), 30, np.uint8)
    mask = np.zeros((1002, 1000), np.uint8)
    pts = cam.project(np.array([[0, 0, 900], [150, 0, 1600], [-200, 0, 300]]))
    cv2.fillConvexPoly(image, np.round(pts).astype(np.int32), (255, 255, 255))
    cv2.fillConvexPoly(mask, np.round(pts).astype(np.int32), 255)
    box = [pts[:, 0].min(), pts[:, 1].min(), np.ptp(pts[:, 0]), np.ptp(pts[:, 1])]
    crop, new_cam, _ = crop_person(image, cam, box, CropParams())
    crop_mask = reproject_image(mask, cam, new_cam, crop.shape[1::-1], "linear") > 127
    bright = crop.mean(-1) > 140
    iou = (bright & crop_mask).sum() / (bright | crop_mask).sum()
    assert iou > 0.97, iou
    # the triangle's corners land where the crop camera projects them
    corners = new_cam.project(np.array([[0, 0, 900], [150, 0, 1600], [-200, 0, 300]]))
    for c in corners:
        x, y = np.round(c).astype(int)
        assert crop_mask[max(y - 3, 0):y + 4, max(x - 3, 0):x + 4].any()
