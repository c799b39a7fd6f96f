"""The source caches of small5 (surreal, h36m_alljoints, muco_3dhp, tdhp_test, mupots) converted from their fixture
trees once per session, and small5 merged from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from posebank import datasets

SMALL5 = ("surreal", "h36m_alljoints", "muco_3dhp", "tdhp_test", "mupots")
# source -> (fixture tree, make_fixture options, params overrides for the runtime's sake)
TREES = {"surreal": ("surreal", {"n_frames": 6}), "h36m": ("h36m", {"n_frames": 10}),
         "tdhp": ("tdhp", {"n_frames": 20}), "tdhp_test": ("tdhp_test", {"n_frames": 6}),
         "mupots": ("mupots", {"n_frames": 4})}
SOURCES = {"surreal": ("surreal", {}), "h36m_alljoints": ("h36m", {}), "muco_3dhp": ("tdhp", {"n_composites": 6}),
           "tdhp_test": ("tdhp_test", {}), "mupots": ("mupots", {})}


@pytest.fixture(scope="session")
def small5_caches(tmp_path_factory) -> Path:
    """A folder holding the five source caches of small5 (``<folder>/<dataset>/``)."""
    from posebank.pipeline.run import convert

    root = tmp_path_factory.mktemp("small5_sources")
    raws = {}
    for name, (tree, params) in SOURCES.items():
        if tree not in raws:
            writer, options = TREES[tree]
            raws[tree] = datasets.get(writer).make_fixture(root / f"raw_{tree}", 0, **options)
        convert(name, raws[tree], root / "cache" / name, params, progress=False)
    return root / "cache"


@pytest.fixture(scope="session")
def params():
    from conftest import REPO
    from posebank.core.settings import check_params, load_params

    return check_params(load_params(REPO / "params.yaml"))


@pytest.fixture(scope="session")
def small5(small5_caches, params, tmp_path_factory) -> Path:
    from posebank.merging.build import build_merge

    out = tmp_path_factory.mktemp("merged") / "small5.h5"
    build_merge("small5", params.merge("small5"), small5_caches, out)
    return out
