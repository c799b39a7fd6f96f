"""SPIN / ReFit ``dataset_extras`` npz export: one ``<file>.npz`` plus an image root, as ReFit's BaseDataset reads it.

Consumer: yufu-wang/ReFit@3167cbf ``lib/datasets/base_dataset.py`` (BaseDataset: which keys, how they are read),
``lib/utils/imutils.py`` (``crop``/``transform``: the centre/scale pixel convention), ``data_config.py`` (file
names), ``scripts/subsample_3dpw.py`` (the pre-cropped layout); the keys' meaning as SPIN (nkolot/SPIN@2476c43)
writes them: ``constants.py`` (JOINT_NAMES[25:], the 24 "ground truth" slots) and ``datasets/preprocess/{h36m,
mpi_inf_3dhp,mpii,coco}.py`` (which dataset joint goes to which slot, S root-centred in metres).

Written (N examples of the chosen split, in cache order; every array NumPy-native, ``numpy.load(allow_pickle=False)``):

* ``imgname`` (N,) unicode: path under the image root ``<out>/images`` (``imageFiles/<subject>/<sequence>/<camera>/
  f<frame>_r<row>.jpg``; the stored crop's JPEG bytes, unchanged, are written there).
* ``center`` (N,2), ``scale`` (N,) float64: the box centre (x + w/2, y + h/2) and ``box_scale`` (1.2) x max(w, h) /
  200, in the stored crop's pixels (SPIN's 0-based pixel centres, posebank's convention too).
* ``part`` (N,24,3) float64: x, y, confidence in SPIN's 24 slots; from the example's ``keypoints2d`` where it has
  a joint, else the projection of its 3D joint through the crop camera (a projection behind the camera or outside
  the crop gets confidence 0, as ReFit's agora2spin does); confidence 1 for every joint with a position, occluded
  ones included (SPIN's coco.py keeps COCO v=1 joints), 0 for a slot the dataset lacks.
* ``openpose`` (N,25,3) zeros: posebank has no OpenPose detections (ReFit/SPIN read zeros as "none").
* ``S`` (N,24,4) float64: camera-frame joints in metres, minus the Pelvis (MPII) slot, confidence 1 where known;
  written when any example has 3D (not for 2D-only datasets: ReFit ignores S of coco/mpii anyway).
* ``pose`` (N,72), ``shape`` (N,10), ``has_smpl`` (N,) float64: SMPL fits only (``body_model.model == 'smpl'``),
  the global orientation in the crop camera's frame (``body_model_cam``), the body pose unchanged; zeros and
  has_smpl 0 for SMPL-X or no fit (SMPL-X -> SMPL needs a model transfer posebank does not do).
* ``gender`` (N,) '<U1': 'm' / 'f' from SMPL fits; 'n' where there is none or it is neutral (ReFit's
  ``str(g) == 'm'`` reads 'n' as female: counted in the summary); the key is absent when no example has a
  gendered fit (ReFit then uses the neutral model).
* ``img_focal`` (N,) = (fx + fy) / 2, ``img_center`` (N,2) = (cx, cy) of the crop camera (the crop is
  distortion-free); ``cam_R`` (N,3,3) world -> camera and ``cam_t`` (N,3) mm (p_cam = R p_world + t, as ReFit's
  refit_mv.py reads them) and ``trans`` (N,3) the SMPL translation, world frame, metres (zeros without a fit): the
  three only when every example has extrinsics (BaseDataset reads the three together).
* ``cropped=True``: ReFit's pre-cropped layout (subsample_3dpw.py): ``imgname`` ``imageFiles`` -> ``imageCrops``
  and ``.jpg`` -> ``_<i>.jpg`` (i = the row in the file), each image the ``crop_size`` (256) square that
  ReFit's ``imutils.crop(img, center, scale, [256, 256])`` cuts (same integer corners, zero padding; resampled with
  OpenCV, INTER_AREA / INTER_LINEAR, not scikit-image's anti-aliased resize), JPEG quality 95 as cv2.imwrite;
  ``orig_shape`` (N,2) [H, W] of the stored crop; center/scale/part stay in the stored crop's pixels, as ReFit
  expects with ``cropped=True``.

Not filled: ``openpose`` (zeros), ``maskname``/``partname`` (LSP test only), SMPL for SMPL-X fits. Joints by name
per dataset family (:data:`FAMILIES`); SMPL-joint datasets (3dpw, surreal, agora, bedlam) fill the hip and Pelvis
slots with SMPL's hip / pelvis joints, which SPIN regresses from the mesh instead (J_regressor_extra): approximate.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from posebank.core.bodymodel import to_camera
from posebank.core.errors import UsageError
from posebank.core.store import SPLITS
from posebank.exporting.common import ExportSource, write_npz

# SPIN constants.py JOINT_NAMES[25:]
SPIN_JOINTS = ("Right Ankle", "Right Knee", "Right Hip", "Left Hip", "Left Knee", "Left Ankle", "Right Wrist",
               "Right Elbow", "Right Shoulder", "Left Shoulder", "Left Elbow", "Left Wrist", "Neck (LSP)",
               "Top of Head (LSP)", "Pelvis (MPII)", "Thorax (MPII)", "Spine (H36M)", "Jaw (H36M)", "Head (H36M)",
               "Nose", "Left Eye", "Right Eye", "Left Ear", "Right Ear")
ROOT_SLOT = 14  # Pelvis (MPII): SPIN's h36m.py / mpi_inf_3dhp.py and ReFit's bedlam2spin.py centre S on it

_LIMBS = {"rank": 0, "rkne": 1, "rhip": 2, "lhip": 3, "lkne": 4, "lank": 5, "rwri": 6, "relb": 7, "rsho": 8,
          "lsho": 9, "lelb": 10, "lwri": 11}
_FACE = {"nose": 19, "leye": 20, "reye": 21, "lear": 22, "rear": 23}
# posebank joint name -> SPIN slot, per naming family; SPIN's preprocess scripts decide the ambiguous joints:
# h36m.py / mpi_inf_3dhp.py put thorax/neck in Neck (LSP), spine in Spine (H36M), the head joint in Jaw (H36M)
# and the head top in Head (H36M); mpii.py puts upper neck in Neck (LSP) and head top in Top of Head (LSP).
FAMILIES = {
    "h36m": {**_LIMBS, "neck": 12, "pelv": 14, "tors": 16, "spin": 16, "head": 17, "htop": 18},
    "tdhp": {**_LIMBS, "neck": 12, "pelv": 14, "spin": 16, "head": 17, "htop": 18},
    "mpii": {**_LIMBS, "neck": 12, "head": 13, "pelv": 14, "thor": 15},
    "coco": {**_LIMBS, **_FACE},
    "smpl": {**_LIMBS, "pelv": 14, **{f"{k}_smplx": v for k, v in _FACE.items()}},
    "generic": {k: v for k, v in {**_LIMBS, **_FACE}.items() if k not in ("rhip", "lhip")},
}
DATASET_FAMILY = {"h36m": "h36m", "h36m_alljoints": "h36m", "tdhp": "tdhp", "tdhp_full": "tdhp",
                  "tdhp_test": "tdhp", "muco_3dhp": "tdhp", "mupots": "tdhp", "mpii": "mpii", "coco": "coco",
                  "tdpw": "smpl", "tdpw_test_sub": "smpl", "surreal": "smpl", "agora": "smpl", "bedlam": "smpl"}

# ReFit data_config.py DATASET_FILES: file name -> (posebank dataset or subset, split, cropped layout)
REFIT_FILES = {
    "coco_2014_eft.npz": ("coco", "train", False),
    "mpii_train_eft.npz": ("mpii", "train", False),
    "3dpw_train.npz": ("tdpw", "train", False),
    "3dpw_test.npz": ("tdpw", "test", False),
    "3dpw_test_sub.npz": ("tdpw_test_sub", "test", True),
    "h36m_train.npz": ("h36m", "train", False),
    "mpii3d_train.npz": ("tdhp", "train", False),
    "bedlam_train.npz": ("bedlam", "train", False),
    "agora_train.npz": ("agora", "train", False),
}
OPTIONS = ("file", "split", "cropped", "crop_size", "box_scale", "jpeg_quality")
IMAGE_ROOT = "images"


def spin_slots(dataset: str, names) -> tuple[np.ndarray, np.ndarray, str]:
    """(joint indices, SPIN slots, family) of the joints of ``dataset`` (skeleton ``names``) SPIN has a slot for."""
    family = DATASET_FAMILY.get(dataset, "generic")
    table = FAMILIES[family]
    pairs = [(i, table[n]) for i, n in enumerate(names) if n in table]
    slots = [s for _, s in pairs]
    if len(set(slots)) != len(slots):
        raise UsageError(f"dataset {dataset}", f"two joints map to one SPIN slot ({names})")
    return (np.array([i for i, _ in pairs], np.int64), np.array(slots, np.int64), family)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_.") or "_"


def _check_options(source: ExportSource, options: dict) -> dict:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise UsageError(f"option {unknown[0]!r}", f"unknown for the spin export; options: {', '.join(OPTIONS)}")
    split = options.get("split")
    if split is not None and split not in SPLITS:
        raise UsageError("option split", f"{split!r} is not a split; splits: {', '.join(SPLITS)}")
    file = options.get("file")
    refit = [(f, s, c) for f, (d, s, c) in REFIT_FILES.items() if d == source.name and split in (None, s)]
    if file is None:
        if len(refit) == 1:
            file, split = refit[0][0], refit[0][1]
        elif refit:
            raise UsageError("option split", f"{source.name} has ReFit files for splits "
                             f"{', '.join(s for _, s, _ in refit)}: give one (or option file)")
        else:
            file = f"{source.name}_{split or 'all'}.npz"
    if not isinstance(file, str) or not file.endswith(".npz") or "/" in file or "\\" in file or file.startswith("."):
        raise UsageError("option file", f"{file!r} is not a file name ending in .npz")
    counts = source.split_counts()
    if split is None and file in REFIT_FILES and counts.get(REFIT_FILES[file][1]):
        split = REFIT_FILES[file][1]  # a subset cache is named after its source (tdpw_test_sub: tdpw)
    if split is not None and not counts.get(split):
        raise UsageError("option split", f"{split!r}: {source.name} has no such examples "
                         f"({', '.join(f'{k} {v}' for k, v in counts.items() if v) or 'no examples'})")
    default_cropped = REFIT_FILES.get(file, (None, None, False))[2]
    cropped = options.get("cropped", default_cropped)
    if not isinstance(cropped, bool):
        raise UsageError("option cropped", f"{cropped!r} is not true/false")
    crop_size = options.get("crop_size", 256)
    if isinstance(crop_size, bool) or not isinstance(crop_size, int) or not 16 <= crop_size <= 4096:
        raise UsageError("option crop_size", f"{crop_size!r} is not a whole number of pixels in 16..4096")
    box_scale = options.get("box_scale", 1.2)
    if isinstance(box_scale, bool) or not isinstance(box_scale, (int, float)) or not 0.1 <= box_scale <= 10:
        raise UsageError("option box_scale", f"{box_scale!r} is not a number in 0.1..10")
    quality = options.get("jpeg_quality", 95)
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise UsageError("option jpeg_quality", f"{quality!r} is not a whole number in 1..100")
    return {"file": file, "split": split, "cropped": cropped, "crop_size": crop_size, "box_scale": float(box_scale),
            "jpeg_quality": quality}


def _slot_maps(source: ExportSource) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """dataset -> (joint indices in ``source.joint_info``, SPIN slots, family)."""
    if source.kind == "cache":
        return {source.name: spin_slots(source.name, source.joint_info.names)}
    m = source.reader
    out = {}
    for k, s in enumerate(m.sources):
        names = m.source_cache(k).joint_info.names
        picked = np.asarray(s["source_joint_index"], np.int64)
        idx, slots, family = spin_slots(s["dataset"], [names[p] for p in picked])
        out[s["dataset"]] = (np.asarray(m.joint_maps[k], np.int64)[idx], slots, family)
    return out


def refit_crop_box(center, scale, res: int) -> tuple[np.ndarray, np.ndarray]:
    """The integer upper-left and bottom-right corners ReFit's ``imutils.crop`` cuts (rot = 0)."""
    h = 200.0 * float(scale)
    t = np.array([[res / h, 0, res * (-float(center[0]) / h + 0.5)],
                  [0, res / h, res * (-float(center[1]) / h + 0.5)], [0, 0, 1.0]])
    inv = np.linalg.inv(t)

    def transform(pt):  # imutils.transform(pt, invert=1, asint=True)
        new = inv @ np.array([pt[0] - 1, pt[1] - 1, 1.0])
        return new[:2].astype(int) + 1

    return transform([1, 1]) - 1, transform([res + 1, res + 1]) - 1


