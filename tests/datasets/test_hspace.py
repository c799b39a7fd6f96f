"""HSPACE: what is specific to it (the contract is checked for every dataset in test_conformance.py)."""

import struct
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import assert_no_output, copy_raw
from marks import isolated, mark_centroid
from posebank.core.errors import ParamsError
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError, hspace
from posebank.datasets.hspace import fixture, tfrecord
from posebank.datasets.sampling import AdaptivePoseSampler2
from posebank.pipeline.run import convert

FILE_A, FILE_B = (f"{hspace.TRAIN_DIR}/{s}.tfrecord" for s in fixture.FILES)


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return hspace.make_fixture(tmp_path_factory.mktemp("hspace_raw"), seed=3)


@pytest.fixture(scope="module")
def cache(raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hspace_cache") / "hspace"
    convert("hspace", raw, out, None, progress=False)
    return out


# ------------------------------------------------------------------------------------------- TFRecord, protobuf
def test_crc32c_and_framing():
    assert tfrecord.crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert tfrecord.crc32c_python(b"123456789") == 0xE3069283
    data = bytes(range(256)) * 3
    assert tfrecord.crc32c(data) == tfrecord.crc32c_python(data)
    crc = tfrecord.crc32c(b"abc")
    assert tfrecord.masked_crc32c(b"abc") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    framed = tfrecord.frame_record(b"hello")
    assert framed[:8] == struct.pack("<Q", 5) and framed[12:17] == b"hello" and len(framed) == 5 + 16
    assert struct.unpack("<I", framed[8:12])[0] == tfrecord.masked_crc32c(struct.pack("<Q", 5))


def test_corrupt_and_truncated_records_are_named(tmp_path):
    path = tmp_path / "x.tfrecord"
    tfrecord.write_records(path, [b"first", b"second record", b"third"])
    assert [d for _, d in tfrecord.read_records(path)] == [b"first", b"second record", b"third"]
    data = bytearray(path.read_bytes())
    data[21 + 12 + 3] ^= 0x01  # a byte of record 1's data
    path.write_bytes(bytes(data))
    with pytest.raises(RawFileError, match="record 1: data CRC mismatch") as e:
        list(tfrecord.read_records(path))
    assert e.value.path == path
    data[21 + 12 + 3] ^= 0x01
    data[21] ^= 0x40  # record 1's length
    path.write_bytes(bytes(data))
    with pytest.raises(RawFileError, match="record 1: length CRC mismatch"):
        list(tfrecord.read_records(path))
    path.write_bytes(tfrecord.frame_record(b"first") + tfrecord.frame_record(b"second")[:-6])
    with pytest.raises(RawFileError, match="record 1: truncated"):
        list(tfrecord.read_records(path))


def _protobuf_example_class():
    """tf.train.Example built with protobuf from example.proto / feature.proto's definitions."""
    pb = pytest.importorskip("google.protobuf")
    del pb
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    f = descriptor_pb2.FileDescriptorProto(name="tf_example_test.proto", package="tensorflow", syntax="proto3")
    t = descriptor_pb2.FieldDescriptorProto
    rep, opt = t.LABEL_REPEATED, t.LABEL_OPTIONAL
    for name, kind in (("BytesList", t.TYPE_BYTES), ("FloatList", t.TYPE_FLOAT), ("Int64List", t.TYPE_INT64)):
        m = f.message_type.add(name=name)
        field = m.field.add(name="value", number=1, label=rep, type=kind)
        if kind != t.TYPE_BYTES:
            field.options.packed = True
    feature = f.message_type.add(name="Feature")
    feature.oneof_decl.add(name="kind")
    for i, (name, type_name) in enumerate((("bytes_list", "BytesList"), ("float_list", "FloatList"),
                                           ("int64_list", "Int64List"))):
        feature.field.add(name=name, number=i + 1, label=opt, type=t.TYPE_MESSAGE,
                          type_name=f".tensorflow.{type_name}", oneof_index=0)
    features = f.message_type.add(name="Features")
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, label=opt, type=t.TYPE_STRING)
    entry.field.add(name="value", number=2, label=opt, type=t.TYPE_MESSAGE, type_name=".tensorflow.Feature")
    features.field.add(name="feature", number=1, label=rep, type=t.TYPE_MESSAGE,
                       type_name=".tensorflow.Features.FeatureEntry")
    example = f.message_type.add(name="Example")
    example.field.add(name="features", number=1, label=opt, type=t.TYPE_MESSAGE, type_name=".tensorflow.Features")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.Example"))


