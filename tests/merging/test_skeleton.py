"""The union skeleton: suffixes, first-occurrence order, edges, joints_as by name, joint globs, named skeletons."""

import numpy as np

from posebank import datasets
from posebank.core.skeleton import JointInfo
from posebank.merging.skeleton import NAMED_SKELETONS, local_edges, source_joints, union_skeleton


def test_suffixes_order_and_shared_names():
    a = JointInfo("pelv,lhip,rhip", "lhip-pelv-rhip")
    b = JointInfo("pelv,neck,head", "pelv-neck-head")
    c = JointInfo("neck,pelv,nose", "neck-nose")
    u = union_skeleton([source_joints(a, ""), source_joints(b, "h36m"), source_joints(c, "h36m")])
    assert u.joint_info.names == ("pelv", "lhip", "rhip", "pelv_h36m", "neck_h36m", "head_h36m", "nose_h36m")
    # identical names (after the suffix) are one union joint: c's neck and pelv are b's
    assert u.joint_maps[2].tolist() == [4, 3, 6]
    edges = {tuple(sorted((u.joint_info.names[i], u.joint_info.names[j]))) for i, j in u.joint_info.edges}
    assert edges == {("lhip", "pelv"), ("pelv", "rhip"), ("neck_h36m", "pelv_h36m"), ("head_h36m", "neck_h36m"),
                     ("neck_h36m", "nose_h36m")}
    assert list(u.joint_info.edges) == sorted(u.joint_info.edges)  # posepile's sorted edge list


def test_joints_as_maps_by_name_in_the_targets_order_and_leaves_absent_joints_out():
    muco = datasets.get("muco_3dhp").JOINT_INFO  # 28 joints
    tdhp_test = datasets.get("tdhp_test").JOINT_INFO  # 17 of them, in another order
    sj = source_joints(tdhp_test, "3dhp", target=muco)
    assert len(sj.names) == 17
    assert [n for n in muco.names if n in tdhp_test.names] == list(sj.names)  # the target's order
    for name, col in zip(sj.names, sj.source_index):
        assert tdhp_test.names[col] == name
    # the edges are the target's edges between the kept joints
    assert {frozenset((sj.names[a], sj.names[b])) for a, b in sj.edges} == {
        frozenset((muco.names[a], muco.names[b])) for a, b in muco.edges
        if muco.names[a] in sj.names and muco.names[b] in sj.names}


def test_tors_stands_for_spin_when_mapping():
    src = JointInfo("pelv,tors,neck", "pelv-tors-neck")
    dst = JointInfo("pelv,spin,neck", "pelv-spin-neck")
    sj = source_joints(src, "", target=dst)
    assert sj.names == ("pelv", "spin", "neck") and sj.source_index.tolist() == [0, 1, 2]


def test_joint_glob_keeps_matching_names_only():
    src = JointInfo("nose_coco,neck_coco,pelv,lhip", "nose_coco-neck_coco,pelv-lhip")
    sj = source_joints(src, "", pattern="*_coco")
    assert sj.names == ("nose_coco", "neck_coco") and sj.source_index.tolist() == [0, 1]
    assert sj.edges == ((0, 1),)


def test_small5_union_and_named_skeletons():
    ji = {n: datasets.get(n).JOINT_INFO for n in ("surreal", "h36m_alljoints", "muco_3dhp", "tdhp_test", "mupots")}
    muco = ji["muco_3dhp"]
    u = union_skeleton([source_joints(ji["surreal"], ""), source_joints(ji["h36m_alljoints"], "h36m"),
                        source_joints(muco, "3dhp"), source_joints(ji["tdhp_test"], "3dhp", target=muco),
                        source_joints(ji["mupots"], "3dhp", target=muco)])
    assert u.joint_info.n_joints == 24 + 25 + 28  # 3DHP test and MuPoTS joints are MuCo's
    sk = u.skeletons()
    assert set(sk) == {"smpl_24", "h36m_17", "h36m_25", "mpi_inf_3dhp_17", "mpi_inf_3dhp_28"}
    names = u.joint_info.names
    for name, idx in sk.items():
        suffix, joint_names = NAMED_SKELETONS[name]
        assert [names[i] for i in idx] == [f"{n}_{suffix}" if suffix else n for n in joint_names.split(",")]
    pairs, numbers = local_edges(u.joint_maps[3], u.joint_info)
    assert len(pairs) == len(numbers) and len(pairs) > 0
    assert np.all(np.isin(u.joint_info.edges and np.array(u.joint_info.edges)[numbers], u.joint_maps[3]))
