"""BEDLAM (Black et al., CVPR 2023): SMPL-X bodies with simulated clothing and hair, rendered with Unreal Engine 5.

Raw layout (``root`` holds the label folder and one folder per scene; names as the releases unpack)::

    root/all_npz_12_training/<scene>_6fps.npz        labels of one scene (``all_npz_12_training.zip``); three scenes
                                                      (``..._batch01handhair_...``) have ``<scene>_30fps.npz``
    root/<scene>_6fps/png/seq_NNNNNN/seq_NNNNNN_FFFF.png    images of the labelled frames (``bedlam_images_train/
                                                      <scene>_6fps.tar``), or
    root/<scene>/png/seq_NNNNNN/seq_NNNNNN_FFFF.png   every 30 fps frame (the ``-png`` release archives)
    root/<scene>/mp4/seq_NNNNNN.mp4                   the sequences as videos (``images: mp4``, as posepile reads)
    root/<scene>/masks/seq_NNNNNN/seq_NNNNNN_FFFF_env.png   optional: 255 = environment, 0 = any person

The label files and image folders are those of BEDLAM's training code (pixelite1201/BEDLAM, train/core/config.py:
``data/training_labels/all_npz_12_training/<scene>_6fps.npz``, ``data/training_images/<scene>_6fps/png``; ReFit's
lib/datasets/preprocess/bedlam2spin.py joins ``<scene>_6fps/png/<imgname>`` too); ``mp4/`` and ``masks/`` are
posepile's (src/posepile/ds/bedlam/main.py:72, 93-95) and bedlam_render's post-render pipeline
(PerceivingSystems/bedlam_render, tools/post_render_pipeline/be_post_render_pipeline.sh,
exr_save_depth_masks.py: ``masks/<seq>/<seq>_<frame>_env.png``). Label files of other datasets in the same folder
(``agora-bfh.npz``) are ignored: a scene's file name starts with its 8-digit date (posepile takes the files
starting with ``2022``, main.py:30-32). A scene with both a 6 fps and a 30 fps file is read from the 6 fps one
(posepile, main.py:43-48). One scene's label file is named ``20221020-3-8_...`` while its folders in the full
release are ``20221020_3-8_...`` (posepile's main.sh renames the label file): the scene folder is looked up under
both spellings.

Labels (:mod:`.labels`): per person and frame the neutral SMPL-X fit (``pose_world`` 165, ``shape`` 11 betas,
``trans_world``), the camera (``cam_int``, ``cam_ext`` world -> camera, metres) and ``gtkps``, BEDLAM's projection
of the 127 joints of ``smplx.SMPLX`` (the first 55 are the skeleton joints).

World frame and cameras. ``cam_ext`` = [R | T] maps the world into the OpenCV camera (p_cam = R p_world + T);
posebank's camera is ``R`` with the optical centre ``-R^T T`` (x 1000, mm), ``K = cam_int``, no distortion, world
up = -y (posepile: ``Camera(intrinsic_matrix=cam_int, extrinsic_matrix=cam_ext, world_up=(0, -1, 0))``, t x 1000).
BEDLAM's world is per person and frame (df_full_body.py:292-314): its origin is the person's placement in the
Unreal scene, y points down (Unreal z up), and its axes turn with the camera's yaw (R holds only the camera's pitch
and roll); people of one frame therefore have different world frames and cameras (same K and R, another centre).
Every instance carries its own camera, so nothing relies on a shared frame.

Closeup scenes are portrait images: Unreal rendered them 1280 x 720 with the camera rolled by 90 degrees, and the
labels describe the upright 720 x 1280 image (df_full_body.py:434-439: sensor 20.25 x 36 mm, ``cam_roll + 90``,
principal point (360, 640)). The PNGs and the masks are stored as rendered (landscape); BEDLAM's loaders turn them
by 90 degrees clockwise (train/dataset/dataset.py ``cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE)`` for ``closeup``
scenes; posepile ``np.rot90(mask, -1)`` for the masks), while the mp4 videos are already portrait
(bedlam_render create_movies_from_images.py: ffmpeg ``transpose=clock`` when rotating; posepile turns no video
frame). posebank decides per scene from the labels, as ReFit does (lib/datasets/base_dataset.py:310-312: a
principal point x of 360 with an image that is not 720 wide): an image (or mask) whose orientation differs from
the labels' (portrait when cx < cy) is turned 90 degrees clockwise, and must then be 2 cx x 2 cy pixels. This is
BEDLAM's rule for every scene its processing script marks ``closeup``, and posepile's for the videos and masks.

Joints. The 55 SMPL-X skeleton joints, posepile's names (src/posepile/ds/agora/main.py ``get_joint_info``: the first
55 of its SMPL-X names) in smplx's order, posed with the ``smplx`` package from the fits when ``body_model_dir``
names a folder with ``smplx/SMPLX_NEUTRAL.npz`` (:mod:`posebank.core.smplx_model`; millimetres, BEDLAM's world). The
model is licensed and never bundled; without it the 3D joints are absent (NaN), and the examples keep ``keypoints2d`` =
``gtkps[:55]`` in the raw image, the cameras and the fits. posepile stores no joints for BEDLAM at all (its
JointInfo is empty and world_coords has no joints, main.py:39, 134), only the fits; it poses them for the pose
sampler and the box.

Fits. ``BodyModelFit('smplx', 'neutral', pose_world, shape, trans_world)`` in BEDLAM's world, ``root`` (the rest
pelvis for the betas) when the body model is configured. The neutral model is the one the parameters belong to (see
:mod:`.labels`); the label file's ``gender`` names the rendered subject, and a gendered model would place the joints
elsewhere than ``gtkps`` shows them (posepile too poses them with ``gender='neutral'``).

Selection, as posepile's ds/bedlam/main.py: every label row (the 6 fps files hold every 5th frame; ``frame_step``
keeps the frames whose number is a multiple, 1 = all as posepile, 5 turns the 30 fps scenes into 6 fps too), then
per sequence (all its people) the adaptive pose sampler over the camera-frame joints: a pose is kept when it is at
least ``adaptive_sampling_mm`` away (its farthest joint) from each of the last ``sampler_memory`` kept poses
(posepile's ``AdaptivePoseSampler2(100, True, True, 100)``, main.py:76-77, 120); the sampler needs the 3D joints and
is off without a body model. The box is posepile's: the tight box of the 55 projected joints (``gtkps[:55]``) x
1.05; posepile then replaces it by a matched detection (IoU >= 0.5, else the person is dropped; main.py:163-175) and
leaves out boxes with a side under 100 px (main.py:148), which posebank applies to its box (``min_box_px``; the
detect stage does the matching). Dropped and counted (per label file, ``#row`` for one row): rows with non-finite
values, rows whose image (or video) is not in the raw tree, and boxes under ``min_box_px``. The mask of every person
of a frame is the frame's person mask (``_env.png == 0``, all people), as posepile's. Everything is ``train``
(posepile's whole BEDLAM is training data).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from posebank.core.bodymodel import BodyModelFit
from posebank.core.camera import Camera
from posebank.core.errors import ParamsError
from posebank.core.settings import check_dataset_params
from posebank.core.skeleton import JointInfo
from posebank.datasets.base import (
    DatasetInfo,
    Dropped,
    Frame,
    RawFileError,
    RawInstance,
    RawLayoutError,
    check_finite_camera,
)
from posebank.datasets.bedlam.labels import N_SKELETON, Labels, read_labels
from posebank.datasets.sampling import AdaptivePoseSampler2, record_drop

log = logging.getLogger(__name__)

NAME = "bedlam"
INFO = DatasetInfo(
    name=NAME,
    full_name="BEDLAM",
    homepage="https://bedlam.is.tue.mpg.de",
    licence=("BEDLAM license (https://bedlam.is.tue.mpg.de/license.html): non-commercial scientific research only; "
             "register on the homepage to download, no redistribution. The SMPL-X model has its own licence "
             "(https://smpl-x.is.tue.mpg.de)."),
    citation=("M. J. Black, P. Patel, J. Tesch, J. Yang. BEDLAM: A Synthetic Dataset of Bodies Exhibiting Detailed "
              "Lifelike Animated Motion. CVPR 2023."),
)

LABEL_DIR = "all_npz_12_training"
_LABEL_FILE = re.compile(r"(?P<scene>\d{8}.*)_(?P<fps>\d+)fps\.npz")
FPS_PREFERENCE = (6, 30)  # posepile reads <scene>_6fps.npz, else <scene>_30fps.npz
WORLD_UP = (0.0, -1.0, 0.0)
BOX_EXPANSION = 1.05  # posepile: boxlib.expand(bb_of_points(projected joints), 1.05)

# posepile's SMPL-X joint names (src/posepile/ds/agora/main.py get_joint_info), the 55 skeleton joints
SMPLX_JOINT_NAMES = (
    "pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,lelb,relb,lwri,"
    "rwri,jaw,leyehf,reyehf,lindex1,lindex2,lindex3,lmiddle1,lmiddle2,lmiddle3,lpinky1,lpinky2,lpinky3,lring1,"
    "lring2,lring3,lthumb1,lthumb2,lthumb3,rindex1,rindex2,rindex3,rmiddle1,rmiddle2,rmiddle3,rpinky1,rpinky2,"
    "rpinky3,rring1,rring2,rring3,rthumb1,rthumb2,rthumb3").split(",")
# SMPL-X's kinematic tree (the kintree_table of the SMPL-X model files; smplx joint_names.py order)
SMPLX_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15,
                 20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38,
                 21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53)
JOINT_INFO = JointInfo(
    SMPLX_JOINT_NAMES,
    "rwri-relb-rsho-rcla-thor,head-neck-thor-spin-bell-pelv-rhip-rkne-rank-rtoe,jaw-head-reyehf,"
    "rwri-rindex1-rindex2-rindex3,rwri-rmiddle1-rmiddle2-rmiddle3,rwri-rpinky1-rpinky2-rpinky3,"
    "rwri-rring1-rring2-rring3,rwri-rthumb1-rthumb2-rthumb3")
SPLITS = ("train",)
IMAGE_KINDS = ("png", "mp4")
# a scene is one render batch (one camera set-up); a scene too big for a shard is cut into equal parts
SHARD_KEY = ("camera_name",)

DEFAULT_PARAMS = {
    "scenes": [],  # scene names (label files without _6fps.npz); [] = every scene of all_npz_12_training
    "images": "png",
    "frame_step": 1,
    "adaptive_sampling_mm": 100.0,
    "sampler_memory": 100,
    "min_box_px": 100.0,
    "masks": True,
    "body_model_dir": "",  # "" or null: no body model, no 3D joints
}
NONFINITE = "non-finite values in the label row (parameters, camera or skeleton keypoints)"
NO_IMAGE = "the label row's image (or video) is not in the raw tree"
SMALL_BOX = "person box (tight box of the 55 joints x 1.05) smaller than min_box_px on a side (posepile: 100 px)"


# ------------------------------------------------------------------------------------------- params, layout
def check_params(params: dict | None = None) -> dict:
    """``params`` over DEFAULT_PARAMS, checked; ParamsError names the key."""
    given = dict(params or {}) if params is None or isinstance(params, dict) else params
    if isinstance(given, dict) and "body_model_dir" in given and given["body_model_dir"] is None:
        given["body_model_dir"] = ""  # params.yaml's null
    p = check_dataset_params(NAME, given, DEFAULT_PARAMS)
    where = f"datasets.{NAME}"
    if not all(isinstance(s, str) and s for s in p["scenes"]) or len(set(p["scenes"])) != len(p["scenes"]):
        raise ParamsError(f"{where}.scenes", f"must be distinct scene names (label files without _6fps.npz), got "
                                             f"{p['scenes']}")
    if p["images"] not in IMAGE_KINDS:
        raise ParamsError(f"{where}.images", f"must be one of {', '.join(IMAGE_KINDS)}, got {p['images']!r}")
    if p["frame_step"] < 1:
        raise ParamsError(f"{where}.frame_step", f"must be a positive integer, got {p['frame_step']}")
    if p["adaptive_sampling_mm"] < 0:
        raise ParamsError(f"{where}.adaptive_sampling_mm", f"must be >= 0, got {p['adaptive_sampling_mm']}")
    if p["sampler_memory"] < 1:
        raise ParamsError(f"{where}.sampler_memory", f"must be at least 1, got {p['sampler_memory']}")
    if p["min_box_px"] < 0:
        raise ParamsError(f"{where}.min_box_px", f"must be >= 0, got {p['min_box_px']}")
    if p["body_model_dir"]:
        from posebank.core.smplx_model import model_path

        if not model_path(p["body_model_dir"]).is_file():
            raise ParamsError(f"{where}.body_model_dir", f"no {model_path(p['body_model_dir'])}: the folder must hold "
                                                         "smplx/SMPLX_NEUTRAL.npz (the SMPL-X v1.1 model, as "
                                                         "smplx.create reads it)")
    return p


def splits(params: dict | None = None) -> tuple[str, ...]:
    check_params(params)
    return SPLITS


@dataclasses.dataclass(frozen=True)
class Scene:
    name: str  # e.g. 20221010_3_1000_batch01hand
    fps: int  # of the label file (6: every 5th frame)
    labels: str  # relative to the raw root
    images: str  # the folder of the PNG sequence folders, or of the mp4 videos, relative to the raw root
    masks: str | None  # <scene>/masks when present (and masks are used)

    def source(self, labels: Labels, row: int, kind: str) -> str:
        if kind == "mp4":
            return f"{self.images}/{labels.sequence[row]}.mp4"
        return f"{self.images}/{labels.imgname[row]}"


def scene_folders(name: str) -> list[str]:
    """The scene's folder names in the full release: its own, and with ``_`` after the date for the one label
    file spelt ``20221020-3-8_...`` (posepile's main.sh renames that file to its folders' spelling)."""
    out = [name]
    if name[8:9] == "-":
        out.append(f"{name[:8]}_{name[9:]}")
    return out


def check_layout(root, params: dict | None = None) -> list[Scene]:
    """Verify that the raw tree holds what the conversion needs; returns the selected scenes, sorted by name."""
    p = check_params(params)
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError(NAME, root, "the folder itself")
    label_dir = root / LABEL_DIR
    if not label_dir.is_dir():
        raise RawLayoutError(NAME, root, f"{LABEL_DIR}/ (the label files <scene>_6fps.npz)")
    found: dict[str, dict[int, str]] = {}
    for f in sorted(label_dir.iterdir()):
        m = _LABEL_FILE.fullmatch(f.name)
        if m and f.is_file():
            found.setdefault(m["scene"], {})[int(m["fps"])] = f.name
    wanted = p["scenes"] or sorted(found)
    missing = [] if wanted else [f"{LABEL_DIR}/<scene>_6fps.npz (no BEDLAM label file)"]
    scenes = []
    for name in sorted(wanted):
        files = found.get(name)
        if not files:
            missing.append(f"{LABEL_DIR}/{name}_6fps.npz")
            continue
        fps = next((f for f in FPS_PREFERENCE if f in files), min(files))
        folders = scene_folders(name)
        if p["images"] == "png":
            candidates = [f"{name}_{fps}fps/png", *(f"{d}/png" for d in folders)]
        else:
            candidates = [f"{d}/mp4" for d in folders]
        images = next((c for c in candidates if (root / c).is_dir()), None)
        if images is None:
            missing.append(f"{' or '.join(candidates)}/")
            continue
        masks = next((f"{d}/masks" for d in folders if (root / d / "masks").is_dir()), None) if p["masks"] else None
        scenes.append(Scene(name, fps, f"{LABEL_DIR}/{files[fps]}", images, masks))
    if missing:
        raise RawLayoutError(NAME, root, missing)
    return scenes


# ------------------------------------------------------------------------------------------- cameras, boxes
def camera_of(cam_int: np.ndarray, cam_ext: np.ndarray) -> Camera:
    """posebank's camera for BEDLAM's ``cam_int`` and ``cam_ext`` (world -> camera, metres): R = cam_ext[:3, :3],
    optical centre -R^T T in mm."""
    rot = np.asarray(cam_ext, np.float64)[:3, :3]
    centre = -rot.T @ np.asarray(cam_ext, np.float64)[:3, 3]
    return Camera(intrinsic_matrix=cam_int, R=rot, t=centre * 1000.0, world_up=WORLD_UP)


def check_rotations(labels: Labels) -> None:
    rot = labels.cam_ext[:, :3, :3]
    err = np.abs(rot @ rot.transpose(0, 2, 1) - np.eye(3)).max(axis=(1, 2))
    bad = np.flatnonzero((err > 1e-4) | (np.linalg.det(rot) < 0))
    if len(bad):
        raise RawFileError(labels.path, f"cam_ext[{bad[0]}] has no rotation in its first 3 columns "
                                        f"(|R R^T - I| = {err[bad[0]]:.2g}, det {np.linalg.det(rot[bad[0]]):.3f})")


def person_box(points2d: np.ndarray) -> np.ndarray:
    """posepile's box: the tight box [x, y, w, h] of the points, scaled by 1.05 about its centre."""
    lo, hi = points2d.min(axis=0), points2d.max(axis=0)
    centre, size = (lo + hi) / 2, (hi - lo) * BOX_EXPANSION
    return np.concatenate([centre - size / 2, size])


