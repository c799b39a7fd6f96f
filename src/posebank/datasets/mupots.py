"""MuPoTS-3D (Mehta et al., 3DV 2018), the multi-person test set of MPI-INF-3DHP's authors.

Raw layout, as ``MultiPersonTestSet.zip`` unpacks (``root`` is the folder holding ``MultiPersonTestSet``; a root
that holds the ``TS<n>`` folders directly, as posepile arranges them, is accepted too)::

    root/MultiPersonTestSet/TS1 .. TS20/annot.mat        MATLAB v5, variable ``annotations``
    root/MultiPersonTestSet/TS<n>/occlusion.mat          MATLAB v5, variable ``occlusion_labels`` (-> visibility)
    root/MultiPersonTestSet/TS<n>/img_000000.jpg ...     one JPEG per frame, numbered from 0

``annotations`` is a cell array of (frames x people); each cell holds a 1x1 struct with ``annot2`` (2 x 17 pixels),
``annot3`` (3 x 17, camera frame, mm), ``univ_annot3`` (3 x 17, the same pose rescaled to a universal skeleton)
and ``isValidFrame`` (1 x 1; people without a valid annotation in a frame are not evaluated and not converted).
``occlusion_labels`` is a cell array of the same shape holding 1 x 17 per-joint occlusion flags.
The 17 joints follow MPI-INF-3DHP's test order (htop neck rsho relb rwri lsho lelb lwri rhip rkne rank lhip lkne
lank pelv spin head); like posepile, posebank stores them with the pelvis last.

TS1-TS5 are indoor sequences of 2048 x 2048 frames, TS6-TS20 outdoor ones of 1920 x 1080 frames.

Cameras: the release contains no calibration. As posepile does, the intrinsics of each sequence are estimated from
its own annotations: ``x = fx X/Z + cx`` and ``y = fy Y/Z + cy`` are linear in (fx, cx) and (fy, cy), so a linear
least-squares fit over every joint of every valid person gives them (:func:`estimate_intrinsics`). The 3D
annotations are already in the camera frame, so the world frame is the camera frame: R = identity, t = 0, and up is
-y. No lens distortion is modelled.

Frame selection follows posepile: MuPoTS-3D serves as validation data ("val") in posepile's merged training sets
(small5, medium3, huge8 map its validation part onto theirs); every frame is used. posepile keeps only the people
matched to a YOLO detection and uses the detection's box; posebank keeps every valid person and places the box on
the projected joints.
"""

from __future__ import annotations

import json
import logging
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import scipy.io

from posebank.camera import Camera
from posebank.datasets.base import (
    DatasetInfo,
    RawFileError,
    RawInstance,
    RawLayoutError,
    check_finite_camera,
)
from posebank.skeleton import JointInfo

log = logging.getLogger(__name__)

INFO = DatasetInfo(
    name="mupots",
    full_name="MuPoTS-3D",
    homepage="https://gvv.mpi-inf.mpg.de/projects/SingleShotMultiPerson/",
    licence=("Research use under the authors' terms on the homepage (unverified); download it there "
             "(MultiPersonTestSet.zip), no redistribution."),
    citation=("D. Mehta, O. Sotnychenko, F. Mueller, W. Xu, S. Sridhar, G. Pons-Moll, C. Theobalt. Single-Shot "
              "Multi-Person 3D Pose Estimation From Monocular RGB. 3DV 2018."),
)

SEQUENCES = tuple(range(1, 21))
INDOOR_SEQUENCES = tuple(range(1, 6))
SUBFOLDER = "MultiPersonTestSet"
N_RAW_JOINTS = 17
RAW_JOINT_NAMES = "htop,neck,rsho,relb,rwri,lsho,lelb,lwri,rhip,rkne,rank,lhip,lkne,lank,pelv,spin,head"
# posepile's order: the release's 17 joints with the pelvis moved last
SELECTED_JOINTS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 14)
JOINT_INFO = JointInfo(
    "htop,neck,rsho,relb,rwri,lsho,lelb,lwri,rhip,rkne,rank,lhip,lkne,lank,spin,head,pelv",
    "htop-head-neck-spin-pelv-rhip-rkne-rank,neck-rsho-relb-rwri")
