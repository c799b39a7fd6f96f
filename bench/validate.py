"""Benchmark of cache validation (posebank.validation): wall time and peak memory on a synthetic 1M-example cache.

Usage::

    .venv/bin/python bench/validate.py [--examples 1000000] [--chunk-rows 200000] [--keep DIR]
                                       [--out bench/results/validate.json]

A synthetic Human3.6M-shaped cache (17 joints, 256x256 crops, a tiny placeholder JPEG per example, a person mask
on every other example) is written once with :class:`posebank.core.store.CacheWriter` into a temporary folder (or
``--keep DIR``, reused when present). Validation then runs in a separate process, so its peak resident memory
(``ru_maxrss``) is measured apart from the writer's. Results go to a JSON file written atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from posebank.core.atomic import write_json

os.environ["GX_ANALYTICS_ENABLED"] = "false"

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "bench" / "results" / "validate.json"


def write_cache(path: Path, n: int, seed: int = 0) -> float:
    """Write ``n`` synthetic examples; returns the seconds taken."""
    import cv2

    from posebank.core.camera import Camera, look_at
    from posebank.core.masks import encode
    from posebank.core.store import CacheWriter, Example
    from posebank.datasets import h36m

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    size = 256
    jpeg = cv2.imencode(".jpg", np.full((size, size, 3), 128, np.uint8))[1].tobytes()
    # a pool of cameras around the origin and of poses near it, shared by many examples
    cameras = []
    for k in range(16):
        a = 2 * np.pi * k / 16
        eye = np.array([4000 * np.cos(a), 4000 * np.sin(a), 1200.0])
        cameras.append(Camera(np.array([[500.0, 0, 127.5], [0, 500.0, 127.5], [0, 0, 1]]),
                              look_at(eye, np.array([0, 0, 900.0])), eye))
    template = np.zeros((17, 3))
    template[:, 2] = np.linspace(100, 1700, 17)
    poses = [(template + rng.normal(0, 60, (17, 3))).astype(np.float32) for _ in range(512)]
    m = np.zeros((size, size), bool)
    m[40:220, 90:170] = True
    mask = encode(m)
    bbox = np.array([60.0, 20.0, 136.0, 216.0], np.float32)
    splits = ("train", "train", "train", "val", "test")
    with CacheWriter(path, "h36m", h36m.JOINT_INFO, buffer_rows=65536) as w:
        for i in range(n):
            w.add(Example(world_coords=poses[i % 512], camera=cameras[i % 16], bbox=bbox, split=splits[i % 5],
                          image=jpeg, image_size=(size, size), subject=f"S{i % 7}", sequence=f"seq{i % 30}",
                          activity="synthetic", camera_name=str(i % 16), frame_index=i,
                          mask=mask if i % 2 else b""))
    return time.perf_counter() - t0


def run_child(cache: Path, n: int, chunk_rows: int, gx_root: Path, work: Path) -> dict:
    """In this process: validate and print a JSON line with the time and own peak RSS."""
    from posebank.validation.validate import validate

    t0 = time.perf_counter()
    summary = validate(cache, "h36m", {"chunk_rows": chunk_rows, "image_sample_size": 500,
                                       "expected_counts": {"h36m": n}},
                       work / "report.json", data_docs_dir=work / "data_docs", gx_root=gx_root)
    seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(peak_kib / 1024, 1), "success": summary["success"],
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
            "peak_rss_children_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
            "rows_per_second": round(args.examples / child["seconds"]),
            "validation_success": child["success"],
            "expectations": child["expectations"],
            "chunks": child["chunks"],
            "images_sampled": child["images_sampled"],
            "target_peak_rss_mb": 2048,
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
