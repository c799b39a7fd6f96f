"""Benchmark of cache validation (posebank.validation): wall time and peak memory on a synthetic 1M-example cache.

Usage::

    .venv/bin/python bench/validate.py [--examples 1000000] [--chunk-rows 200000] [--keep DIR]
                                       [--out bench/results/validate.json]

The synthetic cache looks like a real Human3.6M cache row by row, not one row repeated: every example has its own
pose (a standing skeleton of the 17 H36M joints, scaled, turned about the vertical and perturbed joint by joint, at
its own place in the room; 2% of the rows miss a joint or two), its own crop camera (upright, at 2.5-8 m looking at
the person from its own direction and height; focal length such that the person is 290-400 px tall, as posepile's
crops), its own crop size (450-700 px, a quarter of them clipped on one side as at an image border), the box of its
projected joints, and its own person mask (a rotated ellipse in the box, COCO RLE; 5% of the rows without a mask).
Categories (subject, sequence, activity, camera), splits (by subject) and source paths vary as in the real cache.
The rows are generated with vectorised numpy (the masks' RLE strings too; a sample is checked against pycocotools'
own encoding) and written once with :class:`posebank.core.store.CacheWriter` into a temporary folder (or
``--keep DIR``, reused when present); the images are small placeholder JPEGs of the row's crop size (a pool of
sizes), since validation decodes only a sample of them. Validation then runs in a separate process, so its peak
resident memory (its own high-water mark, VmHWM: its ``ru_maxrss`` would hold the writer's size, carried over the
spawn) is measured apart from the writer's. Results go to a JSON file written atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from posebank.core import memory
from posebank.core.atomic import write_json

os.environ["GX_ANALYTICS_ENABLED"] = "false"

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))  # bench/provenance.py, also when this file is imported by path
from provenance import code_state  # noqa: E402

DEFAULT_OUT = REPO / "bench" / "results" / "validate.json"
BLOCK_ROWS = 1 << 16  # rows generated at a time

# a standing person in its own frame (x right, y forward, z up), mm relative to the pelvis, in H36M's joint order
# rhip rkne rank lhip lkne lank tors neck head htop lsho lelb lwri rsho relb rwri pelv
TEMPLATE = np.array([
    [-130, 0, -20], [-140, 20, -470], [-150, -20, -900], [130, 0, -20], [140, 20, -470], [150, -20, -900],
    [0, 10, 230], [0, 0, 500], [0, 40, 590], [0, 20, 720], [170, 0, 470], [250, 20, 200], [280, 80, -40],
    [-170, 0, 470], [-250, 20, 200], [-280, 80, -40], [0, 0, 0]], np.float64)
PERSON_HEIGHT_MM = 1800.0
SUBJECTS = {"S1": "train", "S5": "train", "S6": "train", "S7": "train", "S8": "train", "S9": "val", "S11": "test"}
ACTIVITIES = ("Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing", "Purchases",
              "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking", "WalkTogether")
CAMERA_NAMES = ("54138969", "55011271", "58860488", "60457274")


# ---------------------------------------------------------------------------------------------------- masks
def ellipse_columns(width, height, cx, cy, a, b, theta, rng=None):
    """The pixel columns of rotated ellipses, one per row of the arguments (all arrays of the rows' length):
    (row index, column x, first pixel row, last pixel row) of every column the ellipse covers, clipped to the
    image. Pixel (x, y) is inside when its centre is: (x' c + y' s)^2 / a^2 + (-x' s + y' c)^2 / b^2 <= 1. With
    ``rng``, each column's ends move by -1, 0 or 1 pixel (the ragged outline of a segmentation)."""
    c, s = np.cos(theta), np.sin(theta)
    qa = c * c / (a * a) + s * s / (b * b)
    qb = 2 * c * s * (1 / (a * a) - 1 / (b * b))
    qc = s * s / (a * a) + c * c / (b * b)
    half_w = np.sqrt(a * a * c * c + b * b * s * s)  # the ellipse's horizontal half extent
    x0 = np.clip(np.ceil(cx - half_w), 0, width - 1).astype(np.int64)
    x1 = np.clip(np.floor(cx + half_w), 0, width - 1).astype(np.int64)
    n_cols = np.maximum(x1 - x0 + 1, 0)
    row = np.repeat(np.arange(len(width)), n_cols)
    starts = np.cumsum(n_cols) - n_cols
    x = x0[row] + (np.arange(int(n_cols.sum())) - starts[row])
    xp = x - cx[row]
    qb_x = qb[row] * xp
    disc = qb_x * qb_x - 4 * qc[row] * (qa[row] * xp * xp - 1)
    root = np.sqrt(np.maximum(disc, 0))
    two_c = 2 * qc[row]
    y_lo = cy[row] + (-qb_x - root) / two_c
    y_hi = cy[row] + (-qb_x + root) / two_c
    first = np.ceil(y_lo).astype(np.int64)
    last = np.floor(y_hi).astype(np.int64)
    if rng is not None:
        first += rng.integers(-1, 2, len(first))
        last += rng.integers(-1, 2, len(last))
    np.maximum(first, 0, out=first)
    np.minimum(last, height[row] - 1, out=last)
    keep = (disc >= 0) & (first <= last)
    return row[keep], x[keep], first[keep], last[keep]


def rle_counts(n_rows: int, width, height, row, x, first, last):
    """COCO RLE counts (column-major runs, starting with background) of masks given by their covered columns:
    (counts of all rows concatenated, number of counts per row). Runs that touch across a column boundary merge."""
    h = height[row]
    s, e = x * h + first, x * h + last + 1  # each column's foreground run in the flattened column-major index
    join = (row[1:] == row[:-1]) & (s[1:] == e[:-1])  # a run that continues the previous one
    is_start, is_end = np.concatenate([[True], ~join]), np.concatenate([~join, [True]])
    rs, s, e = row[is_start], s[is_start], e[is_end]
    n_runs = np.bincount(rs, minlength=n_rows)
    first_run = np.concatenate([[True], rs[1:] != rs[:-1]])
    last_run = np.concatenate([rs[1:] != rs[:-1], [True]])
    prev_e = np.concatenate([[0], e[:-1]])
    prev_e[first_run] = 0
    total = (width * height).astype(np.int64)
    tail = total[rs[last_run]] - e[last_run]  # background after the row's last run (left out when 0)
    n_tail = np.zeros(n_rows, np.int64)
    n_tail[rs[last_run]] = tail > 0
    empty = n_runs == 0  # no foreground: one background run
    n_tail[empty] = 1
    n_counts = 2 * n_runs + n_tail
    row_start = np.cumsum(n_counts) - n_counts
    out = np.empty(int(n_counts.sum()), np.int64)
    pos = row_start[rs] + 2 * (np.arange(len(rs)) - (np.cumsum(n_runs) - n_runs)[rs])
    out[pos] = s - prev_e
    out[pos + 1] = e - s
    tail_rows = rs[last_run][tail > 0]
    out[row_start[tail_rows] + 2 * n_runs[tail_rows]] = tail[tail > 0]
    out[row_start[empty]] = total[empty]
    return out, n_counts


def coco_strings(counts, n_counts) -> list[bytes]:
    """COCO's compressed RLE strings (``rleToString`` of pycocotools' maskApi.c) of many rows at once: each count,
    minus the count two before it (from the third on), in little-endian 5-bit groups with a continuation bit, + 48."""
    row_start = np.cumsum(n_counts) - n_counts
    index = np.arange(len(counts)) - np.repeat(row_start, n_counts)
    x = counts.copy()
    later = np.nonzero(index > 2)[0]
    x[later] -= counts[later - 2]
    chars = np.zeros((len(x), 7), np.uint8)  # 7 groups of 5 bits hold any 32-bit count
    n_chars = np.zeros(len(x), np.int64)
    active = np.arange(len(x))
    k = 0
    while active.size:
        c = x & 0x1F
        x >>= 5  # arithmetic shift, as on C's long
        more = np.where(c & 0x10, x != -1, x != 0)
        chars[active, k] = (c | (more.astype(np.int64) << 5)) + 48
        n_chars[active] = k + 1
        active, x = active[more], x[more]
        k += 1
    data = chars[:, :k][np.arange(k)[None, :] < n_chars[:, None]].tobytes()
    ends = np.cumsum(np.add.reduceat(n_chars, row_start))
    starts = np.concatenate([[0], ends[:-1]])
    return [data[a:b] for a, b in zip(starts.tolist(), ends.tolist())]


def ellipse_masks(width, height, cx, cy, a, b, theta, rng=None) -> list[bytes]:
    cols = ellipse_columns(width, height, cx, cy, a, b, theta, rng)
    return coco_strings(*rle_counts(len(width), width, height, *cols))


def check_masks(rng, n: int = 300) -> None:
    """The vectorised RLE strings against pycocotools' encoding of the same masks drawn pixel by pixel."""
    from posebank.core.masks import encode

    w = rng.integers(8, 200, n)
    h = rng.integers(8, 200, n)
    cx, cy = rng.uniform(-10, w + 10), rng.uniform(-10, h + 10)
    a, b = rng.uniform(1, 120, n), rng.uniform(1, 120, n)
    theta = rng.uniform(-np.pi, np.pi, n)
    row, x, first, last = cols = ellipse_columns(w, h, cx, cy, a, b, theta, rng)
    ours = coco_strings(*rle_counts(n, w, h, *cols))
    dense = [np.zeros((h[i], w[i]), bool) for i in range(n)]
    for r, xi, f, la in zip(row.tolist(), x.tolist(), first.tolist(), last.tolist()):
        dense[r][f:la + 1, xi] = True
    for i in range(n):
        if ours[i] != encode(dense[i]):
            raise AssertionError(f"vectorised RLE of ellipse {i} differs from pycocotools' encoding")


# ----------------------------------------------------------------------------------------------- the rows
def look_at_many(eye, target, up=(0.0, 0.0, 1.0)):
    """World-to-camera rotations (n, 3, 3) of upright cameras at ``eye`` looking at ``target`` (as camera.look_at)."""
    up = np.asarray(up, np.float64)
    z = target - eye
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    x = np.cross(z, up)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=1)


