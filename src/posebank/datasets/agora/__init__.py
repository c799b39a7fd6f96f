"""AGORA (Patel et al., CVPR 2021): photo-realistic renders of scanned people placed in Unreal Engine scenes.

Raw layout, as posepile arranges the release's archives (isarandi/posepile, src/posepile/ds/agora/main.sh and
main.py; the same folders in ReFit's lib/datasets/preprocess/agora2spin_bedlam.py, ``train_{i}/<image>``)::

    root/SMPL/{train_0..9,validation_0..9}_withjv.pkl    pandas dataframes with the SMPL joints (train_SMPL.zip,
    root/SMPLX/{train_0..9,validation_0..9}_withjv.pkl   validation_SMPL.zip; ... _SMPLX.zip with SMPL-X joints)
    root/train_0 .. train_9/<imgPath>                    images of dataframe train_i (3840x2160 PNG; the 1280x720
    root/validation/<imgPath>                            release names them <stem>_1280x720.png)
    root/smpl_gt/<...>.pkl, root/smplx_gt/<...>.pkl       per-person fits, at gt_path_smpl / gt_path_smplx with
                                                          .obj -> .pkl, relative to the root
    root/{train,validation}/<scene>/<name>_mask[_camNN]_<number:06d>_<person + 1:05d>.png    person masks
                                                          (train_masks_3840x2160.zip; _00000 is all people)

A dataframe has one row per image (pixelite1201/agora_evaluation, docs/gt_dataframe.md): ``imgPath``, the camera
``camX camY camZ camYaw`` (Unreal centimetres and degrees) and per person lists ``X Y Z Yaw`` (the scan's place),
``gender kid occlusion isValid age ethnicity gt_path_smpl gt_path_smplx``, ``gt_joints_2d`` (3840x2160 pixels),
``gt_joints_3d`` (camera frame, metres) and ``gt_verts``. The SMPL dataframe's joints are the 45 of the ``smplx``
package's SMPL model, the SMPL-X dataframe's its 127 (mmhuman3d, mmhuman3d/data/data_converters/agora.py).
Both dataframes of a section hold the same rows in the same order (posepile reads them side by side).

Camera (agora_evaluation/projection.py ``project_2d``/``project2d``, reproduced exactly): the focal length comes
from the image name (``hdri`` 50 mm, ``cam00``..``cam03`` 18 mm, otherwise 28 mm) on a 36 x 20.25 mm sensor, the
principal point is the image centre (W/2, H/2), no distortion. The camera position is fixed for ``hdri``
(0, 0, 170), ``cam00`` (400, -275, 265), ``cam01`` (400, 225, 265), ``cam02`` (-490, 170, 265), ``cam03``
(-490, -275, 265) and ``ag2`` (0, 0, 170) cm, with yaw 0 / 135 / -135 / -45 / 45 / 0 and pitch 0 / 30 / 30 / 30 /
30 / 15 degrees; for the other scenes it is the dataframe's (camX, camY, camZ, camYaw), pitch 0, and the ground
plane offset (0, -1.7, 0) m is added to it. Unreal's axes become OpenCV-like ones by ``unreal2cv2``
(x, y, z) -> (y, -z, x), centimetres -> metres; a point p of that world is seen at
``R_pitch @ R_yaw @ (p - C)``, ``R_yaw`` = Rodrigues(0, -camYaw, 0), ``R_pitch`` = Rodrigues(pitch, 0, 0), which is
exactly ``gt_joints_3d``; ``gt_joints_2d`` is its pinhole projection. posebank's world frame is that world in mm
(up = -y), as posepile's ``get_camera``: R = R_pitch R_yaw, t = C x 1000, and the world joints are
``R^T gt_joints_3d + C``.

Joints (posepile ``get_joint_info``): the 24 SMPL joints of the SMPL dataframe, then 42 SMPL-X joints of the SMPL-X
dataframe (indices 0-24, 28, 43, 55-66, 68, 71, 73) named with ``_smplx``; 66 in all. Their annotated 2D
positions are the instances' ``keypoints2d``.

Selection as posepile: people with ``isValid`` false or ``occlusion`` above 75 % are left out, and so are people
whose box (the 2D joints inside the image) is under 100 px on its shorter side at 3840x2160 (posepile drops boxes
under 100 px after replacing them with matched detections); each is recorded in ``dropped`` per dataframe and
reason. posepile keeps kids (ReFit leaves them out): ``kids``. The box itself is left to the pipeline (projected
joints, posepile's detection matching through ``detect.per_dataset``). Person masks: the release's amodal mask of
the person (``masks``). Splits: train (train_0..9) and val (validation_0..9); AGORA's test set has no ground truth.

Body model (``body_model``): the person's SMPL-X fit (gender from the dataframe) or SMPL fit (AGORA's SMPL fits are
gender-neutral: agora_evaluation get_smpl_vertices uses the neutral model for all), in the world frame. A fit is
given in the scan's own frame: its points p map into the world as ``M p + T`` with M = Rodrigues(0, Yaw - 90, 0)
diag(1, -1, -1) and T = unreal2cv2(X, Y, Z) (projection.py). posebank rotates the global orientation by M, takes
``root`` (the model's rest pelvis for the betas) as M^T (J0 - T) - transl from the world pelvis J0 of the model's
own ``gt_joints_3d`` (joint 0 posed is rest pelvis + transl), and the world translation J0 - root. Pose order
(SMPL-X): global, 21 body, jaw, left eye, right eye, 15 left-hand, 15 right-hand joints, as posepile's
``load_smplx_params``; the hand poses are as stored, i.e. relative to the SMPL-X hand mean (AGORA's models are
built with ``use_pca=False`` and the default ``flat_hand_mean=False``: agora_evaluation/utils.py ``load_model``;
posepile adds ``hands_mean`` of the model files). SMPL-X expressions are not stored. Kids keep no fit here: their
11th shape coefficient blends in AGORA's kid template, which a plain model lacks.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import numpy as np

from posebank.core.bodymodel import BodyModelFit, axis_angle, gender_name, rodrigues
from posebank.core.camera import Camera
from posebank.core.errors import ParamsError
from posebank.core.settings import check_dataset_params
from posebank.core.skeleton import JointInfo
from posebank.datasets.agora.pickles import load_dataframe, load_fit
from posebank.datasets.base import (
    DatasetInfo,
    Dropped,
    RawFileError,
    RawInstance,
    RawLayoutError,
    check_finite_camera,
)
from posebank.datasets.sampling import record_drop

log = logging.getLogger(__name__)

NAME = "agora"
INFO = DatasetInfo(
    name=NAME,
    full_name="AGORA: Avatars in Geography Optimized for Regression Analysis",
    homepage="https://agora.is.tue.mpg.de/",
    licence=("AGORA Data License: non-commercial scientific research only; register and accept the terms on the "
             "homepage to download (no redistribution). The SMPL / SMPL-X models have their own licences."),
    citation=("P. Patel, C.-H. P. Huang, J. Tesch, D. T. Hoffmann, S. Tripathi, M. J. Black. AGORA: Avatars in "
              "Geography Optimized for Regression Analysis. CVPR 2021."),
)

# ------------------------------------------------------------------------------------------- joints
SMPL_NAMES = ("pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,lelb,relb,"
              "lwri,rwri,lhan,rhan").split(",")
# the 127 joints of the smplx package's SMPL-X model, in posepile's names (ds/agora/main.py get_joint_info)
SMPLX_NAMES = (
    "pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,lelb,relb,lwri,rwri,"
    "jaw,leyehf,reyehf,lindex1,lindex2,lindex3,lmiddle1,lmiddle2,lmiddle3,lpinky1,lpinky2,lpinky3,lring1,lring2,"
    "lring3,lthumb1,lthumb2,lthumb3,rindex1,rindex2,rindex3,rmiddle1,rmiddle2,rmiddle3,rpinky1,rpinky2,rpinky3,"
    "rring1,rring2,rring3,rthumb1,rthumb2,rthumb3,nose,reye,leye,rear,lear,lto2,lto3,lhee,rto2,rto3,rhee,lthu,"
    "lindex,lmiddle,lring,lpinky,rthu,rindex,rmiddle,rring,rpinky,reyebrow1,reyebrow2,reyebrow3,reyebrow4,"
    "reyebrow5,leyebrow5,leyebrow4,leyebrow3,leyebrow2,leyebrow1,nose1,nose2,nose3,nose4,rnose2,rnose1,nosemiddle,"
    "lnose1,lnose2,reye1,reye2,reye3,reye4,reye5,reye6,leye4,leye3,leye2,leye1,leye6,leye5,rmouth1,rmouth2,"
    "rmouth3,mouthtop,lmouth3,lmouth2,lmouth1,lmouth5,lmouth4,mouthbottom,rmouth4,rmouth5,rlip1,rlip2,toplip,llip2,"
    "llip1,llip3,bottomlip,rlip3").split(",")
N_SMPL_JOINTS = 45  # rows of the SMPL dataframe's gt_joints_2d / gt_joints_3d
N_SMPLX_JOINTS = len(SMPLX_NAMES)  # 127
SMPL_SELECTED = tuple(range(24))
SMPLX_SELECTED = (*range(25), 28, 43, *range(55, 67), 68, 71, 73)  # posepile's i_sel_smplx
SMPLX_ROWS = max(SMPLX_SELECTED) + 1  # the SMPL-X dataframe's joints must reach this far
# posepile's edges: the SMPL chains, then the SMPL-X chains on the selected SMPL-X joints (mirrored to the left)
_SMPLX_CHAINS = ("rwri-relb-rsho-rcla-thor,rank-rhee,rto2-rtoe-rto3,"
                 "rear-reye-nose-head-jaw-neck-thor-spin-bell-pelv-rhip-rkne-rank-rtoe")
JOINT_INFO = JointInfo(
    [*SMPL_NAMES, *(f"{SMPLX_NAMES[i]}_smplx" for i in SMPLX_SELECTED)],
    "rhan-rwri-relb-rsho-rcla-thor,head-neck-thor-spin-bell-pelv-rhip-rkne-rank-rtoe,"
    + ",".join("-".join(f"{n}_smplx" for n in chain.split("-")) for chain in _SMPLX_CHAINS.split(",")))
WORLD_UP = (0.0, -1.0, 0.0)

# ------------------------------------------------------------------------------------------- release
SPLITS = ("train", "val")
SPLIT_PREFIX = {"train": "train", "val": "validation"}
N_DATAFRAMES = 10
RESOLUTIONS = {"3840x2160": (3840, 2160), "1280x720": (1280, 720)}
FULL_WIDTH = 3840  # gt_joints_2d are in 3840x2160 pixels at every resolution (docs/gt_dataframe.md)
SENSOR_MM = (36.0, 20.25)
BODY_MODELS = ("smplx", "smpl", "none")
PERSON_COLUMNS = ("X", "Y", "Z", "Yaw", "gender", "kid", "occlusion", "isValid", "gt_path_smpl", "gt_path_smplx",
                  "gt_joints_2d", "gt_joints_3d")
FRAME_COLUMNS = ("imgPath", "camX", "camY", "camZ", "camYaw")
SHARD_KEY = ("sequence",)  # scenes; a frame shows several people

DEFAULT_PARAMS = {
    "splits": list(SPLITS),
    "dataframes": list(range(N_DATAFRAMES)),
    "resolution": "3840x2160",
    "body_model": "smplx",
    "kids": True,
    "max_occlusion": 75.0,
    "min_box_px": 100.0,
    "masks": True,
}
INVALID = "isValid is false (AGORA's own flag: occlusion outside 0-90 %)"
KID = "a kid (datasets.agora.kids is false)"


def occluded_reason(max_occlusion: float) -> str:
    return f"more than {max_occlusion:g} % occluded"


def small_reason(min_box_px: float) -> str:
    return f"box of the 2D joints inside the image under {min_box_px:g} px (3840x2160 pixels)"


# ------------------------------------------------------------------------------------------- params, layout
def check_params(params: dict | None) -> dict:
    """``params`` over DEFAULT_PARAMS, checked; ParamsError names the key."""
    p = check_dataset_params(NAME, params, DEFAULT_PARAMS)
    if not p["splits"] or any(s not in SPLITS for s in p["splits"]) or len(set(p["splits"])) != len(p["splits"]):
        raise ParamsError(f"datasets.{NAME}.splits", f"must be distinct splits of {', '.join(SPLITS)}, got "
                                                    f"{p['splits']}")
    d = p["dataframes"]
    if (not d or any(not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < N_DATAFRAMES for i in d)
            or len(set(d)) != len(d)):
        raise ParamsError(f"datasets.{NAME}.dataframes", f"must be distinct integers 0..{N_DATAFRAMES - 1} (the "
                                                        f"train_<i> / validation_<i> dataframes), got {d}")
    for key, allowed in (("resolution", tuple(RESOLUTIONS)), ("body_model", BODY_MODELS)):
        if p[key] not in allowed:
            raise ParamsError(f"datasets.{NAME}.{key}", f"must be one of {', '.join(allowed)}, got {p[key]!r}")
    if not 0 <= p["max_occlusion"] <= 100:
        raise ParamsError(f"datasets.{NAME}.max_occlusion", f"must be a percentage 0..100, got {p['max_occlusion']}")
    if p["min_box_px"] < 0:
        raise ParamsError(f"datasets.{NAME}.min_box_px", f"must be >= 0, got {p['min_box_px']}")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    p = check_params(params)
    return tuple(s for s in SPLITS if s in p["splits"])


@dataclasses.dataclass(frozen=True)
class Section:
    split: str
    index: int

    @property
    def name(self) -> str:
        return f"{SPLIT_PREFIX[self.split]}_{self.index}"

    @property
    def smpl(self) -> str:
        return f"SMPL/{self.name}_withjv.pkl"

    @property
    def smplx(self) -> str:
        return f"SMPLX/{self.name}_withjv.pkl"

    @property
    def image_folder(self) -> str:
        # posepile main.py: image_subdir = section if 'train' in section else 'validation'
        return self.name if self.split == "train" else "validation"


def sections(p: dict) -> list[Section]:
    return [Section(s, i) for s in SPLITS if s in p["splits"] for i in sorted(p["dataframes"])]


def check_layout(root, params: dict | None = None) -> list[Section]:
    """The dataframes the params select must exist (images, fits and masks are checked by :func:`instances`,
    which reads the dataframes naming them)."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    secs = sections(p)
    missing = [f for s in secs for f in (s.smpl, s.smplx) if not (root / f).is_file()]
    if missing:
        raise RawLayoutError(NAME, root, missing)
    return secs


