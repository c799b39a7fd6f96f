"""Person masks on full frames, one per person box.

Two backends:

* ``grabcut`` (default, needs only OpenCV): ``cv2.grabCut`` on a crop around each box, initialised with the box
  (outside = background) and, when joint points are given, with small sure-foreground disks at the projected
  joints inside the box.
* ``sam``: Segment Anything with an official checkpoint (``docs/models.md``). The image is encoded once, then all
  boxes are decoded in batches, each prompted with its box and, optionally, the projected joints inside it as
  positive points.

Boxes are ``[x, y, w, h]`` in the convention of :mod:`posebank.imaging.crop` (pixel centres at integer
coordinates); masks are boolean ``(H, W)`` arrays in full-image coordinates, and :func:`encode_masks` turns them
into COCO RLE as stored in the caches.

:func:`load_sam` builds the model from the checkpoint's own tensors: the image-encoder configuration (width, depth,
heads, windowed/global blocks, input size) and the prompt-encoder/decoder sizes are read from the state dict's
shapes, so the official ViT-B/L/H checkpoints and any smaller SAM-structured checkpoint load the same way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import typing
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from posebank.core.errors import ModelError
from posebank.core.masks import encode
from posebank.core.settings import SegmentParams

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

log = logging.getLogger(__name__)

BACKENDS = ("grabcut", "sam")
MODEL_TYPES = typing.get_args(typing.get_type_hints(SegmentParams)["model_type"])


# ------------------------------------------------------------------------------------------- SAM model
@dataclasses.dataclass(frozen=True)
class SamConfig:
    """Everything that fixes the module structure of a ``segment_anything.modeling.Sam``."""

    encoder_embed_dim: int
    encoder_depth: int
    encoder_num_heads: int
    encoder_global_attn_indexes: tuple[int, ...]
    encoder_window_size: int = 14
    encoder_mlp_ratio: float = 4.0
    encoder_patch_size: int = 16
    encoder_use_rel_pos: bool = True
    encoder_qkv_bias: bool = True
    image_size: int = 1024
    prompt_embed_dim: int = 256  # = the image encoder's output channels
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_num_heads: int = 8  # not visible in the tensors' shapes; SAM's value
    decoder_attention_downsample_rate: int = 2
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256

    @property
    def model_type(self) -> str:
        """``vit_b``, ``vit_l`` or ``vit_h`` when this is one of the published configurations, else ``other``."""
        return next((name for name, c in STANDARD_CONFIGS.items() if c == self), "other")


def _global_every_quarter(depth: int) -> tuple[int, ...]:
    """SAM's layout: the last block of each quarter of the encoder attends globally, the others in windows."""
    return tuple(sorted({(k + 1) * depth // 4 - 1 for k in range(4)} - {-1}))


STANDARD_CONFIGS = {
    "vit_b": SamConfig(768, 12, 12, _global_every_quarter(12)),  # (2, 5, 8, 11)
    "vit_l": SamConfig(1024, 24, 16, _global_every_quarter(24)),  # (5, 11, 17, 23)
    "vit_h": SamConfig(1280, 32, 16, _global_every_quarter(32)),  # (7, 15, 23, 31)
}
_STANDARD_HEADS = {c.encoder_embed_dim: c.encoder_num_heads for c in STANDARD_CONFIGS.values()}
_SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
_SAM_PIXEL_STD = (58.395, 57.12, 57.375)


def _shape(state_dict: dict, key: str) -> tuple[int, ...]:
    if key not in state_dict:
        raise ValueError(f"not a SAM state dict: it has no tensor {key!r}")
    return tuple(state_dict[key].shape)


def _count(state_dict: dict, prefix: str) -> int:
    """Number of consecutive submodules ``prefix.0``, ``prefix.1``, ... present in the state dict."""
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.")
    found = {int(m.group(1)) for k in state_dict if (m := pattern.match(k))}
    if found != set(range(len(found))):
        raise ValueError(f"not a SAM state dict: {prefix} numbered {sorted(found)}")
    return len(found)


def infer_sam_config(state_dict: dict) -> SamConfig:
    """The :class:`SamConfig` whose ``Sam`` has exactly the tensors of ``state_dict`` (names and shapes)."""
    sd = state_dict
    proj = _shape(sd, "image_encoder.patch_embed.proj.weight")
    if len(proj) != 4 or proj[1] != 3 or proj[2] != proj[3]:
        raise ValueError(f"not a SAM state dict: patch embedding of shape {proj}")
    embed_dim, _, patch, _ = proj
    pos = _shape(sd, "image_encoder.pos_embed")
    if len(pos) != 4 or pos[1] != pos[2] or pos[3] != embed_dim:
        raise ValueError(f"not a SAM state dict: image_encoder.pos_embed of shape {pos}")
    grid = pos[1]
    depth = _count(sd, "image_encoder.blocks")
    if depth == 0:
        raise ValueError("not a SAM state dict: no image_encoder.blocks")
    block = "image_encoder.blocks.{}.attn."
    mlp_hidden = _shape(sd, "image_encoder.blocks.0.mlp.lin1.weight")[0]
    _shape(sd, block.format(0) + "qkv.weight")
    rel = [sd.get(block.format(i) + "rel_pos_h") for i in range(depth)]
    use_rel_pos = rel[0] is not None
    if any((r is not None) != use_rel_pos for r in rel):
        raise ValueError("not a SAM state dict: relative position tables in some encoder blocks only")
    if use_rel_pos:
        head_dim = rel[0].shape[1]
        if embed_dim % head_dim:
            raise ValueError(f"not a SAM state dict: head size {head_dim} does not divide width {embed_dim}")
        num_heads = embed_dim // head_dim
        # a block's table spans 2 s - 1 positions, s = its attention window (the whole grid for global blocks)
        lengths = [r.shape[0] for r in rel]
        global_len = 2 * grid - 1
        windowed = {n for n in lengths if n != global_len}
        if len(windowed) > 1 or any(n % 2 == 0 for n in windowed):
            raise ValueError(f"not a SAM state dict: relative position tables of lengths {sorted(set(lengths))}")
        window = (windowed.pop() + 1) // 2 if windowed else 0
        global_indexes = tuple(i for i, n in enumerate(lengths) if n == global_len)
    else:
        if embed_dim not in _STANDARD_HEADS:
            raise ValueError(f"cannot tell the number of attention heads of a {embed_dim}-wide encoder "
                             "without relative position tables")
        num_heads, window, global_indexes = _STANDARD_HEADS[embed_dim], 14, _global_every_quarter(depth)

    out_chans = _shape(sd, "image_encoder.neck.0.weight")[0]
    prompt_dim = _shape(sd, "prompt_encoder.point_embeddings.0.weight")[-1]
    if prompt_dim != out_chans:
        raise ValueError(f"not a SAM state dict: encoder output {out_chans} != prompt embedding {prompt_dim}")
    layer = "mask_decoder.transformer.layers.0."
    internal = _shape(sd, layer + "cross_attn_token_to_image.q_proj.weight")[0]
    return SamConfig(
        encoder_embed_dim=embed_dim,
        encoder_depth=depth,
        encoder_num_heads=num_heads,
        encoder_global_attn_indexes=global_indexes,
        encoder_window_size=window,
        encoder_mlp_ratio=mlp_hidden / embed_dim,
        encoder_patch_size=patch,
        encoder_use_rel_pos=use_rel_pos,
        encoder_qkv_bias=block.format(0) + "qkv.bias" in sd,
        image_size=grid * patch,
        prompt_embed_dim=out_chans,
        mask_in_chans=_shape(sd, "prompt_encoder.mask_downscaling.3.weight")[0],
        decoder_depth=_count(sd, "mask_decoder.transformer.layers"),
        decoder_mlp_dim=_shape(sd, layer + "mlp.lin1.weight")[0],
        decoder_attention_downsample_rate=max(1, out_chans // internal),
        num_multimask_outputs=_shape(sd, "mask_decoder.mask_tokens.weight")[0] - 1,
        iou_head_depth=_count(sd, "mask_decoder.iou_prediction_head.layers"),
        iou_head_hidden_dim=_shape(sd, "mask_decoder.iou_prediction_head.layers.0.weight")[0],
    )


def build_sam_model(config: SamConfig) -> Sam:
    """An untrained ``Sam`` of the given configuration, put together as segment_anything's builder does."""
    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    c = config
    grid = c.image_size // c.encoder_patch_size
    encoder = ImageEncoderViT(
        img_size=c.image_size,
        patch_size=c.encoder_patch_size,
        in_chans=3,
        embed_dim=c.encoder_embed_dim,
        depth=c.encoder_depth,
        num_heads=c.encoder_num_heads,
        mlp_ratio=c.encoder_mlp_ratio,
        out_chans=c.prompt_embed_dim,
        qkv_bias=c.encoder_qkv_bias,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        use_rel_pos=c.encoder_use_rel_pos,
        window_size=c.encoder_window_size,
        global_attn_indexes=tuple(c.encoder_global_attn_indexes),
    )
    prompt_encoder = PromptEncoder(
        embed_dim=c.prompt_embed_dim,
        image_embedding_size=(grid, grid),
        input_image_size=(c.image_size, c.image_size),
        mask_in_chans=c.mask_in_chans,
    )
    decoder = MaskDecoder(
        transformer_dim=c.prompt_embed_dim,
        transformer=TwoWayTransformer(
            depth=c.decoder_depth,
            embedding_dim=c.prompt_embed_dim,
            num_heads=c.decoder_num_heads,
            mlp_dim=c.decoder_mlp_dim,
            attention_downsample_rate=c.decoder_attention_downsample_rate,
        ),
        num_multimask_outputs=c.num_multimask_outputs,
        iou_head_depth=c.iou_head_depth,
        iou_head_hidden_dim=c.iou_head_hidden_dim,
    )
    sam = Sam(image_encoder=encoder, prompt_encoder=prompt_encoder, mask_decoder=decoder,
              pixel_mean=list(_SAM_PIXEL_MEAN), pixel_std=list(_SAM_PIXEL_STD))
    return sam.eval()


def read_sam_state_dict(checkpoint) -> dict:
    """The tensors of a SAM checkpoint file (a plain ``state_dict``, as the official ones are)."""
    import torch

    path = Path(checkpoint)
    if not path.is_file():
        raise ModelError(path, "SAM checkpoint not found: download it or copy it there, "
                                "or point segment.checkpoint in params.yaml at it (see docs/models.md)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any unreadable file is reported the same way
        raise ModelError(path, f"is not a readable PyTorch checkpoint: {e}") from None
    if isinstance(obj, dict):  # fine-tuning scripts often nest the weights
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), dict) and "image_encoder.patch_embed.proj.weight" not in obj:
                obj = obj[key]
    if not (isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values())):
        raise ModelError(path, "is not a SAM checkpoint: expected a state dict of tensors, "
                         f"found {type(obj).__name__}")
    return obj


def load_sam(checkpoint, model_type: str = "auto", device="auto") -> Sam:
    """Build the ``Sam`` that ``checkpoint`` (a state dict) describes, load its weights strictly, eval, to device.

    ``model_type`` ``auto`` takes the configuration from the tensors' shapes; ``vit_b``/``vit_l``/``vit_h`` also
    check that the checkpoint is that published configuration. For the published checkpoints the result is the
    module that ``segment_anything.sam_model_registry[model_type](checkpoint=...)`` builds.
    """
    from posebank.vision.device import resolve_device

    if model_type not in MODEL_TYPES:
        raise ValueError(f"unknown SAM model_type {model_type!r}; use one of {MODEL_TYPES}")
    target = resolve_device(device)
    state_dict = read_sam_state_dict(checkpoint)
    try:
        config = infer_sam_config(state_dict)
    except ValueError as e:
        raise ModelError(checkpoint, f"is not a SAM checkpoint: {e}") from None
    if model_type != "auto" and config != STANDARD_CONFIGS[model_type]:
        raise ModelError(checkpoint, f"is not a {model_type} checkpoint: its tensors describe "
                         f"{config.model_type} ({config.encoder_embed_dim} wide, {config.encoder_depth} blocks, "
                         f"{config.image_size} px input)")
    sam = build_sam_model(config)
    try:
        sam.load_state_dict(state_dict, strict=True)
    except RuntimeError as e:
        raise ModelError(checkpoint, f"does not fit a SAM model: {e}") from None
    log.info("SAM %s (%d blocks, %d px input) from %s on %s", config.model_type, config.encoder_depth,
             config.image_size, checkpoint, target)
    return sam.eval().to(target)


# ------------------------------------------------------------------------------------------- segmenters
def _prepare_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[..., :3])
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) BGR image, got shape {image.shape}")
    return np.ascontiguousarray(image)


