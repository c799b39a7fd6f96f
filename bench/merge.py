"""Benchmark of merging: posebank's streaming merge (``build_merge``) against a posepile-style in-memory merge, on
synthetic source caches shaped like huge8's 30 sources, at two total sizes.

Usage::

    .venv/bin/python bench/merge.py [--sizes 200000 2000000] [--work build/bench/merge] [--quick]
                                    [--repeats 2] [--skip-baseline-above N] [--baseline-limit-gib 18]
                                    [--out bench/results/merge.json] [--allow-dirty]

Sources: huge8's composition exactly as ``params.yaml`` (``merges.huge8``: 28 training sources with their suffixes,
splits and ``joints`` glob, tdhp_test and mupots as validation with ``joints_as: muco_3dhp``, ``filter:
plausibility``), each a synthetic cache folder ``<work>/n<SIZE>/caches/<dataset>/`` (shards of at most 4096 rows, as
``pipeline.shard_frames``, + ``index.json``). Joint sets: every source's registered one
(``posebank.datasets.get(name).JOINT_INFO``: the real names, counts and edges of all 30), placed on a standing
template by name (a joint whose name the template does not know, e.g. a mocap marker, sits 5-11 cm from a body
joint, drawn by a generator seeded with the dataset and the name). The union is then huge8's own
(``union_skeleton`` over the sources with their suffixes, as ``posebank merge huge8`` builds it).

Rows: every example its own pose: a standing ~1.7 m template (mm) scaled by 0.92-1.08, turned about the vertical,
perturbed by 10 mm per joint, somewhere in a 6 x 6 m room; its own crop camera (upright, 3.5-8 m away looking at
the person, focal length for a 250-340 px tall person in a 300-420 px crop; zero distortion as crops are) and the
box of its projected joints (+5 % + 3 px). 2 % of the rows miss a joint; 1 % are deliberately implausible (half:
one joint moved 2 m away, a bone > 3x its mean; half: the box moved off the person, < 4 joints in it), so the
plausibility filter drops about 1 % of the training rows (not SURREAL's: exempt). Splits are contiguous runs (as
per-subject splits are): sources merged with ``{train, val}`` are 88 / 8 / 4 % train / val / test, those with
``{train}`` 92 / 0 / 8 % (the test rows are not merged), tdhp_test all test, mupots all val. Images and masks are
empty (b""): the benchmark measures annotation merging (posebank refers to images and never reads them; the
baseline keeps paths). Source paths are real-looking strings. Total rows are split across the sources in proportion
to :data:`SIZE_WEIGHTS` (plausible relative sizes of huge8's sources, not posepile's exact counts). The shards are
written with h5py directly in vectorised blocks, in the documented layout (the dataset names, dtypes, chunking,
compression and attributes of :class:`CacheWriter`, made with posebank's own ``_create``; checked against a file
``CacheWriter`` writes from the same rows: same layout, same values read back), then ``write_index``; every cache is
read back with :class:`Cache`. A size's caches are generated once and reused while their parameters are unchanged.

Per size, each measured in a fresh subprocess (peak RSS: the child's own high-water mark, VmHWM, as it reports it;
not ``ru_maxrss``, which Linux carries over the spawn from this script, whose own size it then reports; CPU times
from ``os.wait4``; MB = MiB), one at a time, all with the page cache warm (the read floor runs first) and BLAS /
OpenMP at one thread:

* ``read_floor``: the machine's limit: every shard's annotation columns (split + the columns a merge copies) read
  once, sequentially, with h5py (I/O + decompression); ``write_floor``: posebank's merged columns written once into
  a new file with each dataset's own chunking and filter (compression + I/O), fsynced. posebank reads (in a forked
  reader process) while it filters and writes, so on two cores the slower of the two floors bounds it
  (``examples_per_s_at_slower_floor``); one core doing both bounds it at ``read + write``;
* ``posebank``: ``build_merge("huge8", spec, cache_dir, out, allow_missing=False)`` (``--repeats`` runs: the best
  time, the highest RSS: the merge process's own peak + what its forked reader process added to the pages they
  share), read back with ``Merge``;
* ``baseline``: posepile's way (merging/merged_dataset3d.py, datasets3d.py): every source cache loaded into memory as
  per-example Python objects (Pose3DExample's attributes: image path, world coords, box, a camera object with its
  arrays), every example's joints expanded to the dense union (555 x 3 float32, NaN where absent: convert_dataset;
  every split, as posepile converts whole datasets), the examples concatenated per merged split, the plausibility
  rule applied (compute_mean_bones' running mean over the merged training examples, then the box and bone tests;
  SURREAL exempt; vectorised over chunks of 256 examples, faster than posepile's per-example loop; bones without
  training data are not tested, as posebank), the means recomputed (update_bones), and the dataset pickled
  (HIGHEST_PROTOCOL) and fsynced. Same union skeleton (posebank's ``source_joints`` / ``union_skeleton``). The child
  runs under ``RLIMIT_AS`` (``--baseline-limit-gib``, capped at the available memory less 2 GiB): if it does not
  fit, the MemoryError is caught and the run recorded as failed with the memory it reached and the stage.

Reported per size and method: seconds, examples/s (merged examples per second), peak RSS, bytes on disk of the
output, ``annotation_bytes`` of the output against the sum of the sources' (the baseline's: its pickle), examples
kept and dropped; posebank against the baseline (speed, RSS, bytes) and the floors; the targets (posebank's peak RSS
< 1024 MB at both sizes and within 10 % between them, merged annotation bytes <= 1.3 x the sources', >= 100k
examples/s, same kept counts as the baseline) as booleans; and a cProfile of one posebank merge at the largest size
(apart from the timed runs). As with the other benchmarks, the default output is not written from uncommitted code
unless ``--allow-dirty`` is given (recorded as ``code.clean: false``), and a ``--quick`` run (20k and 200k, one
repeat) needs ``--out``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from posebank.core import memory  # noqa: E402
from posebank.core.atomic import write_json  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))  # bench/provenance.py, also when this file is imported by path
from provenance import code_state  # noqa: E402

DEFAULT_OUT = REPO / "bench" / "results" / "merge.json"
DEFAULT_WORK = REPO / "build" / "bench" / "merge"
PARAMS_FILE = REPO / "params.yaml"
MERGE = "huge8"
GENERATOR_VERSION = 2  # 2: every source's registered joint set
DEFAULT_SIZES = (200_000, 2_000_000)
QUICK_SIZES = (20_000, 200_000)
ROWS_PER_SHARD = 4096  # pipeline.shard_frames: a real cache's shard holds at most this many frames
MIN_ROWS = 64  # rows of the smallest source
LOAD_BLOCK = 32768  # rows read at a time by the baseline's loader and the floors
PILE_CHUNK = 256  # posepile's compute_mean_bones chunk
IMPLAUSIBLE_FRACTION = 0.01
MISSING_FRACTION = 0.02
MIB, GIB = 1 << 20, 1 << 30
TARGETS = {"posebank_peak_rss_mb_max": 1024, "posebank_rss_spread_max": 0.10, "annotation_bytes_ratio_max": 1.3,
           "posebank_examples_per_s_min": 100_000}

# plausible relative sizes of huge8's sources (thousands of examples; proportions only, not posepile's counts)
SIZE_WEIGHTS = {
    "surreal": 1100, "h36m_alljoints": 390, "fit3d": 320, "chi3d": 90, "humansc3d": 190, "sailvos": 560,
    "panoptic": 1200, "muco_3dhp": 200, "aist": 620, "gpa": 300, "humbi": 540, "aspset": 200, "agora": 140,
    "tdoh": 30, "tdpeople": 480, "bml_movi": 580, "mads": 60, "umpm": 280, "bmhad": 150, "tdhp_full": 880,
    "totalcapture": 450, "jta": 1400, "ikea": 120, "human4d": 60, "behave": 260, "rich": 420, "spec": 20,
    "hspace": 680, "tdhp_test": 2.9, "mupots": 20,
}
# posepile's anatomical names; a joint the template does not know is placed near one of the first 17
CORE = ("pelv,rhip,rkne,rank,lhip,lkne,lank,spin,neck,head,htop,lsho,lelb,lwri,rsho,relb,rwri,thor,lcla,rcla,lhan,"
        "rhan,lfoo,rfoo,ltoe,rtoe,nose,leye,reye,lear,rear,bell,spi4,lhee,rhee,lthu,rthu,lfin,rfin,jaw,spi2"
        ).split(",")
# a standing person (x to its left, y forward, z up), mm from the pelvis; right joints mirror the left ones
_CENTRE = {"pelv": (0, 0, 0), "bell": (0, 30, 90), "spi2": (0, 0, 160), "spin": (0, 10, 230), "spi4": (0, 0, 320),
           "thor": (0, 0, 400), "neck": (0, 0, 520), "jaw": (0, 70, 560), "head": (0, 40, 600),
           "nose": (0, 110, 620), "htop": (0, 20, 730)}
_LEFT = {"lhip": (100, 0, -60), "lkne": (110, 20, -480), "lank": (115, -20, -900), "lhee": (115, -70, -950),
         "lfoo": (115, 80, -960), "ltoe": (115, 150, -960), "lcla": (70, 0, 480), "lsho": (170, 0, 470),
         "lelb": (250, 20, 200), "lwri": (280, 80, -40), "lhan": (285, 110, -110), "lthu": (300, 130, -80),
         "lfin": (290, 120, -150), "leye": (35, 95, 650), "lear": (75, 30, 630)}
POSITIONS = {**_CENTRE, **_LEFT, **{"r" + k[1:]: (-x, y, z) for k, (x, y, z) in _LEFT.items()}}
PERSON_HEIGHT_MM = 1700.0


def stable_seed(*parts) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "little")


def emit(obj: dict) -> None:
    print(json.dumps(obj, default=str), flush=True)


def rss_now_mb() -> float:
    return round(memory.rss_mb(), 1)


def peak_rss_self_mb() -> float:
    """The child's own peak (VmHWM: ru_maxrss would carry over this script's own size from the spawn)."""
    return round(memory.peak_rss_mb(), 1)


def huge8_spec():
    """huge8's MergeParams from params.yaml, with allow_missing off (every source must be there)."""
    from posebank.core.settings import load_params, merge_params

    spec = merge_params(MERGE, load_params(PARAMS_FILE)["merges"][MERGE])
    return dataclasses.replace(spec, allow_missing=False)


