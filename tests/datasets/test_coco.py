"""COCO person keypoints: what is specific to it (the contract is checked for every dataset in test_conformance.py)."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import sample
from helpers import copy_raw
from marks import mark_errors
from posebank.core.bodymodel import rodrigues
from posebank.core.errors import ParamsError
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError, coco
from posebank.datasets.coco import eft as eft_io
from posebank.datasets.coco import selection
from posebank.datasets.coco.annotations import NOT_JSON, decode_segmentation, read_keypoint_file
from posebank.datasets.coco.fixture import EFT_FILE, MARK_RADIUS, SCENE
from posebank.pipeline.run import convert

REAL = "coco/person_keypoints_sample.json"
VAL = "annotations/person_keypoints_val2017.json"
TRAIN = "annotations/person_keypoints_train2017.json"


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return coco.make_fixture(tmp_path_factory.mktemp("coco_raw"), seed=4)


@pytest.fixture(scope="module")
def cache(raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("coco_cache") / "coco"
    counts = convert("coco", raw, out, {"eft": EFT_FILE}, progress=False)
    assert counts == {"train": 3, "val": 3, "quarantined": 6}
    return out


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def kept(raw, params) -> dict[str, list[tuple[str, int]]]:
    """The annotation ids kept per split, via the instances (person_index -> the file's annotation)."""
    out = {}
    for inst in coco.instances(raw, params):
        split_file = VAL if inst.split == "val" else TRAIN
        anns = [a for a in load(raw / split_file)["annotations"] if a["image_id"] == inst.frame_index]
        out.setdefault(inst.split, []).append(anns[inst.person_index]["id"])
    return out


# ------------------------------------------------------------------------------------------- the real sample
# the 14 annotations of mmpose's val2017 sample (4 images), by hand from the file: who each rule keeps
REAL_KEPT = {
    "posepile": {442619, 198196, 460541, 1717641, 543117},
    "spin": {442619, 460541, 488308, 1724673, 437295, 467657, 533949},  # all 12 body keypoints labelled
    "min_keypoints": {442619, 198196, 230195, 460541, 488308, 1717641, 1724673, 437295, 467657, 531914, 533949,
                      543117},  # all but the two annotations without keypoints (1202706, 508900)
}


def real_tree(tmp_path: Path) -> Path:
    """A raw tree holding the real sample as val2017's annotations and blank images of the annotated sizes."""
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    shutil.copy(sample(REAL), root / VAL)
    (root / "val2017").mkdir()
    for im in load(sample(REAL))["images"]:
        cv2.imwrite(str(root / "val2017" / im["file_name"]), np.zeros((im["height"], im["width"], 3), np.uint8))
    return root


def test_real_sample_reads():
    f = read_keypoint_file(sample(REAL))
    assert [(i.id, i.file_name, i.width, i.height) for i in f.images.values()] == [
        (785, "000000000785.jpg", 640, 425), (40083, "000000040083.jpg", 500, 333),
        (196141, "000000196141.jpg", 640, 429), (197388, "000000197388.jpg", 640, 392)]
    assert len(f.persons) == 14 and not any(p.iscrowd for p in f.persons)
    assert {i: len(ps) for i, ps in f.by_image().items()} == {785: 1, 40083: 3, 196141: 5, 197388: 5}
    # num_keypoints is the count of labelled keypoints in every entry
    assert all(p.num_keypoints == p.n_labelled for p in f.persons)
    assert sorted(p.n_labelled for p in f.persons) == [0, 0, 12, 13, 14, 15, 15, 15, 15, 16, 16, 16, 17, 17]


@pytest.mark.parametrize("rule", selection.RULES)
def test_real_sample_selection(rule):
    f = read_keypoint_file(sample(REAL))
    kept_ids = set()
    for people in f.by_image().values():
        kept_ids |= {p.id for p, r in zip(people, selection.select(people, rule)) if r is None}
    assert kept_ids == REAL_KEPT[rule]


def test_real_sample_posepile_reasons():
    f = read_keypoint_file(sample(REAL))
    reasons = {}
    for people in f.by_image().values():
        reasons.update({p.id: r for p, r in zip(people, selection.select(people, "posepile"))})
    small = selection.REASONS["posepile_small"]
    # the small ones; 1717641's keypoint box is exactly 200 px after expansion (160 x 1.25): kept, as posepile
    assert {i for i, r in reasons.items() if r == small} == {230195, 488308, 1724673, 467657}
    # 437295 overlaps the small 467657 (IoU 0.23), 531914 and 533949 each other (0.16)
    assert {i for i, r in reasons.items() if r == selection.REASONS["posepile_overlap"]} == {437295, 531914, 533949}
    assert {i for i, r in reasons.items() if r == selection.REASONS["posepile_counts"]} == {1202706, 508900}


def test_real_sample_instances(tmp_path):
    root = real_tree(tmp_path)
    for rule, ids in REAL_KEPT.items():
        dropped = []
        insts = coco.instances(root, {"splits": ["val"], "rule": rule}, dropped)
        assert len(insts) == len(ids)
        assert sum(d.count for d in dropped) == 14 - len(ids) and {d.where for d in dropped} == {VAL}
    insts = coco.instances(root, {"splits": ["val"], "rule": "min_keypoints"})
    # ordered by image file name, then by the annotations' order in the file
    assert [(i.frame_index, i.person_index) for i in insts] == [
        (785, 0), (40083, 0), (40083, 1), (196141, 0), (196141, 1), (196141, 3), (196141, 4), (197388, 0),
        (197388, 1), (197388, 2), (197388, 3), (197388, 4)]
    a = insts[1]  # annotation 198196: 14 keypoints, three of them labelled but not visible
    assert a.source == "val2017/000000040083.jpg" and a.split == "val" and a.intrinsics_only
    raw_kp = np.array([99, 144, 2, 104, 141, 2, 96, 137, 2, 0, 0, 0, 78, 133, 2, 56, 161, 2, 81, 162, 2, 0, 0, 0,
                       103, 208, 2, 116, 204, 2, 0, 0, 0, 57, 246, 1, 82, 259, 1, 137, 219, 2, 138, 247, 2, 177,
                       256, 2, 158, 296, 1]).reshape(17, 3)
    expected = raw_kp[:, :2].astype(float)
    expected[raw_kp[:, 2] == 0] = np.nan
    np.testing.assert_array_equal(a.keypoints2d, expected)
    np.testing.assert_array_equal(a.visibility, [1, 1, 1, 255, 1, 1, 1, 255, 1, 1, 255, 0, 0, 1, 1, 1, 0])
    assert a.visibility.dtype == np.uint8
    np.testing.assert_allclose(a.bbox, [38.08 - 0.5, 110.95 - 0.5, 174.71, 174.71])
    assert a.world_coords.shape == (17, 3) and np.isnan(a.world_coords).all()
    # the assumed camera of the 500 x 333 image: ReFit's focal length, the image centre, no extrinsics
    k = a.camera.intrinsic_matrix
    np.testing.assert_allclose(k, [[np.hypot(500, 333), 0, 249.5], [0, np.hypot(500, 333), 166], [0, 0, 1]])
    np.testing.assert_array_equal(a.camera.R, np.eye(3))
    np.testing.assert_array_equal(a.camera.t, np.zeros(3))
    np.testing.assert_allclose(insts[0].bbox, [280.29, 44.23, 218.7, 346.68])
    assert (insts[0].visibility == 1).all() and np.isfinite(insts[0].keypoints2d).all()
    np.testing.assert_array_equal(insts[0].keypoints2d[16], [396, 341])
    # ReFit's principal point and a given focal length
    other = coco.instances(root, {"splits": ["val"], "principal_point": "half_size", "focal_px": 1000.0})
    np.testing.assert_allclose(other[0].camera.intrinsic_matrix, [[1000, 0, 320], [0, 1000, 212.5], [0, 0, 1]])


def test_real_sample_segmentations_decode():
    f = read_keypoint_file(sample(REAL), segmentation=True)
    images = f.images
    for p in f.persons:
        im = images[p.image_id]
        m = decode_segmentation(p.segmentation, im.height, im.width, sample(REAL), p.where)
        assert m.shape == (im.height, im.width) and m.dtype == bool
        # the mask's area is the annotation's (the release computes area from the same polygons)
        area = load(sample(REAL))["annotations"][[q.id for q in f.persons].index(p.id)]["area"]
        assert abs(m.sum() - area) <= 0.05 * area + 30, (p.id, m.sum(), area)
        # and it lies inside the box (half a pixel of rasterisation)
        ys, xs = np.nonzero(m)
        x, y, w, h = p.bbox
        assert xs.min() >= x - 1 and xs.max() <= x + w and ys.min() >= y - 1 and ys.max() <= y + h


# ------------------------------------------------------------------------------------------- the fixture
def test_fixture_counts_per_rule(raw):
    names = {"train": [p.name for im in SCENE["train"] for p in im.persons],
             "val": [p.name for im in SCENE["val"] for p in im.persons]}
    expected = {"posepile": ({"a", "b", "c"}, {"i", "j", "k"}), "spin": ({"a", "b", "d", "f", "g"}, {"i", "k"}),
                "min_keypoints": ({"a", "b", "c", "d", "f", "g", "h"}, {"i", "j", "k"})}
    for rule, (train, val) in expected.items():
        dropped = []
        insts = coco.instances(raw, {"rule": rule}, dropped)
        assert sum(i.split == "train" for i in insts) == len(train)
        assert sum(i.split == "val" for i in insts) == len(val)
        # every annotation is kept or counted (train: 8 people, a crowd region and a person without keypoints)
        n_train = len(names["train"]) + 2
        assert sum(d.count for d in dropped if d.where == TRAIN) == n_train - len(train)
        assert sum(d.count for d in dropped if d.where == VAL) == len(names["val"]) - len(val)
        assert any(d.reason == selection.CROWD and d.count == 1 for d in dropped)
    dropped = []
    coco.instances(raw, {}, dropped)
    by_reason = {d.reason: d.count for d in dropped}
    assert by_reason == {selection.CROWD: 1, selection.REASONS["posepile_counts"]: 2,
                         selection.REASONS["posepile_small"]: 1, selection.REASONS["posepile_overlap"]: 2}


def test_fixture_values_read_back(raw):
    data = load(raw / TRAIN)
    anns = {(a["image_id"], i): a for im in data["images"]
            for i, a in enumerate(x for x in data["annotations"] if x["image_id"] == im["id"])}
    sizes = {im["id"]: (im["width"], im["height"]) for im in data["images"]}
    insts = [i for i in coco.instances(raw, {"rule": "min_keypoints"}) if i.split == "train"]
    assert len(insts) == 7
    for inst in insts:
        a = anns[(inst.frame_index, inst.person_index)]
        kp = np.asarray(a["keypoints"], float).reshape(17, 3)
        labelled = kp[:, 2] > 0
        np.testing.assert_array_equal(inst.keypoints2d[labelled], kp[labelled, :2])
        assert np.isnan(inst.keypoints2d[~labelled]).all()
        np.testing.assert_array_equal(inst.visibility, np.where(kp[:, 2] == 2, 1, np.where(kp[:, 2] == 1, 0, 255)))
        np.testing.assert_allclose(inst.bbox, np.asarray(a["bbox"]) - [0.5, 0.5, 0, 0])
        w, h = sizes[inst.frame_index]
        np.testing.assert_allclose(inst.camera.intrinsic_matrix[[0, 1, 0, 1], [0, 1, 2, 2]],
                                   [np.hypot(w, h), np.hypot(w, h), (w - 1) / 2, (h - 1) / 2])
        assert inst.source == f"train2017/{inst.frame_index:012d}.jpg"


def test_fixture_marks_sit_on_the_keypoints(raw):
    errors = []
    for inst in coco.instances(raw, {"rule": "min_keypoints"}):
        image = cv2.imread(str(raw / inst.source))
        kp = inst.keypoints2d[np.isfinite(inst.keypoints2d).all(axis=1)]
        errors += list(mark_errors(image, kp, int(MARK_RADIUS) + 2, 2 * MARK_RADIUS + 4))
    assert len(errors) > 60 and max(errors) < 0.3, (len(errors), max(errors))


def test_frame_source_masks(raw):
    params = {"rule": "min_keypoints"}
    insts = coco.instances(raw, params)
    source = coco.frame_source(raw, params)
    crowd_image = next(i for i in insts if i.split == "train")  # the first image holds the crowd region (index 0)
    ((idx, frame),) = list(source(crowd_image.source, [crowd_image.frame_index]))
    assert idx == crowd_image.frame_index and frame.image.shape == (480, 640, 3)
    assert sorted(frame.masks) == [1, 2]  # the two people; the crowd region (index 0) is nobody's mask
    for inst in insts:
        ((_, frame),) = list(source(inst.source, [inst.frame_index]))
        m = frame.masks[inst.person_index]
        assert m.shape == frame.image.shape[:2] and m.dtype == bool
        # the mask covers the person's keypoints and fills its box (up to rasterisation)
        kp = inst.keypoints2d[np.isfinite(inst.keypoints2d).all(axis=1)].astype(int)
        assert m[kp[:, 1], kp[:, 0]].all()
        ys, xs = np.nonzero(m)
        x, y, w, h = inst.bbox
        assert abs(xs.min() - (x + 0.5)) <= 1 and abs(xs.max() + 1 - (x + 0.5 + w)) <= 1
        assert abs(ys.min() - (y + 0.5)) <= 1 and abs(ys.max() + 1 - (y + 0.5 + h)) <= 1
        # the silhouette drawn in the image is the mask
        grey = frame.image[..., 1]
        assert np.mean(grey[m] > 80) > 0.97


def test_frame_source_quarantines_unreadable_and_resized_images(raw, tmp_path):
    root = copy_raw(raw, tmp_path)
    insts = coco.instances(root, {})
    a, b = insts[0].source, insts[-1].source
    img = cv2.imread(str(root / b))
    cv2.imwrite(str(root / b), cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2)))
    (root / a).write_bytes((root / a).read_bytes()[:1000])
    source = coco.frame_source(root, {})
    ((_, fa),) = list(source(a, [insts[0].frame_index]))
    ((_, fb),) = list(source(b, [insts[-1].frame_index]))
    assert fa.image is None and "truncated JPEG" in fa.problem
    assert fb.image is None and "the annotations say 500x375" in fb.problem


