"""HUMAN4D (Chatzitofis et al., IEEE Access 2020): one or two actors filmed by four Intel RealSense D415 RGBD
sensors (the VCL3D volumetric capture system) while a 24-camera Vicon system tracked them; 33 joints of the Vicon
skeleton per frame, brought into the sensors' global frame by the release's tools.

Raw layout, as posepile ``ds/human4d/main.py`` globs it (``**/Dump/color/*.png``) and the release's tools
(tofis/human4d_dataset: ``h4d_rgbd_visualization_from_3d.py``, ``importers/``) read it::

    root/S<n>/device_repository.json                        every sensor's intrinsics and colour-depth extrinsics
    root/S<n>/offsets.txt                                   per sequence: <timestamp> TAB offset1 TAB offset2
    root/S<n>/pose/<cam>.extrinsics                         the pose of sensor <cam> in the global frame
    root/S<n>/<timestamp>/Dump/color/<frame>_<cam>_color_<n>.png   the colour frames (1280 x 720, sideways)
    root/S<n>/<timestamp>/Dump/gposes3d/<index>.npy         the joints of pose index <index>

``<n>`` of a colour file is the sensor's own frame counter; ``<frame>`` is the group frame number shared by the four
sensors (posepile: ``int(basename.split('_')[0])``, the camera ``basename.split('_')[1]``).

Formats:

* ``gposes3d/<index>.npy``: float (people, 33, 3), the joints in the global frame in mm, written by the release's
  ``h4d_markers_and_pose_extractor.py`` (``numpy.save(.../gposes3d/<i>.npy, transpose(joints, (1, 2, 0)))``).
  posepile reads one person (``squeeze(0)``) and removes joint 15 (``neck4_del``); a file holding two people gives
  two instances here (posepile's ``squeeze(0)`` raises on them).
* ``device_repository.json``: a list of ``{"Device": <cam>, "Color Intrinsics": [{"1280x720": [9 numbers, the 3 x 3
  K row by row], ...}], "Color Depth Rotation": [9], "Color Depth Translation": [3, metres], ...}``
  (``importers/intrinsics.py``).
* ``<cam>.extrinsics``: text, 4 rows of 3 numbers (``importers/extrinsics.py``): rows 0-2 the sensor-to-world
  rotation M (``X = M x + c``), row 3 the sensor's position c (mm). This is the depth sensor's pose: the release
  maps a point into the colour camera with ``x_colour = Rcd^-1 (x_depth - 1000 tcd)`` (Rcd, tcd the colour-depth
  rotation and translation) before projecting with the colour K (``h4d_rgbd_visualization_from_3d.py``); posepile
  uses the depth sensor's pose with the colour K (``color_from_depth: false``).
* ``offsets.txt``: ``<timestamp>\\t<offset1>\\t<offset2>`` per line; the pose of group frame f is
  ``gposes3d/<f - (offset1 - 1)>.npy`` (posepile's ``delta = offset1 - 1``; ``pose_index_shift`` 1; the release's
  visualisation script reads ``f - offset1``, shift 0).

Camera: K the colour intrinsics at 1280 x 720, no distortion, mm (no scaling). The sensors stand on their side: a
person appears lying (head towards the image's left), which is why posepile runs the detector on frames rotated by
270 degrees. The world's up is +z (the release's Vicon-to-global transform is a yaw about z, and its calibration
structure's top, the origin, is 820 mm above the floor); the crop stage turns each crop upright about that axis.

Selection (posepile ``make_stage1``): the colour frames of each camera, all subjects and sequences in natural
path order, one ``AdaptivePoseSampler2(100, True, True, 100)`` per camera name (a sampler per camera and person
here). A frame whose pose index is negative (before the mocap) or whose ``.npy`` is missing is recorded as dropped
(posepile skips both, printing the second). The box is the detect stage's rule ``detect.per_dataset.human4d``
(best-IoU YOLOv4 detection, IoU >= 0.5 with the projected joints' box x 1.2, long side >= 30 px; no detection in
the frame: the projected box). Everything is train.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np

from posebank.core.camera import Camera
from posebank.core.errors import ParamsError
from posebank.core.settings import check_dataset_params
from posebank.core.skeleton import JointInfo
from posebank.datasets.base import (
    DatasetInfo,
    Dropped,
    RawFileError,
    RawInstance,
    RawLayoutError,
    check_finite_camera,
)
from posebank.datasets.sampling import MISSING_POSE, AdaptivePoseSampler2

NAME = "human4d"
INFO = DatasetInfo(
    name=NAME,
    full_name="HUMAN4D (human-centric multimodal 4D dataset)",
    homepage="https://tofis.github.io/human4d_dataset/",
    licence=("Research use (unverified): the data are published on Zenodo (records 4473009, 4473047, 4483817, "
             "4484110, linked from the release's README) under the terms stated there; the release's tools "
             "(tofis/human4d_dataset) are MIT, which does not cover the data."),
    citation=("A. Chatzitofis, L. Saroglou, P. Boutis, P. Drakoulis, N. Zioulis, S. Subramanyam, B. Kevelham, "
              "C. Charbonnier, P. Cesar, D. Zarpalas, S. Kollias, P. Daras. HUMAN4D: A Human-Centric Multimodal "
              "Dataset for Motions and Immersive Media. IEEE Access 8, pp. 176241-176262, 2020."),
)

SUBJECTS = ("S1", "S2", "S3", "S4")  # posepile: 'S1 S2 S3 S4'
SPLITS = ("train",)
DEVICES = "device_repository.json"
OFFSETS = "offsets.txt"
POSE_DIR = "pose"
COLOR_DIR = "Dump/color"
GPOSES_DIR = "Dump/gposes3d"
RESOLUTION = "1280x720"  # posepile: device_info['Color Intrinsics'][0]['1280x720']
IMAGE_SIZE = (1280, 720)
WORLD_UP = (0.0, 0.0, 1.0)
M_TO_MM = 1000.0  # the colour-depth translation is in metres (the release: t * 1000)
# posepile's 33 names; the one ending in _del is removed
RAW_JOINT_NAMES = (
    "pelv,spin0,spin1,spin2,spin3,neck,neck2,head,htop,neck3,rsho,relb,rwri,rpinkie,rthu,"
    "neck4_del,lsho,lelb,lwri,lpinkie,lthu,rhip,rkne,rank,rfoo,rtoe,rtoe2,lhip,lkne,lank,"
    "lfoo,ltoe,ltoe2").split(",")
N_RAW_JOINTS = len(RAW_JOINT_NAMES)  # 33
SELECTED = [i for i, n in enumerate(RAW_JOINT_NAMES) if not n.endswith("_del")]
JOINT_NAMES = [RAW_JOINT_NAMES[i] for i in SELECTED]
N_JOINTS = len(JOINT_NAMES)  # 32
JOINT_INFO = JointInfo(",".join(JOINT_NAMES), "rthu-rpinkie-rwri-relb-rsho-neck3-spin3-neck-neck2-head-htop,"
                                              "spin3-spin2-spin1-spin0-pelv-rhip-rkne-rank-rfoo-rtoe-rtoe2")

DEFAULT_PARAMS = {
    "subjects": list(SUBJECTS),  # posepile: all four
    "cameras": [],  # sensor names (e.g. M72e); [] = every camera with colour frames (posepile)
    "adaptive_sampling_mm": 100.0,  # posepile: per camera AdaptivePoseSampler2(100, True, True, 100); 0 = off
    "sampling_buffer": 100,  # ... against the last this many kept poses
    "pose_index_shift": 1,  # pose index = frame - offset1 + this (posepile: offset1 - 1 -> 1; the release's viewer: 0)
    "color_from_depth": True,  # apply the colour-depth extrinsics (the release); false: posepile's depth pose
}

_COLOR_FILE = re.compile(r"^(\d+)_([^_]+)_color_(\d+)\.png$")
BEFORE_MOCAP = "before the mocap's first pose (frame - offset1 + pose_index_shift < 0, offsets.txt)"
NO_POSE_FILE = "no Dump/gposes3d/<index>.npy for this frame (past the mocap's end or missing)"


# ------------------------------------------------------------------------------------------- readers
def _json(path: Path, what: str):
    try:
        return json.loads(Path(path).read_text())
    except OSError as e:
        raise RawFileError(path, f"unreadable {what} ({e.strerror or e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RawFileError(path, f"unreadable {what}: not valid JSON, truncated or corrupt") from None


def _numbers(path, where: str, value, n: int) -> np.ndarray:
    try:
        a = np.asarray(value, np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise RawFileError(path, f"{where} is not a list of numbers") from None
    if a.size != n or not np.isfinite(a).all():
        raise RawFileError(path, f"{where} must be {n} finite numbers, got {a.size}")
    return a


def _rotation(path, where: str, m: np.ndarray) -> np.ndarray:
    if not np.allclose(m @ m.T, np.eye(3), atol=1e-3) or np.linalg.det(m) < 0:
        raise RawFileError(path, f"{where} is not a rotation matrix")
    return m


@dataclasses.dataclass(frozen=True)
class Device:
    intrinsic_matrix: np.ndarray  # colour K at 1280 x 720
    color_depth_rotation: np.ndarray  # Rcd (3 x 3)
    color_depth_translation_mm: np.ndarray  # 1000 tcd


def read_devices(path) -> dict[str, Device]:
    """``device_repository.json`` -> {device name: Device} (the colour K at 1280 x 720, the colour-depth
    extrinsics)."""
    path = Path(path)
    data = _json(path, "device repository")
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise RawFileError(path, "not a device repository: expected a list of {Device, Color Intrinsics, ...}")
    out = {}
    for k, entry in enumerate(data):
        name = entry.get("Device")
        if not isinstance(name, str) or not name:
            raise RawFileError(path, f"entry {k} has no 'Device' name")
        intr = entry.get("Color Intrinsics")
        if not isinstance(intr, list) or not intr or not isinstance(intr[0], dict) or RESOLUTION not in intr[0]:
            raise RawFileError(path, f"{name}: no 'Color Intrinsics'[0][{RESOLUTION!r}]")
        k_mat = _numbers(path, f"{name}: 'Color Intrinsics'[0][{RESOLUTION!r}]", intr[0][RESOLUTION], 9).reshape(3, 3)
        for key in ("Color Depth Rotation", "Color Depth Translation"):
            if key not in entry:
                raise RawFileError(path, f"{name}: no {key!r}")
        rot = _rotation(path, f"{name}: 'Color Depth Rotation'",
                        _numbers(path, f"{name}: 'Color Depth Rotation'", entry["Color Depth Rotation"], 9)
                        .reshape(3, 3))
        t = _numbers(path, f"{name}: 'Color Depth Translation'", entry["Color Depth Translation"], 3)
        out[name] = Device(k_mat, rot, t * M_TO_MM)
    return out


def read_extrinsics(path) -> tuple[np.ndarray, np.ndarray]:
    """``<cam>.extrinsics`` -> (M, c): the sensor-to-world rotation (rows 0-2) and the sensor's position in mm
    (row 3)."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise RawFileError(path, f"unreadable extrinsics file ({getattr(e, 'strerror', None) or e})") from None
    rows = [line.split() for line in text.splitlines() if line.strip()]
    try:
        data = np.array(rows, np.float64)
    except ValueError:
        raise RawFileError(path, "malformed extrinsics file: expected 4 rows of 3 numbers, truncated or corrupt") \
            from None
    if data.shape != (4, 3) or not np.isfinite(data).all():
        raise RawFileError(path, f"malformed extrinsics file: expected 4 rows of 3 numbers, got {len(rows)} rows "
                                 "(truncated or corrupt)")
    return _rotation(path, "rows 0-2", data[:3]), data[3]


