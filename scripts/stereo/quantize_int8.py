#!/usr/bin/env python3
"""Makes the int8 depth model the engine's `ModelPrecision::Int8` loads, from the fp32 export.

Dynamic quantisation of the MatMuls with constant weights only (the ViT encoder's linear layers:
weights int8, activations quantised per run). The DPT head's convolutions stay fp32: ONNX
Runtime turns dynamically quantised convolutions into ConvInteger, which has no fast CPU kernel
(the all-ops variant measured 1.34x SLOWER than fp32 in benches/depth.rs, MatMul-only 0.78x).

Usage (any Python with onnxruntime; /tmp/venv-ref has it):

  . /tmp/venv-ref/bin/activate
  python scripts/stereo/quantize_int8.py \
      --input  $WEIGHTS_DIR/onnx-community/depth-anything-v2-small/onnx/model.onnx \
      --output $WEIGHTS_DIR/onnx-community/depth-anything-v2-small/onnx/model_int8_matmul.onnx

The output path above is where the engine looks for the int8 Small model under WEIGHTS_DIR
(stereospot_stereo::depth::model_files::weights_dir_path). Without --output, the file is written
beside the input as <stem>_int8_matmul.onnx.
"""

import argparse
from pathlib import Path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--input", type=Path, required=True, help="fp32 ONNX model")
    ap.add_argument("--output", type=Path, help="int8 ONNX model to write")
    args = ap.parse_args()
    out = args.output or args.input.with_name(f"{args.input.stem}_int8_matmul.onnx")

    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(args.input),
        str(out),
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
    )
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
