"""Human3.6M (Ionescu et al., TPAMI 2014).

Raw layout, as the release unpacks (``root`` is the folder holding the subject folders)::

    root/metadata.xml                              (or root/Release-v1.2/metadata.xml)
    root/S1/MyPoseFeatures/D3_Positions/<Action>.cdf   variable Pose: 1 record of (T, 96), 32 joints x (x, y, z) mm
    root/S1/Videos/<Action>.<camera id>.mp4           camera ids 54138969 55011271 58860488 60457274

Cameras come from ``<w0>`` of metadata.xml: 300 numbers, first 4 x 11 x 6 extrinsics (camera-major, then
subject S1..S11: rotation as intrinsic x-y-z Euler angles, then the optical centre in world mm), then 4 x 9
intrinsics (fx fy cx cy k1 k2 k3 p1 p2). The release projects with its own tangential-distortion formula
(``ProjectPointRadial``), kept here as the camera's ``"h36m"`` distortion model.

Frame selection follows posepile: training subjects S1 S5 S6 S7 S8 every 5th frame (then adaptive pose
sampling, 100 mm), test subjects S9 S11 every 64th frame. Files whose name starts with ``_ALL`` are the
release's concatenations of all actions, not actions, and are not converted.

S9 correction: in three S9 sequences (``SittingDown 1``, ``Waiting 1``, ``Greeting``) the released 3D poses
are shifted by +200 mm along world x relative to the videos; with ``correct_s9`` (default) 200 mm are
subtracted, as posepile does.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import cdflib
import cv2
import numpy as np

from posebank.camera import Camera, euler_rxyz_from_rotation, look_at, rotation_from_euler_rxyz
from posebank.datasets.base import (
    DatasetInfo,
    RawFileError,
    RawInstance,
    RawLayoutError,
    check_finite_camera,
)
from posebank.sampling import AdaptivePoseSampler
from posebank.skeleton import JointInfo

log = logging.getLogger(__name__)

INFO = DatasetInfo(
    name="h36m",
    full_name="Human3.6M",
    homepage="http://vision.imar.ro/human3.6m/",
    licence="Academic use only; register and download from the homepage (no redistribution).",
    citation=("C. Ionescu, D. Papava, V. Olaru, C. Sminchisescu. Human3.6M: Large Scale Datasets and Predictive "
              "Methods for 3D Human Sensing in Natural Environments. TPAMI 36(7), 2014."),
)

CAMERA_IDS = ("54138969", "55011271", "58860488", "60457274")
# image size (width, height) of each camera's videos
IMAGE_SIZES = {"54138969": (1000, 1002), "55011271": (1000, 1000), "58860488": (1000, 1000),
               "60457274": (1000, 1002)}
N_RAW_JOINTS = 32
# posepile's 17-joint selection of the 32 release joints
SELECTED_JOINTS = (1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27, 0)
JOINT_INFO = JointInfo(
    "rhip,rkne,rank,lhip,lkne,lank,tors,neck,head,htop,lsho,lelb,lwri,rsho,relb,rwri,pelv",
    "htop-head-neck-rsho-relb-rwri,neck-tors-pelv-rhip-rkne-rank")
S9_SHIFTED = ("SittingDown 1", "Waiting 1", "Greeting")
S9_SHIFT_MM = 200.0

DEFAULT_PARAMS = {
    "train_subjects": [1, 5, 6, 7, 8],
    "val_subjects": [],
    "test_subjects": [9, 11],
    "train_frame_step": 5,
    "test_frame_step": 64,
    "adaptive_sampling_mm": 100,
    "correct_s9": True,
    "cameras": list(CAMERA_IDS),
}


# ------------------------------------------------------------------------------------------- readers
def find_metadata(root) -> Path:
    root = Path(root)
    for candidate in (root / "metadata.xml", root / "Release-v1.2" / "metadata.xml"):
        if candidate.is_file():
            return candidate
    raise RawLayoutError("h36m", root, "metadata.xml (looked in the root and in Release-v1.2/)")


def read_cameras(path) -> dict[tuple[int, str], Camera]:
    """Cameras of the release ``metadata.xml``: ``{(subject, camera_id): Camera}`` for S1..S11."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        raise RawFileError(path, f"cannot parse as XML ({e})") from e
    w0 = root.find("w0")
    if w0 is None or not (w0.text or "").strip():
        raise RawFileError(path, "no <w0> element: the camera parameters are missing")
    try:
        numbers = np.array([float(x) for x in w0.text.strip().strip("[]").split()], np.float64)
    except ValueError as e:
        raise RawFileError(path, f"<w0> holds something other than numbers ({e})") from e
    if numbers.size != 4 * 11 * 6 + 4 * 9:
        raise RawFileError(path, f"<w0> has {numbers.size} numbers, expected 300 (4x11x6 extrinsics + 4x9 intrinsics)")
    if not np.all(np.isfinite(numbers)):
        raise RawFileError(path, "<w0> contains non-finite camera parameters")
    extrinsics = numbers[:264].reshape(4, 11, 6)
    intrinsics = numbers[264:].reshape(4, 9)
    cameras = {}
    for i_cam, cam_id in enumerate(CAMERA_IDS):
        f, c, k, p = np.split(intrinsics[i_cam], (2, 4, 7))
        for i_subj in range(11):
            ext = extrinsics[i_cam, i_subj]
            cam = Camera(
                intrinsic_matrix=[[f[0], 0, c[0]], [0, f[1], c[1]], [0, 0, 1]],
                R=rotation_from_euler_rxyz(ext[:3]), t=ext[3:6],
                distortion_coeffs=[k[0], k[1], p[0], p[1], k[2]], world_up=(0, 0, 1), distortion_model="h36m")
            check_finite_camera(cam, path)
            cameras[(i_subj + 1, cam_id)] = cam
    return cameras


