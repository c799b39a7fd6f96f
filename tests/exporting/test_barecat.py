"""The posepile / NLF barecat export: the archives open with the barecat package, every record decodes to the source's
values, the metadata holds the source's skeleton and mean bone lengths, and two exports are byte-identical."""

from __future__ import annotations

import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

barecat = pytest.importorskip("barecat")
msgpack_numpy = pytest.importorskip("msgpack_numpy")

from posebank.core import masks  # noqa: E402
from posebank.core.errors import UsageError  # noqa: E402
from posebank.exporting import barecat_export as bx  # noqa: E402
from posebank.exporting.common import ExportSource, run_export  # noqa: E402


def _export(src, out, **options):
    return run_export("barecat", bx.export, src, out, options)


def _open(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # barecat's auto_codec DeprecationWarning
        return barecat.Barecat(str(path), readonly=True, **kw)


@pytest.fixture(scope="module")
def h36m_cache(builds) -> Path:
    return builds.converted("h36m").cache


@pytest.fixture(scope="module")
def h36m_export(h36m_cache, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bc_h36m") / "h36m"
    _export(h36m_cache, out)
    return out


@pytest.fixture(scope="module")
def small5_export(small5, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bc_small5") / "small5"
    _export(small5, out)
    return out


def _joints_as_posepile(d, n_joints):
    """posepile's dict_to_example (datasets3d.py): the dense (J, 3) coordinates of a record."""
    rows, i_rows = d["joints3d"]["rows"], d["joints3d"]["i_rows"]
    wc = np.full((n_joints, 3), np.nan, np.float32)
    if len(i_rows):
        wc[i_rows] = rows
    else:
        wc = rows.astype(np.float32)
    return wc


def _check_archive(src_path, out: Path) -> dict:
    """Every example of the source against its record; returns counts of what was checked."""
    seen = {"records": 0, "fp16": 0, "fp32": 0, "masks": 0, "params": 0, "no3d": 0}
    assert (out / "annotations.barecat-sqlite-index").is_file() and (out / "images.barecat-sqlite-index").is_file()
    with ExportSource(src_path) as src, _open(out / "annotations.barecat") as ann, _open(out / "images.barecat") as im:
        n_joints = src.joint_info.n_joints
        assert ann.num_files == len(src) + 1  # the records and metadata.msgpack
        assert im.num_files == len(src)
        for split in ("train", "val", "test"):
            listed = sorted(ann.iglobfiles(f"{split}/**", recursive=True))
            assert len(listed) == src.split_counts().get(split, 0)
            for item in src.items(split):
                ex = item.example
                impath = f"{item.dataset}_downscaled/{item.source_row:09d}.jpg"
                key = f"{split}/{impath}_00.msgpack"
                d = msgpack_numpy.unpackb(ann[key])
                # posepile's Pose3DExampleBarecat.image_path
                assert key.partition("/")[2].rpartition("_")[0] == d["impath"] == impath
                assert im[impath] == ex.image  # the crop's JPEG bytes, unchanged
                assert d["bbox"].dtype == np.float32 and np.array_equal(d["bbox"], np.asarray(ex.bbox, np.float32))
                cam = d["cam"]
                np.testing.assert_allclose(cv2.Rodrigues(cam["rotvec_w2c"])[0], ex.camera.R, atol=1e-6)
                assert np.array_equal(cam["loc"], np.asarray(ex.camera.t, np.float32))
                assert np.array_equal(cam["intr"], np.asarray(ex.camera.intrinsic_matrix, np.float32)[:2])
                assert np.array_equal(cam["up"], np.asarray(ex.camera.world_up, np.float32))
                assert ("distcoef" in cam) == bool(np.any(ex.camera.distortion_coeffs != 0))
                wc = np.asarray(ex.world_coords, np.float32)
                valid = ~np.isnan(wc).any(axis=1)
                if not valid.any():
                    assert "joints3d" not in d
                    seen["no3d"] += 1
                else:
                    got = _joints_as_posepile(d, n_joints)
                    assert np.array_equal(np.isnan(got), np.isnan(wc))
                    rows = d["joints3d"]["rows"]
                    assert d["joints3d"]["i_rows"].dtype == np.uint16
                    if valid.all():
                        assert len(d["joints3d"]["i_rows"]) == 0
                    if rows.dtype == np.float16:
                        assert np.nanmax(np.abs(got - wc)) < 1.0
                        assert np.array_equal(rows, wc[valid].astype(np.float16))
                        seen["fp16"] += 1
                    else:
                        assert rows.dtype == np.float32 and np.array_equal(got, wc, equal_nan=True)
                        assert np.max(np.abs(wc[valid] - wc[valid].astype(np.float16))) >= 1.0
                        seen["fp32"] += 1
                if ex.mask:
                    h, w = ex.image_size[1], ex.image_size[0]
                    assert d["mask"]["size"] == [h, w]
                    counts = zlib.decompress(d["mask"]["zcounts"])  # rlemasklib.decompress(only_gzip=True)
                    assert counts == ex.mask
                    assert np.array_equal(masks.decode(counts, h, w), ex.decode_mask())
                    seen["masks"] += 1
                else:
                    assert "mask" not in d
                fit = ex.body_model
                if fit is None:
                    assert "parameters" not in d
                else:
                    p = d["parameters"]
                    assert (p["type"], p["gender"]) == (fit.model, fit.gender)
                    assert np.array_equal(p["pose"], fit.pose) and np.array_equal(p["shape"], fit.betas)
                    assert np.array_equal(p["trans"], fit.trans)
                    seen["params"] += 1
                assert d["posebank"] == {"dataset": item.dataset, "row": item.source_row,
                                         "source_path": ex.source_path}
                seen["records"] += 1
    assert seen["records"] == len(ExportSource(src_path))
    return seen


def _bones_numpy(src_path, splits):
    with ExportSource(src_path) as src:
        edges = np.asarray(src.joint_info.edges, np.int64).reshape(-1, 2)
        coords = np.stack([it.example.world_coords for s in splits for it in src.items(s)]).astype(np.float64)
    lengths = np.linalg.norm(coords[:, edges[:, 0]] - coords[:, edges[:, 1]], axis=-1)  # (N, E), NaN if missing
    seen = np.isfinite(lengths).any(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of an edge never observed
        return np.where(seen, np.nanmean(lengths, axis=0), 0.0)  # posepile: 0 for an edge never observed


def _check_metadata(src_path, out):
    with ExportSource(src_path) as src, _open(out / "annotations.barecat") as ann:
        md = msgpack_numpy.unpackb(ann["metadata.msgpack"])
        assert md["joint_names"] == list(src.joint_info.names)
        assert [tuple(e) for e in md["joint_edges"]] == [tuple(e) for e in src.joint_info.edges]
        counts = src.split_counts()
    assert md["train_bone_lengths"].dtype == np.float32
    np.testing.assert_allclose(md["train_bone_lengths"], _bones_numpy(src_path, ["train"]), rtol=1e-6)
    np.testing.assert_allclose(md["trainval_bone_lengths"], _bones_numpy(src_path, ["train", "val"]), rtol=1e-6)
    if not counts.get("val"):
        assert np.array_equal(md["train_bone_lengths"], md["trainval_bone_lengths"])
    return md


def test_h36m_records_equal_the_cache(h36m_cache, h36m_export):
    seen = _check_archive(h36m_cache, h36m_export)
    assert seen["fp16"] > 0
    _check_metadata(h36m_cache, h36m_export)


def test_small5_merge_records_equal_the_merge(small5, small5_export):
    seen = _check_archive(small5, small5_export)
    assert seen["masks"] > 0 and seen["fp16"] > 0 and seen["fp32"] > 0, seen  # the checks were not vacuous
    md = _check_metadata(small5, small5_export)
    with ExportSource(small5) as src:
        assert md["posebank"]["datasets"] == src.datasets()
        assert len(md["joint_names"]) == src.joint_info.n_joints
        assert any(n.endswith("_h36m") for n in md["joint_names"])  # the union skeleton's suffixed names


def test_body_model_parameters_of_3dpw(builds, tmp_path):
    cache = builds.converted("tdpw").cache
    _export(cache, tmp_path / "tdpw")
    seen = _check_archive(cache, tmp_path / "tdpw")
    assert seen["params"] > 0, seen


def test_the_manifest_summary_counts(h36m_cache, h36m_export):
    import json

    m = json.loads((h36m_export / "posebank-export.json").read_text())
    s = m["summary"]
    with ExportSource(h36m_cache) as src:
        assert s["examples"] == len(src)
        assert {k: v for k, v in s["per_split"].items() if v} == {k: v for k, v in src.split_counts().items() if v}
    assert s["joints3d_float16"] + s["joints3d_float32"] + s["without_joints3d"] == s["examples"]
    assert 0 < s["joints3d_float16_max_error_mm"] < 1
    assert "annotations.barecat-sqlite-index" in s["files"]


def test_two_exports_are_byte_identical(h36m_cache, h36m_export, tmp_path):
    again = tmp_path / "again"
    _export(h36m_cache, again)
    names = sorted(p.name for p in h36m_export.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    for name in names:
        assert (h36m_export / name).read_bytes() == (again / name).read_bytes(), name


def test_one_split_and_inline_images(h36m_cache, tmp_path):
    out = tmp_path / "test_only"
    s = _export(h36m_cache, out, split="test", images="inline")["summary"]
    assert not (out / "images.barecat-sqlite-index").exists()
    with ExportSource(h36m_cache) as src, _open(out / "annotations.barecat") as ann:
        n_test = src.split_counts()["test"]
        assert s["examples"] == n_test and ann.num_files == n_test + 1
        assert not list(ann.iglobfiles("train/**", recursive=True))
        md = msgpack_numpy.unpackb(ann["metadata.msgpack"])
        assert "train_bone_lengths" not in md and "trainval_bone_lengths" not in md  # no training examples
        for item in src.items("test"):
            d = msgpack_numpy.unpackb(ann[f"test/h36m_downscaled/{item.source_row:09d}.jpg_00.msgpack"])
            assert d["image"] == item.example.image


def test_auto_codec_reads_the_records(h36m_export):
    """posepile opens the annotations with auto_codec=True: barecat decodes .msgpack itself."""
    with _open(h36m_export / "annotations.barecat", auto_codec=True) as ann:
        md = ann["metadata.msgpack"]
        first = next(iter(sorted(ann.iglobfiles("train/**", recursive=True))))
        d = ann[first]
    assert isinstance(md["joint_names"], list) and set(d) >= {"impath", "bbox", "cam", "joints3d"}


def test_float16_only_under_one_millimetre():
    near = np.array([[100.1, -200.2, 3000.3], [np.nan, np.nan, np.nan]], np.float32)
    j, fp16, err = bx.encode_joints(near)
    assert fp16 and j["rows"].dtype == np.float16 and list(j["i_rows"]) == [0] and err < 1
    far = np.array([[5002.3, 0, 0], [1, 2, 3]], np.float32)  # float16 steps are 4 mm above 4096
    j, fp16, _ = bx.encode_joints(far)
    assert not fp16 and j["rows"].dtype == np.float32 and np.array_equal(j["rows"], far) and len(j["i_rows"]) == 0
    huge = np.array([[1e6, 0, 0]], np.float32)  # beyond float16's range
    assert bx.encode_joints(huge)[1] is False
    assert bx.encode_joints(np.full((3, 3), np.nan, np.float32))[0] is None


@pytest.mark.parametrize("options, word", [({"split": "training"}, "split"), ({"images": "files"}, "images"),
                                           ({"shards": 3}, "shards")])
def test_bad_options_are_refused(h36m_cache, tmp_path, options, word):
    with pytest.raises(UsageError, match=word):
        _export(h36m_cache, tmp_path / "bad", **options)
    assert not (tmp_path / "bad").exists()


def test_rotation_vector_round_trips_near_a_half_turn():
    """posepile's reader: R = cv2.Rodrigues(rotvec_w2c); the export's rotvec keeps R to float32 precision, also
    where cv2.Rodrigues(R) itself (posepile's writer) loses ~1e-5 (angles near pi)."""
    rng = np.random.default_rng(0)
    for angle in (0.0, 1e-9, 0.5, 2.0, np.pi - 1e-3, np.pi - 1e-6, np.pi):
        for _ in range(50):
            axis = rng.normal(size=3)
            R = cv2.Rodrigues(axis / np.linalg.norm(axis) * angle)[0].astype(np.float32)
            np.testing.assert_allclose(cv2.Rodrigues(bx.rotvec_w2c(R))[0], R, atol=3e-7)
