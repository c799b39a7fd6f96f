"""MuPoTS-3D: what is specific to it (the contract is checked for every dataset in test_conformance.py)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from helpers import assert_no_output, copy_raw
from marks import mark_errors
from posebank.core.errors import ParamsError
from posebank.core.store import Cache
from posebank.datasets import RawFileError, RawLayoutError, mupots
from posebank.datasets.base import Dropped
from posebank.datasets.mupots import fixture
from posebank.imaging.video import read_image
from posebank.pipeline.run import convert

SEQUENCES = [1, 6]  # one indoor (2048 x 2048) and one outdoor (1920 x 1080) sequence
PARAMS = {"sequences": SEQUENCES}


@pytest.fixture(scope="module")
def mupots_raw(tmp_path_factory) -> Path:
    return mupots.make_fixture(tmp_path_factory.mktemp("mupots_raw"), seed=4, sequences=SEQUENCES, n_frames=12)


@pytest.fixture(scope="module")
def mupots_cache(mupots_raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mupots_cache") / "mupots"
    convert("mupots", mupots_raw, out, PARAMS, progress=False)
    return out


def annot_path(raw: Path, seq: int) -> Path:
    return raw / "MultiPersonTestSet" / f"TS{seq}" / "annot.mat"


# ------------------------------------------------------------------------------------------- format
def test_fixture_files_have_the_release_layout(mupots_raw):
    assert json.loads((mupots_raw / ".posebank-fixture").read_text())["dataset"] == "mupots"
    for seq, n_people in ((1, 3), (6, 2)):
        folder = mupots_raw / "MultiPersonTestSet" / f"TS{seq}"
        assert scipy.io.whosmat(folder / "annot.mat") == [("annotations", (12, n_people), "cell")]
        assert scipy.io.whosmat(folder / "occlusion.mat") == [("occlusion_labels", (12, n_people), "cell")]
        cells = scipy.io.loadmat(folder / "annot.mat")["annotations"]
        cell = cells[0, 0]  # a 1x1 struct in each cell
        assert cell.shape == (1, 1)
        assert set(cell.dtype.names) == {"annot2", "annot3", "univ_annot3", "isValidFrame"}
        assert cell["annot2"][0, 0].shape == (2, 17) and cell["annot3"][0, 0].shape == (3, 17)
        assert cell["univ_annot3"][0, 0].shape == (3, 17) and cell["isValidFrame"][0, 0].shape == (1, 1)
        assert scipy.io.loadmat(folder / "occlusion.mat")["occlusion_labels"][0, 0].shape == (1, 17)
        assert sorted(p.name for p in folder.glob("img_*.jpg")) == [f"img_{i:06d}.jpg" for i in range(12)]
        assert mupots.jpeg_size(folder / "img_000011.jpg") == mupots.image_size(seq)
    assert mupots.image_size(1) == (2048, 2048) and mupots.image_size(6) == (1920, 1080)


def test_read_annotations(mupots_raw):
    ann = mupots.read_annotations(annot_path(mupots_raw, 1))
    assert (ann.n_frames, ann.n_people) == (12, 3)
    assert ann.annot2.shape == (12, 3, 17, 2) and ann.annot3.shape == (12, 3, 17, 3)
    assert not ann.valid[-1].any() and not ann.valid[6:8, 2].any() and ann.valid.sum() == 12 * 3 - 3 - 2
    # the release's order: pelvis (14) about 950 mm below the head top (0), up being -y in the camera frame
    height = ann.annot3[ann.valid][:, 14, 1] - ann.annot3[ann.valid][:, 0, 1]
    assert np.all((700 < height) & (height < 1000))
    assert mupots.JOINT_INFO.names[-1] == "pelv" and mupots.JOINT_INFO.names[14:16] == ("spin", "head")
    occ = mupots.read_occlusions(annot_path(mupots_raw, 1).with_name("occlusion.mat"))
    assert occ.shape == (12, 3, 17) and occ.dtype == bool


# ------------------------------------------------------------------------------------------- intrinsics
def test_estimate_intrinsics_exact_on_noiseless_points():
    rng = np.random.default_rng(0)
    k = np.array([[1480.0, 0, 1030.5], [0, 1476.0, 1011.2], [0, 0, 1]])
    p3 = np.stack([rng.uniform(-2000, 2000, 300), rng.uniform(-800, 1400, 300), rng.uniform(3000, 8000, 300)], 1)
    p2 = p3[:, :2] / p3[:, 2:] @ k[:2, :2].T + k[:2, 2]
    np.testing.assert_allclose(mupots.estimate_intrinsics(p3, p2), k, rtol=1e-9, atol=1e-6)
    # a few grossly wrong 2D points: the refined fit ignores them, the plain one is pulled away
    p2_bad = p2.copy()
    p2_bad[:12] += rng.uniform(60, 120, (12, 2))
    plain = mupots.estimate_intrinsics(p3, p2_bad)
    refined = mupots.estimate_intrinsics(p3, p2_bad, refine=True)
    assert np.abs(plain - k).max() > 2
    np.testing.assert_allclose(refined, k, rtol=1e-9, atol=1e-6)
    with pytest.raises(ValueError, match="degenerate"):
        mupots.estimate_intrinsics(p3[:2], p2[:2])


@pytest.mark.parametrize("seq", SEQUENCES)
def test_intrinsics_recovered_from_the_noisy_annotations(mupots_raw, seq):
    truth = fixture.fixture_intrinsics(mupots_raw)[seq]
    ann = mupots.read_annotations(annot_path(mupots_raw, seq))
    # the stored 2D annotations are noisy: they are not exact projections under the true camera
    true_errors = mupots.reprojection_errors(truth, ann.annot3[ann.valid], ann.annot2[ann.valid])
    assert true_errors.mean() > 0.1
    for refine in (False, True):
        k = mupots.sequence_camera(ann, "annot.mat", refine=refine).intrinsic_matrix
        for (i, j) in ((0, 0), (1, 1), (0, 2), (1, 2)):
            assert k[i, j] == pytest.approx(truth[i, j], rel=0.005)
        assert k[0, 1] == 0 and k[1, 0] == 0 and np.all(k[2] == [0, 0, 1])
        errors = mupots.reprojection_errors(k, ann.annot3[ann.valid], ann.annot2[ann.valid])
        assert errors.max() < 1.0


# ------------------------------------------------------------------------------------------- conversion
def test_round_trip_on_marks_and_annot2(mupots_raw, mupots_cache):
    cameras, annotations = {}, {}
    for seq in SEQUENCES:
        annotations[seq] = mupots.read_annotations(annot_path(mupots_raw, seq))
        cameras[seq] = mupots.sequence_camera(annotations[seq], "annot.mat")
        assert cameras[seq].allclose(mupots.instances(mupots_raw, {"sequences": [seq]})[0].camera)
    raw_err, annot_err, crop_err = [], [], []
    with Cache(mupots_cache) as cache:
        images, n_examples = {}, len(cache)
        for i in range(n_examples):
            ex = cache[i]
            source, frame_index = cache.blob("source_path", i).decode().split("#")
            seq, person = int(ex.sequence[2:]), int(ex.subject.split("person")[1])
            assert source == f"MultiPersonTestSet/TS{seq}/img_{int(frame_index):06d}.jpg"
            if source not in images:
                images[source] = read_image(mupots_raw / source)
            projected = cameras[seq].project(ex.world_coords)
            raw_err.extend(mark_errors(images[source], projected, radius=7, min_distance=18))
            annot2 = annotations[seq].annot2[int(frame_index), person][list(mupots.SELECTED_JOINTS)]
            annot_err.extend(np.linalg.norm(projected - annot2, axis=-1))
            crop = ex.decode_image()
            assert ex.image_size == crop.shape[1::-1]
            crop_err.extend(mark_errors(crop, ex.camera.project(ex.world_coords), radius=5, min_distance=13))
    assert len(raw_err) > 500 and len(annot_err) == n_examples * 17 and len(crop_err) > 300
    assert max(raw_err) < 1.0, max(raw_err)  # through the estimated cameras, on the full frames
    assert max(annot_err) < 1.0, max(annot_err)  # and onto the release's own 2D annotations
    assert max(crop_err) < 1.5, max(crop_err)  # through the crop cameras, on the stored crops


def test_selection_split_and_labels(mupots_raw, mupots_cache):
    with Cache(mupots_cache) as cache:
        cols = cache.read()
        assert cache.split_counts() == {"train": 0, "val": 12 * 3 - 3 - 2 + 12 * 2 - 2, "test": 0}
        assert set(cols["sequence"]) == {"TS1", "TS6"} and set(cols["camera_name"]) == {"TS1", "TS6"}
        assert set(cols["activity"][cols["sequence"] == "TS1"]) == {"indoor"}
        assert set(cols["activity"][cols["sequence"] == "TS6"]) == {"outdoor"}
        # invalid people are not converted: TS1 person 2 in frames 6-7, nobody in TS1's last frame
        ts1_p2 = cols["frame_index"][cols["subject"] == "TS1/person2"]
        assert sorted(ts1_p2) == [0, 1, 2, 3, 4, 5, 8, 9, 10]
        assert 11 not in set(cols["frame_index"][cols["sequence"] == "TS1"])
        world = cols["world_coords"]
        assert np.all(world[:, :, 2] > 3000)  # camera frame: everyone in front of the camera
        assert np.all(world[:, 0, 1] < world[:, 16, 1])  # head top above the pelvis (up is -y)
        cam_up = cols["camera/world_up"]
        np.testing.assert_allclose(cam_up, np.tile([0, -1, 0], (len(cam_up), 1)))
        assert cache.attrs["citation"].startswith("D. Mehta")
        # visibility comes from occlusion.mat (1 visible, 0 occluded), person by person
        vis = cols["visibility"]
        assert set(np.unique(vis)) <= {0, 1}
        for seq in ("TS1", "TS6"):
            occluded = mupots.read_occlusions(mupots_raw / f"MultiPersonTestSet/{seq}/occlusion.mat")
            for row in np.flatnonzero(cols["sequence"] == seq):
                person = int(cols["subject"][row].rsplit("person", 1)[1])
                expected = 1 - occluded[cols["frame_index"][row], person][list(mupots.SELECTED_JOINTS)]
                np.testing.assert_array_equal(vis[row], expected)
    # the invalid people are reported as dropped, person by person
    dropped = []
    mupots.instances(mupots_raw, PARAMS, dropped)
    reason = "person {}: isValidFrame is 0 (not annotated in the frame)".format
    assert dropped == [Dropped("MultiPersonTestSet/TS1/annot.mat#11", reason(0), 1),  # nobody in the last frame
                       Dropped("MultiPersonTestSet/TS1/annot.mat#11", reason(1), 1),
                       Dropped("MultiPersonTestSet/TS1/annot.mat", reason(2), 3),
                       Dropped("MultiPersonTestSet/TS6/annot.mat", reason(1), 2)]
    assert sum(d.count for d in dropped) == 3 + 2 + 2
    insts = mupots.instances(mupots_raw, {"sequences": [6], "frame_step": 5, "split": "test"})
    assert sorted({r.frame_index for r in insts}) == [0, 5, 10] and {r.split for r in insts} == {"test"}
    np.testing.assert_array_equal(insts[0].camera.R, np.eye(3))
    np.testing.assert_array_equal(insts[0].camera.t, np.zeros(3))


def test_layout_without_the_multipersontestset_folder(mupots_raw, tmp_path):
    flat = tmp_path / "flat"
    shutil.copytree(mupots_raw / "MultiPersonTestSet" / "TS6", flat / "TS6")
    insts = mupots.instances(flat, {"sequences": [6]})
    assert insts and insts[0].source == "TS6/img_000000.jpg"


# ------------------------------------------------------------------------------------------- broken trees
@pytest.fixture
def broken_raw(mupots_raw, tmp_path):
    return copy_raw(mupots_raw, tmp_path)


def rewrite_cell(path: Path, frame: int, person: int, field: str, value):
    contents = scipy.io.loadmat(path)
    cells = contents["annotations"]
    cells[frame, person][field][0, 0] = value
    scipy.io.savemat(path, {"annotations": cells}, format="5")


def test_missing_annotation_file_is_named(broken_raw, tmp_path):
    annot_path(broken_raw, 6).unlink()
    out = tmp_path / "out" / "mupots"
    with pytest.raises(RawLayoutError, match=r"incomplete at .*raw: missing MultiPersonTestSet/TS6/annot\.mat"):
        convert("mupots", broken_raw, out, PARAMS, progress=False)
    assert_no_output(out)


def test_missing_frame_is_named(broken_raw, tmp_path):
    (broken_raw / "MultiPersonTestSet/TS1/img_000007.jpg").unlink()
    out = tmp_path / "mupots"
    with pytest.raises(RawLayoutError, match=r"missing MultiPersonTestSet/TS1/img_000007\.jpg$"):
        convert("mupots", broken_raw, out, PARAMS, progress=False)
    assert_no_output(out)
    # a frame without valid people is not needed
    (broken_raw / "MultiPersonTestSet/TS1/img_000011.jpg").unlink()
    assert mupots.instances(broken_raw, {"sequences": [6]})


def test_missing_sequence_folder(broken_raw, tmp_path):
    shutil.rmtree(broken_raw / "MultiPersonTestSet/TS6")
    with pytest.raises(RawLayoutError, match=r"missing MultiPersonTestSet/TS6/annot\.mat, "
                                             r"MultiPersonTestSet/TS6/img_000000\.jpg"):
        convert("mupots", broken_raw, tmp_path / "x", PARAMS, progress=False)
    assert_no_output(tmp_path / "x")


def test_wrong_shape_is_named(broken_raw, tmp_path):
    path = annot_path(broken_raw, 6)
    rewrite_cell(path, 3, 1, "annot2", np.zeros((2, 16)))
    out = tmp_path / "mupots"
    with pytest.raises(RawFileError, match=r"TS6/annot\.mat: annotations\{4,2\}\.annot2 has shape \(2, 16\), "
                                           r"expected \(2, 17\)"):
        convert("mupots", broken_raw, out, PARAMS, progress=False)
    assert_no_output(out)


def test_non_finite_values_are_named(broken_raw, tmp_path):
    path = annot_path(broken_raw, 1)
    bad = scipy.io.loadmat(path)["annotations"][2, 0]["annot3"][0, 0].copy()
    bad[2, 5] = np.nan
    rewrite_cell(path, 2, 0, "annot3", bad)
    out = tmp_path / "mupots"
    with pytest.raises(RawFileError, match=r"TS1/annot\.mat: annotations\{3,1\}\.annot3 contains non-finite"):
        convert("mupots", broken_raw, out, PARAMS, progress=False)
    assert_no_output(out)


def test_non_finite_values_of_invalid_people_are_ignored(broken_raw):
    path = annot_path(broken_raw, 1)
    rewrite_cell(path, 11, 0, "annot3", np.full((3, 17), np.nan))  # nobody is valid in frame 11
    assert len(mupots.instances(broken_raw, {"sequences": [1]})) == 12 * 3 - 3 - 2


def test_foreign_files_are_named(broken_raw, tmp_path):
    path = annot_path(broken_raw, 1)
    out = tmp_path / "mupots"
    scipy.io.savemat(path, {"annot": np.zeros(3)})
    with pytest.raises(RawFileError, match=r"TS1/annot\.mat: no 'annotations' variable \(has \['annot'\]\)"):
        convert("mupots", broken_raw, out, PARAMS, progress=False)
    assert_no_output(out)


def test_resized_frames_are_named(broken_raw, tmp_path):
    import cv2

    first = broken_raw / "MultiPersonTestSet/TS6/img_000000.jpg"
    cv2.imwrite(str(first), cv2.resize(read_image(first), (960, 540)))
    out = tmp_path / "mupots"
    with pytest.raises(RawFileError, match=r"TS6/img_000000\.jpg: frame is 960x540, but TS6 frames are 1920x1080"):
        convert("mupots", broken_raw, out, PARAMS, progress=False)
    assert_no_output(out)


def test_bad_params(mupots_raw, tmp_path):
    with pytest.raises(ParamsError, match=r"^datasets\.mupots\.sequences: unknown sequences \[21\]"):
        convert("mupots", mupots_raw, tmp_path / "x", {"sequences": [1, 21]}, progress=False)
    with pytest.raises(ParamsError, match=r"^datasets\.mupots\.frame_step: must be a positive integer"):
        mupots.instances(mupots_raw, {"sequences": [1], "frame_step": 0})
    with pytest.raises(ParamsError, match=r"^datasets\.mupots\.split: must be one of train, val, test"):
        mupots.instances(mupots_raw, {"sequences": [1], "split": "validation"})
    assert mupots.splits({"split": "test"}) == ("test",)
    assert_no_output(tmp_path / "x")
