"""A miniature HUMBI body-session raw tree in the release's layout, for tests and demos (see :func:`make_fixture`)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from posebank.datasets.humbi import IGNORE_LIST, IMAGE_SIZE, JOINT_INFO, N_RAW_JOINTS, SELECTED_JOINTS

FIXTURE_MARKER = ".posebank-fixture"
MARK_RADIUS = 4.0
SUBJECTS = (1, 82)
CALIBRATED = (0, 3, 24, 60, 87, 101)  # camera ids in the calibration files
IMAGED = (0, 24, 87)  # cameras with images in every frame ...
UNCALIBRATED = 105  # ... and one camera that the calibration lacks (its images are skipped)
N_FRAMES = 2
# a standing person in posepile's joint order (nose neck rsho relb rwri lsho lelb lwri rhip rkne rank lhip lkne lank
# reye leye rear lear lfoo ltoe lhee rfoo rtoe rhee pelv): (left, forward, up) metres in the person's own frame
_TEMPLATE = np.array([
    (0, 0.09, 1.62), (0, 0, 1.48), (-0.18, 0, 1.44), (-0.30, 0.02, 1.18), (-0.33, 0.06, 0.94), (0.18, 0, 1.44),
    (0.30, 0.02, 1.18), (0.33, 0.06, 0.94), (-0.10, 0, 0.95), (-0.12, 0.02, 0.52), (-0.13, -0.02, 0.09),
    (0.10, 0, 0.95), (0.12, 0.02, 0.52), (0.13, -0.02, 0.09), (-0.035, 0.075, 1.66), (0.035, 0.075, 1.66),
    (-0.075, 0, 1.64), (0.075, 0, 1.64), (0.15, 0.17, 0.02), (0.19, 0.14, 0.02), (0.12, -0.06, 0.02),
    (-0.15, 0.17, 0.02), (-0.19, 0.14, 0.02), (-0.12, -0.06, 0.02), (0, 0, 0.96)], np.float64)


def project_toolkit(points_m, k, r, c) -> np.ndarray:
    """The toolkit's reprojection (``extractCameraParameters.m``: ``M = K R [I | -C]``; ``reproject.m``): N x 3
    world metres -> N x 2 px."""
    m = np.asarray(k) @ np.asarray(r) @ np.hstack([np.eye(3), -np.asarray(c, np.float64).reshape(3, 1)])
    x = m @ np.vstack([np.asarray(points_m, np.float64).T, np.ones(len(points_m))])
    return (x[:2] / x[2]).T


def _cameras(rng: np.random.Generator) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """{id: (K, R, C metres)}: cameras on a ring of radius ~2.6 m around the stage centre, world y down."""
    out = {}
    target = np.array([0.0, -0.95, 0.0])
    for cam in CALIBRATED:
        azimuth = 2 * np.pi * cam / 107 + rng.uniform(-0.03, 0.03)
        eye = np.array([2.6 * np.sin(azimuth), -rng.uniform(0.4, 2.1), -2.6 * np.cos(azimuth)])
        z = target - eye
        z /= np.linalg.norm(z)
        x = np.cross(z, [0.0, -1.0, 0.0])
        x /= np.linalg.norm(x)
        r = np.stack([x, np.cross(z, x), z])
        f = rng.uniform(1350, 1500)
        k = np.array([[f, 0, 960 + rng.uniform(-15, 15)],
                      [0, f * rng.uniform(0.998, 1.002), 540 + rng.uniform(-10, 10)], [0, 0, 1]])
        out[cam] = (np.round(k, 4), np.round(r, 9), np.round(eye, 6))
    return out


def _calibration_text(cams, kind: str) -> str:
    n = len(cams)
    lines = [f"Numcam: {n}", f"numframes: {n}", f"numP: {n}"]
    for cam, (k, r, c) in cams.items():
        lines.append(f"0 {cam}")
        if kind == "intrinsic":
            rows = k
        elif kind == "extrinsic":
            rows = np.vstack([c, r])
        else:
            rows = k @ r @ np.hstack([np.eye(3), -c.reshape(3, 1)])
        lines += [" ".join(f"{v:.9g}" for v in row) for row in rows]
    return "\n".join(lines) + "\n"


def _person(rng, frame: int) -> np.ndarray:
    """(25, 3) world metres (y down), posepile's joint order: a person near the centre, arms moving."""
    heading = rng.uniform(0, 2 * np.pi)
    direction = np.array([np.cos(heading), 0.0, np.sin(heading)])
    up = np.array([0.0, -1.0, 0.0])
    left = np.cross(up, direction)
    local = _TEMPLATE.copy()
    local[[3, 4], 1] += 0.1 * frame
    local[[6, 7], 2] += 0.08 * frame
    pos = np.array([rng.uniform(-0.2, 0.2), 0.0, rng.uniform(-0.2, 0.2)])
    return pos + local[:, :1] * left + local[:, 1:2] * direction + local[:, 2:3] * up