WORLD_UP = (0.0, -1.0, 0.0)
SPLITS = ("train", "val", "test")

DEFAULT_PARAMS = {
    "sequences": list(SEQUENCES),
    "split": "val",
    "frame_step": 1,
    "refine_intrinsics": False,
}


def image_size(sequence: int) -> tuple[int, int]:
    """(width, height) of the frames of sequence ``TS<sequence>``."""
    return (2048, 2048) if sequence in INDOOR_SEQUENCES else (1920, 1080)


def image_name(frame: int) -> str:
    return f"img_{frame:06d}.jpg"


# ------------------------------------------------------------------------------------------- readers
@dataclass
class Annotations:
    """The contents of one ``annot.mat``, in the release's joint order (pelvis at index 14)."""

    annot2: np.ndarray  # (F, P, 17, 2) pixels
    annot3: np.ndarray  # (F, P, 17, 3) camera frame, mm
    univ_annot3: np.ndarray  # (F, P, 17, 3) mm, NaN when the file has no univ_annot3
    valid: np.ndarray  # (F, P) bool, isValidFrame

    @property
    def n_frames(self) -> int:
        return self.valid.shape[0]

    @property
    def n_people(self) -> int:
        return self.valid.shape[1]


def _load_mat(path: Path, variable: str):
    if not path.is_file():
        raise RawFileError(path, "file not found")
    try:
        contents = scipy.io.loadmat(str(path), squeeze_me=False, struct_as_record=True)
    except NotImplementedError as e:  # v7.3 files are HDF5
        raise RawFileError(path, f"MATLAB v7.3 (HDF5) file, expected a MATLAB v5 file ({e})") from e
    except Exception as e:  # scipy raises assorted errors on truncated or foreign files
        raise RawFileError(path, f"unreadable MATLAB file, truncated or corrupt ({type(e).__name__}: {e})") from e
    if variable not in contents:
        found = sorted(k for k in contents if not k.startswith("__"))
        raise RawFileError(path, f"no '{variable}' variable (has {found})")
    cells = contents[variable]
    if not (isinstance(cells, np.ndarray) and cells.dtype == object and cells.ndim == 2 and cells.size):
        shape = getattr(cells, "shape", None)
        raise RawFileError(path, f"'{variable}' is not a non-empty (frames x people) cell array (shape {shape})")
    return cells


def _field(path: Path, cell, field: str, where: str, required: bool = True):
    names = getattr(getattr(cell, "dtype", None), "names", None)
    if not names or getattr(cell, "size", 0) != 1:
        raise RawFileError(path, f"annotations{where} is not a 1x1 struct")
    if field not in names:
        if not required:
            return None
        raise RawFileError(path, f"annotations{where} has no field '{field}' (has {list(names)})")
    value = cell.reshape(-1)[0][field]
    if isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        value = value.reshape(-1)[0]
    try:
        return np.asarray(value, np.float64)
    except (TypeError, ValueError) as e:
        raise RawFileError(path, f"annotations{where}.{field} is not numeric ({e})") from e