# ------------------------------------------------------------------------------------------ joint sets
def template(names, key: str) -> np.ndarray:
    """(J, 3) standing positions of ``names`` (a suffixed name such as ``lsho_coco`` at its base joint; a name the
    template does not know 5-11 cm from a body joint, placed by a generator seeded with ``key`` and the name)."""
    out = []
    for name in names:
        base = name.split("_")[0]
        if base in POSITIONS:
            out.append(POSITIONS[base])
            continue
        rng = np.random.default_rng(stable_seed("markers", key, name))
        parent = CORE[int(rng.integers(0, 17))]
        direction = rng.normal(size=3)
        out.append(np.asarray(POSITIONS[parent]) + direction / np.linalg.norm(direction) * rng.uniform(50, 110))
    return np.asarray(out, np.float64)


def joint_sets() -> dict:
    """dataset -> the JointInfo of its synthetic cache: the registered dataset's own (module docstring)."""
    from posebank import datasets

    return {name: datasets.get(name).JOINT_INFO for name in SIZE_WEIGHTS}


# ------------------------------------------------------------------------------------------ the plan
def split_fractions(source) -> tuple[float, float, float]:
    if source.dataset == "tdhp_test":
        return 0.0, 0.0, 1.0
    if source.dataset == "mupots":
        return 0.0, 1.0, 0.0
    return (0.88, 0.08, 0.04) if "val" in source.splits else (0.92, 0.0, 0.08)


def make_plan(size: int, seed: int, spec, sets: dict) -> dict:
    names = [s.dataset for s in spec.sources]
    if set(names) != set(SIZE_WEIGHTS):
        raise RuntimeError(f"huge8's sources in params.yaml ({names}) are not the ones this benchmark sizes")
    total = sum(SIZE_WEIGHTS[n] for n in names)
    rows = {n: max(MIN_ROWS, round(size * SIZE_WEIGHTS[n] / total)) for n in names}
    largest = max(rows, key=rows.get)
    rows[largest] += size - sum(rows.values())
    from posebank.core.store import FORMAT_VERSION

    return {"generator_version": GENERATOR_VERSION, "cache_format_version": FORMAT_VERSION, "size": size, "seed": seed,
            "rows_per_shard": ROWS_PER_SHARD,
            "implausible_fraction": IMPLAUSIBLE_FRACTION, "missing_fraction": MISSING_FRACTION,
            "sources": {s.dataset: {"rows": rows[s.dataset], "joints": sets[s.dataset].n_joints,
                                    "joint_info_sha": joint_digest(sets[s.dataset]),
                                    "split_fractions": split_fractions(s)} for s in spec.sources}}


