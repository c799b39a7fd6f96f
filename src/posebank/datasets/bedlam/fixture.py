"""A miniature BEDLAM raw tree in the release's layout, and a tiny SMPL-X model file, for tests and demos.

The labels are made the way BEDLAM's data_processing/df_full_body.py makes them (pixelite1201/BEDLAM): per person
an AMASS-like motion (``poses`` 165, ``trans``, 11 ``betas`` of the neutral model), a placement in the Unreal scene
(X, Y, Z in cm, yaw in degrees, as be_seq.csv) and per frame an Unreal camera (x, y, z cm, yaw, pitch, roll,
focal length mm, as ground_truth/camera/<seq>_camera.csv) become ``pose_world``/``trans_world``,
``pose_cam``/``trans_cam``, ``cam_ext``, ``cam_int`` (``get_params``, ``get_global_orient``, ``get_cam_rotmat``,
``get_cam_trans``, ``unreal2cv2``, ``get_cam_int``), and ``gtkps`` is the projection of the joints posed with
``pose_cam``/``trans_cam`` plus the camera translation (lines 368-369); closeup scenes add 90 degrees of roll and
use a portrait sensor and image (lines 344-347, 434-439). The joints are posed here with an independent numpy
forward kinematics of the tiny model (:func:`tiny_smplx`), so that a conversion with that model file (through the
``smplx`` package) can be checked against ``gtkps``. The 72 keypoints after the 55 skeleton joints (vertices and
face landmarks in the real files) and ``proj_verts`` are stand-ins (projections of skeleton joints, repeated);
``motion_info`` (undocumented content, not read) is left out.

Images are 1280x720 PNGs (closeup: the 720x1280 upright image turned 90 degrees counter-clockwise, as Unreal
rendered it) with a grey stick figure and a white mark at each of the 55 projected joints; masks are
``_env.png`` (255 = environment, 0 = person); the mp4 videos hold every 30 fps frame upright (closeup ones
portrait, as bedlam_render's ``transpose=clock``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np

from posebank.core.bodymodel import axis_angle, rodrigues
from posebank.datasets.bedlam import LABEL_DIR, SMPLX_PARENTS

MARK_RADIUS = 3.0
FIXTURE_MARKER = ".posebank-fixture"
TINY_MODEL_SEED = 7  # the tiny model is the same for every fixture seed
N_VERTS_PER_JOINT = 2
N_BETAS = 11
N_KEYPOINTS = 127  # smplx.SMPLX's joints (55 skeleton + 21 vertex joints + 51 face landmarks)
N_PROJ_VERTS = 437
SHAPE_COMPONENTS = 400  # SMPL-X v1.1: 300 shape + 100 expression
SCALE_FACTOR_BBOX = 1.2  # df_full_body.py:16


# ------------------------------------------------------------------------------------------- tiny SMPL-X
def _template_joints() -> np.ndarray:
    """55 rest joints of a small SMPL-X-like body (metres; y up, facing +z, left = +x; pelvis near SMPL-X's)."""
    left = {
        0: (0, 0.93, 0), 1: (0.09, 0.85, 0), 3: (0, 1.05, -0.01), 4: (0.11, 0.49, 0.03), 6: (0, 1.18, 0),
        7: (0.12, 0.08, -0.02), 9: (0, 1.25, 0.01), 10: (0.14, 0.02, 0.13), 12: (0, 1.45, -0.01),
        13: (0.08, 1.38, 0), 15: (0, 1.57, 0.04), 16: (0.18, 1.40, -0.02), 18: (0.32, 1.17, -0.03),
        20: (0.46, 0.96, 0.0), 22: (0, 1.52, 0.09), 23: (0.03, 1.62, 0.10)}
    mirror = {2: 1, 5: 4, 8: 7, 11: 10, 14: 13, 17: 16, 19: 18, 21: 20, 24: 23}
    j = np.zeros((55, 3))
    for k, v in left.items():
        j[k] = v
    for k, src in mirror.items():
        j[k] = j[src] * [-1, 1, 1]
    for wrist, elbow, first in ((20, 18, 25), (21, 19, 40)):
        d = (j[wrist] - j[elbow]) / np.linalg.norm(j[wrist] - j[elbow])
        for f, (start, lateral) in enumerate(((0.07, 0.025), (0.07, 0.008), (0.07, -0.03), (0.07, -0.012),
                                              (0.02, 0.045))):  # index, middle, pinky, ring, thumb
            for s in range(3):
                j[first + 3 * f + s] = j[wrist] + d * (start + 0.025 * s) + (0, 0, lateral)
    return j - (0, 1.28, 0)


def tiny_smplx(seed: int = TINY_MODEL_SEED) -> dict[str, np.ndarray]:
    """The arrays of a tiny SMPLX_NEUTRAL.npz: the keys, shapes and dtypes that ``smplx.SMPLX`` loads (v1.1:
    shapedirs (V, 3, 400), posedirs (V, 3, 486), J_regressor (55, V), kintree_table (2, 55), weights (V, 55), f,
    hand components and means, face landmarks), with 2 vertices per joint and random values."""
    rng = np.random.default_rng(seed)
    joints = _template_joints()
    n_verts = N_VERTS_PER_JOINT * 55
    offsets = rng.normal(0, 0.01, (55, 3))
    v_template = np.concatenate([joints + offsets, joints - offsets], axis=0)  # joint k: vertices k and 55 + k
    j_regressor = np.zeros((55, n_verts))
    j_regressor[np.arange(55), np.arange(55)] = 0.5
    j_regressor[np.arange(55), 55 + np.arange(55)] = 0.5
    weights = np.zeros((n_verts, 55))
    weights[np.arange(n_verts), np.arange(n_verts) % 55] = 1.0
    faces = np.array([[k, 55 + k, (k + 1) % 55] for k in range(55)], np.uint32)
    kintree = np.array([[4294967295, *SMPLX_PARENTS[1:]], range(55)], np.int64)
    n_faces = len(faces)
    bary = rng.uniform(0.1, 1, (51, 3))
    dyn_bary = rng.uniform(0.1, 1, (79, 17, 3))
    return {
        "v_template": v_template, "f": faces,
        "shapedirs": rng.normal(0, 0.008, (n_verts, 3, SHAPE_COMPONENTS)),
        "posedirs": rng.normal(0, 0.001, (n_verts, 3, 9 * 54)),
        "J_regressor": j_regressor, "weights": weights, "kintree_table": kintree,
        "hands_componentsl": np.linalg.qr(rng.normal(size=(45, 45)))[0],
        "hands_componentsr": np.linalg.qr(rng.normal(size=(45, 45)))[0],
        "hands_meanl": rng.normal(0, 0.2, 45), "hands_meanr": rng.normal(0, 0.2, 45),
        "lmk_faces_idx": rng.integers(0, n_faces, 51).astype(np.int64),
        "lmk_bary_coords": bary / bary.sum(-1, keepdims=True),
        "dynamic_lmk_faces_idx": rng.integers(0, n_faces, (79, 17)).astype(np.int64),
        "dynamic_lmk_bary_coords": dyn_bary / dyn_bary.sum(-1, keepdims=True),
    }


def write_tiny_smplx(folder, seed: int = TINY_MODEL_SEED) -> Path:
    """Write the tiny model as ``folder/smplx/SMPLX_NEUTRAL.npz`` (the layout smplx.create reads); returns the
    file. ``folder`` is then a ``body_model_dir``."""
    path = Path(folder) / "smplx" / "SMPLX_NEUTRAL.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **tiny_smplx(seed))
    return path


def rest_joints(model: dict, betas: np.ndarray) -> np.ndarray:
    """(55, 3) rest joints of the shaped tiny model: J_regressor @ (v_template + shapedirs @ betas)."""
    betas = np.asarray(betas, np.float64)
    v = model["v_template"] + model["shapedirs"][:, :, :len(betas)] @ betas
    return model["J_regressor"] @ v


def forward_kinematics(pose: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """(55, 3) posed joints (no translation) for a 165-value axis-angle pose, along SMPL-X's tree."""
    rot = rodrigues(np.asarray(pose, np.float64).reshape(55, 3))
    glob, out = [rot[0]], [rest[0]]
    for k in range(1, 55):
        par = SMPLX_PARENTS[k]
        out.append(out[par] + glob[par] @ (rest[k] - rest[par]))
        glob.append(glob[par] @ rot[k])
    return np.array(out)


# ------------------------------------------------------------------------------------------- BEDLAM's geometry
def _rot(axis: int, degrees: float) -> np.ndarray:
    v = np.zeros(3)
    v[axis] = np.deg2rad(degrees)
    return rodrigues(v)


def unreal_to_opencv(p) -> np.ndarray:
    """df_full_body.py unreal2cv2: (x, y, z) Unreal -> (y, -z, x)."""
    x, y, z = np.asarray(p, np.float64)
    return np.array([y, -z, x])


def cam_int(focal_mm: float, closeup: bool) -> np.ndarray:
    """df_full_body.py get_cam_int with the scene's sensor and image size (lines 434-445)."""
    sens_w, sens_h, w, h = (20.25, 36.0, 720, 1280) if closeup else (36.0, 20.25, 1280, 720)
    cx, cy = w / 2, h / 2
    return np.array([[focal_mm / sens_w * cx * 2, 0, cx], [0, focal_mm / sens_h * cy * 2, cy], [0, 0, 1.0]])


@dataclasses.dataclass
class Person:
    sub: str
    gender: str
    betas: np.ndarray  # (11,)
    placement_cm: tuple[float, float, float]  # be_seq.csv X, Y, Z
    yaw_deg: float  # be_seq.csv Yaw
    phase: float
    speed: tuple[float, float]  # m/s of the motion's translation (x, z), AMASS frame (y up)
    swing: float = 0.4  # limb swing amplitude, radians (0: a rigid pose that only translates)

    def pose(self, t: int) -> np.ndarray:
        """The motion's 165-value pose at 30 fps frame ``t`` (local rotations; global orientation about y)."""
        p = np.zeros((55, 3))
        a = self.swing * np.sin(0.25 * t + self.phase)
        p[0] = (0, 0.2 * np.sin(self.phase), 0)
        p[1, 0], p[2, 0] = a, -a  # hips
        p[4, 0], p[5, 0] = 0.5 * self.swing * (1 + np.sin(0.25 * t)), 0.5 * self.swing * (1 - np.sin(0.25 * t))
        p[16, 0], p[17, 0] = -0.8 * a, 0.8 * a  # shoulders
        p[18, 1], p[19, 1] = 0.5 * self.swing, -0.5 * self.swing  # elbows
        p[6, 1] = 0.3 * a
        p[22, 0] = 0.2 * self.swing  # jaw
        p[25:55, 2] = 0.3 * self.swing * np.sin(np.arange(30) + self.phase)  # fingers
        return p.reshape(-1)

    def transl(self, t: int) -> np.ndarray:
        return np.array([self.speed[0] * t / 30, 1.25, self.speed[1] * t / 30])


@dataclasses.dataclass
class CameraTrack:
    xyz_cm: tuple[float, float, float]
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0  # closeup scenes: ~90, the rolled Unreal camera
    focal_mm: tuple[float, float] = (28.0, 28.0)  # focal length at the first and last frame (zoom)

    def focal(self, t: int, n: int) -> float:
        return float(np.interp(t, [0, max(n - 1, 1)], self.focal_mm))


def bedlam_row(model: dict, person: Person, cam: CameraTrack, t: int, n_frames: int, closeup: bool) -> dict:
    """One label row as df_full_body.py ``get_params`` computes it (30 fps frame ``t``)."""
    yaw_i, pitch_i = -cam.yaw, -cam.pitch
    roll_i = -cam.roll + (90.0 if closeup else 0.0)
    rz, rx, ry = _rot(2, roll_i), _rot(0, pitch_i), _rot(1, yaw_i)
    cam_trans = (rz @ rx @ ry) @ unreal_to_opencv((np.array(person.placement_cm) - cam.xyz_cm) / 100)
    tb = _rot(1, person.yaw_deg - 90 + yaw_i) @ np.diag([1.0, -1.0, -1.0])
    pose, transl = person.pose(t), person.transl(t)
    rest = rest_joints(model, person.betas)
    j0 = rest[0]
    w_orient = axis_angle(tb @ rodrigues(pose[:3]))
    l_trans = tb @ j0 + tb @ transl
    w_trans = l_trans - j0
    rc = rz @ rx
    c_orient = axis_angle(rc @ rodrigues(w_orient))
    c_trans = rc @ l_trans - j0
    pose_world, pose_cam = pose.copy(), pose.copy()
    pose_world[:3], pose_cam[:3] = w_orient, c_orient
    k = cam_int(cam.focal(t, n_frames), closeup)
    cam_points = forward_kinematics(pose_cam, rest) + c_trans + cam_trans
    proj = (cam_points / cam_points[:, 2:]) @ k.T  # (55, 3): x, y, 1
    ext = np.eye(4)
    ext[:3, :3], ext[:3, 3] = rc, cam_trans
    return {"pose_world": pose_world, "pose_cam": pose_cam, "trans_world": w_trans, "trans_cam": c_trans,
            "cam_int": k, "cam_ext": ext, "kps55": proj.astype(np.float32), "depth": cam_points[:, 2]}


def bbox_center_scale(kps: np.ndarray, width: int, height: int) -> tuple[np.ndarray, float, int]:
    """df_full_body.py get_bbox_valid over ``gtkps[:22]`` inside the image, x 1.2."""
    inside = [j for j in kps[:22] if 0 <= j[0] <= width and 0 <= j[1] <= height]
    if not inside:
        return np.array([-1.0, -1.0]), -1.0, 0
    j = np.array(inside)
    lo, hi = j[:, :2].min(0), j[:, :2].max(0)
    return (lo + hi) / 2, float(max(hi - lo) / 200 * SCALE_FACTOR_BBOX), len(inside)


# ------------------------------------------------------------------------------------------- scenes
@dataclasses.dataclass
class SceneSpec:
    name: str
    fps: int  # of the label file
    closeup: bool
    png_folder: str  # "tar": <scene>_<fps>fps/png with the labelled frames; "release": <scene>/png, every frame
    masks: bool
    n_frames: int  # 30 fps frames rendered
    sequences: dict[str, tuple[CameraTrack, list[Person]]]
    missing_png: tuple[tuple[str, int], ...] = ()  # labelled frames whose PNG is left out of the tree

    @property
    def labelled(self) -> list[int]:
        step = 5 if self.fps == 6 else 1  # df_full_body.py:325-327: 6 fps keeps img_ind % 5 == 0
        return list(range(0, self.n_frames, step))

    @property
    def size(self) -> tuple[int, int]:
        return (720, 1280) if self.closeup else (1280, 720)


def _people(rng, n: int) -> list[dict]:
    subs = ["rp_aaron_posed_002", "rp_corey_posed_005", "rp_eric_posed_048", "rp_felice_posed_004"]
    return [dict(sub=subs[(i + int(rng.integers(4))) % 4], gender=["male", "female"][int(rng.integers(2))],
                 betas=rng.normal(0, 1, N_BETAS), phase=float(rng.uniform(0, 2 * np.pi))) for i in range(n)]


def fixture_scenes(seed: int = 0) -> list[SceneSpec]:
    rng = np.random.default_rng(seed)
    a, b, c = _people(rng, 3), _people(rng, 2), _people(rng, 1)
    jit = lambda s: float(rng.uniform(-s, s))  # noqa: E731 - small random offsets
    return [
        SceneSpec("20221010_3_1000_batch01hand", 6, False, "tar", True, 16, {
            "seq_000000": (CameraTrack((0, 0, 100), yaw=jit(10), pitch=jit(3), roll=jit(2)), [
                Person(**a[0], placement_cm=(450 + jit(20), -70, 0), yaw_deg=80 + jit(10), speed=(0.6, 0.3)),
                Person(**a[1], placement_cm=(520 + jit(20), 90, 0), yaw_deg=100 + jit(10), speed=(-0.4, 0.5))]),
            "seq_000001": (CameraTrack((0, 0, 100), yaw=jit(5), focal_mm=(18.0, 60.0)), [  # a zoom: far, then near
                Person(**a[2], placement_cm=(1000, 0, 0), yaw_deg=90, speed=(0.5, 0.0))]),
        }),
        SceneSpec("20221011_1_250_batch01hand_closeup_suburb_a", 6, True, "release", True, 16, {
            "seq_000000": (CameraTrack((0, 0, 120), yaw=jit(2), pitch=jit(2), roll=90 + jit(2), focal_mm=(40, 40)), [
                Person(**b[0], placement_cm=(340 + jit(10), -30 + jit(5), 0), yaw_deg=95, speed=(0.2, 0.1))]),
        }, missing_png=(("seq_000000", 10),)),
        SceneSpec("20221022_3_250_batch01handhair_static_bigOffice", 30, False, "tar", False, 10, {
            # a rigid pose moving 40 mm per frame: posepile's sampler keeps frames 0, 3, 6, 9
            "seq_000000": (CameraTrack((0, 0, 100)), [
                Person(**c[0], placement_cm=(500, 0, 0), yaw_deg=90, speed=(1.2, 0.0), swing=0.0)]),
        }),
    ]


def _draw(spec: SceneSpec, people: list[tuple[np.ndarray, float]]) -> tuple[np.ndarray, np.ndarray]:
    """The upright frame (BGR) and its environment mask (255 = environment) with each person's stick figure and a
    white mark at each projected joint; ``people``: (55, 2) pixels and the pelvis depth (m)."""
    w, h = spec.size
    image = np.full((h, w, 3), 40, np.uint8)
    image[:, :, 0] = np.linspace(30, 60, w, dtype=np.uint8)[None]  # a little texture
    body = np.zeros((h, w), np.uint8)
    focal = 1000.0
    for pts, depth in people:
        fixed = np.round(pts * 16).astype(np.int32)
        thick = max(3, int(round(0.05 * focal / depth)))
        for k in range(1, 25):
            cv2.line(body, tuple(fixed[SMPLX_PARENTS[k]]), tuple(fixed[k]), 255, thick, cv2.LINE_8, shift=4)
        cv2.circle(body, tuple(fixed[15]), int(round(0.09 * focal / depth * 16)), 255, -1, cv2.LINE_8, shift=4)
    image[body > 0] = 110
    for pts, _ in people:
        for pt in np.round(pts * 16).astype(np.int32):
            cv2.circle(image, tuple(pt), int(MARK_RADIUS * 16), (255, 255, 255), -1, cv2.LINE_AA, shift=4)
            cv2.circle(body, tuple(pt), int((MARK_RADIUS + 1) * 16), 255, -1, cv2.LINE_8, shift=4)
    return image, np.where(body > 0, 0, 255).astype(np.uint8)


def _stored(spec: SceneSpec, image: np.ndarray) -> np.ndarray:
    """As Unreal rendered it: a closeup image is the upright one turned 90 degrees counter-clockwise."""
    return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE) if spec.closeup else image


def _write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"cannot write {path}")