def read_annotations(path) -> Annotations:
    """Read one ``TS<n>/annot.mat``. Valid entries must have the documented shapes and finite values in front of
    the camera; the contents of invalid entries are not checked (and not used)."""
    path = Path(path)
    cells = _load_mat(path, "annotations")
    n_frames, n_people = cells.shape
    annot2 = np.full((n_frames, n_people, N_RAW_JOINTS, 2), np.nan)
    annot3 = np.full((n_frames, n_people, N_RAW_JOINTS, 3), np.nan)
    univ = np.full((n_frames, n_people, N_RAW_JOINTS, 3), np.nan)
    valid = np.zeros((n_frames, n_people), bool)
    for i in range(n_frames):
        for j in range(n_people):
            cell, where = cells[i, j], f"{{{i + 1},{j + 1}}}"  # MATLAB's 1-based cell indices
            flag = _field(path, cell, "isValidFrame", where)
            if flag.size != 1:
                raise RawFileError(path, f"annotations{where}.isValidFrame has shape {flag.shape}, expected (1, 1)")
            valid[i, j] = bool(flag.reshape(-1)[0])
            if not valid[i, j]:
                continue
            for name, dim, out, required in (("annot2", 2, annot2, True), ("annot3", 3, annot3, True),
                                             ("univ_annot3", 3, univ, False)):
                value = _field(path, cell, name, where, required)
                if value is None:
                    continue
                if value.shape != (dim, N_RAW_JOINTS):
                    raise RawFileError(
                        path, f"annotations{where}.{name} has shape {value.shape}, expected ({dim}, {N_RAW_JOINTS})")
                if not np.all(np.isfinite(value)):
                    raise RawFileError(path, f"annotations{where}.{name} contains non-finite values")
                out[i, j] = value.T
            if np.any(annot3[i, j, :, 2] <= 0):
                raise RawFileError(path, f"annotations{where}.annot3 has joints at or behind the camera (z <= 0)")
    return Annotations(annot2, annot3, univ, valid)


def read_occlusions(path) -> np.ndarray:
    """Per-joint occlusion flags of one ``TS<n>/occlusion.mat`` as (F, P, 17) bool, release joint order."""
    path = Path(path)
    cells = _load_mat(path, "occlusion_labels")
    out = np.zeros((*cells.shape, N_RAW_JOINTS), bool)
    for (i, j), value in np.ndenumerate(cells):
        value = np.asarray(value)
        if value.size != N_RAW_JOINTS:
            raise RawFileError(path, f"occlusion_labels{{{i + 1},{j + 1}}} has {value.size} values, "
                                     f"expected {N_RAW_JOINTS}")
        out[i, j] = value.reshape(-1).astype(bool)
    return out


# ------------------------------------------------------------------------------------------- intrinsics
def _fit_axis(ratio: np.ndarray, pixel: np.ndarray) -> tuple[float, float]:
    """Least-squares (f, c) of ``pixel = f ratio + c``."""
    a = np.stack([ratio, np.ones_like(ratio)], axis=1)
    (f, c), *_ = np.linalg.lstsq(a, pixel, rcond=None)
    return float(f), float(c)


def estimate_intrinsics(points3d_cam, points2d, refine: bool = False, min_outlier_px: float = 3.0,
                        max_iterations: int = 10) -> np.ndarray:
    """Intrinsic matrix of a distortion-free camera from 2D-3D correspondences in its own frame.

    Solves ``x = fx X/Z + cx`` and ``y = fy Y/Z + cy`` by linear least squares (posepile's estimate; it minimises
    the reprojection error in pixels). With ``refine`` the fit is repeated on the correspondences whose
    reprojection error is below ``max(min_outlier_px, 5 x robust sigma)``, until no point changes side, so that a
    few mislabelled joints cannot pull the estimate.
    """
    p3 = np.asarray(points3d_cam, np.float64).reshape(-1, 3)
    p2 = np.asarray(points2d, np.float64).reshape(-1, 2)
    if len(p3) != len(p2):
        raise ValueError(f"{len(p3)} 3D points but {len(p2)} 2D points")
    ok = np.all(np.isfinite(p3), axis=1) & np.all(np.isfinite(p2), axis=1) & (p3[:, 2] > 0)
    ratio = p3[ok, :2] / p3[ok, 2:3]
    p2 = p2[ok]
    if len(p2) < 3 or np.ptp(ratio[:, 0]) < 1e-6 or np.ptp(ratio[:, 1]) < 1e-6:
        raise ValueError(f"too few or degenerate correspondences ({len(p2)} usable points)")
    inliers = np.ones(len(p2), bool)
    for _ in range(max_iterations if refine else 1):
        fx, cx = _fit_axis(ratio[inliers, 0], p2[inliers, 0])
        fy, cy = _fit_axis(ratio[inliers, 1], p2[inliers, 1])
        if not refine:
            break
        residual = np.linalg.norm(ratio * [fx, fy] + [cx, cy] - p2, axis=1)
        sigma = 1.4826 * np.median(residual[inliers]) / np.sqrt(2)  # per-axis sigma from the 2D residuals
        new_inliers = residual < max(min_outlier_px, 5 * sigma)
        if new_inliers.sum() < 3 or np.array_equal(new_inliers, inliers):
            break
        inliers = new_inliers
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def reprojection_errors(intrinsic_matrix, points3d_cam, points2d) -> np.ndarray:
    p3 = np.asarray(points3d_cam, np.float64).reshape(-1, 3)
    k = np.asarray(intrinsic_matrix, np.float64)
    projected = p3[:, :2] / p3[:, 2:3] @ k[:2, :2].T + k[:2, 2]
    return np.linalg.norm(projected - np.asarray(points2d, np.float64).reshape(-1, 2), axis=1)


