"""A miniature 3DPW raw tree in the release's layout, for tests and demos (see :func:`make_fixture`).

The sequence files are written as the release's are: Python 2 pickles of protocol 2 (:func:`py2_dumps`), whose
strings are Python 2 byte strings (``SHORT_BINSTRING`` / ``BINSTRING``, read back with ``encoding='latin1'``) and
whose numpy arrays are ``numpy.core.multiarray._reconstruct`` calls with the raw data as such a string, as numpy
1.x under Python 2 wrote them. The people are SMPL-like kinematic chains: ``jointPositions`` is the forward
kinematics of ``poses`` about the chain's rest joints plus ``trans``, so the posed root joint minus ``trans`` is the
rest root joint in every frame, as in SMPL.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from posebank.core.bodymodel import rodrigues
from posebank.datasets.tdpw import (
    IMAGE_DIR,
    N_RAW_JOINTS,
    SEQUENCE_DIR,
    SMPL_JOINT_NAMES,
    SMPL_PARENTS,
    image_name,
)

MARK_RADIUS = 5.0
FIXTURE_MARKER = ".posebank-fixture"
N_TEMPLATE_VERTICES = 6890  # v_template_clothed: one (6890, 3) SMPL mesh per person


# ------------------------------------------------------------------------------------------- Python 2 pickles
def py2_dumps(obj) -> bytes:
    """``obj`` as Python 2's ``cPickle.dump(obj, f, 2)`` wrote it: str values as Python 2 byte strings (latin-1),
    numpy arrays as numpy 1.x reduced them. Handles dict, list, tuple, str, bytes, int, float, bool, None and
    numeric numpy arrays (what a 3DPW sequence file holds)."""
    out = bytearray(b"\x80\x02")
    _emit(out, obj)
    out += b"."
    return bytes(out)


def _emit(out: bytearray, obj) -> None:
    if obj is None:
        out += b"N"
    elif obj is True or obj is False:
        out += b"\x88" if obj else b"\x89"
    elif isinstance(obj, (int, np.integer)):
        obj = int(obj)
        if 0 <= obj < 256:
            out += b"K" + bytes([obj])
        elif 0 <= obj < 65536:
            out += b"M" + struct.pack("<H", obj)
        else:
            out += b"J" + struct.pack("<i", obj)
    elif isinstance(obj, (float, np.floating)):
        out += b"G" + struct.pack(">d", float(obj))
    elif isinstance(obj, (str, bytes)):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        out += (b"U" + bytes([len(data)]) if len(data) < 256 else b"T" + struct.pack("<i", len(data))) + data
    elif isinstance(obj, tuple):
        if not obj:
            out += b")"
        elif len(obj) <= 3:
            for x in obj:
                _emit(out, x)
            out += (b"\x85", b"\x86", b"\x87")[len(obj) - 1]
        else:
            out += b"("
            for x in obj:
                _emit(out, x)
            out += b"t"
    elif isinstance(obj, list):
        out += b"]"
        if obj:
            out += b"("
            for x in obj:
                _emit(out, x)
            out += b"e"
    elif isinstance(obj, dict):
        out += b"}"
        if obj:
            out += b"("
            for k, v in obj.items():
                _emit(out, k)
                _emit(out, v)
            out += b"u"
    elif isinstance(obj, np.ndarray):
        _emit_array(out, obj)
    else:
        raise TypeError(f"py2_dumps cannot write a {type(obj).__name__}")


def _emit_dtype(out: bytearray, dtype: np.dtype) -> None:
    # numpy 1.x dtype.__reduce__: (dtype, ('f8', 0, 1), (3, '<', None, None, None, -1, -1, 0))
    out += b"cnumpy\ndtype\n"
    _emit(out, (f"{dtype.kind}{dtype.itemsize}", 0, 1))
    out += b"R"
    _emit(out, (3, "|" if dtype.itemsize == 1 else "<", None, None, None, -1, -1, 0))
    out += b"b"


def _emit_array(out: bytearray, a: np.ndarray) -> None:
    if a.dtype.kind not in "biuf":
        raise TypeError(f"py2_dumps writes numeric arrays only, got {a.dtype}")
    a = np.ascontiguousarray(a, a.dtype.newbyteorder("<") if a.dtype.itemsize > 1 else a.dtype)
    # ndarray.__reduce__: (_reconstruct, (ndarray, (0,), 'b'), (1, shape, dtype, is_fortran, rawdata))
    out += b"cnumpy.core.multiarray\n_reconstruct\n"
    out += b"cnumpy\nndarray\n"
    _emit(out, (0,))
    _emit(out, b"b")
    out += b"\x87R("
    _emit(out, 1)
    _emit(out, tuple(int(n) for n in a.shape))
    _emit_dtype(out, a.dtype)
    _emit(out, False)
    _emit(out, a.tobytes())
    out += b"tb"


# ------------------------------------------------------------------------------------------- bodies
# rest joints of a standing SMPL-like body, metres: x to the person's left, y up, z forward; the root (pelvis)
# sits below the origin as in SMPL's template, so trans and the root joint differ
_REST = {
    "pelv": (0.0, -0.22, 0.02), "lhip": (0.07, -0.31, 0.01), "rhip": (-0.07, -0.31, 0.01),
    "bell": (0.0, -0.11, -0.01), "lkne": (0.11, -0.69, 0.02), "rkne": (-0.11, -0.69, 0.02),
    "spin": (0.0, 0.03, 0.0), "lank": (0.09, -1.09, -0.03), "rank": (-0.09, -1.09, -0.03),
    "thor": (0.0, 0.09, 0.02), "ltoe": (0.12, -1.15, 0.10), "rtoe": (-0.12, -1.15, 0.10),
    "neck": (0.0, 0.29, -0.02), "lcla": (0.08, 0.20, -0.01), "rcla": (-0.08, 0.20, -0.01),
    "head": (0.0, 0.42, 0.03), "lsho": (0.19, 0.23, -0.02), "rsho": (-0.19, 0.23, -0.02),
    "lelb": (0.45, 0.22, -0.04), "relb": (-0.45, 0.22, -0.04), "lwri": (0.70, 0.23, -0.03),
    "rwri": (-0.70, 0.23, -0.03), "lhan": (0.78, 0.22, -0.04), "rhan": (-0.78, 0.22, -0.04)}
REST_JOINTS = np.array([_REST[n] for n in SMPL_JOINT_NAMES])
_IX = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}
# OpenPose COCO-18 -> the SMPL joint it is drawn near (the face points from the head joint, see _openpose_points)
_OPENPOSE_FROM_SMPL = {1: "neck", 2: "rsho", 3: "relb", 4: "rwri", 5: "lsho", 6: "lelb", 7: "lwri", 8: "rhip",
                       9: "rkne", 10: "rank", 11: "lhip", 12: "lkne", 13: "lank"}
_FACE = {0: (0.0, 0.02, 0.11), 14: (-0.035, 0.05, 0.09), 15: (0.035, 0.05, 0.09), 16: (-0.08, 0.03, 0.0),
         17: (0.08, 0.03, 0.0)}  # nose, reye, leye, rear, lear: offsets from the head joint in the head's frame


def rest_joints(betas: np.ndarray) -> np.ndarray:
    """The rest joints of the fixture's body for ``betas`` (the first one scales it, the second widens it)."""
    j = REST_JOINTS * (1.0 + 0.04 * betas[0])
    j[:, 0] *= 1.0 + 0.03 * betas[1]
    return j


