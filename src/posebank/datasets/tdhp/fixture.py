"""A miniature MPI-INF-3DHP training tree in the release's layout, for tests and demos (see :func:`make_fixture`),
and the drawing helpers the test-set fixture shares."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import scipy.io

from posebank.core.camera import Camera, look_at
from posebank.datasets.tdhp.common import (
    ANNOT_KEYS,
    CALIBRATION_HEADER,
    N_CAMERAS,
    N_RAW_JOINTS,
    RAW_JOINT_NAMES,
    SELECTED_JOINTS,
    WORLD_UP,
    CalibratedCamera,
    parse_calibration,
    sequence_dir,
    video_path,
)


def format_calibration(cameras: dict[int, CalibratedCamera]) -> str:
    """The text of a ``camera.calibration`` file holding these cameras (the Skeletool writer's layout)."""
    def nums(a):
        return " ".join(f"{float(v):.10g}" for v in np.asarray(a).ravel()) + " "

    out = [CALIBRATION_HEADER]
    for name in sorted(cameras):
        c = cameras[name]
        intrinsic = np.eye(4)
        intrinsic[:3, :3] = c.camera.intrinsic_matrix
        extrinsic = np.eye(4)
        extrinsic[:3, :3] = c.camera.R
        extrinsic[:3, 3] = -c.camera.R @ c.camera.t
        out += [f"name          {name}",
                f"  sensor      {c.sensor_mm[0]:g} {c.sensor_mm[1]:g}",
                f"  size        {c.image_size[0]} {c.image_size[1]}",
                "  animated    0",
                f"  intrinsic   {nums(intrinsic)}",
                f"  extrinsic   {nums(extrinsic)}",
                f"  radial      {c.radial:g}"]
    return "\n".join(out) + "\n"


MARK_RADIUS = 4.0
FIXTURE_IMAGE_SIZE = 512
FIXTURE_STILL_FRAMES = 12  # the person stands (moving < 100 mm) before walking off
FIXTURE_WALK_MM_PER_FRAME = 60.0
TELEPHOTO_CAMERA = 2  # the fixture gives this camera a long lens so the walking person leaves its view
CEILING_CAMERAS = (3, 11, 12, 13)
LOW_CAMERAS = (9, 10)


def template_pose() -> np.ndarray:
    """A standing person in the 28-joint release order, local frame (x the person's left, y up, z forward)."""
    right = {
        0: (0, 1300, 0), 1: (0, 1420, 0), 2: (0, 1180, 0), 3: (0, 1060, 0), 4: (0, 950, 0), 5: (0, 1500, 10),
        6: (0, 1620, 30), 7: (0, 1760, 10), 8: (60, 1450, 0), 9: (180, 1420, 0), 10: (330, 1170, 0),
        11: (360, 930, 40), 12: (370, 860, 60), 18: (130, 940, 0), 19: (140, 520, 10), 20: (150, 90, -10),
        21: (150, 30, 90), 22: (150, 20, 160)}
    j = np.zeros((N_RAW_JOINTS, 3))
    for i, v in right.items():
        j[i] = v
    # the right side mirrors the left: lcla..lhan (8..12) -> rcla..rhan (13..17), lhip..ltoe (18..22) -> 23..27
    for left, rgt in [*zip(range(8, 13), range(13, 18)), *zip(range(18, 23), range(23, 28))]:
        j[rgt] = j[left] * [-1, 1, 1]
    return j


def fixture_poses(rng: np.random.Generator, n_frames: int, direction: np.ndarray) -> np.ndarray:
    """World poses (T, 28, 3): standing still, then walking along ``direction`` (ground plane), arms swinging."""
    base = template_pose()
    start = rng.uniform(-150, 150, 2)  # (x, z) on the floor
    facing = np.arctan2(direction[0], direction[1])
    out = np.zeros((n_frames, N_RAW_JOINTS, 3))
    for i in range(n_frames):
        walking = max(0, i - FIXTURE_STILL_FRAMES + 1)
        local = base.copy()
        swing = 0.5 * np.sin(0.4 * walking) if walking else 0.02 * np.sin(i)
        for shoulder, arm, sign in ((9, (10, 11, 12), 1), (14, (15, 16, 17), -1)):
            c, s = np.cos(sign * swing), np.sin(sign * swing)
            rel = local[list(arm)] - local[shoulder]
            local[list(arm)] = local[shoulder] + rel @ np.array([[1, 0, 0], [0, c, s], [0, -s, c]])
        heading = facing + 0.01 * walking
        c, s = np.cos(heading), np.sin(heading)
        rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])  # about y: local z (forward) -> (sin, 0, cos)
        pos = start + FIXTURE_WALK_MM_PER_FRAME * walking * direction
        out[i] = local @ rot.T + [pos[0], 0, pos[1]]
    return out