def size_pool(rng, n_sizes: int = 1024):
    """Crop sizes (w, h) of posepile's geometry: 450-700 px square, a quarter clipped on one side (image border)."""
    side = rng.uniform(450, 700, n_sizes)
    w, h = side.copy(), side.copy()
    clipped = rng.random(n_sizes) < 0.25
    which = rng.random(n_sizes) < 0.5
    cut = rng.uniform(0.55, 1.0, n_sizes)
    w[clipped & which] *= cut[clipped & which]
    h[clipped & ~which] *= cut[clipped & ~which]
    return np.round(w).astype(np.int64), np.round(h).astype(np.int64)


def generate_block(rng, n: int, sizes):
    """``n`` realistic rows as arrays (see the module docstring)."""
    pool_w, pool_h = sizes
    size_id = rng.integers(0, len(pool_w), n)
    w, h = pool_w[size_id], pool_h[size_id]
    # poses: scaled, turned about z, perturbed, placed in the room
    yaw = rng.uniform(-np.pi, np.pi, n)
    cz, sz = np.cos(yaw), np.sin(yaw)
    rot = np.zeros((n, 3, 3))
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1], rot[:, 2, 2] = cz, -sz, sz, cz, 1
    scale = rng.uniform(0.85, 1.15, n)
    local = TEMPLATE[None] * scale[:, None, None] + rng.normal(0, 45, (n, 17, 3))
    root = np.stack([rng.uniform(-2000, 2000, n), rng.uniform(-2000, 2000, n), rng.uniform(850, 1050, n)], 1)
    world = np.einsum("nij,nkj->nki", rot, local) + root[:, None]
    # crop cameras: upright, looking at the person from 2.5-8 m
    distance = rng.uniform(2500, 8000, n)
    azimuth = rng.uniform(-np.pi, np.pi, n)
    elevation = rng.uniform(-0.1, 0.35, n)
    direction = np.stack([np.cos(azimuth) * np.cos(elevation), np.sin(azimuth) * np.cos(elevation),
                          np.sin(elevation)], 1)
    eye = root + distance[:, None] * direction
    target = root + rng.uniform(-30, 30, (n, 3))  # crop cameras look at the person (the box centre)
    R = look_at_many(eye, target)
    person_px = rng.uniform(290, 400, n)
    f = person_px * distance / PERSON_HEIGHT_MM
    K = np.zeros((n, 3, 3))
    K[:, 0, 0], K[:, 1, 1] = f, f * rng.uniform(0.998, 1.002, n)
    K[:, 0, 2] = (w - 1) / 2 + rng.uniform(-0.005, 0.005, n) * w
    K[:, 1, 2] = (h - 1) / 2 + rng.uniform(-0.005, 0.005, n) * h
    K[:, 2, 2] = 1
    # the box of the projected joints, expanded a little, inside the crop
    cam = np.einsum("nij,nkj->nki", R, world - eye[:, None])
    u = K[:, 0, 0, None] * cam[..., 0] / cam[..., 2] + K[:, 0, 2, None]
    v = K[:, 1, 1, None] * cam[..., 1] / cam[..., 2] + K[:, 1, 2, None]
    lo_u, hi_u, lo_v, hi_v = u.min(1), u.max(1), v.min(1), v.max(1)
    pad_u, pad_v = 0.06 * (hi_u - lo_u) + 4, 0.04 * (hi_v - lo_v) + 4
    x0, x1 = np.clip(lo_u - pad_u, 0, w), np.clip(hi_u + pad_u, 0, w)
    y0, y1 = np.clip(lo_v - pad_v, 0, h), np.clip(hi_v + pad_v, 0, h)
    # the crop camera looks at the person: its principal point lies in the box (a handful of rows need the box
    # widened to hold it)
    x0, x1 = np.minimum(x0, K[:, 0, 2] - 2), np.maximum(x1, K[:, 0, 2] + 2)
    y0, y1 = np.minimum(y0, K[:, 1, 2] - 2), np.maximum(y1, K[:, 1, 2] + 2)
    bbox = np.stack([x0, y0, x1 - x0, y1 - y0], 1)
    # masks: a rotated ellipse in the box
    has_mask = rng.random(n) >= 0.05
    masks = ellipse_masks(w, h, (x0 + x1) / 2 + rng.normal(0, 3, n), (y0 + y1) / 2 + rng.normal(0, 3, n),
                          (x1 - x0) / 2 * rng.uniform(0.7, 0.95, n), (y1 - y0) / 2 * rng.uniform(0.85, 0.98, n),
                          rng.uniform(-0.2, 0.2, n), rng)
    masks = [m if k else b"" for m, k in zip(masks, has_mask)]
    # a few rows miss a joint or two (never the pelvis)
    missing = rng.random(n) < 0.02
    for k in (1, 2):
        rows = np.nonzero(missing & (rng.random(n) < (1.0 if k == 1 else 0.4)))[0]
        world[rows, rng.integers(0, 16, len(rows))] = np.nan
    return {"world": world.astype(np.float32), "K": K, "R": R, "t": eye, "bbox": bbox.astype(np.float32),
            "w": w, "h": h, "size_id": size_id, "mask": masks}