def _existing_images(root: Path, scene: Scene, labels: Labels, kind: str) -> np.ndarray:
    """(N,) bool: the row's image (png) or video (mp4) is in the raw tree (one directory listing per folder)."""
    listed: dict[str, set[str]] = {}

    def names(folder: str) -> set[str]:
        if folder not in listed:
            d = root / folder
            listed[folder] = {f.name for f in d.iterdir()} if d.is_dir() else set()
        return listed[folder]

    if kind == "mp4":
        return np.array([f"{s}.mp4" in names(scene.images) for s in labels.sequence], bool)
    return np.array([name.rsplit("/", 1)[1] in names(f"{scene.images}/{s}")
                     for name, s in zip(labels.imgname, labels.sequence)], bool)


def _scene_instances(root: Path, scene: Scene, p: dict, model, dropped: list[Dropped] | None) -> list[RawInstance]:
    labels = read_labels(root / scene.labels)
    n = len(labels)
    check_rotations(labels)
    # a frame's people, numbered in file order (keys the frame source's masks)
    person_index, count = np.empty(n, np.int64), {}
    for i, key in enumerate(zip(labels.sequence, labels.frame.tolist())):
        person_index[i] = count.get(key, 0)
        count[key] = person_index[i] + 1
    order = sorted(range(n), key=lambda i: (labels.sequence[i], int(labels.frame[i]), i))
    finite = labels.finite_rows()
    record_drop(dropped, scene.labels, [i for i in order if not finite[i]], NONFINITE)
    present = _existing_images(root, scene, labels, p["images"])
    candidates = [i for i in order if finite[i] and labels.frame[i] % p["frame_step"] == 0]
    record_drop(dropped, scene.labels, [i for i in candidates if not present[i]], NO_IMAGE)
    rows = [i for i in candidates if present[i]]
    world_mm = np.full((len(rows), N_SKELETON, 3), np.nan)
    roots = [None] * len(rows)
    if model is not None and rows:
        world_mm = model.joints(labels.pose_world[rows], labels.shape[rows], labels.trans_world[rows]) * 1000.0
        roots = list(model.root(labels.shape[rows]))
    sample = model is not None and p["adaptive_sampling_mm"] > 0
    sampler, sampler_seq = None, None
    out, small = [], []
    for k, i in enumerate(rows):
        camera = camera_of(labels.cam_int[i], labels.cam_ext[i])
        check_finite_camera(camera, labels.path)
        seq = labels.sequence[i]
        if sample:
            if seq != sampler_seq:
                sampler, sampler_seq = AdaptivePoseSampler2(p["adaptive_sampling_mm"], p["sampler_memory"]), seq
            if not sampler.should_keep(camera.world_to_camera(world_mm[k])):
                continue
        keypoints = labels.gtkps[i, :N_SKELETON].copy()
        box = person_box(keypoints)
        if min(box[2], box[3]) < p["min_box_px"]:
            small.append(i)
            continue
        fit = BodyModelFit("smplx", "neutral", labels.pose_world[i], labels.shape[i], labels.trans_world[i],
                           roots[k])
        out.append(RawInstance(
            source=scene.source(labels, i, p["images"]), frame_index=int(labels.frame[i]),
            world_coords=world_mm[k], camera=camera, split="train",
            subject=labels.sub[i] if labels.sub is not None else "", sequence=f"{scene.name}/{seq}",
            camera_name=scene.name, bbox=box, person_index=int(person_index[i]), keypoints2d=keypoints,
            body_model=fit))
    record_drop(dropped, scene.labels, sorted(small), SMALL_BOX)
    return out


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected person instance, ordered by scene, sequence, frame and label row (see the module docstring)."""
    p = check_params(params)
    root = Path(root)
    scenes = check_layout(root, p)
    model = None
    if p["body_model_dir"]:
        from posebank.core.smplx_model import SmplxJoints

        model = SmplxJoints(p["body_model_dir"])
    else:
        log.info("bedlam: no body_model_dir configured: the 3D joints are absent (NaN), the adaptive pose "
                 "sampling is off; the examples keep the 2D keypoints, cameras and SMPL-X fits")
    out = []
    for scene in scenes:
        out += _scene_instances(root, scene, p, model, dropped)
    return out


# ------------------------------------------------------------------------------------------- frames
FRAME_SOURCE_PARAMS = ("scenes", "images", "masks")


def upright(image: np.ndarray, portrait: bool, size: tuple[int, int], where) -> np.ndarray:
    """The image as the labels see it: turned 90 degrees clockwise when its orientation is not the labels'
    (``portrait``); it must then be ``size`` (width, height)."""
    import cv2

    if (image.shape[0] > image.shape[1]) != portrait:
        image = cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if (image.shape[1], image.shape[0]) != size:
        raise RawFileError(where, f"image is {image.shape[1]}x{image.shape[0]} (after turning it upright), the "
                                  f"labels' intrinsics are for {size[0]}x{size[1]}")
    return np.ascontiguousarray(image)


@dataclasses.dataclass
class _SceneFrames:
    portrait: bool
    size: tuple[int, int]  # (width, height) of the upright image
    people: dict[tuple[str, int], int]  # (sequence, frame) -> number of label rows (people)


def _scene_frames(root: Path, scene: Scene) -> _SceneFrames:
    labels = read_labels(root / scene.labels)
    centres = np.unique(np.round(labels.cam_int[:, :2, 2], 3), axis=0)
    if len(centres) != 1:
        raise RawFileError(labels.path, f"the rows' principal points differ ({centres[:2].tolist()} ...): the "
                                        "scene's image size is not known")
    cx, cy = centres[0]
    people: dict[tuple[str, int], int] = {}
    for key in zip(labels.sequence, labels.frame.tolist()):
        people[key] = people.get(key, 0) + 1
    return _SceneFrames(bool(cx < cy), (int(round(2 * cx)), int(round(2 * cy))), people)


def frame_source(raw_root, params: dict | None = None):
    """Frames turned upright (closeup scenes), with every person's mask from ``_env.png`` when the scene has masks."""
    import cv2

    from posebank.core.jpeg import decode_jpeg
    from posebank.imaging.video import read_image, read_video_frames

    p = check_params(params)
    root = Path(raw_root)
    scenes = check_layout(root, p)
    info: dict[str, _SceneFrames] = {}
    seq_frame = re.compile(r"(?P<seq>seq_\d+)_(?P<frame>\d+)\.png")

    def scene_of(source: str) -> Scene:
        for s in scenes:
            if source.startswith(s.images + "/"):
                return s
        raise RawFileError(root / source, "not an image of the selected scenes")

    def mask(scene: Scene, sf: _SceneFrames, seq: str, frame: int) -> np.ndarray | None:
        if scene.masks is None:
            return None
        path = root / scene.masks / seq / f"{seq}_{frame:04d}_env.png"
        if not path.is_file():
            return None
        env = decode_jpeg(path.read_bytes(), cv2.IMREAD_GRAYSCALE, where=str(path))
        return upright(env, sf.portrait, sf.size, path) == 0

    def frames(source: str, indices: Sequence[int]) -> Iterator[tuple[int, Frame]]:
        scene = scene_of(source)
        if scene.name not in info:
            info[scene.name] = _scene_frames(root, scene)
        sf = info[scene.name]
        path = root / source
        if p["images"] == "mp4":
            seq = path.stem
            decoded = read_video_frames(path, indices)
        else:
            m = seq_frame.fullmatch(path.name)
            if m is None:
                raise RawFileError(path, "not a BEDLAM image name (seq_NNNNNN_FFFF.png)")
            seq = m["seq"]
            image = read_image(path)
            decoded = ((i, image) for i in sorted(set(int(i) for i in indices)))
        for i, image in decoded:
            if image is None:
                yield i, Frame(None)
                continue
            m = mask(scene, sf, seq, i)
            yield i, Frame(upright(image, sf.portrait, sf.size, path),
                           masks={} if m is None else {k: m for k in range(sf.people.get((seq, i), 0))})

    return frames