# ------------------------------------------------------------------------------------------- names
_IMAGE = re.compile(r"(?P<name>(?P<scene>.+?)_(\d+mm_)?(5_10|5_15))(?P<cam>(_cam\d+)?)_(?P<num>\d+)\.png")


def image_name(img_path: str, resolution: str) -> str:
    """The file name of a dataframe ``imgPath`` at a resolution (agora_evaluation projection.py: the 1280x720
    images are ``<stem>_1280x720.png``)."""
    if resolution == "1280x720" and not img_path.endswith("_1280x720.png"):
        return img_path[: -len(".png")] + "_1280x720.png"
    return img_path


def parse_image_name(img_path: str, where) -> re.Match:
    m = _IMAGE.fullmatch(img_path)
    if m is None:
        raise RawFileError(where, f"imgPath {img_path!r} is not an AGORA image name "
                                  "(<scene>_[<f>mm_]5_10|5_15[_camNN]_<number>.png)")
    return m


def mask_name(img_path: str, person: int, resolution: str, where) -> str:
    """The release's mask of person ``person`` (-1: all people) of an image, relative to the root (posepile
    image_filename_to_mask_path; agora_evaluation find_corresponding_masks.py getPersonMaskPath)."""
    m = parse_image_name(img_path, where)
    phase = "train" if "trainset" in img_path else "validation" if "validationset" in img_path else "test"
    ending = "_1280x720.png" if resolution == "1280x720" else ".png"
    return (f"{phase}/{m['scene']}/{m['name']}_mask{m['cam']}_{int(m['num']):06d}_{person + 1:05d}{ending}")