def test_example_wire_format_agrees_with_protobuf():
    example_class = _protobuf_example_class()
    values = {"image/rgb": [b"\x89PNG...", b""], "camera_intrinsics": np.array([1000.5, 999.0, 640.25, 360.0],
                                                                              np.float32),
              "number_of_rigged_characters": np.array([2]), "RIGGED_0/mask_id": np.array([-3, 0, 2 ** 40]),
              "empty": np.zeros(0, np.float32)}
    ours = tfrecord.encode_example(values)
    msg = example_class()
    feat = msg.features.feature
    feat["image/rgb"].bytes_list.value.extend(values["image/rgb"])
    feat["camera_intrinsics"].float_list.value.extend(values["camera_intrinsics"].tolist())
    feat["number_of_rigged_characters"].int64_list.value.append(2)
    feat["RIGGED_0/mask_id"].int64_list.value.extend([-3, 0, 2 ** 40])
    feat["empty"].float_list.SetInParent()
    assert example_class.FromString(ours) == msg  # protobuf reads what we write
    parsed = tfrecord.parse_example(msg.SerializeToString(deterministic=True))  # we read what protobuf writes
    assert parsed["image/rgb"] == values["image/rgb"]
    np.testing.assert_array_equal(parsed["camera_intrinsics"], values["camera_intrinsics"])
    np.testing.assert_array_equal(parsed["RIGGED_0/mask_id"], [-3, 0, 2 ** 40])
    assert parsed["number_of_rigged_characters"].tolist() == [2] and parsed["empty"].size == 0
    assert msg.SerializeToString(deterministic=True) == ours  # byte-exact (map entries in key order)


# ------------------------------------------------------------------------------------------- fixture, selection
def test_fixture_has_the_release_layout(raw):
    assert sorted(p.name for p in (raw / hspace.TRAIN_DIR).iterdir()) == [f"{s}.tfrecord" for s in fixture.FILES]
    recs = list(hspace.records(raw / FILE_A))
    assert [r.index for r in recs] == [0, 1, 2, 3]
    assert set(recs[0].features) == {"image/rgb", "camera_intrinsics", "number_of_rigged_characters",
                                     "character_masks", *(f"RIGGED_{i}/{k}" for i in range(3)
                                                          for k in ("joints_3d", "mask_id"))}
    assert recs[0].n_people == 3 and recs[0].features["RIGGED_0/joints_3d"].size == 63 * 3
    assert recs[0].labels().dtype == np.uint8 and set(np.unique(recs[0].labels())) == {0, 1, 2, 3, 4, 5, 6}


def test_sampler_is_posepiles():
    class Posepile:  # posepile's AdaptivePoseSampler2 with RingBufferArray, transcribed (check_validity, nan kept)
        def __init__(self, thresh, size):
            self.array, self.i, self.size, self.thresh = None, 0, size, thresh

        def add(self, pose):
            if self.array is None:
                self.array = np.full([self.size, *pose.shape], np.nan, np.float32)
            last = self.array[(self.i - 1) % self.size].copy()
            self.array[self.i] = last
            self.array[self.i][~np.isnan(pose)] = pose[~np.isnan(pose)]
            self.i = (self.i + 1) % self.size

        def should_skip(self, pose):
            if self.array is None:
                self.add(pose)
                return not np.any(np.isfinite(pose).all(-1))
            valid = np.isfinite(pose).all(-1)
            if np.any(valid & ~np.isfinite(self.array[(self.i - 1) % self.size]).all(-1)):
                self.add(pose)
                return False
            change = np.linalg.norm(pose[valid] - self.array[:, valid], axis=-1)
            if change.size == 0:
                return True
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                worst = np.nanmin(np.nanmax(change, axis=1), axis=0)
            if worst >= self.thresh:
                self.add(pose)
                return False
            return True

    rng = np.random.default_rng(0)
    for size in (1, 3, 20):
        ours, theirs = AdaptivePoseSampler2(100, size), Posepile(100, size)
        pose = rng.normal(0, 300, (35, 3))
        for _ in range(300):
            pose = pose + rng.normal(0, 40, (35, 3)) * rng.uniform(0, 1)
            p = pose.copy()
            p[rng.uniform(size=35) < 0.05] = np.nan
            assert ours.should_keep(p) == (not theirs.should_skip(p.astype(np.float32)))


