"""What every export shares: the source read example by example (a cache, or a merge with its joints in the union),
the atomic export folder, the manifest and `posebank info` on it, params.yaml's exports: and the CLI's errors."""

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from posebank.core.errors import ParamsError, UsageError
from posebank.core.settings import check_params, load_params
from posebank.core.store import SPLITS, Cache
from posebank.exporting.common import MANIFEST, ExportSource, read_manifest, run_export, write_npz
from posebank.merging.reader import Merge


def test_cache_items_are_the_cache_examples_of_the_split(small5_caches):
    path = small5_caches / "h36m_alljoints"
    cache = Cache(path)
    splits = cache.column("split", slice(None))
    with ExportSource(path) as src:
        assert src.kind == "cache" and src.name == "h36m_alljoints" and src.datasets() == ["h36m_alljoints"]
        for split in SPLITS:
            items = list(src.items(split, block_rows=7))  # blocks that cut the splits' runs
            assert [it.index for it in items] == np.flatnonzero(splits == SPLITS.index(split)).tolist()
            for it in items[:5]:
                ex = cache[it.index]
                assert it.example.image == ex.image and it.example.split == split
                assert np.array_equal(it.example.world_coords, ex.world_coords, equal_nan=True)
        assert len(list(src.items())) == len(cache)
        with pytest.raises(UsageError, match="not a split"):
            next(src.items("training"))


def test_merge_items_carry_union_joints_and_their_source(small5):
    with Merge(small5) as m, ExportSource(small5) as src:
        assert src.kind == "merge" and src.joint_info.n_joints == m.joint_info.n_joints
        assert src.datasets() == [s["dataset"] for s in m.sources]
        assert set(src.digests()) == {*src.datasets(), "merge:small5"}
        items = list(src.items())
        assert [it.index for it in items] == list(range(len(m)))
        wc = m.column("world_coords", slice(None))
        for it in items:
            dataset, row = m.source_row(it.index)
            assert (it.dataset, it.source_row) == (dataset, row)
            assert np.array_equal(it.example.world_coords, wc[it.index], equal_nan=True)
            assert it.example.split == SPLITS[int(m.column("split", it.index))]
        val = list(src.items("val"))
        assert len(val) == m.split_counts()["val"] > 0


def _toy_exporter(source, out, options):
    n = 0
    with open(out / "rows.txt", "w") as f:
        for it in source.items(options.get("split")):
            f.write(f"{it.dataset} {it.source_row}\n")
            n += 1
            if options.get("fail_after") == n:
                raise UsageError("toy", "failed half way")
    return {"examples": n, "files": ["rows.txt"]}


def test_an_export_folder_is_atomic_and_carries_its_manifest(small5_caches, tmp_path):
    out = tmp_path / "exports" / "toy"
    m = run_export("toy", _toy_exporter, small5_caches / "h36m_alljoints", out, {"split": "test"})
    assert (out / "rows.txt").read_text().count("\n") == m["summary"]["examples"] > 0
    assert read_manifest(out) == m == json.loads((out / MANIFEST).read_text())
    assert m["source"]["kind"] == "cache" and m["source"]["digests"]["h36m_alljoints"]
    before = (out / "rows.txt").read_bytes()
    with pytest.raises(UsageError, match="half way"):  # a failed export leaves the previous one, and no temporary
        run_export("toy", _toy_exporter, small5_caches / "h36m_alljoints", out, {"fail_after": 2})
    assert (out / "rows.txt").read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["toy"]
    run_export("toy", _toy_exporter, small5_caches / "h36m_alljoints", out, {})  # a new one replaces it whole
    assert (out / "rows.txt").read_bytes() != before and read_manifest(out)["options"] == {}
    (tmp_path / "file").write_text("x")
    with pytest.raises(Exception, match="not a folder"):
        run_export("toy", _toy_exporter, small5_caches / "mupots", tmp_path / "file", {})
    with pytest.raises(UsageError, match="not a posebank export"):
        read_manifest(tmp_path)


def test_npz_files_are_reproducible_and_refuse_objects(tmp_path):
    arrays = {"imgname": np.array(["a/b.jpg", "c.jpg"]), "center": np.arange(4.0).reshape(2, 2)}
    write_npz(tmp_path / "a.npz", arrays, compress=True)
    write_npz(tmp_path / "b.npz", arrays, compress=True)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    back = np.load(tmp_path / "a.npz", allow_pickle=False)
    assert back["imgname"].tolist() == ["a/b.jpg", "c.jpg"] and np.array_equal(back["center"], arrays["center"])
    assert {i.date_time for i in zipfile.ZipFile(tmp_path / "a.npz").infolist()} == {(1980, 1, 1, 0, 0, 0)}
    with pytest.raises(ValueError, match="'smpl'"):
        write_npz(tmp_path / "c.npz", {"smpl": np.array({"betas": 1}, dtype=object)})