def write_cache(path: Path, n: int, seed: int = 0) -> float:
    """Write ``n`` synthetic examples; returns the seconds taken."""
    import cv2

    from posebank.core.camera import Camera
    from posebank.core.store import CacheWriter, Example
    from posebank.datasets import h36m

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    check_masks(rng)
    sizes = size_pool(rng)
    colours = rng.integers(40, 220, (len(sizes[0]), 3))
    jpegs = [cv2.imencode(".jpg", np.full((int(hh), int(ww), 3), c, np.uint8),
                          [cv2.IMWRITE_JPEG_QUALITY, 90, cv2.IMWRITE_JPEG_OPTIMIZE, 1])[1].tobytes()
             for ww, hh, c in zip(*sizes, colours.tolist())]
    subjects = list(SUBJECTS)
    attrs = {"expected_splits": ["train", "val", "test"]}
    with CacheWriter(path, "h36m", h36m.JOINT_INFO, attrs, buffer_rows=65536) as writer:
        for start in range(0, n, BLOCK_ROWS):
            m = min(BLOCK_ROWS, n - start)
            block = generate_block(rng, m, sizes)
            subject = rng.integers(0, len(subjects), m)
            activity = rng.integers(0, len(ACTIVITIES), m)
            take = rng.integers(1, 3, m)
            camera_id = rng.integers(0, len(CAMERA_NAMES), m)
            frame = rng.integers(0, 5000, m)
            for j in range(m):
                s, act, cam_name = subjects[subject[j]], ACTIVITIES[activity[j]], CAMERA_NAMES[camera_id[j]]
                sequence = f"{act} {take[j]}"
                writer.add(Example(
                    world_coords=block["world"][j], camera=Camera(block["K"][j], block["R"][j], block["t"][j]),
                    bbox=block["bbox"][j], split=SUBJECTS[s], image=jpegs[block["size_id"][j]],
                    image_size=(int(block["w"][j]), int(block["h"][j])), subject=s, sequence=sequence,
                    activity=act, camera_name=cam_name, frame_index=int(frame[j]),
                    source_path=f"{s}/Videos/{sequence}.{cam_name}.mp4#{frame[j]}", mask=block["mask"][j]))
    return time.perf_counter() - t0