def test_selection_follows_posepile(raw):
    dropped = []
    inst = hspace.instances(raw, None, dropped)
    keys = [(x.sequence, x.frame_index, x.person_index) for x in inst]
    a, b = fixture.FILES
    # one sampler per file shared by its characters: 0 walks (always kept), 1 stands still in records 1-2,
    # 2 is far away (mask box under 100 px: left out); in the last file nobody moves in record 1
    assert keys == [(a, 0, 0), (a, 0, 1), (a, 1, 0), (a, 2, 0), (a, 3, 0), (a, 3, 1), (b, 0, 0), (b, 0, 1), (b, 2, 0)]
    assert [(d.where, d.reason, d.count) for d in dropped] == [(FILE_A, hspace.SMALL_BOX, 4),
                                                                (FILE_B, hspace.SMALL_BOX, 2)]
    assert {x.split for x in inst} == {"train"} and inst[1].subject == f"{a}/RIGGED_1"
    assert len(hspace.instances(raw, {"adaptive_sampling_mm": 0})) == 7 * 2  # every character with a box
    assert len(hspace.instances(raw, {"min_box_side_px": 0})) == 9 + 6
    assert [x.frame_index for x in hspace.instances(raw, {"files": [b]})] == [0, 0, 2]


def test_boxes_masks_and_channel_order(raw):
    inst = hspace.instances(raw)
    recs = {(r.path.name, r.index): r for rel in (FILE_A, FILE_B) for r in hspace.records(raw / rel)}
    element = np.ones((4, 4), np.uint8)
    frames = {}
    for rel in (FILE_A, FILE_B):
        frames.update({(Path(rel).name, i): f for i, f in hspace.frame_source(raw)(rel, range(4))})
    for x in inst:
        rec = recs[(Path(x.source).name, x.frame_index)]
        labels = rec.labels()
        mask_id = 2 * x.person_index + 2
        person = ((labels == mask_id) | (labels == mask_id - 1)).astype(np.uint8) * 255
        person = cv2.dilate(cv2.erode(person, element), element, iterations=2)
        ys, xs = np.nonzero(person)
        np.testing.assert_array_equal(x.bbox, [xs.min() - 0.5, ys.min() - 0.5, np.ptp(xs) + 1, np.ptp(ys) + 1])
        pts = x.camera.project(x.world_coords)
        inside = (pts >= x.bbox[:2]) & (pts <= x.bbox[:2] + x.bbox[2:])
        assert inside.all(1).mean() > 0.85  # the box holds the body's joints (not the fingertips' marks)
        frame = frames[(Path(x.source).name, x.frame_index)]
        union = cv2.dilate(cv2.erode((labels > 0).astype(np.uint8) * 255, element), element, iterations=2) > 0
        assert set(frame.masks) == {0, 1, 2}
        np.testing.assert_array_equal(frame.masks[x.person_index], union)  # posepile: all characters
        # the body is red: image/rgb decoded to BGR once (posepile's extra reversal would make it blue)
        mid = np.round((pts[hspace.JOINT_INFO.ids["spin1"]] + pts[hspace.JOINT_INFO.ids["spin2"]]) / 2).astype(int)
        np.testing.assert_allclose(frame.image[mid[1], mid[0]], fixture.BODY_COLOUR, atol=2)
    own = hspace.frame_source(raw, {"mask": "person"})(FILE_A, [0])
    masks = next(own)[1].masks
    assert not (masks[0] & masks[1]).any() and masks[2].sum() < masks[0].sum() / 10