def test_rle_segmentations_decode(raw):
    data = load(raw / TRAIN)
    crowd = next(a for a in data["annotations"] if a["iscrowd"])
    im = next(i for i in data["images"] if i["id"] == crowd["image_id"])
    m = decode_segmentation(crowd["segmentation"], im["height"], im["width"], raw / TRAIN, "crowd")
    expected = np.zeros((480, 640), bool)
    expected[380:470, 560:630] = True  # the fixture's crowd rectangle, in uncompressed RLE
    np.testing.assert_array_equal(m, expected)
    import pycocotools.mask as mask_utils

    compressed = mask_utils.encode(np.asfortranarray(expected.astype(np.uint8)))
    compressed["counts"] = compressed["counts"].decode()  # as the json files store compressed RLE
    np.testing.assert_array_equal(decode_segmentation(compressed, 480, 640, raw / TRAIN, "x"), expected)
    with pytest.raises(RawFileError, match=r"x: RLE size \[480, 640\] differs from the image's \[48, 64\]"):
        decode_segmentation(compressed, 48, 64, raw / TRAIN, "x")
    assert decode_segmentation([[1, 2, 3, 4]], 10, 10, raw / TRAIN, "x") is None  # not an area


def test_conversion_crops(cache):
    with Cache(cache) as c:
        examples = list(c.examples())
        assert len(examples) == 6
        errors = []
        for ex in examples:
            assert not ex.has_extrinsics and np.isnan(np.asarray(ex.world_coords)).all()
            image = ex.decode_image()
            kp = np.asarray(ex.keypoints2d, np.float64)
            kp = kp[np.isfinite(kp).all(axis=1)]
            errors += list(mark_errors(image, kp, 4, 10))
            mask = ex.decode_mask()
            assert mask.shape == image.shape[:2] and 0.1 < mask.mean() < 0.5
        # the crops keep the marks on the keypoints (a scale change, subpixel)
        assert len(errors) > 60 and max(errors) < 0.4, max(errors)
        quarantine = {(q["path"], q["reason"]): q.get("count", 1) for q in c.quarantine}
        assert quarantine[(EFT_FILE, eft_io.NO_PERSON)] == 1 and quarantine[(EFT_FILE, eft_io.SECOND_FIT)] == 1
        assert quarantine[(TRAIN, selection.REASONS["posepile_overlap"])] == 2
        assert json.loads(c.attrs["provenance"])["body_model"]["source"] == "EFT (COCO2014-All)"