def fixture_calibration(rng: np.random.Generator, image_size: int) -> dict[int, CalibratedCamera]:
    """14 plausible cameras around the capture area, in the calibration file's terms."""
    cameras = {}
    f0 = 1500.0 * image_size / 2048
    for cam in range(N_CAMERAS):
        angle = 2 * np.pi * cam / N_CAMERAS + rng.uniform(-0.05, 0.05)
        radius = rng.uniform(3000, 3400)
        height = 2500.0 if cam in CEILING_CAMERAS else 300.0 if cam in LOW_CAMERAS else rng.uniform(800, 1000)
        eye = np.array([radius * np.sin(angle), height, radius * np.cos(angle)])
        target = np.array([0.0, 880.0, 0.0]) + rng.uniform(-50, 50, 3)
        f = f0 * (2.0 if cam == TELEPHOTO_CAMERA else rng.uniform(0.97, 1.03))
        c = image_size / 2 + rng.uniform(-8, 8, 2)
        camera = Camera([[f, 0, c[0]], [0, f * rng.uniform(0.999, 1.001), c[1]], [0, 0, 1]],
                        look_at(eye, target, WORLD_UP), eye, world_up=WORLD_UP)
        cameras[cam] = CalibratedCamera(cam, camera, (image_size, image_size), (10.0, 10.0), 0.0)
    return cameras


def _polyline_pts(points) -> np.ndarray:
    return np.round(np.asarray(points) * 16).astype(np.int32)


def draw_person(image: np.ndarray, points2d: np.ndarray, edges, color, thickness: float) -> None:
    """Thick stick figure through 2D joints (sub-pixel, anti-aliased), in place."""
    pts = np.clip(_polyline_pts(points2d), -(1 << 26), 1 << 26).tolist()
    width = max(1, int(round(thickness)))
    for a, b in edges:
        cv2.line(image, pts[a], pts[b], color, width, cv2.LINE_AA, shift=4)


def draw_marks(image: np.ndarray, points2d: np.ndarray, radius: float = MARK_RADIUS) -> None:
    ok = np.all(np.isfinite(points2d) & (np.abs(points2d) < 1e5), axis=-1)
    for pt in _polyline_pts(np.where(ok[:, None], points2d, 0))[ok].tolist():
        cv2.circle(image, pt, int(radius * 16), (255, 255, 255), -1, cv2.LINE_AA, shift=4)


RAW_EDGES = tuple((RAW_JOINT_NAMES.index(a), RAW_JOINT_NAMES.index(b)) for a, b in (
    ("htop", "head"), ("head", "neck"), ("neck", "spi4"), ("spi4", "spi3"), ("spi3", "spi2"), ("spi2", "spin"),
    ("spin", "pelv"), ("neck", "lcla"), ("lcla", "lsho"), ("lsho", "lelb"), ("lelb", "lwri"), ("lwri", "lhan"),
    ("neck", "rcla"), ("rcla", "rsho"), ("rsho", "relb"), ("relb", "rwri"), ("rwri", "rhan"), ("pelv", "lhip"),
    ("lhip", "lkne"), ("lkne", "lank"), ("lank", "lfoo"), ("lfoo", "ltoe"), ("pelv", "rhip"), ("rhip", "rkne"),
    ("rkne", "rank"), ("rank", "rfoo"), ("rfoo", "rtoe")))
