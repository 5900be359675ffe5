#!/usr/bin/env python3
"""Generates the depth engine's test fixtures from the OFFICIAL Depth Anything V2 code.

Writes into crates/stereospot-stereo/tests/fixtures/ (about 2.6 MB in all):

  tiny_dav2.onnx            the reference `DepthAnythingV2` architecture at a tiny width (see
                            dav2_ref.TINY*), seeded random weights, exported with dynamic H/W
                            (opset 18); input `pixel_values` 1x3xHxW, output `predicted_depth`
                            1xHxW, the contract of onnx-community/depth-anything-v2-small
  tiny_in_70x98.npy,        fixed input tensors (float32, 1x3xHxW) and the reference PyTorch
  tiny_out_70x98.npy, ...   `forward` output for each (float32, 1xHxW)
  image_cones.npy           cones/left.png (Middlebury, 450x375), RGB uint8 HxWx3
  image_frame.npy           frame 120 of car-detection.mp4 (CC BY 4.0, Intel) scaled to 160x90
                            (cv2.INTER_AREA), RGB uint8 HxWx3
  pre_<image>_<size>.npy    the reference `image2tensor(bgr_image, size)`: float32 1x3xHxW
  infer_frame_140.npy       the reference `infer_image(frame, 140)` with the tiny model: float32
                            90x160 (the whole pipeline: preprocess, forward, bilinear upsampling)
  upsample_in.npy/_out.npy  `F.interpolate(d[:, None], (37, 61), "bilinear", align_corners=True)`
                            of a random 1x14x28 map (float32)
  resize_sizes.json         the reference `Resize.get_size` (keep_aspect_ratio, multiple of 14,
                            lower_bound) for many frame sizes and input sizes
  provenance.json           versions and seeds used

The reference is imported unchanged from a checkout (--reference). The model weights are random
(seeded): nothing is downloaded. The only change made for the ONNX export is documented in
`export_onnx` below; the PyTorch outputs saved here come from the unmodified reference.

Usage (from the repository root; /tmp/venv-ref has torch, onnx, onnxruntime, opencv, numpy):

  git --git-dir=<mirror of github.com/DepthAnything/Depth-Anything-V2> archive HEAD \
      depth_anything_v2 | tar -x -C /tmp/dav2        # or any checkout of the repository
  . /tmp/venv-ref/bin/activate
  python scripts/stereo/make_fixtures.py --reference /tmp/dav2 [--reference-commit a561b84]

Options: --data (the shared test media, default ../shared/data beside the checkout), --out.
"""

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dav2_ref  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SEED = 20240601

# Fixed forward inputs (H, W): non-square both ways, and not 518x518, where the reference skips
# the positional-embedding interpolation (see export_onnx).
FORWARD_SHAPES = [(70, 98), (42, 56)]
PREPROCESS_SIZES = {"cones": [140], "frame": [140]}


