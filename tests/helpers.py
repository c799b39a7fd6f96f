"""Shared helpers of the converter tests."""

import shutil
from pathlib import Path


def copy_raw(raw: Path, tmp_path: Path) -> Path:
    """A private copy of a fixture raw tree that a test may break."""
    dst = tmp_path / "raw"
    shutil.copytree(raw, dst)
    return dst


def assert_no_output(out: Path):
    """A failed conversion leaves neither the output nor a temporary file beside it."""
    assert not out.exists()
    assert not out.parent.exists() or [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")] == []