def _draw(points2d) -> np.ndarray:
    w, h = IMAGE_SIZE
    img = np.full((h, w, 3), 45, np.uint8)
    for a, b in JOINT_INFO.edges:
        pa, pb = np.round(points2d[[a, b]] * 16).astype(int)
        cv2.line(img, tuple(pa), tuple(pb), (110, 110, 110), 10, cv2.LINE_AA, shift=4)
    for pt in points2d:
        cv2.circle(img, tuple(np.round(pt * 16).astype(int)), int(MARK_RADIUS * 16), (255, 255, 255), -1,
                   cv2.LINE_AA, shift=4)
    return img


def _jpeg(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return buf.tobytes()


def make_fixture(root, seed: int = 0, subjects=SUBJECTS, n_frames: int = N_FRAMES) -> Path:
    """Write a miniature HUMBI body-session raw tree in the release's layout.

    Per subject: ``body/intrinsic.txt``, ``extrinsic.txt`` and ``project.txt`` (the 3 header lines, then per camera
    ``0 <id>`` and K / C and R / M = K R [I | -C]) for the cameras ``CALIBRATED`` on a ring around the stage (world
    y down, metres); frames ``00000001`` .. with ``reconstruction/keypoints.txt`` (25 OpenPose BODY_25 rows, metres),
    ``reconstruction/smpl_parameter.txt`` (86 values, one a line) and ``image/image<7 digits>.jpg`` (1920 x 1080)
    for the cameras ``IMAGED`` and ``UNCALIBRATED``, with grey stick figures and white marks at the keypoints
    projected by the toolkit's formula. ``ignore_images.txt`` lists the image of camera 24 in the last frame of
    the last subject, written as a truncated JPEG. The marks' pixel positions (posepile's joint order) are written
    as JSON into the ``.posebank-fixture`` marker file.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    inverse = np.argsort(SELECTED_JOINTS)  # posepile's order -> the release's rows
    marks: dict = {}
    ignored = []
    for subj in subjects:
        body = root / f"subject_{subj}" / "body"
        body.mkdir(parents=True, exist_ok=True)
        cams = _cameras(rng)
        for kind in ("intrinsic", "extrinsic", "project"):
            (body / f"{kind}.txt").write_text(_calibration_text(cams, kind))
        for f in range(1, n_frames + 1):
            frame = body / f"{f:08d}"
            (frame / "reconstruction").mkdir(parents=True, exist_ok=True)
            (frame / "image").mkdir(parents=True, exist_ok=True)
            coords = np.round(_person(rng, f), 6)
            (frame / "reconstruction/keypoints.txt").write_text(
                "".join(" ".join(f"{v:.6f}" for v in row) + "\n" for row in coords[inverse]))
            smpl = np.concatenate([[1.0], coords[-1], np.round(rng.normal(0, 0.1, 72), 6), np.zeros(10)])
            (frame / "reconstruction/smpl_parameter.txt").write_text("".join(f"{v:.6f}\n" for v in smpl))
            for cam in (*IMAGED, UNCALIBRATED):
                k, r, c = cams.get(cam, cams[IMAGED[0]])
                pts = project_toolkit(coords, k, r, c)
                name = f"image{cam:07d}.jpg"
                data = _jpeg(_draw(pts))
                if subj == subjects[-1] and f == n_frames and cam == IMAGED[1]:
                    data = data[: len(data) // 2]  # a broken JPEG, listed in ignore_images.txt
                    ignored.append(f"subject_{subj}/body/{f:08d}/image/{name}")
                (frame / "image" / name).write_bytes(data)
                if cam in cams:
                    marks.setdefault(str(subj), {}).setdefault(str(f), {})[str(cam)] = pts.tolist()
    (root / IGNORE_LIST).write_text("".join(p + "\n" for p in ignored))
    assert len(_TEMPLATE) == N_RAW_JOINTS
    (root / FIXTURE_MARKER).write_text(json.dumps({"dataset": "humbi", "seed": seed, "marks": marks}) + "\n")
    return root


def fixture_marks(root) -> dict:
    """The drawn marks: ``{subject: {frame: {camera: (25, 2) px}}}`` (posepile's joint order)."""
    marker = json.loads((Path(root) / FIXTURE_MARKER).read_text())
    return {int(s): {int(f): {int(c): np.array(p) for c, p in cams.items()} for f, cams in frames.items()}
            for s, frames in marker["marks"].items()}
