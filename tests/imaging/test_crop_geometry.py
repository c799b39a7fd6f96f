"""posepile's crop geometry: the box's long side at 384 px (or the 1.2x cap), the crop holding the box rotated by
30 degrees times the margin, clipped to the image, and an upright crop camera (zero roll about world up)."""

import cv2
import numpy as np
import pytest

from posebank.core.camera import Camera, look_at
from posebank.core.settings import POSEPILE_MARGIN, CropParams
from posebank.imaging.crop import (
    best_component,
    crop_camera,
    crop_person,
    reproject_box,
    reproject_box_corners,
    reproject_image,
    reproject_points,
    rotated_extent,
)

W, H = 1000, 1002


def rolled_camera(roll_deg=4.0, model="opencv"):
    """A camera looking down at a person, rolled about its optical axis, with lens distortion."""
    cam = Camera([[1100, 0, 500], [0, 1100, 510], [0, 0, 1]], look_at([0, -4000, 2200], [0, 0, 900]),
                 [0, -4000, 2200], [-0.2, 0.15, 0.002, -0.003, -0.01], distortion_model=model)
    return cam.rotated_about_optical_axis(np.deg2rad(roll_deg))


def person_box(cam, offset=(0, 0, 0), height=1800):
    world = np.array([[x, y, z] for x in (-300, 300) for y in (-200, 200) for z in (0, height)], float) + offset
    pix = cam.project(world)
    lo, hi = pix.min(0), pix.max(0)
    return np.array([*lo, *(hi - lo)])


def roll_about_up(cam: Camera) -> float:
    """Degrees by which the camera's x axis leaves the horizontal plane of the world."""
    return float(np.degrees(np.arcsin(np.clip(cam.R[0] @ cam.world_up, -1, 1))))


@pytest.mark.parametrize("model", ["opencv", "h36m"])
def test_upright_camera_and_box_at_384(model):
    cam = rolled_camera(model=model)
    box = person_box(cam)
    new_cam, (w, h) = crop_camera(cam, box, CropParams(), (W, H))
    assert abs(roll_about_up(cam)) > 3  # the source camera is rolled ...
    assert abs(roll_about_up(new_cam)) < 1e-9  # ... the crop camera is not
    assert new_cam.R[1] @ new_cam.world_up < 0  # world up points up in the crop (image y runs down)
    new_box = reproject_box(box, cam, new_cam)
    assert abs(max(new_box[2:]) - 384) < 1e-6
    # the optical axis passes through the box centre
    centre = reproject_points(np.array([[box[0] + box[2] / 2, box[1] + box[3] / 2]]), cam, new_cam)[0]
    turned_box = reproject_box(box, cam, new_cam)
    np.testing.assert_allclose(centre, turned_box[:2] + turned_box[2:] / 2, atol=1.0)
    # inside the image the crop is the square around the 30-degree rotated box x margin
    side = rotated_extent(new_box, 30.0, POSEPILE_MARGIN)[2]
    assert abs(w - side) <= 1 and abs(h - side) <= 1


def test_smallest_rotation_keeps_the_roll_when_asked():
    cam = rolled_camera()
    new_cam, _ = crop_camera(cam, person_box(cam), CropParams(upright=False), (W, H))
    assert abs(roll_about_up(new_cam)) > 2


def test_small_people_are_upscaled_at_most_1_2():
    cam = rolled_camera()
    far = person_box(cam, offset=(0, 9000, 0), height=600)  # a small, far person
    new_cam, _ = crop_camera(cam, far, CropParams(), (W, H))
    new_box = reproject_box(far, cam, new_cam)
    assert max(new_box[2:]) < 384 * 0.5
    k_old, k_new = cam.intrinsic_matrix, new_cam.intrinsic_matrix
    assert abs(k_new[0, 0] / k_old[0, 0] - 1.2) < 1e-9


def test_crop_is_clipped_to_the_image_at_the_border():
    """posepile clips to the bounding box of the image's corners in the turned camera."""
    cam = rolled_camera(roll_deg=0)
    box = person_box(cam, offset=(1300, 0, 0))  # near the right border: the rotated box leaves the image
    assert box[0] + box[2] < W and box[0] + box[2] * 1.7 > W
    new_cam, (w, h) = crop_camera(cam, box, CropParams(), (W, H))
    assert w < h - 20  # not square: cut at the image's right edge
    image_box = reproject_box_corners([-0.5, -0.5, W, H], cam, new_cam)  # in crop pixels
    assert abs((image_box[0] + image_box[2]) - (w - 0.5)) < 1.0  # the crop ends where the image does
    assert image_box[0] < 0 and image_box[1] < 0 and image_box[1] + image_box[3] > h  # and only there
    # without clipping the crop is the full rotated square
    _, (w2, h2) = crop_camera(cam, box, CropParams(clip_to_image=False), (W, H))
    assert abs(w2 - h2) <= 1 and w2 > w


