"""The derived columns the suites check: pandas frames computed from a cache, block by block.

* :func:`example_frame`  rows [start, stop) of the cache, one row per example: joint counts, finiteness of the
  coordinates and the camera, intrinsics, principal point inside the person's box, rotation orthonormality and
  determinant, subject distance, lens distortion, up vector, the part of the box inside the crop, mask area, split code,
  reprojected root inside the crop. Validation reads the cache in blocks of ``chunk_rows`` rows, never whole.
* :func:`dataset_frame`  one row per file: example count against the expected one (when known), joint count of
  the data against the file's joint_info and the registered skeleton (when the name is a registered dataset),
  examples in every split the cache's ``expected_splits`` attribute names.
* :func:`image_frame`    a seeded random sample of examples whose JPEG crops must decode to the stored size.

Every frame has an ``example_id`` column (-1 for the file row), reported for the rows that fail. No check depends
on one particular skeleton: the root is the joint named ``pelv`` (or ``pelv_<tag>`` in a merged skeleton) and
otherwise the mean of the valid joints.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import numpy as np

from posebank.core.camera import DISTORTION_MODELS, distort_normalized
from posebank.core.errors import CacheFormatError, DataError
from posebank.core.store import SPLITS, V2_COLUMNS, V2_DEFAULTS


def root_joint_index(names) -> int | None:
    """Index of the pelvis (``pelv`` or, in a merged skeleton, the first ``pelv_<tag>``), else None."""
    names = list(names)
    if "pelv" in names:
        return names.index("pelv")
    for i, n in enumerate(names):
        if n.startswith("pelv_"):
            return i
    return None


def example_frame(cache, start: int, stop: int, root: int | None):
    """Per-example derived columns of rows [start, stop) as a DataFrame (float64 / int / bool columns)."""
    import pandas as pd

    from posebank.core.masks import area as mask_area

    col = lambda name: cache.column(name, slice(start, stop))  # noqa: E731
    wc = col("world_coords").astype(np.float64)
    n = wc.shape[0]
    K = col("camera/intrinsic_matrix").astype(np.float64)
    R = col("camera/R").astype(np.float64)
    t = col("camera/t").astype(np.float64)
    dist = col("camera/distortion_coeffs").astype(np.float64)
    dmodel = col("camera/distortion_model").astype(np.int64)
    up = col("camera/world_up").astype(np.float64)
    size = col("image_size").astype(np.float64)
    bbox = col("bbox").astype(np.float64)
    split = col("split")
    w, h = size[:, 0], size[:, 1]

    finite_joint = np.isfinite(wc).all(axis=2)
    n_valid = finite_joint.sum(axis=1)
    any_inf = np.isinf(wc).any(axis=(1, 2))
    camera_finite = (np.isfinite(K).all(axis=(1, 2)) & np.isfinite(R).all(axis=(1, 2)) & np.isfinite(t).all(axis=1)
                     & np.isfinite(dist).all(axis=1) & np.isfinite(up).all(axis=1))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        fx, fy, cx, cy = K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2]
        rrt = np.einsum("nij,nkj->nik", R, R) - np.eye(3)
        rot_orth_err = np.abs(rrt).max(axis=(1, 2))
        rot_det = np.linalg.det(np.where(np.isfinite(R), R, 0.0))
        rot_det[~np.isfinite(R).all(axis=(1, 2))] = np.nan

        # subject position: the root joint when valid, else the mean of the valid joints
        wz = np.where(finite_joint[..., None], wc, 0.0)
        mean_valid = wz.sum(axis=1) / n_valid[:, None]
        if root is not None:
            subj = np.where(finite_joint[:, root, None], wc[:, root], mean_valid)
        else:
            subj = mean_valid
        distance = np.linalg.norm(subj - t, axis=1)
        pc = np.einsum("nij,nj->ni", R, subj - t)
        z = pc[:, 2]
        # a code outside DISTORTION_MODELS (a corrupt file) is projected as OpenCV's model rather than raising
        known = np.where(dmodel < len(DISTORTION_MODELS), dmodel, 0)
        dxy = distort_normalized(pc[:, :2] / z[:, None], dist, known)
        u = K[:, 0, 0] * dxy[:, 0] + K[:, 0, 1] * dxy[:, 1] + K[:, 0, 2]
        v = K[:, 1, 1] * dxy[:, 1] + K[:, 1, 2]
        root_x = np.where(z > 0, (u + 0.5) / w, -1.0)
        root_y = np.where(z > 0, (v + 0.5) / h, -1.0)

    # masks: NaN where none is stored; -1 where the stored one does not decode
    mask_frac = np.full(n, np.nan)
    for i, blob in enumerate(cache.blobs("mask", start, stop)):
        if blob:
            try:
                mask_frac[i] = mask_area(blob, int(h[i]), int(w[i])) / max(w[i] * h[i], 1.0)
            except Exception:  # noqa: BLE001 - any decoding error makes the mask invalid
                mask_frac[i] = -1.0

    # version 2: 2D keypoints, intrinsics-only (2D-only) examples, body-model fits (a merged file does not copy
    # them: its rows read as without)
    def col2(name):
        try:
            return col(name)
        except KeyError:
            dtype, trailing, _c = V2_COLUMNS(wc.shape[1])[name]
            return np.full((n, *trailing), V2_DEFAULTS.get(name, 0), dtype)

    kp = col2("keypoints2d").astype(np.float64)
    has_3d = finite_joint.any(axis=1)
    kp_ok = np.isfinite(kp).all(axis=2)
    n_valid_2d = kp_ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        # the stored 2D joints of a 3D example are its 3D joints seen by its camera: the largest difference (px)
        both = finite_joint & kp_ok
        pcj = np.einsum("nij,nkj->nki", R, np.where(finite_joint[..., None], wc, 0.0) - t[:, None, :])
        dj = distort_normalized(pcj[..., :2] / pcj[..., 2:3], dist[:, None, :], known[:, None])
        uj = K[:, None, 0, 0] * dj[..., 0] + K[:, None, 0, 1] * dj[..., 1] + K[:, None, 0, 2]
        vj = K[:, None, 1, 1] * dj[..., 1] + K[:, None, 1, 2]
        err = np.hypot(uj - kp[..., 0], vj - kp[..., 1])
        kp_err = np.where(both.any(axis=1), np.where(both, err, 0.0).max(axis=1), np.nan)
        # 2D-only examples: the person's place in the crop is the mean of its 2D joints
        kp_mean = np.where(kp_ok[..., None], kp, 0.0).sum(axis=1) / n_valid_2d[:, None]
        root_x = np.where(has_3d, root_x, (kp_mean[:, 0] + 0.5) / w)
        root_y = np.where(has_3d, root_y, (kp_mean[:, 1] + 0.5) / h)
        distance = np.where(has_3d, distance, np.nan)
    has_body = col2("body_model/has").astype(bool)
    pose = col2("body_model/pose")
    betas = col2("body_model/betas")
    body_finite = (np.isfinite(pose).all(axis=1) & np.isfinite(betas).all(axis=1)
                   & np.isfinite(col2("body_model/trans")).all(axis=1))
    orient_err = _orient_err(pose[:, :3], col2("body_model/global_orient_cam"), R)

    with np.errstate(invalid="ignore", divide="ignore"):
        visible_w = np.clip(np.minimum(bbox[:, 0] + bbox[:, 2], w - 0.5) - np.maximum(bbox[:, 0], -0.5), 0, None)
        visible_h = np.clip(np.minimum(bbox[:, 1] + bbox[:, 3], h - 0.5) - np.maximum(bbox[:, 1], -0.5), 0, None)
    return pd.DataFrame({
        "example_id": np.arange(start, start + n, dtype=np.int64),
        "n_joints": np.full(n, wc.shape[1], np.int64),
        "n_valid_joints": np.where(has_3d, n_valid, n_valid_2d).astype(np.int64),  # 2D-only: its 2D joints
        "has_3d": has_3d,
        "has_extrinsics": col2("camera/has_extrinsics").astype(bool),
        "keypoints2d_reproj_err_px": kp_err,
        "has_body_model": has_body,
        "body_model_code": np.where(has_body, col2("body_model/model").astype(np.int64), 0),
        "body_gender_code": np.where(has_body, col2("body_model/gender").astype(np.int64), 0),
        "body_params_finite": np.where(has_body, body_finite, True),
        "body_betas_abs_max": np.where(has_body, np.abs(np.nan_to_num(betas, nan=np.inf)).max(axis=1), np.nan),
        "body_orient_cam_err_rad": np.where(has_body, orient_err, np.nan),
        "any_inf": any_inf,
        "camera_finite": camera_finite,
        "t_finite": np.isfinite(t).all(axis=1),
        "fx": fx, "fy": fy,
        # the crop camera looks at the person: its principal point lies in the person's box (a crop clipped at the
        # image border may hold neither the box nor the principal point whole, but the box always holds it)
        "principal_x_in_box": (cx - bbox[:, 0]) / bbox[:, 2], "principal_y_in_box": (cy - bbox[:, 1]) / bbox[:, 3],
        "rot_orth_err": rot_orth_err, "rot_det": rot_det,
        "subject_distance_mm": distance,
        "max_abs_distortion": np.abs(dist).max(axis=1),
        "world_up_norm": np.linalg.norm(up, axis=1),
        "image_width": size[:, 0].astype(np.int64), "image_height": size[:, 1].astype(np.int64),
        # the part of the box inside the crop (the image's extent is -0.5 .. size - 0.5): the whole box unless the
        # person is truncated by the source image's border, where the crop ends too
        "bbox_visible_frac": visible_w * visible_h / (bbox[:, 2] * bbox[:, 3]),
        "bbox_min_side": np.minimum(bbox[:, 2], bbox[:, 3]),
        "mask_area_frac": mask_frac,
        "split": split.astype(np.int64),
        "root_x_frac": root_x, "root_y_frac": root_y,
    })


def _orient_err(orient_world: np.ndarray, orient_cam: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Angle (rad) between the stored camera-frame orientation and the world orientation turned by the camera."""
    from posebank.core.bodymodel import rodrigues

    expected = R @ rodrigues(orient_world)
    stored = rodrigues(np.nan_to_num(orient_cam, nan=0.0))
    cos = (np.trace(np.swapaxes(expected, 1, 2) @ stored, axis1=1, axis2=2) - 1) / 2
    err = np.arccos(np.clip(cos, -1.0, 1.0))
    return np.where(np.isfinite(orient_cam).all(axis=1), err, np.inf)


