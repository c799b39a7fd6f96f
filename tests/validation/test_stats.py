"""The per-dataset statistics (posebank.validation.stats): the values equal what the cache holds, computed here
another way; the box histogram adds up to the examples; the validate stage writes both files, also when a
validation fails; and through DVC, `dvc metrics diff` shows a rebuild's changed counts and `dvc plots` the box
histogram."""

import csv
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parents[2]
VALIDATION = {"pass_rate": 0.975, "expectations": 40, "expectations_passed": 39, "expectations_failed": 1}


def _read_csv(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def _independent(cache_path):
    """Split counts, box sizes, valid 3D / 2D joints of every example, read example by example and whole."""
    from posebank.core.store import SPLITS, Cache

    with Cache(cache_path) as c:
        splits = dict.fromkeys(SPLITS, 0)
        sizes, valid3, valid2 = [], [], []
        kp = c.column("keypoints2d")
        for i, ex in enumerate(c.examples()):
            splits[ex.split] += 1
            w, h = float(ex.bbox[2]), float(ex.bbox[3])
            sizes.append(np.sqrt(w * h))
            valid3.append(int(np.isfinite(ex.world_coords).all(axis=1).sum()))
            valid2.append(int(np.isfinite(kp[i]).all(axis=1).sum()))
        return splits, np.array(sizes), np.array(valid3), np.array(valid2), c.joint_info.n_joints, c.quarantine


def _check(stats, cache_path):
    splits, sizes, valid3, valid2, n_joints, quarantine = _independent(cache_path)
    n = sum(splits.values())
    assert stats["examples"] == n and stats["examples_per_split"] == splits
    assert stats["joints"] == n_joints
    assert stats["joints_3d_valid_mean"] == round(valid3.mean(), 4)
    assert stats["joints_3d_valid_frac"] == round(valid3.sum() / (n * n_joints), 4)
    assert stats["joints_2d_valid_mean"] == round(valid2.mean(), 4)
    assert stats["examples_3d"] == int((valid3 > 0).sum())
    assert stats["examples_2d_only"] == int(((valid3 == 0) & (valid2 > 0)).sum())
    # the median of the sizes at 0.01 px exactly, within 0.005 px of the exact one
    assert stats["box_px"]["median"] == round(float(np.median(np.rint(sizes * 100))) / 100, 3)
    assert abs(stats["box_px"]["median"] - np.median(sizes)) <= 0.005 + 1e-9
    for key, q in (("p5", 0.05), ("p95", 0.95)):
        assert stats["box_px"][key] == pytest.approx(np.quantile(sizes, q), abs=0.006)
    assert stats["boxes_invalid"] == 0
    assert stats["quarantined"] == len(quarantine)
    assert stats["quarantined_frames"] == sum(int(q.get("count", 1)) for q in quarantine)
    return sizes, splits


def _check_histogram(plot: Path, sizes, splits):
    from posebank.validation.stats import BOX_BIN_PX, BOX_BINS

    assert (BOX_BIN_PX, BOX_BINS) == (16, 64)
    rows = _read_csv(plot)
    assert list(rows[0]) == ["box_px", "train", "val", "test", "examples"]
    assert [int(r["box_px"]) for r in rows] == [16 * i for i in range(64)]
    for s, n in splits.items():
        assert sum(int(r[s]) for r in rows) == n
    assert all(int(r["examples"]) == int(r["train"]) + int(r["val"]) + int(r["test"]) for r in rows)
    expected = np.bincount(np.minimum(np.floor(sizes / 16).astype(int), 63), minlength=64)
    assert [int(r["examples"]) for r in rows] == expected.tolist()


def test_stats_equal_the_cache_and_do_not_depend_on_the_chunks(h36m_cache, tmp_path):
    from posebank.validation.stats import write_stats

    stats = write_stats(h36m_cache, tmp_path / "s.json", tmp_path / "s.csv", VALIDATION, chunk_rows=7)
    sizes, splits = _check(stats, h36m_cache)
    assert splits == {"train": 56, "val": 0, "test": 16}  # the fixture's, as the other validation tests know it
    assert stats["validation"] == VALIDATION
    assert json.loads((tmp_path / "s.json").read_text()) == stats
    _check_histogram(tmp_path / "s.csv", sizes, splits)
    # deterministic: the same bytes whatever the block size
    write_stats(h36m_cache, tmp_path / "t.json", tmp_path / "t.csv", VALIDATION, chunk_rows=1000)
    assert (tmp_path / "t.json").read_bytes() == (tmp_path / "s.json").read_bytes()
    assert (tmp_path / "t.csv").read_bytes() == (tmp_path / "s.csv").read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # atomic writes leave nothing behind


def test_stats_of_a_2d_only_dataset(builds, tmp_path):
    """MPII: every example 2D-only, its valid joints counted in 2D; some boxes fall in another bin than H36M's."""
    from posebank.validation.stats import write_stats

    cache = builds.converted("mpii").cache
    stats = write_stats(cache, tmp_path / "s.json", tmp_path / "s.csv")
    sizes, splits = _check(stats, cache)
    assert stats["examples"] > 0 and stats["examples_3d"] == 0 and stats["examples_2d_only"] == stats["examples"]
    assert stats["joints_3d_valid_frac"] == 0.0 and 0 < stats["joints_2d_valid_frac"] <= 1
    assert "validation" not in stats
    _check_histogram(tmp_path / "s.csv", sizes, splits)


def test_quantiles_of_counts_are_numpy_quantiles():
    from posebank.validation.stats import quantile_of_counts

    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 10, 101, 1000):
        values = rng.integers(0, 50, n)
        counts = dict(zip(*np.unique(values, return_counts=True)))
        for q in (0.0, 0.05, 0.5, 0.95, 1.0):
            assert quantile_of_counts(counts, q) == pytest.approx(np.quantile(values, q), abs=1e-9)
    assert quantile_of_counts({}, 0.5) is None