def test_crop_covers_the_rotated_box_clipped_to_the_image():
    cam = rolled_camera()
    box = person_box(cam, offset=(900, 0, 0))
    image = np.full((H, W, 3), 200, np.uint8)
    crop, new_cam, new_box = crop_person(image, cam, box, CropParams())
    region = rotated_extent(new_box, 30.0, POSEPILE_MARGIN)
    corners = np.array([[region[0], region[1]], [region[0] + region[2], region[1] + region[3]]])
    h, w = crop.shape[:2]
    # the rotated region lies in the crop wherever it lies in the image
    for x, y in np.stack(np.meshgrid(np.linspace(corners[0, 0], corners[1, 0], 7),
                                     np.linspace(corners[0, 1], corners[1, 1], 7)), -1).reshape(-1, 2):
        src = reproject_points(np.array([[x, y]]), new_cam, cam)[0]
        in_image = -0.5 <= src[0] <= W - 0.5 and -0.5 <= src[1] <= H - 0.5
        in_crop = -1 <= x <= w and -1 <= y <= h
        assert in_crop or not in_image, (x, y, src)


def test_best_component_keeps_the_person_not_the_stray_blob():
    mask = np.zeros((100, 100), bool)
    mask[20:80, 30:60] = True  # the person
    mask[5:15, 85:95] = True  # a stray blob
    mask[90:99, 0:40] = True  # another
    kept = best_component(mask, [28, 18, 34, 64])
    assert kept[50, 45] and not kept[10, 90] and not kept[95, 10]
    assert kept.sum() == 60 * 30


def test_best_component_is_the_same_with_few_and_many_components():
    """Up to 8 components their rectangles come from comparisons, beyond from OpenCV's statistics: same choice."""
    rng = np.random.default_rng(3)
    for n_blobs in (2, 5, 7, 12, 40):
        mask = np.zeros((120, 140), bool)
        mask[30:100, 50:90] = True  # the person
        for x, y in rng.integers(0, 110, (n_blobs, 2)):
            if not (40 <= x <= 100 and 20 <= y <= 110):
                mask[y:y + 4, x:x + 4] = True
        n = cv2.connectedComponents(mask.view(np.uint8), connectivity=4)[0] - 1
        kept = best_component(mask, [48, 28, 44, 74])
        assert kept[60, 70] and kept.sum() == 70 * 40, n_blobs
        _, labels = cv2.connectedComponents(mask.view(np.uint8), connectivity=4)
        assert np.array_equal(kept, labels == labels[60, 70]), n


def test_a_part_of_the_map_equals_that_part_of_the_whole_map():
    from posebank.imaging.crop import GRID_STEP, _expand, _expand_part

    rng = np.random.default_rng(1)
    checked = 0
    while checked < 200:
        gh, gw = rng.integers(3, 60, 2)
        coarse = (rng.normal(size=(gh, gw, 2)) * 100).astype(np.float32)
        out_w, out_h = (gw - 1) * GRID_STEP - 2 * GRID_STEP, (gh - 1) * GRID_STEP - 2 * GRID_STEP
        if out_w < 2 or out_h < 2:
            continue
        u0, u1 = sorted(rng.choice(out_w + 1, 2, replace=False))
        v0, v1 = sorted(rng.choice(out_h + 1, 2, replace=False))
        whole = _expand(coarse, out_w, out_h)
        part = _expand_part(coarse, u0, v0, u1, v1, scratch="test")
        assert np.array_equal(part, whole[v0:v1, u0:u1])
        checked += 1


def test_scratch_maps_are_filled_in_place():
    from posebank.imaging.crop import _expand, _scratch

    coarse = np.random.default_rng(0).normal(size=(20, 30, 2)).astype(np.float32)
    first = _expand(coarse, 200, 120, scratch="test2")
    buffer = _scratch("test2", (20 * 8, 30 * 8, 2))  # the whole resized grid, of which the map is a part
    assert np.shares_memory(first, buffer)
    np.testing.assert_array_equal(first, _expand(coarse, 200, 120))


