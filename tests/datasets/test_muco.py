"""MuCo-3DHP composites (muco_3dhp): what is specific to them (the contract is checked for every dataset in
test_conformance.py)."""

import numpy as np
import pytest

from helpers import assert_no_output, copy_raw
from posebank.core.errors import DatasetError, ParamsError
from posebank.core.store import Cache
from posebank.datasets import RawLayoutError
from posebank.datasets.tdhp import common as tdhp
from posebank.datasets.tdhp import fixture, muco
from posebank.pipeline.run import convert

# four people per composite (the default), from the fixture's four subjects
PARAMS = {"n_composites": 10, "subjects": [1, 2, 3, 4], "sequences": [1], "cameras": [0, 1], "seed": 5}


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return muco.make_fixture(tmp_path_factory.mktemp("tdhp_for_muco"), seed=2, subjects=(1, 2, 3, 4), n_frames=30,
                             cameras=(0, 1, 2), sequences=(1,))  # camera 2 (a long lens) loses the walking people


@pytest.fixture(scope="module")
def plan(raw):
    return muco.plan(raw, PARAMS)


@pytest.fixture(scope="module")
def composites(raw):
    source = muco.frame_source(raw, PARAMS)
    return [next(source(muco.composite_source(k), [k + 1]))[1] for k in range(PARAMS["n_composites"])]


def person_frames(raw, cam, people):
    return [next(tdhp.load_sequence(raw, h.subject, h.sequence).read_frames(cam, [h.frame], muco.SELECTED_JOINTS))
            for h in people]


def test_defaults_are_posepiles_200k_set():
    # posepile's muco_3dhp_200k keeps the composites whose id (the script's 1-based image number) is below 200000
    assert muco.DEFAULT_PARAMS["n_composites"] == 199999
    assert muco.composite_id(0) == 1 and muco.composite_id(muco.DEFAULT_PARAMS["n_composites"] - 1) == 199999
    assert muco.composite_source(0) == "composites/000001"
    assert muco.DEFAULT_PARAMS["people_per_composite"] == [4, 4]  # the authors' script composes quadruples


def test_plan_is_deterministic_and_ordered_by_depth(raw, plan):
    assert plan == muco.plan(raw, PARAMS) and plan != muco.plan(raw, {**PARAMS, "seed": 6})
    seqs = {(s, 1): tdhp.load_sequence(raw, s, 1) for s in PARAMS["subjects"]}
    gammas = []
    for cam, people in plan:
        assert len(people) == 4 and len({h.subject for h in people}) == 4
        depths = [seqs[(h.subject, 1)].camera(cam).world_to_camera(
            seqs[(h.subject, 1)].world_coords(cam, muco.SELECTED_JOINTS)[h.frame, muco.PELVIS])[2] for h in people]
        assert depths == sorted(depths, reverse=True)  # farthest first
        gammas += [h.gamma for h in people]
    # one brightness jitter per person: gamma 0.7 + U(0, 0.1), the patched script's imadjust
    assert len(set(gammas)) == len(gammas) and all(0.7 <= g < 0.8 for g in gammas)
    assert np.ptp(gammas) > 0.05


def test_brightness_jitter_is_matlabs_imadjust():
    values = np.arange(256, dtype=np.uint8)
    for gamma in (0.7, 0.75, 0.8):
        expected = np.round(255 * (values / 255.0) ** gamma)  # imadjust(I, [], [], gamma) on uint8
        np.testing.assert_array_equal(muco.adjust_gamma(values, gamma), expected)
    assert muco.adjust_gamma(np.array([0, 64, 255], np.uint8), 0.75).tolist() == [0, 90, 255]  # brighter


def test_chair_masks_have_the_release_polarity(raw):
    """ChairMasks are bright except on the chair (posepile reads the chair as red < 32, its MATLAB pastes the person's
    frame where the chair mask is 0): the fixture writes them so and the reader finds the chair."""
    (f,) = person_frames(raw, 0, [muco.Person(1, 1, 0)])
    polygon = np.zeros(f.chair_alpha.shape, np.uint8)
    fixture.cv2.fillConvexPoly(polygon, fixture._chair_polygon(f.camera), 1, shift=4)
    chair = f.chair_mask
    assert 0.005 < chair.mean() < 0.1  # the chair, not the frame
    assert (chair & (polygon > 0)).sum() > 0.9 * polygon.sum() and (chair & (polygon == 0)).sum() < 0.1 * chair.sum()
    assert (f.chair_alpha > 32).mean() > 0.9  # read the other way round, nearly the whole frame would be "chair"
    # FGmasks: red is everything that is not green screen (person, chair, ceiling, markers); the person is one of its
    # components, the one that overlaps the person's box
    person = f.person_mask(tdhp.MUCO_MASK_THRESHOLD)
    assert f.fg_mask.sum() > 1.5 * person.sum() and not person[:10].any()
    px = np.round(f.image_coords).astype(int)
    assert person[px[:, 1], px[:, 0]].mean() > 0.9


