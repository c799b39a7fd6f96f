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
