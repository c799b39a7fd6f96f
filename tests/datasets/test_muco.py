"""MuCo-3DHP composites (muco_3dhp): what is specific to them (the contract is checked for every dataset in
test_conformance.py)."""

import numpy as np
import pytest

from helpers import assert_no_output, copy_raw
from posebank.core.errors import ParamsError
from posebank.core.store import Cache
from posebank.datasets import RawLayoutError
from posebank.datasets.tdhp import common as tdhp
from posebank.datasets.tdhp import muco
from posebank.pipeline.run import convert

PARAMS = {"n_composites": 10, "subjects": [1, 2, 3, 4], "sequences": [1], "cameras": [0, 1],
          "people_per_composite": [3, 4], "seed": 5}


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return muco.make_fixture(tmp_path_factory.mktemp("tdhp_for_muco"), seed=2, subjects=(1, 2, 3, 4), n_frames=30,
                             cameras=(0, 1, 2), sequences=(1,))  # camera 2 (a long lens) loses the walking people


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
    dropped = []
    muco.instances(raw, PARAMS, dropped)  # candidate frames left out: in the quarantine, but not people
    with Cache(out) as cache:
        assert len(cache) == counts["train"] and cache.joint_info.n_joints == 28
        hidden = [q for q in cache.quarantine if "empty person mask" in q["reason"]]
        assert counts["train"] + len(hidden) == n_people
        assert len(cache.quarantine) == len(hidden) + len(dropped)
        cols = cache.read()
        for i in range(len(cache)):
            ex = cache[i]
            k = ex.frame_index
            slot = visible_slots[k][int(np.sum(cols["frame_index"][:i] == k))]  # rows follow the slot order
            np.testing.assert_array_equal(ex.visibility, composites[k].visibility[slot])
            assert ex.decode_mask().any()


def test_frames_that_cannot_be_candidates_are_dropped(raw):
    """Candidates are every 5th frame with all 28 joints inside the image; the others are reported per video."""
    params = {**PARAMS, "cameras": [0, 1, 2]}
    dropped = []
    plan = muco.plan(raw, params, dropped)
    assert {d.reason for d in dropped} == {muco.NOT_A_CANDIDATE}
    left_out = {d.where.split("#")[0]: d.count for d in dropped}
    n_truncated = 0
    for s in PARAMS["subjects"]:
        seq = tdhp.load_sequence(raw, s, 1)
        for cam in params["cameras"]:
            annot2 = seq.image_coords(cam, muco.SELECTED_JOINTS)[::5]
            outside = int(np.sum(~np.all((annot2 >= 0) & (annot2 < 512), axis=(1, 2))))
            assert left_out.get(tdhp.video_path(s, 1, cam), 0) == outside
            n_truncated += outside
        for cam, people in plan:
            for h in people:
                if h.subject == s:
                    xy = seq.image_coords(cam, muco.SELECTED_JOINTS)[h.frame]
                    assert np.all((xy >= 0) & (xy < 512))
    assert n_truncated == sum(left_out.values()) > 0


def test_bad_input(raw, tmp_path):
    with pytest.raises(RawLayoutError, match="muco_3dhp: raw dataset incomplete at .*: missing S5/Seq1"):
        convert("muco_3dhp", raw, tmp_path / "x.h5", {**PARAMS, "subjects": [1, 5, 6], "people_per_composite": [2, 3]},
                progress=False)
    with pytest.raises(ParamsError, match=r"^datasets\.muco_3dhp\.people_per_composite: must be \[lo, hi\]"):
        convert("muco_3dhp", raw, tmp_path / "x.h5", {**PARAMS, "people_per_composite": [3, 2]}, progress=False)
    with pytest.raises(ParamsError, match=r"^datasets\.muco_3dhp\.people_per_composite: 4 people per composite "
                                          r"need as many subjects"):
        muco.plan(raw, {**PARAMS, "subjects": [1, 2, 3]})
    with pytest.raises(ParamsError, match=r"^datasets\.muco_3dhp\.n_composites: must be at least 1"):
        muco.splits({"n_composites": 0})
    assert not list(tmp_path.iterdir())


def test_mask_videos_are_part_of_the_layout(raw, tmp_path):
    broken = copy_raw(raw, tmp_path)
    (broken / "S2/Seq1/ChairMasks/video_1.avi").unlink()
    out = tmp_path / "out" / "muco.h5"
    with pytest.raises(RawLayoutError, match=r"muco_3dhp: raw dataset incomplete at .*: missing "
                                             r"S2/Seq1/ChairMasks/video_1\.avi$"):
        convert("muco_3dhp", broken, out, PARAMS, progress=False)
    assert_no_output(out)
