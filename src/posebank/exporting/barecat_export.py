"""posepile / NLF barecat export: a cache or a merge as the two Barecat archives that posepile's training reads.

Consumer code read (isarandi/posepile at bc129c3, 2025-05-22): the writers ``src/posepile/tools/to_barecat.py`` and
``tools/dataset_pickle_to_barecat.py`` (``example_to_dict``, ``dataset_to_barecat``), and the reader
``src/posepile/datasets3d.py`` (``Pose3DDatasetBarecat(annotations_path, images_path)``, ``Pose3DExampleBarecat``,
``dict_to_example``, ``compute_mean_bones``) that NLF's training (``nlf/tf/main.py``, ``nlf/pt/loading/keypoints3d.py``
``load_kp``) builds its streams on; the mask codec is rlemasklib's ``compress(rle, zlevel=-1)`` /
``decompress(d, only_gzip=True)`` (isarandi/rlemasklib ``_functional.py`` at 4435317); the archive is the
``barecat`` package (0.3.1, isarandi/barecat at 1106e34).

The export folder holds
- ``annotations.barecat`` (files ``annotations.barecat-sqlite-index`` and ``-shard-00000``: barecat 0.2's layout,
  which posepile's HEAD needs, as it imports ``barecat.threadsafe``, gone in 0.3; barecat 0.3 opens it too, as
  ``Barecat("annotations.barecat")``; checked with barecat 0.2.7 and 0.3.1):
  ``metadata.msgpack`` = ``{joint_names, joint_edges, train_bone_lengths, trainval_bone_lengths}``
  (edges as index pairs; mean bone lengths in mm, float32, per edge, over the export's training examples and over
  training + validation, 0 for an edge never seen, as posepile's
  ``compute_mean_bones``; a length is left out when the export has no such examples, as posepile does), and one
  record per example at ``<split>/<impath>_00.msgpack`` (split ``train`` / ``val`` / ``test``: posepile's path
  prefixes, ``Pose3DDatasetBarecat`` takes the first path component as the split and ``impath`` as what precedes the
  last ``_``). A record is msgpack-numpy (barecat's ``auto_codec`` for ``.msgpack``):
  ``impath`` (``<dataset>_downscaled/<row of the dataset's cache, 9 digits>.jpg``: NLF's training groups examples by
  image-path prefix), ``bbox`` float32 (4,) x y w h in the crop (exactly the cache's; posepile's writer rounds to
  int16, its reader casts to float32 either way), ``cam`` = ``{rotvec_w2c`` (float64 Rodrigues vector of R),
  ``loc`` (float32 optical centre, mm, world), ``intr`` (float32 first two rows of K), ``up`` (float32 world up),
  ``distcoef`` only when non-zero (OpenCV k1 k2 p1 p2 k3)``}``, ``joints3d`` = ``{rows, i_rows}``: the valid joints'
  world coordinates (mm) as float16 when every coordinate's float16 rounding error is < 1 mm, else float32
  (posepile's ``cast_if_precise_enough(..., threshold=1)``), ``i_rows`` uint16 indices of the valid joints, empty when
  all are valid; ``mask`` = ``{size: [h, w], zcounts: zlib(COCO counts, level -1)}`` when the example has a mask;
  ``parameters`` = ``{type, gender, pose, shape, trans}`` (world frame, float64 as the cache) when it has a
  body-model fit; ``posebank`` = ``{dataset, row, source_path}`` (ignored by posepile's reader).
  With ``images="inline"``, the record also holds the crop's JPEG bytes as ``image`` and no image archive is
  written (posepile's reader does not read that key: it is for other consumers).
- ``images.barecat`` (same layout): the crops' JPEG bytes (unchanged) at ``impath``: posepile's ``image_barecat_path``.

Not filled: 2D keypoints and visibility (posepile's 3D records have none; 2D datasets go to its separate 2D
archives), ``univ_coords``, ``activity_name`` / ``scene_name``. An example without valid 3D joints (a 2D-only example)
gets no ``joints3d`` key (posepile's encoding of zero valid joints would read back as an empty array); such examples
are counted. Deterministic: barecat's index stamps directories with the time of insertion, so the export clears
those stamps (``mtime_ns`` NULL, as for files) and vacuums the SQLite index: the same source gives byte-identical
archives. Memory: records and images are written one at a time; only the per-edge bone sums are kept.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

from posebank.core.errors import DataError, UsageError
from posebank.core.store import SPLITS
from posebank.exporting.common import ExportSource, Item

ANNOTATIONS = "annotations.barecat"
IMAGES = "images.barecat"
METADATA = "metadata.msgpack"
INDEX_SUFFIX = "-sqlite-index"  # barecat 0.2's index name, which posepile's barecat reads
IMAGE_MODES = ("archive", "inline")
OPTIONS = {"split": None, "images": "archive"}  # option -> default
FP16_THRESHOLD_MM = 1.0  # posepile: cast_if_precise_enough(valid_coords, np.float16, threshold=1)
MAX_JOINTS = 65536  # i_rows is uint16


def _check_options(options: dict) -> dict:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise UsageError(f"option {unknown[0]!r}", f"not an option of the barecat export; options: "
                         f"{', '.join(OPTIONS)}")
    opts = {**OPTIONS, **options}
    if opts["split"] is not None and opts["split"] not in SPLITS:
        raise UsageError(f"option split={opts['split']!r}", f"not a split; splits: {', '.join(SPLITS)} "
                         "(or none: all)")
    if opts["images"] not in IMAGE_MODES:
        raise UsageError(f"option images={opts['images']!r}", f"must be one of {', '.join(IMAGE_MODES)}")
    return opts


def _imports():
    try:
        import barecat
        import msgpack_numpy
    except ImportError as e:
        raise UsageError("barecat export", f"needs the packages barecat and msgpack-numpy ({e})") from None
    return barecat, msgpack_numpy


def encode_joints(world_coords: np.ndarray) -> tuple[dict | None, bool, float]:
    """posepile's ``joints3d`` of one example: ``({rows, i_rows}, stored as float16, max float16 error mm)``; None
    when no joint is valid."""
    coords = np.asarray(world_coords, np.float32)
    valid = ~np.any(np.isnan(coords), axis=-1)
    i_valid = np.flatnonzero(valid).astype(np.uint16)
    if not len(i_valid):
        return None, False, 0.0
    rows = np.ascontiguousarray(coords[i_valid])
    with np.errstate(over="ignore"):
        rows16 = rows.astype(np.float16)
    err = float(np.max(np.abs(rows - rows16.astype(np.float32))))  # inf when a coordinate overflows float16
    fp16 = err < FP16_THRESHOLD_MM
    if len(i_valid) == coords.shape[0]:
        i_valid = i_valid[:0]
    return {"rows": rows16 if fp16 else rows, "i_rows": i_valid}, fp16, err if fp16 else 0.0


def encode_mask(counts: bytes, image_size) -> dict:
    """rlemasklib's ``compress({size, counts}, zlevel=-1)``: the COCO counts zlib-compressed."""
    w, h = (int(v) for v in image_size)
    return {"size": [h, w], "zcounts": zlib.compress(bytes(counts), -1)}


