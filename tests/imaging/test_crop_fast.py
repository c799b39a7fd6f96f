import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from posebank.core.camera import Camera, look_at
from posebank.core.jpeg import decode_jpeg, decode_jpeg_reduced, encode_jpeg
from posebank.imaging.crop import (
    CropParams,
    choose_decode_factor,
    crop_camera,
    crop_person,
    crop_person_from_jpeg,
    crop_scale,
)

REPO = Path(__file__).resolve().parents[2]


def camera(width=1000, height=1002, focal=1100.0, model="opencv"):
    return Camera([[focal, 0, width / 2], [0, focal, height / 2 + 9], [0, 0, 1]],
                  look_at([0, -4000, 1500], [0, 0, 900]), [0, -4000, 1500], [-0.25, 0.2, 0.002, -0.003, -0.01],
                  distortion_model=model)


def smooth_image(width, height, seed=0):
    """Gaussian blobs on a gradient: smooth enough that JPEG and its reduced decodes are nearly lossless."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.empty((height, width, 3), np.float32)
    for c in range(3):
        img[..., c] = 40 + 0.05 * xx + 0.03 * yy
        for cx, cy, s in zip(rng.uniform(0, width, 4), rng.uniform(0, height, 4), rng.uniform(40, 120, 4)):
            img[..., c] += 90 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
    return np.clip(img, 0, 255).astype(np.uint8)


def textured_image(width, height, seed=0):
    """Multi-scale texture with hard-edged shapes (what a camera frame looks like to JPEG and resampling)."""
    rng = np.random.default_rng(seed)
    img = np.full((height, width, 3), 110, np.float32)
    for cells, amplitude in [(4, 50.0), (20, 25.0), (90, 15.0)]:
        small = rng.standard_normal((cells, cells, 3), dtype=np.float32)
        img += amplitude * cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(40):
        x, y = (int(v) for v in rng.uniform(0, 1, 2) * (width, height))
        size = int(rng.uniform(0.02, 0.1) * width)
        cv2.rectangle(img, (x, y), (x + size, y + size), [float(c) for c in rng.uniform(0, 255, 3)], -1)
    return np.clip(img, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------ reduced decoding
@pytest.mark.parametrize("factor", [2, 4, 8])
def test_reduced_decode_is_an_area_average_of_the_full_decode(factor):
    data = encode_jpeg(smooth_image(1000, 1002), 95)
    full = decode_jpeg(data).astype(np.float32)
    reduced = decode_jpeg_reduced(data, factor).astype(np.float32)
    assert reduced.shape == (-(-1002 // factor), -(-1000 // factor), 3)
    h, w = 1002 // factor, 1000 // factor
    area = cv2.resize(full[: h * factor, : w * factor], (w, h), interpolation=cv2.INTER_AREA)
    assert np.abs(area - reduced[:h, :w]).mean() < 0.5
    # a shift of a quarter of a reduced pixel would show: the block average is the best match
    errors = {}
    for shift in (-0.25, 0.0, 0.25):
        mx = (np.arange(w, dtype=np.float32) + shift) * factor + (factor - 1) / 2
        my = (np.arange(h, dtype=np.float32)) * factor + (factor - 1) / 2
        sampled = cv2.remap(full, *np.meshgrid(mx, my), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        errors[shift] = np.abs(sampled - reduced[:h, :w])[4:-4, 4:-4].mean()
    assert min(errors, key=errors.get) == 0.0, errors


def test_reduced_pixels_sit_where_the_zoomed_camera_projects():
    cam = camera()
    world = np.array([[-300, 0, 400], [250, 100, 1500], [50, -200, 900], [-100, 300, 1700]], np.float64)
    pix = cam.project(world)
    yy, xx = np.mgrid[0:1002, 0:1000].astype(np.float64)
    sigma = 12.0
    image = np.full((1002, 1000), 20.0)
    for x, y in pix:
        image += 200 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    data = encode_jpeg(cv2.cvtColor(np.round(image).astype(np.uint8), cv2.COLOR_GRAY2BGR), 95)
    for factor in (1, 2, 4, 8):
        reduced = decode_jpeg_reduced(data, factor).astype(np.float64).mean(-1) - 20
        expected = cam.zoomed(1 / factor).project(world)
        r = int(np.ceil(3 * sigma / factor))
        for (ex, ey), (px, py) in zip(expected, pix):
            x0, y0 = int(round(ex)), int(round(ey))
            win = reduced[y0 - r:y0 + r + 1, x0 - r:x0 + r + 1]
            ys, xs = np.mgrid[y0 - r:y0 + r + 1, x0 - r:x0 + r + 1]
            centroid = np.array([(win * xs).sum(), (win * ys).sum()]) / win.sum()
            np.testing.assert_allclose(centroid, [ex, ey], atol=0.05)
            if factor > 1:  # the plain x / f convention is off by (f - 1) / (2 f) >= 0.25 px
                assert np.all(np.abs(centroid - np.array([px, py]) / factor) > 0.2)


def test_reduced_decode_rejects_unsupported_factors():
    data = encode_jpeg(np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ValueError):
        decode_jpeg_reduced(data, 3)
    assert decode_jpeg_reduced(data, 1).shape == (16, 16, 3)


# ------------------------------------------------------------------------------------- crops from JPEG
def test_decode_factor_choice():
    assert choose_decode_factor(1.2) == 1
    assert choose_decode_factor(0.6) == 1
    assert choose_decode_factor(0.5) == 2
    assert choose_decode_factor(0.3) == 2
    assert choose_decode_factor(0.25) == 4
    assert choose_decode_factor(0.2) == 4
    assert choose_decode_factor(0.125) == 8
    assert choose_decode_factor(0.01) == 8
    assert choose_decode_factor(0.01, max_factor=2) == 2
    assert choose_decode_factor(0.01, max_factor=1) == 1


def test_big_box_in_a_big_frame_is_decoded_reduced_and_a_small_box_in_full():
    cam = camera(2048, 2048, 1500)
    data = encode_jpeg(textured_image(2048, 2048), 95)
    params = CropParams()
    big, small = [600, 500, 450, 950], [900, 900, 120, 200]
    _, _, _, f_big = crop_person_from_jpeg(data, cam, big, params)
    _, _, _, f_small = crop_person_from_jpeg(data, cam, small, params)
    assert f_big > 1 and f_small == 1
    new_cam, _ = crop_camera(cam, big, params)
    assert f_big == choose_decode_factor(crop_scale(cam, new_cam)) == 2  # scale 256 / 950: 1 / scale = 3.7


@pytest.mark.parametrize("frame, box, model", [
    ((2048, 2048), [600, 500, 450, 950], "opencv"),  # 3DHP-like: f = 2
    ((2048, 2048), [300, 200, 900, 1700], "opencv"),  # very large: f = 4
    ((1000, 1002), [380, 300, 200, 420], "h36m"),  # H36M-like: f = 1
])
def test_crop_from_jpeg_agrees_with_crop_person_on_the_full_decode(frame, box, model):
    w, h = frame
    cam = camera(w, h, 1500 if w > 1500 else 1100, model)
    data = encode_jpeg(textured_image(w, h, seed=1), 95)
    params = CropParams()
    crop, new_cam, new_box, factor = crop_person_from_jpeg(data, cam, box, params)
    ref, ref_cam, ref_box = crop_person(decode_jpeg(data), cam, box, params)
    assert factor == choose_decode_factor(crop_scale(cam, ref_cam))
    assert crop.shape == ref.shape and crop.dtype == ref.dtype
    diff = np.abs(crop.astype(np.float32) - ref)
    assert diff.mean() < 2, diff.mean()
    if factor == 1:
        assert np.array_equal(crop, ref)
    # the crop camera does not depend on the decode factor: world points land on the same crop pixels
    assert new_cam.allclose(ref_cam, rtol=0, atol=0)
    np.testing.assert_array_equal(new_box, ref_box)
    world = np.random.default_rng(0).uniform([-400, -300, 0], [400, 300, 1800], (20, 3))
    np.testing.assert_array_equal(new_cam.project(world), ref_cam.project(world))


# ---------------------------------------------------------------------------------------------- bench
def bench_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_crop", REPO / "bench" / "crop.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_crop", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("model", ["opencv", "h36m"])
def test_bench_per_pixel_map_is_the_camera_reprojection(model):
    """The posepile-style path's map (every pixel, float32) lands where posebank's cameras reproject the pixels."""
    from posebank.imaging.crop import reproject_points

    bench = bench_module()
    cam = camera(1000, 1002, 1146.0, model)
    new_cam, (w, h) = crop_camera(cam, [380, 300, 200, 420], CropParams(), (1000, 1002))
    source_map = bench.pixel_map(cam, new_cam, w, h)
    assert source_map.shape == (h, w, 2) and source_map.dtype == np.float32
    rng = np.random.default_rng(0)
    pix = np.stack([rng.integers(0, w, 50), rng.integers(0, h, 50)], axis=1)
    expected = reproject_points(pix.astype(np.float64), new_cam, cam)
    np.testing.assert_allclose(source_map[pix[:, 1], pix[:, 0]], expected, atol=0.02)


def test_bench_quick_run_writes_json(tmp_path):
    out = tmp_path / "res" / "crop.json"
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "crop.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert {"machine", "params", "sizes", "targets", "code"} <= set(data)
    assert {"cpu_count", "opencv", "numpy"} <= set(data["machine"])
    assert {"git_commit", "clean", "changed_files"} <= set(data["code"])
    assert set(data["sizes"]) == {"h36m", "3dhp"}
    for r in data["sizes"].values():
        assert set(r["crops_per_s"]) == {"posebank", "posepile", "lower_bound"}
        assert all(v > 0 for v in r["crops_per_s"].values())
        assert r["ratio"]["vs_posepile"] > 0 and r["ratio"]["vs_lower_bound"] > 0
        assert set(r["targets_met"]) == {"vs_posepile", "vs_lower_bound"}
        split = r["profile"]["posebank"]["ms_per_crop"]
        assert {"decode", "image_warp", "mask_warp", "encode", "append"} <= set(split)
        assert sum(split.values()) == pytest.approx(r["profile"]["posebank"]["whole_ms_per_crop"])
        # same geometry on both paths: the crops and masks agree (no timing is asserted anywhere)
        q = r["quality"]
        assert q["mean_abs_diff_posebank_vs_posepile"] < 3
        assert q["mask_iou_posebank_vs_posepile_min"] > 0.95
    assert list(out.parent.iterdir()) == [out]  # the temporary file was renamed, nothing left behind
