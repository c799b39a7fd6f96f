"""Benchmark of the person-crop step: crops per second per core, from JPEG bytes to JPEG bytes.

Usage::

    .venv/bin/python bench/crop.py [--quick] [--out bench/results/crop.json]

Synthetic textured frames are JPEG-encoded at Human3.6M size (1000x1002) and MPI-INF-3DHP size (2048x2048);
random cameras (with lens distortion) and person boxes of realistic heights (H36M 350-500 px, 3DHP 700-1000 px)
make the crop tasks. Everything runs on one thread (``cv2.setNumThreads(1)``, BLAS/OpenMP pools set to one
thread), so crops/s is per core. In one run, interleaved over the same tasks, it measures:

* ``posebank``: :func:`crop_person_from_jpeg` (decode at 1/f, reproject only the region under the crop with
  area pre-reduction) + JPEG encode of the crop;
* ``naive``: full-resolution decode, reprojection of the full frame at source resolution (the crop camera
  zoomed by ceil(1 / scale), linear interpolation), ``cv2.resize`` INTER_AREA down to the crop size, encode;
* ``full_decode``: full-resolution decode + :func:`crop_person` + encode, i.e. posebank without the reduced
  decode (isolates what the reduced decode brings).

The posebank path's decode share is the time of ``decode_jpeg_reduced`` alone (same frames, same factors,
measured in the same loop) over the time of the whole path. Fidelity: mean absolute difference (grey levels)
of the posebank and naive crops from ``crop_person`` on the full decode. Results go to a JSON file written
atomically (temporary file, then rename) and to a table on stdout. No timing is asserted anywhere.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from posebank.core.atomic import write_json  # noqa: E402
from posebank.core.camera import Camera, look_at  # noqa: E402
from posebank.core.jpeg import decode_jpeg, decode_jpeg_reduced, encode_jpeg  # noqa: E402
from posebank.imaging.crop import (  # noqa: E402
    CropParams,
    choose_decode_factor,
    crop_camera,
    crop_person,
    crop_person_from_jpeg,
    crop_scale,
    reproject_image,
)

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "crop.json"

# name: frame (width, height), person box height range (px), focal length (px), distortion model
SIZES = {
    "h36m": {"frame_wh": (1000, 1002), "box_height_px": (350.0, 500.0), "focal_px": 1146.0,
             "distortion_model": "h36m"},
    "3dhp": {"frame_wh": (2048, 2048), "box_height_px": (700.0, 1000.0), "focal_px": 1500.0,
             "distortion_model": "opencv"},
}


# ------------------------------------------------------------------------------------------------ inputs
def textured_frame(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A BGR frame with photo-like statistics: smooth shading, multi-scale texture, hard-edged shapes, noise."""
    img = np.zeros((height, width, 3), np.float32)
    for cells, amplitude in [(3, 60.0), (12, 30.0), (48, 18.0), (200, 10.0)]:
        small = rng.standard_normal((cells, cells, 3), dtype=np.float32)
        img += amplitude * cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    img += 110
    for _ in range(60):
        colour = [float(c) for c in rng.uniform(0, 255, 3)]
        x, y = (int(v) for v in rng.uniform(0, 1, 2) * (width, height))
        size = int(rng.uniform(0.01, 0.12) * min(width, height))
        if rng.random() < 0.5:
            cv2.rectangle(img, (x, y), (x + size, y + int(size * rng.uniform(0.3, 2))), colour, -1, cv2.LINE_AA)
        else:
            cv2.circle(img, (x, y), size // 2, colour, int(rng.integers(-1, 6)) or -1, cv2.LINE_AA)
    img += 2.0 * rng.standard_normal(img.shape, dtype=np.float32)  # sensor noise
    return np.clip(img, 0, 255).astype(np.uint8)


def random_camera(rng: np.random.Generator, spec: dict) -> Camera:
    w, h = spec["frame_wh"]
    f = spec["focal_px"] * rng.uniform(0.95, 1.05)
    cx, cy = (w - 1) / 2 + rng.uniform(-15, 15), (h - 1) / 2 + rng.uniform(-15, 15)
    k = [[f, 0, cx], [0, f * rng.uniform(0.998, 1.002), cy], [0, 0, 1]]
    angle = rng.uniform(0, 2 * np.pi)
    eye = np.array([4500 * np.cos(angle), 4500 * np.sin(angle), rng.uniform(800, 2200)])
    target = np.array([*rng.uniform(-500, 500, 2), rng.uniform(700, 1100)])
    distortion = [rng.uniform(-0.25, 0.05), rng.uniform(-0.05, 0.2), rng.uniform(-3e-3, 3e-3),
                  rng.uniform(-3e-3, 3e-3), rng.uniform(-0.02, 0.02)]
    return Camera(k, look_at(eye, target), eye, distortion, distortion_model=spec["distortion_model"])


def random_box(rng: np.random.Generator, spec: dict) -> np.ndarray:
    w_img, h_img = spec["frame_wh"]
    bh = rng.uniform(*spec["box_height_px"])
    bw = bh * rng.uniform(0.35, 0.7)
    cx = rng.uniform(bw / 2 + 10, w_img - bw / 2 - 10)
    cy = rng.uniform(bh / 2 + 10, h_img - bh / 2 - 10)
    return np.array([cx - bw / 2, cy - bh / 2, bw, bh])


# ---------------------------------------------------------------------------------------------- methods
def posebank_path(jpeg: bytes, camera: Camera, box, params: CropParams) -> bytes:
    crop, _, _, _ = crop_person_from_jpeg(jpeg, camera, box, params)
    return encode_jpeg(crop, params.jpeg_quality)


def naive_crop(jpeg: bytes, camera: Camera, box, params: CropParams) -> np.ndarray:
    """Full decode, reprojection of the full frame at (at least) source resolution, then area downscale."""
    image = decode_jpeg(jpeg)
    new_camera, (w, h) = crop_camera(camera, box, params)
    supersample = max(1, math.ceil(1.0 / crop_scale(camera, new_camera) - 1e-9))
    render_camera = new_camera.zoomed(supersample)
    big = reproject_image(image, camera, render_camera, (w * supersample, h * supersample), "linear")
    return big if supersample == 1 else cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)


