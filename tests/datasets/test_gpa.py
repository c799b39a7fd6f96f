"""GPA: what is specific to it (the contract is checked for every dataset in test_conformance.py)."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import assert_no_output, copy_raw
from marks import mark_errors
from posebank.core.errors import ParamsError
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError, gpa
from posebank.datasets.gpa import fixture
from posebank.pipeline.run import convert

IDS = gpa.JOINT_INFO.ids
# the fixture's images posepile's per-camera sampler keeps: camera "2"'s frame 2 (0000001307) moved 30 mm
KEPT = ["0000001203", "0000001204", "0000001205", "0000001206", "0000010517", "0000010518", "0000010519"]


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return gpa.make_fixture(tmp_path_factory.mktemp("gpa_raw"), seed=3)


@pytest.fixture(scope="module")
def cache(raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gpa_cache") / "gpa"
    convert("gpa", raw, out, None, progress=False)
    return out


def annotations(raw) -> dict:
    return json.loads((raw / gpa.ANNOTATIONS).read_text())


# ------------------------------------------------------------------------------------------- fixture, selection
def test_fixture_has_the_release_layout(raw):
    doc = annotations(raw)
    assert len(doc["images"]) == len(doc["annotations"]) == len(fixture.IMAGE_LIST)
    for image, anno, (image_id, *_) in zip(doc["images"], doc["annotations"], fixture.IMAGE_LIST):
        assert image["file_name"][-14:-4] == image_id  # all that posepile reads of the name
        assert np.shape(anno["joint_cams"]) == (3, 34) and len(anno["f"]) == len(anno["c"]) == 2
        nested = f"{image_id[:6]}/{image_id[6:8]}"
        image = cv2.imread(str(raw / "Gaussian_img_jpg_new" / nested / f"{image_id}.jpg"))
        mask = cv2.imread(str(raw / "img_jpg_new_resnet101deeplabv3humanmask" / nested / f"{image_id}_mask.jpg"))
        assert image.shape == mask.shape == (480, 640, 3)
    cam_ids = np.load(raw / "Sequence_ids/cam_ids_750k.npy", allow_pickle=False)
    assert cam_ids.dtype.kind == "U" and cam_ids.ndim == 1
    assert [cam_ids[int(i)] for i, *_ in fixture.IMAGE_LIST] == ["2", "4"] * 4
    assert gpa.image_path("0000012345") == "Gaussian_img_jpg_new/000001/23/0000012345.jpg"


def test_selection_follows_posepile(raw):
    dropped = []
    inst = gpa.instances(raw, None, dropped)
    assert dropped == []
    assert [x.source.rsplit("/", 1)[1][:-4] for x in inst] == KEPT  # the file's order
    assert [x.frame_index for x in inst] == [int(i) for i in KEPT]
    assert [x.camera_name for x in inst] == ["2", "4", "2", "4", "4", "2", "4"]
    assert [x.split for x in inst] == ["train"] * 4 + ["test", "train", "test"]  # istrains
    splits = {x.source.rsplit("/", 1)[1][:-4]: x.split for x in inst}
    assert [k for k, s in splits.items() if s == "test"] == ["0000010517", "0000010519"]
    assert all(x.mask_source == gpa.mask_path(x.source.rsplit("/", 1)[1][:-4]) for x in inst)
    assert all(x.bbox is None for x in inst)  # the detect stage's box: projected x 1.15 matched to a detection
    # the sampler sees every image, whatever the splits asked for (posepile samples before splitting)
    assert [x.split for x in gpa.instances(raw, {"splits": ["train"]})] == ["train"] * 5
    assert gpa.splits({"splits": ["test", "train"]}) == ("train", "test")
    assert len(gpa.instances(raw, {"adaptive_sampling_mm": 0.0})) == len(fixture.IMAGE_LIST)
    # one sampler for all cameras would compare camera "2"'s poses with camera "4"'s and keep 0000001307
    assert len(gpa.instances(raw, {"adaptive_sampling_mm": 1000.0})) == 2  # each camera's first image only
    with pytest.raises(ParamsError, match=r"^datasets\.gpa\.splits: must be distinct splits of train, test"):
        gpa.check_params({"splits": ["val"]})
    with pytest.raises(ParamsError, match=r"^datasets\.gpa\.mask_threshold"):
        gpa.check_params({"mask_threshold": 300})


def test_cameras_joints_units_and_up(raw):
    doc = annotations(raw)
    by_id = {im["file_name"][-14:-4]: an for im, an in zip(doc["images"], doc["annotations"])}
    template = fixture.template()
    for x in gpa.instances(raw):
        anno = by_id[x.source.rsplit("/", 1)[1][:-4]]
        np.testing.assert_array_equal(x.world_coords, np.array(anno["joint_cams"], np.float32).T)  # transposed
        k = x.camera.intrinsic_matrix
        np.testing.assert_array_equal([k[0, 0], k[1, 1], k[0, 2], k[1, 2]], [*anno["f"], *anno["c"]])
        np.testing.assert_array_equal(x.camera.R, np.eye(3))
        np.testing.assert_array_equal(x.camera.t, np.zeros(3))
        assert not x.camera.has_distortion
        np.testing.assert_array_equal(x.camera.world_up, [0, -1, 0])
        wc = np.asarray(x.world_coords, np.float64)
        up = x.camera.world_up
        # mm: the template's bones (an adult's shin, thigh and forearm in mm); up: the head top 1.7 m above
        # the toes, the pelvis between
        for a, b in gpa.JOINT_INFO.edges:
            if {gpa.JOINT_INFO.names[a][1:], gpa.JOINT_INFO.names[b][1:]} == {"sho", "elb"}:
                continue  # the arms swing about the shoulders: the upper arms are the bones that stretch
            assert np.linalg.norm(wc[a] - wc[b]) == pytest.approx(np.linalg.norm(template[a] - template[b]), abs=0.01)
        assert 400 < np.linalg.norm(wc[IDS["rkne"]] - wc[IDS["rank"]]) < 450
        assert 400 < np.linalg.norm(wc[IDS["lhip"]] - wc[IDS["lkne"]]) < 450
        assert 200 < np.linalg.norm(wc[IDS["lelb"]] - wc[IDS["lwri"]]) < 300
        assert (wc[IDS["htop"]] - wc[IDS["ltoe"]]) @ up == pytest.approx(1700.0, abs=0.01)
        assert 0 < (wc[IDS["pelv"]] - wc[IDS["rtoe"]]) @ up < (wc[IDS["neck"]] - wc[IDS["rtoe"]]) @ up
        assert (wc[:, 2] > 3000).all()  # metres in front of the camera


def test_projection_onto_the_drawn_marks(raw, cache):
    """The converted joints through the converted camera land on the marks drawn at the annotated joints, in the
    raw image (the raw camera) and in the crop (the crop camera)."""
    raw_err, crop_err = [], []
    for x in gpa.instances(raw):
        image = cv2.imread(str(raw / x.source))
        raw_err.extend(mark_errors(image, x.camera.project(x.world_coords), 4, 12))
    with Cache(cache) as c:
        assert c.split_counts()["train"] == 5 and c.split_counts()["test"] == 2
        for i in range(len(c)):
            ex = c[i]
            wc = np.asarray(ex.world_coords, np.float64)
            crop_err.extend(mark_errors(ex.decode_image(), ex.camera.project(wc), 4, 12))
            mask = ex.decode_mask()
            assert mask is not None and mask.any()
            assert (wc[IDS["htop"]] - wc[IDS["pelv"]]) @ np.asarray(ex.camera.world_up) > 700
    assert len(raw_err) > 7 * 10 and max(raw_err) < 1.0, max(raw_err)
    assert len(crop_err) > 7 * 8 and max(crop_err) < 1.0, max(crop_err)


def test_masks_are_the_releases_at_posepiles_threshold(raw):
    frames = gpa.frame_source(raw, None)
    for x in gpa.instances(raw)[:3]:
        ((i, frame),) = list(frames(x.source, [x.frame_index]))
        stored = cv2.imread(str(raw / x.mask_source))
        np.testing.assert_array_equal(frame.masks[0], stored[..., 2] > 10)  # posepile: RGB channel 0 > 10
        assert frame.masks[0].sum() > (stored[..., 2] > 127).sum() + 500  # the rim at 40 is the person too
    strict = gpa.frame_source(raw, {"mask_threshold": 127})
    x = gpa.instances(raw)[0]
    ((_, frame),) = list(strict(x.source, [x.frame_index]))
    np.testing.assert_array_equal(frame.masks[0], cv2.imread(str(raw / x.mask_source))[..., 2] > 127)


def test_box_rule_is_posepiles(params):
    from posebank.vision.detect import select_boxes

    dp = params.detect.for_dataset("gpa")
    assert (dp.rule, dp.expansion, dp.min_match_iou, dp.max_area_ratio, dp.fallback) == (
        "match", 1.15, 0.3, None, "drop")
    dp = dataclass_replace(dp, backend="hog")
    gt = np.array([[100.0, 100.0, 100.0, 200.0]])
    near = [100.0, 100.0, 100.0, 200.0 * 0.35 / 1.0]  # IoU 0.35: the detection is the box
    (box, source), = select_boxes(gt, np.array([near + [0.9]]), dp)
    assert source == "detection" and np.allclose(box, near)
    far = [100.0, 100.0, 100.0, 200.0 * 0.25]  # IoU 0.25: the person is dropped
    assert select_boxes(gt, np.array([far + [0.9]]), dp) == [(None, "dropped")]
    assert select_boxes(gt, np.zeros((0, 5)), dp) == [(None, "dropped")]  # posepile: no detection, skipped


def dataclass_replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)


def test_huge8_takes_its_train_split(cache, params, tmp_path):
    from posebank.merging.build import build_merge
    from posebank.merging.reader import Merge

    caches = tmp_path / "caches"
    caches.mkdir()
    (caches / "gpa").symlink_to(cache)
    r = build_merge("huge8", params.merge("huge8"), caches, tmp_path / "huge8.h5", allow_missing=True)
    assert r["sources"] == 1 and r["examples_train"] == 5  # the test split is not in huge8
    with Merge(tmp_path / "huge8.h5") as m:
        assert "gpa" not in {x["dataset"] for x in m.missing}
        assert len(m.missing) == len(params.merge("huge8").sources) - 1
        assert [n for n in m.joint_info.names if n.endswith("_gpa")] == [f"{n}_gpa" for n in gpa.JOINT_INFO.names]


# ------------------------------------------------------------------------------------------- errors
def test_missing_and_unnested_files_are_named(raw, tmp_path):
    broken = copy_raw(raw, tmp_path)
    (broken / gpa.mask_path("0000001206")).unlink()
    with pytest.raises(RawLayoutError, match="missing img_jpg_new_resnet101deeplabv3humanmask/000000/12/"
                                             "0000001206_mask.jpg$"):
        gpa.instances(broken)
    flat = tmp_path / "flat"
    shutil.copytree(raw, flat)
    images = flat / "Gaussian_img_jpg_new"
    for f in sorted(images.rglob("*.jpg")):
        f.rename(images / f.name)
    for d in sorted(images.iterdir()):
        if d.is_dir():
            shutil.rmtree(d)
    with pytest.raises(RawLayoutError, match="Gaussian_img_jpg_new/<id.:6.>/<id.6:8.>/ .the nesting of posepile's "
                                             "create_directory_structure.py"):
        gpa.check_layout(flat)
    (flat / "Sequence_ids/cam_ids_750k.npy").unlink()
    with pytest.raises(RawLayoutError, match="missing Sequence_ids/cam_ids_750k.npy"):
        gpa.check_layout(flat)
    out = tmp_path / "out" / "gpa"
    with pytest.raises(RawLayoutError):
        convert("gpa", broken, out, None, progress=False)
    assert_no_output(out)


def test_bad_files_are_named(raw, tmp_path):
    broken = copy_raw(raw, tmp_path)
    path = broken / gpa.ANNOTATIONS
    doc = annotations(raw)
    doc["annotations"][3]["joint_cams"] = doc["annotations"][3]["joint_cams"][:2]
    path.write_text(json.dumps(doc))
    with pytest.raises(RawFileError, match=r"annotations\[3\]: joint_cams must be 3 x 34 finite numbers") as e:
        gpa.instances(broken)
    assert e.value.path == path
    doc = annotations(raw)
    doc["images"][2]["file_name"] = "x.jpg"
    path.write_text(json.dumps(doc))
    with pytest.raises(RawFileError, match=r"images\[2\]: file_name 'x.jpg' does not end in a 10-digit id"):
        gpa.instances(broken)
    path.write_bytes((raw / gpa.ANNOTATIONS).read_bytes())
    ids = broken / gpa.CAMERA_IDS
    np.save(ids, np.array(["2"] * 100))
    with pytest.raises(RawFileError, match="has 100 camera ids, none for image 0000001203") as e:
        gpa.instances(broken)
    assert e.value.path == ids
    ids.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(RawFileError, match="unreadable camera id file"):
        gpa.instances(broken)
    ids.write_bytes((raw / gpa.CAMERA_IDS).read_bytes())
    mask = broken / gpa.mask_path("0000001204")
    mask.write_bytes(mask.read_bytes()[:50])
    frames = gpa.frame_source(broken, None)
    with pytest.raises(RawFileError, match="unreadable mask image") as e:
        list(frames(gpa.image_path("0000001204"), [1204]))
    assert e.value.path == mask