def sequence_camera(annotations: Annotations, where, refine: bool = False) -> Camera:
    """The camera of one sequence: intrinsics estimated from all its valid annotations, world = camera frame."""
    p3, p2 = annotations.annot3[annotations.valid], annotations.annot2[annotations.valid]
    try:
        k = estimate_intrinsics(p3, p2, refine=refine)
    except ValueError as e:
        raise RawFileError(where, f"cannot estimate the camera intrinsics from the annotations: {e}") from e
    camera = Camera(intrinsic_matrix=k, R=np.eye(3), t=np.zeros(3), world_up=WORLD_UP)
    check_finite_camera(camera, where)
    errors = reprojection_errors(k, p3, p2)
    rms = float(np.sqrt(np.mean(errors ** 2)))
    log.info("%s: f=(%.1f, %.1f) c=(%.1f, %.1f), reprojection RMS %.2f px over %d joints", where, k[0, 0],
             k[1, 1], k[0, 2], k[1, 2], rms, errors.size)
    if rms > 5:
        log.warning("%s: the 2D and 3D annotations disagree by %.1f px RMS under the estimated intrinsics", where,
                    rms)
    return camera


def jpeg_size(path) -> tuple[int, int]:
    """(width, height) from a JPEG file's frame header, without decoding the image."""
    path = Path(path)
    with open(path, "rb") as f:
        if f.read(2) != b"\xff\xd8":
            raise RawFileError(path, "not a JPEG file")
        while True:
            byte = f.read(1)
            if not byte:
                break
            if byte != b"\xff":
                continue
            marker = f.read(1)
            while marker == b"\xff":
                marker = f.read(1)
            if not marker:
                break
            code = marker[0]
            if code in (0x01, *range(0xD0, 0xD8)):  # markers without a length field
                continue
            length_bytes = f.read(2)
            if len(length_bytes) < 2:
                break
            length = struct.unpack(">H", length_bytes)[0]
            if code in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                header = f.read(5)
                if len(header) < 5:
                    break
                height, width = struct.unpack(">HH", header[1:5])
                return width, height
            f.seek(length - 2, 1)
    raise RawFileError(path, "JPEG file without a frame header (truncated or corrupt)")


# ------------------------------------------------------------------------------------------- layout
def find_sequence_root(root) -> Path:
    """The folder holding ``TS1`` .. ``TS20``: ``root/MultiPersonTestSet`` or ``root`` itself."""
    root = Path(root)
    if (root / SUBFOLDER).is_dir():
        return root / SUBFOLDER
    if any((root / f"TS{n}").is_dir() for n in SEQUENCES):
        return root
    return root / SUBFOLDER


def check_params(p: dict) -> None:
    seqs = p["sequences"]
    if not isinstance(seqs, (list, tuple)) or not seqs:
        raise ValueError(f"mupots: 'sequences' must be a non-empty list of numbers 1..20, got {seqs!r}")
    bad = [s for s in seqs if isinstance(s, bool) or not isinstance(s, int) or s not in SEQUENCES]
    if bad:
        raise ValueError(f"mupots: unknown sequences {bad}; MuPoTS-3D has TS1..TS20 (give the numbers)")
    if len(set(seqs)) != len(seqs):
        raise ValueError(f"mupots: sequences listed twice: {seqs}")
    if p["split"] not in SPLITS:
        raise ValueError(f"mupots: split must be one of {SPLITS}, got {p['split']!r}")
    step = p["frame_step"]
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ValueError(f"mupots: frame_step must be a positive integer, got {step!r}")