def export_onnx(model, path: Path, sample_hw=(70, 98)):
    """Exports `model` with dynamic height and width, then checks ONNX Runtime against PyTorch.

    The reference is not exportable with dynamic shapes as it stands: DINOv2's
    `interpolate_pos_encoding` converts sizes to Python floats for `F.interpolate(scale_factor=)`
    and the DPT head calls `int()` on the patch counts, and both pin the traced size. For the
    export only, (1) `interpolate_pos_encoding` is replaced by the same computation written with
    tensor ops (PyTorch's bicubic: a = -0.75, half-pixel source coordinates from the given scale
    factor, edge-clamped taps; checked against the original below), and (2) the one Resize whose
    output size was frozen (the head's final bilinear upsampling to patch*14 = the input size) is
    given the input's height and width. The reference's own square shortcut (no interpolation
    when the input is exactly 518x518) is not reproduced: the exported graph always interpolates,
    as exports of this model usually do.
    """
    import onnx
    import onnxruntime as ort
    import torch
    from onnx import helper

    dinov2 = sys.modules["depth_anything_v2.dinov2"]
    original = dinov2.DinoVisionTransformer.interpolate_pos_encoding

    def cubic(t, a=-0.75):
        def near(x):
            return ((a + 2) * x - (a + 3)) * x * x + 1

        def far(x):
            return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

        return [far(t + 1), near(t), near(1 - t), far(2 - t)]

    def resize_axis(grid, axis, out_len, scale_factor):
        src = (torch.arange(out_len, dtype=torch.float32) + 0.5) * (1.0 / scale_factor) - 0.5
        base = torch.floor(src)
        frac = src - base
        base = base.to(torch.int64)
        shape = [1] * grid.dim()
        shape[axis] = -1
        out = 0
        for k, w in enumerate(cubic(frac)):
            idx = torch.clamp(base - 1 + k, 0, grid.shape[axis] - 1)
            out = out + torch.index_select(grid, axis, idx) * w.reshape(shape)
        return out

    def interpolate_pos_encoding(self, x, w, h):
        previous_dtype = x.dtype
        n = self.pos_embed.shape[1] - 1
        pos_embed = self.pos_embed.float()
        class_pos_embed = pos_embed[:, 0]
        dim = x.shape[-1]
        w0, h0 = w // self.patch_size, h // self.patch_size
        side = math.sqrt(n)
        grid = pos_embed[:, 1:].reshape(1, int(side), int(side), dim).permute(0, 3, 1, 2)
        grid = resize_axis(grid, 2, w0, (w0 + self.interpolate_offset) / side)
        grid = resize_axis(grid, 3, h0, (h0 + self.interpolate_offset) / side)
        patch_pos_embed = grid.permute(0, 2, 3, 1).reshape(1, -1, dim)
        return torch.cat((class_pos_embed.unsqueeze(0), patch_pos_embed), dim=1).to(previous_dtype)

    g = torch.Generator().manual_seed(SEED + 7)
    with torch.no_grad():
        for hw in [(70, 98), (98, 70), (518, 924)]:
            x = torch.randn(1, 3, *hw, generator=g)
            want = model(x)
            dinov2.DinoVisionTransformer.interpolate_pos_encoding = interpolate_pos_encoding
            got = model(x)
            dinov2.DinoVisionTransformer.interpolate_pos_encoding = original
            err = float((got - want).norm() / want.norm())
            assert err < 1e-5, f"export patch differs from the reference at {hw}: {err}"

    sample = torch.randn(1, 3, *sample_hw, generator=g)
    hdim, wdim = torch.export.Dim("patches_h", min=1, max=512), torch.export.Dim("patches_w", min=1, max=512)
    dinov2.DinoVisionTransformer.interpolate_pos_encoding = interpolate_pos_encoding
    try:
        torch.onnx.export(
            model,
            (sample,),
            str(path),
            input_names=["pixel_values"],
            output_names=["predicted_depth"],
            dynamic_shapes={"x": {2: 14 * hdim, 3: 14 * wdim}},
            opset_version=18,
            dynamo=True,
            external_data=False,
        )
    finally:
        dinov2.DinoVisionTransformer.interpolate_pos_encoding = original

    m = onnx.load(str(path))
    graph = m.graph
    frozen = [
        n for n in graph.node
        if n.op_type == "Resize" and len(n.input) == 4 and n.input[3]
        and _const(graph, n.input[3]) is not None
        and list(_const(graph, n.input[3])[2:]) == list(sample_hw)
    ]
    assert len(frozen) == 1, f"expected one Resize with a frozen output size, found {len(frozen)}"
    resize = frozen[0]
    pre = [
        helper.make_node("Shape", [resize.input[0]], ["fix_in_shape"], start=0, end=2),
        helper.make_node("Shape", ["pixel_values"], ["fix_hw"], start=2, end=4),
        helper.make_node("Concat", ["fix_in_shape", "fix_hw"], ["fix_sizes"], axis=0),
    ]
    frozen_sizes = resize.input[3]
    resize.input[3] = "fix_sizes"
    if not any(frozen_sizes in n.input for n in graph.node):
        for init in list(graph.initializer):
            if init.name == frozen_sizes:
                graph.initializer.remove(init)
    # Intermediate shapes recorded by the exporter still carry the traced size: drop them (they
    # are optional; ONNX Runtime infers shapes itself).
    del graph.value_info[:]
    index = list(graph.node).index(resize)
    for k, node in enumerate(pre):
        graph.node.insert(index + k, node)
    out_dims = graph.output[0].type.tensor_type.shape.dim
    out_dims[1].dim_param, out_dims[2].dim_param = "height", "width"
    in_dims = graph.input[0].type.tensor_type.shape.dim
    in_dims[2].dim_param, in_dims[3].dim_param = "height", "width"
    onnx.checker.check_model(m)
    onnx.save(m, str(path))

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        for hw in [(70, 98), (42, 56), (98, 70), (14, 28)]:
            x = torch.randn(1, 3, *hw, generator=g)
            want = model(x).numpy()
            got = session.run(None, {"pixel_values": x.numpy()})[0]
            assert got.shape == want.shape, (got.shape, want.shape)
            err = float(np.linalg.norm(got - want) / np.linalg.norm(want))
            print(f"  onnxruntime vs PyTorch at {hw}: relative L2 {err:.2e}")
            assert err < 1e-5, f"exported model differs from PyTorch at {hw}"


