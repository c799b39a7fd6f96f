"""The union skeleton of a merge and each source's joint map into it (posepile's merge_joint_infos_of_datasets).

A source's joints are first mapped onto another dataset's joint set when it says ``joints_as`` (by name, in the
target's order, posepile's ``joint_filtering.get_coord_mapping``: ``tors`` and ``spin`` stand for each other; target
joints the source lacks are simply absent: the merge is sparse), then filtered by the ``joints`` glob, then named
``<name>_<suffix>``. The union keeps the first occurrence of each name in source order; identical names across
sources are one union joint; edges are the union of every source's edges, sorted (posepile's order).

:data:`NAMED_SKELETONS` are posepile's named joint subsets (merging/create_skeleton_info_file.py): a merge stores,
for each one whose joints are all in its union, the union indices in the skeleton's order, so training code can
select e.g. the H36M 17 or the SMPL 24 joints.
"""

from __future__ import annotations

import dataclasses
import fnmatch

import numpy as np

from posebank.core.skeleton import JointInfo

# posepile joint_filtering.get_coord_mapping: names that stand for each other when mapping between joint sets
COMPATIBLE = {"tors": ("tors", "spin"), "spin": ("spin", "tors")}

# name -> (suffix, joint names in the skeleton's order; None: every union joint carrying the suffix)
NAMED_SKELETONS: dict[str, tuple[str, str | None]] = {
    "smpl_24": ("", "pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,"
                    "lelb,relb,lwri,rwri,lhan,rhan"),
    "h36m_17": ("h36m", "pelv,rhip,rkne,rank,lhip,lkne,lank,spin,neck,head,htop,lsho,lelb,lwri,rsho,relb,rwri"),
    "h36m_25": ("h36m", "rhip,rkne,rank,rfoo,rtoe,lhip,lkne,lank,lfoo,ltoe,spin,neck,head,htop,lsho,lelb,lwri,"
                        "lthu,lfin,rsho,relb,rwri,rthu,rfin,pelv"),
    "mpi_inf_3dhp_17": ("3dhp", "htop,neck,rsho,relb,rwri,lsho,lelb,lwri,rhip,rkne,rank,lhip,lkne,lank,pelv,spin,"
                                "head"),
    "mpi_inf_3dhp_28": ("3dhp", "thor,spi4,spi2,spin,pelv,neck,head,htop,lcla,lsho,lelb,lwri,lhan,rcla,rsho,relb,"
                                "rwri,rhan,lhip,lkne,lank,lfoo,ltoe,rhip,rkne,rank,rfoo,rtoe"),
    "coco_19": ("coco", "neck,nose,pelv,lsho,lelb,lwri,lhip,lkne,lank,rsho,relb,rwri,rhip,rkne,rank,leye,lear,reye,"
                        "rear"),
    "sailvos_26": ("sailvos", None), "gpa_34": ("gpa", None), "aspset_17": ("aspset", None),
    "bml_movi_87": ("bmlmovi", None), "mads_19": ("mads", None), "berkeley_mhad_43": ("bmhad", None),
    "total_capture_21": ("totcap", None), "jta_22": ("jta", None), "ikea_asm_17": ("ikea", None),
    "human4d_32": ("human4d", None), "smplx_42": ("smplx", None), "ghum_35": ("ghum", None),
    "lsp_14": ("3doh", None), "3dpeople_29": ("3dpeople", None), "umpm_15": ("umpm", None),
}


def suffixed(name: str, suffix: str) -> str:
    return f"{name}_{suffix}" if suffix else name


@dataclasses.dataclass(frozen=True)
class SourceJoints:
    """Which joints of a source cache go into the merge, under which local names (before the suffix)."""

    source_index: np.ndarray  # (J_local,) int: column of the source cache's world_coords for each local joint
    names: tuple[str, ...]  # local names (the target's names with joints_as), without the suffix
    edges: tuple[tuple[int, int], ...]  # between local joints
    suffix: str

    @property
    def union_names(self) -> list[str]:
        return [suffixed(n, self.suffix) for n in self.names]

    @property
    def joint_info(self) -> JointInfo:
        """The source's joints as stored in the merge (union names, local order)."""
        return JointInfo(self.union_names, self.edges)


def source_joints(source: JointInfo, suffix: str = "", target: JointInfo | None = None,
                  pattern: str | None = None) -> SourceJoints:
    """The joints of ``source`` a merge keeps: mapped onto ``target`` by name when given (posepile's
    convert_dataset; absent target joints left out), then those whose name matches ``pattern``."""
    if target is not None:
        src = source.ids
        index, names = [], []
        for name in target.names:
            found = next((src[n] for n in COMPATIBLE.get(name, (name,)) if n in src), None)
            if found is not None:
                index.append(found)
                names.append(name)
        kept = JointInfo(target.names, target.edges).select(names)
    else:
        index, kept = list(range(source.n_joints)), source
    if pattern is not None:
        keep = [i for i, n in enumerate(kept.names) if fnmatch.fnmatchcase(n, pattern)]
        index = [index[i] for i in keep]
        kept = kept.select([kept.names[i] for i in keep])
    return SourceJoints(np.asarray(index, np.int64), tuple(kept.names), tuple(kept.edges), suffix)


@dataclasses.dataclass(frozen=True)
class Union:
    joint_info: JointInfo
    joint_maps: list[np.ndarray]  # per source: union index of each local joint

    def skeletons(self) -> dict[str, list[int]]:
        """The named skeletons whose joints are all in the union -> their union indices (in skeleton order)."""
        ids = self.joint_info.ids
        out = {}
        for name, (suffix, joint_names) in NAMED_SKELETONS.items():
            if joint_names is None:
                tail = f"_{suffix}"
                wanted = [n for n in self.joint_info.names if n.endswith(tail)]
            else:
                wanted = [suffixed(n, suffix) for n in joint_names.split(",")]
            if wanted and all(n in ids for n in wanted):
                out[name] = [ids[n] for n in wanted]
        return out


def union_skeleton(sources: list[SourceJoints]) -> Union:
    """posepile's union: first occurrence order of the suffixed names, edges unioned and sorted."""
    names: dict[str, int] = {}
    for s in sources:
        for n in s.union_names:
            names.setdefault(n, len(names))
    maps = [np.array([names[n] for n in s.union_names], np.int64) for s in sources]
    edges = sorted({tuple(sorted((int(m[a]), int(m[b])))) for s, m in zip(sources, maps) for a, b in s.edges})
    return Union(JointInfo(list(names), edges), maps)


def local_edges(joint_map: np.ndarray, union: JointInfo) -> tuple[np.ndarray, np.ndarray]:
    """The union edges between joints of one source: (local endpoint pairs (E, 2), union edge numbers (E,))."""
    local = {int(u): j for j, u in enumerate(joint_map)}
    pairs, numbers = [], []
    for e, (a, b) in enumerate(union.edges):
        if a in local and b in local:
            pairs.append((local[a], local[b]))
            numbers.append(e)
    return np.asarray(pairs, np.int64).reshape(-1, 2), np.asarray(numbers, np.int64)
