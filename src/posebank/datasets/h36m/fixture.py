"""A miniature Human3.6M raw tree in the release's layout, for tests and demos (see :func:`make_fixture`)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from posebank.core.camera import Camera, euler_rxyz_from_rotation, look_at
from posebank.datasets.h36m import (
    CAMERA_IDS,
    JOINT_INFO,
    N_RAW_JOINTS,
    S9_SHIFT_MM,
    SELECTED_JOINTS,
    box_mask_relpath,
    is_shifted,
    read_cameras,
)
from posebank.datasets.h36m.alljoints import DUPLICATES
from posebank.datasets.matlab import MAT73_HEADER

FIXTURE_ACTIONS = {1: ["Directions 1"], 5: ["Discussion 2"], 6: ["Eating 1"], 7: ["Greeting 1"],
                   8: ["Phoning 1"], 9: ["Waiting 1", "Posing 1"], 11: ["Directions 1"]}
MARK_RADIUS = 4.0
# the frame size (width, height) of each camera's videos in the release, and the exception: S7's 55011271 videos
# are 1000 x 1002 (the real frame of S7 Greeting.55011271 in tests/data/real/h36m/frames/ is). The converter reads
# sizes from the videos; only the fixture uses these.
IMAGE_SIZES = {"54138969": (1000, 1002), "55011271": (1000, 1000), "58860488": (1000, 1000),
               "60457274": (1000, 1002)}
IMAGE_SIZE_EXCEPTIONS = {(7, "55011271"): (1000, 1002)}
BOX_EXPANSION = 1.2  # the fixture's ground-truth boxes: the tight box of the 17 projected joints x this


def release_image_size(subject: int, camera_id: str) -> tuple[int, int]:
    """(width, height) of the frames of a subject's videos from one camera, as in the release."""
    return IMAGE_SIZE_EXCEPTIONS.get((subject, camera_id), IMAGE_SIZES[camera_id])


def _template_pose() -> np.ndarray:
    """A standing person in the 32-joint release order, local frame (x right of the person, y forward, z up); the
    release's duplicated joints (``alljoints.DUPLICATES``: those posepile's all-joints selection leaves out) coincide
    with their twins."""
    j = np.zeros((N_RAW_JOINTS, 3))
    named = {
        0: (0, 0, 950), 1: (-130, 0, 940), 2: (-140, 10, 520), 3: (-150, -10, 90), 4: (-150, 90, 30),
        5: (-150, 160, 20), 6: (130, 0, 940), 7: (140, 10, 520), 8: (150, -10, 90), 9: (150, 90, 30),
        10: (150, 160, 20), 12: (0, 0, 1430), 13: (0, 20, 1560), 14: (0, 40, 1650), 15: (0, 30, 1770),
        17: (180, 0, 1420), 18: (330, 0, 1170), 19: (360, 40, 930), 21: (370, 90, 880), 22: (360, 60, 880),
        25: (-180, 0, 1420), 26: (-330, 0, 1170), 27: (-360, 40, 930), 29: (-370, 90, 880), 30: (-360, 60, 880)}
    for i, v in named.items():
        j[i] = v
    for dup, twin in DUPLICATES.items():
        j[dup] = j[twin]
    return j