def read_poses(path) -> np.ndarray:
    """All frames of a D3_Positions CDF file as (T, 32, 3) float32 millimetres."""
    path = Path(path)
    if not path.is_file():
        raise RawFileError(path, "pose file not found")
    try:
        cdf = cdflib.CDF(str(path))
        variables = cdf.cdf_info().zVariables + cdf.cdf_info().rVariables
        if "Pose" not in variables:
            raise RawFileError(path, f"no 'Pose' variable (has {variables})")
        pose = np.asarray(cdf.varget("Pose"), np.float32)
    except RawFileError:
        raise
    except Exception as e:  # cdflib raises assorted errors on truncated files
        raise RawFileError(path, f"unreadable CDF file, truncated or corrupt ({type(e).__name__}: {e})") from e
    if pose.ndim == 3 and pose.shape[0] == 1:
        pose = pose[0]
    if pose.ndim != 2 or pose.shape[1] != N_RAW_JOINTS * 3:
        raise RawFileError(path, f"'Pose' has shape {pose.shape}, expected (T, {N_RAW_JOINTS * 3})")
    if pose.shape[0] == 0:
        raise RawFileError(path, "'Pose' has no frames")
    return pose.reshape(-1, N_RAW_JOINTS, 3)


def list_actions(root, subject: int) -> list[str]:
    folder = Path(root) / f"S{subject}" / "MyPoseFeatures" / "D3_Positions"
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.cdf") if not p.stem.startswith("_ALL"))


def check_layout(root, params: dict | None = None) -> dict[int, list[str]]:
    """Verify that the raw tree holds what the conversion needs; returns the actions per subject."""
    p = {**DEFAULT_PARAMS, **(params or {})}
    root = Path(root)
    if not root.is_dir():
        raise RawLayoutError("h36m", root, "the folder itself")
    find_metadata(root)
    missing, actions = [], {}
    for subj in [*p["train_subjects"], *p["val_subjects"], *p["test_subjects"]]:
        acts = list_actions(root, subj)
        if not acts:
            missing.append(f"S{subj}/MyPoseFeatures/D3_Positions/*.cdf")
            continue
        actions[subj] = acts
        for act in acts:
            for cam in p["cameras"]:
                video = f"S{subj}/Videos/{act}.{cam}.mp4"
                if not (root / video).is_file():
                    missing.append(video)
    if missing:
        raise RawLayoutError("h36m", root, missing)
    return actions


def subject_split(subject: int, p: dict) -> str:
    if subject in p["train_subjects"]:
        return "train"
    if subject in p["val_subjects"]:
        return "val"
    return "test"


def corrected_poses(poses: np.ndarray, subject: int, action: str, correct_s9: bool) -> np.ndarray:
    if correct_s9 and subject == 9 and action in S9_SHIFTED:
        poses = poses.copy()
        poses[..., 0] -= S9_SHIFT_MM
    return poses