# ------------------------------------------------------------------------------------------- EFT
def test_eft_fits_are_matched_and_converted(raw):
    eft = load(raw / EFT_FILE)
    assert eft["meta"]["dbname"] == "COCO2014-All" and len(eft["data"]) == 9  # 6 people + 3 odd ones
    dropped = []
    insts = coco.instances(raw, {"rule": "spin", "eft": EFT_FILE}, dropped)
    data = load(raw / TRAIN)
    with_fit = [i for i in insts if i.body_model is not None]
    assert len(with_fit) == 5 and all(i.split == "train" for i in with_fit)  # a b d f g (c is not kept by spin)
    for inst in with_fit:
        ann = [a for a in data["annotations"] if a["image_id"] == inst.frame_index][inst.person_index]
        x, y, w, h = ann["bbox"]
        entry = next(e for e in eft["data"][:6] if np.allclose(e["bbox_center"], [x + w / 2, y + h / 2], atol=1e-3))
        assert entry["annotId"] in (0, ann["id"])
        fit = inst.body_model
        assert (fit.model, fit.gender, fit.root) == ("smpl", "neutral", None)
        np.testing.assert_allclose(rodrigues(fit.pose.reshape(24, 3)), entry["parm_pose"], atol=1e-6)
        np.testing.assert_allclose(fit.betas, entry["parm_shape"])
        # trans: a model point at zero depth projects where the weak-perspective camera put it
        s, tx, ty = entry["parm_cam"]
        side = 200 * entry["bbox_scale"]
        points = np.array([[0.3, -0.7, 0.0], [-0.2, 0.5, 0.0], [0.0, 0.0, 0.0]])
        weak = np.asarray(entry["bbox_center"]) + (s * points[:, :2] + [tx, ty]) * side / 2
        projected = inst.camera.project((points + fit.trans) * 1000)  # metres -> the camera's mm
        np.testing.assert_allclose(projected, weak, atol=1e-6)
        assert 2.0 < fit.trans[2] < 20.0  # metres: people of 90 to 400 px at f ~ 800 px
    eft_drops = {d.reason: d.count for d in dropped if d.where == EFT_FILE}
    assert eft_drops == {eft_io.NO_PERSON: 1, eft_io.SECOND_FIT: 1}  # the off-tree image is only logged
    zeros = coco.instances(raw, {"rule": "spin", "eft": EFT_FILE, "eft_trans": "zeros"})
    assert all((i.body_model.trans == 0).all() for i in zeros if i.body_model is not None)