def refit_crop(image: np.ndarray, center, scale, res: int) -> np.ndarray:
    """ReFit's ``crop(img, center, scale, [res, res])``: the region [ul, br) with zeros outside the image, resized."""
    import cv2

    ul, br = refit_crop_box(center, scale, res)
    H, W = image.shape[:2]
    new = np.zeros((br[1] - ul[1], br[0] - ul[0], *image.shape[2:]), image.dtype)
    nx = max(0, -ul[0]), min(br[0], W) - ul[0]
    ny = max(0, -ul[1]), min(br[1], H) - ul[1]
    ox = max(0, ul[0]), min(W, br[0])
    oy = max(0, ul[1]), min(H, br[1])
    if nx[1] > nx[0] and ny[1] > ny[0]:
        new[ny[0]:ny[1], nx[0]:nx[1]] = image[oy[0]:oy[1], ox[0]:ox[1]]
    if new.shape[0] < 1 or new.shape[1] < 1:
        return np.zeros((res, res, *image.shape[2:]), image.dtype)
    down = new.shape[0] > res or new.shape[1] > res
    return cv2.resize(new, (res, res), interpolation=cv2.INTER_AREA if down else cv2.INTER_LINEAR)


def _imgname(item, width: int) -> str:
    ex = item.example
    parts = [_safe(p) for p in (ex.subject, ex.sequence, ex.camera_name) if p]
    frame = f"f{ex.frame_index:06d}_" if ex.frame_index >= 0 else ""
    ds = [_safe(item.dataset)] if item.dataset != "" else []
    return "/".join(["imageFiles", *ds, *parts, f"{frame}r{item.source_row:0{width}d}.jpg"])