def forward_kinematics(rest: np.ndarray, pose: np.ndarray, trans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SMPL's joint positions (24, 3) and global rotations (24, 3, 3) for ``pose`` (72,) about ``rest``."""
    local = rodrigues(np.asarray(pose, np.float64).reshape(N_RAW_JOINTS, 3))
    rot = np.zeros((N_RAW_JOINTS, 3, 3))
    pos = np.zeros((N_RAW_JOINTS, 3))
    for k, parent in enumerate(SMPL_PARENTS):
        if parent < 0:
            rot[k], pos[k] = local[k], rest[k]
        else:
            rot[k] = rot[parent] @ local[k]
            pos[k] = pos[parent] + rot[parent] @ (rest[k] - rest[parent])
    return pos + trans, rot


def _pose(t: int, phase: float, heading: float) -> np.ndarray:
    """Axis-angle pose (72,) of a slow walk: legs and arms swinging about the body's left axis, knees bending."""
    pose = np.zeros((N_RAW_JOINTS, 3))
    swing = 0.35 * np.sin(0.5 * t + phase)
    pose[0] = (0.0, heading, 0.0)  # about the world's up (y) axis
    pose[_IX["lhip"]] = (swing, 0, 0)
    pose[_IX["rhip"]] = (-swing, 0, 0)
    pose[_IX["lkne"]] = (0.3 + 0.2 * np.cos(0.5 * t + phase), 0, 0)
    pose[_IX["rkne"]] = (0.3 - 0.2 * np.cos(0.5 * t + phase), 0, 0)
    pose[_IX["lsho"]] = (0.0, 0.0, -1.1)  # arms down from the T pose
    pose[_IX["rsho"]] = (0.0, 0.0, 1.1)
    pose[_IX["lelb"]] = (-0.8 * swing, -0.3, 0)
    pose[_IX["relb"]] = (0.8 * swing, 0.3, 0)
    pose[_IX["spin"]] = (0.05 * np.sin(0.3 * t), 0.1 * np.sin(0.2 * t + phase), 0)
    pose[_IX["neck"]] = (0.1, 0.1 * np.cos(0.3 * t), 0)
    return pose.reshape(-1)


# ------------------------------------------------------------------------------------------- cameras
def look_at_extrinsic(center: np.ndarray, target: np.ndarray, up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """4x4 world -> OpenCV camera (x right, y down, z forward) of a camera at ``center`` looking at ``target``."""
    z = np.asarray(target, np.float64) - center
    z /= np.linalg.norm(z)
    x = np.cross(-np.asarray(up, np.float64), z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    rot = np.stack([x, y, z])
    ext = np.eye(4)
    ext[:3, :3], ext[:3, 3] = rot, -rot @ center
    return ext


def project(intrinsics: np.ndarray, extrinsic: np.ndarray, points: np.ndarray) -> np.ndarray:
    cam = points @ extrinsic[:3, :3].T + extrinsic[:3, 3]
    return cam[:, :2] / cam[:, 2:3] @ intrinsics[:2, :2].T + intrinsics[:2, 2]


# ------------------------------------------------------------------------------------------- the fixture
@dataclass(frozen=True)
class FixtureSequence:
    folder: str  # train / validation / test
    name: str
    n_people: int
    size: tuple[int, int]  # (width, height)


SEQUENCES = (
    FixtureSequence("train", "courtyard_arguing_00", 2, (1920, 1080)),
    FixtureSequence("validation", "courtyard_drinking_00", 1, (1080, 1920)),
    FixtureSequence("test", "downtown_walking_00", 2, (1080, 1920)),
)


def _openpose_points(rng, joints: np.ndarray, rot: np.ndarray, intrinsics, extrinsic, noise_px: float):
    """(3, 18) OpenPose-18 detections near the body: x, y, confidence; a few joints undetected (all zero)."""
    pts3d = np.zeros((18, 3))
    for k, name in _OPENPOSE_FROM_SMPL.items():
        pts3d[k] = joints[_IX[name]]
    head = _IX["head"]
    for k, offset in _FACE.items():
        pts3d[k] = joints[head] + rot[head] @ offset
    xy = project(intrinsics, extrinsic, pts3d) + rng.normal(0, noise_px, (18, 2))
    conf = rng.uniform(0.35, 0.95, 18)
    lost = rng.random(18) < 0.1
    xy[lost], conf[lost] = 0.0, 0.0
    return np.concatenate([xy.T, conf[None]], axis=0)


def _draw(size, people) -> np.ndarray:
    """A frame: grey stick figures with white marks at the projected joints of each (2D joints) in ``people``."""
    w, h = size
    img = np.full((h, w, 3), 40, np.uint8)
    for pts in people:
        fixed = np.round(pts * 16).astype(np.int64)
        for child, parent in enumerate(SMPL_PARENTS):
            if parent >= 0:
                cv2.line(img, tuple(fixed[parent]), tuple(fixed[child]), (110, 110, 110), 12, cv2.LINE_AA, shift=4)
    for pts in people:
        for pt in np.round(pts * 16).astype(np.int64):
            cv2.circle(img, tuple(pt), int(MARK_RADIUS * 16), (255, 255, 255), -1, cv2.LINE_AA, shift=4)
    return img


def make_fixture(root, seed: int = 0, n_frames: int = 10, sequences=SEQUENCES, noise_px: float = 2.0) -> Path:
    """Write a miniature 3DPW raw tree in the release's layout.

    One sequence file per folder (``sequences``: train with two people in landscape frames, validation with one
    and test with two in portrait frames), each a Python 2 protocol-2 pickle with the release's keys, dtypes and
    shapes, and ``n_frames`` full-size JPEG frames in which the people are grey stick figures with white marks at
    the projected 24 SMPL joints (drawn where ``campose_valid`` is 1). The camera moves a little every frame.
    ``poses2d`` are OpenPose-18 points near the body with ``noise_px`` of noise, some joints undetected.
    Left-out frames: person 0 of the first sequence has ``campose_valid`` 0 in frames 5 and 6, person 1 of the
    last in frame 2; person 0 of the second has no detection (``poses2d`` all zero) in frame 3. The marker file
    ``.posebank-fixture`` records, per sequence, these frames and each person's rest root joint (JSON).
    """
    from posebank.core.jpeg import encode_jpeg

    if n_frames < 8:
        raise ValueError("the fixture needs at least 8 frames (its left-out frames are 2, 3, 5 and 6)")
    root = Path(root)
    rng = np.random.default_rng(seed)
    truth = {}
    for i_seq, spec in enumerate(sequences):
        w, h = spec.size
        f = rng.uniform(1940, 1980)
        intrinsics = np.array([[f, 0, w / 2 + rng.uniform(-4, 4)], [0, f, h / 2 + rng.uniform(-4, 4)], [0, 0, 1]])
        distance = 4.5 if spec.n_people == 1 or w > h else 5.5
        spacing = 1.6 if w > h else 1.05
        people = []
        for person in range(spec.n_people):
            betas = np.zeros(300 if person == 0 else 10)  # the release has both (entries 10: zero)
            betas[:10] = rng.normal(0, 0.8, 10)
            rest = rest_joints(betas)
            x0 = (person - (spec.n_people - 1) / 2) * spacing + rng.uniform(-0.05, 0.05)
            start = np.array([x0, -rest[_IX["lank"], 1] + 0.08, rng.uniform(-0.2, 0.2)])
            heading, phase = rng.uniform(-0.8, 0.8), rng.uniform(0, 2 * np.pi)
            poses = np.stack([_pose(t, phase, heading + 0.02 * t) for t in range(n_frames)])
            trans = start + np.outer(np.arange(n_frames), [0.015, 0.0, 0.01])
            fk = [forward_kinematics(rest, poses[t], trans[t]) for t in range(n_frames)]
            people.append({"betas": betas, "rest": rest, "poses": poses, "trans": trans,
                           "joints": np.stack([j for j, _ in fk]), "rots": np.stack([r for _, r in fk]),
                           "gender": "m" if rng.random() < 0.5 else "f"})
        extrinsics = []
        for t in range(n_frames):
            mid = np.mean([pp["joints"][t, 0] for pp in people], axis=0)
            center = mid + np.array([0.2 * np.sin(0.2 * t), 0.45 + 0.02 * np.cos(0.3 * t), distance + 0.03 * t])
            extrinsics.append(look_at_extrinsic(center, mid + [0, 0.05, 0]))
        extrinsics = np.stack(extrinsics)
        valid = np.ones((spec.n_people, n_frames), bool)
        if i_seq == 0:
            valid[0, [5, 6]] = False
        if i_seq == len(sequences) - 1 and spec.n_people > 1:
            valid[1, 2] = False
        poses2d = np.stack([np.stack([_openpose_points(rng, pp["joints"][t], pp["rots"][t], intrinsics,
                                                       extrinsics[t], noise_px) for t in range(n_frames)])
                            for pp in people])
        undetected = [3] if i_seq == 1 else []
        poses2d[0, undetected] = 0.0
        poses2d[~valid] = 0.0  # the release has no detection where the camera pose is not aligned
        data = {
            "sequence": spec.name,
            "betas": [pp["betas"] for pp in people],
            "poses": [pp["poses"] for pp in people],
            "trans": [pp["trans"] for pp in people],
            "poses_60Hz": [np.repeat(pp["poses"], 2, axis=0) for pp in people],
            "trans_60Hz": [np.repeat(pp["trans"], 2, axis=0) for pp in people],
            "betas_clothed": [pp["betas"][:10] + rng.normal(0, 0.05, 10) for pp in people],
            "v_template_clothed": [rng.normal(0, 0.3, (N_TEMPLATE_VERTICES, 3)) for _ in people],
            "genders": [pp["gender"] for pp in people],
            "texture_maps": [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in people],
            "poses2d": list(poses2d),
            "jointPositions": [pp["joints"].reshape(n_frames, 72) for pp in people],
            "img_frame_ids": np.arange(0, 2 * n_frames, 2, dtype=np.int64),
            "cam_poses": extrinsics,
            "campose_valid": list(valid.astype(np.uint8)),
            "cam_intrinsics": intrinsics,
        }
        folder = root / SEQUENCE_DIR / spec.folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{spec.name}.pkl").write_bytes(py2_dumps(data))
        image_folder = root / IMAGE_DIR / spec.name
        image_folder.mkdir(parents=True, exist_ok=True)
        for t in range(n_frames):
            drawn = [project(intrinsics, extrinsics[t], pp["joints"][t]) for p, pp in enumerate(people) if valid[p, t]]
            (image_folder / image_name(t)).write_bytes(encode_jpeg(_draw(spec.size, drawn), 95))
        truth[spec.name] = {
            "folder": spec.folder, "rest_root": [pp["rest"][0].tolist() for pp in people],
            "campose_invalid": [np.flatnonzero(~v).tolist() for v in valid], "undetected": undetected}
    marker = {"dataset": "tdpw", "seed": seed, "n_frames": n_frames, "sequences": truth}
    (root / FIXTURE_MARKER).write_text(json.dumps(marker, indent=1) + "\n")
    return root


def fixture_truth(root) -> dict:
    """What :func:`make_fixture` recorded about the tree it wrote (the marker file's JSON)."""
    return json.loads((Path(root) / FIXTURE_MARKER).read_text())