def _fixture_poses(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """A person walking on a circle in the capture area, turning and swinging the arms."""
    base = _template_pose()
    t = np.arange(n_frames)
    start = rng.uniform(-300, 300, 2)
    heading0 = rng.uniform(0, 2 * np.pi)
    out = np.zeros((n_frames, N_RAW_JOINTS, 3))
    for i in t:
        heading = heading0 + 0.02 * i
        swing = 0.5 * np.sin(0.25 * i)
        local = base.copy()
        for shoulder, arm in ((17, (18, 19, 20, 21, 22, 23)), (25, (26, 27, 28, 29, 30, 31))):
            sign = 1 if shoulder == 17 else -1
            c, s = np.cos(sign * swing), np.sin(sign * swing)
            rel = local[list(arm)] - local[shoulder]
            local[list(arm)] = local[shoulder] + rel @ np.array([[1, 0, 0], [0, c, s], [0, -s, c]])
        c, s = np.cos(heading), np.sin(heading)
        rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
        # a circle of 700 mm radius at 35 mm per frame: the person stays inside every camera's view
        phase = heading0 + 0.05 * i
        pos = start + 700.0 * np.array([np.cos(phase), np.sin(phase)])
        out[i] = local @ rot.T + [pos[0], pos[1], 0]
    return out


def _fixture_cameras(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Plausible H36M-like cameras in the ``w0`` layout: extrinsics (4, 11, 6) and intrinsics (4, 9)."""
    extrinsics = np.zeros((4, 11, 6))
    intrinsics = np.zeros((4, 9))
    for i_cam, cam_id in enumerate(CAMERA_IDS):
        w, h = IMAGE_SIZES[cam_id]
        f = rng.uniform(1140, 1150, 2)
        c = np.array([w / 2, h / 2]) + rng.uniform(-12, 12, 2)
        k = np.array([-0.2, 0.24, -0.002]) + rng.uniform(-0.01, 0.01, 3)
        p = rng.uniform(-0.003, 0.003, 2)
        intrinsics[i_cam] = [*f, *c, *k, *p]
        for i_subj in range(11):
            angle = np.deg2rad(45 + 90 * i_cam) + rng.uniform(-0.1, 0.1)
            radius = rng.uniform(4500, 5500)
            eye = np.array([radius * np.cos(angle), radius * np.sin(angle), rng.uniform(1400, 1700)])
            target = np.array([0.0, 0.0, 900.0]) + rng.uniform(-200, 200, 3)
            rot = look_at(eye, target)
            extrinsics[i_cam, i_subj] = [*euler_rxyz_from_rotation(rot), *eye]
    return extrinsics, intrinsics


def _draw_frame(camera: Camera, pose17: np.ndarray, size) -> np.ndarray:
    w, h = size
    img = np.full((h, w, 3), 40, np.uint8)
    pts = camera.project(pose17)
    for a, b in JOINT_INFO.edges:
        pa, pb = np.round(pts[[a, b]] * 16).astype(int)
        cv2.line(img, tuple(pa), tuple(pb), (110, 110, 110), 18, cv2.LINE_AA, shift=4)
    for pt in pts:
        cv2.circle(img, tuple(np.round(pt * 16).astype(int)), int(MARK_RADIUS * 16), (255, 255, 255), -1,
                   cv2.LINE_AA, shift=4)
    return img


def _ref_name(i: int) -> str:
    """MATLAB's names for the datasets of ``#refs#``: a, b, ..., z, ba, bb, ..."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    name = ""
    while True:
        name = letters[i % 26] + name
        i //= 26
        if i == 0:
            return name


def box_mask_pixels(points2d, size, expansion: float = BOX_EXPANSION) -> tuple[int, int, int, int]:
    """The fixture's ground-truth box of one frame as inclusive pixel ranges (col0, row0, col1, row1): the tight box
    of ``points2d`` scaled by ``expansion`` about its centre, rounded to whole pixels and clipped to the image."""
    w, h = size
    lo, hi = np.min(points2d, axis=0), np.max(points2d, axis=0)
    center, half = (lo + hi) / 2, (hi - lo) * expansion / 2
    c0, r0 = np.clip(np.round(center - half).astype(int), 0, [w - 1, h - 1])
    c1, r1 = np.clip(np.round(center + half).astype(int), 0, [w - 1, h - 1])
    return int(c0), int(r0), int(c1), int(r1)


def write_box_masks(path, rects, size) -> None:
    """A ``ground_truth_bb`` file as the release ships it: MATLAB v7.3 (HDF5 behind a 512-byte MAT header) with
    ``Masks``, a 1 x T cell array (HDF5: (T, 1) object references into ``#refs#``) of logical H x W images (HDF5:
    W x H uint8, ``MATLAB_class`` logical), 1 inside the frame's box. ``rects``: (col0, row0, col1, row1) per frame,
    inclusive, or None for an empty mask."""
    import h5py

    w, h = size
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as f:
        refs_group = f.create_group("#refs#")
        refs = np.empty((len(rects), 1), dtype=h5py.ref_dtype)
        for i, rect in enumerate(rects):
            mask_t = np.zeros((w, h), np.uint8)  # MATLAB's (H, W) image as HDF5 stores it
            if rect is not None:
                c0, r0, c1, r1 = rect
                mask_t[c0:c1 + 1, r0:r1 + 1] = 1
            d = refs_group.create_dataset(_ref_name(i), data=mask_t, compression="gzip", chunks=True)
            d.attrs["MATLAB_class"] = np.bytes_("logical")
            d.attrs["MATLAB_int_decode"] = np.int32(1)
            refs[i, 0] = d.ref
        cells = f.create_dataset("Masks", data=refs)
        cells.attrs["MATLAB_class"] = np.bytes_("cell")
    header = MAT73_HEADER.ljust(116).encode("ascii") + b" " * 8 + b"\x00\x02" + b"IM"
    with open(path, "r+b") as fh:
        fh.write(header.ljust(512, b"\x00"))


def make_fixture(root, seed: int = 0, subjects=None, n_frames: int = 70, cameras=CAMERA_IDS,
                 box_masks: bool = True) -> Path:
    """Write a miniature Human3.6M raw tree in the release's layout.

    Real CDF pose files and mp4 videos in which white marks are drawn at the projected 17 converted joints
    (over a grey stick figure), and a metadata.xml whose ``<w0>`` block holds plausible cameras. Videos have the
    release's frame sizes, S7's 55011271 ones 1000 x 1002 (:func:`release_image_size`). With ``box_masks``, every
    video has its ``MySegmentsMat/ground_truth_bb`` file (:func:`write_box_masks`): per frame the tight box of the
    17 projected annotated joints x 1.2. S9's ``Waiting 1`` carries the release's +200 mm x shift in its CDF and in
    its boxes (made from the shifted poses), so the documented correction is exercised. The duplicated release
    joints coincide with their twins.
    """
    from cdflib.cdfwrite import CDF

    from posebank.imaging.video import write_video

    root = Path(root)
    rng = np.random.default_rng(seed)
    subjects = sorted(subjects or FIXTURE_ACTIONS)
    extrinsics, intrinsics = _fixture_cameras(rng)
    root.mkdir(parents=True, exist_ok=True)
    numbers = " ".join(repr(float(x)) for x in [*extrinsics.ravel(), *intrinsics.ravel()])
    subjects_txt = " ".join(str(s) for s in subjects)
    (root / "metadata.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<a>\n'
        f"   <train_subjects>[{subjects_txt}]</train_subjects>\n"
        f"   <w0>[{numbers}]</w0>\n</a>\n")
    cams = read_cameras(root / "metadata.xml")
    selected = list(SELECTED_JOINTS)
    for subj in subjects:
        for act in FIXTURE_ACTIONS.get(subj, ["Directions 1"]):
            true_poses = _fixture_poses(rng, n_frames)
            stored = true_poses.copy()
            if is_shifted(subj, act):
                stored[..., 0] += S9_SHIFT_MM  # the release's error, undone by the correction
            cdf_path = root / f"S{subj}/MyPoseFeatures/D3_Positions/{act}.cdf"
            cdf_path.parent.mkdir(parents=True, exist_ok=True)
            if cdf_path.exists():
                cdf_path.unlink()
            cdf = CDF(str(cdf_path), cdf_spec={"Majority": "row_major", "Compressed": False})
            cdf.write_var({"Variable": "Pose", "Data_Type": 44, "Num_Elements": 1, "Rec_Vary": True, "Compress": 0,
                           "Dim_Sizes": [n_frames, N_RAW_JOINTS * 3]},
                          var_data=stored.reshape(1, n_frames, -1).astype(np.float32))
            cdf.close()
            for cam_id in cameras:
                camera = cams[(subj, cam_id)]
                size = release_image_size(subj, cam_id)
                frames = (_draw_frame(camera, true_poses[i][selected], size) for i in range(n_frames))
                write_video(root / f"S{subj}/Videos/{act}.{cam_id}.mp4", frames, fps=50)
                if box_masks:
                    rects = [box_mask_pixels(camera.project(stored[i][selected]), size) for i in range(n_frames)]
                    write_box_masks(root / box_mask_relpath(subj, act, cam_id), rects, size)
    (root / ".posebank-fixture").write_text(f"h36m fixture, seed {seed}\n")
    return root