def image_path(dataset: str, row: int) -> str:
    return f"{dataset}_downscaled/{row:09d}.jpg"


def rotvec_w2c(R) -> np.ndarray:
    """The rotation vector of R (float64), which posepile's reader turns back with ``cv2.Rodrigues``. Not from
    ``cv2.Rodrigues(R)`` as posepile's writer does: near a half turn (cameras opposite the world's axes) that loses
    ~1e-5 of R's entries; the quaternion route (Shepperd's: from the largest of trace and diagonal) keeps ~1e-7,
    R's own float32 precision."""
    m = np.asarray(R, np.float64).reshape(3, 3)
    tr = np.trace(m)
    k = int(np.argmax([tr, m[0, 0], m[1, 1], m[2, 2]]))
    if k == 0:
        q = np.array([1 + tr, m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]])
    else:
        i = k - 1
        j, l = (i + 1) % 3, (i + 2) % 3
        q = np.empty(4)
        q[0] = m[l, j] - m[j, l]
        q[1 + i] = 1 + 2 * m[i, i] - tr
        q[1 + j] = m[j, i] + m[i, j]
        q[1 + l] = m[l, i] + m[i, l]
    q /= np.linalg.norm(q)
    if q[0] < 0:
        q = -q
    s = np.linalg.norm(q[1:])
    angle = 2 * np.arctan2(s, q[0])
    return q[1:] * (angle / s if s > 1e-12 else 2.0)


