"""SPEC-SYN (Kocabas et al., ICCV 2021): synthetic images of SMPL people rendered with strong perspective (wide
and narrow lenses, pitched and rolled cameras), each person with an SMPL fit, its OpenPose joints and the camera's
rotation and intrinsics.

Raw layout, as the release's ``spec-syn.zip`` unpacks (posepile ``ds/spec/main.py``: ``$DATA_ROOT/spec/spec-syn``;
SPEC ``spec/config.py``: ``data/dataset_folders/spec-syn``)::

    root/annotations/train.npz       one row per person (SPIN's npz format)
    root/annotations/test.npz
    root/<imgname>                   the images, ``imgname`` relative to the root (as SPEC's CamDataset joins them)

The fields read, per person row (posepile's; the files hold more, listed in mkocabas/SPEC issue 11): ``imgname``
(the image), ``pose`` (72 SMPL axis-angle values), ``shape`` (10 betas), ``openpose_gt`` (25 x 3: the OpenPose
BODY_25 joints in pixels and a confidence), ``cam_rotmat`` (3 x 3, world -> camera), ``cam_int`` (3 x 3
intrinsics) and ``S`` (24 x 4: SPIN's J24 joints in metres and a confidence; only the first 3 columns are used).
The files are read with ``numpy.load(..., allow_pickle=False)``; a field that is missing, of the wrong shape or not
numbers is a RawFileError naming the file and the key.

Conversion as posepile: the release gives no person translation (``cam_trans`` is the same for every person of an
image), so the 24 joints of the neutral SMPL model posed with ``pose`` and ``shape`` (no translation, mm) are placed
in the camera by PnP: OpenCV's ``calibrateCamera`` with the intrinsics fixed (image size 1920 x 1080, all
distortion fixed at zero) on the 14 joints OpenPose and SMPL share (neck, shoulders, elbows, wrists, pelvis = mid
hip, hips, knees, ankles). The placed joints are then scaled about the optical centre (which keeps their
projection) by the ratio of the RMS spread of ``S`` x 1000 to that of 12 SMPL limb joints (ankles, knees, hips,
wrists, elbows, shoulders): posebank takes the spread of the same 12 joints of ``S`` (its first 12 rows, SPIN's J24
order), posepile's main.py that of all rows of ``S`` (``scale_joints: all``), its add_parametric.py none
(``scale_joints: none``); docs/datasets.md, differences from posepile.
The world frame is the camera's turned by ``cam_rotmat`` (optical centre at the origin, world = Rᵀ camera), up -y.
Joints: posepile's 24 SMPL names (suffix '' in huge8, shared with SURREAL, AGORA, BEHAVE).

Selection: every person of the selected splits (no sampling). People whose projected joints' box x 1.15 has a side
under 100 px are left out (posepile drops them after matching to detections, checking the detection's box); the
box is the detect stage's (``detect.per_dataset.spec``: the box of the projected joints x 1.15 matched to a
detection with IoU >= 0.3, people without one dropped). Splits: train and test (huge8: train).

The SMPL model is licensed (https://smpl.is.tue.mpg.de) and never bundled: ``body_model_dir`` names the folder with
``smpl/SMPL_NEUTRAL.npz`` (:mod:`posebank.core.smpl_model`; relative paths: to the raw folder); without it the
conversion stops with a ParamsError naming ``datasets.spec.body_model_dir``.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path, PurePosixPath

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
from posebank.datasets.sampling import record_drop

NAME = "spec"
INFO = DatasetInfo(
    name=NAME,
    full_name="SPEC-SYN (SPEC: Seeing People in the wild with an Estimated Camera, synthetic set)",
    homepage="https://spec.is.tue.mpg.de/",
    licence=("SPEC data licence (Max Planck Institute for Intelligent Systems): non-commercial scientific research, "
             "registration required, no redistribution (unverified); the SMPL model has its own licence."),
    citation=("M. Kocabas, C.-H. P. Huang, J. Tesch, L. Mueller, O. Hilliges, M. J. Black. SPEC: Seeing People in "
              "the Wild with an Estimated Camera. ICCV 2021, pp. 11035-11045."),
)

SPLITS = ("train", "test")
ANNOTATIONS = "annotations/{split}.npz"
M_TO_MM = 1000.0
WORLD_UP = (0.0, -1.0, 0.0)
PNP_IMAGE_SIZE = (1920, 1080)  # posepile calibrate_extrinsics (irrelevant with the intrinsics fixed)

# posepile ds/spec/main.py make_dataset: joint_names and edges (SMPL order)
JOINT_NAMES = ("pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,lelb,"
               "relb,lwri,rwri,lhan,rhan")
JOINT_INFO = JointInfo(JOINT_NAMES, "head-neck-thor-rcla-rsho-relb-rwri-rhan,thor-spin-bell-pelv-rhip-rkne-rank-rtoe")
N_JOINTS = 24
# posepile: the OpenPose BODY_25 order with its names, the joints shared with SMPL, and S's first 12 (J24) rows
OPENPOSE_NAMES = ("head,neck,rsho,relb,rwri,lsho,lelb,lwri,pelv,rhip,rkne,rank,lhip,lkne,lank,reye,leye,rear,lear,"
                  "lto2,lto3,lhee,rto2,rto3,rhee").split(",")
COMMON = "neck,rsho,relb,rwri,lsho,lelb,lwri,pelv,rhip,rkne,rank,lhip,lkne,lank".split(",")
S_NAMES = "rank,rkne,rhip,lhip,lkne,lank,rwri,relb,rsho,lsho,lelb,lwri".split(",")
I_3D = [JOINT_INFO.ids[n] for n in COMMON]
I_2D = [OPENPOSE_NAMES.index(n) for n in COMMON]
S_SELECTOR = [JOINT_INFO.ids[n] for n in S_NAMES]
N_S = 24  # SPIN's J24 rows of S

# key -> shape per row (-1: any length >= the number given after it)
FIELDS = {"pose": (72,), "shape": (10,), "openpose_gt": (25, 3), "cam_rotmat": (3, 3), "cam_int": (3, 3),
          "S": (N_S, -1)}
SHARD_KEY = ()  # a flat list of images: the frame order is cut into equal parts

DEFAULT_PARAMS = {
    "splits": list(SPLITS),  # annotations/train.npz, annotations/test.npz (huge8 takes train)
    "body_model_dir": "body_models",  # holds smpl/SMPL_NEUTRAL.npz; relative: to the raw folder
    # the scale's spread of S: lsp12 = its first 12 rows, the 12 joints of the SMPL side; all = every row (posepile
    # main.py); none = no rescaling, the neutral model's own size (posepile add_parametric.py: scale_factor = 1)
    "scale_joints": "lsp12",
    "box_expansion": 1.15,  # posepile: the projected joints' box x 1.15 ...
    "min_box_px": 100.0,  # ... people whose box has a side under this are left out (posepile: < 100)
}
SCALE_JOINTS = ("lsp12", "all", "none")

BEHIND = "a placed joint is not in front of the camera"
NO_PNP = "PnP found no placement (non-finite result)"
MISSING_2D = "an OpenPose joint the PnP needs is not finite in openpose_gt"


def small_reason(expansion: float, min_box_px: float) -> str:
    return f"box of the projected joints x {expansion:g} has a side under {min_box_px:g} px"


# ------------------------------------------------------------------------------------------- readers
def read_annotations(path) -> dict[str, np.ndarray]:
    """The fields posepile reads of one ``annotations/<split>.npz``, checked: ``imgname`` (N,) as str and the
    numeric fields of :data:`FIELDS` as float64 (N, ...). RawFileError names the file (and the key)."""
    path = Path(path)
    try:
        npz = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise RawFileError(path, "annotation file not found") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise RawFileError(path, f"unreadable annotation file: not an npz archive, or truncated or corrupt "
                                 f"({type(e).__name__})") from None
    out: dict[str, np.ndarray] = {}
    with npz:
        for key in ("imgname", *FIELDS):
            if key not in npz.files:
                raise RawFileError(path, f"no '{key}' array (SPEC-SYN's annotations hold imgname, "
                                         f"{', '.join(FIELDS)})")
            try:
                out[key] = np.asarray(npz[key])
            except ValueError:
                raise RawFileError(path, f"'{key}' holds Python objects (a pickle), which posebank does not "
                                         f"load") from None
            except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
                raise RawFileError(path, f"unreadable annotation file: '{key}' is truncated or corrupt "
                                         f"({type(e).__name__})") from None
    names = out["imgname"]
    if names.ndim != 1 or names.dtype.kind not in "US":
        raise RawFileError(path, f"'imgname' must be a 1-D array of strings, got {names.dtype} of shape "
                                 f"{names.shape}")
    out["imgname"] = np.array([n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist()], dtype=str)
    n = len(names)
    for key, shape in FIELDS.items():
        a = out[key]
        if a.dtype.kind not in "fiu":
            raise RawFileError(path, f"'{key}' is {a.dtype}, not numbers")
        ok = a.ndim == 1 + len(shape) and a.shape[0] == n and all(
            want == got or (want == -1 and got >= 3) for want, got in zip(shape, a.shape[1:]))
        if not ok:
            wanted = ", ".join(">= 3" if s == -1 else str(s) for s in shape)
            raise RawFileError(path, f"'{key}' has shape {a.shape}, expected ({n}, {wanted}) (one row per imgname)")
        out[key] = a.astype(np.float64)
    for k, name in enumerate(out["imgname"]):
        rel = PurePosixPath(name)
        if not name or rel.is_absolute() or ".." in rel.parts or "\\" in name:
            raise RawFileError(path, f"imgname[{k}] {name!r} is not a path relative to the raw folder")
    return out


def groups(names: np.ndarray) -> dict[str, list[int]]:
    """imgname -> its rows, in the order of first appearance (posepile groups the rows by image so)."""
    out: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        out.setdefault(str(name), []).append(i)
    return out


def frame_number(name: str) -> int:
    """The number at the end of an image's stem (``..._000123.png`` -> 123), or -1."""
    stem = PurePosixPath(name).stem
    digits = ""
    for ch in reversed(stem):
        if not ch.isdigit():
            break
        digits = ch + digits
    return int(digits) if digits else -1