def read_offsets(path) -> dict[str, int]:
    """``offsets.txt`` -> {timestamp: offset1}."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise RawFileError(path, f"unreadable offsets file ({getattr(e, 'strerror', None) or e})") from None
    out = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.rstrip("\r\n").split("\t")
        if len(parts) < 2 or not re.fullmatch(r"-?\d+", parts[1].strip()):
            raise RawFileError(path, f"line {n}: expected <timestamp> TAB <offset1> TAB <offset2>, got {line!r}")
        out[parts[0].strip()] = int(parts[1])
    return out


def read_pose(path) -> np.ndarray:
    """``gposes3d/<index>.npy`` -> (people, 32, 3) mm in the global frame (``neck4_del`` removed)."""
    path = Path(path)
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise RawFileError(path, f"unreadable pose file: not an npy array, truncated or corrupt ({e})") from None
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[1:] != (N_RAW_JOINTS, 3) or a.shape[0] < 1 or a.dtype.kind not in "fiu":
        raise RawFileError(path, f"pose file must hold (people, {N_RAW_JOINTS}, 3) numbers, got {a.shape} {a.dtype}")
    return a[:, SELECTED].astype(np.float64)


def make_camera(device: Device, rot_cam_to_world: np.ndarray, centre: np.ndarray, color_from_depth: bool = True
                ) -> Camera:
    """The colour camera: world -> depth sensor ``Mᵀ (X - c)``, then (``color_from_depth``) -> colour
    ``Rcdᵀ (x - 1000 tcd)``; K the colour intrinsics, no distortion, up +z."""
    r = rot_cam_to_world.T
    t = np.asarray(centre, np.float64)
    if color_from_depth:
        t = t + rot_cam_to_world @ device.color_depth_translation_mm
        r = device.color_depth_rotation.T @ r
    return Camera(intrinsic_matrix=device.intrinsic_matrix, R=r, t=t, world_up=WORLD_UP)


def parse_color_name(name: str) -> tuple[int, str] | None:
    """(group frame, camera) of ``<frame>_<cam>_color_<n>.png``; None for other names."""
    m = _COLOR_FILE.match(name)
    return (int(m[1]), m[2]) if m else None


def natural_key(path: str):
    """posepile's ``spu.natural_sorted`` order: digit runs compare as numbers."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", path) if t]