def record(item: Item, inline: bool) -> tuple[dict, dict]:
    """The msgpack record of one example and what it says about it (for the counts)."""
    ex = item.example
    cam = ex.camera
    where = f"{item.dataset} row {item.source_row}"
    if cam.has_distortion and cam.distortion_model != "opencv":
        raise DataError(where, f"camera distortion model {cam.distortion_model!r} has no posepile encoding "
                        "(posepile reads OpenCV k1 k2 p1 p2 k3)")
    if not ex.image:
        raise DataError(where, "the example has no image bytes")
    rotvec = rotvec_w2c(cam.R)
    rec = {
        "impath": image_path(item.dataset, item.source_row),
        "bbox": np.asarray(ex.bbox, np.float32).reshape(4),
        "cam": {"rotvec_w2c": rotvec, "loc": np.asarray(cam.t, np.float32),
                "intr": np.ascontiguousarray(np.asarray(cam.intrinsic_matrix, np.float32)[:2]),
                "up": np.asarray(cam.world_up, np.float32)},
    }
    if cam.has_distortion:
        rec["cam"]["distcoef"] = np.asarray(cam.distortion_coeffs, np.float32)
    joints, fp16, err = encode_joints(ex.world_coords)
    if joints is not None:
        rec["joints3d"] = joints
    if ex.mask:
        rec["mask"] = encode_mask(ex.mask, ex.image_size)
    fit = ex.body_model
    if fit is not None:
        rec["parameters"] = {"type": fit.model, "gender": fit.gender, "pose": np.asarray(fit.pose, np.float64),
                             "shape": np.asarray(fit.betas, np.float64), "trans": np.asarray(fit.trans, np.float64)}
    rec["posebank"] = {"dataset": item.dataset, "row": int(item.source_row), "source_path": ex.source_path}
    if inline:
        rec["image"] = bytes(ex.image)
    return rec, {"joints3d": joints is not None, "fp16": fp16, "fp16_err": err, "mask": bool(ex.mask),
                 "parameters": fit is not None}


class _Bones:
    """Per-edge running sums of bone lengths (mm) over the examples given."""

    def __init__(self, edges):
        self.a = np.asarray([e[0] for e in edges], np.int64)
        self.b = np.asarray([e[1] for e in edges], np.int64)
        self.sum = np.zeros(len(edges), np.float64)
        self.count = np.zeros(len(edges), np.int64)
        self.examples = 0

    def add(self, world_coords) -> None:
        self.examples += 1
        if not len(self.a):
            return
        c = np.asarray(world_coords, np.float32).astype(np.float64)
        lengths = np.linalg.norm(c[self.a] - c[self.b], axis=-1)
        ok = np.isfinite(lengths)
        self.sum[ok] += lengths[ok]
        self.count += ok

    def merged(self, other: _Bones) -> _Bones:
        out = _Bones([])
        out.a, out.b = self.a, self.b
        out.sum, out.count = self.sum + other.sum, self.count + other.count
        out.examples = self.examples + other.examples
        return out

    def mean(self) -> np.ndarray:
        """posepile's mean bones: float32, 0 for an edge with no valid example."""
        return np.where(self.count > 0, self.sum / np.maximum(self.count, 1), 0.0).astype(np.float32)


def _finalize(bc) -> None:
    """Make the index reproducible: barecat's triggers stamp every directory with the insertion time."""
    conn = bc.index.conn
    conn.commit()
    conn.execute("UPDATE dirs SET mtime_ns = NULL")
    conn.commit()
    conn.execute("VACUUM")