# ------------------------------------------------------------------------------------------- geometry
def unreal2cv2(points) -> np.ndarray:
    """Unreal (x forward, y right, z up) to AGORA's OpenCV-like axes: (x, y, z) -> (y, -z, x) (projection.py)."""
    p = np.asarray(points, np.float64)
    return np.stack([p[..., 1], -p[..., 2], p[..., 0]], axis=-1)


@dataclasses.dataclass(frozen=True)
class SceneCamera:
    focal_mm: float
    position_cm: tuple[float, float, float]
    yaw_deg: float
    pitch_deg: float
    ground_m: tuple[float, float, float]


_FIXED = (  # name part -> (focal mm, position cm, yaw, pitch): agora_evaluation projection.py project_2d
    ("hdri", 50.0, (0.0, 0.0, 170.0), 0.0, 0.0),
    ("cam00", 18.0, (400.0, -275.0, 265.0), 135.0, 30.0),
    ("cam01", 18.0, (400.0, 225.0, 265.0), -135.0, 30.0),
    ("cam02", 18.0, (-490.0, 170.0, 265.0), -45.0, 30.0),
    ("cam03", 18.0, (-490.0, -275.0, 265.0), 45.0, 30.0),
    ("ag2", 28.0, (0.0, 0.0, 170.0), 0.0, 15.0),
)


