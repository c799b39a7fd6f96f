"""A miniature Berkeley MHAD raw tree in the release's layout, for tests and demos (see :func:`make_fixture`).

The calibration is the release's own: the values of ``RwTw_*.txt`` and ``camcfg_*.yml`` as the release's MATLAB
calibration notes quote them (``CALIBRATION``), written back in the files' formats.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from posebank.datasets.bmhad import (
    AXES,
    MARKERS,
    View,
    calibration_names,
    camera_of,
    correspondence_relpath,
    image_relpath,
    mocap_relpath,
    read_camera_config,
    read_cluster_transform,
)

FIXTURE_MARKER = ".posebank-fixture"
FRAME_SIZE = (640, 480)
MOCAP_RATE = 480.0
MOCAP_PER_IMAGE = {False: 22, True: 16}  # mocap frames per camera frame (22 Hz) and per Kinect frame (30 Hz)
MOCAP_OFFSET = {False: 3, True: 5}  # the first image frame shows this mocap frame
MARK_RADIUS = 3.0
BACKGROUND_BGR = (120, 50, 20)  # a dark blue: a wrong Bayer pattern would turn it brown
# takes written -> the clusters whose cameras have images (both Kinects always); (4, 8, 5) is a take the release
# lacks: its files exist here and the converter leaves it out, as posepile does
TAKES = {(1, 1, 1): (1, 2, 3, 4), (2, 5, 3): (1, 2, 3, 4), (4, 8, 5): (1,)}
MISSING_IMAGE_FRAME = {(2, 5, 3): 2}  # this image frame of every camera of the take is not on disk
REPEATED_FRAME = 3  # image frame 3 shows frame 0's pose again: the buffer sampler leaves it out
INVALID_MARKER = ("lhan2", 1)  # marker invalid (NaN) in image frame 1 of every take

# (RwTw: R row-major, t mm), [(K fx fy cx cy, Dist k1 k2 p1 p2, PosRel t mm + Rodrigues)] per cluster and Kinect
CALIBRATION = {
    "l01": (([0.895701051, 0.002872461, -0.444647521, 0.050160084, -0.994248986, 0.094619878, -0.441818565,
              -0.107054681, -0.890693903], [-654.692443848, 1101.511840820, 3154.582519531]), [
        ((523.62481689, 524.78002930, 351.50247192, 225.29899597),
         (-0.30726913, 0.11957706, 7.77966125e-006, -1.81283604e-003), (0, 0, 0, 0, 0, 0)),
        ((532.78863525, 533.49108887, 320.36187744, 231.61149597),
         (-0.30525380, 0.11849667, -2.24173709e-005, -1.13707327e-003),
         (-113.23552704, -3.12581921, 5.35904837, 0.02384871, 0.10327590, 0.03027969)),
        ((535.76379395, 536.48388672, 351.78421021, 258.91003418),
         (-0.30206695, 0.10986967, 2.87068815e-005, -5.85383852e-004),
         (-225.57591248, -8.37060165, 10.44907475, 0.06187005, 0.10036616, 0.03608300)),
        ((541.68511963, 542.19091797, 334.84011841, 229.06407166),
         (-0.30782333, 0.12185945, -6.21398794e-004, -6.72762864e-004),
         (-331.18945313, -5.80678654, 43.41628647, 0.01283832, 0.17892610, 0.01941607))]),
    "l02": (([-0.788662493, -0.041136641, 0.613448620, -0.070219174, -0.985203922, -0.156341061, 0.610803366,
              -0.166376188, 0.774104774], [425.134826660, 958.274047852, 2533.748535156]), [
        ((536.22784424, 537.43035889, 330.95697021, 255.47770691),
         (-0.30754250, 0.12662455, 1.29046195e-004, -5.86564071e-004), (0, 0, 0, 0, 0, 0)),
        ((530.17150879, 531.24768066, 348.21569824, 221.58586121),
         (-0.31191686, 0.13442637, -1.74640474e-004, -1.52578956e-004),
         (-112.65316010, 1.45886219, 7.63488483, -0.05266878, 0.02991591, 0.01637690)),
        ((546.88293457, 548.02545166, 322.02459717, 234.25865173),
         (-0.31121001, 0.13268919, -9.13340948e-004, 8.80855805e-005),
         (-225.22500610, 1.80177021, 25.86536598, -0.03129913, 0.10528020, 5.36032300e-003)),
        ((545.57482910, 546.70520020, 323.34945679, 239.74145508),
         (-0.30886060, 0.12867413, -6.22767955e-004, -6.69802466e-005),
         (-334.29324341, -0.42288470, 47.23010635, -0.02231921, 0.13328844, 7.67685520e-003))]),
    "l03": (([-0.870248973, 0.022778150, -0.492085218, 0.040615544, -0.992211521, -0.117756799, -0.490934908,
              -0.122464038, 0.862545907], [642.973693848, 1091.080078125, 2696.827392578]), [
        ((547.57348633, 548.31109619, 313.34936523, 241.95222473),
         (-0.30918822, 0.12642565, -6.04151399e-004, 3.46956745e-004), (0, 0, 0, 0, 0, 0)),
        ((536.85382080, 537.53009033, 339.61489868, 235.44552612),
         (-0.30596223, 0.12021901, -8.36337393e-004, 8.00849695e-004),
         (-152.58418274, -1.01097679, -7.04021549, -2.47665215e-003, 7.28918705e-003, -1.07275601e-003))]),
    "l04": (([0.708072186, 0.018875621, 0.705887735, -0.163710788, -0.968018532, 0.190102473, 0.686900675,
              -0.250167727, -0.682336807], [-424.038238525, 897.219055176, 2837.927246094]), [
        ((522.80261230, 523.47979736, 345.56921387, 241.90707397),
         (-0.30581141, 0.11963996, -1.08503085e-003, -1.31329332e-004), (0, 0, 0, 0, 0, 0)),
        ((531.64221191, 532.30084229, 329.00204468, 241.58192444),
         (-0.30320752, 0.11169375, -1.41603034e-003, -6.89732333e-005),
         (-151.09100342, -0.85118026, 9.14525700, 5.00013644e-004, 0.08078900, 2.56788498e-003))]),
    "k01": (([0.869593024, 0.005134047, -0.493742496, 0.083783410, -0.986979902, 0.137298822, -0.486609042,
              -0.160761520, -0.858700991], [-844.523864746, 763.838439941, 3232.193359375]), [
        ((531.49230957, 532.39190674, 314.63775635, 252.53335571),
         (0.19607373, -0.36734107, -2.47962005e-003, -1.89774996e-003), (0, 0, 0, 0, 0, 0))]),
    "k02": (([-0.798016667, -0.041981064, 0.601171315, -0.059102636, -0.987309396, -0.147400886, 0.599730134,
              -0.153159171, 0.785408199], [26.147224426, 853.124328613, 2533.297607422]), [
        ((532.33691406, 532.80218506, 323.22338867, 265.27493286),
         (0.18276334, -0.35502717, -6.75550546e-004, -9.90863307e-004), (0, 0, 0, 0, 0, 0))]),
}

# the 43 markers of a standing person, mm, in the person's frame (x to its left, y up, z forward)
_LEFT = {
    "lhead": (70, 1640, 40), "lback": (110, 1340, -120), "lside": (160, 1100, 0), "lsho1": (170, 1440, 40),
    "lsho2": (185, 1445, -40), "larm": (215, 1260, -10), "lelb": (230, 1110, -40), "lwri": (240, 860, 10),
    "lhan1": (250, 790, 45), "lhan2": (262, 770, 5), "lhan3": (238, 755, -30), "lhipb": (110, 960, -110),
    "lhipf": (125, 965, 100), "lhipl": (175, 930, 0), "lleg": (150, 720, 70), "lkne": (115, 500, 55),
    "lank": (110, 90, -15), "lhee": (110, 45, -75), "lfoo": (110, 40, 130)}
_TEMPLATE = {"head": (0, 1750, 0), "backl": (0, 1040, -125), "backt": (0, 1400, -120), "bell": (0, 1030, 120),
             "chest": (0, 1300, 125), "rback": (-110, 1340, -120), "rside": (-160, 1100, 0),
             "rhead": (-70, 1640, 40), **_LEFT,
             **{"r" + k[1:]: (-v[0], v[1], v[2]) for k, v in _LEFT.items() if k not in ("lhead", "lback", "lside")}}
_T = np.array([_TEMPLATE[n] for n in MARKERS], np.float64)
_I = {n: i for i, n in enumerate(MARKERS)}


def _world_pose(g: float, heading0: float, start: np.ndarray) -> np.ndarray:
    """(43, 3) mm, world (y up) at time ``g`` (in camera frames): the template turned by ``heading0 + 0.3 g``, arms
    and legs swung (the hands move > 100 mm per camera frame), walking slowly."""
    local = _T.copy()
    for root, limb, angle in (("lsho1", [n for n in MARKERS if n[:4] in ("larm", "lelb", "lwri", "lhan")],
                               0.6 * np.sin(0.9 * g)),
                              ("rsho1", [n for n in MARKERS if n[:4] in ("rarm", "relb", "rwri", "rhan")],
                               0.6 * np.sin(0.9 * g + 1.7)),
                              ("lhipl", ["lleg", "lkne", "lank", "lhee", "lfoo"], 0.3 * np.sin(0.7 * g)),
                              ("rhipl", ["rleg", "rkne", "rank", "rhee", "rfoo"], 0.3 * np.sin(0.7 * g + np.pi))):
        c, s = np.cos(angle), np.sin(angle)
        swing = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
        ids = [_I[n] for n in limb]
        local[ids] = (local[ids] - local[_I[root]]) @ swing.T + local[_I[root]]
    heading = heading0 + 0.3 * g
    c, s = np.cos(heading), np.sin(heading)
    rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return local @ rot.T + start + np.array([30.0 * g, 0.0, -20.0 * g])


def mocap_frame(kinect: bool, image_frame: int) -> int:
    """The mocap frame the correspondence file gives for an image frame of a camera or a Kinect."""
    return MOCAP_OFFSET[kinect] + MOCAP_PER_IMAGE[kinect] * image_frame


def take_poses(seed: int, take: tuple[int, int, int], n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(world poses (M, 43, 3) mm as the converter reads them: the written float32 values after the axis remap,
    the raw capture-frame points (M, 43, 3) as written). The person moves continuously, except that from camera
    frame ``REPEATED_FRAME`` on it repeats its motion from the start (camera frame 3 shows frame 0's pose)."""
    rng = np.random.default_rng([seed, *take])
    heading0 = rng.uniform(0, 2 * np.pi)
    start = np.array([550.0, 0.0, 50.0]) + rng.uniform(-100, 100, size=3) * [1, 0, 1]
    n_mocap = max(mocap_frame(k, n_frames) for k in (False, True))
    out = np.zeros((n_mocap, len(MARKERS), 3))
    for m in range(n_mocap):
        g = m / MOCAP_PER_IMAGE[False]
        out[m] = _world_pose(g - REPEATED_FRAME if g >= REPEATED_FRAME else g, heading0, start)
    raw = (out @ AXES).astype(np.float32)  # AXES is its own inverse: world = raw @ AXES.T
    name, frame = INVALID_MARKER
    for kinect in (False, True):
        raw[mocap_frame(kinect, frame), _I[name]] = np.nan
    return raw.astype(np.float64) @ AXES.T, raw