@pytest.mark.parametrize("geometry", ["posepile", "fixed"])
def test_the_box_in_the_crop_is_the_reprojected_box(geometry):
    from posebank.imaging.crop import crop_geometry

    cam = rolled_camera(model="h36m")
    for offset in ((0, 0, 0), (1300, 0, 0), (-900, 2000, 0)):
        box = person_box(cam, offset=offset)
        new_cam, _, new_box = crop_geometry(cam, box, CropParams(geometry=geometry), (W, H))
        np.testing.assert_allclose(new_box, reproject_box(box, cam, new_cam), atol=1e-9)


def test_crop_frame_people_matches_crop_person_and_warps_the_mask():
    """The stage's per-frame path (one decode, image and mask) equals cropping each person on its own."""
    import cv2

    from posebank.core.jpeg import decode_jpeg, encode_jpeg
    from posebank.core.masks import decode, encode
    from posebank.imaging.crop import Person, crop_frame_people

    cam = rolled_camera()
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 255, (H, W, 3), dtype=np.uint8), (0, 0), 3)
    boxes = [person_box(cam), person_box(cam, offset=(-900, 2000, 0))]
    masks = []
    for b in boxes:
        m = np.zeros((H, W), np.uint8)
        cv2.ellipse(m, (int(b[0] + b[2] / 2), int(b[1] + b[3] / 2)), (int(b[2] / 2.5), int(b[3] / 2.2)), 0, 0, 360,
                    1, -1)
        m[int(b[1]) + 2:int(b[1]) + 8, int(b[0]) + 2:int(b[0]) + 8] = 1  # a stray blob inside the box's corner
        masks.append(m.astype(bool))
    jpeg = encode_jpeg(image, 95)
    out = crop_frame_people(jpeg, (W, H), [Person(cam, b, encode(m)) for b, m in zip(boxes, masks)], CropParams())
    frame = decode_jpeg(jpeg)
    for b, m, c in zip(boxes, masks, out):
        ref, ref_cam, ref_box = crop_person(frame, cam, b, CropParams())
        assert c.size == ref.shape[1::-1] and c.camera.allclose(ref_cam)
        np.testing.assert_allclose(c.box, ref_box, atol=1e-9)
        got = decode_jpeg(c.image).astype(float)
        assert np.abs(got - ref).mean() < 6  # reduced decode and JPEG re-encoding only
        mask = decode(c.mask, c.size[1], c.size[0])
        ref_mask = reproject_image(m.astype(np.uint8) * 255, cam, c.camera, c.size, "linear") > 127
        ref_mask = best_component(ref_mask, c.box)
        iou = (mask & ref_mask).sum() / (mask | ref_mask).sum()
        assert iou > 0.97, iou
        assert mask.sum() > 1000


def test_real_frames_get_posepiles_crops():
    """On real Human3.6M and MPI-INF-3DHP frames: the box's long side at 384 px or the 1.2x cap, an upright
    camera, the rotated box's extent clipped to the image, and the joints where the crop camera puts them."""
    from realframes import real_frames

    sizes = {}
    for f in real_frames():
        params = CropParams()
        crop, new_cam, new_box = crop_person(f.image, f.camera, f.box, params)
        scale = new_cam.intrinsic_matrix[0, 0] / f.camera.intrinsic_matrix[0, 0]
        assert abs(max(new_box[2:]) - 384) < 1e-6 or abs(scale - 1.2) < 1e-9, f.name
        assert abs(roll_about_up(new_cam)) < 1e-9 and new_cam.R[1] @ new_cam.world_up < 0, f.name
        side = rotated_extent(new_box, 30.0, POSEPILE_MARGIN)[2]
        h, w = crop.shape[:2]
        assert w <= side + 1 and h <= side + 1 and max(w, h) >= side - 1, f.name  # clipped only at borders
        np.testing.assert_allclose(reproject_points(f.camera.project(f.world_coords), f.camera, new_cam),
                                   new_cam.project(f.world_coords), atol=1e-3)
        # the person is in the crop: the projected joints lie inside it
        px = new_cam.project(f.world_coords)
        assert ((px >= 0) & (px < [w, h])).all(), f.name
        sizes[f.name] = (w, h)
    h36m = [s for n, s in sizes.items() if n.startswith("h36m/")]
    assert len(h36m) == 4 and all(550 <= s[0] <= 750 for s in h36m), sizes
