"""RICH (Huang et al., CVPR 2022): multi-view images of people in real scenes, with SMPL-X fits per frame.

Raw layout, as posepile ``ds/rich/main.sh`` arranges it (``download_{train,val}.sh``'s tars streamed through
``download_as_jpeg.py``, which converts the released bmp/png frames to JPEG quality 85; ``scan_calibration.zip``
and ``{train,val}_body.zip`` unpacked, their ``ps/project/multi-ioi/rich_release/*`` moved to the root)::

    root/{train,val}/<Scene>_<subject ids>_<activity>/cam_XX/<frame:05d>_<XX>.jpg   the frames (JPEG)
    root/{train,val}_body/<sequence>/<frame:05d>/<subject:03d>.pkl                  SMPL-X fit per subject and frame
    root/scan_calibration/<Scene>/calibration/<camera:03d>.xml                      a static camera's calibration

The frames must be JPEG files named ``.jpg`` (posepile's downloader writes them so; the release's own bmp/png
frames are not read). A sequence name holds the scene, the subject ids (``ParkingLot1_004_005_...``: two people)
and the activity. A fit pickle is a dict of numpy arrays (``betas`` (1, 10), ``global_orient``, ``body_pose``
(1, 63), ``left_hand_pose``/``right_hand_pose`` (1, 12 PCA), ``jaw_pose``, ``leye_pose``, ``reye_pose``,
``expression`` (1, 10), ``transl``), read only through :func:`posebank.core.safe_pickle.load` (numpy and
builtins, nothing else). A calibration XML (what the toolkit's ``utils.extract_cam_param_xml`` reads) holds
``CameraMatrix`` (3x4 world -> camera ``[R | T]``, metres), ``Intrinsics`` (3x3) and ``Distortion`` (OpenCV
coefficients, passed on whole as posepile does; the toolkit's own projection ignores them), each as a
``<data>`` list of numbers. RICH's world is the calibrated multi-camera frame (the reference camera has R = I),
so its up direction is the reference camera's -y: posebank's camera ``world_up`` is ``-R[1]`` (posepile
``load_camera``). Moving cameras have no XML: their views are left out, counted in ``dropped``.

Conversion as posepile ``ds/rich/main.py`` (stage 1 and ``make_rich_body``): every subject's fits posed with the
gendered SMPL-X model (:mod:`.body`; genders from the toolkit's ``resource/gender.json``, :data:`GENDERS`), the
42 joints of ``smplx_42`` in mm; per subject over the sequence's frames posepile's ``AdaptivePoseSampler2(100,
True, True, 100)`` in world coordinates (a frame is kept for a subject when, against each of the last 100 kept
poses, some joint moved >= 100 mm), the decision shared by all views; per static view and kept subject the box of
the projected joints x 1.05 clipped to the image, people whose clipped box has a side < 100 px left out (the
detect stage then replaces the box by a detection with IoU > 0.5, ``detect.per_dataset.rich``). Splits train and
val (huge8, medium3: both as train). The SMPL-X model is licensed and never bundled: ``body_model_dir`` names
the folder with ``smplx/SMPLX_MALE.npz`` and ``smplx/SMPLX_FEMALE.npz`` (relative paths: to the raw folder);
without them the conversion stops with a ParamsError naming ``datasets.rich.body_model_dir``.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from posebank.core import safe_pickle
from posebank.core.bodymodel import BodyModelFit
from posebank.core.camera import Camera
from posebank.core.errors import DataError, ParamsError
from posebank.core.jpeg import jpeg_size
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
from posebank.datasets.sampling import AdaptivePoseSampler2, record_drop

log = logging.getLogger(__name__)

NAME = "rich"
INFO = DatasetInfo(
    name=NAME,
    full_name="RICH (Real scenes, Interaction, Contacts and Humans)",
    homepage="https://rich.is.tue.mpg.de/",
    licence="RICH licence (Max Planck Institute for Intelligent Systems): non-commercial scientific research, "
            "registration required, no redistribution (unverified); the SMPL-X model has its own licence.",
    citation=("C.-H. P. Huang, H. Yi, M. Hoeschle, M. Safroshkin, T. Alexiadis, S. Polikovsky, D. Scharstein, "
              "M. J. Black. Capturing and Inferring Dense Full-Body Human-Scene Contact. CVPR 2022, "
              "pp. 13274-13285."),
)

SPLITS = ("train", "val")
CALIBRATION = "scan_calibration"
IMAGE_EXT = ".jpg"
M_TO_MM = 1000.0
# paulchhuang/rich_toolkit resource/gender.json (subject id -> gender); posepile hard-codes the subset
# males [0-8, 14, 15, 20], females [13, 16, 18] and stops at any other subject
GENDERS = {0: "male", 1: "male", 2: "male", 3: "male", 4: "male", 5: "male", 6: "male", 7: "male", 8: "male",
           9: "female", 10: "female", 11: "male", 12: "female", 13: "female", 14: "male", 15: "male",
           16: "female", 17: "female", 18: "female", 19: "female", 20: "male", 21: "female"}

# posepile make_joint_info names, the 42 that make_rich_body keeps (smplx indices in .body.SELECTION)
JOINT_NAMES = ("pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,lelb,"
               "relb,lwri,rwri,jaw,leyehf,reyehf,lmiddle1,rmiddle1,nose,reye,leye,rear,lear,lto2,lto3,lhee,rto2,"
               "rto3,rhee,lthu,lmiddle,rthu,rmiddle")
JOINT_INFO = JointInfo(JOINT_NAMES, "rwri-relb-rsho-rcla-thor,rank-rhee,rto2-rtoe-rto3,"
                                    "rear-reye-nose-head-jaw-neck-thor-spin-bell-pelv-rhip-rkne-rank-rtoe")

DEFAULT_PARAMS = {
    "splits": list(SPLITS),
    "body_model_dir": "body_models",  # holds smplx/SMPLX_{MALE,FEMALE}.npz; relative: to the raw folder
    "adaptive_sampling_mm": 100.0,  # posepile AdaptivePoseSampler2(100, ...), per subject, world frame; 0 = off
    "sampler_memory": 100,  # ... against this many last kept poses (posepile: buffer 100)
    "box_expansion": 1.05,  # posepile get_bbox: projected joints' box x 1.05, clipped to the image ...
    "min_box_px": 100.0,  # ... people whose box has a side under this are left out (posepile: < 100)
}

_SEQUENCE = re.compile(r"^([A-Za-z0-9]+)((?:_\d+)+)_([A-Za-z0-9]+)$")
_CAM_DIR = re.compile(r"^cam_(\d{2})$")
_IMAGE = re.compile(r"^(\d{5})_(\d{2})\.jpg$")

NO_CALIBRATION = "moving camera: no calibration XML (posepile leaves the moving cameras out)"
NO_FIT = "no SMPL-X fit for this subject and frame"
NO_IMAGE = "the view has no image of this frame"
SMALL_BOX = "box (projected joints x 1.05, clipped to the image) has a side under min_box_px"


# ------------------------------------------------------------------------------------------- reading
def _matrix(xml_root, tag: str, path, shape: tuple | None) -> np.ndarray:
    node = xml_root.find(tag)
    data = None if node is None else node.find("data")
    if data is None or data.text is None:
        raise RawFileError(path, f"no <{tag}><data> (a RICH calibration holds CameraMatrix, Intrinsics and "
                                 "Distortion)")
    try:
        values = np.array([float(v) for v in data.text.split()], np.float64)
    except ValueError:
        raise RawFileError(path, f"<{tag}> data is not a list of numbers") from None
    if shape is not None and values.size != int(np.prod(shape)):
        raise RawFileError(path, f"<{tag}> has {values.size} numbers, expected {int(np.prod(shape))} "
                                 f"({'x'.join(map(str, shape))})")
    return values.reshape(shape) if shape is not None else values


def read_camera(path) -> Camera:
    """posebank's camera of one ``scan_calibration/<Scene>/calibration/<cam>.xml`` (posepile ``load_camera``)."""
    path = Path(path)
    try:
        xml_root = ET.parse(path).getroot()
    except OSError as e:
        raise RawFileError(path, f"unreadable ({e.strerror or e})") from None
    except ET.ParseError as e:
        raise RawFileError(path, f"not a readable XML file, truncated or corrupt ({e})") from None
    extrinsic = _matrix(xml_root, "CameraMatrix", path, (3, 4))
    intrinsic = _matrix(xml_root, "Intrinsics", path, (3, 3))
    dist = _matrix(xml_root, "Distortion", path, None)
    if dist.size > 5 and np.any(dist[5:] != 0):
        raise RawFileError(path, f"<Distortion> has {dist.size} coefficients; posebank's cameras take up to 5 "
                                 "(k1 k2 p1 p2 k3)")
    rot = extrinsic[:, :3]
    if not np.all(np.isfinite(rot)) or np.abs(rot @ rot.T - np.eye(3)).max() > 1e-4 or np.linalg.det(rot) < 0:
        raise RawFileError(path, "<CameraMatrix> rotation part is not a rotation")
    centre = -rot.T @ extrinsic[:, 3] * M_TO_MM
    camera = Camera(intrinsic_matrix=intrinsic, R=rot, t=centre, distortion_coeffs=dist[:5], world_up=-rot[1])
    check_finite_camera(camera, path)
    return camera