def test_projection_onto_marks_and_crops(raw, cache):
    marks = fixture.fixture_marks(raw)
    ids = hspace.JOINT_INFO.ids
    mark_err, frame_err, crop_err, shins = [], [], [], []
    images = {}
    with Cache(cache) as c:
        assert c.split_counts()["train"] == 9
        for i in range(len(c)):
            ex = c[i]
            source, frame_index = c.blob("source_path", i).decode().split("#")
            frame_index = int(frame_index)
            person = int(ex.subject.rsplit("RIGGED_", 1)[1])
            rec = next(r for r in hspace.records(raw / source) if r.index == frame_index)
            camera = rec.camera()
            np.testing.assert_array_equal(camera.intrinsic_matrix[[0, 1, 0, 1], [0, 1, 2, 2]],
                                          rec.features["camera_intrinsics"])
            wc = np.asarray(ex.world_coords, np.float64)
            np.testing.assert_allclose(wc, rec.joints(person)[list(hspace.SELECTED_JOINTS)], atol=1e-3)
            projected = camera.project(wc)
            drawn = marks[Path(source).stem][frame_index]
            mark_err.extend(np.linalg.norm(projected - drawn[person], axis=1))
            if (source, frame_index) not in images:
                images[source, frame_index] = rec.image()
            others = np.concatenate([p for k, p in drawn.items() if k != person])
            alone = isolated(projected, 12) & (np.linalg.norm(projected[:, None] - others[None], axis=-1).min(1) > 12)
            for p in projected[alone]:
                centroid = mark_centroid(images[source, frame_index], p, 6)
                if centroid is not None:
                    frame_err.append(np.linalg.norm(centroid - p))
            crop = ex.decode_image()
            in_crop = ex.camera.project(wc)
            for p in in_crop[alone & isolated(in_crop, 12)]:
                centroid = mark_centroid(crop, p, 5)
                if centroid is not None:
                    crop_err.append(np.linalg.norm(centroid - p))
            mask = ex.decode_mask()  # the union of the characters, from the record's label image
            torso = np.round(in_crop[ids["spin2"]]).astype(int)
            assert mask is not None and mask[torso[1], torso[0]]
            shins.append(np.linalg.norm(wc[ids["lkne"]] - wc[ids["lank"]]))
            up = np.asarray(ex.camera.world_up)
            np.testing.assert_allclose(up, [0, -1, 0])
            assert (wc[ids["neck"]] - wc[ids["pelv"]]) @ up > 400  # the neck above the pelvis, in mm
    assert len(mark_err) == 9 * 35 and max(mark_err) < 1e-3, max(mark_err)  # onto the drawn positions
    assert len(frame_err) > 100 and max(frame_err) < 1.0, max(frame_err)  # onto the marks in the frames
    assert len(crop_err) > 80 and max(crop_err) < 1.5, max(crop_err)  # through the crop cameras
    t = fixture.template()
    shin_m = np.linalg.norm(t[hspace.GHUM_JOINTS.index("lkne")] - t[hspace.GHUM_JOINTS.index("lank")])
    np.testing.assert_allclose(shins, shin_m * 1000, atol=0.05)  # 41.2 cm, stored in mm


# ------------------------------------------------------------------------------------------- errors, params
def test_missing_files_are_named(raw, tmp_path):
    with pytest.raises(RawLayoutError, match="2021_01/train/"):
        hspace.check_layout(tmp_path)
    (tmp_path / hspace.TRAIN_DIR).mkdir(parents=True)
    with pytest.raises(RawLayoutError, match="no TFRecord files"):
        hspace.check_layout(tmp_path)
    with pytest.raises(RawLayoutError, match="missing 2021_01/train/nosuch.tfrecord"):
        hspace.instances(raw, {"files": ["nosuch"]})


def test_bad_files_are_named(raw, tmp_path):
    broken = copy_raw(raw, tmp_path)
    path = broken / FILE_B
    data = bytearray(path.read_bytes())
    first = struct.unpack("<Q", data[:8])[0] + 16
    data[first + 12 + 100] ^= 0xFF  # a byte of record 1
    path.write_bytes(bytes(data))
    with pytest.raises(RawFileError, match="record 1: data CRC mismatch") as e:
        hspace.instances(broken)
    assert e.value.path == path
    out = tmp_path / "out" / "hspace"
    with pytest.raises(RawFileError):
        convert("hspace", broken, out, None, progress=False)
    assert_no_output(out)
    recs = [d for _, d in tfrecord.read_records(raw / FILE_B)]
    features = tfrecord.parse_example(recs[0])
    del features["RIGGED_1/joints_3d"]
    tfrecord.write_records(path, [tfrecord.encode_example(features), *recs[1:]])
    with pytest.raises(RawFileError, match="record 0: feature 'RIGGED_1/joints_3d' is missing"):
        hspace.instances(broken)
    features = tfrecord.parse_example(recs[0])
    features["image/rgb"] = [b"not an image"]
    tfrecord.write_records(path, [tfrecord.encode_example(features), *recs[1:]])
    frames = dict(hspace.frame_source(broken)(FILE_B, [0, 2, 7]))
    assert frames[0].image is None and frames[0].problem == "image/rgb does not decode"
    assert frames[2].image is not None and frames[7].problem == "no such record in the TFRecord file"
    tfrecord.write_records(path, [b"\x0a\x05abc", *recs[1:]])
    with pytest.raises(RawFileError, match="record 0: not a tf.train.Example"):
        hspace.instances(broken)


def test_bad_params():
    for key, value in (("splits", ["val"]), ("files", ["a", "a"]), ("adaptive_sampling_mm", -1.0),
                       ("sampler_buffer", 0), ("morphology_px", 0), ("min_box_side_px", -1.0), ("mask", "none")):
        with pytest.raises(ParamsError) as e:
            hspace.check_params({key: value})
        assert e.value.where == f"datasets.hspace.{key}"