def run_child(cache: Path, n: int, chunk_rows: int, gx_root: Path, work: Path) -> dict:
    """In this process: validate and print a JSON line with the time and own peak RSS."""
    from posebank.validation.validate import validate

    t0 = time.perf_counter()
    summary = validate(cache, "h36m", {"chunk_rows": chunk_rows, "image_sample_size": 500,
                                       "expected_counts": {"h36m": n}},
                       work / "report.json", data_docs_dir=work / "data_docs", gx_root=gx_root)
    seconds = time.perf_counter() - t0
    # VmHWM, the child's own peak: its ru_maxrss also holds the writer's size, carried over the spawn by Linux
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(memory.peak_rss_mb(), 1), "success": summary["success"],
            "expectations": summary["expectations"], "chunks": summary["chunks"],
            "images_sampled": summary["images_sampled"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=1_000_000)
    ap.add_argument("--chunk-rows", type=int, default=200_000)
    ap.add_argument("--keep", help="folder for the synthetic cache (kept and reused); default a temporary one")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--child", nargs=3, metavar=("CACHE", "GX_ROOT", "WORK"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        cache, gx_root, work = (Path(p) for p in args.child)
        print(json.dumps(run_child(cache, args.examples, args.chunk_rows, gx_root, work)))
        return 0

    tmp = None
    folder = Path(args.keep) if args.keep else Path(tmp := tempfile.mkdtemp(prefix="posebank-bench-"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        cache = folder / f"synthetic_{args.examples}.h5"
        write_seconds = None
        if not cache.is_file():
            write_seconds = round(write_cache(cache, args.examples), 1)
            print(f"wrote {cache} ({cache.stat().st_size / 2**20:.0f} MiB) in {write_seconds} s", flush=True)
        gx_root = folder / "expectations"
        shutil.rmtree(gx_root, ignore_errors=True)
        shutil.copytree(REPO / "expectations", gx_root, ignore=shutil.ignore_patterns("uncommitted"))
        work = folder / "work"
        work.mkdir(exist_ok=True)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--examples", str(args.examples), "--chunk-rows",
                               str(args.chunk_rows), "--child", str(cache), str(gx_root), str(work)],
                              capture_output=True, text=True, env={**os.environ, "GX_ANALYTICS_ENABLED": "false"})
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            return proc.returncode
        child = json.loads(proc.stdout.strip().splitlines()[-1])
        import h5py

        with h5py.File(cache, "r") as f:
            lengths = np.diff(f["mask/offsets"][:])
        mask_bytes = round(float(lengths[lengths > 0].mean()), 1) if (lengths > 0).any() else 0.0
        result = {
            "benchmark": "validate",
            "examples": args.examples,
            "joints": 17,
            "chunk_rows": args.chunk_rows,
            "cache_mib": round(cache.stat().st_size / 2**20, 1),
            "cache_write_seconds": write_seconds,
            "validate_seconds": child["seconds"],
            "process_wall_seconds": round(wall, 2),
            "peak_rss_mb": child["peak_rss_mb"],
            "rows_per_second": round(args.examples / child["seconds"]),
            "validation_success": child["success"],
            "expectations": child["expectations"],
            "chunks": child["chunks"],
            "images_sampled": child["images_sampled"],
            "target_peak_rss_mb": 2048,
            "rows": "realistic: distinct poses, crop cameras, crop sizes (1024-size pool), boxes and ellipse masks "
                    "(95% of rows; RLE of rotated ellipses with ragged outlines), 2% of rows missing joints",
            "mask_bytes_mean": mask_bytes,
            "code": code_state(__file__, sorted(p for p in (REPO / "expectations").rglob("*")
                                                if "uncommitted" not in p.parts)),
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        }
        write_json(args.out, result)
        print(json.dumps(result, indent=2))
        return 0
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