def read_fit(path) -> dict:
    """One ``<subject>.pkl`` fit: the dict of SMPL-X parameters (:func:`.body.fit_arrays`)."""
    from posebank.datasets.rich.body import fit_arrays

    return fit_arrays(safe_pickle.load(path), path)


def parse_sequence(name: str) -> tuple[str, list[int], str] | None:
    """``LectureHall_009_021_reparingprojector1`` -> ("LectureHall", [9, 21], "reparingprojector1")."""
    m = _SEQUENCE.match(name)
    if not m:
        return None
    return m.group(1), [int(s) for s in m.group(2).split("_")[1:]], m.group(3)


def image_size(path) -> tuple[int, int]:
    """(width, height) of a frame from its JPEG header; RawFileError naming the file when it is not a JPEG."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(1 << 16)
            try:
                return jpeg_size(head, where=str(path))
            except DataError:
                try:
                    return jpeg_size(head + f.read(), where=str(path))
                except DataError as e:
                    raise RawFileError(path, e.problem) from None
    except OSError as e:
        raise RawFileError(path, f"unreadable ({e.strerror or e})") from None


# ------------------------------------------------------------------------------------------- params, layout
def check_params(params: dict | None = None) -> dict:
    given = dict(params or {})
    if "body_model_dir" in given and given["body_model_dir"] is None:
        given["body_model_dir"] = ""  # params.yaml's null
    p = check_dataset_params(NAME, given, DEFAULT_PARAMS)
    where = f"datasets.{NAME}"
    if not p["splits"] or len(set(p["splits"])) != len(p["splits"]) or set(p["splits"]) - set(SPLITS):
        raise ParamsError(f"{where}.splits", f"must be distinct splits of {', '.join(SPLITS)}, got {p['splits']}")
    if p["adaptive_sampling_mm"] < 0:
        raise ParamsError(f"{where}.adaptive_sampling_mm", f"must be >= 0 (0 = off), got {p['adaptive_sampling_mm']}")
    if p["sampler_memory"] < 1:
        raise ParamsError(f"{where}.sampler_memory", f"must be at least 1, got {p['sampler_memory']}")
    if p["box_expansion"] <= 0:
        raise ParamsError(f"{where}.box_expansion", f"must be > 0, got {p['box_expansion']}")
    if p["min_box_px"] < 0:
        raise ParamsError(f"{where}.min_box_px", f"must be >= 0, got {p['min_box_px']}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    p = check_params(params)
    return tuple(s for s in SPLITS if s in p["splits"])


@dataclasses.dataclass(frozen=True)
class Sequence:
    split: str
    name: str
    scene: str
    subjects: tuple
    activity: str
    cameras: tuple  # camera ids (cam_XX folders), sorted

    @property
    def images(self) -> str:
        return f"{self.split}/{self.name}"

    @property
    def bodies(self) -> str:
        return f"{self.split}_body/{self.name}"

    def calibration(self, cam: int) -> str:
        return f"{CALIBRATION}/{self.scene}/calibration/{cam:03d}.xml"


def model_dir(root, p: dict) -> Path | None:
    if not p["body_model_dir"]:
        return None
    folder = Path(p["body_model_dir"])
    return folder if folder.is_absolute() else Path(root) / folder


def check_layout(root, params: dict | None = None) -> list[Sequence]:
    """The sequences of the selected splits; RawLayoutError names every missing folder."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    missing = [rel for split in p["splits"] for rel in (f"{split}/", f"{split}_body/") if not (root / rel).is_dir()]
    if not (root / CALIBRATION).is_dir():
        missing.append(f"{CALIBRATION}/")
    if missing:
        raise RawLayoutError(NAME, root, missing)
    out = []
    for split in splits(p):
        for d in sorted((root / split).iterdir()):
            if not d.is_dir():
                continue
            parsed = parse_sequence(d.name)
            if parsed is None:
                raise RawFileError(d, "not a RICH sequence folder name (<Scene>_<subject ids>_<activity>)")
            scene, subjects, activity = parsed
            unknown = [s for s in subjects if s not in GENDERS]
            if unknown:
                raise RawFileError(d, f"subject {unknown[0]} has no gender in RICH's resource/gender.json")
            cams = sorted(int(m.group(1)) for m in (_CAM_DIR.match(c.name) for c in d.iterdir()) if m)
            if not cams:
                missing.append(f"{split}/{d.name}/cam_XX/ (no camera folders)")
            for cam in cams:
                folder = d / f"cam_{cam:02d}"
                names = [f.name for f in folder.iterdir()]
                if not any(_IMAGE.match(n) for n in names):
                    other = sorted({n.rsplit(".", 1)[-1] for n in names if "." in n} - {"jpg"})
                    missing.append(f"{split}/{d.name}/cam_{cam:02d}/<frame:05d>_{cam:02d}.jpg (no JPEG frames"
                                   + (f"; found .{', .'.join(other)}: convert them to .jpg as posepile's "
                                      "download_as_jpeg.py does)" if other else ")"))
            if not (root / f"{split}_body" / d.name).is_dir():
                missing.append(f"{split}_body/{d.name}/")
            if not (root / CALIBRATION / scene / "calibration").is_dir():
                missing.append(f"{CALIBRATION}/{scene}/calibration/")
            out.append(Sequence(split, d.name, scene, tuple(subjects), activity, tuple(cams)))
    if not out and not missing:
        missing.append(f"{'/ or '.join(p['splits'])}/<Scene>_<subjects>_<activity>/ (no sequences)")
    if missing:
        raise RawLayoutError(NAME, root, sorted(set(missing)))
    return out


