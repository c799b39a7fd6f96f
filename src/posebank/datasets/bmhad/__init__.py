"""Berkeley MHAD (Ofli et al., WACV 2013): 12 subjects x 11 actions x 5 repetitions, 43 optical markers captured
at 480 Hz, filmed by 12 Dragonfly2 cameras in 4 clusters (Bayer-pattern 640 x 480 PGM frames, 22 Hz) and 2 Kinects
(640 x 480 colour PPM frames, 30 Hz).

Raw layout, as the release unpacks (posepile ``ds/bmhad/main.py`` reads these paths)::

    root/Calibration/RwTw_<l01..l04,k01,k02>.txt     world -> cluster transform of each cluster and Kinect
    root/Calibration/camcfg_<l01..l04,k01,k02>.yml   each cluster's cameras (OpenCV FileStorage)
    root/Mocap/OpticalData/moc_s<ss>_a<aa>_r<rr>.c3d the 43 markers of a take
    root/Camera/Correspondences/corr_moc_img_s<ss>_a<aa>_r<rr>.txt   image frame -> mocap frame
    root/Camera/Cluster<ll>/Cam<cc>/S<ss>/A<aa>/R<rr>/img_l<ll>_c<cc>_s<ss>_a<aa>_r<rr>_<frame:05d>.pgm
    root/Kinect/Correspondences/corr_moc_kin<kk>_s<ss>_a<aa>_r<rr>.txt
    root/Kinect/Kin<kk>/S<ss>/A<aa>/R<rr>/kin_k<kk>_s<ss>_a<aa>_r<rr>_color_<frame:05d>.ppm

Formats (posepile ``load_cameras``, ``read_extrinsics``, ``load_from_c3d``; the release's MATLAB calibration notes):

* ``RwTw_<c>.txt``: ``Rw=`` and the 9 values of R (row-major), then ``Tw=`` and the 3 values of t (mm): the
  world -> cluster transform ``x_c = R x_w + t``; the cluster's frame is that of its first camera.
* ``camcfg_<c>.yml``: ``Number of cameras``, then ``Camera_<i>`` nodes with ``K`` (3 x 3), ``Dist`` (1 x 4: OpenCV
  k1 k2 p1 p2) and ``PosRel`` (1 x 6: translation in mm, then a Rodrigues rotation vector): the cluster -> camera
  transform. A camera's world -> camera transform is ``PosRel @ RwTw`` (relative after cluster), world up +y.
  Clusters 1 and 2 have 4 cameras, clusters 3 and 4 two, a Kinect one (its colour camera).
* The c3d file holds the 43 markers in millimetres (read by :mod:`posebank.datasets.c3d`; invalid points are NaN),
  in file order the names of :data:`MARKERS`; posepile maps the capture frame (z up) to the cameras' world frame
  (y up) by ``[[-1, 0, 0], [0, 0, 1], [0, 1, 0]]`` and so does posebank.
* ``corr_moc_*.txt``: one row per image frame (row ``i`` is frame ``i`` of the file names); column 2 (0-based) is
  the mocap frame shown by that image.
* The camera frames are raw Bayer mosaics; posepile demosaics them with OpenCV's ``COLOR_BAYER_GB2RGB``
  (``pgm_to_jpg.py``) and posebank's frame source with the same pattern (``COLOR_BAYER_GB2BGR``). The Kinect frames
  are colour PPM files.

Selection (posepile ``make_stage1``): every take of every cluster camera and both Kinects, except the takes the
release lacks: (4, 8, 5) everywhere and (5, 2, 5), (10, 8, 5) in clusters 3 and 4; per camera and take, a frame is
kept by the adaptive pose sampler that compares with every pose kept so far (posepile ``AdaptivePoseSampler2(100,
check_validity=True, assume_nan_unchanged=True, buffer_size=n_frames)``). The box is the projected markers' box
x 1.05 (no detector). Everything is train.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from posebank.core.camera import Camera
from posebank.core.errors import ParamsError
from posebank.core.settings import check_dataset_params
from posebank.core.skeleton import JointInfo
from posebank.datasets.base import (
    DatasetInfo,
    Dropped,
    Frame,
    FrameSource,
    RawFileError,
    RawInstance,
    RawLayoutError,
    check_finite_camera,
)
from posebank.datasets.sampling import AdaptivePoseSampler2, drop_missing_poses, record_drop

NAME = "bmhad"
INFO = DatasetInfo(
    name=NAME,
    full_name="Berkeley MHAD (Berkeley Multimodal Human Action Database)",
    homepage="https://tele-immersion.citris-uc.org/berkeley_mhad",
    licence=("Research use (unverified): released for research by the Teleimmersion Lab, UC Berkeley, after a "
             "request on the homepage."),
    citation=("F. Ofli, R. Chaudhry, G. Kurillo, R. Vidal, R. Bajcsy. Berkeley MHAD: A Comprehensive Multimodal "
              "Human Action Database. IEEE Workshop on Applications of Computer Vision (WACV), 2013."),
)

CALIBRATION_DIR = "Calibration"
MOCAP_DIR = "Mocap/OpticalData"
CAMERA_CORR_DIR = "Camera/Correspondences"
KINECT_CORR_DIR = "Kinect/Correspondences"
SUBJECTS = tuple(range(1, 13))
ACTIONS = tuple(range(1, 12))
REPETITIONS = tuple(range(1, 6))
CLUSTERS = (1, 2, 3, 4)
KINECTS = (1, 2)
SPLITS = ("train",)
WORLD_UP = (0.0, 1.0, 0.0)  # posepile load_cameras
# the capture frame (z up) -> the cameras' world frame (y up): posepile load_from_c3d
AXES = np.array([[-1, 0, 0], [0, 0, 1], [0, 1, 0]], np.float64)
# takes the release lacks (posepile make_stage1, "according to official website"): everywhere / clusters 3 and 4
MISSING_TAKES = ((4, 8, 5),)
MISSING_TAKES_CLUSTERS_3_4 = ((5, 2, 5), (10, 8, 5))

# the 43 markers in c3d file order (posepile make_dataset)
MARKERS = ("head,lhead,rhead,rback,backl,backt,lback,lside,bell,chest,rside,lsho1,lsho2,larm,lelb,lwri,lhan1,lhan2,"
           "lhan3,rsho1,rsho2,rarm,relb,rwri,rhan1,rhan2,rhan3,lhipb,lhipf,lhipl,lleg,lkne,lank,lhee,lfoo,rhipb,"
           "rhipf,rhipl,rleg,rkne,rank,rhee,rfoo").split(",")
N_MARKERS = len(MARKERS)
# posepile's edges with the comma its string lacks ('bell-chest' 'backl-rback-rhipb'); the left side is mirrored
EDGES = ("head-rhead,lsho1-rsho1-rsho2-rarm-relb-rwri-rhan3,rhan1-rwri-rhan2,"
         "lhipb-rhipb-rhipl-rhipf-rleg-rkne-rank-rhee-rfoo,bell-rside-rhipf,bell-chest,backl-rback-rhipb,backl-backt")
JOINT_INFO = JointInfo(",".join(MARKERS), EDGES)

DEFAULT_PARAMS = {
    "subjects": list(SUBJECTS),
    "actions": list(ACTIONS),
    "repetitions": list(REPETITIONS),
    "clusters": list(CLUSTERS),  # posepile: the 4 camera clusters ...
    "kinects": list(KINECTS),  # ... and the 2 Kinects' colour cameras
    "adaptive_sampling_mm": 100.0,  # per camera and take, keep a frame unless within this of a kept pose; 0 = off
    "box_expansion": 1.05,  # the projected markers' box x this (posepile; no detector)
}

_TAKE = re.compile(r"^moc_s(\d\d)_a(\d\d)_r(\d\d)\.c3d$")
MISSING_IMAGE = "image file missing"
PAST_MOCAP_END = "the correspondence names a mocap frame past the end of the c3d file"
MISSING_CORRESPONDENCE = "correspondence file missing"
MISSING_IMAGES = "image folder missing"


# ------------------------------------------------------------------------------------------- paths
def take_tag(subject: int, action: int, rep: int) -> str:
    return f"s{subject:02d}_a{action:02d}_r{rep:02d}"


def mocap_relpath(subject: int, action: int, rep: int) -> str:
    return f"{MOCAP_DIR}/moc_{take_tag(subject, action, rep)}.c3d"


def calibration_names(cluster: str) -> tuple[str, str]:
    """(``RwTw_<c>.txt``, ``camcfg_<c>.yml``) of cluster ``l01``..``l04`` or Kinect ``k01``, ``k02``."""
    return f"{CALIBRATION_DIR}/RwTw_{cluster}.txt", f"{CALIBRATION_DIR}/camcfg_{cluster}.yml"


def correspondence_relpath(view: View, subject: int, action: int, rep: int) -> str:
    tag = take_tag(subject, action, rep)
    if view.kinect:
        return f"{KINECT_CORR_DIR}/corr_moc_kin{view.cluster:02d}_{tag}.txt"
    return f"{CAMERA_CORR_DIR}/corr_moc_img_{tag}.txt"


def image_dir(view: View, subject: int, action: int, rep: int) -> str:
    sar = f"S{subject:02d}/A{action:02d}/R{rep:02d}"
    if view.kinect:
        return f"Kinect/Kin{view.cluster:02d}/{sar}"
    return f"Camera/Cluster{view.cluster:02d}/Cam{view.camera:02d}/{sar}"


def image_relpath(view: View, subject: int, action: int, rep: int, frame: int) -> str:
    tag = take_tag(subject, action, rep)
    if view.kinect:
        name = f"kin_k{view.cluster:02d}_{tag}_color_{frame:05d}.ppm"
    else:
        name = f"img_l{view.cluster:02d}_c{view.camera:02d}_{tag}_{frame:05d}.pgm"
    return f"{image_dir(view, subject, action, rep)}/{name}"


# ------------------------------------------------------------------------------------------- readers
def read_cluster_transform(path) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) of ``RwTw_<c>.txt``: world -> cluster, ``x_c = R x_w + t`` (mm)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise RawFileError(path, f"unreadable transform file ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise RawFileError(path, "unreadable transform file: not a text file") from None
    m = re.match(r"\s*Rw=(?P<R>[^\n]*)\n\s*Tw=(?P<t>[^\n]*)", text)
    if not m:
        raise RawFileError(path, "expected a line 'Rw=<9 values>' and a line 'Tw=<3 values>'")
    try:
        rot, t = np.array(m["R"].split(), np.float64), np.array(m["t"].split(), np.float64)
    except ValueError:
        raise RawFileError(path, "the Rw= or Tw= values are not numeric") from None
    if rot.size != 9 or t.size != 3:
        raise RawFileError(path, f"Rw= has {rot.size} values (expected 9), Tw= {t.size} (expected 3)")
    rot = rot.reshape(3, 3)
    if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-4) or np.linalg.det(rot) < 0:
        raise RawFileError(path, "Rw is not a rotation matrix")
    return rot, t


@dataclasses.dataclass(frozen=True)
class CameraConfig:
    intrinsic_matrix: np.ndarray  # K
    dist: np.ndarray  # (4,) k1 k2 p1 p2
    posrel: np.ndarray  # (6,) translation (mm), Rodrigues vector: cluster -> camera


def read_camera_config(path) -> list[CameraConfig]:
    """The cameras of ``camcfg_<c>.yml`` in order (``Camera_1`` first)."""
    path = Path(path)
    if not path.is_file():
        raise RawFileError(path, "camera configuration file missing")
    try:
        fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except (cv2.error, SystemError):
        raise RawFileError(path, "unreadable camera configuration: not an OpenCV FileStorage file") from None
    try:
        if not fs.isOpened():
            raise RawFileError(path, "unreadable camera configuration: not an OpenCV FileStorage file")
        node = fs.getNode("Number of cameras")
        if node.empty() or not node.isReal() and not node.isInt():
            raise RawFileError(path, "no 'Number of cameras'")
        n = int(node.real())
        if n < 1:
            raise RawFileError(path, f"'Number of cameras' is {n}")
        out = []
        for i in range(1, n + 1):
            cam = fs.getNode(f"Camera_{i}")
            if cam.empty():
                raise RawFileError(path, f"no Camera_{i} (of {n})")
            values = {}
            for key, size in (("K", 9), ("Dist", 4), ("PosRel", 6)):
                mat = cam.getNode(key).mat()
                if mat is None or mat.size != size:
                    got = "none" if mat is None else f"{mat.size} values"
                    raise RawFileError(path, f"Camera_{i}: {key} must be a matrix of {size} values, got {got}")
                values[key] = np.asarray(mat, np.float64).reshape(-1)
            out.append(CameraConfig(values["K"].reshape(3, 3), values["Dist"], values["PosRel"]))
        return out
    finally:
        fs.release()


def camera_of(cluster_rt: tuple[np.ndarray, np.ndarray], config: CameraConfig, where) -> Camera:
    """The world -> camera of a cluster's camera: its ``PosRel`` after the cluster's ``RwTw`` (posepile's
    ``extr_rel @ extr``)."""
    rw, tw = cluster_rt
    r_rel = cv2.Rodrigues(config.posrel[3:].reshape(3, 1))[0]
    rot = r_rel @ rw
    t = r_rel @ tw + config.posrel[:3]
    camera = Camera(intrinsic_matrix=config.intrinsic_matrix, R=rot, t=-rot.T @ t,
                    distortion_coeffs=np.concatenate([config.dist, [0.0]]), world_up=WORLD_UP)
    check_finite_camera(camera, where)
    return camera


def read_correspondences(path) -> np.ndarray:
    """The mocap frame of each image frame (column 2 of ``corr_moc_*.txt``, as posepile reads it)."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = np.loadtxt(path, ndmin=2)
    except OSError as e:
        raise RawFileError(path, f"unreadable correspondence file ({e.strerror or e})") from None
    except ValueError as e:
        raise RawFileError(path, f"malformed correspondence file ({e})") from None
    if table.shape[0] == 0 or table.shape[1] < 3:
        raise RawFileError(path, f"expected rows of at least 3 columns, got shape {table.shape}")
    col = table[:, 2]
    if not np.all(np.isfinite(col)) or np.any(col < 0) or np.any(col != np.round(col)):
        raise RawFileError(path, "column 2 (the mocap frame) holds values that are not frame numbers")
    return col.astype(np.int64)


