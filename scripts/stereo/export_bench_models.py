#!/usr/bin/env python3
"""Exports the full-size Depth Anything V2 Small architecture with random weights, for benchmarks.

The official `DepthAnythingV2` (encoder vits, features 64, out_channels [48, 96, 192, 384]: the
reference's configuration for Small, 24.8 M parameters) with seeded random weights, exported the
same way as the test model (see make_fixtures.export_onnx: dynamic H/W, opset 18, input
`pixel_values`, output `predicted_depth`). Speed does not depend on the weights' values, so this
stands in for the real checkpoint, which cannot be downloaded here. Accuracy costs measured on it
(int8, fp16) are indicative only: trained weights have other value ranges.

Writes into --out (default /tmp/stereospot-bench; NOT committed, about 200 MB):
  dav2_small_random.onnx        fp32
  dav2_small_random_int8.onnx   onnxruntime.quantization.quantize_dynamic (weights int8,
                                activations quantised per run), every op type it supports
  dav2_small_random_int8_matmul.onnx
                                the same, MatMul only (the ViT encoder; the DPT head's
                                convolutions stay fp32)
  dav2_small_random_fp16.onnx   weights and compute in fp16, fp32 input/output
                                (onnxruntime.transformers.float16, keep_io_types)

Usage (from the repository root):

  git --git-dir=<mirror of github.com/DepthAnything/Depth-Anything-V2> archive HEAD \
      depth_anything_v2 | tar -x -C /tmp/dav2
  . /tmp/venv-ref/bin/activate
  python scripts/stereo/export_bench_models.py --reference /tmp/dav2
  STEREOSPOT_BENCH_MODEL=/tmp/stereospot-bench/dav2_small_random.onnx \
      cargo bench -p stereospot-stereo --bench depth
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dav2_ref  # noqa: E402
import make_fixtures  # noqa: E402


def to_fp16(fp32: Path, out: Path):
    """fp16 weights and compute, fp32 input and output."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    half = convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True)
    # The converter can insert the same Cast twice (same input, same output name), and puts the
    # input's Cast after some of its users: keep one of each and restore topological order.
    produced, kept = {}, []
    for node in half.graph.node:
        first = next((produced[o] for o in node.output if o in produced), None)
        if first is not None:
            assert first.op_type == node.op_type and list(first.input) == list(node.input)
            continue
        produced.update((o, node) for o in node.output)
        kept.append(node)
    known = {i.name for i in half.graph.input} | {i.name for i in half.graph.initializer} | {""}
    ordered = []
    while kept:
        ready = [n for n in kept if all(i in known for i in n.input)]
        assert ready, "the fp16 graph uses a value nothing produces"
        for n in ready:
            known.update(n.output)
        ordered += ready
        ready_ids = {id(n) for n in ready}
        kept = [n for n in kept if id(n) not in ready_ids]
    del half.graph.node[:]
    half.graph.node.extend(ordered)
    onnx.checker.check_model(half)
    onnx.save(half, str(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", type=Path, required=True, help="Depth-Anything-V2 checkout")
    ap.add_argument("--out", type=Path, default=Path("/tmp/stereospot-bench"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    model = dav2_ref.build_model(args.reference, tiny=False, seed=make_fixtures.SEED)
    params = sum(p.numel() for p in model.parameters())
    print(f"Small architecture: {params / 1e6:.1f} M parameters")
    fp32 = args.out / "dav2_small_random.onnx"
    make_fixtures.export_onnx(model, fp32)
    print(f"wrote {fp32}")

    from onnxruntime.quantization import QuantType, quantize_dynamic

    int8 = args.out / "dav2_small_random_int8.onnx"
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    print(f"wrote {int8}")
    # Only the transformer's MatMuls: ONNX Runtime's ConvInteger (what dynamic quantisation makes
    # of the DPT head's convolutions) has no fast CPU kernel.
    int8mm = args.out / "dav2_small_random_int8_matmul.onnx"
    quantize_dynamic(str(fp32), str(int8mm), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
    print(f"wrote {int8mm}")

    fp16 = args.out / "dav2_small_random_fp16.onnx"
    to_fp16(fp32, fp16)
    print(f"wrote {fp16}")


if __name__ == "__main__":
    main()