def _bayer(bgr: np.ndarray) -> np.ndarray:
    """The Bayer mosaic that OpenCV's ``COLOR_BAYER_GB2BGR`` demosaics back to ``bgr``: G at (even, even) and (odd,
    odd), R at (even, odd), B at (odd, even)."""
    out = bgr[..., 1].copy()
    out[0::2, 1::2] = bgr[0::2, 1::2, 2]
    out[1::2, 0::2] = bgr[1::2, 0::2, 0]
    return out


def _frame(points: np.ndarray) -> np.ndarray:
    """A dark blue 640x480 BGR frame with white marks at the projected markers."""
    w, h = FRAME_SIZE
    img = np.empty((h, w, 3), np.uint8)
    img[:] = BACKGROUND_BGR
    for pt in points:
        if np.all(np.isfinite(pt)) and np.all(np.abs(pt) < 1e4):
            cv2.circle(img, tuple(np.round(pt * 16).astype(int)), int(MARK_RADIUS * 16), (255, 255, 255), -1,
                       cv2.LINE_AA, shift=4)
    return img


def _write_calibration(root: Path) -> None:
    for group, ((rot, t), cams) in CALIBRATION.items():
        rwtw, camcfg = calibration_names(group)
        (root / rwtw).parent.mkdir(parents=True, exist_ok=True)
        (root / rwtw).write_text("Rw=" + " ".join(f"{v:.9f}" for v in rot) + " \nTw="
                                 + " ".join(f"{v:.9f}" for v in t) + " \n")
        lines = ["%YAML:1.0", f"Number of cameras: {len(cams)}"]
        for i, ((fx, fy, cx, cy), dist, posrel) in enumerate(cams, 1):
            lines.append(f"Camera_{i}:")
            for key, rows, cols, values in (("K", 3, 3, (fx, 0, cx, 0, fy, cy, 0, 0, 1)), ("Dist", 1, 4, dist),
                                            ("PosRel", 1, 6, posrel)):
                lines += [f"   {key}: !!opencv-matrix", f"      rows: {rows}", f"      cols: {cols}", "      dt: f",
                          "      data: [ " + ", ".join(f"{float(v):.8e}" for v in values) + " ]"]
        (root / camcfg).write_text("\n".join(lines) + "\n")