def naive_path(jpeg: bytes, camera: Camera, box, params: CropParams) -> bytes:
    return encode_jpeg(naive_crop(jpeg, camera, box, params), params.jpeg_quality)


def full_decode_path(jpeg: bytes, camera: Camera, box, params: CropParams) -> bytes:
    crop, _, _ = crop_person(decode_jpeg(jpeg), camera, box, params)
    return encode_jpeg(crop, params.jpeg_quality)


METHODS = {"posebank": posebank_path, "naive": naive_path, "full_decode": full_decode_path}


# ------------------------------------------------------------------------------------------------- bench
def make_tasks(rng, spec, n_frames: int, n_crops: int, params: CropParams):
    w, h = spec["frame_wh"]
    frames = [encode_jpeg(textured_frame(rng, w, h), 95) for _ in range(n_frames)]
    tasks = []
    for i in range(n_crops):
        camera = random_camera(rng, spec)
        box = random_box(rng, spec)
        new_camera, size = crop_camera(camera, box, params)
        factor = choose_decode_factor(crop_scale(camera, new_camera))
        tasks.append({"jpeg": frames[i % n_frames], "camera": camera, "box": box, "factor": factor,
                      "side": size[0]})
    return frames, tasks


def time_loop(fn, tasks) -> tuple[float, float]:
    """(CPU seconds of this process, wall-clock seconds) to run ``fn`` on every task."""
    wall, cpu = time.perf_counter(), time.process_time()
    for t in tasks:
        fn(t)
    return time.process_time() - cpu, time.perf_counter() - wall