def test_eft_match_prefers_the_named_annotation():
    from posebank.datasets.coco.annotations import PersonAnnotation

    def person(ann_id, centre):
        return PersonAnnotation(ann_id, 7, 0, np.zeros((17, 3)), np.array([centre[0] - 50, centre[1] - 100, 100,
                                                                             200]), False, 0)

    def fit(index, centre, annot=None):
        return eft_io.EftFit(index, "COCO_train2014_000000000007.jpg", 7, np.asarray(centre, float), 1.2,
                             np.tile(np.eye(3), (24, 1, 1)), np.zeros(10), np.array([1.0, 0, 0]), annot)

    people = {7: [person(1, (100, 200)), person(2, (300, 200))]}
    matched, unmatched = eft_io.match([fit(0, (290, 205)), fit(1, (101, 200), annot=2), fit(2, (100, 201))],
                                      people)
    # fit 1 names annotation 2 and beats the nearer fit 0; fit 2 takes person 1 by distance
    assert {k: v.index for k, v in matched.items()} == {2: 1, 1: 2}
    assert [(u.index, r) for u, r in unmatched] == [(0, eft_io.SECOND_FIT)]
    matched, unmatched = eft_io.match([fit(0, (200, 200)), fit(1, (0, 0))], people)
    assert matched == {} and [r for _, r in unmatched] == [eft_io.NO_PERSON, eft_io.NO_PERSON]
    assert eft_io.match([fit(0, (100, 200))], {})[1][0][1] == eft_io.NO_IMAGE


