"""Small randomly initialised models the tests save as checkpoints (no weights are ever downloaded)."""

from functools import partial

import torch
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer


def tiny_sam() -> Sam:
    """A random SAM small enough for a CPU test: 256 px input, a 2-block 64-wide encoder with 4x4 windows."""
    torch.manual_seed(0)
    sam = Sam(
        image_encoder=ImageEncoderViT(img_size=256, patch_size=16, embed_dim=64, depth=2, num_heads=2, mlp_ratio=4,
                                      out_chans=256, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                                      use_rel_pos=True, window_size=4, global_attn_indexes=(1,)),
        prompt_encoder=PromptEncoder(embed_dim=256, image_embedding_size=(16, 16), input_image_size=(256, 256),
                                     mask_in_chans=16),
        mask_decoder=MaskDecoder(transformer_dim=256, transformer=TwoWayTransformer(depth=2, embedding_dim=256,
                                                                                   num_heads=8, mlp_dim=512),
                                 iou_head_hidden_dim=64),
    )
    return sam.eval()