def check_layout(root, params: dict | None = None) -> dict[int, Path]:
    """Verify the raw tree: per selected sequence ``annot.mat`` and a first frame of the documented size.
    Returns ``{sequence: folder}``. The frames each selected person needs are checked by :func:`instances`."""
    p = {**DEFAULT_PARAMS, **(params or {})}
    check_params(p)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError("mupots", root, "the folder itself")
    base = find_sequence_root(root)
    prefix = base.relative_to(root).as_posix()
    missing, folders = [], {}
    for seq in sorted(p["sequences"]):
        folder = base / f"TS{seq}"
        rel = "/".join(x for x in (prefix, f"TS{seq}") if x not in ("", "."))
        for name in ("annot.mat", image_name(0)):
            if not (folder / name).is_file():
                missing.append(f"{rel}/{name}")
        folders[seq] = folder
    if missing:
        raise RawLayoutError("mupots", root, missing)
    for seq, folder in folders.items():
        first = folder / image_name(0)
        size = jpeg_size(first)
        if size != image_size(seq):
            raise RawFileError(first, f"frame is {size[0]}x{size[1]}, but TS{seq} frames are "
                                      f"{image_size(seq)[0]}x{image_size(seq)[1]} (resized images do not fit "
                                      "the 2D annotations)")
    return folders


def instances(root, params: dict | None = None) -> list[RawInstance]:
    """Every valid person in every selected frame, ordered by sequence, frame and person."""
    p = {**DEFAULT_PARAMS, **(params or {})}
    root = Path(root)
    folders = check_layout(root, p)
    out, missing = [], []
    for seq, folder in folders.items():
        annot_path = folder / "annot.mat"
        annotations = read_annotations(annot_path)
        if not annotations.valid.any():
            raise RawFileError(annot_path, "no person is marked valid (isValidFrame) in any frame")
        camera = sequence_camera(annotations, annot_path, refine=p["refine_intrinsics"])
        poses = annotations.annot3[:, :, list(SELECTED_JOINTS)]
        # the release's per-joint occlusion labels become the cache's visibility (1 visible, 0 occluded)
        occlusion_path = folder / "occlusion.mat"
        visibility = None
        if occlusion_path.is_file():
            occluded = read_occlusions(occlusion_path)
            if occluded.shape[:2] != annotations.valid.shape:
                raise RawFileError(occlusion_path, f"occlusion_labels is {occluded.shape[:2]} cells, annot.mat "
                                                   f"has {annotations.valid.shape}")
            visibility = np.where(occluded[:, :, list(SELECTED_JOINTS)], 0, 1).astype(np.uint8)
        for frame in range(0, annotations.n_frames, p["frame_step"]):
            people = np.flatnonzero(annotations.valid[frame])
            if not len(people):
                continue
            source = (folder / image_name(frame)).relative_to(root).as_posix()
            if not (root / source).is_file():
                missing.append(source)
                continue
            for person in people:
                out.append(RawInstance(
                    source=source, frame_index=frame, world_coords=poses[frame, person].astype(np.float32),
                    camera=camera, split=p["split"], subject=f"TS{seq}/person{person}", sequence=f"TS{seq}",
                    activity="indoor" if seq in INDOOR_SEQUENCES else "outdoor", camera_name=f"TS{seq}",
                    visibility=None if visibility is None else visibility[frame, person]))
    if missing:
        raise RawLayoutError("mupots", root, missing)
    return out


# ------------------------------------------------------------------------------------------- fixture
MARK_RADIUS = 5.0
FIXTURE_MARKER = ".posebank-fixture"

