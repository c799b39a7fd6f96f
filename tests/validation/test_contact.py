import os

import cv2
import numpy as np
import pytest

from posebank.core.camera import Camera
from posebank.core.errors import DataError
from posebank.core.jpeg import encode_jpeg
from posebank.core.masks import encode as encode_mask
from posebank.core.skeleton import JointInfo
from posebank.core.store import Cache, CacheWriter, Example
from posebank.validation.contact_sheet import (
    CENTER_COLOR,
    GAP,
    LEFT_COLOR,
    MASK_COLOR,
    RIGHT_COLOR,
    TILE_PAD,
    _layout,
    choose_examples,
    edge_sides,
    joint_sides,
    make_tile,
    overlay,
    render_contact_sheet,
    sheet_size,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SKELETON_COLORS = np.array([LEFT_COLOR, RIGHT_COLOR, CENTER_COLOR], np.int16)
BRIGHT_MARK = 200  # the fixture's joint marks are white (255) on a grey (110) figure over a dark (40) floor
ON_FIGURE = 70


def _gray(img):
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


def _window_max(gray, x, y, r):
    xi, yi = int(round(x)), int(round(y))
    return int(gray[max(0, yi - r):yi + r + 1, max(0, xi - r):xi + r + 1].max())


def _inside(gray, p):
    return np.isfinite(p).all() and 0 <= p[0] <= gray.shape[1] - 1 and 0 <= p[1] <= gray.shape[0] - 1


def _in_view(gray, px):
    """False when the fixture's walker has left the camera's view (nothing bright at any joint)."""
    vals = [_window_max(gray, *p, 2) for p in px if _inside(gray, p)]
    return bool(vals) and max(vals) >= BRIGHT_MARK


def _skeleton_pixel_mask(img, tol=30):
    dist = np.abs(img.astype(np.int16)[:, :, None, :] - SKELETON_COLORS[None, None]).max(axis=-1)
    return (dist <= tol).any(axis=-1)


def test_sheet_written_valid_and_deterministic(h36m_cache, tmp_path):
    out_a, out_b = tmp_path / "a" / "h36m.png", tmp_path / "b" / "h36m.png"
    res = render_contact_sheet(h36m_cache, out_a, per_split=8, seed=0, tile=128)
    render_contact_sheet(h36m_cache, out_b, per_split=8, seed=0, tile=128)
    data = out_a.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data == out_b.read_bytes()
    assert os.listdir(out_a.parent) == ["h36m.png"]  # the temporary file was renamed, nothing left over
    assert res["path"] == str(out_a)

    with Cache(h36m_cache) as cache:
        counts = cache.split_counts()
        splits = cache.column("split")
    assert counts["val"] == 0  # missing split: no row for it
    assert list(res["splits"]) == ["train", "test"]
    assert res["n_tiles"] == sum(min(8, counts[s]) for s in ("train", "test")) == 16
    for name, indices in res["splits"].items():
        assert len(set(indices)) == len(indices)
        assert all(splits[i] == ("train", "val", "test").index(name) for i in indices)

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    w, h = sheet_size(128, 8, 2)
    assert img.shape == (h, w, 3) and res["size"] == (w, h)
    # a wider grid for more tiles per split, a taller one for more splits
    assert sheet_size(128, 9, 2)[0] > w and sheet_size(128, 8, 3)[1] > h

    # another seed picks other examples; the same seed the same ones, independent of per-split streams
    other = render_contact_sheet(h36m_cache, tmp_path / "c.png", per_split=8, seed=1, tile=128)
    assert other["splits"] != res["splits"]
    assert choose_examples(splits, 8, seed=0) == res["splits"]


def test_overlay_joints_on_the_fixture_marks(h36m_cache):
    """The joints the overlay draws sit on the white marks the fixture painted at the true joints."""
    checked_examples = checked_joints = 0
    with Cache(h36m_cache) as cache:
        ji = cache.joint_info
        for i in range(0, len(cache), 3):
            ex = cache[i]
            crop = ex.decode_image()
            gray = _gray(crop)
            drawn, px = overlay(ex, ji, image=crop)
            assert drawn.shape == crop.shape and px.shape == (ji.n_joints, 2)
            if not _in_view(gray, px):
                continue
            checked_examples += 1
            for j, p in enumerate(px):
                if not _inside(gray, p):
                    continue
                assert _window_max(gray, *p, 2) >= BRIGHT_MARK, (i, ji.names[j], p)
                checked_joints += 1
            # the letterboxed tile uses the same geometry, scaled
            _, tile_px, (scale, ox, oy) = make_tile(ex, ji, 160, image=crop)
            expected = (px + 0.5) * scale - 0.5 + [ox, oy]
            np.testing.assert_allclose(tile_px, expected, atol=1e-6)
    assert checked_examples >= 15 and checked_joints >= 15 * ji.n_joints


def test_skeleton_lines_lie_on_the_figure(h36m_cache):
    """Pixels in the skeleton colours in a drawn tile fall on the grey figure of the original crop."""
    tile = 192
    n_checked = 0
    with Cache(h36m_cache) as cache:
        ji = cache.joint_info
        for i in (0, 7, 20, 33, 46, 57, 66):
            ex = cache[i]
            crop = ex.decode_image()
            gray = _gray(crop)
            if not _in_view(gray, overlay(ex, ji, image=crop)[1]):
                continue
            drawn, _, (scale, ox, oy) = make_tile(ex, ji, tile, image=crop)
            plain = cv2.resize(crop, (round(crop.shape[1] * scale[0]), round(crop.shape[0] * scale[1])),
                               interpolation=cv2.INTER_AREA)
            assert not _skeleton_pixel_mask(plain).any()  # those colours come from the overlay only
            ys, xs = np.nonzero(_skeleton_pixel_mask(drawn))
            assert len(xs) >= 150, i
            cx = (xs - ox + 0.5) / scale[0] - 0.5
            cy = (ys - oy + 0.5) / scale[1] - 0.5
            on_figure = np.array([_window_max(gray, x, y, 1) >= ON_FIGURE for x, y in zip(cx, cy)])
            assert on_figure.mean() >= 0.95, (i, on_figure.mean())
            # and they are not spread over the tile: they stay near the box around the person
            bx, by, bw, bh = ex.bbox
            inside_box = (cx >= bx - 8) & (cx <= bx + bw + 8) & (cy >= by - 8) & (cy <= by + bh + 8)
            assert inside_box.mean() >= 0.95
            n_checked += 1
    assert n_checked >= 5


def test_sides():
    ji = JointInfo("pelv,lhip,rhip,neck,lsho,rsho,root,rwri_x", "neck-lsho,pelv-lhip,pelv-neck,neck-root")
    assert joint_sides(ji) == ["center", "left", "right", "center", "left", "right", "center", "center"]
    sides = dict(zip(((ji.names[a], ji.names[b]) for a, b in ji.edges), edge_sides(ji)))
    assert sides[("neck", "lsho")] == "left" and sides[("neck", "rsho")] == "right"
    assert sides[("pelv", "lhip")] == "left" and sides[("pelv", "neck")] == "center"
    assert sides[("neck", "root")] == "center"


def _toy_example(split="train", mask=True, nan_joint=True):
    img = np.full((80, 60, 3), 40, np.uint8)
    cam = Camera([[400, 0, 29.5], [0, 400, 39.5], [0, 0, 1]], np.eye(3), [0, 0, -4000])
    world = np.array([[0, 0, 0], [-150, 0, 0], [150, 0, 0], [0, -400, 0]], np.float32)
    if nan_joint:
        world[2] = np.nan
    m = np.zeros((80, 60), bool)
    m[20:60, 15:45] = True
    return Example(world_coords=world, camera=cam, bbox=np.array([10, 15, 40, 50], np.float32), split=split,
                   image=encode_jpeg(img), image_size=(60, 80), subject="S1", sequence="walk", frame_index=3,
                   mask=encode_mask(m) if mask else b"")


TOY_JI = JointInfo("pelv,lhip,rhip,neck", "neck-pelv-lhip")


def test_overlay_mask_box_and_missing_joints():
    ex = _toy_example()
    crop = ex.decode_image()
    drawn, px = overlay(ex, TOY_JI, image=crop)
    assert np.isnan(px[2]).all() and np.isfinite(px[[0, 1, 3]]).all()
    np.testing.assert_allclose(px[0], [29.5, 39.5], atol=1e-6)
    np.testing.assert_allclose(px[3], [29.5, 39.5 - 40], atol=1e-6)  # above the crop: kept, partly drawn
    # inside the mask, away from the skeleton: tinted towards the mask colour
    tinted = drawn[50, 20].astype(int)
    expected = 0.65 * crop[50, 20].astype(int) + 0.35 * np.array(MASK_COLOR)
    assert np.abs(tinted - expected).max() <= 3
    # outside mask and box: untouched
    assert np.array_equal(drawn[5, 5], crop[5, 5]) and np.array_equal(drawn[75, 55], crop[75, 55])
    # the box edge is drawn
    assert np.abs(drawn[40, 10].astype(int) - crop[40, 10].astype(int)).max() > 50
    # the missing joint's edges are skipped: nothing in the right-side colour
    assert not (np.abs(drawn.astype(int) - RIGHT_COLOR).max(axis=-1) <= 30).any()


def test_empty_cache_and_small_splits(tmp_path):
    with CacheWriter(tmp_path / "empty.h5", "toy", TOY_JI):
        pass
    res = render_contact_sheet(tmp_path / "empty.h5", tmp_path / "empty.png", per_split=4, tile=64)
    assert res["n_tiles"] == 0 and res["splits"] == {}
    img = cv2.imread(str(tmp_path / "empty.png"))
    w, h = sheet_size(64, 4, 1)
    assert img.shape == (h, w, 3)
    assert (img != img[0, 0]).any()  # the title and the "no examples" text are there

    with CacheWriter(tmp_path / "toy.h5", "toy", TOY_JI) as writer:
        for split in ("test", "train", "test"):
            writer.add(_toy_example(split))
    res = render_contact_sheet(tmp_path / "toy.h5", tmp_path / "toy.png", per_split=4, tile=64)
    assert res["splits"] == {"train": [1], "test": [0, 2]} and res["n_tiles"] == 3
    assert cv2.imread(str(tmp_path / "toy.png")).shape == (sheet_size(64, 4, 2)[1], sheet_size(64, 4, 2)[0], 3)


def test_undecodable_crop_gets_a_placeholder(tmp_path):
    """A crop whose bytes do not decode is a DataError naming it, and a placeholder tile on the sheet."""
    bad = _toy_example()
    bad.image, bad.source_path = b"\xff\xd8 not a jpeg", "S1/walk.mp4#3"
    with pytest.raises(DataError, match="image of S1/walk.mp4#3"):
        bad.decode_image()
    with CacheWriter(tmp_path / "toy.h5", "toy", TOY_JI) as writer:
        writer.add(_toy_example())
        writer.add(bad)
    res = render_contact_sheet(tmp_path / "toy.h5", tmp_path / "toy.png", per_split=4, tile=64)
    assert res["splits"] == {"train": [0, 1]}
    sheet, lay = cv2.imread(str(tmp_path / "toy.png")), _layout(64, 4)
    x0, y0 = GAP + lay["label"], lay["title"]
    pad = [(sheet[y0:y0 + 64, x:x + 64] == TILE_PAD).all(-1).mean() for x in (x0, x0 + lay["cell_w"])]
    assert pad[0] < 0.5 < 0.8 < pad[1]  # the good crop fills its tile, the undecodable one is left blank


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        render_contact_sheet(tmp_path / "none.h5", tmp_path / "x.png", per_split=0)