def instances(root, params: dict | None = None) -> list[RawInstance]:
    """Every selected person instance of the raw tree, in a deterministic order."""
    p = {**DEFAULT_PARAMS, **(params or {})}
    groups = [p["train_subjects"], p["val_subjects"], p["test_subjects"]]
    all_subjects = [s for g in groups for s in g]
    if len(set(all_subjects)) != len(all_subjects):
        raise ValueError(f"h36m: train/val/test subjects overlap: {groups}")
    root = Path(root)
    actions = check_layout(root, p)
    cameras = read_cameras(find_metadata(root))
    out = []
    for subj in sorted(actions):
        split = subject_split(subj, p)
        step = p["train_frame_step"] if split != "test" else p["test_frame_step"]
        for act in actions[subj]:
            cdf = root / f"S{subj}/MyPoseFeatures/D3_Positions/{act}.cdf"
            poses = corrected_poses(read_poses(cdf), subj, act, p["correct_s9"])[:, SELECTED_JOINTS]
            frames = range(0, len(poses), step)
            if split == "train" and p["adaptive_sampling_mm"]:
                sampler = AdaptivePoseSampler(p["adaptive_sampling_mm"])
                frames = [i for i in frames if sampler.should_keep(poses[i])]
            for cam in p["cameras"]:
                camera = cameras[(subj, cam)]
                for i in frames:
                    out.append(RawInstance(
                        source=f"S{subj}/Videos/{act}.{cam}.mp4", frame_index=i, world_coords=poses[i],
                        camera=camera, split=split, subject=f"S{subj}", sequence=act,
                        activity=act.split(" ")[0], camera_name=cam))
    return out


# ------------------------------------------------------------------------------------------- fixture
FIXTURE_ACTIONS = {1: ["Directions 1"], 5: ["Discussion 2"], 6: ["Eating 1"], 7: ["Greeting 1"],
                   8: ["Phoning 1"], 9: ["Waiting 1", "Posing 1"], 11: ["Directions 1"]}
MARK_RADIUS = 4.0


def _template_pose() -> np.ndarray:
    """A standing person in the 32-joint release order, local frame (x right of the person, y forward, z up)."""
    j = np.zeros((N_RAW_JOINTS, 3))
    named = {
        0: (0, 0, 950), 1: (-130, 0, 940), 2: (-140, 10, 520), 3: (-150, -10, 90), 4: (-150, 90, 30),
        5: (-150, 160, 20), 6: (130, 0, 940), 7: (140, 10, 520), 8: (150, -10, 90), 9: (150, 90, 30),
        10: (150, 160, 20), 11: (0, 0, 1180), 12: (0, 0, 1430), 13: (0, 20, 1560), 14: (0, 40, 1650),
        15: (0, 30, 1770), 16: (0, 0, 1430), 17: (180, 0, 1420), 18: (330, 0, 1170), 19: (360, 40, 930),
        20: (370, 70, 900), 21: (370, 90, 880), 22: (360, 60, 880), 23: (360, 70, 860), 24: (0, 0, 1430),
        25: (-180, 0, 1420), 26: (-330, 0, 1170), 27: (-360, 40, 930), 28: (-370, 70, 900),
        29: (-370, 90, 880), 30: (-360, 60, 880), 31: (-360, 70, 860)}
    for i, v in named.items():
        j[i] = v
    return j


