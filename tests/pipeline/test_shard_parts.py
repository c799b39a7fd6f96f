"""``--shard I/N``: N processes build disjoint parts of one stage's shard plan at once, and the run over all shards
assembles. The result is byte-identical to the single-process build, a part checks only its own upstream shards,
a crop part writes no cache index, and bad parts are usage errors."""

import subprocess
import sys

import pytest

from conftest import REPO
from helpers import folder_bytes
from posebank.core.errors import StageError, UsageError
from posebank.pipeline.plan import Part
from posebank.pipeline.run import run_stage
from staging import layout_of, params_for

PARTS = 4
SHARDED = ("frames", "detect", "segment", "crop")


def same_build(ref_params: dict, tmp, **over) -> dict:
    """The reference build's raw tree and shard plan, written under ``tmp``."""
    return params_for(ref_params["datasets"]["h36m"]["raw"], tmp, ref_params["pipeline"]["shard_frames"], **over)


def stage_cmd(stage: str, *extra: str) -> list[str]:
    return [sys.executable, str(REPO / "stages" / f"{stage}.py"), "h36m", "-q", *extra]


def test_part_parsing_and_positions():
    assert Part.parse("1/4").positions(10) == [1, 5, 9]
    assert Part.parse(" 0 / 1 ").positions(3) == [0, 1, 2]
    assert sorted(k for i in range(3) for k in Part.parse(f"{i}/3").positions(8)) == list(range(8))
    assert Part.parse("7/8").positions(5) == []  # more parts than shards: this part has nothing to do
    for bad in ("4/4", "-1/4", "1/0", "1", "a/b", "1/2/3"):
        with pytest.raises(UsageError, match="--shard"):
            Part.parse(bad)


@pytest.mark.slow
def test_four_parts_at_once_then_the_assembly_equal_the_single_process_build(reference, tmp_path, caplog):
    """detect and segment (the GPU stages) as four processes at once; frames and crop part by part in this
    process; after each stage the run over all shards (the assembly) finds nothing left to build."""
    import logging

    import yaml

    ref_params, ref = reference
    params = same_build(ref_params, tmp_path, segment={"backend": "grabcut"})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    layout = layout_of(params)
    run_stage("convert", "h36m", params)
    n_shards = len(list(ref.shard_folder("frames").glob("*.h5")))
    assert n_shards >= 6
    caplog.set_level(logging.INFO, logger="posebank")
    for stage in SHARDED:
        if stage in ("detect", "segment"):
            procs = [subprocess.Popen(stage_cmd(stage, "--shard", f"{i}/{PARTS}"), cwd=tmp_path,
                                      stderr=subprocess.PIPE, text=True) for i in range(PARTS)]
            logs = [p.communicate()[1] for p in procs]
            for i, (p, log) in enumerate(zip(procs, logs)):
                assert p.returncode == 0, log
                own = len(range(i, n_shards, PARTS))
                assert f"shard part {i}/{PARTS}, {own} of the plan's {n_shards} shards, {own} to build" in log
        else:
            for i in range(PARTS):
                run_stage(stage, "h36m", params, shard=f"{i}/{PARTS}")
        built = sorted(q.name for q in layout.shard_folder(stage).glob("*.h5"))
        assert built == sorted(q.name for q in ref.shard_folder(stage).glob("*.h5"))
        if stage == "crop":  # the parts built every shard, but the cache is not assembled yet
            assert not layout.index.exists()
        caplog.clear()
        run_stage(stage, "h36m", params)
        assert f"{stage} h36m: all {n_shards} shards already done" in caplog.text  # nothing more to build
    for stage in SHARDED:
        assert folder_bytes(layout.shard_folder(stage)) == folder_bytes(ref.shard_folder(stage)), stage
    assert layout.index.read_bytes() == ref.index.read_bytes()


@pytest.mark.slow
def test_a_part_checks_only_its_own_upstream_shards(reference, tmp_path):
    ref_params, _ = reference
    params = same_build(ref_params, tmp_path)
    layout = layout_of(params)
    run_stage("convert", "h36m", params)
    run_stage("frames", "h36m", params, shard="0/2")
    run_stage("detect", "h36m", params, shard="0/2")  # its frames shards are there: fine
    names = sorted(q.stem for q in layout.shard_folder("frames").glob("*.h5"))
    with pytest.raises(StageError, match=r"of the part's \d+ frames shards are missing or stale"):
        run_stage("detect", "h36m", params, shard="1/2")
    with pytest.raises(StageError, match="frames shards are missing"):
        run_stage("detect", "h36m", params)  # the assembly checks every shard
    run_stage("frames", "h36m", params)  # the rest of frames; the parts already built stay as they are
    assert set(names) < {q.stem for q in layout.shard_folder("frames").glob("*.h5")}
    result = run_stage("detect", "h36m", params)
    assert result is None and len(list(layout.shard_folder("detect").glob("*.h5"))) == len(
        list(layout.shard_folder("frames").glob("*.h5")))


def test_shard_on_a_stage_that_is_not_sharded_is_a_usage_error(tmp_path):
    for cmd in ([sys.executable, "-m", "posebank.cli", "stage", "validate", "h36m", "--shard", "0/2"],
                [sys.executable, str(REPO / "stages" / "detect.py"), "h36m", "--shard", "2/2"]):
        r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
        assert r.returncode == 2, r.stderr
        assert r.stderr.strip().startswith("error: --shard") and "Traceback" not in r.stderr