def make_fixture(root, seed: int = 0, n_frames: int = 5) -> Path:
    """Write the Berkeley MHAD layout: the calibration (4 clusters of 4, 4, 2, 2 cameras and 2 Kinects), per take
    of :data:`TAKES` the c3d file of its 43 markers (480 Hz, the capture frame, float32), the two correspondence
    files (image frame, time, mocap frame) and ``n_frames`` frames per camera: Bayer-mosaic PGM files for the
    clusters' cameras and colour PPM files for the Kinects, with white marks at the projected markers."""
    from posebank.datasets.c3d import write_points

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _write_calibration(root)
    views = []
    for group in CALIBRATION:
        kinect, number = group[0] == "k", int(group[1:])
        rwtw, camcfg = calibration_names(group)
        rt = read_cluster_transform(root / rwtw)
        for i, config in enumerate(read_camera_config(root / camcfg), 1):
            views.append((View(kinect, number, i), camera_of(rt, config, root / camcfg)))
    for take, clusters in TAKES.items():
        poses, raw = take_poses(seed, take, n_frames)
        (root / mocap_relpath(*take)).parent.mkdir(parents=True, exist_ok=True)
        write_points(root / mocap_relpath(*take), raw, [m.upper() for m in MARKERS], MOCAP_RATE, units="mm")
        for kinect in (False, True):
            for number in ((1, 2) if kinect else (None,)):
                view = View(kinect, number or 1, 1)
                path = root / correspondence_relpath(view, *take)
                path.parent.mkdir(parents=True, exist_ok=True)
                rows = [(i, mocap_frame(kinect, i) / MOCAP_RATE, mocap_frame(kinect, i)) for i in range(n_frames)]
                path.write_text("".join(f"{i} {t:.6f} {m}\n" for i, t, m in rows))
        for view, camera in views:
            if not view.kinect and view.cluster not in clusters:
                continue
            for i in range(n_frames):
                if MISSING_IMAGE_FRAME.get(take) == i:
                    continue
                pose = poses[mocap_frame(view.kinect, i)]
                bgr = _frame(camera.project(pose))
                path = root / image_relpath(view, *take, i)
                path.parent.mkdir(parents=True, exist_ok=True)
                image = bgr if view.kinect else _bayer(bgr)
                ok, data = cv2.imencode(path.suffix, image)
                assert ok
                path.write_bytes(data.tobytes())
    (root / FIXTURE_MARKER).write_text(f"bmhad fixture, seed {seed}\n")
    return root
