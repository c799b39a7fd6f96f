"""The reliability suite's shared pieces: seeds (a few in CI, more in ``make soak``) and the record of what each test
injected, checked and recovered, which ``scripts/soak.py`` sums up into its JSON summary.

Environment (set by ``scripts/soak.py``; unset in CI):

* ``POSEBANK_SOAK=1``: the longer version (more seeds, longer load runs);
* ``POSEBANK_SOAK_SEEDS=N``: seeds per fault-injection test under soak (default 5);
* ``POSEBANK_RELIABILITY_LOG=FILE``: every ``record(...)`` call appends one JSON line there.
"""

from __future__ import annotations

import json
import os

import pytest

SOAK = os.environ.get("POSEBANK_SOAK") == "1"


def seeds(ci: int = 1, soak: int | None = None) -> list[int]:
    """The seeds of a fault-injection test: ``ci`` of them in CI, ``POSEBANK_SOAK_SEEDS`` (or ``soak``) under soak."""
    n = int(os.environ.get("POSEBANK_SOAK_SEEDS", soak or 5)) if SOAK else ci
    return list(range(n))


def scaled(ci: float, soak: float) -> float:
    """A duration or count: ``ci`` in CI, ``soak`` under soak."""
    return soak if SOAK else ci


@pytest.fixture
def record(request):
    """``record(kind, **counts)``: one line of the soak summary, e.g. ``record("interruption", stage="crop",
    faults=1, recovered=1, bytes_compared=12345)`` or ``record("bad_input", case="nan joints", quarantined=3)``.
    Counts are numbers; strings name the case. Without POSEBANK_RELIABILITY_LOG it only checks the call."""
    log = os.environ.get("POSEBANK_RELIABILITY_LOG")

    def _record(kind: str, **fields) -> None:
        line = {"kind": kind, "test": request.node.nodeid, **fields}
        text = json.dumps(line, sort_keys=True)
        if log:
            with open(log, "a") as f:
                f.write(text + "\n")

    return _record
