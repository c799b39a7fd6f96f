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
the projected joints. People not marked valid in a frame are reported as dropped (one entry per person and
sequence).
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
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
from posebank.datasets.matlab import load_mat
from posebank.datasets.sampling import record_drop

log = logging.getLogger(__name__)

NAME = "mupots"
INFO = DatasetInfo(
    name=NAME,
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
# a frame shows several people (subject "TSn/personK"): cut by sequence (TS1..TS20), then in parts
SHARD_KEY = ("sequence",)
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


def _load_cells(path: Path, variable: str, what: str):
    cells = load_mat(path, [variable], what=what)[variable]
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
    cells = _load_cells(path, "annotations", "annotation file")
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
    cells = _load_cells(path, "occlusion_labels", "occlusion file")
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


def check_params(params: dict | None) -> dict:
    """``params`` over DEFAULT_PARAMS, checked; ParamsError names the key."""
    p = check_dataset_params(NAME, params, DEFAULT_PARAMS)
    seqs = p["sequences"]
    if not seqs:
        raise ParamsError(f"datasets.{NAME}.sequences", "must be a non-empty list of numbers 1..20")
    bad = [s for s in seqs if isinstance(s, bool) or not isinstance(s, int) or s not in SEQUENCES]
    if bad:
        raise ParamsError(f"datasets.{NAME}.sequences",
                          f"unknown sequences {bad}; MuPoTS-3D has TS1..TS20 (give the numbers)")
    if len(set(seqs)) != len(seqs):
        raise ParamsError(f"datasets.{NAME}.sequences", f"sequences listed twice: {seqs}")
    if p["split"] not in SPLITS:
        raise ParamsError(f"datasets.{NAME}.split", f"must be one of {', '.join(SPLITS)}, got {p['split']!r}")
    if p["frame_step"] < 1:
        raise ParamsError(f"datasets.{NAME}.frame_step", f"must be a positive integer, got {p['frame_step']}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    """The one split the params name (``split``, ``val`` by default)."""
    return (check_params(params)["split"],)


def check_layout(root, params: dict | None = None) -> dict[int, Path]:
    """Verify the raw tree: per selected sequence ``annot.mat`` and a first frame of the documented size.
    Returns ``{sequence: folder}``. The frames each selected person needs are checked by :func:`instances`."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
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
        raise RawLayoutError(NAME, root, missing)
    for seq, folder in folders.items():
        first = folder / image_name(0)
        size = jpeg_size(first)
        if size != image_size(seq):
            raise RawFileError(first, f"frame is {size[0]}x{size[1]}, but TS{seq} frames are "
                                      f"{image_size(seq)[0]}x{image_size(seq)[1]} (resized images do not fit "
                                      "the 2D annotations)")
    return folders


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every valid person in every selected frame, ordered by sequence, frame and person; the people not marked
    valid (``isValidFrame`` 0) are appended to ``dropped``, one entry per sequence and person."""
    p = check_params(params)
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
        frames = range(0, annotations.n_frames, p["frame_step"])
        where = annot_path.relative_to(root).as_posix()
        for person in range(annotations.n_people):
            record_drop(dropped, where, [f for f in frames if not annotations.valid[f, person]],
                        f"person {person}: isValidFrame is 0 (not annotated in the frame)")
        for frame in frames:
            people = np.flatnonzero(annotations.valid[frame])
            if not len(people):
                continue  # nobody annotated: recorded above, person by person
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
        raise RawLayoutError(NAME, root, missing)
    return out


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.mupots.fixture.make_fixture`, which
    takes the ``options``)."""
    from posebank.datasets.mupots.fixture import make_fixture as write

    return write(root, seed, **options)


# ------------------------------------------------------------------------------------------- downloads
# No direct download with a published checksum: the test set is handed out from its homepage under a licence.
RAW_INSTRUCTIONS = """
    MuPoTS-3D: download MultiPersonTestSet.zip from the homepage (after accepting its licence) and unzip it into
    the raw folder, so that it holds, for every sequence params.yaml selects (TS1 .. TS20 by default):
        MultiPersonTestSet/TS<n>/annot.mat
        MultiPersonTestSet/TS<n>/occlusion.mat                per-joint occlusion (visibility)
        MultiPersonTestSet/TS<n>/img_000000.jpg ...           the frames, at their released size
    (a raw folder holding the TS<n> folders directly is read too).
"""
