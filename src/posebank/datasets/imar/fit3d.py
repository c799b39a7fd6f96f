"""Fit3D (Fieraru et al., CVPR 2021, "AIFit"): fitness exercises of one person, four cameras, 25 motion-captured joints.

The IMAR layout, readers and converter are the family's (:mod:`posebank.datasets.imar`); ``joints3d_25`` holds
(frames, 25, 3) of the one person.
"""

from __future__ import annotations

from pathlib import Path

import posebank.datasets.imar as imar
from posebank.datasets.base import DatasetInfo, Dropped, RawInstance

NAME = "fit3d"
N_PEOPLE = 1
INFO = DatasetInfo(
    name=NAME,
    full_name="Fit3D (fitness exercises)",
    homepage=imar.HOMEPAGES[NAME],
    licence=imar.LICENCE,
    citation=("M. Fieraru, M. Zanfir, S.-C. Pirlea, V. Olaru, C. Sminchisescu. AIFit: Automatic 3D "
              "Human-Interpretable Feedback Models for Fitness Training. CVPR 2021."),
)
JOINT_INFO = imar.JOINT_INFO
DEFAULT_PARAMS = dict(imar.DEFAULT_PARAMS)
RAW_INSTRUCTIONS = imar.raw_instructions(NAME)


def check_params(params: dict | None = None) -> dict:
    return imar.check_params(NAME, params)


def splits(params: dict | None = None) -> tuple[str, ...]:
    check_params(params)
    return imar.SPLITS


def check_layout(root, params: dict | None = None) -> list[imar.Sequence]:
    """Verify the raw tree; the selected (subject, action, cameras) in the info file's order."""
    return imar.check_layout(NAME, root, check_params(params))


def instances(root, params: dict | None = None, dropped: list[Dropped] | None = None) -> list[RawInstance]:
    """Every selected person instance (:func:`posebank.datasets.imar.make_instances`)."""
    return imar.make_instances(NAME, root, check_params(params), N_PEOPLE, dropped)


def make_fixture(root, seed: int = 0, **options) -> Path:
    """A miniature raw tree in the release's layout (:func:`posebank.datasets.imar.fixture.make_fixture`, which
    takes the ``options``)."""
    from posebank.datasets.imar.fixture import make_fixture as write

    return write(root, NAME, seed, **options)
