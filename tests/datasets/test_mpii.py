"""MPII Human Pose: what is specific to it (the contract is checked for every dataset in test_conformance.py)."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from conftest import sample
from helpers import assert_no_output, copy_raw
from marks import mark_errors
from posebank.core.bodymodel import rodrigues
from posebank.core.errors import ParamsError
from posebank.core.jpeg import encode_jpeg
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError, mpii
from posebank.datasets.mpii import converted, eft, fixture, release
from posebank.imaging.video import read_image
from posebank.pipeline.run import convert

REAL_JSON = "mpii/mpii_annotations_sample.json"
EFT = fixture.EFT_FILE
# what the fixture's RECIPES give with the default params: persons per split, and the persons dropped
N_TRAIN, N_VAL = 6, 2
DROPPED = {
    (3, 0): "person 0: joint id 2 is annotated twice",
    (1, 2): "person 2: not annotated (no annopoints)",
    (4, 0): "person 0: not annotated (no annopoints)",
    (4, 1): "person 1: not annotated (no annopoints)",
    (5, 0): "person 0: no labelled joint",
    (6, 0): "person 0: joint id 16 is not one of 0..15",
}


@pytest.fixture(scope="module")
def mpii_raw(tmp_path_factory) -> Path:
    return mpii.make_fixture(tmp_path_factory.mktemp("mpii_raw"), seed=3)


@pytest.fixture(scope="module")
def truth(mpii_raw) -> dict:
    return json.loads((mpii_raw / fixture.FIXTURE_MARKER).read_text())


@pytest.fixture(scope="module")
def mpii_cache(mpii_raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mpii_cache") / "mpii"
    convert("mpii", mpii_raw, out, {"eft": EFT}, progress=False)
    return out


def by_key(instances):
    return {(i.source.split("/")[1], i.person_index): i for i in instances}


def person_truth(truth, name, rect):
    image = next(im for im in truth["images"] if im["name"] == name)
    return image, image["people"][rect]


# ------------------------------------------------------------------------------------------- real sample
def test_real_json_sample_values():
    """mmpose's tests/data/mpii/test_mpii.json: the first five persons of the json conversion's val file."""
    path = sample(REAL_JSON)
    raw = json.loads(path.read_text())
    people = converted.read_converted(path)
    assert len(people) == len(raw) == 5
    assert [p.image for p in people] == ["005808361.jpg", "052475643.jpg", "051423444.jpg", "004645041.jpg",
                                         "060754485.jpg"]
    assert [p.n_labelled for p in people] == [16, 16, 14, 14, 16]
    for p, r in zip(people, raw):
        labelled = np.array(r["joints_vis"]) == 1
        np.testing.assert_array_equal(p.keypoints[labelled], np.array(r["joints"])[labelled])
        assert np.isnan(p.keypoints[~labelled]).all()
        np.testing.assert_array_equal(np.array(r["joints"])[~labelled], -1)  # unlabelled joints are [-1, -1]
        np.testing.assert_array_equal(p.objpos, r["center"])
        assert p.scale == r["scale"] and p.rect == 0 and p.visibility is None and not p.problem
    # persons 2 and 3 lack both ankles (ids 0 and 5): joints_vis marks labelled joints, not visible ones
    assert [np.flatnonzero(np.isnan(p.keypoints[:, 0])).tolist() for p in people] == [[], [], [0, 5], [0, 5], []]
    first = people[0]
    np.testing.assert_array_equal(first.keypoints[8], [982.7591, 235.9694])  # upper neck, fractional in the .mat
    np.testing.assert_array_equal(first.keypoints[9], [962.2409, 80.0306])  # head top
    # pose-hg-train's data/mpii/annot/valid.h5 (princeton-vl/pose-hg-train@2fef691) holds these persons with
    # center + (0, 15 scale) and 1.25 scale: what eft.py assumes of EFT's (SPIN's train.h5) centres
    hourglass = {0: ([966.0, 410.77731840074193], 5.898109866728492),
                 1: ([316.0, 246.42753109921546], 2.2022942582679548),
                 2: ([1030.0, 443.08849541023795], 3.9240412841864956)}
    for i, (centre, scale) in hourglass.items():
        p = people[i]
        np.testing.assert_allclose(p.objpos + (0, eft.HOURGLASS_SHIFT * p.scale), centre, atol=2e-5)
        assert 1.25 * p.scale == pytest.approx(scale, abs=1e-6)
    # ... and the release's is_visible ('visible'): person 2's right wrist and elbow are labelled but not visible,
    # while the json's joints_vis marks them 1
    hourglass_visible = [0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1]
    assert raw[2]["joints_vis"][10:12] == [1, 1] and hourglass_visible[10:12] == [0, 0]
    assert np.isfinite(people[2].keypoints[10:12]).all()


def test_real_json_sample_boxes():
    people = converted.read_converted(sample(REAL_JSON))
    params = mpii.check_params({})
    # posepile make_dataset / mmpose: centre = objpos moved down by 0.075 x 200 scale, side 200 scale; 0-based
    box = mpii.person_box(people[0], params)[0]
    side = 200 * 4.718488
    np.testing.assert_allclose(box, [966 - 1 - side / 2, 340 - 1 + 0.075 * side - side / 2, side, side])
    # mmpose 1.x mpii_dataset.py: center[1] += 15 / 200 * scale * 200, center -= 1, bbox_cs2xyxy(center, scale)
    for p in people:
        s = p.scale * 200
        cx, cy = p.objpos[0] - 1, p.objpos[1] + 15 / 200 * s - 1
        x0, y0, w, h = mpii.person_box(p, params)[0]
        np.testing.assert_allclose([x0, y0, x0 + w, y0 + h], [cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2])
    # posepile make_mpii_yolo: the labelled joints' box grown 1.25 about its centre
    kbox = mpii.person_box(people[2], {**params, "box": "keypoints"})[0]
    pts = people[2].keypoints[np.isfinite(people[2].keypoints[:, 0])] - 1
    lo, hi = pts.min(0), pts.max(0)
    np.testing.assert_allclose(kbox, [*((lo + hi) / 2 - 1.25 * (hi - lo) / 2), *(1.25 * (hi - lo))])
    assert kbox[2] == pytest.approx(1.25 * (1072 - 842)) and kbox[3] == pytest.approx(1.25 * (650 - 181.3752))


def test_real_json_sample_as_a_tree(tmp_path):
    """The sample as mmpose's annotations/mpii_val.json of a raw tree; stand-in images of the sizes of mmpose's
    copies of these images (tests/data/mpii/*.jpg: 1280 x 720, one 854 x 480)."""
    root = tmp_path / "raw"
    (root / "annotations").mkdir(parents=True)
    shutil.copy(sample(REAL_JSON), root / "annotations" / "mpii_val.json")
    (root / "images").mkdir()
    sizes = {"052475643.jpg": (854, 480)}
    for p in converted.read_converted(sample(REAL_JSON)):
        w, h = sizes.get(p.image, (1280, 720))
        (root / "images" / p.image).write_bytes(encode_jpeg(np.zeros((h, w, 3), np.uint8)))
    layout = mpii.check_layout(root, {"splits": ["val"]})
    assert (layout.format, layout.val_json, layout.train_json) == ("json", "annotations/mpii_val.json", None)
    with pytest.raises(RawLayoutError, match=r"missing annot/train.json \(or annotations/mpii_train.json\)"):
        mpii.check_layout(root, {})
    dropped = []
    got = mpii.instances(root, {"splits": ["val"]}, dropped)
    assert len(got) == 5 and not dropped and {i.split for i in got} == {"val"}
    raw = {e["image"]: e for e in json.loads(sample(REAL_JSON).read_text())}
    for inst in got:
        e = raw[inst.source.split("/")[1]]
        assert inst.frame_index == int(e["image"][:-4]) and inst.intrinsics_only and inst.visibility is None
        labelled = np.array(e["joints_vis"]) == 1
        np.testing.assert_array_equal(inst.keypoints2d[labelled], np.array(e["joints"])[labelled] - 1)
        assert np.isnan(inst.keypoints2d[~labelled]).all() and np.isnan(inst.world_coords).all()
        w, h = sizes.get(e["image"], (1280, 720))
        np.testing.assert_allclose(inst.camera.intrinsic_matrix, [[np.hypot(w, h), 0, w / 2],
                                                                  [0, np.hypot(w, h), h / 2], [0, 0, 1]])
        np.testing.assert_array_equal(inst.camera.R, np.eye(3))
        assert inst.bbox[2] == inst.bbox[3] == pytest.approx(200 * e["scale"])


# ------------------------------------------------------------------------------------------- the .mat
def test_fixture_mat_has_the_release_layout(mpii_raw, truth):
    path = mpii_raw / mpii.MAT_FILE
    assert scipy.io.whosmat(path) == [("RELEASE", (1, 1), "struct")]
    annot = scipy.io.loadmat(path)["RELEASE"]
    assert set(annot.dtype.names) == {"annolist", "img_train", "version", "single_person", "act", "video_list"}
    n = len(fixture.RECIPES)
    # pose-hg-train src/misc/mpii.py's index paths
    assert annot["img_train"][0][0][0].shape == (n,)
    annolist = annot["annolist"][0][0][0]
    assert set(annolist.dtype.names) == {"image", "annorect", "frame_sec", "vididx"}
    assert [str(annolist["image"][i][0]["name"][0][0]) for i in range(n)] == [im["name"] for im in truth["images"]]
    rects = annolist["annorect"][0]
    assert set(rects.dtype.names) == {"x1", "y1", "x2", "y2", "annopoints", "scale", "objpos"}
    points = rects["annopoints"][0][0][0][0][0][0]  # partinfo: example['annopoints'][0][person][0][0][0][0]
    assert len(points) == 16 and {int(p["id"][0][0]) for p in points} == set(range(16))
    assert rects["objpos"][0][0][0][0]["x"][0][0] == truth["images"][0]["people"][0]["objpos"][0] + 1
    assert set(annolist["annorect"][2].dtype.names) == {"scale", "objpos"}  # a test image
    assert set(annolist["annorect"][4].dtype.names) == {"scale", "objpos"}  # a training image nobody annotated
    assert annolist["annorect"][7].size == 0  # an image without people
    # storage types as scipy returns the release's: integers compressed, fractional head points double,
    # is_visible as text, number or empty
    assert rects["x1"][0][0].dtype in (np.uint8, np.uint16) and rects["scale"][0][0].dtype == np.float64
    kinds = set()
    for i in range(n):
        r = annolist["annorect"][i]
        if r.size == 0 or "annopoints" not in r.dtype.names:
            continue
        for ap in r["annopoints"][0]:
            if ap.size == 0 or ap["point"][0][0].size == 0:
                continue
            for p in ap["point"][0][0][0]:
                kinds.add(("id", p["id"].dtype.name))
                kinds.add(("x", p["x"].dtype.kind))
                if "is_visible" in p.dtype.names:
                    kinds.add(("vis", p["is_visible"].dtype.kind, p["is_visible"].size))
    assert {("id", "uint8"), ("x", "u"), ("x", "f"), ("vis", "U", 1), ("vis", "u", 1), ("vis", "f", 0)} <= kinds
    single = annot["single_person"][0][0]
    assert single.shape == (n, 1) and single[3][0].reshape(-1).tolist() == [1, 2] and single[4][0].size == 0
    assert annot["act"][0][0].shape == (n, 1) and annot["video_list"][0][0].shape == (1, 3)


def test_read_release_against_the_fixture_truth(mpii_raw, truth):
    rel = release.read_release(mpii_raw / mpii.MAT_FILE)
    assert rel.version == "12" and len(rel.images) == len(truth["images"])
    for image, t in zip(rel.images, truth["images"]):
        assert (image.name, image.train, image.activity, image.category, image.video) == (
            t["name"], t["train"], t["activity"], t["category"], t["video"])
        assert image.single_person == tuple(k - 1 for k in t["single_person"])
        assert len(image.people) == len(t["people"])
        for person, pt in zip(image.people, t["people"]):
            np.testing.assert_array_equal(person.objpos, np.array(pt["objpos"]) + 1)
            assert person.scale == pt["scale"]
            if pt["kind"] in ("test", "unannotated", "duplicate_id", "bad_id"):
                assert person.problem
                continue
            if pt["kind"] != "test":
                np.testing.assert_array_equal(person.head_box, np.array(pt["head_box"]) + 1)
            assert person.problem == ""
            np.testing.assert_array_equal(person.keypoints, np.array(pt["joints"], float) + 1)  # 1-based
            want = np.full(16, 255)
            for k, v in pt["visibility"].items():
                want[int(k)] = 255 if v is None else v
            np.testing.assert_array_equal(person.visibility, want)
    # the kinds of visibility the fixture stores all come back: visible, occluded, unknown (empty is_visible)
    vis = np.concatenate([p.visibility for im in rel.images for p in im.people])
    assert {0, 1, 255} <= set(vis.tolist())


def test_posepile_style_reading_agrees(mpii_raw, truth):
    """posepile's make_dataset loop (src/posepile/ds/mpii/main.py) with its loader's settings (util/matlabfile.py:
    struct_as_record=False, squeeze_me=True) reads the fixture's persons where ``persons: single`` finds them."""
    s = scipy.io.loadmat(mpii_raw / mpii.MAT_FILE, struct_as_record=False, squeeze_me=True)["RELEASE"]
    found = {}
    for anno, is_train, rect_ids in zip(np.atleast_1d(s.annolist), s.img_train, s.single_person):
        if not is_train:
            continue
        annorect = np.atleast_1d(anno.annorect)
        for rect_id in np.atleast_1d(rect_ids) - 1:
            rect = annorect[rect_id]
            if "annopoints" not in rect._fieldnames or np.size(rect.annopoints) == 0:
                continue
            coords = np.full((16, 2), np.nan)
            for joint in np.atleast_1d(rect.annopoints.point):
                coords[joint.id] = [joint.x, joint.y]
            found[(anno.image.name, int(rect_id))] = coords
    ours = by_key(mpii.instances(mpii_raw, {"persons": "single"}))
    names = [im["name"] for im in truth["images"]]
    # posepile also takes the person with a doubled joint id (the later one wins) and one without any joint
    assert set(found) == set(ours) | {(names[3], 0), (names[5], 0)}
    assert np.isnan(found[(names[5], 0)]).all()
    for key, inst in ours.items():
        np.testing.assert_array_equal(found[key], inst.keypoints2d + 1)  # posepile keeps the 1-based pixels


def test_release_errors_name_the_file_and_field(tmp_path, mpii_raw):
    path = tmp_path / mpii.MAT_FILE
    scipy.io.savemat(path, {"RELEASE": {"img_train": np.ones((1, 2))}})
    with pytest.raises(RawFileError, match=r"RELEASE has no field 'annolist'") as e:
        release.read_release(path)
    assert e.value.where == str(path)
    scipy.io.savemat(path, {"SOMETHING": np.ones(2)})
    with pytest.raises(RawFileError, match=r"no 'RELEASE' variable \(has \['SOMETHING'\]\)"):
        release.read_release(path)
    mat = scipy.io.loadmat(mpii_raw / mpii.MAT_FILE)
    mat["RELEASE"][0, 0]["img_train"] = np.ones((1, 3), np.uint8)
    scipy.io.savemat(path, {"RELEASE": mat["RELEASE"]})
    with pytest.raises(RawFileError, match=r"RELEASE.img_train has 3 uint8 values for 10 images"):
        release.read_release(path)
    path.write_bytes((mpii_raw / mpii.MAT_FILE).read_bytes()[:1500])
    with pytest.raises(RawFileError, match="unreadable annotation file"):
        release.read_release(path)


# ------------------------------------------------------------------------------------------- selection
def test_instances_default(mpii_raw, truth):
    dropped = []
    got = mpii.instances(mpii_raw, None, dropped)
    assert sum(i.split == "train" for i in got) == N_TRAIN and sum(i.split == "val" for i in got) == N_VAL
    names = [im["name"] for im in truth["images"]]
    want = {(f"{mpii.MAT_FILE}#{names[i]}", reason) for (i, _), reason in DROPPED.items()}
    assert {(d.where, d.reason) for d in dropped} == want and all(d.count == 1 for d in dropped)
    assert [(i.source, i.person_index) for i in got] == sorted((i.source, i.person_index) for i in got)
    for key, inst in by_key(got).items():
        image, person = person_truth(truth, *key)
        assert inst.split == ("val" if person["val"] else "train")
        np.testing.assert_array_equal(inst.keypoints2d, person["joints"])  # 0-based: the file's pixels - 1
        assert inst.world_coords.shape == (16, 3) and np.isnan(inst.world_coords).all()
        side = 200 * person["scale"]
        cx, cy = person["objpos"][0], person["objpos"][1] + 0.075 * side
        np.testing.assert_allclose(inst.bbox, [cx - side / 2, cy - side / 2, side, side])
        w, h = image["size"]
        f = np.hypot(w, h)
        np.testing.assert_allclose(inst.camera.intrinsic_matrix, [[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]])
        assert inst.intrinsics_only and np.all(inst.camera.t == 0)
        assert (inst.sequence, inst.activity, inst.subject) == (image["video"], image["activity"], "")
        assert inst.frame_index == int(key[0][:-4]) and inst.body_model is None
    assert mpii.splits() == ("train", "val") and mpii.splits({"splits": ["val"]}) == ("val",)


def test_marks_sit_at_the_keypoints_in_the_raw_images(mpii_raw):
    errors, shifted = [], []
    for params, out in (({}, errors), ({"matlab_pixels": False}, shifted)):
        for inst in mpii.instances(mpii_raw, params):
            image = read_image(mpii_raw / inst.source)
            pts = inst.keypoints2d[np.isfinite(inst.keypoints2d[:, 0])]
            out.extend(mark_errors(image, pts, radius=5, min_distance=12))
    assert len(errors) > 60 and max(errors) < 0.3, max(errors)
    # the release's pixels are 1-based: used as they are (posepile), every joint is off by (1, 1)
    assert len(shifted) > 60 and min(shifted) > 1.1 and np.median(shifted) == pytest.approx(np.sqrt(2), abs=0.2)


def test_json_conversion_gives_the_same_persons(mpii_raw):
    from_mat = by_key(mpii.instances(mpii_raw, {"annotations": "mat"}))
    dropped = []
    from_json = mpii.instances(mpii_raw, {"annotations": "json"}, dropped)
    assert mpii.check_layout(mpii_raw, {"annotations": "json"}).files == ["annot/train.json", "annot/valid.json"]
    assert [(d.where.split("#")[0], d.reason) for d in dropped] == [
        ("annot/train.json", "person 0: no labelled joint (joints_vis all 0)")]
    assert len(from_json) == len(from_mat) == N_TRAIN + N_VAL
    mat_by_position = {(i.source, round(float(i.bbox[0]), 2)): i for i in from_mat.values()}
    for inst in from_json:
        twin = mat_by_position[(inst.source, round(float(inst.bbox[0]), 2))]
        assert twin.split == inst.split
        np.testing.assert_array_equal(inst.keypoints2d, twin.keypoints2d)
        np.testing.assert_allclose(inst.bbox, twin.bbox, atol=2e-4)  # the json rounds scale to 6 decimals
        assert inst.visibility is None and twin.visibility is not None
        assert inst.camera.allclose(twin.camera) and inst.sequence == inst.activity == ""


def test_mmpose_layout_and_auto_detection(tmp_path):
    root = mpii.make_fixture(tmp_path / "raw", seed=3, layout="mmpose", mat=False, eft=False)
    layout = mpii.check_layout(root)
    assert (layout.format, layout.files) == ("json", ["annotations/mpii_train.json", "annotations/mpii_val.json"])
    assert len(mpii.instances(root)) == N_TRAIN + N_VAL
    with pytest.raises(RawLayoutError, match=r"missing mpii_human_pose_v1_u12_1.mat \(annotations: mat\)"):
        mpii.check_layout(root, {"annotations": "mat"})
    with pytest.raises(ParamsError, match="'single' needs the release's .mat") as e:
        mpii.check_layout(root, {"persons": "single"})
    assert e.value.where == "datasets.mpii.persons"


def test_selection_params(mpii_raw, truth):
    names = [im["name"] for im in truth["images"]]
    single = by_key(mpii.instances(mpii_raw, {"persons": "single"}))
    assert set(single) == {(names[0], 0), (names[1], 1), (names[3], 1), (names[6], 1), (names[8], 0),
                           (names[8], 1), (names[9], 0)}
    dropped = []
    got = mpii.instances(mpii_raw, {"min_joints": 12}, dropped)
    assert len(got) == N_TRAIN + N_VAL - 2
    assert {d.reason for d in dropped} >= {"person 1: 10 labelled joints, fewer than min_joints (12)",
                                           "person 0: 1 labelled joints, fewer than min_joints (12)"}
    dropped = []
    got = by_key(mpii.instances(mpii_raw, {"box": "keypoints"}, dropped))
    assert (f"{mpii.MAT_FILE}#{names[9]}", "person 0: the labelled joints span no area: no keypoint box") in {
        (d.where, d.reason) for d in dropped}
    for key, inst in got.items():
        pts = np.array(person_truth(truth, *key)[1]["joints"])
        pts = pts[np.isfinite(pts[:, 0])]
        lo, hi = pts.min(0), pts.max(0)
        np.testing.assert_allclose(inst.bbox, [*((lo + hi) / 2 - 0.625 * (hi - lo)), *(1.25 * (hi - lo))])
    # posepile's make_dataset: no val split, every annotated training person is train; the val file is not needed
    raw = copy_raw(mpii_raw, mpii_raw.parent / "no_val")
    (raw / "annot" / "valid.json").unlink()
    got = mpii.instances(raw, {"val_persons": "none", "splits": ["train"]})
    assert len(got) == N_TRAIN + N_VAL and {i.split for i in got} == {"train"}
    with pytest.raises(RawLayoutError, match=r"missing annot/valid.json \(or annotations/mpii_val.json\)"):
        mpii.instances(raw)
    shutil.rmtree(raw.parent)
    # focal affine: posepile's axis-aligned crop, a near-orthographic camera
    inst = mpii.instances(mpii_raw, {"focal": "affine"})[0]
    w, h = (2 * inst.camera.intrinsic_matrix[:2, 2]).tolist()
    assert inst.camera.intrinsic_matrix[0, 0] == pytest.approx(1000 * np.hypot(w, h))


@pytest.mark.parametrize(("params", "key", "problem"), [
    ({"splits": ["test"]}, "splits", "MPII's test images have no released joints"),
    ({"splits": ["val"], "val_persons": "none"}, "splits", "val needs val_persons: json"),
    ({"box": "mask"}, "box", "must be one of objpos, keypoints"),
    ({"min_joints": 0}, "min_joints", "must be 1..16"),
    ({"keypoint_box_factor": 0.0}, "keypoint_box_factor", "must be positive"),
    ({"eft": 3}, "eft", "."),
])
def test_bad_params_are_named(params, key, problem):
    with pytest.raises(ParamsError, match=problem) as e:
        mpii.check_params(params)
    assert e.value.where == f"datasets.mpii.{key}"


def test_missing_and_broken_files_are_named(mpii_raw, tmp_path):
    raw = copy_raw(mpii_raw, tmp_path)
    name = mpii.instances(raw)[3].source.split("/")[1]
    (raw / "images" / name).unlink()
    with pytest.raises(RawLayoutError, match=f"missing images/{name}"):
        mpii.instances(raw)
    shutil.rmtree(raw / "images")
    with pytest.raises(RawLayoutError, match="missing images/"):
        mpii.check_layout(raw)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RawLayoutError, match=r"missing mpii_human_pose_v1_u12_1.mat \(or the json conversion"):
        mpii.check_layout(empty)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image": "1.jpg", "center": [1, 2], "scale": 1.0, "joints": [[0, 0]] * 16}]))
    with pytest.raises(RawFileError, match=r"entry 0 has no 'joints_vis'"):
        converted.read_converted(bad)
    bad.write_text(json.dumps([{"image": "1.jpg", "center": [1, 2], "scale": 1.0, "joints": [[0, 0]] * 15,
                                "joints_vis": [1] * 16}]))
    with pytest.raises(RawFileError, match=r"entry 0: 'joints' has shape \(15, 2\), expected \(16, 2\)"):
        converted.read_converted(bad)


def test_truncated_val_json_stops_the_conversion(mpii_raw, tmp_path):
    raw = copy_raw(mpii_raw, tmp_path)
    path = raw / "annot" / "valid.json"
    path.write_bytes(path.read_bytes()[:500])
    out = tmp_path / "out" / "mpii"
    with pytest.raises(RawFileError, match="unreadable annotation file: not JSON, or truncated") as e:
        convert("mpii", raw, out, None, progress=False)
    assert e.value.where == str(path)
    assert_no_output(out)


# ------------------------------------------------------------------------------------------- EFT
def test_eft_fits_attach_to_the_nearest_person(mpii_raw, truth):
    got = by_key(mpii.instances(mpii_raw, {"eft": EFT}))
    fits = {(f["image"], f["rect"]): f for f in truth["eft"] if f["matches"]}
    assert len(fits) == len(fixture.EFT_PEOPLE) == 4 and len(truth["eft"]) == 6
    for key, inst in got.items():
        if key not in fits:
            assert inst.body_model is None
            continue
        fit = inst.body_model
        assert (fit.model, fit.gender) == ("smpl", "neutral") and fit.root is None
        np.testing.assert_allclose(rodrigues(fit.pose.reshape(24, 3)), rodrigues(np.array(fits[key]["pose"])),
                                   atol=1e-9)
        np.testing.assert_allclose(fit.pose[:3], fits[key]["pose"][0], atol=1e-9)  # angle < pi: the same vector
        np.testing.assert_allclose(fit.betas, fits[key]["betas"])
        np.testing.assert_array_equal(fit.trans, 0)
    assert sum(i.body_model is not None for i in got.values()) == 4
    assert mpii.instances(mpii_raw, {"eft": None})[0].body_model is None  # eft: null = none


def test_eft_provenance_and_errors(mpii_raw, tmp_path):
    prov = mpii.provenance(mpii_raw, {"eft": EFT})
    digest = hashlib.sha256((mpii_raw / EFT).read_bytes()).hexdigest()
    assert prov["attached"] == [{"kind": "eft", "path": EFT, "sha256": digest}]
    assert prov["body_model"]["model"] == "smpl" and prov["annotations"]["format"] == "mat"
    assert prov["annotations"]["files"] == {
        f: hashlib.sha256((mpii_raw / f).read_bytes()).hexdigest() for f in (mpii.MAT_FILE, "annot/valid.json")}
    assert "attached" not in mpii.provenance(mpii_raw)
    with pytest.raises(RawFileError, match=r"EFT file not found \(datasets.mpii.eft\)"):
        mpii.instances(mpii_raw, {"eft": str(tmp_path / "none.json")})
    doc = json.loads((mpii_raw / EFT).read_text())
    path = tmp_path / "eft.json"
    path.write_text(json.dumps({**doc, "meta": {"dbname": "COCO2014-All"}}))
    with pytest.raises(RawFileError, match=r"EFT fits of 'COCO2014-All', not of MPII"):
        eft.read_eft(path)
    doc["data"][2]["parm_pose"][5] = (2 * np.eye(3)).tolist()
    path.write_text(json.dumps(doc))
    with pytest.raises(RawFileError, match=r"data\[2\]: parm_pose holds matrices that are not rotations"):
        eft.read_eft(path)
    del doc["data"][1]["bbox_center"]
    path.write_text(json.dumps(doc))
    with pytest.raises(RawFileError, match=r"data\[1\] has no 'bbox_center'"):
        eft.read_eft(path)


# ------------------------------------------------------------------------------------------- conversion
def test_conversion(mpii_raw, mpii_cache, truth):
    with Cache(mpii_cache) as cache:
        assert cache.split_counts() == {"train": N_TRAIN, "val": N_VAL, "test": 0}
        assert {q["path"] for q in cache.quarantine} >= {f"{mpii.MAT_FILE}#{im['name']}" for im in truth["images"]
                                                        if any(p["kind"] in ("unannotated", "bad_id")
                                                               for p in im["people"])}
        assert json.loads(cache.attrs["provenance"])["attached"][0]["path"] == EFT
        errors, n_fits = [], 0
        for i in range(len(cache)):
            ex = cache[i]
            assert not ex.has_extrinsics and np.isnan(ex.world_coords).all()
            assert ex.keypoints2d is not None and ex.image_size == ex.decode_image().shape[1::-1]
            pts = ex.keypoints2d[np.isfinite(ex.keypoints2d[:, 0])]
            errors.extend(mark_errors(ex.decode_image(), pts, radius=7, min_distance=18))
            if ex.body_model is not None:
                n_fits += 1
                orient, trans = ex.body_model_cam
                assert np.isnan(trans).all()  # no root: the camera-frame translation is unknown
        assert n_fits == 4
    assert len(errors) > 40 and max(errors) < 1.0, max(errors)  # the crops' keypoints sit on the drawn marks