def _old_layout(archive: Path) -> None:
    """Rename the closed archive's index to ``<archive>-sqlite-index``: barecat 0.2's layout, which posepile's
    reader (``barecat.threadsafe.get_cached_reader``, gone in barecat 0.3) needs; barecat 0.3 opens it too."""
    os.replace(archive, archive.with_name(archive.name + INDEX_SUFFIX))


def export(source: ExportSource, out: Path, options: dict) -> dict:
    """Write ``annotations.barecat`` (and ``images.barecat``) for ``source`` into the empty folder ``out``.

    Options: ``split`` (None: train, val and test each under its own prefix; or one of them), ``images``
    (``archive``: an image archive beside, posepile's layout; ``inline``: JPEG bytes in each record)."""
    opts = _check_options(dict(options))
    barecat, msgpack_numpy = _imports()
    out = Path(out)
    ji = source.joint_info
    if ji.n_joints > MAX_JOINTS:
        raise DataError(source.path, f"{ji.n_joints} joints; posepile's uint16 joint indices hold {MAX_JOINTS}")
    inline = opts["images"] == "inline"
    splits = list(SPLITS) if opts["split"] is None else [opts["split"]]
    edges = [[int(a), int(b)] for a, b in ji.edges]
    bones = {s: _Bones(edges) for s in ("train", "val")}
    counts = {"examples": 0, "per_split": {s: 0 for s in splits}, "per_dataset": {}, "joints3d_float16": 0,
              "joints3d_float32": 0, "without_joints3d": 0, "without_mask": 0, "with_parameters": 0}
    max_err = 0.0

    ann_path = out / ANNOTATIONS
    img_bc = None if inline else barecat.Barecat(str(out / IMAGES), readonly=False, overwrite=False)
    try:
        with barecat.Barecat(str(ann_path), readonly=False, overwrite=False) as ann:
            for split in splits:
                for item in source.items(split):
                    rec, said = record(item, inline)
                    ann[f"{split}/{rec['impath']}_00.msgpack"] = msgpack_numpy.packb(rec)
                    if img_bc is not None:
                        img_bc[rec["impath"]] = bytes(item.example.image)
                    if split in bones:
                        bones[split].add(item.example.world_coords)
                    counts["examples"] += 1
                    counts["per_split"][split] += 1
                    counts["per_dataset"][item.dataset] = counts["per_dataset"].get(item.dataset, 0) + 1
                    if said["joints3d"]:
                        counts["joints3d_float16" if said["fp16"] else "joints3d_float32"] += 1
                        max_err = max(max_err, said["fp16_err"])
                    else:
                        counts["without_joints3d"] += 1
                    counts["without_mask"] += not said["mask"]
                    counts["with_parameters"] += said["parameters"]
            metadata = {"joint_names": list(ji.names), "joint_edges": edges}
            trainval = bones["train"].merged(bones["val"])
            if bones["train"].examples:
                # posepile's update_bones: without validation examples the train bones are the trainval ones
                metadata["train_bone_lengths"] = bones["train"].mean()
            if trainval.examples:
                metadata["trainval_bone_lengths"] = trainval.mean()
            metadata["posebank"] = {"source": source.name, "kind": source.kind, "datasets": source.datasets()}
            ann[METADATA] = msgpack_numpy.packb(metadata)
            _finalize(ann)
        if img_bc is not None:
            _finalize(img_bc)
    finally:
        if img_bc is not None:
            img_bc.close()
    _old_layout(ann_path)
    if not inline:
        _old_layout(out / IMAGES)

    files = sorted(p.name for p in out.iterdir())
    return {"files": files, "annotations": ANNOTATIONS, "images": None if inline else IMAGES,
            "split": opts["split"], "image_mode": opts["images"], **counts,
            "joints3d_float16_max_error_mm": max_err, "fp16_threshold_mm": FP16_THRESHOLD_MM,
            "bone_lengths": [k for k in ("train_bone_lengths", "trainval_bone_lengths") if k in metadata],
            "not_filled": ["keypoints2d", "visibility", "univ_coords", "activity_name", "scene_name"]}