def image_frame(cache, sample_size: int, seed: int):
    """Decode a seeded random sample of the stored JPEG crops (as stored: no colour conversion)."""
    import cv2
    import pandas as pd

    from posebank.core.jpeg import decode_jpeg

    n = len(cache)
    k = min(int(sample_size), n)
    ids = np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False)) if k else np.zeros(0, np.int64)
    sizes = cache.column("image_size", ids) if k else np.zeros((0, 2), np.int32)
    decodes, matches = [], []
    for i, (wi, hi) in zip(ids, sizes):
        try:
            arr = decode_jpeg(cache.blob("image", int(i)), cv2.IMREAD_UNCHANGED, where=f"image of example {i}")
        except DataError:
            arr = None
        decodes.append(arr is not None)
        matches.append(arr is not None and arr.shape[1] == wi and arr.shape[0] == hi)
    return pd.DataFrame({"example_id": ids.astype(np.int64), "image_decodes": np.array(decodes, bool),
                         "image_size_matches": np.array(matches, bool)})


def expected_splits(cache) -> list[str] | None:
    """The cache's ``expected_splits`` attribute (split names its dataset's params asked for); None if absent."""
    raw = cache.attrs.get("expected_splits")
    if raw is None:
        return None
    try:
        names = json.loads(raw) if isinstance(raw, (str, bytes)) else list(raw)
    except (TypeError, ValueError):
        names = None
    if not isinstance(names, list) or not all(isinstance(s, str) for s in names):
        raise CacheFormatError(cache.path or cache.dataset,
                               f"attribute expected_splits must be a JSON list of split names, got {raw!r}")
    return names