class Segmenter:
    """``segment(image_bgr, boxes, points)`` -> one boolean ``(H, W)`` mask per box."""

    def __init__(self, params: SegmentParams):
        self.params = params

    def segment(self, image_bgr, boxes, points: Sequence[np.ndarray | None] | None = None) -> list[np.ndarray]:
        """Masks for the ``(P, 4)`` boxes ``[x, y, w, h]``; ``points[i]`` are person i's projected joints
        ``(J, 2)`` (non-finite rows and rows outside the box are ignored), or None. Invalid or empty boxes
        (non-finite, no pixel inside the image) get an empty mask."""
        image = _prepare_image(image_bgr)
        h, w = image.shape[:2]
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        if points is not None and len(points) != len(boxes):
            raise ValueError(f"{len(points)} point sets for {len(boxes)} boxes")
        corners, valid = self._boxes(boxes, w, h)
        prompts = [self._points(None if points is None else points[i], corners[i]) for i in range(len(boxes))]
        masks = [np.zeros((h, w), bool) for _ in range(len(boxes))]
        todo = np.flatnonzero(valid)
        if len(todo):
            for i, m in zip(todo, self._segment(image, corners[todo], [prompts[i] for i in todo])):
                masks[i] = m
        return masks

    def _boxes(self, boxes: np.ndarray, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        """Boxes with the margin as corners ``[x0, y0, x1, y1]`` clipped to the image (which spans -0.5 .. size
        - 0.5), and whether each still holds a pixel centre."""
        m = self.params.box_margin
        x, y, bw, bh = boxes.T
        with np.errstate(invalid="ignore"):
            corners = np.stack([x - m * bw, y - m * bh, x + bw * (1 + m), y + bh * (1 + m)], axis=1)
            corners = np.clip(corners, -0.5, np.array([w, h, w, h]) - 0.5)
            valid = (np.isfinite(boxes).all(1) & (bw > 0) & (bh > 0)
                     & (np.floor(corners[:, 2]) >= np.ceil(corners[:, 0]))
                     & (np.floor(corners[:, 3]) >= np.ceil(corners[:, 1])))
        return corners, valid

    def _points(self, points, corners: np.ndarray) -> np.ndarray:
        if points is None or not self.params.use_joint_points:
            return np.zeros((0, 2))
        p = np.asarray(points, np.float64).reshape(-1, 2)
        with np.errstate(invalid="ignore"):
            inside = (np.isfinite(p).all(1) & (p[:, 0] >= corners[0]) & (p[:, 0] <= corners[2])
                      & (p[:, 1] >= corners[1]) & (p[:, 1] <= corners[3]))
        return p[inside]

    def _segment(self, image: np.ndarray, corners: np.ndarray, points: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError


def box_seed(seed: int, corners, shape) -> int:
    """A 31-bit RNG seed from the settings' seed, the box corners (to 1/100 px) and the image shape."""
    key = np.concatenate([[seed], np.round(np.asarray(corners, np.float64) * 100), shape[:2]]).astype(np.int64)
    return int.from_bytes(hashlib.sha256(key.tobytes()).digest()[:4], "little") & 0x7FFFFFFF


class GrabCutSegmenter(Segmenter):
    context = 0.25  # the crop extends this fraction of the box's long side beyond it (background samples)

    def _segment(self, image, corners, points):
        return [self._one(image, c, p) for c, p in zip(corners, points)]

    def _one(self, image: np.ndarray, corners: np.ndarray, points: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        out = np.zeros((h, w), bool)
        # pixels whose centres lie in the box
        x0, y0 = int(np.ceil(corners[0])), int(np.ceil(corners[1]))
        x1, y1 = int(np.floor(corners[2])), int(np.floor(corners[3]))
        bw, bh = x1 - x0 + 1, y1 - y0 + 1
        if min(bw, bh) < 4:  # too small to model colours: the box is the best answer
            out[y0:y1 + 1, x0:x1 + 1] = True
            return out
        pad = max(8, int(round(self.context * max(bw, bh))))
        cx0, cy0, cx1, cy1 = max(x0 - pad, 0), max(y0 - pad, 0), min(x1 + 1 + pad, w), min(y1 + 1 + pad, h)
        crop = image[cy0:cy1, cx0:cx1]
        full_shape = crop.shape[:2]
        # GrabCut's cost grows with the pixel count: work on a reduced copy of large regions, then upsample
        f = min(1.0, self.params.grabcut_max_side / max(full_shape))
        if f < 1.0:
            crop = cv2.resize(crop, (max(1, round(full_shape[1] * f)), max(1, round(full_shape[0] * f))),
                              interpolation=cv2.INTER_AREA)
            x0r, y0r = int(round((x0 - cx0) * f)), int(round((y0 - cy0) * f))
            bw = max(1, min(int(round(bw * f)), crop.shape[1] - x0r))
            bh = max(1, min(int(round(bh * f)), crop.shape[0] - y0r))
            points = (np.asarray(points, np.float64).reshape(-1, 2) - [cx0, cy0] + 0.5) * f - 0.5 + [cx0, cy0]
            rect = (x0r, y0r, bw, bh)
        else:
            rect = (x0 - cx0, y0 - cy0, bw, bh)
        has_background = crop.shape[:2] != (bh, bw)
        bgd_model, fgd_model = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        iterations = int(self.params.grabcut_iterations)
        # GrabCut initialises its colour models with OpenCV's global RNG: seed it per box, so a mask depends only
        # on the image, the box and the settings, never on what this process segmented before
        cv2.setRNGSeed(box_seed(self.params.seed, corners, image.shape))
        if has_background and not len(points):
            mask = np.zeros(crop.shape[:2], np.uint8)
            cv2.grabCut(crop, mask, rect, bgd_model, fgd_model, iterations, cv2.GC_INIT_WITH_RECT)
        else:
            mask = np.full(crop.shape[:2], cv2.GC_BGD, np.uint8)
            mask[rect[1]:rect[1] + bh, rect[0]:rect[0] + bw] = cv2.GC_PR_FGD
            disks = np.zeros_like(mask)
            radius = max(2, int(round(0.02 * max(bw, bh))))
            for px, py in np.round(points - [cx0, cy0]).astype(int):
                cv2.circle(disks, (int(px), int(py)), radius, 1, -1)
            mask[(disks > 0) & (mask == cv2.GC_PR_FGD)] = cv2.GC_FGD
            if not has_background:  # the box covers the image: its outermost pixels serve as probable background
                for edge in (mask[0], mask[-1], mask[:, 0], mask[:, -1]):
                    edge[edge != cv2.GC_FGD] = cv2.GC_PR_BGD
            cv2.grabCut(crop, mask, None, bgd_model, fgd_model, iterations, cv2.GC_INIT_WITH_MASK)
        fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
        if f < 1.0:
            fg = cv2.resize(fg * 255, (full_shape[1], full_shape[0]), interpolation=cv2.INTER_LINEAR) > 127
        out[cy0:cy1, cx0:cx1] = fg > 0
        return out


class SamSegmenter(Segmenter):
    def __init__(self, params: SegmentParams):
        super().__init__(params)
        from segment_anything import SamPredictor

        self.model = load_sam(params.checkpoint, params.model_type, params.device)
        self.predictor = SamPredictor(self.model)

    def _segment(self, image, corners, points):
        import torch

        h, w = image.shape[:2]
        predictor, transform = self.predictor, self.predictor.transform
        # SAM takes a prompt coordinate u as the pixel index of its (resized) input and adds 0.5; posebank's pixel
        # centres are at integers. Shift so that after SAM's scaling both mean the same image location.
        new_h, new_w = transform.get_preprocess_shape(h, w, transform.target_length)
        shift = 0.5 - 0.5 / np.array([new_w / w, new_h / h])
        masks: list[np.ndarray | None] = [None] * len(corners)
        # boxes with equal numbers of points are decoded together (no padding prompts that would change the masks)
        counts = np.array([len(p) for p in points])
        order = np.argsort(counts, kind="stable")
        batches = []
        for n in np.unique(counts):
            group = order[counts[order] == n]
            batches += [group[i:i + self.params.batch_size] for i in range(0, len(group), self.params.batch_size)]
        device = predictor.device
        try:
            with torch.inference_mode():
                predictor.set_image(np.ascontiguousarray(image[..., ::-1]), image_format="RGB")
                for batch in batches:
                    box = torch.as_tensor((corners[batch].reshape(-1, 2, 2) + shift).reshape(-1, 4),
                                          dtype=torch.float32, device=device)
                    box = transform.apply_boxes_torch(box, (h, w))
                    coords = labels = None
                    if counts[batch[0]]:
                        pts = np.stack([points[i] for i in batch]) + shift
                        coords = transform.apply_coords_torch(
                            torch.as_tensor(pts, dtype=torch.float32, device=device), (h, w))
                        labels = torch.ones(coords.shape[:2], dtype=torch.int, device=device)
                    out, scores, _ = predictor.predict_torch(coords, labels, box,
                                                             multimask_output=self.params.multimask)
                    best = scores.argmax(dim=1) if self.params.multimask else torch.zeros_like(scores[:, 0]).long()
                    chosen = out[torch.arange(len(batch), device=out.device), best].cpu().numpy()
                    for i, m in zip(batch, chosen):
                        masks[i] = m.astype(bool)
        finally:
            predictor.reset_image()
        return masks


def make_segmenter(params: SegmentParams | dict | None = None) -> Segmenter:
    """The segmenter for ``params`` (a :class:`SegmentParams` or the ``segment:`` mapping of params.yaml)."""
    if not isinstance(params, SegmentParams):
        params = SegmentParams.from_dict(params)
    if params.backend == "sam":
        return SamSegmenter(params)
    if params.backend == "grabcut":
        return GrabCutSegmenter(params)
    raise ValueError("segment backend 'none' has no segmenter")


def encode_masks(masks) -> list[bytes]:
    """COCO RLE (compressed counts, as :func:`posebank.core.masks.encode`) of each mask."""
    return [encode(m) for m in masks]