def read_mocap(path) -> np.ndarray:
    """(N, 43, 3) marker positions of a take's c3d file, mm, in the cameras' world frame (y up); NaN = invalid."""
    from posebank.datasets.c3d import read_points

    path = Path(path)
    data = read_points(path)
    points = np.asarray(data.points, np.float64)
    if points.ndim != 3 or points.shape[1] != N_MARKERS:
        raise RawFileError(path, f"holds {points.shape[1] if points.ndim == 3 else '?'} points, expected the "
                                 f"{N_MARKERS} markers")
    scale = {"mm": 1.0, "cm": 10.0, "m": 1000.0}.get(data.units.strip().lower())
    if scale is None:
        raise RawFileError(path, f"point units {data.units!r}: expected mm, cm or m")
    return (points * scale) @ AXES.T


# ------------------------------------------------------------------------------------------- params, layout
# posepile passes the number of frames as the buffer size: the sampler compares with every pose kept so far
EVERY_KEPT_POSE = 10**9


def check_params(params: dict | None) -> dict:
    p = check_dataset_params(NAME, params, DEFAULT_PARAMS)
    for key, allowed, may_be_empty in (("subjects", SUBJECTS, False), ("actions", ACTIONS, False),
                                       ("repetitions", REPETITIONS, False), ("clusters", CLUSTERS, True),
                                       ("kinects", KINECTS, True)):
        v = p[key]
        if (not v and not may_be_empty) or len(set(v)) != len(v) or set(v) - set(allowed):
            raise ParamsError(f"datasets.{NAME}.{key}", f"must be distinct values of {', '.join(map(str, allowed))}"
                                                        f", got {v}")
    if not p["clusters"] and not p["kinects"]:
        raise ParamsError(f"datasets.{NAME}.clusters", "no camera selected (clusters and kinects both empty)")
    if p["adaptive_sampling_mm"] < 0:
        raise ParamsError(f"datasets.{NAME}.adaptive_sampling_mm", "must be >= 0 (0 = off), got "
                                                                   f"{p['adaptive_sampling_mm']}")
    if p["box_expansion"] <= 0:
        raise ParamsError(f"datasets.{NAME}.box_expansion", f"must be > 0, got {p['box_expansion']}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    check_params(params)
    return SPLITS


@dataclasses.dataclass(frozen=True)
class View:
    """One camera: ``cluster`` 1-4 and ``camera`` 1.., or a Kinect (``cluster`` 1-2, ``camera`` 1)."""

    kinect: bool
    cluster: int
    camera: int

    @property
    def calibration(self) -> str:
        return f"k{self.cluster:02d}" if self.kinect else f"l{self.cluster:02d}"

    @property
    def name(self) -> str:
        return f"k{self.cluster:02d}" if self.kinect else f"l{self.cluster:02d}_c{self.camera:02d}"

    def skips(self, take: tuple[int, int, int]) -> bool:
        """Whether posepile leaves this take out for this view (a take the release lacks)."""
        return take in MISSING_TAKES or (not self.kinect and self.cluster in (3, 4)
                                         and take in MISSING_TAKES_CLUSTERS_3_4)


def check_layout(root, params: dict | None = None) -> list[tuple[int, int, int]]:
    """Verify the raw tree; the selected takes with a c3d file (subject, action, repetition), sorted. Names every
    missing file or folder."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    missing = []
    groups = [f"l{c:02d}" for c in sorted(p["clusters"])] + [f"k{k:02d}" for k in sorted(p["kinects"])]
    for group in groups:
        missing += [rel for rel in calibration_names(group) if not (root / rel).is_file()]
    folders = [MOCAP_DIR] + ([CAMERA_CORR_DIR] if p["clusters"] else []) + ([KINECT_CORR_DIR] if p["kinects"]
                                                                           else [])
    missing += [f"{rel}/" for rel in folders if not (root / rel).is_dir()]
    if missing:
        raise RawLayoutError(NAME, root, missing)
    takes = []
    for path in sorted((root / MOCAP_DIR).iterdir()):
        m = _TAKE.match(path.name)
        if not m:
            continue
        take = tuple(int(g) for g in m.groups())
        if take[0] in p["subjects"] and take[1] in p["actions"] and take[2] in p["repetitions"]:
            takes.append(take)
    if not takes:
        raise RawLayoutError(NAME, root, f"{MOCAP_DIR}/moc_s<ss>_a<aa>_r<rr>.c3d of the selected takes")
    return takes


def views(root, params: dict | None = None) -> list[tuple[View, Camera]]:
    """The selected cameras, clusters first (in camera order), then the Kinects, with their world cameras."""
    p = check_params(params)
    root = Path(root)
    out = []
    groups = [(False, c) for c in sorted(p["clusters"])] + [(True, k) for k in sorted(p["kinects"])]
    for kinect, number in groups:
        rwtw, camcfg = calibration_names(f"{'k' if kinect else 'l'}{number:02d}")
        cluster_rt = read_cluster_transform(root / rwtw)
        configs = read_camera_config(root / camcfg)
        if kinect and len(configs) != 1:
            raise RawFileError(root / camcfg, f"a Kinect has one colour camera, the file has {len(configs)}")
        for i, config in enumerate(configs, 1):
            out.append((View(kinect, number, i), camera_of(cluster_rt, config, root / camcfg)))
    return out


# ------------------------------------------------------------------------------------------- instances
def projected_box(points: np.ndarray, expansion: float) -> np.ndarray | None:
    """The box of the finite ``points`` scaled by ``expansion`` about its centre (boxlib ``expand(bb_of_points)``);
    None when no point is finite."""
    pts = points[np.isfinite(points).all(axis=1)]
    if not len(pts):
        return None
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre, size = (lo + hi) / 2, (hi - lo) * expansion
    return np.concatenate([centre - size / 2, size])


def _take_frames(root: Path, view: View, take: tuple[int, int, int], poses_all: np.ndarray, corr: np.ndarray,
                 camera: Camera, p: dict, dropped: list | None) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(image frame, pose, box) of one camera's selected frames of a take."""
    folder = root / image_dir(view, *take)
    sources = [image_relpath(view, *take, i) for i in range(len(corr))]
    where = image_dir(view, *take)
    if not folder.is_dir():
        if dropped is not None:
            dropped.append(Dropped(where, MISSING_IMAGES, len(corr)))
        return []
    present = {f.name for f in folder.iterdir()}
    absent = [i for i, s in enumerate(sources) if s.rsplit("/", 1)[1] not in present]
    record_drop(dropped, where, absent, MISSING_IMAGE)
    beyond = [i for i in range(len(corr)) if corr[i] >= len(poses_all) and i not in set(absent)]
    record_drop(dropped, where, beyond, PAST_MOCAP_END)
    frames = [i for i in range(len(corr)) if i not in set(absent) | set(beyond)]
    poses = np.full((len(corr), N_MARKERS, 3), np.nan)
    poses[frames] = poses_all[corr[frames]]
    frames = drop_missing_poses(poses, frames, where, dropped)
    # posepile samples over every image frame of the take (its images all exist)
    sampler = (AdaptivePoseSampler2(p["adaptive_sampling_mm"], EVERY_KEPT_POSE) if p["adaptive_sampling_mm"] > 0
               else None)
    out = []
    for i in frames:
        if sampler is not None and not sampler.should_keep(poses[i]):
            continue
        box = projected_box(camera.project(poses[i]), p["box_expansion"])
        out.append((i, poses[i], box))
    return out


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected person instance, ordered by take (subject, action, repetition), camera and frame."""
    p = check_params(params)
    root = Path(root)
    takes = check_layout(root, p)
    cams = views(root, p)
    out = []
    for take in takes:
        poses_all = read_mocap(root / mocap_relpath(*take))
        corrs: dict[str, np.ndarray | None] = {}
        for view, camera in cams:
            if view.skips(take):
                continue
            corr_rel = correspondence_relpath(view, *take)
            if corr_rel not in corrs:
                corrs[corr_rel] = read_correspondences(root / corr_rel) if (root / corr_rel).is_file() else None
                if corrs[corr_rel] is None and dropped is not None:
                    dropped.append(Dropped(corr_rel, MISSING_CORRESPONDENCE, 1))
            corr = corrs[corr_rel]
            if corr is None:
                continue
            subject, action, rep = take
            for i, pose, box in _take_frames(root, view, take, poses_all, corr, camera, p, dropped):
                out.append(RawInstance(
                    source=image_relpath(view, *take, i), frame_index=i, world_coords=pose.copy(), camera=camera,
                    split="train", subject=f"S{subject:02d}", sequence=take_tag(*take), activity=f"A{action:02d}",
                    camera_name=view.name, bbox=box))
    return out


# ------------------------------------------------------------------------------------------- frames
def read_frame(path) -> np.ndarray:
    """A camera frame (a Bayer PGM, demosaiced as posepile does) or a Kinect frame (colour PPM), BGR uint8;
    RawFileError for a missing or undecodable file."""
    path = Path(path)
    try:
        data = np.frombuffer(path.read_bytes(), np.uint8)
    except OSError as e:
        raise RawFileError(path, f"image cannot be read ({e.strerror or e})") from None
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise RawFileError(path, "image does not decode (truncated or not a PGM/PPM file)")
    if path.suffix.lower() == ".pgm":
        if image.ndim != 2 or image.dtype != np.uint8:
            raise RawFileError(path, f"expected an 8-bit one-channel Bayer image, got {image.dtype} "
                                     f"{'x'.join(map(str, image.shape))}")
        return cv2.cvtColor(image, cv2.COLOR_BAYER_GB2BGR)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise RawFileError(path, f"expected an 8-bit colour image, got {image.dtype} "
                                 f"{'x'.join(map(str, image.shape))}")
    return image


def frame_source(raw_root, params: dict | None = None) -> FrameSource:
    """The demosaiced camera frames and the Kinect colour frames (an unreadable file is a quarantined frame)."""
    raw_root = Path(raw_root)

    def frames(source: str, indices: Sequence[int]) -> Iterator[tuple[int, Frame]]:
        try:
            image = read_frame(raw_root / source)
        except RawFileError as e:
            image, problem = None, str(e)
        for i in sorted(set(indices)):
            yield i, Frame(image) if image is not None else Frame(None, problem=problem)

    return frames


FRAME_SOURCE_PARAMS = ()


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.bmhad.fixture.make_fixture`, which
    takes the ``options``)."""
    from posebank.datasets.bmhad.fixture import make_fixture as write

    return write(root, seed, **options)


RAW_INSTRUCTIONS = """
    Berkeley MHAD: request the data on its homepage, https://tele-immersion.citris-uc.org/berkeley_mhad , and
    download the camera (all 4 clusters), Kinect, motion-capture and calibration archives; unpack them so that the
    raw folder holds
        Calibration/RwTw_l01.txt ... RwTw_k02.txt, camcfg_l01.yml ... camcfg_k02.yml
        Mocap/OpticalData/moc_s01_a01_r01.c3d ...
        Camera/Correspondences/corr_moc_img_s01_a01_r01.txt ...   Kinect/Correspondences/corr_moc_kin01_... .txt
        Camera/Cluster01/Cam01/S01/A01/R01/img_l01_c01_s01_a01_r01_00000.pgm ...
        Kinect/Kin01/S01/A01/R01/kin_k01_s01_a01_r01_color_00000.ppm ...
"""
