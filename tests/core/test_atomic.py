"""The one atomic-write helper: complete or absent, fsynced, leftovers of killed writers removed."""

import os
import subprocess
import sys

import pytest

from posebank.core.atomic import atomic_path, prepare_output, remove_stale_temps, temp_dir, write_json
from posebank.core.errors import OutputError


def test_success_renames_and_failure_leaves_nothing(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"abc")
        assert not target.exists() and tmp.parent == target.parent and tmp.name.startswith(".out.bin.pid")
    assert target.read_bytes() == b"abc"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"abc"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]
    write_json(tmp_path / "r.json", {"a": 1})
    assert (tmp_path / "r.json").read_text() == '{\n  "a": 1\n}\n'


def test_stale_temps_of_dead_writers_only(tmp_path):
    dead = tmp_path / ".x.h5.pid4194399.abc.tmp"
    dead_dir = tmp_path / ".x.h5.pid4194398.abc.tmpdir"
    alive = tmp_path / f".x.h5.pid{os.getpid()}.abc.tmp"
    other = tmp_path / ".hidden.tmp"
    for p in (dead, alive, other):
        p.write_bytes(b"x")
    dead_dir.mkdir()
    (dead_dir / "f").write_bytes(b"y")
    assert sorted(p.name for p in remove_stale_temps(tmp_path)) == sorted([dead.name, dead_dir.name])
    assert alive.exists() and other.exists() and not dead.exists() and not dead_dir.exists()


def test_a_killed_writer_leaves_a_temp_that_the_next_run_removes(tmp_path):
    code = ("import os, sys\nfrom posebank.core.atomic import atomic_path\n"
            "with atomic_path(sys.argv[1]) as t:\n    t.write_bytes(b'x' * 1000)\n    os._exit(9)\n")
    target = tmp_path / "out.h5"
    assert subprocess.run([sys.executable, "-c", code, str(target)]).returncode == 9
    left = [p for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].name.startswith(".out.h5.pid") and not target.exists()
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"done")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5"]


def test_prepare_output_errors(tmp_path):
    with pytest.raises(OutputError, match="is a directory"):
        prepare_output(tmp_path)
    with pytest.raises(OutputError, match="output file name"):
        prepare_output("")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot create the output folder"):
        prepare_output(tmp_path / "file" / "out.h5")
    with pytest.raises(OutputError, match="not writable"):
        prepare_output("/proc/posebank.h5")
    with temp_dir(beside=tmp_path / "o.h5") as d:
        (d / "a").write_text("1")
    assert not d.exists()
