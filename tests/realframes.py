"""Real video frames of Human3.6M and MPI-INF-3DHP with their full cameras and 3D joints, for tests of crops.

``real_frames()`` returns six :class:`RealFrame`: four Human3.6M frames (S1 Directions 1, S5 SittingDown, S7
Greeting, S8 WalkDog 1) and two MPI-INF-3DHP training frames (S4/Seq2 camera 0, S8/Seq1 camera 8), with what
mmpose's test data says of them (``tests/data/real/h36m/frames/``, ``tests/data/real/tdhp/frames/``;
provenance in ``tests/data/real/PROVENANCE.md``).

* ``camera``: the full calibration in posebank's conventions (``posebank.core.camera``), made by posebank's own
  readers. Human3.6M: :func:`posebank.datasets.h36m.read_cameras` on the release's ``metadata.xml``
  (``tests/data/real/h36m/metadata.xml``): intrinsics, the release's ``h36m`` distortion, R and t, world z up.
  MPI-INF-3DHP: the release's ``camera.calibration`` is not among the samples; mmpose's ``cameras_train.pkl``
  holds what mmpose parsed from it (f, c, and the extrinsic's R and T), which is written back into a
  ``camera.calibration`` block (the release's text layout) and read with
  :func:`posebank.datasets.tdhp.common.read_calibration`: no distortion, world y up.
* ``world_coords`` (J, 3) mm in the dataset's world frame, in the joint order of posebank's converter
  (``joint_names``: ``h36m`` or ``tdhp``'s 17 joints): mmpose's ``S`` (the release's camera-frame joints in metres:
  Human3.6M ``D3_Positions_mono``, 3DHP ``annot3``) times 1000 taken to the world through ``camera``.
* ``keypoints2d`` (J, 2) px: mmpose's ``part``, the release's own 2D annotation (Human3.6M ``D2_Positions``,
  3DHP ``annot2``), same joint order.
* ``box`` [x, y, w, h]: the tight box of the projected joints scaled by 1.1 about its centre
  (``posebank.imaging.crop.box_from_points(camera.project(world_coords), 1.1)``), pixel centres at integer
  coordinates. (Not mmpose's center/scale box, which is 1.2 x the tight box of ``part``, made square.)
* ``frame_index``: the frame's 0-based index in its video (mmpose's file names count from 1).

The image files are decoded with OpenCV (BGR uint8) once per process.
"""

from __future__ import annotations

import dataclasses
import functools
import pickle
import tempfile
from pathlib import Path

import cv2
import numpy as np

from conftest import sample
from posebank.core.camera import Camera
from posebank.datasets import h36m
from posebank.datasets.tdhp import common as tdhp
from posebank.imaging.crop import box_from_points

BOX_EXPANSION = 1.1
# mmpose's 17-joint orders, as release joint indices (tools/dataset_converters/preprocess_h36m.py
# ``movable_joints``, preprocess_mpi_inf_3dhp.py ``joints_17``)
MMPOSE_H36M_JOINTS = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
MMPOSE_TDHP_JOINTS = (7, 5, 14, 15, 16, 9, 10, 11, 23, 24, 25, 18, 19, 20, 4, 3, 6)
TDHP_IMAGE_SIZE = (2048, 2048)  # the training videos (mmpose's pickle says 2048 x 204: a parsing slip)


@dataclasses.dataclass(frozen=True, eq=False)
class RealFrame:
    name: str  # "<dataset>/<mmpose's image name without .jpg>", e.g. "h36m/S7_Greeting.55011271_000396"
    image: np.ndarray  # (H, W, 3) BGR uint8, as decoded from the real JPEG
    camera: Camera  # the raw camera of the frame (posebank's conventions)
    world_coords: np.ndarray  # (J, 3) mm, world frame, joint order ``joint_names``
    box: np.ndarray  # [x, y, w, h]: tight box of the projected joints x 1.1
    dataset: str  # "h36m" or "tdhp" (posebank's dataset whose joints and conventions these are)
    joint_names: tuple[str, ...]
    keypoints2d: np.ndarray  # (J, 2) px, the release's 2D annotation (via mmpose), order ``joint_names``
    subject: str  # "S1"
    sequence: str  # Human3.6M action ("Directions 1"), 3DHP "Seq2"
    camera_name: str  # Human3.6M camera id, 3DHP camera index
    frame_index: int  # 0-based frame of the video
    image_path: Path  # the sample file


def _reorder(mmpose_order, posebank_order) -> list[int]:
    return [list(mmpose_order).index(j) for j in posebank_order]