def _const(graph, name):
    from onnx import numpy_helper

    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            return numpy_helper.to_array(node.attribute[0].t)
    return None


def load_images(data: Path):
    import cv2

    cones = cv2.imread(str(data / "stereo" / "cones" / "left.png"), cv2.IMREAD_COLOR)
    if cones is None:
        sys.exit(f"cannot read {data / 'stereo/cones/left.png'}")
    video = cv2.VideoCapture(str(data / "video" / "car-detection.mp4"))
    video.set(cv2.CAP_PROP_POS_FRAMES, 120)
    ok, frame = video.read()
    if not ok:
        sys.exit(f"cannot read a frame of {data / 'video/car-detection.mp4'}")
    frame = cv2.resize(frame, (160, 90), interpolation=cv2.INTER_AREA)
    return {"cones": cones, "frame": frame}  # BGR, as cv2.imread gives the reference


def resize_table(dpt):
    import cv2
    from depth_anything_v2.util.transform import Resize

    frames = [(1920, 1080), (1080, 1920), (1280, 720), (768, 432), (640, 480), (450, 375),
              (320, 240), (160, 90), (100, 100), (1000, 1), (1, 1000), (37, 999), (4096, 2160),
              (1366, 768), (1440, 1080), (720, 576)]
    sizes = [14, 140, 252, 364, 392, 448, 500, 511, 518, 700]
    rows = []
    for w, h in frames:
        for size in sizes:
            r = Resize(width=size, height=size, resize_target=False, keep_aspect_ratio=True,
                       ensure_multiple_of=14, resize_method="lower_bound",
                       image_interpolation_method=cv2.INTER_CUBIC)
            nw, nh = r.get_size(w, h)
            rows.append({"width": w, "height": h, "size": size,
                         "new_width": int(nw), "new_height": int(nh)})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", type=Path, required=True, help="Depth-Anything-V2 checkout")
    ap.add_argument("--reference-commit", default="unknown", help="recorded in provenance.json")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "crates/stereospot-stereo/tests/fixtures")
    args = ap.parse_args()

    import cv2
    import onnx
    import onnxruntime
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(max(1, torch.get_num_threads()))
    dpt, _ = dav2_ref.import_reference(args.reference)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)

    print("tiny model")
    model = dav2_ref.build_model(args.reference, tiny=True, seed=SEED)
    export_onnx(model, out / "tiny_dav2.onnx")
    g = torch.Generator().manual_seed(SEED + 3)
    with torch.no_grad():
        for h, w in FORWARD_SHAPES:
            x = torch.randn(1, 3, h, w, generator=g)
            y = model(x)
            np.save(out / f"tiny_in_{h}x{w}.npy", x.numpy().astype(np.float32))
            np.save(out / f"tiny_out_{h}x{w}.npy", y.numpy().astype(np.float32))
            print(f"  forward {h}x{w}: output range {float(y.min()):.4f}..{float(y.max()):.4f}")

    print("preprocessing")
    images = load_images(args.data)
    for name, bgr in images.items():
        np.save(out / f"image_{name}.npy", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        for size in PREPROCESS_SIZES[name]:
            tensor, (h, w) = dpt.DepthAnythingV2.image2tensor(model, bgr, size)
            tensor = tensor.cpu().numpy()
            assert (h, w) == bgr.shape[:2]
            np.save(out / f"pre_{name}_{size}.npy", tensor)
            print(f"  {name} {bgr.shape[1]}x{bgr.shape[0]} at {size}: tensor {tensor.shape}")

    print("whole pipeline (infer_image)")
    depth = model.infer_image(images["frame"], 140)
    np.save(out / "infer_frame_140.npy", depth.astype(np.float32))
    print(f"  frame: {depth.shape}, range {depth.min():.4f}..{depth.max():.4f}")

    print("upsampling")
    d = torch.rand(1, 14, 28, generator=g) * 3.0
    up = F.interpolate(d[:, None], (37, 61), mode="bilinear", align_corners=True)[:, 0]
    np.save(out / "upsample_in.npy", d.numpy())
    np.save(out / "upsample_out.npy", up.numpy())

    (out / "resize_sizes.json").write_text(json.dumps(resize_table(dpt), indent=0) + "\n")
    (out / "provenance.json").write_text(json.dumps({
        "generator": "scripts/stereo/make_fixtures.py",
        "reference": "github.com/DepthAnything/Depth-Anything-V2",
        "reference_commit": args.reference_commit,
        "seed": SEED,
        "tiny_vit": dav2_ref.TINY_VIT,
        "tiny_head": dav2_ref.TINY,
        "tiny_taps": dav2_ref.TINY_TAPS,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
    }, indent=2) + "\n")
    total = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {out} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
