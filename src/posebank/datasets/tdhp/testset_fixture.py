"""A miniature MPI-INF-3DHP test tree in the release's layout, for tests and demos (see :func:`make_fixture`)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from posebank.core.camera import Camera
from posebank.datasets.matlab import write_mat73
from posebank.datasets.tdhp.fixture import RAW_EDGES, draw_marks, draw_person, fixture_poses
from posebank.datasets.tdhp.test import (
    ACTIVITIES,
    TEST_RAW_JOINTS,
    calibration_camera,
    image_relpath,
    sequence_image_size,
)

# images beyond the annotations, as in the release (TS3: 1, TS4: 2)
EXTRA_IMAGES = {3: 1, 4: 2}
# each sequence's true intrinsics (fx, fy, cx, cy): mmpose's least-squares fits to the real annotations
# (tests/data/real/tdhp/cameras_test.pkl), rounded; TS2's differ from the calibration's by up to 4.4 px
FIXTURE_INTRINSICS = {1: (1500.07, 1500.66, 1017.38, 1043.06), 2: (1503.78, 1501.27, 1015.23, 1038.68),
                      3: (1500.04, 1500.59, 1017.39, 1043.05), 4: (1499.93, 1500.76, 1017.37, 1042.99),
                      5: (1683.48, 1671.93, 939.93, 560.21), 6: (1683.98, 1672.67, 939.85, 560.12)}
ANNOT2_NOISE_PX = 0.1  # per-coordinate noise of annot2 around the pinhole projection (the real residual is ~0.15 px)


def true_camera(ts: int) -> Camera:
    """The fixture's camera of TS<ts>: the calibration's pose, :data:`FIXTURE_INTRINSICS`, no distortion."""
    fx, fy, cx, cy = FIXTURE_INTRINSICS[ts]
    calib = calibration_camera(ts)
    return Camera([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], calib.R, calib.t, world_up=calib.world_up)


def make_fixture(root, seed: int = 0, subjects=(1, 2, 3, 4, 5, 6), n_frames: int = 12) -> Path:
    """Write a miniature MPI-INF-3DHP test tree in the release's layout.

    Real MATLAB v7.3 ``annot_data.mat`` files and full-size JPEG frames (2048 x 2048 for TS1-4, 1920 x 1080 for
    TS5-6) with white marks at annot2 over a grey stick figure. As in the release, annot2 is a pinhole projection of
    annot3 (no lens distortion) through each sequence's own intrinsics (:data:`FIXTURE_INTRINSICS`, TS2's apart from
    the calibration's), with 0.1 px noise; the calibration's pose places the person. Every fourth frame is marked
    invalid; TS3 and TS4 have one and two more images than annotations, as the release.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for ts in subjects:
        camera = true_camera(ts)
        w, h = sequence_image_size(ts)
        forward, right = camera.R[2], camera.R[0]
        target = camera.t + rng.uniform(3600, 4200) * forward
        across = right[[0, 2]] / np.linalg.norm(right[[0, 2]])
        world = fixture_poses(rng, n_frames, across * rng.choice([-1, 1]))
        world = world + [target[0], target[1] - 880.0, target[2]]
        pelvis = world[:, 4:5]
        univ = pelvis + (world - pelvis) * rng.uniform(0.92, 1.08)
        test_world = world[:, list(TEST_RAW_JOINTS)]
        annot2 = camera.project(test_world) + rng.normal(0, ANNOT2_NOISE_PX, (n_frames, len(TEST_RAW_JOINTS), 2))
        valid = (np.arange(n_frames) % 4 != 3).astype(np.float64)
        activity = (np.arange(n_frames) % len(ACTIVITIES) + 1).astype(np.float64)
        folder = root / f"TS{ts}"
        (folder / "imageSequence").mkdir(parents=True, exist_ok=True)
        write_mat73(folder / "annot_data.mat", {  # MATLAB's shapes: (2, 17, 1, T), (1, T)
            "annot2": annot2[:, None].T, "annot3": camera.world_to_camera(test_world)[:, None].T,
            "univ_annot3": camera.world_to_camera(univ[:, list(TEST_RAW_JOINTS)])[:, None].T,
            "valid_frame": valid[None], "activity_annotation": activity[None]})
        raw2d = camera.project(world)
        for i in range(n_frames + EXTRA_IMAGES.get(ts, 0)):
            image = np.full((h, w, 3), 40, np.uint8)
            if i < n_frames:
                draw_person(image, raw2d[i], RAW_EDGES, (110, 110, 110), w / 80)
                draw_marks(image, annot2[i], radius=5.0)
            cv2.imwrite(str(root / image_relpath(ts, i)), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    (root / ".posebank-fixture").write_text(f"tdhp_test fixture, seed {seed}\n")
    return root
