"""JTA: what is specific to it (the contract is checked for every dataset in test_conformance.py)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from helpers import assert_no_output, copy_raw
from marks import isolated, mark_centroid
from posebank.core.camera import Camera
from posebank.core.errors import ParamsError
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError, jta
from posebank.datasets.jta import fixture
from posebank.imaging.video import read_video_frames
from posebank.pipeline.run import convert

N_FRAMES = 5


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return jta.make_fixture(tmp_path_factory.mktemp("jta_raw"), seed=3)


@pytest.fixture(scope="module")
def cache(raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("jta_cache") / "jta"
    convert("jta", raw, out, None, progress=False)
    return out


def _person(x) -> int:
    return int(x.subject.split("person")[1])


# ------------------------------------------------------------------------------------------- the camera
def test_tool_focal_is_the_50_degree_field_of_view():
    # JTA-Mods get_2D_from_3D: f = (H / 2) cos(fov / 2) / sin(fov / 2) with fov = 50 and H = 1080
    f = 540 * math.cos(math.radians(25)) / math.sin(math.radians(25))
    assert abs(f - jta.TOOL_FOCAL_PX) < 1e-4 and round(f) == 1158  # the README's 1158
    assert jta.DEFAULT_PARAMS["focal_px"] == jta.TOOL_FOCAL_PX
    k = jta.intrinsics(jta.TOOL_FOCAL_PX)
    # the tool's centre (960, 540) in its corner convention is (959.5, 539.5) with pixel centres at integers
    np.testing.assert_array_equal(k, [[jta.TOOL_FOCAL_PX, 0, 959.5], [0, jta.TOOL_FOCAL_PX, 539.5], [0, 0, 1]])
    # the tool's rotation is a proper rotation (no mirror image)
    r = fixture.tool_rotation((-12.0, 2.0, 133.0))
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert abs(np.linalg.det(r) - 1) < 1e-12


def test_projection_onto_annotations_marks_and_crops(raw, cache):
    marks = fixture.fixture_marks(raw)
    rows = {seq: jta.read_annotations(raw / "annotations" / split / f"{seq}.json")
            for split, seq in fixture.SEQUENCES}
    ann_err, frame_err, crop_err, bones = [], [], [], []
    frames = {}
    ids = jta.JOINT_INFO.ids
    with Cache(cache) as c:
        assert c.split_counts() == {"train": 8, "val": 8, "test": 8}
        for i in range(len(c)):
            ex = c[i]
            source, frame_index = c.blob("source_path", i).decode().split("#")
            seq, frame_index, person = Path(source).stem, int(frame_index), _person(ex)
            wc = np.asarray(ex.world_coords, np.float64)
            camera = Camera(intrinsic_matrix=jta.intrinsics(jta.TOOL_FOCAL_PX), R=np.eye(3), t=np.zeros(3))
            projected = camera.project(wc)
            # the file's x2D y2D of this person in annotation frame frame_index + 1, shifted to pixel centres
            r = rows[seq]
            mine = r[(r[:, 0] == frame_index + 1) & (r[:, 1] == person)]
            assert mine[:, 2].tolist() == list(range(22))
            ann_err.extend(np.linalg.norm(projected - (mine[:, 3:5] - 0.5), axis=1))
            np.testing.assert_allclose(wc, mine[:, 5:8] * 1000, atol=1e-3)  # metres -> mm
            if source not in frames:
                frames[source] = dict(read_video_frames(raw / source, range(N_FRAMES)))
            drawn = np.concatenate(list(marks[seq][frame_index + 1].values()))
            alone = np.array([np.sort(np.linalg.norm(drawn - p, axis=1))[1] > 16 for p in projected])
            for p in projected[alone]:
                centroid = mark_centroid(frames[source][frame_index], p, 6)
                if centroid is not None:
                    frame_err.append(np.linalg.norm(centroid - p))
            crop = ex.decode_image()
            in_crop = ex.camera.project(wc)
            for p in in_crop[alone & isolated(in_crop, 12)]:
                centroid = mark_centroid(crop, p, 5)
                if centroid is not None:
                    crop_err.append(np.linalg.norm(centroid - p))
            bones.append(np.linalg.norm(wc[ids["rsho"]] - wc[ids["relb"]]))
    assert len(ann_err) == 24 * 22 and max(ann_err) < 0.02, max(ann_err)  # 6 significant digits in the file
    assert len(frame_err) > 100 and max(frame_err) < 1.0, max(frame_err)  # onto the marks in the videos
    assert len(crop_err) > 50 and max(crop_err) < 1.5, max(crop_err)  # through the crop cameras
    upper_arm_m = np.linalg.norm(fixture._TEMPLATE[ids["rsho"]] - fixture._TEMPLATE[ids["relb"]])  # 0.28 m
    np.testing.assert_allclose(bones, upper_arm_m * 1000, atol=0.05)  # stored in mm


def test_up_direction_is_the_median_neck_direction(raw):
    ups = fixture.fixture_up(raw)
    ids = jta.JOINT_INFO.ids
    inst = jta.instances(raw)
    for x in inst:
        up = x.camera.world_up
        assert abs(np.linalg.norm(up) - 1) < 1e-9
        # within a degree of the game's vertical, which the rolled, pitched camera sees away from -y
        assert np.degrees(np.arccos(np.clip(up @ ups[x.sequence], -1, 1))) < 1.0
        assert np.degrees(np.arccos(-up[1])) > 8
        wc = x.world_coords.astype(np.float64)
        assert (wc[ids["htop"]] - wc[ids["rank"]]) @ up > 1600  # a 1.8 m pedestrian, head up, in mm
    # the same camera for every person of a frame
    by_frame = {}
    for x in inst:
        by_frame.setdefault((x.sequence, x.frame_index), []).append(x.camera.world_up)
    assert all(np.array_equal(v[0], w) for v in by_frame.values() for w in v)
    # the median ignores an outlier: one person lying down does not tilt it
    people = [x.world_coords.astype(np.float64) for x in inst[:2]]
    lying = people[0][:, [2, 1, 0]]
    assert np.allclose(jta.frame_up([people[0], people[1], lying]), jta.frame_up([people[0], people[1]]),
                       atol=0.05)
    np.testing.assert_array_equal(jta.frame_up([np.full((22, 3), np.nan)]), [0, -1, 0])


# ------------------------------------------------------------------------------------------- selection
def test_selection_follows_posepile(raw):
    dropped = []
    inst = jta.instances(raw, None, dropped)
    assert len(inst) == 24
    marker = json.loads((raw / ".posebank-fixture").read_text())
    for split, seq in fixture.SEQUENCES:
        mine = [x for x in inst if x.sequence == seq]
        assert {x.split for x in mine} == {split} and {x.source for x in mine} == {f"videos/{split}/{seq}.mp4"}
        people = sorted({_person(x) for x in mine})
        assert len(people) == 2 and len(marker["marks"][seq]["1"]) == 3  # the hidden third person: left out
        kept = {p: [x.frame_index for x in mine if _person(x) == p] for p in people}
        # one walks 15 cm per frame (always kept); one stands still in annotation frames 1-3 (kept in 1 only)
        assert sorted(kept.values()) == [[0, 1, 2, 3, 4], [0, 3, 4]]
    assert [(d.where, d.count) for d in dropped] == [
        (f"annotations/{split}/{seq}.json", N_FRAMES) for split, seq in fixture.SEQUENCES]
    assert all("fewer than 5 valid joints" in d.reason for d in dropped)
    ids = jta.JOINT_INFO.ids
    walker = [x for x in inst if x.subject.startswith("seq_7/") and x.frame_index == 1]
    assert len(walker) == 1
    vis = walker[0].visibility
    assert vis[ids["rwri"]] == 0 and vis[ids["lkne"]] == 0 and vis.sum() == 20  # occluded, self-occluded
    assert np.isfinite(walker[0].world_coords).all()  # occluded joints keep their coordinates
    # the box: the valid joints' projections (the occluded wrist is not in it, the self-occluded knee is)
    pts = walker[0].camera.project(walker[0].world_coords)
    valid = np.ones(22, bool)
    valid[ids["rwri"]] = False
    lo, hi = pts[valid].min(0), pts[valid].max(0)
    np.testing.assert_allclose(walker[0].bbox, [*lo, *(hi - lo)], atol=1e-3)  # float32 joints
    keys = [(x.split, int(x.sequence[4:]), x.frame_index, x.person_index) for x in inst]
    assert keys == sorted(keys, key=lambda k: (["train", "val", "test"].index(k[0]), *k[1:]))
    # no sampling: every person-frame with 5 valid joints; 4 valid joints suffice for the hidden one
    assert len(jta.instances(raw, {"adaptive_sampling_mm": 0.0})) == 3 * 2 * N_FRAMES
    assert len(jta.instances(raw, {"adaptive_sampling_mm": 0.0, "min_valid_joints": 4})) == 3 * 3 * N_FRAMES
    assert {x.frame_index for x in jta.instances(raw, {"frame_step": 2, "adaptive_sampling_mm": 0.0})} == {0, 2, 4}
    only = jta.instances(raw, {"splits": ["val"]})
    assert {x.split for x in only} == {"val"} and jta.splits({"splits": ["val", "train"]}) == ("train", "val")
    assert {x.sequence for x in jta.instances(raw, {"sequences": ["seq_430"]})} == {"seq_430"}


def test_focal_knob(raw):
    wide = jta.instances(raw, {"focal_px": 1167.0})
    base = jta.instances(raw)
    assert [(x.source, x.frame_index, _person(x)) for x in wide] == [(x.source, x.frame_index, _person(x))
                                                                     for x in base]
    shift = [np.abs(a.camera.project(a.world_coords) - b.camera.project(b.world_coords)).max()
             for a, b in zip(wide, base)]
    # posepile's 1167 misses the annotations' 2D by several pixels away from the frame centre
    assert max(shift) > 3
    assert wide[0].camera.intrinsic_matrix[0, 0] == 1167.0


def test_detection_rule_is_posepiles():
    import dataclasses

    import yaml

    from conftest import REPO
    from posebank.core.settings import check_params
    from posebank.vision.detect import select_boxes

    checked = check_params(yaml.safe_load((REPO / "params.yaml").read_text()), source="params")
    dp = dataclasses.replace(checked.detect.for_dataset("jta"), backend="hog")  # any detector
    assert (dp.rule, dp.min_match_iou, dp.max_area_ratio, dp.min_detection_side, dp.fallback) == (
        "match", 0.1, 2.0, 100.0, "drop")
    gt = np.array([[500.0, 300.0, 40.0, 120.0], [900.0, 300.0, 30.0, 90.0]])
    dets = np.array([[498.0, 296.0, 46.0, 130.0, 0.9],  # matches person 0, long side 130 px: used
                     [899.0, 299.0, 33.0, 95.0, 0.8]])  # matches person 1, long side 95 px: not used
    (box0, src0), (box1, src1) = select_boxes(gt, dets, dp)
    assert src0 == "detection" and np.array_equal(box0, dets[0, :4])
    assert src1 == "dropped" and box1 is None
    # twice the area is too big, IoU 0.1 too little
    assert select_boxes(gt[:1], [[480.0, 280.0, 80.0, 160.0, 0.9]], dp)[0][1] == "dropped"
    assert select_boxes(gt[:1], [[536.0, 300.0, 40.0, 120.0, 0.9]], dp)[0][1] == "dropped"


# ------------------------------------------------------------------------------------------- errors
def test_missing_files_are_named(raw, tmp_path):
    broken = copy_raw(raw, tmp_path)
    (broken / "videos/val/seq_301.mp4").unlink()
    with pytest.raises(RawLayoutError, match="missing videos/val/seq_301.mp4"):
        jta.check_layout(broken)
    jta.check_layout(broken, {"splits": ["train", "test"]})
    with pytest.raises(RawLayoutError, match=r"missing annotations/<train\|val\|test>/seq_9.json"):
        jta.instances(broken, {"sequences": ["seq_9"]})
    (broken / "annotations/test/seq_430.json").unlink()
    with pytest.raises(RawLayoutError, match=r"annotations/test/seq_<n>.json"):
        jta.check_layout(broken, {"splits": ["test"]})
    out = tmp_path / "out" / "jta"
    with pytest.raises(RawLayoutError):
        convert("jta", broken, out, None, progress=False)
    assert_no_output(out)


def test_bad_files_are_named(raw, tmp_path):
    broken = copy_raw(raw, tmp_path)
    path = broken / "annotations/train/seq_7.json"
    rows = json.loads(path.read_text())
    for bad, problem in (([r[:9] for r in rows], "rows have shape"),
                         ([*rows[:3], [1.0, 5.0, 22.0, *rows[3][3:]]], "row 3 is not"),
                         ([*rows[:3], [0.0, *rows[3][1:]]], "row 3 is not"),
                         ({"frames": rows}, "not a list of rows")):
        path.write_text(json.dumps(bad))
        with pytest.raises(RawFileError, match=problem) as e:
            jta.instances(broken)
        assert e.value.path == path
    path.write_text(json.dumps(rows)[:-1000])
    out = tmp_path / "out" / "jta"
    with pytest.raises(RawFileError, match="unreadable annotation file: not valid JSON"):
        convert("jta", broken, out, None, progress=False)
    assert_no_output(out)


def test_bad_params():
    for key, value in (("splits", ["training"]), ("splits", []), ("sequences", ["7"]), ("frame_step", 0),
                       ("focal_px", 0.0), ("min_valid_joints", 23), ("adaptive_sampling_mm", -1.0)):
        with pytest.raises(ParamsError) as e:
            jta.check_params({key: value})
        assert e.value.where == f"datasets.jta.{key}"
