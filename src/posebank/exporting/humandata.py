"""mmhuman3d HumanData export: one ``<out>/<name>.npz`` that mmhuman3d's own ``HumanData.fromfile`` loads, plus the
crops under ``<out>/images/``.

Consumer code read: open-mmlab/mmhuman3d, the 0.11.0 release on the package registry (its
``mmhuman3d/data/data_structures/human_data.py``: ``_HumanData_SUPPORTED_KEYS``, ``__setitem__``'s type / shape /
temporal-length checks, ``load``, ``dump``, ``compress_keypoints_by_mask``; ``core/conventions/keypoints_mapping``:
the 190-joint ``human_data`` convention and ``convert_kps``; ``data/datasets/human_image_dataset.py``: what training
reads; the converters ``data/data_converters/pw3d.py``, ``agora.py``, ``h36m.py``, ``mpi_inf_3dhp.py``,
``coco.py``), checked against the repository at commit 8c95747175f8c4bd76d5e0be7be244f8a9a4a6de
(``docs/human_data.md``).

What the file holds (only keys of ``HumanData.SUPPORTED_KEYS``; written in the order and form ``HumanData.dump``
writes: ``__key_strict__`` (False, as every converter leaves it), ``__data_len__``, ``__keypoints_compressed__``,
then the keys):

- ``image_path`` (N,) str: ``images/<dataset>/<source row>.jpg`` relative to the export folder, the stored crop's
  JPEG bytes unchanged. mmhuman3d joins it to ``<data_prefix>/datasets/<dataset_name>/``: point that at the folder.
- ``bbox_xywh`` (N, 5) float32: the cache's box ``x, y, w, h`` in the crop, confidence 1.
- ``keypoints2d`` (N, K, 3) float32: the cache's 2D joints (crop pixels), confidence 1 where the joint is there, the
  whole row zero where not (mmhuman3d's masked-joint convention); ``keypoints3d`` (N, K, 4) float32: the 3D joints in
  the crop camera's frame (OpenCV axes) in **metres**, not root-aligned, as the converters store them (h36m.py and
  mpi_inf_3dhp.py divide the mm annotations by 1000, agora.py keeps metres; docs/human_data.md: annotations in the
  camera frame, root alignment "not preferred"), zero where absent. Joints are in the ``human_data`` convention
  (:data:`HUMAN_DATA`, 190 names), each posebank joint at the name mmhuman3d's own convention for that dataset gives
  it (:func:`tables`; a merge's ``<name>_<suffix>`` joints through the table of the source's ``joints_as`` dataset or
  its own), so ``convert_kps(kps, 'human_data', dst)`` gives any mmhuman3d convention. ``keypoints{2,3}d_mask``
  (190,) uint8: 1 for the joints some example has; ``_convention`` ``'human_data'``. By default the arrays are
  stored as mmhuman3d's converters dump them, compressed by the mask (``__keypoints_compressed__`` True: only the
  mask's columns, ``HumanData.__getitem__`` pads them back); ``compress_keypoints: false`` stores K = 190. A kind
  with no joint at all (COCO has no 3D) is left out with its mask and convention.
- ``smpl`` dict (where some example has an SMPL fit): ``global_orient`` (N, 3), ``body_pose`` (N, 23, 3),
  ``betas`` (N, 10), ``transl`` (N, 3), float64, in the crop camera's frame (the cache's ``global_orient_cam`` /
  ``trans_cam``; pw3d.py likewise rotates the orientation into the camera; ``transl`` is zero where the cache does
  not know it). ``smplx`` dict (SMPL-X fits): ``global_orient``, ``body_pose`` (N, 21, 3), ``jaw_pose``,
  ``leye_pose``, ``reye_pose`` (N, 3), ``left_hand_pose`` / ``right_hand_pose`` (N, 15, 3), ``betas`` (N, 10),
  ``transl`` (N, 3), ``expression`` (N, 10) zeros (posebank keeps no expression), as agora.py. Rows without a fit of
  that model are zero; ``meta['has_smpl']`` / ``meta['has_smplx']`` say which rows have one. Betas beyond 10 are
  cut (counted in the summary).
- ``meta`` dict of (N,) arrays: ``gender`` ('m' / 'f' / 'n' neutral / '' no fit; HumanImageDataset's evaluation
  tests ``== 'm'``), ``has_smpl``, ``has_smplx``, ``has_transl`` (0: the cache does not know the fit's root, so
  not its camera-frame translation, e.g. BEDLAM without the SMPL-X model files; ``transl`` is zero there),
  ``dataset``, ``source_row``, ``split``, ``subject``, ``sequence``, ``camera_name``, ``frame_index``, ``width``,
  ``height`` (of the crop), ``focal_length`` (N, 2) and ``principal_point`` (N, 2) of the crop camera
  (docs/human_data.md's meta suggestions).
- ``misc`` dict: ``kps3d_root_aligned`` False, ``bbox_source`` ``'provide_by_dataset'``, ``cam_param_type``
  ``'perspective'``, ``keypoints3d_unit`` ``'m'``, ``keypoints3d_frame`` ``'camera'``, ``image_size`` ``'per
  example (meta width, height)'``.
- ``config`` str: mmhuman3d's name of the dataset (``pw3d``, ``h36m``, ``mpi_inf_3dhp``, ...; a merge: its name).

Pickle: ``HumanData.dump`` is ``numpy.savez_compressed`` of the dict, so the ``smpl`` / ``smplx`` / ``meta`` /
``misc`` dicts are 0-d object arrays (pickled; ``HumanData.load`` reads them with ``np.load(allow_pickle=True)``).
This export writes exactly that, with only numpy arrays (no object dtype) and builtins (str, bool) inside them;
every other entry is a plain array (``config`` and the conventions are 0-d str arrays, ``image_path`` a str array).

Not filled: ``image_id``, ``vertices``, ``keypoints*_original`` / ``_smpl`` variants; ``cam_param`` and
``has_smpl`` as top-level keys (not SUPPORTED_KEYS: strict HumanData refuses them; mmhuman3d's HumanImageDataset
reads a top-level ``has_smpl`` and otherwise takes every row of an ``smpl`` dict as fitted: pass option
``has_smpl_key: true`` to write it anyway, for non-strict readers); the mask (every crop's mask stays in the cache).
Posebank joints that no mmhuman3d convention names (h36m_alljoints' feet, toes, thumbs and fingers) are left out,
listed in the summary's ``unmapped_joints``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from posebank.core.errors import UsageError
from posebank.exporting.common import ExportSource, write_npz

# mmhuman3d core/conventions/keypoints_mapping/human_data.py HUMAN_DATA, in its order (the test checks it)
HUMAN_DATA: tuple[str, ...] = tuple((
    "pelvis,left_hip,right_hip,spine_1,left_knee,right_knee,spine_2,left_ankle,right_ankle,spine_3,"
    "left_foot,right_foot,neck,left_collar,right_collar,head,left_shoulder,right_shoulder,left_elbow,"
    "right_elbow,left_wrist,right_wrist,jaw,left_eyeball,right_eyeball,left_index_1,left_index_2,"
    "left_index_3,left_middle_1,left_middle_2,left_middle_3,left_pinky_1,left_pinky_2,left_pinky_3,"
    "left_ring_1,left_ring_2,left_ring_3,left_thumb_1,left_thumb_2,left_thumb_3,right_index_1,"
    "right_index_2,right_index_3,right_middle_1,right_middle_2,right_middle_3,right_pinky_1,"
    "right_pinky_2,right_pinky_3,right_ring_1,right_ring_2,right_ring_3,right_thumb_1,right_thumb_2,"
    "right_thumb_3,nose,right_eye,left_eye,right_ear,left_ear,left_bigtoe,left_smalltoe,left_heel,"
    "right_bigtoe,right_smalltoe,right_heel,left_thumb,left_index,left_middle,left_ring,left_pinky,"
    "right_thumb,right_index,right_middle,right_ring,right_pinky,right_eyebrow_1,right_eyebrow_2,"
    "right_eyebrow_3,right_eyebrow_4,right_eyebrow_5,left_eyebrow_5,left_eyebrow_4,left_eyebrow_3,"
    "left_eyebrow_2,left_eyebrow_1,nosebridge_1,nosebridge_2,nosebridge_3,nosebridge_4,right_nose_2,"
    "right_nose_1,nose_middle,left_nose_1,left_nose_2,right_eye_1,right_eye_2,right_eye_3,right_eye_4,"
    "right_eye_5,right_eye_6,left_eye_4,left_eye_3,left_eye_2,left_eye_1,left_eye_6,left_eye_5,"
    "right_mouth_1,right_mouth_2,right_mouth_3,mouth_top,left_mouth_3,left_mouth_2,left_mouth_1,"
    "left_mouth_5,left_mouth_4,mouth_bottom,right_mouth_4,right_mouth_5,right_lip_1,right_lip_2,lip_top,"
    "left_lip_2,left_lip_1,left_lip_3,lip_bottom,right_lip_3,right_contour_1,right_contour_2,"
    "right_contour_3,right_contour_4,right_contour_5,right_contour_6,right_contour_7,right_contour_8,"
    "contour_middle,left_contour_8,left_contour_7,left_contour_6,left_contour_5,left_contour_4,"
    "left_contour_3,left_contour_2,left_contour_1,right_hip_extra,left_hip_extra,neck_extra,headtop,"
    "pelvis_extra,thorax_extra,spine_extra,jaw_extra,head_extra,nose_openpose,neck_openpose,"
    "right_shoulder_openpose,right_elbow_openpose,right_wrist_openpose,left_shoulder_openpose,"
    "left_elbow_openpose,left_wrist_openpose,pelvis_openpose,right_hip_openpose,right_knee_openpose,"
    "right_ankle_openpose,left_hip_openpose,left_knee_openpose,left_ankle_openpose,right_eye_openpose,"
    "left_eye_openpose,right_ear_openpose,left_ear_openpose,left_bigtoe_openpose,left_smalltoe_openpose,"
    "left_heel_openpose,right_bigtoe_openpose,right_smalltoe_openpose,right_heel_openpose,spine_4_3dhp,"
    "left_clavicle_3dhp,right_clavicle_3dhp,left_hand_3dhp,right_hand_3dhp,left_toe_3dhp,right_toe_3dhp,"
    "head_h36m,headtop_h36m,head_bottom_pt,left_hand,right_hand"
).split(","))
HD_INDEX = {n: i for i, n in enumerate(HUMAN_DATA)}
N_HD = len(HUMAN_DATA)  # 190

# posepile's SMPL joint names (the SMPL order) -> mmhuman3d's ``smpl`` convention (HUMAN_DATA[:22] + the hands)
_POSEPILE_SMPL = ("pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,lelb,"
                  "relb,lwri,rwri,lhan,rhan").split(",")
SMPL = dict(zip(_POSEPILE_SMPL, (*HUMAN_DATA[:22], "left_hand", "right_hand")))
_LIMBS = {f"{s}{a}": f"{side}_{b}" for s, side in (("l", "left"), ("r", "right"))
          for a, b in (("sho", "shoulder"), ("elb", "elbow"), ("wri", "wrist"), ("kne", "knee"), ("ank", "ankle"))}
# mmhuman3d's h36m convention (posebank's h36m names are posepile's: tors = spine, neck = thorax, head = nose/neck)
H36M = {**_LIMBS, "rhip": "right_hip_extra", "lhip": "left_hip_extra", "pelv": "pelvis_extra",
        "tors": "spine_extra", "spin": "spine_extra", "neck": "neck_extra", "head": "head_extra", "htop": "headtop"}
# mmhuman3d's mpi_inf_3dhp (28) / mpi_inf_3dhp_test (17) conventions, posebank's 3DHP names (posepile's)
TDHP = {**H36M, "thor": "spine_3", "spi3": "spine_3", "spi4": "spine_4_3dhp", "spi2": "spine_2",
        "lcla": "left_clavicle_3dhp", "rcla": "right_clavicle_3dhp", "lhan": "left_hand_3dhp",
        "rhan": "right_hand_3dhp", "lfoo": "left_foot", "rfoo": "right_foot", "ltoe": "left_toe_3dhp",
        "rtoe": "right_toe_3dhp"}
del TDHP["tors"]
# mmhuman3d's coco convention
COCO = {**_LIMBS, "nose": "nose", "leye": "left_eye", "reye": "right_eye",
        "lear": "left_ear", "rear": "right_ear", "lhip": "left_hip_extra", "rhip": "right_hip_extra"}
# mmhuman3d's mpii convention (posebank's mpii: neck = upper neck, head = head top)
MPII = {**_LIMBS, "rhip": "right_hip_extra", "lhip": "left_hip_extra", "pelv": "pelvis_extra",
        "thor": "thorax_extra", "neck": "neck_extra", "head": "headtop"}
H36M_ALL = {k: v for k, v in H36M.items() if k != "tors"}  # rfoo, rtoe, lthu, lfin, ... : no mmhuman3d name
# AIST++'s and CMU Panoptic's 19 joints (posepile's): COCO's 17, the neck and the pelvis
COCO19 = {**COCO, "neck": "neck_extra", "pelv": "pelvis_extra"}
# 3DPeople's 29 joints (posepile's names): the body joints with a human_data name (spine, clavicle, hand, foot and toe
# joints of its rig have none)
TDPEOPLE = {**_LIMBS, "pelv": "pelvis_extra", "lhip": "left_hip_extra", "rhip": "right_hip_extra",
            "neck": "neck_extra", "head": "head_extra", "htop": "headtop", "leye": "left_eye", "reye": "right_eye"}

# JTA's 22 (posepile's names): limbs, hips, pelvis, neck, head and head top; clavicles and spine0-3 have no slot
JTA = {**_LIMBS, "rhip": "right_hip_extra", "lhip": "left_hip_extra", "pelv": "pelvis_extra", "neck": "neck_extra",
       "head": "head_extra", "htop": "headtop"}

# HUMBI's 25 OpenPose BODY_25 joints (posepile's ``*_coco`` names; foo / toe / hee are the big toe, small toe and
# heel) -> mmhuman3d's openpose_25 convention
_BODY25 = {"nose": "nose", "neck": "neck", "pelv": "pelvis", "reye": "right_eye", "leye": "left_eye",
           "rear": "right_ear", "lear": "left_ear",
           **{f"{s}{a}": f"{side}_{b}" for s, side in (("l", "left"), ("r", "right"))
              for a, b in (("sho", "shoulder"), ("elb", "elbow"), ("wri", "wrist"), ("hip", "hip"), ("kne", "knee"),
                           ("ank", "ankle"), ("foo", "bigtoe"), ("toe", "smalltoe"), ("hee", "heel"))}}
HUMBI = {f"{k}_coco": f"{v}_openpose" for k, v in _BODY25.items()}
# HSPACE's 35 GHUM joints (posepile's ghum_35 names): limbs, hips, pelvis, neck, head, clavicles, heels and thumbs;
# the spine, brow, middle-finger, foot and toe joints of GHUM's rig have no human_data slot of the same point
HSPACE = {**_LIMBS, "lhip": "left_hip_extra", "rhip": "right_hip_extra", "pelv": "pelvis_extra", "neck": "neck_extra",
          "head": "head_extra", "lcla": "left_clavicle_3dhp", "rcla": "right_clavicle_3dhp", "lhee": "left_heel",
          "rhee": "right_heel"}

# TotalCapture's 21 Vicon joints (posepile's names): the limbs, hips, pelvis, neck and clavicles; its spine joints and
# its head joint (the skull's base) have no human_data slot
TOTALCAPTURE = {**_LIMBS, "lhip": "left_hip_extra", "rhip": "right_hip_extra", "pelv": "pelvis_extra",
                "neck": "neck_extra", "lcla": "left_clavicle_3dhp", "rcla": "right_clavicle_3dhp"}

# Berkeley MHAD's 43 surface markers (posepile's names): only the heel markers sit where a human_data keypoint is (the
# heels); the others (head, back, shoulder, arm, hand, hip, leg and foot markers) are on the skin, off the joints
BMHAD = {"lhee": "left_heel", "rhee": "right_heel"}

# SAIL-VOS's 26 (posepile's): COCO19's and the head top, head, spine and hands (the toes have no mmhuman3d name)
SAILVOS = {**COCO19, "htop": "headtop", "head": "head_extra", "spin": "spine_extra", "lhan": "left_hand",
           "rhan": "right_hand"}

# UMPM's 15 virtual markers (posepile's names): the limbs, hips, pelvis and neck; its head marker (whether the head's
# centre or top is not documented) has no slot taken
UMPM = {**_LIMBS, "lhip": "left_hip_extra", "rhip": "right_hip_extra", "pelv": "pelvis_extra", "neck": "neck_extra"}

# MADS's 19 (posepile's): limbs, hips, pelvis, neck, head and hands; its toe points have no human_data slot
MADS = {**_LIMBS, "lhip": "left_hip_extra", "rhip": "right_hip_extra", "pelv": "pelvis_extra", "neck": "neck_extra",
        "head": "head_extra", "lhan": "left_hand", "rhan": "right_hand"}

# 3DOH50K's 14 LSP joints (posepile's names) -> mmhuman3d's lsp convention (its head joint is the head top)
TDOH = {**_LIMBS, "rhip": "right_hip_extra", "lhip": "left_hip_extra", "neck": "neck_extra", "head": "headtop"}

# BMLmovi's 87 (posepile's): of its 20 virtual joints the limbs, hips, hands, the thorax and the mid-hip (the hip
# joints' centre); its 67 skin markers and the pelvis, head and foot joints of its Visual3D model have no slot
BML_MOVI = {**_LIMBS, "lhip": "left_hip_extra", "rhip": "right_hip_extra", "mhip": "pelvis_extra",
            "thor": "thorax_extra", "lhan": "left_hand", "rhan": "right_hand"}

# GPA's 34 Vicon joints (posepile's names): the limbs, hips, pelvis, neck, head, head top, clavicles and hands; its
# four spine joints, fingers, thumbs, feet and toes have no human_data slot of the same point
GPA = {**_LIMBS, "lhip": "left_hip_extra", "rhip": "right_hip_extra", "pelv": "pelvis_extra", "neck": "neck_extra",
       "head": "head_extra", "htop": "headtop", "lcla": "left_clavicle_3dhp", "rcla": "right_clavicle_3dhp",
       "lhan": "left_hand", "rhan": "right_hand"}

# ASPset-510's 17 (posepile's names): limbs, hips, pelvis, spine, neck, head and head top
ASPSET = {**_LIMBS, "rhip": "right_hip_extra", "lhip": "left_hip_extra", "pelv": "pelvis_extra",
          "spin": "spine_extra", "neck": "neck_extra", "head": "head_extra", "htop": "headtop"}

# HUMAN4D's 32 (posepile's names): limbs, hips, pelvis and head top; its spine, neck, hand and foot joints have no
# mmhuman3d name of the same definition
HUMAN4D = {**_LIMBS, "rhip": "right_hip_extra", "lhip": "left_hip_extra", "pelv": "pelvis_extra", "htop": "headtop"}


@functools.cache
def _smplx() -> dict[str, str]:
    """posepile's 127 SMPL-X joint names -> mmhuman3d's ``smplx`` convention (HUMAN_DATA[:127], the same order)."""
    from posebank.datasets.agora import SMPLX_NAMES

    return dict(zip(SMPLX_NAMES, HUMAN_DATA[:127]))


def tables() -> dict[str, dict[str, str]]:
    """Every registered dataset's joint names -> human_data names (the joints a dataset's table lacks are
    reported, not guessed)."""
    smplx = _smplx()
    return {"h36m": H36M, "h36m_alljoints": H36M_ALL, "tdhp": TDHP, "tdhp_full": TDHP, "tdhp_test": TDHP,
            "muco_3dhp": TDHP, "mupots": TDHP, "surreal": SMPL, "tdpw": SMPL, "coco": COCO, "mpii": MPII,
            "agora": {**SMPL, **{f"{k}_smplx": v for k, v in smplx.items()}}, "bedlam": smplx,
            "aist": COCO19, "panoptic": COCO19, "tdpeople": TDPEOPLE, "jta": JTA,
            "totalcapture": TOTALCAPTURE, "humbi": HUMBI, "hspace": HSPACE, "rich": smplx, "sailvos": SAILVOS,
            "umpm": UMPM, "bmhad": BMHAD, "mads": MADS, "tdoh": TDOH, "bml_movi": BML_MOVI, "gpa": GPA,
            "aspset": ASPSET, "ikea": COCO,
            "fit3d": H36M_ALL, "chi3d": H36M_ALL, "humansc3d": H36M_ALL,
            "behave": {**SMPL, **HUMBI}, "human4d": HUMAN4D, "spec": SMPL}


# posebank dataset -> mmhuman3d's dataset name (``config``)
MMHUMAN3D_NAMES = {"tdpw": "pw3d", "tdhp": "mpi_inf_3dhp", "tdhp_full": "mpi_inf_3dhp", "tdhp_test": "mpi_inf_3dhp",
                   "muco_3dhp": "muco3dhp", "mupots": "mupots3d"}
GENDER_CODES = {"male": "m", "female": "f", "neutral": "n"}
N_BETAS = 10
OPTIONS = ("split", "file", "compress_keypoints", "has_smpl_key")


# ------------------------------------------------------------------------------------------ joint maps
class _JointMap:
    """A source's joints (columns of ``ExportSource.joint_info``) -> human_data slots, in priority levels: a slot
    named by several joints takes the first present one in skeleton order."""

    def __init__(self, columns: list[int], names: list[str], table: dict[str, str]):
        per_slot: dict[int, list[int]] = {}
        self.unmapped: list[str] = []
        for col, name in zip(columns, names):
            hd = table.get(name)
            if hd is None:
                self.unmapped.append(name)
            else:
                per_slot.setdefault(HD_INDEX[hd], []).append(col)
        self.slots = sorted(per_slot)
        depth = max((len(v) for v in per_slot.values()), default=0)
        # levels[k] = (slots, columns) of the k-th candidate of every slot that has one
        self.levels = []
        for k in range(depth):
            pairs = [(s, per_slot[s][k]) for s in self.slots if len(per_slot[s]) > k]
            self.levels.append((np.array([p[0] for p in pairs], np.int64), np.array([p[1] for p in pairs], np.int64)))

    def apply(self, values: np.ndarray, present: np.ndarray, out: np.ndarray, out_present: np.ndarray) -> None:
        """Scatter ``values`` (J, D) where ``present`` (J,) into ``out`` (190, D), lower levels first."""
        for slots, cols in reversed(self.levels):
            ok = present[cols]
            out[slots[ok]] = values[cols[ok]]
            out_present[slots[ok]] = True


def _joint_maps(source: ExportSource) -> dict[str, _JointMap]:
    """dataset -> its joint map into human_data (a cache: one; a merge: one per present source)."""
    known = tables()

    def table_of(dataset: str, where: str) -> dict[str, str]:
        if dataset not in known:
            raise UsageError(where, f"no human_data joint mapping for dataset {dataset!r}; mapped: "
                                    f"{', '.join(sorted(known))}")
        return known[dataset]

    if source.kind == "cache":
        names = list(source.joint_info.names)
        return {source.name: _JointMap(list(range(len(names))), names,
                                       table_of(source.name, f"cache {source.path}"))}
    maps = {}
    union = source.joint_info.ids
    for s in source.reader.sources:
        suffix = s.get("suffix") or ""
        target = s.get("joints_as") or s["dataset"]
        cols, local = [], []
        for name in s["joint_names"]:
            cols.append(union[name])
            local.append(name[: -len(suffix) - 1] if suffix and name.endswith(f"_{suffix}") else name)
        maps[s["dataset"]] = _JointMap(cols, local, table_of(target, f"merge {source.name}: source {s['dataset']}"))
    return maps


# ------------------------------------------------------------------------------------------ options
def _options(source: ExportSource, options: dict) -> dict:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise UsageError(f"humandata option {unknown[0]!r}", f"unknown; options: {', '.join(OPTIONS)}")
    split = options.get("split")
    if split is not None and not isinstance(split, str):
        raise UsageError("humandata option 'split'", f"must be a split name, got {split!r}")
    name = options.get("file")
    if name is None:
        name = f"{source.name}_{split}.npz" if split else f"{source.name}.npz"
    if not isinstance(name, str) or not name.endswith(".npz") or "/" in name or "\\" in name or name.startswith("."):
        raise UsageError("humandata option 'file'", f"must be a plain file name ending in .npz, got {name!r}")
    flags = {}
    for key, default in (("compress_keypoints", True), ("has_smpl_key", False)):
        value = options.get(key, default)
        if not isinstance(value, bool):
            raise UsageError(f"humandata option {key!r}", f"must be true or false, got {value!r}")
        flags[key] = value
    return {"split": split, "file": name, **flags}


def _object(value: dict) -> np.ndarray:
    """A 0-d object array holding ``value``: what ``numpy.savez`` makes of a dict (HumanData.dump)."""
    a = np.empty((), object)
    a[()] = value
    return a


class _Column:
    """Rows of one output array, gathered in blocks (a list of small arrays per example would cost more than the
    values)."""

    BLOCK = 4096

    def __init__(self, dtype):
        self.dtype = dtype
        self.blocks: list[np.ndarray] = []
        self.rows: list = []

    def append(self, value) -> None:
        self.rows.append(value)
        if len(self.rows) >= self.BLOCK:
            self._flush()

    def _flush(self) -> None:
        if self.rows:
            self.blocks.append(np.asarray(self.rows, self.dtype))
            self.rows = []

    def array(self) -> np.ndarray:
        self._flush()
        out = np.concatenate(self.blocks) if len(self.blocks) > 1 else self.blocks[0]
        self.blocks = [out]
        return out


# ------------------------------------------------------------------------------------------ the export
def export(source: ExportSource, out: Path, options: dict) -> dict:
    """Write ``<out>/<file>`` (HumanData npz) and ``<out>/images/<dataset>/<row>.jpg``; return the summary.

    Options: ``split`` (train / val / test; default every example), ``file`` (default ``<name>.npz``, with a
    split ``<name>_<split>.npz``), ``compress_keypoints`` (default true: stored as mmhuman3d's converters dump
    them, by mask), ``has_smpl_key`` (default false: also write the top-level ``has_smpl`` HumanImageDataset reads,
    which strict HumanData does not allow)."""
    out = Path(out)
    opts = _options(source, options)
    maps = _joint_maps(source)
    all_slots = sorted({s for m in maps.values() for s in m.slots})
    n_slots = len(all_slots)
    images = out / "images"

    image_path = _Column(str)
    bbox = _Column(np.float32)
    kp2 = _Column(np.float32)
    kp3 = _Column(np.float32)
    smpl = {k: _Column(np.float64) for k in ("global_orient", "body_pose", "betas", "transl")}
    smplx = {k: _Column(np.float64) for k in ("global_orient", "body_pose", "jaw_pose", "leye_pose", "reye_pose",
                                               "left_hand_pose", "right_hand_pose", "betas", "transl")}
    meta_types = {"gender": str, "has_smpl": np.uint8, "has_smplx": np.uint8, "has_transl": np.uint8,
                  "dataset": str, "source_row": np.int64, "split": str, "subject": str, "sequence": str,
                  "camera_name": str, "frame_index": np.int64, "width": np.int32, "height": np.int32,
                  "focal_length": np.float32, "principal_point": np.float32}
    meta = {k: _Column(t) for k, t in meta_types.items()}
    counts = {"examples": 0, "with_3d": 0, "with_2d": 0, "smpl": 0, "smplx": 0, "transl_unknown": 0,
              "betas_truncated": 0, "body_model_without_camera_frame": 0}
    made_dirs: set[str] = set()
    zero_smpl = {"global_orient": np.zeros(3), "body_pose": np.zeros((23, 3)), "betas": np.zeros(N_BETAS),
                 "transl": np.zeros(3)}
    zero_smplx = {"global_orient": np.zeros(3), "body_pose": np.zeros((21, 3)), "jaw_pose": np.zeros(3),
                  "leye_pose": np.zeros(3), "reye_pose": np.zeros(3), "left_hand_pose": np.zeros((15, 3)),
                  "right_hand_pose": np.zeros((15, 3)), "betas": np.zeros(N_BETAS), "transl": np.zeros(3)}

    for item in source.items(opts["split"]):
        ex = item.example
        jmap = maps[item.dataset]
        counts["examples"] += 1
        # image
        if item.dataset not in made_dirs:
            (images / item.dataset).mkdir(parents=True, exist_ok=True)
            made_dirs.add(item.dataset)
        rel = f"images/{item.dataset}/{item.source_row:08d}.jpg"
        (out / rel).write_bytes(ex.image)
        image_path.append(rel)
        b = np.asarray(ex.bbox, np.float32).reshape(4)
        bbox.append(np.array([*b, 1.0], np.float32))
        # 3D joints, crop camera frame, metres
        full3 = np.zeros((N_HD, 4), np.float32)
        pres3 = np.zeros(N_HD, bool)
        wc = np.asarray(ex.world_coords, np.float64)
        ok3 = np.isfinite(wc).all(axis=1)
        if ex.has_extrinsics and ok3.any():
            cam = np.zeros_like(wc)
            cam[ok3] = ex.camera.world_to_camera(wc[ok3]) / 1000.0
            vals = np.concatenate([cam, np.ones((len(cam), 1))], axis=1).astype(np.float32)
            jmap.apply(vals, ok3, full3, pres3)
        kp3.append(full3[all_slots])
        counts["with_3d"] += bool(pres3.any())
        # 2D joints, crop pixels
        full2 = np.zeros((N_HD, 3), np.float32)
        pres2 = np.zeros(N_HD, bool)
        if ex.keypoints2d is not None:
            k2 = np.asarray(ex.keypoints2d, np.float64)
            ok2 = np.isfinite(k2).all(axis=1)
            if ok2.any():
                vals = np.concatenate([np.where(ok2[:, None], k2, 0.0), np.ones((len(k2), 1))], axis=1)
                jmap.apply(vals.astype(np.float32), ok2, full2, pres2)
        kp2.append(full2[all_slots])
        counts["with_2d"] += bool(pres2.any())
        # body model, crop camera frame
        fit = ex.body_model
        has = {"smpl": False, "smplx": False}
        has_transl = False
        gender = ""
        if fit is not None and ex.body_model_cam is None:
            counts["body_model_without_camera_frame"] += 1
        elif fit is not None:
            orient, trans = (np.asarray(a, np.float64).reshape(3) for a in ex.body_model_cam)
            has_transl = bool(np.isfinite(trans).all())
            if not has_transl:
                trans = np.zeros(3)
                counts["transl_unknown"] += 1
            betas = np.zeros(N_BETAS)
            nb = min(len(fit.betas), N_BETAS)
            betas[:nb] = fit.betas[:nb]
            if np.any(fit.betas[N_BETAS:] != 0):
                counts["betas_truncated"] += 1
            pose = fit.pose
            has[fit.model] = True
            counts[fit.model] += 1
            gender = GENDER_CODES[fit.gender]
            if fit.model == "smpl":
                row = {"global_orient": orient, "body_pose": pose[3:72].reshape(23, 3), "betas": betas,
                       "transl": trans}
            else:
                row = {"global_orient": orient, "body_pose": pose[3:66].reshape(21, 3), "jaw_pose": pose[66:69],
                       "leye_pose": pose[69:72], "reye_pose": pose[72:75],
                       "left_hand_pose": pose[75:120].reshape(15, 3), "right_hand_pose": pose[120:165].reshape(15, 3),
                       "betas": betas, "transl": trans}
        for model, target, zero in (("smpl", smpl, zero_smpl), ("smplx", smplx, zero_smplx)):
            for k in target:
                target[k].append(row[k] if has[model] else zero[k])
        # meta
        k_mat = ex.camera.intrinsic_matrix
        w, h = ex.image_size
        for key, value in (("gender", gender), ("has_smpl", has["smpl"]), ("has_smplx", has["smplx"]),
                           ("has_transl", has_transl),
                           ("dataset", item.dataset), ("source_row", item.source_row), ("split", ex.split),
                           ("subject", ex.subject), ("sequence", ex.sequence), ("camera_name", ex.camera_name),
                           ("frame_index", ex.frame_index), ("width", w), ("height", h),
                           ("focal_length", (k_mat[0, 0], k_mat[1, 1])),
                           ("principal_point", (k_mat[0, 2], k_mat[1, 2]))):
            meta[key].append(str(value) if meta_types[key] is str else value)

    n = counts["examples"]
    if n == 0:
        raise UsageError(f"split {opts['split']!r}" if opts["split"] else f"source {source.path}",
                         "no examples to export")

    arrays: dict[str, np.ndarray] = {}
    absent: list[str] = []
    keypoints = {}
    for key, rows, dim in (("keypoints2d", kp2, 3), ("keypoints3d", kp3, 4)):
        stacked = rows.array() if n_slots else np.zeros((n, 0, dim), np.float32)
        seen = stacked[:, :, -1].max(axis=0) > 0 if n_slots else np.zeros(0, bool)
        if not seen.any():
            absent.append(key)
            continue
        mask = np.zeros(N_HD, np.uint8)
        mask[np.asarray(all_slots)[seen]] = 1
        if opts["compress_keypoints"]:
            values = stacked[:, seen]
        else:
            values = np.zeros((n, N_HD, dim), np.float32)
            values[:, all_slots] = stacked
        keypoints[key] = (mask, values)
        del stacked

    arrays["__key_strict__"] = np.array(False)
    arrays["__data_len__"] = np.array(n, np.int64)
    arrays["__keypoints_compressed__"] = np.array(bool(opts["compress_keypoints"] and keypoints))
    arrays["image_path"] = image_path.array()
    arrays["bbox_xywh"] = bbox.array()
    for key, (mask, values) in keypoints.items():
        arrays[f"{key}_mask"] = mask
        arrays[key] = values
        arrays[f"{key}_convention"] = np.array("human_data")
    for model, target in (("smpl", smpl), ("smplx", smplx)):
        if counts[model]:
            d = {k: v.array() for k, v in target.items()}
            if model == "smplx":
                d["expression"] = np.zeros((n, 10))
            arrays[model] = _object(d)
        else:
            absent.append(model)
    meta_arrays = {k: v.array() for k, v in meta.items()}
    arrays["meta"] = _object(meta_arrays)
    arrays["misc"] = _object({"kps3d_root_aligned": False, "bbox_source": "provide_by_dataset",
                              "cam_param_type": "perspective", "keypoints3d_unit": "m",
                              "keypoints3d_frame": "camera", "image_size": "per example (meta width, height)",
                              "posebank_source": source.name, "posebank_kind": source.kind})
    arrays["config"] = np.array(MMHUMAN3D_NAMES.get(source.name, source.name))
    if opts["has_smpl_key"]:
        arrays["has_smpl"] = meta_arrays["has_smpl"].copy()
    write_npz(out / opts["file"], arrays, compress=True, allow_pickle=True)

    unmapped = {d: m.unmapped for d, m in maps.items() if m.unmapped}
    return {"file": opts["file"], "images": "images", "examples": n, "split": opts["split"],
            "keypoints_compressed": bool(arrays["__keypoints_compressed__"]),
            "keypoints2d_joints": int(keypoints["keypoints2d"][0].sum()) if "keypoints2d" in keypoints else 0,
            "keypoints3d_joints": int(keypoints["keypoints3d"][0].sum()) if "keypoints3d" in keypoints else 0,
            "keypoints3d_unit": "m", "absent": absent, "unmapped_joints": unmapped,
            "counts": counts, "has_smpl_key": opts["has_smpl_key"]}