def test_eft_provenance_and_errors(raw, tmp_path):
    assert coco.provenance(raw, {}) == {}
    prov = coco.provenance(raw, {"eft": EFT_FILE})
    assert prov["body_model"]["model"] == "smpl" and prov["body_model"]["source"] == "EFT (COCO2014-All)"
    assert prov["attached"] == [{"kind": "eft", "path": EFT_FILE, "sha256": eft_io.sha256(raw / EFT_FILE)}]
    assert len(prov["attached"][0]["sha256"]) == 64
    assert coco.check_params({"eft": None})["eft"] == ""
    root = copy_raw(raw, tmp_path)
    with pytest.raises(RawLayoutError, match=r"missing eft/nothing.json \(the EFT file named by datasets.coco.eft\)"):
        coco.instances(root, {"eft": "eft/nothing.json"})
    eft = load(root / EFT_FILE)
    eft["meta"]["dbname"] = "MPII"
    (root / EFT_FILE).write_text(json.dumps(eft))
    with pytest.raises(RawFileError, match="an EFT file of 'MPII'"):
        coco.instances(root, {"eft": EFT_FILE})
    eft["meta"]["dbname"] = "COCO2014-All"
    eft["data"][2]["parm_pose"][3] = np.diag([1.0, 1.0, 2.0]).tolist()
    (root / EFT_FILE).write_text(json.dumps(eft))
    with pytest.raises(RawFileError, match=r"data\[2\]: 'parm_pose' holds matrices that are not rotations"):
        coco.instances(root, {"eft": str(root / EFT_FILE)})  # an absolute path works too


