"""A miniature BMLmovi raw tree in the release's layout, for tests and demos (see :func:`make_fixture`)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from posebank.datasets.bml_movi import (
    JOINT_INFO,
    MOCAP_HZ,
    N_MARKERS,
    N_S_MARKERS,
    S_COLUMNS,
    S_SLOTS,
    extrinsics_relpath,
    intrinsics_relpath,
    mocap_relpath,
    video_name,
)

FIXTURE_MARKER = ".posebank-fixture"
PG_SIZE = (800, 600)  # the PG cameras' frames
CP_SIZE = (1920, 1080)  # the hand-held cameras' frames
FPS = 30
MARK_RADIUS = 4.0
# the release's PG calibration (saeed1262/MoVi-Toolbox, Camera_patameters/*.npz), MATLAB convention
PG_CALIBRATION = {
    "PG1": {"rotationMatrix": [[0.0305191, 0.06318672, -0.99753497], [0.99942183, 0.01303452, 0.03140247],
                               [0.01498661, -0.9979166, -0.06275239]],
            "translationVector": [-177.23154422, 1030.55751095, 4999.31781498],
            "IntrinsicMatrix": [[979.17889011, 0, 0], [0, 978.10179305, 0], [408.0273103, 291.16967878, 1]],
            "RadialDistortion": [-0.18236467, 0.18388686]},
    "PG2": {"rotationMatrix": [[0.9988672, -0.00492513, -0.04732928], [0.04569302, -0.17839144, 0.98289808],
                               [-0.01328404, -0.98394727, -0.17796432]],
            "translationVector": [-243.68025486, 672.57331949, 4050.87266769],
            "IntrinsicMatrix": [[980.04337094, 0, 0], [0, 980.69881345, 0], [392.27529092, 309.91125524, 1]],
            "RadialDistortion": [-0.22932292, 0.35464834]},
}
# (round, subject) -> {view: video frames}; a video one frame longer than its mocap (the last frame is dropped)
VIDEOS = {
    ("F", 1): {"PG1": 5, "PG2": 6, "CP1": 2},
    ("S1", 1): {"PG1": 4},
    ("S2", 1): {"PG2": 4},
    ("F", 46): {"PG1": 4},
}
N_VIDEO_FRAMES = 5  # the mocap covers this many 30 fps frames (4 x 120 Hz rows each, plus one)
REPEATED_FRAME = 2  # video frame 2 repeats frame 1's pose (the adaptive sampler leaves it out)
GAP_FRAME = 3  # at this video frame of F subject 1, lfin is a gap (zeros in the file)
EMPTY_FRAME_46 = 0  # F subject 46's first video frame has every point zero (dropped: no joint)

_J = {n: i for i, n in enumerate(JOINT_INFO.names)}
# the 20 virtual joints of a standing person, mm, person frame (x to its left, y forward, z up); right = mirrored
_VIRTUAL = {"head": (0, 0, 1650), "thor": (0, 0, 1400), "pelv": (0, 0, 1000), "mhip": (0, 0, 930),
            "sho": (170, 0, 1420), "elb": (200, 0, 1130), "wri": (210, 0, 880), "han": (215, 0, 800),
            "hip": (95, 0, 930), "kne": (100, 0, 500), "ank": (105, 0, 80), "foo": (105, 120, 30)}
_CENTRE = {"backneck": ("thor", (0, -80, 120)), "upperback": ("thor", (0, -100, -50)),
           "clavicle": ("thor", (0, 60, 100)), "sternum": ("thor", (0, 90, -60)),
           "umbilicus": ("pelv", (0, 100, 50))}
# side markers: anchor (one joint or the middle of two) and offset (x toward the side)
_SIDE = {"fronthead": ("head", (60, 80, 30)), "backhead": ("head", (60, -80, 30)), "back": ("thor", (80, -100, -150)),
         "shom": ("sho", (0, 0, 50)), "upperarm": ("sho+elb", (50, 0, 0)), "elbm": ("elb", (40, 0, 0)),
         "forearm": ("elb+wri", (40, 0, 0)), "writhumbside": ("wri", (0, 30, 0)),
         "wripinkieside": ("wri", (0, -30, 0)), "fin": ("han", (0, 0, -60)), "asis": ("pelv", (110, 90, 50)),
         "psis": ("pelv", (50, -100, 60)), "frontthigh": ("hip+kne", (0, 80, 0)), "thigh": ("hip+kne", (70, 0, 0)),
         "knem": ("kne", (50, 0, 0)), "ankm": ("ank", (45, 0, 0)), "hee": ("ank", (0, -60, -40)),
         "fifthmetatarsal": ("foo", (40, 0, -10)), "toe": ("foo", (0, 80, -10)), "cheek": ("head", (60, 70, -60)),
         "breast": ("thor", (90, 90, -100)), "elbinner": ("elb", (-40, 0, 0)), "waist": ("pelv", (140, 0, 120)),
         "thumb": ("han", (0, 40, -30)), "frontinnerthigh": ("hip+kne", (-40, 70, 0)),
         "innerknee": ("kne", (-50, 0, 0)), "shin": ("kne+ank", (0, 60, 0)),
         "firstmetatarsal": ("foo", (-30, 0, -10)), "fourthtoe": ("foo", (25, 70, -10)),
         "scapula": ("thor", (90, -100, 0)), "bum": ("pelv", (90, -120, -120))}


def _template() -> np.ndarray:
    """(87, 3) mm: the markers and virtual joints of a standing person in its own frame."""
    out = np.zeros((len(_J), 3))

    def joint(name: str, side: str) -> np.ndarray:
        if name in ("head", "thor", "pelv", "mhip"):
            return np.array(_VIRTUAL[name], float)
        v = np.array(_VIRTUAL[name], float)
        return v * [-1, 1, 1] if side == "r" else v

    for name in ("head", "thor", "pelv", "mhip"):
        out[_J[name]] = joint(name, "")
    for side in "lr":
        for name in ("sho", "elb", "wri", "han", "hip", "kne", "ank", "foo"):
            out[_J[side + name]] = joint(name, side)
        for marker, (anchor, offset) in _SIDE.items():
            parts = anchor.split("+")
            base = np.mean([joint(a, side) for a in parts], axis=0)
            out[_J[side + marker]] = base + np.array(offset, float) * ([-1, 1, 1] if side == "r" else 1)
    for marker, (anchor, offset) in _CENTRE.items():
        out[_J[marker]] = np.array(_VIRTUAL[anchor], float) + offset
    return out


def fixture_mocap(seed: int, round_: str, subject: int) -> np.ndarray:
    """(T, 87, 3) mm, world z up: the person walking through the capture volume (130 mm and 0.15 rad per video
    frame, rigid), 120 Hz rows covering :data:`N_VIDEO_FRAMES` 30 fps frames; the rows as the file holds them
    (gaps zero)."""
    rng = np.random.default_rng([seed, subject, "FS".index(round_[0]) + int(round_[1:] or 0)])
    template = _template()
    heading0 = rng.uniform(0, 2 * np.pi)
    direction = rng.uniform(0, 2 * np.pi)
    start = np.array([250.0, 50.0]) + rng.uniform(-100, 100, size=2)
    per_frame = int(MOCAP_HZ // FPS)
    n_rows = per_frame * (N_VIDEO_FRAMES - 1) + 2
    out = np.zeros((n_rows, len(_J), 3))
    for r in range(n_rows):
        g = r / per_frame  # time in video frames
        if g >= REPEATED_FRAME:
            g = max(g - 1, REPEATED_FRAME - 1.0)
        heading = heading0 + 0.15 * g
        c, s = np.cos(heading), np.sin(heading)
        rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
        step = 130 * g * np.array([np.cos(direction), np.sin(direction)])
        out[r] = template @ rot.T + [*(start + step), 0.0]
    out = np.round(out, 4)
    if round_ == "F" and subject == 1:
        out[per_frame * GAP_FRAME, _J["lfin"]] = 0.0
    if round_ == "F" and subject == 46:
        out[per_frame * EMPTY_FRAME_46] = 0.0
    return out


def s_round_markers(full: np.ndarray) -> np.ndarray:
    """(T, 17, 3): the S rounds' marker columns, filled from the 87-point rows (columns 5 and 11, which posepile
    leaves unused, hold the sternum and the umbilicus)."""
    out = np.zeros((len(full), N_S_MARKERS, 3))
    out[:, list(S_COLUMNS)] = full[:, list(S_SLOTS)]
    out[:, 5], out[:, 11] = full[:, _J["sternum"]], full[:, _J["umbilicus"]]
    return out


def toolbox_projection(view: str, points_mm: np.ndarray) -> np.ndarray:
    """MATLAB's ``worldToImage(cameraParams, rotationMatrix, translationVector, points, 'ApplyDistortion', true)``
    (the toolbox's ``worldToVideo.m``) with the release's PG calibration: row vectors, ``[x y z] R + t``, radial
    ``1 + k1 r² + k2 r⁴``, ``[u v 1] = [x_d y_d 1] K``."""
    cal = PG_CALIBRATION[view]
    cam = np.asarray(points_mm, np.float64) @ np.array(cal["rotationMatrix"]) + np.array(cal["translationVector"])
    xn = cam[:, :2] / cam[:, 2:3]
    r2 = (xn ** 2).sum(axis=1, keepdims=True)
    k1, k2 = cal["RadialDistortion"]
    xd = xn * (1 + k1 * r2 + k2 * r2 ** 2)
    return (np.concatenate([xd, np.ones((len(xd), 1))], axis=1) @ np.array(cal["IntrinsicMatrix"]))[:, :2]


def _frame(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A dark frame with white marks at the points."""
    w, h = size
    img = np.full((h, w, 3), 30, np.uint8)
    for pt in points:
        if np.all(np.isfinite(pt)):
            cv2.circle(img, tuple(np.round(pt * 16).astype(int)), int(MARK_RADIUS * 16), (255, 255, 255), -1,
                       cv2.LINE_AA, shift=4)
    return img


def _write_mat(path: Path, subject: int, round_letter: str, moves: list[np.ndarray]) -> None:
    import scipy.io

    cell = np.empty((1, len(moves)), object)
    for k, rows in enumerate(moves):
        n = len(rows)
        cell[0, k] = {"markerLocation": rows, "virtualMarkerLocation": rows[:, N_MARKERS:] if rows.shape[1] > 20
                      else np.zeros((n, 20, 3)), "markerGaps": np.zeros((n, 1)),
                      "flags30": np.array([[1.0, (n - 1) // 4 + 1]]), "flags120": np.array([[1.0, float(n)]]),
                      "motions_list": np.array(["walking"], object)}
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), {f"Subject_{subject}_{round_letter}": {"id": f"Subject_{subject}", "move": cell}},
                     oned_as="row")


def make_fixture(root, seed: int = 0) -> Path:
    """Write the BMLmovi layout: ``Calib/`` (the release's PG1/PG2 calibration, as .npz), a ``F_v3d`` file per F
    subject (folder by subject number) and an ``S_v3d`` file holding S1 and S2, and the 800 x 600 30 fps PG videos
    (``_L.avi``, white marks at the virtual joints, projected with MATLAB's formula) and a 1920 x 1080 CP1 video
    (no calibration: not converted)."""
    from posebank.imaging.video import write_video

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for view, cal in PG_CALIBRATION.items():
        path = root / extrinsics_relpath(view)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, rotationMatrix=np.array(cal["rotationMatrix"]),
                 translationVector=np.array(cal["translationVector"]))
        np.savez(root / intrinsics_relpath(view), IntrinsicMatrix=np.array(cal["IntrinsicMatrix"]),
                 RadialDistortion=np.array(cal["RadialDistortion"]))
    subjects = sorted({s for _, s in VIDEOS})
    for subject in subjects:
        if ("F", subject) in VIDEOS:
            _write_mat(root / mocap_relpath("F", subject), subject, "F", [fixture_mocap(seed, "F", subject)])
        if any(r.startswith("S") and s == subject for r, s in VIDEOS):
            _write_mat(root / mocap_relpath("S1", subject), subject, "S",
                       [s_round_markers(fixture_mocap(seed, r, subject)) for r in ("S1", "S2")])
    virtual = [_J[n] for n in JOINT_INFO.names[N_MARKERS:]]
    for (round_, subject), views in VIDEOS.items():
        rows = fixture_mocap(seed, round_, subject)
        for view, n_frames in views.items():
            path = root / video_name(round_, view, subject)
            if view.startswith("CP"):
                write_video(path, (np.full((CP_SIZE[1], CP_SIZE[0], 3), 30, np.uint8) for _ in range(n_frames)),
                            fps=FPS)
                continue
            frames = []
            for i in range(n_frames):
                r = i * int(MOCAP_HZ // FPS)
                pts = rows[min(r, len(rows) - 1), virtual]
                frames.append(_frame(toolbox_projection(view, pts), PG_SIZE))
            write_video(path, frames, fps=FPS)
    (root / FIXTURE_MARKER).write_text(f"bml_movi fixture, seed {seed}\n")
    return root