# ------------------------------------------------------------------------------------------- instances
def load_models(root, p: dict, genders) -> dict:
    """gender -> :class:`.body.RichBody` of the configured folder; ParamsError naming body_model_dir if absent."""
    from posebank.core.smplx_model import model_path
    from posebank.datasets.rich.body import RichBody, missing_model

    param = f"datasets.{NAME}.body_model_dir"
    folder = model_dir(root, p)
    out = {}
    for gender in sorted(set(genders)):
        path = None if folder is None else model_path(folder, gender)
        if path is None or not path.is_file():
            raise missing_model(param, folder if folder is not None else "(none configured)", gender,
                                path if path is not None else f"smplx/SMPLX_{gender.upper()}.npz")
        out[gender] = RichBody(folder, gender, param)
    return out


def box_of(points: np.ndarray, expansion: float, size: tuple[int, int]) -> np.ndarray:
    """posepile get_bbox without a detection: ``expand(bb_of_points, 1.05)`` intersected with the image."""
    lo, hi = np.nanmin(points, axis=0), np.nanmax(points, axis=0)
    centre, half = (lo + hi) / 2, (hi - lo) * expansion / 2
    lo, hi = np.maximum(centre - half, 0), np.minimum(centre + half, size)
    return np.concatenate([lo, np.maximum(hi - lo, 0)])