def scene_camera(img_path: str, cam_x, cam_y, cam_z, cam_yaw) -> SceneCamera:
    """The camera settings AGORA's projection uses for an image (first matching name part, as projection.py)."""
    for part, focal, position, yaw, pitch in _FIXED:
        if part in img_path:
            return SceneCamera(focal, position, yaw, pitch, (0.0, 0.0, 0.0))
    return SceneCamera(28.0, (float(cam_x), float(cam_y), float(cam_z)), float(cam_yaw), 0.0, (0.0, -1.7, 0.0))


def rotation_y(deg: float) -> np.ndarray:
    return rodrigues(np.array([0.0, np.deg2rad(deg), 0.0]))


def make_camera(scene: SceneCamera, size: tuple[int, int]) -> Camera:
    """posebank's camera (mm, world = AGORA's OpenCV-like world) of an AGORA image of ``size`` (W, H)."""
    w, h = size
    fx = scene.focal_mm / SENSOR_MM[0] * w  # focalLength_mm2px(f, 36, cx) = f / 36 * cx * 2
    fy = scene.focal_mm / SENSOR_MM[1] * h
    k = [[fx, 0.0, w / 2], [0.0, fy, h / 2], [0.0, 0.0, 1.0]]
    rot = rodrigues(np.array([np.deg2rad(scene.pitch_deg), 0.0, 0.0])) @ rotation_y(-scene.yaw_deg)
    center_m = unreal2cv2(np.asarray(scene.position_cm) / 100) + np.asarray(scene.ground_m)
    return Camera(intrinsic_matrix=k, R=rot, t=center_m * 1000.0, world_up=WORLD_UP)


