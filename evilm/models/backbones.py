"""Small per-frame backbones for the generated world, registered in timm by name.

The quick profile's frames are 96 px with simple coloured shapes on textured noise. A plain
ResNet-style net (one basic block per stage, widths 32-256, output stride 32) learns the world's
attributes faster per CPU second than the mobile nets timm ships (benchmarks/bench_backbone_learning.py),
so it is the quick backbone. It is a timm ``ByobNet``: ``timm.create_model("world_cnn_s32")``
builds it like any other backbone, once this module is imported (``evilm.models.video_encoder``
does).
"""

from __future__ import annotations

from timm.models import generate_default_cfgs, register_model
from timm.models._builder import build_model_with_cfg
from timm.models.byobnet import ByoBlockCfg, ByobNet, ByoModelCfg

WORLD_CNN = ByoModelCfg(
    blocks=tuple(ByoBlockCfg(type="basic", d=1, c=width, s=2, br=1.0) for width in (32, 64, 128, 256)),
    stem_chs=24, stem_type="", stem_pool="", act_layer="relu", num_features=0,
)

# timm's registry reads this module's ``default_cfgs``: no weights to fetch, 96 px frames
default_cfgs = generate_default_cfgs({"world_cnn_s32": {"num_classes": 0, "input_size": (3, 96, 96)}})


@register_model
def world_cnn_s32(pretrained: bool = False, **kwargs) -> ByobNet:
    """A 1.2M-parameter plain CNN: a stride-2 stem and four stride-2 basic blocks (stride 32)."""
    return build_model_with_cfg(ByobNet, "world_cnn_s32", pretrained, model_cfg=WORLD_CNN,
                                feature_cfg=dict(flatten_sequential=True), **kwargs)