def joint_digest(joint_info) -> str:
    return hashlib.sha256(joint_info.to_json().encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------ the rows
def look_at_many(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """World-to-camera rotations (n, 3, 3) of upright cameras at ``eye`` looking at ``target``."""
    z = target - eye
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    x = np.cross(z, np.asarray(up))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=1)


def generate_block(rng, t: np.ndarray, n: int) -> dict:
    """``n`` rows of a source whose joints stand at ``t`` (J, 3) (module docstring)."""
    n_joints = len(t)
    scale = rng.uniform(0.92, 1.08, n)
    local = t[None] * scale[:, None, None] + rng.normal(0, 10, (n, n_joints, 3))
    yaw = rng.uniform(-np.pi, np.pi, n)
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    root = np.stack([rng.uniform(-3000, 3000, n), rng.uniform(-3000, 3000, n), rng.uniform(900, 1000, n)], 1)
    world = np.stack([c * local[..., 0] - s * local[..., 1], s * local[..., 0] + c * local[..., 1], local[..., 2]],
                     -1) + root[:, None]
    bad = rng.random(n) < IMPLAUSIBLE_FRACTION
    bone = bad & (rng.random(n) < 0.5)
    box_off = bad & ~bone
    rows = np.flatnonzero(bone)
    direction = rng.normal(size=(len(rows), 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    world[rows, rng.integers(0, n_joints, len(rows))] += 2000 * direction  # a bone > 3x its mean and > 150 mm off
    missing = np.flatnonzero((rng.random(n) < MISSING_FRACTION) & ~bad)
    world[missing, rng.integers(0, n_joints, len(missing))] = np.nan
    # crop cameras: upright, 3.5-8 m away, looking at the person
    distance = rng.uniform(3500, 8000, n)
    azimuth = rng.uniform(-np.pi, np.pi, n)
    elevation = rng.uniform(-0.05, 0.3, n)
    eye = root + distance[:, None] * np.stack([np.cos(azimuth) * np.cos(elevation),
                                               np.sin(azimuth) * np.cos(elevation), np.sin(elevation)], 1)
    R = look_at_many(eye, root + rng.normal(0, 30, (n, 3)))
    w, h = rng.integers(300, 421, n), rng.integers(300, 421, n)
    f = rng.uniform(250, 340, n) * distance / PERSON_HEIGHT_MM
    K = np.zeros((n, 3, 3))
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = f, f, (w - 1) / 2, (h - 1) / 2, 1
    cam = np.einsum("nij,nkj->nki", R, world - eye[:, None])
    u = f[:, None] * cam[..., 0] / cam[..., 2] + K[:, 0, 2, None]
    v = f[:, None] * cam[..., 1] / cam[..., 2] + K[:, 1, 2, None]
    u0, u1, v0, v1 = np.nanmin(u, 1), np.nanmax(u, 1), np.nanmin(v, 1), np.nanmax(v, 1)
    pu, pv = 0.05 * (u1 - u0) + 3, 0.05 * (v1 - v0) + 3
    bbox = np.stack([u0 - pu, v0 - pv, u1 - u0 + 2 * pu, v1 - v0 + 2 * pv], 1)
    bbox[box_off, 0] += 1.5 * bbox[box_off, 2] + 50  # the box beside the person: no joint in it
    return {"world_coords": world.astype(np.float32), "bbox": bbox.astype(np.float32),
            "camera/intrinsic_matrix": K.astype(np.float32), "camera/R": R.astype(np.float32),
            "camera/t": eye.astype(np.float32), "image_size": np.stack([w, h], 1).astype(np.int32),
            "implausible": int(bad.sum())}


LABELS = {"subject": lambda i: f"S{i + 1}", "sequence": lambda i: f"seq{i:04d}", "activity": lambda i: f"act{i:02d}",
          "camera_name": lambda i: f"cam{i}"}


def label_ids(r: np.ndarray) -> dict[str, np.ndarray]:
    """Global row numbers -> label numbers of the categorical columns (contiguous subjects and sequences)."""
    return {"subject": r // 16384, "sequence": r // 1024, "activity": (r // 1024) % 12, "camera_name": r % 4}


def shard_rows(rng, dataset: str, t: np.ndarray, r0: int, r1: int, n_rows: int, fractions) -> dict:
    """Every column of rows [r0, r1) of a source of ``n_rows`` rows (the block, splits, categories, paths)."""
    n = r1 - r0
    block = generate_block(rng, t, n)
    r = np.arange(r0, r1)
    n_train, n_val = round(n_rows * fractions[0]), round(n_rows * fractions[1])
    block["split"] = np.where(r < n_train, 0, np.where(r < n_train + n_val, 1, 2)).astype(np.uint8)
    block["frame_index"] = ((r // 4) % 1_000_000).astype(np.int32)
    block["camera/distortion_coeffs"] = np.zeros((n, 5), np.float32)
    block["camera/distortion_model"] = np.zeros(n, np.uint8)
    block["camera/world_up"] = np.tile(np.float32([0, 0, 1]), (n, 1))
    block["visibility"] = np.full((n, len(t)), 255, np.uint8)
    ids = label_ids(r)
    block["labels"] = {k: [LABELS[k](int(i)) for i in v] for k, v in ids.items()}
    block["source_path"] = [f"{s}/{q}/{c}/{fr:06d}.jpg" for s, q, c, fr in zip(
        block["labels"]["subject"], block["labels"]["sequence"], block["labels"]["camera_name"],
        block["frame_index"].tolist())]
    return block


def write_shard(path: Path, dataset: str, joint_info, block: dict, attrs: dict) -> None:
    """One cache file in the documented layout (docs/format.md; what CacheWriter writes), columns at once."""
    import h5py

    from posebank import __version__
    from posebank.core.camera import DISTORTION_MODELS
    from posebank.core.store import (
        BLOB_CHUNK_BYTES,
        BLOB_COLUMNS,
        CATEGORICAL_COLUMNS,
        FORMAT_NAME,
        FORMAT_VERSION,
        ROWS_PER_CHUNK,
        SPLITS,
        V2_DEFAULTS,
        _create,
        _numeric_columns,
        _require_group,
    )

    n = len(block["split"])
    with h5py.File(path, "w", libver=("v110", "v110"), track_order=False) as f:
        for name, (dtype, trailing, compress) in _numeric_columns(joint_info.n_joints).items():
            ds = _create(f, name, (n, *trailing), (None, *trailing), dtype, (ROWS_PER_CHUNK, *trailing), compress)
            # the version-2 columns (2D joints, body-model fits) as CacheWriter stores an example without them
            ds[...] = np.asarray(block[name], dtype) if name in block else np.full((n, *trailing),
                                                                                  V2_DEFAULTS.get(name, 0), dtype)
        tables = {}
        for name in CATEGORICAL_COLUMNS:
            table: dict[str, int] = {}
            codes = np.array([table.setdefault(label, len(table)) for label in block["labels"][name]], np.int32)
            tables[name] = list(table)
            ds = _create(f, name, (n,), (None,), "int32", (ROWS_PER_CHUNK,), True)
            ds[...] = codes
        for name, compress in BLOB_COLUMNS.items():
            items = [p.encode() for p in block["source_path"]] if name == "source_path" else [b""] * n
            data = np.frombuffer(b"".join(items), np.uint8)
            ds = _create(f, f"{name}/data", (len(data),), (None,), "uint8", (BLOB_CHUNK_BYTES,), compress)
            if len(data):
                ds[...] = data
            offsets = _create(f, f"{name}/offsets", (n + 1,), (None,), "int64", (ROWS_PER_CHUNK,), True)
            offsets[...] = np.concatenate([[0], np.cumsum([len(b) for b in items])]).astype(np.int64)
        for name in CATEGORICAL_COLUMNS:  # as CacheWriter._write_categories
            g = _require_group(f, f"categories/{name}")
            enc = [s.encode() for s in tables[name]]
            g.create_dataset("data", data=np.frombuffer(b"".join(enc), np.uint8) if enc else np.zeros(0, np.uint8),
                             track_times=False)
            g.create_dataset("offsets", data=np.concatenate([[0], np.cumsum([len(b) for b in enc])]).astype(np.int64),
                             track_times=False)
        root = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "posebank_version": __version__,
                "dataset": dataset, "n_examples": n, "joint_info": joint_info.to_json(),
                "splits": json.dumps(list(SPLITS)), "distortion_models": json.dumps(list(DISTORTION_MODELS)),
                "quarantine": json.dumps([]),
                **{k: (json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v) for k, v in attrs.items()}}
        for k in sorted(root):
            f.attrs[k] = root[k]


def layout_signature(path: Path) -> dict:
    import h5py

    sig = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                sig[name] = [str(obj.dtype), list(obj.shape[1:]), obj.chunks, obj.compression, obj.compression_opts,
                             obj.shuffle, list(obj.maxshape[1:]) if obj.maxshape else None,
                             obj.maxshape[0] if obj.maxshape else None]
        f.visititems(visit)
        sig["attrs"] = sorted((k, type(v).__name__) for k, v in f.attrs.items())
    return sig


def check_layout(folder: Path, sets: dict, seed: int) -> dict:
    """The direct writer against CacheWriter on the same rows: same layout, same values read back."""
    from posebank.core.camera import Camera
    from posebank.core.store import BLOB_COLUMNS, SPLITS, Cache, CacheWriter, Example

    dataset = "behave"
    ji = sets[dataset]
    rng = np.random.default_rng([seed, 12345])
    block = shard_rows(rng, dataset, template(ji.names, dataset), 0, 40, 40, (0.5, 0.25, 0.25))
    attrs = {"digest": "0" * 32, "shard": "sample", "params": {"benchmark": "merge"}, "expected_splits": ["train"]}
    folder.mkdir(parents=True, exist_ok=True)
    ours, theirs = folder / "direct.h5", folder / "cachewriter.h5"
    write_shard(ours, dataset, ji, block, attrs)
    with CacheWriter(theirs, dataset, ji, attrs) as w:
        for j in range(40):
            camera = Camera(block["camera/intrinsic_matrix"][j], block["camera/R"][j], block["camera/t"][j])
            w.add(Example(world_coords=block["world_coords"][j], camera=camera,
                          bbox=block["bbox"][j], split=SPLITS[int(block["split"][j])], image=b"",
                          image_size=tuple(int(v) for v in block["image_size"][j]),
                          **{k: block["labels"][k][j] for k in LABELS}, frame_index=int(block["frame_index"][j]),
                          source_path=block["source_path"][j], mask=b""))
    same_layout = layout_signature(ours) == layout_signature(theirs)
    with Cache(ours) as a, Cache(theirs) as b:
        ra, rb = a.read(), b.read()
        same_values = all(np.array_equal(np.asarray(ra[k]), np.asarray(rb[k]), equal_nan=ra[k].dtype.kind == "f")
                          for k in ra) and all(a.blobs(n, 0, 40) == b.blobs(n, 0, 40) for n in BLOB_COLUMNS)
    ours.unlink()
    theirs.unlink()
    if not (same_layout and same_values):
        raise AssertionError(f"the direct shard writer differs from CacheWriter: layout same {same_layout}, values "
                             f"same {same_values}")
    return {"compared_with": "CacheWriter, 40 rows of behave", "same_layout": same_layout, "same_values": same_values}


def generate_caches(cache_dir: Path, plan: dict, spec, sets: dict) -> dict:
    """Write every source's cache folder (shards + index.json) and check it reads back."""
    from posebank.core.store import write_index

    t0 = time.perf_counter()
    implausible = {}
    for k, s in enumerate(spec.sources):
        ji, entry = sets[s.dataset], plan["sources"][s.dataset]
        n = entry["rows"]
        folder = cache_dir / s.dataset
        folder.mkdir(parents=True)
        t = template(ji.names, s.dataset)
        files, n_bad = [], 0
        n_shards = -(-n // ROWS_PER_SHARD)
        for i in range(n_shards):
            r0, r1 = i * ROWS_PER_SHARD, min(n, (i + 1) * ROWS_PER_SHARD)
            rng = np.random.default_rng([plan["seed"], k, i])
            block = shard_rows(rng, s.dataset, t, r0, r1, n, entry["split_fractions"])
            n_bad += block["implausible"]
            name = f"part{i + 1:04d}of{n_shards:04d}"
            digest = hashlib.sha256(f"bench.merge:{json.dumps(plan, sort_keys=True)}:{s.dataset}:{i}".encode())
            path = folder / f"{name}.h5"
            write_shard(path, s.dataset, ji, block, {"digest": digest.hexdigest()[:32], "shard": name,
                                                     "expected_splits": ["train", "val", "test"]})
            files.append(path)
        write_index(folder, s.dataset, ji, files, {"params": {"benchmark": "merge", "synthetic": True},
                                                   "expected_splits": ["train", "val", "test"]})
        implausible[s.dataset] = n_bad
    seconds = time.perf_counter() - t0
    checked = verify_caches(cache_dir, plan, spec, sets)
    return {"generate_seconds": round(seconds, 1), "implausible_rows_generated": implausible, **checked}


def verify_caches(cache_dir: Path, plan: dict, spec, sets: dict) -> dict:
    from posebank.core.store import Cache

    shards = 0
    for s in spec.sources:
        with Cache(cache_dir / s.dataset) as c:
            entry = plan["sources"][s.dataset]
            if len(c) != entry["rows"] or c.joint_info != sets[s.dataset] or c.dataset != s.dataset:
                raise AssertionError(f"{cache_dir / s.dataset}: {len(c)} rows of {c.dataset} (expected "
                                     f"{entry['rows']}), joint set as planned: {c.joint_info == sets[s.dataset]}")
            ex = c[len(c) - 1]
            if ex.world_coords.shape != (sets[s.dataset].n_joints, 3) or not ex.source_path:
                raise AssertionError(f"{cache_dir / s.dataset}: last row unreadable")
            c.read(0, min(len(c), 100))
            shards += c.n_shards
    return {"read_back": "every cache opened with Cache: row count, joint set, last example, first 100 rows",
            "shards": shards}


def ensure_caches(root: Path, plan: dict, spec, sets: dict) -> dict:
    """The size's caches: reused when generated before with the same plan, else (re)generated."""
    cache_dir, marker = root / "caches", root / "caches" / "generated.json"
    if marker.is_file() and json.loads(marker.read_text()) == json.loads(json.dumps(plan)):
        try:
            return {"reused": True, **verify_caches(cache_dir, plan, spec, sets)}
        except Exception as e:  # regenerate a damaged folder
            print(f"  cached sources unusable ({e}); regenerating", flush=True)
    if cache_dir.exists():
        shutil.rmtree(cache_dir)
    cache_dir.mkdir(parents=True)
    info = generate_caches(cache_dir, plan, spec, sets)
    write_json(marker, plan)
    return {"reused": False, **info}


# ------------------------------------------------------------------------------------------ the posepile-style baseline
class PileCamera:
    """posepile's cameralib.Camera as far as a merge touches it: its arrays."""

    def __init__(self, optical_center, rot_world_to_cam, intrinsic_matrix, distortion_coeffs, world_up):
        self.t = optical_center
        self.R = rot_world_to_cam
        self.intrinsic_matrix = intrinsic_matrix
        self.distortion_coeffs = distortion_coeffs
        self.world_up = world_up


class PileExample:
    """posepile's Pose3DExample (datasets3d.py): the same attributes."""

    def __init__(self, image_path, world_coords, bbox, camera, activity_name="unknown", scene_name="unknown"):
        self.image_path = image_path
        self.world_coords = world_coords
        self.univ_coords = None
        self.bbox = bbox
        self.camera = camera
        self.activity_name = activity_name
        self.scene_name = scene_name
        self.mask = None
        self.instance_mask = None
        self.custom = None
        self.image = None
        self.parameters = None


class PileJointInfo:
    def __init__(self, names, edges):
        self.names = list(names)
        self.stick_figure_edges = [tuple(e) for e in edges]


class PileDataset:
    """posepile's Pose3DDataset: the joint info, the examples per phase, the training bones."""

    def __init__(self, joint_info, train, valid, test, train_bones=None):
        self.joint_info = joint_info
        self.examples = {0: train, 1: valid, 2: test}
        self.train_bones = train_bones


def pile_mean_bones(examples: list, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """posepile's compute_mean_bones: a running float32 mean over chunks of 256 examples; also the valid counts."""
    a, b = edges[:, 0], edges[:, 1]
    mean = np.zeros(len(edges), np.float32)
    n_valid = np.zeros(len(edges), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of bones absent from a chunk
        for i in range(0, len(examples), PILE_CHUNK):
            coords = np.stack([ex.world_coords for ex in examples[i:i + PILE_CHUNK]])
            valid = ~np.isnan(coords).any(-1)
            bone_valid = valid[:, a] & valid[:, b]
            now = np.count_nonzero(bone_valid, axis=0)
            n_valid += now
            seen = now > 0
            lengths = np.linalg.norm(coords[:, a] - coords[:, b], axis=-1)
            lengths[~bone_valid] = np.nan
            mean_now = np.nanmean(lengths, axis=0)
            fac = now[seen] / n_valid[seen]
            mean[seen] = mean_now[seen] * fac + mean[seen] * (1 - fac)
    return mean, n_valid


def pile_implausible(chunk: list, edges: np.ndarray, mean: np.ndarray, has_mean: np.ndarray, p
                     ) -> tuple[np.ndarray, np.ndarray]:
    """posepile's is_plausible for a chunk of examples: (fewer joints in the box, an implausible bone)."""
    coords = np.stack([ex.world_coords for ex in chunk]).astype(np.float64)
    R = np.stack([ex.camera.R for ex in chunk]).astype(np.float64)
    t = np.stack([ex.camera.t for ex in chunk]).astype(np.float64)
    K = np.stack([ex.camera.intrinsic_matrix for ex in chunk]).astype(np.float64)
    box = np.stack([ex.bbox for ex in chunk]).astype(np.float64)
    pc = np.einsum("nij,nkj->nki", R, coords - t[:, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        x, y = pc[..., 0] / pc[..., 2], pc[..., 1] / pc[..., 2]
        u = K[:, None, 0, 0] * x + K[:, None, 0, 1] * y + K[:, None, 0, 2]
        v = K[:, None, 1, 1] * y + K[:, None, 1, 2]
        inside = ((u >= box[:, None, 0]) & (v >= box[:, None, 1]) & (u < box[:, None, 0] + box[:, None, 2])
                  & (v < box[:, None, 1] + box[:, None, 3]))
        few = np.count_nonzero(inside, axis=1) < p.min_joints_in_box
        lengths = np.linalg.norm(coords[:, edges[:, 0]] - coords[:, edges[:, 1]], axis=-1)
        rel = lengths * (1 / (mean + 1e-8))
        bad = (((rel < p.rel_small) | (rel > p.rel_big)) & (np.abs(lengths - mean) > p.abs_big_mm)) & has_mean
    return few, bad.any(axis=1)


def child_baseline(a: dict) -> dict:
    """The posepile-style merge (module docstring); emits a progress line per stage."""
    from posebank.core.store import SPLITS, Cache
    from posebank.merging.skeleton import source_joints, union_skeleton
    from posebank.merging.store import cache_location

    t0 = time.perf_counter()
    stages: dict = {}
    current = {"stage": None}

    def stage(name: str, **extra) -> None:
        now = time.perf_counter() - t0
        if current["stage"] is not None:
            stages[current["stage"]]["seconds"] = round(now - stages[current["stage"]]["start"], 2)
            stages[current["stage"]]["rss_after_mb"] = rss_now_mb()
        if name is not None:
            stages[name] = {"start": round(now, 2), "rss_before_mb": rss_now_mb(), **extra}
        current["stage"] = name
        emit({"stage": name, "elapsed": round(now, 2), "rss_mb": rss_now_mb(), "peak_rss_mb": peak_rss_self_mb(),
              **extra})

    spec = huge8_spec()
    p = spec.plausibility
    cache_dir, out = Path(a["cache_dir"]), Path(a["out"])
    stage("load")
    loaded = []  # (source, joint info, {split code: [examples]})
    n_loaded = 0
    for s in spec.sources:
        with Cache(cache_location(cache_dir, s.dataset)) as c:
            acts, seqs = c.categories("activity"), c.categories("sequence")
            per_split: dict[int, list] = {0: [], 1: [], 2: []}
            for start in range(0, len(c), LOAD_BLOCK):
                stop = min(start + LOAD_BLOCK, len(c))
                sel = slice(start, stop)
                wc, bbox, split = c.column("world_coords", sel), c.column("bbox", sel), c.column("split", sel).tolist()
                R, t, K = c.column("camera/R", sel), c.column("camera/t", sel), c.column("camera/intrinsic_matrix", sel)
                dist, up = c.column("camera/distortion_coeffs", sel), c.column("camera/world_up", sel)
                if dist.any():
                    raise RuntimeError("the baseline's projection assumes undistorted crops")
                act, seq = c.column("activity", sel).tolist(), c.column("sequence", sel).tolist()
                paths = c.blobs("source_path", start, stop)
                for j in range(stop - start):
                    per_split[split[j]].append(PileExample(
                        f"{s.dataset}/{paths[j].decode()}", wc[j].copy(), bbox[j].copy(),
                        PileCamera(t[j].copy(), R[j].copy(), K[j].copy(), dist[j].copy(), up[j].copy()),
                        acts[act[j]], seqs[seq[j]]))
            n_loaded += len(c)
            loaded.append((s, c.joint_info, per_split))
    stage("expand", examples=n_loaded)
    by_name = {s.dataset: ji for s, ji, _ in loaded}
    joints = [source_joints(ji, s.suffix, by_name[s.joints_as] if s.joints_as else None, s.joints)
              for s, ji, _ in loaded]
    union = union_skeleton(joints)
    n_union = union.joint_info.n_joints
    for (_s, _ji, per_split), sj, m in zip(loaded, joints, union.joint_maps):
        src, dst = sj.source_index, m
        for exs in per_split.values():  # posepile converts whole datasets, every phase
            for ex in exs:
                dense = np.full((n_union, 3), np.nan, np.float32)
                dense[dst] = ex.world_coords[src]
                ex.world_coords = dense
    stage("concatenate", union_joints=n_union)
    examples: dict[int, list] = {0: [], 1: [], 2: []}
    for s, _ji, per_split in loaded:
        for take, use_as in s.splits.items():
            examples[SPLITS.index(use_as)] += per_split[SPLITS.index(take)]
    stage("filter", train=len(examples[0]))
    edges = np.asarray(union.joint_info.edges, np.int64).reshape(-1, 2)
    train = examples[0]
    mean, n_valid = pile_mean_bones(train, edges)
    has_mean = n_valid > 0
    keep = np.ones(len(train), bool)
    exempt_prefixes = tuple(f"{d}/" for d in p.exempt)  # posepile: 'surreal' in ex.image_path
    dropped = {"fewer joints in the box than min_joints_in_box": 0, "implausible bone length": 0}
    for i in range(0, len(train), PILE_CHUNK):
        chunk = train[i:i + PILE_CHUNK]
        exempt = np.array([ex.image_path.startswith(exempt_prefixes) for ex in chunk], bool)
        few, bad = pile_implausible(chunk, edges, mean, has_mean, p)
        few &= ~exempt
        bad &= ~exempt & ~few
        dropped["fewer joints in the box than min_joints_in_box"] += int(few.sum())
        dropped["implausible bone length"] += int(bad.sum())
        keep[i:i + PILE_CHUNK] = ~(few | bad)
    examples[0] = [ex for ex, k in zip(train, keep.tolist()) if k]
    del train
    train_bones, _ = pile_mean_bones(examples[0], edges)  # posepile's update_bones after filtering
    stage("pickle", kept_train=len(examples[0]), kept_val=len(examples[1]))
    per_split = exs = None
    del loaded  # posepile's per-dataset objects are gone when the merge function returns
    ds = PileDataset(PileJointInfo(union.joint_info.names, union.joint_info.edges), examples[0], examples[1],
                     examples[2], train_bones)
    tmp = out.with_name(out.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            pickle.dump(ds, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    stage(None)
    seconds = time.perf_counter() - t0
    return {"seconds": round(seconds, 3), "stages": stages, "union_joints": n_union, "union_edges": len(edges),
            "examples_loaded": n_loaded, "kept": {"train": len(examples[0]), "val": len(examples[1]),
                                                  "test": len(examples[2])},
            "dropped": dropped, "output_bytes": out.stat().st_size, "peak_rss_self_mb": peak_rss_self_mb()}


# ------------------------------------------------------------------------------------------ posebank and the floors
def child_posebank(a: dict) -> dict:
    rss_start = rss_now_mb()
    from posebank.merging.build import build_merge

    spec = huge8_spec()
    rss_imported = rss_now_mb()
    t0 = time.perf_counter()
    result = build_merge(MERGE, spec, a["cache_dir"], a["out"], allow_missing=False)
    seconds = time.perf_counter() - t0
    return {"seconds": round(seconds, 3), "result": result, "rss_start_mb": rss_start,
            "rss_after_imports_mb": rss_imported, "peak_rss_self_mb": peak_rss_self_mb()}


def child_profile(a: dict) -> dict:
    """One posebank merge under cProfile: where its time goes."""
    import cProfile
    import pstats

    from posebank.merging.build import build_merge

    spec = huge8_spec()
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    build_merge(MERGE, spec, a["cache_dir"], a["out"], allow_missing=False)
    prof.disable()
    seconds = time.perf_counter() - t0
    stats = pstats.Stats(prof).stats
    rows = []
    for (file, line, func), (_cc, nc, tt, ct, _callers) in stats.items():
        where = file.split("site-packages/")[-1].split("/src/")[-1] if file != "~" else "built-in"
        rows.append({"function": f"{where}:{line}({func})", "calls": nc, "tottime": round(tt, 3),
                     "cumtime": round(ct, 3)})
    import h5py

    from posebank.core.store import Cache
    from posebank.merging import blocks, build, plausibility
    from posebank.merging.store import MergeWriter

    wanted = {build.build_merge: "build_merge (whole)",
              blocks.BlockStream.task: "BlockStream.task (waiting for and taking the reader's blocks)",
              Cache.column: "Cache.column (h5py reads, both passes)",
              MergeWriter.append: "MergeWriter.append (h5py writes + compression)",
              MergeWriter.__exit__: "MergeWriter.__exit__ (close, fsync)",
              plausibility.implausible: "plausibility.implausible (filter pass)",
              plausibility.BoneMeans.add: "BoneMeans.add (first pass)", plausibility.joints_in_box: "joints_in_box",
              plausibility.bone_lengths: "bone_lengths (both passes)",
              h5py.Dataset.__getitem__: "h5py Dataset.__getitem__", h5py.Dataset.__setitem__:
              "h5py Dataset.__setitem__", h5py.Dataset.resize: "h5py Dataset.resize"}
    by_code = {(f.__code__.co_filename, f.__code__.co_firstlineno, f.__code__.co_name): label
               for f, label in wanted.items()}
    named = {}
    h5py_methods = {"__getitem__": "h5py Dataset.__getitem__", "__setitem__": "h5py Dataset.__setitem__"}
    for key, (_cc, nc, tt, ct, _callers) in stats.items():
        label = by_code.get(key)
        if label is None and key[0].endswith("h5py/_hl/dataset.py"):  # decorated methods: matched by name
            label = h5py_methods.get(key[2])
        if label is not None:
            named[label] = {"calls": nc, "tottime": round(tt, 3), "cumtime": round(ct, 3)}
    return {"seconds_under_profiler": round(seconds, 2), "functions": named,
            "top_tottime": sorted(rows, key=lambda r: -r["tottime"])[:25],
            "top_cumtime": sorted(rows, key=lambda r: -r["cumtime"])[:25]}


def child_read_floor(a: dict) -> dict:
    """Every shard's split + merged columns read once, sequentially, with h5py (time per column too)."""
    import h5py

    from posebank.merging.store import COPIED_FROM_SOURCE, cache_location

    spec = huge8_spec()
    per_column = dict.fromkeys(("split", *COPIED_FROM_SOURCE), 0.0)
    t0 = time.perf_counter()
    raw = files = rows = 0
    for s in spec.sources:
        folder = cache_location(Path(a["cache_dir"]), s.dataset)
        for shard in json.loads((folder / "index.json").read_text())["shards"]:
            with h5py.File(folder / shard["file"], "r") as f:
                for name in per_column:
                    t = time.perf_counter()
                    raw += f[name][()].nbytes
                    per_column[name] += time.perf_counter() - t
                rows += int(f.attrs["n_examples"])
            files += 1
    seconds = time.perf_counter() - t0
    return {"seconds": round(seconds, 3), "raw_mb": round(raw / MIB, 1), "files": files, "rows": rows,
            "rows_per_s": round(rows / seconds), "raw_mb_per_s": round(raw / MIB / seconds, 1),
            "seconds_per_column": {k: round(v, 3) for k, v in per_column.items()},
            "split_and_world_coords_seconds": round(per_column["split"] + per_column["world_coords"], 3),
            "peak_rss_self_mb": peak_rss_self_mb()}


POSEBANK_SETTING = "posebank"  # each dataset with the merged file's own filter and chunks (MergeWriter's choice)
WRITE_SETTINGS = {  # name -> h5py create_dataset keywords, the same for every dataset (for comparison)
    POSEBANK_SETTING: None,
    "gzip4_shuffle": {"compression": "gzip", "compression_opts": 4, "shuffle": True},
    "gzip1_shuffle": {"compression": "gzip", "compression_opts": 1, "shuffle": True},
    "lzf_shuffle": {"compression": "lzf", "shuffle": True},
    "none": {},
}


def child_write_floor(a: dict) -> dict:
    """posebank's merged columns written once into a new file, fsynced (reading them from the merged file is not
    timed): each dataset with the merged file's own chunks and filter (the floor), and for comparison every dataset
    with one of the other settings in 1024-row chunks (seconds and file size)."""
    import h5py

    from posebank.core.store import ROWS_PER_CHUNK, _require_group
    from posebank.merging.store import merged_columns

    out = Path(a["out"])
    variants = {}
    for setting, kw in WRITE_SETTINGS.items():
        timed, raw = 0.0, 0
        with h5py.File(a["merged"], "r") as src:
            t = time.perf_counter()
            dst = h5py.File(out, "w", libver=("v110", "v110"), track_order=False)
            timed += time.perf_counter() - t
            for dataset in src["sources"]:
                g = src["sources"][dataset]
                for name in merged_columns(1):
                    d = g[name]
                    t = time.perf_counter()
                    parent_path, _, leaf = f"sources/{dataset}/{name}".rpartition("/")
                    if kw is None:  # posebank's: as the merged file stores this dataset
                        own = {"chunks": d.chunks, **({"compression": d.compression, "compression_opts":
                               d.compression_opts, "shuffle": d.shuffle} if d.compression else {})}
                    else:
                        own = {"chunks": (ROWS_PER_CHUNK, *d.shape[1:]), **kw}
                    o = _require_group(dst, parent_path).create_dataset(
                        leaf, shape=(0, *d.shape[1:]), maxshape=(None, *d.shape[1:]), dtype=d.dtype,
                        track_times=False, **own)
                    timed += time.perf_counter() - t
                    for start in range(0, d.shape[0], LOAD_BLOCK):
                        block = d[start:start + LOAD_BLOCK]
                        t = time.perf_counter()
                        o.resize(start + len(block), axis=0)
                        o[start:] = block
                        timed += time.perf_counter() - t
                        raw += block.nbytes
                    t = time.perf_counter()
                    del o  # closing the dataset flushes its chunk cache: timed
                    timed += time.perf_counter() - t
            t = time.perf_counter()
            dst.close()
            with open(out, "rb+") as fh:
                os.fsync(fh.fileno())
            timed += time.perf_counter() - t
        variants[setting] = {"seconds": round(timed, 3), "file_mb": round(out.stat().st_size / MIB, 1),
                             "raw_mb": round(raw / MIB, 1), "raw_mb_per_s": round(raw / MIB / timed, 1)}
        out.unlink()
    return {**variants[POSEBANK_SETTING], "setting": "posebank's: each dataset with the merged file's filter and "
            "chunks (gzip 4 + shuffle, or none for cameras, boxes and dense joints)", "variants": variants}


CHILDREN = {"posebank": child_posebank, "baseline": child_baseline, "read_floor": child_read_floor,
            "write_floor": child_write_floor, "profile": child_profile}


def child_main(kind: str, args: dict) -> int:
    limit = args.get("limit_bytes")
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (int(limit), int(limit)))
    try:
        result = CHILDREN[kind](args)
    except MemoryError as e:
        emit({"failed": "MemoryError", "message": str(e)[:500], "peak_rss_mb": peak_rss_self_mb(),
              "rss_mb": rss_now_mb()})
        return 3
    emit({"result": result})
    return 0


def run_child(kind: str, args: dict, log_dir: Path, tag: str, timeout: float, limit_bytes: int | None = None
              ) -> dict:
    """Run a child in a fresh interpreter; its own peak RSS and CPU times from os.wait4, its JSON lines."""
    log_dir.mkdir(parents=True, exist_ok=True)
    stdout, stderr = log_dir / f"{tag}.{kind}.out", log_dir / f"{tag}.{kind}.err"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind,
           json.dumps({**args, "limit_bytes": limit_bytes})]
    t0 = time.perf_counter()
    timed_out = False
    with open(stdout, "wb") as fo, open(stderr, "wb") as fe:
        proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, cwd=REPO)
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - t0 > timeout:
                timed_out = True
                os.kill(proc.pid, signal.SIGKILL)
                pid, status, ru = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    lines = []
    for line in stdout.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass
    result = next((x["result"] for x in reversed(lines) if "result" in x), None)
    failed = next((x for x in reversed(lines) if "failed" in x), None)
    progress = [x for x in lines if "stage" in x]
    # the child's own peak (VmHWM, reported in its lines); wait4's ru_maxrss also counts this script's size at the
    # spawn (Linux carries it over the exec), the fallback for a child killed before it said anything
    own = [x.get("peak_rss_self_mb") or x.get("peak_rss_mb") for x in [*lines, *(x["result"] for x in lines
                                                                          if isinstance(x.get("result"), dict))]]
    own = [float(v) for v in own if isinstance(v, (int, float))]
    out = {"returncode": proc.returncode, "timed_out": timed_out, "process_wall_seconds": round(wall, 2),
           "peak_rss_mb": round(max(own) if own and result is not None else max([*own, ru.ru_maxrss / 1024]), 1),
           "wait4_maxrss_mb": round(ru.ru_maxrss / 1024, 1), "user_seconds": round(ru.ru_utime, 2),
           "system_seconds": round(ru.ru_stime, 2), "result": result}
    if progress:
        out["progress"] = progress
    if failed is not None:
        out["failed"] = failed
    if result is None:
        out["stderr_tail"] = stderr.read_text(errors="replace")[-2000:]
    return out


# ------------------------------------------------------------------------------------------ one size
def memory_available_bytes() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def ratio(a, b, digits: int = 2):
    return round(a / b, digits) if a is not None and b else None


def combined_rss(run: dict) -> float:
    """Peak RSS of a posebank merge: its process's own, plus what its forked reader process added to the pages it
    shares with it from the fork (its peak RSS less its RSS when it started: ``build_merge`` reports both; the wait4
    figure is the larger of the two processes' peaks, not their sum)."""
    r = run["result"]["result"]
    reader = (r.get("reader_peak_rss_mb") or 0.0) - (r.get("reader_start_rss_mb") or 0.0)
    return round(run["result"]["peak_rss_self_mb"] + reader, 1)


def bench_size(size: int, args, spec, sets: dict, union, profile: bool) -> dict:
    from posebank.merging.reader import Merge
    from posebank.merging.store import annotation_bytes

    root = args.work / f"n{size}"
    plan = make_plan(size, args.seed, spec, sets)
    print(f"== {size} examples: sources in {root / 'caches'}", flush=True)
    generated = ensure_caches(root, plan, spec, sets)
    how = "reused" if generated["reused"] else f"generated in {generated['generate_seconds']:.1f} s"
    print(f"  sources {how} ({generated['shards']} shards)", flush=True)
    cache_dir, out_dir, logs = root / "caches", root / "out", root / "logs"
    out_dir.mkdir(parents=True, exist_ok=True)
    src_ann = {s.dataset: annotation_bytes(cache_dir / s.dataset) for s in spec.sources}
    src_disk = sum(p.stat().st_size for p in cache_dir.rglob("*") if p.is_file())
    src_ann_total = sum(src_ann.values())
    guard = min(int(args.baseline_limit_gib * GIB), memory_available_bytes() - 2 * GIB)
    tag = f"n{size}"

    read_floor = run_child("read_floor", {"cache_dir": str(cache_dir)}, logs, tag, args.child_timeout, guard)
    if read_floor["result"] is None:
        raise RuntimeError(f"read floor failed: {read_floor.get('stderr_tail')}")
    read_floor["result"]["peak_rss_mb"] = read_floor["peak_rss_mb"]
    print(f"  read floor {read_floor['result']['seconds']:.2f} s ({read_floor['result']['raw_mb']:.0f} MB raw)",
          flush=True)

    merged = out_dir / f"{MERGE}.h5"
    runs = []
    for r in range(args.repeats):
        run = run_child("posebank", {"cache_dir": str(cache_dir), "out": str(merged)}, logs, f"{tag}.{r}",
                        args.child_timeout, guard)
        if run["result"] is None:
            raise RuntimeError(f"posebank merge failed: {run.get('failed')} {run.get('stderr_tail')}")
        runs.append(run)
        print(f"  posebank run {r + 1}: {run['result']['seconds']:.2f} s, peak RSS {combined_rss(run):.0f} MB",
              flush=True)
    best = min(runs, key=lambda x: x["result"]["seconds"])
    res = best["result"]["result"]
    with Merge(merged) as m:
        read_back = {"examples": len(m), "examples_per_split": m.split_counts()}
    if read_back["examples"] != res["examples"]:
        raise AssertionError(f"{merged}: Merge reads {read_back['examples']} examples, build_merge said "
                             f"{res['examples']}")
    merged_ann = annotation_bytes(merged)
    seconds = best["result"]["seconds"]
    posebank = {
        "seconds": seconds, "seconds_runs": [x["result"]["seconds"] for x in runs],
        "process_wall_seconds_runs": [x["process_wall_seconds"] for x in runs],
        "user_seconds_best": best["user_seconds"], "system_seconds_best": best["system_seconds"],
        "examples_per_s": round(res["examples"] / seconds), "source_rows_per_s": round(size / seconds),
        "peak_rss_mb": max(combined_rss(x) for x in runs), "peak_rss_mb_runs": [combined_rss(x) for x in runs],
        "peak_rss_rule": "the merge process's own peak RSS + its forked reader process's peak RSS less the reader's "
                         "RSS when it started (the pages the two share from the fork, counted once)",
        "merge_process_peak_rss_mb_runs": [x["result"]["peak_rss_self_mb"] for x in runs],
        "reader_process_peak_rss_mb_runs": [x["result"]["result"].get("reader_peak_rss_mb") for x in runs],
        "reader_process_start_rss_mb_runs": [x["result"]["result"].get("reader_start_rss_mb") for x in runs],
        "reader": res.get("reader"),
        "rss_after_imports_mb": best["result"]["rss_after_imports_mb"],
        "output_bytes": merged.stat().st_size, "annotation_bytes": merged_ann,
        "annotation_ratio_vs_sources": round(merged_ann / src_ann_total, 4),
        "kept": {"train": res["examples_train"], "val": res["examples_val"], "test": res["examples_test"]},
        "examples": res["examples"], "dropped": res["dropped"], "union_joints": res["joints"], "read_back": read_back,
    }

    write_floor = run_child("write_floor", {"merged": str(merged), "out": str(out_dir / "write-floor.h5")}, logs, tag,
                            args.child_timeout, guard)
    if write_floor["result"] is None:
        raise RuntimeError(f"write floor failed: {write_floor.get('stderr_tail')}")
    rf, wf = read_floor["result"], write_floor["result"]
    limits = {"read_floor": rf, "write_floor": wf,
              "read_plus_write_seconds": round(rf["seconds"] + wf["seconds"], 3),
              "examples_per_s_at_read_plus_write_floor": round(res["examples"] / (rf["seconds"] + wf["seconds"])),
              "examples_per_s_at_slower_floor": round(res["examples"] / max(rf["seconds"], wf["seconds"])),
              "posebank_vs_slower_floor": ratio(seconds, max(rf["seconds"], wf["seconds"])),
              "posebank_vs_read_floor": ratio(seconds, rf["seconds"]),
              "posebank_vs_read_plus_write_floor": ratio(seconds, rf["seconds"] + wf["seconds"])}
    print(f"  write floor {wf['seconds']:.2f} s; posebank {seconds:.2f} s = {limits['posebank_vs_slower_floor']}x the "
          f"slower floor, {limits['posebank_vs_read_plus_write_floor']}x read + write", flush=True)

    # the baseline
    pkl = out_dir / f"{MERGE}.pkl"
    est_pickle = size * (union.joint_info.n_joints * 12 + 1500)
    free = shutil.disk_usage(out_dir).free
    baseline: dict
    if args.skip_baseline_above is not None and size > args.skip_baseline_above:
        baseline = {"status": "skipped", "reason": f"--skip-baseline-above {args.skip_baseline_above}"}
    elif free < est_pickle + 2 * GIB:
        baseline = {"status": "skipped", "reason": f"{free / GIB:.1f} GiB free, the pickle needs about "
                                                   f"{est_pickle / GIB:.1f} GiB + 2 GiB"}
    else:
        guard = min(int(args.baseline_limit_gib * GIB), memory_available_bytes() - 2 * GIB)
        print(f"  baseline: RLIMIT_AS {guard / GIB:.1f} GiB ...", flush=True)
        b = run_child("baseline", {"cache_dir": str(cache_dir), "out": str(pkl)}, logs, tag,
                      args.baseline_timeout, guard)
        baseline = {"rlimit_as_gib": round(guard / GIB, 2), "peak_rss_mb": b["peak_rss_mb"],
                    "process_wall_seconds": b["process_wall_seconds"], "user_seconds": b["user_seconds"],
                    "system_seconds": b["system_seconds"]}
        if b["result"] is not None:
            r = b["result"]
            n_kept = r["kept"]["train"] + r["kept"]["val"]
            baseline.update({
                "status": "ok", "seconds": r["seconds"], "examples_per_s": round(n_kept / r["seconds"]),
                "output_bytes": r["output_bytes"], "annotation_bytes": r["output_bytes"],
                "annotation_ratio_vs_sources": round(r["output_bytes"] / src_ann_total, 4),
                "kept": r["kept"], "examples": n_kept, "dropped": sum(r["dropped"].values()),
                "dropped_by_reason": r["dropped"], "union_joints": r["union_joints"],
                "examples_loaded": r["examples_loaded"],
                "stages": {k: {kk: vv for kk, vv in v.items() if kk != "start"} for k, v in r["stages"].items()}})
        else:
            last = b.get("progress", [{}])[-1]
            baseline.update({
                "status": "failed", "timed_out": b["timed_out"], "returncode": b["returncode"],
                "error": (b.get("failed") or {}).get("failed") or ("timeout" if b["timed_out"] else "crashed"),
                "message": (b.get("failed") or {}).get("message"), "stage_reached": last.get("stage"),
                "seconds_reached": (b.get("failed") or {}).get("elapsed") or b["process_wall_seconds"],
                "progress": b.get("progress", []), "memory_reached_mb": b["peak_rss_mb"],
                "stderr_tail": b.get("stderr_tail") if not b.get("failed") else None})
        if not args.keep_outputs:
            pkl.unlink(missing_ok=True)
        print(f"  baseline: {baseline['status']}"
              + (f", {baseline['seconds']:.1f} s" if baseline["status"] == "ok" else
                 f" at stage {baseline.get('stage_reached')} ({baseline.get('error')})")
              + f", peak RSS {baseline['peak_rss_mb']:.0f} MB", flush=True)

    ok = baseline.get("status") == "ok"
    ratios = {
        "speed_posebank_vs_baseline": ratio(baseline.get("seconds"), seconds) if ok else None,
        "rss_baseline_vs_posebank": ratio(baseline.get("peak_rss_mb"), posebank["peak_rss_mb"], 1),
        "rss_is_lower_bound": not ok and baseline.get("status") == "failed",
        "output_bytes_baseline_vs_posebank": ratio(baseline.get("output_bytes"), posebank["output_bytes"], 1),
        "annotation_bytes_baseline_vs_posebank": ratio(baseline.get("annotation_bytes"), merged_ann, 1),
        "examples_per_s_posebank_vs_baseline": ratio(posebank["examples_per_s"], baseline.get("examples_per_s")),
    }
    filtered = next((x for x in baseline.get("progress", []) if x.get("stage") == "pickle"), None)
    if not ok and filtered is not None:  # the filter finished before the baseline failed (while pickling)
        baseline["kept_before_failure"] = {"train": filtered["kept_train"], "val": filtered.get("kept_val")}
    kept_b = baseline["kept"] if ok else baseline.get("kept_before_failure")
    same_kept = (posebank["kept"]["train"] == kept_b["train"] and posebank["kept"]["val"] == kept_b["val"]
                 ) if kept_b else None
    result = {
        "examples": size,
        "sources": {"rows": {k: v["rows"] for k, v in plan["sources"].items()}, "shards": generated["shards"],
                    "bytes_on_disk": src_disk, "annotation_bytes": src_ann_total,
                    "annotation_bytes_per_source": src_ann, "generation": generated},
        "limits": limits,
        "posebank": posebank,
        "baseline": baseline,
        "ratios": ratios,
        "kept_agree": same_kept,
        "kept_agree_from": ("the baseline's output" if ok else "the baseline's filter stage (it failed afterwards, "
                            "while pickling)") if kept_b else None,
    }
    if profile:
        print("  profiling one posebank merge (cProfile) ...", flush=True)
        prof = run_child("profile", {"cache_dir": str(cache_dir), "out": str(out_dir / "profile.h5")}, logs, tag,
                         args.child_timeout, guard)
        (out_dir / "profile.h5").unlink(missing_ok=True)
        result["profile"] = prof["result"] if prof["result"] is not None else {"failed": prof.get("stderr_tail")}
    return result


# ------------------------------------------------------------------------------------------ reporting
def machine_info(work: Path) -> dict:
    import h5py

    import posebank

    meminfo = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, value = line.split(":", 1)
            if key in ("MemTotal", "MemAvailable", "Cached"):
                meminfo[key.lower()] = round(int(value.split()[0]) / (1 << 20), 1)
    cpu_model = None
    with open("/proc/cpuinfo") as f:
        cpu_model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    fs = None
    with open("/proc/mounts") as f:  # the mount holding the work folder (longest matching mount point)
        best = ""
        for line in f:
            dev, mount, kind = line.split()[:3]
            if (str(work) + "/").startswith(mount.rstrip("/") + "/") and len(mount) >= len(best):
                best, fs = mount, {"device": dev, "mount": mount, "type": kind}
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "cpu_model": cpu_model,
            "platform": platform.platform(), "memory_gib": meminfo, "filesystem": fs, "h5py": h5py.__version__,
            "hdf5": h5py.version.hdf5_version, "numpy": np.__version__, "posebank": posebank.__version__,
            "threads": "BLAS / OpenMP pools at 1 thread; one measured process at a time"}


def targets(sizes: dict) -> dict:
    pb = {k: v["posebank"] for k, v in sizes.items()}
    rss = {k: v["peak_rss_mb"] for k, v in pb.items()}
    spread = (max(rss.values()) - min(rss.values())) / min(rss.values()) if rss else None
    agree = {k: v["kept_agree"] for k, v in sizes.items()}
    t = {
        "posebank_peak_rss_below_1gb": {
            "per_size": {k: v < TARGETS["posebank_peak_rss_mb_max"] for k, v in rss.items()},
            "limit_mb": TARGETS["posebank_peak_rss_mb_max"]},
        "posebank_rss_within_10pct": {"spread": round(spread, 4) if spread is not None else None,
                                      "met": spread is not None and len(rss) > 1
                                      and spread <= TARGETS["posebank_rss_spread_max"],
                                      "rule": "(max - min) / min of the sizes' peak RSS <= 0.10"},
        "annotation_bytes_within_1_3x_sources": {
            "per_size": {k: v["annotation_ratio_vs_sources"] <= TARGETS["annotation_bytes_ratio_max"]
                         for k, v in pb.items()}, "limit": TARGETS["annotation_bytes_ratio_max"]},
        "posebank_100k_examples_per_s": {
            "per_size": {k: v["examples_per_s"] >= TARGETS["posebank_examples_per_s_min"] for k, v in pb.items()},
            "limit": TARGETS["posebank_examples_per_s_min"],
            "rule": "merged examples / build_merge's wall seconds (best of the repeats)"},
        "kept_counts_agree_with_baseline": {"per_size": agree,
                                            "note": "null: the baseline did not get through its filter at that size"},
    }
    for key in ("posebank_peak_rss_below_1gb", "annotation_bytes_within_1_3x_sources", "posebank_100k_examples_per_s"):
        t[key]["met"] = all(t[key]["per_size"].values())
    t["kept_counts_agree_with_baseline"]["met"] = all(v for v in agree.values() if v is not None) and any(
        v is not None for v in agree.values())
    t["all_met"] = all(v["met"] for v in t.values() if isinstance(v, dict))
    return t


def times(x) -> str:
    return "-" if x is None else f"{x}x"


def print_table(results: dict) -> None:
    head = (f"{'size':>9} {'method':<9}{'seconds':>9}{'ex/s':>10}{'RSS MB':>9}{'out MB':>9}{'ann/src':>8}"
            f"{'kept':>10}{'dropped':>8}")
    print()
    print(head)
    print("-" * len(head))
    for size, r in results["sizes"].items():
        for method in ("posebank", "baseline"):
            m = r[method]
            if method == "baseline" and m.get("status") != "ok":
                reached = m.get("memory_reached_mb")
                print(f"{size:>9} {method:<9}{m.get('status', '?'):>9}  "
                      + (f"stage {m.get('stage_reached')}, {m.get('error')}, {reached:.0f} MB reached"
                         if reached is not None else m.get("reason", "")))
                continue
            print(f"{size:>9} {method:<9}{m['seconds']:>9.2f}{m['examples_per_s']:>10}{m['peak_rss_mb']:>9.0f}"
                  f"{m['output_bytes'] / MIB:>9.1f}{m['annotation_ratio_vs_sources']:>8.2f}{m['examples']:>10}"
                  f"{m['dropped']:>8}")
        lim, rat = r["limits"], r["ratios"]
        print(f"{'':>9} floors: read {lim['read_floor']['seconds']:.2f} s, write {lim['write_floor']['seconds']:.2f} s;"
              f" posebank = {lim['posebank_vs_read_floor']}x read, {lim['posebank_vs_read_plus_write_floor']}x read +"
              f" write; posebank vs baseline: speed {times(rat['speed_posebank_vs_baseline'])}, RSS "
              f"{times(rat['rss_baseline_vs_posebank'])}{' (at least)' if rat['rss_is_lower_bound'] else ''}, bytes "
              f"{times(rat['output_bytes_baseline_vs_posebank'])}; kept agree {r['kept_agree']}")
    t = results["targets"]
    print("targets: " + ", ".join(f"{k} {'ok' if v['met'] else 'NO'}" for k, v in t.items() if isinstance(v, dict)))
    if not results["code"]["clean"]:
        print(f"note: the measured code differs from commit {results['code']['git_commit']}: "
              f"{', '.join(results['code']['changed_files'])}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=None,
                    help=f"total examples of the sources (default {' '.join(map(str, DEFAULT_SIZES))}; --quick "
                         f"{' '.join(map(str, QUICK_SIZES))})")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK, help=f"work folder (default {DEFAULT_WORK}; kept: "
                                                                    "the sources are reused)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    ap.add_argument("--quick", action="store_true", help="20k and 200k examples, one repeat (needs --out)")
    ap.add_argument("--repeats", type=int, default=None, help="posebank runs per size (default 2; --quick 1)")
    ap.add_argument("--skip-baseline-above", type=int, default=None, metavar="N",
                    help="no baseline for sizes above N examples")
    ap.add_argument("--baseline-limit-gib", type=float, default=18.0,
                    help="RLIMIT_AS of the measured children (default 18 GiB; never more than the available memory "
                         "less 2 GiB)")
    ap.add_argument("--child-timeout", type=float, default=900.0, help="seconds before a posebank / floor child is "
                                                                      "killed")
    ap.add_argument("--baseline-timeout", type=float, default=1200.0, help="seconds before the baseline is killed")
    ap.add_argument("--no-profile", action="store_true", help="skip the cProfile run at the largest size")
    ap.add_argument("--keep-outputs", action="store_true", help="keep the baseline's pickle (large)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--allow-dirty", action="store_true",
                    help=f"write {DEFAULT_OUT.relative_to(REPO)} even when the measured code is not committed")
    ap.add_argument("--child", nargs=2, metavar=("KIND", "ARGS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        return child_main(args.child[0], json.loads(args.child[1]))

    out = args.out.resolve()
    if args.quick and out == DEFAULT_OUT:
        print(f"error: --quick: give --out (a quick run does not replace {DEFAULT_OUT.relative_to(REPO)})",
              file=sys.stderr)
        return 2
    sizes = sorted(args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES))
    repeats = args.repeats or (1 if args.quick else 2)
    args.repeats = repeats
    args.work = args.work.resolve()
    if min(sizes) < MIN_ROWS * len(SIZE_WEIGHTS) * 2:
        print(f"error: sizes must be at least {MIN_ROWS * len(SIZE_WEIGHTS) * 2}", file=sys.stderr)
        return 2

    import posebank.merging.build  # noqa: F401  (loaded before the code state is taken)
    import posebank.merging.reader  # noqa: F401
    from posebank.merging.skeleton import source_joints, union_skeleton

    spec = huge8_spec()
    sets = joint_sets()
    code = code_state(__file__, [PARAMS_FILE, REPO / "bench" / "provenance.py"])
    if out == DEFAULT_OUT and not code["clean"] and not args.allow_dirty:
        print(f"error: {DEFAULT_OUT.relative_to(REPO)}: not measured: the code it would measure differs from commit "
              f"{code['git_commit']} ({', '.join(code['changed_files'])}); commit it and rerun, or pass --allow-dirty "
              "(recorded as code.clean: false) or --out elsewhere", file=sys.stderr)
        return 2
    by_name = {s.dataset: sets[s.dataset] for s in spec.sources}
    union = union_skeleton([source_joints(by_name[s.dataset], s.suffix, by_name[s.joints_as] if s.joints_as else None,
                                          s.joints) for s in spec.sources])

    started_utc = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    started = time.perf_counter()
    load_before = os.getloadavg()
    args.work.mkdir(parents=True, exist_ok=True)
    machine = machine_info(args.work)
    layout = check_layout(args.work / "layout-check", sets, args.seed)
    print(f"union: {union.joint_info.n_joints} joints, {len(union.joint_info.edges)} edges; shard writer = "
          f"CacheWriter's layout: {layout['same_layout']}", flush=True)
    results_sizes = {}
    for size in sizes:
        results_sizes[str(size)] = bench_size(size, args, spec, sets, union,
                                              profile=not args.no_profile and size == sizes[-1])
    load_after = os.getloadavg()
    results = {
        "benchmark": "merge",
        "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "started_utc": started_utc,
        "seconds": round(time.perf_counter() - started, 1),
        "command": " ".join([Path(sys.executable).name, *sys.argv]) if argv is None else " ".join(
            ["python", "bench/merge.py", *argv]),
        "code": code,
        "machine": {**machine, "load_average": {"before": list(load_before), "after": list(load_after)}},
        "params": {
            "quick": args.quick, "sizes": sizes, "repeats": repeats, "seed": args.seed, "merge": MERGE,
            "work": str(args.work), "rows_per_shard": ROWS_PER_SHARD,
            "baseline_limit_gib": args.baseline_limit_gib, "skip_baseline_above": args.skip_baseline_above,
            "images": "empty (b'') in every source: the benchmark measures annotation merging (posebank's merge "
                      "refers to images by row and never reads them; the baseline keeps the source paths)",
            "size_weights_thousands": SIZE_WEIGHTS,
            "size_weights_note": "plausible relative sizes of huge8's sources (proportions only, not posepile's "
                                 f"exact counts); each source at least {MIN_ROWS} rows",
            "sources": {s.dataset: {"suffix": s.suffix, "splits": dict(s.splits), "joints_as": s.joints_as,
                                    "joints": s.joints, "cache_joints": sets[s.dataset].n_joints,
                                    "joint_set": "registered",
                                    "split_fractions_train_val_test": split_fractions(s)} for s in spec.sources},
            "poses": "standing ~1.7 m template (mm), scaled 0.92-1.08, turned about the vertical, 10 mm noise per "
                     f"joint; {MISSING_FRACTION:.0%} of rows miss a joint; {IMPLAUSIBLE_FRACTION:.0%} implausible "
                     "(half a joint moved 2 m, half the box off the person)",
            "cameras": "upright crop cameras 3.5-8 m away looking at the person, person 250-340 px tall in a "
                       "300-420 px crop, no distortion; box = projected joints + 5 % + 3 px",
            "layout_check": layout,
            "timing": "wall clock inside each child around the measured call (posebank: build_merge; baseline: load "
                      "to fsynced pickle); each method in a fresh subprocess, one at a time; page cache warm (the "
                      "read floor reads every source first); peak RSS = the child's own VmHWM (its ru_maxrss from "
                      "os.wait4 also counts this script's size at the spawn), MB = MiB",
            "methods": {
                "posebank": "posebank.merging.build.build_merge('huge8', spec, cache_dir, out, allow_missing=False): "
                            "streaming, sparse per-source blocks, images referenced",
                "baseline": "posepile-style: every source loaded as per-example objects (Pose3DExample's "
                            "attributes, camera object), joints expanded to the dense union (J x 3 float32, NaN), "
                            "concatenated per split, compute_mean_bones + filter_dataset_by_plausibility (chunks of "
                            "256, SURREAL exempt), update_bones, pickle (HIGHEST_PROTOCOL) + fsync; under RLIMIT_AS",
                "read_floor": "every shard's split + merged columns read once with h5py (I/O + decompression)",
                "write_floor": "posebank's merged columns written once, each dataset with the merged file's own "
                               "chunks and filter, fsynced (compression + I/O)",
            },
        },
        "union": {"joints": union.joint_info.n_joints, "edges": len(union.joint_info.edges),
                  "sources": len(spec.sources), "skeletons": sorted(union.skeletons())},
        "sizes": results_sizes,
    }
    results["targets"] = targets(results_sizes)
    print_table(results)
    write_json(out, results)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