# ------------------------------------------------------------------------------------------- provenance, fixture
def provenance(root, params: dict | None = None) -> dict:
    p = check_params(params)
    out = {"body_model": {"model": "smplx", "source": "BEDLAM's own SMPL-X parameters"},
           "body_model_dir": p["body_model_dir"] or None}
    if p["body_model_dir"]:
        from posebank.core.smplx_model import MODEL_FILE, model_path
        from posebank.core.store import sha256_file as file_sha256

        out["body_model_files"] = [{"path": MODEL_FILE.format(gender="NEUTRAL"),
                                    "sha256": file_sha256(model_path(p["body_model_dir"]))}]
    return out


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.bedlam.fixture.make_fixture`, which
    takes the ``options``)."""
    from posebank.datasets.bedlam.fixture import make_fixture as write

    return write(root, seed, **options)


# ------------------------------------------------------------------------------------------- downloads
# No direct download: the release is handed out after a registration.
RAW_INSTRUCTIONS = """
    BEDLAM is handed out after a registration on its homepage. Download the training labels
    (all_npz_12_training.zip) and, for every scene, its images: bedlam_images_train/<scene>_6fps.tar (images:
    png), or the scene's png or mp4 archives (images: mp4, as posepile); the masks are optional. The raw folder
    then holds
        all_npz_12_training/<scene>_6fps.npz
        <scene>_6fps/png/seq_NNNNNN/seq_NNNNNN_FFFF.png        (or <scene>/png/..., or <scene>/mp4/seq_NNNNNN.mp4)
        <scene>/masks/seq_NNNNNN/seq_NNNNNN_FFFF_env.png       optional
    3D joints need the SMPL-X model (SMPLX_NEUTRAL.npz, v1.1, licensed at smpl-x.is.tue.mpg.de) in
    datasets.bedlam.body_model_dir.
"""
