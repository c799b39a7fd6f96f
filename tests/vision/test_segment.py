import re

import cv2
import numpy as np
import pytest
import torch
from segment_anything import sam_model_registry
from segment_anything.build_sam import _build_sam

from posebank.core import masks
from posebank.core.errors import ModelError
from posebank.imaging.crop import box_from_points
from posebank.vision.segment import (
    STANDARD_CONFIGS,
    SamConfig,
    SegmentParams,
    build_sam_model,
    encode_masks,
    infer_sam_config,
    load_sam,
    make_segmenter,
)
from tiny_models import tiny_sam

# a stick person in its own units: head, neck, shoulders, elbows, wrists, pelvis, hips, knees, ankles
JOINTS = np.array([[0, -80], [0, -55], [-25, -50], [25, -50], [-35, -15], [35, -15], [-40, 15], [40, 15],
                   [0, 10], [-14, 12], [14, 12], [-18, 55], [18, 55], [-20, 95], [20, 95]], float)
LIMBS = [(1, 0, 10), (2, 4, 11), (4, 6, 9), (3, 5, 11), (5, 7, 9), (9, 11, 13), (11, 13, 11), (10, 12, 13),
         (12, 14, 11)]


def draw_person(image, silhouette, centre, scale, colour, rng):
    """Filled head, torso and limbs in ``colour`` (with mild noise); the same shapes set in ``silhouette``."""
    joints = JOINTS * scale + centre
    j = np.round(joints).astype(int)
    shape = np.zeros(silhouette.shape, np.uint8)
    cv2.ellipse(shape, tuple(j[0]), (int(13 * scale), int(16 * scale)), 0, 0, 360, 255, -1)
    cv2.rectangle(shape, tuple(j[2] - [0, 3]), tuple(j[10]), 255, -1)
    for a, b, thickness in LIMBS:
        cv2.line(shape, tuple(j[a]), tuple(j[b]), 255, int(thickness * scale))
    on = shape > 0
    image[on] = np.clip(np.array(colour) + rng.normal(0, 5, (on.sum(), 3)), 0, 255).astype(np.uint8)
    silhouette |= on
    return joints


def two_people(seed=0):
    rng = np.random.default_rng(seed)
    h, w = 360, 480
    ramp = np.linspace(-12, 12, w)[None, :, None]  # a gentle illumination gradient plus sensor noise
    image = np.clip(np.array([90, 160, 110]) + ramp + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)
    silhouettes = [np.zeros((h, w), bool), np.zeros((h, w), bool)]
    joints = [draw_person(image, silhouettes[0], (120, 170), 1.5, (60, 60, 200), rng),
              draw_person(image, silhouettes[1], (350, 190), 1.3, (200, 120, 40), rng)]
    return image, silhouettes, joints


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_params_defaults_and_unknown_keys():
    p = SegmentParams.from_dict(None)
    assert (p.backend, p.model_type, p.device, p.grabcut_iterations) == ("grabcut", "auto", "auto", 5)
    with pytest.raises(ValueError, match="unknown setting"):
        SegmentParams.from_dict({"backend": "grabcut", "treshold": 0.5})
    with pytest.raises(ValueError, match="needs `checkpoint`"):
        SegmentParams.from_dict({"backend": "sam"})
    with pytest.raises(ValueError, match="model_type"):
        SegmentParams.from_dict({"model_type": "vit_x"})


@pytest.mark.parametrize("with_joints", [False, True])
def test_grabcut_recovers_drawn_people(with_joints):
    image, silhouettes, joints = two_people()
    # boxes as the pipeline makes them from projected joints: the tight box x 1.15 (misses the head top)
    boxes = np.array([box_from_points(j, 1.15) for j in joints])
    points = joints if with_joints else None
    result = make_segmenter({"backend": "grabcut"}).segment(image, boxes, points)
    assert len(result) == 2
    for mask, silhouette in zip(result, silhouettes):
        assert mask.dtype == bool and mask.shape == image.shape[:2]
        assert iou(mask, silhouette) >= 0.8, iou(mask, silhouette)


def test_grabcut_degenerate_boxes():
    image = np.ascontiguousarray(two_people(1)[0][60:260:2, 40:200:2])  # the left person, at half size
    h, w = image.shape[:2]
    boxes = np.array([[np.nan, 0, 10, 10],  # no box
                      [w + 5, 10, 30, 30],  # outside the image
                      [-20, -20, w + 40, h + 40],  # the whole image: no background around the box
                      [-30, 15, 60, 50]])  # partly outside, on the left edge
    segmenter = make_segmenter({"backend": "grabcut", "box_margin": 0, "grabcut_iterations": 2})
    result = segmenter.segment(image, boxes, [None] * 4)
    assert not result[0].any() and not result[1].any()
    assert result[2].any() and all(m.shape == (h, w) and m.dtype == bool for m in result)
    assert not result[3][:, 31:].any() and not result[3][66:].any() and not result[3][:15].any()


