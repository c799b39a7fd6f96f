"""MPI-INF-3DHP test set (Mehta et al., 3DV 2017): six sequences TS1..TS6 filmed by one camera each.

Raw layout, as ``get_testset.sh`` unpacks it (``root`` holds the ``TS*`` folders, or holds
``mpi_inf_3dhp_test_set/`` which holds them)::

    root/TS<n>/annot_data.mat                  MATLAB v7.3 (an HDF5 file), n = 1..6
    root/TS<n>/imageSequence/img_000001.jpg    frame i (0-based) is img_<i+1, 6 digits>.jpg

``annot_data.mat`` as h5py reads it (MATLAB stores arrays transposed, so MATLAB's (2, 17, 1, T) is (T, 1, 17, 2)):
``annot2`` (T, 1, 17, 2) pixels, ``annot3`` (T, 1, 17, 3) mm in the camera frame, ``univ_annot3`` (T, 1, 17, 3)
the universal skeleton, ``valid_frame`` (T, 1) 0/1 and ``activity_annotation`` (T, 1) 1..7. The 17 joints are
``htop neck rsho relb rwri lsho lelb lwri rhip rkne rank lhip lkne lank pelv spin head``; posebank reorders them
to the training set's joint order (``tdhp.JOINT_INFO``), as posepile does.

Cameras: TS1-TS4 (studio, 2048 x 2048) share one camera, TS5-TS6 (outdoor, 1920 x 1080, with lens distortion)
another. Their parameters come from the test set's ``test_util/camera_calibration`` files (Captury's
"tc camera calibration" format: sensor size, focal length and centre offset in mm, pixel aspect, OpenCV
distortion, origin/up/right); posepile and the benchmark code hard-code the same numbers, as does this module.
They are turned into pixels as that format's own reader does; posepile also scales the principal point's y by
the pixel aspect, which moves cy by 0.46 px (TS1-4) and -3.8 px (TS5-6) — posebank does not.

Only frames whose ``valid_frame`` is set are converted (posepile, and the official evaluation), all of them by
default; the world joints are ``annot3`` taken back to the world through the camera.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import h5py
import numpy as np

from posebank.camera import Camera
from posebank.datasets import tdhp
from posebank.datasets.base import DatasetInfo, RawFileError, RawInstance, RawLayoutError, check_finite_camera

log = logging.getLogger(__name__)

INFO = DatasetInfo(
    name="tdhp_test",
    full_name="MPI-INF-3DHP test set",
    homepage=tdhp.INFO.homepage,
    licence=tdhp.INFO.licence,
    citation=tdhp.INFO.citation,
)
JOINT_INFO = tdhp.JOINT_INFO
N_TEST_JOINTS = 17
TEST_JOINT_NAMES = "htop,neck,rsho,relb,rwri,lsho,lelb,lwri,rhip,rkne,rank,lhip,lkne,lank,pelv,spin,head".split(",")
# annot_data.mat joint order -> JOINT_INFO order (posepile's test_set_selected_joints)
TEST_TO_JOINT_INFO = (*range(14), 15, 16, 14)
# the 28 training joints that the test joints correspond to, in the test order (for the fixture)
TEST_RAW_JOINTS = tuple(tdhp.RAW_JOINT_NAMES.index(n) for n in TEST_JOINT_NAMES)
ACTIVITIES = ("Stand/Walk", "Exercise", "Sit on Chair", "Reach/Crouch", "On Floor", "Sports", "Misc.")
SCENES = ("green-screen", "no-green-screen", "outdoor")  # TS1-2, TS3-4, TS5-6
NESTED_FOLDER = "mpi_inf_3dhp_test_set"
MAT73_HEADER = "MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 HDF5 schema 1.00 ."

# the test cameras in the calibration files' terms (Captury "tc camera calibration v0.3")
TEST_CALIBRATIONS = {
    "ts1-4": {
        "image_size": (2048, 2048), "sensor_size": (10.0, 10.0), "focal_length": 7.32506, "pixel_aspect": 1.00044,
        "center_offset": (-0.0322884, 0.0929296), "distortion": (0.0, 0.0, 0.0, 0.0, 0.0),
        "origin": (3427.28, 1387.86, 309.42), "up": (-0.208215, 0.976233, 0.06014),
        "right": (0.000575281, 0.0616098, -0.9981)},
    "ts5-6": {
        "image_size": (1920, 1080), "sensor_size": (10.0, 5.625), "focal_length": 8.770747185,
        "pixel_aspect": 0.993236423, "center_offset": (-0.104908645, 0.104899704),
        "distortion": (-0.276859611, 0.131125256, -0.000360494, -0.001149441, -0.049318332),
        "origin": (-2104.3074, 1038.6707, -4596.6367), "up": (0.025272345, 0.995038509, 0.096227370),
        "right": (-0.939647257, -0.009210289, 0.342020929)},
}

DEFAULT_PARAMS = {
    "test_subjects": [1, 2, 3, 4, 5, 6],
    "frame_step": 1,
}


# ------------------------------------------------------------------------------------------- cameras
def camera_from_tc_calibration(image_size, sensor_size, focal_length, pixel_aspect, center_offset, distortion,
                               origin, up, right) -> Camera:
    """A camera from the quantities of a "tc camera calibration" block, read as the format's own reader does.

    fx = focal (mm) x width / sensor width, fy = focal x height / sensor height x pixel aspect; the principal point
    is the image centre plus the centre offset (mm) converted to pixels; the rotation's rows are ``right``,
    ``-up`` and their cross product (image y points down).
    """
    w, h = image_size
    sw, sh = sensor_size
    fx = focal_length * w / sw
    fy = focal_length * h / sh * pixel_aspect
    cx = w / 2 + center_offset[0] * w / sw
    cy = h / 2 + center_offset[1] * h / sh
    right = np.asarray(right, np.float64) / np.linalg.norm(right)
    down = -np.asarray(up, np.float64) / np.linalg.norm(up)
    rot = np.stack([right, down, np.cross(right, down)])
    return Camera([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], rot, origin, distortion, world_up=tdhp.WORLD_UP)


def camera_key(ts: int) -> str:
    if ts not in range(1, 7):
        raise ValueError(f"tdhp_test: test sequences are TS1..TS6, got TS{ts}")
    return "ts1-4" if ts <= 4 else "ts5-6"


def sequence_camera(ts: int) -> Camera:
    """The camera of test sequence TS<ts> (world y up, mm)."""
    return camera_from_tc_calibration(**TEST_CALIBRATIONS[camera_key(ts)])


def sequence_image_size(ts: int) -> tuple[int, int]:
    return TEST_CALIBRATIONS[camera_key(ts)]["image_size"]


def scene(ts: int) -> str:
    return SCENES[(ts - 1) // 2]


# ------------------------------------------------------------------------------------------- annotations
def read_test_annot(path) -> dict:
    """One ``annot_data.mat``: ``annot2`` (T, 17, 2), ``annot3`` and ``univ_annot3`` (T, 17, 3) in the file's joint
    order, ``valid_frame`` (T,) bool and ``activity`` (T,) int (1..7; 0 where the file has none)."""
    path = Path(path)
    if not path.is_file():
        raise RawFileError(path, "annotation file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise RawFileError(path, f"not a readable MATLAB v7.3 (HDF5) file, truncated or of another format ({e})") from e
    with f:
        out = {}
        n_frames = None
        for key, dims in (("annot2", 2), ("annot3", 3), ("univ_annot3", 3)):
            if key not in f or not isinstance(f[key], h5py.Dataset):
                raise RawFileError(path, f"no '{key}' array (has {sorted(f.keys())})")
            shape = f[key].shape
            if len(shape) != 4 or shape[1:] != (1, N_TEST_JOINTS, dims):
                raise RawFileError(path, f"'{key}' has shape {shape}, expected (T, 1, {N_TEST_JOINTS}, {dims}) "
                                         f"(MATLAB ({dims}, {N_TEST_JOINTS}, 1, T))")
            if n_frames is None:
                n_frames = shape[0]
            if shape[0] != n_frames:
                raise RawFileError(path, f"'{key}' has {shape[0]} frames, 'annot2' {n_frames}")
            out[key] = np.asarray(f[key][:, 0], np.float64)
        for key, name in (("valid_frame", "valid_frame"), ("activity_annotation", "activity")):
            if key not in f or not isinstance(f[key], h5py.Dataset):
                if key == "activity_annotation":
                    out[name] = np.zeros(n_frames, np.int64)
                    continue
                raise RawFileError(path, f"no '{key}' array (has {sorted(f.keys())})")
            arr = np.asarray(f[key][()], np.float64)
            if arr.size != n_frames or (arr.ndim == 2 and 1 not in arr.shape) or arr.ndim > 2:
                raise RawFileError(path, f"'{key}' has shape {arr.shape}, expected ({n_frames}, 1)")
            out[name] = arr.ravel()
    valid = out["valid_frame"]
    if not np.all(np.isfinite(valid)):
        raise RawFileError(path, "'valid_frame' contains non-finite values")
    out["valid_frame"] = valid != 0
    activity = out["activity"]
    if not np.all(np.isfinite(activity)) or np.any(activity != np.round(activity)):
        raise RawFileError(path, "'activity_annotation' holds something other than activity numbers")
    out["activity"] = activity.astype(np.int64)
    return out


# ------------------------------------------------------------------------------------------- layout
def find_test_root(root) -> tuple[Path, str]:
    """The folder holding TS1..TS6 and its path relative to ``root`` ('' or 'mpi_inf_3dhp_test_set/')."""
    root = Path(root)
    if not any((root / f"TS{i}").is_dir() for i in range(1, 7)) and (root / NESTED_FOLDER).is_dir():
        return root / NESTED_FOLDER, f"{NESTED_FOLDER}/"
    return root, ""


def image_relpath(ts: int, frame: int) -> str:
    """Path of 0-based frame ``frame`` of TS<ts> relative to the folder holding the TS folders."""
    return f"TS{ts}/imageSequence/img_{frame + 1:06d}.jpg"


def check_layout(root, params: dict | None = None) -> dict[int, dict]:
    """Verify the raw tree and read its annotations; returns ``{ts: read_test_annot(...)}``."""
    p = {**DEFAULT_PARAMS, **(params or {})}
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError("tdhp_test", root, "the folder itself")
    base, prefix = find_test_root(root)
    missing = [f"{prefix}TS{ts}/annot_data.mat" for ts in p["test_subjects"]
               if not (base / f"TS{ts}/annot_data.mat").is_file()]
    if missing:
        raise RawLayoutError("tdhp_test", root, missing)
    annots = {ts: read_test_annot(base / f"TS{ts}/annot_data.mat") for ts in p["test_subjects"]}
    for ts, annot in annots.items():
        missing += [prefix + image_relpath(ts, i) for i in selected_frames(annot, p["frame_step"])
                    if not (base / image_relpath(ts, i)).is_file()]
    if missing:
        raise RawLayoutError("tdhp_test", root, missing)
    return annots


def selected_frames(annot: dict, frame_step: int = 1) -> np.ndarray:
    """0-based indices of the valid frames (every ``frame_step``-th frame number)."""
    if frame_step < 1:
        raise ValueError(f"frame_step must be >= 1, got {frame_step}")
    idx = np.flatnonzero(annot["valid_frame"])
    return idx[idx % frame_step == 0]


def instances(root, params: dict | None = None) -> list[RawInstance]:
    """Every valid test frame, in a deterministic order; split "test"."""
    p = {**DEFAULT_PARAMS, **(params or {})}
    if len(set(p["test_subjects"])) != len(p["test_subjects"]):
        raise ValueError(f"tdhp_test: test_subjects repeat: {p['test_subjects']}")
    for ts in p["test_subjects"]:
        camera_key(ts)
    root = Path(root)
    annots = check_layout(root, p)
    base, prefix = find_test_root(root)
    out = []
    for ts in sorted(annots):
        annot = annots[ts]
        camera = sequence_camera(ts)
        check_finite_camera(camera, f"tdhp_test camera {camera_key(ts)}")
        coords = annot["annot3"][:, list(TEST_TO_JOINT_INFO)]
        for i in selected_frames(annot, p["frame_step"]):
            a = int(annot["activity"][i])
            if not 1 <= a <= len(ACTIVITIES):
                raise RawFileError(base / f"TS{ts}/annot_data.mat", f"frame {i}: activity {a} not in 1..7")
            out.append(RawInstance(
                source=prefix + image_relpath(ts, int(i)), frame_index=int(i) + 1,
                world_coords=camera.camera_to_world(coords[i]), camera=camera, split="test", subject=f"TS{ts}",
                sequence=f"TS{ts}", activity=ACTIVITIES[a - 1], camera_name=camera_key(ts)))
    return out


# ------------------------------------------------------------------------------------------- fixture
# images beyond the annotations, as in the release (TS3: 1, TS4: 2)
EXTRA_IMAGES = {3: 1, 4: 2}


def write_mat73(path, arrays: dict[str, np.ndarray]) -> None:
    """Write arrays into a MATLAB v7.3 file the way MATLAB does: an HDF5 file behind a 512-byte MAT header, one
    dataset per variable with its MATLAB_class. Arrays are given as h5py shows them (MATLAB's shape reversed)."""
    path = Path(path)
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, arr in arrays.items():
            d = f.create_dataset(name, data=np.asarray(arr, np.float64))
            d.attrs["MATLAB_class"] = np.bytes_("double")
    header = MAT73_HEADER.ljust(116).encode("ascii") + b" " * 8 + b"\x00\x02" + b"IM"
    with open(path, "r+b") as fh:
        fh.write(header.ljust(512, b"\x00"))


def make_fixture(root, seed: int = 0, subjects=(1, 2, 3, 4, 5, 6), n_frames: int = 12) -> Path:
    """Write a miniature MPI-INF-3DHP test tree in the release's layout.

    Real MATLAB v7.3 ``annot_data.mat`` files and full-size JPEG frames (2048 x 2048 for TS1-4, 1920 x 1080 for
    TS5-6, as the hard-coded cameras require) with white marks at the 17 projected joints over a grey stick figure.
    Every fourth frame is marked invalid; TS3 and TS4 have one and two more images than annotations, as the release.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for ts in subjects:
        camera = sequence_camera(ts)
        w, h = sequence_image_size(ts)
        forward, right = camera.R[2], camera.R[0]
        target = camera.t + rng.uniform(3600, 4200) * forward
        across = right[[0, 2]] / np.linalg.norm(right[[0, 2]])
        world = tdhp.fixture_poses(rng, n_frames, across * rng.choice([-1, 1]))
        world = world + [target[0], target[1] - 880.0, target[2]]
        pelvis = world[:, 4:5]
        univ = pelvis + (world - pelvis) * rng.uniform(0.92, 1.08)
        test_world = world[:, list(TEST_RAW_JOINTS)]
        annot2 = camera.project(test_world)
        valid = (np.arange(n_frames) % 4 != 3).astype(np.float64)
        activity = (np.arange(n_frames) % len(ACTIVITIES) + 1).astype(np.float64)
        folder = root / f"TS{ts}"
        (folder / "imageSequence").mkdir(parents=True, exist_ok=True)
        write_mat73(folder / "annot_data.mat", {
            "annot2": annot2[:, None], "annot3": camera.world_to_camera(test_world)[:, None],
            "univ_annot3": camera.world_to_camera(univ[:, list(TEST_RAW_JOINTS)])[:, None],
            "valid_frame": valid[:, None], "activity_annotation": activity[:, None]})
        raw2d = camera.project(world)
        for i in range(n_frames + EXTRA_IMAGES.get(ts, 0)):
            image = np.full((h, w, 3), 40, np.uint8)
            if i < n_frames:
                tdhp.draw_person(image, raw2d[i], tdhp.RAW_EDGES, (110, 110, 110), w / 80)
                tdhp.draw_marks(image, annot2[i], radius=5.0)
            cv2.imwrite(str(root / image_relpath(ts, i)), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    (root / ".posebank-fixture").write_text(f"tdhp_test fixture, seed {seed}\n")
    return root