# the upper body (head, trunk, arms) and the lower body (pelvis, legs) of the FGmasks green and blue channels
LOWER_BODY_EDGES = tuple(e for e in RAW_EDGES if RAW_JOINT_NAMES[e[1]][1:] in ("hip", "kne", "ank", "foo", "toe"))
UPPER_BODY_EDGES = tuple(e for e in RAW_EDGES if e not in LOWER_BODY_EDGES)
# sequences whose FGmasks carry the upper / lower body mask in green / blue (the release's util/
# mpii_get_sequence_info.m: ub_augmentable, lb_augmentable)
BODY_PART_MASKS = {(1, 2): (True, False), (2, 2): (True, True), (3, 2): (True, True), (4, 2): (True, False),
                   (5, 2): (True, True), (6, 2): (True, True), (7, 1): (True, True), (8, 1): (True, True)}
CEILING_ROWS = 1 / 20  # the top of the view is not green screen (lights, ceiling): foreground in FGmasks
N_MARKERS = 6  # small non-green markers on the green screen, foreground in FGmasks too
BGR_RED, BGR_GREEN, BGR_BLUE = 2, 1, 0


def _chair_polygon(camera: Camera) -> np.ndarray | None:
    """Image outline of a 450 mm chair cube standing beside the capture area's centre."""
    corners = np.array([[x, y, z] for x in (500, 950) for y in (0, 450) for z in (-700, -250)], np.float64)
    cam = camera.world_to_camera(corners)
    if np.any(cam[:, 2] <= 0):
        return None
    pts = camera.camera_to_image(cam)
    return cv2.convexHull(np.round(pts * 16).astype(np.int32))


def render_frames(camera: Camera, image_coords: np.ndarray, size: tuple[int, int], mark_joints: Sequence[int],
                  body_parts: tuple[bool, bool] = (False, False), markers: np.ndarray | None = None):
    """Fixture images for one camera frame: (image, FGmasks frame, ChairMasks frame), BGR uint8, in the release's
    mask layout.

    FGmasks: the red channel is 255 wherever the frame is not green screen: the person, the (red) chair, the
    ceiling band at the top and a few markers; green / blue carry the upper / lower body when ``body_parts`` says the
    sequence has them. ChairMasks: the red channel is 255 except on the chair, which is 0 (the chair is dark).
    """
    w, h = size
    image = np.full((h, w, 3), 40, np.uint8)
    fg = np.zeros((h, w, 3), np.uint8)
    chair = np.zeros((h, w, 3), np.uint8)
    chair[..., BGR_RED] = 255
    ceiling = max(2, int(round(h * CEILING_ROWS)))
    image[:ceiling] = 75
    fg[:ceiling, :, BGR_RED] = 255
    for x, y in (() if markers is None else np.round(markers).astype(int)):
        cv2.circle(fg, (int(x), int(y)), 3, (0, 0, 255), -1)
    polygon = _chair_polygon(camera)
    if polygon is not None:
        cv2.fillConvexPoly(image, polygon, (50, 60, 90), cv2.LINE_AA, shift=4)
        cv2.fillConvexPoly(chair, polygon, (0, 0, 0), cv2.LINE_AA, shift=4)
        cv2.fillConvexPoly(fg, polygon, (0, 0, 255), cv2.LINE_AA, shift=4)
    thickness = max(3.0, w / 50)
    draw_person(image, image_coords, RAW_EDGES, (110, 110, 110), thickness)
    person = np.zeros((h, w), np.uint8)
    draw_person(person, image_coords, RAW_EDGES, 255, thickness + 2)
    fg[..., BGR_RED] = np.maximum(fg[..., BGR_RED], person)
    for channel, wanted, edges in ((BGR_GREEN, body_parts[0], UPPER_BODY_EDGES),
                                   (BGR_BLUE, body_parts[1], LOWER_BODY_EDGES)):
        if wanted:
            part = np.zeros((h, w), np.uint8)
            draw_person(part, image_coords, edges, 255, thickness + 2)
            fg[..., channel] = part
    draw_marks(image, image_coords[list(mark_joints)])
    return image, fg, chair