def bench_size(spec: dict, params: CropParams, rng, n_frames: int, n_crops: int, repeats: int, n_checked: int):
    frames, tasks = make_tasks(rng, spec, n_frames, n_crops, params)
    loops = {m: (lambda t, fn=fn: fn(t["jpeg"], t["camera"], t["box"], params)) for m, fn in METHODS.items()}
    loops["posebank_decode_only"] = lambda t: decode_jpeg_reduced(t["jpeg"], t["factor"])
    for fn in loops.values():  # warm-up (first calls allocate, load code paths)
        fn(tasks[0])
    cpu_s, wall_s = {m: [] for m in loops}, {m: [] for m in loops}
    for _ in range(repeats):
        for m, fn in loops.items():  # interleaved, so drifts of the machine hit every method alike
            cpu, wall = time_loop(fn, tasks)
            cpu_s[m].append(cpu)
            wall_s[m].append(wall)
    per_crop = {m: statistics.median(s) / len(tasks) for m, s in cpu_s.items()}
    wall_per_crop = {m: statistics.median(s) / len(tasks) for m, s in wall_s.items()}

    diffs = {"posebank": [], "naive": []}
    for t in tasks[:n_checked]:
        reference, _, _ = crop_person(decode_jpeg(t["jpeg"]), t["camera"], t["box"], params)
        ours, _, _, _ = crop_person_from_jpeg(t["jpeg"], t["camera"], t["box"], params)
        naive = naive_crop(t["jpeg"], t["camera"], t["box"], params)
        diffs["posebank"].append(float(np.abs(ours.astype(np.float32) - reference).mean()))
        diffs["naive"].append(float(np.abs(naive.astype(np.float32) - reference).mean()))

    w, h = spec["frame_wh"]
    factors = [t["factor"] for t in tasks]
    rate = {m: 1.0 / per_crop[m] for m in METHODS}
    return {
        "frame_wh": [w, h],
        "box_height_px": list(spec["box_height_px"]),
        "focal_px": spec["focal_px"],
        "distortion_model": spec["distortion_model"],
        "n_frames": len(frames),
        "n_crops": len(tasks),
        "repeats": repeats,
        "frame_jpeg_kib_mean": float(np.mean([len(f) for f in frames]) / 1024),
        "frame_jpeg_bits_per_pixel": float(np.mean([len(f) for f in frames]) * 8 / (w * h)),
        "crop_side_px_mean": float(np.mean([t["side"] for t in tasks])),
        "decode_factor_counts": {str(f): factors.count(f) for f in sorted(set(factors))},
        "ms_per_crop": {m: 1000 * v for m, v in per_crop.items()},
        "crops_per_s": rate,
        "wall_clock": {
            "ms_per_crop": {m: 1000 * v for m, v in wall_per_crop.items()},
            "crops_per_s": {m: 1.0 / wall_per_crop[m] for m in METHODS},
            "speedup_vs_naive": wall_per_crop["naive"] / wall_per_crop["posebank"],
        },
        "speedup_vs_naive": rate["posebank"] / rate["naive"],
        "speedup_vs_full_decode": rate["posebank"] / rate["full_decode"],
        "posebank_decode_share": per_crop["posebank_decode_only"] / per_crop["posebank"],
        "mean_abs_diff_vs_crop_person": {m: float(np.mean(v)) for m, v in diffs.items()},
    }


def machine_info() -> dict:
    cpu_model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu_model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
                             cpu_model)
    except OSError:
        pass
    jpeg_lib = next((line.split(":", 1)[1].strip() for line in cv2.getBuildInformation().splitlines()
                     if line.strip().startswith("JPEG:")), "unknown")
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "opencv": cv2.__version__,
        "opencv_jpeg": jpeg_lib,
        "numpy": np.__version__,
        "opencv_threads": cv2.getNumThreads(),
        "single_threaded": True,
    }


