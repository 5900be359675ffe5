"""Shared helpers for the Depth Anything V2 reference scripts in this folder.

Imports the OFFICIAL reference code (github.com/DepthAnything/Depth-Anything-V2) from a checkout
given with --reference, without modifying it, and builds its `DepthAnythingV2` model at a chosen
size with seeded random weights (no pretrained weights are needed or downloaded).

Not run on its own; see export_models.py and preprocess_fixtures.py.
"""

import sys
import types
from pathlib import Path


def import_reference(reference: Path):
    """Returns the reference's `depth_anything_v2.dpt` and `.dinov2` modules.

    The reference imports `torchvision.transforms.Compose` only to chain its three transforms.
    When torchvision is not installed, an equivalent one-class stand-in is registered (it applies
    the transforms in order, exactly as torchvision's `Compose.__call__` does); nothing else is
    replaced.
    """
    reference = reference.resolve()
    if not (reference / "depth_anything_v2" / "dpt.py").is_file():
        sys.exit(f"{reference} is not a Depth-Anything-V2 checkout (no depth_anything_v2/dpt.py)")
    try:
        import torchvision.transforms  # noqa: F401
    except ImportError:
        class Compose:
            def __init__(self, transforms):
                self.transforms = transforms

            def __call__(self, img):
                for t in self.transforms:
                    img = t(img)
                return img

        tv = types.ModuleType("torchvision")
        tvt = types.ModuleType("torchvision.transforms")
        tvt.Compose = Compose
        tv.transforms = tvt
        sys.modules["torchvision"] = tv
        sys.modules["torchvision.transforms"] = tvt
    sys.path.insert(0, str(reference))
    from depth_anything_v2 import dinov2, dpt

    return dpt, dinov2


# The reference's own configuration for the Small model (README "model_configs").
SMALL = dict(encoder="vits", features=64, out_channels=[48, 96, 192, 384])

# A tiny model with the same architecture and the same input/output contract: the ViT-S
# constructor is replaced by one with a smaller width and depth (a configuration change: the
# reference's DinoVisionTransformer, blocks, DPT head and every forward are used unchanged), and
# the four feature taps are set to the four blocks it has.
TINY_VIT = dict(embed_dim=32, depth=4, num_heads=2, mlp_ratio=4)
TINY = dict(encoder="vits", features=16, out_channels=[8, 16, 32, 32])
TINY_TAPS = [0, 1, 2, 3]


def build_model(reference: Path, tiny: bool, seed: int):
    """The reference `DepthAnythingV2`, in eval mode, with weights drawn from `seed`."""
    import torch
    from functools import partial

    dpt, dinov2 = import_reference(reference)
    if tiny:
        def vit_tiny(patch_size=16, num_register_tokens=0, **kwargs):
            return dinov2.DinoVisionTransformer(
                patch_size=patch_size,
                block_fn=partial(dinov2.Block, attn_class=dinov2.MemEffAttention),
                num_register_tokens=num_register_tokens,
                **TINY_VIT,
                **kwargs,
            )

        dinov2.vit_small = vit_tiny
    torch.manual_seed(seed)
    model = dpt.DepthAnythingV2(**(TINY if tiny else SMALL))
    if tiny:
        model.intermediate_layer_idx = dict(model.intermediate_layer_idx, vits=TINY_TAPS)
    # The reference initialises the positional embedding with std 0.02 and the class token with
    # std 1e-6, as for training from scratch; give them trained-like magnitudes so the random
    # model's output depends on them (a stronger test of the export and of the runtime).
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed + 1)
        model.pretrained.pos_embed.normal_(0.0, 0.5, generator=g)
        model.pretrained.cls_token.normal_(0.0, 0.5, generator=g)
    model.eval()
    # With default initialisation the last convolution's output is negative everywhere, and the
    # two final ReLUs turn the depth into zeros, which would make every comparison vacuous. Shift
    # that convolution's bias so about three quarters of the pixels of a random input are
    # positive.
    last = model.depth_head.scratch.output_conv2[2]
    seen = {}
    hook = last.register_forward_hook(lambda _m, _i, out: seen.__setitem__("pre", out.clone()))
    with torch.no_grad():
        probe = torch.randn(1, 3, 14 * 6, 14 * 8, generator=torch.Generator().manual_seed(seed + 2))
        model(probe)
        hook.remove()
        last.bias -= torch.quantile(seen["pre"].flatten(), 0.25)
    return model