def export(source: ExportSource, out: Path, options: dict) -> dict:
    """Write ``<out>/<file>.npz`` and its images under ``<out>/images`` (module docstring); returns the summary."""
    from posebank.core.jpeg import encode_jpeg

    o = _check_options(source, options)
    out = Path(out)
    root = out / IMAGE_ROOT
    maps = _slot_maps(source)
    width = max(7, len(str(len(source))))
    cols: dict[str, list] = {k: [] for k in ("imgname", "center", "scale", "part", "S", "pose", "shape",
                                             "has_smpl", "gender", "img_focal", "img_center", "cam_R", "cam_t",
                                             "trans", "orig_shape")}
    n = {"part_keypoints2d": 0, "part_projected": 0, "part_projected_outside": 0, "part_absent": 0,
         "examples_3d": 0, "examples_no_root": 0, "smpl": 0, "smplx_not_exported": 0, "no_fit": 0,
         "betas_truncated": 0, "gender_n": 0, "no_extrinsics": 0, "focal_fx_ne_fy": 0, "skewed_intrinsics": 0}
    made_dirs: set[Path] = set()
    for i, item in enumerate(source.items(o["split"])):
        ex = item.example
        if item.dataset not in maps:
            raise UsageError(f"dataset {item.dataset}", "not among the merge's sources")
        idx, slots, _ = maps[item.dataset]
        cam = ex.camera
        K = cam.intrinsic_matrix
        x, y, w, h = (float(v) for v in ex.bbox)
        center = np.array([x + w / 2, y + h / 2])
        scale = o["box_scale"] * max(w, h) / 200.0
        # 2D
        part = np.zeros((24, 3))
        kp = None if ex.keypoints2d is None else np.asarray(ex.keypoints2d, np.float64)[idx]
        wc = np.asarray(ex.world_coords, np.float64)[idx]
        have3d = np.isfinite(wc).all(axis=1) & bool(ex.has_extrinsics)
        cam_pts = cam.world_to_camera(np.where(have3d[:, None], wc, 0.0))
        for j, slot in enumerate(slots):
            if kp is not None and np.isfinite(kp[j]).all():
                part[slot] = (kp[j, 0], kp[j, 1], 1.0)
                n["part_keypoints2d"] += 1
            elif have3d[j] and cam_pts[j, 2] > 0:
                px = cam.camera_to_image(cam_pts[j])
                inside = 0 <= px[0] <= ex.image_size[0] - 1 and 0 <= px[1] <= ex.image_size[1] - 1
                part[slot] = (px[0], px[1], 1.0 if inside else 0.0)
                n["part_projected"] += 1
                n["part_projected_outside"] += not inside
            else:
                n["part_absent"] += 1
        # 3D, camera frame, metres, root-centred
        S = np.zeros((24, 4))
        if have3d.any():
            n["examples_3d"] += 1
            S[slots[have3d], :3] = cam_pts[have3d] / 1000.0
            S[slots[have3d], 3] = 1.0
            if S[ROOT_SLOT, 3] == 1.0:
                S[:, :3] = np.where(S[:, 3:] > 0, S[:, :3] - S[ROOT_SLOT, :3], 0.0)
            else:
                S[:] = 0.0
                n["examples_no_root"] += 1
        # SMPL
        pose, shape, has_smpl, gender, trans = np.zeros(72), np.zeros(10), 0.0, "n", np.zeros(3)
        fit = ex.body_model
        if fit is not None and fit.model == "smpl":
            orient = (np.asarray(ex.body_model_cam[0], np.float64) if ex.body_model_cam is not None
                      else to_camera(fit, cam.R, cam.t / 1000.0)[0])
            pose = np.concatenate([orient.reshape(3), fit.pose[3:72]])
            b = fit.betas[:10]
            shape[: b.size] = b
            n["betas_truncated"] += bool(np.any(fit.betas[10:] != 0))
            has_smpl, trans = 1.0, fit.trans.copy()
            gender = {"male": "m", "female": "f"}.get(fit.gender, "n")
            n["smpl"] += 1
        elif fit is not None:
            n["smplx_not_exported"] += 1
        else:
            n["no_fit"] += 1
        n["gender_n"] += gender == "n"
        n["no_extrinsics"] += not ex.has_extrinsics
        n["focal_fx_ne_fy"] += bool(abs(K[0, 0] - K[1, 1]) > 1e-6 * abs(K[0, 0]))
        n["skewed_intrinsics"] += bool(K[0, 1] != 0)
        # the image
        name = _imgname(item, width)
        if o["cropped"]:
            name = name.replace("imageFiles", "imageCrops", 1)[: -len(".jpg")] + f"_{i}.jpg"
            img = refit_crop(ex.decode_image(), center, scale, o["crop_size"])
            data = encode_jpeg(img, o["jpeg_quality"])
        else:
            data = ex.image
        path = root / name
        if path.parent not in made_dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            made_dirs.add(path.parent)
        if path.exists():
            raise UsageError(f"image {name}", "two examples give the same image name")
        path.write_bytes(data)
        for k, v in (("imgname", name), ("center", center), ("scale", scale), ("part", part), ("S", S),
                     ("pose", pose), ("shape", shape), ("has_smpl", has_smpl), ("gender", gender),
                     ("img_focal", (K[0, 0] + K[1, 1]) / 2), ("img_center", K[:2, 2].copy()),
                     ("cam_R", cam.R.copy()), ("cam_t", -cam.R @ cam.t), ("trans", trans),
                     ("orig_shape", (ex.image_size[1], ex.image_size[0]))):
            cols[k].append(v)
    count = len(cols["imgname"])
    if not count:
        raise UsageError(f"source {source.name}", f"has no examples{'' if o['split'] is None else ' of ' + o['split']}")
    arrays = {"imgname": np.array(cols["imgname"], dtype=str),
              "center": np.array(cols["center"], np.float64), "scale": np.array(cols["scale"], np.float64),
              "part": np.array(cols["part"], np.float64), "openpose": np.zeros((count, 25, 3))}
    absent = {"openpose": "zeros: posebank has no OpenPose detections"}
    if n["examples_3d"]:
        arrays["S"] = np.array(cols["S"], np.float64)
    else:
        absent["S"] = "no example has 3D joints"
    if n["smpl"]:
        arrays.update(pose=np.array(cols["pose"], np.float64), shape=np.array(cols["shape"], np.float64),
                      has_smpl=np.array(cols["has_smpl"], np.float64))
    else:
        absent["pose/shape/has_smpl"] = "no example has an SMPL fit"
    if any(g != "n" for g in cols["gender"]):
        arrays["gender"] = np.array(cols["gender"], dtype="<U1")
    else:
        absent["gender"] = "no example has a male or female SMPL fit (ReFit then uses the neutral model)"
    arrays["img_focal"] = np.array(cols["img_focal"], np.float64)
    arrays["img_center"] = np.array(cols["img_center"], np.float64)
    if not n["no_extrinsics"]:
        arrays.update(cam_R=np.array(cols["cam_R"], np.float64), cam_t=np.array(cols["cam_t"], np.float64),
                      trans=np.array(cols["trans"], np.float64))
    else:
        absent["cam_R/cam_t/trans"] = f"{n['no_extrinsics']} examples have no extrinsics"
    if o["cropped"]:
        arrays["orig_shape"] = np.array(cols["orig_shape"], np.int64)
    write_npz(out / o["file"], arrays)
    return {"file": o["file"], "image_root": IMAGE_ROOT, "examples": count, "split": o["split"],
            "cropped": o["cropped"], "crop_size": o["crop_size"] if o["cropped"] else None,
            "box_scale": o["box_scale"], "keys": list(arrays), "absent": absent,
            "joint_slots": {d: {"family": fam, "slots": [SPIN_JOINTS[s] for s in sl.tolist()]}
                            for d, (_, sl, fam) in maps.items()},
            "counts": n}