# a standing person in the release's joint order: (right, forward, up) mm in the person's own frame
_TEMPLATE = np.array([
    (0, 10, 1760), (0, 0, 1480), (180, 0, 1440), (320, 0, 1170), (350, 50, 930), (-180, 0, 1440),
    (-320, 0, 1170), (-350, 50, 930), (130, 0, 940), (140, 20, 520), (150, -10, 90), (-130, 0, 940),
    (-140, 20, 520), (-150, -10, 90), (0, 0, 950), (0, 0, 1210), (0, 30, 1620)], np.float64)
_ARMS = {2: (3, 4), 5: (6, 7)}  # shoulder -> elbow, wrist
_LEGS = {8: (9, 10), 11: (12, 13)}  # hip -> knee, ankle


def _rotate_about_lateral(points, pivot, angle):
    """Swing limb points forward/backward about the lateral axis through ``pivot`` (person frame)."""
    c, s = np.cos(angle), np.sin(angle)
    rel = points - pivot
    fwd, up = rel[:, 1] * c - rel[:, 2] * s, rel[:, 1] * s + rel[:, 2] * c
    return pivot + np.stack([rel[:, 0], fwd, up], axis=1)


def _person_track(rng: np.random.Generator, n_frames: int, x0: float, ground_y: float) -> np.ndarray:
    """(n_frames, 17, 3) camera-frame poses of a person walking slowly and turning, arms and legs swinging."""
    scale = rng.uniform(0.92, 1.08)
    heading0, turn = rng.uniform(0, 2 * np.pi), rng.uniform(-0.08, 0.08)
    start = np.array([x0, rng.uniform(4300, 6200)])
    direction = rng.uniform(0, 2 * np.pi)
    phase = rng.uniform(0, 2 * np.pi)
    up = np.asarray(WORLD_UP)
    out = np.zeros((n_frames, N_RAW_JOINTS, 3))
    for i in range(n_frames):
        local = _TEMPLATE * scale
        swing = 0.45 * np.sin(0.6 * i + phase)
        for sign, limbs in ((1, _ARMS), (-1, _LEGS)):
            for root_joint, chain in limbs.items():
                side = 1 if local[root_joint, 0] > 0 else -1
                local[list(chain)] = _rotate_about_lateral(local[list(chain)], local[root_joint],
                                                           sign * side * swing)
        heading = heading0 + turn * i
        forward = np.array([np.cos(heading), 0.0, np.sin(heading)])
        right = np.cross(forward, up)
        centre = start + 25.0 * i * np.array([np.cos(direction), np.sin(direction)])
        position = np.array([centre[0], ground_y, centre[1]])
        out[i] = position + local[:, :1] * right + local[:, 1:2] * forward + local[:, 2:3] * up
    return out


def _fixture_intrinsics(rng: np.random.Generator, seq: int) -> np.ndarray:
    w, h = image_size(seq)
    f = rng.uniform(1450, 1550) if seq in INDOOR_SEQUENCES else rng.uniform(1350, 1450)
    fx, fy = f, f * rng.uniform(0.997, 1.003)
    cx, cy = (w - 1) / 2 + rng.uniform(-15, 15), (h - 1) / 2 + rng.uniform(-10, 10)
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])