def test_params_exports_are_checked():
    from conftest import REPO

    raw = load_params(REPO / "params.yaml")
    p = check_params(raw)
    assert p.export("refit_3dpw_test")[1].file == "3dpw_test.npz"
    assert p.export("small5_barecat")[0] == "merge_exports"
    with pytest.raises(ParamsError, match="neither a registered dataset nor a subset"):
        check_params({**raw, "exports": {"x": {"format": "spin", "source": "nosuch"}}},
                     known_datasets=list(raw["datasets"]))
    for bad, match in (({"exports": {"x": {"format": "fbx", "source": "tdpw"}}}, "format"),
                       ({"exports": {"x": {"format": "spin", "source": "tdpw", "split": "training"}}}, "split"),
                       ({"exports": {"x": {"format": "spin", "source": "tdpw", "file": "../x.npz"}}}, "file"),
                       ({"merge_exports": {"x": {"format": "barecat", "source": "huge9"}}}, "not a merge")):
        with pytest.raises(ParamsError, match=match):
            check_params({**raw, **bad}, known_datasets=list(raw["datasets"]))
    with pytest.raises(ParamsError, match="no export named"):
        p.export("nosuch")


def test_cli_export_errors_are_one_line(tmp_path):
    cmd = [sys.executable, "-m", "posebank.cli", "export"]
    for args, match in ((["fbx", "tdpw"], "not a format"), (["spin"], "needs NAME"),
                        (["spin", "nosuch", "--cache-dir", str(tmp_path)], "no cache at"),
                        (["refit-config", "tdpw"], "takes no NAME")):
        r = subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=tmp_path)
        assert r.returncode == 2 and match in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)


def test_cli_info_reads_an_export_folder(small5_caches, tmp_path):
    out = tmp_path / "toy"
    run_export("toy", _toy_exporter, small5_caches / "mupots", out, {"split": "val"})
    r = subprocess.run([sys.executable, "-m", "posebank.cli", "info", str(out)], capture_output=True, text=True)
    assert r.returncode == 0 and "export       toy of cache mupots" in r.stdout and "rows.txt" in r.stdout
    r = subprocess.run([sys.executable, "-m", "posebank.cli", "info", str(out), "--json"], capture_output=True,
                       text=True)
    assert json.loads(r.stdout)["summary"]["files"] == ["rows.txt"]


def test_cli_and_stage_export_a_cache_then_refit_config_over_them(builds, tmp_path):
    """`posebank export spin`, the export stage and `posebank export refit-config` on a 3DPW cache, with a params
    file of their own: ReFit's data_config.py then finds the exported npz files."""
    import runpy

    import yaml

    from conftest import REPO

    cache = builds.converted("tdpw").cache
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["pipeline"] = {**raw["pipeline"], "cache": str(cache.parent), "exports": str(tmp_path / "exports")}
    raw["exports"] = {k: v for k, v in raw["exports"].items() if k in ("refit_3dpw_train", "refit_3dpw_test")}
    raw["merge_exports"] = {}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    cli = [sys.executable, "-m", "posebank.cli"]
    r = subprocess.run([*cli, "export", "spin", cache.name, "--split", "test", "--file", "3dpw_test.npz", "--out",
                        str(tmp_path / "exports" / "refit_3dpw_test"), "--params", "params.yaml"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "export       spin of cache tdpw" in r.stdout and "3dpw_test.npz" in r.stdout
    r = subprocess.run([sys.executable, str(REPO / "stages" / "export.py"), "refit_3dpw_train", "--params",
                        "params.yaml"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    m = read_manifest(tmp_path / "exports" / "refit_3dpw_train")
    assert m["options"] == {"file": "3dpw_train.npz", "split": "train"} and m["source"]["name"] == "tdpw"
    test = np.load(tmp_path / "exports" / "refit_3dpw_test" / "3dpw_test.npz", allow_pickle=False)
    assert len(test["imgname"]) == Cache(cache).split_counts()["test"]
    r = subprocess.run([*cli, "export", "refit-config", "--params", "params.yaml"], capture_output=True, text=True,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    refit = tmp_path / "exports" / "refit"
    assert {"config.yaml", "config_bedlam.yaml", "config_all.yaml", "data_config.py"} <= {p.name for p in
                                                                                           refit.iterdir()}
    cfg = runpy.run_path(str(refit / "data_config.py"))
    assert np.load(cfg["DATASET_FILES"][0]["3dpw_test"], allow_pickle=False)["imgname"].tolist() == \
        test["imgname"].tolist()
    assert "NOT EXPORTED" in (refit / "config_bedlam.yaml").read_text()  # only 3DPW was exported