def _write_scene(root: Path, spec: SceneSpec, model: dict, mp4: bool) -> None:
    from posebank.imaging.video import write_video

    rows = {k: [] for k in ("imgname", "center", "scale", "pose_cam", "pose_world", "shape", "trans_cam",
                            "trans_world", "gtkps", "cam_int", "cam_ext", "gender", "proj_verts", "sub")}
    drawn: dict[tuple[str, int], list] = {}
    for seq, (cam, people) in spec.sequences.items():
        for person in people:  # rows: per person, then frame (df_full_body.py:463-492, 322-404)
            for t in range(spec.n_frames):
                r = bedlam_row(model, person, cam, t, spec.n_frames, spec.closeup)
                drawn.setdefault((seq, t), []).append((r["kps55"][:, :2].astype(np.float64), float(r["depth"][0])))
                if t not in spec.labelled:
                    continue
                center, scale, n_visible = bbox_center_scale(r["kps55"], *spec.size)
                if center[0] < 0 or center[1] < 0 or scale <= 0 or n_visible < 8 or (r["depth"] <= 0).any():
                    continue  # df_full_body.py:374-382
                kps = r["kps55"][np.arange(N_KEYPOINTS) % 55]  # joints 55.. are stand-ins
                rows["imgname"].append(f"{seq}/{seq}_{t:04d}.png")
                rows["center"].append(center)
                rows["scale"].append(scale)
                for key in ("pose_cam", "pose_world", "trans_cam", "trans_world", "cam_int", "cam_ext"):
                    rows[key].append(r[key])
                rows["shape"].append(person.betas)
                rows["gtkps"].append(kps)
                rows["gender"].append(person.gender)
                rows["proj_verts"].append(r["kps55"][np.arange(N_PROJ_VERTS) % 55])
                rows["sub"].append(person.sub)
    label = root / LABEL_DIR / f"{spec.name}_{spec.fps}fps.npz"
    label.parent.mkdir(parents=True, exist_ok=True)
    np.savez(label, imgname=np.array(rows["imgname"]), center=np.array(rows["center"], np.float64),
             scale=np.array(rows["scale"], np.float64), pose_cam=np.array(rows["pose_cam"]),
             pose_world=np.array(rows["pose_world"]), shape=np.array(rows["shape"]),
             trans_cam=np.array(rows["trans_cam"]), trans_world=np.array(rows["trans_world"]),
             gtkps=np.array(rows["gtkps"], np.float32), cam_int=np.array(rows["cam_int"]),
             cam_ext=np.array(rows["cam_ext"]), gender=np.array(rows["gender"]),
             proj_verts=np.array(rows["proj_verts"], np.float32), sub=np.array(rows["sub"]))
    png_root = root / (f"{spec.name}_{spec.fps}fps/png" if spec.png_folder == "tar" else f"{spec.name}/png")
    for seq in spec.sequences:
        frames = []
        for t in range(spec.n_frames):
            image, env = _draw(spec, drawn[(seq, t)])
            frames.append(image)
            if (spec.png_folder == "release" or t in spec.labelled) and (seq, t) not in spec.missing_png:
                _write_png(png_root / seq / f"{seq}_{t:04d}.png", _stored(spec, image))
            if spec.masks and t in spec.labelled:  # (the release has every frame's; only these are read)
                _write_png(root / spec.name / "masks" / seq / f"{seq}_{t:04d}_env.png", _stored(spec, env))
        if mp4:
            write_video(root / spec.name / "mp4" / f"{seq}.mp4", frames, fps=30)


def make_fixture(root, seed: int = 0, mp4: bool = True) -> Path:
    """Write a miniature BEDLAM raw tree under ``root`` (see the module docstring): three scenes (a landscape
    6 fps scene of two sequences, one of them a zoom from far, with the 6 fps image archive's folder; a closeup
    6 fps scene with every 30 fps frame in ``<scene>/png`` and one labelled PNG left out; a 30 fps scene without
    masks), ``all_npz_12_training/`` with their label files and an AGORA label file that is not BEDLAM's, masks
    and (``mp4``) the videos. The labels come from :func:`tiny_smplx` (whatever the seed)."""
    root = Path(root)
    model = tiny_smplx()
    for spec in fixture_scenes(seed):
        _write_scene(root, spec, model, mp4)
    # a label file of another dataset in the same folder (the release's zip holds agora-bfh.npz, agora-body.npz)
    np.savez(root / LABEL_DIR / "agora-bfh.npz", imgname=np.array(["ag_trainset_renderpeople_bfh_x.png"]))
    (root / FIXTURE_MARKER).write_text(f"bedlam fixture, seed {seed}\n")
    return root