def get_scale(poses: np.ndarray) -> np.ndarray:
    """posepile ``get_scale``: the RMS distance of the joints from their mean (over the last two axes)."""
    mean = np.mean(poses, axis=-2, keepdims=True)
    return np.sqrt(np.mean(np.square(poses - mean), axis=(-2, -1)))


def calibrate_extrinsics(image_coords2d, world_coords3d, intrinsic_matrix) -> tuple[np.ndarray, np.ndarray]:
    """posepile ``calibrate_extrinsics``: R (3, 3) and t (3,) placing the 3D points (mm) so that they project onto
    the 2D points through the fixed intrinsics: ``cv2.calibrateCamera`` on one view with every intrinsic and
    distortion parameter fixed, float32 inputs as posepile."""
    import cv2

    flags = (cv2.CALIB_FIX_PRINCIPAL_POINT | cv2.CALIB_USE_INTRINSIC_GUESS | cv2.CALIB_FIX_K1 | cv2.CALIB_FIX_K2
             | cv2.CALIB_FIX_K3 | cv2.CALIB_FIX_K4 | cv2.CALIB_FIX_FOCAL_LENGTH | cv2.CALIB_FIX_K5
             | cv2.CALIB_FIX_K6 | cv2.CALIB_FIX_TANGENT_DIST | cv2.CALIB_SAME_FOCAL_LENGTH)
    coords2d = np.asarray(image_coords2d)[np.newaxis].astype(np.float32)
    coords3d = np.asarray(world_coords3d)[np.newaxis].astype(np.float32)
    _, _, _, rvecs, tvecs = cv2.calibrateCamera(
        coords3d, coords2d, cameraMatrix=np.asarray(intrinsic_matrix, np.float64).copy(),
        imageSize=PNP_IMAGE_SIZE, distCoeffs=None, flags=flags)
    rot = cv2.Rodrigues(rvecs[0])[0]
    return rot, np.asarray(tvecs[0], np.float64).reshape(3)


