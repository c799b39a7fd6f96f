"""Skeleton descriptions: joint names, stick-figure edges and the left/right mirror mapping.

Built from posepile-style strings::

    JointInfo('rhip,rkne,rank,lhip,lkne,lank,pelv', 'rank-rkne-rhip-pelv')

An edge string is a comma separated list of chains ``a-b-c``; every edge whose joints start with ``r``
(right) or ``l`` (left) also gets its mirrored edge (``l``/``r`` swapped) when the mirrored joints exist,
so one side describes both. Joint names are short codes (``pelv``, ``lsho``, ``rkne``, ``htop``); a
merged skeleton suffixes them with the source's tag (``rkne_h36m``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence


def _split_names(names: str | Sequence[str]) -> list[str]:
    if isinstance(names, str):
        return [n.strip() for n in names.split(",") if n.strip()]
    return [str(n) for n in names]


def mirror_name(name: str) -> str:
    """The name of the joint on the other side: ``lsho`` <-> ``rsho``, ``rkne_h36m`` <-> ``lkne_h36m``."""
    if name[:1] == "l":
        return "r" + name[1:]
    if name[:1] == "r":
        return "l" + name[1:]
    return name


@dataclasses.dataclass(frozen=True)
class JointInfo:
    names: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]

    def __init__(self, names: str | Sequence[str], edges: str | Iterable[tuple[int, int]] = ""):
        name_list = _split_names(names)
        if len(set(name_list)) != len(name_list):
            dupes = sorted({n for n in name_list if name_list.count(n) > 1})
            raise ValueError(f"duplicate joint names: {dupes}")
        index = {n: i for i, n in enumerate(name_list)}
        if isinstance(edges, str):
            pairs = []
            for chain in filter(None, (c.strip() for c in edges.split(","))):
                parts = chain.split("-")
                for a, b in zip(parts[:-1], parts[1:]):
                    for n in (a, b):
                        if n not in index:
                            raise ValueError(f"edge {chain!r} names unknown joint {n!r}")
                    pairs.append((index[a], index[b]))
            # add mirrored edges
            for a, b in list(pairs):
                ma, mb = mirror_name(name_list[a]), mirror_name(name_list[b])
                if ma in index and mb in index:
                    pairs.append((index[ma], index[mb]))
        else:
            pairs = [(int(a), int(b)) for a, b in edges]
        seen, unique = set(), []
        for a, b in pairs:
            key = (min(a, b), max(a, b))
            if a != b and key not in seen:
                seen.add(key)
                unique.append((a, b))
        for a, b in unique:
            if not (0 <= a < len(name_list) and 0 <= b < len(name_list)):
                raise ValueError(f"edge ({a}, {b}) out of range for {len(name_list)} joints")
        object.__setattr__(self, "names", tuple(name_list))
        object.__setattr__(self, "edges", tuple(unique))

    @property
    def n_joints(self) -> int:
        return len(self.names)

    @property
    def ids(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}

    @property
    def mirror_mapping(self) -> list[int]:
        """Index permutation that swaps left and right joints (identity for central joints)."""
        ids = self.ids
        return [ids.get(mirror_name(n), i) for i, n in enumerate(self.names)]

    @property
    def stick_figure_edges(self) -> tuple[tuple[int, int], ...]:
        return self.edges

    def index(self, name: str) -> int:
        return self.ids[name]

    def edge_string(self) -> str:
        return ",".join(f"{self.names[a]}-{self.names[b]}" for a, b in self.edges)

    def to_json(self) -> str:
        return json.dumps({"names": list(self.names), "edges": [list(e) for e in self.edges]})

    @classmethod
    def from_json(cls, text: str) -> JointInfo:
        d = json.loads(text)
        return cls(d["names"], [tuple(e) for e in d["edges"]])

    def select(self, names: Sequence[str]) -> JointInfo:
        """A sub-skeleton keeping only ``names`` (and the edges between them)."""
        ids = self.ids
        new_index = {ids[n]: i for i, n in enumerate(names)}
        edges = [(new_index[a], new_index[b]) for a, b in self.edges if a in new_index and b in new_index]
        return JointInfo(list(names), edges)