def _fixture_poses(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """A person walking on a circle in the capture area, turning and swinging the arms."""
    base = _template_pose()
    t = np.arange(n_frames)
    start = rng.uniform(-300, 300, 2)
    heading0 = rng.uniform(0, 2 * np.pi)
    out = np.zeros((n_frames, N_RAW_JOINTS, 3))
    for i in t:
        heading = heading0 + 0.02 * i
        swing = 0.5 * np.sin(0.25 * i)
        local = base.copy()
        for shoulder, arm in ((17, (18, 19, 20, 21, 22, 23)), (25, (26, 27, 28, 29, 30, 31))):
            sign = 1 if shoulder == 17 else -1
            c, s = np.cos(sign * swing), np.sin(sign * swing)
            rel = local[list(arm)] - local[shoulder]
            local[list(arm)] = local[shoulder] + rel @ np.array([[1, 0, 0], [0, c, s], [0, -s, c]])
        c, s = np.cos(heading), np.sin(heading)
        rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
        # a circle of 700 mm radius at 35 mm per frame: the person stays inside every camera's view
        phase = heading0 + 0.05 * i
        pos = start + 700.0 * np.array([np.cos(phase), np.sin(phase)])
        out[i] = local @ rot.T + [pos[0], pos[1], 0]
    return out


def _fixture_cameras(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Plausible H36M-like cameras in the ``w0`` layout: extrinsics (4, 11, 6) and intrinsics (4, 9)."""
    extrinsics = np.zeros((4, 11, 6))
    intrinsics = np.zeros((4, 9))
    for i_cam, cam_id in enumerate(CAMERA_IDS):
        w, h = IMAGE_SIZES[cam_id]
        f = rng.uniform(1140, 1150, 2)
        c = np.array([w / 2, h / 2]) + rng.uniform(-12, 12, 2)
        k = np.array([-0.2, 0.24, -0.002]) + rng.uniform(-0.01, 0.01, 3)
        p = rng.uniform(-0.003, 0.003, 2)
        intrinsics[i_cam] = [*f, *c, *k, *p]
        for i_subj in range(11):
            angle = np.deg2rad(45 + 90 * i_cam) + rng.uniform(-0.1, 0.1)
            radius = rng.uniform(4500, 5500)
            eye = np.array([radius * np.cos(angle), radius * np.sin(angle), rng.uniform(1400, 1700)])
            target = np.array([0.0, 0.0, 900.0]) + rng.uniform(-200, 200, 3)
            rot = look_at(eye, target)
            extrinsics[i_cam, i_subj] = [*euler_rxyz_from_rotation(rot), *eye]
    return extrinsics, intrinsics


def _draw_frame(camera: Camera, pose17: np.ndarray, size) -> np.ndarray:
    w, h = size
    img = np.full((h, w, 3), 40, np.uint8)
    pts = camera.project(pose17)
    for a, b in JOINT_INFO.edges:
        pa, pb = np.round(pts[[a, b]] * 16).astype(int)
        cv2.line(img, tuple(pa), tuple(pb), (110, 110, 110), 18, cv2.LINE_AA, shift=4)
    for pt in pts:
        cv2.circle(img, tuple(np.round(pt * 16).astype(int)), int(MARK_RADIUS * 16), (255, 255, 255), -1,
                   cv2.LINE_AA, shift=4)
    return img


def make_fixture(root, seed: int = 0, subjects=None, n_frames: int = 70, cameras=CAMERA_IDS) -> Path:
    """Write a miniature Human3.6M raw tree in the release's layout.

    Real CDF pose files and mp4 videos in which white marks are drawn at the projected 17 converted joints
    (over a grey stick figure), and a metadata.xml whose ``<w0>`` block holds plausible cameras. S9's
    ``Waiting 1`` carries the release's +200 mm x shift in its CDF, so the documented correction is exercised.
    """
    from cdflib.cdfwrite import CDF

    from posebank.imaging.video import write_video

    root = Path(root)
    rng = np.random.default_rng(seed)
    subjects = sorted(subjects or FIXTURE_ACTIONS)
    extrinsics, intrinsics = _fixture_cameras(rng)
    root.mkdir(parents=True, exist_ok=True)
    numbers = " ".join(repr(float(x)) for x in [*extrinsics.ravel(), *intrinsics.ravel()])
    subjects_txt = " ".join(str(s) for s in subjects)
    (root / "metadata.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<a>\n'
        f"   <train_subjects>[{subjects_txt}]</train_subjects>\n"
        f"   <w0>[{numbers}]</w0>\n</a>\n")
    cams = read_cameras(root / "metadata.xml")
    for subj in subjects:
        for act in FIXTURE_ACTIONS.get(subj, ["Directions 1"]):
            true_poses = _fixture_poses(rng, n_frames)
            stored = true_poses.copy()
            if subj == 9 and act in S9_SHIFTED:
                stored[..., 0] += S9_SHIFT_MM  # the release's error, undone by the correction
            cdf_path = root / f"S{subj}/MyPoseFeatures/D3_Positions/{act}.cdf"
            cdf_path.parent.mkdir(parents=True, exist_ok=True)
            if cdf_path.exists():
                cdf_path.unlink()
            cdf = CDF(str(cdf_path), cdf_spec={"Majority": "row_major", "Compressed": False})
            cdf.write_var({"Variable": "Pose", "Data_Type": 44, "Num_Elements": 1, "Rec_Vary": True, "Compress": 0,
                           "Dim_Sizes": [n_frames, N_RAW_JOINTS * 3]},
                          var_data=stored.reshape(1, n_frames, -1).astype(np.float32))
            cdf.close()
            for cam_id in cameras:
                camera = cams[(subj, cam_id)]
                frames = (_draw_frame(camera, true_poses[i][list(SELECTED_JOINTS)], IMAGE_SIZES[cam_id])
                          for i in range(n_frames))
                write_video(root / f"S{subj}/Videos/{act}.{cam_id}.mp4", frames, fps=50)
    (root / ".posebank-fixture").write_text(f"h36m fixture, seed {seed}\n")
    return root