def _stage_params(cache_root: Path, tmp_path: Path, **validate) -> dict:
    from conftest import H36M_SMALL_PARAMS

    gx = tmp_path / "expectations"
    shutil.copytree(REPO / "expectations", gx, ignore=shutil.ignore_patterns("uncommitted"))
    return {"datasets": {"h36m": {"raw": str(tmp_path / "raw"), "family": "h36m", **H36M_SMALL_PARAMS}},
            "pipeline": {"interim": str(tmp_path / "interim"), "cache": str(cache_root),
                         "reports": str(tmp_path / "reports"), "expectations": str(gx)},
            "validate": {"image_sample_size": 10, **validate}}


def test_validate_stage_writes_the_stats_also_when_validation_fails(h36m_cache, tmp_path):
    """The stage's stats carry its own report's counts; a failed validation still writes them, then fails."""
    from posebank.pipeline.run import run_stage
    from posebank.validation.validate import ValidationFailed

    reports = tmp_path / "reports"
    with pytest.raises(ValidationFailed):
        run_stage("validate", "h36m", _stage_params(h36m_cache.parent, tmp_path, expected_counts={"h36m": 73}))
    report = json.loads((reports / "validation" / "h36m.json").read_text())
    stats = json.loads((reports / "stats" / "h36m.json").read_text())
    assert not report["success"] and stats["validation"]["expectations_failed"] == report["expectations_failed"] == 1
    assert stats["validation"] == {"pass_rate": round(report["pass_rate"], 4), **{
        k: report[k] for k in ("expectations", "expectations_passed", "expectations_failed")}}
    assert stats["validation"]["pass_rate"] < 1
    sizes, splits = _check(stats, h36m_cache)
    _check_histogram(reports / "stats" / "h36m_boxes.csv", sizes, splits)


def test_an_unwritable_stats_folder_fails_before_the_work(h36m_cache, tmp_path):
    """The stats outputs are probed with the stage's other outputs: one-line error, exit status 2, no report."""
    import subprocess
    import sys

    params = _stage_params(h36m_cache.parent, tmp_path)
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "stats").write_text("a file where the stats folder goes")
    work = tmp_path / "work"
    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    r = subprocess.run([sys.executable, str(REPO / "stages" / "validate.py"), "h36m"], cwd=work,
                       capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / 'reports' / 'stats'}: "), r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "reports" / "validation" / "h36m.json").exists()