# ------------------------------------------------------------------------------------------- years and errors
def test_year_2014_layout(tmp_path):
    root = coco.make_fixture(tmp_path / "coco", seed=1, years=(2014,), eft=False)
    assert (root / "annotations/person_keypoints_train2014.json").is_file()
    insts = coco.instances(root, {"year": 2014})
    assert len(insts) == 6
    assert all(i.source == f"{i.split}2014/COCO_{i.split}2014_{i.frame_index:012d}.jpg" for i in insts)
    with pytest.raises(RawLayoutError, match="missing annotations/person_keypoints_train2017.json, train2017/"):
        coco.instances(root, {})


def test_broken_files_are_named(raw, tmp_path):
    root = copy_raw(raw, tmp_path)
    path = root / VAL
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(RawFileError, match=NOT_JSON) as e:
        coco.instances(root, {})
    assert e.value.where == str(path)
    data = json.loads(text)
    data["annotations"][1]["keypoints"] = data["annotations"][1]["keypoints"][:48]
    path.write_text(json.dumps(data))
    ann_id = data["annotations"][1]["id"]
    with pytest.raises(RawFileError, match=rf"annotations\[1\] \(id {ann_id}\): 'keypoints' has 48 values"):
        coco.instances(root, {})
    data = json.loads(text)
    data["annotations"][0]["keypoints"][2] = 3
    data["categories"][0]["keypoints"][0] = "head"
    path.write_text(json.dumps(data))
    with pytest.raises(RawFileError, match="person category's keypoints are"):
        coco.instances(root, {})
    del data["categories"]
    path.write_text(json.dumps(data))
    with pytest.raises(RawFileError, match=r"keypoint visibilities \[1, 2, 3\], expected 0, 1 or 2"):
        coco.instances(root, {})


def test_missing_and_resized_images(raw, tmp_path):
    root = copy_raw(raw, tmp_path)
    first = coco.instances(root, {})[0].source
    img = cv2.imread(str(root / first))
    cv2.imwrite(str(root / first), cv2.resize(img, (320, 240)))
    with pytest.raises(RawFileError, match="image is 320x240 but .* says 640x480"):
        coco.instances(root, {})
    (root / first).unlink()
    with pytest.raises(RawLayoutError, match=f"missing {first}"):
        coco.instances(root, {})
    shutil.rmtree(root / "val2017")
    with pytest.raises(RawLayoutError, match="missing val2017/"):
        coco.check_layout(root, {})
    assert coco.check_layout(root, {"splits": ["train"]}) == {"train": (TRAIN, "train2017")}


@pytest.mark.parametrize(("key", "value", "problem"), [
    ("year", 2015, "must be one of 2014, 2017"), ("splits", ["test"], "COCO's test images have no annotations"),
    ("splits", ["train", "train"], "must be distinct"), ("rule", "all", "must be one of posepile, spin"),
    ("min_keypoints", 0, r"must be in 1..17"), ("focal_px", -1.0, "must be >= 0"),
    ("principal_point", "centre", "pixel_centre, half_size"), ("eft_trans", "guess", "perspective, zeros")])
def test_bad_params_are_named(key, value, problem):
    with pytest.raises(ParamsError, match=problem) as e:
        coco.check_params({key: value})
    assert e.value.where == f"datasets.coco.{key}"
    assert coco.splits({"splits": ["val", "train"]}) == ("train", "val")