# ------------------------------------------------------------------------------------------- SAM
@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("sam") / "sam_tiny.pth"
    model = tiny_sam()
    torch.save(model.state_dict(), path)
    return path, model


def same_structure(a: torch.nn.Module, b: torch.nn.Module):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    assert all(sa[k].shape == sb[k].shape for k in sa)
    assert str(a) == str(b)  # every layer, its sizes and options
    assert [blk.window_size for blk in a.image_encoder.blocks] == [blk.window_size for blk in b.image_encoder.blocks]


def test_sam_segmenter_with_a_tiny_checkpoint(tiny_checkpoint):
    path, reference = tiny_checkpoint
    segmenter = make_segmenter(SegmentParams(backend="sam", checkpoint=str(path)))
    # the loaded model is the saved one, through the same code path as the published weights
    assert infer_sam_config(reference.state_dict()).model_type == "other"
    same_structure(segmenter.model, reference)
    for k, v in reference.state_dict().items():
        torch.testing.assert_close(segmenter.model.state_dict()[k], v, rtol=0, atol=0)

    image = np.random.default_rng(0).integers(0, 256, (180, 300, 3), np.uint8)
    boxes = np.array([[20, 30, 80, 120], [150, 20, 100, 140], [np.nan] * 4])
    points = [np.array([[50, 60], [60, 100], [np.nan, np.nan]]),  # two usable joints
              np.array([[200, 50], [210, 90], [240, 150], [400, 400]]),  # three inside the box, one far outside
              None]
    result = segmenter.segment(image, boxes, points)
    assert len(result) == 3
    for m in result:
        assert m.dtype == bool and m.shape == (180, 300)
        np.testing.assert_array_equal(masks.decode(masks.encode(m), 180, 300), m)
    assert not result[2].any()
    for counts, m in zip(encode_masks(result), result):
        np.testing.assert_array_equal(masks.decode(counts, 180, 300), m)

    # one box at a time and best-of-three masks go through the same steps
    one_by_one = make_segmenter(SegmentParams(backend="sam", checkpoint=str(path), batch_size=1, device="cpu"))
    for a, b in zip(one_by_one.segment(image, boxes, points), result):
        assert (a != b).mean() < 1e-3
    best = make_segmenter(SegmentParams(backend="sam", checkpoint=str(path), multimask=True))
    assert all(m.dtype == bool and m.shape == (180, 300) for m in best.segment(image, boxes[:2]))


def test_load_sam_rebuilds_segment_anything_models(tmp_path):
    # a checkpoint of segment_anything's own builder at a small size (1024 px input, like the published ones)
    torch.manual_seed(1)
    reference = _build_sam(encoder_embed_dim=64, encoder_depth=4, encoder_num_heads=2,
                           encoder_global_attn_indexes=[1, 3])
    torch.save(reference.state_dict(), tmp_path / "small.pth")
    loaded = load_sam(tmp_path / "small.pth", device="cpu")
    same_structure(loaded, reference)
    assert not loaded.training and loaded.device.type == "cpu"
    assert infer_sam_config(reference.state_dict()) == SamConfig(64, 4, 2, (1, 3))


def test_published_configurations_match_the_registry():
    for name in ("vit_b", "vit_l", "vit_h"):
        with torch.device("meta"):  # shapes only, no memory
            reference = sam_model_registry[name]()
            config = infer_sam_config(reference.state_dict())
            built = build_sam_model(config)
        assert config == STANDARD_CONFIGS[name] and config.model_type == name
        same_structure(built, reference)


def test_checkpoint_errors(tmp_path, tiny_checkpoint):
    missing = tmp_path / "models" / "sam_vit_b_01ec64.pth"
    with pytest.raises(ModelError, match="sam_vit_b_01ec64.pth"):
        make_segmenter({"backend": "sam", "checkpoint": str(missing)})
    with pytest.raises(ModelError, match=re.escape(str(missing))):
        load_sam(missing)

    torch.save({"backbone.weight": torch.zeros(3, 3)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match=r"other\.pth.*not a SAM checkpoint.*image_encoder"):
        load_sam(tmp_path / "other.pth")
    (tmp_path / "notes.pth").write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"notes\.pth.*not a readable PyTorch checkpoint"):
        load_sam(tmp_path / "notes.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="not a SAM checkpoint"):
        load_sam(tmp_path / "list.pth")

    path, _ = tiny_checkpoint
    with pytest.raises(ValueError, match="not a vit_b checkpoint"):
        load_sam(path, model_type="vit_b")
