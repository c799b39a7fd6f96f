import numpy as np
import pytest

from posebank.convert import convert
from posebank.datasets import RawLayoutError, muco, tdhp
from posebank.store import Cache

PARAMS = {"n_composites": 10, "subjects": [1, 2, 3, 4], "sequences": [1], "cameras": [0, 1],
          "people_per_composite": [3, 4], "seed": 5}


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return tdhp.make_fixture(tmp_path_factory.mktemp("tdhp_for_muco"), seed=2, subjects=(1, 2, 3, 4), n_frames=30,
                             cameras=(0, 1), sequences=(1,))


@pytest.fixture(scope="module")
def composites(raw):
    source = muco.frame_source(raw, PARAMS)
    return [next(source(f"composites/{k:06d}", [k]))[1] for k in range(PARAMS["n_composites"])]


def test_plan_is_deterministic_and_ordered_by_depth(raw):
    a, b = muco.plan(raw, PARAMS), muco.plan(raw, PARAMS)
    assert a == b and a != muco.plan(raw, {**PARAMS, "seed": 6})
    seqs = {(s, 1): tdhp.load_sequence(raw, s, 1) for s in PARAMS["subjects"]}
    for cam, people in a:
        assert 3 <= len(people) <= 4 and len({h.subject for h in people}) == len(people)
        depths = [seqs[(h.subject, 1)].camera(cam).world_to_camera(
            seqs[(h.subject, 1)].world_coords(cam, muco.SELECTED_JOINTS)[h.frame, muco.PELVIS])[2] for h in people]
        assert depths == sorted(depths, reverse=True)  # farthest first


def test_masks_never_overlap_and_hidden_joints_are_not_visible(raw, composites):
    plan = muco.plan(raw, PARAMS)
    n_hidden_behind_nearer = 0
    for (cam, people), frame in zip(plan, composites):
        masks = [frame.masks[i] for i in range(len(people))]
        for i in range(len(masks)):
            for j in range(i + 1, len(masks)):
                assert not (masks[i] & masks[j]).any()
        nearest = len(people) - 1
        assert frame.visibility[nearest].all()  # nobody stands in front of the nearest person
        for i, h in enumerate(people):
            seq = tdhp.load_sequence(raw, h.subject, 1)
            xy = np.round(seq.camera(cam).project(
                seq.world_coords(cam, muco.SELECTED_JOINTS)[h.frame])).astype(int)
            nearer_bodies = np.zeros_like(masks[0])
            for m in masks[i + 1:]:
                nearer_bodies |= m
            for joint, (x, y) in enumerate(xy):
                if nearer_bodies[y, x]:  # a nearer pasted person covers this joint
                    assert frame.visibility[i][joint] == 0
                    n_hidden_behind_nearer += 1
                if frame.visibility[i][joint] == 1:
                    assert not nearer_bodies[y, x]
    assert n_hidden_behind_nearer > 0  # the fixture composites do contain occlusions


def test_convert_writes_every_visible_person_with_mask_and_visibility(raw, composites, tmp_path):
    out = tmp_path / "muco.h5"
    counts = convert("muco_3dhp", raw, out, PARAMS, progress=False)
    # people hidden entirely behind nearer ones have an empty mask: quarantined with the reason, not stored
    visible_slots = {k: [slot for slot, m in sorted(f.masks.items()) if m.any()] for k, f in enumerate(composites)}
    n_people = sum(len(f.masks) for f in composites)
    assert counts["train"] + counts.get("quarantined", 0) == n_people
    with Cache(out) as cache:
        assert len(cache) == counts["train"] and cache.joint_info.n_joints == 28
        assert all("empty person mask" in q["reason"] for q in cache.quarantine)
        cols = cache.read()
        for i in range(len(cache)):
            ex = cache[i]
            k = ex.frame_index
            slot = visible_slots[k][int(np.sum(cols["frame_index"][:i] == k))]  # rows follow the slot order
            np.testing.assert_array_equal(ex.visibility, composites[k].visibility[slot])
            assert ex.decode_mask().any()
    again = tmp_path / "again.h5"
    convert("muco_3dhp", raw, again, PARAMS, progress=False)
    assert again.read_bytes() == out.read_bytes()


def test_bad_input(raw, tmp_path):
    with pytest.raises(RawLayoutError, match="muco_3dhp: raw dataset incomplete at .*: missing S5/Seq1"):
        convert("muco_3dhp", raw, tmp_path / "x.h5", {**PARAMS, "subjects": [1, 5, 6], "people_per_composite": [2, 3]},
                progress=False)
    with pytest.raises(ValueError, match="people_per_composite"):
        convert("muco_3dhp", raw, tmp_path / "x.h5", {**PARAMS, "people_per_composite": [3, 2]}, progress=False)
    assert not list(tmp_path.iterdir())