def place(smpl_mm: np.ndarray, openpose_gt: np.ndarray, cam_int: np.ndarray, s_m: np.ndarray,
          scale_joints: str = "lsp12") -> np.ndarray:
    """(24, 3) camera-frame mm: the unplaced SMPL joints (mm) put in the camera by PnP on the 14 shared joints,
    then scaled about the optical centre by spread(S x 1000) / spread(the 12 SMPL limb joints) (posepile)."""
    rot, trans = calibrate_extrinsics(openpose_gt[I_2D, :2], smpl_mm[I_3D], cam_int)
    placed = smpl_mm @ rot.T + trans
    if scale_joints == "none":
        return placed
    s_mm = s_m[:, :3] * M_TO_MM
    if scale_joints == "lsp12":
        s_mm = s_mm[:len(S_NAMES)]
    return placed * (get_scale(s_mm) / get_scale(smpl_mm[S_SELECTOR]))


# ------------------------------------------------------------------------------------------- params, layout
def check_params(params: dict | None = None) -> dict:
    given = dict(params or {}) if isinstance(params, dict) else params
    if isinstance(given, dict) and "body_model_dir" in given and given["body_model_dir"] is None:
        given["body_model_dir"] = ""  # params.yaml's null
    p = check_dataset_params(NAME, given, DEFAULT_PARAMS)
    where = f"datasets.{NAME}"
    if not p["splits"] or len(set(p["splits"])) != len(p["splits"]) or set(p["splits"]) - set(SPLITS):
        raise ParamsError(f"{where}.splits", f"must be distinct splits of {', '.join(SPLITS)}, got {p['splits']}")
    if p["scale_joints"] not in SCALE_JOINTS:
        raise ParamsError(f"{where}.scale_joints", f"must be one of {', '.join(SCALE_JOINTS)}, got "
                                                   f"{p['scale_joints']!r}")
    if p["box_expansion"] <= 0:
        raise ParamsError(f"{where}.box_expansion", f"must be > 0, got {p['box_expansion']}")
    if p["min_box_px"] < 0:
        raise ParamsError(f"{where}.min_box_px", f"must be >= 0, got {p['min_box_px']}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    p = check_params(params)
    return tuple(s for s in SPLITS if s in p["splits"])


def check_layout(root, params: dict | None = None) -> None:
    """RawLayoutError naming the missing annotation files of the selected splits (the images are checked against
    the annotations by :func:`instances`)."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    missing = [ANNOTATIONS.format(split=s) for s in splits(p) if not (root / ANNOTATIONS.format(split=s)).is_file()]
    if missing:
        raise RawLayoutError(NAME, root, missing)


def model_dir(root, p: dict) -> Path | None:
    if not p["body_model_dir"]:
        return None
    folder = Path(p["body_model_dir"])
    return folder if folder.is_absolute() else Path(root) / folder


def load_model(root, p: dict):
    """The neutral :class:`~posebank.core.smpl_model.SmplJoints` of the configured folder; ParamsError naming
    ``datasets.spec.body_model_dir`` when it is not there."""
    from posebank.core.smpl_model import MODEL_FILE, SmplJoints, model_path

    param = f"datasets.{NAME}.body_model_dir"
    folder = model_dir(root, p)
    if folder is None or not model_path(folder).is_file():
        where = "(none configured)" if folder is None else str(folder)
        raise ParamsError(param, f"the 3D joints need the neutral SMPL model, {MODEL_FILE.format(gender='NEUTRAL')}"
                                 f" in this folder: {where} (licensed at https://smpl.is.tue.mpg.de; convert the "
                                 f"release's pickle to an npz, see posebank.core.smpl_model)")
    return SmplJoints(folder, "neutral", param=param)


# ------------------------------------------------------------------------------------------- instances
def _split_instances(root: Path, split: str, p: dict, model, dropped) -> list[RawInstance]:
    rel = ANNOTATIONS.format(split=split)
    path = root / rel
    a = read_annotations(path)
    by_image = groups(a["imgname"])
    missing = sorted(name for name in by_image if not (root / name).is_file())
    if missing:
        raise RawLayoutError(NAME, root, missing)
    rows = np.arange(len(a["imgname"]))
    smpl_mm = np.empty((len(rows), N_JOINTS, 3))
    if len(rows):
        smpl_mm = model.joints(a["pose"], a["shape"], np.zeros((len(rows), 3))) * M_TO_MM
    small = small_reason(p["box_expansion"], p["min_box_px"])
    out = []
    for name, ids in by_image.items():
        for person, i in enumerate(ids):
            cam = Camera(intrinsic_matrix=a["cam_int"][i], R=a["cam_rotmat"][i], t=np.zeros(3), world_up=WORLD_UP)
            try:
                check_finite_camera(cam, path)
            except RawFileError as e:
                raise RawFileError(path, f"row {i} ({name}): {e.problem}") from None
            if not np.isfinite(a["openpose_gt"][i][I_2D, :2]).all() or not np.isfinite(a["S"][i][:, :3]).all():
                record_drop(dropped, rel, [i], MISSING_2D)
                continue
            cam_mm = place(smpl_mm[i], a["openpose_gt"][i], a["cam_int"][i], a["S"][i], p["scale_joints"])
            if not np.isfinite(cam_mm).all():
                record_drop(dropped, rel, [i], NO_PNP)
                continue
            if not (cam_mm[:, 2] > 0).all():
                record_drop(dropped, rel, [i], BEHIND)
                continue
            uv = cam.camera_to_image(cam_mm)
            side = (uv.max(axis=0) - uv.min(axis=0)) * p["box_expansion"]
            if side.min() < p["min_box_px"]:
                record_drop(dropped, rel, [i], small)
                continue
            out.append(RawInstance(
                source=name, frame_index=frame_number(name), world_coords=cam.camera_to_world(cam_mm).astype(
                    np.float32), camera=cam, split=split, person_index=person,
                keypoints2d=None))
    return out


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every kept person of the selected splits, train before test, each split in its file's order grouped by image
    (first appearance). An image the annotations name but the raw tree lacks is a RawLayoutError naming it; people
    whose PnP placement fails, lies behind the camera or whose box is too small go to ``dropped``
    (``annotations/<split>.npz#<row>``)."""
    p = check_params(params)
    root = Path(root)
    check_layout(root, p)
    model = load_model(root, p)
    out = []
    for split in splits(p):
        out += _split_instances(root, split, p, model, dropped)
    return out


def provenance(root, params: dict | None = None) -> dict:
    from posebank.core.smpl_model import MODEL_FILE, model_path
    from posebank.core.store import sha256_file

    p = check_params(params)
    folder = model_dir(root, p)
    out = {"body_model": {"model": "smpl", "source": "SPEC-SYN's pose and shape with the neutral SMPL model, "
                                                     "placed by PnP on openpose_gt (posepile)"},
           "body_model_dir": p["body_model_dir"] or None}
    if folder is not None and model_path(folder).is_file():
        out["body_model_files"] = [{"path": MODEL_FILE.format(gender="NEUTRAL"),
                                    "sha256": sha256_file(model_path(folder))}]
    return out


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.spec.fixture.make_fixture`)."""
    from posebank.datasets.spec.fixture import make_fixture as write

    return write(root, seed, **options)


RAW_INSTRUCTIONS = """
    SPEC-SYN is handed out after a registration on SPEC's homepage, https://spec.is.tue.mpg.de (Downloads).
    Download spec-syn.zip and unzip it into the raw folder (posepile: $DATA_ROOT/spec/spec-syn), so that it holds
        annotations/train.npz, annotations/test.npz
        the images, at the paths the npz files' imgname give (relative to the raw folder)
    The 3D joints need the neutral SMPL model (licensed at https://smpl.is.tue.mpg.de) as an npz, in
    <datasets.spec.body_model_dir>/smpl/SMPL_NEUTRAL.npz (default: the raw folder's body_models/; convert the
    release's basicmodel_neutral pickle once with smplx's tools/clean_ch.py and numpy.savez, see
    posebank.core.smpl_model).
"""