# ------------------------------------------------------------------------------------------- params, layout
def check_params(params: dict | None = None) -> dict:
    p = check_dataset_params(NAME, params, DEFAULT_PARAMS)
    where = f"datasets.{NAME}"
    s = p["subjects"]
    if not s or len(set(s)) != len(s) or not all(isinstance(x, str) and re.fullmatch(r"S\d+", x) for x in s):
        raise ParamsError(f"{where}.subjects", f"must be distinct folder names S<n> (posepile: S1..S4), got {s}")
    if not all(isinstance(c, str) and c and "_" not in c and "/" not in c for c in p["cameras"]):
        raise ParamsError(f"{where}.cameras", f"must be sensor names (e.g. M72e), got {p['cameras']}")
    if p["adaptive_sampling_mm"] < 0:
        raise ParamsError(f"{where}.adaptive_sampling_mm", f"must be >= 0 (0 = off), got {p['adaptive_sampling_mm']}")
    if p["sampling_buffer"] < 1:
        raise ParamsError(f"{where}.sampling_buffer", f"must be at least 1, got {p['sampling_buffer']}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    check_params(params)
    return SPLITS


@dataclasses.dataclass(frozen=True)
class Image:
    subject: str
    sequence: str  # the timestamp folder
    frame: int  # the group frame number
    camera: str
    source: str  # relative path of the PNG


def check_layout(root, params: dict | None = None) -> list[Image]:
    """Verify the raw tree; the selected colour frames in posepile's natural path order. Names every missing
    subject file or folder, sequence without gposes3d, and camera without extrinsics."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    missing, out = [], []
    for subj in p["subjects"]:
        folder = root / subj
        if not folder.is_dir():
            missing.append(f"{subj}/")
            continue
        for rel in (DEVICES, OFFSETS):
            if not (folder / rel).is_file():
                missing.append(f"{subj}/{rel}")
        sequences = sorted(d.name for d in folder.iterdir() if (d / COLOR_DIR).is_dir())
        if not sequences:
            missing.append(f"{subj}/<timestamp>/{COLOR_DIR}/")
        cams = set()
        for seq in sequences:
            found = [(parse_color_name(f.name), f.name) for f in (folder / seq / COLOR_DIR).iterdir()]
            found = [(fc, n) for fc, n in found if fc and (not p["cameras"] or fc[1] in p["cameras"])]
            if found and not (folder / seq / GPOSES_DIR).is_dir():
                missing.append(f"{subj}/{seq}/{GPOSES_DIR}/")
            for (frame, cam), name in found:
                cams.add(cam)
                out.append(Image(subj, seq, frame, cam, f"{subj}/{seq}/{COLOR_DIR}/{name}"))
        for cam in sorted(cams):
            if not (folder / POSE_DIR / f"{cam}.extrinsics").is_file():
                missing.append(f"{subj}/{POSE_DIR}/{cam}.extrinsics")
    if missing:
        raise RawLayoutError(NAME, root, missing)
    if not out:
        raise RawLayoutError(NAME, root, f"S<n>/<timestamp>/{COLOR_DIR}/<frame>_<cam>_color_<n>.png"
                                         + (f" of cameras {p['cameras']}" if p["cameras"] else ""))
    return sorted(out, key=lambda im: natural_key(im.source))


def read_cameras(root, subject: str, cameras, color_from_depth: bool = True) -> dict[str, Camera]:
    """A subject's colour cameras {name: Camera} from its device repository and ``pose/<cam>.extrinsics``."""
    folder = Path(root) / subject
    devices = read_devices(folder / DEVICES)
    out = {}
    for cam in cameras:
        if cam not in devices:
            raise RawFileError(folder / DEVICES, f"has no device {cam!r} (has {sorted(devices)})")
        path = folder / POSE_DIR / f"{cam}.extrinsics"
        camera = make_camera(devices[cam], *read_extrinsics(path), color_from_depth)
        check_finite_camera(camera, path)
        out[cam] = camera
    return out


# ------------------------------------------------------------------------------------------- instances
def _drop(dropped: list[Dropped] | None, source: str, reason: str) -> None:
    if dropped is not None:
        dropped.append(Dropped(source, reason))


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected person instance, in posepile's order: by camera name, then natural path order."""
    p = check_params(params)
    root = Path(root)
    images = check_layout(root, p)
    cameras, offsets = {}, {}
    for subj in p["subjects"]:
        cameras[subj] = read_cameras(root, subj, sorted({im.camera for im in images if im.subject == subj}),
                                     p["color_from_depth"])
        offsets[subj] = read_offsets(root / subj / OFFSETS)
    by_camera: dict[str, list[Image]] = {}
    for im in images:
        by_camera.setdefault(im.camera, []).append(im)
    out = []
    for cam in sorted(by_camera):  # posepile: groupby keeps first-seen order; the order does not change the kept set
        samplers: dict[int, AdaptivePoseSampler2] = {}
        for im in by_camera[cam]:
            if im.sequence not in offsets[im.subject]:
                raise RawFileError(root / im.subject / OFFSETS, f"has no line for sequence {im.sequence!r}")
            index = im.frame - offsets[im.subject][im.sequence] + p["pose_index_shift"]
            if index < 0:
                _drop(dropped, im.source, BEFORE_MOCAP)
                continue
            path = root / im.subject / im.sequence / GPOSES_DIR / f"{index}.npy"
            if not path.is_file():
                _drop(dropped, im.source, NO_POSE_FILE)
                continue
            for person, world in enumerate(read_pose(path)):
                world = np.where(np.isfinite(world), world, np.nan)
                if not np.isfinite(world).any():
                    _drop(dropped, im.source, MISSING_POSE)
                    continue
                if p["adaptive_sampling_mm"] > 0:
                    sampler = samplers.setdefault(person, AdaptivePoseSampler2(p["adaptive_sampling_mm"],
                                                                              p["sampling_buffer"]))
                    if not sampler.should_keep(world):
                        continue
                out.append(RawInstance(
                    source=im.source, frame_index=im.frame, world_coords=world, camera=cameras[im.subject][cam],
                    split="train", subject=im.subject, sequence=im.sequence, camera_name=cam, person_index=person))
    return out


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.human4d.fixture.make_fixture`, which
    takes the ``options``)."""
    from posebank.datasets.human4d.fixture import make_fixture as write

    return write(root, seed, **options)


# No direct URLs with published checksums are given for the frames: the Zenodo records hold archives of the
# sequences, and posepile does not script the download.
RAW_INSTRUCTIONS = """
    HUMAN4D: follow the homepage, https://tofis.github.io/human4d_dataset/ (the README of
    github.com/tofis/human4d_dataset links the Zenodo records 4473009, 4473047, 4483817 and 4484110). Download
    the subjects' RGBD sequences with their calibration and 3D poses, and unpack them into the raw folder so
    that it holds, per subject S1..S4,
        S<n>/device_repository.json
        S<n>/offsets.txt
        S<n>/pose/<cam>.extrinsics
        S<n>/<timestamp>/Dump/color/<frame>_<cam>_color_<n>.png
        S<n>/<timestamp>/Dump/gposes3d/<index>.npy
"""
