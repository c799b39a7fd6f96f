import os
from pathlib import Path

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

REPO = Path(__file__).resolve().parent.parent
# real data samples, byte-exact copies from public repositories (tests/data/real/PROVENANCE.md)
SAMPLES = REPO / "tests" / "data" / "real"

# a small H36M fixture: one training and one test subject, enough frames for both frame steps
H36M_SMALL = {"subjects": [1, 9], "n_frames": 70}
H36M_SMALL_PARAMS = {"train_subjects": [1], "test_subjects": [9]}


def sample(relpath: str) -> Path:
    """A real sample file, ``tests/data/real/<relpath>``; a missing one is a failure (it is part of the repository)."""
    path = SAMPLES / relpath
    if not path.is_file():
        raise FileNotFoundError(f"real sample {path} is missing (tests/data/real/PROVENANCE.md lists the samples)")
    return path


@pytest.fixture(scope="session")
def h36m_raw(tmp_path_factory) -> Path:
    from posebank.datasets import h36m

    return h36m.make_fixture(tmp_path_factory.mktemp("h36m_raw"), seed=3, **H36M_SMALL)


@pytest.fixture(scope="session")
def h36m_cache(h36m_raw, tmp_path_factory) -> Path:
    from posebank.pipeline.run import convert

    out = tmp_path_factory.mktemp("h36m_cache") / "h36m"
    convert("h36m", h36m_raw, out, H36M_SMALL_PARAMS, progress=False)
    return out


@pytest.fixture(scope="session")
def builds(tmp_path_factory):
    """Every registered dataset's fixture tree and conversion, each made once and on first use (tests/builds.py)."""
    from builds import Builds

    return Builds(tmp_path_factory)


# small5: its five source caches converted from their fixture trees once per session, and small5 merged from them
SMALL5 = ("surreal", "h36m_alljoints", "muco_3dhp", "tdhp_test", "mupots")
# source -> (fixture tree, make_fixture options, params overrides for the runtime's sake)
SMALL5_TREES = {"surreal": ("surreal", {"n_frames": 6}), "h36m": ("h36m", {"n_frames": 10}),
         "tdhp": ("tdhp", {"n_frames": 20}), "tdhp_test": ("tdhp_test", {"n_frames": 6}),
         "mupots": ("mupots", {"n_frames": 4})}
SMALL5_SOURCES = {"surreal": ("surreal", {}), "h36m_alljoints": ("h36m", {}),
                  "muco_3dhp": ("tdhp", {"n_composites": 6}), "tdhp_test": ("tdhp_test", {}), "mupots": ("mupots", {})}


@pytest.fixture(scope="session")
def small5_caches(tmp_path_factory) -> Path:
    """A folder holding the five source caches of small5 (``<folder>/<dataset>/``)."""
    from posebank import datasets
    from posebank.pipeline.run import convert

    root = tmp_path_factory.mktemp("small5_sources")
    raws = {}
    for name, (tree, params) in SMALL5_SOURCES.items():
        if tree not in raws:
            writer, options = SMALL5_TREES[tree]
            raws[tree] = datasets.get(writer).make_fixture(root / f"raw_{tree}", 0, **options)
        convert(name, raws[tree], root / "cache" / name, params, progress=False)
    return root / "cache"


@pytest.fixture(scope="session")
def params():
    from posebank.core.settings import check_params, load_params

    return check_params(load_params(REPO / "params.yaml"))


@pytest.fixture(scope="session")
def small5(small5_caches, params, tmp_path_factory) -> Path:
    from posebank.merging.build import build_merge

    out = tmp_path_factory.mktemp("merged") / "small5.h5"
    build_merge("small5", params.merge("small5"), small5_caches, out)
    return out


@pytest.fixture(scope="session")
def reference(h36m_raw, tmp_path_factory):
    """An uninterrupted build of the small H36M fixture (every stage in one process, GrabCut masks: the stage whose
    randomness could differ between runs), two frames per shard (at least six shards); (params mapping, layout).
    Read-only: the interruption and shard-part tests compare their builds with it."""
    from posebank.pipeline.run import run_stage
    from staging import BUILD, layout_of, params_for

    tmp = tmp_path_factory.mktemp("reference")
    params = params_for(h36m_raw, tmp, shard_frames=2, segment={"backend": "grabcut"})
    for stage in BUILD:
        run_stage(stage, "h36m", params)
    return params, layout_of(params)