def make_fixture(root, seed: int = 0, subjects=tuple(range(1, 9)), n_frames: int = 30, cameras=tuple(range(N_CAMERAS)),
                 sequences=(1, 2), image_size: int = FIXTURE_IMAGE_SIZE, masks: bool = True) -> Path:
    """Write a miniature MPI-INF-3DHP training tree in the release's layout.

    Real MATLAB v5 ``annot.mat`` files (cell arrays (14, 1) of (T, 56) / (T, 84)), a 14-camera
    ``camera.calibration`` in the Skeletool text format (its ``size`` line states the fixture's smaller image
    size), XVID ``imageSequence/video_<c>.avi`` videos with white marks at the 17 converted joints over a grey stick
    figure, and ``FGmasks``/``ChairMasks`` videos in the release's layout (see :func:`render_frames`: FGmasks red =
    not green screen, i.e. the person, the chair, the ceiling band and markers; ChairMasks red dark on the chair).
    The person stands for a few frames, then walks across the view of camera 2, which has a long lens, so some of
    its frames are truncated.
    """
    from posebank.imaging.video import write_video

    root = Path(root)
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for subj in subjects:
        for seq in sequences:
            folder = root / sequence_dir(subj, seq)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "camera.calibration").write_text(format_calibration(fixture_calibration(rng, image_size)))
            calib = parse_calibration(folder / "camera.calibration")  # as the converter will see them
            tele = calib[TELEPHOTO_CAMERA].camera
            across = tele.R[0][[0, 2]] / np.linalg.norm(tele.R[0][[0, 2]])  # image x of camera 2, on the floor
            world = fixture_poses(rng, n_frames, across * rng.choice([-1, 1]))
            pelvis = world[:, 4:5]
            univ_world = pelvis + (world - pelvis) * rng.uniform(0.92, 1.08)
            annot = {k: np.empty((N_CAMERAS, 1), object) for k in ANNOT_KEYS}
            image2d = {}
            for cam in range(N_CAMERAS):
                c = calib[cam].camera
                image2d[cam] = c.project(world)
                annot["annot2"][cam, 0] = image2d[cam].reshape(n_frames, -1)
                annot["annot3"][cam, 0] = c.world_to_camera(world).reshape(n_frames, -1)
                annot["univ_annot3"][cam, 0] = c.world_to_camera(univ_world).reshape(n_frames, -1)
            scipy.io.savemat(str(folder / "annot.mat"), {
                **annot, "cameras": np.arange(N_CAMERAS, dtype=np.float64)[None],
                "frames": np.arange(n_frames, dtype=np.float64)[:, None]})
            body_parts = BODY_PART_MASKS.get((subj, seq), (False, False))
            for cam in cameras:
                size = calib[cam].image_size
                markers = rng.uniform([0, size[1] * 0.3], size, (N_MARKERS, 2))
                rendered = [render_frames(calib[cam].camera, image2d[cam][i], size, SELECTED_JOINTS, body_parts,
                                          markers) for i in range(n_frames)]
                write_video(root / video_path(subj, seq, cam), (r[0] for r in rendered), fps=25)
                if masks:
                    write_video(root / video_path(subj, seq, cam, "FGmasks"), (r[1] for r in rendered), fps=25)
                    write_video(root / video_path(subj, seq, cam, "ChairMasks"), (r[2] for r in rendered), fps=25)
    (root / ".posebank-fixture").write_text(f"tdhp fixture, seed {seed}\n")
    return root