class DatasetFrame(NamedTuple):
    frame: object  # the one-row DataFrame
    n_registered: int  # joint count of the registered skeleton (the file's own for an unregistered name)
    notes: dict[str, str]  # column -> what its value means, shown with a failure of that column


def dataset_frame(cache, name: str, expected_count: int | None) -> DatasetFrame:
    import pandas as pd

    from posebank import datasets

    n_file = cache.joint_info.n_joints
    # a name that is not a registered dataset (e.g. a merged one) has its own joint_info as the reference
    n_registered = datasets.get(name).JOINT_INFO.n_joints if name in datasets.names() else n_file
    n = len(cache)
    n_data = int(cache.column("world_coords", slice(0, 1)).shape[1]) if n else n_file
    names = list(cache.joint_info.names)
    notes = {}
    min_split = np.nan  # no split expected: no check
    wanted = expected_splits(cache)
    if wanted:
        counts = cache.split_counts()
        per_split = {s: counts.get(s, 0) for s in wanted}
        min_split = float(min(per_split.values()))
        empty = [s if s in SPLITS else f"{s} (not a split name; known: {', '.join(SPLITS)})"
                 for s, c in per_split.items() if c == 0]
        shown = ", ".join(f"{s} {c}" for s, c in per_split.items())
        notes["min_expected_split_count"] = (f"expected splits without examples: {', '.join(empty)}; "
                                             if empty else "") + f"examples per expected split: {shown}"
    frame = pd.DataFrame({
        "example_id": [-1],
        "n_examples": [n],
        "expected_n_examples": [n if expected_count is None else int(expected_count)],
        "n_joints_data": [n_data],
        "n_joints_file": [n_file],
        "n_joints_registered": [n_registered],
        "joint_names_unique": [len(set(names)) == len(names)],
        "min_expected_split_count": np.array([min_split], np.float64),
    })
    return DatasetFrame(frame, n_registered, notes)