def _frame(dataset, name, image_path, camera, camera_points_m, part, joint_names, subject, sequence, camera_name,
           frame_index) -> RealFrame:
    image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot decode {image_path}")
    world = camera.camera_to_world(np.asarray(camera_points_m, np.float64) * 1000.0)
    box = box_from_points(camera.project(world), BOX_EXPANSION)
    for a in (image, world, box, part):
        a.setflags(write=False)
    return RealFrame(f"{dataset}/{name}", image, camera, world, box, dataset, tuple(joint_names),
                     np.asarray(part, np.float64), subject, sequence, camera_name, frame_index, image_path)


def _h36m_frames() -> list[RealFrame]:
    cameras = h36m.read_cameras(sample("h36m/metadata.xml"))
    ann = np.load(sample("h36m/frames/test_h36m_body3d.npz"))
    order = _reorder(MMPOSE_H36M_JOINTS, h36m.SELECTED_JOINTS)
    out = []
    for k, relpath in enumerate(ann["imgname"]):
        # "S7/S7_Greeting.55011271/S7_Greeting.55011271_000396.jpg": action with "_" for " ", 1-based frame
        stem = Path(str(relpath)).stem
        subject, rest = stem.split("_", 1)
        video, number = rest.rsplit("_", 1)
        action, camera_id = video.replace("_", " ").rsplit(".", 1)
        out.append(_frame("h36m", stem, sample(f"h36m/frames/{stem}.jpg"), cameras[(int(subject[1:]), camera_id)],
                          ann["S"][k, order, :3], ann["part"][k, order, :2], h36m.JOINT_INFO.names, subject,
                          action, camera_id, int(number) - 1))
    return out


def tdhp_calibration_block(entry: dict, camera_index: int, image_size=TDHP_IMAGE_SIZE) -> str:
    """One camera of mmpose's ``cameras_train.pkl`` as a block of the release's ``camera.calibration`` (mmpose read
    f = intrinsic[0], intrinsic[5], c = intrinsic[2], intrinsic[6] and R, T = the extrinsic's 3 x 4, T / 1000)."""
    (fx, fy), (cx, cy) = np.ravel(entry["f"]), np.ravel(entry["c"])
    intrinsic = [fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    extrinsic = np.eye(4)
    extrinsic[:3, :3] = entry["R"]
    extrinsic[:3, 3] = np.ravel(entry["T"]) * 1000.0
    def numbers(values) -> str:
        return " ".join(repr(float(v)) for v in np.ravel(values))

    return (f"name          {camera_index}\n  sensor      10 10\n  size        {image_size[0]} {image_size[1]}\n"
            f"  animated    0\n  intrinsic   {numbers(intrinsic)} \n  extrinsic   {numbers(extrinsic)} \n"
            f"  radial      0\n")


def tdhp_camera(entry: dict, camera_index: int) -> Camera:
    """The camera of an mmpose ``cameras_train.pkl`` entry, read by posebank's calibration reader."""
    text = f"{tdhp.CALIBRATION_HEADER}\n{tdhp_calibration_block(entry, camera_index)}"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "camera.calibration"
        path.write_text(text)
        return tdhp.read_calibration(path)[camera_index]


def _tdhp_frames() -> list[RealFrame]:
    with open(sample("tdhp/frames/cameras_train.pkl"), "rb") as f:
        entries = pickle.load(f)  # a sample whose sha256 tests/datasets/test_real_samples.py checks
    ann = np.load(sample("tdhp/frames/test_3dhp_train.npz"))
    order = _reorder(MMPOSE_TDHP_JOINTS, tdhp.SELECTED_JOINTS)
    out = []
    for k, name in enumerate(ann["imgname"]):
        stem = Path(str(name)).stem  # "S4_Seq2_Cam0_001033"
        subject, sequence, cam, number = stem.split("_")
        camera_index = int(cam[3:])
        out.append(_frame("tdhp", stem, sample(f"tdhp/frames/{stem}.jpg"),
                          tdhp_camera(entries[f"{subject}_{sequence}_{cam}"], camera_index), ann["S"][k, order, :3],
                          ann["part"][k, order, :2], tdhp.JOINT_INFO.names, subject, sequence, str(camera_index),
                          int(number) - 1))
    return out


@functools.cache
def _all() -> tuple[RealFrame, ...]:
    return (*_h36m_frames(), *_tdhp_frames())


def real_frames() -> list[RealFrame]:
    """The six real frames (four Human3.6M, two MPI-INF-3DHP), decoded once per process; the arrays are read-only
    and each call hands out its own copies of the cameras."""
    return [dataclasses.replace(f, camera=f.camera.copy()) for f in _all()]