def print_table(results: dict) -> None:
    head = (f"{'frames':<16}{'boxes px':>11}{'f used':>12}{'posebank/s':>12}{'naive/s':>10}{'ratio':>7}"
            f"{'decode share':>14}{'full-dec/s':>12}{'wall ratio':>12}{'|diff| pb/naive':>17}")
    print(head)
    print("-" * len(head))
    for name, r in results["sizes"].items():
        lo, hi = r["box_height_px"]
        counts = ",".join(f"{f}:{n}" for f, n in r["decode_factor_counts"].items())
        d = r["mean_abs_diff_vs_crop_person"]
        print(f"{name + ' ' + 'x'.join(map(str, r['frame_wh'])):<16}{f'{lo:.0f}-{hi:.0f}':>11}{counts:>12}"
              f"{r['crops_per_s']['posebank']:>12.1f}{r['crops_per_s']['naive']:>10.1f}"
              f"{r['speedup_vs_naive']:>6.2f}x{100 * r['posebank_decode_share']:>13.0f}%"
              f"{r['crops_per_s']['full_decode']:>12.1f}{r['wall_clock']['speedup_vs_naive']:>11.2f}x"
              f"{d['posebank']:>8.2f} / {d['naive']:.2f}")
    m = results["machine"]
    load = m["load_average"]
    print(f"single-threaded (cv2.setNumThreads(1)); crops/s = crops per CPU-second (per core); OpenCV {m['opencv']} "
          f"({m['opencv_jpeg']}), numpy {m['numpy']}, {m['cpu_model']}, {m['cpu_count']} CPUs, 1-min load "
          f"{load['before'][0]:.1f} -> {load['after'][0]:.1f}")
    print("posebank: crop_person_from_jpeg + encode q95; naive: full decode, full-frame reprojection at source "
          "resolution, INTER_AREA downscale, encode; full-dec: full decode + crop_person + encode; f used: decode "
          "factor: number of crops; |diff|: mean abs difference (grey levels) from crop_person on the full decode")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few-second run (fewer frames, crops and repeats)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    cv2.setNumThreads(1)
    params = CropParams()
    n_frames, n_crops, repeats, n_checked = (1, 4, 1, 2) if args.quick else (6, 40, 5, 12)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    load_before = os.getloadavg()
    sizes = {name: bench_size(spec, params, rng, n_frames, n_crops, repeats, n_checked) for name, spec in SIZES.items()}
    load_after = os.getloadavg()
    results = {
        "benchmark": "crop",
        "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {**machine_info(), "load_average": {"before": list(load_before), "after": list(load_after)}},
        "params": {
            "quick": args.quick,
            "seed": args.seed,
            "frames_per_size": n_frames,
            "crops_per_size": n_crops,
            "repeats": repeats,
            "crops_checked_for_fidelity": n_checked,
            "statistic": "median over repeats of the CPU time (time.process_time) of the loop over all crops, "
                         "divided by the number of crops; one thread, so crops/s = crops per CPU-second per core. "
                         "Wall-clock figures (time.perf_counter) are under wall_clock; they include time the "
                         "process waited for a core when the machine was busy (see machine.load_average)",
            "crop_jpeg_quality": params.jpeg_quality,
            "frame_jpeg_quality": 95,
            "crop_params": dataclasses.asdict(params),
            "methods": {
                "posebank": "crop_person_from_jpeg (reduced decode, region-only reprojection) + encode",
                "naive": "full decode + full-frame reprojection at source resolution (linear) + INTER_AREA "
                         "downscale + encode",
                "full_decode": "full decode + crop_person + encode",
            },
        },
        "sizes": sizes,
        "wall_seconds": time.perf_counter() - started,
    }
    write_json(args.out, results)
    print_table(results)
    print(f"wrote {args.out} ({results['wall_seconds']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
