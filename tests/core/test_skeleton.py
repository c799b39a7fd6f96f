import pytest

from posebank.core.skeleton import JointInfo


def test_posepile_strings_with_mirrored_edges():
    ji = JointInfo("rhip,rkne,rank,lhip,lkne,lank,pelv,neck,htop", "htop-neck-pelv-rhip-rkne-rank")
    names = ji.names
    edges = {frozenset((names[a], names[b])) for a, b in ji.edges}
    assert frozenset(("rhip", "rkne")) in edges
    assert frozenset(("lhip", "lkne")) in edges  # added by mirroring
    assert frozenset(("pelv", "lhip")) in edges
    assert len(ji.edges) == 8
    assert [names[i] for i in ji.mirror_mapping] == ["lhip", "lkne", "lank", "rhip", "rkne", "rank", "pelv",
                                                     "neck", "htop"]


def test_json_round_trip_and_select():
    ji = JointInfo("rsho,relb,lsho,lelb,neck", "neck-rsho-relb")
    back = JointInfo.from_json(ji.to_json())
    assert back == ji
    sub = ji.select(["lsho", "lelb"])
    assert sub.names == ("lsho", "lelb") and sub.edges == ((0, 1),)


def test_errors():
    with pytest.raises(ValueError, match="duplicate"):
        JointInfo("pelv,pelv")
    with pytest.raises(ValueError, match="unknown joint 'head'"):
        JointInfo("pelv,neck", "pelv-head")