def _project(k: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points[..., :2] / points[..., 2:3] @ k[:2, :2].T + k[:2, 2]


def _draw_frame(size, people2d, edges) -> np.ndarray:
    w, h = size
    img = np.full((h, w, 3), 40, np.uint8)
    for pts in people2d:
        for a, b in edges:
            pa, pb = np.round(pts[[a, b]] * 16).astype(int)
            cv2.line(img, tuple(pa), tuple(pb), (110, 110, 110), 10, cv2.LINE_AA, shift=4)
    for pts in people2d:
        for pt in pts:
            cv2.circle(img, tuple(np.round(pt * 16).astype(int)), int(MARK_RADIUS * 16), (255, 255, 255), -1,
                       cv2.LINE_AA, shift=4)
    return img


def make_fixture(root, seed: int = 0, sequences=SEQUENCES, n_frames: int = 8,
                 annot2_noise_px: float = 0.2) -> Path:
    """Write a miniature MuPoTS-3D raw tree in the release's layout.

    Real MATLAB v5 ``annot.mat`` and ``occlusion.mat`` files (cell arrays of 1x1 structs / 1x17 flags, as in the
    release) for every sequence (all 20 by default, so that the default parameters convert it) and full-size
    JPEG frames in which 2-3 people appear as grey stick figures with white marks at their
    projected joints. Each sequence has its own true intrinsics, which the converter must estimate: ``annot2`` are
    the true projections plus Gaussian noise of ``annot2_noise_px`` pixels, stored to 1/100 px. One person of each
    sequence leaves the annotated area for a few frames (``isValidFrame`` 0, zeros stored, not drawn) and the last
    frame of the first sequence has no valid person. The true intrinsics are written as JSON into the
    ``.posebank-fixture`` marker file.
    """
    from posebank.imaging.jpeg import encode_jpeg

    root = Path(root)
    rng = np.random.default_rng(seed)
    raw_edges = JointInfo(RAW_JOINT_NAMES, "htop-head-neck-spin-pelv-rhip-rkne-rank,neck-rsho-relb-rwri").edges
    truth = {}
    for i_seq, seq in enumerate(sorted(sequences)):
        folder = root / SUBFOLDER / f"TS{seq}"
        folder.mkdir(parents=True, exist_ok=True)
        k = _fixture_intrinsics(rng, seq)
        truth[f"TS{seq}"] = k.tolist()
        n_people = 3 if i_seq % 2 == 0 else 2
        ground_y = rng.uniform(1150, 1400)
        xs = (np.arange(n_people) - (n_people - 1) / 2) * 1500 + rng.uniform(-150, 150, n_people)
        poses = np.stack([_person_track(rng, n_frames, x, ground_y) for x in xs], axis=1)  # (F, P, 17, 3)
        valid = np.ones((n_frames, n_people), bool)
        gap = n_frames // 2
        valid[gap:gap + 2, n_people - 1] = False
        if i_seq == 0:
            valid[-1] = False
        true2d = _project(k, poses)
        annot2 = np.round(true2d + rng.normal(0, annot2_noise_px, true2d.shape), 2)
        pelvis = poses[:, :, 14:15]
        univ = pelvis + (poses - pelvis) * rng.uniform(0.9, 1.1, (1, n_people, 1, 1))
        cells = np.empty((n_frames, n_people), object)
        occlusion = np.empty((n_frames, n_people), object)
        for f in range(n_frames):
            for j in range(n_people):
                keep = float(valid[f, j])
                cells[f, j] = {"annot2": annot2[f, j].T * keep, "annot3": poses[f, j].T * keep,
                               "univ_annot3": univ[f, j].T * keep, "isValidFrame": np.array([[valid[f, j]]])}
                nearer = [o for o in range(n_people)
                          if o != j and valid[f, o] and poses[f, o, 14, 2] < poses[f, j, 14, 2]]
                flags = np.zeros((1, N_RAW_JOINTS), bool)
                for o in nearer:
                    d = np.linalg.norm(true2d[f, j][:, None] - true2d[f, o][None], axis=-1)
                    flags[0] |= d.min(axis=1) < 40
                occlusion[f, j] = flags
        scipy.io.savemat(str(folder / "annot.mat"), {"annotations": cells}, format="5")
        scipy.io.savemat(str(folder / "occlusion.mat"), {"occlusion_labels": occlusion}, format="5")
        for f in range(n_frames):
            img = _draw_frame(image_size(seq), [true2d[f, j] for j in range(n_people) if valid[f, j]], raw_edges)
            (folder / image_name(f)).write_bytes(encode_jpeg(img, 95))
    marker = {"dataset": "mupots", "seed": seed, "true_intrinsics": truth}
    (root / FIXTURE_MARKER).write_text(json.dumps(marker, indent=1) + "\n")
    return root


def fixture_intrinsics(root) -> dict[int, np.ndarray]:
    """The true intrinsics a fixture was drawn with: ``{sequence: 3x3 matrix}``."""
    marker = json.loads((Path(root) / FIXTURE_MARKER).read_text())
    return {int(name[2:]): np.array(k) for name, k in marker["true_intrinsics"].items()}