def _sequence_instances(root: Path, seq: Sequence, p: dict, models: dict, dropped) -> list[RawInstance]:
    images = {}  # camera -> {frame: file name}
    for cam in seq.cameras:
        folder = root / seq.images / f"cam_{cam:02d}"
        images[cam] = {int(m.group(1)): f.name for f in folder.iterdir()
                       if (m := _IMAGE.match(f.name)) and int(m.group(2)) == cam}
    cameras = {}
    for cam in seq.cameras:
        xml = root / seq.calibration(cam)
        if xml.is_file():
            cameras[cam] = read_camera(xml)
        elif dropped is not None and images[cam]:
            dropped.append(Dropped(f"{seq.images}/cam_{cam:02d}", NO_CALIBRATION, len(images[cam])))
    frames = sorted(set().union(*images.values())) if images else []
    # per subject: the frames with a fit, posed in one batch
    poses, fits_of, kept = {}, {}, {}
    for subject in seq.subjects:
        rel = [f"{seq.bodies}/{i:05d}/{subject:03d}.pkl" for i in frames]
        have = [(i, r) for i, r in zip(frames, rel) if (root / r).is_file()]
        record_drop(dropped, f"{seq.images}", [i for i, r in zip(frames, rel) if not (root / r).is_file()],
                    f"subject {subject:03d}: {NO_FIT}")
        fits = [read_fit(root / r) for _, r in have]
        model = models[GENDERS[subject]]
        joints = model.joints(fits) * M_TO_MM
        roots = model.rest_root(fits) if fits else np.zeros((0, 3))
        pose = model.full_pose(fits) if fits else np.zeros((0, 165))
        poses[subject] = {i: joints[k] for k, (i, _) in enumerate(have)}
        fits_of[subject] = {i: BodyModelFit("smplx", GENDERS[subject], pose[k], fits[k]["betas"],
                                            fits[k]["transl"], roots[k]) for k, (i, _) in enumerate(have)}
        sampler = AdaptivePoseSampler2(p["adaptive_sampling_mm"], p["sampler_memory"]) \
            if p["adaptive_sampling_mm"] > 0 else None
        kept[subject] = {i for i, _ in have if sampler is None or sampler.should_keep(poses[subject][i])}
    out, small, no_image = [], {}, {}
    for i in frames:
        for cam, camera in cameras.items():
            name = images[cam].get(i)
            source = f"{seq.images}/cam_{cam:02d}/{name}" if name else None
            for k, subject in enumerate(seq.subjects):
                if i not in kept[subject]:
                    continue
                if source is None:
                    no_image.setdefault(cam, []).append(i)
                    continue
                world = poses[subject][i]
                size = image_size(root / source)
                box = box_of(camera.project(world), p["box_expansion"], size)
                if min(box[2], box[3]) < p["min_box_px"]:
                    small.setdefault(source, []).append(i)
                    continue
                out.append(RawInstance(
                    source=source, frame_index=i, world_coords=world.copy(), camera=camera, split=seq.split,
                    subject=f"{subject:03d}", sequence=seq.name, activity=seq.activity,
                    camera_name=f"cam_{cam:02d}", person_index=k, body_model=fits_of[subject][i]))
    for cam, missing in no_image.items():
        record_drop(dropped, f"{seq.images}/cam_{cam:02d}", sorted(set(missing)), NO_IMAGE)
    for source, idx in small.items():
        if dropped is not None:
            dropped.append(Dropped(source, SMALL_BOX, len(idx)))
    return out


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected person instance, ordered by split, sequence, frame, camera and subject."""
    p = check_params(params)
    root = Path(root)
    seqs = check_layout(root, p)
    models = load_models(root, p, [GENDERS[s] for seq in seqs for s in seq.subjects])
    out = []
    for seq in seqs:
        out += _sequence_instances(root, seq, p, models, dropped)
    return out


def provenance(root, params: dict | None = None) -> dict:
    from posebank.core.smplx_model import MODEL_FILE, model_path
    from posebank.core.store import sha256_file

    p = check_params(params)
    folder = model_dir(root, p)
    out = {"body_model": {"model": "smplx", "source": "RICH's own SMPL-X fits ({train,val}_body)"},
           "body_model_dir": p["body_model_dir"] or None}
    if folder is not None:
        out["body_model_files"] = [{"path": MODEL_FILE.format(gender=g.upper()),
                                    "sha256": sha256_file(model_path(folder, g))}
                                   for g in ("female", "male") if model_path(folder, g).is_file()]
    return out


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.rich.fixture.make_fixture`)."""
    from posebank.datasets.rich.fixture import make_fixture as write

    return write(root, seed, **options)


RAW_INSTRUCTIONS = """
    RICH is handed out after a registration on its homepage, https://rich.is.tue.mpg.de (download page). Download
    scan_calibration.zip, train_body.zip and val_body.zip and the image lists download_train.sh and
    download_val.sh; stream the listed tars converting the frames to JPEG (posepile's ds/rich/download_as_jpeg.py;
    its --username flag is read as FLAGS.user, fix that line first), unzip the rest and move
    ps/project/multi-ioi/rich_release/* to the raw folder, so that it holds
        train/ParkingLot1_002_burpee3/cam_00/00000_00.jpg ..., val/...
        train_body/ParkingLot1_002_burpee3/00000/002.pkl ..., val_body/...
        scan_calibration/ParkingLot1/calibration/000.xml ...
    The 3D joints need the SMPL-X model (SMPLX_MALE.npz and SMPLX_FEMALE.npz, v1.1, licensed at
    https://smpl-x.is.tue.mpg.de) in <datasets.rich.body_model_dir>/smplx/ (default: the raw folder's
    body_models/smplx/).
"""