def test_every_composed_person_keeps_a_mask(raw, plan, composites):
    """With the release's chair polarity only chairs and people are pasted: every person keeps a non-empty mask and,
    away from the nearer people's pastes, the composite is the farthest person's (jittered) frame."""
    n_alone = 0
    for (cam, people), frame in zip(plan, composites):
        assert sorted(frame.masks) == [0, 1, 2, 3]
        assert all(frame.masks[i].sum() > 20 for i in range(4)), [int(m.sum()) for m in frame.masks.values()]
        frames = person_frames(raw, cam, people)
        background = muco.adjust_gamma(frames[0].image, people[0].gamma).astype(int)
        pasted = np.zeros(background.shape[:2], bool)
        for f in frames[1:]:
            pasted |= (f.fg_alpha > 8) | (f.chair_alpha < 247)
        pasted = fixture.cv2.dilate(pasted.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        assert 0.6 < (~pasted).mean()
        # (the chair step uses the mask video's raw values as the script does: where ChairMasks red is 252 instead of
        # 255, 1.2 % of each nearer frame shows through)
        diff = np.abs(frame.image.astype(int) - background).max(-1)
        assert diff[~pasted].max() <= 12 and np.median(diff[~pasted]) == 0
        farthest_alone = frame.masks[0] & ~pasted
        assert np.all(diff[farthest_alone] <= 12)  # the farthest person is its own frame's figure
        n_alone += farthest_alone.sum()
        # inside the nearest person's mask the image is that person's jittered frame
        nearest = frame.masks[3] & (fixture.cv2.erode(frame.masks[3].astype(np.uint8), np.ones((7, 7))) > 0)
        jittered = muco.adjust_gamma(frames[3].image, people[3].gamma).astype(int)
        assert np.median(np.abs(frame.image.astype(int) - jittered)[nearest]) <= 2
        plain = frames[3].image.astype(int)
        assert np.median((jittered - plain)[nearest]) > 10  # the jitter brightens the grey figure
    assert n_alone > 1000


def test_masks_never_overlap_and_hidden_joints_are_not_visible(raw, plan, composites):
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


def test_convert_writes_every_person_with_mask_and_visibility(raw, composites, tmp_path):
    out = tmp_path / "muco"
    counts = convert("muco_3dhp", raw, out, PARAMS, progress=False)
    n_people = sum(len(f.masks) for f in composites)
    dropped = []
    muco.instances(raw, PARAMS, dropped)  # candidate frames left out: in the quarantine, but not people
    with Cache(out) as cache:
        assert counts["train"] == len(cache) == n_people == 40 and cache.joint_info.n_joints == 28
        assert len(cache.quarantine) == len(dropped)  # no person lost its mask
        cols = cache.read()
        assert sorted(set(cols["frame_index"])) == list(range(1, 11))  # composite ids 1..10
        for i in range(len(cache)):
            ex = cache[i]
            k = ex.frame_index - 1
            slot = int(np.sum(cols["frame_index"][:i] == ex.frame_index))  # rows follow the slot order
            assert cache.blob("source_path", i).decode() == f"composites/{ex.frame_index:06d}#{ex.frame_index}"
            np.testing.assert_array_equal(ex.visibility, composites[k].visibility[slot])
            assert ex.decode_mask().any()


def test_frame_source_names_an_unknown_composite(raw):
    source = muco.frame_source(raw, PARAMS)
    with pytest.raises(DatasetError, match=r"composites/000000#0: no such composite \(ids 1\.\.10\)"):
        next(source("composites/000000", [0]))


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
        convert("muco_3dhp", raw, tmp_path / "x", {**PARAMS, "subjects": [1, 5, 6], "people_per_composite": [2, 3]},
                progress=False)
    with pytest.raises(ParamsError, match=r"^datasets\.muco_3dhp\.people_per_composite: must be \[lo, hi\]"):
        convert("muco_3dhp", raw, tmp_path / "x", {**PARAMS, "people_per_composite": [3, 2]}, progress=False)
    with pytest.raises(ParamsError, match=r"^datasets\.muco_3dhp\.people_per_composite: 4 people per composite "
                                          r"need as many subjects"):
        muco.plan(raw, {**PARAMS, "subjects": [1, 2, 3]})
    with pytest.raises(ParamsError, match=r"^datasets\.muco_3dhp\.n_composites: must be at least 1"):
        muco.splits({"n_composites": 0})
    assert not list(tmp_path.iterdir())


def test_mask_videos_are_part_of_the_layout(raw, tmp_path):
    broken = copy_raw(raw, tmp_path)
    (broken / "S2/Seq1/ChairMasks/video_1.avi").unlink()
    out = tmp_path / "out" / "muco"
    with pytest.raises(RawLayoutError, match=r"muco_3dhp: raw dataset incomplete at .*: missing "
                                             r"S2/Seq1/ChairMasks/video_1\.avi$"):
        convert("muco_3dhp", broken, out, PARAMS, progress=False)
    assert_no_output(out)