def person_transform(yaw_deg: float, x_cm: float, y_cm: float, z_cm: float) -> tuple[np.ndarray, np.ndarray]:
    """(M, T) placing a fit's points in the world (metres): ``M p + T`` (projection.py: smpl2opencv, the yaw
    rotation Rodrigues(0, Yaw - 90, 0), then the scan's location)."""
    m = rotation_y(yaw_deg - 90.0) @ np.diag([1.0, -1.0, -1.0])
    return m, unreal2cv2(np.array([x_cm, y_cm, z_cm], np.float64) / 100)


# ------------------------------------------------------------------------------------------- fits
SMPLX_POSE_KEYS = ("global_orient", "body_pose", "jaw_pose", "leye_pose", "reye_pose", "left_hand_pose",
                   "right_hand_pose")
SMPLX_SIZES = {"global_orient": 3, "body_pose": 63, "jaw_pose": 3, "leye_pose": 3, "reye_pose": 3,
               "left_hand_pose": 45, "right_hand_pose": 45, "transl": 3}
SMPL_SIZES = {"root_pose": 3, "body_pose": 69, "translation": 3}


def _fit_value(fit: dict, key: str, size: int | None, where) -> np.ndarray:
    if key not in fit:
        raise RawFileError(where, f"fit has no {key!r} (has {sorted(fit)})")
    try:
        v = np.asarray(fit[key], np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise RawFileError(where, f"fit's {key!r} is not numeric") from None
    if (size is not None and v.size != size) or (size is None and not 1 <= v.size <= 16):
        raise RawFileError(where, f"fit's {key!r} has {v.size} values, expected {size or '1..16'}")
    if not np.all(np.isfinite(v)):
        raise RawFileError(where, f"fit's {key!r} has non-finite values")
    return v


def read_fit(path, model: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pose, betas, transl) of one fit file in the fit's own frame; pose in posebank's order for ``model``."""
    fit = load_fit(path)
    if model == "smplx":
        pose = np.concatenate([_fit_value(fit, k, SMPLX_SIZES[k], path) for k in SMPLX_POSE_KEYS])
        return pose, _fit_value(fit, "betas", None, path), _fit_value(fit, "transl", 3, path)
    pose = np.concatenate([_fit_value(fit, k, SMPL_SIZES[k], path) for k in ("root_pose", "body_pose")])
    return pose, _fit_value(fit, "betas", None, path), _fit_value(fit, "translation", 3, path)


def fit_to_world(model: str, gender: str, pose, betas, transl, m: np.ndarray, t: np.ndarray,
                 root_world_m: np.ndarray) -> BodyModelFit:
    """A fit of the scan's frame moved into the world (module docstring): orientation M R, root from the world
    pelvis, translation J0 - root."""
    pose = np.array(pose, np.float64)
    root = m.T @ (root_world_m - t) - np.asarray(transl, np.float64)
    pose[:3] = axis_angle(m @ rodrigues(pose[:3]))
    return BodyModelFit(model, gender, pose, betas, root_world_m - root, root=root)


# ------------------------------------------------------------------------------------------- dataframes
@dataclasses.dataclass
class Person:
    valid: bool
    occlusion: float
    kid: bool
    gender: str
    yaw: float
    location_cm: tuple[float, float, float]
    fit_smpl: str
    fit_smplx: str
    joints2d: np.ndarray  # (66, 2) 3840x2160 pixels
    joints3d_cam: np.ndarray  # (66, 3) metres, camera frame
    root_smpl_cam: np.ndarray  # (3,) metres: joint 0 of the SMPL dataframe
    root_smplx_cam: np.ndarray  # (3,) metres: joint 0 of the SMPL-X dataframe


@dataclasses.dataclass
class Row:
    img_path: str
    scene: SceneCamera
    people: list[Person]


def _column(df, name: str, where):
    if name not in df.columns:
        raise RawFileError(where, f"dataframe has no column {name!r} (has {', '.join(map(str, df.columns))})")
    return df[name].tolist()


def _joints(value, n: int, dim: int, where, what: str) -> np.ndarray:
    try:
        a = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        raise RawFileError(where, f"{what} is not numeric") from None
    if a.ndim != 2 or a.shape[0] < n or a.shape[1] != dim:
        raise RawFileError(where, f"{what} has shape {a.shape}, expected ({n}, {dim}) or more rows")
    if not np.all(np.isfinite(a)):
        raise RawFileError(where, f"{what} has non-finite values")
    return a


def _lists(df, names, n_rows: int, where) -> dict[str, list]:
    out = {}
    for name in names:
        values = _column(df, name, where)
        if len(values) != n_rows:
            raise RawFileError(where, f"column {name!r} has {len(values)} rows, expected {n_rows}")
        out[name] = values
    return out


def read_section(root: Path, section: Section) -> list[Row]:
    """The rows of one section from its SMPL and SMPL-X dataframes (the same images in the same order)."""
    where_smpl, where_smplx = root / section.smpl, root / section.smplx
    smpl, smplx = load_dataframe(where_smpl), load_dataframe(where_smplx)
    n = len(smpl)
    if len(smplx) != n:
        raise RawFileError(where_smplx, f"has {len(smplx)} rows but {section.smpl} has {n}")
    a = _lists(smpl, FRAME_COLUMNS + PERSON_COLUMNS, n, where_smpl)
    b = _lists(smplx, ("imgPath", "isValid", "gt_joints_2d", "gt_joints_3d"), n, where_smplx)
    rows = []
    for i in range(n):
        img = a["imgPath"][i]
        if not isinstance(img, str) or img != b["imgPath"][i]:
            raise RawFileError(where_smplx, f"row {i}: imgPath {b['imgPath'][i]!r} differs from {section.smpl}'s "
                                            f"{img!r}")
        parse_image_name(img, where_smpl)
        try:
            cam = [float(a[k][i]) for k in ("camX", "camY", "camZ", "camYaw")]
            per = {k: list(a[k][i]) for k in PERSON_COLUMNS}
            n_people = len(per["isValid"])
            if len(b["isValid"][i]) != n_people or len(b["gt_joints_3d"][i]) != n_people \
                    or len(b["gt_joints_2d"][i]) != n_people:
                raise RawFileError(where_smplx, f"row {i} ({img}): another number of people than {section.smpl}")
        except (TypeError, ValueError):
            raise RawFileError(where_smpl, f"row {i} ({img}): camera or per-person columns are malformed") from None
        bad = [k for k in PERSON_COLUMNS if len(per[k]) != n_people]
        if bad:
            raise RawFileError(where_smpl, f"row {i} ({img}): {', '.join(bad)} do not list {n_people} people")
        people = []
        for p in range(n_people):
            at = f"row {i} ({img}) person {p}"
            j2a = _joints(per["gt_joints_2d"][p], 24, 2, where_smpl, f"{at}: gt_joints_2d")
            j3a = _joints(per["gt_joints_3d"][p], 24, 3, where_smpl, f"{at}: gt_joints_3d")
            j2b = _joints(b["gt_joints_2d"][i][p], SMPLX_ROWS, 2, where_smplx, f"{at}: gt_joints_2d")
            j3b = _joints(b["gt_joints_3d"][i][p], SMPLX_ROWS, 3, where_smplx, f"{at}: gt_joints_3d")
            try:
                loc = tuple(float(per[k][p]) for k in ("X", "Y", "Z"))
                person = Person(
                    valid=bool(per["isValid"][p]), occlusion=float(per["occlusion"][p]), kid=bool(per["kid"][p]),
                    gender=str(per["gender"][p]), yaw=float(per["Yaw"][p]), location_cm=loc,
                    fit_smpl=str(per["gt_path_smpl"][p]), fit_smplx=str(per["gt_path_smplx"][p]),
                    joints2d=np.concatenate([j2a[list(SMPL_SELECTED)], j2b[list(SMPLX_SELECTED)]]),
                    joints3d_cam=np.concatenate([j3a[list(SMPL_SELECTED)], j3b[list(SMPLX_SELECTED)]]),
                    root_smpl_cam=j3a[0], root_smplx_cam=j3b[0])
            except (TypeError, ValueError):
                raise RawFileError(where_smpl, f"{at}: a per-person value is malformed") from None
            people.append(person)
        rows.append(Row(img, scene_camera(img, *cam), people))
    return rows


# ------------------------------------------------------------------------------------------- instances
def _box_side_4k(joints2d_px: np.ndarray, size: tuple[int, int]) -> float:
    """Shorter side, in 3840x2160 pixels, of the box of the 2D joints clipped to the image."""
    w, h = size
    x = np.clip(joints2d_px[:, 0], 0, w)
    y = np.clip(joints2d_px[:, 1], 0, h)
    return float(min(np.ptp(x), np.ptp(y)) * FULL_WIDTH / w)


def _subject(fit_path: str) -> str:
    return Path(fit_path.replace("\\", "/")).stem


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected person, by split, dataframe, row and person; people left out are appended to ``dropped``
    (one entry per dataframe and reason). Missing images, fits or masks of selected people are a RawLayoutError."""
    p = check_params(params)
    root = Path(root)
    size = RESOLUTIONS[p["resolution"]]
    scale = size[0] / FULL_WIDTH
    model = p["body_model"]
    out: list[RawInstance] = []
    missing: list[str] = []
    for section in check_layout(root, p):
        rows = read_section(root, section)
        left_out: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            camera = make_camera(row.scene, size)
            check_finite_camera(camera, root / section.smpl)
            source = f"{section.image_folder}/{image_name(row.img_path, p['resolution'])}"
            if not (root / source).is_file():
                missing.append(source)
            m = parse_image_name(row.img_path, root / section.smpl)
            for k, person in enumerate(row.people):
                reason = None
                if not person.valid:
                    reason = INVALID
                elif person.occlusion > p["max_occlusion"]:
                    reason = occluded_reason(p["max_occlusion"])
                elif person.kid and not p["kids"]:
                    reason = KID
                elif _box_side_4k(person.joints2d * scale, size) < p["min_box_px"]:
                    reason = small_reason(p["min_box_px"])
                if reason is not None:
                    left_out.setdefault(reason, []).append(i)
                    continue
                world_m = person.joints3d_cam @ camera.R + camera.t / 1000  # R^T x + C, metres
                fit = None
                if model != "none" and not person.kid:
                    rel = (person.fit_smplx if model == "smplx" else person.fit_smpl)
                    rel = rel[: -len(".obj")] + ".pkl" if rel.endswith(".obj") else rel
                    if not (root / rel).is_file():
                        missing.append(rel)
                    else:
                        pose, betas, transl = read_fit(root / rel, model)
                        gender = "neutral"
                        if model == "smplx":
                            try:
                                gender = gender_name(person.gender)
                            except ValueError as e:
                                raise RawFileError(root / section.smpl, f"row {i} person {k}: {e}") from None
                        root_cam = person.root_smplx_cam if model == "smplx" else person.root_smpl_cam
                        mt = person_transform(person.yaw, *person.location_cm)
                        fit = fit_to_world(model, gender, pose, betas, transl, *mt,
                                           root_cam @ camera.R + camera.t / 1000)
                mask = None
                if p["masks"]:
                    mask = mask_name(row.img_path, k, p["resolution"], root / section.smpl)
                    if not (root / mask).is_file():
                        missing.append(mask)
                out.append(RawInstance(
                    source=source, frame_index=int(m["num"]), world_coords=world_m * 1000.0, camera=camera,
                    split=section.split, subject=_subject(person.fit_smplx), sequence=m["name"],
                    camera_name=(m["cam"] or "")[1:], mask_source=mask, person_index=k,
                    keypoints2d=person.joints2d * scale, body_model=fit))
        for reason, row_ids in left_out.items():
            record_drop(dropped, section.smpl, row_ids, reason)
    if missing:
        raise RawLayoutError(NAME, root, sorted(set(missing)))
    return out


def provenance(root, params: dict | None = None) -> dict:
    """Where the body-model fits come from (stored with the cache)."""
    p = check_params(params)
    if p["body_model"] == "none":
        return {}
    notes = ["world frame: the scan's yaw and location applied (agora_evaluation projection.py); root from the "
             "dataframe's pelvis joint", "kids carry no fit (AGORA's kid template is needed)"]
    if p["body_model"] == "smplx":
        notes += ["hand poses relative to the SMPL-X hand mean (flat_hand_mean=False); add the model's hands_mean "
                  "for absolute hand poses", "expressions not stored"]
        source, gender = "AGORA's SMPL-X fits", "from the dataframe"
    else:
        source, gender = "AGORA's SMPL fits", "neutral (AGORA's SMPL fits are gender-neutral)"
    return {"body_model": {"model": p["body_model"], "source": source, "gender": gender, "notes": notes}}


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.agora.fixture.make_fixture`)."""
    from posebank.datasets.agora.fixture import make_fixture as write

    return write(root, seed, **options)


# ------------------------------------------------------------------------------------------- downloads
# No direct download: the release is handed out after a registration.
RAW_INSTRUCTIONS = """
    AGORA is handed out after a registration on its homepage. Download the ground-truth dataframes with SMPL and
    SMPL-X joints (train_SMPL.zip, validation_SMPL.zip, train_SMPLX.zip, validation_SMPLX.zip), the images at the
    resolution params.yaml selects (3840x2160, or 1280x720), the per-person fits (smpl_gt, smplx_gt) and, with
    masks: true, the person masks (train_masks_3840x2160.zip, and the validation ones). Arrange them as posepile's
    ds/agora/main.sh does:
        SMPL/<train_0..9, validation_0..9>_withjv.pkl
        SMPLX/<train_0..9, validation_0..9>_withjv.pkl
        train_<i>/<image>.png, validation/<image>.png          the images of each dataframe
        smpl_gt/..., smplx_gt/...                              the fits, at the dataframes' gt_path_smpl(x)
        train/<scene>/<mask>.png, validation/<scene>/<mask>.png   the masks
"""