@pytest.mark.slow
def test_dvc_metrics_diff_shows_a_rebuilds_counts_and_plots_list_the_boxes(h36m_raw, tmp_path):
    """H36M (one training, one test subject) through `dvc repro validate@h36m`; the metrics committed, the test
    subject's frame step halved and the stage rerun: `dvc metrics diff` shows the test count going from the old
    cache's to the new one's, and `dvc plots show` / `dvc plots diff` render the box histogram."""
    from pipeline.test_dvc import copy_repo, sh
    from posebank.core.store import Cache

    git = ("git", "-c", "user.name=t", "-c", "user.email=t@t")
    repo = copy_repo(tmp_path / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["datasets"] = {"h36m": {**params["datasets"]["h36m"], "train_subjects": [1], "test_subjects": [9]}}
    params["segment"]["backend"] = "none"
    params["validate"]["image_sample_size"] = 20
    params["merges"], params["subsets"], params["exports"], params["merge_exports"] = {}, {}, {}, {}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc = yaml.safe_load((repo / "dvc.yaml").read_text())
    dvc["stages"].pop("refit_config", None)  # over ReFit's exports, not in this workspace
    (repo / "dvc.yaml").write_text(yaml.safe_dump(dvc, sort_keys=False))
    shutil.copytree(h36m_raw, repo / "data/raw/h36m")
    sh(*git, "commit", "-qam", "h36m only", cwd=repo)

    out = sh("dvc", "repro", "validate@h36m", cwd=repo)
    assert "Running stage 'validate@h36m'" in out
    cache = repo / "data/cache/h36m"
    with Cache(cache) as c:
        old = c.split_counts()
    stats = json.loads((repo / "reports/stats/h36m.json").read_text())
    assert stats["examples_per_split"] == old and stats["validation"]["pass_rate"] == 1.0
    # reports/ is ignored by git: the metrics are committed explicitly, with dvc.lock
    sh("git", "add", "reports/stats", "reports/validation", "dvc.lock", cwd=repo)
    sh(*git, "commit", "-qm", "built", cwd=repo)

    params["datasets"]["h36m"]["test_frame_step"] //= 2
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = sh("dvc", "repro", "validate@h36m", cwd=repo)
    assert "Running stage 'convert@h36m'" in out and "Running stage 'validate@h36m'" in out
    with Cache(cache) as c:
        new = c.split_counts()
    assert new["test"] > old["test"] and new["train"] == old["train"]
    diff = sh("dvc", "metrics", "diff", "--json", cwd=repo)
    diff = json.loads(diff[diff.index("{"):])
    changed = diff["reports/stats/h36m.json"]
    assert changed["examples_per_split.test"] == {"old": old["test"], "new": new["test"],
                                                  "diff": new["test"] - old["test"]}
    assert changed["examples"]["old"] == sum(old.values()) and changed["examples"]["new"] == sum(new.values())
    assert "examples_per_split.train" not in changed  # unchanged values are not listed
    shown = sh("dvc", "metrics", "diff", cwd=repo)
    assert "examples_per_split.test" in shown

    def plots_json(*args):
        text = sh("dvc", "plots", *args, "--json", cwd=repo)
        return json.JSONDecoder().raw_decode(text[text.index("{"):])[0]["data"]  # DVC's warnings may follow

    boxes = "reports/stats/h36m_boxes.csv"
    shown = plots_json("show")
    assert set(shown) >= {boxes, "reports/contact/h36m.png"}, list(shown)
    (plot,) = shown[boxes]
    assert plot["type"] == "vega" and plot["content"]["mark"]["type"] == "line"
    assert plot["content"]["encoding"]["x"]["field"] == "box_px"
    assert plot["content"]["encoding"]["y"]["field"] == "examples"
    rows = plot["content"]["data"]["values"]
    assert len(rows) == 64 and sum(int(r["examples"]) for r in rows) == sum(new.values())
    # the committed histogram against the workspace's: one line per revision, each summing to its cache's examples
    (plot,) = plots_json("diff", "HEAD")[boxes]
    assert sorted(plot["revisions"]) == ["HEAD", "workspace"]
    for rev, counts in (("HEAD", old), ("workspace", new)):
        rows = [r for r in plot["content"]["data"]["values"] if r["rev"] == rev]
        assert sum(int(r["test"]) for r in rows) == counts["test"]
