"""Turning a params.yaml section into a settings dataclass."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping


def checked_fields(cls, d: Mapping | None, section: str) -> dict:
    """The mapping as keyword arguments for dataclass ``cls``; unknown keys are an error naming the section."""
    fields = {f.name for f in dataclasses.fields(cls)}
    d = dict(d or {})
    unknown = set(d) - fields
    if unknown:
        raise ValueError(f"unknown {section} parameters: {sorted(unknown)}; known: {sorted(fields)}")
    return d
